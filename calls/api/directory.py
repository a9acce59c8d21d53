"""The API's reads of what admins keep: agents, groups (with ready counts), callback numbers, dispositions."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from calls.api.auth import require
from calls.models import DispositionCode

router = Router(tags=["directory"])


class Disposition(Schema):
    code: str
    description: str
    action: str  # "", "number_dnc" or "contact_dnc": what choosing it also does
    active: bool


@router.get(
    "/dispositions", response=list[Disposition], summary="The wrap-up dispositions, in the order agents see them"
)
def dispositions(request: HttpRequest) -> list[Disposition]:
    require(request, "calls:read")
    return [
        Disposition(code=d.code, description=d.description, action=d.action, active=d.is_active)
        for d in DispositionCode.objects.order_by("position", "code")
    ]
