"""Code hygiene: one output channel in library code, no silently dropped registry modules, no notes to the team."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from fsc_clip.registry import Registry

SRC = Path(__file__).resolve().parents[1] / "src" / "fsc_clip"
CLI = SRC / "cli"


def _library_files() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if CLI not in p.parents]


def test_library_code_does_not_print():
    """Library modules log (``logging.getLogger(__name__)``); only the CLI modules print results."""
    offenders = []
    for path in _library_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
    assert not offenders, f"print() in library code (use logging): {offenders}"


NOTE = re.compile(r"\b(TODO|XXX|WIP|FIXME|HACK)\b")


def test_no_notes_to_the_team_in_comments():
    """Comments explain the code; open work belongs in the issue tracker."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
        for tok in tokens:
            if tok.type == tokenize.COMMENT and NOTE.search(tok.string):
                found.append(f"{path.relative_to(SRC.parent)}:{tok.start[0]}: {tok.string.strip()}")
    assert not found, found


def test_a_lazy_module_that_fails_to_import_is_an_error_at_every_lookup():
    reg: Registry = Registry("thing", lazy_modules=("fsc_clip.no_such_module_for_the_test",))
    for _ in range(2):  # not only the first time: the registry never answers without the module
        with pytest.raises(ModuleNotFoundError):
            reg.names()
        with pytest.raises(ModuleNotFoundError):
            reg.get("x")


def test_every_benchmark_family_module_is_loaded():
    """A family listed in the benchmark registry but missing from the package is an error, not a silent drop."""
    from fsc_clip.evaluation.benchmarks import _FAMILIES, BENCHMARKS

    assert BENCHMARKS._lazy_modules == [f"fsc_clip.evaluation.benchmarks.{m}" for m in _FAMILIES]
    assert BENCHMARKS.names()
    for module in _FAMILIES:
        assert (SRC / "evaluation" / "benchmarks" / f"{module}.py").is_file(), module


def test_registry_snapshot_and_restore_report_changes():
    reg: Registry = Registry("thing")
    reg.register("a", 1)
    snap = reg.snapshot()
    reg.register("b", 2)
    reg.register("a", 3, override=True)
    assert reg.restore(snap) == ["a", "b"]
    assert reg.names() == ["a"] and reg.get("a") == 1
    assert reg.restore(reg.snapshot()) == []
