"""The fault options of a simulated bench file (``[faults.<role>]``): names, defaults, checks.

A simulated bench file may name faults for a role's server (``drop_after_commands = 3``...).
The bench file's schema (:mod:`corrlab.instruments.benchfile`) checks such a table with
:func:`check_fault_options`; the simulator's servers (:class:`corrlab.instruments.sim.server.Faults`,
a :class:`FaultOptions` that also injects them) use the same fields and the same checks. So the
bench file validates faults without importing the simulator, and the options have one
definition. Nothing here imports ``corrlab.instruments.sim``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from corrlab.errors import PlanError

FAULT_OPTIONS: tuple[str, ...] = (
    "drop_after_commands", "drop_times", "drop_reset",
    "delay_queries", "delay_pattern", "delay_s",
    "garble_queries", "garble_pattern",
    "refuse_s", "refuse_connections",
    "corrupt_blocks", "corrupt_value",
)
CORRUPT_VALUES: tuple[str, ...] = ("nan", "inf", "huge", "mixed")  # what a corrupted block's samples become


def _check_count(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PlanError(f"faults.{name} must be a non-negative integer; got {value!r}")
    return value


def _check_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
        raise PlanError(f"faults.{name} must be a number of seconds in [0, 3600]; got {value!r}")
    return float(value)


def _check_pattern(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PlanError(f"faults.{name} must be a regular expression string; got {value!r}")
    try:
        re.compile(value)
    except re.error as exc:
        raise PlanError(f"faults.{name}: invalid regular expression {value!r} ({exc})") from exc
    return value


@dataclass
class FaultOptions:
    """The options of one ``[faults.<role>]`` table (fields: :data:`FAULT_OPTIONS`), checked
    when made (:class:`~corrlab.errors.PlanError` naming the option)."""

    drop_after_commands: int | None = None  # serve this many more commands; close on the next
    drop_times: int = 1  # how many times the drop repeats (counting restarts each time)
    drop_reset: bool = False  # close with RST (SO_LINGER 0) instead of FIN
    delay_queries: int = 0  # delay the next K replies (or the next K matching delay_pattern)
    delay_pattern: str | None = None  # regex searched in the query; alone: every match
    delay_s: float = 1.0  # how late a delayed reply is
    garble_queries: int = 0  # replace the next K replies with garbage
    garble_pattern: str | None = None
    refuse_s: float = 0.0  # at start: the port does not listen for this long
    refuse_connections: int = 0  # reset the next n connections as soon as they are accepted
    corrupt_blocks: int = 0  # the next K binary blocks (``#<n><len>`` replies) carry garbage samples, header intact
    corrupt_value: str = "mixed"  # the garbage: nan, inf (+-inf), huge (+-3e38) or mixed (all of them)

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        _check_count("drop_after_commands", self.drop_after_commands, allow_none=True)
        if _check_count("drop_times", self.drop_times) < 1:
            raise PlanError(f"faults.drop_times must be at least 1; got {self.drop_times!r}")
        if not isinstance(self.drop_reset, bool):
            raise PlanError(f"faults.drop_reset must be true or false; got {self.drop_reset!r}")
        _check_count("delay_queries", self.delay_queries)
        _check_pattern("delay_pattern", self.delay_pattern)
        _check_seconds("delay_s", self.delay_s)
        _check_count("garble_queries", self.garble_queries)
        _check_pattern("garble_pattern", self.garble_pattern)
        _check_seconds("refuse_s", self.refuse_s)
        _check_count("refuse_connections", self.refuse_connections)
        _check_count("corrupt_blocks", self.corrupt_blocks)
        if self.corrupt_value not in CORRUPT_VALUES:
            raise PlanError(f"faults.corrupt_value must be one of {', '.join(CORRUPT_VALUES)}; got {self.corrupt_value!r}")

    def options(self) -> dict[str, Any]:
        """The current value of every option."""
        return {k: getattr(self, k) for k in FAULT_OPTIONS}


def check_fault_options(name: str, options: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> None:
    """Refuse an unknown option or a bad value in ``[faults.<name>]`` (one-line PlanError naming
    ``faults.<name>``); the values are checked set over ``current`` (default: the defaults)."""
    unknown = sorted(set(options) - set(FAULT_OPTIONS))
    if unknown:
        raise PlanError(f"faults.{name}: unknown option {unknown[0]!r}; options are {', '.join(FAULT_OPTIONS)}")
    try:
        FaultOptions(**{**(current or {}), **options})
    except PlanError as exc:
        raise PlanError(str(exc).replace("faults.", f"faults.{name}.", 1)) from exc


__all__ = ["CORRUPT_VALUES", "FAULT_OPTIONS", "FaultOptions", "check_fault_options"]
