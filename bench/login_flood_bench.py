"""A flood of guessed passwords, and another user's pages meanwhile (issue 10: guessing must not slow the app).

Serves the app as in production (uvicorn with --workers processes, PostgreSQL, Redis), then one logged-in user
loads the contact list one page after another: first on a quiet app, then while --guessers clients post wrong
passwords to /login/ as fast as they are answered, each for an account of its own, until the flood has run
--flood-seconds. Every guess costs a PBKDF2 check (about 0.3 s of a core) until the account (5 failures) or the
address (100) is locked out; after that, guesses are answered 429 without hashing. Prints the user's page times
quiet and during the flood, and what the guessers got.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import _harness as h
import httpx

sys.path.insert(0, str(h.ROOT))  # run as a script from anywhere: vccsim lives at the project's root

from vccsim import Clock, Simulator, load_account, start_server  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--guessers", type=h.positive, default=20, help="clients guessing at once, each at an account of its own")
    add("--flood-seconds", metavar="S", type=float, default=20, help="how long the guessing goes on")
    add("--quiet-loads", type=h.positive, default=40, help="the user's page loads before the flood")
    add("--page", default="/contacts/", help="the page the other user loads")
    add("--workers", type=h.positive, default=2, help="uvicorn worker processes")
    add("--db-name", default="vccweb_flood_bench", help="the bench's PostgreSQL database, dropped and created afresh")
    add("--redis-db", metavar="N", type=int, default=13, help="the bench's Redis database, emptied")
    add("--keep", action="store_true", help="keep the bench database and Redis db afterwards")
    args = parser.parse_args(argv)
    # What _harness's helpers read.
    args.db_conn_max_age, args.db_pool_max_size, args.db_pool_timeout = 0, None, None
    return args


async def load_pages(client: httpx.AsyncClient, page: str, *, count: int | None, stop: asyncio.Event | None):
    """Load page one time after another (count times, or until stop); each load's time in ms."""
    times: list[float] = []
    while (count is None or len(times) < count) and not (stop and stop.is_set()):
        started = time.perf_counter()
        response = await client.get(page)
        if response.status_code != 200:
            raise RuntimeError(f"{page}: HTTP {response.status_code}")
        times.append(h.elapsed_ms(started))
    return times


async def guess(client: httpx.AsyncClient, username: str, stop: asyncio.Event, answers: Counter) -> None:
    """Wrong passwords for username, one after another, until stop."""
    await client.get("/login/")
    while not stop.is_set():
        response = await client.post(
            "/login/",
            data={
                "username": username,
                "password": secrets.token_urlsafe(8),
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Referer": f"{client.base_url}login/"},
        )
        answers[response.status_code] += 1


async def measure(base: str, session: str, targets: list[str], args: argparse.Namespace):
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=base, timeout=60, trust_env=False, limits=limits) as user:
        user.cookies.set("sessionid", session)
        await load_pages(user, args.page, count=5, stop=None)  # warm up
        quiet = await load_pages(user, args.page, count=args.quiet_loads, stop=None)
        stop, answers = asyncio.Event(), Counter()
        guessers = [httpx.AsyncClient(base_url=base, timeout=120, trust_env=False, limits=limits) for _ in targets]
        try:
            flood = [
                asyncio.ensure_future(guess(c, name, stop, answers)) for c, name in zip(guessers, targets, strict=True)
            ]
            watching = asyncio.ensure_future(load_pages(user, args.page, count=None, stop=stop))
            await asyncio.sleep(args.flood_seconds)
            stop.set()
            during = await watching
            await asyncio.gather(*flood)
        finally:
            await asyncio.gather(*(c.aclose() for c in guessers))
    return quiet, during, answers


def summary(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[max(0, round(0.95 * len(ordered) + 0.5) - 2)]
    over = sum(t > 300 for t in times)
    return (
        f"{label:34} {len(times):5d} loads  p50 {statistics.median(times):7.1f}  p95 {p95:7.1f}  "
        f"max {max(times):7.1f} ms  over 300 ms: {over}"
    )


def run(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> int:
    agents = h.agent_ids(args.guessers + 1)
    password = secrets.token_urlsafe(16)
    pg_version, redis_version = h.reset_database(), h.flush_redis()
    print(
        f"vccweb login flood bench, {time.strftime('%Y-%m-%d %H:%M %Z')}: uvicorn ×{args.workers}, "
        f"{args.guessers} guessers for {args.flood_seconds:g} s; "
        f"PostgreSQL {pg_version}, Redis {redis_version}"
    )
    account = tmp / "account.json"
    h.write_account(account, agents, 1.0)
    with start_server(Simulator(load_account(account), clock=Clock(speed=1.0))) as server:
        env = h.app_env(server.base_url, args) | {"STATIC_ROOT": str(tmp / "static")}
        h.run_python(["manage.py", "migrate", "--no-input"], env=env)
        h.run_python(["manage.py", "collectstatic", "--no-input", "--verbosity", "0"], env=env)
        setup = h.create_data(env, agents, h.unique_numbers(50), password)
        port = h.free_port()
        command = ["-m", "uvicorn", "vccweb.asgi:application", "--host", h.HOST, "--port", str(port)]
        command += ["--workers", str(args.workers), "--no-access-log"]
        app = h.start("uvicorn", [sys.executable, *command], env, tmp, managed)
        base = f"http://{h.HOST}:{port}"
        h.wait_for(app, f"{base}/login/", lambda r: r.status_code == 200)
        watcher, *targets = setup["users"]
        quiet, during, answers = asyncio.run(measure(base, watcher["session"], [u["username"] for u in targets], args))
    print(summary(f"GET {args.page}, quiet", quiet))
    print(summary(f"GET {args.page}, during the flood", during))
    hashed = answers[200]  # a wrong password is answered 200 with the form again; a locked-out guess 429
    print(f"guesses answered: {dict(sorted(answers.items()))} (200: checked and wrong; 429: locked out, not checked)")
    print(f"passwords checked during the flood: {hashed}, about {hashed * 0.3:.0f} s of a core at 0.3 s each")
    h.print_app_log(app, limit=3)
    return 0


def main(argv: list[str] | None = None) -> int:
    return h.run_bench(run, parse_args(argv), prefix="vccweb-flood-bench-")


if __name__ == "__main__":
    sys.exit(main())
