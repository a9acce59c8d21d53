"""Privacy (issue 22): retention of personal data, erasure of a contact, and a subject's data.

- masking.py: a number masked as the call log keeps it (+44 20 •••• •100)
- hashing.py: the salted hash that keeps an erased contact's do-not-call numbers blocked
- retention.py: the periodic job that deletes call notes and masks numbers after the days admins set
- erasure.py: erase a contact, and every copy of their name, numbers, e-mail and notes
- subject.py: everything vccweb holds about one contact, as JSON and as a page
- audit.py: what erasure and retention ask of the audit trail (filled in by the audit trail's work)
"""

from __future__ import annotations

from calls.privacy.hashing import erased_do_not_call, number_digest
from calls.privacy.masking import is_masked, mask_number

__all__ = ["erased_do_not_call", "is_masked", "mask_number", "number_digest"]
