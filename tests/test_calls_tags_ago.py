"""Relative times say "just now" rather than "0 minutes ago"; durations are said as people say them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calls.templatetags.calls_tags import ago

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
