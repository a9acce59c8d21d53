"""Create (or bring back) the demo workspace: contacts, agents, groups, callback numbers and three users; with
--history-days (`make run` asks for 28), a call log of that many days, so that the call log, the reports and their
charts have something to show before the first click.

It matches vccsim's sample account, so that sandbox calls find the same agents, groups and CLIDs.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from calls.defaults import ensure_defaults
from calls.models import (
    Agent,
    AgentGroup,
    Call,
    Callback,
    CallbackNumber,
    CallQueue,
    ConsentRule,
    Contact,
    ContactPhone,
    DispositionCode,
)
from calls.privacy import hashing
from calls.queues import building
from calls.roles import ADMIN, AGENT, SUPERVISOR, assign_role, sync_roles

AGENTS = [
    ("1001", "Alex Morgan"),
    ("1002", "Priya Shah"),
    ("1003", "Tom Okafor"),
    ("1004", "Mia Jensen"),
    ("1005", "Sam Rivera"),
    ("1006", "Jordan Lee"),
]
GROUPS = [
    ("030", "Sales UK", ["1001", "1003", "1004"]),
    ("200", "Support", ["1002", "1005", "1006"]),
    ("400", "Out of hours", ["1005", "1006"]),
]
# (number, label, account default, restricted to these groups)
CALLBACK_NUMBERS = [
    ("+442079460100", "London main", True, []),
    ("+441614960200", "Manchester support", False, ["200"]),
    ("+13125550100", "Chicago", False, []),
]
USERS = [
    # username, first, last, role, agent display ID
    ("admin", "Ada", "Admin", ADMIN, None),
    ("supervisor", "Priya", "Shah", SUPERVISOR, "1002"),
    ("agent", "Alex", "Morgan", AGENT, "1001"),
]

FIRST = [
    "Olivia",
    "Noah",
    "Amelia",
    "Jack",
    "Isla",
    "Oliver",
    "Ava",
    "Harry",
    "Grace",
    "George",
    "Sophia",
    "Leo",
    "Freya",
    "Arthur",
    "Lily",
    "Muhammad",
    "Emily",
    "Oscar",
    "Chloe",
    "Jacob",
    "Ella",
    "Ethan",
    "Maya",
    "Liam",
    "Zara",
    "Lucas",
    "Nia",
    "Mateo",
    "Hannah",
    "Kenji",
]
LAST = [
    "Smith",
    "Jones",
    "Williams",
    "Brown",
    "Taylor",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Patel",
    "Khan",
    "Robinson",
    "Wright",
    "Walker",
    "Hughes",
    "Green",
    "Lewis",
    "Clarke",
    "Nguyen",
    "Garcia",
    "Murphy",
    "O'Brien",
    "Kowalski",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Okafor",
    "Fischer",
]
COMPANIES = [
    "Acme Logistics",
    "Brightwater Energy",
    "Cobalt Dental",
    "Driftwood Studios",
    "Evergreen Insurance",
    "Foxglove Bakery",
    "Granite Legal",
    "Harbour Freight",
    "Ironbridge Builders",
    "Juniper Health",
    "Kestrel Aviation",
    "Lighthouse Media",
    "Maple & Co",
    "Northwind Traders",
    "Orchard Schools",
    "",
]
# Prefixes that give valid numbers: UK mobiles, UK landlines (Ofcom drama ranges) and US 555-01xx.
UK_MOBILE = ["+44740", "+44745", "+44752", "+44771", "+44780", "+44791"]
UK_LANDLINE = ["+4420794600", "+4416149600", "+4411349600", "+4411749600"]
US = ["+131255501", "+121255501", "+141555501", "+161755501"]

CONTACT_COUNT = 60
HISTORY_PER_DAY = 20  # calls a day in the demo's call log (--history-days): six agents, some of them part-time


def _number(rng: random.Random, prefixes: list[str], length: int) -> str:
    """A valid E.164 number of length characters that starts with one of prefixes."""
    while True:
        prefix = rng.choice(prefixes)
        candidate = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix)))
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            return candidate


class Command(BaseCommand):
    help = "Create the demo workspace (idempotent). Runs only with DEBUG on or in sandbox mode."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--history-days",
            type=int,
            default=0,
            help=f"add a call log of this many days ({HISTORY_PER_DAY} calls a day on average, fewer at weekends), "
            "once: not while the demo has calls",
        )

    def handle(self, *args: object, **options: Any) -> None:
        if not (settings.DEBUG or settings.VCC_SANDBOX):
            raise CommandError("seed_demo only runs with DEBUG=true or in sandbox mode (no VCC_ACCOUNT_KEY).")
        if options["history_days"] < 0:
            raise CommandError("--history-days must be 0 (no call log) or more.")
        with transaction.atomic():
            self._seed()
            calls = self._history(options["history_days"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo workspace ready: {Contact.objects.count()} contacts, {Agent.objects.count()} agents, "
                f"{AgentGroup.objects.count()} groups, {CallbackNumber.objects.count()} callback numbers"
                + (f", {calls} calls over the last {options['history_days']} days." if calls else ".")
            )
        )

    def _seed(self) -> None:
        sync_roles()
        ensure_defaults(DispositionCode, ConsentRule)
        clids = {}
        for number, label, default, _groups in CALLBACK_NUMBERS:
            clids[number], _ = CallbackNumber.objects.update_or_create(
                number=number, defaults={"label": label, "is_default": default, "is_active": True}
            )
        agents = {}
        for display_id, name in AGENTS:
            agents[display_id], _ = Agent.objects.update_or_create(
                display_id=display_id, defaults={"name": name, "is_active": True}
            )
        groups = {}
        for display_id, name, members in GROUPS:
            groups[display_id], _ = AgentGroup.objects.update_or_create(display_id=display_id, defaults={"name": name})
            groups[display_id].members.set([agents[m] for m in members])
        groups["200"].default_callback_number = clids["+441614960200"]
        groups["200"].save(update_fields=["default_callback_number"])
        for number, _label, _default, restricted in CALLBACK_NUMBERS:
            clids[number].allowed_groups.set([groups[g] for g in restricted])

        User = get_user_model()
        users = {}
        for username, first, last, role, agent_id in USERS:
            user, _ = User.objects.update_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@example.com",
                    "is_active": True,
                },
            )
            user.set_password(settings.DEMO_PASSWORD)
            user.save()
            assign_role(user, role)
            users[username] = user
            if agent_id:
                Agent.objects.filter(user=user).exclude(display_id=agent_id).update(user=None)
                agents[agent_id].user = user
                agents[agent_id].save(update_fields=["user"])

        self._contacts(random.Random(20261126), owners=[users["agent"], users["supervisor"], None])
        self._callbacks(users["agent"], groups["030"])
        self._queue(users["supervisor"], groups["030"])

    def _contacts(self, rng: random.Random, *, owners: list[Any]) -> None:
        """CONTACT_COUNT contacts (those missing, by email) with their numbers, written in bulk: the browser tests
        seed the demo for each test, and one query a contact and a number took most of a second. The same
        contacts and numbers every time: the random draws are made in the same order whether a contact is
        missing or not."""
        planned: list[tuple[Contact, list[ContactPhone]]] = []
        for i in range(CONTACT_COUNT):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            contact = Contact(
                name=f"{first} {last}",
                company=rng.choice(COMPANIES),
                email=f"{first}.{last}.{i}@example.com".lower().replace("'", ""),
                owner=rng.choice(owners),
                do_not_call=i % 17 == 5,
                notes=rng.choice(["", "", "Prefers mornings.", "Renewal due next quarter.", "Ask for accounts."]),
            )
            us = i % 5 == 4
            length = 12 if us else 13
            plan = [("mobile", US if us else UK_MOBILE, length)]
            if i % 3 == 0:
                plan.append(("work", US if us else UK_LANDLINE, length))
            phones = [
                ContactPhone(
                    label=label,
                    number=_number(rng, prefixes, digits),
                    is_primary=position == 0,
                    do_not_call=i % 13 == 7 and position == 1,
                )
                for position, (label, prefixes, digits) in enumerate(plan)
            ]
            planned.append((contact, phones))
        there = set(Contact.objects.filter(email__in=[c.email for c, _ in planned]).values_list("email", flat=True))
        missing = [(contact, phones) for contact, phones in planned if contact.email not in there]
        Contact.objects.bulk_create([contact for contact, _ in missing])
        new_phones = []
        for contact, phones in missing:
            drawn: set[str] = set()
            for phone in phones:
                if phone.number not in drawn:  # a number drawn twice for one contact is added once
                    drawn.add(phone.number)
                    phone.contact = contact
                    new_phones.append(phone)
        hashing.mark_erased_opt_outs(new_phones)  # as a save would: a number an erased contact opted out stays out
        ContactPhone.objects.bulk_create(new_phones)

    def _history(self, days: int) -> int:
        """A call log of the last `days` days by the demo's agents and groups to its contacts (never one marked do
        not call), every call ended and wrapped up (none waits in an agent's bar), loaded as seed_volume loads its
        year; each contact called is made to have been added a little before its first call (the "Time to first
        call" report). Once: nothing is added while the demo has calls. Returns how many calls were added."""
        if days == 0 or Call.objects.exists():
            return 0
        from calls import reports
        from calls.management.commands.seed_volume import CallHistory

        now = timezone.now()
        rng = random.Random(20261207)
        world = {
            "agents": list(Agent.objects.filter(display_id__in=[a[0] for a in AGENTS]).order_by("display_id")),
            "supervisors": list(get_user_model().objects.filter(username="supervisor")),
            "groups": list(AgentGroup.objects.filter(display_id__in=[g[0] for g in GROUPS]).order_by("display_id")),
            "clids": list(CallbackNumber.objects.filter(is_active=True).order_by("number")),
            # Not those that mark a number or a contact do not call: the demo's contacts are called again after.
            "dispositions": list(
                DispositionCode.objects.filter(is_active=True, action=DispositionCode.Action.NONE).values_list(
                    "code", flat=True
                )
            ),
        }
        phones = ContactPhone.objects.filter(is_primary=True, do_not_call=False, contact__do_not_call=False)
        contacts = [
            (contact_id, phone_id, number, number.startswith("+1"))
            for contact_id, phone_id, number in phones.order_by("pk").values_list("contact_id", "pk", "number")
        ]
        if not contacts:
            return 0
        count = HISTORY_PER_DAY * days
        history = CallHistory(
            rng, now, now - timedelta(days=days), lambda text, started: None, live_within=timedelta(0), wrap_all=True
        )
        history.load(count, days, 0, world, contacts, time.monotonic())
        firsts = Call.objects.filter(contact__isnull=False).values("contact").annotate(first=Min("requested_at"))
        added = [
            Contact(pk=row["contact"], created_at=row["first"] - timedelta(minutes=rng.randrange(30, 7 * 24 * 60)))
            for row in firsts
        ]
        Contact.objects.bulk_update(added, ["created_at"])
        Contact.objects.refresh_last_calls()
        reports.rebuild_rollup(now=now)
        return count

    def _queue(self, supervisor: Any, sales: AgentGroup) -> None:
        """A call queue of one company's contacts for the sales group (once: none is added while the demo has one)."""
        if CallQueue.objects.exists():
            return
        company = COMPANIES[0]
        building.make_queue(
            user=supervisor,
            name=f"{company}: renewals",
            description="Every contact at the company, oldest first.",
            now=timezone.now(),
            source_filter={"company": company},
            groups=[sales],
        )

    def _callbacks(self, agent: Any, sales: AgentGroup) -> None:
        """A few callbacks for the agent's Today page (once: none are added while the demo has any)."""
        if Callback.objects.exists():
            return
        now = timezone.now()
        contacts = Contact.objects.filter(do_not_call=False).order_by("pk")[:4]
        plan = [
            (timedelta(minutes=-30), agent, None, "Asked to be called after their meeting."),
            (timedelta(hours=2), agent, None, "Wants the renewal quote."),
            (timedelta(hours=3), None, sales, "Anyone in sales: pricing for ten seats."),
            (timedelta(days=1, hours=1), agent, None, ""),
        ]
        for contact, (ahead, person, group, note) in zip(contacts, plan, strict=False):
            Callback.objects.create(
                contact=contact,
                phone=contact.phones.filter(is_primary=True).first(),
                due_at=(now + ahead).replace(second=0, microsecond=0),
                assigned_to=person,
                group=group,
                note=note,
                created_by=agent,
            )
