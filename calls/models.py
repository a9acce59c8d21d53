from __future__ import annotations

import contextlib
import contextvars
import functools
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinLengthValidator, RegexValidator
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Value
from django.db.models.functions import Coalesce, Concat, Lower, Reverse
from django.db.models.lookups import Contains
from django.urls import reverse
from django.utils import timezone

from calls import permissions as perms
from calls import phones

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Sequence

AGENT_ID_PATTERN = r"^[0-9]{1,11}$"
GROUP_ID_PATTERN = r"^[A-Za-z0-9]{1,32}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"

agent_id_validator = RegexValidator(
    AGENT_ID_PATTERN, "A VCC agent display ID is 1 to 11 digits, nothing else (for example 1234).", code="agent_id"
)
group_id_validator = RegexValidator(
    GROUP_ID_PATTERN, "A VCC group display ID is 1 to 32 letters or digits (for example 030).", code="group_id"
)


def validate_phone(value: str) -> None:
    phones.to_e164(value)


class Consent(models.TextChoices):
    UNKNOWN = "Unknown", "Unknown"
    ONE_PARTY = "OneParty", "One party"
    TWO_PARTY = "TwoParty", "Two party"


# --- Contacts --------------------------------------------------------------------------------------


def _words(query: str) -> list[str]:
    return query.lower().split()[:MAX_SEARCH_WORDS]


def _number_parts(query: str) -> list[str]:
    """The parts of a search read as phone numbers: all of it when it looks like one, else its words of digits."""
    query = query.strip()
    if phones.looks_like_number(query):
        return [query]
    return [w for w in _words(query) if w.isdigit() and len(w) >= 3]


MAX_SEARCH_WORDS = 6

# How the list can be sorted: each key names its ORDER BY, newest first for dates. The tie-breaker is always id.
CONTACT_SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "id"),
    "company": ("company", "name", "id"),
    "last_called": ("-last_called_at", "-id"),
    "created": ("-created_at", "-id"),
}


class ContactQuerySet(models.QuerySet["Contact"]):
    def search(self, query: str) -> ContactQuerySet:
        """Contacts matching every word of query in their name, company or email, or having a number that matches.

        A query that looks like a phone number is read as one, against numbers only (see `phones.search_patterns`).
        In a mixed query ("Room 101", "Brightwater 0100"), a word of 3 digits or more matches the text or a number,
        and the other words match the text. On PostgreSQL each part has an index made for it: a trigram index on
        `search_text`, and prefix indexes on the number and on its reverse (for endings).
        """
        query = query.strip()
        if not query:
            return self
        if phones.looks_like_number(query):
            return self.filter(_has_number_matching(query))
        numbers = _number_parts(query)
        result = self
        for word in _words(query):
            result = result.filter(_TextOrNumber(word) if word in numbers else Q(search_text__contains=word))
        return result

    def note_call(self, call: Call) -> int:
        """Remember `call` as its contact's last call, unless a later one is already noted: one UPDATE.

        Call it whenever a call to a contact is written or changes (placed, ended); a call without a contact is
        ignored. Returns the number of contacts updated (0 or 1).
        """
        if not call.contact_id or call.pk is None:
            return 0
        # Raw SQL: every click runs it, and building it with the ORM cost ten times what PostgreSQL spends on it.
        at = connection.ops.adapt_datetimefield_value(call.requested_at)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE calls_contact SET last_called_at = %s, last_call_id = %s WHERE id = %s AND NOT COALESCE("
                "last_called_at > %s OR (last_called_at = %s AND last_call_id > %s), FALSE)",
                [at, call.pk, call.contact_id, at, at, call.pk],
            )
            return cursor.rowcount

    def refresh_last_calls(self) -> int:
        """Recompute every contact's last call from the call log (after a bulk load); returns the rows updated."""
        return refresh_last_calls(Contact, Call, self)

    def keyset_page(
        self,
        *,
        sort: str,
        after: list | None,
        size: int,
        windows: tuple[int, ...] | None = None,
        number_only: bool = False,
    ) -> tuple[list[Contact], list | None]:
        """One page of contacts in `sort` order after the cursor `after`, and the cursor of the next page (None at
        the end). Nothing is counted: a page costs the same at the millionth row as at the first."""
        order = CONTACT_SORTS[sort]
        fields = [f.lstrip("-") for f in order]
        narrowed = bool(self.query.where)  # a search or a filter: see _ordered_page
        lookups = self._prefetch_related_lookups
        self = self.prefetch_related(None)  # prefetched once, for the page, below
        if sort == "last_called":
            # Never-called contacts come last; a row comparison skips NULLs, so they are a second query.
            rows = []
            if after is None or after[0] is not None:
                called = Q(last_called_at__isnull=False)
                rows = _ordered_page(
                    self.filter(called),
                    Contact.objects.filter(called),
                    order,
                    after,
                    size,
                    narrowed,
                    windows,
                    number_only,
                )
            if len(rows) <= size:
                never, domain = self.filter(last_called_at__isnull=True), Contact.objects.filter(last_called_at=None)
                if after is not None and after[0] is None:
                    never, domain = never.filter(id__lt=after[1]), domain.filter(id__lt=after[1])
                rows += _ordered_page(never, domain, ("-id",), None, size - len(rows), narrowed, windows, number_only)
        else:
            rows = _ordered_page(self, Contact.objects.all(), order, after, size, narrowed, windows, number_only)
        next_cursor = [_cursor_value(getattr(rows[size - 1], f)) for f in fields] if len(rows) > size else None
        rows = rows[:size]
        models.prefetch_related_objects(rows, *lookups)
        return rows, next_cursor


# How many rows of the sort order a narrowed page looks through, in turn, before it sorts all the matches instead.
SEARCH_WINDOWS = (300, 3000)
# A word of one or two letters has no trigram, so sorting all its matches means reading every contact: look further.
SHORT_WORD_WINDOWS = (300, 3000, 30000)


def search_windows(query: str) -> tuple[int, ...]:
    """The windows for a search: further for a word that no index can find (one or two letters)."""
    short = any(len(w) < 3 for w in _words(query) if w not in _number_parts(query))
    return SHORT_WORD_WINDOWS if short and not is_number_search(query) else SEARCH_WINDOWS


def is_number_search(query: str) -> bool:
    """Whether this search is for a number alone, whose pages PostgreSQL plans differently (see _ordered_page)."""
    return phones.looks_like_number(query.strip())


