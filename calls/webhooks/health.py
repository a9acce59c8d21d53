"""The outgoing webhooks' part of the integration health page: endpoints disabled, paused or failing, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from calls.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

SHOWN = 20  # endpoints listed at most


@dataclass
class Trouble:
    endpoint: WebhookEndpoint
    state: str  # "disabled" (by the engine, with its reason), "failing" (still retried) or "paused" (by an admin)
    why: str  # the reason it was disabled, or the last attempt's answer or error
    since: datetime | None


@dataclass
class WebhooksHealth:
    endpoints: int = 0  # how many exist
    troubles: list[Trouble] = field(default_factory=list)

    def problems(self) -> list[str]:
        """The lines of the page's summary: a disabled or failing endpoint needs a look; a paused one was chosen."""
        lines = []
        for trouble in self.troubles:
            if trouble.state == "disabled":
                lines.append(f"Webhook endpoint {trouble.endpoint} was disabled: {trouble.why}")
            elif trouble.state == "failing":
                lines.append(f"Webhook endpoint {trouble.endpoint} is failing: {trouble.why}")
        return lines


def webhooks_health(*, now: datetime) -> WebhooksHealth:
    endpoints = WebhookEndpoint.objects.order_by("id")
    report = WebhooksHealth(endpoints=endpoints.count())
    if not report.endpoints:
        return report
    for endpoint in endpoints.exclude(enabled=True, failing_since__isnull=True)[:SHOWN]:
        if not endpoint.enabled:
            state = "disabled" if endpoint.disabled_reason else "paused"
            report.troubles.append(Trouble(endpoint, state, endpoint.disabled_reason, endpoint.disabled_at))
        else:
            report.troubles.append(Trouble(endpoint, "failing", _last_answer(endpoint), endpoint.failing_since))
    return report


def _last_answer(endpoint: WebhookEndpoint) -> str:
    """The last answer to its oldest waiting delivery: what holds its queue up (both read on an index)."""
    waiting = WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING).order_by("id")
    oldest = waiting.only("id").first()
    last = WebhookAttempt.objects.filter(delivery=oldest).order_by("-at").first() if oldest else None
    if last is None:
        return "no attempt recorded"
    if last.error:
        return last.error
    return f"the last attempt was answered {last.status_code}"
