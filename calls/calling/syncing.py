"""Keeping in step with VCC's account: the sync from the User Admin API, stored as a run (the admin's button
and the sync_vcc command), and the agent setup page's check that VCC knows an agent's display ID."""

from __future__ import annotations

from typing import TYPE_CHECKING

from calls.calling.common import Clock, _now
from calls.models import SyncRun
from calls.sync import sync_from_vcc
from calls.vcc import UserAdminClient, VCCError, budget, get_client, get_user_admin_client

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def sync_with_vcc(
    *,
    by: User | None = None,
    dry_run: bool,
    client: UserAdminClient | None = None,
    clock: Clock = _now,
) -> SyncRun:
    """Sync from VCC (or preview it, `dry_run`) and store the run, failed or not: the admin's button and the command.

    A VCC error is stored on the run (`run.error`) rather than raised; nothing was changed then.
    """
    run = SyncRun.objects.create(started_at=clock(), dry_run=dry_run, by=by)
    try:
        # The sync's requests wait for room in the budget rather than crowd out clicks and polls.
        with budget.priority(budget.SYNC):
            if client is None:
                with get_user_admin_client() as own:
                    report = sync_from_vcc(own, dry_run=dry_run, now=run.started_at)
            else:
                report = sync_from_vcc(client, dry_run=dry_run, now=run.started_at)
    except VCCError as exc:
        run.error = f"{exc.user_message} ({exc.message})"
        run.retryable = exc.retryable or exc.status == 429  # the job tries again later (calls/tasks.py)
    except Exception as exc:  # a fault in vccweb: the run still ends, then the error goes on to be reported
        run.error, run.finished_at = f"vccweb failed during the sync: {type(exc).__name__}", clock()
        run.save()
        raise
    else:
        run.lines = report.lines()
        run.created, run.updated = len(report.created), len(report.updated)
        run.deactivated, run.problems = len(report.deactivated), len(report.problems)
    run.finished_at = clock()
    run.save()
    return run


def agent_known_to_vcc(display_id: str) -> tuple[bool | None, str]:
    """Whether VCC has an agent with this display ID (GET agents/{id}), for the agent setup page: True, False, or
    None with a warning that says why VCC could not be asked (the agent is saved anyway: VCC being down must not
    stop an admin)."""
    try:
        # An admin waits for this one: readiness's share, refused (not waited for) when the budget is tight.
        with budget.priority(budget.READINESS), get_client() as client:
            client.get_agent(display_id)
    except VCCError as e:
        if e.status == 404:
            return False, ""
        return None, (
            f"Saved, but VCC could not be asked whether agent “{display_id}” exists ({e.user_message}). "
            "Check the display ID in VCC: calls from this agent fail if it is wrong."
        )
    return True, ""
