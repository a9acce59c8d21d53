"""Calling hours (calls/calling/hours.py): a number's time zones, its local hours on an injected clock, and the click,
the API and the contact page refusing a number outside them. These tests keep the real default hours (08:00 to
21:00, Monday to Saturday): every other test may call at any hour (tests/conftest.py)."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, time, timedelta

import phonenumbers
import pytest
from django.test import Client

from calls import calling
from calls.calling import hours
from calls.models import ApiToken, Call, CallingHours, Contact, ContactPhone, Holiday
from tests._sim import assert_refused, click, fresh_simulator, only_call, shown

pytestmark = [pytest.mark.django_db, pytest.mark.calling_hours]

NEW_YORK = "+12125550100"
HONOLULU = "+18085550100"
LONDON = "+442079460123"
AU_MOBILE = "+61412345678"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- A number's time zones --------------------------------------------------------------------------------


def test_a_number_gets_its_country_and_zones_from_phonenumbers():
    assert hours.zone_key(NEW_YORK) == "US:America/New_York"
    assert hours.zone_key(HONOLULU) == "US:Pacific/Honolulu"
    assert hours.zone_key(LONDON) == "GB:Europe/London"
    region, zones = hours.zone_key(AU_MOBILE).split(":")
    assert region == "AU" and {"Australia/Perth", "Australia/Sydney", "Australia/Lord_Howe"} <= set(zones.split(","))
    assert zones.split(",") == sorted(zones.split(","))
    # Zones of other countries sharing the calling code are left out: the Cocos Islands (+61), Jersey (+44).
    assert "Indian/Cocos" not in zones and hours.zone_key("+447400123456") == "GB:Europe/London"


def test_a_toll_free_number_is_in_its_own_countrys_zones_and_open_when_all_are():
    key = hours.zone_key("+18005550100")

    assert key.startswith("US:") and "Pacific/Honolulu" in key and "America/New_York" in key
    assert "Pacific/Guam" not in key and "America/St_Johns" not in key
    assert hours.Hours().check(key, utc(2026, 12, 8, 20, 0)).open  # 15:00 in New York, 10:00 in Honolulu
    closed = hours.Hours().check(key, utc(2026, 12, 8, 12, 0))
    assert not closed.open and closed.opens_at == utc(2026, 12, 8, 18, 0)  # 08:00 in Honolulu


def test_the_contacts_own_zone_wins_and_a_bad_one_is_ignored():
    assert hours.zone_key(NEW_YORK, "America/Chicago") == "US:America/Chicago"
    assert hours.zone_key(NEW_YORK, "Mars/Olympus_Mons") == "US:America/New_York"


def test_an_unknown_number_has_no_key_and_is_open_with_its_time_unknown():
    assert hours.zone_key("+80012345678") == ""  # an international freephone: phonenumbers says Etc/Unknown
    assert hours.zone_key("not a number") == ""
    answer = hours.Hours().check("", utc(2026, 12, 6, 3, 0))
    assert answer.open and not answer.known and answer.words == "local time unknown" and answer.refusal == ""


def _numbers() -> list[str]:
    """Every example number of every region and type, and variations of their last digits."""
    rng = random.Random(7)
    examples = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in range(12):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                examples.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    numbers = set(examples)
    for example in examples:
        for k in range(1, 7):
            for _ in range(4):
                if len(example) - 1 > k:
                    numbers.add(example[:-k] + "".join(rng.choice("0123456789") for _ in range(k)))
    return sorted(numbers)


def test_the_cache_by_first_digits_gives_the_uncached_answer_for_every_number(monkeypatch):
    numbers = _numbers()
    assert len(numbers) > 25_000
    hours._cache.clear()
    # The uncached answers, worked out in the numbers' order (phonenumbers compiles its patterns through re's cache
    # of 512, which the shuffled order below thrashes: 10 s instead of 1.5), serve the cache's misses too.
    uncached = {n: hours._lookup(n) for n in numbers}
    monkeypatch.setattr(hours, "_lookup", uncached.__getitem__)
    rng = random.Random(3)
    mismatches = [n for n in rng.sample(numbers, len(numbers)) if hours._region_and_zones(n) != uncached[n]]
    assert mismatches == []
    assert len(hours._cache) < len(numbers)  # numbers were answered from the cache


# --- Hours on an injected clock --------------------------------------------------------------------------


def check(number: str, now: datetime, table: hours.Hours | None = None) -> hours.LocalTime:
    return (table or hours.Hours()).check(hours.zone_key(number), now)


def test_a_us_number_is_open_at_8_59_pm_and_closed_at_9_01_pm():
    # Tuesday 8 December 2026: New York is on EST (UTC-5).
    before = check(NEW_YORK, utc(2026, 12, 9, 1, 59))
    after = check(NEW_YORK, utc(2026, 12, 9, 2, 1))

    assert before.open and before.words == "20:59 in New York" and before.refusal == ""
    assert not after.open and after.words == "21:01 in New York"
    assert after.refusal == (
        "It is 21:01 in New York: calls to this number are allowed 08:00–21:00, Monday to Saturday."
    )
    assert after.opens_at == utc(2026, 12, 9, 13, 0)  # 08:00 the next morning


@pytest.mark.parametrize(
    ("day", "offset"),
    [(date(2026, 3, 7), 5), (date(2026, 3, 9), 4), (date(2026, 10, 31), 4), (date(2026, 11, 2), 5)],
)
def test_new_york_opens_at_8_local_on_each_side_of_a_daylight_saving_change(day, offset):
    opening = datetime.combine(day, time(8), tzinfo=UTC) + timedelta(hours=offset)

    assert not check(NEW_YORK, opening - timedelta(minutes=1)).open
    assert check(NEW_YORK, opening).open
    assert check(NEW_YORK, opening).words == "8:00 in New York"


def test_the_next_opening_crosses_a_daylight_saving_change():
    # Saturday 7 March 2026, 21:30 EST; Sunday is closed and the clocks go forward that night: Monday 08:00 is EDT.
    closed = check(NEW_YORK, utc(2026, 3, 8, 2, 30))
    assert not closed.open and closed.opens_at == utc(2026, 3, 9, 12, 0)
    # Saturday 31 October 2026, 21:30 EDT; back to EST on Sunday 1 November: Monday 08:00 is 13:00 UTC.
    assert check(NEW_YORK, utc(2026, 11, 1, 1, 30)).opens_at == utc(2026, 11, 2, 13, 0)


def test_sunday_is_closed_and_says_so():
    answer = check(LONDON, utc(2026, 12, 6, 14, 0))  # Sunday

    assert not answer.open
    assert answer.refusal.startswith("It is Sunday 14:00 in London: calls to this number are allowed 08:00–21:00")
    assert answer.opens_at == utc(2026, 12, 7, 8, 0)


def test_a_holiday_of_the_country_or_of_every_country_is_closed():
    table = hours.Hours(holidays={("US", date(2026, 12, 25)): "Christmas Day", ("", date(2027, 1, 1)): "New Year"})

    christmas = check(NEW_YORK, utc(2026, 12, 25, 15, 0), table)
    assert not christmas.open
    assert christmas.refusal.startswith("It is 10:00 in New York and a holiday there (Christmas Day)")
    assert christmas.opens_at == utc(2026, 12, 26, 13, 0)
    assert check(LONDON, utc(2026, 12, 25, 15, 0), table).open  # a US holiday only
    assert not check(LONDON, utc(2027, 1, 1, 15, 0), table).open


def test_a_countrys_own_hours_replace_the_defaults():
    table = hours.Hours(rules={"GB": hours.Rule(time(9), time(20), "01234")})

    saturday = check(LONDON, utc(2026, 12, 5, 12, 0), table)
    assert not saturday.open
    assert "allowed 09:00–20:00, Monday to Friday" in saturday.refusal
    assert not check(LONDON, utc(2026, 12, 7, 8, 30), table).open
    assert check(LONDON, utc(2026, 12, 7, 9, 0), table).open


def test_a_number_in_several_zones_is_open_only_when_open_in_all_of_them():
    # Monday 7 December 2026, 07:30 in Perth (UTC+8) is 10:30 in Sydney (UTC+11).
    morning = check(AU_MOBILE, utc(2026, 12, 6, 23, 30))
    assert not morning.open and morning.words == "7:30 in Perth"
    assert morning.opens_at == utc(2026, 12, 7, 0, 0)  # 08:00 in Perth
    # 21:30 in Sydney is 18:30 in Perth: closed in the east.
    evening = check(AU_MOBILE, utc(2026, 12, 7, 10, 30))
    assert not evening.open and evening.place in {"Sydney", "Adelaide", "Lord Howe"}
    midday = check(AU_MOBILE, utc(2026, 12, 7, 4, 0))
    assert midday.open and midday.words == "15:00 in Sydney"


def test_a_contact_zone_decides_alone():
    key = hours.zone_key(AU_MOBILE, "Australia/Sydney")

    answer = hours.Hours().check(key, utc(2026, 12, 6, 23, 30))
    assert answer.open and answer.words == "10:30 in Sydney"


def test_days_read_as_words():
    assert hours.days_words("012345") == "Monday to Saturday"
    assert hours.days_words("0123456") == "every day"
    assert hours.days_words("024") == "Monday, Wednesday and Friday"
    assert hours.days_words("56") == "Saturday and Sunday"
    assert hours.days_words("") == "no day"


def test_load_hours_reads_the_admins_rows_and_sees_a_change_at_once():
    CallingHours.objects.create(country="US", opens_at=time(9), closes_at=time(20), days="01234")
    assert hours.load_hours().rule("US") == hours.Rule(time(9), time(20), "01234")

    Holiday.objects.create(country="", date=date(2026, 12, 25), name="Christmas Day")
    assert hours.load_hours().holiday("GB", date(2026, 12, 25)) == "Christmas Day"


# --- The click, the API and the page ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture
def at(monkeypatch, sim):
    """Set the app's clock to a moment; it moves on with the simulator's."""

    def set_clock(moment: datetime) -> None:
        start = sim.clock.now()
        monkeypatch.setattr(calling.common, "wall_clock", lambda: moment + timedelta(seconds=sim.clock.now() - start))

    return set_clock


@pytest.fixture
def new_yorker(db) -> ContactPhone:
    contact = Contact.objects.create(name="Ada Lovelace", company="Analytical")
    return ContactPhone.objects.create(contact=contact, label="work", number=NEW_YORK, is_primary=True)


EVENING = utc(2026, 12, 9, 3, 14)  # Tuesday 22:14 in New York
REASON = "They asked us to call after dinner"


def test_a_click_at_8_59_pm_places_the_call(agent_client, new_yorker, london, sim, at):
    at(utc(2026, 12, 9, 1, 59))

    click(agent_client, new_yorker)

    call = only_call()
    assert call.state == Call.State.LIVE and call.hours_override_reason == ""
    assert sim.calls_placed == 1


def test_a_click_at_9_01_pm_is_refused_before_vcc(agent_client, new_yorker, london, sim, at):
    at(utc(2026, 12, 9, 2, 1))

    response = click(agent_client, new_yorker, **{f"hours_reason_{new_yorker.pk}": REASON})

    assert_refused(response, sim, "It is 21:01 in New York: calls to this number are allowed 08:00–21:00")
    assert "Only a supervisor can call outside calling hours" in response.content.decode()


def test_a_click_on_a_sunday_or_a_holiday_is_refused(agent_client, new_yorker, london, sim, at):
    at(utc(2026, 12, 6, 16, 0))
    assert_refused(click(agent_client, new_yorker), sim, "It is Sunday 11:00 in New York")

    Holiday.objects.create(country="US", date=date(2026, 12, 25), name="Christmas Day")
    at(utc(2026, 12, 25, 16, 0))
    assert_refused(click(agent_client, new_yorker), sim, "a holiday there (Christmas Day)")


def test_a_supervisor_must_say_why(supervisor_client, new_yorker, london, sim, at):
    at(EVENING)

    response = click(supervisor_client, new_yorker, **{f"hours_reason_{new_yorker.pk}": " no "})

    assert_refused(response, sim, "It is 22:14 in New York")
    assert "To call anyway, say why (at least 5 characters)." in response.content.decode()


def test_a_supervisor_may_call_outside_hours_giving_a_reason(supervisor_client, new_yorker, london, sim, at):
    at(EVENING)

    click(supervisor_client, new_yorker, **{f"hours_reason_{new_yorker.pk}": REASON})

    call = only_call()
    assert call.state == Call.State.LIVE and call.hours_override_reason == REASON
    assert sim.calls_placed == 1
    page = supervisor_client.get(f"/calls/{call.pk}/")
    assert shown(page, "Called outside calling hours") and shown(page, REASON)


def test_a_reason_within_hours_is_not_kept(supervisor_client, new_yorker, london, sim, at):
    at(utc(2026, 12, 8, 15, 0))

    click(supervisor_client, new_yorker, **{f"hours_reason_{new_yorker.pk}": REASON})

    assert only_call().hours_override_reason == ""


def test_the_api_refuses_outside_hours_and_a_supervisor_overrides(
    agent_user, supervisor_user, new_yorker, london, sim, at
):
    at(EVENING)

    def post(user, body, key):
        token = ApiToken.issue(user, name="test", scopes=["calls:read", "calls:write"])[1]
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
        return Client().post("/api/v1/calls", json.dumps(body), content_type="application/json", headers=headers)

    refused = post(agent_user, {"to": NEW_YORK, "hours_reason": REASON}, "k1")
    assert refused.status_code == 422 and refused["Content-Type"] == "application/problem+json"
    assert refused.json()["detail"].startswith("It is 22:14 in New York: calls to this number are allowed")
    assert not Call.objects.exists() and sim.calls_placed == 0

    unsaid = post(supervisor_user, {"to": NEW_YORK}, "k3").json()["detail"]
    assert unsaid.endswith("To call anyway, send `hours_reason` saying why (at least 5 characters).")
    placed = post(supervisor_user, {"to": NEW_YORK, "hours_reason": REASON}, "k2")
    assert placed.status_code == 201, placed.content
    assert Call.objects.get().hours_override_reason == REASON


def test_the_contact_page_shows_the_local_time_and_a_disabled_button(agent_client, new_yorker, london, at):
    at(EVENING)

    page = agent_client.get(f"/contacts/{new_yorker.contact_id}/").content.decode()

    assert "Local time 22:14 in New York" in page
    assert 'disabled title="It is 22:14 in New York: calls to this number are allowed 08:00–21:00' in page
    assert f'value="me:{new_yorker.pk}"' not in page  # no Call button to submit
    assert "it is 22:14 in New York, outside calling hours" in page  # the dial preview


def test_a_supervisor_sees_a_reason_field_instead(supervisor_client, new_yorker, london, at):
    at(EVENING)

    page = supervisor_client.get(f"/contacts/{new_yorker.contact_id}/").content.decode()

    assert f'name="hours_reason_{new_yorker.pk}"' in page
    assert f'data-needs-reason=" hours_reason_{new_yorker.pk}"' in page


def test_within_hours_the_page_shows_the_local_time_and_a_call_button(agent_client, new_yorker, london, at):
    at(utc(2026, 12, 8, 15, 4))

    page = agent_client.get(f"/contacts/{new_yorker.contact_id}/").content.decode()

    assert "Local time 10:04 in New York" in page
    assert f'value="me:{new_yorker.pk}"' in page
    assert "hours_reason_" not in page


def test_the_dial_preview_shows_the_local_time(agent_client, new_yorker, london, at):
    at(EVENING)

    response = agent_client.get(f"/contacts/{new_yorker.contact_id}/dial-preview/", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "it is 22:14 in New York, outside calling hours" in response.content.decode()
