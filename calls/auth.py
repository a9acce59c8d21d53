"""The authentication backend: Django's, with each user's permissions kept in the cache between requests.

Every page checks permissions, and Django reads them with two joined queries per request. Roles change rarely,
so the sets are cached (Redis in production) under a generation number that any change to users' groups, groups'
permissions or users' own permissions moves on, which makes every cached set stale at once.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache

GENERATION_KEY = "calls:perms:generation"
CACHE_SECONDS = 300


def _generation() -> int:
    return cache.get_or_set(GENERATION_KEY, 1, None)


def permissions_changed(**kwargs: object) -> None:
    """Forget every cached permission set (connected to the m2m signals in calls/apps.py)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # not there yet: nothing cached under it
        cache.set(GENERATION_KEY, 1, None)


def _key(user_obj, from_name: str, generation: int) -> str:
    return f"calls:perms:{generation}:{user_obj.pk}:{from_name}:{int(user_obj.is_superuser)}"


class CachedPermissionBackend(ModelBackend):
    """ModelBackend, whose two permission reads (sync and async) go through the cache first."""

    def _get_permissions(self, user_obj, obj, from_name: str) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        attribute = f"_{from_name}_perm_cache"
        if not hasattr(user_obj, attribute):
            key = _key(user_obj, from_name, _generation())
            perms = cache.get(key)
            if perms is None:
                perms = super()._get_permissions(user_obj, obj, from_name)
                cache.set(key, perms, CACHE_SECONDS)
            setattr(user_obj, attribute, perms)
        return getattr(user_obj, attribute)

    async def _aget_permissions(self, user_obj, obj, from_name: str) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        attribute = f"_{from_name}_perm_cache"
        if not hasattr(user_obj, attribute):
            generation = await cache.aget(GENERATION_KEY)
            if generation is None:
                generation = 1
                await cache.aadd(GENERATION_KEY, 1, None)
            key = _key(user_obj, from_name, generation)
            perms = await cache.aget(key)
            if perms is None:
                perms = await super()._aget_permissions(user_obj, obj, from_name)
                await cache.aset(key, perms, CACHE_SECONDS)
            setattr(user_obj, attribute, perms)
        return getattr(user_obj, attribute)
