from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from calls import phones
from calls.models import Contact


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("020 7946 0100", "+442079460100"),
        ("(020) 7946-0100", "+442079460100"),
        ("+44 20 7946 0100", "+442079460100"),
        ("0044 20 7946 0100", "+442079460100"),
        ("07400 123456", "+447400123456"),
        ("+1 (312) 555-0100", "+13125550100"),
    ],
)
def test_it_reads_national_and_international_formats(raw, e164):
    assert phones.to_e164(raw) == e164


def test_it_reads_national_numbers_in_the_configured_region(settings):
    settings.DEFAULT_PHONE_REGION = "US"
    assert phones.to_e164("(312) 555-0100") == "+13125550100"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter a phone number."),
        ("call me", "is not a phone number"),
        ("020 7946", "is not a valid phone number"),
        ("+44 1234", "is not a valid phone number"),
        ("1" * 41, "at most 40 characters"),
    ],
)
def test_it_refuses_what_is_not_a_valid_number_saying_why(raw, message):
    with pytest.raises(ValidationError) as excinfo:
        phones.to_e164(raw)
    assert message in " ".join(excinfo.value.messages)


@pytest.mark.parametrize(
    ("typed", "prefix"),
    [("+44 (0)20 7946", "+44207946"), ("+44(0)207946", "+44207946"), ("0044 (0) 20 7946", "+44207946")],
)
def test_a_search_drops_the_trunk_zero_in_brackets_after_the_country_code(typed, prefix):
    assert phones.search_patterns(typed)[0] == [prefix]


def test_it_displays_home_numbers_nationally_and_others_internationally():
    assert phones.display("+442079460100") == "020 7946 0100"
    assert phones.display("+13125550100") == "+1 312-555-0100"


def test_it_names_the_kind_of_line():
    assert phones.number_type("+447400123456") == "mobile"
    assert phones.number_type("+442079460100") == "landline"
    assert phones.number_type("+18005550100") == "toll-free"


def test_a_number_that_may_be_either_gets_no_kind_rather_than_jargon():
    assert phones.number_type("+13125550100") == ""  # US: a mobile or a landline, the number does not say
    assert phones.label_for("+13125550100") is None
    assert (phones.label_for("+447400123456"), phones.label_for("+442079460100")) == ("mobile", "work")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["+44 20 7946 0123", "020 7946 0123", "(020) 7946-0123", "02079460123", "7946 0123", "+442079460123"]
)
def test_search_finds_a_contact_by_number_in_any_format(contact, query):
    Contact.objects.create(name="Somebody Else")
    assert list(Contact.objects.search(query)) == [contact]


@pytest.mark.django_db
def test_search_lists_a_contact_once_when_two_numbers_match(contact):
    assert all("0123" in p.number for p in contact.phones.all())
    assert list(Contact.objects.search("0123")) == [contact]


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["grace", "COBALT", "grace@example"])
def test_search_finds_by_name_company_and_email(contact, query):
    assert list(Contact.objects.search(query)) == [contact]
