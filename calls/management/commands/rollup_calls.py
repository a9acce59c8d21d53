"""Bring the report roll-up up to date; run it every few minutes from cron (or a systemd timer).

Reports stay exact without it for today and for any day it has not rolled up yet (those are computed live);
it keeps the 365-day report fast. `--rebuild` builds the whole roll-up again from the calls.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from calls import reports


class Command(BaseCommand):
    help = "Roll up finished days of the call log for reports (run periodically)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="rebuild every day from the calls")

    def handle(self, *args: object, **options: object) -> None:
        now = timezone.now()
        if options["rebuild"]:
            rebuilt = reports.rebuild_rollup(now=now)
            self.stdout.write(f"Rebuilt the roll-up: {rebuilt} days.")
            return
        days = reports.refresh_rollup(now=now)
        self.stdout.write(f"Rolled up {len(days)} day(s)" + (f": {days[0]} to {days[-1]}." if days else "."))
