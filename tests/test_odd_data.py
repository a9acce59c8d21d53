"""No page answers 500 on odd but legitimate data: a zoo of rows real people produce (calls nobody clicked, erased
contacts, agents without users, retired groups, deleted dispositions, deleted people), and every page, export, API
read and admin page read by each role over it.

The other no-500 tests (test_no_500s, test_permission_matrix) feed odd input to tidy data; this one feeds tidy
input to odd data. A 5xx is collected, not raised, so one run names every page that breaks, with its exception.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import F
from django.test import Client
from django.utils import timezone

from calls import imports
from calls.models import (
    Agent,
    AgentGroup,
    ApiToken,
    AuditEntry,
    Call,
    Callback,
    CallbackNumber,
    CallEvent,
    CallQueue,
    Contact,
    ContactImport,
    ContactPhone,
    DispositionCode,
    JobError,
    QueueAttempt,
    QueueEntry,
    SyncRun,
    VccEvent,
)
from calls.models.privacy import RetentionPolicy
from calls.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from calls.privacy.erasure import erase_contact
from calls.privacy.retention import apply_retention
from calls.queues import building, working
from calls.reports import rebuild_rollup
from calls.roles import AGENT, SUPERVISOR
from tests import conftest
from tests._calls import SHAPES, make_call

pytestmark = pytest.mark.django_db

RTL = "\u202eمرحبا بالعالم\u202c שלום 🙂\u200b"
LONG = ("Ωmega " + RTL + " ") * 400
HTMX = {"HX-Request": "true"}
ROLES = ("agent", "supervisor", "admin", "agentless", "inactive_user")
# The pages are read as these (an admin has a supervisor's permissions and more; an agentless user is the odd one):
# every role reads every page of the zoo in tests/test_permission_matrix.py already, over tidy data.
PAGE_ROLES = ("agent", "admin", "agentless")


def _user(username: str, role: str | None = AGENT, **extra):
    return conftest.create_user(username, role, **extra)


def _people() -> dict:
    """The fixture world's people, and the odd ones: an agent without a user, a user without an agent, a deactivated
    agent, a person about to leave (deleted at the end, so that every row naming them names nobody)."""
    people = {
        "agent": conftest.create_agent_user(),
        "other": conftest.create_other_agent_user(),
        "supervisor": conftest.create_supervisor_user(),
        "admin": conftest.create_admin_role_user(),
        "leaver": _user("leaver", SUPERVISOR, first_name="Lee", last_name="Leaver"),
        "agentless": _user("walt", AGENT),  # a user with no agent
    }
    people["leaver_agent"] = Agent.objects.create(display_id="1009", name="Lee Leaver", user=people["leaver"])
    people["userless"] = Agent.objects.create(display_id="1010", name="Nora No-User")
    people["inactive_user"] = _user("ivan", AGENT)
    people["inactive"] = Agent.objects.create(
        display_id="1011", name="Ivan Inactive", is_active=False, user=people["inactive_user"]
    )
    return people


def _contacts(p: dict) -> dict:
    contact = conftest.create_contact()
    bare = Contact.objects.create(name="Phoebe ~No-Phone~ 1", company="~")  # a cursor's separator in its name
    dnc_only = Contact.objects.create(name="Dana Do-Not-Call", company="Quiet Ltd", owner=p["leaver"])
    ContactPhone.objects.create(contact=dnc_only, number="+447400555001", is_primary=True, do_not_call=True)
    ContactPhone.objects.create(contact=dnc_only, number="+447400555002", label="work", do_not_call=True)
    blocked = Contact.objects.create(name="Bob Blocked", do_not_call=True)
    ContactPhone.objects.create(contact=blocked, number="+447400555003", is_primary=True)
    long = Contact.objects.create(
        name=LONG[:200], company=LONG[:200], notes=LONG, email="x@example.com", time_zone="Asia/Kathmandu"
    )
    ContactPhone.objects.create(contact=long, number="+97221234567", is_primary=True)
    world = Contact.objects.create(name="Gabe Global", company="Satellites")  # numbers of no country, no time zone
    for number in ("+80012345678", "+881612345678", "+870773111632", "+979123456789", "+672312345"):
        ContactPhone.objects.create(contact=world, number=number, is_primary=number == "+80012345678")
    doomed = Contact.objects.create(name="Erin Erased", company="Gone Inc", email="erin@example.com")
    ContactPhone.objects.create(contact=doomed, number="+447400666001", is_primary=True)
    return {
        "world": world,
        "contact": contact,
        "bare": bare,
        "dnc_only": dnc_only,
        "blocked": blocked,
        "long": long,
        "doomed": doomed,
    }


def _calls(p: dict, c: dict, groups: dict) -> dict:
    """Calls in every state and outcome, and the ones nobody clicked or nobody answered."""
    contact, now = c["contact"], timezone.now()
    phone = contact.phones.get(is_primary=True)
    to = {"contact": contact, "phone": phone, "to_number": phone.number}
    agent = p["agent"].agent
    made = {
        outcome: make_call(user=p["agent"], agent=agent, outcome=outcome, **to, vcc_call_id=f"vcc-{outcome}")
        for outcome in SHAPES
    }
    made["inbound"] = make_call(user=None, agent=agent, origin=Call.Origin.INBOUND, also_matches=2, **to)
    made["agent_phone"] = make_call(user=None, agent=agent, origin=Call.Origin.AGENT_PHONE, **to)
    live = {"outcome": "in_progress", "last_seen_at": now, "responded_at": now}
    made["inbound_live"] = make_call(user=None, agent=agent, origin="inbound", to_number="+447700900123", **live)
    made["agent_phone_live"] = make_call(user=None, agent=agent, origin="agent_phone", **to, **live)
    made["inbound_unknown"] = make_call(user=None, agent=agent, origin="inbound", to_number="+447700900124")
    made["group_taken"] = make_call(user=p["leaver"], groups=[groups["retired"]], answered_by=agent, **to, **live)
    made["leaver"] = make_call(user=p["leaver"], agent=p["leaver_agent"], **to)  # the clicker deleted below
    made["requested"] = make_call(user=p["agent"], agent=agent, outcome="in_progress", state="requested", **to)
    made["lost"] = make_call(
        user=p["agent"], agent=agent, outcome="in_progress", lost_contact_since=now - timedelta(minutes=5), **to
    )
    made["missing"] = make_call(
        user=p["agent"], agent=agent, outcome="in_progress", missing_since=now, missing_count=2, **to
    )
    made["errors"] = make_call(
        user=p["agent"], agent=agent, outcome="failed", error_message=LONG, error_display=RTL, **to
    )
    made["unknown_number"] = make_call(user=p["agent"], agent=agent, to_number="+447700900999")
    made["colleague"] = make_call(user=p["agent"], agent=agent, to_agent=p["other"].agent, to_number="")
    made["userless_colleague"] = make_call(user=p["agent"], agent=agent, to_agent=p["userless"], to_number="")
    made["group_userless"] = make_call(
        user=p["supervisor"], groups=[groups["sales"], groups["retired"]], answered_by=p["userless"], **to
    )
    made["group_leaver"] = make_call(
        user=p["supervisor"], groups=[groups["sales"]], answered_by=p["leaver_agent"], **to
    )
    made["group_nobody"] = make_call(user=p["supervisor"], groups=[groups["retired"]], outcome="no_answer", **to)
    temp = AgentGroup.objects.create(display_id="098", name="Temp team")  # deleted below, with this number
    gone_number = CallbackNumber.objects.create(number="+441134960999", label="Temp line")
    made["deleted_group"] = make_call(user=p["supervisor"], groups=[temp], callback_number=gone_number, **to)
    Callback.objects.create(contact=contact, due_at=now, group=temp, note="to the temp team")
    temp.delete()
    gone_number.delete()
    made["group_live"] = make_call(user=None, groups=[groups["retired"]], outcome="in_progress", **to)
    made["inactive"] = make_call(user=p["inactive"].user, agent=p["inactive"], **to)
    made["deleted_code"] = make_call(
        user=p["agent"], agent=agent, disposition_code="Gone code", notes=LONG, wrapped_up_at=now, **to
    )
    made["retired_code"] = make_call(user=p["agent"], agent=agent, disposition_code="Old code", wrapped_up_at=now, **to)
    made["old_number"] = make_call(
        user=p["agent"],
        agent=agent,
        callback_number=groups["old_number"],
        presented_clid=groups["old_number"].number,
        regarding=LONG[:2000],
        **to,
    )
    world = c["world"]
    made["world"] = make_call(
        user=p["agent"], agent=agent, contact=world, phone=world.phones.first(), to_number="+80012345678"
    )
    made["bare"] = make_call(user=p["agent"], agent=agent, contact=c["bare"], to_number="+447400777001")
    for kind in CallEvent.Kind.values:
        CallEvent.objects.create(call=made["answered"], at=now, kind=kind, detail=LONG[:2000])
    doomed = c["doomed"]
    doomed_to = {"contact": doomed, "phone": doomed.phones.first(), "to_number": "+447400666001"}
    made["erased"] = make_call(user=p["agent"], agent=agent, notes="Erin said", **doomed_to)
    made["erased_live"] = make_call(user=p["agent"], agent=agent, outcome="in_progress", **doomed_to)
    return made


def _callbacks(p: dict, c: dict, calls: dict, groups: dict) -> None:
    contact, now = c["contact"], timezone.now()
    base = {"contact": contact, "due_at": now - timedelta(hours=1)}
    Callback.objects.create(**base, assigned_to=p["leaver"], created_by=p["leaver"], claimed_by=p["leaver"])
    Callback.objects.create(**base, group=groups["retired"], note=RTL, promised_on=calls["erased"])
    work = contact.phones.get(is_primary=False)  # deleted below: the callback keeps no number
    Callback.objects.create(**base, assigned_to=p["agent"], promised_on=calls["inbound"], phone=work)
    dnc = c["dnc_only"]
    Callback.objects.create(contact=dnc, phone=dnc.phones.first(), due_at=now, assigned_to=p["agent"])
    Callback.objects.create(**base, assigned_to=p["agentless"], claimed_by=p["agentless"], claimed_at=now)
    Callback.objects.create(**base, state="done", done_at=now, done_by_call=calls["erased"], assigned_to=p["agent"])
    Callback.objects.create(**base, state="cancelled", assigned_to=p["leaver"])
    Callback.objects.create(contact=c["bare"], due_at=now + timedelta(days=1), assigned_to=p["agent"])
    Callback.objects.create(contact=c["long"], due_at=now, assigned_to=p["agent"], note=LONG[:200])
    Callback.objects.create(contact=c["doomed"], due_at=now, assigned_to=p["agent"])


def _queues(p: dict, calls: dict, groups: dict) -> None:
    now = timezone.now()
    queue = building.make_queue(
        user=p["leaver"], name="Everyone", now=now, source_filter={}, groups=[groups["sales"], groups["retired"]]
    ).queue
    queue.agents.add(p["userless"], p["inactive"])
    states = [*QueueEntry.State.values, "waiting"]
    for entry, state in zip(queue.entries.order_by("position"), states, strict=False):
        entry.state = state
        entry.claimed_by = p["leaver"] if state == "waiting" else None
        entry.claimed_at = entry.claimed_since = now
        entry.last_call = calls["erased"] if state == "reached" else calls["group_nobody"]
        entry.last_outcome, entry.skip_reason = "Gone code", RTL
        entry.attempts = 3
        entry.save()
    entry = queue.entries.first()
    for effect in QueueAttempt.Effect.values:
        QueueAttempt.objects.create(queue=queue, entry=entry, user=p["leaver"], at=now, outcome=RTL, effect=effect)
    QueueAttempt.objects.create(queue=queue, entry=None, call=calls["erased"], user=None, at=now, outcome="x")
    retired = building.make_queue(user=p["supervisor"], name="Retired's", now=now, source_filter={"company": "Nope"})
    retired.queue.groups.add(groups["retired"])
    closed = building.make_queue(user=p["supervisor"], name="Closed", now=now, source_filter={"q": "Grace"}).queue
    CallQueue.objects.filter(pk=closed.pk).update(state=CallQueue.State.CLOSED, closed_at=now)
    mine = building.make_queue(user=p["leaver"], name="Lee's own, live", now=now, source_filter={"mine": True})
    CallQueue.objects.filter(pk=mine.queue.pk).update(live=True)  # its maker deleted below
    imported = building.make_queue(user=p["supervisor"], name="From an import", now=now, source_filter={})
    CallQueue.objects.filter(pk=imported.queue.pk).update(
        source_import=ContactImport.objects.filter(filename="zoo.csv").first(), live=True
    )
    paused = building.make_queue(user=p["agent"], name=LONG[:100], now=now, source_filter={"dnc": "only"}).queue
    CallQueue.objects.filter(pk=paused.pk).update(state=CallQueue.State.PAUSED, description=LONG[:300])


def _upload(user, text: str, name: str = "zoo.csv") -> ContactImport:
    imp = imports.store_upload(user=user, filename=name, chunks=[text.encode()])
    imports.check(imp.pk)
    imp.refresh_from_db()
    return imp


def _imports(p: dict) -> None:
    user = p["agent"]
    _upload(user, "Name,Phone\nAda,020 7946 0000\nBad,not a number\nGrace Hopper,+447400123456\n")  # preview
    expired = _upload(user, "Name,Phone\nEx,020 7946 0001\n")
    ContactImport.objects.filter(pk=expired.pk).update(status=ContactImport.Status.EXPIRED)
    failed = _upload(user, "Name,Phone\nFay,020 7946 0002\n")
    ContactImport.objects.filter(pk=failed.pk).update(status=ContactImport.Status.FAILED, error=LONG)
    done = _upload(user, f"Name,Phone\n{RTL},020 7946 0003\n")
    ContactImport.objects.filter(pk=done.pk).update(status=ContactImport.Status.IMPORTING)
    imports.apply(done.pk)
    _upload(user, "Name,Phone\nErin Erased,+447400666001\n")  # all its rows erased below
    _upload(p["supervisor"], "Name,Phone,Email\nErin Erased,+447400666001,erin@example.com\nZed,020 7946 0004,\n")
    ContactImport.objects.create(created_by=user, status=ContactImport.Status.CHECKING, filename="stuck.csv")
    mapping = _upload(user, "Name,What\nA,B\n", name="mapping.csv")  # the columns need mapping by hand
    ContactImport.objects.filter(pk=mapping.pk).update(mapping={"name": "Nope"})


def _directory() -> dict:
    sales = conftest.create_sales()
    support = conftest.create_support()
    conftest.create_london()
    conftest.create_manchester(support)
    retired = AgentGroup.objects.create(display_id="099", name="Retired team", is_active=False)
    retired.members.set(Agent.objects.filter(display_id__in=["1010", "1011", "1009"]))
    old_number = CallbackNumber.objects.create(number="+441134960000", label="Leeds (closed)", is_active=False)
    old_number.allowed_groups.add(retired)
    # Defaults set before the group was retired and the number deactivated; presence as VCC's events leave it.
    Agent.objects.filter(display_id__in=["1001", "1010", "1011"]).update(
        default_group=retired, default_callback_number=old_number, presence="ExtendedAway", presence_detail=RTL
    )
    Agent.objects.filter(display_id="1003").update(presence="Ready", presence_since=None)
    old_number.allowed_agents.set(Agent.objects.filter(display_id__in=["1001", "1011"]))
    DispositionCode.objects.create(code="Gone code").delete()
    DispositionCode.objects.create(code="Old code", is_active=False)
    return {"sales": sales, "support": support, "retired": retired, "old_number": old_number}


def _webhooks(p: dict) -> None:
    now = timezone.now()
    until = (now + timedelta(hours=3)).isoformat()
    disabled = WebhookEndpoint.objects.create(
        url="https://hooks.example.com/off",
        event_types=["call.*"],
        secret="whsec_now",
        previous_secrets=[
            {"secret": "whsec_old", "until": until},
            {"secret": "whsec_older", "until": "2020-01-01T00:00:00+00:00"},
        ],
        created_by=p["leaver"],
        enabled=False,
        disabled_reason=LONG,
        disabled_at=now,
        failing_since=now - timedelta(days=3),
        failures=99,
    )
    WebhookEndpoint.objects.create(url="https://hooks.example.com/" + "x" * 150, event_types=[], secret="s" * 40)
    event = WebhookEvent.objects.create(msg_id="msg_zoo", type="call.ended", subject="call:999999", payload={"x": RTL})
    for status in WebhookDelivery.Status.values:
        delivery = WebhookDelivery.objects.create(
            event=event, endpoint=disabled, subject=event.subject, status=status, failing_since=now, attempts=3
        )
        WebhookAttempt.objects.create(delivery=delivery, error=LONG, response_snippet=RTL)


def _records(p: dict) -> None:
    now = timezone.now()
    AuditEntry.objects.create(
        actor_id=987654,
        actor_name="gone",
        kind="contact.update",
        object_type="contact",
        object_id="999999",
        contact_id=999999,
        before={"name": RTL},
        after={"name": LONG},
    )
    AuditEntry.objects.create(actor_id=None, kind="export.contacts", after={"rows": 1}, reason=LONG)
    SyncRun.objects.create(started_at=now, by=p["leaver"], error=LONG, lines=[RTL, LONG])
    SyncRun.objects.create(started_at=now, lines=[])
    JobError.objects.create(job_id=424242, task_name="calls.tasks.nothing", error=LONG, at=now)
    VccEvent.objects.create(
        event_id="zoo-1", type="channel.connected.v0", source="vcc", data={"x": RTL}, received_at=now, result=LONG[:300]
    )
    for user in (p["leaver"], p["agent"]):
        ApiToken.issue(user, name="Revoked", scopes=["calls:read"])[0].__class__.objects.filter(
            user=user, name="Revoked"
        ).update(revoked_at=now, revoked_by=p["leaver"])
        ApiToken.issue(user, name=RTL[:100], scopes=["calls:read"], expires_at=now - timedelta(days=1))


def _held(p: dict, c: dict) -> None:
    """The agent holds a contact in a queue, with a call from the queue going on, and the contact's numbers were
    made do-not-call since."""
    queue = building.make_queue(user=p["supervisor"], name="Alex's", now=timezone.now(), source_filter={"q": "Grace"})
    queue.queue.agents.add(p["agent"].agent, p["inactive"])
    held = working.take_next(user=p["agent"], queue=queue.queue, now=timezone.now()).held
    assert held is not None and held.entry is not None
    phone = held.contact.phones.first()
    call = make_call(user=p["agent"], agent=p["agent"].agent, outcome="in_progress", contact=held.contact, phone=phone)
    QueueAttempt.objects.create(queue=queue.queue, entry=held.entry, call=call, user=p["agent"], at=timezone.now())
    held.contact.phones.update(do_not_call=True)


def build_zoo() -> dict:
    people = _people()
    groups = _directory()
    contacts = _contacts(people)
    calls = _calls(people, contacts, groups)
    _callbacks(people, contacts, calls, groups)
    _imports(people)
    _queues(people, calls, groups)
    _webhooks(people)
    _records(people)
    _held(people, contacts)
    Call.objects.filter(pk__in=[c.pk for c in calls.values()][::2]).update(requested_at=F("requested_at") - DAYS)
    contacts["contact"].phones.filter(is_primary=False).delete()  # calls and callbacks named it
    for name, call in [("contact", "inbound"), ("world", "world"), ("dnc_only", "group_userless"), ("long", "lost")]:
        Contact.objects.filter(pk=contacts[name].pk).update(
            last_call=calls[call], last_called_at=calls[call].requested_at
        )
    VccEvent.objects.create(
        event_id="zoo-2",
        type="channel.connected.v1",
        source="vcc",
        data={},
        received_at=timezone.now(),
        call=calls["inbound"],
    )
    AuditEntry.objects.create(
        actor_id=987654, kind="call.delete", object_type="call", object_id="x", before={"a": None}
    )
    rebuild_rollup(now=timezone.now())
    policy = RetentionPolicy.current()  # the older calls' numbers masked and notes cleared, as retention does
    policy.mask_days = policy.notes_days = 1
    policy.save()
    apply_retention(now=timezone.now())
    doomed = contacts["doomed"]
    erase_contact(contact_pk=doomed.pk, by=people["supervisor"], now=timezone.now())
    people["leaver"].delete()
    return {"people": people, "calls": calls}


# --- What is read --------------------------------------------------------------------------------------------

PAGES = [
    "/", "/callbacks/", "/contacts/", "/contacts/?q=e", "/contacts/?dnc=only", "/contacts/?sort=last_called",
    "/contacts/new/", "/contacts/import/", "/contacts/export/", "/privacy/retention/", "/readiness/", "/calls/bar/",
    "/agents/", "/agents/availability/", "/queues/", "/queues/new/", "/calls/", "/calls/?outcome=gone",
    "/calls/export.csv", "/reports/", "/reports/?range=90", "/profile/tokens/", "/health/", "/audit/",
    "/integrations/webhooks/", "/integrations/webhooks/new/",
]  # fmt: skip
LOG_QUERIES = [
    "via=group", "via=unanswered", "via=agent", "wrap_up=on", "has_error=yes", "sort=-duration", "sort=duration",
    "queue_effect=skipped", "error_status=409", "start=2020-01-01",
]  # fmt: skip
DAYS = timedelta(days=2)
CONTACT_PAGES = ["{}/", "{}/edit/", "{}/delete/", "{}/erase/", "{}/data/", "{}/data/?format=json", "{}/dial-preview/"]
CALL_PAGES = ["{}/", "{}/panel/", "{}/panel/?edit=1", "{}/recording/"]
QUEUE_PAGES = ["{}/", "{}/edit/", "{}/state/", "{}/contacts/", "{}/export.csv", "{}/bar/"]
WEBHOOK_PAGES = ["{}/", "{}/edit/", "{}/rotate/", "{}/delete/"]


def _page_urls() -> list[str]:
    urls = list(PAGES)
    urls += [f"/contacts/{u.format(pk)}" for pk in Contact.objects.values_list("pk", flat=True) for u in CONTACT_PAGES]
    urls += [f"/calls/{u.format(pk)}" for pk in Call.objects.values_list("pk", flat=True) for u in CALL_PAGES]
    urls += [f"/queues/{u.format(pk)}" for pk in CallQueue.objects.values_list("pk", flat=True) for u in QUEUE_PAGES]
    urls += [f"/contacts/import/{pk}/" for pk in ContactImport.objects.values_list("pk", flat=True)]
    urls += [f"/contacts/import/{pk}/progress/" for pk in ContactImport.objects.values_list("pk", flat=True)]
    webhooks = WebhookEndpoint.objects.values_list("pk", flat=True)
    urls += [f"/integrations/webhooks/{u.format(pk)}" for pk in webhooks for u in WEBHOOK_PAGES]
    for name, model in (("agent", Agent), ("group", AgentGroup), ("queue", CallQueue), ("contact", Contact)):
        pks = model.objects.values_list("pk", flat=True)
        urls += [f"/calls/?{name}={pk}" for pk in pks] + [f"/reports/?{name}={pk}" for pk in pks]
    urls += [f"/calls/?{query}" for query in LOG_QUERIES]
    groups = list(AgentGroup.objects.values_list("pk", flat=True))
    numbers = list(CallbackNumber.objects.values_list("pk", flat=True))
    urls += [f"/readiness/?groups={pk}" for pk in groups]
    # Each contact, each group and each number in some preview (not every combination of them: a suite's worth).
    contacts = list(Contact.objects.values_list("pk", flat=True))
    count = max(len(contacts), len(groups), len(numbers))
    urls += [
        f"/contacts/{contacts[i % len(contacts)]}/dial-preview/?groups={groups[i % len(groups)]}"
        f"&clid={numbers[i % len(numbers)]}&ticked=1"
        for i in range(count)
    ]
    queues = list(CallQueue.objects.values_list("pk", flat=True))
    urls += [f"/queues/{queues[i % len(queues)]}/bar/?contact={pk}" for i, pk in enumerate(contacts)]
    return urls


def _api_urls() -> list[str]:
    urls = ["contacts", "calls", "calls?limit=200", "dispositions", "agents", "groups", "callback-numbers"]
    urls += [f"calls?limit=2&{query}" for query in LOG_QUERIES]
    urls += [f"contacts?limit=2&sort={sort}" for sort in ("name", "company", "last_called", "created")]
    urls += ["contacts?limit=2&dnc=only", "contacts?q=%D9%85%D8%B1%D8%AD%D8%A8%D8%A7&limit=1"]
    urls += [f"contacts/{pk}" for pk in Contact.objects.values_list("pk", flat=True)]
    urls += [f"calls/{pk}" for pk in Call.objects.values_list("pk", flat=True)]
    return [f"/api/v1/{url}" for url in urls]


def _admin_urls() -> list[str]:
    urls = []
    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        urls += [base, f"{base}?q=e", f"{base}add/"]
        for pk in model._default_manager.values_list("pk", flat=True)[:12]:
            urls += [f"{base}{pk}/change/", f"{base}{pk}/history/", f"{base}{pk}/delete/"]
    return urls


LINK = re.compile(r'(?:href|hx-get|data-url)="(/[^"]*)"')
HX_LINK = re.compile(r'hx-get="(/[^"]*)"')
NOT_FOLLOWED = ("/admin/", "/static/", "/logout/")
VARIANTS = 5  # links followed to one path: some of its sorts, filters and pages, not every combination of them


def _failures(
    client: Client, urls: list[str], *, follow: bool = False, skip: tuple[str, ...] = NOT_FOLLOWED, **headers: str
) -> list[str]:
    """Each URL that answered a 5xx (or whose export raised as it was read), with the exception; with follow, the
    links of each page read too (paging cursors, sorts, filters; hx-get ones as htmx asks), and an API page's next,
    once each."""
    found: list[str] = []
    todo = [(url, headers) for url in urls]
    seen = set(urls)
    variants: Counter[str] = Counter()
    while todo:
        url, sent = todo.pop(0)
        response = client.get(url, headers=sent)
        if response.streaming and response.status_code < 500:  # an export fails as it is read
            try:
                b"".join(response.streaming_content)
            except Exception as exc:  # noqa: BLE001 - collected, with its name, for the failure message
                found.append(f"{url} -> raised while streaming: {type(exc).__name__}: {exc}")
            continue
        if response.status_code >= 500:
            exc = getattr(response, "exc_info", None)
            found.append(f"{url} -> {response.status_code} {exc[0].__name__ + ': ' + str(exc[1]) if exc else ''}")
        elif follow and response.status_code == 200:
            for link, extra in _links(response):
                path = link.split("?")[0].split("#")[0]
                if link not in seen and not link.startswith(skip) and variants[path] < VARIANTS:
                    seen.add(link)
                    variants[path] += 1
                    todo.append((link, {**sent, **extra}))
    return found


def _links(response) -> list[tuple[str, dict[str, str]]]:
    if "json" in response.get("Content-Type", ""):
        following = response.json().get("next") if isinstance(response.json(), dict) else None
        return [("/api/" + following.split("/api/", 1)[1], {})] if following else []
    if "html" not in response.get("Content-Type", ""):
        return []
    text = response.content.decode()
    hx = {html.unescape(link) for link in HX_LINK.findall(text)}
    return [(html.unescape(link), {}) for link in LINK.findall(text)] + [(link, HTMX) for link in hx]


@pytest.fixture
def zoo() -> dict:
    return build_zoo()


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of three rows, so that every list has cursors to follow, over odd values (no talk time, never called)."""
    from calls import calllog
    from calls.audit import trail
    from calls.views import callbacks, contacts, queues

    for module, name in [
        (contacts, "CONTACTS_PER_PAGE"),
        (contacts, "TIMELINE_LENGTH"),
        (callbacks, "PER_PAGE"),
        (queues, "ENTRIES_PER_PAGE"),
    ]:
        monkeypatch.setattr(module, name, 3)
    monkeypatch.setitem(trail.page.__kwdefaults__, "size", 3)
    monkeypatch.setitem(calllog.page_of.__kwdefaults__, "size", 3)


