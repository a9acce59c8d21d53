"""Call queues: the list, making and running one (supervisors), its report, contacts and CSV, and working it
(agents): Start, the queue bar beside the call bar, Skip, Next and Stop.

The use cases are in calls/queues/; these views glue them to HTTP. Working a queue happens on the contact's own
page (`?queue=<id>`), so everything a contact page offers (its numbers, the Call key, the wrap-up) is there."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from calls import permissions as perms
from calls import tasks
from calls.audit.exports import audited_export
from calls.calling.common import _now
from calls.forms import first_error
from calls.forms.queues import EntryFilter, NewQueueForm, QueueForm, QueueStateForm, SkipForm
from calls.models import CallQueue, ContactImport, QueueAttempt, QueueEntry
from calls.queues import building, reports, working
from calls.spreadsheet import csv_download
from calls.views.http import AuthedRequest, is_id

ENTRIES_PER_PAGE = 50


def _visible_queue(request: AuthedRequest, pk: int) -> CallQueue:
    """A queue its viewer may see: every one for those who run queues, the ones given to them for agents."""
    queue = get_object_or_404(CallQueue, pk=pk)
    if not request.user.has_perm(perms.CHANGE_QUEUE) and not working.may_work(request.user, queue):
        raise Http404("No such queue.")
    return queue


def _workable_queue(request: AuthedRequest, pk: int) -> CallQueue:
    queue = _visible_queue(request, pk)
    if not working.may_work(request.user, queue):
        raise PermissionDenied("This queue is not given to you.")
    return queue


@require_GET
@login_required
@permission_required(perms.VIEW_QUEUE, raise_exception=True)
def queue_list(request: AuthedRequest) -> HttpResponse:
    """Supervisors: every queue with its progress. Agents: the queues given to them, with Start."""
    runs = request.user.has_perm(perms.CHANGE_QUEUE)
    mine = working.queues_for(request.user)
    queues = list(CallQueue.objects.select_related("created_by")[:200]) if runs else mine
    counts = reports.list_counts([q.pk for q in queues])
    rows = []
    for queue in queues:
        row = counts.get(queue.pk, {})
        total, waiting = row.get("total", 0), row.get("waiting", 0)
        done = round(100 * (total - waiting) / total) if total else 0
        rows.append({"queue": queue, "waiting": waiting, "reached": row.get("reached", 0), "done_percent": done})
    workable = {q.pk for q in mine}
    return render(
        request,
        "calls/queues.html",
        {"rows": rows, "runs": runs, "workable": workable, "imports_exist": _imports_exist()},
    )


def _imports_exist() -> bool:
    return ContactImport.objects.filter(status=ContactImport.Status.DONE).exists()


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.ADD_QUEUE, raise_exception=True)
def queue_new(request: AuthedRequest) -> HttpResponse:
    """Make a queue from the contact list's filter (carried in the query string) or from an import."""
    form = NewQueueForm(request.POST or None, initial=_initial(request))
    if request.method == "POST" and form.is_valid():
        made = _make(request, form)
        tasks.enqueue_tend()  # its contacts' time zones, looked up in the background at once
        words = f"Made {made.queue.name} with {made.added:,} contacts."
        if made.left_out:
            words += f" {made.left_out:,} matching contacts were left out: do-not-call, or no number to call."
        messages.success(request, words)
        return redirect("queue_detail", made.queue.pk)
    return render(request, "calls/queue_form.html", {"form": form, "new": True, "filter_words": _filter_words(form)})


def _initial(request: AuthedRequest) -> dict[str, object]:
    """The new queue form's start: the contact list's filter (or the import) it was opened from."""
    initial: dict[str, object] = {k: request.GET.get(k, "") for k in ("q", "company", "dnc")}
    initial["mine"] = bool(request.GET.get("mine"))
    initial["name"] = _suggested_name(initial)
    if "import" in request.GET:
        initial["source"], initial["source_import"] = "import", request.GET.get("import", "")
    return initial


def _make(request: AuthedRequest, form: NewQueueForm) -> building.Made:
    data = form.cleaned_data
    return building.make_queue(
        user=request.user,
        name=data["name"],
        description=data["description"],
        now=_now(),
        source_filter=form.source_filter() if data["source"] == "filter" else None,
        source_import=data["source_import"] if data["source"] == "import" else None,
        live=data["live"],
        sort=data["sort"],
        max_attempts=data["max_attempts"],
        retry_minutes=data["retry_minutes"],
        agents=data["agents"],
        groups=data["groups"],
    )


def _suggested_name(filters: dict[str, object]) -> str:
    parts = [f"“{filters['q']}”" if filters.get("q") else "", str(filters.get("company") or "")]
    named = " ".join(p for p in parts if p)
    return f"Contacts {named}".strip() if named else f"Queue of {timezone.localdate():%-d %b}"


def _filter_words(form: NewQueueForm) -> str:
    values = {k: (form[k].value() or "") for k in ("q", "company", "dnc", "mine")}
    mine = values["mine"] in (True, "True", "on", "1")
    words = _filter_parts(values, mine=mine, owner="you")
    if values["dnc"] == "only":
        words.insert(bool(values["q"]) + bool(values["company"]), "marked do not call (they will be left out)")
    return "Every contact " + (", ".join(words) if words else "in vccweb")


