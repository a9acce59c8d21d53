"""The call bar (GET calls/bar/, and on every page through base.html): the person's own calls going on or to wrap
up, the Call buttons it disables, and the refusals and checks of the contact page that go with it."""

from __future__ import annotations

import html as html_module
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import calling
from calls.models import Agent, Call, Callback, ContactPhone
from tests._calls import make_call
from tests._sim import HTMX, call_agent, fresh_simulator, poll

pytestmark = pytest.mark.django_db

CONNECTED = 9  # clock seconds after placing: the agent, then the contact, answered
ENDED = 70


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def bar(client) -> str:
    response = client.get("/calls/bar/", headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


def no_vcc(monkeypatch) -> None:
    """Fail the test if anything opens a VCC client to follow a call."""

    def refuse() -> None:
        raise AssertionError("the bar asked VCC")

    monkeypatch.setattr(calling.following, "get_async_client", refuse)


def test_the_bar_needs_a_login(client):
    response = client.get("/calls/bar/", headers=HTMX)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_shows_the_persons_live_call_with_the_contact_number_and_state(agent_client, placed, contact):
    html = bar(agent_client)

    assert f'href="/contacts/{contact.pk}/?call=' in html
    assert "Grace Hopper" in html
    assert "07400 123456" in html or "+44 7400 123456" in html
    assert "Ringing your phone…" in html
    assert 'hx-trigger="every 2000ms, calls-changed from:body, reload-stale"' in html  # polled while the call goes on
    assert 'data-on-call="You are on a call with Grace Hopper."' in html


def test_it_shows_only_the_persons_own_calls(client, other_agent_user, placed):
    client.force_login(other_agent_user)

    html = bar(client)

    assert "Grace Hopper" not in html
    assert "is-empty" in html
    assert "every " not in html  # nothing going on: no polling
    assert 'data-on-call=""' in html


def test_connected_shows_the_talk_timer_from_when_talk_began(agent_client, placed, sim):
    sim.clock.advance(CONNECTED)
    poll(agent_client, placed)
    placed.refresh_from_db()

    html = bar(agent_client)

    since = placed.connected_at.astimezone(timezone.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'data-talk-since="{since}"' in html
    assert "Connected" in html
    assert "Pause recording" in html


def test_the_bar_follows_the_call_to_its_end_and_asks_for_the_wrap_up(agent_client, placed, sim):
    sim.clock.advance(ENDED)
    Call.objects.filter(pk=placed.pk).update(next_check_at=None)  # due a look at VCC

    response = agent_client.get("/calls/bar/", headers=HTMX)

    html = response.content.decode()
    # The timeline and panels reload; fired on the body, so an answer to a form swapped away meanwhile still counts.
    assert json.loads(response.headers["HX-Trigger"]) == {"calls-changed": {"target": "body"}}
    assert "Call ended" in html
    assert f'hx-post="/calls/{placed.pk}/wrapup/"' in html
    assert "every " not in html
    assert 'data-on-call=""' in html
    assert "data-talk-since" not in html


def test_the_bar_asks_vcc_no_more_than_the_panel_does(agent_client, placed, sim):
    sim.clock.advance(CONNECTED)
    poll(agent_client, placed)  # the panel has just asked VCC
    sim.set_fault("get_call", status=500, count=1)

    bar(agent_client)

    assert "get_call" in sim.faults.rules  # never used up: VCC was not asked again


def test_a_page_shows_the_bar_from_the_database_without_asking_vcc(agent_client, placed, monkeypatch):
    no_vcc(monkeypatch)

    html = agent_client.get("/calls/").content.decode()

    assert 'id="call-bar"' in html
    assert "Grace Hopper" in html and "Ringing your phone…" in html


def test_a_wrapped_up_call_leaves_the_bar(agent_client, agent_user, contact):
    call = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), contact=contact)
    assert "Grace Hopper" in bar(agent_client)

    Call.objects.filter(pk=call.pk).update(wrapped_up_at=timezone.now(), disposition_code="Interested")

    assert "Grace Hopper" not in bar(agent_client)


