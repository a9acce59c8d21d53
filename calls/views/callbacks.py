"""The agent's home ("Today": their callbacks, and the lead's queues), every open callback (/callbacks/), and the
Done and Cancel buttons. The rules are calls/callbacks.py's."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from calls import callbacks
from calls import permissions as perms
from calls.calling.common import _now
from calls.forms.callbacks import CallbackListForm
from calls.models import Callback
from calls.queues import working
from calls.views.http import AuthedRequest

PER_PAGE = 50


@require_GET
@login_required
def home(request: AuthedRequest) -> HttpResponse:
    """Today: the person's callbacks overdue, due today and coming up. Those who place no callbacks get the
    contact list."""
    if not request.user.has_perm(perms.VIEW_CALLBACK):
        return redirect("contact_list")
    now = _now()
    context = {"due": callbacks.due_for(request.user, now), "now": now, "queues": working.queues_for(request.user)}
    return render(request, "calls/home.html", context)


@require_GET
@login_required
@permission_required(perms.VIEW_CALLBACK, raise_exception=True)
def callback_list(request: AuthedRequest) -> HttpResponse:
    """Every open callback for supervisors and admins (the agent's own and their groups' for agents), by due time,
    a page at a time by keyset."""
    user = request.user
    form = CallbackListForm(request.GET, show_people=user.has_perm(perms.VIEW_ALL_CALLS))
    now = _now()
    context: dict[str, object] = {"form": form, "now": now}
    if not form.is_valid():
        return render(request, "calls/callbacks.html", context, status=400)
    data = form.cleaned_data
    page = callbacks.page_of(
        Callback.objects.visible_to(user),
        now=now,
        show=data["show"],
        person=data.get("person"),
        group=data["group"],
        after=data["after"],
        size=PER_PAGE,
    )
    context |= {
        "callbacks": page.callbacks,
        "next_link": form.link(after=page.after) if page.after else "",
        "first_link": form.link(),  # the filters, without the cursor
    }
    return render(request, "calls/callbacks.html", context)


def _back(request: AuthedRequest) -> HttpResponse:
    """Back to the page the button was on (the home page, /callbacks/ with its filters, a contact's page)."""
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(back)
    return redirect("home")


def _close(request: AuthedRequest, pk: int, *, state: str) -> HttpResponse:
    # Someone else's callback is not found: an agent sees their own and their groups' only.
    callback = get_object_or_404(Callback.objects.visible_to(request.user).select_related("contact"), pk=pk)
    closed = callbacks.close(callback, user=request.user, now=_now(), state=state)
    if not closed:
        messages.info(request, f"The callback to {callback.contact.name} was already closed.")
    elif state == Callback.State.DONE:
        messages.success(request, f"The callback to {callback.contact.name} is done.")
    else:
        messages.success(request, f"The callback to {callback.contact.name} is cancelled.")
    return _back(request)


@require_POST
@login_required
@permission_required(perms.CHANGE_CALLBACK, raise_exception=True)
def callback_done(request: AuthedRequest, pk: int) -> HttpResponse:
    """Called back another way (or on a call that did not keep it): the callback is done."""
    return _close(request, pk, state=Callback.State.DONE)


@require_POST
@login_required
@permission_required(perms.CHANGE_CALLBACK, raise_exception=True)
def callback_cancel(request: AuthedRequest, pk: int) -> HttpResponse:
    return _close(request, pk, state=Callback.State.CANCELLED)
