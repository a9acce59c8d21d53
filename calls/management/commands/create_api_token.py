"""Make an API token for a person, for automation: the token is the last word of the last line printed.

manage.py create_api_token USERNAME --scopes contacts:read,calls:write [--name N] [--expires-days D]
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from calls import tokens
from calls.forms.tokens import TokenForm
from calls.models.api import SCOPES

DEFAULT_NAME = "Made with create_api_token"


class Command(BaseCommand):
    help = "Make an API token acting as USERNAME with the given scopes, and print it (it is shown only this once)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username", help="Whose token: it acts as this person, with their role.")
        parser.add_argument(
            "--scopes", required=True, help=f"What it may do, separated by commas: {', '.join(SCOPES)}."
        )
        parser.add_argument("--name", default=DEFAULT_NAME, help="What it is for (shown on the tokens page).")
        parser.add_argument("--expires-days", default="", help="Days until it expires (default: never).")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_active:
            raise CommandError(f"There is no active user {username!r}: give the username of someone who logs in.")
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        data = {"name": options["name"], "scopes": scopes, "expires_in_days": options["expires_days"]}
        form = TokenForm(data=data, user=user)
        if not form.is_valid():
            raise CommandError(" ".join(str(error) for errors in form.errors.values() for error in errors))
        form.cleaned_data.pop("once", None)  # the page's guard against a resend (calls/forms/once.py)
        row, token = tokens.create_token(user=user, by="create_api_token", **form.cleaned_data)
        scope_words = ", ".join(row.scopes)
        expiry = f", expires {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else ""
        self.stdout.write(f"Made token {row.prefix}… ({row.name}) for {user.get_username()}: {scope_words}{expiry}.")
        self.stdout.write("It is shown only this once. Token: " + token)
