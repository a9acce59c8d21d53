"""The world the security tests share: a user in each role, an agent's call, and one object of every admin model."""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from calls import calling
from calls.models import (
    Agent,
    AgentGroup,
    ApiToken,
    Call,
    Callback,
    CallbackNumber,
    CallingHours,
    CallQueue,
    ConsentRule,
    Contact,
    ContactImport,
    ContactPhone,
    DispositionCode,
    Holiday,
    LockOut,
    SyncRun,
)
from calls.models.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEvent
from calls.queues import building
from calls.vcc import get_client
from tests import conftest
from tests._sim import fresh_simulator

ROLES = ("anonymous", "agent", "other agent", "supervisor", "admin")


@dataclass
class World:
    users: dict  # role -> user (None for anonymous); "other agent" is a second agent, not the call's
    contact: Contact
    phone: ContactPhone
    call: Call  # the agent's own call, ended and not wrapped up
    live_call: Call  # the agent's own call, still live, to another contact
    agent: Agent  # the other agent: someone to call agent to agent
    group: AgentGroup
    number: CallbackNumber  # not the default, presented by no call: its delete page is Django's confirmation
    default_number: CallbackNumber
    disposition: DispositionCode
    consent_rule: ConsentRule
    calling_hours: CallingHours
    holiday: Holiday
    sync_run: SyncRun
    contact_import: ContactImport
    role_group: Group
    lock_out: LockOut
    api_token: ApiToken  # the agent's own
    webhook: WebhookEndpoint
    webhook_delivery: WebhookDelivery  # one of the webhook's
    queue: CallQueue  # a call queue of the contact, given to the agent (not the other agent)
    callback: Callback | None = None  # the agent's own, due in an hour: nobody else's but supervisors' and admins'
    sessions: dict[str, str] = field(default_factory=dict)  # role -> session key, once logged_in() has run

    def logged_in(self) -> World:
        """Log each role in once (Django's test client: force_login), keeping the session keys for client()."""
        for role, user in self.users.items():
            if user is not None:
                client = Client()
                client.force_login(user)
                self.sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
        return self

    def ids(self) -> dict[str, object]:
        """What a matrix path may name in braces: /contacts/{contact}/ and so on."""
        return {
            "contact": self.contact.pk,
            "phone": self.phone.pk,
            "free_phone": self.contact.phones.exclude(pk=self.phone.pk).first().pk,  # no live call to it
            "call": self.call.pk,
            "live_call": self.live_call.pk,
            "call_token": calling.regarding_token(self.call),
            "agent": self.agent.pk,
            "group": self.group.pk,
            "number": self.number.pk,
            "default_number": self.default_number.pk,
            "disposition": self.disposition.pk,
            "consent_rule": self.consent_rule.pk,
            "calling_hours": self.calling_hours.pk,
            "holiday": self.holiday.pk,
            "sync_run": self.sync_run.pk,
            "contact_import": self.contact_import.pk,
            "role_group": self.role_group.pk,
            "lock_out": self.lock_out.pk,
            "api_token": self.api_token.pk,
            "webhook": self.webhook.pk,
            "webhook_delivery": self.webhook_delivery.pk,
            "queue": self.queue.pk,
            "callback": self.callback.pk if self.callback else 0,
            "user": self.users["agent"].pk,
            "contact_type": ContentType.objects.get_for_model(Contact).pk,
        }

    def client(self, role: str, **kwargs: object) -> Client:
        """A new client with the role's session: the one logged_in() made, else a new one (force_login)."""
        client = Client(**kwargs)
        if role in self.sessions:
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[role]
        elif self.users[role] is not None:
            client.force_login(self.users[role])
        return client


@pytest.fixture
def sim():
    yield from fresh_simulator()


def assert_security_headers(response, what: str) -> None:
    csp = response.get("Content-Security-Policy", "")
    assert csp, f"{what}: no Content-Security-Policy"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{what}: {csp}"
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    scripts = directives["script-src"].split()  # the nonce only where the page used it
    assert scripts[0] == "'self'" and all(s.startswith("'nonce-") for s in scripts[1:]), f"{what}: {csp}"
    assert directives["default-src"] == "'self'", f"{what}: {csp}"
    assert directives["object-src"] == "'none'", f"{what}: {csp}"
    assert directives["base-uri"] == "'none'", f"{what}: {csp}"
    assert directives["frame-ancestors"] == "'none'", f"{what}: {csp}"
    assert "*" not in csp, f"{what}: a wildcard source in {csp}"
    policy = response.get("Permissions-Policy", "")
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in policy, f"{what}: Permissions-Policy lacks {feature}: {policy!r}"
    assert response.get("X-Content-Type-Options") == "nosniff", what
    assert response.get("Referrer-Policy") == "same-origin", what
    assert response.get("X-Frame-Options") == "DENY", what
    assert response.get("Cross-Origin-Opener-Policy") == "same-origin", what


def assert_private_and_never_stored(response, what: str) -> None:
    """Pages and exports show contacts, numbers and calls: no shared or browser cache may keep them."""
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    assert {"private", "no-store"} <= directives, f"{what}: Cache-Control {response.get('Cache-Control')!r}"


