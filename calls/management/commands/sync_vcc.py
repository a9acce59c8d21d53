"""Bring agents, groups and callback numbers in line with VCC (User Admin API)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.calling import sync_with_vcc


class Command(BaseCommand):
    help = "Sync agents, groups and callback numbers from VCC's User Admin API (needs VCC_CLIENT_ID/SECRET)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")

    def handle(self, *args: object, dry_run: bool, **options: object) -> None:
        if not settings.VCC_SYNC_ENABLED:
            raise CommandError(
                "Sync is off: set VCC_CLIENT_ID and VCC_CLIENT_SECRET (API credentials with users:read)."
            )
        run = sync_with_vcc(dry_run=dry_run)
        if run.error:
            raise CommandError(f"VCC refused the sync, nothing was changed: {run.error}")
        for line in run.lines:
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(("Dry run, nothing saved: " if dry_run else "Synced: ") + run.summary))
