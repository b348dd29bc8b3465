"""Datasets for ``analysis_speed.py``: single Parquet files written in row groups (bounded memory).

* :func:`write_quadratures`: one sample per trial, lock-in quadratures ``x_a, y_a, x_b, y_b``
  of a two-mode squeezed thermal state (r = 0.3, n = 0.2; vacuum variance 1) in ``main``,
  independent thermal noise of the same marginal variance in the controls; conditions
  interleaved in randomized blocks (three main, one of each of two controls), settings
  drawn per trial.
* :func:`write_series`: 64-sample AR(1) time series per trial (phi = 0.9), a per-trial common
  value of sd 0.3 in ``main`` only; same schedule and settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CONDITIONS = ("main", "main", "main", "control:break_L", "control:perturb_C")
CHUNK = 50_000  # trials per row group


def _labels(rng, n):
    blocks = -(-n // len(CONDITIONS))
    return np.concatenate([rng.permutation(CONDITIONS) for _ in range(blocks)])[:n]


def write_quadratures(path: Path, n_trials: int, seed: int = 0, r: float = 0.3, nth: float = 0.2) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    c, s = np.cosh(2 * r), np.sinh(2 * r)
    z = np.diag([1.0, -1.0])
    cov = (2 * nth + 1) * np.block([[c * np.eye(2), s * z], [s * z, c * np.eye(2)]])  # vacuum variance 1
    chol = np.linalg.cholesky(cov)
    cond = _labels(rng, n_trials)
    schema = None
    writer = None
    try:
        for lo in range(0, n_trials, CHUNK):
            hi = min(n_trials, lo + CHUNK)
            m = hi - lo
            q = rng.standard_normal((m, 4)) @ chol.T
            main = cond[lo:hi] == "main"
            q[~main] = rng.standard_normal((int((~main).sum()), 4)) * np.sqrt((2 * nth + 1) * c)
            table = pa.table({
                "trial": np.arange(lo, hi, dtype=np.int64), "condition": cond[lo:hi],
                "setting_a": rng.integers(0, 2, m).astype(np.int8), "setting_b": rng.integers(0, 2, m).astype(np.int8),
                "t": np.zeros(m), "x_a": q[:, 0], "y_a": q[:, 1], "x_b": q[:, 2], "y_b": q[:, 3]})
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path


def write_series(path: Path, n_trials: int, samples: int = 64, seed: int = 0, phi: float = 0.9) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    cond = _labels(rng, n_trials)
    per = max(1, CHUNK * 4 // samples)
    writer = None
    try:
        for lo in range(0, n_trials, per):
            hi = min(n_trials, lo + per)
            m = hi - lo
            eps = rng.standard_normal((2, m, samples))
            eps[:, :, 0] /= np.sqrt(1 - phi * phi)
            x = lfilter([np.sqrt(1 - phi * phi)], [1.0, -phi], eps, axis=2)
            common = np.where(cond[lo:hi] == "main", 0.3 * rng.standard_normal(m), 0.0)
            x += common[None, :, None]
            table = pa.table({
                "trial": np.repeat(np.arange(lo, hi, dtype=np.int64), samples),
                "condition": np.repeat(cond[lo:hi], samples),
                "setting_a": np.repeat(rng.integers(0, 2, m).astype(np.int8), samples),
                "setting_b": np.repeat(rng.integers(0, 2, m).astype(np.int8), samples),
                "t": np.tile(np.arange(samples) / 1e4, m), "x_a": x[0].ravel(), "x_b": x[1].ravel()})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path
