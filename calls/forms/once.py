"""A form whose answer shows a secret once (an API token, a webhook endpoint's signing secret) is answered to the POST
itself, not after a redirect (the secret would wait in the session). A reload of that answer sends the form again:
`SentOnce` gives each form read its own id, and `first_sending` makes the second sending do nothing."""

from __future__ import annotations

import uuid

from django import forms
from django.http import HttpRequest

SENT_FORMS = "sent_once_forms"  # the ids of the last such forms this session sent
KEEP = 50


class SentOnce(forms.Form):
    """Mixin: the form's own id (a hidden field, fresh at each read of the page)."""

    once = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, required=False)


def first_sending(request: HttpRequest, form: forms.Form) -> bool:
    """Whether this is the first time this session sends this form (a form without an id always counts as the
    first); pops the id out of cleaned_data, so the rest is the form's own fields."""
    once = form.cleaned_data.pop("once", None)
    if not once:
        return True
    sent = request.session.get(SENT_FORMS, [])
    if str(once) in sent:
        return False
    request.session[SENT_FORMS] = [*sent, str(once)][-KEEP:]
    return True
