"""The call log's query: filters, sort and keyset pages, shared by the log page and its CSV export.

Pages never count or skip rows: each page starts after the last row of the one before (its sort value and id),
so the thousandth page costs what the first does, as long as an index ends in the sort order (see Call.Meta).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import F, IntegerField, Q, QuerySet
from django.db.models.functions import Coalesce

from calls.forms import NONE
from calls.models import ERASED_CONTACT, Agent, AgentGroup, Call, CallQuerySet, Contact
from calls.models.calls import TALK_SECONDS_SQL
from calls.reports import HAS_ERROR, day_bounds
from calls.spreadsheet import PHONE_NUMBER_SQL

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
NO_DURATION = -1  # the talk time a call without one sorts as: after every call that has one


def calls_for(user: User, data: Mapping[str, Any]) -> CallQuerySet:
    """The calls user may see that a valid CallLogFilter's cleaned data picks out; with `mine`, only those user may
    act on (their own: the call bar's), even for those who see everyone's."""
    calls = Call.objects.changeable_by(user) if data.get("mine") else Call.objects.visible_to(user)
    return filtered_calls(calls, data)


def filtered_calls(calls: CallQuerySet, data: Mapping[str, Any]) -> CallQuerySet:
    """calls narrowed by a valid CallLogFilter's cleaned data (sort and page position aside)."""
    if data.get("start"):
        calls = calls.filter(requested_at__gte=day_bounds(data["start"], data["start"])[0])
    if data.get("end"):
        calls = calls.filter(requested_at__lt=day_bounds(data["end"], data["end"])[1])
    if data.get("agent"):
        calls = calls.filter(Q(from_agent=data["agent"]) | Q(answered_by=data["agent"]))
    if data.get("group"):
        calls = calls.filter(from_groups=data["group"])
    if data.get("via") == "agent":
        calls = calls.filter(from_agent__isnull=False)
    elif data.get("via") == "group":
        calls = calls.filter(from_agent__isnull=True, to_agent__isnull=True)
    elif data.get("via") == "unanswered":
        calls = calls.filter(from_agent__isnull=True, answered_by__isnull=True)  # as reports count them
    if data.get("outcome"):
        calls = calls.filter(outcome=data["outcome"])
    if data.get("disposition"):
        calls = calls.filter(disposition_code="" if data["disposition"] == NONE else data["disposition"])
    if data.get("clid"):
        calls = calls.filter(presented_clid="" if data["clid"] == NONE else data["clid"])
    if data.get("has_error") == "yes":
        calls = calls.filter(HAS_ERROR)
    elif data.get("has_error") == "no":
        calls = calls.exclude(HAS_ERROR)
    if data.get("error") or data.get("error_status") is not None:
        # From the report's failures table: VCC's message (its first 280 characters, as the report keys it).
        calls = calls.filter(error_message__startswith=data.get("error", "")).filter(HAS_ERROR)
        if data.get("error_status") is not None:
            calls = calls.filter(error_status=data["error_status"])
        elif "error" in data:
            calls = calls.filter(error_status__isnull=True)
    if data.get("wrap_up"):
        calls = calls.to_wrap_up()
    if data.get("contact"):
        calls = calls.filter(contact_id=data["contact"])
    if data.get("hour") is not None:
        calls = calls.filter(requested_at__hour=data["hour"])
    if data.get("queue"):
        calls = calls.filter(queue_attempt__queue_id=data["queue"])
        if data.get("queue_effect"):
            calls = calls.filter(queue_attempt__effect=data["queue_effect"])
        if data.get("queue_outcome"):
            outcome = data["queue_outcome"]
            calls = calls.filter(queue_attempt__outcome="" if outcome == NONE else outcome)
        if data.get("queue_user"):
            calls = calls.filter(queue_attempt__user_id=data["queue_user"])
    return calls


# --- Sorting and keyset pages ---------------------------------------------------------------------------


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_MICROSECOND


def cursor_of(call: Call, sort: str) -> str:
    """Where a page that ends (or starts) with call stands, as the `after`/`before` value of a link."""
    if sort.endswith("duration"):
        value = NO_DURATION if call.duration_seconds is None else call.duration_seconds
    else:
        value = _micros(call.requested_at)
    return f"{value}_{call.pk}"


def _ordered[Row](calls: QuerySet[Call, Row], sort: str, *, reverse: bool = False) -> QuerySet[Call, Row]:
    descending = sort.startswith("-") != reverse
    if sort.endswith("duration"):
        # The same expression as the call_duration_idx index, so that PostgreSQL pages through it. Signed: as a
        # PositiveIntegerField (duration_seconds's own), Django answers "nothing" for any lookup of -1 without asking,
        # and every call without a talk time after the first of them was lost from the pages.
        calls = calls.alias(talk=Coalesce("duration_seconds", NO_DURATION, output_field=IntegerField()))
        column = "talk"
    else:
        column = "requested_at"
    if descending:
        return calls.order_by(F(column).desc(), F("pk").desc())
    return calls.order_by(F(column).asc(), F("pk").asc())


def _beyond[Row](
    calls: QuerySet[Call, Row], sort: str, position: tuple[int, int], *, reverse: bool = False
) -> QuerySet[Call, Row]:
    """The calls that come after position in the sort's order (before it, with reverse)."""
    value, pk = position
    bound: int | datetime
    descending = sort.startswith("-") != reverse
    if sort.endswith("duration"):
        column, bound = "talk", value
    else:
        column, bound = "requested_at", EPOCH + value * ONE_MICROSECOND
    op = "lt" if descending else "gt"
    # The first condition alone is a range an index can start from; the second breaks ties by id.
    edge = "lte" if descending else "gte"
    return calls.filter(**{f"{column}__{edge}": bound}).filter(
        Q(**{f"{column}__{op}": bound}) | Q(**{column: bound, f"pk__{op}": pk})
    )


@dataclass
class Page:
    calls: list[Call]
    sort: str
    newer: str = ""  # the `before` cursor of the previous page, if any
    older: str = ""  # the `after` cursor of the next page, if any


def page_of(
    calls: QuerySet[Call],
    *,
    sort: str,
    after: tuple[int, int] | None = None,
    before: tuple[int, int] | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of calls in sort order: the first, the one after `after`, or the one before `before`."""
    if before is not None:
        rows = list(_beyond(_ordered(calls, sort, reverse=True), sort, before, reverse=True)[: size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        page = Page(rows, sort)
        if rows:
            page.older = cursor_of(rows[-1], sort)
            page.newer = cursor_of(rows[0], sort) if more_before else ""
        return page
    query = _ordered(calls, sort)
    if after is not None:
        query = _beyond(query, sort, after)
    rows = list(query[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    page = Page(rows, sort)
    if rows:
        page.older = cursor_of(rows[-1], sort) if more else ""
        page.newer = cursor_of(rows[0], sort) if after is not None else ""
    return page


def rows_page(
    calls: QuerySet[Call, tuple[Any, ...]],
    *,
    sort: str,
    after: tuple[int, int] | None,
    size: int,
    fetch: Callable[[QuerySet[Call, tuple[Any, ...]], str], list[tuple[Any, ...]]] | None = None,
) -> tuple[list[tuple[Any, ...]], str]:
    """One page of a values_list() of calls (its first columns the id, the time and the talk time) after `after`,
    and the cursor of the page after it ('' on the last): page_of for the API, without a model per row. `fetch`
    reads the page's query (ordered, sliced) in its own way, given the sort; by default, as it is."""
    query = _ordered(calls, sort)
    if after is not None:
        query = _beyond(query, sort, after)
    rows = fetch(query[: size + 1], sort) if fetch else list(query[: size + 1])
    if len(rows) <= size:
        return rows, ""
    rows = rows[:size]
    pk, requested_at, duration = rows[-1][:3]
    value = (NO_DURATION if duration is None else duration) if sort.endswith("duration") else _micros(requested_at)
    return rows, f"{value}_{pk}"


def batches(calls: QuerySet[Call, tuple[Any, ...]], *, sort: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Every row of a values_list() of calls (its first columns the id, the time and the talk time) in sort order,
    size rows at a time, each batch one indexed query: memory stays flat however many rows (for exports)."""
    after: tuple[int, int] | None = None
    while True:
        query = _ordered(calls, sort)
        if after is not None:
            query = _beyond(query, sort, after)
        rows = list(query[:size])
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        pk, requested_at, duration = rows[-1][:3]
        if sort.endswith("duration"):
            after = (NO_DURATION if duration is None else duration, pk)
        else:
            after = (_micros(requested_at), pk)


# --- The CSV export on PostgreSQL: PostgreSQL writes the CSV itself ------------------------------------------


def _inert_sql(column: str, *, costly: bool = False) -> str:
    """A text column made inert for spreadsheets in SQL, as calls.spreadsheet.inert does in Python.

    The CASE names the column twice, which is cheapest for a column or a little arithmetic on one; a costly
    expression (a subquery) is computed once by regexp_replace instead, which is slower per row than the CASE.
    A phone number (+447400123456) is left as it is, as inert() leaves it. In the CASE its test is a plus and
    digits and a length check: the bounded count of PHONE_NUMBER_SQL (`{6,14}`) cost PostgreSQL's regex engine
    some 1.3 s per million cells, this 0.4 s (and every cell of the two number columns starts with a plus)."""
    if costly:
        return f"regexp_replace({column}, '^(?!{PHONE_NUMBER_SQL[1:]})([-=+@\\t\\r])', '''\\1')"
    not_a_number = f"({column} !~ '^\\+[1-9][0-9]*$' OR length({column}) NOT BETWEEN 8 AND 16)"
    return f"CASE WHEN {column} ~ '^[-=+@\\t\\r]' AND {not_a_number} THEN '''' || {column} ELSE {column} END"


def export_copy_sql(calls: QuerySet[Call], *, sort: str) -> tuple[str, tuple[Any, ...]]:
    """One `COPY (...) TO STDOUT` statement giving exactly the export's rows (the calls of `calls`, in the log's
    order) as CSV, with the same columns, words and formula guard as the Python export. PostgreSQL only."""
    ordered = _ordered(calls, sort)
    call_table, agent_table, contact_table = Call._meta.db_table, Agent._meta.db_table, Contact._meta.db_table
    group_table, call_groups_table = AgentGroup._meta.db_table, Call.from_groups.through._meta.db_table
    user_table = Call._meta.get_field("created_by").related_model._meta.db_table
    ids_sql, params = ordered.values("pk").query.sql_with_params()
    outcomes = " ".join(f"WHEN {_quote(value)} THEN {_quote(label)}" for value, label in Call.Outcome.choices)
    origins = " ".join(f"WHEN {_quote(value)} THEN {_quote(label)}" for value, label in Call.Origin.choices)
    direction = "DESC" if sort.startswith("-") or not sort else "ASC"
    order = (
        f"COALESCE(c.duration_seconds, {NO_DURATION}) {direction}, c.id {direction}"
        if sort.endswith("duration")
        else f"c.requested_at {direction}, c.id {direction}"
    )
    error = (
        "CASE WHEN c.error_status IS NOT NULL THEN 'HTTP ' || c.error_status || ': ' "
        "|| COALESCE(NULLIF(c.error_message, ''), c.error_display) "
        "ELSE COALESCE(NULLIF(c.error_message, ''), c.error_display) END"
    )
    agent = "COALESCE(fa.name || ' (' || fa.display_id || ')', aa.name || ' (' || aa.display_id || ')')"
    colleague = "ta.name || ' (' || ta.display_id || ')'"
    groups = (
        "CASE WHEN c.from_agent_id IS NULL AND c.to_agent_id IS NULL THEN"
        f" (SELECT string_agg(g.name, ', ' ORDER BY cg.id) FROM {call_groups_table} cg"
        f" JOIN {group_table} g ON g.id = cg.agentgroup_id WHERE cg.call_id = c.id) END"
    )
    # The time as ISO 8601 with its offset (2026-03-02T10:00:00+00:00), in the session's time zone, which
    # the export sets to the local one for this statement (calls.views.calllog._CopyExport).
    when = "to_char(c.requested_at, 'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM')"
    select = f"""
        SELECT c.id,
               {when},
               {_inert_sql(agent)},
               {_inert_sql(groups, costly=True)},
               {_inert_sql("u.username")},
               {_inert_sql(f"COALESCE(ct.name, CASE WHEN c.contact_erased THEN {_quote(ERASED_CONTACT)} END)")},
               {_inert_sql("c.to_number")},
               {_inert_sql(colleague)},
               {_inert_sql("c.presented_clid")},
               CASE c.outcome {outcomes} ELSE c.outcome END,
               {TALK_SECONDS_SQL},
               {_inert_sql("c.disposition_code")},
               {_inert_sql("c.notes")},
               {_inert_sql("c.vcc_call_id")},
               {_inert_sql(error)},
               CASE c.origin {origins} ELSE c.origin END
        FROM {call_table} c
        LEFT JOIN {agent_table} fa ON fa.id = c.from_agent_id
        LEFT JOIN {agent_table} ta ON ta.id = c.to_agent_id
        LEFT JOIN {agent_table} aa ON aa.id = c.answered_by_id
        LEFT JOIN {user_table} u ON u.id = c.created_by_id
        LEFT JOIN {contact_table} ct ON ct.id = c.contact_id
        WHERE c.id IN ({ids_sql})
        ORDER BY {order}
    """
    return f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", tuple(params)


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"
