"""The API's wrap-up of a call (POST /api/v1/calls/{id}/wrap-up), as the call panel wraps one up."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from calls.models import Call, ContactPhone, DispositionCode
from tests import _api_calls
from tests._api_calls import URL, bearer, post, problem, token_for
from tests._sim import poll

pytestmark = pytest.mark.django_db

ENDED = 70  # simulator seconds after placing: 3 s ringing the agent, 5 s the number, 60 s talking

sim, alex = _api_calls.sim, _api_calls.alex  # fixtures


# --- Wrap-up ----------------------------------------------------------------------------------------------------


def wrap(token: str, call_id: int, body: object):
    return Client().post(
        f"{URL}/{call_id}/wrap-up", json.dumps(body), content_type="application/json", headers=bearer(token)
    )


@pytest.fixture
def ended(alex, agent_client, contact, london, sim) -> Call:
    post(alex, {"to": "+447400123456"})
    call = Call.objects.get()
    sim.clock.advance(ENDED)
    poll(agent_client, call)
    call.refresh_from_db()
    assert call.state == Call.State.ENDED
    return call


def test_it_wraps_up_as_the_call_panel_does(alex, ended, sim):
    response = wrap(alex, ended.pk, {"disposition": "Wrong number", "notes": "  They were cross  "})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["disposition"] == "Wrong number" and body["notes"] == "They were cross"
    assert body["wrapped_up_at"] is not None
    assert body["changed"] == ["07400 123456 is now marked do not call."]
    assert sim.calls[ended.vcc_call_id].disposition_code == "Wrong number"
    assert ContactPhone.objects.get(pk=ended.phone_id).do_not_call


def test_a_call_not_ended_is_a_409_in_the_panels_words(alex, contact, london, sim):
    placed = post(alex, {"to": "+447400123456"}).json()

    body = problem(wrap(alex, placed["id"], {"disposition": "Interested"}), 409)

    assert body["detail"] == "Wrap up once the call has ended."
    assert Call.objects.get().notes == ""


@pytest.mark.parametrize("code", ["Nonsense", "Interested"])
def test_an_unknown_or_inactive_disposition_is_refused(alex, ended, code):
    DispositionCode.objects.filter(code="Interested").update(is_active=False)

    assert problem(wrap(alex, ended.pk, {"disposition": code}), 422)["detail"] == "Choose how the call went."
    ended.refresh_from_db()
    assert ended.wrapped_up_at is None


def test_a_vcc_failure_keeps_the_notes_and_is_a_502(alex, ended, sim):
    sim.set_fault("disposition", status=500)

    body = problem(wrap(alex, ended.pk, {"disposition": "Interested", "notes": "Call back Tuesday"}), 502)

    assert "Your notes are saved; send the outcome again." in body["detail"]
    assert body["vcc_status"] == 500 and body["vcc"]  # VCC's own text, as placing's 502 carries it
    ended.refresh_from_db()
    assert ended.notes == "Call back Tuesday" and ended.wrapped_up_at is None
    assert body["call"]["notes"] == "Call back Tuesday"


def test_another_agent_cannot_wrap_up_the_call(ended, other_agent_user):
    problem(wrap(token_for(other_agent_user), ended.pk, {"disposition": "Interested"}), 404)


def test_wrapping_up_needs_calls_write(agent_user, ended):
    token = token_for(agent_user, "calls:read")
    assert "calls:write" in problem(wrap(token, ended.pk, {"disposition": "Interested"}), 403)["detail"]
