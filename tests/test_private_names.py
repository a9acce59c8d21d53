"""Every piece of vccweb that leans on a private name of Django, asgiref or redis-py, checked against the installed
packages: each name still exists with the shape the piece relies on, and the code that used it still does.

A failure names the piece and its file. Upgrading Django, asgiref or redis-py (`make lock`) and seeing one fail
means: read the new code, then re-measure the piece with bench/private_bench.py and keep it only if it still saves
what bench/README.md ("Private names") says, or drop it. The speed pieces are the ones the bench can switch off
(settings.PRIVATE_PIECES); the others are behaviour, kept for what they do rather than for speed.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from calls.middleware import MIDDLEWARE_CHECKS


@dataclass(frozen=True)
class Name:
    """A private name (module.Class.attribute), what the piece needs of it, and how to check that."""

    path: str
    needs: str  # "takes (self, request, reason)", "is a ContextVar", ...
    holds: Callable[[Any], bool] = lambda value: True
    get: Callable[[], Any] | None = None  # for a name set on instances: builds one and reads it

    def value(self) -> Any:
        return self.get() if self.get else resolve(self.path)


@dataclass(frozen=True)
class Piece:
    title: str
    file: str
    names: tuple[Name, ...]
    switch: str = ""  # its name in settings.PRIVATE_PIECES (VCCWEB_BENCH_DISABLE); "" for a behaviour piece


def resolve(path: str) -> Any:
    """Import module.Class.attribute by the longest importable module prefix; AttributeError if a part is gone."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            value = inspect.getattr_static(value, part) if isinstance(value, type) else getattr(value, part)
        return value
    raise AttributeError(path)


def takes(*params: str, is_async: bool | None = None) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        function = getattr(value, "__func__", value)
        if not callable(function):
            return False
        if is_async is not None and inspect.iscoroutinefunction(function) != is_async:
            return False
        return tuple(inspect.signature(function).parameters) == params

    return check


def uses(*names: str) -> Callable[[Any], bool]:
    """The function's source still mentions these names: the library still goes the way the piece relies on."""

    def check(value: Any) -> bool:
        source = inspect.getsource(getattr(value, "__func__", value))
        return all(name in source for name in names)

    return check


def on_instance(cls: str, attribute: str, needs: str, holds: Callable[[Any], bool]) -> Name:
    """A name Django sets on instances (in __init__), read from one built here (which opens no connection)."""
    from django.core.cache.backends import redis as backend

    def get() -> Any:
        made = (
            backend.RedisCache("redis://127.0.0.1:1/0", {})
            if cls == "RedisCache"
            else backend.RedisCacheClient(["redis://127.0.0.1:1/0"])
        )
        return getattr(made, attribute)

    return Name(f"django.core.cache.backends.redis.{cls}().{attribute}", needs, holds, get)


def cached_property_or_property(value: Any) -> bool:
    from django.utils.functional import cached_property

    return isinstance(value, cached_property | functools.cached_property | property)


def getter(value: Any) -> Any:
    return getattr(value, "func", None) or value.fget


MIDDLEWARE_CHECK_NAMES = tuple(
    Name(f"{module}.{name}", "is a check function (app_configs, **kwargs)", takes("app_configs", "kwargs"))
    for module, names in MIDDLEWARE_CHECKS.items()
    for name in names
)

