"""Safety rules that hold for the whole code base."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("corrlab", "instruments", "protocols", "daq", "analysis")


def _modules():
    for pkg in PACKAGES:
        yield from (ROOT / pkg).rglob("*.py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_pickle_eval_or_exec_anywhere():
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec"), f"{path}: {node.func.id}()"
        assert not {n for n in _imports(path) if n.split(".")[0] in ("pickle", "cloudpickle", "dill", "shelve")}, path


def test_analysis_imports_only_the_dataset_reader_from_daq_and_never_instruments_or_protocols():
    for path in (ROOT / "analysis").rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in ("instruments", "protocols"), f"{path} imports {name}"
            if top == "daq":
                assert name == "corrlab.dataset", f"{path} imports {name}"


def test_layers_point_one_way():
    for path in (ROOT / "instruments").rglob("*.py"):
        assert not {n.split(".")[0] for n in _imports(path)} & {"protocols", "daq", "analysis"}, path
    for path in (ROOT / "protocols").rglob("*.py"):
        assert not {n.split(".")[0] for n in _imports(path)} & {"daq", "analysis"}, path
