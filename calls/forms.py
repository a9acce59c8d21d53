from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms import BaseInlineFormSet, inlineformset_factory

from calls import cursors, phones
from calls import permissions as perms
from calls.models import (
    Agent,
    AgentGroup,
    Call,
    CallbackNumber,
    Consent,
    Contact,
    ContactPhone,
    DispositionCode,
)

ONLY_SUPERVISORS = "Only a supervisor can clear do-not-call."
MARK_HELP = "Anyone may mark do-not-call; only a supervisor can clear it."


def _may_clear_do_not_call(user) -> bool:
    return user.has_perm(perms.OVERRIDE_DO_NOT_CALL)


def _refuse_clearing(form: forms.ModelForm, user, what: str) -> bool:
    """Anyone may mark do-not-call; clearing it is a supervisor's decision (perm calls.override_do_not_call)."""
    marked = form.cleaned_data.get("do_not_call")
    if form.instance.pk and form.instance.do_not_call and not marked and not _may_clear_do_not_call(user):
        raise ValidationError(f"{what} is marked do not call. {ONLY_SUPERVISORS}", code="dnc_clear")
    return marked


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "company", "email", "owner", "do_not_call", "consent_override", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args: object, user, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["consent_override"].choices = [("", "Country default"), *Consent.choices]
        self.fields["owner"].label_from_instance = lambda user: user.get_full_name() or user.username
        self.fields["do_not_call"].help_text = MARK_HELP
        if self.instance.pk is None:
            self.initial.setdefault("owner", user.pk)  # whoever creates a contact owns it unless they choose

    def clean_do_not_call(self) -> bool:
        return _refuse_clearing(self, self.user, "This contact")