def test_calls_to_wrap_up_from_long_ago_are_left_to_the_call_log(agent_client, agent_user, contact):
    agent = Agent.objects.get(user=agent_user)
    make_call(user=agent_user, agent=agent, contact=contact, at=timezone.now() - timedelta(hours=13))

    assert "Grace Hopper" not in bar(agent_client)


def test_many_calls_show_a_few_and_a_link_to_the_rest_in_a_bounded_number_of_queries(agent_client, agent_user, contact):
    agent = Agent.objects.get(user=agent_user)
    for minutes in range(2):
        make_call(user=agent_user, agent=agent, contact=contact, at=timezone.now() - timedelta(minutes=minutes + 1))
    bar(agent_client)  # the session and the user, cached from here on
    with CaptureQueriesContext(connection) as few:
        bar(agent_client)
    for minutes in range(2, 12):
        make_call(user=agent_user, agent=agent, contact=contact, at=timezone.now() - timedelta(minutes=minutes + 1))

    with CaptureQueriesContext(connection) as many:
        html = bar(agent_client)

    # The calls' ids and the calls (two queries), the callbacks due, the disposition codes and the groups a callback
    # may be promised to (a wrap-up is due), and the session at most.
    assert len(many) == len(few) <= 6
    assert html.count('class="bar-call ') == 3
    assert "and 9 more" in html
    assert 'href="/calls/?wrap_up=on&amp;mine=on"' in html


def test_a_supervisors_and_n_more_lists_their_own_calls_to_wrap_up_not_everyones(
    supervisor_client, supervisor_user, agent_user, contact
):
    mine = [
        make_call(
            user=supervisor_user, agent=supervisor_user.agent, contact=contact, at=timezone.now() - timedelta(minutes=m)
        )
        for m in range(1, 6)
    ]
    for m in range(1, 4):  # an agent's, which the supervisor sees in the log but does not wrap up
        make_call(user=agent_user, agent=agent_user.agent, contact=contact, at=timezone.now() - timedelta(minutes=m))
    html = bar(supervisor_client)
    assert "and 2 more" in html
    link = html_module.unescape(re.search(r'<a href="([^"]*)" id="bar-more"', html)[1])

    page = supervisor_client.get(link).content.decode()

    listed = {int(pk) for pk in re.findall(r'href="/calls/(\d+)/#wrapup" class="badge warn"', page)}
    assert listed == {call.pk for call in mine}
    assert "Only your calls" in page


def test_the_calls_beyond_the_bar_are_counted_under_the_calls_not_under_the_callbacks_due(
    agent_client, agent_user, contact
):
    agent = Agent.objects.get(user=agent_user)
    for minutes in range(4):
        make_call(user=agent_user, agent=agent, contact=contact, at=timezone.now() - timedelta(minutes=minutes + 1))
    Callback.objects.create(contact=contact, due_at=timezone.now() - timedelta(minutes=5), assigned_to=agent_user)

    html = bar(agent_client)

    # "1 callback due" then "and 1 more" would read as two callbacks due.
    assert html.index("and 1 more") < html.index("1 callback due")


def test_while_on_a_call_the_call_buttons_say_so_instead_of_the_readiness_notice(agent_client, placed, contact, tom):
    page = agent_client.get(f"/contacts/{contact.pk}/").content.decode()
    assert page.count('title="You are on a call with Grace Hopper."') == 2  # both numbers
    assert '<p id="me-ready" class="notice" data-on-call-notice>You are on a call with Grace Hopper.</p>' in page

    readiness = agent_client.get("/readiness/?only_me=1", headers=HTMX).content.decode()
    assert "You are on a call with Grace Hopper." in readiness
    assert "does not have you ready" not in readiness

    listing = agent_client.get("/contacts/").content.decode()
    assert 'disabled title="You are on a call with Grace Hopper."' in listing

    agents = agent_client.get("/agents/").content.decode()
    assert 'disabled title="You are on a call with Grace Hopper."' in agents


