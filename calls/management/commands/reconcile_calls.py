"""Follow calls nobody is watching: ask VCC about every call still marked placed, and record where it is."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from calls import dialing
from calls.models import Call
from calls.vcc import get_client


class Command(BaseCommand):
    help = "Ask VCC about calls still marked placed (run it every few minutes, e.g. from cron)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than", type=int, default=60, help="only calls placed this many seconds ago")

    def handle(self, *args: object, older_than: int, **options: object) -> None:
        cutoff = timezone.now() - timedelta(seconds=older_than)
        stuck = Call.objects.filter(state=Call.State.LIVE, requested_at__lte=cutoff).exclude(vcc_call_id="")
        ended = still_live = 0
        with get_client() as client:
            for call in stuck.iterator():
                call = dialing.refresh(call, client)
                if call.state == Call.State.ENDED:
                    ended += 1
                else:
                    still_live += 1
        lost = dialing.close_abandoned_clicks(older_than=timedelta(minutes=5))
        self.stdout.write(
            f"Reconciled calls: {ended} ended, {still_live} still live or unreachable, {lost} clicks never answered."
        )
