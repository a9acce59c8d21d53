"""Short locks that stop two clicks dialling one number at once, shared by every app process."""

from __future__ import annotations

from django.core.cache import cache

DIAL_LOCK_SECONDS = 30  # how long one click holds a number while VCC is asked


def _key(number: str) -> str:
    return f"dialling:{number}"


def acquire_dial_lock(number: str, *, owner: str, seconds: int = DIAL_LOCK_SECONDS) -> bool:
    """Take the number for owner (a click's request id); False when another click holds it."""
    return cache.add(_key(number), owner, timeout=seconds)


def release_dial_lock(number: str, *, owner: str) -> None:
    """Free the number, only if owner still holds it (an expired lock may have passed to another click)."""
    if cache.get(_key(number)) == owner:
        cache.delete(_key(number))
