"""Fill the database with a large, realistic call log: contacts with UK and US numbers, and a year of calls.

Rows are bulk loaded: COPY on PostgreSQL (with the tables' indexes and constraints set aside while loading and
rebuilt after, which is many times faster than maintaining them row by row), bulk_create elsewhere. The calls are
spread over agents, groups, presented CLIDs, every outcome, dispositions and a year of working hours, and each has
the fields its state implies (a failed call has VCC's error and no VCC id; an answered one a connection time and a
talk time; a wrapped-up one a disposition). Contact 1 of the run gets `--busy-contact-calls` calls of its own, for
the contact timeline benchmark. It finishes by rebuilding the report roll-up.

    python manage.py seed_volume --contacts 1000000 --calls 5000000
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from calls import reports
from calls.defaults import ensure_defaults
from calls.management.commands.seed_demo import FIRST, LAST
from calls.models import (
    Agent,
    AgentGroup,
    Call,
    CallbackNumber,
    CallEvent,
    ConsentRule,
    Contact,
    ContactPhone,
    DispositionCode,
    callkeys,
    contactsearch,
)
from calls.roles import AGENT, SUPERVISOR, assign_role, sync_roles

SEED_PASSWORD = "seed"  # the password of the users this command creates (agents seed3001…, supervisors seedsup1…)
FIRST_AGENT_ID = 3001
GROUPS = [("S10", "Sales North"), ("S20", "Sales South"), ("S30", "Renewals"), ("S40", "Support"), ("S50", "Billing")]
CLIDS = [
    ("+442079460500", "Seed London"),
    ("+441614960500", "Seed Manchester"),
    ("+13125550150", "Seed Chicago"),
    ("+12125550150", "Seed New York"),
]
# Number prefixes whose every completion to 13 characters is a valid GB number (tests/test_seed_volume.py checks).
UK_PREFIXES = [
    *("+447400", "+447401", "+447402", "+447403", "+447500", "+447501", "+447502", "+447800", "+447801"),
    *("+447802", "+447900", "+447901", "+44207", "+44203", "+44208", "+44161"),
]  # mobiles in Great Britain (not the Channel Islands or Man), London and Manchester
US_AREAS = ["212", "312", "415", "617", "202", "305", "512", "646", "718", "773"]
COMPANIES = ["", "", "Cobalt Dental", "Northwind", "Acme Ltd", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay"]
# How calls end, with their weights and what VCC says: (outcome, weight, state, result code, party, reason).
OUTCOMES = [
    (Call.Outcome.ANSWERED, 55, Call.State.ENDED, "Success", "", ""),
    (Call.Outcome.NO_ANSWER, 15, Call.State.ENDED, "Failure", "Destination", "NoAnswer"),
    (Call.Outcome.AGENT_NO_ANSWER, 5, Call.State.ENDED, "Failure", "Originator", "NoAnswer"),
    (Call.Outcome.BUSY, 8, Call.State.ENDED, "Failure", "Destination", "Busy"),
    (Call.Outcome.FAILED, 3, Call.State.ENDED, "Failure", "Destination", "Failed"),
    (Call.Outcome.FAILED, 8, Call.State.FAILED, "", "", ""),
    (Call.Outcome.NOT_CONFIRMED, 1, Call.State.UNCONFIRMED, "", "", ""),
    (Call.Outcome.UNKNOWN, 1, Call.State.ENDED, "", "", "Unknown: VCC no longer has this call"),
    (Call.Outcome.GONE, 1, Call.State.ENDED, "", "", "VCC no longer knows this call"),
]
# VCC's refusals, verbatim as its API words them, with the HTTP status and what the person was shown.
ERRORS = [
    ("Agent is not available", 409, "Your phone is not ready in VCC: set yourself available and try again."),
    ("Agent 1006 is busy", 409, "Your phone is busy in VCC."),
    ("No agents available in the requested groups", 409, "Nobody in those groups is ready now."),
    ("Invalid telephone number", 400, "VCC did not accept this number."),
    ("Too Many Requests", 429, "VCC is busy: wait a moment and try again."),
    ("Service Unavailable", 503, "VCC is not answering right now: try again shortly."),
    ("", None, "VCC could not be reached: check the connection and try again."),
]
UNCONFIRMED_ERROR = ("Read timed out", None, "VCC did not answer in time: the call may have been placed.")
HOUR_WEIGHTS = [0, 0, 0, 0, 0, 0, 1, 3, 8, 12, 13, 12, 9, 10, 12, 12, 11, 9, 5, 3, 2, 1, 0, 0]
NOTES = ["", "", "", "", "Asked for a quote", "Call back after 3pm", "Spoke to reception", "Sent brochure by email"]
COPY_BATCH = 50_000


def _check_allowed() -> None:
    if not (settings.DEBUG or settings.VCC_SANDBOX):
        raise CommandError("seed_volume only runs with DEBUG=true or in sandbox mode (no VCC_ACCOUNT_KEY).")


class Command(BaseCommand):
    help = "Bulk load contacts and a year of calls for volume tests. Runs only with DEBUG on or in sandbox mode."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contacts", type=int, default=1000, help="contacts to add (1 or 2 numbers each)")
        parser.add_argument("--calls", type=int, default=5000, help="calls to add, over the last --days days")
        parser.add_argument("--agents", type=int, default=40, help="agents calling (created or reused)")
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--busy-contact-calls", type=int, default=1000, help="calls to the run's first contact")
        parser.add_argument("--seed", type=int, default=8, help="random seed, for a repeatable data set")
        parser.add_argument(
            "--history-days",
            type=int,
            default=30,
            help="calls of the last N days get their history (CallEvent rows); older ones have none, to load faster",
        )

    def handle(self, *args: object, **options: Any) -> None:
        _check_allowed()
        if options["contacts"] < 1 or options["calls"] < 0 or options["agents"] < 1 or options["days"] < 1:
            raise CommandError("--contacts and --agents must be at least 1, --days at least 1, --calls at least 0.")
        started = time.monotonic()
        self.rng = random.Random(options["seed"])
        self.now = timezone.now()
        world = self._world(options["agents"])
        self._say(f"{len(world['agents'])} agents, {len(world['groups'])} groups, {len(world['clids'])} CLIDs ready")
        contacts = self._contacts(options["contacts"])
        _refill_search_table()
        self._say(f"{options['contacts']:,} contacts loaded", started)
        self.history_since = self.now - timedelta(days=options["history_days"])
        history = CallHistory(self.rng, self.now, self.history_since, self._say)
        history.load(options["calls"], options["days"], options["busy_contact_calls"], world, contacts, started)
        self._say("noting each contact's last call…")
        Contact.objects.refresh_last_calls()
        self._say("rebuilding the report roll-up…")
        days = reports.rebuild_rollup(now=self.now)
        self._say(f"roll-up built for {days} days", started)
        self.stdout.write(self.style.SUCCESS(f"Done in {time.monotonic() - started:.0f} s."))

    def _say(self, text: str, started: float | None = None) -> None:
        took = f" ({time.monotonic() - started:.0f} s)" if started is not None else ""
        self.stdout.write(f"{text}{took}")
        self.stdout.flush()

    # --- Who calls, and from which numbers ---------------------------------------------------------

    def _world(self, agent_count: int) -> dict[str, list]:
        sync_roles()
        ensure_defaults(DispositionCode, ConsentRule)
        User = get_user_model()
        password = make_password(SEED_PASSWORD)  # hashed once: the hasher is slow on purpose
        with transaction.atomic():
            agents = []
            for i in range(agent_count):
                display_id = str(FIRST_AGENT_ID + i)
                user, made = User.objects.get_or_create(
                    username=f"seed{display_id}",
                    defaults={"first_name": FIRST[i % len(FIRST)], "last_name": f"Agent {display_id}"},
                )
                if made:
                    user.password = password
                    user.save(update_fields=["password"])
                    assign_role(user, AGENT)
                agent, _ = Agent.objects.get_or_create(
                    display_id=display_id, defaults={"name": f"{user.first_name} {user.last_name}", "user": user}
                )
                agents.append(agent)
            supervisors = []
            for i in (1, 2):
                user, made = User.objects.get_or_create(
                    username=f"seedsup{i}", defaults={"first_name": "Supervisor", "last_name": str(i)}
                )
                if made:
                    user.password = password
                    user.save(update_fields=["password"])
                    assign_role(user, SUPERVISOR)
                supervisors.append(user)
            groups = []
            for n, (display_id, name) in enumerate(GROUPS):
                group, _ = AgentGroup.objects.get_or_create(display_id=display_id, defaults={"name": name})
                group.members.add(*agents[n :: len(GROUPS)])
                groups.append(group)
            clids = []
            for number, label in CLIDS:
                clid, _ = CallbackNumber.objects.get_or_create(number=number, defaults={"label": label})
                clids.append(clid)
            clids += list(CallbackNumber.objects.filter(is_active=True).exclude(pk__in=[c.pk for c in clids]))
        return {
            "agents": agents,
            "supervisors": supervisors,
            "groups": groups,
            "clids": clids,
            "dispositions": list(DispositionCode.objects.filter(is_active=True).values_list("code", flat=True)),
        }

    # --- Contacts ----------------------------------------------------------------------------------

    def _number(self, us: bool) -> str:
        r = self.rng
        if us:
            return f"+1{r.choice(US_AREAS)}{r.randrange(200, 1000)}{r.randrange(10000):04d}"
        prefix = r.choice(UK_PREFIXES)
        return prefix + str(r.randrange(10 ** (13 - len(prefix)))).zfill(13 - len(prefix))

    def _contacts(self, count: int) -> list[tuple[int, int, str, bool]]:
        """Load count contacts with their numbers; return (contact id, phone id, number, is US) per first number."""
        r = self.rng
        first_contact = _next_id(Contact)
        first_phone = _next_id(ContactPhone)
        now = self.now
        contacts: list[tuple[object, ...]] = []
        phones: list[tuple[int, int, str, str, bool, bool]] = []
        dialled: list[tuple[int, int, str, bool]] = []
        phone_id = first_phone
        for i in range(count):
            contact_id = first_contact + i
            first, last = r.choice(FIRST), r.choice(LAST)
            contacts.append(
                (contact_id, f"{first} {last}", r.choice(COMPANIES), f"{first}.{last}{contact_id}@example.com".lower(),
                 "", r.random() < 0.01, "", now, now)
            )  # fmt: skip
            us = r.random() < 0.3
            for n in range(1 if r.random() < 0.7 else 2):
                number = self._number(us if n == 0 else not us)
                if n and number == phones[-1][3]:
                    continue
                phones.append((phone_id, contact_id, ("mobile", "work")[n], number, n == 0, r.random() < 0.005))
                if n == 0:
                    dialled.append((contact_id, phone_id, number, us))
                phone_id += 1
        contact_cols = ["id", "name", "company", "email", "notes", "do_not_call", "consent_override"]
        contact_cols += ["created_at", "updated_at"]
        with _bulk_mode([Contact, ContactPhone]):
            for start in range(0, len(contacts), COPY_BATCH):
                _load(Contact, contact_cols, contacts[start : start + COPY_BATCH])
            for start in range(0, len(phones), COPY_BATCH):
                _load(ContactPhone, ["id", "contact_id", "label", "number", "is_primary", "do_not_call"],
                      phones[start : start + COPY_BATCH])  # fmt: skip
        return dialled

    # --- Calls -------------------------------------------------------------------------------------


@dataclass
class CallHistory:
    """Generated calls, loaded in bulk: this command's year of them, and seed_demo's few weeks (--history-days)."""

    rng: random.Random
    now: datetime  # the calls end before it (those requested within live_within of it are still going on)
    history_since: datetime  # calls before it get no history (CallEvent rows), to load faster
    say: Callable[[str, float | None], None]
    live_within: timedelta = timedelta(minutes=3)
    wrap_all: bool = False  # every call that asks for a wrap-up has one (else the last two days keep some waiting)

    def load(self, count: int, days: int, busy_calls: int, world: dict, contacts: list, started: float) -> None:
        if not count:
            return
        first_call = _next_id(Call)
        call_rows, group_rows, event_rows = [], [], []
        event_id = _next_id(CallEvent)
        through_id = _next_id(Call.from_groups.through)
        loaded = 0
        with _bulk_mode([Call, Call.from_groups.through, CallEvent], say=lambda text: self.say(text, None)):
            for n, row in enumerate(self._generate(count, days, busy_calls, world, contacts)):
                call_id = first_call + n
                call, groups, events = row
                call_rows.append((call_id, *call))
                for group_id in groups:
                    group_rows.append((through_id, call_id, group_id))
                    through_id += 1
                for at, kind, detail in events:
                    event_rows.append((event_id, call_id, at, kind, detail))
                    event_id += 1
                if len(call_rows) >= COPY_BATCH:
                    loaded += self._flush(call_rows, group_rows, event_rows)
                    if loaded % 500_000 == 0:
                        self.say(f"{loaded:,} calls loaded", started)
            loaded += self._flush(call_rows, group_rows, event_rows)
            self.say(f"{loaded:,} calls loaded; rebuilding indexes…", started)
        self.say("indexes rebuilt", started)
        _fill_call_keys(first_call)
        self.say("the calls' keys written", started)

    def _flush(self, calls: list, groups: list, events: list) -> int:
        loaded = len(calls)
        _load(Call, CALL_COLUMNS, calls)
        _load(Call.from_groups.through, ["id", "call_id", "agentgroup_id"], groups)
        _load(CallEvent, ["id", "call_id", "at", "kind", "detail"], events)
        calls.clear()
        groups.clear()
        events.clear()
        return loaded

    def _generate(self, count: int, days: int, busy_calls: int, world: dict, contacts: list) -> Iterator[tuple]:
        """Yield (call columns without id, group ids, events) in time order."""
        r = self.rng
        # Plain tuples: model attribute access costs more than everything else per row.
        agents = [(a.pk, a.display_id, a.user_id) for a in world["agents"]]
        supervisors = [u.pk for u in world["supervisors"]]
        groups = [(g.pk, g.display_id) for g in world["groups"]]
        members: dict[int, list[int]] = {}  # who may answer a call via each group
        through = AgentGroup.members.through.objects.filter(agentgroup__in=[g[0] for g in groups])
        for group_id, agent_id in through.order_by("agentgroup_id", "agent_id").values_list(
            "agentgroup_id", "agent_id"
        ):
            members.setdefault(group_id, []).append(agent_id)
        clids = [(c.pk, c.number) for c in world["clids"]]
        dispositions = world["dispositions"] or ["Interested"]
        agent_weights = list(accumulate(1 / (i + 3) for i in range(len(agents))))  # some agents call far more
        outcome_weights = list(accumulate(o[1] for o in OUTCOMES))
        rules = dict(ConsentRule.objects.values_list("country", "consent"))
        consent = {False: rules.get("GB", "Unknown"), True: rules.get("US", "Unknown")}
        site = (settings.SITE_URL or "http://127.0.0.1:8000").rstrip("/")
        tz = timezone.get_current_timezone()
        today = timezone.localdate(self.now)
        busy = contacts[0]
        busy_every = max(1, count // busy_calls) if busy_calls else 0
        # Calls per day: working days busier than weekends; each day's calls sorted through working hours.
        day_list = [today - timedelta(days=d) for d in range(days - 1, -1, -1)]
        day_weights = [0.35 if d.weekday() >= 5 else 1.0 for d in day_list]
        per_day = [0] * days
        for i in r.choices(range(days), weights=day_weights, k=count):
            per_day[i] += 1
        n = 0
        for day, day_count in zip(day_list, per_day, strict=True):
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
            hours = r.choices(range(24), weights=HOUR_WEIGHTS, k=day_count)
            offsets = sorted(h * 3600 + r.random() * 3600 for h in hours)
            if day == today:
                # Today so far: the same shape of day, squeezed into the hours that have passed.
                elapsed = (self.now - midnight).total_seconds()
                offsets = [o * elapsed / 86400 for o in offsets]
            for offset in offsets:
                requested = midnight + timedelta(seconds=offset)
                contact_id, phone_id, number, us = busy if busy_every and n % busy_every == 0 else r.choice(contacts)
                n += 1
                via_groups = r.random() < 0.2
                if via_groups:
                    agent, creator = None, r.choice(supervisors)
                    via = [r.choice(groups)] if r.random() < 0.8 else r.sample(groups, 2)
                    call_groups = [g[0] for g in via]
                    source = '"groups": [' + ", ".join(f'"{g[1]}"' for g in via) + "]"
                else:
                    agent = r.choices(agents, cum_weights=agent_weights)[0]
                    creator, call_groups = agent[2], []
                    source = f'"agentId": "{agent[1]}"'
                clid_pk, clid_number = r.choice(clids)
                outcome, _w, state, code, party, reason = r.choices(OUTCOMES, cum_weights=outcome_weights)[0]
                age = self.now - requested
                if age < self.live_within and state != Call.State.FAILED:
                    outcome, state, code, party, reason = Call.Outcome.IN_PROGRESS, Call.State.LIVE, "", "", ""
                latency = r.randrange(120, 900)
                responded = requested + timedelta(milliseconds=latency)
                # What dialing sends (CallRequest.to_json), written out: json.dumps per row is slow.
                body = (
                    f'{{"from": {{{source}, "presentedCLID": "{clid_number}", "consent": "{consent[us]}"}}, '
                    f'"to": {{"telephoneNumber": "{number}"}}, '
                    f'"regarding": {{"reference": "{site}/contacts/{contact_id}/"}}, "application": "vccweb"}}'
                )
                vcc_id = error_message = error_display = ""
                error_status = connected = ended = duration = wrapped = next_check = answered_by = None
                disposition = notes = ""
                events = []
                if state in (Call.State.FAILED, Call.State.UNCONFIRMED):
                    error_message, error_status, error_display = (
                        r.choice(ERRORS) if state == Call.State.FAILED else UNCONFIRMED_ERROR
                    )
                else:
                    vcc_id = f"{uuid.UUID(int=r.getrandbits(128))}"
                    if state == Call.State.LIVE:
                        next_check = self.now
                    else:
                        rang = timedelta(seconds=r.randrange(8, 40))
                        if outcome == Call.Outcome.ANSWERED:
                            connected = responded + rang
                            if via_groups and (able := sorted({a for g in call_groups for a in members.get(g, [])})):
                                answered_by = r.choice(able)  # a group call is answered by one of its agents
                            duration = int(r.expovariate(1 / 180)) + 5
                            ended = connected + timedelta(seconds=duration)
                        else:
                            ended = responded + rang
                            duration = None if outcome in (Call.Outcome.UNKNOWN, Call.Outcome.GONE) else 0
                        # Most calls that connected were wrapped up (all, with wrap_all); the last two days still have
                        # some waiting.
                        asks = outcome not in Call.NEVER_CONNECTED  # the others have nothing to wrap up
                        if asks and (self.wrap_all or age > timedelta(days=2) or r.random() < 0.6):
                            wrapped = ended + timedelta(seconds=r.randrange(10, 300))
                            disposition = r.choice(dispositions)
                            notes = r.choice(NOTES)
                            events.append((wrapped, CallEvent.Kind.WRAP_UP, disposition))
                if requested < self.history_since:
                    events = []
                yield (
                    (
                        uuid.UUID(int=r.getrandbits(128), version=4), creator,
                        agent[0] if agent else None, number, None, contact_id, phone_id, clid_number, clid_pk,
                        "your default" if not via_groups else "the group's default", consent[us],
                        "US default" if us else "GB default", "", f"{site}/contacts/{contact_id}/", "vccweb",
                        body, vcc_id, "", "", code, party, reason, disposition, notes, wrapped,
                        state, outcome, error_message, error_status, error_display, requested, responded,
                        connected, ended, latency, duration, next_check, None,
                        "", wrapped or ended or responded or requested, answered_by,
                    ),
                    call_groups,
                    events,
                )  # fmt: skip


CALL_COLUMNS = [
    "id", "request_id", "created_by_id", "from_agent_id", "to_number", "to_agent_id", "contact_id", "phone_id",
    "presented_clid", "callback_number_id", "clid_reason", "consent", "consent_reason", "dnc_override_reason",
    "regarding", "application", "request_body", "vcc_call_id", "vcc_status", "recording_status", "result_code",
    "result_party", "result_reason", "disposition_code", "notes", "wrapped_up_at", "state", "outcome",
    "error_message", "error_status", "error_display", "requested_at", "responded_at", "connected_at", "ended_at",
    "latency_ms", "duration_seconds", "next_check_at", "missing_since", "trace_id", "changed_at", "answered_by_id",
]  # fmt: skip


def _refill_search_table() -> None:
    """The narrow search table written again, by name (calls/models/contactsearch.py): a bulk load skips the
    triggers that keep it (session_replication_role), and rows written by name make the search's sorting cheap."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for sql in [contactsearch.DROP_INDEX_SQL, *contactsearch.REFILL_SQL, contactsearch.INDEX_SQL]:
            cursor.execute(sql)
        cursor.execute(f"ANALYZE {contactsearch.TABLE}")


