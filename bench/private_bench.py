"""Measure each piece that leans on a private name of Django, asgiref or redis-py, with and without it, in one run.

The pieces are those tests/test_private_names.py guards and settings.PRIVATE_PIECES names. One uvicorn process
(one worker) serves vccweb with every piece, and one more per piece serves it with that piece alone switched off,
by the bench-only environment variable VCCWEB_BENCH_DISABLE (a comma-separated list of piece names; an unknown
name stops the app). It is not a setting for running vccweb. All of them run at once against one PostgreSQL, one
Redis db and one vccsim, and are measured in interleaved rounds: each round, every server in turn (starting one
further along each round) takes a batch of clicks, then the servers take turns load by load at the pages, so
whatever else the machine is doing falls on all of them alike. A second server with every piece (the control)
shows what two alike differ by (a saving no larger is noise); "with" is the two of them together.

Figures, as issue 16 names them:
- CPU per click: the server process's user + system CPU during its batches of clicks, divided by the clicks
  (each click by an agent of its own, after opening the contact page, as in click_bench.py);
- page time: the median time to the full response of the contact page and of the contact list, loaded one at a
  time by a logged-in agent (and the server's CPU per load, for reference).
A piece is kept if switching it off costs at least 1 ms of CPU per click, or at least 10 % of a page's time.

    .venv/bin/python bench/private_bench.py [--rounds R] [--clicks N] [--pages P] [--pieces a,b]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402  (bench/ is not a package)
import click_bench as cb  # noqa: E402

PIECES = {  # settings.PRIVATE_PIECES, with what each one is (tests/test_private_names.py has their private names)
    "inloop_middleware": "middleware methods in the event loop (calls/middleware.py)",
    "one_cache_client": "one cache client per process (calls/cache.py)",
    "cached_perms": "cached permission sets (calls/auth.py)",
}
ALL_ON = "all pieces"
CONTROL = "control"  # a second server with every piece: the difference between two alike, i.e. the noise
CLICK_BAR_MS = 1.0  # keep a piece that saves at least this much CPU per click,
PAGE_BAR = 0.10  # or this share of a page's time
PAGES = {"contact page": "/contacts/{contact}/", "contact list": "/contacts/"}


@dataclass
class Server:
    name: str  # ALL_ON or the piece switched off
    url: str
    pid: int
    click_cpu_ms: float = 0.0
    clicks: int = 0
    failed: list[str] = field(default_factory=list)
    page_ms: dict[str, list[float]] = field(default_factory=dict)
    page_cpu_ms: dict[str, float] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--rounds", type=h.positive, default=4, help="interleaved rounds")
    add("--clicks", type=h.positive, default=16, help="clicks per server per round")
    add("--pages", type=h.positive, default=8, help="loads of each page per server per round, one at a time")
    add("--concurrency", type=h.positive, default=4, help="clicks in flight within a batch")
    add("--warmup", type=int, default=8, help="unmeasured clicks and page loads per server first")
    add(
        "--pieces",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=list(PIECES),
        help="pieces to measure (comma-separated): " + ", ".join(PIECES),
    )
    add("--speed", type=float, default=10_000, help="vccsim clock speed (see click_bench.py)")
    add("--max-seconds", type=float, default=120, help="give up on a batch after this long")
    add("--db-name", default="vccweb_private_bench", help="the bench's PostgreSQL database, dropped and made afresh")
    add("--redis-db", type=int, default=13, help="the bench's Redis database, emptied")
    add("--keep", action="store_true", help="keep the bench database and Redis db afterwards")
    args = parser.parse_args(argv)
    if unknown := set(args.pieces) - set(PIECES):
        parser.error(f"--pieces: no such piece {', '.join(sorted(unknown))}")
    # What _harness's helpers read: no faults, the production pool (small: up to eight servers at once).
    args.sim_faults, args.db_conn_max_age, args.db_pool_max_size, args.db_pool_timeout = None, 0, 4, None
    return args


def start_server(name: str, env: dict[str, str], tmp: Path, managed: list[h.Managed]) -> Server:
    port = h.free_port()
    url = f"http://{h.HOST}:{port}"
    command = [sys.executable, "-m", "uvicorn", "vccweb.asgi:application", "--host", h.HOST, "--port", str(port)]
    disabled = "" if name in (ALL_ON, CONTROL) else name
    proc = h.start(
        f"uvicorn-{name.replace(' ', '-')}",
        [*command, "--workers", "1", "--no-access-log"],
        env | {"VCCWEB_BENCH_DISABLE": disabled},
        tmp,
        managed,
    )
    h.wait_for(proc, f"{url}/login/", lambda r: r.status_code == 200)
    return Server(name, url, proc.process.pid)


def client(server: Server, session: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=1, keepalive_expiry=2)  # see click_bench.app_side
    made = httpx.AsyncClient(base_url=server.url, timeout=h.REQUEST_TIMEOUT, trust_env=False, limits=limits)
    made.cookies.set("sessionid", session)
    return made


async def clicks(server: Server, batch: list[tuple[dict[str, Any], dict[str, Any]]], args: argparse.Namespace) -> None:
    """Each (user, target) opens the contact page (not measured), then all click, `concurrency` at a time."""
    clients = [client(server, user["session"]) for user, _ in batch]
    try:
        gate = asyncio.Semaphore(args.concurrency)
        opened = [h.gated_get(gate, c, f"/contacts/{t['contact']}/") for c, (_, t) in zip(clients, batch, strict=True)]
        await asyncio.gather(*opened)

        async def one(c: httpx.AsyncClient, target: dict[str, Any]) -> cb.Outcome:
            async with gate:
                return await cb.app_click(c, target, "contact")

        before = h.cpu_ms((server.pid,))
        jobs = [one(c, t) for c, (_, t) in zip(clients, batch, strict=True)]
        outcomes = await asyncio.wait_for(asyncio.gather(*jobs), args.max_seconds)
        server.click_cpu_ms += h.cpu_ms((server.pid,)) - before
        server.clicks += len(outcomes)
        server.failed += [o.detail for o in outcomes if not o.ok]
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def pages(servers: list[Server], viewers: dict[str, httpx.AsyncClient], contact: int, count: int) -> None:
    """Load each page `count` times from every server, one load at a time, the servers taking turns load by load
    (so that each load of one is timed moments from the same load of the others), timing each to its full
    response."""
    for _ in range(count):
        for label, path in PAGES.items():
            for server in servers:
                before = h.cpu_ms((server.pid,))
                started = time.perf_counter()
                response = await viewers[server.name].get(path.format(contact=contact))
                elapsed = h.elapsed_ms(started)
                if response.status_code != 200:
                    raise RuntimeError(f"{server.name}: GET {path} answered {response.status_code}")
                server.page_ms.setdefault(label, []).append(elapsed)
                server.page_cpu_ms[label] = server.page_cpu_ms.get(label, 0.0) + h.cpu_ms((server.pid,)) - before


async def measure(servers: list[Server], data: dict[str, Any], args: argparse.Namespace) -> None:
    users, targets = data["users"], data["clicks"]
    viewer_session, contact = users[-1]["session"], targets[0]["contact"]
    viewers = {s.name: client(s, viewer_session) for s in servers}
    pairs = iter(zip(users[:-1], targets, strict=False))
    try:
        for server in servers:  # warm-up: neither clicks nor pages are counted
            warm = Server(server.name, server.url, server.pid)
            await clicks(warm, [next(pairs) for _ in range(args.warmup)], args)
            await pages([warm], viewers, contact, max(1, args.warmup // 2))
            if warm.failed:
                raise RuntimeError(f"{server.name}: warm-up clicks failed: {warm.failed[0]}")
        for round_ in range(args.rounds):
            turn = round_ % len(servers)
            order = servers[turn:] + servers[:turn]
            for server in order:
                await clicks(server, [next(pairs) for _ in range(args.clicks)], args)
            await pages(order, viewers, contact, args.pages)
            print(f"  round {round_ + 1} of {args.rounds} done", flush=True)
    finally:
        await asyncio.gather(*(v.aclose() for v in viewers.values()))


def pooled(a: Server, b: Server) -> Server:
    """Two servers with every piece, taken as one: the "with" figures."""
    both = Server(ALL_ON, a.url, a.pid, a.click_cpu_ms + b.click_cpu_ms, a.clicks + b.clicks, a.failed + b.failed)
    both.page_ms = {label: a.page_ms[label] + b.page_ms[label] for label in a.page_ms}
    both.page_cpu_ms = {label: a.page_cpu_ms[label] + b.page_cpu_ms[label] for label in a.page_cpu_ms}
    return both


def cpu_per_click(server: Server) -> float:
    return server.click_cpu_ms / max(1, server.clicks)


def page_time(server: Server, label: str) -> float:
    return statistics.median(server.page_ms[label])


def page_cpu(server: Server, label: str) -> float:
    return server.page_cpu_ms[label] / max(1, len(server.page_ms[label]))


def verdicts(base: Server, servers: list[Server]) -> list[tuple[str, bool]]:
    """Print the table: for each piece, each metric with and without it; return (piece, kept) pairs. The control
    row compares the two servers with every piece, one as "with" and the other as "without"."""
    rows = [("piece", "metric", "with", "without", "saving", "verdict")]
    kept = []
    for off in servers:
        click_saving = cpu_per_click(off) - cpu_per_click(base)
        page_savings = {
            label: (page_time(off, label) - page_time(base, label)) / page_time(off, label) for label in PAGES
        }
        keep = click_saving >= CLICK_BAR_MS or any(s >= PAGE_BAR for s in page_savings.values())
        verdict = "(noise)" if off.name == CONTROL else "keep" if keep else "drop"
        if off.name != CONTROL:
            kept.append((off.name, keep))
        rows.append(
            (
                off.name,
                "CPU per click (ms)",
                f"{cpu_per_click(base):.2f}",
                f"{cpu_per_click(off):.2f}",
                f"{click_saving:+.2f} ms",
                verdict,
            )
        )
        for label, saving in page_savings.items():
            rows.append(
                (
                    "",
                    f"{label} time (ms, median)",
                    f"{page_time(base, label):.1f}",
                    f"{page_time(off, label):.1f}",
                    f"{saving:+.1%}",
                    "",
                )
            )
            rows.append(
                (
                    "",
                    f"{label} CPU per load (ms)",
                    f"{page_cpu(base, label):.2f}",
                    f"{page_cpu(off, label):.2f}",
                    f"{page_cpu(off, label) - page_cpu(base, label):+.2f} ms",
                    "",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))
    return kept


def run(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> int:
    names = [ALL_ON, CONTROL, *args.pieces]
    clicks_needed = len(names) * (args.warmup + args.rounds * args.clicks)
    agents = h.agent_ids(clicks_needed + 1)  # one agent per click, and one who only loads pages
    numbers = h.unique_numbers(clicks_needed)
    pg_version, redis_version = h.reset_database(), h.flush_redis()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"vccweb private-names bench, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores (load average "
        f"{load}), PostgreSQL {pg_version}, Redis {redis_version}; {len(names)} uvicorn processes of one worker; "
        f"{args.rounds} rounds of {args.clicks} clicks ({args.concurrency} in flight) and {args.pages} loads of "
        f"each page per server, after {args.warmup} warm-up"
    )
    sim, sim_url = h.start_sim(args, agents, tmp, managed)
    env = h.app_env(sim_url, args) | {"STATIC_ROOT": str(tmp / "static")}
    h.run_python(["manage.py", "migrate", "--no-input"], env=env)
    h.run_python(["manage.py", "collectstatic", "--no-input", "--verbosity", "0"], env=env)
    data = h.create_data(env, agents, numbers, secrets.token_urlsafe(16))
    servers = [start_server(name, env, tmp, managed) for name in names]
    asyncio.run(measure(servers, data, args))

    first, control, others = servers[0], servers[1], servers[2:]
    failed = {s.name: s.failed for s in servers if s.failed}
    for name, details in failed.items():
        print(f"{name}: {len(details)} clicks failed, e.g. {details[0]}")
    print()
    print(f"{CONTROL}: two servers with every piece, one against the other: what two alike differ by (noise).")
    print('Then "with" is those two servers taken together; "without", the one with that piece alone switched off.')
    print(f"keep: saves at least {CLICK_BAR_MS:g} ms of CPU per click or {PAGE_BAR:.0%} of a page's time\n")
    verdicts(first, [control])
    kept = verdicts(pooled(first, control), others)
    print()
    print("kept: " + (", ".join(PIECES[n] for n, k in kept if k) or "none"))
    print("to drop: " + (", ".join(PIECES[n] for n, k in kept if not k) or "none"))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    return h.run_bench(run, parse_args(argv), prefix="vccweb-private-bench-")


if __name__ == "__main__":
    sys.exit(main())
