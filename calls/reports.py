"""Call reports: counts by agent, day, outcome, disposition, CLID, hour and VCC's reason for failures; and speed to
lead, the time from a contact's creation to its first call, per agent (`time_to_first_call`, read live).

A year of calls is millions of rows, so reports read `CallRollup`: one row per finished day, agent (and group),
facet and value. `refresh_rollup` keeps it current and is run by a periodic job (`manage.py rollup_calls`, every
few minutes from cron or a systemd timer); it never runs on the click path. It rebuilds the days that finished
since its last run and every earlier day in which a call changed since then (each change that reports count
stamps the call's indexed `changed_at`). Reports compute every day after the last rebuilt one live from the call table,
so today's figures (and everything, before the job first runs) are always exact; an older day that changed since
the job's last run is at most one run behind.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, Count, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast, Coalesce, Concat, ExtractHour, Substr, TruncDate
from django.utils import timezone

from calls.models import Agent, AgentGroup, Call, CallRollup, CallRollupState, Contact

log = logging.getLogger("calls.reports")
Facet = CallRollup.Facet
Scope = CallRollup.Scope
ANSWERED = Q(outcome=Call.Outcome.ANSWERED)
AGENT = Coalesce(F("from_agent"), F("answered_by"))  # a call's agent: its own, or the one who answered its groups
HAS_ERROR = Q(error_status__isnull=False) | ~Q(error_message="")
# Failures by VCC's reason count failed calls only: a call that may have been placed is not a failure.
FAILED_WITH_ERROR = Q(outcome=Call.Outcome.FAILED) & HAS_ERROR
CHANGE_MARGIN = timedelta(minutes=5)  # a change is stamped when made and committed a moment later


def _facet_keys() -> dict[str, tuple[Combinable | None, Q]]:
    """Each facet's value for a call (None: the facet has one value), and which calls it counts."""
    return {
        Facet.TOTAL: (None, Q()),
        Facet.OUTCOME: (F("outcome"), Q()),
        Facet.DISPOSITION: (F("disposition_code"), Q()),
        Facet.CLID: (F("presented_clid"), Q()),
        Facet.HOUR: (Cast(ExtractHour("requested_at"), CharField()), Q()),
        Facet.ERROR: (
            Concat(
                Coalesce(Cast("error_status", CharField()), Value("")),
                Value("|"),
                Substr("error_message", 1, 280),
                output_field=CharField(),
            ),
            FAILED_WITH_ERROR,
        ),
    }


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The instants from the start of first to the end of last, in the site's time zone."""
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(first, time.min), tz),
        timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min), tz),
    )


def _grouped(calls: QuerySet, facet: str, scope: str) -> QuerySet:
    """calls counted per local day (agent, group) and facet value, as rows with the roll-up's columns."""
    key, which = _facet_keys()[facet]
    dims: dict[str, Combinable] = {"day": TruncDate("requested_at")}
    if scope != Scope.EVERYONE:
        dims["agent"] = AGENT
    if scope == Scope.GROUP:
        dims["grp"] = F("from_groups")
        calls = calls.filter(from_groups__isnull=False)
    if key is not None:
        dims["key"] = key
    return (
        calls.filter(which)
        .order_by()
        .values(**dims)
        .annotate(
            calls=Count("pk"),
            answered=Count("pk", filter=ANSWERED),
            talk=Coalesce(Sum("duration_seconds", filter=ANSWERED), 0),
        )
    )


# --- Keeping the roll-up current --------------------------------------------------------------------


def _build_days(first: date, last: date) -> None:
    """Replace the roll-up rows of the days first..last with counts from the calls, in the database itself."""
    start, end = day_bounds(first, last)
    CallRollup.objects.filter(day__gte=first, day__lte=last).delete()
    calls = Call.objects.filter(requested_at__gte=start, requested_at__lt=end)
    table = CallRollup._meta.db_table
    columns = 'day, scope, agent_id, group_id, facet, "key", calls, answered, talk_seconds'
    with connection.cursor() as cursor:
        for facet in Facet.values:
            for scope in (Scope.AGENT, Scope.GROUP):
                inner, params = _grouped(calls, facet, scope).query.sql_with_params()
                key = "''" if facet == Facet.TOTAL else "COALESCE(s.\"key\", '')"
                group = 's."grp"' if scope == Scope.GROUP else "NULL"
                cursor.execute(
                    f"""INSERT INTO {table} ({columns})
                        SELECT s."day", %s, s."agent", {group}, %s, {key}, s."calls", s."answered", s."talk"
                        FROM ({inner}) s""",
                    [scope, facet, *params],
                )
        # Everyone's rows add up the agents' (which count each call once: no agent means via groups).
        cursor.execute(
            f"""INSERT INTO {table} ({columns})
                SELECT day, %s, NULL, NULL, facet, "key", SUM(calls), SUM(answered), SUM(talk_seconds)
                FROM {table} WHERE scope = %s AND day >= %s AND day <= %s GROUP BY day, facet, "key\"""",
            [Scope.EVERYONE, Scope.AGENT, first, last],
        )


