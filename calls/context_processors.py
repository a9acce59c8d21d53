from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def vccweb(request: HttpRequest) -> dict[str, object]:
    """Expose what every page shows: the sandbox marker and the user's roles."""
    user = getattr(request, "user", None)
    return {
        "sandbox": settings.VCC_SANDBOX,
        "default_region": settings.DEFAULT_PHONE_REGION,
        "can_admin": bool(user and user.is_authenticated and user.is_staff),
    }
