"""vccweb's own 404 and 500 pages with DEBUG on (the demo), unless DEBUG_TECHNICAL_ERRORS asks for Django's."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.test_settings import load

pytestmark = pytest.mark.django_db

FRIENDLY = "calls.errorpages.FriendlyErrorPages"


@pytest.fixture
def demo(settings):
    """The settings `make run` gives: DEBUG on, the middleware that DEBUG adds."""
    settings.DEBUG = True  # the tests' settings are read with DEBUG on (pyproject's env), so the middleware is there
    assert FRIENDLY in settings.MIDDLEWARE
    return settings


def test_the_demo_adds_the_friendly_pages_and_the_flag_or_production_does_not(monkeypatch):
    assert FRIENDLY in load(monkeypatch, DEBUG="true")["MIDDLEWARE"]
    assert FRIENDLY not in load(monkeypatch, DEBUG="true", DEBUG_TECHNICAL_ERRORS="true")["MIDDLEWARE"]
    production = {"DEBUG": "false", "SECRET_KEY": "x" * 60 + "-0123456789", "ALLOWED_HOSTS": "crm.example.com"}
    assert FRIENDLY not in load(monkeypatch, **production)["MIDDLEWARE"]


def test_an_unknown_address_shows_the_friendly_404_with_debug_on(demo, agent_client):
    response = agent_client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page and 'class="brand"' in page
    assert "URLconf" not in page and "Using the URLconf" not in page  # Django's technical page lists every URL


def test_a_views_404_shows_the_friendly_page_with_debug_on(demo, agent_client):
    response = agent_client.get("/contacts/999999/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    assert "Raised by" not in response.content.decode()


def test_the_admins_404_shows_the_friendly_page_with_debug_on(demo, admin_client):
    response = admin_client.get("/admin/no/such/thing/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_a_missing_slash_is_still_added(demo, agent_client):
    response = agent_client.get("/contacts")
    assert response.status_code == 301 and response["Location"] == "/contacts/"


def test_a_fault_shows_the_friendly_500_with_debug_on_and_is_logged(demo, agent_user, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("calls.views.contacts._contacts_page", broken)
    client = Client(raise_request_exception=False)
    client.force_login(agent_user)
    response = client.get("/contacts/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "Traceback" not in page and "a bug" not in page
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


def test_the_test_client_still_sees_the_fault(demo, agent_client, monkeypatch):
    monkeypatch.setattr("calls.views.contacts._contacts_page", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        agent_client.get("/contacts/")


def test_with_the_flag_debug_shows_djangos_technical_page(demo, agent_client):
    demo.DEBUG_TECHNICAL_ERRORS = True
    assert "URLconf" in agent_client.get("/no-such-page/").content.decode()


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_an_unknown_address_shows_the_friendly_404_too(settings):
    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.test import AsyncClient

    settings.DEBUG = True
    try:
        response = await AsyncClient().get("/no-such-page/")
    finally:
        await sync_to_async(connections.close_all)()
    assert response.status_code == 404
    assert "Page not found" in response.content.decode() and "URLconf" not in response.content.decode()
