"""The calling use cases: place a call, follow it, pause or resume its recording, wrap it up, reconcile.

Views, management commands and the call-following worker all call these keyword-only functions; this package is
the only code outside calls/vcc/ that opens a VCC client. Each use case loads the facts the rules need
(calls/rules.py), asks VCC, and records what happened through the Call's transitions (calls/models/calls.py).

Database work runs in sync functions through `_db` (common.py), which hands the connection back before VCC is
awaited: a slow VCC never holds a database connection, however many clicks are waiting on it.

- common: the clock (`wall_clock`, which tests replace), the log, `_db`
- facts: who is clicking, their callback numbers, the consent table, do-not-call anywhere (cached)
- preview: what the contact page shows before the click (`dialer`)
- placing: `place_number_call`, `place_agent_call`, the signed `regarding` link
- following: `follow`, the worker's `follow_due`, clicks never answered
- recording: `set_recording`, `shown_recording`, `wrap_up` (with a `CallbackPromise`: calls/callbacks.py)
- ready: `readiness`, `ready_agent_ids`
- syncing: `sync_with_vcc`

Everything other areas use is importable from here (`from calls import calling; calling.follow(...)`). A test that
replaces a name replaces it where it is looked up: `calling.common.wall_clock`, `calling.placing._db`.
"""

from __future__ import annotations

from calls.calling.facts import caller_for, consent_rules, numbers_blocked_anywhere
from calls.calling.following import (
    ABANDONED_AFTER,
    FOLLOW_INTERVAL,
    Followed,
    Round,
    close_abandoned_clicks,
    follow,
    follow_due,
    worker_heartbeat,
)
from calls.calling.placing import (
    finish_in_flight,
    place_agent_call,
    place_number_call,
    regarding_token,
    regarding_url,
    request_id_from_regarding,
)
from calls.calling.preview import Dialer, NumberRow, dialer
from calls.calling.ready import Readiness, readiness, ready_agent_ids
from calls.calling.recording import CallbackPromise, WrappedUp, set_recording, shown_recording, wrap_up
from calls.calling.syncing import sync_with_vcc
from calls.rules import Refused

__all__ = [
    "ABANDONED_AFTER",
    "CallbackPromise",
    "FOLLOW_INTERVAL",
    "Dialer",
    "Followed",
    "NumberRow",
    "Readiness",
    "Refused",
    "Round",
    "WrappedUp",
    "caller_for",
    "close_abandoned_clicks",
    "consent_rules",
    "dialer",
    "finish_in_flight",
    "follow",
    "follow_due",
    "numbers_blocked_anywhere",
    "place_agent_call",
    "place_number_call",
    "readiness",
    "ready_agent_ids",
    "regarding_token",
    "regarding_url",
    "request_id_from_regarding",
    "set_recording",
    "shown_recording",
    "sync_with_vcc",
    "worker_heartbeat",
    "wrap_up",
]
