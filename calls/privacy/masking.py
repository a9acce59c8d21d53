"""A called number masked for the call log: its country code and, for a fixed line, its geographic area code (a
place, not a person), then its other digits grouped as its international format groups them, each hidden behind a
bullet except the last three (+44 20 7946 0100 becomes +44 20 •••• •100, the mobile +44 7400 123456 becomes
+44 •••• •••456). A masked number holds none of its hidden digits, so no search by number finds it by them."""

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
        area = phonenumbers.length_of_geographical_area_code(parsed)  # 0 for mobiles and non-geographic numbers
    except phonenumbers.NumberParseException:
        shown, country, area = number, "", 0
    if not shown.startswith(country):  # the format always starts with it; never keep digits it would not hide
        shown, country = number, ""
    rest = shown[len(country) :]
    digits = sum(c.isdigit() for c in rest)
    if area and digits - area < KEEP_LAST + 4:  # too short to keep both: keep no area code
        area = 0
    out = []
    seen = 0
    for c in rest:
        if c.isdigit():
            seen += 1
            out.append(c if seen <= area or seen > digits - KEEP_LAST else MASK)
        else:
            out.append(c)
    return country + "".join(out)