def _state() -> CallRollupState:
    state = CallRollupState.objects.select_for_update().order_by("pk").first()
    return state or CallRollupState.objects.create()


def rebuild_rollup(*, now: datetime) -> int:
    """Build the whole roll-up again from the calls, up to yesterday; return how many days it covers."""
    yesterday = timezone.localdate(now) - timedelta(days=1)
    with transaction.atomic():
        state = _state()
        first = Call.objects.order_by("requested_at").values_list("requested_at", flat=True).first()
        CallRollup.objects.all().delete()
        days = 0
        if first is not None and timezone.localdate(first) <= yesterday:
            start = timezone.localdate(first)
            _build_days(start, yesterday)
            days = (yesterday - start).days + 1
        state.built_through, state.changes_seen_at, state.built_at = yesterday, now, now
        state.time_zone = settings.TIME_ZONE
        state.save()
    return days


def refresh_rollup(*, now: datetime) -> list[date]:
    """Roll up the days that finished since the last run and the older days whose calls changed; return them."""
    yesterday = timezone.localdate(now) - timedelta(days=1)
    with transaction.atomic():
        state = _state()
        if state.built_through is not None and state.time_zone != settings.TIME_ZONE:
            # Its days are another zone's: a call at 02:00 UTC is yesterday's in New York, not today's as in London.
            log.warning(
                "reports: TIME_ZONE is now %s, the roll-up's days were counted in %s: rolling every day up again",
                settings.TIME_ZONE,
                state.time_zone or "an unknown one",
            )
        if state.built_through is None or state.time_zone != settings.TIME_ZONE:
            rebuild_rollup(now=now)
            return []
        days: set[date] = set()
        day = state.built_through + timedelta(days=1)
        while day <= yesterday:
            days.add(day)
            day += timedelta(days=1)
        if state.changes_seen_at:
            changed = (
                Call.objects.filter(changed_at__gte=state.changes_seen_at - CHANGE_MARGIN)
                .annotate(day=TruncDate("requested_at"))
                .values_list("day", flat=True)
                .distinct()
            )
            days.update(d for d in changed if d <= state.built_through)
        for day in sorted(days):
            _build_days(day, day)
        state.built_through = max(state.built_through, yesterday)
        state.changes_seen_at, state.built_at = now, now
        state.save()
    return sorted(days)


# --- Reading a report -------------------------------------------------------------------------------


class Rates:
    """The rates of a report line with `calls`, `answered` and `talk` (seconds)."""

    calls: int
    answered: int
    talk: int

    @property
    def answered_rate(self) -> float | None:
        return self.answered / self.calls if self.calls else None

    @property
    def average_talk(self) -> float | None:
        return self.talk / self.answered if self.answered else None


@dataclass
class Count3(Rates):
    calls: int = 0
    answered: int = 0
    talk: int = 0

    def add(self, calls: int, answered: int, talk: int) -> None:
        self.calls += calls
        self.answered += answered
        self.talk += talk


@dataclass
class Report:
    first: date
    last: date
    total: Count3 = field(default_factory=Count3)
    facets: dict[str, dict[str, Count3]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Count3)))
    per_day: dict[date, Count3] = field(default_factory=lambda: defaultdict(Count3))
    per_agent: dict[int | None, Count3] = field(default_factory=lambda: defaultdict(Count3))
    per_agent_day: dict[tuple[int | None, date], int] = field(default_factory=lambda: defaultdict(int))
    live_from: date | None = None  # the first day computed from the calls rather than the roll-up

    def add_day(self, day: date, calls: int, answered: int, talk: int) -> None:
        self.total.add(calls, answered, talk)
        self.per_day[day].add(calls, answered, talk)

    def add_agent_day(self, agent: int | None, day: date, calls: int, answered: int, talk: int) -> None:
        self.per_agent[agent].add(calls, answered, talk)
        self.per_agent_day[agent, day] += calls

    def add_facet(self, facet: str, key: str, calls: int, answered: int, talk: int) -> None:
        self.facets[facet][key or ""].add(calls, answered, talk)


