"""The bench scripts are run by hand, rarely: a rename elsewhere must not leave one broken until the day it is run."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

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
