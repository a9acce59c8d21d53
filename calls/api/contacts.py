"""The API's contacts endpoints: the list's search by keyset cursor, read, create, change, delete, and upsert by
another system's `external_id`, each with the pages' own rules.

The rules are the pages' own because the pages' own code applies them: the search is `Contact.objects.search` and
`keyset_page` with the list's windows; a cursor is read by the list's form (`ContactListForm`); a body is checked by
the contact form and its numbers' formset (`ContactForm`, `ContactPhoneFormSet`: numbers in any format to E.164,
extensions refused, only supervisors clear do-not-call or renumber or remove a do-not-call number, one primary, at
most 20 numbers), and each endpoint asks the permission its page asks. `ContactOut` is the contact resource, which
the outgoing webhooks send too (`contact_out`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import AfterValidator, ConfigDict

from calls import audit, cursors, phones
from calls import permissions as perms
from calls.api.auth import Forbidden, require
from calls.api.errors import Problem
from calls.api.paging import DEFAULT_LIMIT, MAX_LIMIT, limit_of
from calls.audit import dnc
from calls.forms import ContactForm, ContactListForm, ContactPhoneFormSet, encode_cursor
from calls.forms.contacts import MAX_PHONES_PER_CONTACT, save_numbers
from calls.models import Contact, ContactPhone, is_number_search, search_windows
from calls.views.calling import base_url
from calls.views.contacts import list_filters
from calls.webhooks import changes

router = Router(tags=["contacts"])


def _storable(value: str) -> str:
    """Refuse what PostgreSQL cannot store: a NUL, or a lone surrogate (JSON's "\\ud800")."""
    if not cursors.is_text(value):
        raise ValueError("must not contain NUL bytes or unpaired surrogates (\\u0000, \\ud800)")
    return value


Text = Annotated[str, AfterValidator(_storable)]


# What goes out.


class PhoneOut(Schema):
    id: int
    number: str = Field(description="E.164, for example +442079460100.")
    label: Literal["mobile", "work", "home", "other"]
    is_primary: bool
    do_not_call: bool


class ContactOut(Schema):
    id: int
    name: str
    company: str
    email: str
    notes: str
    external_id: str | None = Field(description="Another system's id for this contact, unique; null when none.")
    do_not_call: bool = Field(description="No number of this contact may be called.")
    owner: str | None = Field(description="The owner's username; null when nobody owns the contact.")
    phones: list[PhoneOut] = Field(description="The primary number first.")
    created_at: datetime
    updated_at: datetime
    last_called_at: datetime | None
    url: str = Field(description="The contact's page, an absolute path.")


class ContactPage(Schema):
    items: list[ContactOut]
    next: str | None = Field(description="The next page's URL (with `after`); null on the last page.")


def contact_out(contact: Contact) -> ContactOut:
    """The contact resource; read `owner` and `phones` in the same query as the contact (see `_contacts`)."""
    return ContactOut(
        id=contact.pk,
        name=contact.name,
        company=contact.company,
        email=contact.email,
        notes=contact.notes,
        external_id=contact.external_id,
        do_not_call=contact.do_not_call,
        owner=contact.owner.username if contact.owner else None,
        phones=[
            PhoneOut(id=p.pk, number=p.number, label=p.label, is_primary=p.is_primary, do_not_call=p.do_not_call)  # type: ignore[arg-type]  # label is one of Label's values
            for p in contact.phones.all()
        ],
        created_at=contact.created_at,
        updated_at=contact.updated_at,
        last_called_at=contact.last_called_at,
        url=contact.get_absolute_url(),
    )


def _contacts() -> Any:
    return Contact.objects.select_related("owner").prefetch_related(
        Prefetch("phones", queryset=ContactPhone.objects.order_by("-is_primary", "pk"))
    )


# What comes in.


class PhoneIn(Schema):
    model_config = ConfigDict(extra="forbid")

    id: int | None = Field(
        None, description="One of the contact's numbers, to change its number; without it, matched by number."
    )
    number: Text = Field(
        max_length=phones.MAX_INPUT,
        description="Any format the pages take: +44 20 7946 0100, 020 7946 0100 (the default region), "
        "+1 (312) 555-0100. No extensions.",
    )
    label: Literal["mobile", "work", "home", "other"] | None = Field(
        None, description="A new number without one is labelled as what it is (mobile, or work for a landline)."
    )
    is_primary: bool | None = Field(None, description="At most one number is primary.")
    do_not_call: bool | None = Field(
        None, description="Anyone may mark a number do-not-call; only supervisors clear it."
    )


class _ContactFields(Schema):
    model_config = ConfigDict(extra="forbid")

    company: Text = Field("", max_length=200)
    email: Text = Field("", max_length=254)
    notes: Text = ""
    do_not_call: bool = Field(False, description="Anyone may mark a contact do-not-call; only supervisors clear it.")
    owner: Text | None = Field(
        None, max_length=150, description="A username; null for nobody. When creating, omitted means you."
    )
    phones: list[PhoneIn] = Field([], max_length=MAX_PHONES_PER_CONTACT)
    reason: Text | None = Field(
        None,
        max_length=500,
        description="Why do-not-call is cleared: required (400 without it) when the change clears do-not-call on the "
        "contact or a number, or removes or renumbers a do-not-call number. Kept in the audit trail.",
    )


class ContactIn(_ContactFields):
    name: Text = Field(min_length=1, max_length=200)
    external_id: Text | None = Field(None, min_length=1, max_length=255)


class ContactPatch(_ContactFields):
    name: Text | None = Field(None, min_length=1, max_length=200)
    external_id: Text | None = Field(None, min_length=1, max_length=255)


class ContactUpsert(_ContactFields):
    name: Text | None = Field(None, min_length=1, max_length=200, description="Required when the contact is created.")


class ContactSearch(Schema):
    q: Text = Field("", max_length=1000, description="What to search for, as in the contact list's search box.")
    sort: Literal["name", "company", "last_called", "created"] = Field("name", description="As the list sorts.")
    mine: bool = Field(False, description="Only the contacts the token's owner owns, as the list's Mine only.")
    dnc: Literal["", "only", "hide"] = Field("", description="Do-not-call: only those marked, or hide them.")
    company: Text = Field("", max_length=200, description="Only this company (its exact name).")
    # A string read by limit_of, as every list's: a bad limit is the same 400 with the same words everywhere.
    limit: str | None = Field(None, description=f"Contacts a page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).")
    after: str = Field("", description="The cursor from the previous page's `next`.")


SEARCH_NAMES = set(ContactSearch.model_fields)


PHONES_RULE = (
    "`phones`, when sent, replaces the contact's list of numbers: a number already on the contact (the same E.164, "
    "or the same `id`) keeps its row and its settings unless the item says otherwise; a number not on the contact "
    "is added; a number of the contact left out of the list is removed. Without `phones` the numbers stay as they "
    "are; `[]` removes them all. Only supervisors remove or renumber a do-not-call number, as on the pages."
)


# The endpoints.


@router.get(
    "",
    response=ContactPage,
    summary="Search contacts, a page at a time",
    description="The contact list's search: every word must match the name, company or email, or a number from "
    "the start of its international or national form or at its end. Sorted by `sort` (name by default), a page "
    "of `limit` contacts at a time: follow `next` until it is null. Nothing is counted.",
)
def list_contacts(request: HttpRequest, search: Query[ContactSearch]) -> ContactPage:
    require(request, "contacts:read", perms.VIEW_CONTACT)
    if unknown := sorted(set(request.GET) - SEARCH_NAMES):
        raise Problem(
            400, f"{unknown[0]}: not a parameter of the contact list. Known: {', '.join(sorted(SEARCH_NAMES))}."
        )
    q, sort, limit = search.q, search.sort, limit_of(search.limit)
    form = ContactListForm({"q": q, "sort": sort, "after": search.after})
    if not form.is_valid():
        if "after" in form.errors:
            raise Problem(
                400, "The cursor `after` is damaged: use the `next` link of the page before, or leave it out."
            )
        raise Problem(400, f"query.q: {form.errors.get('q', ['invalid'])[0]}")  # ContactListForm trims, never refuses
    query = form.cleaned_data["q"]
    filters = {"mine": search.mine, "dnc": search.dnc, "company": search.company.strip()}
    rows, next_cursor = list_filters(_contacts().search(query), request.user, filters).keyset_page(  # type: ignore[arg-type]  # the token's owner
        sort=sort,
        after=form.cleaned_data["after"],
        size=limit,
        windows=search_windows(query),
        number_only=is_number_search(query),
    )
    next_url = None
    if next_cursor:
        params = {"q": q, "sort": "" if sort == "name" else sort, "limit": "" if limit == DEFAULT_LIMIT else limit}
        params |= {"mine": "true" if search.mine else "", "dnc": search.dnc, "company": search.company}
        params["after"] = encode_cursor(next_cursor)
        # Absolute, as the call log's: the site's own address (SITE_URL, else the request's).
        next_url = f"{base_url(request).rstrip('/')}{request.path}?{urlencode({k: v for k, v in params.items() if v})}"
    return ContactPage(items=[contact_out(c) for c in rows], next=next_url)


@router.get("/{contact_id}", response=ContactOut, summary="A contact and their numbers")
def get_contact(request: HttpRequest, contact_id: int) -> ContactOut:
    require(request, "contacts:read", perms.VIEW_CONTACT)
    return contact_out(_get(contact_id))


@router.post(
    "",
    response={201: ContactOut},
    summary="Create a contact",
    description="Numbers in any format the pages take are stored in E.164; a number that is not one, or has an "
    "extension, is refused with a 422 that names it. The contact's owner is you unless `owner` says otherwise.",
)
def create_contact(request: HttpRequest, payload: ContactIn) -> Status[ContactOut]:
    _require(request, perms.ADD_CONTACT, "create contacts")
    fields = payload.model_dump(exclude={"phones"})
    if "owner" not in payload.model_fields_set:
        fields["owner"] = request.user.get_username()
    return Status(201, _save(request, None, fields, payload.phones))


@router.patch(
    "/{contact_id}",
    response=ContactOut,
    summary="Change a contact",
    description=f"Only the fields sent change. {PHONES_RULE}",
)
def update_contact(request: HttpRequest, contact_id: int, payload: ContactPatch) -> ContactOut:
    _require(request, perms.CHANGE_CONTACT, "change contacts")
    sent = payload.model_fields_set
    fields = payload.model_dump(include=sent - {"phones"})
    return _save(request, _get(contact_id), fields, payload.phones if "phones" in sent else None)


@router.delete(
    "/{contact_id}",
    response={204: None},
    summary="Delete a contact",
    description="Supervisors and admins may; their call log stays, without the link to the contact.",
)
def delete_contact(request: HttpRequest, contact_id: int) -> Status[None]:
    _require(request, perms.DELETE_CONTACT, "delete contacts")
    contact = _get(contact_id)
    with changes.contact_deletion([contact.pk]):
        contact.delete()
    return Status(204, None)


@router.put(
    "/by-external-id/{external_id}",
    response={200: ContactOut, 201: ContactOut},
    summary="Create or change the contact with your external id",
    description="Creates the contact (201; `name` is then required) when no contact has this `external_id`, "
    f"otherwise changes it (200) as PATCH does: only the fields sent change. {PHONES_RULE} An external id is 1 to "
    "255 characters and cannot hold a `/` here (percent-encode other reserved characters).",
)
def upsert_contact(request: HttpRequest, external_id: str, payload: ContactUpsert) -> Status[ContactOut]:
    if len(external_id) > 255 or not cursors.is_text(external_id) or not external_id.strip():
        raise Problem(422, "path.external_id: an external id is 1 to 255 characters, without NUL bytes.")
    sent = payload.model_fields_set
    existing = _contacts().filter(external_id=external_id).first()
    if existing is None:
        _require(request, perms.ADD_CONTACT, "create contacts")
        if "name" not in sent:
            _refuse([_error("name", "A new contact needs a name.")])
        fields = payload.model_dump(exclude={"phones"}) | {"external_id": external_id}
        if "owner" not in sent:
            fields["owner"] = request.user.get_username()
        try:
            return Status(201, _save(request, None, fields, payload.phones))
        except Problem as problem:
            if problem.status != 409:
                raise
            # Another request created it in the meantime: change that one, as if it had been there first.
            existing = _contacts().filter(external_id=external_id).first()
            if existing is None:
                raise
    _require(request, perms.CHANGE_CONTACT, "change contacts")
    fields = payload.model_dump(include=sent - {"phones"})
    return Status(200, _save(request, existing, fields, payload.phones if "phones" in sent else None))


# How.


def _require(request: HttpRequest, permission: str, what: str) -> None:
    require(request, "contacts:write")
    if not request.user.has_perm(permission):
        raise Forbidden(f"Your role does not allow you to {what} (the token acts as you, with your role).")


def _get(contact_id: int) -> Contact:
    contact = _contacts().filter(pk=contact_id).first()
    if contact is None:
        raise Http404("There is no contact with this id: it may have been deleted.")
    return contact


def _error(field: str, what: str) -> dict[str, str]:
    return {"where": "body.payload" if field == NON_FIELD_ERRORS else f"body.payload.{field}", "what": what}


def _refuse(errors: list[dict[str, str]]) -> NoReturn:
    first = errors[0]
    raise Problem(422, f"{first['where']}: {first['what']}", errors=errors)


def _save(
    request: HttpRequest, contact: Contact | None, fields: dict[str, Any], numbers: list[PhoneIn] | None
) -> ContactOut:
    """Create (contact None) or change a contact with the pages' contact form and its numbers' formset, both
    checked before anything is written and saved together, as the contact pages do. `fields` holds the fields to
    set; `numbers`, when not None, replaces the contact's numbers (see PHONES_RULE).

    A change reads the contact locked (SELECT … FOR UPDATE) in the transaction that writes it: the form writes every
    field, so two partial updates at once (a script setting do_not_call, a helpdesk editing notes) must not each
    start from the row as it was before the other."""
    if contact is None:
        return _write(request, None, fields, numbers)
    with transaction.atomic():
        locked = Contact.objects.select_for_update(of=("self",)).get(pk=contact.pk)
        return _write(request, locked, fields, numbers)


def _write(
    request: HttpRequest, contact: Contact | None, fields: dict[str, Any], numbers: list[PhoneIn] | None
) -> ContactOut:
    user: User = request.user  # type: ignore[assignment]  # TokenAuth set the token's owner
    form = ContactForm(_contact_data(contact, fields), instance=contact, user=user)
    instance = form.instance
    formset = None
    if numbers is not None:
        formset = ContactPhoneFormSet(_phone_data(contact, numbers), instance=instance, prefix="phones", user=user)
    external_id = fields.get("external_id", contact.external_id if contact else None)
    errors = [_error(name, str(message)) for name, messages in form.errors.items() for message in messages]
    if formset is not None:
        errors += _formset_errors(formset)
    taken = Contact.objects.filter(external_id=external_id)
    if contact is not None:
        taken = taken.exclude(pk=contact.pk)
    if external_id is not None and taken.exists():
        raise Problem(
            409,
            f"Another contact has the external id {external_id!r}: change that one "
            "(PUT /api/v1/contacts/by-external-id/…), or give this one another.",
        )
    if errors:
        _refuse(errors)
    reason = fields.get("reason") or ""
    if problem := dnc.reason_problem(form, formset, reason):
        raise Problem(400, problem, errors=[_error("reason", problem)])
    try:
        with (
            transaction.atomic(),
            audit.reason(reason),
            changes.contact_change(contact.pk if contact else None) as created,
        ):
            saved = form.save(commit=False)
            saved.external_id = external_id
            saved.save()
            if formset is not None:
                save_numbers(formset, saved)
            created.extend([] if contact else [saved.pk])
    except IntegrityError:
        # Another request wrote the same external id or number between the checks and the save.
        raise Problem(
            409, "The contact changed while this was saved; read it again and send the change again."
        ) from None
    return contact_out(_get(saved.pk))


def _contact_data(contact: Contact | None, fields: dict[str, Any]) -> dict[str, Any]:
    """The contact form's POST data: the contact as it is (or empty), with `fields` set."""
    data: dict[str, Any] = {
        "name": contact.name if contact else "",
        "company": contact.company if contact else "",
        "email": contact.email if contact else "",
        "owner": contact.owner_id if contact else None,
        "do_not_call": contact.do_not_call if contact else False,
        "consent_override": contact.consent_override if contact else "",
        "notes": contact.notes if contact else "",
    }
    for name, value in fields.items():
        if name == "owner":
            data["owner"] = _owner_id(value)
        elif name in data:
            data[name] = value
    data["do_not_call"] = "true" if data["do_not_call"] else "false"  # what CheckboxInput reads
    return {k: v for k, v in data.items() if v is not None}


def _owner_id(username: str | None) -> int | None:
    if username is None:
        return None
    found = get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
    if found is None:
        _refuse([_error("owner", f"Nobody has the username {username!r}: give a person's username, or null.")])
    return found


def _phone_data(contact: Contact | None, numbers: list[PhoneIn]) -> dict[str, Any]:
    """The numbers formset's POST data for replacing the contact's numbers with `numbers` (see PHONES_RULE)."""
    current = list(contact.phones.all()) if contact else []
    by_id = {p.pk: p for p in current}
    by_number: dict[str, ContactPhone] = {}
    for p in current:
        by_number.setdefault(p.number, p)
    explicit_primary = any(item.is_primary for item in numbers)
    rows: list[tuple[ContactPhone | None, dict[str, Any]]] = []
    for index, item in enumerate(numbers):
        if item.id is not None:
            if item.id not in by_id:
                _refuse(
                    [
                        _error(
                            f"phones.{index}.id",
                            f"{item.id} is not a number of this contact: leave `id` out to add it.",
                        )
                    ]
                )
            row: ContactPhone | None = by_id[item.id]
        else:
            row = by_number.get(_e164_or_none(item.number) or "")
        if row is not None and any(row is taken for taken, _ in rows):
            _refuse([_error(f"phones.{index}", f"{phones.display(row.number)} is listed twice.")])
        keep_primary = row.is_primary if row and not explicit_primary else False
        rows.append(
            (
                row,
                {
                    "number": item.number,
                    "label": item.label or (row.label if row else ContactPhone.Label.MOBILE),
                    "is_primary": item.is_primary if item.is_primary is not None else keep_primary,
                    "do_not_call": item.do_not_call if item.do_not_call is not None else bool(row and row.do_not_call),
                },
            )
        )
    kept = {row.pk for row, _ in rows if row is not None}
    removed = [p for p in current if p.pk not in kept]
    # Existing rows come first (the formset's initial forms, each with its id), removed ones marked DELETE.
    forms: list[tuple[ContactPhone | None, dict[str, Any], bool]]
    forms = [(row, values, False) for row, values in rows if row is not None]
    forms += [
        (p, {"number": p.number, "label": p.label, "is_primary": p.is_primary, "do_not_call": p.do_not_call}, True)
        for p in removed
    ]
    initial = len(forms)
    forms += [(None, values, False) for row, values in rows if row is None]
    data: dict[str, Any] = {
        "phones-TOTAL_FORMS": str(len(forms)),
        "phones-INITIAL_FORMS": str(initial),
        "phones-MIN_NUM_FORMS": "0",
        "phones-MAX_NUM_FORMS": str(MAX_PHONES_PER_CONTACT),
    }
    for i, (row, values, delete) in enumerate(forms):
        prefix = f"phones-{i}-"
        data[prefix + "id"] = str(row.pk) if row else ""
        data[prefix + "number"] = values["number"]
        data[prefix + "label"] = values["label"]
        data[prefix + "is_primary"] = "true" if values["is_primary"] else "false"
        data[prefix + "do_not_call"] = "true" if values["do_not_call"] else "false"
        if delete:
            data[prefix + "DELETE"] = "on"
    # Which item of the body each form stands for, so that errors name it.
    order = [i for i, (row, _) in enumerate(rows) if row is not None] + [None] * len(removed)
    order += [i for i, (row, _) in enumerate(rows) if row is None]
    data["_items"] = order
    return data


def _e164_or_none(number: str) -> str | None:
    try:
        return phones.to_e164(number)
    except ValidationError:
        return None  # the form says what is wrong with it


def _formset_errors(formset: Any) -> list[dict[str, str]]:
    items: list[int | None] = formset.data["_items"]
    errors = []
    for i, form_errors in enumerate(formset.errors):
        where = f"phones.{items[i]}" if i < len(items) and items[i] is not None else "phones"
        for name, messages in form_errors.items():
            field = where if name == NON_FIELD_ERRORS else f"{where}.{name}"
            errors += [_error(field, str(message)) for message in messages]
    errors += [_error("phones", str(message)) for message in formset.non_form_errors()]
    return errors
