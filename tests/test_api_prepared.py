"""The call log's pages run as statements each connection prepared once (calls/prepared.py execute_prepared):
the same pages, each filter and cursor its own statement, and a statement PostgreSQL will not prepare is planned at
each page as before."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls import prepared
from tests._api_calls import alex, get, log_calls  # noqa: F401  # its fixtures, as that module makes them

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL writes the pages' JSON"),
]


def page(token: str, params: dict) -> tuple[dict, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = get(token, params=params)
    assert response.status_code == 200, response.content
    return response.json(), [q["sql"] for q in captured.captured_queries]


def test_a_page_is_prepared_once_a_connection_and_then_executed(alex, log_calls):  # noqa: F811
    prepared._prepared.clear()
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what an earlier test prepared on this connection
    first, sql = page(alex, {"limit": 2})
    assert sum(s.startswith("PREPARE vccweb_") for s in sql) == 1
    assert sum("EXECUTE vccweb_" in s for s in sql) == 1

    again, sql = page(alex, {"limit": 2})
    assert again == first
    assert not any(s.startswith("PREPARE") for s in sql) and sum("EXECUTE vccweb_" in s for s in sql) == 1

    # This process forgetting what the connection prepared (as the test above did first): PREPARE is refused as a
    # duplicate, and the statement the connection holds is used, not given up for planning at each page.
    prepared._prepared.clear()
    _, sql = page(alex, {"limit": 2})
    assert sum("EXECUTE vccweb_" in s for s in sql) == 1

    # The next page (a cursor) and a filter are statements of their own, each prepared once.
    _, sql = page(alex, {"limit": 2, "after": first["next"].split("after=")[1].split("&")[0]})
    assert sum(s.startswith("PREPARE") for s in sql) == 1
    _, sql = page(alex, {"outcome": "busy"})
    assert sum(s.startswith("PREPARE") for s in sql) == 1
    assert len(prepared._prepared[connection.connection]) == 3


def test_the_pages_are_the_same_prepared_or_not(alex, log_calls, monkeypatch):  # noqa: F811
    prepared._prepared.clear()
    pages = [page(alex, params)[0] for params in ({}, {"limit": 2}, {"outcome": "answered"}, {"sort": "duration"})]
    monkeypatch.setattr(prepared, "MAX_PREPARED", 0)  # none prepared: every page planned as before
    prepared._prepared.clear()
    unprepared = []
    for params in ({}, {"limit": 2}, {"outcome": "answered"}, {"sort": "duration"}):
        body, sql = page(alex, params)
        assert not any("PREPARE" in s or "EXECUTE" in s for s in sql)
        unprepared.append(body)
    assert unprepared == pages


def test_a_page_postgresql_will_not_prepare_is_planned_each_time(alex, log_calls, monkeypatch, caplog):  # noqa: F811
    prepared._prepared.clear()
    expected = page(alex, {})[0]
    prepared._prepared.clear()
    monkeypatch.setattr(prepared, "_numbered", lambda sql: "SELECT no_such_column FROM calls_call")

    with caplog.at_level(logging.WARNING, logger="calls.prepared"):
        assert page(alex, {})[0] == expected
        body, sql = page(alex, {})
    assert body == expected and not any("PREPARE" in s or "EXECUTE" in s for s in sql)
    assert "could not be prepared" in caplog.text


def test_without_the_pool_a_page_is_planned_as_it_comes(alex, log_calls, monkeypatch):  # noqa: F811
    """DB_POOL=false (behind PgBouncer, whose transaction mode may run an EXECUTE on another server connection than
    its PREPARE): no statement is prepared, and the page is the same."""
    with_pool, _ = page(alex, {"limit": 2})
    options = {k: v for k, v in connection.settings_dict["OPTIONS"].items() if k != "pool"}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    without, sql = page(alex, {"limit": 2})
    assert without == with_pool
    assert not any(s.startswith("PREPARE") or "EXECUTE vccweb_" in s for s in sql)
