"""Expire the contact imports nobody confirmed within 24 hours and delete their rows.

The call-following worker (follow_calls) does this every hour; run it by hand to do it now.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from calls.models import ContactImport


class Command(BaseCommand):
    help = "Expire contact imports not confirmed within 24 hours, deleting their rows (follow_calls does it hourly)."

    def handle(self, *args: object, **options: object) -> None:
        expired = ContactImport.objects.expire_previews(now=timezone.now())
        self.stdout.write(f"Expired {expired} import{'s' if expired != 1 else ''} nobody confirmed.")
