from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from calls.models import Call, Contact
from calls.roles import ADMIN, AGENT, SUPERVISOR, assign_role

pytestmark = pytest.mark.django_db


def test_the_migration_creates_the_three_roles():
    assert set(Group.objects.values_list("name", flat=True)) >= {AGENT, SUPERVISOR, ADMIN}


def test_syncing_the_roles_puts_back_what_was_taken_and_names_a_permission_that_does_not_exist(monkeypatch):
    from django.contrib.auth.models import Permission

    from calls import roles

    agents = Group.objects.get(name=AGENT)
    agents.permissions.remove(Permission.objects.get(codename="place_call"))
    Group.objects.filter(name=SUPERVISOR).delete()
    roles.sync_roles()
    assert agents.permissions.filter(codename="place_call").exists()
    assert {p.codename for p in Group.objects.get(name=SUPERVISOR).permissions.all()} == {
        code.split(".")[1] for code in roles.ROLE_PERMISSIONS[SUPERVISOR]
    }
    monkeypatch.setitem(roles.ROLE_PERMISSIONS, AGENT, ["calls.place_call", "calls.fly_to_the_moon"])
    with pytest.raises(Permission.DoesNotExist, match="calls.fly_to_the_moon"):
        roles.sync_roles()


def test_an_agent_calls_as_themselves_and_sees_their_own_calls(agent_user):
    assert agent_user.has_perm("calls.place_call")
    assert agent_user.has_perm("calls.view_contact")
    assert not agent_user.has_perm("calls.place_group_call")
    assert not agent_user.has_perm("calls.view_all_calls")
    assert not agent_user.has_perm("calls.delete_contact")


def test_a_supervisor_also_calls_via_groups_and_sees_everyone(supervisor_user):
    for perm in ["place_call", "place_group_call", "view_all_calls", "view_reports", "override_do_not_call"]:
        assert supervisor_user.has_perm(f"calls.{perm}")
    assert not supervisor_user.is_staff


def test_an_admin_has_everything_and_the_django_admin(admin_role_user):
    assert admin_role_user.is_staff
    assert admin_role_user.has_perm("calls.change_agent")
    assert admin_role_user.has_perm("calls.change_callbacknumber")
    assert admin_role_user.has_perm("auth.change_user")


def test_changing_role_replaces_the_old_one(agent_user):
    assign_role(agent_user, ADMIN)
    assign_role(agent_user, AGENT)
    agent_user.refresh_from_db()
    assert list(agent_user.groups.values_list("name", flat=True)) == [AGENT]
    assert not agent_user.is_staff


def test_an_agent_cannot_see_the_django_admin(agent_client):
    response = agent_client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_supervisor_cannot_see_the_django_admin(supervisor_client):
    assert supervisor_client.get("/admin/").status_code == 302


def test_an_admin_can_use_the_django_admin(client, admin_role_user, contact):
    client.force_login(admin_role_user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/calls/contact/").status_code == 200


def test_the_call_log_is_read_only_in_the_admin(client, admin_role_user, agent_user):
    call = Call.objects.create(created_by=agent_user, to_number="+442079460100", error_message="Unable to place call")
    client.force_login(admin_role_user)
    page = client.get(f"/admin/calls/call/{call.pk}/change/")
    assert page.status_code == 200
    assert b'name="to_number"' not in page.content
    assert b"Unable to place call" in page.content
    assert client.get("/admin/calls/call/add/").status_code == 403
    assert client.post(f"/admin/calls/call/{call.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Call.objects.filter(pk=call.pk).exists()


@pytest.mark.parametrize("url", ["contact", "contactphone", "agent", "agentgroup", "callbacknumber", "call"])
def test_every_model_has_a_searchable_admin_list(client, admin_role_user, contact, url):
    client.force_login(admin_role_user)
    response = client.get(f"/admin/calls/{url}/", {"q": "a"})
    assert response.status_code == 200


def test_a_contact_in_the_admin_shows_its_numbers(client, admin_role_user, contact):
    client.force_login(admin_role_user)
    response = client.get(f"/admin/calls/contact/{contact.pk}/change/")
    assert b'value="07400 123456"' in response.content  # as people write it; stored as +447400123456
    assert Contact.objects.count() == 1


def test_assigning_a_role_whose_group_was_deleted_brings_the_roles_back(make_user):
    Group.objects.all().delete()
    user = make_user("newcomer", SUPERVISOR)
    assert user.has_perm("calls.place_group_call")
    assert set(Group.objects.values_list("name", flat=True)) == {AGENT, SUPERVISOR, ADMIN}


def test_the_admins_call_list_says_a_call_may_have_been_placed(client, admin_role_user, agent_user):
    Call.objects.create(
        created_by=agent_user, to_number="+442079460100", state=Call.State.UNCONFIRMED,
        outcome=Call.Outcome.NOT_CONFIRMED, error_message="Read timed out",
    )  # fmt: skip
    client.force_login(admin_role_user)
    page = client.get("/admin/calls/call/", {"outcome__exact": "not_confirmed"}).content.decode()
    assert "Not confirmed: may have been placed" in page
    assert "Failed" not in page.split('id="result_list"')[1]  # never shown as a failed call


def test_a_roles_permissions_are_not_edited_in_the_admin_since_every_upgrade_sets_them_again(client, admin_role_user):
    """sync_roles gives each role exactly its permissions after every migrate: a permission an admin took from the
    supervisors would come back at the next upgrade. The admin shows them, read-only, and says where they come
    from; a group of the admin's own stays editable."""
    from django.contrib.auth.models import Permission

    from calls import roles

    supervisors = Group.objects.get(name=SUPERVISOR)
    place_call = Permission.objects.get(codename="place_call")
    client.force_login(admin_role_user)
    page = client.get(f"/admin/auth/group/{supervisors.pk}/change/").content.decode()
    assert 'name="permissions"' not in page and 'name="name"' not in page
    assert "set again by every upgrade" in page

    response = client.post(
        f"/admin/auth/group/{supervisors.pk}/change/", {"name": "team leads", "permissions": [place_call.pk]}
    )

    assert response.status_code == 302
    supervisors.refresh_from_db()
    assert supervisors.name == SUPERVISOR
    codes = {f"{p.content_type.app_label}.{p.codename}" for p in supervisors.permissions.all()}
    assert codes == set(roles.ROLE_PERMISSIONS[SUPERVISOR])
    own = Group.objects.create(name="team leads")
    values = {"name": "team leads", "permissions": [place_call.pk]}
    response = client.post(f"/admin/auth/group/{own.pk}/change/", values)
    assert response.status_code == 302
    assert list(own.permissions.all()) == [place_call]


def test_a_role_is_never_deleted_in_the_admin_since_everyone_in_it_would_lose_it(client, admin_role_user, agent_user):
    client.force_login(admin_role_user)
    agents = Group.objects.get(name="agent")
    own = Group.objects.create(name="night shift")

    assert client.post(f"/admin/auth/group/{agents.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [agents.pk, own.pk], "post": "yes"}
    assert client.post("/admin/auth/group/", bulk).status_code == 403

    assert set(Group.objects.filter(pk__in=[agents.pk, own.pk])) == {agents, own}  # nothing went
    assert agent_user.groups.filter(name="agent").exists()
    own_only = {"action": "delete_selected", "_selected_action": [own.pk], "post": "yes"}
    assert client.post("/admin/auth/group/", own_only).status_code == 302
    assert not Group.objects.filter(pk=own.pk).exists()
