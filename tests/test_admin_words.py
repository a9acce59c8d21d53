"""The admin's words: one message for a refused action, the sync preview in words, roles called roles."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from calls.models import Agent
from tests._jobs import run_jobs
from tests._sim import fresh_simulator

pytestmark = pytest.mark.django_db

NUMBERS = "/admin/calls/callbacknumber/"


def said(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def test_deactivating_only_the_default_is_one_refusal_and_no_zero_done(admin_client, london):
    response = admin_client.post(NUMBERS, {"action": "deactivate", "_selected_action": [london.pk]})
    assert said(response) == [("error", f"{london} is the account default: make another number the default first.")]


def test_deactivating_the_default_and_another_says_both_and_plainly(admin_client, london, manchester):
    data = {"action": "deactivate", "_selected_action": [london.pk, manchester.pk]}
    messages = said(admin_client.post(NUMBERS, data))
    assert [level for level, _ in messages] == ["error", "success"]
    assert messages[1][1] == "Deactivated 1 number: they are no longer offered."


def test_nothing_to_do_is_said_as_information_not_success(admin_client, london, manchester):
    response = admin_client.post(NUMBERS, {"action": "activate", "_selected_action": [manchester.pk]})
    assert said(response) == [("info", "The selected numbers were already active.")]


def test_the_sync_preview_says_what_changed_in_words(admin_client, jobs):
    sim = fresh_simulator()
    next(sim)
    try:
        Agent.objects.create(display_id="1001", name="Alex M.", is_active=False)
        admin_client.post("/admin/calls/syncrun/run/", {"preview": "Preview"})
        run_jobs(jobs)
        page = admin_client.get("/admin/calls/syncrun/run/").content.decode()
    finally:
        sim.close()
    assert "updated agent 1001 Alex Morgan (" in page
    assert "name: “Alex M.” → “Alex Morgan”" in page
    assert "active: no → yes" in page
    assert "is_active" not in page and "vcc_user_id" not in page


def test_the_admin_calls_groups_roles(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert ">Roles<" in index and ">Groups<" not in index
    listing = admin_client.get("/admin/auth/group/").content.decode()
    assert "Select role to change" in listing
    users = admin_client.get("/admin/auth/user/").content.decode()
    assert "By role" in users


@pytest.mark.parametrize(
    "url", ["/admin/", "/admin/calls/callbacknumber/", "/admin/calls/callbacknumber/add/", "/admin/auth/user/"]
)
def test_every_admin_page_links_the_favicon(admin_client, url):
    page = admin_client.get(url).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg"' in page or 'rel="icon" href="/static/favicon' in page


def test_the_admin_login_links_the_favicon_too(client):
    assert 'rel="icon"' in client.get("/admin/login/").content.decode()


def test_a_callback_number_with_an_extension_is_refused_without_pointing_at_notes_it_has_none(admin_client):
    response = admin_client.post(
        f"{NUMBERS}add/", {"number": "0161 496 0999 ext 5", "label": "Sales", "is_active": "on"}
    )

    page = response.content.decode()
    assert response.status_code == 200 and "has an extension (5), which VCC cannot dial" in page
    assert "enter the number without it." in page and "in the notes" not in page


def test_the_admin_says_sandbox_as_every_page_does(admin_client, settings):
    settings.VCC_SANDBOX = True
    page = admin_client.get("/admin/").content.decode()
    assert "<strong>Sandbox</strong> — calls go to the built-in VCC simulator" in page
    assert "css/admin" in page  # its style, in a file: the CSP allows no inline style
    settings.VCC_SANDBOX = False
    assert "<strong>Sandbox</strong>" not in admin_client.get("/admin/").content.decode()
