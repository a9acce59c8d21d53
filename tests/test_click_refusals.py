"""Clicks refused or kept safe: who may click, a click twice, busy numbers, malformed clicks, a failing database."""

from __future__ import annotations

import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from calls import calling, locks
from calls.models import Agent, Call, Contact, ContactPhone, DialLock
from calls.roles import SUPERVISOR
from tests import _click
from tests._sim import assert_refused, click, only_call, primary, shown
from vccsim.transport import sandbox_transport

pytestmark = pytest.mark.django_db

sim = _click.sim  # fixtures


# --- Who may click, and how --------------------------------------------------------------------------


def test_a_user_without_an_agent_is_told_why(client, make_user, contact, london, sim):
    client.force_login(make_user("noagent", SUPERVISOR))

    assert_refused(click(client, primary(contact)), sim, "You have no active VCC agent")


def test_an_inactive_agent_is_told_why(agent_client, agent_user, contact, london, sim):
    Agent.objects.filter(user=agent_user).update(is_active=False)

    assert_refused(click(agent_client, primary(contact)), sim, "You have no active VCC agent")


def test_it_sends_anonymous_users_to_login(client, contact, sim):
    response = click(client, primary(contact))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert not Call.objects.exists()


def test_it_rejects_get(agent_client, contact):
    assert agent_client.get(f"/contacts/{contact.pk}/call/").status_code == 405


@pytest.mark.parametrize("request_id", ["", "not-a-uuid"])
def test_it_rejects_a_missing_or_invalid_request_id(agent_client, contact, sim, request_id):
    phone = primary(contact)
    response = agent_client.post(
        f"/contacts/{contact.pk}/call/",
        {"call": f"me:{phone.pk}", "request_id": request_id},
        headers={"HX-Request": "true", "HX-Target": "dialer"},
    )

    assert response.status_code == 400
    assert not Call.objects.exists()
    assert sim.calls_placed == 0


@pytest.mark.parametrize("choice", ["", "me:", "fax:1", "me:abc"])
def test_it_rejects_a_malformed_choice(agent_client, contact, choice):
    response = agent_client.post(f"/contacts/{contact.pk}/call/", {"call": choice, "request_id": str(uuid.uuid4())})

    assert response.status_code == 400
    assert not Call.objects.exists()


def test_it_rejects_another_contacts_number(agent_client, contact, sim):
    other = Contact.objects.create(name="Someone else")

    response = agent_client.post(
        f"/contacts/{other.pk}/call/",
        {"call": f"me:{primary(contact).pk}", "request_id": str(uuid.uuid4())},
    )

    assert response.status_code == 404
    assert not Call.objects.exists()


def test_it_refuses_someone_elses_request_id(agent_client, other_agent_user, contact, london, sim):
    request_id = str(uuid.uuid4())
    click(agent_client, primary(contact), request_id=request_id)
    agent_client.force_login(other_agent_user)

    response = click(agent_client, primary(contact), request_id=request_id)

    assert response.status_code < 500
    assert shown(response, "That click belongs to someone else")
    assert Call.objects.get().created_by.username == "alex"
    assert sim.calls_placed == 1


# --- Double submission and numbers already on a call -----------------------------------------------


@pytest.mark.parametrize("target", ["dialer", "list-call", None])
def test_the_same_click_twice_places_one_call(agent_client, contact, london, sim, target):
    request_id = str(uuid.uuid4())

    first = click(agent_client, primary(contact), request_id=request_id, target=target)
    second = click(agent_client, primary(contact), request_id=request_id, target=target)

    call = only_call()
    assert call.state == Call.State.LIVE
    assert sim.calls_placed == 1
    assert first.status_code == second.status_code
    if target:
        assert f'id="call-panel-{call.pk}"' in second.content.decode()
        assert 'data-call-state="live"' in second.content.decode()


