"""What a page link's cursor may hold: values PostgreSQL can store and compare, checked when the link is read.

A cursor comes back from the browser, so anyone can change it. A NUL or a lone surrogate in a string, an integer
beyond 64 bits or a time outside years 1 to 9999 passes Python's checks and fails in the database (DataError,
UnicodeEncodeError, OverflowError): a 500 where a 400 belongs. The forms that read cursors (calls/forms.py) ask
these before accepting one.
"""

from __future__ import annotations

from datetime import UTC, datetime

BIGINT = range(-(2**63), 2**63)


def is_bigint(value: object) -> bool:
    """An int (not a bool) that fits PostgreSQL's bigint."""
    return type(value) is int and value in BIGINT


def is_text(value: object) -> bool:
    """A str PostgreSQL can store: no NUL, and UTF-8 encodable (no lone surrogates)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def moment(value: object) -> datetime | None:
    """The aware datetime an ISO 8601 string with an offset stands for, if it is one that exists in UTC."""
    if not is_text(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)  # type: ignore[arg-type]
        if parsed.tzinfo is None:
            return None
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
