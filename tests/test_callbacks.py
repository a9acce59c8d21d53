"""Callbacks (calls/callbacks.py): promised at a wrap-up (panel, bar, API), kept by a later call, closed by hand,
listed on the home page, /callbacks/ and the contact's page, announced once when due, in a subject's data."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.utils import timezone

from calls import callbacks, tasks
from calls.calling import common
from calls.models import (
    Agent,
    AgentGroup,
    ApiToken,
    AuditEntry,
    Call,
    Callback,
    Contact,
    DispositionCode,
    WebhookEndpoint,
    WebhookEvent,
)
from calls.privacy import subject
from calls.roles import AGENT
from calls.webhooks import outbox
from tests._calls import make_call, promised_at
from tests._sim import HTMX, fresh_simulator, place_call, poll

pytestmark = pytest.mark.django_db

ENDED = 70  # simulator seconds after placing: the default outcome talks for 60 s


def at(hours: float, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(hours=hours)


def a_call(user, contact: Contact, *, minutes_ago: int = 5) -> Call:
    return make_call(
        user=user,
        agent=Agent.objects.get(user=user),
        contact=contact,
        phone=contact.phones.get(is_primary=True),
        at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def promised(user, contact: Contact, *, hours: float, group: AgentGroup | None = None, note: str = "") -> Callback:
    """A callback promised an hour ago on a call of user's, due `hours` from now (negative: overdue)."""
    call = a_call(user, contact, minutes_ago=60)
    due = at(hours)
    callback = callbacks.promise(
        call=call, user=user, due_at=due, to_group=group, note=note, now=due - timedelta(hours=1)
    )
    return promised_at(callback, call.ended_at)


# --- The use case -------------------------------------------------------------------------------------------------


def test_a_promise_to_me_is_the_persons_with_the_call_and_number(agent_user, contact):
    call = a_call(agent_user, contact)
    now = timezone.now()

    callback = callbacks.promise(call=call, user=agent_user, due_at=at(3, now), note="After lunch", now=now)

    assert callback.assigned_to == agent_user and callback.group is None
    assert callback.contact == contact and callback.phone_id == call.phone_id
    assert callback.promised_on == call and callback.created_by == agent_user
    assert callback.state == Callback.State.OPEN and callback.note == "After lunch"


@pytest.mark.parametrize(
    ("hours", "words"),
    [(-0.1, "still to come"), (0, "still to come"), (24 * 91, "within 90 days")],
)
def test_a_time_past_or_too_far_ahead_is_refused(agent_user, contact, hours, words):
    now = timezone.now()
    with pytest.raises(ValidationError, match=words):
        callbacks.promise(call=a_call(agent_user, contact), user=agent_user, due_at=at(hours, now), now=now)
    assert not Callback.objects.exists()


def test_an_agent_may_promise_to_their_own_groups_only(agent_user, contact, sales, support):
    now = timezone.now()
    call = a_call(agent_user, contact)
    with pytest.raises(ValidationError, match="one of your groups"):
        callbacks.promise(call=call, user=agent_user, due_at=at(2, now), to_group=support, now=now)

    callback = callbacks.promise(call=call, user=agent_user, due_at=at(2, now), to_group=sales, now=now)

    assert callback.group == sales and callback.assigned_to is None


def test_a_supervisor_may_promise_to_any_group(supervisor_user, contact, support):
    now = timezone.now()
    call = a_call(supervisor_user, contact)
    callback = callbacks.promise(call=call, user=supervisor_user, due_at=at(2, now), to_group=support, now=now)
    assert callback.group == support


def test_wrapping_up_again_moves_the_promise_rather_than_adding_one(agent_user, contact):
    now = timezone.now()
    call = a_call(agent_user, contact)
    first = callbacks.promise(call=call, user=agent_user, due_at=at(2, now), now=now)
    Callback.objects.filter(pk=first.pk).update(announced_at=now)

    again = callbacks.promise(call=call, user=agent_user, due_at=at(5, now), note="Later", now=now)

    assert again.pk == first.pk
    assert Callback.objects.get().due_at == at(5, now) and Callback.objects.get().announced_at is None


