"""The integration health page: for admins and supervisors, how vccweb's link to VCC is doing."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from calls import health
from calls import permissions as perms


@require_GET
@login_required
@permission_required(perms.VIEW_INTEGRATION_HEALTH, raise_exception=True)
def integration_health(request: HttpRequest) -> HttpResponse:
    report = health.integration_health(now=timezone.now())
    return render(request, "calls/integration_health.html", {"health": report})