def _fill_call_keys(first_call: int) -> None:
    """The keys of the calls loaded (calls/models/callkeys.py), when the load skipped the trigger that writes them
    (session_replication_role); a load that ran it wrote them already, and each is written once."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table, column, where in (
            (callkeys.REQUEST_TABLE, "request_id", ""),
            (callkeys.VCC_TABLE, "vcc_call_id", "AND vcc_call_id <> ''"),
        ):
            cursor.execute(
                f"INSERT INTO {table} ({column}, call_id) SELECT {column}, id FROM {Call._meta.db_table} "
                f"WHERE id >= %s {where} ON CONFLICT (call_id) DO NOTHING",  # a key another call has: an error
                [first_call],
            )
            cursor.execute(f"ANALYZE {table}")


def _next_id(model: type[Model]) -> int:
    last = model._default_manager.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


def _load(model: type[Model], columns: list[str], rows: Sequence[tuple[object, ...]]) -> None:
    """Append rows (ids included) to model's table: COPY on PostgreSQL, bulk_create elsewhere."""
    if not rows:
        return
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            with cursor.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
            # Ids were given explicitly: move the sequence past them.
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))"
            )
        return
    objects = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))  # column names are attnames: from_agent_id, not from_agent
        if isinstance(body := values.get("request_body"), str):
            values["request_body"] = json.loads(body)
        objects.append(model(**values))
    model._default_manager.bulk_create(objects, batch_size=500)


