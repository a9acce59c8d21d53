"""No secret in a log line or on a page: passwords, the VCC API authentication token, bearer tokens, SECRET_KEY.

Everything is logged at DEBUG, every logger, through the production JSON formatter, while a person logs in
(and fails to), opens a contact and places a call in sandbox mode, and a page fails.
"""

from __future__ import annotations

import io
import logging

import pytest
from django.test import Client

from calls.observability import JsonFormatter, RequestIdFilter
from tests._sim import click, fresh_simulator, primary
from tests.conftest import PASSWORD


@pytest.fixture
def sim():
    yield from fresh_simulator()


@pytest.fixture
def all_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore", "django.request")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_no_secret_is_logged_or_shown_while_logging_in_and_calling(agent_user, contact, sim, all_logs, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    wrong = client.post("/login/", {"username": "alex", "password": "Tr0ub4dor&3-wrong"})
    right = client.post("/login/", {"username": "alex", "password": PASSWORD})
    assert right.status_code == 302
    pages = [wrong, client.get(f"/contacts/{contact.pk}/"), click(client, primary(contact))]
    pages.append(client.get("/no/such/page/"))

    bearer_tokens = list(sim.tokens)
    assert bearer_tokens, "the click should have fetched a VCC token"
    secrets = {
        "password": PASSWORD,
        "wrong password": "Tr0ub4dor&3-wrong",
        "VCC API token": settings.VCC_API_TOKEN,
        "VCC client secret": settings.VCC_CLIENT_SECRET,
        "SECRET_KEY": settings.SECRET_KEY,
        **{f"bearer token {n}": token for n, token in enumerate(bearer_tokens)},
    }
    logged = all_logs.getvalue()
    assert '"logger": "vccweb.request"' in logged  # the logs were captured
    for name, secret in secrets.items():
        assert secret not in logged, f"the {name} is in the log"
        for page in pages:
            assert secret not in page.content.decode(), f"the {name} is on {page.request['PATH_INFO']}"