PIECES = (
    Piece(
        "middleware methods in the event loop",
        "calls/middleware.py",
        (
            Name(
                "django.utils.deprecation.MiddlewareMixin.__acall__",
                "is a coroutine taking (self, request)",
                takes("self", "request", is_async=True),
            ),
            Name(
                "django.utils.deprecation.MiddlewareMixin.__call__",
                "calls self.__acall__ when self.async_mode",
                uses("self.async_mode", "self.__acall__(request)"),
            ),
            Name(
                "django.contrib.messages.middleware.MessageMiddleware.process_request",
                "keeps the storage as request._messages",
                uses("request._messages"),
            ),
            Name(
                "django.contrib.messages.storage.base.BaseStorage.update",
                "stores nothing unless storage.used or storage.added_new",
                uses("self.used", "self.added_new"),
            ),
            Name(
                "django.contrib.sessions.middleware.SessionMiddleware.process_response",
                "saves only when modified (or SESSION_SAVE_EVERY_REQUEST) and not empty",
                uses("request.session.modified", "request.session.is_empty()", "SESSION_SAVE_EVERY_REQUEST"),
            ),
        ),
        switch="inloop_middleware",
    ),
    Piece(
        "one cache client per process",
        "calls/cache.py",
        (
            Name(
                "django.core.cache.backends.redis.RedisCache._cache",
                "is a (cached) property building self._class(self._servers, **self._options)",
                lambda v: (
                    cached_property_or_property(v) and uses("self._class(self._servers, **self._options)")(getter(v))
                ),
            ),
            on_instance("RedisCache", "_class", "is RedisCacheClient", lambda v: v.__name__ == "RedisCacheClient"),
            on_instance("RedisCache", "_servers", "is a list of URLs", lambda v: isinstance(v, list)),
            on_instance("RedisCache", "_options", "is the OPTIONS dict", lambda v: isinstance(v, dict)),
        ),
        switch="one_cache_client",
    ),
    Piece(
        "cached permission sets",
        "calls/auth.py",
        (
            Name(
                "django.contrib.auth.backends.ModelBackend._get_permissions",
                "takes (self, user_obj, obj, from_name)",
                takes("self", "user_obj", "obj", "from_name", is_async=False),
            ),
            Name(
                "django.contrib.auth.backends.ModelBackend._aget_permissions",
                "is a coroutine taking (self, user_obj, obj, from_name)",
                takes("self", "user_obj", "obj", "from_name", is_async=True),
            ),
            Name(
                "django.contrib.auth.backends.ModelBackend.get_user_permissions",
                "reads through self._get_permissions",
                uses("self._get_permissions("),
            ),
            Name(
                "django.contrib.auth.backends.ModelBackend.aget_group_permissions",
                "reads through self._aget_permissions",
                uses("self._aget_permissions("),
            ),
        ),
        switch="cached_perms",
    ),
    Piece(
        "request log's user id without loading the user",
        "calls/observability.py",
        (
            Name("django.utils.functional.empty", "is the marker of an unevaluated lazy object"),
            Name(
                "django.utils.functional.LazyObject.__init__",
                "sets self._wrapped = empty until evaluated",
                uses("self._wrapped = empty"),
            ),
        ),
    ),
    Piece(
        "Redis health check and VCC statistics through Django's client",
        "calls/cache.py, calls/vcc/stats.py",
        (
            Name(
                "django.core.cache.backends.redis.RedisCache._cache",
                "is a (cached) property",
                cached_property_or_property,
            ),
            Name(
                "django.core.cache.backends.redis.RedisCacheClient.get_client",
                "takes (self, key, *, write)",
                takes("self", "key", "write"),
            ),
        ),
    ),
    Piece("deploy checks run with Django's middleware paths", "calls/middleware.py", MIDDLEWARE_CHECK_NAMES),
    Piece(
        "PostgreSQL backend that says at once when PostgreSQL is down",
        "calls/dbbackend/base.py",
        (
            Name(
                "django.db.backends.postgresql.base.DatabaseWrapper.pool",
                "is a property",
                lambda v: isinstance(v, property),
            ),
            Name(
                "django.db.backends.postgresql.base.DatabaseWrapper.get_new_connection",
                "takes (self, conn_params) and takes a pooled connection from self.pool",
                lambda v: takes("self", "conn_params")(v) and uses("self.pool")(v),
            ),
            Name(
                "django.db.backends.base.base.BaseDatabaseWrapper.wrap_database_errors",
                "is a property",
                cached_property_or_property,
            ),
        ),
    ),
)


