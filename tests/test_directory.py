"""The click's cached facts (calls/directory.py): the caller's agent and usable callback numbers are read once,
and any change an admin or the VCC sync makes is seen by the very next click."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.test import Client

from calls import calling, directory
from calls.models import Agent, CallbackNumber, ConsentRule

pytestmark = pytest.mark.django_db


def offered(user) -> list[str]:
    return [n.number for n in calling.facts._clid_options(user, calling.caller_for(user), [])]


@pytest.fixture
def leeds(db) -> CallbackNumber:
    return CallbackNumber.objects.create(number="+441134960000", label="Leeds")


@pytest.fixture
def warm(agent_user, london, leeds, django_assert_num_queries):
    """The caller's facts, read once and cached: the next read asks the database nothing."""
    offered(agent_user)
    with django_assert_num_queries(0):
        assert sorted(offered(agent_user)) == [leeds.number, london.number]


def test_a_read_is_cached_under_the_generation_and_read_again_after_a_change(
    agent_user, warm, leeds, django_assert_num_queries
):
    generation = cache.get(directory.GENERATION_KEY)
    directory.changed()
    assert cache.get(directory.GENERATION_KEY) == generation + 1
    with django_assert_num_queries(2):  # the agent and the numbers, read again
        assert leeds.number in offered(agent_user)


