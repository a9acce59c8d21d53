"""The contact page's open callbacks (templates/calls/contact_callbacks.html), read where they are shown: the page's
view stays as it is."""

from __future__ import annotations

from typing import Any

from django import template

from calls import permissions as perms
from calls.calling.common import _now
from calls.models import Callback, Contact

register = template.Library()


@register.inclusion_tag("calls/contact_callbacks.html", takes_context=True)
def contact_callbacks(context: template.Context, contact: Contact) -> dict[str, Any]:
    """The contact's open callbacks, soonest first (one query), for those who may see callbacks."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm(perms.VIEW_CALLBACK):
        return {"callbacks": []}
    now = _now()
    rows = list(
        Callback.objects.open()
        .filter(contact=contact)
        .select_related("assigned_to", "group", "created_by", "phone")
        .order_by("due_at", "pk")
    )
    return {"callbacks": rows, "now": now, "overdue": any(c.due_at <= now for c in rows)}
