"""Checks on numeric input shared by the layers (one clear PlanError naming the argument)."""

from __future__ import annotations

import numpy as np

from corrlab.errors import PlanError


def as_float_array(x, name: str, *, ndim: int | None = 1, min_size: int = 1) -> np.ndarray:
    """``x`` as a finite float64 array of the given dimension and at least ``min_size`` rows."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{name} must be numeric, got {type(x).__name__}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise PlanError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    n = arr.shape[0] if arr.ndim else 0
    if n < min_size:
        raise PlanError(f"{name} needs at least {min_size} values, got {n}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).any(axis=1))[0])
        raise PlanError(f"{name} has a non-finite value at row {bad}")
    return arr
