"""The caller ID admin: any format in, E.164 stored; one-step default; deactivation instead of deletion; usage."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from calls.models import Agent, Call, CallbackNumber

pytestmark = pytest.mark.django_db

URL = "/admin/calls/callbacknumber/"


def form(**values: object) -> dict[str, object]:
    return {"label": "Leeds", "is_active": "on", **values}


@pytest.mark.parametrize("typed", ["0113 496 0000", "+44 113 496 0000", "(0113) 4960000", "00441134960000"])
def test_it_accepts_any_format_and_stores_e164(admin_role_client, typed):
    response = admin_role_client.post(f"{URL}add/", form(number=typed))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert CallbackNumber.objects.get().number == "+441134960000"


def test_it_explains_a_number_it_cannot_read(admin_role_client):
    response = admin_role_client.post(f"{URL}add/", form(number="0113 496"))
    assert response.status_code == 200
    assert "not a valid phone number" in response.content.decode()
    assert not CallbackNumber.objects.exists()


def test_it_refuses_a_number_already_configured_in_another_format(admin_role_client, london):
    response = admin_role_client.post(f"{URL}add/", form(number="020 7946 0100"))
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_it_shows_numbers_in_national_form(admin_role_client, london):
    list_page = admin_role_client.get(URL).content.decode()
    change_page = admin_role_client.get(f"{URL}{london.pk}/change/").content.decode()
    assert "020\u00a07946\u00a00100" in list_page
    assert 'value="020 7946 0100"' in change_page


def test_its_page_shows_the_number_as_vcc_lists_it_read_only(admin_role_client, london):
    before = admin_role_client.get(f"{URL}{london.pk}/change/").content.decode()
    london.vcc_clid = "02079460100"
    london.save()
    page = admin_role_client.get(f"{URL}{london.pk}/change/").content.decode()

    assert "the sync from VCC has not read this number, so calls send +442079460100" in before
    assert "02079460100: sent to VCC as the presented CLID, exactly as VCC lists it" in page
    assert 'name="vcc_clid"' not in page


def test_changing_the_number_forgets_vccs_form_of_the_old_one(admin_role_client, london):
    london.vcc_clid = "02079460100"
    london.save()
    same = form(number="020 7946 0100", label=london.label)
    assert admin_role_client.post(f"{URL}{london.pk}/change/", same).status_code == 302
    london.refresh_from_db()
    assert london.vcc_clid == "02079460100"  # the same number typed another way: VCC's form still holds

    response = admin_role_client.post(f"{URL}{london.pk}/change/", form(number="0113 496 0000", label="Leeds"))

    assert response.status_code == 302
    london.refresh_from_db()
    assert london.number == "+441134960000"
    assert london.vcc_clid == ""
    assert london.presented_clid == "+441134960000"


def test_ticking_default_on_another_number_swaps_it_in_one_save(admin_role_client, london, manchester):
    values = form(number=manchester.number, label=manchester.label, is_default="on", allowed_groups=[])
    response = admin_role_client.post(f"{URL}{manchester.pk}/change/", values)
    assert response.status_code == 302
    assert list(CallbackNumber.objects.filter(is_default=True)) == [manchester]


def test_the_make_default_action_swaps_the_default(admin_role_client, london, manchester):
    manchester.is_active = False
    manchester.save()
    response = admin_role_client.post(URL, {"action": "make_default", "_selected_action": [manchester.pk]})
    assert response.status_code == 302
    manchester.refresh_from_db()
    london.refresh_from_db()
    assert manchester.is_default and manchester.is_active
    assert not london.is_default


def test_make_default_wants_exactly_one_number(admin_role_client, london, manchester):
    response = admin_role_client.post(
        URL, {"action": "make_default", "_selected_action": [london.pk, manchester.pk]}, follow=True
    )
    assert "Select exactly one number" in response.content.decode()
    assert CallbackNumber.objects.get(is_default=True) == london


def call_presenting(number: CallbackNumber, user, **extra) -> Call:
    return Call.objects.create(
        created_by=user, to_number="+447400123456", presented_clid=number.number, state="ended", **extra
    )


def test_a_number_in_use_is_deactivated_not_deleted(admin_role_client, manchester, agent_user):
    call_presenting(manchester, agent_user)
    response = admin_role_client.post(
        URL, {"action": "delete_unused", "_selected_action": [manchester.pk]}, follow=True
    )
    manchester.refresh_from_db()
    assert not manchester.is_active
    assert "Deactivated instead of deleted" in response.content.decode()


def test_the_default_is_never_deleted(admin_role_client, london):
    response = admin_role_client.post(URL, {"action": "delete_unused", "_selected_action": [london.pk]}, follow=True)
    assert CallbackNumber.objects.filter(pk=london.pk, is_active=True).exists()
    assert "make another number the default first" in response.content.decode()


def test_an_unused_number_is_deleted_after_confirmation(admin_role_client, london, manchester):
    data = {"action": "delete_unused", "_selected_action": [manchester.pk]}
    confirm = admin_role_client.post(URL, data)
    assert confirm.status_code == 200
    assert "Are you sure" in confirm.content.decode()
    admin_role_client.post(URL, {**data, "post": "yes"})
    assert not CallbackNumber.objects.filter(pk=manchester.pk).exists()


def test_deleting_a_number_in_use_from_its_page_deactivates_it(admin_role_client, manchester, agent_user):
    Call.objects.create(created_by=agent_user, to_number="+447400123456", callback_number=manchester, state="failed")
    page = admin_role_client.get(f"{URL}{manchester.pk}/delete/")
    assert page.status_code == 302
    admin_role_client.post(f"{URL}{manchester.pk}/delete/", {"post": "yes"})
    manchester.refresh_from_db()
    assert not manchester.is_active


def test_deleting_the_default_from_its_page_is_refused(admin_role_client, london):
    response = admin_role_client.post(f"{URL}{london.pk}/delete/", {"post": "yes"}, follow=True)
    assert CallbackNumber.objects.filter(pk=london.pk, is_default=True, is_active=True).exists()
    assert "make another number the default first" in response.content.decode()


def test_the_default_cannot_be_deactivated_by_the_action(admin_role_client, london, manchester):
    admin_role_client.post(URL, {"action": "deactivate", "_selected_action": [london.pk, manchester.pk]})
    london.refresh_from_db()
    manchester.refresh_from_db()
    assert london.is_active and not manchester.is_active


def test_the_list_shows_how_often_and_when_each_number_was_presented(admin_role_client, london, manchester, agent_user):
    for _ in range(3):
        call_presenting(london, agent_user)
    Call.objects.create(created_by=agent_user, to_number="+447400123456", presented_clid=london.number, state="failed")
    page = admin_role_client.get(URL).content.decode()
    assert '<td class="field-presented">3 times, last ' in page
    assert '<td class="field-presented">never</td>' in page
    assert "Support" in page  # who may present Manchester


def queries_for(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_the_list_costs_the_same_queries_for_many_numbers(admin_role_client, london, agent_user):
    call_presenting(london, agent_user)
    queries_for(admin_role_client, URL)  # the session and permissions are cached from then on
    one = queries_for(admin_role_client, URL)
    for i in range(10):
        number = CallbackNumber.objects.create(number=f"+44113496000{i}", label=f"Leeds {i}")
        number.allowed_agents.add(agent_user.agent)
        number.vcc_listed_for.add(agent_user.agent)
        call_presenting(number, agent_user)
    assert queries_for(admin_role_client, URL) == one


def test_make_default_is_also_on_the_numbers_page(admin_role_client, london, manchester):
    page = admin_role_client.get(f"{URL}{manchester.pk}/change/").content.decode()
    assert 'value="make_default"' in page


def test_the_list_says_whom_vcc_lists_a_number_for(admin_role_client, london, manchester, agent_user):
    from django.utils import timezone

    london.vcc_listing_synced_at = timezone.now()
    london.save()
    london.vcc_listed_for.add(agent_user.agent)
    manchester.vcc_listing_synced_at = timezone.now()
    manchester.save()
    page = admin_role_client.get(URL).content.decode()
    assert "Alex Morgan" in page
    assert "nobody: no call can present it" in page


def test_local_presence_is_set_in_the_admin(admin_role_client):
    admin_role_client.post(f"{URL}add/", form(number="+1 312 555 0100", local_presence="on"))
    number = CallbackNumber.objects.get()
    assert number.local_presence
    assert number.country == "US"


def test_an_agent_cannot_use_the_caller_id_admin(agent_client, london):
    assert agent_client.get(URL).status_code == 302
    assert agent_client.post(URL, {"action": "make_default", "_selected_action": [london.pk]}).status_code == 302


# --- VCC's listing limits what is offered ---------------------------------------------------------


def listed_for(number: CallbackNumber, *agents: Agent) -> None:
    from django.utils import timezone

    number.vcc_listing_synced_at = timezone.now()
    number.save()
    number.vcc_listed_for.set(agents)


def test_before_any_sync_the_listing_is_not_checked(london, agent_user):
    assert set(CallbackNumber.objects.usable_by(agent=agent_user.agent)) == {london}


def test_a_number_vcc_does_not_list_for_an_agent_is_never_offered_to_them(london, agent_user, other_agent_user):
    listed_for(london, other_agent_user.agent)
    assert set(CallbackNumber.objects.usable_by(agent=agent_user.agent)) == set()
    assert set(CallbackNumber.objects.usable_by(agent=other_agent_user.agent)) == {london}


def test_vccs_listing_does_not_widen_a_local_restriction(manchester, agent_user, support):
    listed_for(manchester, agent_user.agent)
    assert set(CallbackNumber.objects.usable_by(agent=agent_user.agent)) == set()  # allowed to Support only
    support.members.add(agent_user.agent)
    assert set(CallbackNumber.objects.usable_by(agent=agent_user.agent)) == {manchester}


def test_a_group_call_is_offered_numbers_vcc_lists_for_a_member(london, sales, support, agent_user):
    listed_for(london, agent_user.agent)  # Alex is in Sales, not in Support
    assert set(CallbackNumber.objects.usable_by(groups=[sales])) == {london}
    assert set(CallbackNumber.objects.usable_by(groups=[support])) == set()
    assert set(CallbackNumber.objects.usable_by(groups=[support, sales])) == {london}


def test_numbers_vcc_lists_for_nobody_are_found(london, manchester, agent_user):
    listed_for(london, agent_user.agent)
    listed_for(manchester)
    assert list(CallbackNumber.objects.not_listed_by_vcc()) == [manchester]


def test_a_number_knows_its_country(london):
    assert london.country == "GB"
    assert CallbackNumber(number="+13125550100").country == "US"
    assert CallbackNumber(number="+80012345678").country is None


def test_the_default_and_numbers_in_use_have_no_delete_button(admin_role_client, london, manchester, agent_user):
    assert "deletelink" in admin_role_client.get(f"{URL}{manchester.pk}/change/").content.decode()
    call_presenting(manchester, agent_user)
    assert "deletelink" not in admin_role_client.get(f"{URL}{manchester.pk}/change/").content.decode()
    assert "deletelink" not in admin_role_client.get(f"{URL}{london.pk}/change/").content.decode()


def test_a_number_vcc_still_has_is_not_deleted_from_its_page_but_offered_deactivating(
    admin_role_client, london, manchester, agent_user
):
    listed_for(manchester, agent_user.agent)
    assert "deletelink" not in admin_role_client.get(f"{URL}{manchester.pk}/change/").content.decode()

    page = admin_role_client.get(f"{URL}{manchester.pk}/delete/", follow=True).content.decode()

    assert "VCC still has Manchester support (0161 496 0200), so the next sync from VCC would add it back" in page
    assert "untick “active” to stop offering it instead" in page
    admin_role_client.post(f"{URL}{manchester.pk}/delete/", {"post": "yes"})
    manchester.refresh_from_db()
    assert not manchester.is_active


def test_deleting_numbers_vcc_still_has_deactivates_them_and_deletes_the_others(
    admin_role_client, london, manchester, agent_user
):
    listed_for(manchester, agent_user.agent)
    gone = CallbackNumber.objects.create(number="+441134960000", label="Leeds")
    listed_for(gone)  # the last sync found VCC has it for nobody: deleted, it stays deleted
    data = {"action": "delete_unused", "_selected_action": [manchester.pk, gone.pk]}

    confirm = admin_role_client.post(URL, data, follow=True).content.decode()
    assert "because VCC still has them and the next sync from VCC would add them back" in confirm
    admin_role_client.post(URL, {**data, "post": "yes"})

    manchester.refresh_from_db()
    assert not manchester.is_active
    assert not CallbackNumber.objects.filter(pk=gone.pk).exists()


def test_a_number_the_sync_retired_says_so_and_is_the_admins_once_they_activate_it(admin_role_client, london):
    leeds = CallbackNumber.objects.create(number="+441134960000", label="Leeds", is_active=False, retired_by_sync=True)
    assert "retired by the sync: active again once VCC has it" in admin_role_client.get(URL).content.decode()

    response = admin_role_client.post(f"{URL}{leeds.pk}/change/", form(number=leeds.number))

    assert response.status_code == 302, response.content.decode()[:3000]
    leeds.refresh_from_db()
    assert leeds.is_active and not leeds.retired_by_sync


def test_a_number_of_no_country_cannot_be_local(admin_role_client):
    response = admin_role_client.post(f"{URL}add/", form(number="+800 1234 5678", local_presence="on"))
    assert "belongs to no country" in response.content.decode()


# --- Contact numbers in the admin take any format too ----------------------------------------------------


@pytest.mark.parametrize("typed", ["020 7946 0300", "+44 20 7946 0300", "(020) 79460300"])
def test_the_admin_stores_a_contact_number_typed_in_any_format_in_e164(admin_role_client, contact, typed):
    from calls.models import ContactPhone

    data = {"contact": contact.pk, "number": typed, "label": "work"}
    response = admin_role_client.post("/admin/calls/contactphone/add/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert ContactPhone.objects.filter(contact=contact, number="+442079460300").exists()


def test_the_admin_explains_a_contact_number_it_cannot_read(admin_role_client, contact):
    from calls.models import ContactPhone

    before = ContactPhone.objects.count()
    response = admin_role_client.post("/admin/calls/contactphone/add/", {"contact": contact.pk, "number": "020 79"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "not a valid phone number" in page and "Constraint" not in page
    assert ContactPhone.objects.count() == before


def test_deactivating_a_number_the_sync_retired_makes_it_the_admins(admin_role_client, london):
    """The action "Deactivate" on a number the sync retired keeps it inactive for good: the sync then no longer
    brings it back when VCC has it again."""
    leeds = CallbackNumber.objects.create(number="+441134960000", label="Leeds", is_active=False, retired_by_sync=True)

    response = admin_role_client.post(URL, {"action": "deactivate", "_selected_action": [leeds.pk]}, follow=True)

    leeds.refresh_from_db()
    assert not leeds.is_active and not leeds.retired_by_sync
    page = response.content.decode()
    assert "Made 1 number the sync had retired the admin&#x27;s" in page
    assert "already inactive" not in page
