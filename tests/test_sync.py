"""sync_vcc: agents, groups and callback numbers from VCC's User Admin API (the sandbox simulator here)."""

from __future__ import annotations

import dataclasses
import functools
import io
from collections.abc import Callable

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import Agent, AgentGroup, CallbackNumber
from calls.vcc import UserAdminClient
from tests._sim import assert_refused, click, fresh_simulator, only_call, primary
from vccsim.transport import sandbox_transport

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def sync(*args: str) -> str:
    out = io.StringIO()
    call_command("sync_vcc", *args, stdout=out)
    return out.getvalue()


def sync_while(sim, **changes: object) -> str:
    """A sync while VCC's account has `changes` (dataclasses.replace of the simulator's account); then as it was."""
    account = sim.account
    sim.account = dataclasses.replace(account, **changes)
    try:
        return sync()
    finally:
        sim.account = account


def users_answered(monkeypatch, answer: Callable[[httpx.Request], httpx.Response | None]) -> None:
    """The sync's client talks to the sandbox, except that `answer` answers its requests for users (None: the
    sandbox does)."""
    sandbox = sandbox_transport()

    def handle(request: httpx.Request) -> httpx.Response:
        answered = answer(request) if request.url.path == "/useradmin/users" else None
        return answered if answered is not None else sandbox.handle_request(request)

    own_client = functools.partial(UserAdminClient, transport=httpx.MockTransport(handle))
    monkeypatch.setattr("calls.calling.syncing.get_user_admin_client", own_client)


def test_it_creates_agents_groups_and_callback_numbers_from_vcc():
    output = sync()
    assert "Synced: 12 created" in output
    assert dict(Agent.objects.values_list("display_id", "name"))["1001"] == "Alex Morgan"
    assert Agent.objects.count() == 6
    assert all(a.vcc_user_id for a in Agent.objects.all())
    sales = AgentGroup.objects.get(display_id="030")
    assert sales.name == "Sales UK"
    assert set(sales.members.values_list("display_id", flat=True)) == {"1001", "1003", "1004"}
    assert set(CallbackNumber.objects.values_list("number", flat=True)) == {
        "+442079460100",
        "+441614960200",
        "+13125550100",
    }


def test_a_second_sync_changes_nothing():
    sync()
    assert "Synced: 0 created, 0 updated, 0 deactivated, 0 problems" in sync()


def test_it_keeps_what_vccweb_adds(agent_user, london):
    Agent.objects.filter(display_id="1001").update(default_callback_number=london)
    sync()
    alex = Agent.objects.get(display_id="1001")
    assert alex.user == agent_user
    assert alex.default_callback_number == london
    assert CallbackNumber.objects.get(number=london.number).label == "London main"


def test_it_keeps_each_callback_number_as_vcc_lists_it(sim, london):
    """VCC lists Manchester support in national format (01614960200): matched as +441614960200, kept as VCC wrote it,
    to be sent back as the presented CLID."""
    output = sync()

    forms = dict(CallbackNumber.objects.values_list("number", "vcc_clid"))
    assert forms == {"+442079460100": "+442079460100", "+441614960200": "01614960200", "+13125550100": "+13125550100"}
    assert CallbackNumber.objects.count() == 3  # matched by number: no second row for VCC's form
    assert "as VCC lists it: none → “+442079460100”)" in output  # the admin's number, now synced
    output = sync_while(
        sim,
        callback_numbers=tuple(
            dataclasses.replace(n, clid="020 7946 0100") if n.clid == london.number else n
            for n in sim.account.callback_numbers
        ),
    )
    london.refresh_from_db()
    assert london.vcc_clid == "020 7946 0100"
    assert "updated callback number +442079460100 (as VCC lists it: “+442079460100” → “020 7946 0100”)" in output


def test_what_vcc_no_longer_has_is_deactivated_not_deleted(london):
    gone = Agent.objects.create(display_id="9999", name="Left the company")
    stale = CallbackNumber.objects.create(number="+441134960000", label="Leeds (removed in VCC)")
    output = sync()
    gone.refresh_from_db()
    stale.refresh_from_db()
    assert not gone.is_active
    assert not stale.is_active
    assert "deactivated callback number +441134960000 (not configured in VCC)" in output


