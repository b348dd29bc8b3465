"""The control step's schedule: conditions interleaved in seeded randomized blocks.

Each block holds the declared number of trials of every condition in a random order, so
slow drift reaches main and control trials alike and cannot masquerade as an effect.
Each side's setting is drawn independently at random per trial, and so is the ΔL code
(identical on both sides except in ``control:break_L``). The schedule is a pure function
of the protocol: a resumed run recomputes it and continues trial for trial.

The generator itself is :func:`corrlab.schedule.schedule_arrays` (core, plain values), so the
analysis can recompute a dataset's schedule from its manifest without importing the protocols.
"""

from __future__ import annotations

from dataclasses import dataclass

from corrlab.protocols.config import Protocol

from corrlab.schedule import code_checksum, schedule_arrays

__all__ = ["TrialSpec", "code_checksum", "make_schedule"]


@dataclass(frozen=True)
class TrialSpec:
    trial: int
    block: int
    condition: str
    setting_a: int
    setting_b: int
    code_a: tuple[int, ...]
    code_b: tuple[int, ...]

    @property
    def is_control(self) -> bool:
        return self.condition.startswith("control:")


def make_schedule(protocol: Protocol) -> list[TrialSpec]:
    sch = protocol.schedule
    arr = schedule_arrays(protocol.seed, sch.conditions, sch.trials, sch.block_size, protocol.prepare.code_bits)
    return [TrialSpec(t, b, c, sa, sb, tuple(ca), tuple(cb))
            for t, b, c, sa, sb, ca, cb in zip(arr.trial.tolist(), arr.block.tolist(), arr.condition.tolist(),
                                               arr.setting_a.tolist(), arr.setting_b.tolist(),
                                               arr.code_a.tolist(), arr.code_b.tolist())]
