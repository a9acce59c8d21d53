"""The authentication backend: Django's, with each user and their permissions kept in the cache between requests.

Every page loads the logged-in user (a query) and checks permissions, which Django reads with two joined queries
per request. Users and roles change rarely, so each user's row and permission sets are cached (Redis in
production) with the generation number they were read under; any save of a user, and any change to users' groups,
groups' permissions or users' own permissions, moves the generation on (calls/apps.py), which makes every cached
entry stale at once. One cache round trip reads the generation, the user and their sets together.

The generation moves at the change and again when its transaction commits (a request in between read the old
row). A change made with QuerySet.update() sends no signal: whatever changes users that way must call
permissions_changed() itself. Entries also expire after CACHE_SECONDS (5 s when each process has its own cache,
which cannot see another's changes). The cached user carries their password hash, as the session check needs it:
the cache is as private as the database.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.db.models import Model

from calls.cache import astart_generation, generation_changed, lifetime, start_generation

GENERATION_KEY = "calls:perms:generation"
CACHE_SECONDS = 300

# A user's permission sets, {"user": ..., "group": ...}. The backend hangs them on the user object as `_calls_perms`
# (as ModelBackend's own `_perm_cache`), an attribute no user class declares: hence `Any` for those users below.
PermSets = dict[str, set[str]]


def permissions_changed(**kwargs: object) -> None:
    """Make every cached user and permission set stale (connected to the signals in calls/apps.py)."""
    if kwargs.get("update_fields") == frozenset({"last_login"}):
        return  # a login: nothing cached here depends on when someone last logged in
    generation_changed(GENERATION_KEY)


def _seconds() -> int:
    return lifetime(CACHE_SECONDS)


def _key(user_obj: User | AnonymousUser) -> str:
    return _perms_key(user_obj.pk)


def _perms_key(pk: object) -> str:
    return f"calls:perms:{pk}"  # any save of the user (is_superuser too) moves the generation on


def _user_key(pk: object) -> str:
    return f"calls:user:{pk}"


def _fresh(found: dict[str, Any], user_obj: User | AnonymousUser) -> PermSets | None:
    """The user's cached sets ({"user": ..., "group": ...}) if read under the current generation."""
    return _fresh_entry(found, _key(user_obj))


def _fresh_entry(found: dict[str, Any], key: str) -> Any:
    generation, cached = found.get(GENERATION_KEY, 0), found.get(key)
    return cached[1] if cached and cached[0] == generation and generation else None


class CachedPermissionBackend(ModelBackend):
    """ModelBackend, whose user and permission reads (sync and async) go through the cache first."""

    def get_user(self, user_id: object) -> User | None:
        keys = [GENERATION_KEY, _user_key(user_id), _perms_key(user_id)]
        found = cache.get_many(keys)
        user = _fresh_entry(found, keys[1])
        if user is None:
            user = super().get_user(user_id)
            if user is not None and found.get(GENERATION_KEY):
                cache.set(keys[1], (found[GENERATION_KEY], user), _seconds())
        return self._with_perms(user, found)

    async def aget_user(self, user_id: object) -> User | None:
        keys = [GENERATION_KEY, _user_key(user_id), _perms_key(user_id)]
        found = await cache.aget_many(keys)
        user = _fresh_entry(found, keys[1])
        if user is None:
            user = await super().aget_user(user_id)
            if user is not None and found.get(GENERATION_KEY):
                await cache.aset(keys[1], (found[GENERATION_KEY], user), _seconds())
        return self._with_perms(user, found)

    @staticmethod
    def _with_perms(user: Any, found: dict[str, Any]) -> User | None:
        """The user, carrying their permission sets when the same read found them fresh (spares a round trip)."""
        if user is not None and (sets := _fresh(found, user)) is not None:
            user._calls_perms = sets
        return user

    def _get_permissions(self, user_obj: Any, obj: Model | None, from_name: str) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_calls_perms"):
            found = cache.get_many([GENERATION_KEY, _key(user_obj)])
            sets = _fresh(found, user_obj)
            if sets is None:
                sets = {
                    # A private method of ModelBackend, which django-stubs leaves out.
                    name: super(CachedPermissionBackend, self)._get_permissions(user_obj, obj, name)  # type: ignore[misc]
                    for name in ("user", "group")
                }
                self._store(found, user_obj, sets)
            user_obj._calls_perms = sets
        return user_obj._calls_perms[from_name]

    async def _aget_permissions(self, user_obj: Any, obj: Model | None, from_name: str) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_calls_perms"):
            found = await cache.aget_many([GENERATION_KEY, _key(user_obj)])
            sets = _fresh(found, user_obj)
            if sets is None:
                sets = {
                    name: await super(CachedPermissionBackend, self)._aget_permissions(  # type: ignore[misc]
                        user_obj, obj, name
                    )
                    for name in ("user", "group")
                }
                if not found.get(GENERATION_KEY):
                    await astart_generation(GENERATION_KEY)
                    found = {GENERATION_KEY: await cache.aget(GENERATION_KEY)}
                if found.get(GENERATION_KEY):
                    await cache.aset_many({_key(user_obj): (found[GENERATION_KEY], sets)}, _seconds())
            user_obj._calls_perms = sets
        return user_obj._calls_perms[from_name]

    def _store(self, found: dict[str, Any], user_obj: User | AnonymousUser, sets: PermSets) -> None:
        generation = found.get(GENERATION_KEY)
        if not generation:
            # No generation yet: start one (it never expires; only changes move it on).
            start_generation(GENERATION_KEY)
            generation = cache.get(GENERATION_KEY)
        if generation:
            cache.set_many({_key(user_obj): (generation, sets)}, _seconds())
