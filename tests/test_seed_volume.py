from __future__ import annotations

import random

import phonenumbers
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count

from calls.management.commands import seed_volume
from calls.models import (
    Call,
    CallEvent,
    CallRequestId,
    CallRollup,
    CallRollupState,
    CallVccId,
    Contact,
    ContactPhone,
    ContactSearch,
)

pytestmark = pytest.mark.django_db


def test_it_refuses_outside_debug_and_sandbox(settings):
    settings.DEBUG = False
    settings.VCC_SANDBOX = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_volume", "--contacts", "1", "--calls", "1")
    assert not Contact.objects.exists()


@pytest.mark.parametrize("prefix", seed_volume.UK_PREFIXES + [f"+1{area}" for area in seed_volume.US_AREAS])
def test_every_number_it_makes_is_valid(prefix):
    command = seed_volume.Command()
    command.rng = random.Random(prefix)
    us = prefix.startswith("+1")
    for _ in range(300):
        number = command._number(us)
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.region_code_for_number(parsed) == ("US" if us else "GB")


def test_it_loads_a_consistent_call_log(capsys):
    call_command("seed_volume", "--contacts", "30", "--calls", "600", "--agents", "4", "--busy-contact-calls", "60")
    assert "Done" in capsys.readouterr().out
    assert Contact.objects.count() == 30
    assert ContactPhone.objects.filter(is_primary=True).count() == 30
    assert all(n.startswith(("+44", "+1")) for n in ContactPhone.objects.values_list("number", flat=True))
    assert Call.objects.count() == 600
    outcomes = set(Call.objects.values_list("outcome", flat=True))
    assert outcomes >= set(Call.Outcome.values) - {Call.Outcome.IN_PROGRESS}
    # Each call has the fields its outcome implies.
    for call in Call.objects.all():
        assert call.requested_at is not None
        assert (call.from_agent_id is None) == call.from_groups.exists()
        if call.state == Call.State.FAILED:
            assert not call.vcc_call_id and call.error_display and call.duration_seconds is None
        elif call.state == Call.State.UNCONFIRMED:
            assert call.outcome == Call.Outcome.NOT_CONFIRMED and call.error_message and not call.vcc_call_id
        else:
            assert call.vcc_call_id
        if call.outcome == Call.Outcome.ANSWERED:
            assert call.connected_at and call.duration_seconds and call.ended_at > call.connected_at
            assert call.result_code == "Success"
        if call.outcome in (Call.Outcome.NO_ANSWER, Call.Outcome.AGENT_NO_ANSWER, Call.Outcome.BUSY):
            assert call.connected_at is None and call.duration_seconds == 0 and call.result_code == "Failure"
        if call.wrapped_up_at:
            assert call.disposition_code and call.state == Call.State.ENDED
        if call.disposition_code:
            assert call.wrapped_up_at
        assert call.request_body["to"]["telephoneNumber"] == call.to_number
    busiest = Call.objects.values("contact").annotate(n=Count("pk")).order_by("-n").first()
    assert busiest["n"] >= 60
    assert CallEvent.objects.exists()
    assert CallRollupState.objects.get().built_through is not None
    total = sum(CallRollup.objects.filter(facet="total", scope="everyone").values_list("calls", flat=True))
    assert 0 < total <= 600
    # The indexes set aside while loading are back.
    with connection.cursor() as cursor:
        names = {c["columns"] and n for n, c in connection.introspection.get_constraints(cursor, "calls_call").items()}
    assert "call_requested_idx" in names
    assert "call_phone_idx" in names
    # The calls' keys, which the load's trigger may have skipped, are all there (calls/models/callkeys.py).
    assert CallRequestId.objects.count() == Call.objects.count()
    assert CallVccId.objects.count() == Call.objects.exclude(vcc_call_id="").count() > 0
    assert not Call.objects.exclude(pk__in=CallRequestId.objects.values("call_id")).exists()


def test_it_adds_to_what_is_there(capsys):
    call_command("seed_volume", "--contacts", "5", "--calls", "20", "--agents", "2")
    call_command("seed_volume", "--contacts", "5", "--calls", "20", "--agents", "2", "--seed", "9")
    assert Contact.objects.count() == 10
    assert Call.objects.count() == 40
    if connection.vendor == "postgresql":  # the search's narrow table: every contact, written again after the load
        mirrored = ContactSearch.objects.values_list("id", "name", "search_text")
        assert set(mirrored) == set(Contact.objects.values_list("id", "name", "search_text"))
