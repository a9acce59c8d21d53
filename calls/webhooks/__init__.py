"""Outgoing webhooks (issue 21): other systems told of every call and contact change, signed, retried for a day.

safety.py says which URLs may receive them, signing.py signs them (Standard Webhooks), outbox.py records events in the
transaction of the change, delivery.py sends them. The events an endpoint may subscribe to are listed here, with the
check the page and `manage.py webhook_endpoint` both use on the patterns an admin types.
"""

import fnmatch
import re

from django.core.exceptions import ValidationError

EVENT_TYPES = (
    "call.requested",
    "call.placed",
    "call.failed",
    "call.not_confirmed",
    "call.connected",
    "call.ended",
    "call.wrapped_up",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "contact.do_not_call_changed",
    "contact.erased",  # data: the id alone (calls/privacy/erasure.py)
    "callback.due",  # a promised callback's time has come (calls/callbacks.py: announce_due)
)
# Sent to one endpoint on an admin's request, whatever it subscribes to.
TEST_EVENT_TYPE = "webhook.test"

_PATTERN = re.compile(r"[a-z_.*]{1,64}")


def check_event_patterns(patterns: list[str]) -> list[str]:
    """The patterns cleaned (trimmed, lower case, no duplicates, in order), or ValidationError naming the wrong one.

    A pattern is an event type ("contact.created") or a wildcard that matches at least one ("call.*", "*").
    """
    cleaned: list[str] = []
    for raw in patterns:
        pattern = raw.strip().lower()
        if not pattern or pattern in cleaned:
            continue
        if not _PATTERN.fullmatch(pattern) or not fnmatch.filter(EVENT_TYPES, pattern):
            raise ValidationError(
                f"{raw.strip()!r} matches no event: use an event type such as contact.created, "
                f"or a wildcard such as call.* or *"
            )
        cleaned.append(pattern)
    if not cleaned:
        raise ValidationError("Choose at least one event type (* sends them all).")
    return cleaned
