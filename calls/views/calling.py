"""Click-to-call pages: the click, the dial preview, readiness, and the call panel (follow, recording, wrap-up).

The views glue HTTP to the use cases in calls/calling/. They are async: a click awaits VCC without holding a
worker thread or a database connection. Database reads that templates need happen in `_render`'s sync thread; the
call panel of a call that has not ended needs none and renders in the event loop (`render_panel`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, Concatenate

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from calls import callbacks, calling, rules
from calls import permissions as perms
from calls.calling.bar import Bar, BarItem, bar_calls, holds_phone, on_call_words
from calls.calling.common import _now
from calls.forms import DialPreviewForm, NumberClickForm, RecordingForm, WrapUpForm, first_error
from calls.models import CLOSED_BY_HAND, AgentGroup, Call, Callback, Contact, DispositionCode
from calls.queues import working
from calls.rules import Refused
from calls.views.access import login_required
from calls.views.http import AuthedRequest, is_id

log = logging.getLogger(__name__)

OnAnswer = Callable[[Call], None]  # run with the writing of VCC's answer (calling.place_number_call)
CALLS_CHANGED = "calls-changed"  # tells the page's timeline and lists to reload


def calls_changed(response: HttpResponse) -> HttpResponse:
    """Tell the page that a call changed: the timeline, the bar and the panels reload.

    The event is fired on the body, not on the element that asked: a bar form can be swapped away (by the bar's
    own poll) while its answer is on the way, and an event fired on a detached element reaches no one.
    """
    return trigger_client_event(response, CALLS_CHANGED, {"target": "body"})


async def _render(request: HttpRequest, template: str, context: dict[str, object]) -> HttpResponse:
    # Rendering may read related objects lazily, which only sync code may do.
    return await sync_to_async(render)(request, template, context)


async def _user(request: AuthedRequest) -> User:
    """The user, loaded once: the async views' `auser()` and the templates' `request.user` share it."""
    request.user = user = await request.auser()
    return user


FORM_ERRORS_HEADER = "X-Form-Errors"  # on a 400 that is the same part of the page showing what to fix


def _refusal(message: str) -> HttpResponse:
    """A click or change refused before VCC was asked: a 400 whose plain sentence the page shows."""
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


def refusals_as_400(
    view: Callable[Concatenate[AuthedRequest, ...], Coroutine[Any, Any, HttpResponse]],
) -> Callable[Concatenate[AuthedRequest, ...], Coroutine[Any, Any, HttpResponse]]:
    """Refused (by a rule) answers 400 with the reason as plain text; nothing was sent and no row written.

    The page may be behind (a call placed from another tab): `calls-changed` has its call bar and Call buttons
    catch up."""

    @functools.wraps(view)
    async def wrapper(request: AuthedRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return await view(request, *args, **kwargs)
        except Refused as refused:
            return calls_changed(_refusal(str(refused)))

    return wrapper


def base_url(request: HttpRequest) -> str:
    return settings.SITE_URL or request.build_absolute_uri("/")


def panel_context(call: Call, *, user: User, recording_status: str | None = None, **extra: object) -> dict[str, object]:
    """What the call panel (templates/calls/call_panel.html) shows for this user; the call bar shows its "phase".

    "lost_contact": VCC could not be asked about the live call (its state is unknown, so no pulse and no timer);
    "talk_since": when the call connected, while it is connected (the talk timer counts from it)."""

    def _clock_time(at: datetime | None) -> str:
        """A time of day as the viewer reads it (their time zone): 13:39."""
        return formats.time_format(timezone.localtime(at), "H:i") if at else ""

    recording = call.recording_status if recording_status is None else recording_status
    lost = call.is_live and call.lost_contact_since is not None
    seen = call.last_seen_at or call.responded_at
    connected = call.is_live and not lost and call.connected_at is not None
    return {
        "call": call,
        "can_change": call.is_changeable_by(user),
        "phase": rules.phase(
            state=call.state,
            outcome_label=call.get_outcome_display(),
            recording_status=recording,
            from_agent=bool(call.from_agent_id),
            connected=call.connected_at is not None,
            agent_answered=call.agent_answered_at is not None,
            lost_since=_clock_time(call.lost_contact_since) if lost else "",
            gone=call.is_gone,
            last_seen=_clock_time(seen),
            closed=call.state == Call.State.ENDED and call.result_reason == CLOSED_BY_HAND,
        ),
        "lost_contact": lost,
        "talk_since": call.connected_at if connected else None,
        "recording": recording,
        "in_progress": call.in_progress,  # the panel polls, and shows the pulse
        "dispositions": DispositionCode.objects.filter(is_active=True),
        # Read only when the wrap-up form is drawn (an ended call: its panel renders in the sync thread), and then
        # once: a template calls a callable at each `{{ x.y }}`, each time a query.
        "callback_groups": functools.cache(functools.partial(_callback_groups, user)),
        "promised": functools.cache(functools.partial(_promised, call)),  # the editing form says what it promised
        "regarding_token": calling.regarding_token(call),
        **extra,
    }


def _promised(call: Call) -> Callback | None:
    """The callback this call promised, still open: a wrap-up edited with a callback moves it (callbacks.promise)."""
    if not call.wrapped_up_at:
        return None
    return Callback.objects.open().select_related("group", "assigned_to").filter(promised_on=call).first()


def _callback_groups(user: User) -> list[AgentGroup]:
    return list(callbacks.groups_for(user)) if user.has_perm(perms.ADD_CALLBACK) else []


def dialer_context(
    user: User, contact: Contact, *, ticked: Sequence[int] | None = None, chosen_clid: int | None = None
) -> dict[str, object]:
    dial = calling.dialer(user=user, contact=contact, ticked=ticked, chosen_clid=chosen_clid)
    return {
        "contact": contact,
        "dial": dial,
        "can_override_dnc": dial.caller.may_override_dnc,
        "min_dnc_reason": rules.MIN_DNC_REASON,
        "can_override_hours": dial.caller.may_override_hours,
        "min_hours_reason": rules.MIN_HOURS_REASON,
    }


# --- The click -------------------------------------------------------------------------------------------


def _click_data(request: AuthedRequest) -> QueryDict:
    """The click's form data; a list's Call button sent without JavaScript has its click id in its address."""
    if "request_id" in request.POST or "request_id" not in request.GET:
        return request.POST
    data = request.POST.copy()
    data["request_id"] = request.GET["request_id"]
    return data


async def _place_clicked(
    request: HttpRequest, form: NumberClickForm, user: User, contact_pk: int, *, on_answer: OnAnswer | None = None
) -> Call:
    """Place the call a valid click on a contact's number asks for (calling.place_number_call)."""
    return await calling.place_number_call(
        user=user,
        request_id=str(form.cleaned_data["request_id"]),
        base_url=base_url(request),
        contact_pk=contact_pk,
        phone_pk=form.phone_pk,
        via_groups=form.via_groups,
        group_pks=form.cleaned_data["groups"],
        clid_pk=form.cleaned_data["clid"],
        dnc_reason=form.cleaned_data["dnc_reason"],
        hours_reason=form.cleaned_data["hours_reason"],
        on_answer=on_answer,
    )