def test_a_group_vcc_no_longer_has_is_retired_refused_on_a_click_and_back_once_vcc_has_it_again(
    sim, supervisor_client, admin_client, contact, london
):
    sync()
    output = sync_while(sim, groups={k: g for k, g in sim.account.groups.items() if k != "030"})

    sales = AgentGroup.objects.get(display_id="030")
    assert not sales.is_active
    assert "deactivated group 030 Sales UK (not in VCC)" in output
    assert "0 created, 0 updated, 1 deactivated, 0 problems" in output
    assert sales.members.count() == 3  # kept as VCC last had them, for the calls that went via it
    retired = admin_client.get("/admin/calls/agentgroup/?is_active__exact=0").content.decode()
    assert "Sales UK" in retired and "Support" not in retired
    response = click(supervisor_client, primary(contact), via="group", groups=(sales.pk,))
    assert_refused(response, sim, "The group Sales UK (030) no longer exists in VCC")

    output = sync()

    sales.refresh_from_db()
    assert sales.is_active
    assert "updated group 030 (active: no → yes)" in output
    assert click(supervisor_client, primary(contact), via="group", groups=(sales.pk,)).status_code == 200
    assert list(only_call().from_groups.all()) == [sales]


def test_retiring_a_group_agents_have_as_default_is_reported_as_a_problem_to_fix(sim):
    sync()
    Agent.objects.filter(display_id__in=["1001", "1003"]).update(default_group=AgentGroup.objects.get(display_id="030"))
    output = sync_while(sim, groups={k: g for k, g in sim.account.groups.items() if k != "030"})

    assert (
        "problem: group 030 Sales UK is retired but is the default group of agents 1001, 1003: their calls via it "
        "are refused, pick another default group on their admin page"
    ) in output
    assert "1 deactivated, 1 problems" in output


def test_an_account_default_missing_in_vcc_is_reported_not_switched_off():
    default = CallbackNumber.objects.create(number="+441134960000", label="Leeds", is_default=True)
    output = sync()
    default.refresh_from_db()
    assert default.is_active
    assert "problem: the account default Leeds" in output


@pytest.mark.parametrize("first_page", [0, 1])
@pytest.mark.parametrize("users_meta", [False, True])
def test_it_reads_every_page_of_users_however_vcc_numbers_them(sim, monkeypatch, first_page, users_meta):
    """vcc-api.md §10.1: GET /users is documented without `meta`, and pages may count from 0 or 1."""
    sync()
    monkeypatch.setattr("calls.vcc.gateway.PAGE_SIZE", 4)  # the sample's 6 users on two pages
    monkeypatch.setattr(sim, "account", dataclasses.replace(sim.account, first_page=first_page, users_meta=users_meta))

    output = sync()

    assert "Synced: 0 created, 0 updated, 0 deactivated, 0 problems" in output
    assert Agent.objects.filter(is_active=True).count() == 6


@pytest.mark.parametrize(
    "reply",
    [httpx.Response(503, json={"message": "Service Unavailable"}), httpx.Response(200, json={"message": "Sorry"})],
)
def test_a_page_of_users_vcc_does_not_give_deactivates_nobody(monkeypatch, reply):
    sync()
    monkeypatch.setattr("calls.vcc.gateway.PAGE_SIZE", 4)
    users_answered(monkeypatch, lambda request: reply if "page" in request.url.params else None)
    with pytest.raises(CommandError, match="nothing was changed"):
        sync()
    assert Agent.objects.filter(is_active=True).count() == 6


def test_a_dry_run_changes_nothing():
    output = sync("--dry-run")
    assert "Dry run, nothing saved: 12 created" in output
    assert not Agent.objects.exists()


def test_a_vcc_failure_changes_nothing_and_says_why(sim):
    sim.set_fault("groups", status=503)
    with pytest.raises(CommandError, match="VCC refused the sync, nothing was changed"):
        sync()
    assert not Agent.objects.exists()


def test_sync_is_off_without_gateway_credentials(settings):
    settings.VCC_SYNC_ENABLED = False
    with pytest.raises(CommandError, match="set VCC_CLIENT_ID and VCC_CLIENT_SECRET"):
        sync()


