"""The trial schedule as a pure function of plain values: seed, conditions, trials, block size, code bits.

Every layer may need it: the protocols run it (:func:`corrlab.protocols.schedule.make_schedule`),
the analysis recomputes it from a dataset's manifest to check that the conditions, blocks and
settings in the data are the ones the recorded seed produces (:mod:`corrlab.analysis.design`),
and the analysis may not import the protocols. So the generator lives here, in the core, and
takes no protocol object.

Each block holds ``conditions[name]`` trials of every condition in a random order (the names
sorted first, so the order in a file does not matter); each side's setting is drawn
independently per trial, and so is the ΔL code, identical on both sides except in
``control:break_L``, where side B draws its own (one bit flipped if it happens to equal A's).
Each quantity has its own random stream, derived from the seed and the stream's name (and the
block for the orders), so the conditions and settings do not depend on ``code_bits``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

BREAK_L = "control:break_L"  # the one condition whose codes differ between the sides


def _stream(seed: int, name: str, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32, zlib.crc32(name.encode()), *index])


def code_checksum(code) -> str:
    """CRC-32 of the code bits, as 8 hex digits (what the ΔL check compares and records)."""
    return f"{zlib.crc32(bytes(int(b) for b in code)):08x}"


@dataclass(frozen=True, eq=False)
class ScheduleArrays:
    """One entry per trial, in trial order (``trial[i] == i``)."""

    trial: np.ndarray  # int64
    block: np.ndarray  # int64
    condition: np.ndarray  # object (str)
    setting_a: np.ndarray  # int64, 0 or 1
    setting_b: np.ndarray  # int64, 0 or 1
    code_a: np.ndarray  # uint8, (trials, code_bits)
    code_b: np.ndarray  # uint8, (trials, code_bits)

    def __len__(self) -> int:
        return len(self.trial)

    def code_checksums(self, side: str, rows=None) -> list[str]:
        """:func:`code_checksum` of side ``"a"`` or ``"b"``'s code, for ``rows`` (default: every trial)."""
        codes = {"a": self.code_a, "b": self.code_b}[side]
        codes = codes if rows is None else codes[rows]
        return [f"{zlib.crc32(row.tobytes()):08x}" for row in codes]


def _check(seed, conditions, trials, block_size, code_bits) -> None:
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(seed) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64); got {seed!r}")
    for name, v, low in (("trials", trials, 1), ("block_size", block_size, 1), ("code_bits", code_bits, 1)):
        if not is_int(v) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {v!r}")
    if not isinstance(conditions, Mapping) or not conditions:
        raise ValueError(f"conditions must map each condition to its trials per block; got {conditions!r}")
    for name, count in conditions.items():
        if not isinstance(name, str) or not is_int(count) or count < 1:
            raise ValueError(f"condition {name!r}: trials per block must be an integer >= 1; got {count!r}")
    per_block = sum(int(c) for c in conditions.values())
    if per_block != block_size:
        raise ValueError(f"conditions add up to {per_block} trials per block, block_size is {block_size}")
    if trials % block_size:
        raise ValueError(f"trials ({trials}) must be a multiple of block_size ({block_size})")


def schedule_arrays(seed: int, conditions: Mapping[str, int], trials: int, block_size: int,
                    code_bits: int) -> ScheduleArrays:
    """The schedule the seed produces (see the module docstring); ``ValueError`` on inconsistent inputs.

    ``conditions``: trials of each condition per block (they add up to ``block_size``);
    ``trials``: a multiple of ``block_size``.
    """
    _check(seed, conditions, trials, block_size, code_bits)
    seed, trials, block_size, code_bits = int(seed), int(trials), int(block_size), int(code_bits)
    base: list[str] = []
    for name in sorted(conditions):  # sorted: the order in the file must not matter
        base += [name] * int(conditions[name])
    base_arr = np.array(base, dtype=object)
    n_blocks = trials // block_size
    # drawn as int64 exactly as before the move (the dtype is part of the stream)
    settings = _stream(seed, "settings").integers(0, 2, size=(trials, 2))
    codes = _stream(seed, "codes").integers(0, 2, size=(trials, 2, code_bits))
    condition = np.empty(trials, dtype=object)
    for block in range(n_blocks):
        order = _stream(seed, "blocks", block).permutation(len(base))
        condition[block * block_size:(block + 1) * block_size] = base_arr[order]
    code_a = codes[:, 0].astype(np.uint8)
    code_b = code_a.copy()
    broken = condition == BREAK_L
    code_b[broken] = codes[broken, 1]
    same = broken & (code_b == code_a).all(axis=1)  # a coincidence (2**-bits): the control must break ΔL
    code_b[same, -1] = 1 - code_b[same, -1]
    trial = np.arange(trials, dtype=np.int64)
    return ScheduleArrays(trial, trial // block_size, condition, settings[:, 0].astype(np.int64),
                          settings[:, 1].astype(np.int64), code_a, code_b)
