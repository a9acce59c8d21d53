"""Outgoing webhooks, for admins: the endpoints (add, edit, pause, resume, rotate the secret, delete) and each one's
delivery log (filters, Send again, Replay since …, Send test event). A secret is shown once, in the answer to the
POST that made it (never after a redirect, where it would have to wait in the session).

Every change goes through calls/webhooks/endpoints.py, which checks and logs it; the three resending actions are the
engine's (calls/webhooks/manual.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from calls import permissions as perms
from calls import tasks
from calls.forms.once import first_sending
from calls.forms.webhooks import DeliveryFilter, EndpointForm, ReplayForm, RotateForm
from calls.models.webhooks import MAX_PREVIOUS_SECRETS, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from calls.views.http import AuthedRequest
from calls.webhooks import endpoints, manual

LOG_PAGE = 50  # deliveries a page of the log shows
ATTEMPTS_SHOWN = 10  # attempts shown per delivery (a delivery has at most 8)

admin_only = permission_required(perms.MANAGE_WEBHOOKS, raise_exception=True)


def _by(request: AuthedRequest) -> str:
    return request.user.get_username()


def _secret_page(request: AuthedRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    response = render(request, template, context)
    add_never_cache_headers(response)  # the page may hold a secret: no cache keeps it
    return response


def _listed() -> QuerySet[WebhookEndpoint]:
    """The endpoints with their deliveries waiting and given up in the last 24 hours, each counted on the index
    (endpoint, status, id) rather than by joining a week of deliveries."""
    since = timezone.now() - timedelta(hours=24)
    return WebhookEndpoint.objects.select_related("created_by").annotate(
        pending=_count(status=WebhookDelivery.Status.PENDING),
        failed_day=_count(status=WebhookDelivery.Status.FAILED, created_at__gte=since),
    )


def _count(**filters: object) -> Coalesce:
    counted = (
        WebhookDelivery.objects.filter(endpoint=OuterRef("pk"), **filters)
        .order_by()
        .values("endpoint")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@require_GET
@login_required
@admin_only
def webhook_list(request: AuthedRequest) -> HttpResponse:
    return _secret_page(request, "calls/webhooks.html", {"endpoints": _listed()})


@require_http_methods(["GET", "POST"])
@login_required
@admin_only
def webhook_add(request: AuthedRequest) -> HttpResponse:
    form = EndpointForm(request.POST if request.method == "POST" else None)
    if form.is_valid() and first_sending(request, form):
        endpoint, secret = endpoints.create(form.chosen(), by_user=request.user, by=_by(request))
        context = {"endpoints": _listed(), "new_secret": secret, "secret_endpoint": endpoint, "added": True}
        return _secret_page(request, "calls/webhooks.html", context)
    if form.is_bound and not form.errors:  # sent again: a reload of the answer that showed the secret
        messages.info(request, "That endpoint was added already (its secret was shown then); nothing was added again.")
        return redirect("webhooks")
    return render(request, "calls/webhook_form.html", {"form": form, "endpoint": None})


@require_http_methods(["GET", "POST"])
@login_required
@admin_only
def webhook_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    initial = {"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_types}
    form = EndpointForm(request.POST if request.method == "POST" else None, initial=initial)
    if form.is_valid():
        changed = endpoints.change(endpoint, form.chosen(), by=_by(request))
        if changed:
            messages.success(request, f"Saved {endpoint}: {', '.join(changed).replace('_', ' ')} changed.")
        else:
            messages.info(request, f"Nothing changed for {endpoint}.")
        return redirect("webhook_detail", pk=endpoint.pk)
    return render(request, "calls/webhook_form.html", {"form": form, "endpoint": endpoint})


@require_POST
@login_required
@admin_only
def webhook_pause(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    if endpoints.pause(endpoint, by=_by(request)):
        messages.success(request, f"Paused {endpoint}: nothing is sent to it until you resume it.")
    else:
        messages.info(request, f"{endpoint} was already paused; nothing changed.")
    return _back(request, pk)


@require_POST
@login_required
@admin_only
def webhook_resume(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    if endpoints.resume(endpoint, by=_by(request)):
        messages.success(
            request, f"Resumed {endpoint}: new events are sent to it (Replay since … sends what it missed)."
        )
    else:
        messages.info(request, f"{endpoint} was already on; nothing changed.")
    return _back(request, pk)


def _back(request: AuthedRequest, pk: int) -> HttpResponse:
    """Back where the button was: the endpoint's page (next=detail) or the list."""
    if request.POST.get("next") == "detail":
        return redirect("webhook_detail", pk=pk)
    return redirect("webhooks")


