"""The outbox (calls/webhooks/outbox.py, changes.py): every path that changes a call or a contact writes its events
in the change's transaction, with the API's resource as data; nothing is written without an endpoint; the click's
cost grows by its event INSERTs only."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.api.calls import as_json, resource
from calls.calling import events as applying
from calls.models import Call, Contact, ContactImport, ContactPhone, WebhookEndpoint, WebhookEvent
from calls.webhooks import changes, outbox, signing
from tests._jobs import queued
from tests._sim import click, fresh_simulator, only_call, poll, primary
from tests._vcc_events import ANSWERED, foreign, stored
from tests.test_contacts import phone_data
from tests.test_import import GOOD, confirm, started

pytestmark = pytest.mark.django_db
CONNECTED, ENDED = 9, 70  # simulator seconds after placing (tests/test_call_panel.py)


@pytest.fixture
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture
def hook(db) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        url="https://hooks.example.com/in", event_types=["*"], secret=signing.new_secret()
    )


def sent(subject: str | None = None) -> list[str]:
    events = WebhookEvent.objects.order_by("id")
    return list((events.filter(subject=subject) if subject else events).values_list("type", flat=True))


def last(type: str) -> dict:
    return WebhookEvent.objects.filter(type=type).latest("id").payload


# --- Calls --------------------------------------------------------------------------------------------------------


def test_a_call_tells_of_each_step_with_the_apis_call_resource(hook, agent_client, contact, london, sim, settings):
    settings.CONTACT_IMPORT_BACKGROUND = False
    click(agent_client, primary(contact))
    call = only_call()
    subject = f"call:{call.pk}"
    assert sent(subject) == ["call.requested", "call.placed"]

    sim.clock.advance(CONNECTED)
    poll(agent_client, call)
    sim.clock.advance(ENDED - CONNECTED)
    poll(agent_client, call)
    from calls.models import DispositionCode

    agent_client.post(
        f"/calls/{call.pk}/wrapup/",
        {"disposition": DispositionCode.objects.get(code="Do not call").pk, "notes": ""},
        headers={"HX-Request": "true"},
    )

    assert sent(subject) == [
        "call.requested",
        "call.placed",
        "call.connected",
        "call.ended",
        "call.wrapped_up",
    ]
    call = Call.objects.select_related("created_by", "from_agent", "to_agent", "answered_by").get()
    payload = last("call.wrapped_up")
    assert payload["data"] == as_json(resource(call))
    assert payload["type"] == "call.wrapped_up" and payload["id"].startswith("msg_")
    assert payload["id"] == WebhookEvent.objects.filter(type="call.wrapped_up").get().msg_id
    # The "Do not call" disposition marks the contact: it changed, and its do-not-call with it.
    assert sent(f"contact:{contact.pk}") == ["contact.updated", "contact.do_not_call_changed"]
    assert last("contact.do_not_call_changed")["data"]["do_not_call"] is True


def test_a_look_at_vcc_that_started_before_another_recorded_the_connection_tells_of_it_once(
    hook, agent_client, contact, london, sim
):
    """The follower loaded the call, then asked VCC; meanwhile another look (the panel's poll here, VCC's events in
    life) recorded the connection. The follower's answer must not announce it again (a second webhook-id)."""
    from calls.calling import following
    from calls.vcc import get_client

    click(agent_client, primary(contact))
    stale = only_call()  # as the follower loaded it, before VCC answered
    sim.clock.advance(CONNECTED)
    poll(agent_client, stale)  # the other look records the connection
    with get_client() as client:
        detail = client.get_call(stale.vcc_call_id)

    following._record_follow(stale, detail=detail, error=None, now=timezone.now())

    assert sent(f"call:{stale.pk}") == ["call.requested", "call.placed", "call.connected"]
    assert stale.connected_at == Call.objects.get().connected_at  # read again, not written again


def test_a_refused_call_tells_it_failed(hook, agent_client, contact, london, sim):
    sim.set_fault("place_call", status=409)
    click(agent_client, primary(contact))
    assert sent() == ["call.requested", "call.failed"]
    assert last("call.failed")["data"]["state"] == "failed"


def test_a_supervisor_closing_a_stuck_call_ends_it(hook, supervisor_client, agent_client, contact, london, sim):
    click(agent_client, primary(contact))
    call = only_call()
    supervisor_client.post(f"/calls/{call.pk}/close/", {"reason": "The agent's phone died mid-call"})
    assert sent()[-1] == "call.ended"