@require_POST
@login_required
@permission_required(perms.VIEW_CONTACT, raise_exception=True)
@refusals_as_400
async def call_contact(request: AuthedRequest, pk: int) -> HttpResponse:
    """Call one of the contact's numbers. The answer is the call panel, for the page's call slot."""
    form = NumberClickForm(_click_data(request))
    if not form.is_valid():
        return _refusal(first_error(form))
    user = await _user(request)
    if form.via_groups and not await sync_to_async(user.has_perm)(perms.PLACE_GROUP_CALL):
        raise PermissionDenied("You may not call via groups.")
    from_queue = await _queue_attempt(user, request.POST.get("queue", ""))
    call = await _place_clicked(request, form, user, pk, on_answer=from_queue)
    if not request.htmx:
        return redirect(f"{reverse('contact_detail', args=[pk])}?call={calling.regarding_token(call)}")
    # The list's fragment links to the contact: one erased while VCC was asked has none, and gets the panel alone.
    in_list = request.htmx.target == "list-call" and call.contact is not None
    template = "calls/contact_list.html#list_call" if in_list else "calls/call_slot.html"
    on_call = on_call_after_click(call, user)  # the fresh Call button: the context processor may not read here
    response = await render_panel(
        request, template, call, user, contact=call.contact, phone=call.phone, can_call=True, on_call=on_call
    )
    return calls_changed(response)


