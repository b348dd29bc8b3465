"""SCPI machinery: headers with optional nodes and numeric suffixes, parsed calls, keyword /
number / boolean arguments, and :class:`ScpiModel` (the error queue, ``*IDN?`` and the common
commands) for the SCPI instruments (generator, switch, digitizer).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Callable

from corrlab.instruments.sim.models.base import (
    Binary, CommandError, DialectModel, StatusMixin, Unrecognised, _illegal, _out_of_range, _to_float, split_args,
)
from corrlab.instruments.sim.state import BenchState


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool
    suffix: bool


_NODE_RE = re.compile(r"^(\[)?([A-Z*]+)([a-z]*)(#)?(\])?$")
_TOKEN_RE = re.compile(r"^([A-Za-z_]+)(\d*)$")


class Header:
    """A SCPI header pattern, nodes separated by spaces: ``"[SOURce#] FUNCtion ARBitrary"``.

    Upper case is the short form, the whole word the long form (either matches, any case);
    ``[...]`` is optional; ``#`` takes a numeric suffix (``SOUR2``), reported by short name.
    """

    def __init__(self, pattern: str):
        self.pattern = pattern
        nodes = []
        for tok in pattern.split():
            m = _NODE_RE.match(tok)
            if not m or bool(m.group(1)) != bool(m.group(5)):
                raise ValueError(f"bad SCPI header pattern {pattern!r}")
            nodes.append(_Node(m.group(2), (m.group(2) + m.group(3)).upper(), bool(m.group(1)), bool(m.group(4))))
        self.nodes = tuple(nodes)

    def match(self, tokens: list[tuple[str, str]]) -> dict[str, int] | None:
        return self._match(0, 0, tokens, {})

    def _match(self, i: int, j: int, tokens, sfx):
        if i == len(self.nodes):
            return sfx if j == len(tokens) else None
        node = self.nodes[i]
        if j < len(tokens):
            alpha, digits = tokens[j]
            if alpha in (node.short, node.long) and (not digits or node.suffix):
                found = dict(sfx)
                if node.suffix and digits:
                    found[node.short] = int(digits)
                r = self._match(i + 1, j + 1, tokens, found)
                if r is not None:
                    return r
        if node.optional:
            return self._match(i + 1, j, tokens, sfx)
        return None


@dataclass
class Call:
    """One parsed SCPI command."""

    text: str
    query: bool
    args: list[str]
    sfx: dict[str, int]

    def one(self, what: str) -> str:
        if not self.args:
            raise CommandError(-109, f"Missing parameter;{what}")
        if len(self.args) > 1:
            raise CommandError(-108, f"Parameter not allowed;{what} takes one value")
        return self.args[0]

    def none(self) -> None:
        if self.args and not self.query:
            raise CommandError(-108, "Parameter not allowed")


def _keyword(text: str, choices: tuple[str, ...], what: str) -> str:
    """Match character data against SCPI keywords (short or long form); return the short form."""
    up = text.strip().strip("'\"").upper()
    for choice in choices:
        short = "".join(c for c in choice if not c.islower())
        if up in (short, choice.upper()):
            return short
    raise _illegal(f"{what} {text!r}; allowed: {', '.join(choices)}")


def _number(text: str, what: str, lo: float, hi: float, default: float | None = None) -> float:
    up = text.strip().upper()
    if up in ("MIN", "MINIMUM"):
        return lo
    if up in ("MAX", "MAXIMUM"):
        return hi
    if up in ("DEF", "DEFAULT") and default is not None:
        return default
    value = _to_float(text, what)
    if not lo <= value <= hi:
        raise _out_of_range(f"{what} {value:g} not in [{lo:g}, {hi:g}]")
    return value


def _boolean(text: str, what: str) -> bool:
    up = text.strip().upper()
    if up in ("1", "ON"):
        return True
    if up in ("0", "OFF"):
        return False
    try:
        v = float(up)
    except ValueError:
        raise _illegal(f"{what} {text!r}; allowed: ON, OFF, 1, 0") from None
    if v in (0.0, 1.0):
        return bool(v)
    raise _illegal(f"{what} {text!r}; allowed: ON, OFF, 1, 0")


def _sci(value: float) -> str:
    """SCPI numeric reply in the Keysight style: ``+1.000000000000000E+03``."""
    if abs(value) == 9.9e37:  # INFinity: 16 digits of the binary double would say 9.899999999999999E+37
        return "+9.900000000000000E+37" if value > 0 else "-9.900000000000000E+37"
    return f"{value:+.15E}"


class ScpiModel(StatusMixin, DialectModel):
    """A SCPI instrument: common commands, the error queue, a table of header patterns."""

    options = "0"
    error_queue_size = 20

    def __init__(self, state: BenchState, world):
        super().__init__(state, world)
        self.error_queue: deque[tuple[int, str]] = deque()  # volatile, like the instrument's
        self._path: list[tuple[str, str]] = []  # the header path ';' continues from
        self.table: list[tuple[Header, Callable[[Call], str | Binary | None]]] = [
            (Header("SYSTem ERRor [NEXT]"), self._syst_err),
            (Header("SYSTem VERSion"), self._syst_version),
        ]
        self.build_table()

    def build_table(self) -> None:  # pragma: no cover - subclasses add their commands
        pass

    def add(self, pattern: str, handler: Callable[[Call], str | Binary | None]) -> None:
        self.table.append((Header(pattern), handler))

    # -- state --------------------------------------------------------------------------
    def _regs(self) -> dict[str, str]:
        return self.scpi_registers()

    def scpi_registers(self) -> dict[str, str]:  # pragma: no cover - subclasses
        raise NotImplementedError

    def record_error(self, err: CommandError, command: str) -> None:
        self.errors_served += 1
        queue = self.error_queue
        if len(queue) >= self.error_queue_size:
            queue.pop()
            queue.append((-350, "Queue overflow"))
        else:
            queue.append((err.code, err.message))
        self.status_or("ESR", err.esr_bit)

    # -- dispatch -------------------------------------------------------------------------
    def execute(self, command: str) -> str | Binary | None:
        parts = command.split(None, 1)
        header = parts[0]
        rest = parts[1] if len(parts) > 1 else ""
        query = header.endswith("?")
        head = header[:-1] if query else header
        if head.startswith("*"):
            return self.common(head.upper(), query, split_args(rest))
        rooted = head.startswith(":")
        tokens = []
        for tok in head.lstrip(":").split(":"):
            m = _TOKEN_RE.match(tok)
            if not m:
                raise Unrecognised()
            tokens.append((m.group(1).upper(), m.group(2)))
        # SCPI chaining: after ';' a header without a leading ':' continues at the level of
        # the previous command (``SOUR1:FREQ 1e3;VOLT 1`` sets SOUR1:VOLT); a leading ':'
        # or a new message starts at the root. A header that only makes sense at the root
        # is taken from there too (lenient, as instruments are with their own short forms).
        tries = [tokens] if rooted or not self._path else [self._path + tokens, tokens]
        for full in tries:
            for pattern, handler in self.table:
                sfx = pattern.match(full)
                if sfx is not None:
                    self._path = full[:-1]
                    return handler(Call(command, query, split_args(rest), sfx))
        raise Unrecognised()

    def begin_message(self) -> None:
        self._path: list[tuple[str, str]] = []

    def common(self, head: str, query: bool, args: list[str]) -> str | None:
        if head == "*IDN" and query:
            return self.idn
        if head == "*RST" and not query:
            self.reset()
            return None
        if head == "*CLS" and not query:
            self.error_queue.clear()
            self.status_set("ESR", 0)
            return None
        if head == "*OPC":
            if query:
                return self.operation_complete()
            self.status_or("ESR", 1)
            return None
        if head == "*WAI" and not query:
            return None
        if head == "*ESR" and query:
            return self.status_read_clear("ESR", [])
        if head in ("*ESE", "*SRE"):
            return self.status_enable(head[1:], query, args)
        if head == "*STB" and query:
            return str(self.status_byte())
        if head == "*OPT" and query:
            return self.options
        if head == "*TST" and query:
            return "0"
        if head == "*TRG" and not query:
            return self.trigger()
        raise Unrecognised()

    def status_byte(self) -> int:
        stb = 0
        if self.error_queue:
            stb |= 4  # EAV: error available
        if self.status_get("ESR") & self.status_get("ESE"):
            stb |= 32  # ESB
        if stb & self.status_get("SRE"):
            stb |= 64  # RQS/MSS
        return stb

    def operation_complete(self) -> str:
        return "1"

    def reset(self) -> None:  # pragma: no cover - subclasses
        raise NotImplementedError

    def trigger(self) -> str | None:
        raise Unrecognised()

    def _syst_err(self, call: Call) -> str:
        if not call.query:
            raise Unrecognised()
        if not self.error_queue:
            return '+0,"No error"'
        code, message = self.error_queue.popleft()
        return f'{code:+d},"{message}"'

    def _syst_version(self, call: Call) -> str:
        if not call.query:
            raise Unrecognised()
        return "1999.0"