def _filter_parts(filters: dict[str, Any], *, mine: bool, owner: str) -> list[str]:
    """A contact-list filter in words: the new queue's form and a queue's page say it alike."""
    parts = []
    if filters.get("q"):
        parts.append(f"matching “{filters['q']}”")
    if filters.get("company"):
        parts.append(f"at {filters['company']}")
    if mine:
        parts.append(f"owned by {owner}")
    return parts


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.CHANGE_QUEUE, raise_exception=True)
def queue_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    queue = get_object_or_404(CallQueue, pk=pk)
    form = QueueForm(request.POST or None, instance=queue)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Saved {queue.name}.")
        return redirect("queue_detail", queue.pk)
    return render(request, "calls/queue_form.html", {"form": form, "queue": queue, "new": False})


@require_POST
@login_required
@permission_required(perms.CHANGE_QUEUE, raise_exception=True)
def queue_state(request: AuthedRequest, pk: int) -> HttpResponse:
    """Pause, resume or close a queue. A closed queue stays for its report; nobody works it any more."""
    queue = get_object_or_404(CallQueue, pk=pk)
    form = QueueStateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose pause, resume or close.")
        return redirect("queue_detail", queue.pk)
    action = form.cleaned_data["action"]
    if queue.state == CallQueue.State.CLOSED:
        messages.error(request, "This queue is closed: make a new one to call its contacts again.")
        return redirect("queue_detail", queue.pk)
    queue.state = {
        "pause": CallQueue.State.PAUSED,
        "resume": CallQueue.State.ACTIVE,
        "close": CallQueue.State.CLOSED,
    }[action]
    queue.closed_at = _now() if action == "close" else None
    queue.save(update_fields=["state", "closed_at"])
    if action == "close":
        QueueEntry.objects.filter(queue=queue, claimed_by__isnull=False).update(claimed_by=None, claimed_at=None)
    messages.success(request, f"{queue.name} is {queue.get_state_display().lower()}.")
    return redirect("queue_detail", queue.pk)


@require_GET
@login_required
@permission_required(perms.VIEW_QUEUE, raise_exception=True)
def queue_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    """A queue's report: progress, attempts per contact, outcomes and agents; its rules and controls."""
    queue = _visible_queue(request, pk)
    now = _now()
    if queue.live:
        building.add_new_matches(queue, now=now)
    context = {
        "queue": queue,
        "report": reports.report(queue, now=now, claim_idle=working.CLAIM_IDLE),
        "links": _report_links(queue),
        "runs": request.user.has_perm(perms.CHANGE_QUEUE),
        "may_work": working.may_work(request.user, queue),
        "source": _source_words(queue),
    }
    return render(request, "calls/queue_detail.html", context)


def _report_links(queue: CallQueue) -> dict[str, str]:
    """Where each figure of the report opens: the queue's contacts in a state, or the calls behind it."""
    links = {state: reports.entries_link(queue, state=state) for state in ("waiting", "reached", "unreached", "dnc")}
    links["all"] = reports.entries_link(queue)
    links["calls"] = reports.calls_link(queue)
    links["reached_calls"] = reports.calls_link(queue, queue_effect="reached")
    return links


def _source_words(queue: CallQueue) -> str:
    if queue.source_import_id:
        return f"Made from an import ({queue.source_import})" if queue.source_import else "Made from an import"
    filters = queue.source_filter or {}
    parts = _filter_parts(filters, mine=bool(filters.get("mine")), owner=str(queue.created_by or "its maker"))
    what = "contacts " + (", ".join(parts) if parts else "in vccweb")
    return f"{'Live: new ' if queue.live else 'A snapshot of '}{what}{' join it' if queue.live else ''}"


@require_GET
@login_required
@permission_required(perms.VIEW_QUEUE, raise_exception=True)
def queue_entries(request: AuthedRequest, pk: int) -> HttpResponse:
    """The queue's contacts in its order, by state and attempts, a page at a time (keyset on position): how long
    since each was added and last tried (speed to lead)."""
    queue = _visible_queue(request, pk)
    form = EntryFilter(request.GET)
    if not form.is_valid():
        return render(request, "calls/queue_entries.html", {"queue": queue, "form": form}, status=400)
    data = form.cleaned_data
    entries = QueueEntry.objects.filter(queue=queue).select_related("contact", "claimed_by", "last_call")
    if data.get("state"):
        entries = entries.filter(state=data["state"])
    if data.get("attempts") is not None:
        entries = entries.filter(attempts=data["attempts"])
    after = data.get("after")
    if after is not None:
        entries = entries.filter(position__gt=after)
    page = list(entries.order_by("position")[: ENTRIES_PER_PAGE + 1])
    more = len(page) > ENTRIES_PER_PAGE
    page = page[:ENTRIES_PER_PAGE]
    shown = {"state": data.get("state"), "attempts": data.get("attempts")}
    query = {k: v for k, v in shown.items() if v not in (None, "")}
    next_url = f"?{urlencode({**query, 'after': page[-1].position})}" if more else ""
    context = {"queue": queue, "form": form, "entries": page, "next_url": next_url, "now": _now()}
    return render(request, "calls/queue_entries.html", context | {"first_url": f"?{urlencode(query)}"})


