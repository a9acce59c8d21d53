"""See, make and remove VCC's webhook subscriptions: VCC then pushes call and presence events to vccweb."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.vcc import VCCError, budget
from calls.vcc.webhooks import EVENTS, WebhooksClient, check_url, disabled_note

MAKE_A_SECRET = "python -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())'"


class Command(BaseCommand):
    help = "List, make or remove VCC webhook subscriptions (VCC_CLIENT_ID/SECRET allowed admin:read, admin:write)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="the subscriptions VCC has")
        actions.add_parser("types", help="the event types VCC offers")
        subscribe = actions.add_parser("subscribe", help="have VCC push events to this vccweb")
        subscribe.add_argument("--url", default="", help="where VCC delivers (default SITE_URL + /vcc/events/)")
        subscribe.add_argument("--name", default="vccweb")
        unsubscribe = actions.add_parser("unsubscribe", help="stop a subscription")
        unsubscribe.add_argument("id")

    def handle(self, *args: object, action: str, **options: str) -> None:
        if not settings.VCC_SYNC_ENABLED:
            raise CommandError(
                "Set VCC_CLIENT_ID and VCC_CLIENT_SECRET (API credentials allowed admin:read and admin:write)."
            )
        try:
            # A person's few requests: they go like a click, not behind the polls' share of the budget.
            with budget.priority(budget.CLICK), WebhooksClient() as client:
                getattr(self, f"_{action}")(client, **options)
        except VCCError as exc:
            if exc.local:  # refused before asking VCC (a secret too short for a new subscription)
                raise CommandError(f"{exc.user_message} Make one with: {MAKE_A_SECRET}") from exc
            raise CommandError(f"VCC refused: {exc.user_message} ({exc.message})") from exc

    def _list(self, client: WebhooksClient, **options: str) -> None:
        found = client.subscriptions()
        for sub in found:
            state = "enabled" if sub.get("enabled", True) else "disabled"
            self.stdout.write(f"{sub.get('id')}  {sub.get('name')}  {sub.get('url')}  {state}  {sub.get('events')}")
        self.stdout.write(f"{len(found)} subscription{'s' if len(found) != 1 else ''}.")

    def _types(self, client: WebhooksClient, **options: str) -> None:
        for item in client.event_types():
            self.stdout.write(f"{item.get('name')}  {', '.join(map(str, item.get('versions') or []))}")

    def _subscribe(self, client: WebhooksClient, *, url: str, name: str, **options: str) -> None:
        if not settings.VCC_WEBHOOK_SECRETS:
            raise CommandError(
                f"Set VCC_WEBHOOK_SECRETS first (the secret VCC signs with); make one with: {MAKE_A_SECRET}"
            )
        url = url or settings.SITE_URL.rstrip("/") + "/vcc/events/"
        try:
            check_url(url, allow_http=settings.VCC_SANDBOX or settings.DEBUG)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        sub, made, disabled = client.ensure_subscribed(name=name, url=url, secret=settings.VCC_WEBHOOK_SECRETS[0])
        if made:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Subscribed {sub.get('id') or '(VCC gave no id)'}: VCC delivers {', '.join(EVENTS)} to {url}."
                    + disabled_note(disabled)
                )
            )
        else:
            self.stdout.write(f"Already subscribed ({sub.get('id')}): VCC delivers to {url}; nothing changed.")

    def _unsubscribe(self, client: WebhooksClient, *, id: str, **options: str) -> None:
        client.unsubscribe(id)
        self.stdout.write(self.style.SUCCESS(f"Removed subscription {id}."))
