"""Synthetic v1 datasets whose truth is known, written with the real DatasetWriter.

Each trial: AR(1) samples (lock-in-like autocorrelation) on both sides plus a per-trial
common value ``coupling * h`` (h standard normal) in ``main`` only; conditions interleaved
in blocks of six (three main, one of each control); settings random. ``offset`` shifts
both sides of every trial of the run alike (a run-level difference, not a dependence).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from corrlab.plan import load_plan, plan_sha256
from corrlab.dataset import DatasetWriter

CONDITIONS = ("main", "main", "main", "control:break_L", "control:perturb_C", "control:couple_env")


def write_dataset(root: Path, run_id: str, *, n_trials: int = 60, samples: int = 50, coupling: float = 0.0,
                  offset: float = 0.0, seed: int = 0, plan: dict | None = None, per_part: int = 30,
                  phi: float = 0.9) -> Path:
    """Write a complete dataset ``root/run_id``; ``plan`` is recorded as the protocol's [analysis]."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 1e4
    if plan is not None:  # recorded resolved, as the runner records it
        plan = load_plan(plan).to_json()
    protocol = {"analysis": plan} if plan is not None else {}
    w = DatasetWriter.create(root, run_id, protocol=protocol, bench={}, protocol_sha256="0" * 64,
                             plan_sha256=plan_sha256(plan) if plan is not None else None, rng_seed=seed,
                             instruments={})
    for i in range(n_trials):
        block, pos = divmod(i, 6)
        cond = CONDITIONS[(pos + block) % 6]
        eps = rng.standard_normal((2, samples))
        eps[:, 0] /= np.sqrt(1 - phi * phi)
        x = lfilter([np.sqrt(1 - phi * phi)], [1.0, -phi], eps, axis=1) + offset
        if cond == "main":
            x += coupling * rng.standard_normal()
        rec = {"trial": i, "condition": cond, "block": block, "setting_a": int(rng.integers(2)),
               "setting_b": int(rng.integers(2)), "f": True, "start_utc": "2026-11-23T00:00:00Z"}
        w.add_trial(rec, {"t": t, "x_a": x[0], "x_b": x[1]})
        if w.pending_trials >= per_part:
            w.commit()
    w.close("complete")
    return Path(root) / run_id
