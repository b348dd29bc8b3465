"""Input validation shared by every test and estimator: one place, precise messages.

Each helper raises :class:`corrlab.errors.PlanError` (a ``ValueError`` would do too, but
the house style is one hierarchy) naming the argument and what is allowed.
"""

from __future__ import annotations

import numbers

import numpy as np

from corrlab.errors import PlanError

ALTERNATIVES = ("two-sided", "greater", "less")


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


def same_length(**arrays) -> int:
    """Check that all named arrays have the same first dimension; return it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise PlanError(f"inputs must have the same length: {detail}")
    return next(iter(lengths.values()))


def check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise PlanError(f"alternative must be one of {', '.join(ALTERNATIVES)}; got {alternative!r}")
    return alternative


def check_confidence_level(level: float) -> float:
    if not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise PlanError(f"confidence_level must be in (0, 1); got {level!r}")
    return float(level)


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise PlanError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_rng(rng) -> np.random.Generator:
    """Accept None, an int seed, a SeedSequence or a Generator (as scipy does)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise PlanError(f"rng must be None, an int seed or a numpy Generator; got {type(rng).__name__}")
