"""What a plan yields: small descriptions of actions that the one runner executes.

A plan is a generator. It yields messages; the runner executes each and sends back the
result (the value a role's verb returned, or ``None``). So a protocol is tested by
listing what it yields, with a fake that answers the calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Call:
    """Call ``verb`` on the bench role ``role``; the reply is what the verb returns."""

    role: str
    verb: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = [repr(a) if not isinstance(a, (list, tuple)) or len(a) < 6 else f"<{len(a)} values>" for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Call({self.role}.{self.verb}({', '.join(parts)}))"


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` of wall time (on a real bench, things take time)."""

    seconds: float


@dataclass(frozen=True)
class Step:
    """A step starts: the runner shows it on the progress bar."""

    name: str
    trial: int


@dataclass(frozen=True)
class StepDone:
    """A step ended: the runner journals it (step, trial, outcome, message, data)."""

    name: str
    trial: int
    outcome: str  # "ok" | "fail" | "info"
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Monitor:
    """Read a monitored value; the runner's suspenders may pause here until it is in band.

    The runner answers with the reading (after any suspension) and journals suspensions.
    """

    role: str
    verb: str
    low: float
    high: float
    name: str = ""
    settle_s: float = 0.0  # back in band this long before measurement resumes
    poll_s: float = 0.05
    max_wait_s: float = 600.0  # past this the run stops as interrupted
