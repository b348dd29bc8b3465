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


@pytest.fixture(scope="module")
def one_blas_thread():
    """One BLAS thread: these matrices are small, and on a shared machine OpenBLAS's spinning threads
    made a 361 x 361 eigvalsh 250x slower with 2 threads than with 1.

    threadpoolctl limits only the libraries already loaded: scipy (which brings its own OpenBLAS)
    is imported lazily by the module under test, so import it here first (without this the
    N = 64 exact negativity took 22 s instead of 1.5 s on a loaded machine).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    import scipy.linalg  # noqa: F401
    import scipy.linalg.lapack  # noqa: F401

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def world_bench(kind: str, **params):
    """The default simulated bench with another world (``kind``, its ``params``) and a fresh seed."""
    from corrlab.instruments.benchfile import bench_from_dict, load_bench

    data = load_bench().to_json()
    data["world"] = {"kind": kind, "seed": None, "params": params}
    return bench_from_dict(data)