class ContactPhoneForm(forms.ModelForm):
    number = forms.CharField(
        max_length=phones.MAX_INPUT,
        help_text="Any format: +44 20 7946 0100, 020 7946 0100, (312) 555-0100 with +1…",
    )

    class Meta:
        model = ContactPhone
        fields = ["label", "number", "is_primary", "do_not_call"]

    def __init__(self, *args: object, user, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_number(self) -> str:
        number = phones.to_e164(self.cleaned_data["number"])
        renumbering_blocked = self.instance.pk and self.instance.do_not_call and number != self.instance.number
        if renumbering_blocked and not _may_clear_do_not_call(self.user):
            raise ValidationError(f"This number is marked do not call. {ONLY_SUPERVISORS}")
        return number

    def clean_do_not_call(self) -> bool:
        return _refuse_clearing(self, self.user, "This number")

    def validate_constraints(self) -> None:
        # One row may take the primary flag from another row of the same save: the formset checks that rule
        # across all rows, and the view saves in an order the database accepts.
        try:
            self.instance.validate_constraints(exclude=self._get_validation_exclusions() | {"is_primary"})
        except ValidationError as e:
            codes = {err.code for errs in getattr(e, "error_dict", {}).values() for err in errs}
            if codes & {"unique", "unique_together"}:
                # Say it where the person typed the number, in words (Django's text names the constraint).
                number = phones.display(self.cleaned_data.get("number", ""))
                self.add_error("number", f"This contact already has {number}.")
                return
            self._update_errors(e)

    def other_contacts(self) -> list[Contact]:
        """Other contacts that have this number too: worth a warning, not a refusal (a shared office line)."""
        number = self.cleaned_data.get("number") if hasattr(self, "cleaned_data") else None
        if not number:
            return []
        others = Contact.objects.filter(phones__number=number)
        if self.instance.contact_id:
            others = others.exclude(pk=self.instance.contact_id)
        return list(others.order_by("name")[:3])


class BaseContactPhoneFormSet(BaseInlineFormSet):
    def __init__(self, *args: object, user, **kwargs: object) -> None:
        self.user = user
        super().__init__(*args, form_kwargs={"user": user}, **kwargs)

    def clean(self) -> None:
        if any(self.errors):
            return
        if not _may_clear_do_not_call(self.user):
            for form in self.deleted_forms:
                if form.instance.pk and form.instance.do_not_call:
                    raise ValidationError(
                        f"{phones.display(form.instance.number)} is marked do not call. {ONLY_SUPERVISORS}"
                    )
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        numbers = [f.cleaned_data["number"] for f in kept]
        duplicates = {n for n in numbers if numbers.count(n) > 1}
        if duplicates:
            raise ValidationError(f"{', '.join(phones.display(n) for n in sorted(duplicates))} is listed twice.")
        primaries = [f for f in kept if f.cleaned_data.get("is_primary")]
        if len(primaries) > 1:
            raise ValidationError("Only one number can be primary: untick all but one.")
        super().clean()


# A contact has a handful of numbers. Django builds as many forms as TOTAL_FORMS says, up to absolute_max (2,000
# by default): one crafted POST then took 25 s and answered 2.4 MB. More than this is refused with a message.
MAX_PHONES_PER_CONTACT = 20

ContactPhoneFormSet = inlineformset_factory(
    Contact,
    ContactPhone,
    form=ContactPhoneForm,
    formset=BaseContactPhoneFormSet,
    extra=1,
    can_delete=True,
    max_num=MAX_PHONES_PER_CONTACT,
    absolute_max=MAX_PHONES_PER_CONTACT,
    validate_max=True,
)


# --- What the calling views accept -----------------------------------------------------------------------
# Every POST (and every query parameter that selects something) is read by a form: a malformed value is a
# message and a 400, never a 500 ("²".isdigit() is true, int("²") raises; PostgreSQL refuses NUL characters).

OUT_OF_DATE = "This page is out of date: reload it and click again."


class PkListField(forms.Field):
    """A list of database ids (from checkboxes sent under one name)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": "Pick from the list: reload the page if it is out of date."}

    def to_python(self, value: object) -> list[int]:
        values = value if isinstance(value, list | tuple) else ([value] if value else [])
        pks: list[int] = []
        for item in values:
            text = str(item)
            if not (text.isascii() and text.isdecimal()) or len(text) > 18:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            if int(text) not in pks:
                pks.append(int(text))
        return pks


class ClickForm(forms.Form):
    """A call button's click: a one-time id, so that the same click twice places one call."""

    request_id = forms.UUIDField(error_messages={"required": OUT_OF_DATE, "invalid": OUT_OF_DATE})


class NumberClickForm(ClickForm):
    """A click on a contact's number: "me:<phone>" or "group:<phone>", the ticked groups, a caller ID, a reason."""

    call = forms.RegexField(
        r"^(me|group):[0-9]{1,18}\Z",
        error_messages={"required": "Pick a number to call.", "invalid": "Pick a number to call."},
    )
    groups = PkListField(required=False)
    clid = forms.IntegerField(
        required=False, min_value=1, error_messages={"invalid": "Pick a caller ID from the list."}
    )

    def __init__(self, data, *args: object, **kwargs: object) -> None:
        super().__init__(data, *args, **kwargs)
        # Each number has its own "reason to call anyway" box; read the one of the number clicked.
        self.fields["dnc_reason"] = forms.CharField(required=False, max_length=500, strip=True)
        phone = str(data.get("call", "")).partition(":")[2]
        if phone.isascii() and phone.isdecimal():
            self.data = data.copy()
            self.data["dnc_reason"] = data.get(f"dnc_reason_{phone}", "")

    @property
    def via_groups(self) -> bool:
        return self.cleaned_data["call"].startswith("group:")

    @property
    def phone_pk(self) -> int:
        return int(self.cleaned_data["call"].partition(":")[2])


class DialPreviewForm(forms.Form):
    """The contact page's choices, sent as they change so the preview can say what a click would send."""

    groups = PkListField(required=False)
    clid = forms.IntegerField(required=False, min_value=1)
    ticked = forms.BooleanField(required=False)  # whether `groups` was sent (none ticked is a choice too)
    only_me = forms.BooleanField(required=False)  # readiness of the caller alone (the contact list has no groups)


class RecordingForm(forms.Form):
    recording = forms.ChoiceField(
        choices=[("Paused", "Pause"), ("Started", "Resume")],
        error_messages={
            "required": "Choose to pause or resume the recording.",
            "invalid_choice": "Choose to pause or resume the recording.",
        },
    )


class WrapUpForm(forms.Form):
    disposition = forms.ModelChoiceField(
        queryset=None,
        error_messages={"required": "Choose how the call went.", "invalid_choice": "Choose how the call went."},
    )
    notes = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        from calls.models import DispositionCode

        self.fields["disposition"].queryset = DispositionCode.objects.filter(is_active=True)


def first_error(form: forms.Form) -> str:
    """The first problem a form found, as one sentence for the person."""
    for errors in form.errors.values():
        for error in errors:
            return error
    return "Check what you entered."


# --- Call log and reports --------------------------------------------------------------------------

NONE = "-"  # a filter value meaning "none": no disposition, no CLID (no real value is a single dash)
SORTS = [
    ("-time", "Newest first"),
    ("time", "Oldest first"),
    ("-duration", "Longest talk first"),
    ("duration", "Shortest talk first"),
]
CURSOR = re.compile(r"^(-1|[0-9]{1,17})_([0-9]{1,18})$")  # in range for datetimes and bigints


def _cursor(value: str) -> tuple[int, int] | None:
    """A page position: the sort value (microseconds since the epoch, or seconds of talk) and the call id."""
    if not value:
        return None
    match = CURSOR.match(value)
    if not match:
        raise ValidationError("This page link is damaged: start again from the first page.")
    return int(match[1]), int(match[2])


class TimelineForm(forms.Form):
    """Which page of a contact's calls: `older` is where the page before it ended (the call log's cursor)."""

    older = forms.CharField(max_length=50, required=False)

    def clean_older(self) -> tuple[int, int] | None:
        return _cursor(self.cleaned_data["older"])


def _check_years(form: forms.Form, data: dict) -> bool:
    """Dates far outside the call log's life are typing mistakes (and would overflow date arithmetic)."""
    ok = True
    for name in ("start", "end"):
        if data.get(name) and not 2000 <= data[name].year <= 2999:
            form.add_error(name, "Choose a date between the years 2000 and 2999.")
            ok = False
    return ok


class _Choosable(forms.CharField):
    """Free text shown as a menu of known values; a value not on the menu (an old code in a link) still works."""

    widget = forms.Select


class CallLogFilter(forms.Form):
    """The call log's filters, sort and page position, all from the query string."""

    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    agent = forms.ModelChoiceField(Agent.objects.all(), required=False, empty_label="Any agent")
    group = forms.ModelChoiceField(AgentGroup.objects.all(), required=False, empty_label="Any group")
    via = forms.ChoiceField(
        choices=[("", "Agent or group"), ("agent", "From one agent"), ("group", "Via groups")],
        required=False,
        label="From",
    )
    outcome = forms.ChoiceField(choices=[("", "Any outcome"), *Call.Outcome.choices], required=False)
    disposition = _Choosable(max_length=255, required=False)
    clid = _Choosable(max_length=32, required=False, label="Caller ID")
    has_error = forms.ChoiceField(
        choices=[("", "With or without"), ("yes", "With an error"), ("no", "Without an error")],
        required=False,
        label="Errors",
    )
    wrap_up = forms.BooleanField(required=False, label="Only calls to wrap up")
    contact = forms.IntegerField(min_value=1, max_value=2**63 - 1, required=False, widget=forms.HiddenInput)
    hour = forms.IntegerField(min_value=0, max_value=23, required=False, widget=forms.HiddenInput)
    error = forms.CharField(max_length=2000, required=False, widget=forms.HiddenInput)
    error_status = forms.IntegerField(min_value=0, max_value=999, required=False, widget=forms.HiddenInput)
    sort = forms.ChoiceField(choices=SORTS, required=False)
    after = forms.CharField(max_length=50, required=False, widget=forms.HiddenInput)
    before = forms.CharField(max_length=50, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        codes = list(DispositionCode.objects.values_list("code", flat=True))
        self.fields["disposition"].widget.choices = self._menu(
            "disposition", [("", "Any disposition"), (NONE, "No disposition"), *((c, c) for c in codes)]
        )
        numbers = list(CallbackNumber.objects.values_list("number", "label"))
        self.fields["clid"].widget.choices = self._menu(
            "clid", [("", "Any caller ID"), (NONE, "VCC's default"), *((n, f"{label} ({n})") for n, label in numbers)]
        )

    def _menu(self, name: str, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
        value = self.data.get(name, "") if self.is_bound else ""
        if value and value not in {c for c, _label in choices}:
            choices.append((value, value))
        return choices

    def clean_after(self) -> tuple[int, int] | None:
        return _cursor(self.cleaned_data["after"])

    def clean_before(self) -> tuple[int, int] | None:
        return _cursor(self.cleaned_data["before"])

    def clean(self) -> dict[str, object]:
        data = super().clean()
        _check_years(self, data)
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "The end date is before the start date.")
        if data.get("after") and data.get("before"):
            raise ValidationError("This page link is damaged: start again from the first page.")
        data["sort"] = data.get("sort") or "-time"
        return data

    def menus(self) -> list[dict[str, object]]:
        """The visible filters as plain data for the template to draw: Django's widget templates cost ~5 ms a menu,
        and the call log is drawn on every filter change."""
        labels = {
            "agent": lambda: [(str(pk), f"{name} ({display_id})") for pk, name, display_id in
                              Agent.objects.values_list("pk", "name", "display_id")],
            "group": lambda: [(str(pk), f"{name} ({display_id})") for pk, name, display_id in
                              AgentGroup.objects.values_list("pk", "name", "display_id")],
        }  # fmt: skip
        out = []
        for bound in self.visible_fields():
            field, name = bound.field, bound.name
            value = self.data.get(name, "") if self.is_bound else ""
            item = {"name": name, "id": bound.id_for_label, "label": bound.label, "value": value}
            if isinstance(field, forms.BooleanField):
                item["kind"] = "checkbox"
            elif isinstance(field, forms.DateField):
                item["kind"] = "date"
            else:
                item["kind"] = "select"
                if name in labels:
                    choices = [("", field.empty_label), *labels[name]()]
                elif isinstance(field, _Choosable):
                    choices = field.widget.choices
                else:
                    choices = field.choices
                item["options"] = [(str(v), label, str(v) == value) for v, label in choices]
            out.append(item)
        return out

    def filters(self) -> dict[str, object]:
        """The filters that are set (not the sort or page), as query string values: for links and the export."""
        out = {}
        for name in self.fields:
            if name in ("sort", "after", "before"):
                continue
            value = self.cleaned_data.get(name)
            if value is None or value is False or value == "":
                continue
            if isinstance(value, models.Model):
                value = value.pk
            elif value is True:
                value = "on"
            out[name] = value
        return out


class ReportFilter(forms.Form):
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    agent = forms.ModelChoiceField(Agent.objects.all(), required=False, empty_label="Everyone")
    group = forms.ModelChoiceField(AgentGroup.objects.all(), required=False, empty_label="Any group")

    MAX_DAYS = 366 * 3

    def __init__(self, *args: object, today, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self) -> dict[str, object]:
        data = super().clean()
        if not _check_years(self, data):
            return data
        end = data.get("end") or self.today
        start = data.get("start") or end - timedelta(days=29)
        if end < start:
            self.add_error("end", "The end date is before the start date.")
        elif (end - start).days >= self.MAX_DAYS:
            self.add_error("start", "Choose at most three years.")
        if data.get("agent") and data.get("group"):
            self.add_error("group", "Choose an agent or a group, not both.")
        data["start"], data["end"] = start, end
        return data


# --- The contact list's search, sort, filters and page: all in the URL ------------------------------------------


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


class ContactListForm(forms.Form):
    q = forms.CharField(required=False)
    sort = forms.ChoiceField(
        required=False,
        choices=[("name", "Name"), ("company", "Company"), ("last_called", "Last called"), ("created", "Newest")],
    )
    mine = forms.BooleanField(required=False, label="Mine only")
    dnc = forms.ChoiceField(
        required=False,
        label="Do not call",
        choices=[("", "Any"), ("only", "Do not call only"), ("hide", "Hide do not call")],
    )
    company = forms.CharField(required=False, max_length=200)
    after = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    def clean_q(self) -> str:
        return self.cleaned_data["q"].strip()[:100]  # a pasted paragraph is searched by its start, not refused

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or "name"

    def clean_after(self) -> list | None:
        """The cursor of a page: the sort key of the row before it, as `Contact.objects.keyset_page` gave it."""
        raw = self.cleaned_data["after"]
        if not raw:
            return None
        try:
            values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, RecursionError):  # RecursionError: [[[[… nested deeper than json reads
            raise ValidationError("That page link is damaged.", code="cursor") from None
        sort = self.cleaned_data.get("sort") or "name"
        if not _cursor_fits(values, sort):
            raise ValidationError("That page link is damaged.", code="cursor")
        return values

    def params(self, **changes: object) -> str:
        """This search's query string, with changes (None drops a parameter)."""
        data = {k: self.cleaned_data.get(k) for k in ("q", "sort", "mine", "dnc", "company")}
        data["sort"] = "" if data["sort"] == "name" else data["sort"]
        data["mine"] = "1" if data["mine"] else ""
        data.update(changes)
        return urlencode({k: v for k, v in data.items() if v})


def _cursor_fits(values: object, sort: str) -> bool:
    from calls.models import CONTACT_SORTS

    fields = CONTACT_SORTS[sort]
    if not isinstance(values, list) or len(values) != len(fields) or not cursors.is_bigint(values[-1]):
        return False
    for field, value in zip(fields[:-1], values[:-1], strict=True):
        if field.endswith("_at"):
            if value is None and field == "-last_called_at":
                continue
            if cursors.moment(value) is None:
                return False
        elif not cursors.is_text(value):  # what PostgreSQL can compare (calls/cursors.py)
            return False
    return True


# --- Import -----------------------------------------------------------------------------------------------------

SKIP, UPDATE = "skip", "update"


class ImportUploadForm(forms.Form):
    file = forms.FileField(required=False, label="CSV file", help_text="Comma, semicolon or tab separated; UTF-8.")
    text = forms.CharField(
        required=False,
        label="Or paste the rows",
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "Name,Company,Email,Phone\nGrace Hopper,Cobalt,…"}),
        help_text="The first line names the columns.",
    )

    def clean(self) -> dict:
        from calls.imports import MAX_BYTES, ImportFileError, read_upload

        data = super().clean()
        if self.errors:  # a field's own problem (a NUL in the pasted rows) says it better than "choose one"
            return data
        upload, text = data.get("file"), (data.get("text") or "").strip()
        if bool(upload) == bool(text):
            raise ValidationError("Choose a file, or paste the rows: one of the two.")
        if upload and upload.size > MAX_BYTES:
            raise ValidationError(f"The file is larger than {MAX_BYTES // 2**20} MB: split it and import each part.")
        raw = upload.read() if upload else text.encode()
        try:
            data["header"], data["rows"] = read_upload(raw)
        except ImportFileError as e:
            raise ValidationError(str(e)) from None
        data["filename"] = upload.name[:255] if upload else ""
        return data