def test_a_call_vcc_tells_of_is_placed_and_connected(hook, agent_user, contact):
    number = contact.phones.first().number
    agent = agent_user.agent.display_id
    party = {"role": "Agent", "agentDisplayId": agent}  # the agent answered (the caller's channel: queued, ringing)
    foreign("channel.connected", "in-1", agent=agent, number=number, direction="Inbound", party=party)
    applying.process_pending()
    call = Call.objects.get(vcc_call_id="in-1")
    assert sent(f"call:{call.pk}") == ["call.placed", "call.connected"]


def test_a_connection_told_after_the_calls_end_tells_receivers_of_its_talk_time(hook, sim, placed):
    """VCC delivering `connected` again after the `disconnected` behind it (calls/calling/events.py): the call did
    talk, and a receiver that had `call.ended` with no talk time hears of the connection with the call as it is now."""
    start = timezone.now() - timedelta(minutes=5)
    stored("channel.disconnected.v1", placed, at=start + timedelta(seconds=8), party="external", result=ANSWERED)
    applying.process_pending()
    assert sent(f"call:{placed.pk}")[-1] == "call.ended"
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=2), party="external")

    assert applying.process_pending().applied == 1

    assert sent(f"call:{placed.pk}")[-2:] == ["call.ended", "call.connected"]
    data = last("call.connected")["data"]
    assert data["state"] == "ended" and data["duration_seconds"] == 6 and data["outcome"] == "answered"


# --- Contacts -----------------------------------------------------------------------------------------------------


def test_the_contact_pages_tell_of_create_change_and_delete(hook, agent_client, supervisor_client):
    data = {"name": "Ada Lovelace"} | phone_data({"label": "work", "number": "020 7946 0100", "is_primary": "on"})
    agent_client.post("/contacts/new/", data)
    contact = Contact.objects.get(name="Ada Lovelace")
    subject = f"contact:{contact.pk}"
    assert sent(subject) == ["contact.created"]
    assert last("contact.created")["data"]["phones"][0]["number"] == "+442079460100"

    rows = [{"id": str(p.pk), "label": p.label, "number": p.number, "is_primary": "on"} for p in contact.phones.all()]
    agent_client.post(f"/contacts/{contact.pk}/edit/", {"name": "Ada King"} | phone_data(*rows, initial=1))
    assert sent(subject)[1:] == ["contact.updated"]
    assert last("contact.updated")["data"]["name"] == "Ada King"

    rows[0]["do_not_call"] = "on"
    agent_client.post(f"/contacts/{contact.pk}/edit/", {"name": "Ada King"} | phone_data(*rows, initial=1))
    assert sent(subject)[2:] == ["contact.updated", "contact.do_not_call_changed"]

    supervisor_client.post(f"/contacts/{contact.pk}/delete/")
    assert sent(subject)[4:] == ["contact.deleted"]
    assert last("contact.deleted")["data"]["name"] == "Ada King"


def test_the_api_tells_of_create_change_and_delete(hook):
    from tests.conftest import create_user
    from tests.test_api_contacts import Api

    api = Api(create_user("api-supervisor", "supervisor"))
    made = api.send("post", "/api/v1/contacts", {"name": "Grace", "phones": [{"number": "+442079460111"}]}).json()
    api.send("patch", f"/api/v1/contacts/{made['id']}", {"do_not_call": True})
    api.client.delete(f"/api/v1/contacts/{made['id']}")

    assert sent(f"contact:{made['id']}") == [
        "contact.created",
        "contact.updated",
        "contact.do_not_call_changed",
        "contact.deleted",
    ]
    assert last("contact.created")["data"] == made  # the API's own answer


def test_an_import_tells_of_every_contact_it_creates_in_one_insert(hook, agent_client, settings):
    settings.CONTACT_IMPORT_BACKGROUND = False
    imp = started(agent_client, GOOD)
    with CaptureQueriesContext(connection) as queries:
        confirm(agent_client, imp)
    assert ContactImport.objects.get(pk=imp.pk).status == "done"

    assert sorted(sent()) == ["contact.created", "contact.created", "contact.do_not_call_changed"]
    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "calls_webhookevent"')]
    assert len(inserts) == 1
    babbage = Contact.objects.get(name="Charles Babbage")
    assert sent(f"contact:{babbage.pk}") == ["contact.created", "contact.do_not_call_changed"]


def _update_all(client, contacts: int) -> list[str]:
    """An import of one row per saved contact (matched by email), each written as an update: the SQL it ran."""
    lines = "".join(f"Renamed {i},c{i}@example.com,+4420794602{i:02}\n" for i in range(contacts))
    imp = started(client, "Name,Email,Phone\n" + lines)
    decisions = {f"row{i + 2}": "update" for i in range(contacts)}
    with CaptureQueriesContext(connection) as queries:
        confirm(client, imp, **decisions)
    assert ContactImport.objects.get(pk=imp.pk).status == "done"
    return [q["sql"] for q in queries.captured_queries]


