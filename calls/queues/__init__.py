"""Call queues (issue 23): lists of contacts agents work through, one at a time.

- building: making a queue from the contact list's filter or an import, and a live queue's new matches
- working: who may work a queue, taking the next contact (claims with SKIP LOCKED), skipping, stopping
- outcomes: a call from the queue as its contact's attempt, and what its outcome does to the contact's place
- reports: a queue's progress, attempts, outcomes and agents, and its CSV
"""

from __future__ import annotations

from datetime import datetime

from calls.models import CallQueue
from calls.queues import building, working


def tend(*, now: datetime) -> dict[str, int]:
    """The periodic upkeep (calls.tasks.tend_queues): settle finished attempts, grow live queues, look up the time
    zones of contacts new to a queue."""
    settled = working.settle_finished(now=now)
    zones = working.fill_zones()
    joined = sum(
        building.add_new_matches(queue, now=now)
        for queue in CallQueue.objects.filter(live=True, state=CallQueue.State.ACTIVE)
    )
    return {"settled": settled, "joined": joined, "zones": zones}
