"""Reports for supervisors and admins: a date range, optionally one agent or one group (calls/reports.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET

from calls import charts, phones
from calls import permissions as perms
from calls.forms import NONE, ReportFilter
from calls.models import Agent, AgentGroup, CallbackNumber, CallRollup
from calls.reports import Count3, Rates, Report, build_report, time_to_first_call

Facet = CallRollup.Facet
DAILY_UP_TO = 62  # longer ranges show calls per agent per week,
WEEKLY_UP_TO = 120  # and longer still, per month


@dataclass
class Row(Rates):
    """One line of a report table: a label and its numbers, each with the call log link behind it."""

    label: str
    calls: int
    href: str
    answered: int = 0
    answered_href: str = ""
    talk: int = 0
    note: str = ""
    look: str = ""  # an outcome's colour (charts.OUTCOME_LOOK)
    share: float | None = None  # of all the calls in the report


class _Links:
    def __init__(self, base: dict[str, str | int]) -> None:
        self.base = base
        self.log = reverse("call_log")

    def __call__(self, **extra: str | int | None) -> str:
        query = {**self.base, **extra}
        return f"{self.log}?{urlencode({k: v for k, v in query.items() if v is not None and v != ''})}"

    def for_days(self, **extra: str | int) -> Callable[[date, date], str]:
        """A function of (first day, last day) giving the link, cheap enough for thousands of chart cells."""
        query = {k: v for k, v in {**self.base, **extra}.items() if k not in ("start", "end")}
        prefix = f"{self.log}?{urlencode(query)}&" if query else f"{self.log}?"
        return lambda first, last: f"{prefix}start={first.isoformat()}&end={last.isoformat()}"


def _months(first: date, last: date) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    start = first
    while start <= last:
        following = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
        out.append((start, min(following - timedelta(days=1), last)))
        start = following
    return out


def _weeks(first: date, last: date) -> list[tuple[date, date]]:
    start = first - timedelta(days=first.weekday())
    out: list[tuple[date, date]] = []
    while start <= last:
        out.append((max(start, first), min(start + timedelta(days=6), last)))
        start += timedelta(days=7)
    return out


@require_GET
@login_required
@permission_required(perms.VIEW_REPORTS, raise_exception=True)
def reports(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    form = ReportFilter(request.GET, today=today)  # every field is optional: no filter is the last 30 days
    if not form.is_valid():
        return render(request, "calls/reports.html", {"form": form}, status=400)
    data = form.cleaned_data
    first, last, agent, group = data["start"], data["end"], data.get("agent"), data.get("group")
    form.show_dates_used()  # the boxes hold the range shown, also when it is the default one
    report = build_report(first=first, last=last, agent=agent, group=group, now=timezone.now())
    context = {
        "form": form,
        "first": first,
        "last": last,
        "agent": agent,
        "group": group,
        "report": report,
        "presets": _presets(form, today),
    }
    return render(request, "calls/reports.html", context | _tables_and_charts(report, first, last, agent, group))


def _presets(form: ReportFilter, today: date) -> list[tuple[str, str, bool]]:
    """The usual ranges as links (label, address, whether it is the range shown), keeping the agent or group."""
    data = form.cleaned_data
    keep = {name: data[name].pk for name in ("agent", "group") if data.get(name)}
    return [
        (label, "?" + urlencode({"start": start.isoformat(), "end": end.isoformat(), **keep}),
         (start, end) == (data["start"], data["end"]))
        for label, start, end in ReportFilter.presets(today)
    ]  # fmt: skip


def _tables_and_charts(
    report: Report, first: date, last: date, agent: Agent | None, group: AgentGroup | None
) -> dict[str, object]:
    """Every table and chart of a report, each number with the call log link behind it."""
    base: dict[str, str | int] = {"start": first.isoformat(), "end": last.isoformat()}
    if agent:
        base["agent"] = agent.pk
    if group:
        base["group"] = group.pk
    link = _Links(base)
    names = {a.pk: a.name for a in Agent.objects.all()}
    return {
        "total": report.total,
        "total_href": link(),
        "answered_href": link(outcome="answered"),
        "agents": _agents(report, link, names),
        "heatmap": _heatmap(report, link, names, first, last),
        "per_day": _per_day(report, link, first, last),
        "outcomes": (outcomes := _outcomes(report, link)),
        "outcome_chart": _outcome_chart(outcomes),
        "dispositions": _facet_rows(report, Facet.DISPOSITION, link, "disposition", "No disposition"),
        "clids": _clids(report, link),
        "failures": _failures(report, link),
        "hours": _hours(report, link),
        "first_calls": _first_calls(first, last, agent, group, names),
    }


@dataclass
class FirstCallRow:
    label: str
    contacts: int
    median: int  # seconds
    p90: int


def _first_calls(
    first: date, last: date, agent: Agent | None, group: AgentGroup | None, names: dict[int, str]
) -> list[FirstCallRow]:
    return [
        FirstCallRow(
            names.get(row.agent_id, "?") if row.agent_id else "Via groups (nobody answered)",
            row.contacts,
            int(row.median.total_seconds()),
            int(row.p90.total_seconds()),
        )
        for row in time_to_first_call(first=first, last=last, agent=agent, group=group)
    ]


def _agents(report: Report, link: _Links, names: dict[int, str]) -> list[Row]:
    rows: list[Row] = []
    for agent_id, count in report.per_agent.items():
        who = {"agent": agent_id} if agent_id else {"via": "unanswered"}
        label = names.get(agent_id, "?") if agent_id else "Via groups (nobody answered)"
        rows.append(Row(label, count.calls, link(**who), count.answered, link(**who, outcome="answered"), count.talk))
    return sorted(rows, key=lambda r: (-r.calls, r.label))


def _heatmap(report: Report, link: _Links, names: dict[int, str], first: date, last: date) -> dict[str, object] | str:
    if not report.per_agent:
        return ""
    if (last - first).days < DAILY_UP_TO:
        buckets = [(first + timedelta(days=n),) * 2 for n in range((last - first).days + 1)]
        columns = [b[0].strftime("%-d %b") for b in buckets]
        unit = "day"
    elif (last - first).days < WEEKLY_UP_TO:
        buckets = _weeks(first, last)
        columns = [b[0].strftime("%-d %b") for b in buckets]
        unit = "week"
    else:
        buckets = _months(first, last)
        columns = [b[0].strftime("%b %y") for b in buckets]
        unit = "month"
    agents = sorted(report.per_agent, key=lambda a: (-report.per_agent[a].calls, names.get(a, "") if a else ""))
    spans = [
        (start, end, start.strftime("%-d %b") if start == end else f"{start:%-d %b}–{end:%-d %b}")
        for start, end in buckets
    ]
    counts = report.per_agent_day
    rows = []
    for agent_id in agents:
        href = link.for_days(**({"agent": agent_id} if agent_id else {"via": "unanswered"}))
        label = names.get(agent_id, "?") if agent_id else "Via groups, unanswered"
        cells = []
        for start, end, span in spans:
            value = counts.get((agent_id, start), 0)
            day = start
            while day < end:
                day += timedelta(days=1)
                value += counts.get((agent_id, day), 0)
            cells.append(charts.Bar(span, value, href(start, end), f"{label}, {span}: {value} calls"))
        rows.append((label, cells))
    return {"svg": charts.heatmap(rows, columns, label=f"Calls per agent per {unit}"), "unit": unit}


def _per_day(report: Report, link: _Links, first: date, last: date) -> SafeString:
    items = []
    href = link.for_days()
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        count = report.per_day.get(day, Count3())
        items.append(
            charts.Bar(day.strftime("%-d %b"), count.calls, href(day, day),
                       f"{day:%a %-d %b %Y}: {count.calls} calls, {count.answered} answered")
        )  # fmt: skip
    return charts.bars_for_both_widths(items, label="Calls per day", wide=960)


def _outcomes(report: Report, link: _Links) -> list[Row]:
    """One row per outcome, coloured as its badge is (charts.OUTCOME_LOOK), with its share of the calls."""
    from calls.models import Call

    found = report.facets.get(Facet.OUTCOME, {})
    total = report.total.calls
    return [
        Row(
            label,
            found[value].calls,
            link(outcome=value),
            talk=found[value].talk,
            look=charts.OUTCOME_LOOK.get(value, "none"),
            share=found[value].calls / total if total else None,
        )
        for value, label in Call.Outcome.choices
        if value in found
    ]


def _outcome_chart(rows: list[Row]) -> SafeString:
    return charts.shares([charts.Share(r.label, r.calls, r.href, r.look) for r in rows], label="Calls by outcome")


def _facet_rows(report: Report, facet: str, link: _Links, param: str, empty: str) -> list[Row]:
    found = report.facets.get(facet, {})
    rows = [Row(key or empty, c.calls, link(**{param: key or NONE}), c.answered) for key, c in found.items()]
    return sorted(rows, key=lambda r: (-r.calls, r.label))


def _clids(report: Report, link: _Links) -> list[Row]:
    labels = dict(CallbackNumber.objects.values_list("number", "label"))
    rows: list[Row] = []
    for number, c in report.facets.get(Facet.CLID, {}).items():
        label = f"{labels.get(number, 'Unlisted')} {phones.display(number)}" if number else "VCC's default"
        rows.append(
            Row(label, c.calls, link(clid=number or NONE), c.answered, link(clid=number or NONE, outcome="answered"))
        )
    return sorted(rows, key=lambda r: (-r.calls, r.label))


def _failures(report: Report, link: _Links) -> list[Row]:
    rows: list[Row] = []
    for key, c in report.facets.get(Facet.ERROR, {}).items():
        status, _, message = key.partition("|")
        label = message or "(no message)"
        rows.append(
            Row(
                label,
                c.calls,
                link(error=message, error_status=status, outcome="failed"),
                note=f"HTTP {status}" if status else "no reply",
            )
        )
    return sorted(rows, key=lambda r: (-r.calls, r.label))


def _hours(report: Report, link: _Links) -> SafeString:
    found = report.facets.get(Facet.HOUR, {})
    items = [charts.Bar(f"{h:02d}", found[str(h)].calls if str(h) in found else 0, link(hour=h), "") for h in range(24)]
    for item in items:
        item.title = f"{item.label}:00–{item.label}:59: {item.value} calls"
    return charts.bars_for_both_widths(items, label="Calls by hour of the day", wide=400, tick_every=3)
