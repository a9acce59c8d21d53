"""Two people editing one contact: a save over a save made since the form was opened is refused once, keeping what
was typed, and never writes over the other person's change without their knowing."""

from __future__ import annotations

import pytest

from calls.models import Contact
from tests.test_contact_form import existing_rows
from tests.test_contacts import phone_data

pytestmark = pytest.mark.django_db


def opened(client, contact: Contact) -> str:
    """The version the edit page was opened at."""
    page = client.get(f"/contacts/{contact.pk}/edit/")
    assert page.status_code == 200
    return page.context["form"]["version"].value()


def edit(client, contact: Contact, version: str, **fields: str):
    rows = existing_rows(contact)
    data = {"name": contact.name, "company": contact.company, "email": contact.email, "notes": contact.notes}
    return client.post(
        f"/contacts/{contact.pk}/edit/", data | fields | {"version": version} | phone_data(*rows, initial=len(rows))
    )


def test_a_save_over_someone_elses_since_the_form_opened_is_refused_once(agent_client, supervisor_client, contact):
    mine, theirs = opened(agent_client, contact), opened(supervisor_client, contact)
    assert mine == theirs
    assert edit(supervisor_client, contact, theirs, notes="Prefers mornings").status_code == 302
    response = edit(agent_client, contact, mine, company="Cobalt Dental Ltd")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Someone else saved this contact after you opened it, so your changes were not saved." in page
    assert 'value="Cobalt Dental Ltd"' in page  # what they typed is kept
    contact.refresh_from_db()
    assert (contact.company, contact.notes) == ("Cobalt Dental", "Prefers mornings")  # nothing lost
    # Saving again, having been told, saves: the page carried the new version.
    again = response.context["form"]["version"].value()
    assert again != mine
    assert edit(agent_client, contact, again, company="Cobalt Dental Ltd").status_code == 302
    contact.refresh_from_db()
    assert contact.company == "Cobalt Dental Ltd"


def test_a_change_to_a_number_since_the_form_opened_counts_too(agent_client, contact):
    version = opened(agent_client, contact)
    contact.phones.filter(label="work").update(label="home")
    assert edit(agent_client, contact, version, notes="x").status_code == 200
    contact.refresh_from_db()
    assert contact.notes == "" and contact.phones.filter(label="home").exists()


def test_saves_one_after_the_other_and_a_form_without_a_version_are_not_refused(agent_client, contact):
    assert edit(agent_client, contact, opened(agent_client, contact), notes="one").status_code == 302
    assert edit(agent_client, contact, opened(agent_client, contact), notes="two").status_code == 302
    assert edit(agent_client, contact, "", notes="three").status_code == 302  # an old page, or the API's form
    contact.refresh_from_db()
    assert contact.notes == "three"


def test_a_contact_deleted_since_the_form_opened_is_not_saved_again(agent_client, contact, monkeypatch):
    from calls.forms import contacts as contact_forms

    version = opened(agent_client, contact)
    real = contact_forms.ContactForm.overtaken

    def deleted_first(form):
        Contact.objects.filter(pk=form.instance.pk).delete()
        return real(form)

    monkeypatch.setattr(contact_forms.ContactForm, "overtaken", deleted_first)
    response = edit(agent_client, contact, version, notes="x")
    assert "This contact was deleted after you opened it: nothing was saved." in response.content.decode()
    assert not Contact.objects.filter(pk=contact.pk).exists()
