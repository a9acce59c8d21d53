"""Stopping a worker (SIGTERM, Ctrl-C, make serve stopped): what it says while it lets its running jobs finish."""

from __future__ import annotations

import time
from types import SimpleNamespace

from calls import worker


async def test_a_stopping_worker_names_the_jobs_it_waits_for():
    """It said only "stopping, letting running jobs finish", then nothing for as long as an import's check ran
    (68 s past the SIGTERM, in a try of make serve): nobody could tell what it waited for, or how long it might."""
    lines = []

    async def check_import() -> None:
        lines.append(worker.stopping_line(time.monotonic() + 40))

    context = SimpleNamespace(job=SimpleNamespace(task_name="check_import", id=339))
    await worker.note_running(check_import, context, None)  # type: ignore[arg-type]

    assert lines == [
        "worker: stopping; waiting for 1 running job(s) to finish (an import's check or apply, retention or a sync "
        "runs to its end, however long): check_import (job 339) running 40 s"
    ]
    assert worker.stopping_line(time.monotonic()) == "worker: stopping; no job running"