class ImportMappingForm(forms.Form):
    """Which column feeds each field; the guess from the header names, corrected by the person."""

    def __init__(self, *args: object, header: list[str], **kwargs: object) -> None:
        from calls.imports import FIELDS

        super().__init__(*args, **kwargs)
        choices = [("", "— not imported —"), *((str(i), name or f"Column {i + 1}") for i, name in enumerate(header))]
        for name, label in FIELDS.items():
            self.fields[name] = forms.ChoiceField(label=label, choices=choices, required=False)

    def clean(self) -> dict:
        data = super().clean()
        used = [v for v in data.values() if v]
        if len(used) != len(set(used)):
            raise ValidationError("A column can feed one field only.")
        return data

    def mapping(self) -> dict[str, int | None]:
        return {k: int(v) if v else None for k, v in self.cleaned_data.items()}


class ImportFixForm(forms.Form):
    """A row's cells, corrected in the preview."""

    def __init__(self, *args: object, header: list[str], **kwargs: object) -> None:
        from calls.imports import MAX_CELL

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
    """What to do with each duplicate listed, and with those not listed one by one."""

    def __init__(self, *args: object, duplicates: list[dict], may_update: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        choices = [(SKIP, "Skip this row")]
        if may_update:
            choices.append((UPDATE, "Update the existing contact"))
        for dup in duplicates:
            self.fields[f"dup_{dup['row']}"] = forms.ChoiceField(
                choices=choices, initial=SKIP, widget=forms.RadioSelect, label=f"Row {dup['row']}"
            )
        self.fields["rest"] = forms.ChoiceField(
            choices=choices, initial=SKIP, required=False, label="Duplicates not listed above"
        )

    def decisions(self) -> dict[str, str]:
        found = {k.removeprefix("dup_"): v for k, v in self.cleaned_data.items() if k.startswith("dup_")}
        return {**found, "rest": self.cleaned_data.get("rest") or SKIP}
