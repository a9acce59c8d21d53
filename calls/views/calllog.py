"""The call log (filters, keyset pages, htmx), one call's page, and the log's CSV export."""

from __future__ import annotations

import csv
import inspect
from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url

from calls import calllog
from calls import permissions as perms
from calls.audit.exports import audited_export
from calls.forms import NONE, CallLogFilter
from calls.models import ERASED_CONTACT, MIN_CLOSE_REASON, Agent, AgentGroup, Call, CallQueue, Contact, QueueAttempt
from calls.queues import working
from calls.spreadsheet import Line, csv_download, inert
from calls.views.calling import panel_context
from calls.views.http import AuthedRequest, HtmxRequest

if TYPE_CHECKING:
    from psycopg.abc import Buffer

WRAP_UP_SHOWN = 10
EXPORT_BATCH = 5000


def _wants_fragment(request: HtmxRequest) -> bool:
    # htmx asks for a page when it restores history it no longer holds: that gets the whole page.
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def _link(form: CallLogFilter, **extra: object) -> str:
    """A link to the log with form's filters and extra (sort, cursor): only the values that are set."""
    query = form.query(**extra)
    return "?" + urlencode(query) if query else ""


def _has_empty_values(request: AuthedRequest) -> bool:
    return any(value == "" for _name, values in request.GET.lists() for value in values)


def _queue_effect(data: dict[str, Any]) -> str:
    """The queue report's row the log shows, in words: "back after the wait, Line busy"."""
    effect = dict(QueueAttempt.Effect.choices).get(data.get("queue_effect") or "", "").lower()
    outcome = data.get("queue_outcome") or ""
    return ", ".join(words for words in (effect, "—" if outcome == NONE else outcome) if words)


@require_GET
@login_required
@permission_required(perms.VIEW_CALL, raise_exception=True)
@vary_on_headers("HX-Request")
def call_log(request: AuthedRequest) -> HttpResponse:
    """Everyone's calls for supervisors and admins, one's own for agents; filtered, sorted, a page at a time."""
    form = CallLogFilter(request.GET, show_agents=request.user.has_perm(perms.VIEW_ALL_CALLS))
    fragment = _wants_fragment(request)
    # A call's page is the log's address and its id: spares a reverse() per row (see calls/urls.py).
    log_url = reverse("call_log")
    context: dict[str, object] = {"form": form, "log_url": log_url}
    status, address = 200, ""
    if form.is_valid():
        data = form.cleaned_data
        # The address carries only the filters that are set: a form sends its empty fields too, so a plain
        # submit is sent on to the same filters without them, and an htmx one is told which address to show.
        address = log_url + _link(form, sort=data["sort"], after=request.GET.get("after"),
                                             before=request.GET.get("before"))  # fmt: skip
        if not fragment and _has_empty_values(request):
            return redirect(address)
        context |= _log_page(request.user, form)
    else:
        # A full page answers 400 with the errors; an htmx swap shows them in place (htmx swaps only 2xx).
        status = 200 if fragment else 400
    if fragment:
        response = render(request, "calls/call_log.html#results", context, status=status)
        return push_url(response, address) if address else response
    context["to_wrap_up"] = list(
        Call.objects.changeable_by(request.user).to_wrap_up().select_related("contact", "to_agent")[:WRAP_UP_SHOWN]
    )
    return render(request, "calls/call_log.html", context, status=status)


def _log_page(user: User, form: CallLogFilter) -> dict[str, object]:
    """The page of the calls the filters pick out (of those user may see), and the links from it."""
    data = form.cleaned_data
    calls = calllog.calls_for(user, data)
    calls = calls.select_related("contact", "from_agent", "to_agent", "answered_by").prefetch_related("from_groups")
    page = calllog.page_of(calls, sort=data["sort"], after=data["after"], before=data["before"])
    filters = form.filters()
    sort = data["sort"]
    return {
        "page": page,
        "filters": filters,
        "older_link": _link(form, sort=sort, after=page.older) if page.older else "",
        "newer_link": _link(form, sort=sort, before=page.newer) if page.newer else "",
        "first_link": _link(form, sort=sort),
        "export_link": _link(form, sort=sort),
        "contact": Contact.objects.filter(pk=data["contact"]).first() if data.get("contact") else None,
        "any_contact_link": _link(form, sort=sort, contact=None),
        "queue": _shown_queue(user, data["queue"]) if data.get("queue") else None,
        "queue_effect": _queue_effect(data),
        "anyones_link": _link(form, sort=sort, mine=None),
        "any_queue_link": _link(form, sort=sort, queue=None, queue_effect=None, queue_outcome=None, queue_user=None),
    }


