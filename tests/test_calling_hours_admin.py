"""Admins set calling hours per country and holidays in the admin (calls/admin/hours.py): days as ticks, times as a
window, and messages that say what to fix. Supervisors and agents do not get in (tests/test_permission_matrix.py)."""

from __future__ import annotations

from datetime import date, time

import pytest

from calls.calling import hours
from calls.models import CallingHours, Holiday

pytestmark = pytest.mark.django_db

HOURS = "/admin/calls/callinghours/"
HOLIDAYS = "/admin/calls/holiday/"


def test_an_admin_sets_a_countrys_hours_with_ticked_days(admin_role_client):
    page = admin_role_client.get(f"{HOURS}add/").content.decode()
    assert 'type="checkbox" name="days" value="6"' in page and 'type="time"' in page

    response = admin_role_client.post(
        f"{HOURS}add/", {"country": "us", "opens_at": "09:00", "closes_at": "20:30", "days": ["4", "0", "2"]}
    )

    assert response.status_code == 302, response.content.decode()
    row = CallingHours.objects.get()
    assert (row.country, row.opens_at, row.closes_at, row.days) == ("US", time(9), time(20, 30), "024")
    assert hours.load_hours().rule("US") == hours.Rule(time(9), time(20, 30), "024")  # the click sees it at once
    listed = admin_role_client.get(HOURS).content.decode()
    assert "Monday, Wednesday and Friday" in listed


def test_the_edit_page_ticks_the_saved_days(admin_role_client):
    row = CallingHours.objects.create(country="GB", days="01234")

    page = admin_role_client.get(f"{HOURS}{row.pk}/change/").content.decode()

    assert 'value="4" id="id_days_4" checked' in page or 'value="4" checked' in page
    assert 'value="5" id="id_days_5" checked' not in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"country": "XX"}, "XX is not a country code: use two letters, such as US or GB."),
        ({"opens_at": "21:00", "closes_at": "08:00"}, "Make it later than 21:00"),
        ({"days": []}, "Tick at least one day"),
    ],
)
def test_bad_hours_say_what_to_fix(admin_role_client, data, message):
    form = {"country": "US", "opens_at": "08:00", "closes_at": "21:00", "days": ["0", "1"]} | data

    response = admin_role_client.post(f"{HOURS}add/", form)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not CallingHours.objects.exists()


def test_an_admin_adds_holidays_for_a_country_or_for_all(admin_role_client):
    admin_role_client.post(f"{HOLIDAYS}add/", {"date": "2026-12-25", "country": "gb", "name": "Christmas Day"})
    admin_role_client.post(f"{HOLIDAYS}add/", {"date": "2027-01-01", "country": "", "name": "New Year's Day"})

    assert set(Holiday.objects.values_list("country", "date", "name")) == {
        ("GB", date(2026, 12, 25), "Christmas Day"),
        ("", date(2027, 1, 1), "New Year's Day"),
    }
    assert "every country" in admin_role_client.get(HOLIDAYS).content.decode()


def test_the_same_day_twice_says_which_holiday_to_edit(admin_role_client):
    Holiday.objects.create(country="GB", date=date(2026, 12, 25), name="Christmas Day")

    response = admin_role_client.post(f"{HOLIDAYS}add/", {"date": "2026-12-25", "country": "GB", "name": "Xmas"})

    assert response.status_code == 200
    assert "25 Dec 2026 is already a holiday for GB (Christmas Day): edit that one." in response.content.decode()
    assert Holiday.objects.count() == 1
