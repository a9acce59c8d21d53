"""VCC's events (issue 19): the receiver under load, what following calls costs VCC while events flow, and polling
taking over when they stop. Prints figures against the issue's goals; asserts nothing about time.

The app is served as in production (uvicorn, `DEBUG=false`, PostgreSQL of its own, Redis) with one worker process
(`manage.py worker`) and a vccsim process whose request log is what "requests VCC received" counts.

1. The receiver: a load generator in this process (asyncio and httpx) POSTs signed single CloudEvents to
   `/vcc/events/` at a steady --rate for --seconds (open loop: each event is sent at its time whatever the answers
   before it), one in a hundred a redelivery of an earlier event (same id, same body). Every event is a
   `channel.held.v1` about one of --live-calls live calls, so each one applied leaves one "(webhook)" line in its
   call's history: applied twice shows as more lines than unique events.
2. Following: --calls agents click Call (through the app, as click_bench does); vccsim, subscribed with
   `manage.py vcc_webhooks subscribe`, delivers their events, and the worker follows them for --follow-seconds of
   vccsim's clock (sped up by --speed). An agent's presence changes every --tick seconds meanwhile, so events keep
   flowing as they do in a contact centre with other calls going on. vccsim's log gives the requests it received.
3. Events stop: vccsim's webhook fault `drop` loses every delivery from then on, the calls end in vccsim, and the
   app's calls must all end (polled) within EVENT_SILENCE_SECONDS and a margin.

    .venv/bin/python bench/events_bench.py [--quick] [--rate 1000] [--seconds 60] [--workers 1] [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import secrets
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _harness as h
import click_bench as cb
import httpx
import psycopg
import uvloop
from _events_load import IN_FLIGHT, send_events, send_one_at_a_time

FOLLOW_INTERVAL = 2.0  # calls.calling.following.FOLLOW_INTERVAL: a polled call is asked about every 2 s
FOLLOW_SHARE = 105  # follow polls in any 60 s: calls.vcc.budget's FOLLOW share (70 %) of the default 150
# vccsim's request log: `127.0.0.1 "GET /v0/sandbox01/calls/<id> HTTP/1.1" 200 -`
REQUEST_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+"')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--quick", action="store_true", help="small numbers (200 events/s for 5 s, 20 calls, short times)")
    add("--rate", type=int, help="events a second (default 1000; quick 200)")
    add("--seconds", type=float, help="how long events are sent (default 60; quick 5)")
    add("--live-calls", type=int, help="live calls the events are about (default 200; quick 20)")
    add("--workers", metavar="W", type=h.positive, default=1, help="uvicorn worker processes (WEB_CONCURRENCY)")
    add("--calls", type=int, help="calls followed in parts 2 and 3 (default 200; quick 20)")
    add("--follow-seconds", type=float, help="vccsim clock seconds the calls are followed (default 300; quick 40)")
    add("--speed", type=float, help="vccsim clock speed (default 5: 300 clock seconds in 60 s; quick 10)")
    add("--silence", type=int, help="the app's EVENT_SILENCE_SECONDS (default 60, the app's; quick 5)")
    add("--tick", type=float, help="real seconds between presence changes that keep events flowing (default 15)")
    add("--drain-seconds", type=float, help="give up waiting for the worker to apply the events after this long")
    add("--db-name", default="vccweb_events_bench", help="the bench's PostgreSQL database, dropped and created")
    add("--redis-db", metavar="N", type=int, default=13, help="the bench's Redis database, emptied")
    add("--keep", action="store_true", help="keep the bench database and Redis db afterwards")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "rate": 200 if quick else 1000,
        "seconds": 5.0 if quick else 60.0,
        "live_calls": 20 if quick else 200,
        "calls": 20 if quick else 200,
        "follow_seconds": 40.0 if quick else 300.0,
        "speed": 10.0 if quick else 5.0,
        "silence": 5 if quick else 60,
        "tick": 1.5 if quick else 15.0,
        "drain_seconds": 60.0 if quick else 900.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.db_conn_max_age = 0  # the production default: the connection pool
    return args


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


# --- Processes and data ----------------------------------------------------------------------------------------


def query(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(h.DATABASE_URL, connect_timeout=5, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def shell(env: dict[str, str], code: str) -> Any:
    """Run Django code in the app (manage.py shell) and return what it printed as JSON."""
    return json.loads(h.run_python(["manage.py", "shell", "-c", code], env=env).strip().splitlines()[-1])


LIVE_CALLS = """
import json
from django.utils import timezone
from calls.models import Call, CallVccId
now = timezone.now()
calls = Call.objects.bulk_create(
    Call(to_number=number, state=Call.State.LIVE, vcc_call_id=guid, responded_at=now, next_check_at=now)
    for guid, number in {calls!r})
