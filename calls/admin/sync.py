"""The sync from VCC in Django's admin: preview, apply, and the history of runs."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from calls import permissions as perms
from calls.admin.base import BoundedSearch
from calls.models import (
    SyncRun,
)

if TYPE_CHECKING:
    from calls.views.http import AuthedRequest

PREVIEW_SHOWN = timedelta(hours=1)  # a preview older than this is not offered to apply from: VCC may have changed

# A tuple: Django takes a list or a tuple for both, and django-stubs type each list differently (invariant).
_SHOWN = ("started_at", "finished_at", "kind", "by", "summary", "changes")


@admin.register(SyncRun)
class SyncRunAdmin(BoundedSearch, admin.ModelAdmin):
    """Each run of the sync, kept as a record; new runs start from the "Run the sync" page."""

    list_display = ["started_at", "kind", "by", "summary", "finished_at"]
    list_filter = ["dry_run"]
    change_list_template = "admin/calls/syncrun/change_list.html"
    fields = _SHOWN
    readonly_fields = _SHOWN
    list_select_related = ["by"]

    @admin.display(description="kind", ordering="dry_run")
    def kind(self, run: SyncRun) -> str:
        return "Dry run (preview)" if run.dry_run else "Applied"

    @admin.display(description="what changed")
    def changes(self, run: SyncRun) -> str:
        if not run.lines:
            return "Nothing."
        return format_html(
            "<ul class='sync-lines'>{}</ul>", format_html_join("", "<li>{}</li>", ((ln,) for ln in run.lines))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a run is started from run_view, never typed in

    def has_change_permission(self, request: HttpRequest, obj: SyncRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SyncRun | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        run = path("run/", self.admin_site.admin_view(self.run_view), name="calls_syncrun_run")
        return [run, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {"can_run_sync": request.user.has_perm(perms.RUN_SYNC), **(extra_context or {})}
        return super().changelist_view(request, extra)

    @staticmethod
    def _allowed(request: HttpRequest) -> None:
        if not request.user.has_perm(perms.RUN_SYNC):
            raise PermissionDenied

    def run_view(self, request: AuthedRequest) -> HttpResponse:
        """GET: what the sync does, and the person's latest preview (a dry run) with an Apply button; POST preview or
        apply: queued for the worker, which asks VCC once per group and per active user. A request should not wait
        for that: at the sync's share of the VCC request budget, 200 agents take minutes."""
        from django.conf import settings

        from calls.tasks import enqueue_sync, sync_waiting

        self._allowed(request)
        if request.method not in ("GET", "POST"):
            return HttpResponse(status=405)
        enabled = settings.VCC_SYNC_ENABLED
        if request.method == "POST" and enabled:
            if "preview" not in request.POST and "apply" not in request.POST:
                return HttpResponse("Say preview or apply.", status=400)
            dry_run = "preview" in request.POST
            if enqueue_sync(by_id=request.user.pk, dry_run=dry_run):
                what, done = ("preview", "this page shows it") if dry_run else ("sync", "this list shows it")
                self.message_user(
                    request,
                    f"The {what} is queued: the worker runs it within seconds, and {done} when it ends.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, "A sync or a preview is already waiting to run: try again once it ends.")
            here = reverse("admin:calls_syncrun_run" if dry_run else "admin:calls_syncrun_changelist")
            return HttpResponseRedirect(here)
        last_applied = SyncRun.objects.filter(dry_run=False).select_related("by").first()
        previews = SyncRun.objects.filter(
            dry_run=True, by=request.user, finished_at__isnull=False, started_at__gte=timezone.now() - PREVIEW_SHOWN
        )
        if last_applied is not None:
            previews = previews.filter(started_at__gt=last_applied.started_at)  # older than the last run: stale
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Sync from VCC",
            "enabled": enabled,
            "last_applied": last_applied,
            "preview": previews.order_by("-started_at").first(),
            "waiting": enabled and sync_waiting(),
        }
        return TemplateResponse(request, "admin/calls/syncrun/run.html", context)
