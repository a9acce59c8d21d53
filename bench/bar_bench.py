"""What the call bar's query costs on every page and every poll of the bar, at volume: its raw SQL (calls.calling.bar.
bar_call_ids) beside the ORM query it replaced (the model's rules with the parties' joins), on the same database.

Reads a database that `manage.py seed_volume` filled (nothing is written), as each of --users agents in turn, and
checks that both queries find the same calls.

    .venv/bin/python bench/bar_bench.py --database hlbench            # 5 M calls
    .venv/bin/python bench/bar_bench.py --database barvol --rounds 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="hlbench", help="a PostgreSQL database seed_volume filled")
    parser.add_argument("--users", type=int, default=10, help="agents whose bar is read")
    parser.add_argument("--rounds", type=int, default=30, help="reads of each agent's bar by each way")
    args = parser.parse_args()
    os.environ.update(
        DEBUG="true",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="vccweb.settings",
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Case, IntegerField, Sum, Value, When, Window
    from django.utils import timezone

    from calls import callbacks
    from calls.calling.bar import BAR_SIZE, BAR_WINDOW, bar_call_ids, bar_calls
    from calls.models import Call

    def by_the_orm(user, now):  # the query as it was before bar_call_ids (6c5aa34)
        rows = list(
            ((Call.objects.in_progress() | Call.objects.to_wrap_up()) & Call.objects.changeable_by(user))
            .filter(requested_at__gte=now - BAR_WINDOW)
            .with_parties()
            .annotate(
                bar_total=Window(Sum(Value(1), output_field=IntegerField())),
                bar_going_on=Case(When(state__in=Call.IN_PROGRESS, then=Value(0)), default=Value(1)),
            )
            .order_by("bar_going_on", "-requested_at", "-pk")[:BAR_SIZE]
        )
        return [c.pk for c in rows], (rows[0].bar_total if rows else 0)

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM calls_call WHERE requested_at >= %s", [now - BAR_WINDOW])
        in_window = cursor.fetchone()[0]
    users = list(get_user_model().objects.filter(agent__isnull=False).order_by("pk")[: args.users])
    print(
        f"bar bench: {Call.objects.order_by().count():,} calls, {in_window:,} requested in the bar's window "
        f"({BAR_WINDOW}), {len(users)} agents, {args.rounds} reads each"
    )
    differ = []
    # Now, and a moment 13 h after the last call: the same agents with nothing in their bar (most pages, most days).
    for label, at in (("now", now), ("with an empty bar (13 h later)", now + timedelta(hours=13))):
        with_calls = sum(1 for u in users if bar_call_ids(u.pk, since=at - BAR_WINDOW)[0])
        print(f"{label}: agents with calls in their bar (going on, or to wrap up): {with_calls} of {len(users)}")
        differ += [u.username for u in users if bar_call_ids(u.pk, since=at - BAR_WINDOW) != by_the_orm(u, at)]
        ways = {
            "ids, raw SQL (bar_call_ids)": lambda user, at=at: bar_call_ids(user.pk, since=at - BAR_WINDOW),
            "the whole bar (bar_calls: ids, the calls, callbacks due)": lambda user, at=at: bar_calls(user, now=at),
            "the whole bar as before (the ORM's query, callbacks due)": lambda user, at=at: (
                by_the_orm(user, at),
                callbacks.due_count(user, at),
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for user in users:
                for name, read in ways.items():  # interleaved: the three share the machine's moments
                    start = time.perf_counter()
                    read(user)
                    times[name].append((time.perf_counter() - start) * 1000)
        for name, ms in times.items():
            ms.sort()
            p95 = ms[int(len(ms) * 0.95) - 1]
            print(
                f"   {name}: p50 {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms, mean {statistics.fmean(ms):.2f} ms"
            )
    print(f"agents whose bar differs between the two queries: {len(differ)} {differ or ''}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
