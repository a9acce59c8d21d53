"""Run the worker: every background job (calls/tasks.py) until Ctrl-C or SIGTERM. Run one per host, or several."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls import tasks, worker


class Command(BaseCommand):
    help = "Run the background worker: imports, call following, roll-ups, syncs (needs PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queues", default="", help=f"comma-separated queues to work (default all: {', '.join(tasks.QUEUES)})"
        )
        parser.add_argument("--concurrency", type=int, default=0, help="jobs run at once (default WORKER_CONCURRENCY)")
        parser.add_argument("--name", default="", help="the worker's name in the logs and the health page")
        parser.add_argument("--until-empty", action="store_true", help="stop once the queues are empty")

    def handle(
        self, *args: object, queues: str, concurrency: int, name: str, until_empty: bool, **opts: object
    ) -> None:
        if not settings.JOBS_DATABASE:
            raise CommandError(
                "The worker needs PostgreSQL: set DATABASE_URL=postgres://… (the job queue lives there), then run "
                "'manage.py migrate'."
            )
        wanted = [q.strip() for q in queues.split(",") if q.strip()]
        if unknown := sorted(set(wanted) - set(tasks.QUEUES)):
            raise CommandError(f"No such queue: {', '.join(unknown)}. The queues are {', '.join(tasks.QUEUES)}.")
        asyncio.run(worker.run(queues=wanted, concurrency=concurrency or None, name=name or None, wait=not until_empty))