def test_a_page_kept_from_before_its_click_does_not_answer_another_number_with_that_call(
    agent_client, contact, london, sim
):
    """Without JavaScript a click loads the page again; Back shows the page before it, with the id that placed the
    call: its click on another number must not answer with the first call as if it were this one."""
    request_id = str(uuid.uuid4())
    click(agent_client, primary(contact), request_id=request_id, target=None)
    sim.clock.advance(70)  # that call has ended

    response = click(agent_client, contact.phones.get(is_primary=False), request_id=request_id, target=None)

    assert response.status_code == 400
    assert response.content.decode() == (
        "This page is out of date: it already placed a call to another number. Reload it and click again."
    )
    assert only_call().to_number == primary(contact).number and sim.calls_placed == 1


def test_a_conflict_on_writing_the_row_that_is_not_the_same_click_again_is_raised_not_hidden(
    agent_client, contact, london, sim, monkeypatch
):
    def conflict(self):
        raise IntegrityError("insert or update on table violates a foreign key constraint")

    monkeypatch.setattr(Call, "insert", conflict)

    with pytest.raises(IntegrityError):
        click(agent_client, primary(contact))

    assert not Call.objects.exists()
    assert sim.calls_placed == 0


def test_a_second_person_cannot_call_a_number_on_a_live_call(agent_client, other_agent_user, contact, london, sim):
    click(agent_client, primary(contact))
    agent_client.force_login(other_agent_user)

    response = click(agent_client, primary(contact))

    assert response.status_code == 400
    assert response.content.decode() == "Alex Morgan is on a call with this number now. Try again when it ends."
    assert not Call.objects.filter(created_by=other_agent_user).exists()
    assert sim.calls_placed == 1


def test_a_second_person_cannot_call_another_number_of_a_contact_on_a_live_call(
    agent_client, other_agent_user, contact, london, sim
):
    """Alex is calling Grace's mobile; Tom clicks her work number: one person is not called by two at once."""
    click(agent_client, primary(contact))
    agent_client.force_login(other_agent_user)
    work = contact.phones.get(is_primary=False)

    response = click(agent_client, work)

    assert response.status_code == 400
    assert response.content.decode() == (
        "Alex Morgan is on a call with this contact now, on another of their numbers. Try again when it ends."
    )
    assert not Call.objects.filter(created_by=other_agent_user).exists()
    assert sim.calls_placed == 1
    sim.clock.advance(70)  # the call ends: Grace may be called again
    assert click(agent_client, work).status_code == 200
    assert Call.objects.get(created_by=other_agent_user).to_number == work.number


def test_a_second_person_can_call_once_the_first_call_has_ended(
    agent_client, agent_user, other_agent_user, contact, london, sim
):
    click(agent_client, primary(contact))
    agent_client.force_login(other_agent_user)
    sim.clock.advance(70)  # 3 s ringing the agent, 5 s the number, 60 s talking

    click(agent_client, primary(contact))

    assert Call.objects.get(created_by=agent_user).state == Call.State.ENDED
    second = Call.objects.get(created_by=other_agent_user)
    assert second.state == Call.State.LIVE
    assert second.request_body["from"]["agentId"] == "1003"
    assert sim.calls_placed == 2


def test_a_live_call_whose_caller_was_deleted_still_holds_the_number(
    agent_client, agent_user, other_agent_user, contact, london, sim
):
    click(agent_client, primary(contact))
    agent_user.delete()
    agent_client.force_login(other_agent_user)

    response = click(agent_client, primary(contact))

    assert response.status_code == 400
    assert response.content.decode() == "Someone is on a call with this number now. Try again when it ends."
    assert not Call.objects.filter(created_by=other_agent_user).exists()
    assert sim.calls_placed == 1


def test_a_number_being_dialled_by_another_click_is_refused(agent_client, contact, london, sim):
    locks.acquire_dial_lock(primary(contact).number, owner=str(uuid.uuid4()))  # another click is asking VCC now

    assert_refused(click(agent_client, primary(contact)), sim, "Someone else is dialling this number right now")


