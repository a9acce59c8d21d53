"""Real worker processes for the fault tests (tests/test_worker_faults.py): `manage.py worker` in processes of
their own, on PostgreSQL, stopped by the test's finaliser; and a private PostgreSQL cluster that a test may restart.

Run as `python -m tests._workers [worker options]`, this module is `manage.py worker` with two test-only changes
to the contact import, both read from the environment: VCCWEB_TEST_IMPORT_BATCH (rows written at a time) and
VCCWEB_TEST_PAUSE_APPLY_FILE (after each batch the apply writes, it waits while that file exists), so a test can
kill the worker half-way through an apply. Nothing of it is in the production code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent

# Fast enough for a test: a heartbeat a second, dead after 3 s of silence, stalled jobs looked for every second.
FAST = {
    "WORKER_HEARTBEAT_SECONDS": "1",
    "WORKER_STALLED_SECONDS": "3",
    "JOBS_STALLED_CHECK_CRON": "* * * * * *",
}
# As pyproject.toml's pytest env: development settings, sandbox VCC, no shared cache, no periodic sync.
QUIET = {
    "DEBUG": "true",
    "VCC_ACCOUNT_KEY": "",
    "VCC_API_TOKEN": "",
    "REDIS_URL": "",
    "SITE_URL": "",
    "VCC_SYNC_EVERY": "off",
    "PROCRASTINATE_LOG_LEVEL": "INFO",
}


def wait_for(condition: Callable[[], Any], what: str, *, timeout: float = 20.0, logs: Callable[[], str] = str) -> Any:
    """Poll condition until it returns something true, and return that; fail saying `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}\n{logs()}")
        time.sleep(0.1)


def database_url(settings_dict: dict[str, Any], *, port: int | None = None, name: str | None = None) -> str:
    """A DATABASE_URL for a Django database's settings (the test database actually in use, with xdist too)."""
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else f"{user}@" if user else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    return f"postgres://{auth}{host}:{port or settings_dict.get('PORT') or 5432}/{name or settings_dict['NAME']}"


class Worker:
    """One `manage.py worker` process (or `python -m tests._workers`, `patched`), its output in a file."""

    def __init__(self, name: str, url: str, logs: Path, *, env: dict[str, str] | None = None, patched: bool = False):
        self.name, self.log_path = name, logs / f"worker-{name}.log"
        command = ["-m", "tests._workers"] if patched else ["manage.py", "worker"]
        environment = {**os.environ, **QUIET, **FAST, "DATABASE_URL": url, **(env or {})}
        environment.pop("PYTEST_XDIST_WORKER", None)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, *command, "--name", name],
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return f"--- worker {self.name} (exit {self.process.poll()}) ---\n" + self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9: no goodbye, no unregistering, its jobs left running."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (running jobs may finish), then SIGKILL if it is still there after 10 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path | None:
    """The directory of initdb and pg_ctl (the newest installed PostgreSQL), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


class Cluster:
    """A PostgreSQL of the test's own, in a temporary directory on a free port, trust authentication: restarting
    it disturbs nobody else. As root it runs as the postgres user (initdb refuses root)."""

    def __init__(self, bin_dir: Path, base: Path) -> None:
        self.bin, self.port = bin_dir, free_port()
        self.data, self.logfile = base / "data", base / "postgres.log"
        self.logfile.parent.mkdir(exist_ok=True)
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(base, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _run(self, program: str, *args: str) -> None:
        # Output to a file, not a pipe: a server that pg_ctl starts keeps what it inherits open.
        with (self.logfile.parent / "pg_ctl.out").open("ab") as out:
            subprocess.run(
                [*self.as_user, str(self.bin / program), *args],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=60,
            )

    def pg_ctl(self, action: str, *args: str) -> None:
        # authentication_timeout: while it shuts down, PostgreSQL answers each new connection from a "dead-end"
        # child and waits for every such child to end; one whose client never sends its startup packet (a client's
        # connection attempt abandoned half-way, as a reconnecting pool may leave behind) lives until this timeout,
        # 60 s by default, as long as pg_ctl waits: restarts under a reconnecting worker then failed now and then.
        # A socket opened silently during a fast shutdown was measured to hold it exactly 60 s.
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c authentication_timeout=5s"
        try:
            self._run("pg_ctl", action, "-D", str(self.data), "-l", str(self.logfile), "-o", options, "-w", *args)
        except subprocess.SubprocessError as error:
            logs = (self.logfile.parent / "pg_ctl.out", self.logfile)
            log = "".join(path.read_text(errors="replace")[-3000:] for path in logs if path.exists())
            raise RuntimeError(f"pg_ctl {action} failed: {error}\n{log}") from error

    def copy_schema(self, source_url: str) -> None:
        """The tables, functions and triggers of another database (the test database: migrated already), without
        its rows: `manage.py migrate` would take several seconds more."""
        dump = subprocess.run(
            [str(self.bin / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges", source_url],
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            [str(self.bin / "psql"), "-q", "-v", "ON_ERROR_STOP=1", self.url()],
            input=dump.stdout,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """A private PostgreSQL, started; stopped (immediately) and deleted at the end. Its directory is not under
    pytest's tmp_path, which only root may enter."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server programs (initdb, pg_ctl) installed")
    base = Path(tempfile.mkdtemp(prefix="vccweb-pg-"))
    try:
        pg = Cluster(bin_dir, base)
        pg.pg_ctl("start")
        try:
            yield pg
        finally:
            with contextlib.suppress(subprocess.SubprocessError):
                pg.pg_ctl("stop", "-m", "immediate")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _patched_worker() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vccweb.settings")
    django.setup()
    from django.core.management import call_command

    from calls import imports

    if batch := os.environ.get("VCCWEB_TEST_IMPORT_BATCH"):
        imports.BATCH = int(batch)
    if pause := os.environ.get("VCCWEB_TEST_PAUSE_APPLY_FILE"):
        wrote = imports._Progress.__call__

        def wrote_then_wait(self: Any, done: int) -> None:
            wrote(self, done)
            while Path(pause).exists():
                time.sleep(0.05)

        imports._Progress.__call__ = wrote_then_wait  # type: ignore[method-assign]
    call_command("worker", *sys.argv[1:])


if __name__ == "__main__":
    _patched_worker()
