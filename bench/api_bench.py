"""The REST API's figures (issue 20): what placing a call through it costs over vccsim alone, contact search and
call-log pages at 1 M contacts / 5 M calls, and reading the whole call log by cursor. Prints figures against the
issue's goals; asserts nothing about time.

1. Placing: vccweb under uvicorn (DEBUG off, its own scratch database, Redis) and vccsim, as click_bench.py serves
   them. --calls agents each place one call with `POST /api/v1/calls` (their own token, an Idempotency-Key each),
   one at a time; then as many calls are sent straight to vccsim. The difference of the medians is the API's cost.
2. Pages at volume: uvicorn on `manage.py seed_volume` data (--volume-db, by default `hlbench`: 1 M contacts,
   5 M calls; made once, see calllog_bench.py), a token of the seeded supervisor: contact searches and call-log
   pages (first, filtered, deep by cursor), each --requests times after warm-ups.
3. The whole call log read by cursor, 200 calls a page, following `next` (at most --max-calls).

    .venv/bin/python bench/api_bench.py [--calls 50] [--volume-db URL] [--requests 30] [--max-calls 5000000]
    .venv/bin/python bench/api_bench.py --quick     # 10 calls; pages 10 times; 20,000 calls read
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import _harness as h
import click_bench as cb
import httpx
import psycopg

DEFAULT_VOLUME = f"postgres://postgres@{h.HOST}:5432/hlbench"
SUPERVISOR = "seedsup1"  # made by seed_volume
WARMUP = 3
TOKENS = """
import json
from django.contrib.auth import get_user_model
from calls.models import ApiToken
scopes = {scopes!r}
out = {{}}
for username in {usernames!r}:
    user = get_user_model().objects.get(username=username)
    out[username] = ApiToken.issue(user, name="api bench", scopes=scopes)[1]
