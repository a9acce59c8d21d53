"""The app as production serves it: ASGI, with the middleware in async mode and the click in the event loop.

Most tests use Django's sync test client, which runs the middleware chain in sync mode. These go through Django's
AsyncClient (the ASGI handler) and check what only that path does: middleware that runs in the event loop and goes
to the sync thread only to save a session, store messages or render the CSRF failure page; users and
permissions read from the cache with no thread hop; a click that places its call.
"""

from __future__ import annotations

import uuid

import pytest
from asgiref import sync
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import AsyncClient

from calls.auth import CachedPermissionBackend
from calls.models import Call, CallbackNumber, Contact, ContactPhone
from calls.roles import ADMIN
from tests._sim import agent_user as make_agent_user
from tests._sim import fresh_simulator
from tests.conftest import PASSWORD
from tests.test_contacts import phone_data

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true", "HX-Target": "dialer"}


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    yield
    # The ORM ran in asgiref's executor thread, whose connection would keep the test database from being dropped.
    await sync_to_async(connections.close_all)()


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    """The name of every function sent to the sync thread while the test runs."""
    sent: list[str] = []
    real = sync.SyncToAsync.__call__

    async def call(self, *args, **kwargs):
        sent.append(getattr(self.func, "__qualname__", type(self.func).__qualname__))
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", call)
    return sent


@pytest.fixture
def agent(make_user):
    return make_agent_user(make_user, "agent", "1001", "Alice Agent")


@pytest.fixture
def phone(db) -> ContactPhone:
    CallbackNumber.objects.create(number="+442079460100", label="London main", is_default=True)
    contact = Contact.objects.create(name="Brightwater Energy")
    return ContactPhone.objects.create(contact=contact, number="+442079460123", is_primary=True)


async def logged_in(user, **options) -> AsyncClient:
    client = AsyncClient(**options)
    await client.aforce_login(user)
    return client


async def click(client: AsyncClient, phone: ContactPhone, request_id: str | None = None, **data: str):
    body = {"call": f"me:{phone.pk}", "request_id": request_id or str(uuid.uuid4()), **data}
    return await client.post(f"/contacts/{phone.contact_id}/call/", body, headers=HTMX)


async def test_a_click_places_its_call_with_no_cache_read_and_only_the_csrf_check_of_middleware_in_a_thread(
    agent, phone, hops
):
    client = await logged_in(agent)
    await client.get(f"/contacts/{phone.contact_id}/")  # reads the user from the database and caches it
    hops.clear()

    response = await click(client, phone)

    assert response.status_code == 200
    assert b'data-call-state="live"' in response.content
    assert await Call.objects.filter(state=Call.State.LIVE).acount() == 1
    in_thread = [name for name in hops if "Middleware" in name or "Cache" in name or name == "QuerySet.get"]
    assert in_thread == ["CsrfViewMiddleware.process_view"]  # the user came from the cache; the rest in the loop
    assert "_db.<locals>.run" in hops  # the click's own database work, which belongs in the thread
    assert "_render_panel" not in hops  # its answer, the panel of a live call, is rendered in the event loop


async def test_the_panel_of_a_live_call_is_polled_from_the_event_loop(agent, phone, hops):
    client = await logged_in(agent)
    await click(client, phone)
    call = await Call.objects.aget()
    hops.clear()

    response = await client.get(f"/calls/{call.pk}/panel/", headers=HTMX)

    assert response.status_code == 200
    assert b'data-call-state="live"' in response.content
    assert "_render_panel" not in hops
    assert "_visible_call" in hops  # finding the row (with its parties) is the thread's work


async def test_a_failed_click_is_answered_from_the_event_loop_too(agent, phone, sim, hops):
    sim.set_fault("place_call", status=503)
    client = await logged_in(agent)

    response = await click(client, phone)

    assert response.status_code == 200
    assert b'data-call-state="failed"' in response.content
    assert "_render_panel" not in hops


