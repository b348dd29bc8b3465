"""Shared test helpers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def demo_variant(path: Path, **values) -> Path:
    """Write protocols/demo.toml to ``path`` with top-level keys of its sections replaced.

    ``demo_variant(p, trials=12, samples=128)`` rewrites the lines ``trials = ...`` and
    ``samples = ...`` (each key must occur exactly once in the file).
    """
    text = (ROOT / "protocols/demo.toml").read_text()
    for key, value in values.items():
        literal = str(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, str) else str(value)
        text, n = re.subn(rf"(?m)^{re.escape(key)}\s*=\s*[^#\n]*", f"{key} = {literal} ", text)
        if n != 1:
            raise KeyError(f"demo.toml has {n} lines setting {key!r}")
    path.write_text(text)
    return path


@pytest.fixture
def demo_protocol(tmp_path):
    """A factory of demo protocol variants in the test's temp folder."""
    return lambda name="p.toml", **values: demo_variant(tmp_path / name, **values)
