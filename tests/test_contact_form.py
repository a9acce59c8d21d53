"""The contact form: duplicate numbers shown, numbers shared with another contact named, extensions refused,
owner defaulting to the creator, rows added without a save, and the do-not-call rule."""

from __future__ import annotations

import pytest

from calls.models import Contact, ContactPhone
from tests.test_contacts import phone_data

pytestmark = pytest.mark.django_db


def existing_rows(contact: Contact) -> list[dict]:
    return [
        {"id": str(p.pk), "label": p.label, "number": p.number, **({"is_primary": "on"} if p.is_primary else {})}
        for p in contact.phones.order_by("pk")
    ]


def test_adding_a_number_the_contact_already_has_shows_the_error(agent_client, contact):
    rows = [*existing_rows(contact), {"label": "home", "number": "020 7946 0123"}]
    response = agent_client.post(f"/contacts/{contact.pk}/edit/", {"name": contact.name} | phone_data(*rows, initial=2))
    assert response.status_code == 200
    assert "This contact already has 020 7946 0123." in response.content.decode()
    assert contact.phones.count() == 2


def test_a_number_already_on_another_contact_is_saved_with_a_warning_naming_that_contact(agent_client, contact):
    data = {"name": "Second Person"} | phone_data({"label": "work", "number": "020 7946 0123", "is_primary": "on"})
    response = agent_client.post("/contacts/new/", data, follow=True)
    assert "020 7946 0123 is also a number of Grace Hopper (Cobalt Dental)." in response.content.decode()
    assert Contact.objects.get(name="Second Person").phones.get().number == "+442079460123"


def test_the_warning_shows_in_the_form_when_something_else_is_wrong(agent_client, contact):
    data = {"name": ""} | phone_data({"label": "work", "number": "020 7946 0123"})
    response = agent_client.post("/contacts/new/", data)
    assert "Also a number of Grace Hopper (Cobalt Dental)." in response.content.decode()


@pytest.mark.parametrize("typed", ["020 7946 0100 ext 22", "020 7946 0100 x22", "+44 20 7946 0100 ext. 22"])
def test_an_extension_is_refused_with_a_message_not_dropped(agent_client, typed):
    data = {"name": "Extension Person"} | phone_data({"label": "work", "number": typed})
    response = agent_client.post("/contacts/new/", data)
    assert response.status_code == 200
    assert "has an extension (22), which VCC cannot dial" in response.content.decode()
    assert not Contact.objects.filter(name="Extension Person").exists()


def test_the_owner_defaults_to_the_person_creating(agent_client, agent_user, supervisor_user):
    page = agent_client.get("/contacts/new/")
    assert page.context["form"]["owner"].value() == agent_user.pk
    edit = agent_client.get(f"/contacts/{Contact.objects.create(name='Unowned').pk}/edit/")
    assert edit.context["form"]["owner"].value() is None  # an existing contact keeps what it has


def test_the_form_can_add_number_rows_without_saving(agent_client):
    page = agent_client.get("/contacts/new/").content.decode()
    assert 'id="phone-row-template"' in page and "phones-__prefix__-number" in page
    assert "data-add-phone" in page
    # Three rows sent at once (two added in the browser) are all saved.
    rows = [
        {"label": "mobile", "number": "07400 123001", "is_primary": "on"},
        {"label": "work", "number": "020 7946 0201"},
        {"label": "home", "number": "020 7946 0202"},
    ]
    assert agent_client.post("/contacts/new/", {"name": "Three Numbers"} | phone_data(*rows)).status_code == 302
    assert Contact.objects.get(name="Three Numbers").phones.count() == 3


def test_empty_added_rows_are_ignored(agent_client):
    rows = [{"label": "mobile", "number": "07400 123002"}, {"label": "mobile", "number": ""}]
    assert agent_client.post("/contacts/new/", {"name": "One Number"} | phone_data(*rows)).status_code == 302
    assert ContactPhone.objects.filter(contact__name="One Number").count() == 1


def test_a_supervisor_may_clear_and_anyone_may_mark(supervisor_client, agent_client):
    contact = Contact.objects.create(name="Marked", do_not_call=True)
    cleared = {"name": "Marked", "dnc_reason": "Opted back in by email"} | phone_data()  # clearing says why
    assert supervisor_client.post(f"/contacts/{contact.pk}/edit/", cleared).status_code == 302
    contact.refresh_from_db()
    assert not contact.do_not_call
    data = {"name": "Marked", "do_not_call": "on"} | phone_data()
    assert agent_client.post(f"/contacts/{contact.pk}/edit/", data).status_code == 302
    contact.refresh_from_db()
    assert contact.do_not_call


def test_the_list_hides_email_on_phones_and_long_names_wrap(agent_client):
    Contact.objects.create(name="A" * 162, email="someone.with.a.long.address@example.com")
    page = agent_client.get("/contacts/").content.decode()
    assert 'class="col-email hide-sm"' in page
    css = (__import__("pathlib").Path(__file__).parent.parent / "static/css/app.css").read_text()
    assert ".list td.hide-sm" in css and "overflow-wrap: anywhere" in css


def test_a_new_number_left_with_the_default_label_is_labelled_as_what_it_is(agent_client):
    rows = [
        {"label": "mobile", "number": "020 7946 0301", "is_primary": "on"},  # the default, untouched: a landline
        {"label": "mobile", "number": "07400 123301"},
        {"label": "home", "number": "020 7946 0302"},  # chosen: kept
        {"label": "mobile", "number": "+1 312 555 0100"},  # the number does not say: kept
    ]
    assert agent_client.post("/contacts/new/", {"name": "Labelled"} | phone_data(*rows)).status_code == 302
    labels = dict(ContactPhone.objects.filter(contact__name="Labelled").values_list("number", "label"))
    assert labels == {
        "+442079460301": "work",
        "+447400123301": "mobile",
        "+442079460302": "home",
        "+13125550100": "mobile",
    }


def test_an_existing_numbers_label_is_left_as_it_was(agent_client, contact):
    phone = contact.phones.get(number="+442079460123")
    ContactPhone.objects.filter(pk=phone.pk).update(label="mobile")
    rows = existing_rows(contact)
    response = agent_client.post(f"/contacts/{contact.pk}/edit/", {"name": contact.name} | phone_data(*rows, initial=2))
    assert response.status_code == 302
    phone.refresh_from_db()
    assert phone.label == "mobile"