def _summed(rows: QuerySet[CallRollup], *by: str) -> QuerySet[CallRollup, dict[str, Any]]:
    """rows grouped by the fields `by`, with their calls, answered calls and talk seconds summed as c, a and t."""
    return rows.values(*by).annotate(c=Sum("calls"), a=Sum("answered"), t=Sum("talk_seconds")).order_by()


def _read_rollup(report: Report, first: date, last: date, agent: Agent | None, group: AgentGroup | None) -> None:
    rows = CallRollup.objects.filter(day__gte=first, day__lte=last)
    if group is not None:
        rows = rows.filter(scope=Scope.GROUP, group=group)
    elif agent is not None:
        rows = rows.filter(scope=Scope.AGENT, agent=agent)
    else:
        rows = rows.filter(scope=Scope.EVERYONE)
        per_agent = CallRollup.objects.filter(day__gte=first, day__lte=last, scope=Scope.AGENT, facet=Facet.TOTAL)
        for a in _summed(per_agent, "day", "agent"):
            report.add_agent_day(a["agent"], a["day"], a["c"], a["a"], a["t"])
    for d in _summed(rows.filter(facet=Facet.TOTAL), "day", "agent"):
        report.add_day(d["day"], d["c"], d["a"], d["t"])
        if agent is not None or group is not None:
            report.add_agent_day(d["agent"], d["day"], d["c"], d["a"], d["t"])
    for f in _summed(rows.exclude(facet=Facet.TOTAL), "facet", "key"):
        report.add_facet(f["facet"], f["key"], f["c"], f["a"], f["t"])


def _read_live(report: Report, calls: QuerySet) -> None:
    """Count calls not rolled up yet (today's, mostly) in one grouped query, then share the rows out to facets."""
    rows = (
        calls.order_by()
        .values(
            "outcome",
            "disposition_code",
            "presented_clid",
            "error_status",
            day=TruncDate("requested_at"),
            agent=AGENT,
            hour=ExtractHour("requested_at"),
            message=Substr("error_message", 1, 280),
        )
        .annotate(
            calls=Count("pk"),
            answered=Count("pk", filter=ANSWERED),
            talk=Coalesce(Sum("duration_seconds", filter=ANSWERED), 0),
        )
    )
    for r in rows:
        n = (r["calls"], r["answered"], r["talk"])
        report.add_day(r["day"], *n)
        report.add_agent_day(r["agent"], r["day"], *n)
        report.add_facet(Facet.OUTCOME, r["outcome"], *n)
        report.add_facet(Facet.DISPOSITION, r["disposition_code"], *n)
        report.add_facet(Facet.CLID, r["presented_clid"], *n)
        report.add_facet(Facet.HOUR, str(r["hour"]), *n)
        if r["outcome"] == Call.Outcome.FAILED and (r["error_status"] is not None or r["message"]):
            status = "" if r["error_status"] is None else str(r["error_status"])
            report.add_facet(Facet.ERROR, f"{status}|{r['message'] or ''}", *n)


def build_report(
    *, first: date, last: date, agent: Agent | None = None, group: AgentGroup | None = None, now: datetime
) -> Report:
    """The report for the local days first..last, for one agent's calls, one group's, or everyone's."""
    report = Report(first, last)
    state = CallRollupState.objects.order_by("pk").first()
    built_through = state.built_through if state else None
    # Read the roll-up up to its last built day; count the days after it from the calls.
    rolled_last = min(last, built_through) if built_through else None
    if rolled_last and rolled_last >= first:
        _read_rollup(report, first, rolled_last, agent, group)
    live_first = max(first, built_through + timedelta(days=1)) if built_through else first
    if live_first <= last:
        report.live_from = live_first
        start, end = day_bounds(live_first, last)
        calls = Call.objects.filter(requested_at__gte=start, requested_at__lt=end)
        if agent is not None:
            calls = calls.filter(Q(from_agent=agent) | Q(answered_by=agent))
        if group is not None:
            calls = calls.filter(from_groups=group)
        _read_live(report, calls)
    return report


