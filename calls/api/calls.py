"""The API's calls: place one (the Call button's use case, behind an `Idempotency-Key`), the call log with its
filters and keyset pages, one call with its history, and the wrap-up.

Every rule is the pages' own: the click's checks and refusals (calls/calling/placing.py, calls/rules.py), which
calls a person may see (`Call.objects.visible_to`, as the call log) or change (`changeable_by`, as the call panel),
the call log's filters and cursor (calls/forms/calllog.py, calls/calllog.py) and the wrap-up (calls/calling/
recording.py). Placing and wrapping up are async end to end, as the pages' are: VCC is awaited without holding a
worker thread or a database connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import uuid
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, connections
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from ninja import Field, Query, Router, Schema
from ninja.responses import NinjaJSONEncoder
from pydantic import ConfigDict

from calls import calling, calllog, phones
from calls import permissions as perms
from calls.api import limits
from calls.api.auth import require
from calls.api.callrows import ROW, json_rows, rows_as_items
from calls.api.callschemas import (
    BIGINT_MAX,
    CallbackIn,
    CallbackOut,
    CallDetailOut,
    CallFilters,
    CallOut,
    CallPage,
    Id,
    Text,
)
from calls.api.errors import PROBLEM, TITLES, Problem, refusal_detail
from calls.api.paging import DEFAULT_LIMIT, limit_of
from calls.calling.common import _db
from calls.forms import CallLogFilter, WrapUpForm, first_error
from calls.models import (
    AgentGroup,
    ApiIdempotentRequest,
    Call,
    Callback,
    CallbackNumber,
    Contact,
    ContactPhone,
    DispositionCode,
)
from calls.rules import Busy, Refused, Throttled
from calls.views.calling import base_url

log = logging.getLogger(__name__)

router = Router(tags=["calls"])

KEY_HEADER = "Idempotency-Key"
MAX_KEY = 255  # ApiIdempotentRequest.key
# A click's request id from the person and their key: the same key can never place two calls, even past the
# idempotency table (the use case answers a repeated request id with the call it placed).
_REQUEST_IDS = uuid.UUID("0d6c8a44-3b8e-4c59-9d3e-6a1f0e5d2b71")


# --- The call resource ---------------------------------------------------------------------------------


def _log_path() -> str:
    return reverse("call_log")  # a call's page is the log's address and its id (calls/urls.py)


def resource(call: Call, *, log_path: str | None = None) -> dict[str, Any]:
    """The call as the API shows it (CallOut's fields; `as_json` makes it JSON). The call comes with its agents,
    its clicker and its groups (select_related / prefetch_related), or they are read here."""
    groups = [g.pk for g in call.from_groups.all()] if not call.from_agent_id and not call.to_agent_id else []
    taker = call.agent
    data: dict[str, Any] = {
        "id": call.pk,
        "state": call.state,
        "outcome": call.outcome,
        "to": call.to_number or None,
        "to_agent": call.to_agent.display_id if call.to_agent else None,
        "contact": call.contact_id,
        "agent": taker.display_id if taker else None,
        "answered_by": call.answered_by.display_id if call.answered_by else None,
        "via_groups": groups,
        "caller_id": call.presented_clid or None,
        "placed_by": call.created_by.username if call.created_by else None,
        "requested_at": call.requested_at,
        "connected_at": call.connected_at,
        "ended_at": call.ended_at,
        "duration_seconds": call.talk_seconds,  # none for a call that never connected, as the log shows
        "disposition": call.disposition_code or None,
        "notes": call.notes,
        "wrapped_up_at": call.wrapped_up_at,
        "error": call.error_display or None,
        "vcc_call_id": call.vcc_call_id or None,
        "url": f"{log_path or _log_path()}{call.pk}/",
    }
    return data


def as_json(body: dict[str, Any]) -> dict[str, Any]:
    """body as the API's responses render it (times as ninja writes them), to keep and answer again."""
    return json.loads(json.dumps(body, cls=NinjaJSONEncoder))


PARTIES = ("contact", "from_agent", "to_agent", "answered_by", "created_by")


def with_parties(calls: Any) -> Any:
    """calls with what `resource` reads of them besides their own columns (the API's answers, the webhooks' events
    written by the follower's round)."""
    return calls.select_related(*PARTIES).prefetch_related("from_groups")


def _json(status: int, body: dict[str, Any], **headers: str) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    if status >= 400:
        response["Content-Type"] = PROBLEM
    for name, value in headers.items():
        response[name] = value
    return response


def _problem_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """The same body calls.api.errors gives a raised Problem: kept, to be answered again for a repeated key."""
    return {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}


# --- Placing a call ----------------------------------------------------------------------------------------


class PlaceCallIn(Schema):
    model_config = ConfigDict(extra="forbid")

    to: Text = Field(max_length=40, description="The number to call, in any format (+44 20 7946 0100, 020 7946 …)")
    contact: Id | None = Field(None, description="The contact whose number it is; needed when several have it")
    via_groups: list[Id] | None = Field(
        None,
        max_length=50,
        description="Call via these groups (ids, in order: any ready agent of them takes it) instead of from your "
        "own phone; needs a role that may call via groups",
    )
    caller_id: Text | None = Field(None, max_length=40, description="A callback number to present, in any format")
    reason: Text = Field("", max_length=500, description="Why you call a do-not-call number anyway (supervisors)")
    hours_reason: Text = Field(
        "",
        max_length=500,
        description="Why you call outside the number's calling hours anyway (supervisors; at least 5 characters)",
    )


def _key(request: HttpRequest) -> str:
    key = request.headers.get(KEY_HEADER, "")
    if not key.strip():
        raise Problem(
            400,
            f"Send an {KEY_HEADER} header: a value unique to this call (a UUID will do). Send the same value again "
            "to retry safely: the same key never places a second call.",
        )
    if len(key) > MAX_KEY or not (key.isascii() and key.isprintable()):
        raise Problem(400, f"The {KEY_HEADER} must be at most {MAX_KEY} printable ASCII characters (a UUID will do).")
    return key


def _digest(payload: PlaceCallIn) -> str:
    body = json.dumps(payload.model_dump(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"POST /calls\n{body}".encode()).hexdigest()


def _claim(user: Any, key: str, digest: str) -> ApiIdempotentRequest | None:
    """Write the key's row before anything else: None when this request is the first (and places the call), else
    the row of the request that was (the unique constraint decides between two at once)."""
    for attempt in range(3):
        if _inserted(user.pk, key, digest):
            return None
        earlier = ApiIdempotentRequest.objects.filter(user=user, key=key).first()
        if earlier is not None and earlier.status is None and timezone.now() - earlier.created_at > ABANDONED:
            earlier = _recovered(earlier)  # its process died mid-request: what did it leave?
        if earlier is not None:
            return earlier
        if attempt == 2:
            raise IntegrityError(f"{KEY_HEADER} {key!r} was taken and released three times in a row")
        # released meanwhile (the first was refused): try again to be the first
    raise AssertionError("unreachable")


def _inserted(user_pk: int, key: str, digest: str) -> bool:
    """Insert the key's row unless the person has it already: one statement, no transaction to open and close (an
    IntegrityError would need one, in a savepoint)."""
    table = ApiIdempotentRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, key, request_digest, created_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (user_id, key) DO NOTHING",
            [user_pk, key, digest, timezone.now()],
        )
        return cursor.rowcount == 1


ABANDONED = timedelta(minutes=2)  # a key still "under way" after this was left by a process that died


def _recovered(earlier: ApiIdempotentRequest) -> ApiIdempotentRequest | None:
    """A key whose first request never finished (its process was killed): the answer of the call it wrote, kept
    now; or, if it wrote none, the key freed (None: this request may place the call)."""
    request_id = str(uuid.uuid5(_REQUEST_IDS, f"{earlier.user_id}:{earlier.key}"))
    call = with_parties(Call.objects.with_request_id(request_id)).first()
    if call is None:
        earlier.delete()
        return None
    earlier.status, earlier.response = _answer(call)
    earlier.save(update_fields=["status", "response"])
    return earlier


@_db
def _claimed(request: HttpRequest, payload: PlaceCallIn, digest: str) -> tuple[str, ApiIdempotentRequest | None, Any]:
    """Check the token may place calls, take its Idempotency-Key (see _claim), then find what the call is to (see
    _target): the key, the earlier request's row (then nothing else was done), and the target. One trip to the
    database thread for all three; a target refused frees the key again."""
    require(request, "calls:write", perms.VIEW_CONTACT)
    key = _key(request)
    earlier = _claim(request.user, key, digest)
    if earlier is not None:
        return key, earlier, None
    try:
        return key, None, _target(request.user, payload)
    except (Problem, PermissionDenied):
        _release(request.user, key)
        raise


def _replay(earlier: ApiIdempotentRequest, digest: str) -> HttpResponse:
    if earlier.request_digest != digest:
        raise Problem(
            422,
            f"This {KEY_HEADER} was sent before with a different body. Send a new key for a new call, or the same "
            "body to get the first answer again.",
        )
    if earlier.status is None or earlier.response is None:
        raise Problem(
            409,
            f"The first request with this {KEY_HEADER} is still under way. Ask again in a moment for its answer.",
        )
    return _json(earlier.status, earlier.response, **{"Idempotent-Replayed": "true"})


def _keep(user: Any, key: str, status: int, body: dict[str, Any]) -> None:
    ApiIdempotentRequest.objects.filter(user=user, key=key).update(status=status, response=body)


def _release(user: Any, key: str) -> None:
    """Nothing was placed and no call row written (a refusal, bad input): the key may be used again."""
    ApiIdempotentRequest.objects.filter(user=user, key=key, status__isnull=True).delete()


def _settle(user: Any, key: str, request_id: str) -> None:
    """The request failed unexpectedly: keep the answer of the call it wrote, if it wrote one, else free the key."""
    call = with_parties(Call.objects.with_request_id(request_id)).first()
    if call is None:
        _release(user, key)
    else:
        _keep(user, key, *_answer(call))


def _target(user: Any, payload: PlaceCallIn) -> tuple[ContactPhone, list[int] | None, int | None]:
    """The contact's number `to` names, the groups (None: from the caller's own phone) and the callback number."""
    try:
        number = phones.to_e164(payload.to)
    except ValidationError as exc:
        raise Problem(422, f"to: {exc.messages[0]}") from None
    found = ContactPhone.objects.filter(number=number)
    if payload.contact is not None:
        phone = found.filter(contact_id=payload.contact).first()
        if phone is None and not Contact.objects.filter(pk=payload.contact).exists():
            raise Problem(404, f"contact: there is no contact {payload.contact}.")
        if phone is None:
            raise Problem(
                422,
                f"to: {phones.display(number)} is not a number of contact {payload.contact}. Add it to the contact "
                "first, or leave contact out to call the contact that has it.",
            )
    else:
        matches = list(found.order_by("pk")[:2])
        if not matches:
            raise Problem(
                422,
                f"to: no contact has {phones.display(number)}. Add it to a contact first (calls are placed to "
                "contacts' numbers, with their do-not-call and consent rules).",
            )
        if len({p.contact_id for p in matches}) > 1:
            raise Problem(422, f"to: several contacts have {phones.display(number)}; name the one you mean in contact.")
        phone = matches[0]
    groups = None
    if payload.via_groups is not None:
        if not user.has_perm(perms.PLACE_GROUP_CALL):
            raise PermissionDenied("You may not call via groups.")  # as the Call button answers
        groups = list(dict.fromkeys(payload.via_groups))
        known = set(AgentGroup.objects.filter(pk__in=groups).values_list("pk", flat=True))
        if missing := [pk for pk in groups if pk not in known]:
            raise Problem(422, f"via_groups: there is no group {missing[0]} (GET /api/v1/groups lists them).")
    clid = None
    if payload.caller_id is not None:
        try:
            presented = phones.to_e164(payload.caller_id, has_notes=False)
        except ValidationError as exc:
            raise Problem(422, f"caller_id: {exc.messages[0]}") from None
        clid = CallbackNumber.objects.filter(number=presented).values_list("pk", flat=True).first()
        if clid is None:
            raise Problem(
                422,
                "caller_id: That caller ID is not one you may present. GET /api/v1/callback-numbers lists them.",
            )
    return phone, groups, clid


def _answer(call: Call) -> tuple[int, dict[str, Any]]:
    """The answer to a click, from its row: 201 with the call, or VCC's refusal (or failure) as a problem."""
    body = as_json(resource(call))
    if call.state in (Call.State.FAILED, Call.State.UNCONFIRMED):
        detail = call.error_display or "VCC did not place the call."
        return 502, _problem_body(502, detail, vcc=call.error_message or None, vcc_status=call.error_status, call=body)
    return 201, body


@_db
def _answer_kept(user: Any, key: str, call: Call) -> tuple[int, dict[str, Any]]:
    """The answer to the click that wrote `call` (as the use case left it: its parties are loaded, so no query
    reads them again), kept for the key."""
    status, body = _answer(call)
    _keep(user, key, status, body)
    return status, body


@_db
def _answer_of(pk: int) -> tuple[int, dict[str, Any]]:
    return _answer(with_parties(Call.objects.filter(pk=pk)).get())


@router.post(
    "",
    response={201: CallOut},
    throttle=[limits.PLACING],  # API_RATE_PER_MINUTE, and API_CALL_RATE_PER_MINUTE of them placing
    summary="Place a call",
    description=f"Place a call to a contact's number, as the Call button does, with the same checks. Send an "
    f"`{KEY_HEADER}` header: the same key (and body) never places a second call and answers the first answer "
    "again; the same key with another body is a 422; while the first is still under way, a 409. A refusal (do "
    "not call, outside the number's calling hours, no group, already on a call, …) is a 4xx problem that says "
    "why, and places nothing; a supervisor calls outside calling hours anyway by giving `hours_reason`. When VCC "
    "refuses or fails, the answer is a 502 problem with VCC's own text in `vcc` and the call's record in `call`.",
)
async def place_call(request: HttpRequest, payload: PlaceCallIn) -> HttpResponse:
    user, digest = request.user, _digest(payload)
    key, earlier, target = await _claimed(request, payload, digest)
    if earlier is not None:
        return _replay(earlier, digest)
    # Once the key is taken the placing runs to its end whatever the client does: a client gone mid-request (a
    # timeout, a dropped connection) finds the real answer under its key when it asks again, never a half-made one.
    placing = asyncio.ensure_future(_place_and_keep(request, payload, user, key, target))
    placing.add_done_callback(_seen)
    status, body = await asyncio.shield(placing)
    return _json(status, body)


def _seen(task: asyncio.Future[Any]) -> None:
    """Read the placing's outcome, so that one whose client went away is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


async def _place_and_keep(
    request: HttpRequest,
    payload: PlaceCallIn,
    user: Any,
    key: str,
    target: tuple[ContactPhone, list[int] | None, int | None],
) -> tuple[int, dict]:
    request_id = str(uuid.uuid5(_REQUEST_IDS, f"{user.pk}:{key}"))
    phone, groups, clid = target
    kept: list[tuple[int, dict[str, Any]]] = []

    def keep(call: Call) -> None:
        """The answer kept for the key in the transaction that records VCC's (one commit for both)."""
        try:
            answer = _answer(call)
        except Exception:  # never in the way of VCC's answer reaching the row: kept after it instead, below
            log.exception("answering call %s for the API failed", call.pk)
            return
        _keep(user, key, *answer)
        kept.append(answer)

    try:
        call = await calling.place_number_call(
            user=user,  # the token's owner (calls.api.auth)
            request_id=request_id,
            base_url=base_url(request),
            contact_pk=phone.contact_id,
            phone_pk=phone.pk,
            via_groups=groups is not None,
            group_pks=groups or [],
            clid_pk=clid,
            dnc_reason=payload.reason,
            hours_reason=payload.hours_reason,
            on_answer=keep,
        )
        if kept:
            return kept[-1]
        if call.phone_id != phone.pk:  # the key's call, placed before its row here was deleted (kept a day)
            raise Problem(422, f"This {KEY_HEADER} placed call {call.pk} before; send a new key for a new call.")
        return await _answer_kept(user, key, call)
    except Refused as refused:
        await _db(_release)(user, key)
        # A call already live (yours, or on this number) is a conflict that ends by itself: a 409, to try again.
        if isinstance(refused, Throttled):
            raise Problem(429, str(refused), retry_after=refused.retry_after) from None
        raise Problem(409 if isinstance(refused, Busy) else 422, refusal_detail(refused)) from None
    except (Problem, PermissionDenied, Http404):
        await _db(_release)(user, key)
        raise
    except BaseException:
        log.exception("placing call %s for the API failed", request_id)
        await _db(_settle)(user, key, request_id)
        raise


# --- The call log --------------------------------------------------------------------------------------------


FILTER_NAMES = set(CallFilters.model_fields)


class _CallLogFilter(CallLogFilter):
    """The call log page's form without its menus: the API reads values, and draws no menu to read them into."""

    def __init__(self, data: QueryDict) -> None:
        super(CallLogFilter, self).__init__(data)
        self.show_agents = True


@router.get(
    "",
    response=CallPage,
    summary="The call log",
    description="The calls the token's owner sees on the call log page (an agent: their own), newest first, with the "
    "page's filters; follow `next` for the next page (there is no count).",
)
def list_calls(request: HttpRequest, filters: Query[CallFilters]) -> HttpResponse:
    require(request, "calls:read", perms.VIEW_CALL)
    if unknown := sorted(set(request.GET) - FILTER_NAMES):
        raise Problem(400, f"{unknown[0]}: not a filter of the call log. Known: {', '.join(sorted(FILTER_NAMES))}.")
    limit = limit_of(request.GET.get("limit", ""))
    data = request.GET.copy()
    data.pop("limit", None)
    form = _CallLogFilter(data)
    if not form.is_valid():
        errors = [{"where": name, "what": str(m)} for name, messages in form.errors.items() for m in messages]
        raise Problem(400, f"{errors[0]['where']}: {errors[0]['what']}", errors=errors)
    cleaned = form.cleaned_data
    calls = calllog.filtered_calls(Call.objects.visible_to(request.user), cleaned)  # type: ignore[arg-type]
    in_sql = connections[calls.db].vendor == "postgresql"  # PostgreSQL writes each call's JSON (callrows.py)
    columns = calls.values_list(*ROW[:3]) if in_sql else calls.values_list(*ROW)
    rows, older = calllog.rows_page(
        columns,
        sort=cleaned["sort"],
        after=cleaned["after"],
        size=limit,
        fetch=json_rows(_log_path()) if in_sql else None,
    )
    following = None
    if older:
        query = form.query(sort=cleaned["sort"], after=older)
        if limit != DEFAULT_LIMIT:
            query["limit"] = str(limit)
        following = f"{base_url(request).rstrip('/')}{request.path}?{urlencode(query)}"
    if in_sql:
        items = f"[{','.join(row[3] for row in rows)}]"
        return HttpResponse(f'{{"items": {items}, "next": {json.dumps(following)}}}', content_type="application/json")
    body = {"items": rows_as_items(rows, _log_path()), "next": following}
    return HttpResponse(json.dumps(body), content_type="application/json")  # _items wrote the times as text


def _pk(call_id: int) -> int:
    if not 1 <= call_id <= BIGINT_MAX:
        raise Http404("There is no such call, or not one you may see.")
    return call_id


@router.get(
    "/{call_id}",
    response=CallDetailOut,
    summary="One call, with its history",
    description="404 for a call the token's owner may not see on its page.",
)
def get_call(request: HttpRequest, call_id: int) -> dict[str, Any]:
    require(request, "calls:read", perms.VIEW_CALL)
    calls = with_parties(Call.objects.visible_to(request.user)).prefetch_related("events")  # type: ignore[arg-type]
    call = get_object_or_404(calls, pk=_pk(call_id))
    return {
        **resource(call),
        "history": [{"at": at, "what": what, "detail": detail} for at, what, detail in call.history()],
        "events": [{"at": e.at, "kind": e.kind, "detail": e.detail} for e in call.events.all()],
        "callbacks": _callbacks_promised(call.pk),
    }


def _callbacks_promised(call_pk: int) -> list[dict[str, Any]]:
    """The open callbacks promised on a call (one query), as CallbackOut."""
    rows = Callback.objects.open().filter(promised_on_id=call_pk).select_related("assigned_to").order_by("due_at")
    fields = ("id", "due_at", "note", "state")
    who = {c.pk: (c.assigned_to.username if c.assigned_to else None, c.group_id) for c in rows}
    return [{**{f: getattr(c, f) for f in fields}, "assigned_to": who[c.pk][0], "group": who[c.pk][1]} for c in rows]


# --- The wrap-up ----------------------------------------------------------------------------------------------


class WrapUpIn(Schema):
    model_config = ConfigDict(extra="forbid")

    disposition: Text = Field(max_length=64, description="A disposition code (GET /api/v1/dispositions)")
    notes: Text = Field("", max_length=5000)
    callback: CallbackIn | None = Field(None, description="A callback promised to the contact (optional)")


class WrappedUpOut(CallOut):
    changed: list[str] = Field(description="What else the disposition changed, in words (a number marked do not call)")
    callbacks: list[CallbackOut] = Field(description="The open callbacks promised at this call's wrap-up")


@_db
def _wrap_up_form(payload: WrapUpIn, user: Any) -> WrapUpForm:
    pk = DispositionCode.objects.filter(code=payload.disposition).values_list("pk", flat=True).first()
    data = {"disposition": "" if pk is None else str(pk), "notes": payload.notes}
    if payload.callback is not None:
        group = payload.callback.group
        data |= {
            "callback_at": payload.callback.at,
            "callback_to": "me" if group is None else str(group),
            "callback_note": payload.callback.note,
        }
    form = WrapUpForm(data, user=user, now=timezone.now())
    form.is_valid()  # reads the active codes: in the sync thread
    return form


@_db
def _own_call(user: Any, call_id: int) -> Call:
    """A call this person may change (the call panel's rule), or 404."""
    return get_object_or_404(Call.objects.changeable_by(user).with_parties(), pk=_pk(call_id))


@router.post(
    "/{call_id}/wrap-up",
    response={200: WrappedUpOut},
    summary="Wrap up an ended call",
    description="Store the disposition and notes and send the disposition to VCC, as the call panel does; the call "
    "must be the token owner's to change. An optional `callback` promises a callback (to the token's owner, or to "
    "a group), with the panel's checks: a bad time or group is a 422 and nothing is stored. When VCC fails, the "
    "notes (and the callback) are kept and the answer is a 502 problem: send the wrap-up again. Past the 20 recording "
    "changes and wrap-ups a person may send VCC a minute (or while vccweb's VCC request budget is full), nothing is "
    "sent, the notes are kept, and the answer is a 429 with `Retry-After`.",
)
async def wrap_up(request: HttpRequest, call_id: int, payload: WrapUpIn) -> HttpResponse:
    await _db(require)(request, "calls:write", perms.VIEW_CALL)
    call = await _own_call(request.user, call_id)
    form = await _wrap_up_form(payload, request.user)
    if form.errors:
        raise Problem(422, first_error(form))
    done = await calling.wrap_up(
        call=call,
        disposition=form.cleaned_data["disposition"],
        notes=form.cleaned_data["notes"],
        user=request.user,  # type: ignore[arg-type]
        callback=form.promise,
    )
    _, body = await _answer_of(call.pk)
    if done.error:
        # Refused before VCC was asked (the call has not ended, or needs no wrap-up), or VCC failed.
        sent = call.state == Call.State.ENDED and (call.asks_sales_wrap_up or call.wrapped_up_at is not None)
        if done.retry_after is not None:  # not sent: vccweb's own limit or request budget, not VCC refusing it
            raise Problem(429, done.error, retry_after=math.ceil(done.retry_after), call=body)
        if sent:
            raise Problem(502, done.error, vcc=done.vcc or None, vcc_status=done.vcc_status, call=body)
        raise Problem(409, done.error, call=body)
    promised = await _db(_callbacks_promised)(call.pk)
    return _json(200, {**body, "changed": list(done.changed), "callbacks": as_json({"c": promised})["c"]})
