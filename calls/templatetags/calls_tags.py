from __future__ import annotations

import functools
import json
import re
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince

from calls import phones

if TYPE_CHECKING:
    from calls.models import Call

register = template.Library()


@register.simple_tag
def new_request_id() -> str:
    """A one-time id for a call button: the same click sent twice places one call."""
    return str(uuid.uuid4())


@register.filter
def phone(e164: str) -> str:
    """An E.164 number as people write it."""
    return _display(e164, settings.DEFAULT_PHONE_REGION) if e164 else ""


@functools.lru_cache(maxsize=8192)
def _display(e164: str, region: str) -> str:
    # Parsing costs ~0.1 ms a number, and a page of calls shows the same few caller IDs again and again.
    return phones.display(e164)


# How each outcome looks: answered calls are green, calls that rang nobody or failed are not.
_OUTCOME_LOOK = {
    "answered": "ok",
    "in_progress": "live",
    "not_confirmed": "warn",
    "unknown": "",
    "agent_no_answer": "warn",
    "no_answer": "warn",
    "busy": "warn",
    "failed": "danger",
}


@register.simple_tag
def outcome_badge(call: Call) -> str:
    """The call's outcome in plain words, as a badge coloured by how it went."""
    look = _OUTCOME_LOOK.get(call.outcome, "")
    return format_html(
        '<span class="badge outcome {}" data-outcome="{}">{}</span>', look, call.outcome, call.get_outcome_display()
    )


_WBR = mark_safe("<wbr>")
_BEFORE_A_DOT = re.compile(r"(?=\.)")


@register.filter
def email_wrap(email: str) -> SafeString:
    """An email address (escaped) that wraps where people expect: after its @ ("grace.hopper@" /
    "brightwater-energy.co.uk"), and before a dot only when its name or its domain alone is too long for a line.

    Each of the two, and each piece of them between dots, is an `email-part` span that the stylesheet keeps whole
    unless it alone is wider than its box; a <wbr> joins them. A browser would otherwise break the address anywhere
    (overflow-wrap) or after a hyphen.
    """
    name, at, domain = (email or "").rpartition("@")
    halves = [name + at, domain] if at else [domain]
    return format_html_join(
        _WBR,
        '<span class="email-part">{}</span>',
        ((_email_pieces(half),) for half in halves if half),
    )


def _email_pieces(text: str) -> SafeString:
    pieces = [piece for piece in _BEFORE_A_DOT.split(text) if piece]
    if len(pieces) == 1:  # "grace@": its half's span is enough
        return format_html("{}", pieces[0])
    return format_html_join(_WBR, '<span class="email-part">{}</span>', ((piece,) for piece in pieces))


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, as people say it: "just now" under a minute (never "0 minutes ago"), else "3 minutes ago"."""
    if value is None:
        return ""
    now = now or timezone.now()
    if now - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, now)} ago"


@register.filter
def duration(seconds: int | None, largest: str = "d") -> str:
    """Seconds as people say them: 45 s, 3 min 05 s, 1 h 02 min, 5 d 16 h (a speed to lead of days). `|duration:"h"`
    counts in hours however long (a month's talk time reads 8,000 h 20 min, not 333 d 8 h)."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48 or largest == "h":
        return f"{hours:,} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def consent_words(value: str) -> str:
    """A consent value (OneParty) as words (one party)."""
    from calls.models import Consent

    return Consent(value).label.lower() if value in Consent.values else value


@register.filter
def regarding(call: Call) -> str:
    """The signed link token that opens this call's panel."""
    from calls.calling import regarding_token

    return regarding_token(call)


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


# VCC's result words, as a person says them (the values are VCC's; pages show these instead).
_VCC_WORDS = {
    "NoAnswer": "no answer",
    "OneParty": "one party",
    "TwoParty": "two party",
    "Originator": "the agent's phone",
    "Destination": "the called phone",
    "Success": "success",
    "Failure": "failure",
    "Busy": "busy",
}
_VCC_WORD = re.compile(r"\b(" + "|".join(_VCC_WORDS) + r")\b")


@register.filter
def plain_vcc(text: str) -> str:
    """VCC's words within text (a history entry) in plain words: NoAnswer says "no answer"."""
    return _VCC_WORD.sub(lambda m: _VCC_WORDS[m[1]], text or "")


@register.filter
def vcc_result(call: Call) -> str:
    """VCC's result for an ended call (code, party, reason) in plain words, without repeating the outcome."""
    outcome = call.get_outcome_display()
    parts = [
        _VCC_WORDS.get(v, v) for v in (call.result_code, call.result_party, call.result_reason) if v and v != outcome
    ]
    return ", ".join(parts)


@register.filter
def pretty_json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