async def _queue_attempt(user: User, queue_pk: str) -> Callable[[Call], None] | None:
    """Placed from a call queue's bar: the call is the held contact's attempt, written with VCC's answer; only in
    a queue given to the user (the form's queue id is theirs to change)."""
    queue = await sync_to_async(working.workable)(user, int(queue_pk)) if is_id(queue_pk) else None
    if queue is None:
        return None

    def note(call: Call) -> None:
        working.note_call(call, user=user, now=_now(), queue_id=queue.pk)

    return note


@require_GET
@login_required
@permission_required(perms.VIEW_CONTACT, raise_exception=True)
def dial_preview(request: AuthedRequest, pk: int) -> HttpResponse:
    """What a click would send with the page's current choices (groups ticked, caller ID picked)."""
    contact = get_object_or_404(Contact, pk=pk)
    form = DialPreviewForm(request.GET)
    if not form.is_valid():
        return _refusal(first_error(form))
    ticked = form.cleaned_data["groups"] if form.cleaned_data["ticked"] else None
    context = dialer_context(request.user, contact, ticked=ticked, chosen_clid=form.cleaned_data["clid"])
    return render(request, "calls/contact_detail.html#dial_preview", context)


@require_GET
@login_required
@permission_required(perms.VIEW_CONTACT, raise_exception=True)
async def readiness(request: AuthedRequest) -> HttpResponse:
    """Who VCC has ready now: the caller, and each group they may call via (with the ticks they had)."""
    form = DialPreviewForm(request.GET)
    if not form.is_valid():
        return _refusal(first_error(form))
    user, only_me = await _user(request), form.cleaned_data["only_me"]
    caller = await sync_to_async(calling.caller_for)(user)
    active = AgentGroup.objects.filter(is_active=True)
    groups = [g async for g in active] if caller.may_call_groups and not only_me else []
    ready = await calling.readiness(agent=caller.agent, groups=groups)
    ticked = set(form.cleaned_data["groups"])
    context = {
        "groups": [(g, ready.groups.get(g.pk)) for g in groups],
        "me_ready": ready.me,
        "availability_error": ready.error,
        "nobody_ready_ticked": bool(ticked) and all(ready.groups.get(pk) == 0 for pk in ticked),
        "only_me": only_me,
    }
    return await _render(request, "calls/contact_detail.html#readiness", context)


# --- The call panel ---------------------------------------------------------------------------------------


def _visible_call(user: User, pk: int) -> Call:
    return get_object_or_404(Call.objects.visible_to(user).with_parties(), pk=pk)


def _own_call(user: User, pk: int) -> Call:
    """A call this user may change (recording, wrap-up): their own, whoever else may see it."""
    return get_object_or_404(Call.objects.changeable_by(user).with_parties(), pk=pk)


def _render_panel(
    request: HttpRequest, template: str, call: Call, user: User, recording_status: str | None, **extra: object
) -> HttpResponse:
    return render(request, template, panel_context(call, user=user, recording_status=recording_status, **extra))


async def render_panel(
    request: HttpRequest, template: str, call: Call, user: User, *, recording_status: str | None = None, **extra: object
) -> HttpResponse:
    """Render a template that shows the call panel: in the event loop for a call that has not ended, else in one
    trip to the sync thread.

    The panel of a call that has not ended shows nothing of the database beyond the row and its parties, which
    come with it (from the click, or `with_parties`); the wrap-up form of an ended call lists the disposition codes.
    Should a template ever reach for the database in the loop, Django refuses before any query is sent, and the
    panel is rendered in the thread instead.
    """
    if call.state != Call.State.ENDED:
        try:
            return _render_panel(request, template, call, user, recording_status, **extra)
        except SynchronousOnlyOperation:
            log.warning("the panel of call %s reached for the database in the event loop", call.pk, exc_info=True)
    return await sync_to_async(_render_panel)(request, template, call, user, recording_status, **extra)


