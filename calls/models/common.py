"""What several areas share: the ID and number patterns, their validators, the consent choices, and the columns
of the models whose SQL is written by hand."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import DatabaseError, connection, models

from calls import phones

AGENT_ID_PATTERN = r"^[0-9]{1,11}$"
GROUP_ID_PATTERN = r"^[A-Za-z0-9]{1,32}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
ERASED_CONTACT = "Erased contact"  # how a call to an erased contact names it (calls/privacy/erasure.py)

agent_id_validator = RegexValidator(
    AGENT_ID_PATTERN, "A VCC agent display ID is 1 to 11 digits, nothing else (for example 1234).", code="agent_id"
)
group_id_validator = RegexValidator(
    GROUP_ID_PATTERN, "A VCC group display ID is 1 to 32 letters or digits (for example 030).", code="group_id"
)


def validate_phone(value: str) -> None:
    phones.to_e164(value)


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    """A contact's time zone must be one calling hours know: a typo would be ignored there, and the contact called by
    the zones of their numbers instead."""
    if value and value not in _time_zones():
        raise ValidationError(
            "“%(value)s” is not a time zone: use a name from the IANA list, such as America/New_York or "
            "Europe/London (the letter case matters), or leave it blank to go by each number.",
            code="time_zone",
            params={"value": value},
        )


class Consent(models.TextChoices):
    UNKNOWN = "Unknown", "Unknown"
    ONE_PARTY = "OneParty", "One party"
    TWO_PARTY = "TwoParty", "Two party"


def concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """model's field `name`, which has a column (`_meta.get_field` also finds relations that have none)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.concrete, f"{name} is not a column"
    return field


def column_of(field: models.Field[Any, Any]) -> str:
    """A concrete field's column (`Field.column` is None only for fields that have none)."""
    assert field.column is not None, f"{field.name} has no column"
    return field.column


class HandWrittenSQL(models.Model):
    """A model whose rows every click and every follow writes (Call), so its INSERT and UPDATE are built here.

    Django's save() spent about 1 ms of CPU building each INSERT or UPDATE of this 40-column row, more than
    PostgreSQL spent running it. These write the same values (each field's pre_save and get_db_prep_save) and
    send no pre_save/post_save signals: nothing listens to Call's, and a test fails if something starts to.
    """

    class Meta:
        abstract = True

    def insert(self) -> None:
        """save(force_insert=True): write this new row and take its id."""
        meta = self._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]
        values = [f.get_db_prep_save(f.pre_save(self, True), connection) for f in fields]
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(column_of(f)) for f in fields)}) "
                f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(column_of(meta.pk))}",
                values,
            )
            self.pk = cursor.fetchone()[0]
        self._state.adding, self._state.db = False, connection.alias

    def save_fields(self, fields: Iterable[str]) -> None:
        """save(update_fields=fields): write these fields of the row."""
        meta, quote = self._meta, connection.ops.quote_name
        columns = [concrete_field(type(self), name) for name in fields]
        values = [f.get_db_prep_save(f.pre_save(self, False), connection) for f in columns]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(column_of(f))} = %s' for f in columns)} "
                f"WHERE {quote(column_of(meta.pk))} = %s",
                [*values, self.pk],
            )
            if cursor.rowcount != 1:
                raise DatabaseError("Save with update_fields did not affect any rows.")


def update_rows(model: type[models.Model], rows: Sequence[models.Model], fields: dict[str, str]) -> None:
    """Write these fields of these rows in one UPDATE from arrays (PostgreSQL's unnest); `fields` gives each field's
    PostgreSQL type. bulk_update (used on other databases) builds a CASE per field and row in Python: an eighth of
    the worker's CPU at 1,000 calls a minute (py-spy), for a pass's webhook deliveries."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(rows, list(fields))
        return
    meta, quote = model._meta, connection.ops.quote_name
    named = {name: concrete_field(model, name) for name in fields}
    columns = [quote(column_of(field)) for field in named.values()]
    arrays = ", ".join(f"%s::{kind}[]" for kind in fields.values())
    pk = quote(column_of(meta.pk))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} t SET {', '.join(f'{c} = v.{c}' for c in columns)} "
            f"FROM unnest(%s::{meta.pk.db_type(connection)}[], {arrays}) AS v(id, {', '.join(columns)}) "
            f"WHERE t.{pk} = v.id",
            [[row.pk for row in rows], *([getattr(row, field.attname) for row in rows] for field in named.values())],
        )


# --- Rows read by hand-written SQL, into models as the ORM would build them -------------------------------------


def columns_sql(model: type[models.Model], alias: str) -> str:
    """The model's columns, in order, for a SELECT of the table aliased `alias`."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(column_of(f))}" for f in model._meta.concrete_fields)


@functools.cache
def row_converters(model: type[models.Model], vendor: str) -> list[tuple[Any, list[Callable[..., Any]]]]:
    """What the ORM does to each column's value as it reads a row of model (SQLite's dates and booleans)."""
    table = model._meta.db_table
    out = []
    for field in model._meta.concrete_fields:
        column = field.get_col(table)
        out.append((column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)))
    return out


def from_row[M: models.Model](model: type[M], values: Sequence[Any]) -> M:
    """A model instance from a row of all its concrete columns, in order, as the ORM would build it."""
    converted = []
    for value, (column, converters) in zip(values, row_converters(model, connection.vendor), strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, attnames(model), converted)


@functools.cache
def attnames(model: type[models.Model]) -> tuple[str, ...]:
    """The names of model's concrete fields, in the order of their columns."""
    return tuple(f.attname for f in model._meta.concrete_fields)
