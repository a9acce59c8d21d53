"""What admins set for calls in the admin (calls/admin/rules.py, directory.py, callbacknumbers.py): values that the
calls they are meant for will use, or a message that says what to fix; and a group the call log needs is kept."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from calls import rules
from calls.calling import facts
from calls.models import Agent, AgentGroup, CallbackNumber, ConsentRule
from tests._calls import make_call

pytestmark = pytest.mark.django_db

CONSENT = "/admin/calls/consentrule/"


def test_a_consent_default_for_a_code_no_number_has_is_refused_saying_what_to_type(admin_role_client):
    """UK passes as two capitals, but numbers' country is GB: the default would never apply to a call."""
    response = admin_role_client.post(f"{CONSENT}add/", {"country": "UK", "consent": "TwoParty"})

    assert response.status_code == 200
    assert "UK is not a country code: use two letters, such as US or GB." in response.content.decode()
    assert not ConsentRule.objects.filter(country="UK").exists()


def test_a_consent_default_typed_in_lower_case_is_saved_and_used(admin_role_client):
    response = admin_role_client.post(f"{CONSENT}add/", {"country": "se ", "consent": "TwoParty"})

    assert response.status_code == 302, response.content.decode()
    assert facts.consent_rules()["SE"] == "TwoParty"


# --- A group's default caller ID ---------------------------------------------------------------------------

GROUPS = "/admin/calls/agentgroup/"


def said(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def group_form(group, **values: object) -> dict[str, object]:
    return {
        "display_id": group.display_id,
        "name": group.name,
        "members": [a.pk for a in group.members.all()],
        "vcc_group_id": group.vcc_group_id,
        "is_active": "on",
        **values,
    }


def test_a_groups_default_restricted_to_other_groups_is_refused_saying_what_to_do(admin_role_client, sales, manchester):
    """Manchester is for Support: a call via Sales could never present it, so the default would do nothing."""
    values = group_form(sales, default_callback_number=manchester.pk)
    response = admin_role_client.post(f"{GROUPS}{sales.pk}/change/", values)

    assert response.status_code == 200
    assert f"{manchester} is restricted to other agents and groups: allow this group there" in response.content.decode()
    sales.refresh_from_db()
    assert sales.default_callback_number is None


def test_a_group_may_default_to_a_number_allowed_to_it_and_its_calls_present_it(
    admin_role_client, support, manchester, london
):
    response = admin_role_client.post(
        f"{GROUPS}{support.pk}/change/", group_form(support, default_callback_number=manchester.pk)
    )

    assert response.status_code == 302, response.content.decode()
    support.refresh_from_db()
    options = list(CallbackNumber.objects.usable_by(groups=[support]))
    assert rules.resolve_clid(options, agent=None, groups=[support]) == (manchester, "default of group Support")


def test_an_inactive_number_is_not_offered_as_a_groups_default(admin_role_client, sales, london):
    CallbackNumber.objects.create(number="+441134960000", label="Leeds (retired)", is_active=False)

    page = admin_role_client.get(f"{GROUPS}{sales.pk}/change/").content.decode()

    assert "Leeds (retired)" not in page and "London main" in page


def test_a_default_number_deactivated_since_stays_when_the_group_is_saved_for_something_else(
    admin_role_client, support, manchester
):
    """The page offers it, marked deactivated, so that renaming the group does not clear its default unsaid."""
    support.default_callback_number = manchester
    support.save()
    CallbackNumber.objects.filter(pk=manchester.pk).update(is_active=False)

    page = admin_role_client.get(f"{GROUPS}{support.pk}/change/").content.decode()
    response = admin_role_client.post(
        f"{GROUPS}{support.pk}/change/",
        group_form(support, name="Support desk", default_callback_number=manchester.pk),
    )

    assert f'value="{manchester.pk}" selected>{manchester} (deactivated)</option>' in page
    assert response.status_code == 302, response.content.decode()
    support.refresh_from_db()
    assert support.name == "Support desk" and support.default_callback_number == manchester


def test_a_group_calls_went_via_is_not_deleted_and_the_admin_is_told_why(
    admin_role_client, supervisor_user, sales, support
):
    """Deleting it would take it off its calls (the call log would say they came from nobody) and delete its
    reports' roll-ups; a group nobody called via is deleted as before."""
    call = make_call(user=supervisor_user, groups=[sales])

    page = admin_role_client.get(f"{GROUPS}{sales.pk}/delete/")
    response = admin_role_client.post(f"{GROUPS}{sales.pk}/delete/", {"post": "yes"})

    assert page.status_code == 302 and response.status_code == 302
    assert said(response)[-1] == (
        "warning",
        f"Calls went via {sales}, so it is kept for the call log and the reports; the sync from VCC retires "
        "it once VCC no longer has it.",
    )
    assert list(call.from_groups.all()) == [sales]
    assert admin_role_client.post(f"{GROUPS}{support.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not AgentGroup.objects.filter(pk=support.pk).exists()


def test_an_agent_with_calls_is_kept_and_the_admin_told_to_retire_it(admin_role_client, agent_user, other_agent_user):
    """Its calls protect it: Django's confirmation page would list each of them (thousands for a busy agent)."""
    make_call(user=agent_user, agent=agent_user.agent)

    response = admin_role_client.get(f"/admin/calls/agent/{agent_user.agent.pk}/delete/")

    assert response.status_code == 302
    assert said(response)[-1][1].startswith(f"{agent_user.agent} has calls in the log, so it is kept with them")
    assert "delete_selected" not in admin_role_client.get("/admin/calls/agent/").content.decode()
    idle = other_agent_user.agent  # no call: deleted as before
    assert admin_role_client.post(f"/admin/calls/agent/{idle.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Agent.objects.filter(pk=idle.pk).exists()