def test_an_import_tells_of_every_contact_it_updates_and_its_events_cost_no_statement_a_row(
    hook, agent_client, settings
):
    settings.CONTACT_IMPORT_BACKGROUND = False
    made = [Contact.objects.create(name=f"Person {i}", email=f"c{i}@example.com") for i in range(6)]
    Contact.objects.filter(pk=made[0].pk).update(do_not_call=True)
    few = _update_all(agent_client, 2)
    assert [sent(f"contact:{c.pk}") for c in made[:2]] == [["contact.updated"], ["contact.updated"]]
    assert last("contact.updated")["data"]["name"] in {"Renamed 0", "Renamed 1"}
    WebhookEvent.objects.all().delete()

    many = _update_all(agent_client, 6)

    # One each; no contact.do_not_call_changed: an added number unmarked changes nothing of do-not-call, and an
    # update never clears the flag Person 0 has.
    assert sorted(sent()) == ["contact.updated"] * 6
    assert Contact.objects.get(pk=made[0].pk).do_not_call

    def webhook_statements(sqls: list[str]) -> int:
        inserts = [q for q in sqls if q.startswith('INSERT INTO "calls_webhookevent"')]
        assert len(inserts) == 1  # the batch's events in one INSERT
        return len([q for q in sqls if "calls_contact" in q and q.startswith("SELECT")])

    # Reading the contacts for their events happens once a batch, not once a row: 4 more rows, no more reads of
    # contacts than the rows' own (the update reads each contact's numbers).
    assert webhook_statements(many) - webhook_statements(few) <= 4


