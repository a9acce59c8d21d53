"""The code's shape, kept: views are glue, one package of use cases talks to VCC, and no module grows too long."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CALLS = ROOT / "calls"
VIEW_LINES = 25  # a view's body, its docstring left out
MODULE_LINES = 600  # past this, a module is split by area into a package (calls/models/, calls/calling/, ...)
FIRST_PARTY = ("calls", "vccsim", "vccweb", "tests", "bench")  # the tests and the benches are code we keep too


def _views():
    for path in sorted((CALLS / "views").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list:
                yield path.name, node


@pytest.mark.parametrize(("module", "view"), list(_views()), ids=lambda v: getattr(v, "name", v))
def test_a_view_is_glue_of_at_most_25_lines(module, view):
    body = (
        view.body[1:]
        if isinstance(view.body[0], ast.Expr) and isinstance(view.body[0].value, ast.Constant)
        else view.body
    )
    lines = view.end_lineno - body[0].lineno + 1
    assert lines <= VIEW_LINES, f"{module}: {view.name} is {lines} lines: move the work into a function it calls"


def test_only_the_use_cases_open_a_vcc_client():
    # calls.vcc's factories, called by name (a Redis client's .get_client() is something else)
    opens = re.compile(r"(?<![.\w])(?<!def )(get_async_client|get_client|get_user_admin_client)\(")
    found = {
        str(path.relative_to(CALLS))
        for path in CALLS.rglob("*.py")
        if "vcc" not in path.relative_to(CALLS).parts[:1] and opens.search(path.read_text())
    }
    assert found, "no module opens a VCC client: the pattern above no longer matches the calling package"
    assert {Path(p).parts[0] for p in found} == {"calling"}, f"outside calls/calling/: {sorted(found)}"


def _first_party_modules():
    for package in FIRST_PARTY:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.relative_to(ROOT).parts:
                yield path


def test_the_first_party_modules_are_found():
    found = {str(path.relative_to(ROOT)) for path in _first_party_modules()}
    assert {
        "calls/models/calls.py",
        "calls/calling/placing.py",
        "vccsim/simulator.py",
        "vccweb/settings.py",
        "tests/conftest.py",
        "tests/browser/conftest.py",
        "bench/click_bench.py",
    } <= found
    assert not any("migrations" in name for name in found)


def test_no_first_party_module_is_over_600_lines():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in _first_party_modules()
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES
    }
    assert not too_long, f"over {MODULE_LINES} lines, split by area: {too_long}"
