from __future__ import annotations

import uuid

from django import template

from calls import phones

register = template.Library()


@register.simple_tag
def new_request_id() -> str:
    """A one-time id for a call button: the same click sent twice places one call."""
    return str(uuid.uuid4())


@register.filter
def phone(e164: str) -> str:
    """An E.164 number as people write it."""
    return phones.display(e164) if e164 else ""