print(json.dumps(len(calls)))
"""

END_CALLS = """
import json
from django.utils import timezone
from calls.models import Call
now = timezone.now()
print(json.dumps(Call.objects.filter(pk__in=CallVccId.objects.filter(vcc_call_id__in={ids!r}).values("call_id")).update(
    state=Call.State.ENDED, ended_at=now, next_check_at=None, wrapped_up_at=now)))
"""


def start_worker(env: dict[str, str], tmp: Path, managed: list[h.Managed]) -> h.Managed:
    worker = h.start("worker", [sys.executable, "manage.py", "worker"], env, tmp, managed)
    deadline = time.monotonic() + h.STARTUP_SECONDS
    while time.monotonic() < deadline:  # it beats once a second once follow_calls runs
        if worker.process.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.process.returncode}:\n{h.log_tail(worker)}")
        if query("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'follow_calls' AND status = 'succeeded'")[
            0
        ][0]:
            return worker
        time.sleep(0.2)
    raise RuntimeError(f"the worker ran no follow_calls within {h.STARTUP_SECONDS:.0f} s:\n{h.log_tail(worker)}")


def sim_requests(log: Path, start: int, end: int | None = None) -> Counter[str]:
    """What vccsim received between two offsets of its log, by kind; its control endpoints (the bench's) apart."""
    counts: Counter[str] = Counter()
    with log.open("rb") as f:
        f.seek(start)
        text = f.read(None if end is None else end - start).decode(errors="replace")
    for line in text.splitlines():
        match = REQUEST_LINE.search(line)
        if not match:
            continue
        method, path = match.groups()
        if path.startswith("/_sim/"):
            counts["control (the bench's)"] += 1
            continue
        counts["all"] += 1
        if method == "GET" and re.fullmatch(r"/v0/[^/]+/calls/[^/?]+", path):
            counts["following (GET calls/{id})"] += 1
        elif method == "POST" and re.fullmatch(r"/v0/[^/]+/calls/", path):
            counts["placing (POST calls/)"] += 1
        elif "token" in path.lower():
            counts["tokens"] += 1
        else:
            counts[f"other ({method} {re.sub(r'[0-9a-f-]{36}', '{id}', path)})"] += 1
    return counts


def print_errors(proc: h.Managed) -> None:
    """The process's error records, alike ones counted together: the first line and the exception of each."""
    proc.log_file.flush()
    lines = proc.log_path.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if h.LOG_RECORD.match(line)] + [len(lines)]
    kinds: Counter[str] = Counter()
    for a, b in zip(starts, starts[1:], strict=False):
        if h.ERROR_RECORD.match(lines[a]):
            first = re.sub(r"^\S+ \S+ |\[\d+\]|\(.*?\)|[0-9a-f-]{36}|\d+(\.\d+)?", "", lines[a])
            raised = [
                line.strip() for line in lines[a + 1 : b] if re.match(r"^\s*\|?\s*[\w.]+(Error|Exception)\b", line)
            ]
            kinds[f"{first.strip()[:150]} / {raised[-1][:200] if raised else ''}"] += 1
    print(f"{proc.name} log: {sum(kinds.values())} errors")
    for kind, count in kinds.most_common(8):
        print(f"  {count} × {kind}")


def log_size(proc: h.Managed) -> int:
    proc.log_file.flush()
    return proc.log_path.stat().st_size


# --- Part 1: the receiver under load ------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(1, -(-len(ordered) * p // 100)) - 1]