@pytest.mark.parametrize("piece", PIECES, ids=lambda piece: piece.title)
def test_each_private_name_a_piece_leans_on_still_has_its_shape(piece: Piece) -> None:
    broken = []
    for name in piece.names:
        try:
            value = name.value()
        except AttributeError:
            broken.append(f"{name.path}, which is gone")
            continue
        try:
            held = name.holds(value)
        except (AttributeError, TypeError, ValueError, OSError) as error:
            held, error_text = False, f" ({type(error).__name__}: {error})"
        else:
            error_text = ""
        if not held:
            broken.append(f"{name.path}, which no longer {name.needs}{error_text}")
    assert not broken, "\n".join(
        f"{piece.file} ({piece.title}) relies on {what}: re-measure or drop the piece" for what in broken
    )


def test_the_bench_can_switch_off_each_speed_piece_and_measures_them_all() -> None:
    bench = Path(__file__).resolve().parent.parent / "bench" / "private_bench.py"
    assignment = next(
        node
        for node in ast.parse(bench.read_text()).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PIECES"
    )
    measured = [key.value for key in assignment.value.keys]  # type: ignore[attr-defined]

    assert sorted(piece.switch for piece in PIECES if piece.switch) == sorted(settings.PRIVATE_PIECES)
    assert sorted(measured) == sorted(settings.PRIVATE_PIECES)


def test_a_name_gone_or_reshaped_fails_naming_the_piece_and_its_file(monkeypatch) -> None:
    from django.contrib.auth.backends import ModelBackend
    from django.utils.deprecation import MiddlewareMixin

    monkeypatch.delattr(ModelBackend, "_aget_permissions")
    monkeypatch.setattr(MiddlewareMixin, "__acall__", lambda self, request: None)
    by_title = {piece.title: piece for piece in PIECES}

    with pytest.raises(AssertionError) as gone:
        test_each_private_name_a_piece_leans_on_still_has_its_shape(by_title["cached permission sets"])
    with pytest.raises(AssertionError) as reshaped:
        test_each_private_name_a_piece_leans_on_still_has_its_shape(by_title["middleware methods in the event loop"])

    assert (
        "calls/auth.py (cached permission sets) relies on "
        "django.contrib.auth.backends.ModelBackend._aget_permissions, which is gone: re-measure or drop the piece"
    ) in str(gone.value)
    assert (
        "calls/middleware.py (middleware methods in the event loop) relies on "
        "django.utils.deprecation.MiddlewareMixin.__acall__, which no longer is a coroutine taking (self, request)"
    ) in str(reshaped.value)


# --- The bench's switches (VCCWEB_BENCH_DISABLE): each turns its piece into Django's own way, and nothing else ----


async def _async_view(request):  # an async get_response: middleware runs in async mode
    return None


def test_switched_off_in_loop_middleware_hops_as_django_does(settings) -> None:
    from django.utils.deprecation import MiddlewareMixin

    from calls import middleware

    settings.BENCH_DISABLE = frozenset({"inloop_middleware"})
    off = middleware.SecurityMiddleware(_async_view)
    settings.BENCH_DISABLE = frozenset()
    on = middleware.SecurityMiddleware(_async_view)
    assert off.__acall__.__func__ is MiddlewareMixin.__acall__
    assert on.__acall__.__func__ is middleware._InLoop.__acall__


def test_switched_off_one_cache_client_builds_one_per_cache_object_as_django_does(settings) -> None:
    from calls.cache import TolerantRedisCache

    def make() -> TolerantRedisCache:
        return TolerantRedisCache("redis://127.0.0.1:1/0", {})  # opens no connection

    assert make()._cache is make()._cache  # one per process
    settings.BENCH_DISABLE = frozenset({"one_cache_client"})
    assert make()._cache is not make()._cache


def test_switched_off_cached_permissions_ask_djangos_backend_every_time(settings, monkeypatch) -> None:
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.auth.models import User

    from calls.auth import CachedPermissionBackend

    asked = []
    monkeypatch.setattr(ModelBackend, "_get_permissions", lambda self, user, obj, name: asked.append(name) or set())
    settings.BENCH_DISABLE = frozenset({"cached_perms"})
    user = User(pk=1, is_active=True)
    user._calls_perms = {"user": {"calls.x"}, "group": set()}  # what the cache would have given

    assert CachedPermissionBackend().get_user_permissions(user) == set()
    assert CachedPermissionBackend().get_group_permissions(user) == set()
    assert asked == ["user", "group"]
