"""The forms, one module per area; `from calls.forms import ContactForm` works for every name below.

Every POST, and every query parameter that selects something, is read by a form: a malformed value is a message
and a 400, never a 500.

- contacts: a contact with its numbers, and the contact list's search, sort, filters and page
- calling: the click, the dial preview, the recording, the wrap-up (and `first_error`, one sentence for a 400)
- calllog: the call log's filters, sorts and page cursors, and a contact's timeline page
- reports: the reports' period, agent and group
- imports: the steps of a contact import
"""

from __future__ import annotations

from calls.forms.calling import (
    OUT_OF_DATE,
    ClickForm,
    DialPreviewForm,
    NumberClickForm,
    PkListField,
    RecordingForm,
    WrapUpForm,
    first_error,
)
from calls.forms.calllog import CURSOR, NONE, SORTS, CallLogFilter, TimelineForm
from calls.forms.contacts import (
    MARK_HELP,
    MAX_PHONES_PER_CONTACT,
    ONLY_SUPERVISORS,
    BaseContactPhoneFormSet,
    ContactForm,
    ContactListForm,
    ContactPhoneForm,
    ContactPhoneFormSet,
    encode_cursor,
)
from calls.forms.imports import SKIP, UPDATE, ImportConfirmForm, ImportFixForm, ImportMappingForm, ImportUploadForm
from calls.forms.reports import ReportFilter

__all__ = [
    "CURSOR",
    "MARK_HELP",
    "MAX_PHONES_PER_CONTACT",
    "NONE",
    "ONLY_SUPERVISORS",
    "OUT_OF_DATE",
    "SKIP",
    "SORTS",
    "UPDATE",
    "BaseContactPhoneFormSet",
    "CallLogFilter",
    "ClickForm",
    "ContactForm",
    "ContactListForm",
    "ContactPhoneForm",
    "ContactPhoneFormSet",
    "DialPreviewForm",
    "ImportConfirmForm",
    "ImportFixForm",
    "ImportMappingForm",
    "ImportUploadForm",
    "NumberClickForm",
    "PkListField",
    "RecordingForm",
    "ReportFilter",
    "TimelineForm",
    "WrapUpForm",
    "encode_cursor",
    "first_error",
]
