"""A called number masked for the call log: its country code, then its digits grouped as its international format
groups them, each hidden behind a bullet except the last three (+44 20 7946 0100 becomes +44 •• •••• •100). A masked
number holds none of its hidden digits, so no search by number finds it by them."""

from __future__ import annotations

import functools

import phonenumbers

from calls.phones import MASK

KEEP_LAST = 3


def is_masked(number: str) -> bool:
    return MASK in number


@functools.lru_cache(maxsize=65536)  # a call log calls the same numbers again and again: retention masks millions
def mask_number(number: str) -> str:
    """number (E.164, or any text) masked; one already masked, or empty, as it is. Text that is not a phone
    number keeps its last three digits and nothing else."""
    if not number or is_masked(number):
        return number
    try:
        parsed = phonenumbers.parse(number, None)
        shown = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        country = f"+{parsed.country_code}"
    except phonenumbers.NumberParseException:
        shown, country = number, ""
    if not shown.startswith(country):  # the format always starts with it; never keep digits it would not hide
        shown, country = number, ""
    rest = shown[len(country) :]
    hidden = sum(c.isdigit() for c in rest) - KEEP_LAST
    out = []
    for c in rest:
        if c.isdigit():
            out.append(MASK if hidden > 0 else c)
            hidden -= 1
        else:
            out.append(c)
    return country + "".join(out)
