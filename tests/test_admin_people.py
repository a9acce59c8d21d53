"""Roles give the admin site; only superusers make superusers; one page sets up an agent; the sync from the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from calls import calling
from calls.models import Agent, AgentGroup, CallbackNumber, SyncRun
from calls.roles import ADMIN, AGENT, SUPERVISOR, assign_role
from tests._jobs import queued, run_jobs
from tests._sim import fresh_simulator

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", "root@example.com", "correct horse battery staple")


# --- is_staff follows the admin role ------------------------------------------------------------------


def test_joining_the_admin_group_anywhere_gives_the_admin_site(make_user):
    user = make_user("sam", AGENT)
    user.groups.add(Group.objects.get(name=ADMIN))
    user.refresh_from_db()
    assert user.is_staff


def test_leaving_the_admin_group_takes_the_admin_site_away(admin_role_user):
    admin_role_user.groups.remove(Group.objects.get(name=ADMIN))
    admin_role_user.refresh_from_db()
    assert not admin_role_user.is_staff


def test_a_group_gaining_or_losing_users_updates_their_staff_status(make_user):
    sam = make_user("sam", AGENT)
    admins = Group.objects.get(name=ADMIN)
    admins.user_set.add(sam)
    sam.refresh_from_db()
    assert sam.is_staff
    admins.user_set.clear()
    sam.refresh_from_db()
    assert not sam.is_staff


def test_a_superuser_keeps_the_admin_site_whatever_their_role(root):
    assign_role(root, AGENT)
    root.refresh_from_db()
    assert root.is_staff


def test_giving_the_admin_role_in_the_user_admin_gives_the_admin_site(admin_role_client, make_user):
    sam = make_user("sam", AGENT)
    page = admin_role_client.get(f"/admin/auth/user/{sam.pk}/change/").content.decode()
    assert 'name="is_staff"' not in page  # follows the role, not ticked by hand
    response = admin_role_client.post(f"/admin/auth/user/{sam.pk}/change/", user_form(sam, groups=[ADMIN]))
    assert response.status_code == 302, response.content.decode()[:3000]
    sam.refresh_from_db()
    assert sam.is_staff


def user_form(user, *, groups: list[str], **extra) -> dict[str, object]:
    return {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "groups": [g.pk for g in Group.objects.filter(name__in=groups)],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        **extra,
    }


# --- Superusers -----------------------------------------------------------------------------------


def test_an_admin_cannot_make_someone_a_superuser(admin_role_client, make_user):
    sam = make_user("sam", AGENT)
    page = admin_role_client.get(f"/admin/auth/user/{sam.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in page
    admin_role_client.post(f"/admin/auth/user/{sam.pk}/change/", user_form(sam, groups=[AGENT], is_superuser="on"))
    sam.refresh_from_db()
    assert not sam.is_superuser


def test_an_admin_cannot_make_themselves_a_superuser(admin_role_client, admin_role_user):
    admin_role_client.post(
        f"/admin/auth/user/{admin_role_user.pk}/change/", user_form(admin_role_user, groups=[ADMIN], is_superuser="on")
    )
    admin_role_user.refresh_from_db()
    assert not admin_role_user.is_superuser


def test_an_admin_cannot_change_a_superusers_password_or_flags(admin_role_client, root):
    assert admin_role_client.get(f"/admin/auth/user/{root.pk}/password/").status_code == 403
    response = admin_role_client.post(
        f"/admin/auth/user/{root.pk}/password/", {"password1": "x-Very-long-pw-1", "password2": "x-Very-long-pw-1"}
    )
    assert response.status_code == 403
    admin_role_client.post(f"/admin/auth/user/{root.pk}/change/", user_form(root, groups=[AGENT], is_active=""))
    root.refresh_from_db()
    assert root.is_active and root.is_superuser
    assert root.check_password("correct horse battery staple")
    assert admin_role_client.post(f"/admin/auth/user/{root.pk}/delete/", {"post": "yes"}).status_code == 403


def test_a_superuser_can_make_a_superuser(root, make_user):
    client = Client()
    client.force_login(root)
    sam = make_user("sam", AGENT)
    client.post(f"/admin/auth/user/{sam.pk}/change/", user_form(sam, groups=[AGENT], is_superuser="on"))
    sam.refresh_from_db()
    assert sam.is_superuser and sam.is_staff


# --- One page sets up an agent --------------------------------------------------------------------


def agent_form(**values: object) -> dict[str, object]:
    return {"display_id": "1004", "name": "Sam Lee", "is_active": "on", "role": "", **values}


def test_one_page_creates_the_login_the_agent_its_groups_and_default_caller_id(admin_role_client, sales, london):
    response = admin_role_client.post(
        "/admin/calls/agent/add/",
        agent_form(
            new_username="sam",
            new_email="sam@example.com",
            new_password="a-Long-enough-pass-42",
            groups=[sales.pk],
            default_callback_number=london.pk,
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    agent = Agent.objects.get(display_id="1004")
    assert agent.user.username == "sam"
    assert agent.user.check_password("a-Long-enough-pass-42")
    assert agent.user.has_perm("calls.place_call")
    assert not agent.user.is_staff
    assert list(agent.groups.all()) == [sales]
    assert agent.default_callback_number == london


def test_the_agent_page_chooses_an_existing_login_and_gives_a_role(admin_role_client, make_user, sales, support):
    sam = make_user("sam")
    response = admin_role_client.post(
        "/admin/calls/agent/add/", agent_form(user=sam.pk, role=SUPERVISOR, groups=[sales.pk, support.pk])
    )
    assert response.status_code == 302
    sam.refresh_from_db()
    assert sam.agent.display_id == "1004"
    assert sam.has_perm("calls.place_group_call")
    assert set(sam.agent.groups.all()) == {sales, support}


def test_editing_an_agent_changes_their_groups(admin_role_client, agent_user, sales, support):
    agent = agent_user.agent
    page = admin_role_client.get(f"/admin/calls/agent/{agent.pk}/change/").content.decode()
    assert f'<option value="{sales.pk}" selected>' in page
    admin_role_client.post(
        f"/admin/calls/agent/{agent.pk}/change/",
        agent_form(display_id="1001", name="Alex Morgan", user=agent_user.pk, groups=[support.pk]),
    )
    assert list(agent.groups.all()) == [support]
    assert list(AgentGroup.objects.get(pk=sales.pk).members.values_list("display_id", flat=True)) == ["1003"]


def test_the_agent_page_refuses_a_login_both_chosen_and_created(admin_role_client, make_user):
    sam = make_user("sam")
    response = admin_role_client.post(
        "/admin/calls/agent/add/", agent_form(user=sam.pk, new_username="sam2", new_password="a-Long-pass-42")
    )
    assert "not both" in response.content.decode()
    assert not Agent.objects.filter(display_id="1004").exists()


def test_the_agent_page_refuses_a_taken_username_and_a_weak_password(admin_role_client, make_user):
    make_user("sam")
    page = admin_role_client.post("/admin/calls/agent/add/", agent_form(new_username="SAM", new_password="x")).content
    assert b"already has this username" in page
    page = admin_role_client.post("/admin/calls/agent/add/", agent_form(new_username="kim", new_password="123")).content
    assert b"too short" in page
    assert not Agent.objects.filter(display_id="1004").exists()


def test_the_agent_page_refuses_a_default_caller_id_restricted_to_others(admin_role_client, manchester, sales):
    response = admin_role_client.post(
        "/admin/calls/agent/add/", agent_form(groups=[sales.pk], default_callback_number=manchester.pk)
    )
    assert "restricted to other agents and groups" in response.content.decode()


def test_only_a_superuser_changes_a_superusers_role_from_the_agent_page(admin_role_client, root):
    response = admin_role_client.post("/admin/calls/agent/add/", agent_form(user=root.pk, role=AGENT))
    assert "Only a superuser" in response.content.decode()
    assert not Agent.objects.filter(display_id="1004").exists()


def test_it_warns_when_vcc_does_not_list_the_default_for_the_agent(admin_role_client, london):
    london.vcc_listing_synced_at = timezone.now()
    london.save()
    response = admin_role_client.post(
        "/admin/calls/agent/add/", agent_form(default_callback_number=london.pk), follow=True
    )
    assert "VCC does not list" in response.content.decode()


# --- The sync from the admin ----------------------------------------------------------------------


@pytest.fixture
def sim():
    yield from fresh_simulator()


RUN = "/admin/calls/syncrun/run/"


def test_the_sync_page_offers_a_preview(admin_role_client, sim):
    page = admin_role_client.get(RUN).content.decode()
    assert 'name="preview"' in page
    assert "never been applied" in page
    assert "Run the sync from VCC" in admin_role_client.get("/admin/calls/syncrun/").content.decode()


def preview_sync(admin_role_client, jobs) -> str:
    """Press Preview: the dry run is queued, the page says the worker is on it (and reloads), the worker runs it;
    returns the page then."""
    queued_page = admin_role_client.post(RUN, {"preview": "Preview"}, follow=True).content.decode()
    assert "The preview is queued" in queued_page
    assert "The worker is running a sync or a preview" in queued_page and 'http-equiv="refresh"' in queued_page
    assert not SyncRun.objects.exists()  # nothing ran in the request
    run_jobs(jobs)
    return admin_role_client.get(RUN).content.decode()


def test_a_dry_run_shows_what_would_change_and_changes_nothing(admin_role_client, admin_role_user, sim, jobs):
    page = preview_sync(admin_role_client, jobs)
    assert ": 12 created" in page and "Preview of " in page
    assert "created agent 1001 Alex Morgan" in page
    assert 'name="apply"' in page and 'http-equiv="refresh"' not in page
    assert not Agent.objects.exists()
    assert not CallbackNumber.objects.exists()
    run = SyncRun.objects.get()
    assert run.dry_run and run.by == admin_role_user and run.created == 12 and run.finished_at


def test_a_preview_is_offered_to_apply_only_to_whoever_made_it_and_until_a_sync_is_applied(
    admin_role_client, admin_role_user, make_user, sim, jobs
):
    preview_sync(admin_role_client, jobs)
    other = Client()
    other.force_login(make_user("root2", ADMIN))
    assert "Preview of " not in other.get(RUN).content.decode()  # someone else's preview
    assert "Preview of " in admin_role_client.get(RUN).content.decode()
    apply_sync(admin_role_client, jobs)
    run_jobs(jobs)
    assert "Preview of " not in admin_role_client.get(RUN).content.decode()  # made before the sync applied: stale


def apply_sync(admin_role_client, jobs, *, follow: bool = False):
    """Press Apply: the sync is queued, then the worker runs it."""
    response = admin_role_client.post(RUN, {"apply": "Apply"}, follow=follow)
    assert [j["task_name"] for j in queued(jobs)] == ["sync_vcc"]
    return response


def test_applying_the_sync_queues_it_and_the_worker_changes_vccweb_and_stores_the_run(
    admin_role_client, admin_role_user, sim, jobs
):
    response = apply_sync(admin_role_client, jobs, follow=True)
    assert "The sync is queued" in response.content.decode()
    assert not SyncRun.objects.exists()  # nothing ran in the request
    admin_role_client.post(RUN, {"apply": "Apply"})  # pressed again while it waits: not queued twice
    assert len(queued(jobs)) == 1

    run_jobs(jobs)

    run = SyncRun.objects.get()
    assert not run.dry_run and run.by == admin_role_user
    assert "created agent 1001 Alex Morgan" in run.lines
    assert Agent.objects.count() == 6
    detail = admin_role_client.get(f"/admin/calls/syncrun/{run.pk}/change/").content.decode()
    assert "created agent 1001 Alex Morgan" in detail
    assert "Last applied" in admin_role_client.get(RUN).content.decode()


def test_the_sync_stores_whom_vcc_lists_each_number_for(admin_role_client, sim, jobs):
    apply_sync(admin_role_client, jobs)
    run_jobs(jobs)
    chicago = CallbackNumber.objects.get(number="+13125550100")
    assert chicago.vcc_listing_synced_at is not None
    assert chicago.vcc_listed_for.exists()
    everyone = {a.display_id for n in CallbackNumber.objects.all() for a in n.vcc_listed_for.all()}
    assert everyone <= set(Agent.objects.values_list("display_id", flat=True))


def test_a_sync_vcc_cannot_answer_now_is_stored_and_tried_again(admin_role_client, sim, jobs):
    from procrastinate.jobs import Job

    from calls import tasks

    sim.set_fault("groups", status=503)
    apply_sync(admin_role_client, jobs)
    [job] = queued(jobs)
    with pytest.raises(tasks.TransientVCCFailure):
        run_jobs(jobs)
    run = SyncRun.objects.get()
    assert run.error and not run.ok and not Agent.objects.exists()  # stored, nothing changed
    # Tried again with back-off (5, 25, 125, 625 s), a bounded number of times.
    strategy = tasks.sync_vcc.retry_strategy
    waits = [
        strategy.get_retry_decision(
            exception=tasks.TransientVCCFailure("503"), job=Job.from_row({**job, "attempts": n})
        )
        for n in range(tasks.SYNC_ATTEMPTS)
    ]
    assert [w is not None for w in waits] == [True] * (tasks.SYNC_ATTEMPTS - 1) + [False]
    assert strategy.get_retry_decision(exception=RuntimeError("refused"), job=Job.from_row(job)) is None


def test_a_supervisor_cannot_run_the_sync(supervisor_client, sim):
    assert supervisor_client.post(RUN, {"apply": "Apply"}).status_code == 302  # to the admin login
    assert not SyncRun.objects.exists()


def test_runs_are_read_only(admin_role_client, sim, jobs):
    preview_sync(admin_role_client, jobs)
    run = SyncRun.objects.get()
    assert admin_role_client.post(f"/admin/calls/syncrun/{run.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_role_client.get("/admin/calls/syncrun/add/").status_code == 403


def test_the_agent_page_shows_the_current_role_and_keeps_other_groups(admin_role_client, agent_user):
    extra = Group.objects.create(name="night shift")
    agent_user.groups.add(extra)
    page = admin_role_client.get(f"/admin/calls/agent/{agent_user.agent.pk}/change/").content.decode()
    assert '<option value="agent" selected>' in page
    admin_role_client.post(
        f"/admin/calls/agent/{agent_user.agent.pk}/change/",
        agent_form(display_id="1001", name="Alex Morgan", user=agent_user.pk, role=AGENT),
    )
    assert set(agent_user.groups.values_list("name", flat=True)) == {AGENT, "night shift"}


def test_a_fault_in_vccweb_during_the_sync_still_ends_the_run(sim, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(calling.syncing, "sync_from_vcc", broken)
    with pytest.raises(RuntimeError):
        calling.sync_with_vcc(dry_run=False)
    run = SyncRun.objects.get()
    assert run.finished_at and "RuntimeError" in run.error


def test_the_agent_page_unlinks_a_login_with_the_role_the_page_showed(admin_role_client, agent_user):
    """The role select shows the login's role; clearing "user" to unlink the login leaves it as it was shown, which
    is no choice of a role for nobody: the agent is saved without a login, and the login keeps its role."""
    agent = agent_user.agent
    response = admin_role_client.post(
        f"/admin/calls/agent/{agent.pk}/change/", agent_form(display_id="1001", name="Alex Morgan", role=AGENT)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    agent.refresh_from_db()
    assert agent.user is None
    assert set(agent_user.groups.values_list("name", flat=True)) == {AGENT}


def test_the_agent_page_still_refuses_a_role_chosen_for_no_login(admin_role_client, agent_user):
    agent = agent_user.agent
    response = admin_role_client.post(
        f"/admin/calls/agent/{agent.pk}/change/", agent_form(display_id="1001", name="Alex Morgan", role=SUPERVISOR)
    )
    assert response.status_code == 200
    assert "A role needs a login: choose a user or create one." in response.content.decode()


def test_a_preview_vcc_refuses_says_so_on_the_page_and_is_not_tried_again(admin_role_client, sim, jobs):
    sim.set_fault("groups", status=503)

    page = preview_sync(admin_role_client, jobs)  # the job ends, not failed, and is not queued again

    assert "VCC refused the sync, nothing would change" in page
    assert queued(jobs) == [] and SyncRun.objects.get().error


def test_a_run_its_worker_stopped_is_not_shown_running_for_good(admin_role_client):
    """A run applies all or nothing: one not ended an hour after it started was stopped with its worker."""
    from datetime import timedelta

    from calls.models.sync import RUN_AT_MOST

    now = timezone.now()
    running = SyncRun.objects.create(started_at=now - timedelta(minutes=5))
    stopped = SyncRun.objects.create(started_at=now - RUN_AT_MOST - timedelta(minutes=1))

    assert running.summary == "running"
    assert stopped.summary.startswith("stopped before it ended (its worker was stopped): nothing was changed")
    assert "stopped before it ended" in admin_role_client.get("/admin/calls/syncrun/").content.decode()
