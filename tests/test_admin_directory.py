"""The agent and group pages in the admin against what the sync from VCC owns (calls/admin/directory.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from calls.models import Agent, AgentGroup, SyncRun

pytestmark = pytest.mark.django_db

AGENTS = "/admin/calls/agent/"
GROUPS = "/admin/calls/agentgroup/"


def agent_form(agent: Agent, **values: object) -> dict[str, object]:
    """The agent's page as saved with `active` unticked (a checkbox left unticked is not sent)."""
    return {"display_id": agent.display_id, "name": agent.name, "user": agent.user_id or "", "role": "", **values}


def group_form(group: AgentGroup, **values: object) -> dict[str, object]:
    members = list(group.members.values_list("pk", flat=True))
    return {"display_id": group.display_id, "name": group.name, "members": members, **values}


@pytest.fixture
def last_sync(db) -> SyncRun:
    at = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
    SyncRun.objects.create(started_at=at, finished_at=at, dry_run=True)  # a preview changed nothing: not shown
    return SyncRun.objects.create(started_at=at.replace(hour=21), finished_at=at.replace(hour=21, minute=1))


# --- `active` is VCC's while the sync runs ------------------------------------------------------------


def test_with_the_sync_on_an_agents_active_is_shown_as_vccs_and_an_untick_changes_nothing(
    admin_role_client, agent_user, last_sync
):
    agent = agent_user.agent
    page = admin_role_client.get(f"{AGENTS}{agent.pk}/change/").content.decode()
    assert 'name="is_active"' not in page
    assert "Yes. VCC decides: the sync from VCC sets it (last run 2026-12-07 21:01 UTC)." in page
    assert "deactivate or delete the user in VCC" in page

    response = admin_role_client.post(f"{AGENTS}{agent.pk}/change/", agent_form(agent))

    assert response.status_code == 302, response.content.decode()[:3000]
    agent.refresh_from_db()
    assert agent.is_active


def test_with_the_sync_on_a_groups_active_is_shown_as_vccs_and_an_untick_changes_nothing(admin_role_client, sales):
    page = admin_role_client.get(f"{GROUPS}{sales.pk}/change/").content.decode()
    assert 'name="is_active"' not in page
    assert "VCC decides: the sync from VCC sets it (it has not run yet)." in page
    assert "to retire it, delete it in VCC" in page
    assert 'name="is_active"' not in admin_role_client.get(f"{GROUPS}add/").content.decode()

    response = admin_role_client.post(f"{GROUPS}{sales.pk}/change/", group_form(sales))

    assert response.status_code == 302, response.content.decode()[:3000]
    sales.refresh_from_db()
    assert sales.is_active


def test_with_the_sync_off_the_admin_retires_agents_and_groups(settings, admin_role_client, agent_user, sales):
    settings.VCC_SYNC_ENABLED = False
    agent = agent_user.agent
    assert 'name="is_active"' in admin_role_client.get(f"{AGENTS}{agent.pk}/change/").content.decode()
    assert 'name="is_active"' in admin_role_client.get(f"{GROUPS}{sales.pk}/change/").content.decode()

    admin_role_client.post(f"{AGENTS}{agent.pk}/change/", agent_form(agent))
    admin_role_client.post(f"{GROUPS}{sales.pk}/change/", group_form(sales))

    agent.refresh_from_db()
    sales.refresh_from_db()
    assert not agent.is_active
    assert not sales.is_active


# --- A retired group is never made an agent's default -----------------------------------------------


def default_group_menu(page: str) -> str:
    return page[page.index('<select name="default_group"') :].split("</select>", 1)[0]


def test_the_agent_page_refuses_a_retired_group_as_default_saying_what_to_fix(admin_role_client, agent_user, support):
    AgentGroup.objects.filter(pk=support.pk).update(is_active=False)  # as the sync leaves it
    agent = agent_user.agent
    page = admin_role_client.get(f"{AGENTS}{agent.pk}/change/").content.decode()
    assert f'<option value="{support.pk}"' not in default_group_menu(page)

    response = admin_role_client.post(f"{AGENTS}{agent.pk}/change/", agent_form(agent, default_group=support.pk))

    assert response.status_code == 200
    assert "That group is retired (VCC no longer has it, so a call via it is refused)" in response.content.decode()
    assert "pick an active group, or leave it empty" in response.content.decode()
    agent.refresh_from_db()
    assert agent.default_group is None


def test_an_agents_default_group_retired_since_is_marked_and_kept_by_a_save_for_anything_else(
    admin_role_client, agent_user, sales
):
    agent = agent_user.agent
    Agent.objects.filter(pk=agent.pk).update(default_group=sales)
    AgentGroup.objects.filter(pk=sales.pk).update(is_active=False)  # the sync retired it since

    page = admin_role_client.get(f"{AGENTS}{agent.pk}/change/").content.decode()
    assert "Sales UK (030) (retired)" in page
    assert "Sales UK (030) is retired: VCC no longer has it, so the agent's calls via it are refused." in page
    assert "(retired: pick another)" in admin_role_client.get(AGENTS).content.decode()
    response = admin_role_client.post(
        f"{AGENTS}{agent.pk}/change/", agent_form(agent, name="Alex M.", default_group=sales.pk)
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    agent.refresh_from_db()
    assert (agent.name, agent.default_group) == ("Alex M.", sales)


def test_a_retired_groups_page_names_the_agents_who_still_have_it_as_default(admin_role_client, agent_user, sales):
    Agent.objects.filter(pk=agent_user.agent.pk).update(default_group=sales)
    page = admin_role_client.get(f"{GROUPS}{sales.pk}/change/").content.decode()
    assert "Alex Morgan (1001)" in page
    assert "their calls via it are refused" not in page

    AgentGroup.objects.filter(pk=sales.pk).update(is_active=False)

    page = admin_role_client.get(f"{GROUPS}{sales.pk}/change/").content.decode()
    assert "Retired, yet the default group of these agents: their calls via it are refused." in page
    assert f'<a href="{AGENTS}{agent_user.agent.pk}/change/">Alex Morgan (1001)</a>' in page


def test_a_retired_groups_name_from_vcc_is_escaped_in_the_warning(admin_role_client, agent_user):
    group = AgentGroup.objects.create(display_id="040", name="<b>Night</b>", is_active=False)
    Agent.objects.filter(pk=agent_user.agent.pk).update(default_group=group)
    page = admin_role_client.get(f"{AGENTS}{agent_user.agent.pk}/change/").content.decode()
    assert "&lt;b&gt;Night&lt;/b&gt; (040) is retired" in page
    assert "<b>Night</b>" not in page
