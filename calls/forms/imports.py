"""The steps of a contact import: the upload, the column mapping, a row's fixes, the confirmation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

SKIP, UPDATE = "skip", "update"


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="CSV file",
        help_text="Comma, semicolon or tab separated; UTF-8 (or Windows-1252, detected).",
    )
    text = forms.CharField(
        required=False,
        label="Or paste the rows",
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "Name,Company,Email,Phone\nGrace Hopper,Cobalt,…"}),
        help_text="The first line names the columns.",
    )

    def clean(self) -> dict[str, Any]:
        from calls import import_files

        super().clean()
        data = self.cleaned_data
        if self.errors:  # a field's own problem (a NUL in the pasted rows) says it better than "choose one"
            return data
        upload, text = data.get("file"), (data.get("text") or "").strip()
        if bool(upload) == bool(text):
            raise ValidationError("Choose a file, or paste the rows: one of the two.")
        limit = import_files.MAX_BYTES
        if upload and upload.size > limit:
            raise ValidationError(f"The file is larger than {limit // 2**20} MB: split it and import each part.")
        # Read later, a chunk at a time, by calls.imports.store_upload.
        data["chunks"] = upload.chunks(import_files.CHUNK) if upload else import_files.chunks_of(text.encode())
        data["filename"] = upload.name[:255] if upload else ""
        return data


class ImportMappingForm(forms.Form):
    """Which column feeds each field; the guess from the header names, corrected by the person."""

    def __init__(self, *args: Any, header: list[str], **kwargs: Any) -> None:
        from calls.import_rows import FIELDS

        super().__init__(*args, **kwargs)
        choices = [("", "— not imported —"), *((str(i), name or f"Column {i + 1}") for i, name in enumerate(header))]
        for name, label in FIELDS.items():
            self.fields[name] = forms.ChoiceField(label=label, choices=choices, required=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        used = [v for v in data.values() if v]
        if len(used) != len(set(used)):
            raise ValidationError("A column can feed one field only.")
        return data

    def mapping(self) -> dict[str, int | None]:
        return {k: int(v) if v else None for k, v in self.cleaned_data.items()}


class ImportFixForm(forms.Form):
    """A row's cells, corrected in the preview."""

    def __init__(self, *args: Any, header: list[str], **kwargs: Any) -> None:
        from calls.import_files import MAX_CELL

        super().__init__(*args, **kwargs)
        for i, name in enumerate(header):
            self.fields[f"c{i}"] = forms.CharField(
                label=name or f"Column {i + 1}",
                required=False,
                max_length=MAX_CELL,
                error_messages={"max_length": f"a cell is longer than {MAX_CELL:,} characters."},
            )

    def cells(self) -> list[str]:
        return [self.cleaned_data[f"c{i}"] for i in range(len(self.fields))]


class ImportConfirmForm(forms.Form):
    """What to do with each duplicate listed, and with those not listed one by one. A row that repeats a saved
    contact may update it; one that repeats an earlier row of the file may be merged into the contact that row
    makes (there is no existing contact to update)."""

    def __init__(self, *args: Any, duplicates: list[dict[str, Any]], may_update: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        skip = (SKIP, "Skip this row")
        for dup in duplicates:
            choices = [skip]
            if may_update and dup.get("contact_id"):
                choices.append((UPDATE, "Update the existing contact"))
            elif may_update:
                choices.append((UPDATE, f"Merge it into the contact from row {dup.get('of_row')}"))
            self.fields[f"dup_{dup['row']}"] = forms.ChoiceField(
                choices=choices, initial=SKIP, widget=forms.RadioSelect, label=f"Row {dup['row']}"
            )
        rest = [(SKIP, "Skip them")]
        if may_update:
            rest.append((UPDATE, "Update the contact (or merge into the row) each one repeats"))
        self.fields["rest"] = forms.ChoiceField(
            choices=rest, initial=SKIP, required=False, label="Duplicates not listed above"
        )

    def decisions(self) -> dict[str, str]:
        found = {k.removeprefix("dup_"): v for k, v in self.cleaned_data.items() if k.startswith("dup_")}
        return {**found, "rest": self.cleaned_data.get("rest") or SKIP}
