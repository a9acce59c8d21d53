"""The sync from VCC in Django's admin: preview, apply, and the history of runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from calls import permissions as perms
from calls.admin.base import BoundedSearch
from calls.models import (
    SyncRun,
)

if TYPE_CHECKING:
    from calls.views.http import AuthedRequest

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
        """GET: what the sync does; POST preview: a dry run, shown with an Apply button; POST apply: the real run."""
        from django.conf import settings

        from calls.calling import sync_with_vcc
        from calls.tasks import enqueue_sync

        self._allowed(request)
        if request.method not in ("GET", "POST"):
            return HttpResponse(status=405)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Sync from VCC",
            "enabled": settings.VCC_SYNC_ENABLED,
            "last_applied": SyncRun.objects.filter(dry_run=False).select_related("by").first(),
            "preview": None,
        }
        if request.method == "POST" and context["enabled"]:
            if "preview" in request.POST:
                context["preview"] = sync_with_vcc(by=request.user, dry_run=True)
            elif "apply" in request.POST:
                # The worker runs it (calls/tasks.py): VCC is asked once per active user, which a request should
                # not wait for; a VCC that is busy is asked again later.
                if enqueue_sync(by_id=request.user.pk):
                    self.message_user(
                        request,
                        "The sync is queued: the worker runs it within seconds. It shows in this list when it ends; "
                        "reload to see it.",
                        messages.SUCCESS,
                    )
                else:
                    self.message_user(request, "A sync is already waiting to run: this list shows it when it ends.")
                return HttpResponseRedirect(reverse("admin:calls_syncrun_changelist"))
            else:
                return HttpResponse("Say preview or apply.", status=400)
        return TemplateResponse(request, "admin/calls/syncrun/run.html", context)