def _shown_queue(user: User, pk: int) -> CallQueue | None:
    """The queue the log is filtered by, named only to those who may see it, as its own page says who may
    (calls/views/queues.py): an agent is not told the names of queues not given to them by trying ids."""
    queue = CallQueue.objects.filter(pk=pk).first()
    if queue is None or user.has_perm(perms.CHANGE_QUEUE) or working.may_work(user, queue):
        return queue
    return None


@require_GET
@login_required
@permission_required(perms.VIEW_CALL, raise_exception=True)
def call_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    """Everything stored about one call, its history, and the call panel (to wrap it up or edit the wrap-up)."""
    call = get_object_or_404(
        Call.objects.visible_to(request.user)
        .select_related("contact", "phone", "from_agent", "to_agent", "created_by", "callback_number", "answered_by")
        .prefetch_related("from_groups"),
        pk=pk,
    )
    context = panel_context(call, user=request.user)
    context["history"] = call.history()
    context["min_close_reason"] = MIN_CLOSE_REASON
    return render(request, "calls/call_detail.html", context)


# --- CSV export -------------------------------------------------------------------------------------------

# The columns as a spreadsheet user reads them, in the page's words where it has them ("Caller ID", "Talk").
HEADER = [
    "Call ID",
    "When",  # ISO 8601 with its offset, in the local time zone
    "Agent",
    "Via groups",
    "Placed by",
    "Contact",
    "Number called",
    "Colleague called",
    "Caller ID",
    "Outcome",
    "Talk time (seconds)",  # empty for a call that never connected (Call.talk_seconds)
    "Disposition",
    "Notes",
    "VCC call ID",
    "Error",
    "Origin",  # placed from vccweb, dialled from the agent's phone, or inbound (the log's badge, Call.origin)
]
# The export's columns, read as tuples; batches() expects the id, the time and the talk time first.
COLUMNS = [
    "pk",
    "requested_at",
    "duration_seconds",
    "from_agent_id",
    "to_agent_id",
    "created_by__username",
    "contact__name",
    "to_number",
    "presented_clid",
    "outcome",
    "disposition_code",
    "notes",
    "vcc_call_id",
    "error_message",
    "error_status",
    "error_display",
    "answered_by_id",  # a group call's agent: the one who answered it
    "connected_at",  # none: the call never connected, and has no talk time (Call.talk_seconds)
    "contact_erased",  # the contact was erased: named ERASED_CONTACT, as on the log's pages
    "origin",
]


class _CopyExport:
    """On PostgreSQL the database writes the CSV (COPY ... TO STDOUT), streamed in chunks: several times faster
    than building each row in Python, and memory stays flat. Same rows, columns and formula guard as _Export.

    An iterator of the header and then the chunks, for calls.spreadsheet.csv_download: the COPY holds the connection
    from the first chunk to the last, each read in the request's sync thread; close() drops the connection if the
    download is cut short (a COPY cut short leaves it mid-protocol)."""

    CHUNK = 256 * 1024

    def __init__(self, calls: QuerySet[Call], sort: str) -> None:
        self.sql, self.params = calllog.export_copy_sql(calls, sort=sort)
        self.time_zone = timezone.get_current_timezone_name()
        self.rows = self._rows()

    def _rows(self) -> Generator[bytes]:
        yield _Export.header_line().encode()
        with connection.cursor() as cursor:
            # Times in the local zone (PostgreSQL formats them); JIT compiling this one statement costs seconds
            # and saves nothing on a plain scan.
            cursor.execute(
                "SELECT set_config('TimeZone', %s, false), set_config('jit', 'off', false)", [self.time_zone]
            )
            with cursor.cursor.copy(self.sql, self.params) as copy:
                yield from self._chunks(copy)
            # Back to what Django expects of its connections (a COPY cut short closes the connection instead).
            cursor.execute("SELECT set_config('TimeZone', 'UTC', false)")
            cursor.execute("RESET jit")

    def _chunks(self, copy: Iterable[Buffer]) -> Iterator[bytes]:
        buffer: list[bytes] = []
        size = 0
        for data in copy:
            buffer.append(bytes(data))
            size += len(data)
            if size >= self.CHUNK:
                yield b"".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield b"".join(buffer)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self.rows)
        except (StopIteration, GeneratorExit):
            raise
        except BaseException:
            connection.close()  # a COPY cut short leaves the connection mid-protocol: never reuse it
            raise

    def close(self) -> None:
        """The download ended, or the client went away: stop an unfinished COPY by dropping its connection."""
        if inspect.getgeneratorstate(self.rows) != inspect.GEN_CLOSED:
            connection.close()