async def test_an_ended_call_clicked_again_is_answered_from_the_thread(agent, phone, hops):
    """The same click sent again after its call ended: the panel's wrap-up form lists the disposition codes."""
    client = await logged_in(agent)
    request_id = str(uuid.uuid4())
    await click(client, phone, request_id=request_id)
    await Call.objects.filter(request_id=request_id).aupdate(state=Call.State.ENDED)
    hops.clear()

    response = await click(client, phone, request_id=request_id)

    assert b'data-call-state="ended"' in response.content
    assert b'name="disposition"' in response.content
    assert "_render_panel" in hops


async def test_a_panel_that_reaches_for_the_database_in_the_loop_is_rendered_in_the_thread(
    agent, phone, hops, monkeypatch, caplog
):
    client = await logged_in(agent)
    monkeypatch.setattr(Call, "destination", property(lambda call: Contact.objects.get(pk=call.contact_id).name))

    response = await click(client, phone)

    assert response.status_code == 200
    assert b"To Brightwater Energy" in response.content
    assert "_render_panel" in hops
    assert "reached for the database in the event loop" in caplog.text


async def test_a_post_without_the_csrf_token_gets_the_apps_403_page_and_places_nothing(agent, phone, sim):
    client = await logged_in(agent, enforce_csrf_checks=True)

    response = await click(client, phone)

    assert response.status_code == 403
    assert b"<html" in response.content  # the failure page, rendered in the thread (it reads the user)
    assert await Call.objects.acount() == 0
    assert sim.calls_placed == 0


async def test_a_login_under_asgi_saves_the_session_and_the_next_page_knows_the_user(make_user):
    await sync_to_async(make_user)("alice", ADMIN)
    client = AsyncClient()

    response = await client.post("/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    page = await client.get("/contacts/")
    assert page.status_code == 200
    assert b"alice" in page.content


async def test_a_message_added_under_asgi_shows_on_the_next_page(admin_role_user):
    client = await logged_in(admin_role_user)

    data = {"name": "Harbour Lights"} | phone_data({"label": "work", "number": "020 7946 0555", "is_primary": "on"})
    response = await client.post("/contacts/new/", data)

    assert response.status_code == 302, response.content[:500]
    page = await client.get(response["Location"])
    assert b"Saved Harbour Lights." in page.content


# --- The user and their permissions, from the cache ----------------------------------------------------------


def test_a_user_is_read_from_the_database_once_then_from_the_cache(agent, django_assert_num_queries):
    backend = CachedPermissionBackend()
    assert agent.has_perm("calls.place_call")  # starts the generation, as the first page does
    assert backend.get_user(agent.pk) == agent
    with django_assert_num_queries(0):
        cached = backend.get_user(agent.pk)
        assert cached == agent
        assert cached.has_perm("calls.place_call")  # its permissions came in the same cache read


def test_a_deactivated_user_is_not_served_from_the_cache(agent):
    backend = CachedPermissionBackend()
    agent.has_perm("calls.place_call")
    assert backend.get_user(agent.pk) == agent

    get_user_model().objects.filter(pk=agent.pk).update(first_name="Changed")  # no signal: still cached
    assert backend.get_user(agent.pk).first_name == "Alice"
    agent.is_active = False
    agent.save()  # a save moves the generation on

    assert backend.get_user(agent.pk) is None


# --- The same with Redis, as in production ------------------------------------------------------------------


async def test_with_redis_a_click_reads_session_user_and_facts_from_the_cache(redis_cache, agent, phone, hops):
    client = await logged_in(agent)
    await client.get(f"/contacts/{phone.contact_id}/")
    hops.clear()

    response = await click(client, phone)

    assert response.status_code == 200
    assert b'data-call-state="live"' in response.content
    # Django's async cache methods read Redis on the request's thread; the database is not asked for any of it.
    assert [name for name in hops if "Middleware" in name or name == "QuerySet.get"] == [
        "CsrfViewMiddleware.process_view"
    ]
    assert await redis_cache.aget("calls:perms:generation")  # the user and their facts are cached under it


# --- Pieces -------------------------------------------------------------------------------------------------