async def _panel(
    request: HttpRequest, call: Call, user: User, *, changed: bool = False, form_errors: bool = False, **extra: object
) -> HttpResponse:
    recording = await calling.shown_recording(call)
    response = await render_panel(request, "calls/call_panel.html", call, user, recording_status=recording, **extra)
    if form_errors:  # a 400: the panel again, saying what to fix; app.js has htmx swap it in
        response.status_code, response[FORM_ERRORS_HEADER] = 400, "1"
    refused = extra.get("action_error")
    if refused and request.method == "POST" and request.POST.get("from_bar"):
        # A bar's form swaps nothing in: what VCC refused is said in the page's message box, by an event on the body
        # (the form may be gone by the time the answer arrives: the bar's poll replaces it).
        trigger_client_event(response, BAR_REFUSED, {"message": str(refused), "target": "body"})
    return calls_changed(response) if changed else response


BAR_REFUSED = "bar-refused"


@require_GET
@login_required
@permission_required(perms.VIEW_CALL, raise_exception=True)
async def call_panel(request: AuthedRequest, pk: int) -> HttpResponse:
    """The call panel: htmx polls it while the call is in progress; VCC is asked at most every couple of seconds."""
    user = await _user(request)
    call = await sync_to_async(_visible_call)(user, pk)
    followed = await calling.follow(call=call)
    editing = request.GET.get("edit") == "1" and call.is_changeable_by(user)
    return await _panel(
        request, followed.call, user, changed=followed.changed, refresh_error=followed.error, editing=editing
    )


@require_POST
@login_required
@permission_required(perms.VIEW_CALL, raise_exception=True)
async def call_recording(request: AuthedRequest, pk: int) -> HttpResponse:
    """Pause or resume recording of a connected call; VCC applies it asynchronously."""
    user = await _user(request)
    call = await sync_to_async(_own_call)(user, pk)
    form = RecordingForm(request.POST)
    if not form.is_valid():
        return await _panel(request, call, user, form_errors=True, action_error=first_error(form))
    error = await calling.set_recording(call=call, status=form.cleaned_data["recording"], user=user)
    return await _panel(request, call, user, action_error=error)


def _call_to_wrap_up(user: User, pk: int, *, first: bool) -> Call:
    """The user's call to wrap up. A first wrap-up's form drawn before the call was wrapped up elsewhere (another
    tab, a bar not yet reloaded) is refused: it would replace that wrap-up, and its notes, with its own."""
    call = _own_call(user, pk)
    if first and call.wrapped_up_at is not None:
        raise Refused(
            f"This call was wrapped up meanwhile, as “{call.disposition_code}”: nothing was changed. "
            "Reload the page to edit the wrap-up."
        )
    return call


@require_POST
@login_required
@permission_required(perms.VIEW_CALL, raise_exception=True)
@refusals_as_400
async def call_wrapup(request: AuthedRequest, pk: int) -> HttpResponse:
    """Store the disposition and notes; the disposition goes to VCC, and nothing typed is lost if it fails."""
    user = await _user(request)
    first = bool(request.POST.get("first"))
    call = await sync_to_async(_call_to_wrap_up)(user, pk, first=first)
    form = WrapUpForm(request.POST, user=user, now=_now())
    typed = _as_typed(request.POST)  # shown again when something is to fix
    if not await sync_to_async(form.is_valid)():
        error, invalid = _what_to_fix(form)
        return await _panel(
            request, call, user, form_errors=True, action_error=error, invalid_field=invalid, editing=True, typed=typed
        )
    data = form.cleaned_data
    done = await calling.wrap_up(
        call=call, disposition=data["disposition"], notes=data["notes"], user=user, callback=form.promise, first=first
    )
    return await _panel(
        request,
        call,
        user,
        changed=not done.error,
        action_error=done.error,
        changed_lines=done.changed,
        editing=bool(done.error),
        typed=typed,
    )


