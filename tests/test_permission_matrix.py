"""Who may open what: every URL of the app and the admin's pages, for each role, with the answer expected of each.

One row per URL and method, one column per role: anonymous, an agent, another agent (asking for the first agent's
call or object), a supervisor, an admin. A row is one line; `test_every_url_is_in_the_matrix` fails when a URL
exists that no row names, so a new page must be added here.

- `get(path, ...)`: the answer to a GET.
- `post(path, ..., **data)`: the answer to a POST of data (none: an empty one) with a valid CSRF token. For
  every POST row the test also checks that a POST without a CSRF token is refused (403) for every role, and, when
  no GET row names the same URL, that GET answers 405.

Every answer to a GET is also checked as it comes (`_check_get_answer`): the security headers whoever asked, the
answer private and never stored for anyone logged in, and no secret on what a supervisor or an admin reads.

Answers: a status code, LOGIN (302 to the app's login page), ADMIN_LOGIN (302 to the admin's login page). A plain
302 is a redirect elsewhere. Paths name the world's objects in braces (tests/_security.py: `World.ids`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from tests import _security
from tests._security import ROLES

sim, world, world_rows = _security.sim, _security.world, _security.world_rows  # fixtures

LOGIN = "302 to login"
ADMIN_LOGIN = "302 to admin login"


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expected: tuple  # one answer per role, in ROLES order
    data: tuple = ()  # what a POST sends, as (name, value) pairs; values may name the world's objects in braces

    @property
    def id(self) -> str:
        sent = "&".join(f"{k}={v}" for k, v in self.data)
        return f"{self.method} {self.path}" + (f" {sent}" if sent else "")

    @property
    def pattern(self) -> str:
        return pattern_key(self.path)


def get(path: str, anonymous, agent, other_agent, supervisor, admin_) -> Row:
    return Row("GET", path, (anonymous, agent, other_agent, supervisor, admin_))


def post(path: str, anonymous, agent, other_agent, supervisor, admin_, **data: str) -> Row:
    return Row("POST", path, (anonymous, agent, other_agent, supervisor, admin_), tuple(data.items()))


def admin_page(path: str, admin_answer) -> Row:
    """An admin page: only the admin role gets in; everyone else is sent to the admin's login."""
    return get(path, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, admin_answer)


def admin_model(base: str, obj: str, *, add=200, change=200, delete=200, history=200) -> list[Row]:
    """A registered model's admin pages: list, add, change, delete, history, and the bare object URL (a redirect)."""
    return [
        admin_page(f"{base}", 200),
        admin_page(f"{base}add/", add),
        admin_page(f"{base}{obj}/change/", change),
        admin_page(f"{base}{obj}/delete/", delete),
        admin_page(f"{base}{obj}/history/", history),
        admin_page(f"{base}{obj}/", 302),  # the old URL of the change page: a redirect to it
    ]


