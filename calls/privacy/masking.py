"""A called number masked for the call log: its country code and, for a fixed line, its geographic area code (a
place, not a person), then its other digits grouped as its international format groups them, each hidden behind a
bullet except the last three (+44 20 7946 0100 becomes +44 20 •••• •100, the mobile +44 7400 123456 becomes
+44 •••• •••456). A masked number holds none of its hidden digits, so no search by number finds it by them.

Retention masks millions of numbers, one by one in Python, beside PostgreSQL writing them: a mask's time is the
pass's (bench/retention_bench.py). phonenumbers keeps its compiled patterns (`enable_pattern_cache`: Python's own
cache holds 512, fewer than its metadata has, so it compiled them again and again), and the area code's length is
found from the number as already formatted, its region and type found once (`_area_length`).
"""

from __future__ import annotations

import functools
import re

import phonenumbers

from calls.phones import MASK

phonenumbers.enable_pattern_cache()

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
        area = _area_length(parsed, shown)  # 0 for mobiles and non-geographic numbers
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


_NON_DIGITS = re.compile(r"\D+")


def _area_length(parsed: phonenumbers.PhoneNumber, shown: str) -> int:
    """phonenumbers.length_of_geographical_area_code(parsed), `shown` being parsed in the international format. The
    library finds the number's region and type again for each of its steps and formats it a second time (a mask
    took 119 to 130 µs of CPU on a 2-core machine, 73 to 104 µs this way with the patterns kept). A number of no
    geographic type has none; the cases its rules single out by country (a closed dialling plan, a mobile with an
    area code) and an extension the library answers itself. tests/test_privacy_masking.py holds the two equal over
    every region's example numbers of every type."""
    kind = phonenumbers.number_type(parsed)  # UNKNOWN where no region's metadata knows the number
    if not phonenumbers.is_number_type_geographical(kind, parsed.country_code or 0):
        return 0
    region = phonenumbers.region_code_for_number(parsed)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None) if region else None
    mobile = kind == phonenumbers.PhoneNumberType.MOBILE
    if metadata is None or metadata.national_prefix is None or parsed.extension is not None or mobile:
        return int(phonenumbers.length_of_geographical_area_code(parsed))
    groups = _NON_DIGITS.split(shown)  # "", country code, area code, …: the area code is the first of the rest
    return len(groups[2]) if len(groups) > 3 else 0
