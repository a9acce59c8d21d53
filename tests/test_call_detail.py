from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallEvent
from tests._calls import make_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(agent_user, contact, london):
    call = make_call(
        user=agent_user,
        agent=agent_user.agent,
        outcome="no_answer",
        contact=contact,
        phone=contact.phones.first(),
        presented_clid=london.number,
        callback_number=london,
        clid_reason="your default",
        consent="OneParty",
        consent_reason="GB default",
        vcc_call_id="017db4a2-77aa",
        request_body={"from": {"agentId": "1001"}, "to": {"telephoneNumber": "+447400123456"}},
        notes="Try again = tomorrow",
    )
    Call.objects.filter(pk=call.pk).update(responded_at=call.requested_at + timedelta(seconds=1))
    CallEvent.objects.create(call=call, at=timezone.now(), kind="recording", detail="recording paused requested")
    call.refresh_from_db()
    return call


def test_url_is_named(call):
    assert reverse("call_detail", args=[call.pk]) == f"/calls/{call.pk}/"


def test_it_shows_everything_stored_on_the_call(agent_client, call, contact):
    response = agent_client.get(f"/calls/{call.pk}/")
    body = html.unescape(response.content.decode())
    assert response.status_code == 200
    for text in [
        "Alex Morgan",  # who placed it, and from which agent
        "agent 1001",
        "London main",
        "Why: your default",
        "One party",
        "Why: GB default",
        "017db4a2-77aa",
        '"telephoneNumber": "+447400123456"',  # the request sent
        "Not answered by the contact",
        "Try again = tomorrow",
        "VCC placed the call",
        "VCC call 017db4a2-77aa",
    ]:
        assert text in body, text
    assert f'href="{contact.get_absolute_url()}"' in body
    assert f'id="call-panel-{call.pk}"' in body  # the call panel, to wrap it up


def test_it_says_vccs_result_in_plain_words(agent_client, call):
    body = agent_client.get(f"/calls/{call.pk}/").content.decode()
    assert "NoAnswer" not in body
    assert "failure, the called phone, no answer" in body


def test_it_shows_vccs_error_verbatim(agent_client, agent_user):
    failed = make_call(user=agent_user, agent=agent_user.agent, outcome="failed", error_message="Agent 1001 is busy")
    body = html.unescape(agent_client.get(f"/calls/{failed.pk}/").content.decode())
    assert "“Agent 1001 is busy” (HTTP 409)" in body
    assert "Your phone is not ready in VCC." in body
    assert "Failed" in body


def test_a_supervisor_sees_anyones_call(supervisor_client, call):
    assert supervisor_client.get(f"/calls/{call.pk}/").status_code == 200


def test_another_agent_gets_404(other_agent_user, call, client):
    client.force_login(other_agent_user)
    assert client.get(f"/calls/{call.pk}/").status_code == 404


def test_it_rejects_post(agent_client, call):
    assert agent_client.post(f"/calls/{call.pk}/").status_code == 405


def test_it_sends_anonymous_visitors_to_log_in(client, call):
    response = client.get(f"/calls/{call.pk}/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_it_answers_404_for_a_call_that_does_not_exist(agent_client):
    assert agent_client.get("/calls/999999/").status_code == 404