# --- The matrix -------------------------------------------------------------------------------------------
#            path                                      anonymous    agent        other agent  supervisor   admin
MATRIX: list[Row] = [
    get("/healthz",                                    200,         200,         200,         200,         200),
    get("/readyz",                                     200,         200,         200,         200,         200),
    # VCC's events: no login, no role; the signature authenticates (tests/test_vcc_events_receiving.py).
    get("/vcc/events/",                                405,         405,         405,         405,         405),
    post("/vcc/events/",                               401,         401,         401,         401,         401),
    post("/health/vcc-events/subscribe/",              LOGIN,       403,         403,         403,         302),
    get("/login/",                                     200,         302,         302,         302,         302),
    post("/login/",                                    200,         302,         302,         302,         302),
    post("/logout/",                                   LOGIN,       LOGIN,       LOGIN,       LOGIN,       LOGIN),
    # Today: the person's callbacks (everyone who may see callbacks; admins too).
    get("/",                                           LOGIN,       200,         200,         200,         200),
    # Callbacks: everyone's for supervisors and admins, one's own and one's groups' for agents.
    get("/callbacks/",                                 LOGIN,       200,         200,         200,         200),
    post("/callbacks/{callback}/done/",                LOGIN,       302,         404,         302,         302),
    post("/callbacks/{callback}/cancel/",              LOGIN,       302,         404,         302,         302),
    get("/contacts/",                                  LOGIN,       200,         200,         200,         200),
    get("/contacts/new/",                              LOGIN,       200,         200,         200,         200),
    post("/contacts/new/",                             LOGIN,       200,         200,         200,         200),
    get("/contacts/{contact}/",                        LOGIN,       200,         200,         200,         200),
    get("/contacts/{contact}/edit/",                   LOGIN,       200,         200,         200,         200),
    post("/contacts/{contact}/edit/",                  LOGIN,       200,         200,         200,         200),
    get("/contacts/{contact}/delete/",                 LOGIN,       403,         403,         200,         200),
    post("/contacts/{contact}/delete/",                LOGIN,       403,         403,         302,         302),
    get("/contacts/{contact}/erase/",                  LOGIN,       403,         403,         200,         200),
    post("/contacts/{contact}/erase/",                 LOGIN,       403,         403,         302,         302),
    get("/contacts/{contact}/data/",                   LOGIN,       403,         403,         200,         200),
    get("/privacy/retention/",                         LOGIN,       403,         403,         403,         200),
    post("/privacy/retention/",                        LOGIN,       403,         403,         403,         302),
    post("/contacts/{contact}/call/",                  LOGIN,       400,         400,         400,         400),
    post("/contacts/{contact}/call/",                  LOGIN,       403,         403,         302,         302,
         request_id="{new_id}", call="group:{free_phone}", groups="{group}"),  # via groups: supervisors only
    get("/contacts/{contact}/dial-preview/",           LOGIN,       200,         200,         200,         200),
    get("/readiness/",                                 LOGIN,       200,         200,         200,         200),
    # The call bar: everyone who is logged in, each with their own calls.
    get("/calls/bar/",                                 LOGIN,       200,         200,         200,         200),
    get("/calls/{call}/panel/",                        LOGIN,       200,         404,         200,         200),
    # An empty form: the call's own agent gets past the permissions, to the panel saying what to fix (400).
    post("/calls/{live_call}/recording/",              LOGIN,       400,         404,         404,         404),
    post("/calls/{call}/wrapup/",                      LOGIN,       400,         404,         404,         404),
    get("/agents/",                                    LOGIN,       200,         200,         200,         200),
    get("/agents/availability/",                       LOGIN,       200,         200,         200,         200),
    post("/agents/{agent}/call/",                      LOGIN,       400,         400,         400,         400),
    get("/health/",                                    LOGIN,       403,         403,         200,         200),
    # Queue a failed background job again: admins only. No job 1 exists: the admin is sent back with a message.
    post("/health/jobs/1/retry/",                      LOGIN,       403,         403,         403,         302),
    get("/calls/",                                     LOGIN,       200,         200,         200,         200),
    get("/calls/{call}/",                              LOGIN,       200,         404,         200,         200),
    post("/calls/{live_call}/close/",                  LOGIN,       403,         403,         302,         302),
    get("/calls/export.csv",                           LOGIN,       200,         200,         200,         200),
    # A person's own API tokens: every role; a token is revoked by its owner only (admins: in the admin).
    get("/profile/tokens/",                            LOGIN,       200,         200,         200,         200),
    post("/profile/tokens/",                           LOGIN,       200,         200,         200,         200),
    post("/profile/tokens/{api_token}/revoke/",        LOGIN,       302,         404,         404,         404),
    get("/reports/",                                   LOGIN,       403,         403,         200,         200),
    get("/contacts/export/",                           LOGIN,       403,         403,         200,         200),
    get("/contacts/import/",                           LOGIN,       200,         200,         200,         200),
    post("/contacts/import/",                          LOGIN,       400,         400,         400,         400),
    get("/contacts/import/{contact_import}/",          LOGIN,       200,         404,         404,         404),
    get("/contacts/import/{contact_import}/progress/", LOGIN,       200,         404,         404,         404),
    post("/contacts/import/{contact_import}/mapping/", LOGIN,       302,         404,         404,         404),
    post("/contacts/import/{contact_import}/fix/2/",   LOGIN,       302,         404,         404,         404),
    post("/contacts/import/{contact_import}/confirm/", LOGIN,       302,         404,         404,         404),
    # Call queues: supervisors make and run them; an agent sees and works the ones given to them (the world's queue
    # is given to the agent, not the other agent). Empty forms are shown again with what to fix (200).
    get("/queues/",                                    LOGIN,       200,         200,         200,         200),
    get("/queues/new/",                                LOGIN,       403,         403,         200,         200),
    post("/queues/new/",                               LOGIN,       403,         403,         200,         200),
    get("/queues/{queue}/",                            LOGIN,       200,         404,         200,         200),
    get("/queues/{queue}/edit/",                       LOGIN,       403,         403,         200,         200),
    post("/queues/{queue}/edit/",                      LOGIN,       403,         403,         200,         200),
    post("/queues/{queue}/state/",                     LOGIN,       403,         403,         302,         302),
    get("/queues/{queue}/contacts/",                   LOGIN,       200,         404,         200,         200),
    get("/queues/{queue}/export.csv",                  LOGIN,       403,         403,         200,         200),
    post("/queues/{queue}/next/",                      LOGIN,       302,         404,         302,         302),
    post("/queues/{queue}/skip/",                      LOGIN,       302,         404,         302,         302),
    post("/queues/{queue}/stop/",                      LOGIN,       302,         404,         302,         302),
    get("/queues/{queue}/bar/",                        LOGIN,       286,         404,         286,         286),
    # The audit trail: admins only, and read only (no POST route).
    get("/audit/",                                     LOGIN,       403,         403,         403,         200),
    post("/audit/",                                    405,         405,         405,         405,         405),
    # Outgoing webhooks: admins only. Empty forms are shown again with what to fix (200; replay: 400).
    get("/integrations/webhooks/",                     LOGIN,       403,         403,         403,         200),
    get("/integrations/webhooks/new/",                 LOGIN,       403,         403,         403,         200),
    post("/integrations/webhooks/new/",                LOGIN,       403,         403,         403,         200),
    get("/integrations/webhooks/{webhook}/",           LOGIN,       403,         403,         403,         200),
    get("/integrations/webhooks/{webhook}/edit/",      LOGIN,       403,         403,         403,         200),
    post("/integrations/webhooks/{webhook}/edit/",     LOGIN,       403,         403,         403,         200),
    post("/integrations/webhooks/{webhook}/pause/",    LOGIN,       403,         403,         403,         302),
    post("/integrations/webhooks/{webhook}/resume/",   LOGIN,       403,         403,         403,         302),
    post("/integrations/webhooks/{webhook}/rotate/",   LOGIN,       403,         403,         403,         200),
    post("/integrations/webhooks/{webhook}/delete/",   LOGIN,       403,         403,         403,         302),
    post("/integrations/webhooks/{webhook}/replay/",   LOGIN,       403,         403,         403,         400),
    post("/integrations/webhooks/{webhook}/test/",     LOGIN,       403,         403,         403,         302),
    post("/integrations/webhooks/{webhook}/deliveries/{webhook_delivery}/send-again/",
                                                       LOGIN,       403,         403,         403,         302),
    # The admin site: only the admin role (staff) gets past its login.
    get("/admin/login/",                               200,         200,         200,         200,         302),
    get("/admin/logout/",                              302,         302,         302,         302,         405),
    post("/admin/logout/",                             302,         302,         302,         302,         LOGIN),
    admin_page("/admin/",                                                                                  200),
    admin_page("/admin/calls/",                                                                            200),
    admin_page("/admin/password_change/",                                                                  200),
    admin_page("/admin/password_change/done/",                                                             200),
    admin_page("/admin/jsi18n/",                                                                           200),
    admin_page("/admin/autocomplete/?app_label=calls&model_name=contact&field_name=owner",                 200),
    admin_page("/admin/r/{contact_type}/{contact}/",                                                       302),
    admin_page("/admin/no/such/page/",                                                                     404),
    admin_page("/admin/calls/syncrun/run/",                                                                200),
    post("/admin/calls/syncrun/run/",                  ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 400),
    admin_page("/admin/auth/user/{user}/password/",                                                        200),
    *admin_model("/admin/auth/group/", "{role_group}", delete=403),  # a role is never deleted: people lose it
    *admin_model("/admin/auth/user/", "{user}"),
    *admin_model("/admin/calls/contact/", "{contact}"),
    *admin_model("/admin/calls/contactphone/", "{phone}"),
    *admin_model("/admin/calls/agent/", "{agent}"),
    *admin_model("/admin/calls/agentgroup/", "{group}"),
    *admin_model("/admin/calls/callbacknumber/", "{number}"),
    *admin_model("/admin/calls/call/", "{call}", add=403, delete=403),  # the call log is read-only evidence
    *admin_model("/admin/calls/dispositioncode/", "{disposition}"),
    *admin_model("/admin/calls/consentrule/", "{consent_rule}"),
    *admin_model("/admin/calls/callinghours/", "{calling_hours}"),
    *admin_model("/admin/calls/holiday/", "{holiday}"),
    *admin_model("/admin/calls/syncrun/", "{sync_run}", add=403, delete=403),  # runs are records
    *admin_model("/admin/calls/lockout/", "{lock_out}", add=403),  # made by failed logins; deleting one lifts it
    *admin_model("/admin/calls/apitoken/", "{api_token}", add=403, delete=403),  # made by owners; revoked, kept
]  # fmt: skip


