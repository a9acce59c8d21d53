"""The `calls` app's models, one module per area; `from calls.models import Call` works for every name below.

- common: the ID and number patterns, their validators, the consent choices
- contacts: Contact and ContactPhone, the contact list's search and pages, the number a click dials
- contactsearch: ContactSearch, each contact's name and search text in a narrow table PostgreSQL keeps
- imports: ContactImport, a CSV import between its steps, with its rows and their keys
- directory: Agent, AgentGroup, CallbackNumber (VCC's side, as vccweb keeps it)
- rules: DispositionCode and ConsentRule, what admins set for calls
- calls: Call (one row per click, or per call VCC's events told of) and its transitions; outcomes: outcome_of
- callkeys: CallRequestId and CallVccId, a call's two unique keys in narrow tables a trigger keeps
- history: CallEvent, a call's history beyond its milestones
- locks: DialLock, a number being dialled
- logins: LoginFailure and LockOut, failed logins and the lock-outs they lead to
- sync: SyncRun, one run of the sync from VCC
- reports: CallRollup and CallRollupState, the call log rolled up by day
- events: VccEvent, an event VCC pushed in (Webhooks API), until processed
- health: WorkerHeartbeat, when each background worker last ran; JobError, why a background job failed
- api: ApiToken, a person's token for the REST API; ApiIdempotentRequest, the first answer to an Idempotency-Key
- audit: AuditEntry, who changed, exported or erased what, from which request
- webhooks: WebhookEndpoint, WebhookEvent (the outbox), WebhookDelivery, WebhookAttempt: outgoing webhooks
- hours: CallingHours and Holiday, when each country's numbers may be called
- callbacks: Callback, a promise to call a contact again at a time
- queues: CallQueue, QueueEntry, QueueAttempt: lists of contacts agents work through
- privacy: RetentionPolicy and RetentionRun (how long personal data is kept), ErasedNumber (an erased opt-out)

Every model stays in the app `calls`, so its table (calls_<model>), permissions and migrations are unchanged.
"""

from __future__ import annotations

from calls.models.api import ApiIdempotentRequest, ApiToken
from calls.models.audit import AuditEntry
from calls.models.callbacks import Callback, CallbackQuerySet
from calls.models.callkeys import CallRequestId, CallVccId
from calls.models.calls import (
    CLOSED_BY_HAND,
    MIN_CLOSE_REASON,
    MISSING_GRACE,
    MISSING_TRIES,
    VCC_RETENTION,
    Call,
    CallQuerySet,
)
from calls.models.common import (
    AGENT_ID_PATTERN,
    E164_PATTERN,
    ERASED_CONTACT,
    GROUP_ID_PATTERN,
    Consent,
    agent_id_validator,
    group_id_validator,
    validate_phone,
)
from calls.models.contacts import (
    CONTACT_SORTS,
    MAX_SEARCH_WORDS,
    SEARCH_WINDOWS,
    SHORT_WORD_WINDOWS,
    Contact,
    ContactPhone,
    ContactPhoneQuerySet,
    ContactQuerySet,
    is_number_search,
    refresh_last_calls,
    search_windows,
)
from calls.models.contactsearch import ContactSearch
from calls.models.directory import Agent, AgentGroup, CallbackNumber, CallbackNumberQuerySet
from calls.models.events import VccEvent
from calls.models.health import JobError, WorkerHeartbeat
from calls.models.history import CallEvent
from calls.models.hours import CallingHours, Holiday
from calls.models.imports import ContactImport, ContactImportKey, ContactImportRow, ImportedContact
from calls.models.locks import DialLock
from calls.models.logins import LockOut, LoginFailure
from calls.models.outcomes import outcome_of
from calls.models.privacy import ErasedNumber, RetentionPolicy, RetentionRun
from calls.models.queues import CallQueue, QueueAttempt, QueueEntry
from calls.models.reports import CallRollup, CallRollupState
from calls.models.rules import ConsentRule, DispositionCode
from calls.models.sync import SyncRun
from calls.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "ApiIdempotentRequest",
    "ApiToken",
    "AuditEntry",
    "AGENT_ID_PATTERN",
    "CONTACT_SORTS",
    "E164_PATTERN",
    "GROUP_ID_PATTERN",
    "MAX_SEARCH_WORDS",
    "MIN_CLOSE_REASON",
    "CLOSED_BY_HAND",
    "ERASED_CONTACT",
    "MISSING_GRACE",
    "MISSING_TRIES",
    "SEARCH_WINDOWS",
    "SHORT_WORD_WINDOWS",
    "VCC_RETENTION",
    "Agent",
    "AgentGroup",
    "Call",
    "Callback",
    "CallbackQuerySet",
    "CallingHours",
    "CallQueue",
    "Holiday",
    "ImportedContact",
    "QueueAttempt",
    "QueueEntry",
    "CallEvent",
    "CallQuerySet",
    "CallRollup",
    "CallRollupState",
    "CallbackNumber",
    "CallbackNumberQuerySet",
    "Consent",
    "ConsentRule",
    "Contact",
    "ContactImport",
    "ContactImportKey",
    "ContactImportRow",
    "ContactPhone",
    "ContactPhoneQuerySet",
    "ContactQuerySet",
    "CallRequestId",
    "CallVccId",
    "ContactSearch",
    "DialLock",
    "ErasedNumber",
    "RetentionPolicy",
    "RetentionRun",
    "LockOut",
    "LoginFailure",
    "DispositionCode",
    "SyncRun",
    "WorkerHeartbeat",
    "VccEvent",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "JobError",
    "agent_id_validator",
    "group_id_validator",
    "is_number_search",
    "outcome_of",
    "refresh_last_calls",
    "search_windows",
    "validate_phone",
]
