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
