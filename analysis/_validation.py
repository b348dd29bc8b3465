"""Input validation shared by every test and estimator: one place, precise messages.

Each helper raises :class:`corrlab.errors.PlanError` (a ``ValueError`` would do too, but
the house style is one hierarchy) naming the argument and what is allowed.
"""

from __future__ import annotations

import numbers

import numpy as np

from corrlab.errors import PlanError
from corrlab.validation import as_float_array  # noqa: F401  (re-exported for the analysis modules)

ALTERNATIVES = ("two-sided", "greater", "less")


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


def check_choice(value, name: str, choices) -> str:
    """``value`` must be one of ``choices`` (strings); the message lists them."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise PlanError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def as_observations(x, name: str, *, min_size: int = 2) -> np.ndarray:
    """Trial-level observations as a finite float64 array of shape ``(n, d)``.

    A 1-D input of length ``n`` becomes ``(n, 1)``; a 2-D input is one row per observation
    (e.g. a quadrature pair per trial gives ``(n_trials, 2)``).
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{name} must be numeric, got {type(x).__name__}") from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise PlanError(f"{name} must be 1-D (n,) or 2-D (n, d), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise PlanError(f"{name} must have at least one column, got shape {arr.shape}")
    return as_float_array(arr, name, ndim=2, min_size=min_size)


def as_series_list(x, name: str, *, min_length: int = 2) -> list:
    """Sample-level data: a 2-D array ``(n_trials, n_samples)`` or a sequence of 1-D arrays.

    Returns a list of finite float64 1-D arrays, one per trial, each at least
    ``min_length`` long.
    """
    if isinstance(x, np.ndarray) and x.ndim == 2:
        rows = list(x)
    elif isinstance(x, np.ndarray):
        raise PlanError(f"{name} must be 2-D (n_trials, n_samples) or a list of 1-D arrays, "
                        f"got shape {x.shape}")
    else:
        try:
            rows = list(x)
        except TypeError as exc:
            raise PlanError(f"{name} must be 2-D (n_trials, n_samples) or a list of 1-D arrays, "
                            f"got {type(x).__name__}") from exc
    if not rows:
        raise PlanError(f"{name} has no trials")
    out = []
    for i, row in enumerate(rows):
        arr = as_float_array(row, f"{name}[{i}]", ndim=1, min_size=min_length)
        out.append(arr)
    return out


def as_group_codes(labels, name: str, n: int, *, min_group_size: int = 1) -> np.ndarray:
    """Integer codes ``0..g-1`` for a per-observation label array of length ``n``.

    ``None`` means one group. Each group must have at least ``min_group_size`` members.
    """
    if labels is None:
        return np.zeros(n, dtype=np.intp)
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise PlanError(f"{name} must be 1-D with one entry per trial, got shape {arr.shape}")
    if len(arr) != n:
        raise PlanError(f"{name} has {len(arr)} entries for {n} trials")
    _, codes, counts = np.unique(arr, return_inverse=True, return_counts=True)
    if counts.min() < min_group_size:
        small = _[int(np.argmin(counts))]
        raise PlanError(f"{name}: group {small!r} has {int(counts.min())} member(s); "
                        f"each needs at least {min_group_size}")
    return codes.astype(np.intp).reshape(-1)