def _what_to_fix(form: WrapUpForm) -> tuple[str, str]:
    """A wrap-up form's first error, in words, and its field (marked, described, focused), if it has one."""
    return first_error(form), next((name for name in form.errors if name != "__all__"), "")


def _as_typed(post: QueryDict) -> dict[str, str]:
    """The wrap-up as typed: the disposition chosen, the notes, the callback's fields."""
    typed = {name: post.get(name, "").replace("\x00", "") for name in ("notes", *CALLBACK_FIELDS)}
    return {**typed, "disposition": post.get("disposition", "")}


CALLBACK_FIELDS = ("callback_at", "callback_to", "callback_note")


# --- The call bar -----------------------------------------------------------------------------------------


def call_bar_for(user: User) -> Bar:
    """The bar of every page (calls/context_processors.py), read from the database."""
    return _words_for(bar_calls(user, now=_now()), user, {})


def _words_for(bar: Bar, user: User, recordings: dict[int, str]) -> Bar:
    """The bar's calls with their words (the panel's phase), and the disposition codes when a wrap-up is due."""
    now = _now()
    for call in bar.calls:
        recording = recordings.get(call.pk, call.recording_status)
        phase = str(panel_context(call, user=user, recording_status=recording)["phase"])
        bar.items.append(BarItem(call=call, phase=phase, recording=recording, now=now))
    if any(call.wrap_up_due for call in bar.calls):
        bar.dispositions = list(DispositionCode.objects.filter(is_active=True))
        bar.callback_groups = _callback_groups(user)
    return bar


def on_call_after_click(call: Call, user: User) -> str:
    """ "You are on a call with …" when the call just placed holds the user's phone, for the fresh Call button."""
    return on_call_words(call) if holds_phone(call, user, now=_now()) else ""


@require_GET
@login_required
async def call_bar(request: AuthedRequest) -> HttpResponse:
    """The call bar, polled while one of the person's calls is going on and reloaded on `calls-changed`.

    A live call is followed (`calling.follow` asks VCC at most once per call every couple of seconds, whoever asks:
    the bar, a panel or the worker); the rest is read from the database.
    """
    user = await _user(request)
    bar = await sync_to_async(bar_calls)(user, now=_now())
    changed = False
    recordings: dict[int, str] = {}
    for call in bar.calls:
        if call.is_live:
            followed = await calling.follow(call=call)
            changed = changed or followed.changed
            recordings[call.pk] = await calling.shown_recording(followed.call)
    if changed:  # a call that ended no longer holds the phone
        bar.on_call = next((call for call in bar.calls if holds_phone(call, user, now=_now())), None)
    bar = await sync_to_async(_words_for)(bar, user, recordings)
    response = await _render(request, "calls/call_bar.html", {"call_bar": bar, "call_bar_version": BAR_VERSION})
    version = _bar_version(response.content)
    if not changed and request.GET.get("v") == version:
        # What the page shows already: nothing is swapped (htmx leaves the bar as it is on a 204), so a click on
        # the bar never lands on a form that a poll is replacing, and the page does not redraw every poll.
        return HttpResponse(status=204)
    response.content = response.content.replace(BAR_VERSION.encode(), version.encode(), 1)
    return calls_changed(response) if changed else response


BAR_VERSION = "bar-version"  # where the bar's version goes in its answer (the v its polls send back)
_TALK_TIME = re.compile(rb'(data-talk-since="[^"]*"[^>]*>)[^<]*')


def _bar_version(content: bytes) -> str:
    """What the bar shows, as a short digest: its talk time aside (app.js ticks it), and its CSRF tokens aside (a
    new one each answer)."""
    shown = _TALK_TIME.sub(rb"\1", content)
    shown = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", shown)
    return hashlib.sha256(shown).hexdigest()[:16]