def test_a_later_call_by_the_person_keeps_their_due_callback(agent_user, contact):
    now = timezone.now()
    callback = promised(agent_user, contact, hours=-1)
    later = a_call(agent_user, contact, minutes_ago=1)

    assert callbacks.keep(later, now) == 1

    callback.refresh_from_db()
    assert callback.state == Callback.State.DONE and callback.done_by_call == later and callback.done_at == now


def test_a_call_by_a_member_of_the_group_keeps_the_groups_callback(agent_user, other_agent_user, contact, sales):
    callback = promised(agent_user, contact, hours=-1, group=sales)
    assert callbacks.keep(a_call(other_agent_user, contact, minutes_ago=1), timezone.now()) == 1
    callback.refresh_from_db()
    assert callback.state == Callback.State.DONE


def test_a_call_by_someone_else_or_to_another_contact_keeps_nothing(agent_user, other_agent_user, contact):
    callback = promised(agent_user, contact, hours=-1)
    other = Contact.objects.create(name="Someone else")
    other.phones.create(number="+447400999888", is_primary=True)

    assert callbacks.keep(a_call(other_agent_user, contact, minutes_ago=1), timezone.now()) == 0
    assert callbacks.keep(a_call(agent_user, other, minutes_ago=1), timezone.now()) == 0
    callback.refresh_from_db()
    assert callback.state == Callback.State.OPEN


def test_the_promising_call_does_not_keep_its_own_promise_nor_one_due_after_today(agent_user, contact, settings):
    settings.TIME_ZONE = "UTC"
    now = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)
    call = a_call(agent_user, contact)
    own = promised_at(
        callbacks.promise(call=call, user=agent_user, due_at=now + timedelta(hours=1), now=now), call.ended_at
    )
    tomorrow = Callback.objects.create(contact=contact, due_at=now + timedelta(hours=20), assigned_to=agent_user)
    promised_at(tomorrow, call.ended_at)

    assert callbacks.keep(call, now) == 0
    assert callbacks.keep(a_call(agent_user, contact, minutes_ago=1), now) == 1  # today's, not the day after's
    assert Callback.objects.get(pk=own.pk).state == Callback.State.DONE
    assert Callback.objects.get(pk=tomorrow.pk).state == Callback.State.OPEN


def test_due_for_lists_the_persons_and_their_groups_by_when(agent_user, other_agent_user, contact, sales, settings):
    settings.TIME_ZONE = "UTC"
    now = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)
    overdue = promised(agent_user, contact, hours=-2)
    Callback.objects.filter(pk=overdue.pk).update(due_at=now - timedelta(hours=2))
    today = Callback.objects.create(contact=contact, due_at=now + timedelta(hours=5), group=sales)
    upcoming = Callback.objects.create(contact=contact, due_at=now + timedelta(days=2), assigned_to=agent_user)
    Callback.objects.create(contact=contact, due_at=now - timedelta(hours=1), assigned_to=other_agent_user)
    Callback.objects.create(
        contact=contact, due_at=now - timedelta(hours=1), assigned_to=agent_user, state=Callback.State.DONE
    )

    due = callbacks.due_for(agent_user, now)

    assert [c.pk for c in due.overdue] == [overdue.pk]
    assert [c.pk for c in due.today] == [today.pk]
    assert [c.pk for c in due.upcoming] == [upcoming.pk]
    assert callbacks.due_count(agent_user, now) == 1
    assert callbacks.due_count(other_agent_user, now) == 1  # their own; the group's is not due yet
    assert len(callbacks.overdue(now)) == 2  # everyone's
    assert callbacks.next_due_for(agent_user, now) == overdue
    assert callbacks.next_due_for(agent_user, now - timedelta(hours=3)) is None


def test_an_agent_cannot_close_another_agents_callback_but_a_group_member_and_a_supervisor_can(
    agent_user, other_agent_user, supervisor_user, contact, sales
):
    now = timezone.now()
    mine = promised(agent_user, contact, hours=2)
    with pytest.raises(PermissionDenied):
        callbacks.cancel(mine, other_agent_user, now)
    assert callbacks.done(mine, supervisor_user, now) is True

    groups = promised(agent_user, contact, hours=3, group=sales)
    assert callbacks.cancel(groups, other_agent_user, now) is True
    assert Callback.objects.get(pk=groups.pk).state == Callback.State.CANCELLED
    assert callbacks.cancel(groups, other_agent_user, now) is False  # already closed


# --- The wrap-up ---------------------------------------------------------------------------------------------------