def _client(zoo: dict, role: str) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(zoo["people"][role])
    return client


@pytest.mark.parametrize("role", PAGE_ROLES)
def test_no_page_answers_500_on_odd_data(zoo, small_pages, role):
    client = _client(zoo, role)
    failures = _failures(client, _page_urls(), follow=True)
    failures += _failures(client, _page_urls(), **HTMX)  # the fragments htmx swaps
    contacts = [f"/contacts/{pk}/" for pk in Contact.objects.values_list("pk", flat=True)]
    for target in ("timeline", "timeline-more", "dialer"):
        failures += _failures(client, contacts, **HTMX, **{"HX-Target": target})
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ROLES)
def test_no_api_read_answers_500_on_odd_data(zoo, role):
    _, token = ApiToken.issue(zoo["people"][role], name="zoo", scopes=["contacts:read", "calls:read"])
    client = Client(raise_request_exception=False)
    failures = _failures(client, _api_urls(), follow=True, Authorization=f"Bearer {token}")
    assert not failures, "\n".join(failures)


def test_no_admin_page_answers_500_on_odd_data(zoo):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client(raise_request_exception=False)
    client.force_login(root)
    failures = _failures(client, _admin_urls())
    admin_role = _client(zoo, "admin")
    failures += _failures(admin_role, [u for u in _admin_urls() if u.endswith("/change/") or u.count("/") == 4])
    assert not failures, "\n".join(failures)