class _bulk_mode:
    """On PostgreSQL, set the tables' secondary indexes and unique constraints aside while loading and rebuild them
    after, which is many times faster than maintaining them row by row.

    Foreign keys stay, unchecked while loading (the rows reference what this command just made or read): a
    superuser session skips them with session_replication_role; otherwise they are dropped and added back (and
    checked) too.
    """

    def __init__(self, models: Iterable[type[Model]], say: Callable[[str], None] | None = None) -> None:
        self.tables = [m._meta.db_table for m in models]
        self.saved: list[tuple[str, str, str]] = []  # (name, statement to drop, statement to rebuild)
        self.say = say or (lambda text: None)
        self.replica = False

    def __enter__(self) -> _bulk_mode:
        if connection.vendor != "postgresql":
            return self
        with connection.cursor() as cursor:
            # Inside a transaction (tests), deferred foreign key checks still pending would block ALTER TABLE.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            try:
                with transaction.atomic():
                    cursor.execute("SET session_replication_role = replica")
                self.replica = True
            except DatabaseError:
                self.replica = False
            kinds = ["u"] if self.replica else ["u", "f"]
            for table in self.tables:
                cursor.execute(
                    """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                       WHERE conrelid = %s::regclass AND contype = ANY(%s)""",
                    [table, kinds],
                )
                for name, definition in cursor.fetchall():
                    self.saved.append(
                        (
                            name,
                            f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"',
                            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}',
                        )
                    )
                cursor.execute(
                    """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
                       JOIN pg_class c ON c.oid = i.indexrelid
                       WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
                       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""",
                    [table],
                )
                for name, definition in cursor.fetchall():
                    self.saved.append((name, f'DROP INDEX "{name}"', definition))
            for _name, drop, _rebuild in self.saved:
                cursor.execute(drop)
        return self

    def __exit__(self, *exc: object) -> None:
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            if self.replica:
                cursor.execute("SET session_replication_role = origin")
            cursor.execute("SET maintenance_work_mem = '1GB'")
            # Indexes first, then constraints (a foreign key is checked faster once its columns are indexed).
            for name, _drop, rebuild in sorted(self.saved, key=lambda s: "FOREIGN KEY" in s[2]):
                started = time.monotonic()
                cursor.execute(rebuild)
                self.say(f"  {name} ({time.monotonic() - started:.0f} s)")
            for table in self.tables:
                cursor.execute(f'ANALYZE "{table}"')
