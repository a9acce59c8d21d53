"""Outgoing webhook endpoints, for automation: the same checks and log as the Webhooks page.

manage.py webhook_endpoint add URL --events 'call.*' [--events contact.created] [--secret whsec_…] [--description D]
manage.py webhook_endpoint list
manage.py webhook_endpoint disable ID
manage.py webhook_endpoint delete ID

`add` prints the signing secret (the last word of its last line) once. Anything refused exits non-zero with why.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from calls.models.webhooks import WebhookEndpoint
from calls.webhooks import EVENT_TYPES, endpoints

BY = "manage.py webhook_endpoint"


class Command(BaseCommand):
    help = "Add, list, disable or delete outgoing webhook endpoints (as the Webhooks page does)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True, metavar="add|list|disable|delete")
        add = commands.add_parser("add", help="Add an endpoint and print its signing secret (shown only this once).")
        add.add_argument("url", help="Where the events are POSTed: https:// to a public address.")
        add.add_argument(
            "--events",
            action="append",
            required=True,
            help=f"Event types or wildcards (call.*, *), separated by commas or repeated: {', '.join(EVENT_TYPES)}.",
        )
        add.add_argument("--secret", default="", help="The signing secret to use (whsec_…); default: a new one.")
        add.add_argument("--description", default="", help="What receives them (shown on the page).")
        commands.add_parser("list", help="Every endpoint: id, state, events and URL.")
        for name, what in (("disable", "Pause an endpoint (nothing is sent until it is resumed on the page)."),
                           ("delete", "Delete an endpoint and its delivery log.")):  # fmt: skip
            command = commands.add_parser(name, help=what)
            command.add_argument("id", type=int, help="The endpoint's id (see list).")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "add":
            self.add(options)
        elif action == "list":
            self.list()
        else:
            endpoint = WebhookEndpoint.objects.filter(pk=options["id"]).first()
            if endpoint is None:
                raise CommandError(f"There is no webhook endpoint {options['id']}: see `webhook_endpoint list`.")
            if action == "disable":
                paused = endpoints.pause(endpoint, by=BY)
                self.stdout.write(f"Paused {endpoints.name(endpoint)}." if paused else f"{endpoint} was already off.")
            else:
                described = endpoints.name(endpoint)
                endpoints.delete(endpoint, by=BY)
                self.stdout.write(f"Deleted {described}.")

    def add(self, options: dict[str, Any]) -> None:
        patterns = [part for given in options["events"] for part in given.replace(" ", ",").split(",") if part]
        try:
            chosen = endpoints.EndpointSettings.checked(options["url"], patterns, options["description"])
            endpoint, secret = endpoints.create(chosen, by_user=None, by=BY, secret=options["secret"])
        except ValidationError as e:
            raise CommandError(" ".join(e.messages)) from e
        self.stdout.write(f"Added webhook endpoint {endpoint.pk}: {endpoint.url} ({', '.join(endpoint.event_types)}).")
        self.stdout.write("Its signing secret is shown only this once. Secret: " + secret)

    def list(self) -> None:
        found = WebhookEndpoint.objects.order_by("id")
        if not found:
            self.stdout.write("No webhook endpoints.")
        for endpoint in found:
            if endpoint.enabled:
                state = "failing" if endpoint.failing_since else "on"
            else:
                state = f"disabled: {endpoint.disabled_reason}" if endpoint.disabled_reason else "paused"
            events = ",".join(endpoint.event_types)
            self.stdout.write(f"{endpoint.pk}\t{state}\t{events}\t{endpoint.url}\t{endpoint.description}")
