"""The integration health page: for admins and supervisors, how vccweb's link to VCC is doing; admins may also queue
a failed background job again from it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from calls import health
from calls import permissions as perms


@require_GET
@login_required
@permission_required(perms.VIEW_INTEGRATION_HEALTH, raise_exception=True)
def integration_health(request: HttpRequest) -> HttpResponse:
    report = health.integration_health(now=timezone.now())
    return render(request, "calls/integration_health.html", {"health": report})


@require_POST
@login_required
@permission_required(perms.RETRY_JOB, raise_exception=True)
def retry_job(request: HttpRequest, job_id: int) -> HttpResponse:
    outcome = health.retry_failed_job(job_id, now=timezone.now())
    if outcome.queued:
        messages.success(request, outcome.message)
    else:
        messages.error(request, outcome.message)
    return redirect(reverse("integration_health") + "#jobs-head")