# --- Reading the URL configuration ------------------------------------------------------------------------


def all_patterns(patterns=None, prefix: str = "", namespace: str = "") -> list[str]:
    """Every URL pattern of the project, by its name (namespaced) or, when it has none, its route."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            found += all_patterns(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            found.append(f"{namespace}{pattern.name}" if pattern.name else prefix + str(pattern.pattern))
    return found


def pattern_key(path: str) -> str:
    """The pattern a matrix path resolves to, named as `all_patterns` names it (any id will do to resolve)."""
    # Any id will do to resolve; an import is named by a UUID.
    filled = path.replace("{contact_import}", "00000000-0000-0000-0000-000000000001")
    match = resolve(urlsplit(re.sub(r"\{\w+\}", "1", filled)).path)
    return match.view_name if match.url_name else match.route


def _fill(path: str, ids: dict[str, object]) -> str:
    return path.format(**ids)


def _check_get_answer(response, role: str, what: str, secrets: dict[str, str], client) -> None:
    _security.assert_security_headers(response, what)
    if role != "anonymous":
        _security.assert_private_and_never_stored(response, what)
    if role in ("supervisor", "admin"):  # who may read the most: an export is read whole, a redirect followed once
        if response.status_code == 302 and response["Location"].startswith("/"):
            response = client.get(response["Location"])
        body = b"".join(response.streaming_content) if response.streaming else response.content
        page = body.decode(errors="replace")
        for name, secret in secrets.items():
            assert secret not in page, f"{what}: the {name} is on the page"


def _answer(response) -> object:
    if response.status_code == 302:
        target = urlsplit(response["Location"]).path
        name = resolve(target).view_name if target.startswith("/") else ""
        if name == "login":
            return LOGIN
        if name == "admin:login":
            return ADMIN_LOGIN
    return response.status_code


# --- The tests --------------------------------------------------------------------------------------------


def test_every_url_is_in_the_matrix():
    """Every page; the API's routes take tokens, not sessions: tests/test_api_matrix.py is their matrix of scope,
    role and endpoint."""
    listed = {row.pattern for row in MATRIX}
    missing = [key for key in all_patterns() if key not in listed and not key.startswith("api:")]
    assert not missing, f"URLs the permission matrix does not list (add a row for each): {missing}"


def test_every_admin_model_is_in_the_matrix():
    listed = {row.pattern for row in MATRIX}
    for model in admin.site._registry:
        for page in ("changelist", "add", "change", "delete", "history"):
            name = f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}"
            assert name in listed, f"{name} is not in the permission matrix"


def test_the_matrix_lists_each_request_once():
    ids = [row.id for row in MATRIX]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


@pytest.mark.parametrize("row", MATRIX, ids=lambda row: row.id)
def test_each_role_gets_the_expected_answer(row, world, sim):
    """And every answer to a GET, whoever asked, carries the security headers; every one to a person logged in is
    private and never stored; none a supervisor or an admin reads shows a secret (one request, every check)."""
    path = _fill(row.path, world.ids())
    secrets = _security.secrets_a_page_could_show(world.users["admin"], sim) if row.method == "GET" else {}
    answers = {}
    for role in ROLES:
        client = world.client(role, raise_request_exception=False)
        with transaction.atomic():  # each role finds the world as it was (a supervisor's delete is undone)
            data = {name: _fill(value, {**world.ids(), "new_id": uuid.uuid4()}) for name, value in row.data}
            response = client.get(path) if row.method == "GET" else client.post(path, data)
            if row.method == "GET":
                _check_get_answer(response, role, f"GET {path} as {role} ({response.status_code})", secrets, client)
            transaction.set_rollback(True)
        answers[role] = _answer(response)
    expected = dict(zip(ROLES, row.expected, strict=True))
    wrong = {r: f"got {answers[r]}, expected {expected[r]}" for r in ROLES if answers[r] != expected[r]}
    assert not wrong, f"{row.id}: {wrong}"


POST_ROWS = [row for row in MATRIX if row.method == "POST"]
GET_PATTERNS = {row.pattern for row in MATRIX if row.method == "GET"}


# The one POST without CSRF: VCC signs its events instead (no session, no cookie); an unsigned POST is a 401.
CSRF_EXEMPT = {"/vcc/events/"}


@pytest.mark.parametrize("row", [r for r in POST_ROWS if r.path not in CSRF_EXEMPT], ids=lambda row: row.id)
def test_a_post_without_a_csrf_token_is_refused(row, world):
    path = _fill(row.path, world.ids())
    for role in ROLES:
        client = world.client(role, enforce_csrf_checks=True, raise_request_exception=False)
        response = client.post(path, {})
        assert response.status_code == 403, f"{role}: POST {path} without a CSRF token answered {response.status_code}"


@pytest.mark.parametrize("row", [r for r in POST_ROWS if r.pattern not in GET_PATTERNS], ids=lambda row: row.id)
def test_a_post_only_url_answers_get_with_405(row, world):
    path = _fill(row.path, world.ids())
    for role in ROLES:
        response = world.client(role, raise_request_exception=False).get(path)
        assert response.status_code == 405, f"{role}: GET {path} answered {response.status_code}"
