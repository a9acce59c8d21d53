from __future__ import annotations

from functools import partial

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest

from calls import permissions as perms


def vccweb(request: HttpRequest) -> dict[str, object]:
    """Expose what every page shows: the sandbox marker and the user's roles."""
    user = getattr(request, "user", None)
    return {
        "sandbox": settings.VCC_SANDBOX,
        "default_region": settings.DEFAULT_PHONE_REGION,
        "can_admin": bool(user and user.is_authenticated and user.is_staff),
        # Checked only when a template asks (the navigation), usually from the permissions the view already loaded.
        "can_see_health": partial(_has_perm, user, perms.VIEW_INTEGRATION_HEALTH),
    }


def _has_perm(user: User | AnonymousUser | None, perm: str) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(perm))
