"""A click whose request got no answer in time ("not confirmed": VCC may have placed it, and never said its id) and
VCC's events of the call it placed after all (calls/calling/events.py `_unconfirmed_click`): the click is that call,
followed from then on, not a second call logged as dialled from the agent's phone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calls.calling import events as applying
from calls.models import Call, VccEvent
from tests._vcc_events import ANSWERED, foreign

pytestmark = pytest.mark.django_db


def not_confirmed(user, contact, *, ago: timedelta, from_agent=True, groups=()) -> Call:
    phone = contact.phones.get(is_primary=True)
    click = Call.objects.create(
        contact=contact, phone=phone, to_number=phone.number, created_by=user,
        from_agent=user.agent if from_agent else None, requested_at=timezone.now() - ago,
    )  # fmt: skip
    click.from_groups.set(groups)
    click.record_unconfirmed(
        message="VCC did not answer within 10 s", status=None, display="Not confirmed", latency_ms=10_000,
        now=click.requested_at + timedelta(seconds=10),
    )  # fmt: skip
    return click


@pytest.mark.parametrize(
    ("by_groups", "began"), [(False, 25), (True, 25), (False, 45)], ids=["from-the-agent", "via-groups", "clocks-apart"]
)
def test_events_of_a_call_vcc_placed_after_all_follow_the_click_not_confirmed(
    agent_user, contact, sales, by_groups, began
):
    sales.members.add(agent_user.agent)
    click = not_confirmed(
        agent_user, contact, ago=timedelta(seconds=40), from_agent=not by_groups, groups=[sales] if by_groups else []
    )
    number, agent = click.to_number, agent_user.agent.display_id
    # "clocks-apart": VCC's clock 5 s behind ours, so the call seems to begin before the click was asked.
    foreign("channel.connected", "late-1", agent=agent, number=number, at=timezone.now() - timedelta(seconds=began))
    foreign(
        "channel.disconnected", "late-1", agent=agent, number=number, at=timezone.now() - timedelta(seconds=5),
        result=ANSWERED,
    )  # fmt: skip

    applying.process_pending()

    assert Call.objects.count() == 1  # not logged twice
    click.refresh_from_db()
    assert click.vcc_call_id == "late-1" and click.origin == Call.Origin.VCCWEB
    assert click.state == Call.State.ENDED and click.outcome == Call.Outcome.ANSWERED
    assert click.wrap_up_due  # a call that happened asks for its wrap-up
    assert "placed after all" in " ".join(f"{what} {detail}" for _, what, detail in click.history())
    assert {e.result for e in VccEvent.objects.all()} == {f"applied to call {click.pk}"}


@pytest.mark.parametrize(
    "case",
    ["another-number", "too-long-before", "another-agent", "inbound", "an-agent-not-in-its-groups"],
    ids=lambda case: case,
)
def test_a_call_that_cannot_be_that_click_is_logged_as_its_own(agent_user, other_agent_user, contact, case):
    from calls.models import AgentGroup

    via = case == "an-agent-not-in-its-groups"  # Tom is not in Nights
    nights = AgentGroup.objects.create(display_id="777", name="Nights")
    nights.members.add(agent_user.agent)
    click = not_confirmed(
        agent_user, contact, ago=timedelta(minutes=5 if case == "too-long-before" else 1),
        from_agent=not via, groups=[nights] if via else [],
    )  # fmt: skip
    number = "+447400999888" if case == "another-number" else click.to_number
    agent = (
        other_agent_user if case in ("another-agent", "an-agent-not-in-its-groups") else agent_user
    ).agent.display_id
    direction = "Inbound" if case == "inbound" else "Outbound"
    foreign("channel.connected", "other-1", agent=agent, number=number, direction=direction)

    applying.process_pending()

    click.refresh_from_db()
    assert click.state == Call.State.UNCONFIRMED and not click.vcc_call_id
    other = Call.objects.get(vcc_call_id="other-1")
    assert other.pk != click.pk and other.origin in (Call.Origin.AGENT_PHONE, Call.Origin.INBOUND)
