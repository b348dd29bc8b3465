"""The control step's schedule: conditions interleaved in seeded randomized blocks.

Each block holds the declared number of trials of every condition in a random order, so
slow drift reaches main and control trials alike and cannot masquerade as an effect.
Each side's setting is drawn independently at random per trial, and so is the ΔL code
(identical on both sides except in ``control:break_L``). The schedule is a pure function
of the protocol: a resumed run recomputes it and continues trial for trial.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from corrlab.protocols.config import Protocol


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


def _stream(seed: int, name: str, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32, zlib.crc32(name.encode()), *index])


def code_checksum(code: tuple[int, ...]) -> str:
    """CRC-32 of the code bits, as 8 hex digits (what the ΔL check compares)."""
    return f"{zlib.crc32(bytes(code)):08x}"


def make_schedule(protocol: Protocol) -> list[TrialSpec]:
    sch = protocol.schedule
    seed = protocol.seed
    bits = protocol.prepare.code_bits
    base: list[str] = []
    for name in sorted(sch.conditions):  # sorted: the order in the file must not matter
        base += [name] * sch.conditions[name]
    specs: list[TrialSpec] = []
    n_blocks = sch.trials // sch.block_size
    settings = _stream(seed, "settings").integers(0, 2, size=(sch.trials, 2))
    codes = _stream(seed, "codes").integers(0, 2, size=(sch.trials, 2, bits))
    for block in range(n_blocks):
        order = _stream(seed, "blocks", block).permutation(len(base))
        for j, k in enumerate(order):
            trial = block * sch.block_size + j
            condition = base[int(k)]
            code_a = tuple(int(b) for b in codes[trial, 0])
            code_b = code_a
            if condition == "control:break_L":
                code_b = tuple(int(b) for b in codes[trial, 1])
                if code_b == code_a:  # a coincidence (2**-bits): the control must break ΔL
                    code_b = code_b[:-1] + (1 - code_b[-1],)
            specs.append(TrialSpec(trial, block, condition, int(settings[trial, 0]), int(settings[trial, 1]), code_a, code_b))
    return specs
