"""Group availability before the click (/readiness/): who VCC has ready in each group, and whether the caller is."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from calls.models import AgentGroup
from tests import _click

pytestmark = pytest.mark.django_db

sim = _click.sim  # fixtures


# --- Group availability ---------------------------------------------------------------------------


def test_it_counts_ready_agents_per_group(supervisor_client, sales, sim):
    out_of_hours = AgentGroup.objects.create(display_id="400", name="Out of hours")

    response = supervisor_client.get(f"/readiness/?ticked=on&groups={sales.pk}", headers={"HX-Request": "true"})

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="ready-group-{sales.pk}" hx-swap-oob="true" class="badge ok">3 ready' in html  # 1001, 1003, 1004
    assert f'id="ready-group-{out_of_hours.pk}" hx-swap-oob="true" class="badge danger">nobody ready' in html
    assert "Nobody is ready in the ticked groups" not in html


def test_a_group_vcc_no_longer_has_is_neither_counted_nor_offered(supervisor_client, contact, sales, support, sim):
    AgentGroup.objects.filter(pk=support.pk).update(is_active=False)  # as the sync leaves it

    readiness = supervisor_client.get(f"/readiness/?ticked=on&groups={sales.pk}").content.decode()
    page = supervisor_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert f"ready-group-{sales.pk}" in readiness and f"ready-group-{support.pk}" not in readiness
    assert "Sales UK" in page and "Support" not in page


def test_it_reuses_the_counts_for_a_few_seconds(supervisor_client, sales, sim):
    supervisor_client.get("/readiness/")
    sim.set_availability("1004", "away")

    assert "3 ready" in supervisor_client.get("/readiness/").content.decode()
    cache.delete(f"calls:ready:{sales.display_id}")
    assert "2 ready" in supervisor_client.get("/readiness/").content.decode()


def test_it_warns_before_the_click_when_nobody_is_ready_in_the_ticked_groups(supervisor_client, sim):
    out_of_hours = AgentGroup.objects.create(display_id="400", name="Out of hours")

    html = supervisor_client.get(f"/readiness/?ticked=on&groups={out_of_hours.pk}").content.decode()

    assert "Nobody is ready in the ticked groups right now" in html


def test_it_warns_before_the_click_when_my_agent_is_not_ready(agent_client, contact, sim):
    sim.set_availability("1001", "away")

    html = agent_client.get("/readiness/").content.decode()

    assert "VCC does not have you ready for a phone call right now" in html
    assert "You can still call." in html


def test_the_contact_list_asks_for_the_callers_readiness_alone(supervisor_client, contact, london, sales, sim):
    page = supervisor_client.get("/contacts/").content.decode()
    assert 'hx-get="/readiness/?only_me=1"' in page
    html = supervisor_client.get("/readiness/", {"only_me": "1"}).content.decode()
    assert 'id="me-ready"' in html
    assert "ready-group-" not in html and "groups-ready" not in html  # the list has no group badges


def test_a_ready_agent_gets_no_warning(agent_client, contact, sim):
    assert "does not have you ready" not in agent_client.get("/readiness/").content.decode()


@pytest.mark.parametrize("query", ["groups=%C2%B2", "groups=1&groups=x", "clid=%C2%B2"])
def test_readiness_and_preview_answer_400_to_malformed_choices(supervisor_client, contact, query):
    assert supervisor_client.get(f"/readiness/?{query}").status_code == 400
    assert supervisor_client.get(f"/contacts/{contact.pk}/dial-preview/?{query}").status_code == 400


def test_availability_says_when_vcc_cannot_be_asked(supervisor_client, sales, sim):
    sim.set_fault("agents", status=503)

    response = supervisor_client.get("/readiness/")

    assert response.status_code == 200
    assert "ask VCC who is ready: VCC is having a problem" in response.content.decode()
    assert "unknown" in response.content.decode()


def test_an_agent_is_not_told_group_counts(agent_client, sales, sim):
    html = agent_client.get("/readiness/").content.decode()

    assert "Sales UK" not in html


def test_readiness_needs_login_and_get(client, supervisor_client, sales):
    assert supervisor_client.post("/readiness/").status_code == 405
    supervisor_client.logout()
    assert client.get("/readiness/")["Location"].startswith("/login/?next=")
