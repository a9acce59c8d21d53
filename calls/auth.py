"""The authentication backend: Django's, with each user's permissions kept in the cache between requests.

Every page checks permissions, and Django reads them with two joined queries per request. Roles change rarely,
so each user's sets are cached (Redis in production) with the generation number they were read under; any change
to users' groups, groups' permissions or users' own permissions moves the generation on (calls/apps.py), which
makes every cached set stale at once. One cache round trip reads the generation and the user's sets together.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache

GENERATION_KEY = "calls:perms:generation"
CACHE_SECONDS = 300


def permissions_changed(**kwargs: object) -> None:
    """Make every cached permission set stale (connected to the signals in calls/apps.py)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # not there yet: nothing was cached under a generation
        cache.set(GENERATION_KEY, 1, None)


def _key(user_obj) -> str:
    return f"calls:perms:{user_obj.pk}:{int(user_obj.is_superuser)}"


def _fresh(found: dict, user_obj) -> dict[str, set[str]] | None:
    """The user's cached sets ({"user": ..., "group": ...}) if read under the current generation."""
    generation, cached = found.get(GENERATION_KEY, 0), found.get(_key(user_obj))
    return cached[1] if cached and cached[0] == generation and generation else None


class CachedPermissionBackend(ModelBackend):
    """ModelBackend, whose permission reads (sync and async) go through the cache first."""

    def _get_permissions(self, user_obj, obj, from_name: str) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_calls_perms"):
            found = cache.get_many([GENERATION_KEY, _key(user_obj)])
            sets = _fresh(found, user_obj)
            if sets is None:
                sets = {
                    name: super(CachedPermissionBackend, self)._get_permissions(user_obj, obj, name)
                    for name in ("user", "group")
                }
                self._store(found, user_obj, sets)
            user_obj._calls_perms = sets
        return user_obj._calls_perms[from_name]

    async def _aget_permissions(self, user_obj, obj, from_name: str) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_calls_perms"):
            found = await cache.aget_many([GENERATION_KEY, _key(user_obj)])
            sets = _fresh(found, user_obj)
            if sets is None:
                sets = {
                    name: await super(CachedPermissionBackend, self)._aget_permissions(user_obj, obj, name)
                    for name in ("user", "group")
                }
                await cache.aset_many(self._entries(found, user_obj, sets), CACHE_SECONDS)
            user_obj._calls_perms = sets
        return user_obj._calls_perms[from_name]

    def _store(self, found: dict, user_obj, sets: dict[str, set[str]]) -> None:
        cache.set_many(self._entries(found, user_obj, sets), CACHE_SECONDS)

    @staticmethod
    def _entries(found: dict, user_obj, sets: dict[str, set[str]]) -> dict:
        generation = found.get(GENERATION_KEY)
        if not generation:
            # No generation yet: start one (it never expires; only changes move it on).
            cache.add(GENERATION_KEY, 1, None)
            generation = cache.get(GENERATION_KEY, 1)
        return {_key(user_obj): (generation, sets)}
