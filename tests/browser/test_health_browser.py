"""The integration health page's background jobs on a phone: readable at 375 px without sideways scrolling of the
page, and an admin's Retry queues a failed job again (strict CSP: no inline style or script on the way)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector

from calls import tasks
from calls.roles import ADMIN
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD, create_user
from tests.test_jobs_health import add_job, add_worker, fail, status_of

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="Procrastinate's tables exist only on PostgreSQL (calls/routers.py); CI runs the suite on PostgreSQL",
    ),
]


def test_on_a_phone_an_admin_reads_the_jobs_and_retries_a_failed_one(page, live_server):
    create_user("ada", ADMIN)
    now = timezone.now()
    add_worker(now - timedelta(minutes=5))  # dead
    add_job("follow_calls", tasks.CALLS, deferred_at=now - timedelta(minutes=3))
    failed = add_job("sync_vcc", tasks.VCC, status="failed", attempts=5)
    long_error = "RuntimeError: VCC refused the sync: " + "invalid_client " * 40
    fail(failed, "sync_vcc", at=now, error=long_error.strip())

    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "ada", PASSWORD, at="/health/")
    section = page.locator("[data-jobs]")
    section.locator("[data-jobs-waiting-too-long]").wait_for()
    assert "No worker may be running" in section.locator("[data-jobs-waiting-too-long]").inner_text()
    assert section.locator(f'[data-failed-job="{failed}"] .job-error').is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # the page itself never scrolls sideways

    with app.replace_connector(DjangoConnector()):
        section.locator(f'[data-failed-job="{failed}"] button', has_text="Retry").click()
        page.locator(".messages", has_text=f"Job {failed} (sync_vcc) was queued again").wait_for()
    assert status_of(failed) == "todo"
    assert page.console_errors == []  # a CSP violation is reported as a console error
