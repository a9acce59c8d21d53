"""Exports in the audit trail: who downloaded which rows (the filters), how many, and whether the download ended."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from django.db import DatabaseError

from calls import audit

log = logging.getLogger(__name__)


class _Rows:
    """Counts the CSV records in a stream of pieces: newlines outside quoted cells (a note may hold newlines)."""

    def __init__(self) -> None:
        self.newlines = 0
        self.quoted = False  # inside a quoted cell at the end of the pieces seen so far

    def feed(self, piece: str | bytes) -> None:
        quote, newline = ('"', "\n") if isinstance(piece, str) else (b'"', b"\n")
        parts = piece.split(quote)  # type: ignore[arg-type]
        for index, part in enumerate(parts):
            if index:
                self.quoted = not self.quoted
            if not self.quoted:
                self.newlines += part.count(newline)


class AuditedExport:
    """chunks (a CSV download's pieces, header first), recorded in the audit trail once when it ends or is cut
    short: kind, the filters it was asked with and the rows sent. close() is passed on first (a COPY cut short must
    drop its connection before anything else is asked of it)."""

    def __init__(self, chunks: Iterator[Any], *, kind: str, filters: Mapping[str, object]) -> None:
        self.chunks = chunks
        self.kind = kind
        self.filters = dict(filters)
        self.actor = audit.current()  # now, in the request: the pieces are read after the view has returned
        self.rows = _Rows()
        self.recorded = False

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:  # str or bytes, as chunks gives
        try:
            piece = next(self.chunks)
        except StopIteration:
            self._record(complete=True)
            raise
        self.rows.feed(piece)
        return piece

    def close(self) -> None:
        try:
            if (close := getattr(self.chunks, "close", None)) is not None:
                close()
        finally:
            self._record(complete=False)

    def _record(self, *, complete: bool) -> None:
        if self.recorded:
            return
        self.recorded = True
        rows = max(self.rows.newlines - 1, 0)  # less the header line
        try:
            audit.record(
                self.kind,
                actor=self.actor,
                after={"filters": self.filters, "rows": rows, "complete": complete},
            )
        except DatabaseError:
            log.exception("the audit trail could not record an export (%s, %d rows)", self.kind, rows)


def audited_export(chunks: Iterator[Any], *, kind: str, filters: Mapping[str, object]) -> AuditedExport:
    """chunks, recorded in the audit trail as an export of kind when the download ends or is cut short."""
    return AuditedExport(chunks, kind=kind, filters=filters)
