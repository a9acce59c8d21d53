"""calls/privacy/masking.py's own reading of a number's area code, held equal to phonenumbers' over the numbers its
metadata gives as examples: each region's, of each type, and the non-geographic services', each with some of its
digits changed too, so that a library update that changes the rules fails here, naming the function."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from calls.privacy import masking
from calls.privacy.masking import mask_number


def example_numbers() -> list[phonenumbers.PhoneNumber]:
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in sorted(set(vars(phonenumbers.PhoneNumberType).values()) - {None}, key=str):
            if isinstance(kind, int) and (number := phonenumbers.example_number_for_type(region, kind)) is not None:
                found.append(number)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        if (number := phonenumbers.example_number_for_non_geo_entity(code)) is not None:
            found.append(number)
    return found


def varied(number: phonenumbers.PhoneNumber, rng: random.Random) -> list[phonenumbers.PhoneNumber]:
    """The number, and the same with its last digits, then its middle digits, drawn at random."""
    national = phonenumbers.national_significant_number(number)
    out = [number]
    for start in (max(1, len(national) - 4), max(1, len(national) // 2)):
        digits = national[:start] + "".join(rng.choice("0123456789") for _ in national[start:])
        out.append(phonenumbers.parse(f"+{number.country_code}{digits}", None))
    return out


def test_the_area_code_found_once_is_the_librarys_for_every_regions_numbers() -> None:
    rng = random.Random(21)
    numbers = [n for example in example_numbers() for n in varied(example, rng)]
    assert len(numbers) > 2000  # every region's examples, not a handful
    differ, lengths = [], set()
    for parsed in numbers:
        shown = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        ours, theirs = masking._area_length(parsed, shown), phonenumbers.length_of_geographical_area_code(parsed)
        lengths.add(ours)
        if ours != theirs:
            differ.append((shown, ours, theirs))
    assert differ == [], "calls.privacy.masking._area_length no longer agrees with phonenumbers"
    assert {0, 2, 3, 4} <= lengths  # area codes of several lengths were found, and numbers with none


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+442079460100", "+44 20 •••• •100"),  # a fixed line: its area code, a place, stays
        ("+525512345678", "+52 55 •••• •678"),  # Mexico: no national prefix, yet area codes (the library's rule)
        ("+8613912345678", "+86 ••• •••• •678"),  # a Chinese mobile: no area code
        ("+541123456789", "+54 11 ••••-•789"),  # Buenos Aires
        ("+390612345678", "+39 06 •••• •678"),  # Italy's leading zero
    ],
)
def test_masks_across_the_rules(number: str, masked: str) -> None:
    mask_number.cache_clear()
    assert mask_number(number) == masked