def secrets_a_page_could_show(user: User, sim: object) -> dict[str, str]:
    """What no page may show, a V0 bearer token included: one is in the cache, as after any click."""
    with get_client() as client:
        client.agents_ready(["030"])
    bearer_tokens = list(sim.tokens)  # type: ignore[attr-defined]
    assert bearer_tokens
    secrets = {
        "VCC API authentication token": settings.VCC_API_TOKEN,
        "VCC gateway client secret": settings.VCC_CLIENT_SECRET,
        "SECRET_KEY": settings.SECRET_KEY,
        "a password hash": user.password,
        "a password hash's digest": user.password.rsplit("$", 1)[-1],
        **{f"bearer token {n}": token for n, token in enumerate(bearer_tokens)},
    }
    assert all(len(secret) >= 8 for secret in secrets.values())
    return secrets


def create_world() -> World:
    agent_user, other_agent_user = conftest.create_agent_user(), conftest.create_other_agent_user()
    supervisor_user, admin_role_user = conftest.create_supervisor_user(), conftest.create_admin_role_user()
    contact, london = conftest.create_contact(), conftest.create_london()
    manchester, sales = conftest.create_manchester(conftest.create_support()), conftest.create_sales()
    phone = contact.phones.get(is_primary=True)
    common = {"contact": contact, "phone": phone, "to_number": phone.number, "created_by": agent_user}
    call = Call.objects.create(**common, from_agent=agent_user.agent, state=Call.State.ENDED)
    # To someone else: while it is live, nobody else may call the contact (calling.placing), and the matrices do.
    elsewhere = ContactPhone.objects.create(
        contact=Contact.objects.create(name="Ada Lovelace"), number="+447911123456", is_primary=True
    )
    live_call = Call.objects.create(
        **{**common, "contact": elsewhere.contact, "phone": elsewhere, "to_number": elsewhere.number},
        from_agent=agent_user.agent,
        state=Call.State.LIVE,
    )
    now = timezone.now()
    webhook = WebhookEndpoint.objects.create(url="https://hooks.example.com/in", event_types=["*"], secret="whsec_x")
    return World(
        users={
            "anonymous": None,
            "agent": agent_user,
            "other agent": other_agent_user,
            "supervisor": supervisor_user,
            "admin": admin_role_user,
        },
        contact=contact,
        phone=phone,
        call=call,
        live_call=live_call,
        agent=other_agent_user.agent,
        group=sales,
        number=manchester,
        default_number=london,
        disposition=DispositionCode.objects.filter(is_active=True).first()
        or DispositionCode.objects.create(code="SALE"),
        consent_rule=ConsentRule.objects.first() or ConsentRule.objects.create(country="GB", consent="OneParty"),
        calling_hours=CallingHours.objects.create(country="FR"),
        holiday=Holiday.objects.create(country="FR", date=now.date() + timedelta(days=400), name="A far holiday"),
        sync_run=SyncRun.objects.create(started_at=now, finished_at=now, lines=["nothing"]),
        role_group=Group.objects.get(name="agent"),
        lock_out=LockOut.objects.create(
            subject="account:guessed",
            kind="account",
            name="guessed",
            since=now,
            until=now + timedelta(days=1),
            failures=5,
        ),
        # The agent's own import, waiting for a confirmation: nobody else may see or change it.
        contact_import=_an_import(agent_user),
        api_token=ApiToken.issue(agent_user, name="Helpdesk", scopes=["calls:read"])[0],
        webhook=webhook,
        webhook_delivery=_a_delivery(webhook),
        queue=_a_queue(supervisor_user, agent_user),
        callback=Callback.objects.create(
            contact=contact, phone=phone, due_at=now + timedelta(hours=1), assigned_to=agent_user, promised_on=call
        ),
    )


def _a_queue(by: object, agent_user: object) -> CallQueue:
    queue = building.make_queue(user=by, name="World queue", now=timezone.now(), source_filter={}).queue
    queue.agents.add(agent_user.agent)
    return queue


def _a_delivery(endpoint: WebhookEndpoint) -> WebhookDelivery:
    event = WebhookEvent.objects.create(msg_id="msg_world", type="call.ended", subject="call:1", payload={})
    return WebhookDelivery.objects.create(event=event, endpoint=endpoint, subject=event.subject, status="failed")


def _an_import(user: object) -> ContactImport:
    imp = ContactImport.objects.create(
        created_by=user, status=ContactImport.Status.PREVIEW, header=["Name", "Phone"], row_count=1
    )
    imp.lines.create(number=2, cells=["Ada", "020 7946 0000"])
    return imp


@pytest.fixture(scope="module")
def world_rows(django_db_setup, django_db_blocker):
    """The world's rows, written once for a test module in a transaction rolled back after its last test, with a
    session for each role (a test module makes hundreds of clients: logging each in cost more than its requests).

    Each test runs in a savepoint inside it (pytest-django's `db`), so what a test writes is undone as before: a
    logout, a session changed by a request. The sessions live in the database (cached_db), and each test starts with
    an empty cache, so a test reads them as they were made."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            built = create_world().logged_in()
            # Check the world's foreign keys now, once: left deferred, they would be checked at each test's end
            # (pytest-django's teardown sets them IMMEDIATE), inside the test's savepoint, whose rollback queues
            # them again for the next test (0.46 ms a test, against 0.006 once checked).
            connection.check_constraints()
        except BaseException:
            outer.__exit__(*sys.exc_info())
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def world(world_rows, db, sim) -> World:
    """A user in each role, an agent's calls and one object of every admin model; the simulator reset."""
    return copy.deepcopy(world_rows)  # a test that changes an object in memory changes only its own copy