@pytest.fixture
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture
def ended(agent_client, contact, london, sim) -> Call:
    call = place_call(agent_client, contact)
    sim.clock.advance(ENDED)
    poll(agent_client, call)
    call.refresh_from_db()
    assert call.state == Call.State.ENDED
    return call


def local_input(moment: datetime) -> str:
    """A time as a datetime-local field sends it, in the site's time zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def wrapup(client: Client, call: Call, **fields: str):
    data = {"disposition": DispositionCode.objects.get(code="Call back later").pk, "notes": "", **fields}
    return client.post(f"/calls/{call.pk}/wrapup/", data, headers=HTMX)


def test_the_panels_wrap_up_offers_a_callback_in_the_sites_time_zone(agent_client, ended, sales, settings):
    html = agent_client.get(f"/calls/{ended.pk}/panel/", headers=HTMX).content.decode()
    assert 'name="callback_at"' in html and 'type="datetime-local"' in html
    assert f"time in {settings.TIME_ZONE}" in html
    assert f'<option value="{sales.pk}">Sales UK (group)</option>' in html
    assert "data-callback>Call back later" in html  # static/js/callbacks.js brings the field forward


def test_a_wrap_up_promises_a_callback(agent_client, agent_user, ended, sim):
    due = common.wall_clock().replace(second=0, microsecond=0) + timedelta(hours=3)

    response = wrapup(agent_client, ended, callback_at=local_input(due), callback_to="me", callback_note="Quote")

    assert response.status_code == 200
    callback = Callback.objects.get()
    assert callback.due_at == due and callback.assigned_to == agent_user and callback.note == "Quote"
    assert callback.promised_on == ended
    ended.refresh_from_db()
    assert ended.disposition_code == "Call back later"


def test_the_bar_wrap_up_promises_a_callback_and_a_bad_one_is_said_in_the_message_box(agent_client, ended, sales):
    due = common.wall_clock() + timedelta(hours=2)
    bad = wrapup(agent_client, ended, from_bar="1", callback_at="2020-01-01T09:00", callback_to=str(sales.pk))
    assert bad.status_code == 400 and "still to come" in bad.headers["HX-Trigger"]
    assert not Callback.objects.exists()

    response = wrapup(agent_client, ended, from_bar="1", callback_at=local_input(due), callback_to=str(sales.pk))

    assert response.status_code == 200
    assert Callback.objects.get().group == sales
    assert "Callback promised for " in response.content.decode() and "to Sales UK (group)." in response.content.decode()


def test_a_wrap_up_to_a_group(agent_client, ended, sales):
    due = common.wall_clock() + timedelta(days=1)
    wrapup(agent_client, ended, callback_at=local_input(due), callback_to=str(sales.pk))
    assert Callback.objects.get().group == sales


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ({"callback_at": "2020-01-01T10:00"}, "still to come"),
        ({"callback_at": "tomorrow-ish"}, "as a date and a time"),
        ({"callback_at": "9999-12-31T23:59"}, "within 90 days"),
        ({"callback_note": "Call me"}, "Say when to call back"),
        ({"callback_at": "+1d", "callback_to": "²"}, "as a date and a time"),
    ],
)
def test_a_bad_callback_is_a_400_that_keeps_everything_typed(agent_client, ended, typed, words):
    data = {"callback_to": "me", "callback_note": "Ring after four", **typed}
    interested = DispositionCode.objects.get(code="Interested").pk
    response = agent_client.post(
        f"/calls/{ended.pk}/wrapup/", {"disposition": interested, "notes": "Typed notes", **data}, headers=HTMX
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert words in html
    assert "Typed notes" in html and f'value="{data["callback_note"]}"' in html
    if "callback_at" in typed and typed["callback_at"] != "+1d":
        assert f'value="{typed["callback_at"]}"' in html
    assert not Callback.objects.exists()
    ended.refresh_from_db()
    assert ended.wrapped_up_at is None


def test_a_do_not_call_wrap_up_promises_no_callback(agent_client, ended):
    due = local_input(common.wall_clock() + timedelta(hours=2))
    data = {"disposition": DispositionCode.objects.get(code="Do not call").pk, "callback_at": due}
    response = agent_client.post(f"/calls/{ended.pk}/wrapup/", data, headers=HTMX)
    assert response.status_code == 400 and "promise no callback" in response.content.decode()
    assert not Callback.objects.exists()


def test_a_group_the_agent_is_not_in_is_refused(agent_client, ended, support):
    response = wrapup(agent_client, ended, callback_at=local_input(common.wall_clock() + timedelta(hours=2)),
                      callback_to=str(support.pk))  # fmt: skip
    assert response.status_code == 400
    assert "one of your groups" in response.content.decode()
    assert not Callback.objects.exists()


def test_the_bar_offers_the_callback_and_says_how_many_are_due(agent_client, agent_user, ended, contact):
    html = agent_client.get("/calls/bar/").content.decode()
    assert 'id="bar-callback-' in html and 'name="callback_at"' in html
    Callback.objects.create(contact=contact, due_at=common.wall_clock() - timedelta(minutes=5), assigned_to=agent_user)

    html = agent_client.get("/contacts/").content.decode()

    assert "1 callback due" in html and 'href="/"' in html


def test_a_wrap_up_keeps_the_callback_it_calls_back(agent_client, agent_user, ended, contact):
    earlier = a_call(agent_user, contact, minutes_ago=600)
    kept = Callback.objects.create(
        contact=contact, due_at=common.wall_clock() - timedelta(minutes=10), assigned_to=agent_user, promised_on=earlier
    )
    promised_at(kept, earlier.ended_at)

    response = wrapup(agent_client, ended)

    assert "This call kept the callback that was due." in response.content.decode()
    kept.refresh_from_db()
    assert kept.state == Callback.State.DONE and kept.done_by_call == ended


def api_wrap(user, call: Call, body: dict):
    token = ApiToken.issue(user, name="test", scopes=["calls:read", "calls:write"])[1]
    return Client().post(
        f"/api/v1/calls/{call.pk}/wrap-up",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_api_wrap_up_promises_a_callback_and_shows_it(agent_user, ended, sales):
    due = (common.wall_clock() + timedelta(hours=4)).replace(microsecond=0)
    body = {"disposition": "Call back later", "callback": {"at": due.isoformat(), "group": sales.pk, "note": "Demo"}}

    response = api_wrap(agent_user, ended, body)

    assert response.status_code == 200, response.content
    [shown] = response.json()["callbacks"]
    assert shown["group"] == sales.pk and shown["note"] == "Demo" and shown["state"] == "open"
    assert Callback.objects.get().due_at == due
    token = ApiToken.issue(agent_user, name="read", scopes=["calls:read"])[1]
    detail = Client().get(f"/api/v1/calls/{ended.pk}", headers={"Authorization": f"Bearer {token}"}).json()
    assert [c["id"] for c in detail["callbacks"]] == [Callback.objects.get().pk]


@pytest.mark.parametrize(
    ("callback", "words"),
    [
        ({"at": "2020-01-01T10:00:00+00:00"}, "still to come"),
        ({"at": "soon"}, "as a date and a time"),
        ({"at": "2030-01-01T10:00:00+00:00", "group": "x"}, None),
    ],
)
def test_a_bad_api_callback_is_a_422_and_stores_nothing(agent_user, ended, callback, words):
    response = api_wrap(agent_user, ended, {"disposition": "Interested", "callback": callback})

    assert response.status_code == 422, response.content
    if words:
        assert words in response.json()["detail"]
    assert not Callback.objects.exists()
    ended.refresh_from_db()
    assert ended.wrapped_up_at is None


def test_an_api_callback_to_another_group_is_refused(agent_user, ended, support):
    due = (common.wall_clock() + timedelta(hours=4)).isoformat()
    response = api_wrap(agent_user, ended, {"disposition": "Interested", "callback": {"at": due, "group": support.pk}})
    assert response.status_code == 422 and "one of your groups" in response.json()["detail"]


# --- The pages ---------------------------------------------------------------------------------------------------


def test_home_lists_the_persons_callbacks_overdue_first_with_done_and_cancel(agent_client, agent_user, contact, sales):
    overdue = promised(agent_user, contact, hours=-1, note="Wants a quote")
    later = promised(agent_user, contact, hours=24 * 3, group=sales)

    response = agent_client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(f'id="callback-{overdue.pk}"') < html.index(f'id="callback-{later.pk}"')
    assert f'id="callback-{overdue.pk}" class="is-overdue"' in html
    assert "Wants a quote" in html and "Grace Hopper" in html and "07400 123456" in html
    assert f'action="/callbacks/{overdue.pk}/done/"' in html and f'action="/callbacks/{overdue.pk}/cancel/"' in html
    assert "promised by you" in html and "To Sales UK (group) · promised by you" in html


def test_home_without_callbacks_points_to_the_contacts(agent_client):
    html = agent_client.get("/").content.decode()
    assert "No callbacks are promised to you" in html and 'href="/contacts/"' in html


def test_home_sends_people_who_may_not_see_callbacks_to_the_contacts(make_user):
    client = Client()
    client.force_login(make_user("nobody", None))
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/contacts/"


def test_done_and_cancel_close_the_callback_and_go_back(agent_client, agent_user, contact):
    callback = promised(agent_user, contact, hours=1)

    response = agent_client.post(f"/callbacks/{callback.pk}/done/", {"next": "/callbacks/?show=open"})

    assert response.status_code == 302 and response["Location"] == "/callbacks/?show=open"
    callback.refresh_from_db()
    assert callback.state == Callback.State.DONE and callback.done_by_call is None
    assert agent_client.post(f"/callbacks/{callback.pk}/cancel/", {"next": "https://evil.example/"})["Location"] == "/"


def test_another_agent_cannot_close_it_and_a_get_is_refused(client, agent_user, other_agent_user, contact):
    callback = promised(agent_user, contact, hours=1)
    client.force_login(other_agent_user)
    assert client.post(f"/callbacks/{callback.pk}/cancel/").status_code == 404
    assert client.get(f"/callbacks/{callback.pk}/cancel/").status_code == 405
    assert Callback.objects.get().state == Callback.State.OPEN


def test_the_list_shows_a_supervisor_everyone_and_an_agent_their_own(
    agent_client, supervisor_client, agent_user, other_agent_user, contact, sales
):
    mine = promised(agent_user, contact, hours=-1)
    theirs = promised(other_agent_user, contact, hours=-2)
    groups = promised(other_agent_user, contact, hours=2, group=sales)

    every = supervisor_client.get("/callbacks/").content.decode()
    own = agent_client.get("/callbacks/").content.decode()
    overdue = supervisor_client.get("/callbacks/?show=overdue").content.decode()
    toms = supervisor_client.get(f"/callbacks/?person={other_agent_user.pk}").content.decode()

    assert all(f'id="callback-{c.pk}"' in every for c in (mine, theirs, groups))
    assert f'id="callback-{theirs.pk}"' not in own and f'id="callback-{groups.pk}"' in own
    assert f'id="callback-{groups.pk}"' not in overdue and f'id="callback-{mine.pk}"' in overdue
    assert f'id="callback-{theirs.pk}"' in toms and f'id="callback-{mine.pk}"' not in toms
    assert 'name="person"' not in own  # agents pick no one else


def test_the_list_pages_by_keyset_in_due_order(supervisor_client, agent_user, contact, monkeypatch):
    from calls.views import callbacks as views

    monkeypatch.setattr(views, "PER_PAGE", 2)
    made = [promised(agent_user, contact, hours=h) for h in (5, 1, 3, 2, 4)]
    order = [c.pk for c in sorted(made, key=lambda c: c.due_at)]

    first = supervisor_client.get("/callbacks/")
    second = supervisor_client.get("/callbacks/" + first.context["next_link"])
    third = supervisor_client.get("/callbacks/" + second.context["next_link"])

    shown = [c.pk for page in (first, second, third) for c in page.context["callbacks"]]
    assert shown == order and third.context["next_link"] == ""
    assert "First page" in third.content.decode()
    assert supervisor_client.get("/callbacks/?after=x_1").status_code == 400


def test_the_contact_page_shows_the_open_promises_overdue_in_red(agent_client, agent_user, contact, sales):
    overdue = promised(agent_user, contact, hours=-1, note="Ring the mobile")
    promised(agent_user, contact, hours=30, group=sales)
    Callback.objects.create(contact=contact, due_at=at(-5), assigned_to=agent_user, state=Callback.State.DONE)

    html = agent_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert f'id="contact-callback-{overdue.pk}" class="is-overdue"' in html
    assert "(overdue)" in html and "Ring the mobile" in html and "to Sales UK (group)" in html
    assert html.count('id="contact-callback-') == 2


def test_the_nav_links_callbacks_for_those_who_may(agent_client, make_user):
    assert 'href="/callbacks/"' in agent_client.get("/contacts/").content.decode()
    client = Client()
    client.force_login(make_user("viewer", None))
    assert client.get("/callbacks/").status_code == 403


# --- Falling due ---------------------------------------------------------------------------------------------------


def test_callbacks_falling_due_are_announced_once(agent_user, contact):
    hook = WebhookEndpoint.objects.create(url="https://hooks.example.com/in", event_types=["*"], secret="whsec_x")
    outbox.forget()
    now = timezone.now()
    due = promised(agent_user, contact, hours=0.5, note="Quote")
    later = promised(agent_user, contact, hours=5)

    assert callbacks.announce_due(now) == 0
    assert callbacks.announce_due(now + timedelta(hours=1)) == 1
    assert callbacks.announce_due(now + timedelta(hours=1, minutes=1)) == 0

    [event] = WebhookEvent.objects.filter(type="callback.due")
    assert event.subject == f"contact:{contact.pk}"
    data = event.payload["data"]
    assert data["id"] == due.pk and data["assigned_to"] == "alex" and data["note"] == "Quote"
    assert data["number"] == "+447400123456"
    assert Callback.objects.get(pk=due.pk).announced_at == now + timedelta(hours=1)
    assert Callback.objects.get(pk=later.pk).announced_at is None
    assert hook.matches("callback.due")


def test_the_job_announces_on_its_clock_every_minute(agent_user, contact, monkeypatch):
    from procrastinate.contrib.django import app

    callback = promised(agent_user, contact, hours=0.5)
    monkeypatch.setattr(timezone, "now", lambda: callback.due_at + timedelta(seconds=1))

    assert tasks.announce_callbacks.func(timestamp=0) == 1
    assert tasks.announce_callbacks.func(timestamp=60) == 0
    [periodic] = [p for p in app.periodic_registry.periodic_tasks.values() if p.periodic_id == "announce_callbacks"]
    assert periodic.cron == "* * * * *"


# --- Privacy and the audit trail ---------------------------------------------------------------------------------


def test_a_subjects_data_holds_their_callbacks(agent_user, contact):
    callback = promised(agent_user, contact, hours=2, note="Quote")
    data = subject.subject_data(contact, now=timezone.now(), by="priya")
    [shown] = data["callbacks"]
    assert shown["id"] == callback.pk and shown["note"] == "Quote" and shown["to"] == "alex"
    assert shown["state"] == "Promised" and shown["number"] == "+447400123456"


def test_erasure_deletes_the_callbacks(supervisor_client, agent_user, contact):
    promised(agent_user, contact, hours=2, note="Quote")
    assert supervisor_client.post(f"/contacts/{contact.pk}/erase/").status_code == 302
    assert not Callback.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the audit trail's triggers are PostgreSQL's")
def test_the_audit_trail_records_a_promise_and_its_close(agent_user, contact):
    callback = promised(agent_user, contact, hours=2)
    callbacks.cancel(callback, agent_user, timezone.now())
    Callback.objects.filter(pk=callback.pk).update(announced_at=timezone.now())  # bookkeeping: not recorded

    entries = AuditEntry.objects.filter(object_type="callback", object_id=str(callback.pk)).order_by("pk")
    assert [e.kind for e in entries] == ["callback.create", "callback.update"]
    assert all(e.contact_id == contact.pk for e in entries)
    assert entries[1].after == {"state": "cancelled", "done_at": entries[1].after["done_at"]}


def test_roles_hold_the_callback_permissions(make_user):
    assert make_user("newagent", AGENT).has_perm("calls.change_callback")


def test_the_demo_gives_the_agent_a_day_of_callbacks_once():
    from io import StringIO

    from django.core.management import call_command

    call_command("seed_demo", stdout=StringIO())
    agent = Agent.objects.get(display_id="1001").user
    due = callbacks.due_for(agent, timezone.now())
    assert len(due.overdue) == 1 and len(due.today) + len(due.upcoming) == 3  # the group's too (Sales UK)
    made = Callback.objects.count()
    call_command("seed_demo", stdout=StringIO())
    assert Callback.objects.count() == made