class _Export:
    """The rows of an export, a batch at a time; a batch is one indexed query, so memory stays flat."""

    @staticmethod
    def header_line() -> str:
        return csv.writer(Line()).writerow(HEADER)

    def __init__(self, calls: QuerySet[Call], sort: str) -> None:
        self.writer = csv.writer(Line())
        self.agents = {
            pk: f"{name} ({display_id})"
            for pk, display_id, name in Agent.objects.values_list("pk", "display_id", "name")
        }
        self.groups = dict(AgentGroup.objects.values_list("pk", "name"))
        self.outcomes = dict(Call.Outcome.choices)
        self.origins = dict(Call.Origin.choices)
        self.tz = timezone.get_current_timezone()
        self.through = Call.from_groups.through.objects
        self.batches = calllog.batches(calls.values_list(*COLUMNS), sort=sort, size=EXPORT_BATCH)

    def header(self) -> str:
        return self.writer.writerow(HEADER)

    def next_chunk(self) -> str | None:
        """The CSV text of the next batch of rows, or None at the end."""
        rows = next(self.batches, None)
        if rows is None:
            return None
        # Only calls via groups have groups: ask for theirs alone.
        via_groups = [r[0] for r in rows if r[3] is None and r[4] is None]
        via: dict[int, list[str]] = {}
        if via_groups:
            for call_id, group_id in self.through.filter(call_id__in=via_groups).values_list(
                "call_id", "agentgroup_id"
            ):
                via.setdefault(call_id, []).append(self.groups.get(group_id, ""))
        write, agents, outcomes, origins, tz = self.writer.writerow, self.agents, self.outcomes, self.origins, self.tz
        out = []
        for (
            pk, requested_at, duration, from_agent, to_agent, username, contact, to_number, clid, outcome,
            disposition, notes, vcc_call_id, error_message, error_status, error_display, answered_by, connected_at,
            contact_erased, origin,
        ) in rows:  # fmt: skip
            error = error_message or error_display
            if error_status:
                error = f"HTTP {error_status}: {error}"
            out.append(
                write(
                    [
                        pk,
                        requested_at.astimezone(tz).isoformat(timespec="seconds"),
                        inert(agents.get(from_agent or answered_by, "")),
                        inert(", ".join(via[pk])) if pk in via else "",
                        inert(username or ""),
                        inert(contact or (ERASED_CONTACT if contact_erased else "")),
                        inert(to_number),
                        inert(agents.get(to_agent, "")),
                        inert(clid),
                        outcomes.get(outcome, outcome),
                        "" if duration is None or (connected_at is None and not duration) else duration,
                        inert(disposition),
                        inert(notes),
                        inert(vcc_call_id),
                        inert(error),
                        origins.get(origin, origin),
                    ]
                )
            )
        return "".join(out)

    def __iter__(self) -> Iterator[str]:
        yield self.header()
        while (chunk := self.next_chunk()) is not None:
            yield chunk


@require_GET
@login_required
@permission_required(perms.VIEW_CALL, raise_exception=True)
def call_export(request: AuthedRequest) -> HttpResponse | StreamingHttpResponse:
    """The calls the log shows this person for the same filters, as CSV, streamed."""
    form = CallLogFilter(request.GET)
    if not form.is_valid():
        problems = " ".join(form.problems())
        return HttpResponse(f"Bad filter: {problems}", status=400, content_type="text/plain; charset=utf-8")
    data = form.cleaned_data
    calls = calllog.calls_for(request.user, data)
    export = (
        _CopyExport(calls, data["sort"]) if connection.vendor == "postgresql" else iter(_Export(calls, data["sort"]))
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filters = {name: value for name, value in request.GET.items() if value}
    return csv_download(
        request, audited_export(export, kind="export.calls", filters=filters), filename=f"calls-{stamp}.csv"
    )
