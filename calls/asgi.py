"""Django's ASGI handler, with each request's sync thread taken from a pool instead of started and joined anew.

Django runs every request in its own `ThreadSensitiveContext`, so that the sync code of one request (the ORM and
its connection above all) stays on one thread. asgiref starts that thread on the request's first trip to sync code
and joins it when the request ends: a thread start (which waits for the new thread to run) and a join for every
request, each a handful of system calls, which are dear on this project's virtual machines (bench/README.md).

Here a request borrows a single-thread executor from a pool kept by the process's event loop, and gives it back
when it ends. Everything else is Django's handler. Sync work of a request still runs on one thread, and requests
in flight never share one. A task that outlives its request (a click whose browser went away,
calls/calling/placing.py) gets a thread of its own as it would under Django's handler.

Lent threads also spare every request a trip to its thread at the start. Django's two `request_started` receivers
look at that thread's database connections: they close the ones past their age and clear DEBUG's query log. A lent
thread's connections were closed when its previous request finished (`request_finished` runs the same check, and
with CONN_MAX_AGE 0 it closes every connection), and a new thread has none, so with CONN_MAX_AGE 0 and DEBUG off
they have nothing to do and are disconnected.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, reset_queries

KEEP_IDLE = 256  # executors kept for reuse; a burst beyond that starts threads that end with their request


class ExecutorPool:
    """Single-thread executors lent to one request at a time. Used from the event loop's thread only."""

    def __init__(self, keep: int = KEEP_IDLE) -> None:
        self.keep = keep
        self.idle: list[ThreadPoolExecutor] = []
        self.made = 0

    def take(self) -> ThreadPoolExecutor:
        if self.idle:
            return self.idle.pop()  # the most recently used: its thread is the likeliest to be warm
        self.made += 1
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self.idle) < self.keep:
            self.idle.append(executor)
        else:
            executor.shutdown(wait=False)  # never blocks the loop: the thread ends once its queue is empty


class LentThread(ThreadSensitiveContext):
    """A request's thread-sensitive context whose executor is lent, not made: on exit it is neither shut down nor
    joined. Like Django's own context (and unlike asgiref's `executor=` form, which refuses them), a task that
    outlives the request may still call sync code: asgiref gives it a new thread."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        super().__init__()
        self.lent = executor

    async def __aenter__(self) -> LentThread:
        self.token = SyncToAsync.thread_sensitive_context.set(self)
        SyncToAsync.context_to_thread_executor[self] = self.lent
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        SyncToAsync.context_to_thread_executor.pop(self, None)
        SyncToAsync.thread_sensitive_context.reset(self.token)
        self.token = None


class PooledThreadsASGIHandler(ASGIHandler):
    """ASGIHandler whose requests borrow their sync thread from an ExecutorPool."""

    def __init__(self) -> None:
        super().__init__()
        self.executors = ExecutorPool()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # Django's answer to what it does not serve
        executor = self.executors.take()
        try:
            async with LentThread(executor):
                await self.handle(scope, receive, send)
        except BaseException:
            # Only a request that ended normally (request_finished ran on its thread) gives the thread back; after
            # an error it is dropped, as Django's handler drops every request's.
            executor.shutdown(wait=False)
            raise
        self.executors.give_back(executor)


def start_receivers_idle() -> bool:
    """Whether Django's request_started receivers have nothing to do on a lent thread (see the module's text)."""
    return not settings.DEBUG and all(not db.get("CONN_MAX_AGE") for db in settings.DATABASES.values())


def get_asgi_application() -> PooledThreadsASGIHandler:
    """As django.core.asgi.get_asgi_application, with the pooled handler, and without Django's request_started
    receivers when they have nothing to do (see the module's text)."""
    import django

    django.setup(set_prefix=False)
    if start_receivers_idle():
        signals.request_started.disconnect(close_old_connections)
        signals.request_started.disconnect(reset_queries)
    return PooledThreadsASGIHandler()
