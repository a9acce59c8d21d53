"""Import contacts from CSV and print how long each step takes and how much the process's memory grew.

    .venv/bin/python bench/import_bench.py                  # 100,000 rows: seconds per step
    .venv/bin/python bench/import_bench.py --memory         # a 20 MB, 200,000-row file: one, then four at once
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hc .venv/bin/python bench/import_bench.py --rows 100000

Builds a CSV file as a spreadsheet would export it (Name, Company, Email, Mobile, Work phone, Do not call, Notes; a
third of the rows with two numbers, 1 % with a problem, 1 % duplicates of an earlier row), then runs what the
import does, in this process and in order, through the same functions the pages call: read the upload a chunk at a
time into its rows (`store_upload`, as the upload page does), check every row (the preview), and write it (the
confirmation, one transaction). `--memory` pads the notes so the file is just under the 20 MB limit with 200,000
rows, runs one import, then four at once in four threads (four people: one person may have two checked at once), and
prints the growth of the process's peak resident memory (VmHWM, reset before each run) over what it used before.
Deletes what it made afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20


def build_csv(rows: int, size: int | None = None) -> bytes:
    """The file; with `size`, each row's notes padded so the file is about that many bytes."""
    pad = ""
    if size:
        pad = "n" * max(0, (size - len(build_csv(rows))) // rows)
    out = io.StringIO()
    out.write("Full name,Company,E-mail,Mobile,Work phone,Do not call,Notes\n")
    for i in range(rows):
        mobile = f"07400 {100000 + i:06d}"
        work = f"020 3{i // 10000:03d} {i % 10000:04d}" if i % 3 == 0 else ""
        name = f"Bench Person {i}" if i % 100 != 7 else ""  # 1 %: the name is missing
        if i % 100 == 50 and i > 0:
            mobile = f"07400 {100000 + i - 1:06d}"  # 1 %: a duplicate of the row before
        dnc = "yes" if i % 97 == 0 else ""
        out.write(f"{name},Company {i % 5000},bench.person.{i}@example.com,{mobile},{work},{dnc},{pad}\n")
    return out.getvalue().encode()


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak() -> int:
    """Reset VmHWM to the current resident size (Linux 4.0+) and return that size, in kB."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_kb("VmRSS")


def file_chunks(path: str) -> Iterator[bytes]:
    """What an uploaded file gives `store_upload`: Django writes uploads over 2.5 MB to a temporary file."""
    with open(path, "rb") as f:
        while chunk := f.read(64 * 1024):
            yield chunk


def four_at_once(upload, users, connections) -> None:
    """Four people upload the file at once (threads of one process, as a worker serves them); the peak growth."""
    done: list = []

    def one(user) -> None:
        try:
            done.append(upload(user))
        finally:
            connections.close_all()

    before = reset_peak()
    wall = time.perf_counter()
    threads = [threading.Thread(target=one, args=(user,)) for user in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grew = status_kb("VmHWM") - before
    print(
        f"four uploads at once (four people, threads of one process): {len(done)} previews in "
        f"{time.perf_counter() - wall:.1f}s, peak RSS growth {grew / 1024:.0f} MiB; "
        f"{status_kb('VmRSS') / 1024:.0f} MiB resident after (was {before / 1024:.0f}); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for other in done:
        other.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=None, help="rows in the file (100,000; 200,000 with --memory)")
    parser.add_argument("--memory", action="store_true", help="a 20 MB file: one import, then four at once")
    parser.add_argument("--four-only", action="store_true", help="with --memory: only the four uploads at once")
    parser.add_argument("--keep", action="store_true", help="keep the imported contacts")
    args = parser.parse_args()
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vccweb.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection, connections

    from calls import import_files, imports
    from calls.models import Contact, ContactImport

    settings.CONTACT_IMPORT_BACKGROUND = False  # each step in this thread, one after the other, timed
    rows = args.rows or (200_000 if args.memory else 100_000)
    users = [get_user_model().objects.get_or_create(username=f"importbench{n or ''}")[0] for n in range(4)]
    data = build_csv(rows, import_files.MAX_BYTES - 64 * 1024 if args.memory else None)
    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as f:
        f.write(data)
    path, size = f.name, len(data)
    del data
    times: dict[str, tuple[float, float, int]] = {}  # step -> (wall s, this process's CPU s, peak growth kB)
    load_before = os.getloadavg()[0]

    def step(name: str, work, *a: object) -> object:
        before = reset_peak()
        wall, cpu = time.perf_counter(), time.process_time()
        result = work(*a)
        times[name] = (time.perf_counter() - wall, time.process_time() - cpu, status_kb("VmHWM") - before)
        return result

    def upload(user) -> ContactImport:  # store_upload checks it too, inline (CONTACT_IMPORT_BACKGROUND off)
        return imports.store_upload(user=user, filename="bench.csv", chunks=file_chunks(path))

    if args.memory and args.four_only:
        four_at_once(upload, users, connections)
        os.unlink(path)
        return
    imp = step("read, store and check (upload, preview)", upload, users[0])
    imp.refresh_from_db()
    report = imp.report
    ContactImport.objects.filter(pk=imp.pk).update(status="importing", decisions={"rest": "skip"})
    step("write (confirm, one transaction)", imports.apply, imp.pk)
    imp.refresh_from_db()

    print(
        f"{rows:,} rows, {size / MB:.1f} MB; {connection.vendor} ({settings.DATABASES['default'].get('NAME')}); "
        f"{Contact.objects.count():,} contacts after; load average {load_before:.1f} before"
    )
    print(
        f"preview: {report['ready']:,} ready, {report['problem_count']:,} with problems, "
        f"{report['duplicate_count']:,} duplicates; result: {imp.result}"
    )
    print(f"  {'step':40} {'wall':>7} {'app CPU':>8} {'peak RSS growth':>16}")
    for name, (wall, cpu, kb) in times.items():
        print(f"  {name:40} {wall:6.1f}s {cpu:7.1f}s {kb / 1024:12.0f} MiB")
    wall, cpu = sum(t[0] for t in times.values()), sum(t[1] for t in times.values())
    print(f"  {'total':40} {wall:6.1f}s {cpu:7.1f}s   (load average {os.getloadavg()[0]:.1f} after)")

    if args.memory:
        four_at_once(upload, users, connections)
    os.unlink(path)
    if not args.keep:
        Contact.objects.filter(owner__in=users).delete()
        imp.delete()


if __name__ == "__main__":
    main()
