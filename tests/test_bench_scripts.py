"""The bench scripts are run by hand, rarely: a rename elsewhere must not leave one broken until the day it is run."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def _load(path: Path):
    sys.path.insert(0, str(BENCH))  # the scripts import each other as they do when run from bench/
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))
        sys.modules.pop(f"bench_{path.stem}", None)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_each_script_imports_and_has_a_main(path):
    module = _load(path)
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
    if hasattr(module, "parse_args"):
        assert module.parse_args([]) is not None  # its options and their defaults build


def _imports(path: Path, module: str, alias: str) -> bool:
    """Whether the module has `import module as alias`."""
    return any(
        isinstance(node, ast.Import) and any(a.name == module and a.asname == alias for a in node.names)
        for node in ast.walk(ast.parse(path.read_text()))
    )


def _used(path: Path, alias: str) -> set[str]:
    """The names a module reads from another imported under alias (`alias.name`)."""
    return {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == alias
    }


@pytest.mark.parametrize("path", [p for p in SCRIPTS if _imports(p, "click_bench", "cb")], ids=lambda p: p.name)
def test_what_a_script_uses_from_click_bench_exists(path):
    click_bench = _load(BENCH / "click_bench.py")
    used = _used(path, "cb")
    assert used, "the script uses nothing from click_bench"
    assert sorted(name for name in used if not hasattr(click_bench, name)) == []


@pytest.mark.parametrize(
    "path", [p for p in sorted(BENCH.glob("*.py")) if _imports(p, "_harness", "h")], ids=lambda p: p.name
)
def test_what_a_module_uses_from_the_harness_exists(path):
    """The same for bench/_harness.py, which the scripts and the other libraries in bench/ import as `h`."""
    harness = _load(BENCH / "_harness.py")
    used = _used(path, "h")
    assert used, "the module uses nothing from _harness"
    assert sorted(name for name in used if not hasattr(harness, name)) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the bench runs workers on a PostgreSQL job queue")
def test_the_jobs_bench_runs_real_workers_and_prints_its_three_figures(worker_id):
    """The quick mode end to end: a scratch database, two `manage.py worker` processes, an upload, pings, a batch."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "jobs_bench.py"), "--quick", "--db-name", f"vccweb_jobs_bench_test_{worker_id}"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for figure in ("1. import progress", "2. defer → start", "3. two workers"):
        assert any(line.startswith(figure) for line in lines), f"no {figure!r} line in:\n{done.stdout}"
    assert [line for line in lines if line.startswith("worker-")] == [
        "worker-1: app log (LOG_LEVEL=WARNING): 0 errors, 0 warnings",
        "worker-2: app log (LOG_LEVEL=WARNING): 0 errors, 0 warnings",
    ]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the events bench needs PostgreSQL: the worker's queue lives there"
)
def test_the_events_bench_runs_quick_and_loses_nothing(capsys):
    """bench/events_bench.py --quick, smaller still: the app served by uvicorn, a worker, vccsim delivering. Its
    figures of time are not checked; that no event is lost or applied twice, and no call is left live, are."""
    from tests._redis import TEST_REDIS_URL

    events_bench = _load(BENCH / "events_bench.py")
    database = f"{connection.settings_dict['NAME']}_events_bench"  # one per worktree and xdist worker
    redis_db = TEST_REDIS_URL.rsplit("/", 1)[-1]
    options = ["--rate", "50", "--seconds", "2", "--live-calls", "5", "--calls", "4", "--follow-seconds", "20"]
    status = events_bench.main(["--quick", *options, "--db-name", database, "--redis-db", redis_db])

    out = capsys.readouterr().out
    assert status == 0, out
    assert "unique ids sent 109 (one at a time included; +1 redeliveries); stored 109;" in out, out
    assert "i.e. lost: 0 " in out and "processed 109 (109 applied)" in out, out
    assert "applied twice: 0 (109 '(webhook)' lines" in out, out
    assert "placed 4/4 through the app" in out, out
    assert "left live: 0 " in out, out


def test_the_webhooks_bench_shows_each_minutes_post_and_delivery_p95(capsys):
    """A slowdown that comes late in a long phase is lost in the phase's p95; the line by minute shows when."""
    wb = _load(BENCH / "webhooks_bench.py")
    start = 1_000_000.0
    # Minute 1: fast; minute 2: slow posts and late deliveries; a refused POST does not count.
    placed = [wb.Placed(50.0, 201, "", start + i) for i in range(60)]
    placed += [wb.Placed(4000.0, 201, "", start + 60 + i) for i in range(60)]
    placed += [wb.Placed(9999999.0, 500, "boom", start + 61)]
    receiver = wb.Receiver("r1")
    # An event of the phase written 2 s before its first POST (a call of the phase before it ending): minute 1's.
    written = {"msg_early": wb.Written(0, "call:0", "call.ended", start - 2)}
    receiver.arrivals.append(wb.Arrival("msg_early", "call.ended", 0, start - 1.5))
    for i in range(120):
        written[f"msg_{i}"] = wb.Written(i + 1, f"call:{i}", "call.placed", start + i)
        late = 0.5 if i < 60 else 9.0
        receiver.arrivals.append(wb.Arrival(f"msg_{i}", "call.placed", i, start + i + late))

    wb.print_by_minute(placed, receiver, written, range(121))

    line = "   by minute (POST p95, r1's delivery p95): 1: 50 ms, 0.50 s; 2: 4,000 ms, 9.00 s\n"
    assert capsys.readouterr().out == line


