"""POST /vcc/events/: where VCC's Webhooks API delivers its signed events (calls/vcc/events.py).

No login and no CSRF token (VCC has neither): the signature is the authentication. The view checks it, stores each
event once (its CloudEvents id is unique, so a redelivery is acknowledged and changes nothing) and queues the job
that applies them (calls/tasks.py `process_vcc_events`), so VCC's answer comes in milliseconds whatever the
processing costs. A refusal answers with a sentence, is logged without the body, and is counted for the health page.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from calls.calling.events import count_refusal
from calls.models import VccEvent
from calls.vcc import events

log = logging.getLogger(__name__)


def _refuse(request: HttpRequest, refusal: events.Refused) -> HttpResponse:
    log.warning(
        "vcc events: refused %s (%s): %s; %s bytes from %s",
        refusal.status,
        refusal.reason,
        refusal.message,
        request.headers.get("Content-Length", "?"),
        request.META.get("REMOTE_ADDR", "?"),
    )
    count_refusal()
    response = HttpResponse(refusal.message + "\n", status=refusal.status, content_type="text/plain; charset=utf-8")
    if refusal.status == 405:
        response["Allow"] = "POST"
    return response


@csrf_exempt
def receive(request: HttpRequest) -> HttpResponse:
    try:
        if request.method != "POST":
            raise events.Refused(405, "Deliver VCC's events with POST.", "method")
        length = request.headers.get("Content-Length") or "0"
        if not (length.isascii() and length.isdigit()):  # "²".isdigit(), and int("²") raises
            raise events.Refused(400, "Content-Length must be a number of bytes.", "bad length")
        if int(length) > events.MAX_BODY:
            raise events.Refused(413, f"An event delivery may be at most {events.MAX_BODY // 1024} KB.", "too large")
        body = request.read(events.MAX_BODY + 1)
        if len(body) > events.MAX_BODY:
            raise events.Refused(413, f"An event delivery may be at most {events.MAX_BODY // 1024} KB.", "too large")
        events.verify(request.headers.get("Vonage-Signature"), body, settings.VCC_WEBHOOK_KEYS)
        envelopes = events.parse(request.content_type or "", body)
    except events.Refused as refusal:
        return _refuse(request, refusal)
    store(envelopes)
    return JsonResponse({"received": len(envelopes)})


def store(envelopes: list[events.Envelope]) -> None:
    """Keep the events not seen before (a redelivery changes nothing) and queue their processing."""
    from calls import tasks

    now = timezone.now()
    rows = [
        VccEvent(
            event_id=e.id, type=e.type, source=e.source, subject=e.subject, time=e.time, data=e.data, received_at=now
        )
        for e in envelopes
    ]
    VccEvent.objects.bulk_create(rows, ignore_conflicts=True)
    tasks.enqueue_event_processing()
