"""API tokens, made and revoked: a person's own tokens page (calls/views/tokens.py), the admin's list and its revoke
action (calls/admin/tokens.py), and `manage.py create_api_token`."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.models import ApiToken, DispositionCode
from calls.models.api import digest
from tests.conftest import create_admin_role_user, create_user

pytestmark = pytest.mark.django_db

PAGE = "/profile/tokens/"
API = "/api/v1/dispositions"
ADMIN_LIST = "/admin/calls/apitoken/"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def revoke_url(row: ApiToken) -> str:
    return f"/profile/tokens/{row.pk}/revoke/"


@pytest.fixture
def admin_client_(db) -> Client:
    return logged_in(create_admin_role_user())


def make(agent_user, caplog, **data) -> tuple[HttpResponse, str]:
    """POST the new-token form as agent_user; return the answer and the token it shows."""
    with caplog.at_level(logging.INFO, logger="calls.tokens"):
        response = logged_in(agent_user).post(PAGE, {"name": "Helpdesk", "scopes": ["calls:read"], **data})
    shown = response.content.decode().split('id="new-token"')[1].split('value="')[1].split('"')[0]
    return response, shown


# --- The page ------------------------------------------------------------------------------------------------


def test_it_makes_a_token_shows_it_once_and_keeps_only_its_hash(agent_user, caplog):
    DispositionCode.objects.create(code="SALE", description="Sold", position=1)
    response, token = make(agent_user, caplog)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    row = ApiToken.objects.get(user=agent_user)
    assert row.name == "Helpdesk" and row.scopes == ["calls:read"] and row.expires_at is None
    assert token.startswith(row.prefix + "_") and row.digest == digest(token)
    assert token not in str(list(ApiToken.objects.values_list()))  # only its hash is stored
    again = logged_in(agent_user).get(PAGE)
    assert row.prefix in again.content.decode() and token not in again.content.decode()  # shown once
    # It works against the API, acting as its owner, within its scope.
    assert Client().get(API, headers=bearer(token)).status_code == 200
    # Logged: who, which token, its scopes; never the token itself.
    assert f"API token {row.prefix} (Helpdesk) of alex created by alex; scopes calls:read" in caplog.text
    assert token not in caplog.text


def test_the_same_form_sent_twice_makes_one_token(agent_user):
    """A reload of the answer (which shows the token) sends the form again: it makes no second token."""
    client = logged_in(agent_user)
    page = client.get(PAGE).content.decode()
    once = re.search(r'name="once" value="([0-9a-f-]+)"', page)[1]
    data = {"name": "Helpdesk", "scopes": ["calls:read"], "once": once}

    first = client.post(PAGE, data)
    again = client.post(PAGE, data)

    assert ApiToken.objects.filter(user=agent_user).count() == 1
    assert first.context["new_token"] and not again.context["new_token"]
    assert "This form was sent already" in again.content.decode()
    assert client.get(PAGE).content.decode().count('name="once"') == 1  # a fresh form each time the page is read
    assert re.search(r'name="once" value="([0-9a-f-]+)"', client.get(PAGE).content.decode())[1] != once


def test_a_token_can_be_given_an_expiry_in_days(agent_user, caplog):
    make(agent_user, caplog, expires_in_days="30", scopes=["contacts:read", "calls:write"])

    row = ApiToken.objects.get(user=agent_user)
    assert row.scopes == ["calls:write", "contacts:read"]
    assert abs(row.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"name": "", "scopes": ["calls:read"]}, "Give the token a name"),
        ({"name": "   ", "scopes": ["calls:read"]}, "Give the token a name"),
        ({"name": "Helpdesk typed"}, "Tick at least one scope"),
        ({"name": "Helpdesk typed", "scopes": ["calls:delete"]}, "calls:delete is not a scope"),
        ({"name": "Helpdesk typed", "scopes": ["calls:read"], "expires_in_days": "0"}, "at least 1 day"),
        ({"name": "Helpdesk typed", "scopes": ["calls:read"], "expires_in_days": "-3"}, "at least 1 day"),
        ({"name": "Helpdesk typed", "scopes": ["calls:read"], "expires_in_days": "soon"}, "whole number of days"),
        ({"name": "Helpdesk typed", "scopes": ["calls:read"], "expires_in_days": "²"}, "whole number of days"),
        ({"name": "Helpdesk typed", "scopes": ["calls:read"], "expires_in_days": "9" * 50}, "at most 3,650 days"),
        ({"name": "x" * 101, "scopes": ["calls:read"]}, "under 100 characters"),
        ({"name": "nul\x00", "scopes": ["calls:read"]}, "Null characters are not allowed"),
    ],
)
def test_a_refusal_says_what_to_fix_and_keeps_what_was_typed(agent_user, data, says):
    response = logged_in(agent_user).post(PAGE, {"expires_in_days": "", **data})

    assert response.status_code == 200
    page = response.content.decode()
    assert says in page and "The token was not made" in page
    assert not ApiToken.objects.exists() and 'id="new-token"' not in page
    if data["name"] == "Helpdesk typed":
        assert 'value="Helpdesk typed"' in page
    if data.get("scopes") == ["calls:read"]:
        assert 'value="calls:read" id="id_scopes_2" checked' in page  # the ticked scope stays ticked


def test_the_page_lists_the_persons_own_tokens_only_with_their_state(agent_user, other_agent_user):
    ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read", "contacts:read"])
    gone, _ = ApiToken.issue(agent_user, name="Old script", scopes=["calls:write"])
    ApiToken.objects.filter(pk=gone.pk).update(revoked_at=timezone.now())
    ApiToken.issue(agent_user, name="Trial", scopes=["calls:read"], expires_at=timezone.now() - timedelta(days=1))
    theirs, _ = ApiToken.issue(other_agent_user, name="Tom's warehouse", scopes=["calls:read"])

    page = logged_in(agent_user).get(PAGE).content.decode()

    assert "Helpdesk" in page and "Old script" in page and "Trial" in page
    assert "<code>calls:read</code> <code>contacts:read</code> " in page
    assert ">active<" in page and ">revoked<" in page and ">expired<" in page
    assert page.count("Revoke…") == 1  # only the active one can be revoked
    assert "Tom&#x27;s warehouse" not in page and theirs.prefix not in page


def test_the_page_reads_the_same_queries_for_many_tokens(agent_user, django_assert_num_queries):
    client = logged_in(agent_user)
    ApiToken.issue(agent_user, name="First", scopes=["calls:read"])
    client.get(PAGE)  # the session and the user, cached as they would be
    with CaptureQueriesContext(connection) as few:
        client.get(PAGE)
    for n in range(25):
        ApiToken.issue(agent_user, name=f"Script {n}", scopes=["calls:write"])
    with django_assert_num_queries(len(few.captured_queries)):
        page = client.get(PAGE).content.decode()
    assert page.count("Revoke…") == 26


def test_every_role_has_the_page_and_the_link_to_it(agent_user, supervisor_user, admin_client_):
    for client in (logged_in(agent_user), logged_in(supervisor_user), admin_client_):
        response = client.get(PAGE)
        assert response.status_code == 200
        assert 'href="/profile/tokens/" aria-current="page">API tokens</a>' in response.content.decode()
        assert "You have no API tokens yet." in response.content.decode()


def test_it_sends_anonymous_people_to_log_in():
    assert Client().get(PAGE)["Location"].startswith("/login/")
    assert Client().post(revoke_url(ApiToken(pk=1)))["Location"].startswith("/login/")


def test_it_rejects_other_methods(agent_user):
    row, _ = ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read"])
    client = logged_in(agent_user)

    assert client.put(PAGE).status_code == 405
    assert client.get(revoke_url(row)).status_code == 405
    assert ApiToken.objects.get().revoked_at is None


def test_revoking_a_token_refuses_it_from_then_on_and_is_logged(agent_user, caplog):
    row, token = ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read"])
    client = logged_in(agent_user)
    assert Client().get(API, headers=bearer(token)).status_code == 200

    with caplog.at_level(logging.INFO, logger="calls.tokens"):
        response = client.post(revoke_url(row), follow=True)

    assert response.redirect_chain == [(PAGE, 302)]
    assert f"Revoked Helpdesk ({row.prefix}…)" in response.content.decode()
    row.refresh_from_db()
    assert row.revoked_at is not None and row.revoked_by == agent_user and row.state == "revoked"
    assert Client().get(API, headers=bearer(token)).status_code == 401
    assert f"API token {row.prefix} (Helpdesk) of alex revoked by alex; scopes calls:read" in caplog.text
    # Again: nothing changes, and it says so.
    again = client.post(revoke_url(row), follow=True)
    assert "was already revoked" in again.content.decode()


def test_nobody_revokes_someone_elses_token_on_the_page(agent_user, other_agent_user, admin_client_):
    row, token = ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read"])

    assert logged_in(other_agent_user).post(revoke_url(row)).status_code == 404
    assert admin_client_.post(revoke_url(row)).status_code == 404  # admins revoke others' in the admin
    assert logged_in(other_agent_user).post("/profile/tokens/999999/revoke/").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None
    assert Client().get(API, headers=bearer(token)).status_code == 200


def test_making_and_revoking_need_the_csrf_token(agent_user):
    row, _ = ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read"])
    client = logged_in(agent_user, enforce_csrf_checks=True)

    assert client.post(PAGE, {"name": "Sneaky", "scopes": ["calls:write"]}).status_code == 403
    assert client.post(revoke_url(row)).status_code == 403
    assert list(ApiToken.objects.values_list("name", "revoked_at")) == [("Helpdesk", None)]
    # With the token from the page's form, it goes through.
    csrf = client.get(PAGE).context["csrf_token"]
    assert client.post(revoke_url(row), {"csrfmiddlewaretoken": csrf}).status_code == 302


# --- The admin -----------------------------------------------------------------------------------------------


def test_admins_see_everyones_tokens_in_a_list_of_bounded_queries(
    admin_client_, agent_user, other_agent_user, django_assert_max_num_queries
):
    def listed() -> str:
        with django_assert_max_num_queries(12):
            response = admin_client_.get(ADMIN_LIST)
        assert response.status_code == 200
        return response.content.decode()

    row, token = ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read", "contacts:read"])
    listed()
    for n in range(30):
        ApiToken.issue(other_agent_user if n % 2 else agent_user, name=f"Script {n}", scopes=["calls:write"])
    page = listed()

    assert "Helpdesk" in page and "Script 29" in page and "tom" in page and "alex" in page
    assert row.prefix in page and "calls:read, contacts:read" in page and ">active<" in page
    assert token not in page and row.digest not in page
    assert "Add API token" not in page


def test_admins_search_and_filter_tokens_by_state(admin_client_, agent_user, other_agent_user):
    live, _ = ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read"])
    gone, _ = ApiToken.issue(other_agent_user, name="Warehouse", scopes=["calls:read"])
    ApiToken.objects.filter(pk=gone.pk).update(revoked_at=timezone.now())
    old, _ = ApiToken.issue(other_agent_user, name="Trial", scopes=["calls:read"], expires_at=timezone.now())

    def names(**params) -> set[str]:
        response = admin_client_.get(ADMIN_LIST, params)
        assert response.status_code == 200
        return {token.name for token in response.context["cl"].result_list}

    assert names(state="active") == {"Helpdesk"}
    assert names(state="revoked") == {"Warehouse"}
    assert names(state="expired") == {"Trial"}
    assert names(q="tom") == {"Warehouse", "Trial"}
    assert names(q="helpd") == {"Helpdesk"}
    assert names(q=live.prefix[:7]) >= {"Helpdesk"}
    assert names(q=live.prefix) == {"Helpdesk"}


def test_admins_revoke_tokens_with_the_action_and_it_is_logged(admin_client_, agent_user, other_agent_user, caplog):
    mine, my_token = ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read"])
    theirs, their_token = ApiToken.issue(other_agent_user, name="Warehouse", scopes=["calls:read", "contacts:read"])
    kept, kept_token = ApiToken.issue(other_agent_user, name="Kept", scopes=["calls:read"])

    with caplog.at_level(logging.INFO, logger="calls.tokens"):
        response = admin_client_.post(
            ADMIN_LIST, {"action": "revoke", "_selected_action": [mine.pk, theirs.pk]}, follow=True
        )

    assert "Revoked 2 tokens" in response.content.decode()
    ada = response.context["user"]
    for row in (mine, theirs):
        row.refresh_from_db()
        assert row.revoked_at is not None and row.revoked_by == ada
    assert Client().get(API, headers=bearer(my_token)).status_code == 401
    assert Client().get(API, headers=bearer(their_token)).status_code == 401
    assert Client().get(API, headers=bearer(kept_token)).status_code == 200
    assert f"API token {theirs.prefix} (Warehouse) of tom revoked by ada; scopes calls:read, contacts:read" in (
        caplog.text
    )
    again = admin_client_.post(ADMIN_LIST, {"action": "revoke", "_selected_action": [mine.pk]}, follow=True)
    assert "had already been revoked" in again.content.decode()
    assert ApiToken.objects.get(pk=mine.pk).revoked_at == mine.revoked_at  # the first revocation stands


def test_the_admin_neither_makes_edits_nor_deletes_tokens(admin_client_, agent_user):
    row, _ = ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read"])

    assert admin_client_.get(f"{ADMIN_LIST}add/").status_code == 403
    assert admin_client_.get(f"{ADMIN_LIST}{row.pk}/delete/").status_code == 403
    change = admin_client_.get(f"{ADMIN_LIST}{row.pk}/change/")
    assert change.status_code == 200
    assert row.prefix in change.content.decode() and row.digest not in change.content.decode()
    assert 'name="prefix"' not in change.content.decode() and 'name="_save"' not in change.content.decode()
    admin_client_.post(f"{ADMIN_LIST}{row.pk}/change/", {"name": "Renamed", "prefix": "vcc_00000000"})
    assert ApiToken.objects.values_list("name", "prefix").get() == ("Helpdesk", row.prefix)
    listed = admin_client_.get(ADMIN_LIST).content.decode()
    assert 'value="delete_selected"' not in listed and 'value="revoke"' in listed


def test_the_admin_list_is_for_the_admin_role_only(agent_user):
    assert logged_in(agent_user).get(ADMIN_LIST)["Location"].startswith("/admin/login/")


# --- manage.py create_api_token ------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_a_working_token_as_the_last_word(agent_user, caplog):
    with caplog.at_level(logging.INFO, logger="calls.tokens"):
        out = run("alex", "--scopes", "contacts:read, calls:read", "--name", "Warehouse", "--expires-days", "7")

    token = out.strip().splitlines()[-1].split()[-1]
    row = ApiToken.objects.get(user=agent_user)
    assert row.digest == digest(token) and row.name == "Warehouse"
    assert row.scopes == ["calls:read", "contacts:read"]
    assert abs(row.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    assert Client().get(API, headers=bearer(token)).status_code == 200
    assert f"API token {row.prefix} (Warehouse) of alex created by create_api_token" in caplog.text
    assert token not in caplog.text


def test_the_command_names_and_never_expires_a_token_by_default(agent_user):
    run("alex", "--scopes", "calls:write")

    row = ApiToken.objects.get(user=agent_user)
    assert row.name == "Made with create_api_token" and row.expires_at is None and row.scopes == ["calls:write"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nobody", "--scopes", "calls:read"], "There is no active user 'nobody'"),
        (["leaver", "--scopes", "calls:read"], "There is no active user 'leaver'"),
        (["alex", "--scopes", "calls:read,calls:delete"], "calls:delete is not a scope: choose from contacts:read"),
        (["alex", "--scopes", ","], "Tick at least one scope"),
        (["alex", "--scopes", "calls:read", "--expires-days", "0"], "An expiry is at least 1 day"),
        (["alex", "--scopes", "calls:read", "--expires-days", "-5"], "An expiry is at least 1 day"),
        (["alex", "--scopes", "calls:read", "--expires-days", "soon"], "whole number of days"),
        (["alex", "--scopes", "calls:read", "--name", ""], "Give the token a name"),
    ],
)
def test_the_command_refuses_with_a_sentence(agent_user, args, says):
    create_user("leaver", "agent", is_active=False)

    with pytest.raises(CommandError, match=says):
        run(*args)
    assert not ApiToken.objects.exists()


def test_a_person_has_at_most_twenty_tokens_in_use(agent_user):
    """The API's rates are per token: a bound on tokens in use keeps one person's requests bounded too. A revoked
    or expired token does not count."""
    from calls.forms.tokens import MAX_ACTIVE_TOKENS

    for i in range(MAX_ACTIVE_TOKENS):
        ApiToken.issue(agent_user, name=f"t{i}", scopes=["calls:read"])

    refused = logged_in(agent_user).post(PAGE, {"name": "One more", "scopes": ["calls:read"]})
    with pytest.raises(CommandError, match="revoke one you no longer use"):
        call_command("create_api_token", agent_user.username, "--scopes", "calls:read", stdout=StringIO())

    assert "You have 20 tokens in use" in refused.content.decode()
    assert 'value="One more"' in refused.content.decode()  # what was typed is kept
    assert ApiToken.objects.filter(user=agent_user).count() == MAX_ACTIVE_TOKENS
    ApiToken.objects.filter(user=agent_user, name="t0").update(revoked_at=timezone.now())
    response = logged_in(agent_user).post(PAGE, {"name": "One more", "scopes": ["calls:read"]})
    assert 'id="new-token"' in response.content.decode()


def test_a_token_whose_use_was_noted_before_still_works_and_is_noted_again(agent_user):
    # On SQLite a raw row's time has no zone: comparing it with the aware time now failed every request made with
    # a token after its first (500).
    key = ApiToken.issue(agent_user, name="t", scopes=["calls:read"])[1]
    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(hours=2))
    for _ in range(2):
        assert Client().get("/api/v1/calls", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert timezone.now() - ApiToken.objects.get().last_used_at < timedelta(minutes=1)
