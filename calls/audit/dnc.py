"""Clearing do-not-call asks for a reason, which the audit trail keeps with the change (and the contact's timeline
shows): the contact form, and the API's contact writes through the same forms."""

from __future__ import annotations

from typing import Any

from calls import audit

REASON_NEEDED = (
    "Say why do-not-call is cleared (a contact's, or a number's: cleared, removed or renumbered); the reason is kept "
    "in the audit trail and shown on the contact's timeline."
)
REASON_TOO_LONG = f"Keep the reason to {audit.MAX_REASON} characters."


def clears(form: Any, formset: Any | None) -> bool:
    """Whether saving this valid ContactForm (and ContactPhoneFormSet) takes do-not-call off the contact or one of
    its numbers: clears the flag, removes a do-not-call number, or changes its number."""
    if form.instance.pk and form.initial.get("do_not_call") and not form.cleaned_data.get("do_not_call"):
        return True
    if formset is None:
        return False
    deleted = set(map(id, formset.deleted_forms))
    for phone_form in formset.initial_forms:
        if not (phone_form.instance.pk and phone_form.initial.get("do_not_call")):
            continue
        data = getattr(phone_form, "cleaned_data", None) or {}
        if id(phone_form) in deleted or not data.get("do_not_call"):
            return True
        if data.get("number") and data["number"] != phone_form.initial.get("number"):
            return True
    return False


def reason_problem(form: Any, formset: Any | None, reason: str | None) -> str:
    """Why this save cannot go ahead as it is ("" if it can): clearing do-not-call needs a reason."""
    reason = (reason or "").strip()
    if len(reason) > audit.MAX_REASON:
        return REASON_TOO_LONG
    if not reason and clears(form, formset):
        return REASON_NEEDED
    return ""
