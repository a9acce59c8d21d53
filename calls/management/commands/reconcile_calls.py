"""One round of following: ask VCC about every live call that is due, and close clicks VCC never answered."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandParser

from calls import calling


class Command(BaseCommand):
    help = "Follow live calls once and close abandoned clicks (follow_calls does this continuously)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=500, help="most calls to ask VCC about")

    def handle(self, *args: object, limit: int, **options: object) -> None:
        done = async_to_sync(calling.follow_due)(limit=limit)
        self.stdout.write(
            f"Reconciled calls: asked VCC about {done.asked}, {done.ended} ended, {done.errors} could not be asked, "
            f"{done.closed_abandoned} clicks never answered."
        )
