from __future__ import annotations

import io
import json
from pathlib import Path

import phonenumbers
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from calls.models import Agent, AgentGroup, CallbackNumber, Contact, ContactPhone
from vccsim.state import to_e164

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Contact, ContactPhone, Agent, AgentGroup, CallbackNumber))


def test_seed_demo_builds_a_workspace_that_looks_real(settings):
    settings.DEMO_PASSWORD = "s3cret-demo"
    call_command("seed_demo", stdout=io.StringIO())
    assert Contact.objects.count() >= 50
    assert Agent.objects.count() >= 4
    assert AgentGroup.objects.count() == 3
    assert AgentGroup.objects.filter(display_id="030").exists()
    assert CallbackNumber.objects.filter(is_default=True).count() == 1
    assert any(n.is_restricted for n in CallbackNumber.objects.all())
    assert Contact.objects.filter(do_not_call=True).exists()
    numbers = list(ContactPhone.objects.values_list("number", flat=True))
    kinds = {phonenumbers.number_type(phonenumbers.parse(n)) for n in numbers}
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in numbers)
    assert any(n.startswith("+44") for n in numbers) and any(n.startswith("+1") for n in numbers)
    assert phonenumbers.PhoneNumberType.MOBILE in kinds and phonenumbers.PhoneNumberType.FIXED_LINE in kinds
    assert len({c.company for c in Contact.objects.all()}) > 5
    for username in ["admin", "supervisor", "agent"]:
        assert authenticate(username=username, password="s3cret-demo") is not None
    assert Agent.objects.get(user__username="agent").display_id == "1001"
    # A call queue the demo agent may work (through the sales group), of callable contacts.
    from calls.queues import working

    (queue,) = working.queues_for(get_user_model().objects.get(username="agent"))
    assert queue.entries.count() > 0
    assert not queue.entries.filter(contact__do_not_call=True).exists()


def test_seed_demo_is_idempotent():
    call_command("seed_demo", stdout=io.StringIO())
    before = counts()
    Contact.objects.filter(pk=Contact.objects.first().pk).update(name="Renamed by a user")
    call_command("seed_demo", stdout=io.StringIO())
    assert counts() == before
    assert Contact.objects.filter(name="Renamed by a user").exists()


def test_seed_demo_refuses_a_live_account_without_debug(settings):
    settings.DEBUG = False
    settings.VCC_SANDBOX = False
    with pytest.raises(CommandError, match="only runs with DEBUG=true or in sandbox mode"):
        call_command("seed_demo")
    assert not Contact.objects.exists()


def test_the_demo_workspace_matches_the_simulators_sample_account():
    sample = Path(__file__).resolve().parent.parent / "vccsim" / "sample_account.json"
    account = json.loads(sample.read_text())
    call_command("seed_demo", stdout=io.StringIO())
    text = json.dumps(account)
    # VCC lists a number in E.164 or national format (the sample has one of each): the same number either way.
    region = account.get("defaultRegion", "GB")
    numbers = {to_e164(item["clid"], region) for item in account["callbackNumbers"]}
    for agent in Agent.objects.all():
        assert f'"{agent.display_id}"' in text
    for group in AgentGroup.objects.all():
        assert f'"{group.display_id}"' in text
    for number in CallbackNumber.objects.all():
        assert number.number in numbers


def test_seed_demo_brings_back_missing_defaults_without_touching_edited_ones():
    from calls.models import ConsentRule, DispositionCode

    DispositionCode.objects.filter(code="Interested").delete()
    DispositionCode.objects.filter(code="Wrong number").update(description="Edited by an admin")
    ConsentRule.objects.all().delete()
    call_command("seed_demo", stdout=io.StringIO())
    assert DispositionCode.objects.filter(code="Interested").exists()
    assert DispositionCode.objects.get(code="Wrong number").description == "Edited by an admin"
    assert ConsentRule.objects.get(country="GB").consent == "OneParty"


def test_seed_demo_adds_a_call_log_once_when_asked():
    """`make run` asks for four weeks of calls, so that the call log and the reports show something at once: every
    call over (none waits in a bar), to callable contacts, each answered group call answered by one of its agents,
    a wrap-up exactly where a call connected, the contacts added before their first call, the roll-up built."""
    from datetime import timedelta

    from django.utils import timezone

    from calls.calling.bar import bar_call_ids
    from calls.models import Call, CallRollup

    call_command("seed_demo", stdout=io.StringIO())
    assert not Call.objects.exists()  # only when asked: the tests' own seeding stays without calls

    out = io.StringIO()
    call_command("seed_demo", "--history-days", "7", stdout=out)

    calls = list(Call.objects.prefetch_related("from_groups__members"))
    assert len(calls) == 140 and f"{len(calls)} calls over the last 7 days" in out.getvalue()
    now = timezone.now()
    assert all(now - timedelta(days=7) <= c.requested_at < now for c in calls)
    assert not any(c.in_progress for c in calls)
    assert {c.state for c in calls} <= {Call.State.ENDED, Call.State.FAILED, Call.State.UNCONFIRMED}
    assert all(c.wrapped_up_at is not None for c in calls if c.state == Call.State.ENDED and c.asks_sales_wrap_up)
    assert all(c.wrapped_up_at is None and not c.disposition_code for c in calls if not c.asks_sales_wrap_up)
    assert not any(c.contact.do_not_call or c.phone.do_not_call for c in calls)
    group_answered = [c for c in calls if c.from_agent_id is None and c.outcome == Call.Outcome.ANSWERED]
    assert group_answered and all(
        c.answered_by in {a for g in c.from_groups.all() for a in g.members.all()} for c in group_answered
    )
    for contact in Contact.objects.filter(last_call__isnull=False):
        first = Call.objects.filter(contact=contact).earliest("requested_at")
        assert contact.created_at < first.requested_at and contact.last_called_at is not None
    for user in get_user_model().objects.all():
        assert bar_call_ids(user.pk, since=now - timedelta(days=30)) == ([], 0)
    assert CallRollup.objects.exists()

    call_command("seed_demo", "--history-days", "7", stdout=io.StringIO())
    assert Call.objects.count() == 140  # once: not while the demo has calls
