"""Contacts and their numbers: the list's search, sort and keyset pages, and the number a click dials (raw SQL)."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, connections, models, transaction
from django.db.models import F, Q, Value
from django.db.models.expressions import BaseExpression
from django.db.models.functions import Concat, Lower, Reverse
from django.db.models.lookups import Contains
from django.urls import reverse

from calls import phones
from calls.models.calls import Call
from calls.models.common import E164_PATTERN, Consent, columns_sql, from_row, validate_time_zone
from calls.models.contactsearch import ContactSearch

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.expressions import Combinable
    from django.db.models.sql.compiler import SQLCompiler


# "Hopper, Grace", as other systems write a name, or words pasted from a list with ";": the comma stayed on the
# word ("hopper,"), which no contact has, so the search found nobody. A comma or semicolon is a space, here, so that
# every caller of the search (the list, the API, the admin, a call queue) reads it so.
_BETWEEN_WORDS = str.maketrans(",;", "  ")


def _spaced(query: str) -> str:
    """query with each comma or semicolon read as a space, trimmed."""
    return query.translate(_BETWEEN_WORDS).strip()


def _words(query: str) -> list[str]:
    return _spaced(query).lower().split()[:MAX_SEARCH_WORDS]


def _number_parts(query: str) -> list[str]:
    """The parts of a search read as phone numbers: all of it when it looks like one, else its words of digits."""
    query = _spaced(query)
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
        query = _spaced(query)
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
                f"UPDATE {Contact._meta.db_table} SET last_called_at = %s, last_call_id = %s "
                "WHERE id = %s AND NOT COALESCE("
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
        lookups = self._prefetch_related_lookups  # type: ignore[attr-defined]  # private; django-stubs omits it
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
    return phones.looks_like_number(_spaced(query))


def _ordered_page(
    qs: ContactQuerySet,
    domain: ContactQuerySet,
    order: Sequence[str],
    after: list | None,
    size: int,
    narrowed: bool,
    windows: Sequence[int] | None = None,
    number_only: bool = False,
) -> list[Contact]:
    """size + 1 rows of qs in order after the cursor, by a plan that stays cheap whatever the matches look like.

    Unnarrowed, the sort's index is read in order: a page costs 26 rows. Narrowed (a search, a filter), reading
    the index in order and filtering is cheap when matches are frequent and spread out, and ruinous when they
    cluster far away ("muhammad" sorted by name reads every name before M); fetching every match and sorting
    them is the reverse. The planner cannot tell the two apart, so: look for the page among the next 300 rows of
    the order, then the next 3,000 (bounded work: the window's end is read from the index alone), and only then
    fetch every match and sort them, with an ORDER BY that no index serves so that the planner must. Words alone
    sorted by name on PostgreSQL are sorted from the narrow search table instead (calls/models/contactsearch.py).
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
            in_window = after_cursor
            if end is not None:
                in_window = _up_to(in_window, fields, list(end), descending)
            rows = list(in_window.order_by(*order)[:limit])
            if len(rows) == limit or end is None:  # the page is full, or the window reached the end of the list
                return rows
    words = _words_alone(qs) if tuple(order) == CONTACT_SORTS["name"] else None
    if words and connections[qs.db].vendor == "postgresql":
        # Only words, sorted by name: the first matches by name are found in the narrow table (contactsearch.py).
        return list(qs.filter(pk__in=_narrow_ids(words, after, limit)).order_by(*order))
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
        self.text: BaseExpression = Contains(F("search_text"), word)
        self.number: BaseExpression = _has_number_matching(word)

    def get_source_expressions(self) -> list[Any]:
        return [self.text, self.number]

    def set_source_expressions(self, exprs: Sequence[Combinable | models.Expression]) -> None:
        text, number = exprs
        assert isinstance(text, BaseExpression) and isinstance(number, BaseExpression)  # Django passes its own
        self.text, self.number = text, number

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        way = _ONE_WAY.get()
        parts = [self.text] if way == _IN_THE_TEXT else [self.number] if way == self.word else [self.text, self.number]
        compiled = [compiler.compile(part) for part in parts]
        return f"({' OR '.join(sql for sql, _ in compiled)})", tuple(p for _, params in compiled for p in params)


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
    conditions = where.children if where.connector == "AND" and not where.negated else []
    sides = [getattr(child, "lhs", None) for child in conditions]
    words = [side.word for side in sides if isinstance(side, _TextOrNumber)]
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


def _up_to(qs: ContactQuerySet, fields: list[str], end: list[object], descending: bool) -> ContactQuerySet:
    from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThanOrEqual, TupleLessThanOrEqual

    lookup = TupleGreaterThanOrEqual if descending else TupleLessThanOrEqual
    return qs.filter(lookup(Tuple(*(models.F(f) for f in fields)), tuple(end)))


def _words_alone(qs: ContactQuerySet) -> list[str] | None:
    """The words qs is narrowed by, when words in the text are all it is narrowed by (search() without a number or a
    word of digits, and no filter); else None."""
    where = qs.query.where
    if where.connector != "AND" or where.negated or not where.children:
        return None
    words = []
    for child in where.children:
        if not (isinstance(child, Contains) and isinstance(child.rhs, str)):
            return None
        if getattr(getattr(child.lhs, "target", None), "name", None) != "search_text":
            return None
        words.append(child.rhs)
    return words


def _narrow_ids(words: list[str], after: list | None, limit: int) -> models.QuerySet[ContactSearch, int]:
    """The ids of the first `limit` contacts by name (after the cursor) whose search text holds every word, read
    from ContactSearch: the trigram index finds the matches, and only the narrow table's rows are read to sort them."""
    narrow = ContactSearch.objects.all()
    for word in words:
        narrow = narrow.filter(search_text__contains=word)
    narrow = _after(narrow, ["name", "id"], after, False)
    return narrow.order_by("name", "id").values_list("id", flat=True)[:limit]


def _unindexed(field: str) -> models.OrderBy:
    """field's value through an expression no index matches: the same order, sorted rather than read in order."""
    name = field.lstrip("-")
    expression: models.Expression
    if name.endswith("_at"):
        expression = models.ExpressionWrapper(models.F(name) + timedelta(0), output_field=models.DateTimeField())
    elif name == "id":
        expression = models.F(name) + 0
    else:
        expression = Concat(models.F(name), Value(""), output_field=models.TextField())
    return expression.desc(nulls_last=True) if field.startswith("-") else expression.asc()


def _after[QS: models.QuerySet[Any, Any]](qs: QS, fields: list[str], after: list | None, descending: bool) -> QS:
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


def refresh_last_calls(
    contact_model: type[models.Model], call_model: type[models.Model], contacts: models.QuerySet[Any] | None = None
) -> int:
    """Set each contact's last call and when it was: the one function behind the queryset method and the
    migration's backfill (which passes its historical models). Only contacts whose last call changes are written."""
    contacts = contact_model._default_manager.all() if contacts is None else contacts
    latest = call_model._default_manager.filter(contact=models.OuterRef("pk")).order_by("-requested_at", "-pk")
    last_call = models.Subquery(latest.values("pk")[:1])
    has_calls = models.Exists(call_model._default_manager.filter(contact=models.OuterRef("pk")))
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
    external_id = models.CharField(
        "external id",
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        help_text="Another system's id for this contact (the API upserts by it); unique.",
    )
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
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        blank=True,
        db_default="",
        default="",
        help_text="Where this contact is, for calling hours (such as America/New_York). Blank: from each number.",
        validators=[validate_time_zone],
    )
    priority = models.SmallIntegerField(
        default=0, db_default=0, help_text="Higher comes first in call queues ordered by priority."
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

    # The number the contact list shows for a search (Contact.phone_matching), set by the list view; not a column.
    shown_phone: ContactPhone | None

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


@functools.cache
def _phone_for_click_sql(vendor: str) -> str:
    return (
        f"SELECT {columns_sql(ContactPhone, 'p')}, {_BLOCKED_ELSEWHERE_SQL}, {columns_sql(Contact, 'c')} "
        f"FROM {ContactPhone._meta.db_table} p JOIN {Contact._meta.db_table} c ON c.id = p.contact_id "
        "WHERE p.id = %s AND p.contact_id = %s"
    )


@functools.cache
def _phones_of_contact_sql(vendor: str) -> str:
    return (
        f"SELECT {phone_columns_sql()} "
        f"FROM {ContactPhone._meta.db_table} p JOIN {Contact._meta.db_table} c ON c.id = p.contact_id "
        "WHERE p.contact_id = %s ORDER BY p.is_primary DESC, p.id"
    )


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
        return phone_from_row(row)

    def of_contact(self, contact_id: int) -> list[ContactPhone]:
        """A contact's numbers, primary first, each with its contact and `blocked_elsewhere`: what a call queue
        reads for each contact it offers ("next"), in one raw statement for the reason `for_click` gives."""
        with connection.cursor() as cursor:
            cursor.execute(_phones_of_contact_sql(connection.vendor), [contact_id])
            rows = cursor.fetchall()
        return [phone_from_row(row) for row in rows]


def phone_columns_sql() -> str:
    """The columns phone_from_row reads, for a SELECT of numbers `p` joined to their contacts `c`: the number's,
    whether it is do-not-call on any contact, the contact's."""
    return f"{columns_sql(ContactPhone, 'p')}, {_BLOCKED_ELSEWHERE_SQL}, {columns_sql(Contact, 'c')}"


def phone_from_row(row: Sequence[Any]) -> ContactPhone:
    """A number from a row of phone_columns_sql()'s: its columns, `blocked_elsewhere`, then its contact's columns."""
    n = len(ContactPhone._meta.concrete_fields)
    phone = from_row(ContactPhone, row[:n])
    phone.blocked_elsewhere = bool(row[n])  # SQLite answers 0 or 1
    phone.contact = from_row(Contact, row[n + 1 :])
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

    # Whether the number is do-not-call on any contact: set where a number is read for a click or a contact's page
    # (ContactPhone.objects.for_click, calls.calling.facts), not a column.
    blocked_elsewhere: bool

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


# Whether a number is do-not-call on any contact: the flag follows the number, not the record it is on. The ORM's
# version is calls.calling.facts._blocked_elsewhere; tests/test_click_sql.py holds the two to the same answers.
# (Here, after ContactPhone, because it names the two tables from their models.)
_BLOCKED_ELSEWHERE_SQL = f"""EXISTS (
    SELECT 1 FROM {ContactPhone._meta.db_table} o JOIN {Contact._meta.db_table} oc ON oc.id = o.contact_id
    WHERE o.number = p.number AND (o.do_not_call OR oc.do_not_call)
)"""
