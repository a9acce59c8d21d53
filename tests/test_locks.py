"""Dialling locks live in the database: one click holds a number, whatever state the cache is in."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from calls import cache as tolerant_cache
from calls import locks
from calls.locks import DIAL_LOCK_SECONDS, acquire_dial_lock, release_dial_lock
from calls.models import DialLock

NUMBER = "+442079460123"


@pytest.fixture
def clock(monkeypatch):
    now = [datetime(2026, 11, 29, 9, 0, tzinfo=UTC)]
    monkeypatch.setattr(locks, "clock", lambda: now[0])
    return now


@pytest.fixture
def cache_down(settings):
    """Redis refuses connections: TolerantRedisCache answers add() with True and get() with nothing."""
    tolerant_cache._breakers.clear()
    settings.CACHES = {
        "default": {
            "BACKEND": "calls.cache.TolerantRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    yield
    tolerant_cache._breakers.clear()


def test_one_click_holds_a_number_and_another_is_refused(db, clock):
    assert acquire_dial_lock(NUMBER, owner="click-1") is True
    assert acquire_dial_lock(NUMBER, owner="click-2") is False
    assert acquire_dial_lock("+442079460124", owner="click-2") is True  # another number is free
    lock = DialLock.objects.get(number=NUMBER)
    assert lock.owner == "click-1"
    assert lock.expires_at == clock[0] + timedelta(seconds=DIAL_LOCK_SECONDS)


def test_a_released_number_can_be_taken_again(db, clock):
    acquire_dial_lock(NUMBER, owner="click-1")
    release_dial_lock(NUMBER, owner="click-1")
    assert not DialLock.objects.exists()
    assert acquire_dial_lock(NUMBER, owner="click-2") is True


def test_only_the_holder_can_release(db, clock):
    acquire_dial_lock(NUMBER, owner="click-1")
    release_dial_lock(NUMBER, owner="click-2")
    assert acquire_dial_lock(NUMBER, owner="click-2") is False


def test_an_expired_lock_passes_to_the_next_click_and_the_old_holder_cannot_free_it(db, clock):
    acquire_dial_lock(NUMBER, owner="click-1", seconds=30)
    clock[0] += timedelta(seconds=29)
    assert acquire_dial_lock(NUMBER, owner="click-2") is False
    clock[0] += timedelta(seconds=1)
    assert acquire_dial_lock(NUMBER, owner="click-2") is True
    release_dial_lock(NUMBER, owner="click-1")  # the first click, finishing late
    assert DialLock.objects.get(number=NUMBER).owner == "click-2"


def test_the_lock_holds_with_the_cache_down(db, clock, cache_down):
    from django.core.cache import cache

    assert cache.add(f"dialling:{NUMBER}", "x") is True  # what the cache alone would have promised both
    assert cache.add(f"dialling:{NUMBER}", "y") is True
    assert acquire_dial_lock(NUMBER, owner="click-1") is True
    assert acquire_dial_lock(NUMBER, owner="click-2") is False


def test_taking_and_freeing_are_one_statement_each(db, clock, django_assert_num_queries):
    with django_assert_num_queries(1):
        acquire_dial_lock(NUMBER, owner="click-1")
    with django_assert_num_queries(1):
        release_dial_lock(NUMBER, owner="click-1")


def test_a_click_takes_its_number_and_its_contact_in_one_statement(db, clock, django_assert_num_queries):
    """A number and a contact (calls/calling/placing.py): what another click holds is named, the rest is taken (the
    click's transaction rolls it back), and freeing is one statement too."""
    acquire_dial_lock("contact:7", owner="click-1")

    with django_assert_num_queries(1):
        taken = locks.acquire_dial_locks([NUMBER, "contact:7"], owner="click-2")
    assert taken == ["contact:7"]
    assert locks.acquire_dial_locks(["+442079460124", "contact:8"], owner="click-3") == []
    with django_assert_num_queries(1):
        locks.release_dial_locks(["+442079460124", "contact:8", "contact:7"], owner="click-3")
    assert dict(DialLock.objects.values_list("number", "owner")) == {NUMBER: "click-2", "contact:7": "click-1"}


@pytest.mark.django_db(transaction=True)
def test_of_many_clicks_at_the_same_moment_exactly_one_gets_the_number(cache_down):
    """Real concurrent connections racing for one number (PostgreSQL: SQLite's test database is one connection)."""
    if connection.vendor == "sqlite":
        pytest.skip("needs a database that takes concurrent writers (PostgreSQL, as CI and production use)")
    clicks = 8
    start = threading.Barrier(clicks)
    results: list[bool] = []

    def click(n: int) -> None:
        try:
            start.wait(5)
            results.append(acquire_dial_lock(NUMBER, owner=f"click-{n}"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(n,)) for n in range(clicks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False] * (clicks - 1) + [True]
