"""A person's new API token: its name, its scopes and an optional expiry (the tokens page and `create_api_token`)."""

from __future__ import annotations

from typing import Any

from django import forms

from calls.forms.once import SentOnce
from calls.models.api import SCOPES, ApiToken

MAX_EXPIRY_DAYS = 3650  # ten years: past that, leave it empty (no expiry)
# Tokens a person may have in use at once. The API's rates are per token: without a bound, more tokens would be
# more requests a minute (calls/api/limits.py).
MAX_ACTIVE_TOKENS = 20


class TokenForm(SentOnce):  # a reload of the answer (which shows the token) makes no second token
    name = forms.CharField(
        max_length=100,
        strip=True,
        help_text="What it is for, so you know which to revoke: the helpdesk, the lead form, …",
        error_messages={
            "required": "Give the token a name: what it is for (the helpdesk, the lead form, …).",
            "max_length": "Keep the name under 100 characters.",
        },
    )
    scopes = forms.MultipleChoiceField(
        choices=list(SCOPES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text="What the token may do. It acts as you: it can never do more than your role allows.",
        error_messages={
            "required": "Tick at least one scope: what the token may do.",
            "invalid_choice": f"%(value)s is not a scope: choose from {', '.join(SCOPES)}.",
        },
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)",
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        help_text="Leave it empty for a token that lasts until you revoke it.",
        error_messages={
            "invalid": "Give the expiry as a whole number of days (30), or leave it empty for none.",
            "min_value": "An expiry is at least 1 day; leave it empty for a token that does not expire.",
            "max_value": f"An expiry is at most {MAX_EXPIRY_DAYS:,} days; leave it empty for no expiry.",
        },
    )
    expires_in_days.widget.attrs.update(inputmode="numeric", min="1", max=str(MAX_EXPIRY_DAYS))

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.user is not None and ApiToken.objects.usable().filter(user=self.user).count() >= MAX_ACTIVE_TOKENS:
            raise forms.ValidationError(
                f"You have {MAX_ACTIVE_TOKENS} tokens in use, the most one person may: revoke one you no longer "
                "use, then make this one."
            )
        return cleaned