def start_live_calls(sim_url: str, agents: list[str], numbers: list[str]) -> list[tuple[str, str]]:
    """Calls that stay live in vccsim (agents dialling from their phones, talking for days of its clock): when
    polling resumes (events silent, or waiting longer than EVENT_SILENCE_SECONDS to be applied), VCC answers for
    them as for any live call."""
    started = []
    with httpx.Client(base_url=sim_url, timeout=10.0, trust_env=False) as control:
        for agent, number in zip(agents, numbers, strict=True):
            body = {"agentId": agent, "telephoneNumber": number, "outcome": "answered", "talkSeconds": 10**7}
            started.append((sim_post(control, "calls", body).json()["id"], number))
    return started


def receiver_part(
    env: dict[str, str],
    app_url: str,
    sim_url: str,
    agents: list[str],
    key: bytes,
    args: argparse.Namespace,
    watch: h.Watch,
) -> None:
    calls = start_live_calls(sim_url, agents, h.unique_numbers(len(agents)))
    shell(env, LIVE_CALLS.format(calls=calls))
    guids = [guid for guid, _ in calls]
    print(f"\n1. The receiver: {args.rate:,} events/s for {args.seconds:g} s, about {len(guids)} live calls")
    serial = asyncio.run(send_one_at_a_time(app_url, guids, key, 2 * len(guids)))
    cpu_before = {name: h.cpu_ms(pids) for name, pids in watch.items()} | {h.MACHINE: h.machine_busy_ms()}
    load = asyncio.run(send_events(app_url, guids, key, args), loop_factory=uvloop.new_event_loop)
    cpu = {name: h.cpu_ms(pids) - cpu_before[name] for name, pids in watch.items()}
    cpu[h.MACHINE] = h.machine_busy_ms() - cpu_before[h.MACHINE]
    load.unique_ids += len(serial)
    sent = len(load.sent)
    answered = [s for s in load.sent if s.status == 200]
    duration = max((s.started for s in load.sent), default=0.0)  # to the last request sent
    achieved = sent / duration if duration else 0.0
    queued_p95 = percentile([s.started - s.scheduled + s.latency_ms / 1000 for s in answered], 95) * 1000
    late = sum(s.started - s.scheduled > 0.1 for s in load.sent)
    latencies = [s.latency_ms for s in answered]
    p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
    errors = Counter(f"{s.status}: {s.error}" if s.status else s.error for s in load.sent if s.status != 200)

    started_drain = time.monotonic()
    stored = processed = 0
    while time.monotonic() - started_drain < args.drain_seconds:
        stored, processed = query(
            "SELECT count(*), count(processed_at) FROM calls_vccevent WHERE type = 'channel.held.v1'"
        )[0]
        if stored >= load.unique_ids and processed == stored:
            break
        time.sleep(0.5)
    drained = time.monotonic() - started_drain
    applied_lines = query(
        "SELECT count(*) FROM calls_callevent e JOIN calls_callvccid k ON k.call_id = e.call_id "
        "WHERE k.vcc_call_id = ANY(%s) AND e.detail LIKE %s",
        (guids, "VCC: % (webhook)"),
    )[0][0]
    applied_rows, first_received, last_processed = query(
        "SELECT count(*) FILTER (WHERE result LIKE 'applied%%'), min(received_at), max(processed_at) "
        "FROM calls_vccevent WHERE type = 'channel.held.v1'"
    )[0]
    span = (last_processed - first_received).total_seconds() if last_processed and first_received else 0.0
    shell(env, END_CALLS.format(ids=guids))  # out of the way of parts 2 and 3: vccsim does not know them

    acknowledged = {s.event_id for s in answered + serial if s.status == 200}
    stored_ids = {row[0] for row in query("SELECT event_id FROM calls_vccevent WHERE type = 'channel.held.v1'")}
    lost = len(acknowledged - stored_ids)  # answered 200 yet not kept: VCC would not send it again
    never = load.unique_ids - len(acknowledged | stored_ids)  # not answered 200 and not stored: VCC would retry
    twice = applied_lines - applied_rows
    rate_met = achieved >= 0.98 * args.rate and late <= 0.01 * sent
    print(
        f"   sent {sent:,} in {duration:.1f} s: {achieved:,.0f}/s (goal {args.rate:,}/s: {verdict(rate_met)}); "
        f"{late:,} sent more than 100 ms behind schedule (the generator or its connections saturated)"
    )
    print(
        f"   uvicorn ×{args.workers}, one worker process; answered 200: {len(answered):,}; "
        f"errors: {sum(errors.values())}"
    )
    for text, count in errors.most_common(5):
        print(f"     {count:,} × {text}")
    print(
        f"   receiver latency (as the sender saw it): p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, "
        f"max {max(latencies, default=float('nan')):.1f} ms (goal p95 ≤ 20 ms: {verdict(p95 <= 20)}); "
        f"p95 from the time it was due, its wait for one of the sender's {IN_FLIGHT} connections included: "
        f"{queued_p95:.1f} ms"
    )
    alone = [s.latency_ms for s in serial]
    print(
        f"   one at a time first ({len(serial)} events, no queue): p50 {percentile(alone, 50):.1f} ms, "
        f"p95 {percentile(alone, 95):.1f} ms, p99 {percentile(alone, 99):.1f} ms; "
        f"{sum(s.status != 200 for s in serial)} not answered 200"
    )
    print(
        "   CPU while sending (ms an event): "
        + ", ".join(f"{name} {used / max(sent, 1):.1f}" for name, used in cpu.items())
        + f" (the machine's {os.cpu_count()} cores, whoever used them: "
        f"{cpu[h.MACHINE] / 10 / max(load.seconds, 0.001) / (os.cpu_count() or 1):.0f}% busy)"
    )
    print(
        f"   unique ids sent {load.unique_ids:,} (one at a time included; +{load.redeliveries:,} redeliveries); "
        f"stored {stored:,}; "
        f"acknowledged (200) but not stored, i.e. lost: {lost:,} (goal 0: {verdict(lost == 0)}); "
        f"not acknowledged and not stored (VCC would send them again): {never:,}"
    )
    print(
        f"   processed {processed:,} ({applied_rows:,} applied) in {span:.1f} s from the first received "
        f"({processed / span if span else 0:,.0f}/s); waited {drained:.1f} s after the last was sent"
        + ("" if processed == stored else f": GAVE UP with {stored - processed:,} waiting")
    )
    print(
        f"   applied twice: {twice:,} ({applied_lines:,} '(webhook)' lines in the calls' histories for "
        f"{applied_rows:,} events applied; goal 0: {verdict(twice == 0 and applied_rows == load.unique_ids)})"
    )


