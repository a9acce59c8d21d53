"""/audit/: the audit trail, for admins (calls.view_auditentry); read only, with no POST route."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from calls.audit import trail
from calls.views.http import AuthedRequest

VIEW_AUDIT = "calls.view_auditentry"
# Where an entry's object has a page of its own.
OBJECT_PAGES = {"contact": "/contacts/{}/", "call": "/calls/{}/", "webhook": "/integrations/webhooks/{}/"}


@require_GET
@login_required
@permission_required(VIEW_AUDIT, raise_exception=True)
@vary_on_headers("HX-Request")
def audit_trail(request: AuthedRequest) -> HttpResponse:
    """Who changed, exported or erased what, newest first, filtered by person, object, kind and dates."""
    form = trail.AuditFilter(request.GET)
    form.is_valid()  # a damaged filter is dropped (cleaned_data keeps the valid ones), and said
    opts = form.cleaned_data
    result = trail.page(opts)
    trail.name_roles(result.entries)
    for entry in result.entries:
        pattern = OBJECT_PAGES.get(entry.object_type)
        entry.object_url = pattern.format(entry.object_id) if pattern and entry.object_id.isdigit() else ""  # type: ignore[attr-defined]
        if entry.contact_id and entry.object_type != "contact":
            entry.contact_url = OBJECT_PAGES["contact"].format(entry.contact_id)  # type: ignore[attr-defined]
    context = {
        "form": form,
        "entries": result.entries,
        "older_link": f"?{form.params(after=result.older)}" if result.older else "",
        "first_link": f"?{form.params()}" if opts.get("after") else "",
        "contact_id": opts.get("contact"),
    }
    template = "audit/trail.html#results" if request.htmx and not request.htmx.boosted else "audit/trail.html"
    return render(request, template, context, status=400 if form.errors else 200)