def _ordered_page(
    qs, domain, order, after, size: int, narrowed: bool, windows=None, number_only: bool = False
) -> list[Contact]:
    """size + 1 rows of qs in order after the cursor, by a plan that stays cheap whatever the matches look like.

    Unnarrowed, the sort's index is read in order: a page costs 26 rows. Narrowed (a search, a filter), reading
    the index in order and filtering is cheap when matches are frequent and spread out, and ruinous when they
    cluster far away ("muhammad" sorted by name reads every name before M); fetching every match and sorting
    them is the reverse. The planner cannot tell the two apart, so: look for the page among the next 300 rows of
    the order, then the next 3,000 (bounded work: the window's end is read from the index alone), and only then
    fetch every match and sort them, with an ORDER BY that no index serves so that the planner must.
    """
    fields = [f.lstrip("-") for f in order]
    descending = order[0].startswith("-")
    limit = size + 1
    if limit <= 0:
        return []
    after_cursor = _after(qs, fields, after, descending)
    if not narrowed:
        return list(after_cursor.order_by(*order)[:limit])
    ahead = _after(domain, fields, after, descending).order_by(*order).values_list(*fields)
    # Within a window, read the sort's index: left to itself, the planner fetches every match through the trigram
    # index first (a bitmap scan), which is the cost the window is there to avoid. A number alone is looked for
    # through two indexes at once, its start and its ending, and only a bitmap scan can OR two indexes: without one
    # every window read all the numbers (230 to 350 ms at 1.33 million).
    with _planned(qs.db, *([] if number_only else ["enable_bitmapscan = off"])):
        for window in windows or SEARCH_WINDOWS:
            end = next(iter(ahead[window - 1 : window]), None)
            rows = after_cursor
            if end is not None:
                rows = _up_to(rows, fields, list(end), descending)
            rows = list(rows.order_by(*order)[:limit])
            if len(rows) == limit or end is None:  # the page is full, or the window reached the end of the list
                return rows
    unindexed = [_unindexed(f) for f in order]
    # A number's matches that 3,000 contacts did not hold are a few thousand at most, each one look-up by primary
    # key. PostgreSQL expects three times as many numbers as match and hashes every contact instead: 211 ms for
    # 4,406 matches at 1M contacts, against 39 ms without hash joins.
    every_match = after_cursor.order_by(*unindexed, *order)
    with _planned(qs.db, *(["enable_hashjoin = off"] if number_only else [])):
        return list(_first_of_each_way(every_match, limit)[:limit])


# While set (by _first_of_each_way), each _TextOrNumber condition is compiled as one of its two ways: _IN_THE_TEXT,
# every word of digits in the name, company or email; or a word, that word as a number (the others either way).
_ONE_WAY: contextvars.ContextVar[str | None] = contextvars.ContextVar("contact_search_way", default=None)
_IN_THE_TEXT = "text"


class _TextOrNumber(models.Expression):
    """A word of digits in a mixed search ("Room 101"): in the name, company or email, or a number (see search).

    Reading the list in order, each contact is checked both ways, which is cheap (see _ordered_page); sorting every
    match, each way is looked up through its own index instead (see _first_of_each_way).
    """

    conditional = True
    output_field = models.BooleanField()

    def __init__(self, word: str) -> None:
        super().__init__()
        self.word = word
        self.text = Contains(F("search_text"), word)
        self.number = _has_number_matching(word)

    def get_source_expressions(self) -> list[Any]:
        return [self.text, self.number]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        self.text, self.number = exprs

    def as_sql(self, compiler, connection) -> tuple[str, list[Any]]:
        way = _ONE_WAY.get()
        parts = [self.text] if way == _IN_THE_TEXT else [self.number] if way == self.word else [self.text, self.number]
        compiled = [compiler.compile(part) for part in parts]
        return f"({' OR '.join(sql for sql, _ in compiled)})", [p for _, params in compiled for p in params]


def _first_of_each_way(every_match: ContactQuerySet, limit: int) -> ContactQuerySet:
    """every_match (sorted) narrowed, for a mixed search, to the first `limit` rows of each way its words of digits
    can match: all of them in the text, or one of them as a number. A match matches one way at least, so these hold
    the first `limit` matches.

    "Text or number" is a condition no index answers, so PostgreSQL reads and checks every match of the other words
    ("ali 0123": 141 ms at 1M contacts; "mu 0123", whose "mu" no index finds, 858 ms). Each way alone is a condition
    an index answers, planned as when words of digits matched numbers only (6 and 27 ms: one query a way, and one
    for the few rows found).
    """
    where = every_match.query.where
    words = [
        child.lhs.word
        for child in (where.children if where.connector == "AND" and not where.negated else [])
        if isinstance(getattr(child, "lhs", None), _TextOrNumber)
    ]
    if not words:
        return every_match
    candidates: set[int] = set()
    for way in [_IN_THE_TEXT, *dict.fromkeys(words)]:
        token = _ONE_WAY.set(way)
        try:
            candidates.update(every_match.values_list("pk", flat=True)[:limit])
        finally:
            _ONE_WAY.reset(token)
    return every_match.filter(pk__in=candidates)


@contextlib.contextmanager
def _planned(using: str, *settings: str) -> Iterator[None]:
    """On PostgreSQL, a transaction whose statements are planned with these settings (SET LOCAL: they end with
    it); elsewhere, or with none to make, nothing."""
    if not settings or connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            for setting in settings:
                cursor.execute(f"SET LOCAL {setting}")
        yield


def _up_to(qs, fields: list[str], end: list, descending: bool):
    from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThanOrEqual, TupleLessThanOrEqual

    lookup = TupleGreaterThanOrEqual if descending else TupleLessThanOrEqual
    return qs.filter(lookup(Tuple(*(models.F(f) for f in fields)), tuple(end)))


def _unindexed(field: str) -> models.OrderBy:
    """field's value through an expression no index matches: the same order, sorted rather than read in order."""
    name = field.lstrip("-")
    if name.endswith("_at"):
        expression = models.ExpressionWrapper(models.F(name) + timedelta(0), output_field=models.DateTimeField())
    elif name == "id":
        expression = models.F(name) + 0
    else:
        expression = Concat(models.F(name), Value(""), output_field=models.TextField())
    return expression.desc(nulls_last=True) if field.startswith("-") else expression.asc()


def _after(qs: ContactQuerySet, fields: list[str], after: list | None, descending: bool) -> ContactQuerySet:
    if after is None:
        return qs
    from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan

    lookup = TupleLessThan if descending else TupleGreaterThan
    return qs.filter(lookup(Tuple(*(models.F(f) for f in fields)), tuple(after)))


def _cursor_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _has_number_matching(query: str) -> models.Exists:
    prefixes, endings = phones.search_patterns(query)
    match = Q(pk__in=[])
    for prefix in prefixes:
        match |= Q(number__startswith=prefix)
    for ending in endings:
        match |= Q(reversed_number__startswith=ending[::-1])
    numbers = ContactPhone.objects.alias(reversed_number=Reverse("number")).filter(match)
    return models.Exists(numbers.filter(contact=models.OuterRef("pk")))


