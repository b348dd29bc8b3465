"""The wheel ships what the checkout holds, under the one import name corrlab.

pyproject lists the packages explicitly (``packages = [...]``) and maps folders to them
(``package-dir``): a new subpackage that is not listed is left out of the wheel without any
error, and works in the editable install the tests run against. So the checkout is built
into a wheel here and the wheel is read as a zip file.

The build runs on a copy of the checkout (without .git, .venv, build/, *.egg-info, data/):
setuptools leaves ``build/`` and ``*.egg-info`` in the source tree, and a stale ``build/lib``
from an earlier build can put since-deleted modules back into a wheel. ``pip wheel`` uses
build isolation (setuptools from pyproject's build-system.requires, fetched from the package
index or pip's cache), as a fresh virtual environment made by ``.ci/run`` would; it takes a
few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "data", "*.egg-info", "__pycache__",
                                    "*.pyc", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".coverage")
DATA_FOLDERS = ("protocols", "instruments")  # their .toml files are shipped as package data


def _package_dir() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return dict(tomllib.load(fh)["tool"]["setuptools"]["package-dir"])


def _source_files(pattern: str):
    """(source path, path in the wheel) for files under the mapped folders (deepest mapping wins)."""
    out: dict[Path, str] = {}
    for pkg, folder in sorted(_package_dir().items(), key=lambda kv: len(Path(kv[1]).parts)):
        base = ROOT / folder
        for path in base.rglob(pattern):
            rel = path.relative_to(base)
            if any(p == "__pycache__" or p.startswith(".") for p in rel.parts):
                continue
            out[path] = str(PurePosixPath(*pkg.split("."), *rel.parts))
    return sorted(out.items())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    tmp = tmp_path_factory.mktemp("wheel")
    src, out = tmp / "src", tmp / "dist"
    shutil.copytree(ROOT, src, ignore=NOT_COPIED)
    start = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
        check=False, capture_output=True, text=True, timeout=900,
    )
    elapsed = time.monotonic() - start
    assert res.returncode == 0, f"pip wheel failed after {elapsed:.1f} s:\n{res.stdout}\n{res.stderr}"
    wheels = sorted(out.glob("corrlab-*.whl"))
    assert len(wheels) == 1, sorted(p.name for p in out.iterdir())
    print(f"wheel {wheels[0].name} built in {elapsed:.1f} s")
    with zipfile.ZipFile(wheels[0]) as zf:
        yield zf


def _dist_info(names) -> str:
    dirs = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
    assert len(dirs) == 1, dirs
    return dirs.pop()


def test_the_wheel_installs_one_top_level_name(wheel):
    names = wheel.namelist()
    info = _dist_info(names)
    if f"{info}/top_level.txt" in names:
        assert wheel.read(f"{info}/top_level.txt").decode().split() == ["corrlab"]
    record = [line.split(",")[0] for line in wheel.read(f"{info}/RECORD").decode().splitlines() if line]
    assert set(record) == set(names)
    strays = sorted(n for n in record if n.split("/")[0] not in ("corrlab", info))
    assert not strays, "files outside corrlab/ in the wheel:\n  " + "\n  ".join(strays)


def test_every_source_package_is_in_the_wheel(wheel):
    names = set(wheel.namelist())
    shipped = {str(PurePosixPath(n).parent).replace("/", ".") for n in names if n.endswith("/__init__.py")}
    expected = {w.removesuffix("/__init__.py").replace("/", ".") for _, w in _source_files("__init__.py")}
    assert {"corrlab", "corrlab.dataset", "corrlab.analysis", "corrlab.daq", "corrlab.instruments",
            "corrlab.protocols"} <= expected
    missing = sorted(expected - shipped)
    assert not missing, ("packages of the checkout missing from the wheel (add them to [tool.setuptools] packages "
                         "in pyproject.toml):\n  " + "\n  ".join(missing))


def test_every_source_module_is_in_the_wheel(wheel):
    """Also catches modules in a folder without __init__.py, which no `packages` entry ships."""
    names = set(wheel.namelist())
    missing = sorted(f"{src.relative_to(ROOT)} -> {w}" for src, w in _source_files("*.py") if w not in names)
    assert not missing, "modules of the checkout missing from the wheel:\n  " + "\n  ".join(missing)


def test_the_shipped_toml_files_are_in_the_wheel(wheel):
    names = set(wheel.namelist())
    expected = [(src, w) for src, w in _source_files("*.toml") if src.relative_to(ROOT).parts[0] in DATA_FOLDERS]
    assert any(src == ROOT / "protocols" / "demo.toml" for src, _ in expected)
    assert any(src == ROOT / "instruments" / "simulated.toml" for src, _ in expected)
    missing = sorted(f"{src.relative_to(ROOT)} -> {w}" for src, w in expected if w not in names)
    assert not missing, "protocol / bench files missing from the wheel:\n  " + "\n  ".join(missing)
    for src, w in expected:
        assert w.startswith(("corrlab/protocols/", "corrlab/instruments/")), w
        assert wheel.read(w) == src.read_bytes(), w


def test_the_live_views_page_and_scripts_are_in_the_wheel(wheel):
    """The live view serves its page from the package (offline): every file of daq/live/static."""
    names = set(wheel.namelist())
    static = sorted((ROOT / "daq/live/static").iterdir())
    assert {p.name for p in static} >= {"index.html", "live.js", "plot.js", "live.css"}
    for src in static:
        w = f"corrlab/daq/live/static/{src.name}"
        assert w in names and wheel.read(w) == src.read_bytes(), w


def test_the_console_script_target_is_in_the_wheel(wheel):
    names = set(wheel.namelist())
    info = _dist_info(names)
    text = wheel.read(f"{info}/entry_points.txt").decode()
    targets = [line.split("=", 1)[1].strip() for line in text.splitlines() if "=" in line]
    assert "corrlab.daq.cli:main" in targets, text
    for target in targets:
        module = target.split(":")[0].replace(".", "/")
        assert f"{module}.py" in names or f"{module}/__init__.py" in names, f"{target}: its module is not in the wheel"
