"""CSV for spreadsheets: cells they open safely, read back as they were, and one streamed download for every export
(contacts, the call log)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A phone number in E.164 (+447400123456): a plus and digits only, which no spreadsheet runs, so it stays as it is.
# (A date or a time in ISO form starts with a digit: never guarded.) The SQL of calls.calllog says the same.
PHONE_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")
PHONE_NUMBER_SQL = r"^\+[1-9][0-9]{6,14}$"
BOM = "\ufeff"  # first in every download, so Excel reads the file as UTF-8 (Zoë, not ZoÃ«)


def inert(value: object) -> str:
    """A cell a spreadsheet will not run as a formula: text starting with = + - @ tab or CR gets a leading
    apostrophe (OWASP's advice for CSV injection), unless it is plainly a phone number. None is an empty cell."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) and not PHONE_NUMBER.fullmatch(text) else text


def as_typed(cell: str) -> str:
    """A cell as it was before inert(): the leading apostrophe goes only when what follows starts a formula, so
    `'=SUM(A1)` reads `=SUM(A1)` and `'quoted` stays as it is."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


class Line:
    """What csv.writer writes into to hand each row back as text: `csv.writer(Line()).writerow(cells)`."""

    def write(self, value: str) -> str:
        return value


def csv_download(
    request: HttpRequest, chunks: Iterator[str] | Iterator[bytes], *, filename: str
) -> StreamingHttpResponse:
    """A CSV file streamed as it is made: chunks gives the text a piece at a time (each piece one batch of rows,
    read with one or a few queries), and, if it has one, its close() is called when the download ends or is cut.

    Under ASGI the response is an async iterator that asks for each piece in the request's sync thread (the same
    thread, so the same database connection, each time; nothing of the database is touched in the event loop):
    Django's ASGI handler reads a sync iterator whole before sending a byte, which for 300,000 contacts held the
    first byte for 36 s and the whole file in memory. Under WSGI the pieces are sent as they come.

    The file starts with a UTF-8 byte order mark (one only: a first piece that has one keeps it)."""
    pieces = _WithBom(chunks)
    content = _pieces(pieces) if isinstance(request, ASGIRequest) else pieces
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _WithBom:
    """chunks, its first piece starting with the byte order mark; close() passed on."""

    def __init__(self, chunks: Iterator[str | bytes]) -> None:
        self.chunks, self.first = chunks, True

    def __iter__(self) -> Iterator[str | bytes]:
        return self

    def __next__(self) -> str | bytes:
        piece = next(self.chunks)
        if self.first:
            self.first = False
            if isinstance(piece, bytes):
                return piece if piece.startswith(BOM.encode()) else BOM.encode() + piece
            return piece if piece.startswith(BOM) else BOM + piece
        return piece

    def close(self) -> None:
        if (close := getattr(self.chunks, "close", None)) is not None:
            close()


def _next_piece(chunks: Iterator[str | bytes]) -> str | bytes | None:
    return next(chunks, None)


async def _pieces(chunks: Iterator[str | bytes]) -> AsyncIterator[str | bytes]:
    # A function of one signature: sync_to_async(next) loses the two-argument form of the builtin's overloads.
    read = sync_to_async(_next_piece, thread_sensitive=True)
    try:
        while (piece := await read(chunks)) is not None:
            yield piece
    finally:
        if (close := getattr(chunks, "close", None)) is not None:
            await sync_to_async(close, thread_sensitive=True)()
