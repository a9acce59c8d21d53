"""Callbacks kept by a call (calls/callbacks.py: keep): only those the call can have been the call back for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calls import callbacks
from calls.models import Agent, Callback
from tests._calls import make_call, promised_at

pytestmark = pytest.mark.django_db


def test_a_call_keeps_no_callback_promised_after_it_was_placed(agent_user, contact, settings):
    # An earlier call's wrap-up given late, or edited, is not the call back for a promise made on a later call.
    settings.TIME_ZONE = "UTC"
    nine = datetime(2026, 3, 10, 9, tzinfo=UTC)
    first = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), contact=contact, at=nine)
    second = make_call(
        user=agent_user, agent=Agent.objects.get(user=agent_user), contact=contact, at=nine + timedelta(hours=1)
    )
    then = second.ended_at
    promise = callbacks.promise(call=second, user=agent_user, due_at=then + timedelta(hours=4), now=then)
    promised_at(promise, then)

    assert callbacks.keep(first, then + timedelta(hours=1)) == 0

    assert Callback.objects.get(pk=promise.pk).state == Callback.State.OPEN


def test_an_old_calls_wrap_up_edited_keeps_nothing_due_after_its_day(agent_user, contact, settings):
    settings.TIME_ZONE = "UTC"
    monday = datetime(2026, 3, 9, 9, tzinfo=UTC)
    callback = Callback.objects.create(contact=contact, due_at=monday + timedelta(days=4), assigned_to=agent_user)
    promised_at(callback, monday - timedelta(days=1))
    call = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), contact=contact, at=monday)

    assert callbacks.keep(call, monday + timedelta(days=4, hours=1)) == 0  # its wrap-up edited on Friday

    assert Callback.objects.get(pk=callback.pk).state == Callback.State.OPEN


def test_editing_a_wrap_up_says_what_callback_the_call_promised(agent_user, contact, settings):
    """The callback fields of an edited wrap-up are empty (an unchanged past time would be refused): the form says
    what the call promised, and that leaving them empty keeps it."""
    from django.test import Client

    from calls.models import Call

    settings.TIME_ZONE = "UTC"
    call = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), contact=contact)
    Call.objects.filter(pk=call.pk).update(wrapped_up_at=call.ended_at, disposition_code="Call back later")
    due = datetime(2030, 3, 12, 15, 30, tzinfo=UTC)
    callbacks.promise(call=call, user=agent_user, due_at=due, note="Send the quote", now=due - timedelta(days=1))
    client = Client()
    client.force_login(agent_user)

    form = client.get(f"/calls/{call.pk}/panel/?edit=1", headers={"HX-Request": "true"}).content.decode()

    assert "This call promised a callback for Tue 12 Mar, 15:30, to " in form
    assert "(“Send the quote”)" in form and "leave it empty to keep it as it is" in form
    Callback.objects.filter(promised_on=call).update(state=Callback.State.DONE)
    form = client.get(f"/calls/{call.pk}/panel/?edit=1", headers={"HX-Request": "true"}).content.decode()
    assert "This call promised" not in form  # kept since: nothing to move


def test_the_bars_wrap_up_of_another_call_says_nothing_of_this_calls_promise(agent_user, contact):
    """On a call's own page its panel is drawn with what it promised; the bar, drawn beside it, wraps up other calls,
    which promised nothing."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from calls.models import Call

    agent = Agent.objects.get(user=agent_user)
    promising = make_call(user=agent_user, agent=agent, contact=contact, connected_at=timezone.now())
    Call.objects.filter(pk=promising.pk).update(wrapped_up_at=timezone.now(), disposition_code="Call back later")
    due = timezone.now() + timedelta(days=1)
    callbacks.promise(call=promising, user=agent_user, due_at=due, note="PROMISE-OF-A", now=timezone.now())
    others = [make_call(user=agent_user, agent=agent, contact=contact, connected_at=timezone.now()) for _ in range(3)]
    client = Client()
    client.force_login(agent_user)

    page = client.get(f"/calls/{promising.pk}/").content.decode()
    with CaptureQueriesContext(connection) as queries:
        panel = client.get(f"/calls/{promising.pk}/panel/?edit=1", headers={"HX-Request": "true"}).content.decode()

    bar = page.split('id="call-bar"', 1)[1].split("</section>", 1)[0]
    assert all(f'data-call="{call.pk}"' in bar for call in others)  # their wrap-ups are in the bar
    assert "promised a callback" not in bar and "PROMISE-OF-A" not in bar
    assert "(“PROMISE-OF-A”)" in panel
    reads = [q["sql"] for q in queries.captured_queries if 'FROM "calls_callback"' in q["sql"]]
    assert len(reads) == 1, reads  # read once, not at each of its four mentions
