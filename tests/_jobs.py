"""The task engine in tests: an in-memory queue (autouse, tests/conftest.py), and `run_jobs` to run what is queued
in the test's own thread, so a job sees the test's transaction like the view that queued it.

The fault tests (tests/test_worker_faults.py) run the real worker, in processes of its own, on PostgreSQL.
"""

from __future__ import annotations

import inspect
from typing import Any

from asgiref.sync import async_to_sync
from procrastinate import JobContext, jobs
from procrastinate.contrib.django import app
from procrastinate.testing import InMemoryConnector


def queued(connector: InMemoryConnector, task_name: str | None = None) -> list[dict[str, Any]]:
    """The jobs waiting in the queue (of one task, when given), oldest first."""
    rows = [r for r in connector.jobs.values() if r["status"] == "todo"]
    return sorted((r for r in rows if task_name in (None, r["task_name"])), key=lambda r: r["id"])


def run_jobs(connector: InMemoryConnector, task_name: str | None = None, *, limit: int = 100) -> list[str]:
    """Run the queued jobs (of one task, when given) one after the other, jobs they queue included; return the
    names of those run. A job that raises is marked failed and its error raised to the test."""
    ran: list[str] = []
    for _ in range(limit):
        todo = queued(connector, task_name)
        if not todo:
            return ran
        row = todo[0]
        row["status"] = "doing"
        task = app.tasks[row["task_name"]]
        args = dict(row["args"])
        try:
            if task.pass_context:
                context = JobContext(
                    app=app, job=jobs.Job.from_row(row), start_timestamp=0.0, abort_reason=lambda: None
                )
                result = task.func(context, **args)
            else:
                result = task.func(**args)
            if inspect.isawaitable(result):

                async def wait(awaitable: Any = result) -> Any:
                    return await awaitable

                async_to_sync(wait)()
        except BaseException:
            row["status"] = "failed"
            raise
        row["status"] = "succeeded"
        ran.append(row["task_name"])
    raise AssertionError(f"more than {limit} jobs: one keeps queueing another?")