print(json.dumps(out))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--quick", action="store_true", help="small numbers, for a try")
    add("--calls", type=int, help="calls placed through the API, and straight to vccsim (default 50; quick 10)")
    add("--volume-db", default=DEFAULT_VOLUME, help="PostgreSQL with seed_volume data; 'none' skips parts 2 and 3")
    add("--requests", type=int, help="measured requests per page (default 30; quick 10)")
    add("--max-calls", type=int, help="calls read by cursor at most (default all; quick 20,000)")
    add("--workers", type=h.positive, default=1, help="uvicorn worker processes")
    add("--db-name", default="vccweb_api_bench", help="part 1's PostgreSQL database, dropped and created")
    add("--redis-db", metavar="N", type=int, default=13, help="the bench's Redis database, emptied")
    add("--keep", action="store_true", help="keep the bench database and Redis db afterwards")
    args = parser.parse_args(argv)
    args.calls = args.calls or (10 if args.quick else 50)
    args.requests = args.requests or (10 if args.quick else 30)
    args.max_calls = args.max_calls or (20_000 if args.quick else 10**9)
    # what _harness's helpers read
    args.speed, args.db_conn_max_age, args.users, args.sim_faults = 1.0, 0, args.calls, None
    return args


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, -(-len(ordered) * p // 100)) - 1] if ordered else float("nan")


def tokens(env: dict[str, str], usernames: list[str], scopes: list[str]) -> dict[str, str]:
    code = TOKENS.format(scopes=scopes, usernames=usernames)
    output = h.run_python(["manage.py", "shell", "-c", code], env=env)
    return json.loads(output.strip().splitlines()[-1])  # the shell may say what it imported first


# --- 1. Placing a call ------------------------------------------------------------------------------------------


async def warm(app_url: str, data: dict[str, Any]) -> None:
    """Each agent opens a contact page first, unmeasured, as click_bench.py's agents do before their click: it reads
    what the app caches per person (the user, their permissions, their agent and callback numbers), so that what is
    measured is an ordinary call, not a person's first request after logging in."""
    first = data["clicks"][0]["contact"]
    async with httpx.AsyncClient(base_url=app_url, timeout=30, trust_env=False) as client:
        for user in data["users"]:
            client.cookies.clear()
            client.cookies.set("sessionid", user["session"])
            (await client.get(f"/contacts/{first}/")).raise_for_status()


async def place_through_api(app_url: str, data: dict[str, Any], keys: dict[str, str]) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=app_url, timeout=30, trust_env=False) as client:
        for user, click in zip(data["users"], data["clicks"], strict=False):
            headers = {"Authorization": f"Bearer {keys[user['username']]}", "Idempotency-Key": str(uuid.uuid4())}
            body = {"to": click["number"], "contact": click["contact"]}
            started = time.perf_counter()
            response = await client.post("/api/v1/calls", json=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                raise RuntimeError(f"POST /api/v1/calls answered {response.status_code}: {response.text[:300]}")
    return latencies


async def click_the_button(app_url: str, data: dict[str, Any]) -> list[float]:
    """The same calls placed with the Call button's request (click_bench.py's app_click), for comparison."""
    latencies = []
    first = data["clicks"][0]["contact"]
    for user, click in zip(data["users"], data["clicks"], strict=False):
        async with httpx.AsyncClient(base_url=app_url, timeout=30, trust_env=False) as client:
            client.cookies.set("sessionid", user["session"])
            (await client.get(f"/contacts/{first}/")).raise_for_status()  # the CSRF cookie; caches warm
            outcome = await cb.app_click(client, click, "contact")
            if not outcome.ok:
                raise RuntimeError(f"the Call button failed: {outcome.detail}")
            latencies.append(outcome.latency_ms)
    return latencies


async def place_straight(sim_url: str, agents: list[str], numbers: list[str]) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=sim_url, timeout=30, trust_env=False) as client:
        token = await cb.sim_token(client)
        for agent, number in zip(agents, numbers, strict=False):
            outcome = await cb.direct_call(client, token, agent, number)
            if not outcome.ok:
                raise RuntimeError(f"vccsim refused a call: {outcome.detail}")
            latencies.append(outcome.latency_ms)
    return latencies


