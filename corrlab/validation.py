"""Checks on input shared by the layers (one clear PlanError naming the argument): used by the
analysis and by the theory, which must not import each other."""

from __future__ import annotations

import numbers

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


def check_arrangement(arrangement) -> tuple[int, int]:
    """The CHSH setting pair with the minus sign (default ``(1, 1)``), as a tuple of two 0/1 ints."""
    if arrangement is None:
        return (1, 1)
    try:
        pair = tuple(int(v) for v in arrangement)
        if len(pair) != 2 or any(v not in (0, 1) for v in pair) or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in arrangement
        ):
            raise ValueError
    except (TypeError, ValueError) as exc:
        raise PlanError(
            f"arrangement must be the (setting_a, setting_b) pair with the minus sign, one of "
            f"(0, 0), (0, 1), (1, 0), (1, 1); got {arrangement!r}"
        ) from exc
    return pair
