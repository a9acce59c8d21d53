"""Relative times say "just now" rather than "0 minutes ago"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
