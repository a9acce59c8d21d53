"""Relative times say "just now" rather than "0 minutes ago"; durations are said as people say them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calls.templatetags.calls_tags import ago
from tests._calls import local, make_call

NOW = datetime(2026, 12, 5, 13, 39, tzinfo=UTC)


def test_under_a_minute_is_just_now():
    assert ago(NOW, NOW) == "just now"
    assert ago(NOW - timedelta(seconds=59), NOW) == "just now"


def test_longer_is_said_with_ago():
    assert ago(NOW - timedelta(minutes=3), NOW) == "3\xa0minutes ago"
    assert ago(NOW - timedelta(days=2), NOW) == "2\xa0days ago"


def test_nothing_says_nothing():
    assert ago(None, NOW) == ""


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(45, "45 s"), (185, "3 min 05 s"), (3720, "1 h 02 min"), (47 * 3600 + 59 * 60, "47 h 59 min"),
     (136 * 3600 + 60, "5 d 16 h")],
)  # fmt: skip
def test_a_duration_is_said_as_people_say_it_in_days_past_two_days(seconds, words):
    """A speed to lead of "136 h 01 min" reads better as "5 d 16 h"."""
    from calls.templatetags.calls_tags import duration

    assert duration(seconds) == words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(3720, "1 h 02 min"), (136 * 3600 + 60, "136 h 01 min"), (8000 * 3600 + 1200, "8,000 h 20 min")],
)
def test_a_total_of_talk_time_is_said_in_hours_however_long(seconds, words):
    """A month's talk time of a team is hours of work: "8,000 h 20 min", not "333 d 8 h"."""
    from calls.templatetags.calls_tags import duration

    assert duration(seconds, "h") == words


@pytest.mark.django_db
def test_the_reports_talk_time_is_in_hours(supervisor_client, supervisor_user):
    for hour in (9, 10):
        make_call(user=supervisor_user, at=local("2026-03-02", hour), duration_seconds=25 * 3600)
    page = supervisor_client.get("/reports/", {"start": "2026-03-02", "end": "2026-03-02"}).content.decode()
    assert "50 h 00 min" in page and "2 d 2 h" not in page