def test_after_the_call_the_call_buttons_come_back(agent_client, placed, contact, sim):
    sim.clock.advance(ENDED)
    poll(agent_client, placed)

    page = agent_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "You are on a call" not in page
    assert 'value="me:' in page and 'disabled title="You are on a call' not in page


def test_the_fresh_call_button_after_a_click_from_the_list_is_disabled(agent_client, contact, london):
    phone = contact.phones.get(is_primary=True)
    response = agent_client.post(
        f"/contacts/{contact.pk}/call/",
        {"call": f"me:{phone.pk}", "request_id": "8a1f5b1e-0000-4000-8000-000000000001"},
        headers={**HTMX, "HX-Target": "list-call"},
    )

    assert 'disabled title="You are on a call with Grace Hopper."' in response.content.decode()


def test_a_colleague_call_says_who_the_call_is_with(agent_client, tom, london):
    call_agent(agent_client, tom)

    assert 'data-on-call="You are on a call with Tom Okafor (1003)."' in bar(agent_client)


def test_coming_back_to_the_contact_reopens_the_calls_panel(agent_client, placed, contact):
    page = agent_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert f'hx-get="/calls/{placed.pk}/panel/" hx-trigger="load"' in page


# --- The page around it: no django-htmx debug handler, checks before sending --------------------------------------


@pytest.mark.parametrize("debug", [True, False])
def test_no_page_loads_the_handler_that_replaces_the_page_with_a_refusal(agent_client, contact, settings, debug):
    settings.DEBUG = debug

    page = agent_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "django-htmx.js" not in page
    assert "django_htmx/htmx-2.min.js" in page
    assert 'htmx-2.min.js" nonce="' in page


@pytest.fixture
def tom(other_agent_user) -> Agent:
    return Agent.objects.get(user=other_agent_user)


def test_call_anyway_is_a_secondary_button_and_the_reason_is_checked_before_sending(supervisor_client, contact, london):
    ContactPhone.objects.filter(contact=contact, is_primary=True).update(do_not_call=True)
    phone = contact.phones.get(is_primary=True)

    page = supervisor_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert 'class="secondary"' in page
    assert f'data-needs-reason="dnc_reason_{phone.pk}"' in page
    assert 'class="dnc-reason" minlength="5"' in page


def test_the_preview_says_only_tick_a_group_when_none_is_ticked(supervisor_client, contact, london, sales):
    response = supervisor_client.get(f"/contacts/{contact.pk}/dial-preview/?ticked=on", headers=HTMX)

    html = response.content.decode()
    assert "Tick at least one group." in html
    assert "Call via group</strong> rings" not in html


def test_only_working_shortcuts_are_listed(agent_client, contact):
    page = agent_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "<kbd>c</kbd>" in page
    assert "<kbd>g</kbd>" not in page  # an agent has no group call
    assert "Search contacts (from any page)" in page


def test_a_poll_that_would_show_the_same_bar_changes_nothing_on_the_page(agent_client, placed, sim):
    """The bar sends the version it shows (hx-vals v); the same bar again is a 204, which htmx does not swap, so a
    click on the bar never lands on a form a poll is replacing. The talk time (ticked by app.js) and the forms'
    CSRF tokens (new each answer) are not part of the version; a change of phase is."""
    sim.clock.advance(CONNECTED)
    poll(agent_client, placed)
    first = bar(agent_client)
    version = re.search(r'hx-vals=\'\{"v": "([0-9a-f]{16})"\}\'', first).group(1)

    sim.clock.advance(3)  # talked a little longer: the bar would show the same
    same = agent_client.get("/calls/bar/", {"v": version}, headers=HTMX)
    stale = agent_client.get("/calls/bar/", {"v": "0" * 16}, headers=HTMX)
    sim.clock.advance(ENDED)
    Call.objects.filter(pk=placed.pk).update(next_check_at=None)
    ended = agent_client.get("/calls/bar/", {"v": version}, headers=HTMX)

    assert same.status_code == 204 and same.content == b""
    assert stale.status_code == 200 and f'"v": "{version}"' in stale.content.decode()
    assert ended.status_code == 200 and "Call ended" in ended.content.decode()
