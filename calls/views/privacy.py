"""Privacy's pages: the retention policy (admins), erasing a contact and a contact's data (supervisors)."""

from __future__ import annotations

import json
import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from calls import audit
from calls import permissions as perms
from calls.forms.privacy import RetentionForm
from calls.models import Contact, RetentionPolicy
from calls.privacy import erasure, retention, subject
from calls.views.http import AuthedRequest

log = logging.getLogger(__name__)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.CHANGE_RETENTION, raise_exception=True)
def retention_policy(request: AuthedRequest) -> HttpResponse:
    policy = RetentionPolicy.current()
    form = RetentionForm(request.POST if request.method == "POST" else None, instance=policy)
    if request.method == "POST":
        if form.is_valid():
            before = {name: form.initial.get(name) for name in form.changed_data}
            policy = form.save(commit=False)
            policy.updated_by = request.user
            policy.save()
            log.info("retention policy changed by user %s", request.user.pk)
            if form.changed_data:  # no trigger records the policy: what it deletes, the audit entries included
                after = {name: getattr(policy, name) for name in form.changed_data}
                audit.record(
                    "retention.update", object_type="retention", object_id=policy.pk, before=before, after=after
                )
            messages.success(request, "Saved. The retention job applies it within the hour.")
            return redirect("retention_policy")
        status = 400
    else:
        status = 200
    report = retention.retention_health(now=timezone.now())
    return render(request, "privacy/retention.html", {"form": form, "retention": report}, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.ERASE_CONTACT, raise_exception=True)
def contact_erase(request: AuthedRequest, pk: int) -> HttpResponse:
    """A confirm page that says what goes and what stays; its POST erases the contact."""
    contact = get_object_or_404(Contact, pk=pk)
    if request.method == "POST":
        try:
            erasure.erase_contact(contact_pk=contact.pk, by=request.user, now=timezone.now())
        except Contact.DoesNotExist:
            messages.info(request, "That contact was erased or deleted meanwhile.")
            return redirect("contact_list")
        # The message names no one: it may be kept in the session until shown.
        messages.success(request, f"Contact {pk} erased. Their calls stay in the call log as “Erased contact”.")
        return redirect("contact_list")
    return render(request, "privacy/erase.html", {"plan": erasure.plan_erasure(contact)})


@require_GET
@login_required
@permission_required(perms.EXPORT_SUBJECT_DATA, raise_exception=True)
def contact_data(request: AuthedRequest, pk: int) -> HttpResponse:
    """Everything held about the contact: a page, or (?format=json) one JSON file to download."""
    contact = get_object_or_404(Contact.objects.select_related("owner"), pk=pk)
    data = subject.subject_data(contact, now=timezone.now(), by=request.user.get_username())
    log.info("subject data of contact %s downloaded by user %s", pk, request.user.pk)
    audit.record(
        "export.subject", object_type="contact", object_id=pk, contact_id=pk, after={"calls": len(data["calls"])}
    )
    if request.GET.get("format") == "json":
        response = HttpResponse(
            json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="contact-{pk}-data.json"'
        return response
    return render(request, "privacy/subject.html", {"contact": contact, "data": data})
