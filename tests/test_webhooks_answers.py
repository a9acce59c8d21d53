"""What a receiver answers, however odd, is recorded in the delivery log (calls/webhooks/delivery.py send)."""

from __future__ import annotations

import pytest

from calls.models import WebhookAttempt
from tests.test_webhooks_delivery import clock, deliver, emit, endpoint, receiver, statuses  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_a_binary_answer_with_nul_bytes_is_recorded_and_not_sent_again(receiver, clock):  # noqa: F811
    """PostgreSQL's text refuses a NUL: the whole pass failed, nothing was recorded and the event went again at
    every pass."""
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"

    def image(handler) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "image/png")
        handler.send_header("content-length", str(len(png)))
        handler.end_headers()
        handler.wfile.write(png)

    receiver.answers = [image, image]
    hook = endpoint(receiver.url)
    emit()

    assert deliver(hook) == 1
    assert deliver(hook) == 0  # delivered: nothing is sent again

    assert len(receiver.received) == 1
    assert statuses(hook) == [("delivered", 1)]
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 200
    assert attempt.response_snippet.startswith("\ufffdPNG") and "\x00" not in attempt.response_snippet
