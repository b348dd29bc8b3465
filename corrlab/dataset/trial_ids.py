"""Sets of trial ids as people write them: ``"3,7-9"`` in, ``"3,7-9"`` out.

Used where trials are named to people (a bad value's trials, ``--exclude-trials``, ids missing
from a dataset) by the reader, the analysis and the CLI alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from corrlab.errors import PlanError

_ITEM = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")
MAX_IDS = 10_000_000  # a range longer than any dataset is a typo, not a request


def parse_trial_ids(spec, *, name: str = "exclude_trials") -> list[int]:
    """Trial ids from ``"3,7-9"`` (commas, inclusive ranges), an int or an iterable of ints:
    sorted, without repeats. A malformed item raises :class:`PlanError` naming it."""
    if isinstance(spec, bool):
        raise PlanError(f"{name}: expected trial ids like 3,7-9; got {spec!r}")
    if isinstance(spec, (int, np.integer)):
        return [int(spec)]
    if isinstance(spec, str):
        ids: set[int] = set()
        items = spec.split(",")
        if not spec.strip():
            raise PlanError(f"{name}: no trial ids given (expected ids like 3,7-9)")
        for item in items:
            m = _ITEM.match(item)
            if not m:
                raise PlanError(f"{name}: {item.strip()!r} is not a trial id or a range (expected ids like 3,7-9)")
            lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
            if hi < lo:
                raise PlanError(f"{name}: range {item.strip()!r} runs backwards (write {hi}-{lo})")
            if hi - lo >= MAX_IDS:
                raise PlanError(f"{name}: range {item.strip()!r} is longer than {MAX_IDS} trials")
            ids.update(range(lo, hi + 1))
        return sorted(ids)
    try:
        values = list(spec)
    except TypeError:
        raise PlanError(f"{name}: expected trial ids like 3,7-9 or a list of ints; got {spec!r}") from None
    out = set()
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise PlanError(f"{name}: {v!r} is not a trial id (an integer)")
        out.add(int(v))
    return sorted(out)


def id_ranges(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted ids as inclusive runs of consecutive ids: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    arr = np.unique(np.fromiter((int(i) for i in ids), dtype=np.int64))
    if not arr.size:
        return []
    breaks = np.flatnonzero(np.diff(arr) != 1)
    starts = np.r_[arr[0], arr[breaks + 1]]
    ends = np.r_[arr[breaks], arr[-1]]
    return list(zip(starts.tolist(), ends.tolist()))


def format_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    """Inclusive ranges in the form :func:`parse_trial_ids` reads: [(3, 3), (7, 9)] -> ``"3,7-9"``
    (two in a row: ``"3,4"``)."""
    return ",".join(str(lo) if lo == hi else f"{lo},{hi}" if hi == lo + 1 else f"{lo}-{hi}" for lo, hi in ranges)


def format_trial_ids(ids: Iterable[int]) -> str:
    """The compact form :func:`parse_trial_ids` reads: [3, 7, 8, 9] -> ``"3,7-9"``."""
    return format_ranges(id_ranges(ids))


def missing_ids(ids: Iterable[int]) -> list[tuple[int, int]]:
    """The gaps between the smallest and the largest id, as inclusive ranges."""
    runs = id_ranges(ids)
    return [(hi + 1, lo2 - 1) for (_, hi), (lo2, _) in zip(runs, runs[1:])]


__all__ = ["format_ranges", "format_trial_ids", "id_ranges", "missing_ids", "parse_trial_ids"]
