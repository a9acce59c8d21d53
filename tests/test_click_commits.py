"""How many commits a click waits for (calls/calling/placing.py): each waits for the disk, so the click's writes
before VCC is asked are one transaction (its row and the number's lock), and its writes after are another (VCC's
answer, the contact's "last called", the number freed, and through the API the answer kept for the key)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import locks
from calls.calling import placing
from calls.models import ApiIdempotentRequest, ApiToken, Call, DialLock, WebhookEndpoint, WebhookEvent
from calls.webhooks import signing
from tests._sim import click, fresh_simulator, only_call, primary

pytestmark = pytest.mark.django_db
URL = "/api/v1/calls"


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def transactions(queries: list[dict]) -> list[list[str]]:
    """The writes of each transaction the captured statements ran (tests run in one: each atomic() is a savepoint),
    as "INSERT calls_call" and the like; a write outside any is a list of its own (its own commit, in production)."""
    out: list[list[str]] = []
    depth = 0
    for query in queries:
        sql = " ".join(query["sql"].split())
        if sql.startswith("SAVEPOINT"):
            if depth == 0:
                out.append([])
            depth += 1
        elif sql.startswith(("RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            depth -= 1
        elif sql.split(" ", 1)[0] in ("INSERT", "UPDATE", "DELETE"):
            verb, rest = sql.split(" ", 1)
            table = rest.removeprefix("INTO ").removeprefix("FROM ").split(" ", 1)[0].strip('"')
            if depth == 0:
                out.append([])
            out[-1].append(f"{verb} {table}")
    return out


def test_a_click_writes_in_two_transactions_one_before_vcc_and_one_after(agent_client, contact, london, sim):
    with CaptureQueriesContext(connection) as captured:
        click(agent_client, primary(contact))

    assert transactions(captured.captured_queries) == [
        ["INSERT calls_call", "INSERT calls_diallock"],
        ["UPDATE calls_call", "UPDATE calls_contact", "DELETE calls_diallock"],
    ]
    assert only_call().state == Call.State.LIVE
    assert not DialLock.objects.exists()


def test_through_the_api_the_key_is_kept_in_the_answers_transaction(agent_user, contact, london, sim):
    token = ApiToken.issue(agent_user, name="test", scopes=["calls:write"])[1]
    ApiToken.objects.update(last_used_at=timezone.now())  # a token's first use notes it, in a commit of its own
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"}

    with CaptureQueriesContext(connection) as captured:
        response = Client().post(URL, json.dumps({"to": "07400 123456"}), "application/json", headers=headers)

    assert response.status_code == 201
    assert transactions(captured.captured_queries) == [
        ["INSERT calls_apiidempotentrequest"],
        ["INSERT calls_call", "INSERT calls_diallock"],
        ["UPDATE calls_call", "UPDATE calls_contact", "DELETE calls_diallock", "UPDATE calls_apiidempotentrequest"],
    ]
    kept = ApiIdempotentRequest.objects.get()
    assert kept.status == 201 and kept.response == response.json()


def test_a_click_whose_number_another_click_holds_leaves_no_row_and_tells_nothing(agent_client, contact, london, sim):
    WebhookEndpoint.objects.create(url="https://hooks.example.com/in", event_types=["*"], secret=signing.new_secret())
    locks.acquire_dial_lock(primary(contact).number, owner="another click")

    response = click(agent_client, primary(contact))

    assert response.status_code == 400
    assert "Someone else is dialling this number right now" in response.content.decode()
    assert not Call.objects.exists() and not WebhookEvent.objects.exists()
    assert DialLock.objects.get().owner == "another click"
    assert sim.calls_placed == 0


def test_a_failed_write_of_the_answer_is_rolled_back_and_written_again_whole(
    agent_client, contact, london, sim, monkeypatch
):
    noted = placing.Contact.objects.note_call
    seen = []

    def note_once_failing(call):
        if not seen:
            seen.append(Call.objects.get(pk=call.pk).state)  # the answer, written before it in the transaction
            raise DatabaseError("the connection dropped")
        return noted(call)

    async def between_tries(seconds: float) -> None:
        seen.append(await sync_to_async(lambda: only_call().state)())  # what the failed try left: nothing

    monkeypatch.setattr(placing.Contact.objects, "note_call", note_once_failing)
    monkeypatch.setattr(placing, "_sleep", between_tries)

    click(agent_client, primary(contact))

    call = only_call()
    assert seen == [Call.State.LIVE, Call.State.REQUESTED]
    assert call.state == Call.State.LIVE and call.contact.last_call_id == call.pk
    assert not DialLock.objects.exists()
