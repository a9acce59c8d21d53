"""Request ids: made or taken from X-Request-ID, returned, on every log line of the request; one JSON line each."""

from __future__ import annotations

import io
import json
import logging
from contextlib import contextmanager

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from calls.models import Call
from calls.observability import (
    JsonFormatter,
    RequestIdFilter,
    RequestIdMiddleware,
    current_request_id,
    new_request_id,
)
from tests._sim import click, fresh_simulator, only_call, primary


@contextmanager
def captured_json_logs():
    """What the production handler would print: JSON lines, each with the request id filled in."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def test_each_response_gets_a_new_request_id(client, db):
    first = client.get("/login/")["X-Request-ID"]
    second = client.get("/login/")["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_a_well_formed_incoming_request_id_is_kept(client, db):
    response = client.get("/login/", HTTP_X_REQUEST_ID="lb-7f3a9c2e-0001")
    assert response["X-Request-ID"] == "lb-7f3a9c2e-0001"


@pytest.mark.parametrize(
    "incoming",
    ["short", "x" * 65, "has space in it", "line\nbreak-injected", 'quote"d-0123456', "-starts-with-dash", ""],
)
def test_a_malformed_incoming_request_id_is_replaced(incoming):
    made = new_request_id(incoming)
    assert made != incoming
    assert len(made) == 32


def test_every_log_line_of_a_request_carries_its_id_and_one_line_sums_it_up(client, db):
    with captured_json_logs() as lines:
        response = client.get("/readyz", HTTP_X_REQUEST_ID="trace-abcdef012345")
        logging.getLogger("calls.anything").warning("after the request")
    assert response["X-Request-ID"] == "trace-abcdef012345"
    summary = [line for line in lines if line["logger"] == "vccweb.request"]
    assert len(summary) == 1
    assert summary[0] | {"time": None, "duration_ms": None} == {
        "time": None,
        "level": "INFO",
        "logger": "vccweb.request",
        "message": "GET /readyz 200",
        "request_id": "trace-abcdef012345",
        "method": "GET",
        "path": "/readyz",
        "status": 200,
        "duration_ms": None,
        "user_id": None,
    }
    assert summary[0]["duration_ms"] >= 0
    assert lines[-1]["message"] == "after the request"
    assert lines[-1]["request_id"] is None  # outside the request: no id leaks into later lines


def test_lines_logged_while_handling_a_request_carry_its_id():
    def view(request):
        logging.getLogger("calls.somewhere").info("working on it")
        return HttpResponse(current_request_id())

    middleware = RequestIdMiddleware(view)
    with captured_json_logs() as lines:
        response = middleware(RequestFactory().get("/x", HTTP_X_REQUEST_ID="trace-0000111122223333"))
    assert response.content == b"trace-0000111122223333"
    assert [(line["message"], line["request_id"]) for line in lines] == [
        ("working on it", "trace-0000111122223333"),
        ("GET /x 200", "trace-0000111122223333"),
    ]
    assert current_request_id() == ""


async def test_async_views_see_the_request_id_too():
    async def view(request):
        return HttpResponse(current_request_id())

    middleware = RequestIdMiddleware(view)
    response = await middleware(RequestFactory().get("/x", HTTP_X_REQUEST_ID="trace-async-0123456"))
    assert response.content == b"trace-async-0123456"
    assert response["X-Request-ID"] == "trace-async-0123456"
    assert current_request_id() == ""


def test_the_query_string_is_not_logged(client, agent_user):
    client.force_login(agent_user)
    with captured_json_logs() as lines:
        client.get("/contacts/?q=Jane+Secretname")
    summary = next(line for line in lines if line["logger"] == "vccweb.request")
    assert summary["path"] == "/contacts/"
    assert "Secretname" not in json.dumps(lines)
    assert summary["user_id"] == agent_user.pk


def test_json_lines_carry_the_traceback():
    record = logging.LogRecord("calls.x", logging.ERROR, __file__, 1, "it broke: %s", ("badly",), None)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "it broke: badly"
    assert line["level"] == "ERROR"
    assert "ValueError: boom" in line["exception"]
    assert line["request_id"] is None


def test_a_server_error_is_one_json_line_with_the_traceback_and_no_query_string(agent_client, monkeypatch, settings):
    settings.DEBUG = False
    agent_client.raise_request_exception = False

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("calls.context_processors.vccweb", broken)
    with captured_json_logs() as lines:
        response = agent_client.get("/contacts/?q=Jane+Secretname")
    assert response.status_code == 500
    [error] = [line for line in lines if line["level"] == "ERROR"]
    assert error["logger"] == "django.request"
    assert error["request_id"] == response["X-Request-ID"]
    assert "RuntimeError: a bug" in error["exception"]
    assert "Secretname" not in json.dumps(lines)


def test_djangos_own_line_for_a_5xx_that_a_view_returned_carries_the_request_id(client, db, monkeypatch):
    # Django logs it ("Service Unavailable: /readyz") after the middleware has answered and reset the current id.
    monkeypatch.setattr("calls.views.ops.database_health", lambda: "not answering (OperationalError)")
    with captured_json_logs() as lines:
        response = client.get("/readyz", HTTP_X_REQUEST_ID="trace-503-abcdef0123")
    assert response.status_code == 503
    [django_line] = [line for line in lines if line["logger"] == "django.request"]
    assert django_line["message"] == "Service Unavailable: /readyz"
    assert django_line["request_id"] == "trace-503-abcdef0123"
    assert all(line["request_id"] == "trace-503-abcdef0123" for line in lines)


@pytest.fixture
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.mark.parametrize("incoming", ["lb-click-0123456789", None], ids=["load-balancers-id", "id-made-here"])
def test_a_call_row_keeps_the_id_of_the_request_that_placed_it(agent_client, contact, london, sim, incoming):
    if incoming:
        agent_client.defaults["HTTP_X_REQUEST_ID"] = incoming
    response = click(agent_client, primary(contact))
    assert response.status_code == 200
    call = only_call()
    assert call.state == Call.State.LIVE
    # The load balancer's id, kept, or the one made for the request: the id its log lines and response carry.
    assert call.trace_id == response["X-Request-ID"]
    if incoming:
        assert call.trace_id == incoming
    assert call.trace_id != str(call.request_id)  # not the click's own key, sent by the page