def placing_part(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> None:
    # Each agent places one call: a third through the API, a third with the Call button, a third straight to
    # vccsim; the first WARMUP of each are warm-ups (connections opened, code paths loaded), not counted.
    side = args.calls + WARMUP
    agents, numbers = h.agent_ids(3 * side), h.unique_numbers(3 * side)
    h.reset_database()
    h.flush_redis()
    sim, sim_url = h.start_sim(args, agents, tmp, managed)
    env = h.app_env(sim_url, args) | {"STATIC_ROOT": str(tmp / "static")}
    h.run_python(["manage.py", "migrate", "--no-input"], env=env)
    h.run_python(["manage.py", "collectstatic", "--no-input", "--verbosity", "0"], env=env)
    data = h.create_data(env, agents[: 2 * side], numbers[: 2 * side], "x" + uuid.uuid4().hex)
    api_side = {"users": data["users"][:side], "clicks": data["clicks"][:side]}
    button_side = {"users": data["users"][side:], "clicks": data["clicks"][side:]}
    keys = tokens(env, [u["username"] for u in api_side["users"]], ["calls:write"])
    app, app_url = h.start_app(args, env, tmp, managed)
    asyncio.run(warm(app_url, api_side))
    api = asyncio.run(place_through_api(app_url, api_side, keys))[WARMUP:]
    button = asyncio.run(click_the_button(app_url, button_side))[WARMUP:]
    straight = asyncio.run(place_straight(sim_url, agents[2 * side :], numbers[2 * side :]))[WARMUP:]
    a50, b50, s50 = statistics.median(api), statistics.median(button), statistics.median(straight)
    print(f"\n1. Placing a call, one at a time: {args.calls} through the API, {args.calls} with the Call button, "
          f"{args.calls} straight to vccsim (each by an agent of its own, their caches warm)")  # fmt: skip
    print(f"   API p50 {a50:.1f} ms, p95 {percentile(api, 95):.1f} ms; Call button p50 {b50:.1f} ms, "
          f"p95 {percentile(button, 95):.1f} ms; vccsim alone p50 {s50:.1f} ms, "
          f"p95 {percentile(straight, 95):.1f} ms")  # fmt: skip
    cost = a50 - s50
    print(f"   the API's cost over vccsim, p50: {cost:.1f} ms (goal ≤ 15 ms: {'PASS' if cost <= 15 else 'MISS'}); "
          f"the Call button's: {b50 - s50:.1f} ms")  # fmt: skip
    h.print_app_log(app)
    h.stop(app)
    h.stop(sim)


# --- 2 and 3. Pages at volume, and the whole log by cursor --------------------------------------------------------


def timed(client: httpx.Client, path: str, runs: int) -> list[float]:
    for _ in range(WARMUP):
        client.get(path).raise_for_status()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return out


def log_in(client: httpx.Client, username: str = SUPERVISOR, password: str = "seed") -> None:
    """Log in through the login form (seed_volume's supervisor), as calllog_bench.py does."""
    client.get("/login/").raise_for_status()
    response = client.post(
        "/login/",
        data={"csrfmiddlewaretoken": client.cookies["csrftoken"], "username": username, "password": password},
        headers={"Referer": f"{client.base_url}login/"},
    )
    if response.status_code != 302 or "/login/" in response.headers.get("location", ""):
        raise RuntimeError(
            f"logging in as {username} failed: HTTP {response.status_code} to {response.headers.get('location')}"
        )


def volume_parts(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> None:
    with psycopg.connect(args.volume_db, autocommit=True) as conn:
        (calls,) = conn.execute("SELECT count(*) FROM calls_call").fetchone()
        (contacts,) = conn.execute("SELECT count(*) FROM calls_contact").fetchone()
        (agent,) = conn.execute("SELECT id FROM calls_agent WHERE display_id = '3001'").fetchone()
    # API_RATE_PER_MINUTE raised for this run: at its default (600 requests a minute, 200 calls each) a token reads
    # at most 2,000 calls a second, and what is measured here is the API's own speed.
    env = h.app_env("http://127.0.0.1:9", args) | {
        "DATABASE_URL": args.volume_db,
        "STATIC_ROOT": str(tmp / "s2"),
        "API_RATE_PER_MINUTE": "1000000",
    }
    # Part 1's app cached its own users and permissions in the same Redis database, under the same ids as this
    # database's: emptied first, or this app would take its supervisor (user 1 here) for part 1's agent (user 1).
    h.flush_redis()
    h.run_python(["manage.py", "migrate", "--no-input"], env=env)
    h.run_python(["manage.py", "collectstatic", "--no-input", "--verbosity", "0"], env=env)
    key = tokens(env, [SUPERVISOR], ["contacts:read", "calls:read"])[SUPERVISOR]
    app, app_url = h.start_app(args, env, tmp, managed)
    print(f"\n2. Pages at volume: {contacts:,} contacts, {calls:,} calls; {args.requests} requests each")
    headers = {"Authorization": f"Bearer {key}"}
    worst = 0.0
    with httpx.Client(base_url=app_url, headers=headers, timeout=60, trust_env=False) as client:
        deep = client.get("/api/v1/calls", params={"limit": 200}).json()
        for _ in range(20):  # 4,000 calls in: a cursor from well inside the log
            deep = client.get(deep["next"]).json() if deep.get("next") else deep
        pages = [
            ("contacts: search a name", "/api/v1/contacts?q=grace"),
            ("contacts: search a company word", "/api/v1/contacts?q=dental"),
            ("contacts: search digits of a number", "/api/v1/contacts?q=7946"),
            ("contacts: search a name, 25 a page", "/api/v1/contacts?q=grace&limit=25"),
            ("contacts: first page", "/api/v1/contacts"),
            ("calls: first page", "/api/v1/calls"),
            ("calls: by outcome (busy)", "/api/v1/calls?outcome=busy"),
            ("calls: by agent", f"/api/v1/calls?agent={agent}"),
            ("calls: 200 a page", "/api/v1/calls?limit=200"),
            ("calls: deep page by cursor", deep["next"] or "/api/v1/calls"),
        ]
        print(f"   {'page':40} {'p50 ms':>8} {'p95 ms':>8}")
        for label, path in pages:
            times = timed(client, path, args.requests)
            worst = max(worst, percentile(times, 95))
            print(f"   {label:40} {percentile(times, 50):8.1f} {percentile(times, 95):8.1f}")
        print(f"   slowest p95 {worst:.1f} ms (goal ≤ 100 ms: {'PASS' if worst <= 100 else 'MISS'})")
        with httpx.Client(base_url=app_url, timeout=60, trust_env=False) as page:
            log_in(page)
            print("   the same searches on the contact list page (25 a page), logged in as the same person:")
            for label, path in pages[:3]:
                times = timed(page, path.replace("/api/v1/contacts", "/contacts/"), args.requests)
                print(f"   {label:40} {percentile(times, 50):8.1f} {percentile(times, 95):8.1f}")

        print(
            f"\n3. The whole call log by cursor, 200 a page (at most {min(args.max_calls, calls):,} calls; "
            "API_RATE_PER_MINUTE raised for the run)"
        )
        read, pages, path, started = 0, 0, "/api/v1/calls?limit=200", time.perf_counter()
        backends = postgres_backends(args.volume_db)
        cpu = h.cpu_ms(app.worker_pids), h.cpu_ms(backends), time.process_time()
        while path and read < args.max_calls:
            response = client.get(path)
            response.raise_for_status()
            body = response.json()
            read, pages = read + len(body["items"]), pages + 1
            path = body.get("next")
        seconds = time.perf_counter() - started
        app_ms, pg_ms = h.cpu_ms(app.worker_pids) - cpu[0], h.cpu_ms(backends) - cpu[1]
        reader_ms = (time.process_time() - cpu[2]) * 1000
        rate = read / seconds if seconds else 0.0
        print(f"   {read:,} calls in {seconds:.1f} s: {rate:,.0f} calls/s (goal ≥ 20,000/s: "
              f"{'PASS' if rate >= 20_000 else 'MISS'})")  # fmt: skip
        if pages:  # CPU time, which other load on the machine sways far less than the rate
            print(f"   CPU a page: the app {app_ms / pages:.2f} ms, PostgreSQL {pg_ms / pages:.2f} ms "
                  f"({len(backends)} connections), this reader {reader_ms / pages:.2f} ms")  # fmt: skip
    h.print_app_log(app)


def postgres_backends(url: str) -> tuple[int, ...]:
    """The PostgreSQL server processes serving this database on this machine (the app's pooled connections, opened
    by the warm-ups before): their CPU time is what the pages cost PostgreSQL."""
    name = url.rsplit("/", 1)[-1].encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                words = (entry / "cmdline").read_bytes().split()
            except OSError:
                continue
            if words[:1] == [b"postgres:"] and name in words:
                found.append(int(entry.name))
    return tuple(found)


def run(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> int:
    print(f"api bench{' (quick)' if args.quick else ''}: {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} before")  # fmt: skip
    placing_part(args, tmp, managed)
    if args.volume_db != "none":
        volume_parts(args, tmp, managed)
    print(f"\nload average {os.getloadavg()[0]:.1f} after")
    return 0


def main(argv: list[str] | None = None) -> int:
    return h.run_bench(run, parse_args(argv), prefix="vccweb-api-bench-")


if __name__ == "__main__":
    sys.exit(main())
