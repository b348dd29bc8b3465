"""The base of every result object: frozen dataclasses that render for people and programs.

A result has ``statistic`` and ``pvalue`` where that makes sense, a
``confidence_interval()`` where an interval was computed, ``summary()`` (a few lines for a
person) and ``to_dict()`` (plain JSON types for a program; numpy scalars and arrays are
converted, NaN becomes ``None``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples, dataclasses, NaN and infinities to plain JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return value.to_dict()
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy
        return to_jsonable(value.tolist())
    if isinstance(value, float):  # JSON has no NaN or infinity: null (an unbounded interval end)
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return str(value)


@dataclasses.dataclass(frozen=True)
class ConfidenceInterval:
    """A two-sided (or one-sided, with an infinite end) interval and how it was made."""

    low: float
    high: float
    confidence_level: float = 0.95
    method: str = ""

    def __iter__(self):  # so that ``lo, hi = ci`` works as in scipy
        yield self.low
        yield self.high

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_list(self) -> list:
        return to_jsonable([self.low, self.high])


class Result:
    """Mixin for frozen result dataclasses (``@dataclass(frozen=True)``)."""

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name.startswith("_") or f.metadata.get("internal"):
                continue
            out[f.name] = to_jsonable(getattr(self, f.name))
        return out

    def confidence_interval(self) -> ConfidenceInterval:
        ci = getattr(self, "ci", None)
        if ci is None:
            raise AttributeError(f"{type(self).__name__} has no confidence interval")
        return ci

    def summary(self) -> str:
        """A few lines for a person; subclasses give their own where a plain list is poor."""
        lines = [type(self).__name__]
        for key, value in self.to_dict().items():
            if isinstance(value, float):
                value = f"{value:.6g}"
            elif isinstance(value, list) and len(value) > 6:
                continue
            lines.append(f"  {key}: {value}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
