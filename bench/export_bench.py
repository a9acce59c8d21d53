"""Time both CSV exports served as in production: time to the first byte, total time, rows/s, server memory.

Seeds --contacts contacts (with their numbers) and --calls calls with `manage.py seed_volume` in a database of its
own (dropped and created afresh), serves the app under one uvicorn process with DEBUG off, logs in through /login/
as a supervisor (who has `export_contacts`), and downloads /contacts/export/ and then /calls/export.csv, reading
the body as it comes. Memory is the server process's resident set, sampled every 10 ms during each download, with
its high-water mark reset (/proc/PID/clear_refs) before each. A benchmark, not a test: it prints, asserts nothing.

    .venv/bin/python bench/export_bench.py [--contacts 300000] [--calls 300000] [--app-root PATH]

--app-root serves another checkout of vccweb (say an older commit, `git worktree add /tmp/old <commit>`) from the
same database and settings, to compare before and after.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import _harness as h
import httpx
from calllog_bench import login  # run as bench/export_bench.py, bench/ is on the path

sys.path.insert(0, str(h.ROOT))  # run as a script from anywhere: vccsim lives at the project's root

from vccsim import Clock, Simulator, load_account, start_server  # noqa: E402

SAMPLE_SECONDS = 0.01


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--contacts", type=h.positive, default=300_000, help="contacts to seed (1 or 2 numbers each)")
    add("--calls", type=int, default=300_000, help="calls to seed, over the last 365 days")
    add("--app-root", type=Path, default=h.ROOT, help="the checkout of vccweb to serve (default: this one)")
    add("--db-name", default="vccweb_export_bench", help="the bench's PostgreSQL database, dropped and created afresh")
    add("--redis-db", metavar="N", type=int, default=12, help="the bench's Redis database, emptied")
    add("--keep", action="store_true", help="keep the bench database and Redis db afterwards")
    add("--reuse", action="store_true", help="export from the database a run with --keep left (no seeding)")
    args = parser.parse_args(argv)
    # What _harness's helpers read.
    args.db_conn_max_age, args.db_pool_max_size, args.db_pool_timeout = 0, None, None
    return args


@dataclass
class Download:
    path: str
    first_byte_s: float = 0.0
    total_s: float = 0.0
    rows: int = 0
    bytes: int = 0
    rss_before_kib: int = 0
    rss_peak_kib: int = 0
    hwm_kib: int = 0  # the kernel's high-water mark during the download (VmHWM after a reset)


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux 4.0+, our own child); False where that is refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def download(client: httpx.Client, path: str, pid: int) -> Download:
    result = Download(path)
    reset = reset_peak(pid)
    result.rss_before_kib = result.rss_peak_kib = status_kib(pid, "VmRSS")
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            result.rss_peak_kib = max(result.rss_peak_kib, status_kib(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    newlines = 0
    started = time.perf_counter()
    try:
        with client.stream("GET", path, timeout=900) as response:
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code}")
            for chunk in response.iter_raw():  # as it arrives (a chunk_size would gather 64 KiB first)
                if not result.bytes:
                    result.first_byte_s = time.perf_counter() - started
                result.bytes += len(chunk)
                newlines += chunk.count(b"\n")
        result.total_s = time.perf_counter() - started
    finally:
        done.set()
        sampler.join()
    result.rss_peak_kib = max(result.rss_peak_kib, status_kib(pid, "VmRSS"))
    result.hwm_kib = status_kib(pid, "VmHWM") if reset else 0
    result.rows = newlines - 1  # the header; no seeded cell holds a line break
    return result


def print_download(label: str, d: Download) -> None:
    hwm = f", high-water mark +{(d.hwm_kib - d.rss_before_kib) / 1024:.0f} MiB" if d.hwm_kib else ""
    print(
        f"{label:9} {d.rows:>9,} rows  first byte {d.first_byte_s * 1000:8.1f} ms  total {d.total_s:6.1f} s  "
        f"{d.rows / d.total_s:>9,.0f} rows/s  {d.bytes / 2**20:6.1f} MiB  server RSS {d.rss_before_kib / 1024:.0f} "
        f"MiB before, peak {d.rss_peak_kib / 1024:.0f} MiB (+{(d.rss_peak_kib - d.rss_before_kib) / 1024:.0f} MiB){hwm}"
    )


def seed(root: Path, args: argparse.Namespace, env: dict[str, str]) -> None:
    started = time.perf_counter()
    command = [sys.executable, str(root / "manage.py"), "seed_volume", "--contacts", str(args.contacts)]
    command += ["--calls", str(args.calls), "--agents", "20", "--busy-contact-calls", "0", "--history-days", "0"]
    done = subprocess.run(command, cwd=root, env=env | {"SECRET_KEY": secrets.token_urlsafe(50)},
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"seed_volume failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    print(f"seeded in {time.perf_counter() - started:.0f} s ({done.stdout.strip().splitlines()[-1]})")


def run(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> int:
    pg_version = h.reset_database() if not args.reuse else "(reused database)"
    redis_version = h.flush_redis()
    root = args.app_root.resolve()
    print(
        f"vccweb export bench, {time.strftime('%Y-%m-%d %H:%M %Z')}: {args.contacts:,} contacts, {args.calls:,} "
        f"calls; one uvicorn process serving {root}; PostgreSQL {pg_version}, Redis {redis_version}"
    )
    account = tmp / "account.json"
    h.write_account(account, [], 1.0)
    with start_server(Simulator(load_account(account), clock=Clock(speed=1.0))) as server:
        env = h.app_env(server.base_url, args) | {"STATIC_ROOT": str(tmp / "static"), "PYTHONPATH": str(root)}
        # seed_volume runs only in sandbox mode (no VCC account) or with DEBUG on.
        seed_env = {k: v for k, v in env.items() if k not in ("VCC_ACCOUNT_KEY", "VCC_API_TOKEN")}
        h.run_python([str(root / "manage.py"), "migrate", "--no-input"], env=env)
        h.run_python([str(root / "manage.py"), "collectstatic", "--no-input", "--verbosity", "0"], env=env)
        if not args.reuse:
            seed(root, args, seed_env)
        port = h.free_port()
        command = [sys.executable, "-m", "uvicorn", "vccweb.asgi:application", "--host", h.HOST, "--port", str(port)]
        app = h.start("uvicorn", [*command, "--no-access-log", "--app-dir", str(root)], env, tmp, managed)
        base = f"http://{h.HOST}:{port}"
        h.wait_for(app, f"{base}/login/", lambda r: r.status_code == 200)
        pid = app.process.pid
        with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
            login(client)
            client.get("/contacts/").raise_for_status()  # the session and permissions cached, as for a person
            print(f"server RSS after login and one page: {status_kib(pid, 'VmRSS') / 1024:.0f} MiB")
            contacts = download(client, "/contacts/export/", pid)
            print_download("contacts", contacts)
            calls = download(client, "/calls/export.csv", pid)
            print_download("calls", calls)
        print(f"server peak RSS since start (VmHWM): {status_kib(pid, 'VmHWM') / 1024:.0f} MiB")
    h.print_app_log(app, limit=3)
    return 0


def main(argv: list[str] | None = None) -> int:
    return h.run_bench(run, parse_args(argv), prefix="vccweb-export-bench-")


if __name__ == "__main__":
    sys.exit(main())