# --- Parts 2 and 3: following calls while events flow, and when they stop -------------------------------------------


def sim_post(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    response = client.post(f"/_sim/{path}", json=body)
    response.raise_for_status()
    return response


async def place_calls(app_url: str, data: dict[str, Any]) -> list[cb.Outcome]:
    """Each agent clicks Call once on their contact (as the contact page's button does)."""
    limits = httpx.Limits(max_connections=1, keepalive_expiry=2)
    gate = asyncio.Semaphore(8)
    clients = []
    for user in data["users"]:
        client = httpx.AsyncClient(base_url=app_url, timeout=h.REQUEST_TIMEOUT, trust_env=False, limits=limits)
        client.cookies.set("sessionid", user["session"])
        clients.append(client)
    try:
        await asyncio.gather(
            *(
                h.gated_get(gate, client, f"/contacts/{target['contact']}/")
                for client, target in zip(clients, data["clicks"], strict=True)
            )
        )

        async def click(client: httpx.AsyncClient, target: dict[str, Any]) -> cb.Outcome:
            async with gate:
                return await cb.app_click(client, target, "contact")

        return await asyncio.gather(
            *(click(client, target) for client, target in zip(clients, data["clicks"], strict=True))
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def live_calls() -> int:
    return query("SELECT count(*) FROM calls_call WHERE state = 'live'")[0][0]


def following_part(
    env: dict[str, str], app_url: str, sim: h.Managed, sim_url: str, data: dict[str, Any], args: argparse.Namespace
) -> None:
    calls = len(data["clicks"])
    window = args.follow_seconds / args.speed  # real seconds
    end_after = 3.0 if args.quick else 15.0  # the calls end in vccsim this long (real) after deliveries stop
    talk = (window + end_after) * args.speed
    print(
        f"\n2. Following {calls} calls for {args.follow_seconds:g} s of vccsim's clock (×{args.speed:g}: "
        f"{window:.0f} s real), events flowing (a presence change every {args.tick:g} s)"
    )
    out = h.run_python(["manage.py", "vcc_webhooks", "subscribe", "--url", f"{app_url}/vcc/events/"], env=env)
    print(f"   {out.strip()}")
    presence_agent = json.loads((h.ROOT / "vccsim" / "sample_account.json").read_text())["agents"][0]["agentId"]
    with httpx.Client(base_url=sim_url, timeout=10.0, trust_env=False) as control:
        for _ in range(calls):
            sim_post(control, "next-outcome", {"outcome": "answered", "talkSeconds": talk})
        before = log_size(sim)
        placing_started = time.monotonic()
        outcomes = asyncio.run(place_calls(app_url, data))
        placed = sum(o.ok for o in outcomes)
        failures = Counter(o.detail[:120] for o in outcomes if not o.ok)
        print(f"   placed {placed}/{calls} through the app in {time.monotonic() - placing_started:.1f} s")
        for text, count in failures.most_common(3):
            print(f"     {count} × {text}")
        window_started = time.monotonic()
        categories = ["Away", "Ready"]
        ticks = 0
        while time.monotonic() - window_started < window:
            sim_post(control, f"agents/{presence_agent}/presence", {"category": categories[ticks % 2]})
            ticks += 1
            time.sleep(min(args.tick, max(0.0, window - (time.monotonic() - window_started))))
        still_live = live_calls()
        counts = sim_requests(sim.log_path, before, log_size(sim))
        events = query("SELECT count(*), count(processed_at) FROM calls_vccevent WHERE type <> 'channel.held.v1'")[0]
        part2_end = log_size(sim)

        # 3. Deliveries stop; the calls end in vccsim end_after seconds later.
        sim_post(control, "webhooks/fault", {"drop": True})
        stopped = time.monotonic()
        last_event = query("SELECT max(received_at) FROM calls_vccevent")[0][0]
        left = live_calls()
        limit = args.silence + 15.0
        # The follow polls' share of the VCC request budget (70 % of VCC_REQUESTS_PER_MINUTE, 150: 105) bounds how
        # soon every call can be asked once: no 60 s hold more than 105 polls (calls/vcc/budget.py, a sliding window,
        # not an even rate), so the first 105 calls may be asked at once and each further 105 a minute later.
        budget_floor = 60.0 * ((calls - 1) // FOLLOW_SHARE)
        resumed_by_limit = None
        allowance = calls / (FOLLOW_SHARE / 60)  # waited for at most: the share as an even rate, as before
        while left and time.monotonic() - stopped < limit + end_after + allowance + 30:
            time.sleep(0.25)
            left = live_calls()
            if resumed_by_limit is None and time.monotonic() - stopped >= limit:
                resumed_by_limit = sim_requests(sim.log_path, part2_end, log_size(sim))["following (GET calls/{id})"]
        took = time.monotonic() - stopped
        if resumed_by_limit is None:
            resumed_by_limit = sim_requests(sim.log_path, part2_end, log_size(sim))["following (GET calls/{id})"]
        after = sim_requests(sim.log_path, part2_end, log_size(sim))
    following = counts["following (GET calls/{id})"]
    placing = counts["placing (POST calls/)"]
    total = counts["all"] - placing  # the clicks themselves are not following
    polling = calls * args.follow_seconds / FOLLOW_INTERVAL
    goal = 250 * calls // 200
    met = total <= goal
    print(
        f"   live in the app at the end: {still_live}/{placed}; events received {events[0]:,}, processed {events[1]:,}"
    )
    print(
        f"   VCC (vccsim) received, clicks apart: {total:,} requests in all (goal ≤ {goal:,} for {calls} calls: "
        f"{verdict(met)}): " + ", ".join(f"{kind} {n:,}" for kind, n in sorted(counts.items()) if kind != "all")
    )
    print(
        f"   events off (computed: each live call asked every {FOLLOW_INTERVAL:g} s): {calls} × "
        f"{args.follow_seconds:g} s / {FOLLOW_INTERVAL:g} s = {polling:,.0f} GET calls/{{id}} for the same "
        f"{args.follow_seconds:g} s (following with events: {following:,})"
    )
    silence_ago = (datetime.now(UTC) - last_event).total_seconds() - (time.monotonic() - stopped) if last_event else 0
    print(
        f"\n3. Deliveries dropped from then on (the last event had arrived {silence_ago:.1f} s before); the calls "
        f"end in vccsim about {end_after:g} s later"
    )
    print(
        f"   polling resumed: {resumed_by_limit:,} GET calls/{{id}} within EVENT_SILENCE_SECONDS {args.silence} s "
        f"+ 15 s of the drop (goal: resumed: {verdict(resumed_by_limit > 0)})"
    )
    print(
        f"   the app's calls all ended (polled) {took:.1f} s after deliveries stopped; left live: {left} "
        f"(goal 0: {verdict(left == 0)}); the follow polls' share of the VCC request budget ({FOLLOW_SHARE} in any "
        f"60 s) lets {min(calls, FOLLOW_SHARE)} of the {calls} calls be asked at once"
        + (f", and all of them once in no less than {budget_floor:.0f} s" if budget_floor else "")
    )
    print(
        f"   VCC received meanwhile: following {after['following (GET calls/{id})']:,} "
        f"GET calls/{{id}}, {after['all']:,} requests in all"
    )


# --- Main -----------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> int:
    agents = h.agent_ids(args.calls + args.live_calls)  # those who click Call, then those on part 1's calls
    numbers = h.unique_numbers(args.calls)
    password = secrets.token_urlsafe(16)
    key = secrets.token_bytes(32)
    pg_version = h.reset_database()
    redis_version = h.flush_redis()
    print(
        f"events bench{' (quick)' if args.quick else ''}: PostgreSQL {pg_version}, Redis {redis_version}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before"
    )

    account = tmp / "account.json"
    h.write_account(account, agents, args.speed)
    port = h.free_port()
    sim_url = f"http://{h.HOST}:{port}"
    command = ["-m", "vccsim", "--host", h.HOST, "--port", str(port), "--account", str(account)]
    sim = h.start("vccsim", [sys.executable, *command, "--speed", str(args.speed)], None, tmp, managed)
    h.wait_for(sim, f"{sim_url}/_sim/state", lambda r: r.status_code == 200)

    env = h.app_env(sim_url, args) | {
        "STATIC_ROOT": str(tmp / "static"),
        "VCC_WEBHOOK_SECRETS": base64.b64encode(key).decode(),
        "EVENT_SILENCE_SECONDS": str(args.silence),
        "VCC_CLIENT_ID": "sandbox-client",
        "VCC_CLIENT_SECRET": "sandbox-secret",
        "WEB_CONCURRENCY": str(args.workers),
    }
    h.run_python(["manage.py", "migrate", "--no-input"], env=env)
    h.run_python(["manage.py", "collectstatic", "--no-input", "--verbosity", "0"], env=env)
    data = h.create_data(env, agents[: args.calls], numbers, password)
    app, app_url = h.start_app(args, env, tmp, managed)  # uvicorn --workers W, no access log
    worker = start_worker(env, tmp, managed)

    watch = {"sender (this script)": (os.getpid(),), "uvicorn": app.worker_pids, "worker": (worker.process.pid,)}
    receiver_part(env, app_url, sim_url, agents[args.calls :], key, args, watch)
    following_part(env, app_url, sim, sim_url, data, args)
    print(f"\nload average {os.getloadavg()[0]:.1f} after")
    h.print_app_log(app)
    print_errors(worker)
    return 0


def main(argv: list[str] | None = None) -> int:
    return h.run_bench(run, parse_args(argv), prefix="vccweb-events-bench-")


if __name__ == "__main__":
    sys.exit(main())