def test_the_webhooks_bench_receiver_verifies_over_a_socket_and_its_checks_find_gaps_and_disorder():
    """bench/webhooks_bench.py's receiver, over a real socket, with the app's own signing: a delivery signed with
    the endpoint's secret is recorded, one signed with another is answered 400; stopped, it refuses connections.
    Its checks then find the event never received and the call whose events arrived out of order."""
    import asyncio
    from datetime import UTC, datetime

    import httpx

    from calls.webhooks import signing

    webhooks_bench = _load(BENCH / "webhooks_bench.py")
    secret, other = signing.new_secret(), signing.new_secret()

    class Endpoint:
        def __init__(self, secret: str) -> None:
            self.secret = secret

        def signing_secrets(self, now: datetime) -> list[str]:
            return [self.secret]

    def delivery(msg_id: str, type: str, call: int, key: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"type": type, "id": msg_id, "timestamp": "2026-12-06T00:00:00Z", "data": {"id": call}})
        return body.encode(), signing.headers(Endpoint(key), msg_id, datetime.now(UTC), body.encode())

    async def scenario() -> tuple[list[int], Exception | None]:
        receiver.secret = secret
        await receiver.start()
        statuses = []
        async with httpx.AsyncClient(trust_env=False) as client:
            for msg_id, type, call, key in [
                ("msg_2", "call.placed", 1, secret),  # call 1's second event first
                ("msg_1", "call.requested", 1, secret),
                ("msg_3", "call.requested", 2, secret),
                ("msg_5", "call.requested", 3, other),
            ]:
                body, headers = delivery(msg_id, type, call, key)
                statuses.append((await client.post(receiver.url, content=body, headers=headers)).status_code)
            await receiver.stop()
            try:
                await client.post(receiver.url, content=b"{}")
            except httpx.ConnectError as e:
                return statuses, e
        return statuses, None

    receiver = webhooks_bench.Receiver("t")
    statuses, refused = asyncio.run(scenario())
    assert statuses == [204, 204, 204, 400]
    assert isinstance(refused, httpx.ConnectError)
    assert [(a.msg_id, a.type, a.call) for a in receiver.arrivals] == [
        ("msg_2", "call.placed", 1),
        ("msg_1", "call.requested", 1),
        ("msg_3", "call.requested", 2),
    ]
    assert receiver.refused == {"WebhookVerificationError: No matching signature found": 1}
    written = {
        f"msg_{i}": webhooks_bench.Written(i, subject, "call.requested", 0.0)
        for i, subject in [(1, "call:1"), (2, "call:1"), (3, "call:2"), (4, "call:2")]
    }
    assert set(written) - receiver.received() == {"msg_4"}
    assert webhooks_bench.out_of_order(receiver, written) == (2, 1, "call:1: call.requested, call.requested")


def test_the_migrated_templates_name_changes_with_a_migration_or_the_settings(tmp_path):
    """bench/_migrated.py names its template after what shapes the schema: an edited migration, a new one or a
    changed settings.py gives another name (a stale template would hand the tests an old schema)."""
    migrated = _load(BENCH / "_migrated.py")
    (tmp_path / "calls" / "migrations").mkdir(parents=True)
    (tmp_path / "vccweb").mkdir()
    migration = tmp_path / "calls" / "migrations" / "0001_initial.py"
    migration.write_text("operations = []\n")
    settings = tmp_path / "vccweb" / "settings.py"
    settings.write_text("DEBUG = False\n")
    names = [migrated.key(tmp_path)]
    assert migrated.key(tmp_path) == names[0]  # the same files, the same name
    migration.write_text("operations = ['an edit']\n")
    names.append(migrated.key(tmp_path))
    (tmp_path / "calls" / "migrations" / "0002_more.py").write_text("operations = []\n")
    names.append(migrated.key(tmp_path))
    settings.write_text("DEBUG = True\n")
    names.append(migrated.key(tmp_path))
    assert len(set(names)) == 4, names


@pytest.mark.skipif(connection.vendor != "postgresql", reason="templates are PostgreSQL databases")
def test_the_newest_templates_are_kept_and_older_ones_dropped():
    """prune keeps the newest `keep` (another version's checkout may be about to copy its own), drops the rest, and
    leaves one being made (`…_building`) alone."""
    import psycopg
    from psycopg import sql

    migrated = _load(BENCH / "_migrated.py")
    prefix = "vccweb_prunetest_"
    names = [f"{prefix}{n}" for n in range(4)] + [f"{prefix}9_building"]
    with psycopg.connect(migrated.admin_url(connection.settings_dict), autocommit=True) as admin:

        def left() -> list[str]:
            rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", ("vccweb\\_prunetest\\_%",))
            return sorted(name for (name,) in rows)

        try:
            for name in names:  # made in this order: the last ones are the newest
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            migrated.prune(admin, prefix=prefix, keep=2)
            assert left() == [f"{prefix}2", f"{prefix}3", f"{prefix}9_building"]
        finally:
            for name in names:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_the_throttle_cost_runs_with_the_apps_settings_and_prints_both_sides():
    """bench/_throttle_cost.py, which click_bench.py runs with the app's environment: here the suite's, whose cache
    is the in-process one (no REDIS_URL). Its figures of time are not checked; that it times both sides is."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "_throttle_cost.py")],
        input=json.dumps({"reads": 200, "block": 100}),
        env={**os.environ, "PYTHONPATH": str(BENCH.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cost = json.loads(done.stdout)
    assert (cost["cache"], cost["reads"]) == ("calls.cache.InProcessCache", 200)
    assert {f"{side}_{kind}_us" for side in ("with", "without", "client") for kind in ("cpu", "wall")} <= set(cost)