def refresh_last_calls(contact_model, call_model, contacts=None) -> int:
    """Set each contact's last call and when it was: the one function behind the queryset method and the
    migration's backfill (which passes its historical models). Only contacts whose last call changes are written."""
    contacts = contact_model.objects.all() if contacts is None else contacts
    latest = call_model.objects.filter(contact=models.OuterRef("pk")).order_by("-requested_at", "-pk")
    last_call = models.Subquery(latest.values("pk")[:1])
    has_calls = models.Exists(call_model.objects.filter(contact=models.OuterRef("pk")))
    # Contacts whose noted last call is not their latest, and contacts noted as called that have no calls.
    stale = (has_calls & (Q(last_call__isnull=True) | ~Q(last_call_id=last_call))) | (
        ~has_calls & (Q(last_call__isnull=False) | Q(last_called_at__isnull=False))
    )
    return contacts.filter(stale).update(
        last_call_id=last_call, last_called_at=models.Subquery(latest.values("requested_at")[:1])
    )


class Contact(models.Model):
    name = models.CharField(max_length=200)
    company = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    notes = models.TextField(blank=True)
    do_not_call = models.BooleanField(
        "do not call", default=False, help_text="No number of this contact may be called."
    )
    consent_override = models.CharField(
        "recording consent",
        max_length=10,
        choices=Consent.choices,
        blank=True,
        help_text="Overrides the country default for recording consent. Blank: use the default.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Kept by Contact.objects.note_call (the calling core) so the list sorts by it at a million rows.
    last_called_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_call = models.ForeignKey(
        "Call", null=True, blank=True, editable=False, on_delete=models.SET_NULL, related_name="+"
    )
    # What the words of a search are matched against; a trigram index on PostgreSQL (migration 0006).
    search_text = models.GeneratedField(
        expression=Lower(Concat("name", Value(" "), "company", Value(" "), "email", output_field=models.TextField())),
        output_field=models.TextField(),
        db_persist=True,
    )

    objects = ContactQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        permissions = [("export_contacts", "Can export contacts to CSV")]
        indexes = [
            models.Index(fields=["name", "id"], name="contact_name_id_idx"),
            models.Index(fields=["company", "name", "id"], name="contact_company_idx"),
            models.Index(fields=["owner", "name", "id"], name="contact_owner_idx"),
            models.Index(fields=["last_called_at", "id"], name="contact_last_called_idx"),
            models.Index(fields=["created_at", "id"], name="contact_created_idx"),
            models.Index(Lower("email"), name="contact_email_lower_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.company})" if self.company else self.name

    def get_absolute_url(self) -> str:
        return reverse("contact_detail", args=[self.pk])

    def ensure_primary_phone(self) -> None:
        """A contact with numbers has a primary one: the first, when none is marked (e.g. the primary was removed)."""
        if not self.phones.filter(is_primary=True).exists():
            first = self.phones.order_by("pk").first()
            if first:
                first.is_primary = True
                first.save(update_fields=["is_primary"])

    @property
    def primary_phone(self) -> ContactPhone | None:
        numbers = list(self.phones.all())
        return next((p for p in numbers if p.is_primary), numbers[0] if numbers else None)

    def phone_matching(self, query: str) -> ContactPhone | None:
        """The number a search for query found (from the prefetched numbers), else the primary one."""
        patterns = [phones.search_patterns(part) for part in _number_parts(query)]
        prefixes, endings = [p for ps, _ in patterns for p in ps], [e for _, es in patterns for e in es]
        if prefixes or endings:
            for phone in self.phones.all():
                if phones.matches(phone.number, prefixes, endings):
                    return phone
        return self.primary_phone


# Whether a number is do-not-call on any contact: the flag follows the number, not the record it is on. The ORM's
# version is calls.calling._blocked_elsewhere; tests/test_click_sql.py holds the two to the same answers.
_BLOCKED_ELSEWHERE_SQL = """EXISTS (
    SELECT 1 FROM calls_contactphone o JOIN calls_contact oc ON oc.id = o.contact_id
    WHERE o.number = p.number AND (o.do_not_call OR oc.do_not_call)
)"""


def _columns(model: type[models.Model], alias: str) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


@functools.cache
def _phone_for_click_sql(vendor: str) -> str:
    return (
        f"SELECT {_columns(ContactPhone, 'p')}, {_BLOCKED_ELSEWHERE_SQL}, {_columns(Contact, 'c')} "
        "FROM calls_contactphone p JOIN calls_contact c ON c.id = p.contact_id WHERE p.id = %s AND p.contact_id = %s"
    )


@functools.cache
def _converters(model: type[models.Model], vendor: str) -> list[tuple[Any, list[Callable[..., Any]]]]:
    """What the ORM does to each column's value as it reads a row of model (SQLite's dates and booleans)."""
    table = model._meta.db_table
    out = []
    for field in model._meta.concrete_fields:
        column = field.get_col(table)
        out.append((column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)))
    return out


def _from_row[M: models.Model](model: type[M], values: Sequence[Any]) -> M:
    """A model instance from a row of all its concrete columns, in order, as the ORM would build it."""
    converted = []
    for value, (column, converters) in zip(values, _converters(model, connection.vendor), strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, None, converted)


class ContactPhoneQuerySet(models.QuerySet["ContactPhone"]):
    def for_click(self, pk: int, contact_id: int) -> ContactPhone | None:
        """The number a click dials, with its contact and `blocked_elsewhere`, or None.

        One raw statement, read straight into the two models, because every click runs it: the ORM spent some
        2.5 ms of CPU building this query (with its Exists subquery and select_related) for 0.2 ms of work in
        PostgreSQL, and a RawQuerySet per table still about a millisecond.
        """
        with connection.cursor() as cursor:
            cursor.execute(_phone_for_click_sql(connection.vendor), [pk, contact_id])
            row = cursor.fetchone()
        if row is None:
            return None
        n = len(ContactPhone._meta.concrete_fields)
        phone = _from_row(ContactPhone, row[:n])
        phone.blocked_elsewhere = bool(row[n])  # SQLite answers 0 or 1
        phone.contact = _from_row(Contact, row[n + 1 :])
        return phone


class ContactPhone(models.Model):
    class Label(models.TextChoices):
        MOBILE = "mobile", "Mobile"
        WORK = "work", "Work"
        HOME = "home", "Home"
        OTHER = "other", "Other"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="phones")
    label = models.CharField(max_length=10, choices=Label.choices, default=Label.MOBILE)
    number = models.CharField(max_length=16, help_text="Stored in E.164, for example +442079460100.")
    is_primary = models.BooleanField("primary", default=False)
    do_not_call = models.BooleanField("do not call", default=False)

    objects = ContactPhoneQuerySet.as_manager()

    class Meta:
        ordering = ["-is_primary", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "number"], name="contactphone_unique_number_per_contact"),
            models.UniqueConstraint(
                fields=["contact"], condition=Q(is_primary=True), name="contactphone_one_primary_per_contact"
            ),
            models.CheckConstraint(condition=Q(number__regex=E164_PATTERN), name="contactphone_number_e164"),
        ]
        indexes = [
            models.Index(fields=["number"], name="contactphone_number_idx"),
            # The list's do-not-call filter: the few contacts with a do-not-call number, without reading them all.
            models.Index(fields=["contact"], condition=Q(do_not_call=True), name="contactphone_dnc_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_label_display()}: {self.display}"

    @property
    def display(self) -> str:
        return phones.display(self.number)

    @property
    def kind(self) -> str:
        return phones.number_type(self.number)


class ContactImport(models.Model):
    """A CSV file being imported: stored when uploaded, checked in the background, written only when confirmed.

    `rows` holds the file's cells as read (a list of lists, header excluded); `mapping` says which column feeds
    which field; `fixes` holds the cells a person corrected in the preview, by row number; `decisions` what to do
    with each duplicate ("skip" or "update"). The work itself is in calls/imports.py.
    """

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking"
        PREVIEW = "preview", "Ready to confirm"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    filename = models.CharField(max_length=255, blank=True)
    header = models.JSONField(default=list)
    rows = models.JSONField(default=list)
    row_count = models.PositiveIntegerField(default=0)
    checked = models.JSONField(default=list, help_text="The rows ready to write, as the last check parsed them.")
    mapping = models.JSONField(default=dict)
    fixes = models.JSONField(default=dict)
    decisions = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CHECKING)
    progress = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict)
    result = models.JSONField(default=dict)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import of {self.filename or 'pasted text'} ({self.get_status_display()})"

    @property
    def total(self) -> int:
        return self.row_count

    @property
    def working(self) -> bool:
        return self.status in (self.Status.CHECKING, self.Status.IMPORTING)


