"""The bench scripts are run by hand, rarely: a rename elsewhere must not leave one broken until the day it is run."""

from __future__ import annotations

import ast
import importlib.util
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


@pytest.mark.parametrize(
    "path", [p for p in SCRIPTS if "import click_bench as cb" in p.read_text()], ids=lambda p: p.name
)
def test_what_a_script_uses_from_click_bench_exists(path):
    click_bench = _load(BENCH / "click_bench.py")
    used = {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "cb"
    }
    assert used, "the script uses nothing from click_bench"
    assert sorted(name for name in used if not hasattr(click_bench, name)) == []


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
