"""Closing a stuck call: a supervisor ends by hand a call that is still asking VCC or live, saying why."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from calls import permissions as perms
from calls.calling.common import wall_clock
from calls.forms.calling import first_error
from calls.forms.stuck import CloseCallForm
from calls.models import Call
from calls.views.access import login_required
from calls.views.http import AuthedRequest
from calls.webhooks import changes


@require_POST
@login_required
@permission_required(perms.VIEW_ALL_CALLS, raise_exception=True)
def close_call(request: AuthedRequest, pk: int) -> HttpResponse:
    """Close a call that is still asking VCC or live (VCC is not asked); the reason goes into its history."""
    form = CloseCallForm(request.POST)
    if not form.is_valid():
        get_object_or_404(Call, pk=pk)
        messages.error(request, f"{first_error(form)} The call was not closed.")
        return redirect("call_detail", pk)
    with transaction.atomic():
        call = get_object_or_404(Call.objects.select_for_update(), pk=pk)
        if not call.in_progress:
            messages.info(request, "That call has already ended; nothing was changed.")
            return redirect("call_detail", pk)
        with changes.call_change(call):
            call.record_closed(by=request.user, reason=form.cleaned_data["reason"], now=wall_clock())
    messages.success(request, "The call is closed; its history says who closed it and why.")
    return redirect("call_detail", pk)