def test_it_stores_whom_vcc_lists_each_number_for_and_reports_changes(sim):
    import dataclasses

    sync()
    manchester = CallbackNumber.objects.get(number="+441614960200")
    before = set(manchester.vcc_listed_for.values_list("display_id", flat=True))
    assert before and manchester.vcc_listing_synced_at is not None
    account = sim.account
    narrowed = tuple(
        dataclasses.replace(n, agent_ids=("1005",)) if n == account.callback_number(manchester.number) else n
        for n in account.callback_numbers
    )
    sim.account = dataclasses.replace(account, callback_numbers=narrowed)
    try:
        output = sync()
    finally:
        sim.account = account
    gone = sorted(before - {"1005"})
    removed = f"no longer to agent{'s' if len(gone) > 1 else ''} {', '.join(gone)}"
    assert f"updated callback number +441614960200 (VCC: {removed})" in output
    assert list(manchester.vcc_listed_for.values_list("display_id", flat=True)) == ["1005"]
    offered_to = {
        agent.display_id for agent in Agent.objects.all() if manchester in CallbackNumber.objects.usable_by(agent=agent)
    }
    assert offered_to <= {"1005"}


def test_a_dry_run_does_not_store_the_listing(london):
    sync("--dry-run")
    london.refresh_from_db()
    assert london.vcc_listing_synced_at is None
    assert not london.vcc_listed_for.exists()


def test_vcc_listing_no_agents_at_all_retires_nobody(monkeypatch):
    """A list of users with no agent in it (a wrong account, credentials that see no one) would retire every agent
    at once: the sync refuses it and changes nothing, saying what to check."""
    sync()
    nobody = httpx.Response(200, json={"users": [], "meta": {"page": 1, "pageCount": 1}})
    users_answered(monkeypatch, lambda request: nobody)
    with pytest.raises(CommandError, match="nothing was changed: VCC listed no agents"):
        sync()
    assert Agent.objects.filter(is_active=True).count() == 6


def test_a_number_an_admin_deactivated_stays_inactive_while_one_vcc_dropped_comes_back(sim, admin_client):
    """The admin's "Deactivate" stops offering a number VCC still has; the next sync does not undo it. A number
    the sync retired because VCC no longer had it is active again once VCC has it again."""
    sync()
    manchester = CallbackNumber.objects.get(number="+441614960200")
    response = admin_client.post(
        "/admin/calls/callbacknumber/", {"action": "deactivate", "_selected_action": [manchester.pk]}
    )
    assert response.status_code == 302
    sync_while(sim, callback_numbers=tuple(n for n in sim.account.callback_numbers if n.clid != "+13125550100"))
    assert not CallbackNumber.objects.get(number="+13125550100").is_active

    output = sync()

    manchester.refresh_from_db()
    assert not manchester.is_active
    assert "+441614960200" not in output
    assert CallbackNumber.objects.get(number="+13125550100").is_active
    assert "updated callback number +13125550100 (active: no → yes" in output


def test_a_number_an_admin_deactivated_stays_inactive_when_vcc_drops_it_and_has_it_again(sim, admin_client):
    """Whether the sync retired a number is stored when it does, not guessed from VCC's listing: an admin's
    deactivation is kept even after a sync that found VCC lists the number for nobody."""
    sync()
    manchester = CallbackNumber.objects.get(number="+441614960200")
    admin_client.post("/admin/calls/callbacknumber/", {"action": "deactivate", "_selected_action": [manchester.pk]})
    sync_while(
        sim,
        callback_numbers=tuple(
            n for n in sim.account.callback_numbers if n != sim.account.callback_number(manchester.number)
        ),
    )
    manchester.refresh_from_db()
    assert not manchester.vcc_listed_for.exists()
    assert not manchester.retired_by_sync

    output = sync()

    manchester.refresh_from_db()
    assert not manchester.is_active
    assert "callback number +441614960200 (active" not in output


def with_numbers(sim, count: int) -> None:
    """VCC's account with `count` more callback numbers, for every agent."""
    extra = tuple(
        dataclasses.replace(sim.account.callback_numbers[0], callback_number_id=f"cb-x{i}", clid=f"+44113496{i:04d}")
        for i in range(count)
    )
    sim.account = dataclasses.replace(sim.account, callback_numbers=(*sim.account.callback_numbers, *extra))


def queries_of_a_sync_with_every_number_deactivated() -> int:
    sync()
    CallbackNumber.objects.filter(is_default=False).update(is_active=False)  # as the admin's action leaves them
    with CaptureQueriesContext(connection) as queries:
        sync()
    return len(queries)


def test_a_sync_asks_as_many_queries_for_many_inactive_numbers_as_for_a_few(sim):
    account = sim.account
    try:
        with_numbers(sim, 2)
        few = queries_of_a_sync_with_every_number_deactivated()
        sim.account = account
        with_numbers(sim, 12)
        many = queries_of_a_sync_with_every_number_deactivated()
    finally:
        sim.account = account
    assert CallbackNumber.objects.filter(is_active=False).count() >= 12
    assert many == few
