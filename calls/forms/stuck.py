"""Closing a stuck call by hand: the reason a supervisor gives."""

from __future__ import annotations

from django import forms

from calls.models import MIN_CLOSE_REASON


class CloseCallForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        min_length=MIN_CLOSE_REASON,
        strip=True,
        error_messages={
            "required": f"Say why you close this call (at least {MIN_CLOSE_REASON} characters).",
            "min_length": f"Say a little more about why you close this call (at least {MIN_CLOSE_REASON} characters).",
            "max_length": "Keep the reason under 1,000 characters.",
        },
    )
