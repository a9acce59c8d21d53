"""Import contacts from CSV (upload or paste, preview, fix, confirm) and export them; the work: calls/imports.py."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from calls import audit, contact_csv, import_files, imports
from calls import permissions as perms
from calls.audit.exports import audited_export
from calls.forms import ImportConfirmForm, ImportFixForm, ImportMappingForm, ImportUploadForm, first_error
from calls.import_files import ImportFileError
from calls.models import Contact, ContactImport
from calls.spreadsheet import csv_download
from calls.views.http import AuthedRequest


def _own_import(request: AuthedRequest, pk: uuid.UUID) -> ContactImport:
    """An import is seen and changed only by whoever started it."""
    return get_object_or_404(ContactImport, pk=pk, created_by=request.user)


OVERTAKEN = "This import was confirmed (or expired) meanwhile: nothing was changed."


def _recheck(imp: ContactImport, *, row: int = 0, cells: list[str] | None = None) -> bool:
    """Check the import again with its mapping (and row's corrected cells), if it still waits for a confirmation:
    a confirmation that came first (its job may be writing the contacts) keeps its status and rows."""
    with transaction.atomic():
        rechecking = ContactImport.objects.filter(pk=imp.pk, status=ContactImport.Status.PREVIEW).update(
            status=ContactImport.Status.CHECKING, progress=0, report={}, mapping=imp.mapping, updated_at=timezone.now()
        )
        if rechecking and cells is not None:
            imp.lines.filter(number=row).update(cells=cells)
    if not rechecking:
        return False
    imp.status, imp.progress, imp.report = ContactImport.Status.CHECKING, 0, {}
    # A job reads the import afresh from the database, so it sees what was just saved.
    imports.start("check", imp)
    return True


def _editable(imp: ContactImport) -> ContactImport:
    if imp.status != ContactImport.Status.PREVIEW:
        raise Http404("This import is not waiting for a confirmation.")
    return imp


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.ADD_CONTACT, raise_exception=True)
def import_start(request: AuthedRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            imp = imports.store_upload(user=request.user, filename=data["filename"], chunks=data["chunks"])
        except ImportFileError as e:
            form.add_error(None, str(e))
        else:
            return redirect("contact_import_preview", pk=imp.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "max_mb": import_files.MAX_BYTES // 2**20}
    return render(request, "calls/contact_import.html", context, status=status)


NOTHING_TO_IMPORT = "No row is ready to import: correct the rows with problems, or choose other columns."


def _anything_to_import(report: dict, may_update: bool) -> bool:
    """Whether confirming could write anything: a ready row, or a duplicate the person may update."""
    return bool(report.get("ready")) or (may_update and bool(report.get("duplicate_count")))


def _preview_context(request: AuthedRequest, imp: ContactImport) -> dict[str, object]:
    report = imp.report or {}
    may_update = request.user.has_perm(perms.CHANGE_CONTACT)
    context: dict[str, object] = {
        "imp": imp,
        "report": report,
        "waiting": imports.waiting_for_worker(imp),
        "progress": imports.current_progress(imp),
        "may_update": may_update,
        "encoding": (imp.result or {}).get("encoding", ""),
        "guessed_encoding": (imp.result or {}).get("encoding") == import_files.WINDOWS_1252,
        "can_confirm": _anything_to_import(report, may_update),
        "nothing_to_import": NOTHING_TO_IMPORT,
        "left_out": _left_out(imp),
    }
    if imp.status == ContactImport.Status.PREVIEW:
        initial = {k: "" if v is None else str(v) for k, v in imp.mapping.items()}
        context["mapping_form"] = ImportMappingForm(initial=initial, header=imp.header)
        confirm_form = ImportConfirmForm(duplicates=report.get("duplicates", []), may_update=may_update)
        context["confirm_form"] = confirm_form
        context["duplicates"] = [{**d, "field": confirm_form[f"dup_{d['row']}"]} for d in report.get("duplicates", [])]
        problems = [dict(p) for p in report.get("problems", [])]
        cells_of = imports.problem_cells(imp, [p["row"] for p in problems])
        for problem in problems:
            cells = cells_of.get(problem["row"], [])
            initial = {f"c{i}": cells[i] if i < len(cells) else "" for i in range(len(imp.header))}
            problem["form"] = ImportFixForm(initial=initial, header=imp.header, prefix=f"r{problem['row']}")
        context["problems"] = problems
        context["unlisted_duplicates"] = report.get("duplicate_count", 0) - len(report.get("duplicates", []))
    return context


def _left_out(imp: ContactImport) -> list[str]:
    """The named columns of the file that feed no field: their cells are not imported, which the preview says."""
    mapped = {i for i in imp.mapping.values() if i is not None}
    return [name for i, name in enumerate(imp.header) if name and i not in mapped]


@require_GET
@login_required
@permission_required(perms.ADD_CONTACT, raise_exception=True)
def import_preview(request: AuthedRequest, pk: uuid.UUID) -> HttpResponse:
    imp = _own_import(request, pk)
    return render(request, "calls/contact_import_preview.html", _preview_context(request, imp))


@require_GET
@login_required
@permission_required(perms.ADD_CONTACT, raise_exception=True)
def import_progress(request: AuthedRequest, pk: uuid.UUID) -> HttpResponse:
    """What htmx polls while a job runs: the progress bar, or a refresh of the page once it is done."""
    imp = _own_import(request, pk)
    if not imp.working:
        return HttpResponseClientRefresh()
    return render(request, "calls/contact_import_preview.html#progress", _preview_context(request, imp))


@require_POST
@login_required
@permission_required(perms.ADD_CONTACT, raise_exception=True)
def import_mapping(request: AuthedRequest, pk: uuid.UUID) -> HttpResponse:
    imp = _editable(_own_import(request, pk))
    form = ImportMappingForm(request.POST, header=imp.header)
    if not form.is_valid():
        messages.error(
            request, " ".join(map(str, form.non_field_errors())) or "Choose a column (or none) for each field."
        )
        return redirect("contact_import_preview", pk=imp.pk)
    imp.mapping = form.mapping()
    if not _recheck(imp):
        messages.error(request, OVERTAKEN)
    return redirect("contact_import_preview", pk=imp.pk)


@require_POST
@login_required
@permission_required(perms.ADD_CONTACT, raise_exception=True)
def import_fix(request: AuthedRequest, pk: uuid.UUID, row: int) -> HttpResponse:
    imp = _editable(_own_import(request, pk))
    if not 2 <= row < imp.row_count + 2:
        raise Http404("There is no such row.")
    form = ImportFixForm(request.POST, header=imp.header, prefix=f"r{row}")
    if not form.is_valid():
        messages.error(request, f"Row {row}: {first_error(form)}")
        return redirect("contact_import_preview", pk=imp.pk)
    cells = form.cells()
    if not _recheck(imp, row=row, cells=cells):
        messages.error(request, OVERTAKEN)
        return redirect("contact_import_preview", pk=imp.pk)
    # Said now, from the row alone: the check of the whole file may still be running.
    if still := imports.problems_of(imp, row, cells):
        messages.error(request, f"Row {row} was saved but still has a problem: {' '.join(still)}")
    else:
        messages.success(request, f"Row {row} corrected and checked again.")
    return redirect("contact_import_preview", pk=imp.pk)


@require_POST
@login_required
@permission_required(perms.ADD_CONTACT, raise_exception=True)
def import_confirm(request: AuthedRequest, pk: uuid.UUID) -> HttpResponse:
    imp = _own_import(request, pk)
    if imp.status != ContactImport.Status.PREVIEW:  # a second click while (or after) it imports: show where it is
        return redirect("contact_import_preview", pk=imp.pk)
    may_update = request.user.has_perm(perms.CHANGE_CONTACT)
    form = ImportConfirmForm(request.POST, duplicates=imp.report.get("duplicates", []), may_update=may_update)
    if imp.report.get("mapping") or not form.is_valid():
        messages.error(request, "Choose what to do with each duplicate, then confirm again.")
        return redirect("contact_import_preview", pk=imp.pk)
    if not _anything_to_import(imp.report, may_update):
        messages.error(request, NOTHING_TO_IMPORT)
        return redirect("contact_import_preview", pk=imp.pk)
    # Only one confirmation starts the job, however many times the button is pressed.
    started = ContactImport.objects.filter(pk=imp.pk, status=ContactImport.Status.PREVIEW).update(
        status=ContactImport.Status.IMPORTING, decisions=form.decisions(), progress=0, updated_at=timezone.now()
    )
    if started:
        imp.refresh_from_db()
        audit.record("import.confirm", object_type="import", object_id=imp.pk, after={"filename": imp.filename})
        imports.start("apply", imp)
    return redirect("contact_import_preview", pk=imp.pk)


@require_GET
@login_required
@permission_required(perms.EXPORT_CONTACTS, raise_exception=True)
def contact_export(request: AuthedRequest) -> StreamingHttpResponse:
    """Every contact with all their numbers, as CSV, streamed: a million rows never sit in memory."""
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    chunks = audited_export(contact_csv.export_chunks(Contact.objects.all()), kind="export.contacts", filters={})
    return csv_download(request, chunks, filename=f"contacts-{stamp}.csv")
