"""Reading a CSV file of contacts, uploaded or pasted, a piece at a time: the header, then one row after another.

Nothing here holds the whole file: the bytes arrive in chunks (an UploadedFile's `chunks()`), are checked (no NUL;
UTF-8, UTF-16, or Windows-1252 when the start is not UTF-8, detected on the first chunk) and decoded incrementally,
split into lines as the csv module wants them, and read as CSV. A file that cannot be imported raises
ImportFileError with a message that says what to do.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
MAX_COLUMNS = 100  # cells in any row; a row may be wider than the first (unnamed columns, trailing empty cells)
MAX_CELL = 5_000
CHUNK = 64 * 1024
SEPARATOR_HINT = re.compile(r'sep=(?P<separator>[^\r\n"])[ \t]*(?:\r\n|\n|\r)', re.IGNORECASE)

NOT_TEXT = (
    "This is not a text file (a spreadsheet saved as .xlsx, or a picture?). "
    "Save it from your spreadsheet as “CSV UTF-8 (comma delimited)” and import that."
)


class ImportFileError(Exception):
    """The file cannot be imported at all; the message says why and what to do."""


def chunks_of(data: bytes) -> Iterator[bytes]:
    """Pasted text (already in memory, at most DATA_UPLOAD_MAX_MEMORY_SIZE) as the chunks a file would give."""
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        yield bytes(view[start : start + CHUNK])


def read_upload(chunks: Iterable[bytes], facts: FileFacts | None = None) -> Iterator[list[str]]:
    """The header of a CSV file, then each of its rows (cells stripped), read as the chunks arrive; ImportFileError
    says why the file cannot be read. Rows are numbered as a spreadsheet numbers them in the messages. `facts`, when
    given, learns the encoding the text was read in (final once the rows are all read)."""
    text = _text(chunks, facts)
    sample: list[str] = []
    for piece in text:  # the separator is sniffed from the start of the file
        sample.append(piece)
        if sum(map(len, sample)) >= 8192:
            break
    head = "".join(sample)
    # "sep=;" on a line of its own, first: the hint Excel reads (and tools write for it), naming the separator.
    if hint := SEPARATOR_HINT.match(head):
        head, dialect = head[hint.end() :], {"delimiter": hint["separator"]}
    else:
        dialect = _separator(head[:8192])
    delimiter = str(dialect.get("delimiter", ","))
    records = 0  # rows the csv reader has given so far
    at_record_start = True
    header: list[str] | None = None

    def lines() -> Iterator[str]:
        nonlocal at_record_start
        for line in _lines(_chain(head, text)):
            # A line of commas is one row of millions of cells: refused before the csv module builds them all.
            if at_record_start and '"' not in line and line.count(delimiter) >= MAX_COLUMNS:
                _refuse_wide(header is None, records + 1, line.count(delimiter) + 1)
            at_record_start = False
            yield line

    reader = csv.reader(lines(), csv.excel, **dialect)  # type: ignore[arg-type]
    rows = 0
    try:
        for cells in reader:
            records += 1
            at_record_start = True
            if header is None:
                if any(c.strip() for c in cells):
                    if len(cells) > MAX_COLUMNS:
                        _refuse_wide(True, records, len(cells))
                    header = [c.strip() for c in cells]
                    yield header
                continue
            if rows >= MAX_ROWS:
                raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows: split it and import each part.")
            if len(cells) > MAX_COLUMNS:
                _refuse_wide(False, records, len(cells))
            if any(len(c) > MAX_CELL for c in cells):
                raise ImportFileError(
                    f"Row {records} has a cell longer than {MAX_CELL:,} characters: is this a contacts file?"
                )
            rows += 1
            yield [c.strip() for c in cells]
    except csv.Error as e:
        raise ImportFileError(f"The file is not readable as CSV near line {reader.line_num}: {e}.") from None
    if header is None:
        raise ImportFileError("The file has no rows.")


def _refuse_wide(first: bool, number: int, cells: int) -> None:
    if first:
        raise ImportFileError(f"The first row has {cells} columns: is this a contacts file?")
    raise ImportFileError(
        f"Row {number} has {cells:,} cells; a row may have at most {MAX_COLUMNS}: check that the file is a CSV of "
        "contacts, and delete the extra cells (or stray commas) at the end of that row."
    )


def _chain(head: str, rest: Iterator[str]) -> Iterator[str]:
    yield head
    yield from rest


def _separator(sample: str) -> dict[str, object]:
    """The header line's delimiter (comma, semicolon or tab) and whether a space follows it. Quotes are always ",
    as every spreadsheet writes them: sniffed from the rows, an export's formula guard ('=SUM(A1)) looks like one,
    and a tab inside a cell like a delimiter."""
    header = next((line for line in sample.splitlines() if line.strip(" ,;\t")), "")
    try:
        sniffed = csv.Sniffer().sniff(header, delimiters=",;\t")
    except csv.Error:
        return {}
    return {"delimiter": sniffed.delimiter, "skipinitialspace": sniffed.skipinitialspace}


def _lines(pieces: Iterable[str]) -> Iterator[str]:
    """The text's lines with their ends, split only where csv wants them (\\n, \\r\\n or \\r, as a StringIO with
    newline="" splits), a piece of text at a time; a line is held only until its end arrives."""
    held: list[str] = []
    for piece in pieces:
        # The last line end in this piece; a \r at its very end may be the first half of a \r\n.
        end = max(piece.rfind("\n"), piece.rfind("\r", 0, len(piece) - 1)) + 1
        if not end:
            held.append(piece)
            continue
        yield from io.StringIO("".join(held) + piece[:end], newline="")
        held = [piece[end:]]
    rest = "".join(held)
    if rest:
        yield from io.StringIO(rest, newline="")


def _as_latin_1(error: UnicodeError) -> tuple[str, int]:
    """The five bytes Windows-1252 leaves undefined, read as Latin-1 reads them (control characters): a Latin-1
    file, which differs from Windows-1252 only there, never fails to decode."""
    assert isinstance(error, UnicodeDecodeError)  # registered for decoding only
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("vccweb-latin-1", _as_latin_1)

UTF8, UTF16, WINDOWS_1252 = "UTF-8", "UTF-16", "Windows-1252 (Western European, also read as Latin-1)"


@dataclass
class FileFacts:
    """What reading a file found out about it: the encoding its text was read in, in words for the preview."""

    encoding: str = UTF8


def _windows_1252() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("cp1252")(errors="vccweb-latin-1")


def _text(chunks: Iterable[bytes], facts: FileFacts | None = None) -> Iterator[str]:
    """The file's text, decoded a chunk at a time: UTF-8 (with or without a BOM), UTF-16 with its BOM, or, when
    the first chunk is not UTF-8 and has no UTF-8 letter either, Windows-1252 (a superset of Latin-1's letters:
    what Excel on Windows saves as "CSV"). A file read as UTF-8 whose non-UTF-8 bytes come only after plain ASCII
    switches to Windows-1252 there (the text so far reads the same in both); one that mixes UTF-8 and other bytes,
    in any chunk, is refused. A NUL anywhere, not only near the start, is refused: no text file has one, and
    PostgreSQL cannot store it."""
    facts = facts if facts is not None else FileFacts()
    size, blank, first = 0, True, b""
    source = iter(chunks)
    for chunk in source:  # enough of the start to see a byte order mark
        first += chunk
        if len(first) >= 2:
            break
    utf16 = first.startswith((b"\xff\xfe", b"\xfe\xff"))
    bom = first.startswith(codecs.BOM_UTF8)
    decoder: codecs.IncrementalDecoder = codecs.getincrementaldecoder("utf-16" if utf16 else "utf-8-sig")()
    facts.encoding = UTF16 if utf16 else UTF8
    if not utf16 and b"\x00" in first:
        raise ImportFileError(NOT_TEXT)
    other_line: int | None = None  # the line of the first byte that is not UTF-8, once read as Windows-1252
    if not utf16 and not bom and (bad := _not_utf8_at(first)) is not None:
        other_line = first[:bad].count(b"\n") + 1
        if _UTF8_SEQUENCE.search(first):  # UTF-8 letters and other bytes: neither encoding reads it all
            raise ImportFileError(_mixed(other_line))
        decoder, facts.encoding = _windows_1252(), WINDOWS_1252
    lines_before = 0
    ascii_so_far = not utf16 and not bom
    tail = b""  # the end of the last chunk: a UTF-8 letter may be cut between two chunks
    for chunk in _chain_bytes(first, source):
        size += len(chunk)
        if size > MAX_BYTES:
            raise ImportFileError(f"The file is larger than {MAX_BYTES // 2**20} MB: split it and import each part.")
        blank = blank and not chunk.strip()
        if not utf16 and b"\x00" in chunk:
            raise ImportFileError(NOT_TEXT)
        pending = decoder.getstate()[0]  # the start of a character the last chunk cut, if any
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as e:
            if utf16:
                raise ImportFileError("The file says it is UTF-16 but is not: save it as “CSV UTF-8”.") from None
            line = lines_before + chunk[: max(0, e.start - len(pending))].count(b"\n") + 1
            if not ascii_so_far:
                raise ImportFileError(_mixed(line)) from None
            # Nothing read so far differs between UTF-8 and Windows-1252.
            decoder, facts.encoding, other_line = _windows_1252(), WINDOWS_1252, line
            text = decoder.decode(pending + chunk)
        # Read as Windows-1252, a UTF-8 letter would become two or three wrong ones: neither encoding reads it all.
        if other_line is not None and _UTF8_SEQUENCE.search(tail + chunk):
            raise ImportFileError(_mixed(other_line))
        tail = chunk[-3:]
        ascii_so_far = ascii_so_far and text.isascii()
        if utf16 and "\x00" in text:
            raise ImportFileError(NOT_TEXT)
        lines_before += chunk.count(b"\n")
        if text:
            yield text
    if blank:
        raise ImportFileError("The file is empty.")
    pending = decoder.getstate()[0]
    try:
        text = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        if utf16:
            raise ImportFileError("The file says it is UTF-16 but is not: save it as “CSV UTF-8”.") from None
        if not ascii_so_far:
            raise ImportFileError(_mixed(lines_before + 1)) from None
        # The file's only other byte is its last (a name ending in é, no line end after it).
        text, facts.encoding = _windows_1252().decode(pending, final=True), WINDOWS_1252
    if text:
        yield text


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _not_utf8_at(first: bytes) -> int | None:
    """Where the first chunk stops reading as UTF-8, or None when it all does (a character cut at its end is
    allowed: the next chunk ends it)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(first, final=False)
    except UnicodeDecodeError as e:
        return e.start
    return None


def _mixed(line: int) -> str:
    return (
        f"The file is not UTF-8 text (line {line} has bytes that are not, though earlier lines are): save it "
        "from your spreadsheet as “CSV UTF-8 (comma delimited)” and import that."
    )


def _chain_bytes(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
