"""Import 100,000 contacts from CSV and print how long each step takes.

    .venv/bin/python bench/import_bench.py                # 100,000 rows into the database of DATABASE_URL
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hc .venv/bin/python bench/import_bench.py --rows 100000

Builds a CSV file as a spreadsheet would export it (Name, Company, Email, Mobile, Work phone, Do not call; a third
of the rows with two numbers, 1 % with a problem, 1 % duplicates of an earlier row), then runs what the import
does, in this process and in order: read the upload, store it, check every row (the preview), and write it (the
confirmation, one transaction). Deletes the contacts it made afterwards unless --keep. Prints seconds per step.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_csv(rows: int) -> bytes:
    out = io.StringIO()
    out.write("Full name,Company,E-mail,Mobile,Work phone,Do not call\n")
    for i in range(rows):
        mobile = f"07400 {100000 + i:06d}"
        work = f"020 3{i // 10000:03d} {i % 10000:04d}" if i % 3 == 0 else ""
        name = f"Bench Person {i}" if i % 100 != 7 else ""  # 1 %: the name is missing
        if i % 100 == 50 and i > 0:
            mobile = f"07400 {100000 + i - 1:06d}"  # 1 %: a duplicate of the row before
        out.write(
            f"{name},Company {i % 5000},bench.person.{i}@example.com,{mobile},{work},{'yes' if i % 97 == 0 else ''}\n"
        )
    return out.getvalue().encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the imported contacts")
    args = parser.parse_args()
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vccweb.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from calls import imports
    from calls.models import Contact, ContactImport

    user, _ = get_user_model().objects.get_or_create(username="importbench")
    data = build_csv(args.rows)
    times: dict[str, tuple[float, float]] = {}  # step -> (wall seconds, this process's CPU seconds)

    def clock() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def since(start: tuple[float, float]) -> tuple[float, float]:
        wall, cpu = clock()
        return wall - start[0], cpu - start[1]

    started = clock()
    header, rows = imports.read_upload(data)
    times["read the upload"] = since(started)

    started = clock()
    imp = ContactImport.objects.create(
        created_by=user,
        filename="bench.csv",
        header=header,
        rows=rows,
        row_count=len(rows),
        mapping=imports.guess_mapping(header),
    )
    times["store it"] = since(started)

    started = clock()
    imports.check(imp.pk)
    times["check every row (preview)"] = since(started)
    imp.refresh_from_db()
    report = imp.report

    ContactImport.objects.filter(pk=imp.pk).update(status="importing", decisions={"rest": "skip"})
    started = clock()
    imports.apply(imp.pk)
    times["write (confirm, one transaction)"] = since(started)
    imp.refresh_from_db()

    print(
        f"{args.rows:,} rows, {len(data) / 2**20:.1f} MB; {connection.vendor} "
        f"({settings.DATABASES['default'].get('NAME')}); {Contact.objects.count():,} contacts after"
    )
    print(
        f"preview: {report['ready']:,} ready, {report['problem_count']:,} with problems, "
        f"{report['duplicate_count']:,} duplicates; result: {imp.result}"
    )
    print(f"  {'step':36} {'wall':>7} {'app CPU':>8}   (the rest of the wall time: PostgreSQL, and waiting for a core)")
    for step, (wall, cpu) in times.items():
        print(f"  {step:36} {wall:6.1f}s {cpu:7.1f}s")
    wall, cpu = sum(t[0] for t in times.values()), sum(t[1] for t in times.values())
    print(f"  {'total':36} {wall:6.1f}s {cpu:7.1f}s  (goal: under 60 s; load average {os.getloadavg()[0]:.1f})")
    if not args.keep:
        Contact.objects.filter(owner=user).delete()
        imp.delete()


if __name__ == "__main__":
    main()