@require_POST
@login_required
@admin_only
def webhook_delete(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    described = str(endpoint)
    endpoints.delete(endpoint, by=_by(request))
    messages.success(request, f"Deleted {described} and its delivery log.")
    return redirect("webhooks")


@require_POST
@login_required
@admin_only
def webhook_rotate(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    form = RotateForm(request.POST)
    if form.is_valid() and first_sending(request, form):
        secret = endpoints.rotate(endpoint, by=_by(request))
        return _secret_page(request, "calls/webhook_detail.html", {**_log(request, endpoint), "new_secret": secret})
    # sent again: a reload of the answer that showed the new secret (a malformed id is one too: nothing to rotate)
    messages.info(request, "The secret was rotated already (the new one was shown then); it was not rotated again.")
    return redirect("webhook_detail", pk=endpoint.pk)


@require_GET
@login_required
@admin_only
def webhook_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    return _secret_page(request, "calls/webhook_detail.html", _log(request, endpoint))


def _log(request: AuthedRequest, endpoint: WebhookEndpoint, replay: ReplayForm | None = None) -> dict[str, Any]:
    """The endpoint's page: its settings, the forms, and a page of its deliveries, newest first, with attempts."""
    filters = DeliveryFilter(request.GET)
    chosen = filters.filters()
    deliveries = endpoint.deliveries.select_related("event").defer("event__payload").order_by("-id")
    if chosen.get("status"):
        deliveries = deliveries.filter(status=chosen["status"])
    if chosen.get("type"):
        deliveries = deliveries.filter(event__type=chosen["type"])
    if chosen.get("subject"):
        deliveries = deliveries.filter(subject=chosen["subject"])
    if chosen.get("before"):
        deliveries = deliveries.filter(id__lt=chosen["before"])
    attempts = WebhookAttempt.objects.order_by("-at", "-id")
    page = list(
        deliveries.prefetch_related(Prefetch("attempt_rows", queryset=attempts, to_attr="tries"))[: LOG_PAGE + 1]
    )
    more = len(page) > LOG_PAGE
    page = page[:LOG_PAGE]
    for delivery in page:
        delivery.tries = delivery.tries[:ATTEMPTS_SHOWN]
    older = request.GET.copy()
    if more:
        older["before"] = str(page[-1].pk)
    now = timezone.now()
    return {
        "endpoint": endpoint,
        "deliveries": page,
        "filters": filters,
        "filtered": any(chosen.get(name) for name in ("status", "type", "subject")),
        "older": older.urlencode() if more else "",
        "replay": replay or ReplayForm(initial={"since": timezone.localtime() - timedelta(hours=1)}),
        "rotate": RotateForm(),
        "signing_until": endpoint.signing_until(now),  # each previous secret's end, never the secret
        "rotation_stops": endpoint.stopped_by_rotation(now),
        "max_previous": MAX_PREVIOUS_SECRETS,
    }


@require_POST
@login_required
@admin_only
def webhook_send_again(request: AuthedRequest, pk: int, delivery_id: int) -> HttpResponse:
    found = get_object_or_404(WebhookDelivery.objects.select_related("event"), pk=delivery_id, endpoint_id=pk)
    manual.send_again(found)
    messages.success(request, f"{found.event.type} {found.subject} ({found.event.msg_id}) will be sent again now.")
    return redirect("webhook_detail", pk=pk)


@require_POST
@login_required
@admin_only
def webhook_replay(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    form = ReplayForm(request.POST)
    if not form.is_valid():
        response = render(request, "calls/webhook_detail.html", _log(request, endpoint, replay=form), status=400)
        add_never_cache_headers(response)
        return response
    since = form.cleaned_data["since"]
    tasks.replay_webhooks.defer(endpoint_id=endpoint.pk, since=since.isoformat())
    endpoints.log.info(
        "webhook endpoint %s: replay of the events since %s asked for by %s",
        endpoints.name(endpoint),
        since.isoformat(),
        _by(request),
    )
    messages.success(
        request,
        f"The events since {since:%d %b %H:%M} that {endpoint} takes will be sent again, in order: they are being "
        "queued now, and show in the log below as they go.",
    )
    return redirect("webhook_detail", pk=pk)


@require_POST
@login_required
@admin_only
def webhook_test(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    sent = manual.send_test_event(endpoint)
    messages.success(request, f"A test event ({sent.event.msg_id}) is on its way: its attempts show below.")
    return redirect("webhook_detail", pk=pk)