def test_a_change_is_seen_again_when_its_transaction_commits(django_capture_on_commit_callbacks):
    directory.changed()
    before = cache.get(directory.GENERATION_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        directory.changed()
    assert cache.get(directory.GENERATION_KEY) == before + 2  # at the change, and at the commit


def test_a_number_deactivated_by_the_admin_action_is_no_longer_offered(agent_user, warm, admin_role_user, leeds):
    admin = Client()
    admin.force_login(admin_role_user)
    admin.post("/admin/calls/callbacknumber/", {"action": "deactivate", "_selected_action": [leeds.pk]})
    assert leeds.number not in offered(agent_user)

    admin.post("/admin/calls/callbacknumber/", {"action": "activate", "_selected_action": [leeds.pk]})
    assert leeds.number in offered(agent_user)


def test_a_number_restricted_to_someone_else_is_no_longer_offered(agent_user, other_agent_user, warm, leeds):
    leeds.allowed_agents.add(other_agent_user.agent)
    assert leeds.number not in offered(agent_user)


def test_a_number_vcc_no_longer_lists_for_the_agent_is_no_longer_offered(agent_user, other_agent_user, warm, london):
    CallbackNumber.objects.update(vcc_listing_synced_at="2026-11-29T00:00:00Z")
    directory.changed()  # as the sync does after its update()
    london.vcc_listed_for.set([other_agent_user.agent])
    assert london.number not in offered(agent_user)


def test_a_number_allowed_to_a_group_is_offered_once_the_agent_joins_it(agent_user, warm, leeds, support):
    leeds.allowed_groups.add(support)
    assert leeds.number not in offered(agent_user)
    support.members.add(agent_user.agent)
    assert leeds.number in offered(agent_user)


def test_an_agent_deactivated_or_unlinked_is_no_longer_the_callers(agent_user, warm):
    agent = Agent.objects.get(user=agent_user)
    agent.is_active = False
    agent.save()
    assert calling.caller_for(agent_user).agent is None
    agent.is_active = True
    agent.save()
    assert calling.caller_for(agent_user).agent == agent
    agent.delete()
    assert calling.caller_for(agent_user).agent is None


def test_without_a_cache_generation_nothing_is_cached_and_the_answer_is_still_right():
    cache.clear()
    reads = []
    assert directory.remembered("k", lambda: reads.append(1) or "answer") == "answer"
    assert cache.get("k") is None  # no generation yet: not cached, but one is started
    assert directory.remembered("k", lambda: reads.append(1) or "answer") == "answer"
    assert directory.remembered("k", lambda: reads.append(1) or "answer") == "answer"
    assert len(reads) == 2


def test_a_click_reads_its_agent_numbers_and_consent_table_in_one_cache_round_trip(
    agent_user, warm, leeds, monkeypatch, django_assert_num_queries
):
    calling.facts._click_facts(agent_user, [])  # the consent table joins the cached facts
    table = dict(ConsentRule.objects.values_list("country", "consent"))
    reads = []
    real = cache.get_many
    monkeypatch.setattr(cache, "get_many", lambda keys, *a, **k: reads.append(keys) or real(keys, *a, **k))
    with django_assert_num_queries(0):
        caller, numbers, consent = calling.facts._click_facts(agent_user, [])
    assert len(reads) == 1
    assert caller.agent == agent_user.agent
    assert leeds in numbers
    assert consent == table


def test_a_consent_rule_an_admin_adds_is_used_by_the_next_click(agent_user, warm):
    assert "ZA" not in calling.facts._click_facts(agent_user, [])[2]
    rule = ConsentRule.objects.create(country="ZA", consent="TwoParty")
    assert calling.facts._click_facts(agent_user, [])[2]["ZA"] == "TwoParty"
    rule.consent = "OneParty"
    rule.save()
    assert calling.consent_rules()["ZA"] == "OneParty"
    rule.delete()
    assert "ZA" not in calling.consent_rules()


def test_a_user_save_moves_the_user_generation_at_once_and_at_commit_but_a_login_does_not(
    agent_user, django_capture_on_commit_callbacks
):
    from calls import auth

    auth.permissions_changed()
    before = cache.get(auth.GENERATION_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        agent_user.first_name = "Changed"
        agent_user.save()
    assert cache.get(auth.GENERATION_KEY) == before + 2
    agent_user.save(update_fields=["last_login"])
    assert cache.get(auth.GENERATION_KEY) == before + 2


def test_deleting_a_user_moves_both_generations(agent_user):
    from calls import auth

    auth.permissions_changed()
    directory.changed()
    users, facts = cache.get(auth.GENERATION_KEY), cache.get(directory.GENERATION_KEY)
    agent_user.delete()
    assert cache.get(auth.GENERATION_KEY) > users
    assert cache.get(directory.GENERATION_KEY) > facts


def test_without_a_shared_cache_entries_live_five_seconds(agent_user, warm, monkeypatch):
    from calls import cache as tolerant

    monkeypatch.setattr(tolerant, "LOCAL_SECONDS", 5)  # as in production (tests/conftest.py lifts it)
    stored = []
    real = cache.set_many
    monkeypatch.setattr(cache, "set_many", lambda data, timeout, *a: stored.append(timeout) or real(data, timeout))
    directory.changed()
    offered(agent_user)
    assert stored and set(stored) == {5}


def _read_held_up(key: str, generation: object, read, results: dict, name: str) -> threading.Thread:
    """directory.read_once in a thread of its own; what it answers (or raises) goes into results[name]."""

    def run() -> None:
        try:
            results[name] = directory.read_once(key, generation, read)
        except Exception as exc:  # noqa: BLE001 - compared below
            results[name] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _until(predicate) -> None:
    with directory._flights_lock:
        assert directory._flights_lock.wait_for(predicate, timeout=60)


def test_threads_missing_the_same_entry_at_once_read_it_once_and_each_get_its_own_copy():
    """When an entry expires, every request in flight misses it: one reads, the others take its answer."""
    release, reads, results = threading.Event(), [], {}

    def slow_read():
        reads.append("first")
        assert release.wait(timeout=60)
        return {"GB": ["08:00", "21:00"]}

    first = _read_held_up("hours", 7, slow_read, results, "first")
    _until(lambda: ("hours", 7) in directory._flights)
    second = _read_held_up("hours", 7, lambda: reads.append("second") or {}, results, "second")
    _until(lambda: directory._flights[("hours", 7)].waiting == 1)
    other_generation = _read_held_up("hours", 8, lambda: reads.append("newer") or {"GB": []}, results, "newer")
    other_generation.join()  # an admin's change since (another generation) is read, not waited for
    release.set()
    first.join()
    second.join()
    assert reads == ["first", "newer"]
    assert results["first"] == results["second"] == {"GB": ["08:00", "21:00"]}
    assert results["first"] is not results["second"]  # a copy each, as from the cache
    assert results["newer"] == {"GB": []}
    assert directory._flights == {}


def test_a_thread_waiting_on_a_read_that_fails_reads_for_itself():
    release, results = threading.Event(), {}

    def failing_read():
        assert release.wait(timeout=60)
        raise RuntimeError("the database went away")

    first = _read_held_up("hours", 7, failing_read, results, "first")
    _until(lambda: ("hours", 7) in directory._flights)
    second = _read_held_up("hours", 7, lambda: "read again", results, "second")
    _until(lambda: directory._flights[("hours", 7)].waiting == 1)
    release.set()
    first.join()
    second.join()
    assert isinstance(results["first"], RuntimeError)
    assert results["second"] == "read again"
    assert directory._flights == {}


def test_a_read_inside_a_transaction_is_not_shared_with_other_threads():
    """What a transaction reads may not be committed: no other thread waits for it (this test runs in one)."""
    assert directory.read_once("hours", 7, lambda: ("hours", 7) not in directory._flights) is True