def test_the_django_admin_tells_of_changes_too(hook, admin_role_user, contact):
    from django.test import Client

    client = Client()
    client.force_login(admin_role_user)
    phone = primary(contact)
    response = client.post(
        f"/admin/calls/contactphone/{phone.pk}/change/",
        {"contact": contact.pk, "number": phone.number, "label": phone.label, "is_primary": "on", "do_not_call": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert sent(f"contact:{contact.pk}") == ["contact.updated", "contact.do_not_call_changed"]

    client.post(f"/admin/calls/contact/{contact.pk}/delete/", {"post": "yes"})
    assert sent(f"contact:{contact.pk}")[-1] == "contact.deleted"


# --- The outbox ---------------------------------------------------------------------------------------------------


def test_without_an_endpoint_nothing_is_written(agent_client, contact, london, sim):
    click(agent_client, primary(contact))
    agent_client.post("/contacts/new/", {"name": "Ada"} | phone_data())
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: SQLite locks the whole database")
def test_a_change_of_a_contacts_number_locks_the_contact_so_its_events_keep_the_commit_order(hook):
    """Two changes of one contact's numbers at once (neither updates the contact's row): the second waits for the
    first to commit before its event is written, so the ids of the contact's events follow their commit order."""
    import psycopg

    from tests._workers import database_url

    contact = Contact.objects.create(name="Ada")
    with transaction.atomic(), changes.contact_change(contact.pk):
        ContactPhone.objects.create(contact=contact, number="+442079460111", do_not_call=True)
        other = psycopg.connect(database_url(connection.settings_dict), autocommit=True)  # another request's
        with other, pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("SELECT 1 FROM calls_contact WHERE id = %s FOR UPDATE NOWAIT", [contact.pk])
    assert sent(f"contact:{contact.pk}") == ["contact.updated", "contact.do_not_call_changed"]


@pytest.mark.django_db(transaction=True)
def test_a_change_that_rolls_back_writes_no_event_and_one_that_commits_does(jobs):
    WebhookEndpoint.objects.create(url="https://hooks.example.com/in", event_types=["*"], secret="whsec_x")
    contact = Contact.objects.create(name="Ada")

    with pytest.raises(RuntimeError), transaction.atomic(), changes.contact_change(contact.pk):
        Contact.objects.filter(pk=contact.pk).update(do_not_call=True)
        raise RuntimeError("the change fails after its event was written")
    assert not WebhookEvent.objects.exists()
    assert not queued(jobs, "dispatch_webhooks")

    with changes.contact_change(contact.pk):
        Contact.objects.filter(pk=contact.pk).update(do_not_call=True)
    assert sent() == ["contact.updated", "contact.do_not_call_changed"]
    assert not queued(jobs)  # writing is all a change does: the fan-out, watching, finds its events


def test_an_endpoint_made_in_another_process_is_seen_within_the_ttl(monkeypatch):
    import time

    assert not outbox.wanted()
    WebhookEndpoint.objects.bulk_create([WebhookEndpoint(url="https://a.example.com/", secret="whsec_x")])  # no signal
    assert not outbox.wanted()
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + outbox.ENDPOINTS_TTL)
    assert outbox.wanted()


def test_the_click_costs_only_its_two_event_inserts_more_with_three_endpoints(agent_client, contact, london, sim):
    agent_client.get(f"/contacts/{contact.pk}/")  # the session is cached, as in production
    for n in range(3):
        WebhookEndpoint.objects.create(url=f"https://h{n}.example.com/", event_types=["*"], secret="whsec_x")

    with CaptureQueriesContext(connection) as queries:
        response = click(agent_client, primary(contact))

    sql = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert 'data-call-state="live"' in response.content.decode()
    inserts = [s for s in sql if s.startswith('INSERT INTO "calls_webhookevent"')]
    assert len(inserts) == 2  # call.requested, call.placed
    assert len(sql) <= 12 + 2, "\n".join(sql)  # tests/test_click_refusals.py: at most twelve without webhooks
    assert json.loads(json.dumps(last("call.placed")))["data"]["state"] == "live"
    assert timezone.now() - WebhookEvent.objects.earliest("id").created_at < timedelta(minutes=1)


def test_a_click_vcc_never_answered_is_not_confirmed(hook, agent_user):
    from calls.calling.following import ABANDONED_AFTER, close_abandoned_clicks

    call = Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456")
    close_abandoned_clicks(now=call.requested_at + ABANDONED_AFTER + timedelta(seconds=1))
    assert sent(f"call:{call.pk}") == ["call.not_confirmed"]


@pytest.mark.parametrize(
    ("before", "after", "types"),
    [
        (None, ("requested", False, False, False), ["call.requested"]),
        (None, ("live", False, False, False), ["call.placed"]),  # a call VCC's events tell of
        (("requested", False, False, False), ("failed", False, False, False), ["call.failed"]),
        (("requested", False, False, False), ("unconfirmed", False, False, False), ["call.not_confirmed"]),
        (("live", False, False, False), ("ended", True, True, False), ["call.connected", "call.ended"]),
        (("live", False, False, False), ("live", False, False, False), []),  # nothing a receiver is told of
        (("ended", True, True, False), ("ended", True, True, True), ["call.wrapped_up"]),
    ],
)
def test_which_events_a_change_of_a_call_makes(before, after, types):
    assert changes.call_event_types(before, after) == types


def test_the_django_admins_contact_form_tells_of_the_change(hook, admin_role_user, contact):
    from django.test import Client

    client = Client()
    client.force_login(admin_role_user)
    phones = list(contact.phones.order_by("pk"))
    data = {
        "name": "Grace Brewster Hopper",
        "company": contact.company,
        "email": contact.email,
        "notes": "",
        "do_not_call": "on",
        "phones-TOTAL_FORMS": str(len(phones)),
        "phones-INITIAL_FORMS": str(len(phones)),
        "phones-MIN_NUM_FORMS": "0",
        "phones-MAX_NUM_FORMS": "1000",
    }
    for i, phone in enumerate(phones):
        data |= {
            f"phones-{i}-id": str(phone.pk),
            f"phones-{i}-contact": str(contact.pk),
            f"phones-{i}-number": phone.number,
            f"phones-{i}-label": phone.label,
            **({f"phones-{i}-is_primary": "on"} if phone.is_primary else {}),
        }
    response = client.post(f"/admin/calls/contact/{contact.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]

    assert sent(f"contact:{contact.pk}") == ["contact.updated", "contact.do_not_call_changed"]
    assert last("contact.updated")["data"]["name"] == "Grace Brewster Hopper"


def test_the_followers_round_reads_the_calls_agents_and_clickers_with_the_calls(
    hook, agent_client, supervisor_client, contact, london, sim
):
    """A round that sees calls connect writes their call.connected with the agents and clickers it loaded with the
    calls, not with a query for each of them a call."""
    from asgiref.sync import async_to_sync

    from calls.calling import following

    click(agent_client, primary(contact))
    other = Contact.objects.create(name="Ada Lovelace")
    click(supervisor_client, ContactPhone.objects.create(contact=other, number="+442079460999", is_primary=True))
    sim.clock.advance(CONNECTED)
    Call.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))  # both due a look
    with CaptureQueriesContext(connection) as queries:
        assert async_to_sync(following.follow_due)(close_abandoned=False).asked == 2

    for call in Call.objects.select_related("created_by"):
        connected = WebhookEvent.objects.get(subject=f"call:{call.pk}", type="call.connected").payload
        assert connected["data"]["placed_by"] == call.created_by.username
    one_by_one = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and any(f'FROM "{t}" WHERE' in q["sql"] for t in ("auth_user", "calls_agent"))
    ]
    assert one_by_one == []
