"""Django's admin for the `calls` app, one module per area. Django imports `calls.admin`; importing each module
here registers its pages.

- base: `BoundedSearch` (every admin page here), `PhoneNumberField`
- contacts: contacts and their numbers
- directory: agents, agent groups
- callbacknumbers: callback numbers (caller IDs)
- calls: the call log, read-only
- rules: wrap-up dispositions, recording consent defaults
- hours: calling hours per country, and holidays
- users: users and roles
- sync: the sync from VCC, its preview and its runs
- lockouts: current lock-outs after failed logins, and lifting them
- tokens: everyone's API tokens, to see and revoke

Procrastinate's own job admin is taken out: the integration health page (calls/health.py) shows the queues, the
failed jobs with their errors and a retry, to the roles allowed to see them.
"""

from __future__ import annotations

from django.contrib import admin
from procrastinate.contrib.django.models import ProcrastinateJob

from calls.admin import callbacknumbers, calls, contacts, directory, hours, lockouts, rules, sync, tokens, users
from calls.admin.base import SEARCH_MAX_CHARS, BoundedSearch, PhoneNumberField

if admin.site.is_registered(ProcrastinateJob):
    admin.site.unregister(ProcrastinateJob)

__all__ = [
    "SEARCH_MAX_CHARS",
    "BoundedSearch",
    "PhoneNumberField",
    "callbacknumbers",
    "calls",
    "contacts",
    "directory",
    "hours",
    "lockouts",
    "rules",
    "sync",
    "tokens",
    "users",
]
