"""No deletion undoes an opt-out: deleting a contact keeps its do-not-call numbers blocked, as erasing does; clearing
a number's do-not-call (with the reason the form asks) is what lifts it."""

from __future__ import annotations

from calls.models import Contact, ContactPhone
from calls.privacy import erased_do_not_call
from tests.conftest import create_contact

MOBILE, WORK = "+447400123456", "+442079460123"  # create_contact's numbers


def test_deleting_a_contact_keeps_its_do_not_call_numbers_blocked_for_the_next_contact(supervisor_client):
    contact = create_contact()
    ContactPhone.objects.filter(contact=contact, number=WORK).update(do_not_call=True)
    assert "do-not-call numbers stay blocked" in supervisor_client.get(f"/contacts/{contact.pk}/delete/").text
    assert supervisor_client.post(f"/contacts/{contact.pk}/delete/").status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert erased_do_not_call(WORK) and not erased_do_not_call(MOBILE)

    again = Contact.objects.create(name="Grace Hopper")
    work = ContactPhone.objects.create(contact=again, number=WORK)
    mobile = ContactPhone.objects.create(contact=again, number=MOBILE)
    assert work.do_not_call and not mobile.do_not_call  # re-added: do-not-call at once


def test_a_contact_do_not_call_as_a_whole_keeps_every_number(db):
    contact = create_contact()
    Contact.objects.filter(pk=contact.pk).update(do_not_call=True)
    Contact.objects.filter(pk=contact.pk).delete()  # any path of the ORM: a bulk delete too
    assert erased_do_not_call(WORK) and erased_do_not_call(MOBILE)


def test_deleting_a_contact_that_called_nobody_off_keeps_nothing(db):
    create_contact().delete()
    assert not erased_do_not_call(WORK) and not erased_do_not_call(MOBILE)


def test_clearing_the_re_added_numbers_do_not_call_lifts_the_kept_opt_out(db):
    contact = create_contact()
    ContactPhone.objects.filter(contact=contact, number=WORK).update(do_not_call=True)
    contact.delete()
    work = ContactPhone.objects.create(contact=Contact.objects.create(name="Grace"), number=WORK)
    assert work.do_not_call

    work.label = "office"
    work.save()  # saved still do-not-call: kept
    assert erased_do_not_call(WORK)
    work.do_not_call = False
    work.save()  # the contact's form does this once a supervisor gives the reason
    assert not erased_do_not_call(WORK)
    assert not ContactPhone.objects.create(contact=Contact.objects.create(name="Ada"), number=WORK).do_not_call
