"""The contact forms: a contact with its numbers (who may clear do-not-call), and the contact list's search,
sort, filters and page, all in the URL."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.forms import BaseInlineFormSet, inlineformset_factory
from django.http import QueryDict

from calls import cursors, phones
from calls import permissions as perms
from calls.models import Consent, Contact, ContactPhone

ONLY_SUPERVISORS = "Only a supervisor can clear do-not-call."
MARK_HELP = "Anyone may mark do-not-call; only a supervisor can clear it."


def _may_clear_do_not_call(user: User) -> bool:
    return user.has_perm(perms.OVERRIDE_DO_NOT_CALL)


def _refuse_clearing(form: forms.ModelForm[Contact] | forms.ModelForm[ContactPhone], user: User, what: str) -> bool:
    """Anyone may mark do-not-call; clearing it is a supervisor's decision (perm calls.override_do_not_call)."""
    marked: bool = form.cleaned_data.get("do_not_call", False)
    if form.instance.pk and form.instance.do_not_call and not marked and not _may_clear_do_not_call(user):
        raise ValidationError(f"{what} is marked do not call. {ONLY_SUPERVISORS}", code="dnc_clear")
    return marked


class _OwnerField(forms.ModelChoiceField):
    """A contact's owner, by name."""

    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.username


OVERTAKEN = (
    "Someone else saved this contact after you opened it, so your changes were not saved. They are still in the "
    "form below: open the contact in another tab to see what changed, then Save again to keep yours (they replace "
    "what the other person saved)."
)
GONE = "This contact was deleted after you opened it: nothing was saved."


def contact_version(contact: Contact) -> str:
    """A digest of what the contact's form shows, as saved (its fields and numbers): two people who open the form
    get the same one, and a save by either changes it for the other."""
    fields = [getattr(contact, name) for name in ContactForm.Meta.fields if name != "owner"] + [contact.owner_id]
    numbers = ContactPhone.objects.filter(contact_id=contact.pk).order_by("pk")
    rows = list(numbers.values_list("pk", "label", "number", "is_primary", "do_not_call"))
    return hashlib.sha256(json.dumps([fields, rows], default=str).encode()).hexdigest()[:32]


class ContactForm(forms.ModelForm):
    instance: Contact

    class Meta:
        model = Contact
        fields = ["name", "company", "email", "owner", "do_not_call", "consent_override", "time_zone", "notes"]
        field_classes = {"owner": _OwnerField}
        widgets = {"notes": forms.Textarea(attrs={"rows": 4})}

    # Asked of whoever clears do-not-call (calls/audit/dnc.py checks it with the numbers); kept in the audit trail.
    dnc_reason = forms.CharField(
        required=False,
        max_length=500,
        label="Why do-not-call is cleared",
        help_text="Needed to clear do-not-call on the contact or a number, or to remove or renumber a do-not-call "
        "number. Shown on the contact's timeline.",
    )

    # The contact as the form was opened (contact_version): a save over someone else's since is refused once.
    version = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if self.instance.pk is not None and not self.is_bound:
            self.initial["version"] = contact_version(self.instance)
        if self.instance.pk is None or not _may_clear_do_not_call(user):
            del self.fields["dnc_reason"]  # nothing to clear, or not theirs to clear
        consent = self.fields["consent_override"]
        assert isinstance(consent, forms.ChoiceField)  # the model field has choices
        consent.choices = [("", "Country default"), *Consent.choices]
        self.fields["do_not_call"].help_text = MARK_HELP
        if self.instance.pk is None:
            self.initial.setdefault("owner", user.pk)  # whoever creates a contact owns it unless they choose

    def clean_do_not_call(self) -> bool:
        return _refuse_clearing(self, self.user, "This contact")

    def overtaken(self) -> str:
        """In the saving transaction, before saving: why the save must not go on (someone else saved the contact
        since this form was opened, or deleted it), else "". The contact stays locked until the save commits. The
        form then carries the contact's new version: saving again, knowingly, replaces the other person's save."""
        opened = self.cleaned_data.get("version")
        if self.instance.pk is None or not opened:  # a new contact, or a client that sends no version (the API)
            return ""
        current = Contact.objects.select_for_update().filter(pk=self.instance.pk).first()
        if current is None:
            return GONE
        now = contact_version(current)
        if now == opened:
            return ""
        data = QueryDict(mutable=True)
        data.update(self.data)
        data[self.add_prefix("version")] = now
        self.data = data
        return OVERTAKEN


class ContactPhoneForm(forms.ModelForm):
    number = forms.CharField(
        max_length=phones.MAX_INPUT,
        help_text="Any format: +44 20 7946 0100, 020 7946 0100, (312) 555-0100 with +1…",
    )

    instance: ContactPhone
    warnings: list[str]  # other contacts with this number, set by the view before the page is shown again

    class Meta:
        model = ContactPhone
        fields = ["label", "number", "is_primary", "do_not_call"]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
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

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        # A new number whose label nobody touched is labelled as what it is: a landline is not a "Mobile".
        number = data.get("number")
        if self.instance.pk is None and number and "label" not in self.changed_data:
            data["label"] = phones.label_for(number) or data.get("label")
        return data

    def validate_constraints(self) -> None:
        # One row may take the primary flag from another row of the same save: the formset checks that rule
        # across all rows, and the view saves in an order the database accepts.
        try:
            # Private BaseModelForm methods, which django-stubs does not declare.
            exclusions = self._get_validation_exclusions()  # type: ignore[attr-defined]
            self.instance.validate_constraints(exclude=exclusions | {"is_primary"})
        except ValidationError as e:
            codes = {err.code for errs in getattr(e, "error_dict", {}).values() for err in errs}
            if codes & {"unique", "unique_together"}:
                # Say it where the person typed the number, in words (Django's text names the constraint).
                number = phones.display(self.cleaned_data.get("number", ""))
                self.add_error("number", f"This contact already has {number}.")
                return
            self._update_errors(e)  # type: ignore[attr-defined]

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
    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
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


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> Any:
    """What encode_cursor wrote (its values still to be checked by the caller), or None if it is not that."""
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, RecursionError):  # RecursionError: [[[[… nested deeper than json reads
        return None


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
        # A pasted paragraph is searched by its start, not refused. A number's "+44 (0)20", and "Hopper, Grace"'s
        # comma, are read by the search itself (calls.phones.search_patterns, calls.models.contacts._words), for every
        # caller of Contact.objects.search: the page, the API, the admin and a call queue made of the list.
        return self.cleaned_data["q"].strip()[:100]

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or "name"

    def clean_after(self) -> list | None:
        """The cursor of a page: the sort key of the row before it, as `Contact.objects.keyset_page` gave it."""
        raw = self.cleaned_data["after"]
        if not raw:
            return None
        values = decode_cursor(raw)
        sort = self.cleaned_data.get("sort") or "name"
        if values is None or not _cursor_fits(values, sort):
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


def save_numbers(formset: Any, contact: Contact) -> None:
    """Save a contact's numbers (a valid ContactPhoneFormSet) once the contact itself is saved, inside the caller's
    transaction: the contact pages and the API (calls/api/contacts.py) both save them this way."""
    formset.instance = contact
    rows = formset.save(commit=False)
    for phone in formset.deleted_objects:
        phone.delete()
    # Non-primary numbers first, so moving the primary flag never meets the one-primary constraint.
    for phone in sorted(rows, key=lambda p: p.is_primary):
        phone.contact = contact
        phone.save()
    contact.ensure_primary_phone()
