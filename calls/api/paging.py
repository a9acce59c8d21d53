"""Keyset pages for the API's short lists (agents, groups, callback numbers, dispositions): `limit` (1 to 200,
default 50) and `after` (the cursor a `next` link carries), as the contacts and the call log page theirs. Each list
is ordered by two columns, the second unique, so a page goes on exactly after the row the last one ended with."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from ninja import Field, Schema

from calls.api.errors import Problem
from calls.cursors import is_bigint, is_text
from calls.forms import encode_cursor
from calls.forms.contacts import decode_cursor
from calls.views.calling import base_url

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


class PageQuery(Schema):
    limit: str | None = Field(None, description=f"Rows a page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})")
    after: str | None = Field(None, description="The cursor of the page to read, from a `next` link")


def limit_of(raw: str | None) -> int:
    """A list's `limit` parameter: 1 to MAX_LIMIT, DEFAULT_LIMIT when left out; a 400 problem otherwise."""
    if not raw:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdecimal() and len(raw) <= 4 and 1 <= int(raw) <= MAX_LIMIT):
        raise Problem(400, f"limit: give a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).")
    return int(raw)


def _after(raw: str, kinds: tuple[str, str]) -> list[Any]:
    damaged = Problem(400, "after: the cursor is damaged; use the `next` link of the page before, or leave it out.")
    values = decode_cursor(raw)
    if values is None:
        raise damaged
    checks = {"text": is_text, "int": is_bigint}
    if not (isinstance(values, list) and len(values) == 2):
        raise damaged
    if not all(checks[kind](value) for kind, value in zip(kinds, values, strict=True)):
        raise damaged
    return values


def keyset[M: Model](
    request: HttpRequest, rows: QuerySet[M], order: tuple[tuple[str, str], tuple[str, str]], query: PageQuery
) -> tuple[list[M], str | None]:
    """One page of `rows` in `order` ((column, "text" or "int") twice, the second unique) and the next page's
    address, or None on the last page."""
    (first, first_kind), (second, second_kind) = order
    limit = limit_of(query.limit)
    if query.after:
        value, tie = _after(query.after, (first_kind, second_kind))
        rows = rows.filter(Q(**{f"{first}__gt": value}) | Q(**{first: value, f"{second}__gt": tie}))
    page = list(rows.order_by(first, second)[: limit + 1])
    if len(page) <= limit:
        return page, None
    page = page[:limit]
    params = request.GET.copy()
    params["after"] = encode_cursor([getattr(page[-1], first), getattr(page[-1], second)])
    return page, f"{base_url(request).rstrip('/')}{request.path}?{params.urlencode()}"
