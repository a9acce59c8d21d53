"""The integration health page: for admins and supervisors, how vccweb's link to VCC is doing; admins may also queue
a failed background job again from it, and subscribe to VCC's events."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from calls import health
from calls import permissions as perms
from calls.calling.events import events_health
from calls.privacy.retention import retention_health
from calls.webhooks.health import webhooks_health

log = logging.getLogger(__name__)


@require_GET
@login_required
@permission_required(perms.VIEW_INTEGRATION_HEALTH, raise_exception=True)
def integration_health(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    report = health.integration_health(now=now)
    webhooks = webhooks_health(now=now)
    report.problems += webhooks.problems()
    retention = retention_health(now=now)
    if retention.problem:
        report.problems.append(retention.problem)
    return render(
        request, "calls/integration_health.html", {"health": report, "webhooks": webhooks, "retention": retention}
    )


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


@require_POST
@login_required
@permission_required(perms.RUN_SYNC, raise_exception=True)
def subscribe_vcc_events(request: HttpRequest) -> HttpResponse:
    """Have VCC push its events to SITE_URL/vcc/events/ (the Webhooks API), as `manage.py vcc_webhooks subscribe`."""
    from calls.vcc import VCCError, budget
    from calls.vcc.webhooks import WebhooksClient, disabled_note

    url = events_health(now=timezone.now()).url
    if not (settings.VCC_WEBHOOK_SECRETS and url and settings.VCC_SYNC_ENABLED):
        messages.error(request, "Set VCC_WEBHOOK_SECRETS, SITE_URL and VCC_CLIENT_ID/SECRET first.")
    else:
        try:
            with budget.priority(budget.CLICK), WebhooksClient() as client:  # a person's request, as a click
                made, new, disabled = client.ensure_subscribed(
                    name="vccweb", url=url, secret=settings.VCC_WEBHOOK_SECRETS[0]
                )
        except VCCError as exc:
            log.warning("subscribing to VCC's events failed: %s (status %s)", exc.message, exc.status)
            messages.error(
                request, exc.user_message if exc.local else f"VCC refused the subscription: {exc.user_message}"
            )
        else:
            said = f"({made.get('id') or 'VCC gave no id'}): VCC delivers its events to {url}"
            if new:
                messages.success(request, f"Subscribed {said} (it may take 30 s to start).{disabled_note(disabled)}")
            else:
                messages.info(request, f"Already subscribed {said}.")
    return redirect(reverse("integration_health") + "#events-head")