# --- Speed to lead: time from a contact's creation to its first call ----------------------------------------


@dataclass
class FirstCalls:
    """The contacts created in a period that have been called, for one agent: how soon their first call came."""

    agent_id: int | None  # the first call's agent (None: a group call nobody answered)
    contacts: int
    median: timedelta
    p90: timedelta


FIRST_CALL_PARAMS = (Call.Origin.INBOUND, Call.Outcome.FAILED)  # what _first_calls_sql leaves out, before its range


def _first_calls_sql() -> str:
    contacts, calls = Contact._meta.db_table, Call._meta.db_table
    # Each new contact's first call, found through call_contact_idx (contact, requested_at) one contact at a time;
    # then the median and the 90th percentile per agent of that call. Inbound calls are not an attempt to reach them,
    # nor are failed clicks (VCC refused them, or they never reached VCC: nothing rang).
    return f"""
        SELECT f.agent_id, COUNT(*),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY f.seconds),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY f.seconds)
        FROM {contacts} c
        CROSS JOIN LATERAL (
            SELECT COALESCE(k.from_agent_id, k.answered_by_id) AS agent_id,
                   GREATEST(EXTRACT(EPOCH FROM k.requested_at - c.created_at), 0) AS seconds
            FROM {calls} k
            WHERE k.contact_id = c.id AND k.origin <> %s AND k.outcome <> %s
            ORDER BY k.requested_at, k.id
            LIMIT 1
        ) f
        WHERE c.created_at >= %s AND c.created_at < %s
        GROUP BY f.agent_id
    """


def _percentile(values: list[float], share: float) -> float:
    """percentile_cont: linear between the two nearest of the sorted values."""
    at = (len(values) - 1) * share
    low = int(at)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (at - low)


def _first_call_seconds(start: datetime, end: datetime) -> list[tuple[int | None, float, float, int]]:
    """What _first_calls_sql answers, worked out in Python: for databases without percentile_cont (SQLite)."""
    first = (
        Call.objects.filter(contact=OuterRef("pk"))
        .exclude(origin=Call.Origin.INBOUND)
        .exclude(outcome=Call.Outcome.FAILED)
        .order_by("requested_at", "pk")
    )
    rows = list(
        Contact.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(first_at=Subquery(first.values("requested_at")[:1]), first_call=Subquery(first.values("pk")[:1]))
        .filter(first_at__isnull=False)
        .values_list("created_at", "first_at", "first_call")
    )
    agents = dict(Call.objects.filter(pk__in=[r[2] for r in rows]).annotate(a=AGENT).values_list("pk", "a"))
    per_agent: dict[int | None, list[float]] = defaultdict(list)
    for created, first_at, call_pk in rows:
        per_agent[agents.get(call_pk)].append(max((first_at - created).total_seconds(), 0.0))
    out = []
    for agent_id, seconds in per_agent.items():
        seconds.sort()
        out.append((agent_id, _percentile(seconds, 0.5), _percentile(seconds, 0.9), len(seconds)))
    return out


def time_to_first_call(
    *, first: date, last: date, agent: Agent | None = None, group: AgentGroup | None = None
) -> list[FirstCalls]:
    """For the contacts created on the local days first..last that have been called: how long their first call took,
    per agent of that call (the median and the 90th percentile), most contacts first. One query on PostgreSQL. An
    inbound call is not a call to them, nor is a click that failed (nothing rang).

    With an agent, that agent's line only; with a group, the lines of the group's members."""
    start, end = day_bounds(first, last)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_first_calls_sql(), [*FIRST_CALL_PARAMS, start, end])
            found = [(a, float(median), float(p90), n) for a, n, median, p90 in cursor.fetchall()]
    else:
        found = _first_call_seconds(start, end)
    if agent is not None:
        found = [r for r in found if r[0] == agent.pk]
    elif group is not None:
        members = set(group.members.values_list("pk", flat=True))
        found = [r for r in found if r[0] in members]
    rows = [
        FirstCalls(a, n, timedelta(seconds=round(median)), timedelta(seconds=round(p90))) for a, median, p90, n in found
    ]
    return sorted(rows, key=lambda r: (-r.contacts, r.agent_id or 0))
