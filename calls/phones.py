"""Phone numbers: parse what people type into E.164, and build search terms that find a number in any format."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError

MAX_INPUT = 40
MASK = "\u2022"  # the bullet that hides a digit of a masked number (calls/privacy/masking.py)


def to_e164(raw: str, region: str | None = None, *, has_notes: bool = True) -> str:
    """Return the E.164 form of raw, read in the national format of region, or raise ValidationError.

    `has_notes`: what the number belongs to has notes that can keep an extension (a contact; not a caller ID)."""
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
    if number.extension:
        raise ValidationError(
            "%(value)s has an extension (%(ext)s), which VCC cannot dial: enter the number without it"
            + (" and put the extension in the notes." if has_notes else "."),
            code="extension",
            params={"value": text, "ext": number.extension},
        )
    # Most numbers are of the default region: checking that region alone is half the work of finding the region.
    home = phonenumbers.country_code_for_region(region) == number.country_code
    if not (home and phonenumbers.is_valid_number_for_region(number, region)) and not phonenumbers.is_valid_number(
        number
    ):
        raise ValidationError(
            "%(value)s is not a valid phone number: check the digits and the country code.",
            code="invalid",
            params={"value": text},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display(e164: str) -> str:
    """Format an E.164 number for people: national format at home, international elsewhere."""
    if MASK in e164:  # masked by retention or erasure (calls/privacy/masking.py): shown as it is
        return e164
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


_KINDS = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "landline",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll-free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared cost",
    phonenumbers.PhoneNumberType.VOIP: "internet phone",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal number",
    phonenumbers.PhoneNumberType.UAN: "company number",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}


def number_type(e164: str) -> str:
    """Name the kind of line in plain words (mobile, landline, toll-free, …), or "" when the number does not say:
    in the US and Canada any number may be a mobile or a landline, which is not worth showing anyone."""
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return ""
    return _KINDS.get(kind, "")


def undiallable(e164: str) -> str:
    """Why nobody may dial this number from vccweb, in words, or "": a premium-rate line (the account pays its
    charges), or a number that is not valid (stored before a check, or ranges withdrawn since)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        return "This is not a valid phone number, so VCC cannot call it: correct it on the contact's form."
    if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.PREMIUM_RATE:
        return "This is a premium-rate number, which vccweb does not call: ask the contact for another number."
    return ""


def label_for(e164: str) -> str | None:
    """The label a new number takes when nobody chose one: "mobile" for a mobile, "work" for a line of a place or
    a business (a landline, toll-free, …); None when the number does not say which."""
    kind = number_type(e164)
    if not kind or kind == "personal number":
        return None
    return "mobile" if kind == "mobile" else "work"


PHONE_LIKE = re.compile(r"^[\d\s()+\-./]+$")


def looks_like_number(query: str) -> bool:
    """Whether query is a phone number as people type one: digits, spaces, + ( ) - . / and at least 3 digits."""
    return bool(PHONE_LIKE.match(query)) and sum(c.isdigit() for c in query) >= 3


# "+44 (0)20 7946 0100", as letterheads write a number: the (0) is dialled only at home, and no stored number has it.
TRUNK_IN_BRACKETS = re.compile(r"^((?:\+|00)\s*[1-9][0-9]{0,3}[\s.-]*)\(0\)")


def search_patterns(query: str, region: str | None = None) -> tuple[list[str], list[str]]:
    """The E.164 prefixes and the endings that a stored number must start or end with to match query.

    A number matches from the start of its international form ("+44 20 7946", "0044 20", "44 20 7946", and
    "+44 (0)20 7946" as letterheads write it, the bracketed trunk zero dropped as to_e164 drops it), of its
    national form ("020 7946", "20 7946" in the default region), or at its end ("0100", "7946 0100"; digits that
    begin with 00 are tried both ways: "0044 20" and "0040899", the end of +447400040899); never in the middle,
    so "020" does not find a mobile that has "20" somewhere inside. Returns ([], []) when query has fewer than 3
    digits.
    """
    text = TRUNK_IN_BRACKETS.sub(r"\1", query.strip())
    digits = "".join(c for c in text if c.isdigit() and c.isascii())
    if len(digits) < 3:
        return [], []
    if text.startswith("+"):
        return [f"+{digits}"], []
    if digits.startswith("00"):
        # 0044 20 7946 is an international prefix; 0040899, the end of +447400040899. Both are tried.
        return [f"+{digits[2:]}"] if len(digits) > 2 else [], [digits]
    region = (region or settings.DEFAULT_PHONE_REGION).upper()
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    country = str(metadata.country_code) if metadata else ""
    trunk = (metadata.national_prefix or "") if metadata else ""
    prefixes = []
    if trunk and digits.startswith(trunk):
        prefixes.append(f"+{country}{digits[len(trunk) :]}")
    else:
        prefixes += [f"+{digits}", f"+{country}{digits}"] if country else [f"+{digits}"]
    return sorted(set(prefixes)), [digits]


def matches(e164: str, prefixes: list[str], endings: list[str]) -> bool:
    """Whether a stored number matches the patterns of `search_patterns`: the Python side of the search."""
    return any(e164.startswith(p) for p in prefixes) or any(e164.endswith(e) for e in endings)


def country(e164: str) -> str | None:
    """The ISO country (region) code of an E.164 number, such as GB; None for numbers of no country."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return region if region and region != "001" else None
