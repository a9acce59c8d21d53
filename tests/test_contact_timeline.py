"""The contact timeline: a contact's calls on the contact page, newest first, with older ones page after page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import calling
from calls.models import Call, Contact
from tests import _click
from tests._sim import primary

pytestmark = pytest.mark.django_db

sim = _click.sim  # fixtures


# --- The contact timeline -------------------------------------------------------------------------


def logged_call(contact: Contact, user, *, minutes_ago: int, **fields) -> Call:
    call = Call.objects.create(
        contact=contact,
        phone=primary(contact),
        to_number=primary(contact).number,
        created_by=user,
        from_agent=user.agent,
        **fields,
    )
    Call.objects.filter(pk=call.pk).update(requested_at=timezone.now() - timedelta(minutes=minutes_ago))
    return call


def timeline(client, contact) -> str:
    response = client.get(f"/contacts/{contact.pk}/", headers={"HX-Request": "true", "HX-Target": "timeline"})
    assert response.status_code == 200
    return response.content.decode()


def test_the_timeline_lists_calls_newest_first_with_outcome_and_notes(supervisor_client, agent_user, contact):
    logged_call(
        contact,
        agent_user,
        minutes_ago=30,
        state=Call.State.ENDED,
        result_code="Success",
        duration_seconds=42,
        disposition_code="Interested",
        notes="Wants a quote for six chairs",
    )
    logged_call(
        contact,
        agent_user,
        minutes_ago=5,
        state=Call.State.FAILED,
        error_display="Your phone is busy: finish your current call, then try again.",
    )

    html = timeline(supervisor_client, contact)

    assert html.lstrip().startswith('<section class="card" id="timeline"')
    assert html.index("Your phone is busy") < html.index("Wants a quote for six chairs")
    assert "Alex Morgan" in html
    assert "from agent 1001" in html
    assert "Interested" in html
    assert "42 s" in html
    assert html.count('class="timeline-item') == 2


def test_the_timeline_shows_group_calls_and_do_not_call_reasons(supervisor_client, supervisor_user, sales, contact):
    call = Call.objects.create(
        contact=contact,
        to_number=primary(contact).number,
        created_by=supervisor_user,
        state=Call.State.LIVE,
        dnc_override_reason="Asked us to call back",
    )
    call.from_groups.set([sales])

    html = timeline(supervisor_client, contact)

    assert "via Sales UK" in html
    assert "Called despite do-not-call: Asked us to call back" in html


def test_the_timeline_says_a_call_may_have_been_placed(supervisor_client, agent_user, contact):
    logged_call(contact, agent_user, minutes_ago=1, state=Call.State.UNCONFIRMED, outcome=Call.Outcome.NOT_CONFIRMED)
    html = timeline(supervisor_client, contact)
    assert "Not confirmed: may have been placed" in html
    assert 'class="badge outcome warn"' in html  # not the red of a failed call


def test_an_agent_sees_every_call_to_the_contact_but_opens_only_their_own(
    agent_client, agent_user, other_agent_user, contact
):
    mine = logged_call(contact, agent_user, minutes_ago=1, notes="mine", state=Call.State.ENDED)
    theirs = logged_call(contact, other_agent_user, minutes_ago=2, notes="Tom called yesterday", state=Call.State.ENDED)

    html = timeline(agent_client, contact)

    assert "mine" in html
    assert "Tom called yesterday" in html  # so two agents do not call the same person twice
    assert f"?call={calling.regarding_token(mine)}" in html
    assert f"?call={calling.regarding_token(theirs)}" not in html


def test_older_calls_are_a_click_away_page_after_page(agent_client, agent_user, other_agent_user, contact, monkeypatch):
    from calls.views import contacts

    monkeypatch.setattr(contacts, "TIMELINE_LENGTH", 3)
    calls = [logged_call(contact, other_agent_user, minutes_ago=m, notes=f"call {m}") for m in range(7)]
    seen: list[str] = []

    html = timeline(agent_client, contact)
    while True:
        seen += re.findall(r"call (\d)", html)
        more = re.search(r'hx-get="([^"]+)" hx-target="#timeline-more"', html)
        if more is None:
            break
        link = more.group(1).replace("&amp;", "&")
        html = agent_client.get(link, headers={"HX-Request": "true", "HX-Target": "timeline-more"}).content.decode()
        assert not html.lstrip().startswith("<section")  # the next items only, in place of the link

    assert seen == [str(m) for m in range(7)]  # every call, newest first, each once
    assert len(calls) == 7


def test_a_damaged_older_link_is_a_400_showing_the_newest_calls(agent_client, agent_user, contact):
    logged_call(contact, agent_user, minutes_ago=1, notes="the newest")
    response = agent_client.get(f"/contacts/{contact.pk}/", {"older": "not-a-cursor"})
    assert response.status_code == 400
    assert "the newest" in response.content.decode()


@pytest.mark.parametrize(("who", "words"), [("agent", "Your calls to"), ("supervisor", "These calls in the call log")])
def test_the_timeline_links_to_the_call_log_filtered_to_the_contact(
    agent_client, supervisor_client, agent_user, contact, who, words
):
    logged_call(contact, agent_user, minutes_ago=1)
    client = agent_client if who == "agent" else supervisor_client
    html = timeline(client, contact)
    assert f'href="/calls/?contact={contact.pk}"' in html
    assert words in html

    log = client.get("/calls/", {"contact": contact.pk}).content.decode()
    assert f'Calls to <a href="{contact.get_absolute_url()}">' in log
    assert 'href="/calls/">every contact</a>' in log  # no filter left: the bare address


def test_the_contact_page_query_count_does_not_grow_with_calls(
    supervisor_client, agent_user, other_agent_user, sales, contact, london, django_assert_max_num_queries
):
    logged_call(contact, agent_user, minutes_ago=1)
    with CaptureQueriesContext(connection) as few:
        supervisor_client.get(f"/contacts/{contact.pk}/")
    for minute in range(20):
        call = logged_call(contact, agent_user if minute % 2 else other_agent_user, minutes_ago=minute + 2)
        call.from_groups.set([sales])

    with django_assert_max_num_queries(len(few)):
        response = supervisor_client.get(f"/contacts/{contact.pk}/")

    assert response.content.decode().count('class="timeline-item') == 21


@pytest.mark.parametrize("origin", [Call.Origin.INBOUND, Call.Origin.AGENT_PHONE, Call.Origin.VCCWEB])
def test_a_call_nobody_clicked_shows_on_the_contact_page_with_its_agent(agent_client, agent_user, contact, origin):
    """A call VCC's events told of (inbound, or dialled from the agent's phone) has no clicker, nor has a click whose
    person was deleted since: the page named them through the clicker and answered 500."""
    from django.contrib.auth import get_user_model

    call = logged_call(contact, agent_user, minutes_ago=5, origin=origin, state=Call.State.ENDED)
    Call.objects.filter(pk=call.pk).update(created_by=None)
    get_user_model().objects.create_user("gone", password="x")  # another user, so the page is not the clicker's

    response = agent_client.get(f"/contacts/{contact.pk}/")

    assert response.status_code == 200
    item = re.search(r'<li class="timeline-item.*?</li>', response.content.decode(), re.S).group(0)
    assert "Alex Morgan" in item and "from agent 1001" in item