@require_GET
@login_required
@permission_required(perms.CHANGE_QUEUE, raise_exception=True)
def queue_export(request: AuthedRequest, pk: int) -> StreamingHttpResponse:
    queue = get_object_or_404(CallQueue, pk=pk)
    chunks = audited_export(reports.export_rows(queue), kind="export.queue", filters={"queue": queue.pk})
    return csv_download(request, chunks, filename=f"queue-{queue.pk}-{timezone.localdate():%Y-%m-%d}.csv")


# --- Working a queue ---------------------------------------------------------------------------------------


def _open_next(request: AuthedRequest, queue: CallQueue) -> HttpResponse:
    """Take the next contact and open their page with the queue bar; or say why there is nobody."""
    got = working.take_next(user=request.user, queue=queue, now=_now())
    if got.held is None:
        messages.info(request, got.why_none)
        return (
            redirect("queue_list")
            if not request.user.has_perm(perms.CHANGE_QUEUE)
            else redirect("queue_detail", queue.pk)
        )
    return redirect(working_url(queue, got.held.contact.pk))


def working_url(queue: CallQueue, contact_pk: int) -> str:
    return f"{reverse('contact_detail', args=[contact_pk])}?{urlencode({'queue': queue.pk})}"


@require_POST
@login_required
@permission_required(perms.VIEW_QUEUE, raise_exception=True)
def queue_next(request: AuthedRequest, pk: int) -> HttpResponse:
    """Start, or go on to the next contact (what the agent holds comes back while its call is not settled)."""
    return _open_next(request, _workable_queue(request, pk))


@require_POST
@login_required
@permission_required(perms.VIEW_QUEUE, raise_exception=True)
def queue_skip(request: AuthedRequest, pk: int) -> HttpResponse:
    """Skip the contact held (back after the queue's wait, with the reason), then the next one."""
    queue = _workable_queue(request, pk)
    form = SkipForm(request.POST)
    if not form.is_valid():
        messages.error(request, str(first_error(form)))
        current = working.held(request.user, queue, now=_now())
        return redirect(working_url(queue, current.contact.pk) if current else reverse("queue_list"))
    data = form.cleaned_data
    if not working.skip(user=request.user, queue=queue, reason=data["reason"], now=_now(), contact_id=data["contact"]):
        messages.warning(request, "That contact was not skipped: you no longer hold them (skipped already?).")
    return _open_next(request, queue)


@require_POST
@login_required
@permission_required(perms.VIEW_QUEUE, raise_exception=True)
def queue_stop(request: AuthedRequest, pk: int) -> HttpResponse:
    """Stop working: what the agent held goes back in its place, for a colleague."""
    queue = _visible_queue(request, pk)
    working.release(request.user)
    messages.success(request, f"Stopped working {queue.name}. The contact you had goes back to the queue.")
    return redirect("queue_list")


@require_GET
@login_required
@permission_required(perms.VIEW_QUEUE, raise_exception=True)
def queue_bar(request: AuthedRequest, pk: int) -> HttpResponse:
    """The queue bar, refreshed while the agent is on the contact's page: a sign they are still there, and the
    held contact's state (call going on, wrap-up due, settled: Next)."""
    queue = _visible_queue(request, pk)
    contact_pk = request.GET.get("contact", "")
    context = bar_context(request.user, queue, int(contact_pk) if is_id(contact_pk) else 0)
    if context is None:
        return HttpResponse(status=286)  # htmx: stop polling (the contact is no longer held)
    return render(request, "calls/queue_bar.html", context)


def bar_context(user: object, queue: CallQueue, contact_pk: int) -> dict[str, object] | None:
    """The queue bar's content for the contact page, when the user holds that contact in that queue."""
    now = _now()
    current = working.held(user, queue, now=now)  # type: ignore[arg-type]
    if current is None or current.contact.pk != contact_pk:
        return None
    working.still_here(user, queue, now=now)  # type: ignore[arg-type]
    attempt = current.attempt
    effect = working.settle(attempt, now=now) if attempt is not None else None
    if effect and current.entry is not None:
        current.entry.refresh_from_db(fields=["state", "attempts"])  # as the outcome left it
    made = reports.cached_progress(queue, now=now, claim_idle=working.CLAIM_IDLE)
    return {
        "queue": queue,
        "held": current,
        "progress": made,
        # This contact's place: counted among the done once its outcome took it out of the queue.
        "position": made.done + (0 if current.entry and current.entry.state != QueueEntry.State.WAITING else 1),
        "attempt": attempt,
        "settled": effect not in (None, ""),
        "effect_words": dict(QueueAttempt.Effect.choices).get(effect or "", ""),
        "attempt_number": (current.entry.attempts if current.entry else 0),
        "bar_poll": f"{settings.QUEUE_BAR_POLL_MS}ms",
    }
