"""Phone numbers: parse what people type into E.164, and build search terms that find a number in any format."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError

MAX_INPUT = 40


def to_e164(raw: str, region: str | None = None) -> str:
    """Return the E.164 form of raw, read in the national format of region, or raise ValidationError."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError("Enter a phone number.", code="required")
    if len(text) > MAX_INPUT:
        raise ValidationError(f"A phone number has at most {MAX_INPUT} characters.", code="too_long")
    region = (region or settings.DEFAULT_PHONE_REGION).upper()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            "%(value)s is not a phone number. Use international format (+44 20 7946 0100) or a %(region)s number.",
            code="unparseable",
            params={"value": text, "region": region},
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            "%(value)s is not a valid phone number: check the digits and the country code.",
            code="invalid",
            params={"value": text},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display(e164: str) -> str:
    """Format an E.164 number for people: national format at home, international elsewhere."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    home = phonenumbers.country_code_for_region(settings.DEFAULT_PHONE_REGION)
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == home
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, fmt)


def number_type(e164: str) -> str:
    """Name the kind of line: mobile, landline, toll-free, premium rate, ..."""
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return "unknown"
    names = {
        phonenumbers.PhoneNumberType.MOBILE: "mobile",
        phonenumbers.PhoneNumberType.FIXED_LINE: "landline",
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline or mobile",
        phonenumbers.PhoneNumberType.TOLL_FREE: "toll-free",
        phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium rate",
        phonenumbers.PhoneNumberType.SHARED_COST: "shared cost",
        phonenumbers.PhoneNumberType.VOIP: "VoIP",
        phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal",
        phonenumbers.PhoneNumberType.UAN: "UAN",
    }
    return names.get(kind, "unknown")


def search_fragments(query: str, region: str | None = None) -> list[str]:
    """Digit strings that an E.164 number must contain to match query, whatever format query was typed in.

    "+44 20 7946 0100", "020 7946 0100", "(020) 7946-0100" and "7946 0100" all find +442079460100.
    Returns [] when the query does not look like a number (fewer than 3 digits).
    """
    digits = re.sub(r"\D", "", query)
    if len(digits) < 3:
        return []
    fragments = {digits}
    if digits.startswith("00"):
        fragments = {digits[2:]}
    elif digits.startswith("0"):
        # A national number typed with its trunk prefix: the rest follows the country code.
        fragments = {digits[1:]}
    try:
        number = phonenumbers.parse(query, (region or settings.DEFAULT_PHONE_REGION).upper())
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_valid_number(number):
        fragments.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:])
    return sorted(fragments)


def country(e164: str) -> str | None:
    """The ISO country (region) code of an E.164 number, such as GB; None for numbers of no country."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return region if region and region != "001" else None