def test_a_contact_being_dialled_on_another_number_by_another_click_is_refused(
    agent_client, other_agent_user, contact, london, sim
):
    """Alex's click on Grace's mobile and Tom's on her work number at the same moment: each is checked before the
    other's row is written (no live call found), and their numbers' locks differ; both went, and Grace was called by
    two agents at once. The click holds the contact too while VCC is asked."""
    work = contact.phones.get(is_primary=False)
    click(agent_client, primary(contact))  # placed: its row, then its locks freed
    Call.objects.update(state=Call.State.ENDED)
    locks.acquire_dial_lock(f"contact:{contact.pk}", owner=str(uuid.uuid4()))  # another click is asking VCC now
    agent_client.force_login(other_agent_user)

    response = click(agent_client, work)

    assert response.status_code == 400
    assert response.content.decode() == (
        "This contact is being dialled right now, on another of their numbers. Try again in a moment."
    )
    assert not Call.objects.filter(created_by=other_agent_user).exists()
    assert not DialLock.objects.filter(number=work.number).exists()  # rolled back with the row
    assert sim.calls_placed == 1


def test_the_number_and_the_contact_are_free_again_after_a_click(agent_client, contact, london, sim):
    click(agent_client, primary(contact))
    click(agent_client, contact.phones.get(is_primary=False))  # refused: the agent's phone is on the first call

    assert not DialLock.objects.exists()
    assert sim.calls_placed == 1


def test_the_number_is_free_again_after_a_click(agent_client, contact, london, sim):
    click(agent_client, primary(contact))

    assert cache.get(f"dialling:{primary(contact).number}") is None


# --- Malformed clicks answer 400 with a sentence, never 500 ------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("call", "me:²", "Pick a number to call."),
        ("groups", "²", "Pick from the list"),
        ("clid", "²", "Pick a caller ID from the list."),
        ("request_id", "not-a-uuid", "This page is out of date"),
        ("dnc_reason_{phone}", "because\x00", "Null characters are not allowed."),
    ],
)
def test_a_malformed_click_is_a_400_with_a_sentence(supervisor_client, contact, london, sim, field, value, words):
    phone = primary(contact)
    via = "group" if field == "groups" else "me"
    data = {
        "call": f"{via}:{phone.pk}",
        "groups": [],
        "request_id": str(uuid.uuid4()),
        field.format(phone=phone.pk): value,
    }

    response = supervisor_client.post(f"/contacts/{contact.pk}/call/", data, headers={"HX-Request": "true"})

    assert response.status_code == 400
    assert words in response.content.decode()
    assert not Call.objects.exists()
    assert sim.calls_placed == 0


def test_a_click_takes_the_number_while_vcc_is_asked(agent_client, contact, london, sim, settings):
    """The dialling lock is held during the request to VCC: another click on the number would be refused."""
    probes: list[bool] = []
    number = primary(contact).number

    class ProbingTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and request.url.path.lower().endswith("/calls/"):
                probes.append(await sync_to_async(locks.acquire_dial_lock)(number, owner="probe"))
            return await sandbox_transport().handle_async_request(request)

    settings.VCC_TRANSPORT = "tests.test_click_refusals.probing_transport"
    global _probing
    _probing = ProbingTransport()

    click(agent_client, primary(contact))

    assert probes == [False]  # taken by the click
    assert locks.acquire_dial_lock(number, owner="after")  # and freed once VCC answered


_probing = None


def probing_transport():
    return _probing