# --- VCC's side: agents, groups, presented CLIDs ---------------------------------------------------


class Agent(models.Model):
    display_id = models.CharField(
        "agent display ID",
        max_length=11,
        unique=True,
        validators=[agent_id_validator],
        help_text="VCC's agent display ID: digits only, 1 to 11.",
    )
    name = models.CharField(max_length=200)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="agent"
    )
    is_active = models.BooleanField("active", default=True)
    default_callback_number = models.ForeignKey(
        "CallbackNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_group = models.ForeignKey(
        "AgentGroup",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Preselected when this agent calls via a group.",
    )
    vcc_user_id = models.CharField("VCC user ID", max_length=64, blank=True, help_text="Set by the sync from VCC.")

    class Meta:
        ordering = ["name", "display_id"]
        constraints = [
            models.CheckConstraint(condition=Q(display_id__regex=AGENT_ID_PATTERN), name="agent_display_id_digits")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_id})"


class AgentGroup(models.Model):
    display_id = models.CharField(
        "group display ID",
        max_length=32,
        unique=True,
        validators=[group_id_validator],
        help_text="VCC's group display ID, kept as written: leading zeros matter (030).",
    )
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(Agent, blank=True, related_name="groups")
    default_callback_number = models.ForeignKey(
        "CallbackNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    vcc_group_id = models.CharField("VCC group ID", max_length=64, blank=True, help_text="Set by the sync from VCC.")

    class Meta:
        ordering = ["name", "display_id"]
        verbose_name = "agent group"
        constraints = [
            models.CheckConstraint(condition=Q(display_id__regex=GROUP_ID_PATTERN), name="agentgroup_display_id_format")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_id})"


class CallbackNumberQuerySet(models.QuerySet["CallbackNumber"]):
    def usable_by(self, *, agent: Agent | None = None, groups: Iterable[AgentGroup] = ()) -> CallbackNumberQuerySet:
        """Active numbers that agent (or a call via groups) may present: unrestricted ones, or ones allowed to them.

        Once a sync has read which agents VCC lists a number for, the number is offered only to those agents (a
        call via groups: when VCC lists it for a member of one of the groups), since VCC refuses any other.
        """
        allowed = Q(allowed_agents__isnull=True, allowed_groups__isnull=True)
        listed = Q(vcc_listing_synced_at__isnull=True)
        group_ids = [g.pk for g in groups]
        if agent is not None:
            allowed |= Q(allowed_agents=agent) | Q(allowed_groups__members=agent)
            listed |= Q(vcc_listed_for=agent)
        if group_ids:
            allowed |= Q(allowed_groups__in=group_ids)
            listed |= Q(vcc_listed_for__groups__in=group_ids)
        if agent is None and not group_ids:
            listed |= Q(vcc_listed_for__isnull=False)
        return (
            self.filter(is_active=True)
            .filter(pk__in=CallbackNumber.objects.filter(allowed).values("pk"))
            .filter(pk__in=CallbackNumber.objects.filter(listed).values("pk"))
        )

    def in_use(self) -> CallbackNumberQuerySet:
        """Numbers a call refers to or presented: the call log keeps them, so they are deactivated, never deleted."""
        return self.filter(
            Exists(Call.objects.filter(callback_number=OuterRef("pk")))
            | Exists(Call.objects.filter(presented_clid=OuterRef("number")))
        )

    def usage(self) -> dict[str, tuple[int, datetime | None]]:
        """How often, and when last, each of these numbers was presented on a call VCC was asked to place.

        One grouped query on the presented CLID index for all of them: meant for a page of numbers.
        """
        rows = (
            Call.objects.filter(presented_clid__in=self.values("number"))
            .exclude(state=Call.State.FAILED)
            .order_by()
            .values("presented_clid")
            .annotate(times=Count("pk"), last=Max("requested_at"))
        )
        return {row["presented_clid"]: (row["times"], row["last"]) for row in rows}

    def not_listed_by_vcc(self) -> CallbackNumberQuerySet:
        """Active numbers the last sync found VCC lists for no agent: no call can present them."""
        return self.filter(is_active=True, vcc_listing_synced_at__isnull=False, vcc_listed_for__isnull=True)


