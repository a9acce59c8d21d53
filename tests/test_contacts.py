from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from calls.models import Contact, ContactPhone
from calls.views.contacts import CONTACTS_PER_PAGE

pytestmark = pytest.mark.django_db


def phone_data(*rows: dict, prefix: str = "phones", initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{i}-{key}"] = value
    return data


# --- Anonymous and wrong method --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/", "/contacts/", "/contacts/new/", "/contacts/{pk}/", "/contacts/{pk}/edit/", "/contacts/{pk}/delete/"],
)
def test_every_page_needs_login(client, contact, url):
    response = client.get(url.format(pk=contact.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("url", ["/contacts/", "/contacts/{pk}/"])
def test_read_only_pages_refuse_post(agent_client, contact, url):
    assert agent_client.post(url.format(pk=contact.pk)).status_code == 405


def test_pages_refuse_other_methods(agent_client, contact):
    assert agent_client.put(f"/contacts/{contact.pk}/edit/").status_code == 405
    assert agent_client.delete(f"/contacts/{contact.pk}/delete/").status_code == 405


def test_a_user_without_a_role_is_refused(client, make_user, contact):
    client.force_login(make_user("norole"))
    assert client.get("/contacts/").status_code == 403
    assert client.get(f"/contacts/{contact.pk}/").status_code == 403


def test_an_unknown_contact_is_404(agent_client):
    assert agent_client.get("/contacts/999999/").status_code == 404


# --- Login ------------------------------------------------------------------------------------------


def test_logging_in_and_out(client, agent_user):
    from tests.conftest import PASSWORD

    response = client.post("/login/", {"username": "alex", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")  # Today: their callbacks and queues
    assert client.get("/").status_code == 200 and client.get("/contacts/").status_code == 200
    assert client.get("/logout/").status_code == 405  # logging out is a POST
    assert client.post("/logout/").status_code == 302
    assert client.get("/contacts/").status_code == 302


def test_a_wrong_password_says_so(client, agent_user):
    response = client.post("/login/", {"username": "alex", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content


def test_every_page_says_sandbox_and_carries_a_strict_csp(agent_client):
    response = agent_client.get("/contacts/")
    assert b"Sandbox" in response.content
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "unsafe-inline" not in csp
    assert b'hx-headers=\'{"X-CSRFToken": "' in response.content
    assert b"htmx" in response.content


# --- List and search -------------------------------------------------------------------------------


def test_the_list_shows_contacts_with_their_primary_number(agent_client, contact):
    response = agent_client.get("/contacts/")
    assert response.status_code == 200
    assert b"Grace Hopper" in response.content
    assert b"07400 123456" in response.content


def test_search_by_number_in_any_format(agent_client, contact):
    Contact.objects.create(name="Somebody Else")
    response = agent_client.get("/contacts/", {"q": "(020) 7946-0123"})
    assert b"Grace Hopper" in response.content
    assert b"Somebody Else" not in response.content


def test_search_as_you_type_returns_only_the_results_fragment(agent_client, contact):
    response = agent_client.get("/contacts/", {"q": "grace"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b'id="results"' in response.content
    assert b"<html" not in response.content
    assert b"Grace Hopper" in response.content


def test_search_with_no_match_says_what_to_try(agent_client, contact):
    response = agent_client.get("/contacts/", {"q": "zzz"})
    assert "No contact matches “zzz”".encode() in response.content


def test_the_list_pages_by_keyset_without_counting_and_with_a_constant_number_of_queries(
    agent_client, django_assert_max_num_queries
):
    for i in range(CONTACTS_PER_PAGE + 5):
        c = Contact.objects.create(name=f"Person {i:02d}")
        ContactPhone.objects.create(contact=c, number=f"+4420794601{i:02d}", is_primary=True)
    first = agent_client.get("/contacts/")
    assert len(first.context["contacts"]) == CONTACTS_PER_PAGE
    assert b"Next page" in first.content
    with CaptureQueriesContext(connection) as short_page:
        second = agent_client.get("/contacts/" + first.context["next_url"])
    assert [c.name for c in second.context["contacts"]] == [f"Person {i}" for i in range(25, 30)]
    assert second.context["next_url"] == ""
    assert b"First page" in second.content
    # session, user, permissions (2), contacts, their numbers, numbers blocked anywhere, agent
    with django_assert_max_num_queries(9):
        agent_client.get("/contacts/")
    with CaptureQueriesContext(connection) as full_page:
        agent_client.get("/contacts/")
    assert len(full_page) == len(short_page)  # 25 rows cost what 5 do
    assert not any("COUNT(" in q["sql"].upper() for q in full_page.captured_queries)


# --- Detail ----------------------------------------------------------------------------------------


def test_the_contact_page_shows_every_number(agent_client, contact):
    response = agent_client.get(f"/contacts/{contact.pk}/")
    assert response.status_code == 200
    assert b"07400 123456" in response.content
    assert b"020 7946 0123" in response.content
    assert b"+442079460123" in response.content


# --- Create, edit, delete --------------------------------------------------------------------------


def test_creating_a_contact_normalises_its_numbers(agent_client):
    data = {"name": "Ada Lovelace", "company": "Analytical", "email": "ada@example.com"}
    data |= phone_data({"label": "mobile", "number": "07400 654321"}, {"label": "work", "number": "+1 312 555 0100"})
    response = agent_client.post("/contacts/new/", data)
    contact = Contact.objects.get(name="Ada Lovelace")
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/{contact.pk}/"
    numbers = set(contact.phones.values_list("number", "is_primary"))
    assert numbers == {("+447400654321", True), ("+13125550100", False)}


def test_an_invalid_number_is_refused_and_nothing_is_lost(agent_client):
    data = {"name": "Ada Lovelace", "email": "ada@example.com"}
    data |= phone_data({"label": "mobile", "number": "020 7946"})
    response = agent_client.post("/contacts/new/", data)
    assert response.status_code == 200
    assert b"is not a valid phone number" in response.content
    assert b'value="020 7946"' in response.content
    assert b'value="Ada Lovelace"' in response.content
    assert not Contact.objects.exists()


def test_a_missing_name_is_refused(agent_client):
    response = agent_client.post("/contacts/new/", {"name": ""} | phone_data())
    assert response.status_code == 200
    assert b"This field is required" in response.content


def test_two_primaries_are_refused(agent_client):
    data = {"name": "Two Primaries"} | phone_data(
        {"label": "mobile", "number": "07400 654321", "is_primary": "on"},
        {"label": "work", "number": "020 7946 0100", "is_primary": "on"},
    )
    response = agent_client.post("/contacts/new/", data)
    assert b"Only one number can be primary" in response.content


def test_the_same_number_twice_is_refused(agent_client):
    data = {"name": "Twice"} | phone_data(
        {"label": "mobile", "number": "020 7946 0100"}, {"label": "work", "number": "+44 20 7946 0100"}
    )
    response = agent_client.post("/contacts/new/", data)
    assert b"is listed twice" in response.content


def test_editing_moves_the_primary_flag_and_removes_a_number(agent_client, contact):
    mobile, work = contact.phones.order_by("pk")
    data = {"name": "Grace B. Hopper", "company": "Cobalt Dental", "email": "grace@example.com"}
    data |= phone_data(
        {"id": str(mobile.pk), "label": "mobile", "number": mobile.number, "DELETE": "on"},
        {"id": str(work.pk), "label": "work", "number": work.number, "is_primary": "on"},
        initial=2,
    )
    response = agent_client.post(f"/contacts/{contact.pk}/edit/", data)
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.name == "Grace B. Hopper"
    assert list(contact.phones.values_list("number", "is_primary")) == [("+442079460123", True)]


def test_an_agent_cannot_delete_contacts(agent_client, contact):
    assert agent_client.get(f"/contacts/{contact.pk}/delete/").status_code == 403
    assert agent_client.post(f"/contacts/{contact.pk}/delete/").status_code == 403
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_a_supervisor_deletes_after_confirming(supervisor_client, contact):
    confirm = supervisor_client.get(f"/contacts/{contact.pk}/delete/")
    assert b"Delete Grace Hopper?" in confirm.content
    response = supervisor_client.post(f"/contacts/{contact.pk}/delete/")
    assert response.status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_posts_without_a_csrf_token_are_refused(client, agent_user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent_user)
    response = strict.post("/contacts/new/", {"name": "No token"} | phone_data())
    assert response.status_code == 403
    assert not Contact.objects.exists()


# --- Do-not-call is a supervisor's decision, wherever it is edited ----------------------------------


def dnc_contact() -> Contact:
    contact = Contact.objects.create(name="Blocked Person", do_not_call=True)
    ContactPhone.objects.create(contact=contact, number="+447400111222", is_primary=True, do_not_call=True)
    return contact


def edit_data(contact: Contact, **phone_overrides: str) -> dict:
    phone = contact.phones.get()
    row = {"id": str(phone.pk), "label": "mobile", "number": phone.number, "is_primary": "on"} | phone_overrides
    return {"name": contact.name} | phone_data(row, initial=1)


def test_an_agent_cannot_clear_do_not_call_by_editing_the_contact(agent_client):
    contact = dnc_contact()
    page = agent_client.get(f"/contacts/{contact.pk}/edit/")
    assert b"only a supervisor can clear it" in page.content
    response = agent_client.post(f"/contacts/{contact.pk}/edit/", edit_data(contact))  # both boxes left unticked
    assert response.status_code == 200
    assert b"This contact is marked do not call. Only a supervisor can clear do-not-call." in response.content
    assert b"This number is marked do not call. Only a supervisor can clear do-not-call." in response.content
    contact.refresh_from_db()
    assert contact.do_not_call
    assert contact.phones.get().do_not_call


def test_an_agent_may_mark_a_contact_and_a_number_do_not_call(agent_client, contact):
    mobile, work = contact.phones.order_by("pk")
    data = {"name": contact.name, "do_not_call": "on"} | phone_data(
        {"id": str(mobile.pk), "label": "mobile", "number": mobile.number, "is_primary": "on", "do_not_call": "on"},
        {"id": str(work.pk), "label": "work", "number": work.number},
        initial=2,
    )
    assert agent_client.post(f"/contacts/{contact.pk}/edit/", data).status_code == 302
    contact.refresh_from_db()
    mobile.refresh_from_db()
    assert contact.do_not_call and mobile.do_not_call


def test_an_agent_cannot_remove_or_renumber_a_do_not_call_number(agent_client):
    contact = dnc_contact()
    removed = agent_client.post(f"/contacts/{contact.pk}/edit/", edit_data(contact, DELETE="on"))
    assert b"is marked do not call. Only a supervisor can clear do-not-call." in removed.content
    renumbered = agent_client.post(f"/contacts/{contact.pk}/edit/", edit_data(contact, number="07400 111333"))
    assert b"This number is marked do not call." in renumbered.content
    assert contact.phones.get().number == "+447400111222"


def test_a_supervisor_can_clear_do_not_call(supervisor_client):
    contact = dnc_contact()
    refused = supervisor_client.post(f"/contacts/{contact.pk}/edit/", edit_data(contact))
    assert "Say why do-not-call is cleared" in refused.content.decode()  # a reason first
    response = supervisor_client.post(f"/contacts/{contact.pk}/edit/", edit_data(contact) | {"dnc_reason": "Wrong"})
    assert response.status_code == 302
    contact.refresh_from_db()
    assert not contact.do_not_call
    assert not contact.phones.get().do_not_call


def test_removing_the_primary_number_makes_the_next_one_primary(agent_client, contact):
    mobile, work = contact.phones.order_by("pk")
    data = {"name": contact.name} | phone_data(
        {"id": str(mobile.pk), "label": "mobile", "number": mobile.number, "is_primary": "on", "DELETE": "on"},
        {"id": str(work.pk), "label": "work", "number": work.number},
        initial=2,
    )
    assert agent_client.post(f"/contacts/{contact.pk}/edit/", data).status_code == 302
    assert list(contact.phones.values_list("number", "is_primary")) == [("+442079460123", True)]


# --- Pages and their fragments share URLs ----------------------------------------------------------


@pytest.mark.parametrize("url", ["/contacts/", "/contacts/{pk}/"])
def test_pages_vary_on_hx_request_so_caches_keep_pages_and_fragments_apart(agent_client, contact, url):
    assert "HX-Request" in agent_client.get(url.format(pk=contact.pk))["Vary"]


def test_a_history_restore_gets_the_whole_page(agent_client, contact):
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    response = agent_client.get("/contacts/", {"q": "grace"}, headers=headers)
    assert b"<html" in response.content


def test_the_list_disables_calling_a_number_that_is_do_not_call_anywhere(agent_client, contact):
    other = Contact.objects.create(name="Zed Elsewhere")
    ContactPhone.objects.create(contact=other, number=contact.primary_phone.number, do_not_call=True)
    response = agent_client.get("/contacts/", {"q": "grace"})
    assert b'name="call"' not in response.content
    assert b'title="Do not call"' in response.content


@pytest.mark.parametrize("marked", ["contact", "number"])
def test_the_list_disables_calling_a_contact_or_number_marked_do_not_call(agent_client, contact, marked):
    if marked == "contact":
        Contact.objects.filter(pk=contact.pk).update(do_not_call=True)
    else:
        ContactPhone.objects.filter(pk=contact.primary_phone.pk).update(do_not_call=True)
    response = agent_client.get("/contacts/", {"q": "grace"})
    assert b'name="call"' not in response.content
    assert b'title="Do not call"' in response.content


def test_a_contacts_time_zone_is_set_on_the_form_and_a_typo_says_what_to_fix(agent_client, contact):
    """Calling hours go by the contact's time zone when set (README, Calling hours): the form sets it, and a name
    the hours would not know is refused rather than silently ignored."""
    mobile, work = contact.phones.order_by("pk")
    data = {"name": contact.name, "time_zone": "America/New_Yrok"}
    data |= phone_data(
        {"id": str(mobile.pk), "label": "mobile", "number": mobile.number, "is_primary": "on"},
        {"id": str(work.pk), "label": "work", "number": work.number},
        initial=2,
    )
    refused = agent_client.post(f"/contacts/{contact.pk}/edit/", data)
    assert refused.status_code == 200
    assert "“America/New_Yrok” is not a time zone" in refused.content.decode()
    contact.refresh_from_db()
    assert contact.time_zone == ""

    saved = agent_client.post(f"/contacts/{contact.pk}/edit/", data | {"time_zone": "America/New_York"})
    assert saved.status_code == 302
    contact.refresh_from_db()
    assert contact.time_zone == "America/New_York"
    assert " in New York" in agent_client.get(f"/contacts/{contact.pk}/").content.decode()  # a London number