def test_vccs_answer_is_logged_then_written_again_when_the_database_fails(
    agent_client, contact, london, sim, monkeypatch, caplog
):
    """If the database goes away after VCC placed the call, the id is in the log with our click id, and kept."""
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    monkeypatch.setattr(calling.placing, "_sleep", no_wait)
    real = Call.record_placed
    failures = [DatabaseError("server closed the connection unexpectedly")] * 2

    def flaky(self, **kwargs):
        if failures:
            raise failures.pop()
        return real(self, **kwargs)

    monkeypatch.setattr(Call, "record_placed", flaky)

    with caplog.at_level("INFO", logger="calls.calling"):
        click(agent_client, primary(contact))

    call = only_call()
    assert call.state == Call.State.LIVE
    assert call.vcc_call_id in sim.calls
    assert len(sleeps) == 2
    logged = [r.getMessage() for r in caplog.records if "VCC placed call" in r.getMessage()]
    assert logged == [f"click {call.request_id} (call {call.pk}): VCC placed call {call.vcc_call_id}"]


def test_vccs_call_id_is_logged_before_any_write_so_a_database_gone_for_good_loses_nothing(
    agent_client, contact, london, sim, monkeypatch, caplog
):
    async def no_wait(seconds: float) -> None:
        pass

    monkeypatch.setattr(calling.placing, "_sleep", no_wait)

    def gone(self, **kwargs):
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(Call, "record_placed", gone)

    with caplog.at_level("INFO", logger="calls.calling"), pytest.raises(DatabaseError):
        click(agent_client, primary(contact))

    (placed,) = sim.calls
    messages = [r.getMessage() for r in caplog.records if r.name == "calls.calling"]
    first_write = next(i for i, m in enumerate(messages) if "writing VCC's answer failed" in m)
    said = [i for i, m in enumerate(messages) if m.endswith(f"VCC placed call {placed}")]
    assert said and said[0] < first_write  # in the log with our click id before the database was asked
    assert str(only_call().request_id) in messages[said[0]]


def test_the_click_costs_at_most_twelve_queries(agent_client, contact, london, sim):
    agent_client.get(f"/contacts/{contact.pk}/")  # the session is cached, as in production
    phone = primary(contact)

    with CaptureQueriesContext(connection) as queries:
        response = click(agent_client, phone)

    # The test's own transaction turns the click's transaction into a savepoint: those statements are not the click's.
    sql = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(sql) <= 12, "\n".join(sql)
    assert 'data-call-state="live"' in response.content.decode()


def test_a_click_notes_the_contacts_last_call(agent_client, contact, london, sim):
    click(agent_client, primary(contact))

    contact.refresh_from_db()
    call = only_call()
    assert contact.last_call_id == call.pk
    assert contact.last_called_at == call.requested_at


def test_a_click_while_my_own_phone_is_on_a_call_is_refused_with_no_row(agent_client, agent_user, contact, sim):
    first = click(agent_client, primary(contact))
    assert first.status_code == 200
    other = Contact.objects.create(name="Someone Else")
    phone = ContactPhone.objects.create(contact=other, number="+442079460999", is_primary=True)

    response = click(agent_client, phone)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "You are on a call now" in response.content.decode()
    assert Call.objects.count() == 1  # only the first click's row: a refusal is not a failed call
    assert sim.calls_placed == 1


def test_a_click_refused_for_a_call_vcc_could_not_be_asked_about_says_so(agent_client, contact, sim):
    """The caller's last call still shows as live and VCC fails the look that would tell whether it has ended: the
    refusal says that VCC could not be asked, and what to do, not that they are on a call (it may have ended)."""
    click(agent_client, primary(contact))
    sim.set_fault("get_call", status=503, count=5)
    other = Contact.objects.create(name="Someone Else")
    phone = ContactPhone.objects.create(contact=other, number="+442079460999", is_primary=True)

    response = click(agent_client, phone)

    assert response.status_code == 400
    text = response.content.decode()
    assert text.startswith("Your last call still shows as live. Couldn't get the latest status from VCC: ")
    assert "VCC is having a problem; try again in a moment." in text
    assert sim.calls_placed == 1