class CallbackNumber(models.Model):
    """A presented CLID: a number VCC has configured as a callback number for the account."""

    number = models.CharField(max_length=16, unique=True, help_text="E.164, for example +442079460100.")
    label = models.CharField(max_length=100)
    is_active = models.BooleanField("active", default=True)
    is_default = models.BooleanField("account default", default=False)
    allowed_agents = models.ManyToManyField(
        Agent, blank=True, related_name="restricted_callback_numbers", help_text="None and no groups: everyone."
    )
    allowed_groups = models.ManyToManyField(
        AgentGroup, blank=True, related_name="restricted_callback_numbers", help_text="Members of these groups."
    )
    vcc_callback_number_id = models.CharField("VCC callback number ID", max_length=64, blank=True)
    local_presence = models.BooleanField(
        "local presence",
        default=False,
        help_text="Present this number on calls to its own country, unless the caller chose another one.",
    )
    vcc_listed_for = models.ManyToManyField(
        Agent,
        blank=True,
        related_name="vcc_callback_numbers",
        verbose_name="VCC lists it for",
        help_text="Set by the sync: the agents VCC lets present this number.",
    )
    vcc_listing_synced_at = models.DateTimeField(
        "VCC listing read at",
        null=True,
        blank=True,
        help_text="When the sync last read which agents VCC lists this number for. Empty: never, so not checked.",
    )

    objects = CallbackNumberQuerySet.as_manager()

    class Meta:
        ordering = ["label"]
        verbose_name = "callback number (presented CLID)"
        verbose_name_plural = "callback numbers (presented CLIDs)"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="callbacknumber_one_account_default"
            ),
            models.CheckConstraint(condition=Q(number__regex=E164_PATTERN), name="callbacknumber_number_e164"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({phones.display(self.number)})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saving the account default unsets the previous one in the same transaction: one save swaps it."""
        if not self.is_default:
            return super().save(*args, **kwargs)
        with transaction.atomic():
            # Lock the current default first, so that two swaps at once queue instead of colliding.
            others = CallbackNumber.objects.select_for_update().filter(is_default=True).exclude(pk=self.pk)
            if list(others):
                others.update(is_default=False)
            super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.is_default and not self.is_active:
            raise ValidationError({"is_default": "The account default must be active."})
        if self.local_presence and self.number and not self.country:
            raise ValidationError({"local_presence": "This number belongs to no country, so it cannot be local."})

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        # Saving a new default unsets the old one (see save), so the one-default constraint is not a form error.
        exclude = {*(exclude or ()), "is_default"}
        super().validate_constraints(exclude=exclude)

    def make_default(self) -> None:
        """Make this the account default (and active), unsetting the previous default atomically."""
        self.is_default, self.is_active = True, True
        self.save()

    @property
    def country(self) -> str | None:
        """The ISO country of this number (GB, US, ...), or None for numbers of no country (+800 ...)."""
        return phones.country(self.number)

    @property
    def display(self) -> str:
        return phones.display(self.number)

    @property
    def is_restricted(self) -> bool:
        return self.pk is not None and (self.allowed_agents.exists() or self.allowed_groups.exists())


# --- What admins manage for calls: dispositions and consent defaults -------------------------------


class DispositionCode(models.Model):
    """A wrap-up outcome agents pick after a call; the code is sent to VCC verbatim."""

    class Action(models.TextChoices):
        NONE = "", "Nothing else"
        NUMBER_DNC = "number_dnc", "Mark the number do-not-call"
        CONTACT_DNC = "contact_dnc", "Mark the contact do-not-call"

    code = models.CharField(
        max_length=64,
        unique=True,
        validators=[MinLengthValidator(3)],
        help_text="Sent to VCC as the disposition code: 3 to 64 characters.",
    )
    description = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=12, choices=Action.choices, blank=True, help_text="Also done when chosen.")
    is_active = models.BooleanField("active", default=True)
    position = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.code


class ConsentRule(models.Model):
    """The recording consent to send for numbers of a country, unless the contact overrides it."""

    country = models.CharField(
        max_length=2,
        unique=True,
        validators=[RegexValidator(r"^[A-Z]{2}$", "Use the two-letter ISO country code in capitals, such as GB.")],
        help_text="ISO 3166 code, such as GB or US.",
    )
    consent = models.CharField(max_length=10, choices=Consent.choices)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["country"]
        verbose_name = "recording consent default"

    def __str__(self) -> str:
        return f"{self.country}: {self.get_consent_display()}"


# --- The call log ----------------------------------------------------------------------------------

VCC_RETENTION = timedelta(hours=24)  # how long VCC keeps a call's detail after it ends
MISSING_GRACE = timedelta(minutes=5)  # how long a call may answer 404 before it is closed as gone


class CallQuerySet(models.QuerySet["Call"]):
    def visible_to(self, user) -> CallQuerySet:
        """Everyone's calls for supervisors and admins; an agent's own calls (clicked by them or from them)."""
        return self if user.has_perm(perms.VIEW_ALL_CALLS) else self.changeable_by(user)

    def changeable_by(self, user) -> CallQuerySet:
        """Calls this user may act on (recording, wrap-up): the ones they clicked or that rang their phone.

        `Call.is_changeable_by` says the same for one row already loaded."""
        return self.filter(Q(created_by=user) | Q(from_agent__user=user))

    def blocking(
        self, *, agent_id: int | None, number: str, user_id: int, since: datetime, request_id: str
    ) -> Call | None:
        """The latest live call since `since` that holds the agent's phone or, clicked by someone else, the number.

        The search is raw SQL, because every click runs it: the ORM spent some 2.5 ms of CPU building it for
        0.1 ms of work in PostgreSQL. The row, when there is one (rarely), is loaded with the ORM.
        """
        holds = []
        params: list[object] = [
            self.model.State.LIVE,
            connection.ops.adapt_datetimefield_value(since),
            self.model._meta.get_field("request_id").get_db_prep_value(request_id, connection),
        ]
        if agent_id is not None:
            holds.append("from_agent_id = %s")
            params.append(agent_id)
        if number:
            holds.append("(to_number = %s AND created_by_id IS DISTINCT FROM %s)")
            params += [number, user_id]
        if not holds:
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM calls_call WHERE state = %s AND requested_at >= %s AND request_id <> %s "
                f"AND ({' OR '.join(holds)}) ORDER BY requested_at DESC, id DESC LIMIT 1",
                params,
            )
            row = cursor.fetchone()
        return self.select_related("created_by", "from_agent").get(pk=row[0]) if row else None

    def with_parties(self) -> CallQuerySet:
        """With the contact, number, agents and clicker that call panels show."""
        return self.select_related("contact", "phone", "from_agent", "to_agent", "created_by")

    def in_progress(self) -> CallQuerySet:
        """Calls VCC may still be connecting or carrying: asked for, or placed and not yet ended."""
        return self.filter(state__in=Call.IN_PROGRESS)

    def to_wrap_up(self) -> CallQuerySet:
        """Calls that ended without a wrap-up."""
        return self.filter(state=Call.State.ENDED, wrapped_up_at__isnull=True)


class Call(models.Model):
    """One click: written before VCC is asked, then updated with the outcome and followed until the call ends.

    Its changes of state are the `record_*` methods below; each saves only the fields it changes, so a stale copy
    (a slow poll, the worker) never undoes what another process saved meanwhile.
    """

    class State(models.TextChoices):
        REQUESTED = "requested", "Asking VCC"
        LIVE = "live", "Live"  # VCC placed it and has not said it ended
        ENDED = "ended", "Ended"
        FAILED = "failed", "Not placed"  # VCC refused it, or it never reached VCC
        UNCONFIRMED = "unconfirmed", "Not confirmed"  # VCC may have placed it; we never learnt its id

    class Outcome(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        ANSWERED = "answered", "Answered"
        AGENT_NO_ANSWER = "agent_no_answer", "Not answered by the agent"
        NO_ANSWER = "no_answer", "Not answered by the contact"
        BUSY = "busy", "Line busy"
        FAILED = "failed", "Failed"
        NOT_CONFIRMED = "not_confirmed", "Not confirmed: may have been placed"
        UNKNOWN = "unknown", "Ended, result unknown"

    IN_PROGRESS = (State.REQUESTED, State.LIVE)

    request_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Our idempotency key.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="calls_made"
    )
    # From: one agent, or any available agent of some groups.
    from_agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="calls_from")
    from_groups = models.ManyToManyField(AgentGroup, blank=True, related_name="calls")
    # To: a telephone number, or another agent.
    to_number = models.CharField(max_length=32, blank=True)
    to_agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="calls_to")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    phone = models.ForeignKey(ContactPhone, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    # What was sent, and why.
    presented_clid = models.CharField("presented CLID", max_length=32, blank=True)
    callback_number = models.ForeignKey(
        CallbackNumber, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    clid_reason = models.CharField("why this CLID", max_length=200, blank=True)
    consent = models.CharField(max_length=10, choices=Consent.choices, blank=True)
    consent_reason = models.CharField("why this consent", max_length=200, blank=True)
    dnc_override_reason = models.TextField("do-not-call override reason", blank=True)
    regarding = models.CharField("regarding reference", max_length=2000, blank=True)
    application = models.CharField(max_length=32, blank=True)
    request_body = models.JSONField("request sent", null=True, blank=True)
    # What VCC said.
    vcc_call_id = models.CharField("VCC call ID", max_length=64, blank=True)
    vcc_status = models.CharField("VCC status", max_length=32, blank=True)
    recording_status = models.CharField(max_length=32, blank=True)
    result_code = models.CharField(max_length=32, blank=True)
    result_party = models.CharField(max_length=32, blank=True)
    result_reason = models.CharField(max_length=64, blank=True)
    disposition_code = models.CharField(max_length=255, blank=True)
    notes = models.TextField(blank=True)
    wrapped_up_at = models.DateTimeField(null=True, blank=True)
    # Ours.
    state = models.CharField(max_length=12, choices=State.choices, default=State.REQUESTED)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.IN_PROGRESS)
    error_message = models.TextField("VCC's message", blank=True, help_text="Verbatim, for the log.")
    error_status = models.PositiveSmallIntegerField("HTTP status", null=True, blank=True)
    error_display = models.TextField("message shown", blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    responded_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField("VCC latency (ms)", null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Following: when VCC is next asked about this call, and since when it has answered 404.
    next_check_at = models.DateTimeField(null=True, blank=True)
    missing_since = models.DateTimeField(null=True, blank=True)
    # When what reports count last changed (state, outcome, talk time, disposition): the roll-up rebuilds the days
    # of calls changed since its last run (calls/reports.py).
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The id of the request that placed the call (calls.observability), to find its log lines.
    trace_id = models.CharField(max_length=64, blank=True, db_index=False)

    objects = CallQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-pk"]
        permissions = [
            ("place_call", "Can place calls as their own agent"),
            ("place_group_call", "Can place calls via agent groups"),
            ("override_do_not_call", "Can call a do-not-call number, giving a reason"),
            ("view_all_calls", "Can see everyone's calls"),
            ("view_reports", "Can see call reports"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["vcc_call_id"], condition=~Q(vcc_call_id=""), name="call_unique_vcc_call_id"
            ),
            models.CheckConstraint(
                condition=~(Q(to_number="") & Q(to_agent__isnull=True)), name="call_has_destination"
            ),
        ]
        indexes = [
            models.Index(fields=["-requested_at", "-id"], name="call_requested_idx"),
            models.Index(fields=["state", "-requested_at"], name="call_state_idx"),
            models.Index(fields=["outcome", "-requested_at", "-id"], name="call_outcome_idx"),
            models.Index(fields=["from_agent", "-requested_at", "-id"], name="call_agent_idx"),
            models.Index(fields=["created_by", "-requested_at", "-id"], name="call_user_idx"),
            models.Index(fields=["contact", "-requested_at", "-id"], name="call_contact_idx"),
            models.Index(fields=["to_number", "-requested_at"], name="call_number_idx"),
            # The call log filters by these and pages by time, so each leads an index that ends in the page order.
            models.Index(fields=["disposition_code", "-requested_at", "-id"], name="call_disposition_time_idx"),
            models.Index(fields=["presented_clid", "-requested_at", "-id"], name="call_clid_time_idx"),
            # Sorting by talk time puts calls that never talked (no duration) last: a plain value to page by.
            models.Index(Coalesce("duration_seconds", -1).desc(), F("id").desc(), name="call_duration_idx"),
            models.Index(
                fields=["-requested_at", "-id"],
                condition=Q(error_status__isnull=False) | ~Q(error_message=""),
                name="call_error_idx",
            ),
            models.Index(
                fields=["-requested_at", "-id"],
                condition=Q(state="ended", wrapped_up_at__isnull=True),
                name="call_wrap_up_idx",
            ),
            models.Index(fields=["next_check_at"], condition=Q(state="live"), name="call_follow_idx"),
        ]

    def __str__(self) -> str:
        return f"Call {self.pk} to {self.destination} ({self.get_outcome_display()})"

    def is_changeable_by(self, user) -> bool:
        """The rule of `CallQuerySet.changeable_by`, for a row already loaded."""
        return self.created_by_id == user.pk or bool(self.from_agent_id and self.from_agent.user_id == user.pk)

    @property
    def destination(self) -> str:
        return str(self.to_agent) if self.to_agent_id else phones.display(self.to_number)

    @property
    def in_progress(self) -> bool:
        return self.state in self.IN_PROGRESS

    @property
    def is_live(self) -> bool:
        return self.state == self.State.LIVE

    @property
    def wrap_up_due(self) -> bool:
        return self.state == self.State.ENDED and self.wrapped_up_at is None

    def history(self) -> list[tuple[datetime, str, str]]:
        """Everything that happened to the call, oldest first: (when, what, detail). The milestones come from
        the row itself, everything else from its CallEvents (one query)."""
        items = [
            (self.requested_at, "Asked VCC to place the call", self.clid_reason and f"caller ID: {self.clid_reason}")
        ]
        if self.responded_at:
            if self.vcc_call_id:
                items.append((self.responded_at, "VCC placed the call", f"VCC call {self.vcc_call_id}"))
            else:
                status = f"HTTP {self.error_status}: " if self.error_status else ""
                items.append((self.responded_at, self.get_state_display(), f"{status}{self.error_message}".strip()))
        if self.connected_at:
            items.append((self.connected_at, "Connected", ""))
        if self.ended_at and self.state == self.State.ENDED:
            items.append(
                (
                    self.ended_at,
                    f"Ended: {self.get_outcome_display()}",
                    "/".join(r for r in (self.result_code, self.result_party, self.result_reason) if r),
                )
            )
        items += [(e.at, e.get_kind_display(), e.detail) for e in self.events.all()]
        return sorted(items, key=lambda item: item[0])

    # --- Writing the row: every click and every follow does, so its SQL is built here ---------------------------
    # Django's save() spent about 1 ms of CPU building each INSERT or UPDATE of this 40-column row, more than
    # PostgreSQL spent running it. These write the same values (each field's pre_save and get_db_prep_save) and
    # send no pre_save/post_save signals: nothing listens to Call's, and a test fails if something starts to.

    def insert(self) -> None:
        """save(force_insert=True): write this new row and take its id."""
        meta = self._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]
        values = [f.get_db_prep_save(f.pre_save(self, True), connection) for f in fields]
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
                f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}",
                values,
            )
            self.pk = cursor.fetchone()[0]
        self._state.adding, self._state.db = False, connection.alias

    def save_fields(self, fields: Iterable[str]) -> None:
        """save(update_fields=fields): write these fields of the row."""
        meta, quote = self._meta, connection.ops.quote_name
        columns = [meta.get_field(name) for name in fields]
        values = [f.get_db_prep_save(f.pre_save(self, False), connection) for f in columns]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in columns)} "
                f"WHERE {quote(meta.pk.column)} = %s",
                [*values, self.pk],
            )
            if cursor.rowcount != 1:
                raise DatabaseError("Save with update_fields did not affect any rows.")

    # --- Transitions: each writes only the fields it changes ---------------------------------------------

    def _save(self, fields: list[str], event: str, detail: str = "", *, at: datetime) -> None:
        self.save_fields(fields)
        CallEvent.objects.create(call=self, at=at, kind=event, detail=detail[:2000])

    def record_placed(
        self,
        *,
        vcc_call_id: str,
        vcc_status: str,
        recording_status: str,
        latency_ms: int,
        now: datetime,
        note: str = "",
    ) -> None:
        """VCC placed the call (or named it in Location although its reply was unreadable: `note` says so)."""
        self.state, self.outcome = self.State.LIVE, self.Outcome.IN_PROGRESS
        self.vcc_call_id, self.vcc_status, self.recording_status = vcc_call_id, vcc_status, recording_status
        self.responded_at, self.latency_ms, self.next_check_at = now, latency_ms, now
        self.error_display, self.changed_at = note, now
        self.save_fields(
            [
                "state",
                "outcome",
                "vcc_call_id",
                "vcc_status",
                "recording_status",
                "responded_at",
                "latency_ms",
                "next_check_at",
                "error_display",
                "changed_at",
                *(["error_message", "error_status"] if note else []),
            ]
        )

    def record_failed(
        self, *, message: str, status: int | None, display: str, latency_ms: int | None, now: datetime
    ) -> None:
        """VCC refused the call, or it never reached VCC: nothing rang."""
        self._record_error(self.State.FAILED, self.Outcome.FAILED, message, status, display, latency_ms, now)

    def record_unconfirmed(
        self, *, message: str, status: int | None, display: str, latency_ms: int | None, now: datetime
    ) -> None:
        """VCC may have placed the call, but we never learnt its id: neither failed nor followed."""
        self._record_error(
            self.State.UNCONFIRMED, self.Outcome.NOT_CONFIRMED, message, status, display, latency_ms, now
        )

    def _record_error(self, state, outcome, message, status, display, latency_ms, now) -> None:
        self.state, self.outcome = state, outcome
        self.error_message, self.error_status, self.error_display = message, status, display
        self.responded_at, self.latency_ms, self.changed_at = now, latency_ms, now
        self.save_fields(
            [
                "state",
                "outcome",
                "error_message",
                "error_status",
                "error_display",
                "responded_at",
                "latency_ms",
                "changed_at",
            ]
        )

    def record_detail(
        self,
        *,
        live: bool,
        recording_status: str,
        result: tuple[str, str, str],
        connected: bool,
        disposition_code: str,
        now: datetime,
        next_check_at: datetime | None,
    ) -> bool:
        """VCC's call detail: where the call is now. Returns whether its phase changed (worth telling the page)."""
        was = (self.state, self.connected_at is not None, self.recording_status)
        fields = ["vcc_status", "recording_status", "next_check_at", "missing_since"]
        self.vcc_status = "Active" if live else ""
        self.recording_status = recording_status
        self.next_check_at = next_check_at if live else None
        self.missing_since = None
        if disposition_code and not self.disposition_code:
            self.disposition_code = disposition_code
            fields.append("disposition_code")
        if live and connected and self.connected_at is None:
            self.connected_at = now
            fields.append("connected_at")
        if not live:
            self.changed_at = now
            self.result_code, self.result_party, self.result_reason = result
            self.state, self.ended_at = self.State.ENDED, self.ended_at or now
            self.outcome = outcome_of(*result, connected=self.connected_at is not None)
            if self.duration_seconds is None:
                talked = (self.ended_at - self.connected_at).total_seconds() if self.connected_at else 0
                self.duration_seconds = max(0, round(talked))
            fields += [
                "result_code",
                "result_party",
                "result_reason",
                "state",
                "ended_at",
                "outcome",
                "duration_seconds",
                "changed_at",
            ]
        changed = was != (self.state, self.connected_at is not None, self.recording_status)
        self.save_fields(fields)
        return changed

    def record_missing(self, *, now: datetime, next_check_at: datetime) -> bool:
        """VCC answered 404. Only a call older than VCC's retention, or one missing for several minutes, is
        closed (without a result); a single 404 is not the end of a live call. Returns whether it was closed."""
        self.missing_since = self.missing_since or now
        gone = self.requested_at <= now - VCC_RETENTION or self.missing_since <= now - MISSING_GRACE
        if not gone:
            self.next_check_at = next_check_at
            self.save_fields(["missing_since", "next_check_at"])
            return False
        self.state, self.outcome = self.State.ENDED, self.Outcome.UNKNOWN
        self.ended_at = self.ended_at or now
        self.next_check_at = None
        self.result_reason = self.result_reason or "Unknown: VCC no longer has this call"
        self.changed_at = now
        self._save(
            ["missing_since", "state", "outcome", "ended_at", "next_check_at", "result_reason", "changed_at"],
            CallEvent.Kind.PROGRESS,
            "closed: VCC no longer has this call",
            at=now,
        )
        return True

    def record_follow_error(self, *, message: str, status: int | None, now: datetime, next_check_at: datetime) -> None:
        """Asking VCC about the call failed: try again later; the call stays as it was."""
        self.next_check_at = next_check_at
        self.save_fields(["next_check_at"])
        CallEvent.objects.create(
            call=self,
            at=now,
            kind=CallEvent.Kind.ERROR,
            detail=(f"call detail: HTTP {status}: {message}" if status else f"call detail: {message}")[:2000],
        )

    def record_recording(self, *, status: str, now: datetime) -> None:
        self.recording_status = status
        self._save(["recording_status"], CallEvent.Kind.RECORDING, f"recording {status.lower()} requested", at=now)

    def record_wrap_up(self, *, code: str, notes: str, now: datetime, confirmed: bool) -> None:
        """Store the notes always, and the disposition once VCC has it (or cannot have it any more)."""
        self.notes = notes
        fields = ["notes"]
        if confirmed:
            self.disposition_code, self.wrapped_up_at, self.changed_at = code, now, now
            fields += ["disposition_code", "wrapped_up_at", "changed_at"]
        self._save(
            fields, CallEvent.Kind.WRAP_UP, f"{code}" if confirmed else f"notes saved; {code} not yet sent", at=now
        )


def outcome_of(code: str, party: str, reason: str, *, connected: bool) -> str:
    """How an ended call went, from VCC's result (code, party, reason); VCC documents few values, so be lenient."""
    code_, party_, reason_ = code.lower(), party.lower(), reason.lower()
    if code_ == "success" or (not code_ and connected):
        return Call.Outcome.ANSWERED
    if not code_ and not reason_:
        return Call.Outcome.UNKNOWN
    if "busy" in reason_:
        return Call.Outcome.BUSY
    if "noanswer" in reason_.replace(" ", "").replace("_", ""):
        return Call.Outcome.AGENT_NO_ANSWER if party_ == "originator" else Call.Outcome.NO_ANSWER
    return Call.Outcome.FAILED


class CallEvent(models.Model):
    """One entry of a call's history beyond the milestones its row keeps (asked, answered, connected, ended):
    errors asking VCC, recording changes, wrap-ups and their edits, a call closed without a result."""

    class Kind(models.TextChoices):
        PROGRESS = "progress", "Progress"
        ERROR = "error", "Error asking VCC"
        RECORDING = "recording", "Recording"
        WRAP_UP = "wrap_up", "Wrap-up"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    detail = models.CharField(max_length=2000, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["call", "at"], name="callevent_call_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.get_kind_display()}: {self.detail}"


# --- Keeping in step with VCC: sync runs -----------------------------------------------------------


class SyncRun(models.Model):
    """One run of the sync from VCC's User Admin API, a dry run (a preview) or applied, and what it changed."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField("dry run", default=False, help_text="A preview: nothing was saved.")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: run by the sync_vcc command.",
    )
    lines = models.JSONField(default=list, blank=True, help_text="What changed (or would change), one line each.")
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deactivated = models.PositiveIntegerField(default=0)
    problems = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the run failed; nothing was changed then.")

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = "sync from VCC"
        verbose_name_plural = "syncs from VCC"
        permissions = [("view_integration_health", "Can see the integration health page")]
        indexes = [models.Index(fields=["-started_at"], name="syncrun_started_idx")]

    def __str__(self) -> str:
        kind = "Dry run" if self.dry_run else "Sync"
        return f"{kind} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def ok(self) -> bool:
        return not self.error and self.finished_at is not None

    @property
    def summary(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        if self.finished_at is None:
            return "running"
        return (
            f"{self.created} created, {self.updated} updated, {self.deactivated} deactivated, {self.problems} problems"
        )


class DialLock(models.Model):
    """A number being dialled by one click (calls/locks.py): one row per number, free again once expired."""

    number = models.CharField(max_length=32, primary_key=True)
    owner = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.number} held by {self.owner} until {self.expires_at:%H:%M:%S}"


# --- Reports: the call log rolled up by day ---------------------------------------------------------


class CallRollup(models.Model):
    """How many calls of one finished day had one value of one facet: everyone's, one agent's, or one group's.

    Reports read these rows instead of millions of calls. `manage.py rollup_calls`, a periodic job, builds them
    (and seed_volume fills them); calls/reports.py computes the days after the last build live from the calls.
    Each scope counts every call once: `everyone` rows have no agent or group (a year's report reads a few
    thousand), `agent` rows are per agent (no agent: calls via groups), `group` rows per group a call went via.
    """

    class Scope(models.TextChoices):
        EVERYONE = "everyone", "Everyone"
        AGENT = "agent", "One agent"
        GROUP = "group", "One group"

    class Facet(models.TextChoices):
        TOTAL = "total", "All calls"
        OUTCOME = "outcome", "Outcome"
        DISPOSITION = "disposition", "Disposition"
        CLID = "clid", "Presented CLID"
        HOUR = "hour", "Hour of the day"
        ERROR = "error", "VCC's reason for a failure"

    day = models.DateField()
    scope = models.CharField(max_length=8, choices=Scope.choices)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(AgentGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    facet = models.CharField(max_length=12, choices=Facet.choices)
    key = models.CharField(max_length=300, blank=True)
    calls = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)
    talk_seconds = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["scope", "day", "facet"], name="callrollup_day_idx"),
            models.Index(fields=["agent", "day"], name="callrollup_agent_idx"),
            models.Index(fields=["group", "day"], name="callrollup_group_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.facet}={self.key}: {self.calls}"


class CallRollupState(models.Model):
    """One row: the last day the roll-up holds, and since when changed calls have been rolled up again."""

    built_through = models.DateField(null=True, blank=True)
    changes_seen_at = models.DateTimeField(null=True, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Roll-up through {self.built_through}"


from calls.models_logins import LockOut, LoginFailure  # noqa: E402, F401 (moves into calls/models/ at the split)
