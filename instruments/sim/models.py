"""Dialect models: each simulated instrument's command language, over the shared bench state.

A model turns one message (a line without its terminator) into the bytes to send back::

    model.handle("SNAP? 1,2")  ->  [b"1.000000e-03,-2.000000e-03\\n"]

Conventions common to every model, as the real instruments behave with the unmodified
pymeasure 0.16 drivers:

* A message is split on ``;`` outside quotes; empty fragments (the SR830 driver sends
  ``AUXV1,1.500000;``) are ignored. Replies of several queries in one message are joined
  with ``;`` and end with one terminator (``terminator``: ``\\n``, LakeShore ``\\r\\n``).
  Binary replies (SR830 ``TRCB?``, digitizer blocks) go out as produced.
* Settings live in the :class:`~corrlab.instruments.sim.state.BenchState` (``registers`` dicts for
  the settings the physics does not need), so a getter returns what a setter stored, also
  across reconnects. Measured values come from the World.
* An unknown command or query is never answered and never silent: it is appended to
  ``model.unrecognised``, logged (warning, logger ``corrlab.instruments.sim.models``) and
  reported the way the instrument reports it: SCPI models queue ``-113,"Undefined
  header"`` for ``SYST:ERR?``; the SR830 and the LakeShore set the command-error bit
  (CME, 32) of ``*ESR?``; the ESP300 queues error 6 (COMMAND DOES NOT EXIST) for ``TE?``.
  A client that sends an unknown *query* waits for its timeout, as with the real unit.
* A bad parameter is refused (the setting keeps its value) and reported: SCPI ``-222``
  (out of range), ``-224`` (illegal value), ``-104`` (data type), ``-109`` (missing);
  SR830 / LakeShore execution-error bit (EXE, 16) of ``*ESR?``; ESP300 error 7.

Model specifics (what is simulated and what is not) are in each class's docstring.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from corrlab.errors import PlanError
from corrlab.instruments.sim.state import BenchState, GeneratorChannelState, LockinState

log = logging.getLogger("corrlab.instruments.sim.models")


# ===================================================================== shared machinery


class Binary:
    """A reply sent as raw bytes (no terminator added): a list of buffers."""

    __slots__ = ("parts",)

    def __init__(self, *parts: bytes | memoryview):
        self.parts = parts


class CommandError(Exception):
    """A command the instrument refuses. ``code`` follows SCPI (-1xx command, -2xx execution,
    -3xx device, -4xx query) or the instrument's own numbering."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{code},{message}")
        self.code = code
        self.message = message

    @property
    def esr_bit(self) -> int:
        """The IEEE 488.2 standard event status bit this error sets."""
        if -199 <= self.code <= -100:
            return 32  # CME
        if -299 <= self.code <= -200:
            return 16  # EXE
        if -499 <= self.code <= -400:
            return 4  # QYE
        return 8  # DDE


class Unrecognised(CommandError):
    def __init__(self, code: int = -113, message: str = "Undefined header"):
        super().__init__(code, message)


def _bad_data(what: str) -> CommandError:
    return CommandError(-104, f"Data type error;{what}")


def _out_of_range(what: str) -> CommandError:
    return CommandError(-222, f"Data out of range;{what}")


def _illegal(what: str) -> CommandError:
    return CommandError(-224, f"Illegal parameter value;{what}")


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if "'" not in text and '"' not in text:
        return text.split(sep)
    out, cur, quote = [], [], ""
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def split_commands(message: str) -> list[str]:
    """Split a message into commands on ``;`` outside quotes; drop empty fragments."""
    return [c.strip() for c in _split_outside_quotes(message, ";") if c.strip()]


def split_args(text: str) -> list[str]:
    """Split a parameter list on commas outside quotes (``""`` gives no parameters)."""
    text = text.strip()
    if not text:
        return []
    return [a.strip() for a in _split_outside_quotes(text, ",")]


def registers_of(obj: Any) -> dict[str, str]:
    """The ``registers`` dict of a state object (settings the physics does not need)."""
    return obj.registers


def reset_dataclass(obj: Any, *, keep: tuple[str, ...] = ()) -> None:
    """Put every field of a dataclass instance back to its default (``*RST``)."""
    fresh = type(obj)()
    for f in dataclasses.fields(obj):
        if f.name not in keep:
            setattr(obj, f.name, getattr(fresh, f.name))


def _to_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad_data(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _bad_data(f"{what} {text!r} is not finite")
    return value


def _to_int(text: str, what: str) -> int:
    value = _to_float(text, what)
    if not value.is_integer():
        raise _bad_data(f"{what} {text!r} is not an integer")
    return int(value)


class DialectModel:
    """Base of every model: splitting, reply framing, the record of unknown commands."""

    name = ""
    terminator = b"\n"
    idn = ""

    def __init__(self, state: BenchState, world):
        if world is not None and getattr(world, "state", state) is not state:
            raise PlanError(f"{type(self).__name__}: the world must drive the same BenchState as the model")
        self.state = state
        self.world = world
        self.unrecognised: deque[str] = deque(maxlen=500)  # for developers and tests
        self.errors_served = 0

    # -- the server's entry point -----------------------------------------------------------
    def handle(self, message: str) -> list[bytes | memoryview]:
        out: list[bytes | memoryview] = []
        text: list[str] = []
        with self.state.lock:
            for command in split_commands(message):
                try:
                    reply = self.execute(command)
                except Unrecognised as err:
                    self.unrecognised.append(command)
                    log.warning("%s: unrecognised %s %r (%s)", self.name,
                                "query" if "?" in command else "command", command, err.message)
                    self.record_error(err, command)
                    continue
                except CommandError as err:
                    log.info("%s: refused %r: %s", self.name, command, err)
                    self.record_error(err, command)
                    continue
                if reply is None:
                    continue
                if isinstance(reply, Binary):
                    if text:
                        out.append(";".join(text).encode("ascii") + self.terminator)
                        text = []
                    out.extend(reply.parts)
                else:
                    text.append(reply)
        if text:
            out.append(";".join(text).encode("ascii") + self.terminator)
        return out

    def execute(self, command: str) -> str | Binary | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def record_error(self, err: CommandError, command: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


# ===================================================================== IEEE 488.2 status


class StatusMixin:
    """``*ESR?``, ``*ESE``, ``*SRE``, ``*CLS`` over an int-valued register store."""

    def _regs(self) -> dict[str, str]:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def status_get(self, name: str) -> int:
        return int(self._regs().get(name, "0"))

    def status_set(self, name: str, value: int) -> None:
        self._regs()[name] = str(int(value))

    def status_or(self, name: str, bits: int) -> None:
        self.status_set(name, self.status_get(name) | bits)

    def status_read_clear(self, name: str, args: list[str]) -> str:
        """Read a latched event register (whole, or one bit); reading clears what was read."""
        value = self.status_get(name)
        if args:
            bit = _to_int(args[0], "bit")
            if not 0 <= bit <= 7:
                raise _out_of_range(f"bit {bit}")
            self.status_set(name, value & ~(1 << bit))
            return str((value >> bit) & 1)
        self.status_set(name, 0)
        return str(value)

    def status_enable(self, name: str, query: bool, args: list[str]) -> str | None:
        """An enable register: ``X value``, ``X bit,value``, ``X?`` or ``X? bit``."""
        value = self.status_get(name)
        if query:
            if args:
                bit = _to_int(args[0], "bit")
                if not 0 <= bit <= 7:
                    raise _out_of_range(f"bit {bit}")
                return str((value >> bit) & 1)
            return str(value)
        if len(args) == 1:
            v = _to_int(args[0], name)
            if not 0 <= v <= 255:
                raise _out_of_range(f"{name} {v}")
            self.status_set(name, v)
        elif len(args) == 2:
            bit, v = _to_int(args[0], "bit"), _to_int(args[1], "value")
            if not 0 <= bit <= 7 or v not in (0, 1):
                raise _out_of_range(f"{name} {bit},{v}")
            self.status_set(name, (value | (1 << bit)) if v else (value & ~(1 << bit)))
        else:
            raise CommandError(-109, "Missing parameter")
        return None


# ===================================================================== SCPI machinery


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
    return f"{value:+.15E}"


class ScpiModel(StatusMixin, DialectModel):
    """A SCPI instrument: common commands, the error queue, a table of header patterns."""

    options = "0"
    error_queue_size = 20

    def __init__(self, state: BenchState, world):
        super().__init__(state, world)
        self.error_queue: deque[tuple[int, str]] = deque()  # volatile, like the instrument's
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
        tokens = []
        for tok in head.lstrip(":").split(":"):
            m = _TOKEN_RE.match(tok)
            if not m:
                raise Unrecognised()
            tokens.append((m.group(1).upper(), m.group(2)))
        for pattern, handler in self.table:
            sfx = pattern.match(tokens)
            if sfx is not None:
                return handler(Call(command, query, split_args(rest), sfx))
        raise Unrecognised()

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


# ===================================================================== SR830


SR830_SENSITIVITIES = (
    2e-9, 5e-9, 10e-9, 20e-9, 50e-9, 100e-9, 200e-9, 500e-9, 1e-6, 2e-6, 5e-6, 10e-6, 20e-6,
    50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1.0,
)
SR830_SAMPLE_RATES = (0.0625, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # index 14: trigger
SR830_BUFFER_POINTS = 16383

# integer settings kept in LockinState.registers: mnemonic -> (lowest, highest, *RST value)
_SR830_INT_REGISTERS = {
    "SYNC": (0, 1, 0), "ISRC": (0, 3, 0), "IGND": (0, 1, 0), "ICPL": (0, 1, 0), "ILIN": (0, 3, 0),
    "RSLP": (0, 2, 0), "RMOD": (0, 2, 1), "SRAT": (0, 14, 4), "SEND": (0, 1, 1), "TSTR": (0, 1, 0),
    "FAST": (0, 2, 0), "OUTX": (0, 1, 1), "OVRM": (0, 1, 1), "KCLK": (0, 1, 1), "ALRM": (0, 1, 1),
    "LOCL": (0, 2, 0),
}
# integer settings that are LockinState fields
_SR830_INT_FIELDS = {
    "SENS": ("sensitivity_index", 0, 26), "OFLT": ("time_constant_index", 0, 19),
    "OFSL": ("filter_slope_index", 0, 3), "FMOD": ("reference_source", 0, 1),
    "HARM": ("harmonic", 1, 19999),
}


def _wrap_phase(deg: float) -> float:
    """The SR830 wraps the phase into [-180, 180) (manual: PHAS 541.0 gives -179.00)."""
    return round(((deg + 180.0) % 360.0) - 180.0, 2)


class SR830Model(StatusMixin, DialectModel):
    """Stanford Research SR830 lock-in, side ``'a'`` or ``'b'`` (its own LockinState).

    Everything ``pymeasure.instruments.srs.SR830`` sends is served: outputs (``OUTP? i``,
    ``OUTR? i``, ``SNAP?`` with 2-6 codes, code 9 = reference frequency), every indexed
    setting, ``DDEF``/``AUXV``/``OAUX``/``OEXP``, auto functions, status registers
    (``LIAS?``/``ERRS?``/``*ESR?``/``*STB?`` with their enables; reading clears), setups
    (``SSET``/``RSET``), and the data buffer: ``SRAT`` (index, float-formatted index
    accepted), ``SEND``, ``TSTR``, ``FAST``, ``STRT``/``STRD``/``PAUS``/``REST``/``TRIG``,
    ``SPTS?``, ``TRCA?``, ``TRCB?`` (exactly 4*count little-endian float32 bytes and no
    terminator) and ``TRCL?`` (non-normalised format). In timed mode the buffer fills from
    the injected ``clock`` at the SRAT rate (first point at start; ``STRD`` starts 0.5 s
    late); in trigger mode (SRAT 14) one point per ``TRIG``. Each point is a World reading.

    Not simulated: the X/Y noise displays (DDEF j=2 reads 0), the offset/expand applied to
    the outputs (OEXP is stored only), aux inputs unless the world has ``aux_input(side, i)``.
    An output above the sensitivity's full scale sets LIAS bit 2 (output overload), which
    ``is_out_of_range()`` reads. ERRS stays 0: the SR830 reports hardware faults there.
    """

    name = "SR830"
    terminator = b"\n"

    def __init__(self, state: BenchState, world, side: str = "a", *, clock: Callable[[], float] = time.monotonic):
        super().__init__(state, world)
        if side not in state.lockins:
            raise PlanError(f"SR830 side must be one of {', '.join(state.lockins)}; got {side!r}")
        self.side = side
        self.idn = f"Stanford_Research_Systems,SR830,s/nSIM0{side.upper()},ver1.07"
        self.clock = clock
        self._buffer: list[deque] = [deque(maxlen=SR830_BUFFER_POINTS), deque(maxlen=SR830_BUFFER_POINTS)]
        self._running = False
        self._t0 = 0.0  # clock time of the first point of the current run
        self._taken = 0  # points taken in the current run (timed mode)

    @property
    def li(self) -> LockinState:
        return self.state.lockins[self.side]

    def _regs(self) -> dict[str, str]:
        return self.li.registers

    def reg(self, name: str) -> int:
        return int(self.li.registers.get(name, str(_SR830_INT_REGISTERS[name][2])))

    # -- errors ---------------------------------------------------------------------------
    def record_error(self, err: CommandError, command: str) -> None:
        self.errors_served += 1
        self.status_or("ESR", err.esr_bit)

    # -- parsing --------------------------------------------------------------------------
    _CMD = re.compile(r"^(\*[A-Za-z]{3}|[A-Za-z]{4})(\?)?\s*(.*)$")

    def execute(self, command: str) -> str | Binary | None:
        m = self._CMD.match(command)
        if not m:
            raise Unrecognised()
        name, query, args = m.group(1).upper(), bool(m.group(2)), split_args(m.group(3))
        handler = getattr(self, "_cmd_" + name.replace("*", "star_"), None)
        if handler is not None:
            return handler(query, args)
        if name in _SR830_INT_REGISTERS:
            return self._int_register(name, query, args)
        if name in _SR830_INT_FIELDS:
            return self._int_field(name, query, args)
        raise Unrecognised()

    @staticmethod
    def _arity(args: list[str], n: int) -> None:
        if len(args) != n:
            raise CommandError(-109 if len(args) < n else -108, f"expected {n} parameter(s)")

    def _int_register(self, name: str, query: bool, args: list[str]) -> str | None:
        lo, hi, _default = _SR830_INT_REGISTERS[name]
        if query:
            self._arity(args, 0)
            return str(self.reg(name))
        self._arity(args, 1)
        value = _to_int(args[0], name)
        if not lo <= value <= hi:
            raise _out_of_range(f"{name} {value} not in [{lo}, {hi}]")
        if name == "SRAT" and value != self.reg("SRAT"):
            self._buffer_reset()  # the SR830 resets the buffer when the rate changes
        self.li.registers[name] = str(value)
        return None

    def _int_field(self, name: str, query: bool, args: list[str]) -> str | None:
        attr, lo, hi = _SR830_INT_FIELDS[name]
        if query:
            self._arity(args, 0)
            return str(int(getattr(self.li, attr)))
        self._arity(args, 1)
        value = _to_int(args[0], name)
        if not lo <= value <= hi:
            raise _out_of_range(f"{name} {value} not in [{lo}, {hi}]")
        if name == "HARM" and value * self.li.frequency > 102_000:
            raise _out_of_range(f"harmonic {value} x {self.li.frequency:g} Hz exceeds 102 kHz")
        setattr(self.li, attr, value)
        return None

    # -- reference and output settings ---------------------------------------------------------
    def _cmd_FREQ(self, query, args):
        if query:
            self._arity(args, 0)
            return f"{self.li.frequency:.10g}"
        self._arity(args, 1)
        f = _to_float(args[0], "FREQ")
        if self.li.reference_source != 1:
            raise CommandError(-221, "Settings conflict;FREQ needs the internal reference (FMOD 1)")
        if not 0.001 <= f * self.li.harmonic <= 102_000 or f < 0.001:
            raise _out_of_range(f"FREQ {f:g} (x harmonic {self.li.harmonic}) not in [0.001, 102000]")
        self.li.frequency = float(f"{f:.5g}") if f >= 1 else round(f, 4)
        return None

    def _cmd_PHAS(self, query, args):
        if query:
            self._arity(args, 0)
            return f"{self.li.phase_deg:.2f}"
        self._arity(args, 1)
        p = _to_float(args[0], "PHAS")
        if not -360.0 <= p <= 729.99:
            raise _out_of_range(f"PHAS {p:g} not in [-360, 729.99]")
        self.li.phase_deg = _wrap_phase(p)
        return None

    def _cmd_SLVL(self, query, args):
        if query:
            self._arity(args, 0)
            return f"{self.li.sine_voltage:.3f}"
        self._arity(args, 1)
        v = _to_float(args[0], "SLVL")
        if not 0.004 <= v <= 5.0:
            raise _out_of_range(f"SLVL {v:g} not in [0.004, 5.000]")
        self.li.sine_voltage = round(round(v / 0.002) * 0.002, 3)
        return None

    def _cmd_DDEF(self, query, args):
        if query:
            self._arity(args, 1)
            ch = _to_int(args[0], "DDEF channel")
            if ch not in (1, 2):
                raise _out_of_range(f"DDEF channel {ch}")
            return self.li.registers.get(f"DDEF{ch}", "0,0")
        self._arity(args, 3)
        ch, j, k = (_to_int(a, "DDEF") for a in args)
        if ch not in (1, 2) or not 0 <= j <= 4 or not 0 <= k <= 2:
            raise _out_of_range(f"DDEF {ch},{j},{k}")
        self.li.registers[f"DDEF{ch}"] = f"{j},{k}"
        return None

    def _cmd_AUXV(self, query, args):
        if query:
            self._arity(args, 1)
            i = self._aux_index(args[0])
            return f"{float(self.li.registers.get(f'AUXV{i}', '0')):.3f}"
        self._arity(args, 2)
        i = self._aux_index(args[0])
        v = _to_float(args[1], "AUXV")
        if not -10.5 <= v <= 10.5:
            raise _out_of_range(f"AUXV {v:g} not in [-10.5, 10.5]")
        self.li.registers[f"AUXV{i}"] = repr(round(v, 3))
        return None

    @staticmethod
    def _aux_index(text: str) -> int:
        i = _to_int(text, "aux index")
        if not 1 <= i <= 4:
            raise _out_of_range(f"aux index {i} not in [1, 4]")
        return i

    def _cmd_OAUX(self, query, args):
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        return f"{self._aux_in(self._aux_index(args[0])):.4f}"

    def _aux_in(self, i: int) -> float:
        fn = getattr(self.world, "aux_input", None)
        return float(fn(self.side, i)) if fn is not None else 0.0

    def _cmd_OEXP(self, query, args):
        if query:
            self._arity(args, 1)
            i = self._xyr_index(args[0])
            return self.li.registers.get(f"OEXP{i}", "0.00,0")
        self._arity(args, 3)
        i = self._xyr_index(args[0])
        offset = _to_float(args[1], "OEXP offset")
        expand = _to_int(args[2], "OEXP expand")
        if not -105.0 <= offset <= 105.0 or expand not in (0, 1, 2):
            raise _out_of_range(f"OEXP {args[1]},{args[2]}")
        self.li.registers[f"OEXP{i}"] = f"{offset:.2f},{expand}"
        return None

    @staticmethod
    def _xyr_index(text: str) -> int:
        i = _to_int(text, "channel")
        if not 1 <= i <= 3:
            raise _out_of_range(f"channel {i} not in [1, 3] (X, Y, R)")
        return i

    # -- measured values ------------------------------------------------------------------------
    def _xy(self) -> tuple[float, float]:
        x, y = self.world.lockin_outputs(self.side)
        x, y = float(x), float(y)
        if math.hypot(x, y) > SR830_SENSITIVITIES[self.li.sensitivity_index]:
            self.status_or("LIAS", 4)  # output overload
        return x, y

    def _display(self, ch: int, x: float, y: float) -> float:
        j = int(self.li.registers.get(f"DDEF{ch}", "0,0").split(",")[0])
        if ch == 1:
            return (x, math.hypot(x, y), 0.0, self._aux_in(1), self._aux_in(2))[j]
        return (y, math.degrees(math.atan2(y, x)), 0.0, self._aux_in(3), self._aux_in(4))[j]

    def _snap_value(self, code: int, x: float, y: float) -> float:
        if code == 1:
            return x
        if code == 2:
            return y
        if code == 3:
            return math.hypot(x, y)
        if code == 4:
            return math.degrees(math.atan2(y, x))
        if 5 <= code <= 8:
            return self._aux_in(code - 4)
        if code == 9:
            return self.li.frequency
        return self._display(code - 9, x, y)

    def _cmd_OUTP(self, query, args):
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        code = _to_int(args[0], "OUTP")
        if not 1 <= code <= 4:
            raise _out_of_range(f"OUTP? {code} not in [1, 4]")
        x, y = self._xy()
        return f"{self._snap_value(code, x, y):.6e}"

    def _cmd_OUTR(self, query, args):
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        ch = _to_int(args[0], "OUTR")
        if ch not in (1, 2):
            raise _out_of_range(f"OUTR? {ch}")
        x, y = self._xy()
        return f"{self._display(ch, x, y):.6e}"

    def _cmd_SNAP(self, query, args):
        if not query:
            raise Unrecognised()
        if not 2 <= len(args) <= 6:
            raise CommandError(-109 if len(args) < 2 else -108, "SNAP? takes 2 to 6 parameters")
        codes = [_to_int(a, "SNAP code") for a in args]
        if any(not 1 <= c <= 11 for c in codes):
            raise _out_of_range(f"SNAP? codes {codes} not in [1, 11]")
        x, y = self._xy()  # one simultaneous reading
        return ",".join(f"{self._snap_value(c, x, y):.6e}" for c in codes)

    # -- auto functions ---------------------------------------------------------------------------
    def _no_args(self, query, args):
        if query:
            raise Unrecognised()
        self._arity(args, 0)

    def _cmd_AGAN(self, query, args):
        self._no_args(query, args)
        x, y = self.world.lockin_outputs(self.side)
        r = math.hypot(float(x), float(y))
        self.li.sensitivity_index = next(
            (i for i, s in enumerate(SR830_SENSITIVITIES) if s >= r), len(SR830_SENSITIVITIES) - 1
        )

    def _cmd_ARSV(self, query, args):
        self._no_args(query, args)

    def _cmd_APHS(self, query, args):
        self._no_args(query, args)
        x, y = self.world.lockin_outputs(self.side)
        self.li.phase_deg = _wrap_phase(self.li.phase_deg + math.degrees(math.atan2(float(y), float(x))))

    def _cmd_AOFF(self, query, args):
        if query:
            raise Unrecognised()
        self._arity(args, 1)
        i = self._xyr_index(args[0])
        x, y = self.world.lockin_outputs(self.side)
        value = (float(x), float(y), math.hypot(float(x), float(y)))[i - 1]
        pct = max(-105.0, min(105.0, 100.0 * value / SR830_SENSITIVITIES[self.li.sensitivity_index]))
        expand = self.li.registers.get(f"OEXP{i}", "0.00,0").split(",")[1]
        self.li.registers[f"OEXP{i}"] = f"{pct:.2f},{expand}"

    # -- status -------------------------------------------------------------------------------------
    def _cmd_LIAS(self, query, args):
        if not query:
            raise Unrecognised()
        self._xy()  # the overload bit reflects the present reading too
        return self.status_read_clear("LIAS", args)

    def _cmd_ERRS(self, query, args):
        if not query:
            raise Unrecognised()
        return self.status_read_clear("ERRS", args)

    def _cmd_LIAE(self, query, args):
        return self.status_enable("LIAE", query, args)

    def _cmd_ERRE(self, query, args):
        return self.status_enable("ERRE", query, args)

    def _cmd_star_ESE(self, query, args):
        return self.status_enable("ESE", query, args)

    def _cmd_star_SRE(self, query, args):
        return self.status_enable("SRE", query, args)

    def _cmd_star_ESR(self, query, args):
        if not query:
            raise Unrecognised()
        return self.status_read_clear("ESR", args)

    def _cmd_star_STB(self, query, args):
        if not query:
            raise Unrecognised()
        stb = 2  # IFC: no command in progress
        if not self._running:
            stb |= 1  # SCN: no scan in progress
        if self.status_get("ERRS") & self.status_get("ERRE"):
            stb |= 4
        if self.status_get("LIAS") & self.status_get("LIAE"):
            stb |= 8
        if self.status_get("ESR") & self.status_get("ESE"):
            stb |= 32
        if stb & self.status_get("SRE"):
            stb |= 64
        if args:
            bit = _to_int(args[0], "bit")
            return str((stb >> bit) & 1)
        return str(stb)

    def _cmd_star_PSC(self, query, args):
        if query:
            return self.li.registers.get("PSC", "1")
        self._arity(args, 1)
        v = _to_int(args[0], "*PSC")
        if v not in (0, 1):
            raise _out_of_range(f"*PSC {v}")
        self.li.registers["PSC"] = str(v)

    def _cmd_star_CLS(self, query, args):
        self._no_args(query, args)
        for name in ("ESR", "LIAS", "ERRS"):
            self.status_set(name, 0)

    def _cmd_star_IDN(self, query, args):
        if not query:
            raise Unrecognised()
        return self.idn

    def _cmd_star_RST(self, query, args):
        self._no_args(query, args)
        keep = {k: v for k, v in self.li.registers.items() if k.startswith("SETUP")}
        reset_dataclass(self.li)
        self.li.registers.update(keep)
        self._buffer_reset()

    # -- setups ---------------------------------------------------------------------------------------
    _SETUP_FIELDS = ("frequency", "phase_deg", "sine_voltage", "sensitivity_index", "time_constant_index",
                     "filter_slope_index", "reference_source", "harmonic")

    def _setup_index(self, query, args) -> int:
        if query:
            raise Unrecognised()
        self._arity(args, 1)
        i = _to_int(args[0], "setup")
        if not 1 <= i <= 9:
            raise _out_of_range(f"setup {i} not in [1, 9]")
        return i

    def _cmd_SSET(self, query, args):
        i = self._setup_index(query, args)
        fields = {f: getattr(self.li, f) for f in self._SETUP_FIELDS}
        regs = {k: v for k, v in self.li.registers.items() if not k.startswith("SETUP") and k not in
                ("ESR", "LIAS", "ERRS")}
        self.li.registers[f"SETUP{i}"] = repr((fields, regs))

    def _cmd_RSET(self, query, args):
        i = self._setup_index(query, args)
        saved = self.li.registers.get(f"SETUP{i}")
        if saved is None:
            raise CommandError(-221, f"Settings conflict;setup {i} was never saved")
        import ast

        fields, regs = ast.literal_eval(saved)
        for f, v in fields.items():
            setattr(self.li, f, v)
        self.li.registers.update(regs)

    # -- the data buffer ------------------------------------------------------------------------------
    def _buffer_reset(self) -> None:
        for b in self._buffer:
            b.clear()
        self._running = False
        self._taken = 0

    def _sample(self) -> None:
        if self.reg("SEND") == 0 and len(self._buffer[0]) >= SR830_BUFFER_POINTS:
            self._running = False  # one-shot: the buffer is full
            return
        x, y = self.world.lockin_outputs(self.side)
        x, y = float(x), float(y)
        self._buffer[0].append(self._display(1, x, y))
        self._buffer[1].append(self._display(2, x, y))
        self.status_or("LIAS", 64)  # data storage triggered

    def _catch_up(self) -> None:
        """Take the timed points that are due by now (timed mode only)."""
        srat = self.reg("SRAT")
        if not self._running or srat == 14:
            return
        elapsed = self.clock() - self._t0
        if elapsed < 0:
            return
        due = int(elapsed * SR830_SAMPLE_RATES[srat]) + 1
        todo = min(due - self._taken, SR830_BUFFER_POINTS)
        self._taken = due
        for _ in range(todo):
            self._sample()
            if not self._running:
                break

    def _start(self, delay: float) -> None:
        self._catch_up()
        self._running = True
        self._t0 = self.clock() + delay
        self._taken = 0

    def _cmd_STRT(self, query, args):
        self._no_args(query, args)
        self._start(0.0)

    def _cmd_STRD(self, query, args):
        self._no_args(query, args)
        self._start(0.5)  # the SR830 starts a delayed scan 0.5 s after STRD

    def _cmd_PAUS(self, query, args):
        self._no_args(query, args)
        self._catch_up()
        self._running = False

    def _cmd_REST(self, query, args):
        self._no_args(query, args)
        self._buffer_reset()

    def _cmd_TRIG(self, query, args):
        self._no_args(query, args)
        if not self._running and self.reg("TSTR") == 1:
            self._start(0.0)
            if self.reg("SRAT") != 14:
                return
        if self._running and self.reg("SRAT") == 14:
            self._sample()

    def _cmd_SPTS(self, query, args):
        if not query:
            raise Unrecognised()
        self._catch_up()
        return str(len(self._buffer[0]))

    def _trace_args(self, args) -> tuple[list[float], int, int]:
        self._arity(args, 3)
        ch, start, count = (_to_int(a, "trace") for a in args)
        self._catch_up()
        stored = len(self._buffer[0])
        if ch not in (1, 2) or start < 0 or count < 1 or start + count > stored:
            raise _out_of_range(f"trace {ch},{start},{count} with {stored} point(s) stored")
        data = list(self._buffer[ch - 1])[start : start + count]
        return data, start, count

    def _cmd_TRCA(self, query, args):
        if not query:
            raise Unrecognised()
        data, _, _ = self._trace_args(args)
        return ",".join(f"{v:.6e}" for v in data)

    def _cmd_TRCB(self, query, args):
        if not query:
            raise Unrecognised()
        data, _, count = self._trace_args(args)
        return Binary(struct.pack(f"<{count}f", *data))

    def _cmd_TRCL(self, query, args):
        if not query:
            raise Unrecognised()
        data, _, count = self._trace_args(args)
        out = bytearray()
        for v in data:
            if v == 0.0:
                out += struct.pack("<hh", 0, 124)
                continue
            mant, exp = math.frexp(v)  # v = mant * 2**exp, 0.5 <= |mant| < 1
            m = int(round(mant * 32768))
            if m == 32768 or m == -32768:
                m //= 2
                exp += 1
            out += struct.pack("<hh", m, exp + 109)  # v = m * 2**(e - 124)
        return Binary(bytes(out))


# ===================================================================== Agilent 33500

_SHAPES = ("SINusoid", "SQUare", "TRIangle", "RAMP", "PULSe", "PRBS", "NOISe", "ARB", "DC")
_ARB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,11}$")
_ARB_MIN_POINTS = 8
_ARB_MAX_POINTS = 65_536  # per waveform without the MEM option
_VOLATILE_POINTS = 1_048_576  # volatile memory per channel


class Agilent33500Model(ScpiModel):
    """Agilent/Keysight 33522 two-channel generator (channel 1 = side A, 2 = side B).

    Serves the instrument-level forms (``FUNC``, ``FREQ`` ... act on channel 1) and the
    channel forms (``SOUR{ch}:...``, ``OUTP{ch}``) of everything ``Agilent33500`` and
    ``Agilent33500Channel`` send: shape, frequency, amplitude (+unit, high/low levels),
    offset, phase, square/ramp/pulse parameters, output and load, burst state/mode/period/
    cycles, arb selection/advance/filter/sample rate, ``DATA:VOL:CLE``, ``DATA:ARB:DAC``
    (name, 8-65536 values in [-32767, 32767]) and ``DATA:ARB`` (floats in [-1, 1], stored as
    DAC values) into the channel's volatile memory, ``DATA:VOL:CAT?``, ``TRIG:SOUR``,
    ``OUTP:TRIG``, ``PHAS:SYNC``, ``DISP:TEXT``, ``SYST:BEEP``; ``*TRG`` counts a trigger
    and calls ``world.trigger()``; ``*OPC?`` answers 1 (``*WAI`` returns at once).

    Numbers are answered in the 33500 style (``+1.000000000000000E+03``); ``FUNC:ARB?``
    answers the quoted name as SCPI string data. Out-of-range values are refused with
    ``-222`` (the setting keeps its value). Not simulated: the real ``*TRG`` acts only with
    ``TRIG:SOUR BUS`` (here every ``*TRG`` reaches the world; the source is stored), and
    amplitude/offset interlocks.
    """

    name = "Agilent33500"
    terminator = b"\n"
    idn = "Agilent Technologies,33522A,SIM0000001,2.03-1.19-2.00-52-00"

    def scpi_registers(self) -> dict[str, str]:
        return self.state.generator.channels[1].registers

    def reset(self) -> None:
        for ch in self.state.generator.channels.values():
            reset_dataclass(ch, keep=("arb_data",))

    def trigger(self) -> None:
        self.state.generator.trigger_count += 1
        self.world.trigger()
        return None

    # -- helpers ----------------------------------------------------------------------------
    def ch(self, call: Call, node: str = "SOUR") -> GeneratorChannelState:
        n = call.sfx.get(node, 1)
        if n not in self.state.generator.channels:
            raise CommandError(-114, f"Header suffix out of range;channel {n}")
        return self.state.generator.channels[n]

    def field(self, attr: str, parse: Callable[[str], Any], fmt: Callable[[Any], str], node: str = "SOUR"):
        def handler(call: Call):
            c = self.ch(call, node)
            if call.query:
                return fmt(getattr(c, attr))
            setattr(c, attr, parse(call.one(attr)))
            return None

        return handler

    def register(self, key: str, default: str, parse: Callable[[str], str], fmt: Callable[[str], str] = str,
                 node: str = "SOUR"):
        def handler(call: Call):
            c = self.ch(call, node)
            if call.query:
                return fmt(c.registers.get(key, default))
            c.registers[key] = parse(call.one(key))
            return None

        return handler

    @staticmethod
    def num(what: str, lo: float, hi: float, default: float | None = None) -> Callable[[str], float]:
        return lambda text: _number(text, what, lo, hi, default)

    @staticmethod
    def num_reg(what: str, lo: float, hi: float, default: float | None = None) -> Callable[[str], str]:
        return lambda text: repr(_number(text, what, lo, hi, default))

    @staticmethod
    def kw(what: str, choices: tuple[str, ...]) -> Callable[[str], str]:
        return lambda text: _keyword(text, choices, what)

    @staticmethod
    def sci_reg(value: str) -> str:
        return _sci(float(value))

    # -- the table --------------------------------------------------------------------------
    def build_table(self) -> None:
        S = "[SOURce#] "
        bool_fmt = lambda v: "1" if v else "0"  # noqa: E731
        self.add(S + "FUNCtion", self.field("shape", self.kw("FUNC", _SHAPES), str))
        self.add(S + "FREQuency", self.field("frequency", self.num("FREQ", 1e-6, 30e6, 1e3), _sci))
        self.add(S + "VOLTage", self.field("amplitude", self.num("VOLT", 1e-3, 10.0, 0.1), _sci))
        self.add(S + "VOLTage UNIT", self.register("VOLT:UNIT", "VPP", self.kw("VOLT:UNIT", ("VPP", "VRMS", "DBM"))))
        self.add(S + "VOLTage OFFSet", self.field("offset", self.num("VOLT:OFFS", -5.0, 5.0, 0.0), _sci))
        self.add(S + "VOLTage HIGH", self._level(high=True))
        self.add(S + "VOLTage LOW", self._level(high=False))
        self.add(S + "PHASe", self.field("phase", self.num("PHAS", -360.0, 360.0, 0.0), _sci))
        self.add(S + "PHASe SYNChronize", self._phase_sync)
        self.add(S + "FUNCtion SQUare DCYCle",
                 self.register("FUNC:SQU:DCYC", "50.0", self.num_reg("FUNC:SQU:DCYC", 0.01, 99.99, 50.0), self.sci_reg))
        self.add(S + "FUNCtion RAMP SYMMetry",
                 self.register("FUNC:RAMP:SYMM", "100.0", self.num_reg("FUNC:RAMP:SYMM", 0.0, 100.0, 100.0), self.sci_reg))
        self.add(S + "FUNCtion PULSe PERiod", self._pulse_period)
        self.add(S + "FUNCtion PULSe HOLD",
                 self.register("FUNC:PULS:HOLD", "WIDT", self.kw("FUNC:PULS:HOLD", ("WIDTh", "DCYCle"))))
        self.add(S + "FUNCtion PULSe WIDTh",
                 self.register("FUNC:PULS:WIDT", "0.0001", self.num_reg("FUNC:PULS:WIDT", 16e-9, 1e6, 1e-4), self.sci_reg))
        self.add(S + "FUNCtion PULSe DCYCle",
                 self.register("FUNC:PULS:DCYC", "10.0", self.num_reg("FUNC:PULS:DCYC", 0.0, 100.0, 10.0), self.sci_reg))
        self.add(S + "FUNCtion PULSe TRANsition [BOTH]",
                 self.register("FUNC:PULS:TRAN", "1e-08", self.num_reg("FUNC:PULS:TRAN", 8.4e-9, 1e-6, 1e-8), self.sci_reg))
        self.add("OUTPut#", self.field("output", lambda t: _boolean(t, "OUTP"), bool_fmt, node="OUTP"))
        self.add("OUTPut# LOAD", self.register("OUTP:LOAD", "50.0", self._load, self._load_fmt, node="OUTP"))
        self.add("OUTPut TRIGger", self.register("OUTP:TRIG", "0", lambda t: "1" if _boolean(t, "OUTP:TRIG") else "0"))
        self.add(S + "BURSt STATe", self.field("burst_state", lambda t: _boolean(t, "BURS:STAT"), bool_fmt))
        self.add(S + "BURSt MODE", self.register("BURS:MODE", "TRIG", self.kw("BURS:MODE", ("TRIGgered", "GATed"))))
        self.add(S + "BURSt INTernal PERiod",
                 self.register("BURS:INT:PER", "0.01", self.num_reg("BURS:INT:PER", 1e-6, 8000.0, 0.01), self.sci_reg))
        self.add(S + "BURSt NCYCles", self.field("burst_ncycles", self._ncycles, lambda v: _sci(float(v))))
        self.add(S + "FUNCtion ARBitrary", self._arb_select)
        self.add(S + "FUNCtion ARBitrary ADVance",
                 self.register("FUNC:ARB:ADV", "SRAT", self.kw("FUNC:ARB:ADV", ("TRIGger", "SRATe"))))
        self.add(S + "FUNCtion ARBitrary FILTer",
                 self.register("FUNC:ARB:FILT", "NORM", self.kw("FUNC:ARB:FILT", ("NORMal", "STEP", "OFF"))))
        self.add(S + "FUNCtion ARBitrary SRATe",
                 self.register("FUNC:ARB:SRAT", "40000.0", self.num_reg("FUNC:ARB:SRAT", 1e-6, 250e6, 4e4), self.sci_reg))
        self.add(S + "DATA VOLatile CLEar", self._volatile_clear)
        self.add(S + "DATA VOLatile CATalog", self._volatile_catalog)
        self.add(S + "DATA ARBitrary DAC", lambda call: self._arb_upload(call, dac=True))
        self.add(S + "DATA ARBitrary", lambda call: self._arb_upload(call, dac=False))
        self.add("TRIGger# SOURce", self.register("TRIG:SOUR", "IMM",
                                                  self.kw("TRIG:SOUR", ("IMMediate", "EXTernal", "TIMer", "BUS")),
                                                  node="TRIG"))
        self.add("DISPlay TEXT", self._display_text)
        self.add("DISPlay TEXT CLEar", self._display_clear)
        self.add("SYSTem BEEPer [IMMediate]", self._beep)

    # -- special handlers ----------------------------------------------------------------------
    def _level(self, *, high: bool):
        def handler(call: Call):
            c = self.ch(call)
            hi_v, lo_v = c.offset + c.amplitude / 2, c.offset - c.amplitude / 2
            if call.query:
                return _sci(hi_v if high else lo_v)
            v = _number(call.one("VOLT:HIGH" if high else "VOLT:LOW"), "level", -5.0, 5.0)
            new_hi, new_lo = (v, lo_v) if high else (hi_v, v)
            if new_hi - new_lo < 1e-3:
                raise CommandError(-221, "Settings conflict;high level must exceed low level by 1 mV")
            c.amplitude, c.offset = new_hi - new_lo, (new_hi + new_lo) / 2
            return None

        return handler

    def _phase_sync(self, call: Call):
        call.none()
        if call.query:
            raise Unrecognised()
        for c in self.state.generator.channels.values():
            c.registers["PHAS:SYNC"] = str(int(c.registers.get("PHAS:SYNC", "0")) + 1)

    def _pulse_period(self, call: Call):
        c = self.ch(call)
        if call.query:
            return _sci(1.0 / c.frequency)
        c.frequency = 1.0 / _number(call.one("FUNC:PULS:PER"), "FUNC:PULS:PER", 33e-9, 1e6)
        return None

    @staticmethod
    def _load(text: str) -> str:
        up = text.strip().upper()
        if up in ("INF", "INFINITY"):
            return "9.9e+37"
        return repr(_number(text, "OUTP:LOAD", 1.0, 10_000.0, 50.0))

    @staticmethod
    def _load_fmt(value: str) -> str:
        return _sci(float(value))

    @staticmethod
    def _ncycles(text: str) -> int:
        value = _number(text, "BURS:NCYC", 1, 100_000_000, 1)
        if not float(value).is_integer():
            raise _bad_data(f"BURS:NCYC {text!r} is not an integer")
        return int(value)

    def _arb_select(self, call: Call):
        c = self.ch(call)
        if call.query:
            return f'"{c.arb_file}"'
        name = call.one("FUNC:ARB").strip().strip("'\"")
        for key in c.arb_data:
            if key.upper() == name.upper():
                c.arb_file = key
                return None
        raise _illegal(f"arb {name!r} is not in volatile memory ({', '.join(c.arb_data) or 'empty'})")

    def _volatile_clear(self, call: Call):
        if call.query:
            raise Unrecognised()
        call.none()
        c = self.ch(call)
        c.arb_data.clear()
        c.arb_file = ""

    def _volatile_catalog(self, call: Call):
        if not call.query:
            raise Unrecognised()
        return ",".join(f'"{n}"' for n in self.ch(call).arb_data) or '""'

    def _arb_upload(self, call: Call, *, dac: bool):
        if call.query:
            raise Unrecognised()
        c = self.ch(call)
        if len(call.args) < 2:
            raise CommandError(-109, "Missing parameter;DATA:ARB needs a name and values")
        name = call.args[0].strip("'\"")
        if not _ARB_NAME.match(name):
            raise _illegal(f"arb name {name!r} (a letter, then up to 11 letters, digits or _)")
        if any(k.upper() == name.upper() for k in c.arb_data):
            raise CommandError(-221, f"Settings conflict;arb {name!r} already in volatile memory (DATA:VOL:CLE first)")
        n = len(call.args) - 1
        if not _ARB_MIN_POINTS <= n <= _ARB_MAX_POINTS:
            raise _out_of_range(f"{n} arb points not in [{_ARB_MIN_POINTS}, {_ARB_MAX_POINTS}]")
        if sum(len(v) for v in c.arb_data.values()) + n > _VOLATILE_POINTS:
            raise CommandError(-225, "Out of memory;volatile arb memory is full")
        if dac:
            values = [_to_int(a, "DAC value") for a in call.args[1:]]
            if any(not -32767 <= v <= 32767 for v in values):
                raise _out_of_range("DAC values must be in [-32767, 32767]")
        else:
            floats = [_to_float(a, "arb value") for a in call.args[1:]]
            if any(not -1.0 <= v <= 1.0 for v in floats):
                raise _out_of_range("arb values must be in [-1, 1]")
            values = [int(round(v * 32767)) for v in floats]
        c.arb_data[name] = values
        return None

    def _display_text(self, call: Call):
        regs = self.scpi_registers()
        if call.query:
            return '"' + regs.get("DISP:TEXT", "") + '"'
        text = call.one("DISP:TEXT").strip()
        if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0]:
            raise _bad_data("DISP:TEXT needs a quoted string")
        regs["DISP:TEXT"] = text[1:-1]

    def _display_clear(self, call: Call):
        if call.query:
            raise Unrecognised()
        self.scpi_registers()["DISP:TEXT"] = ""

    def _beep(self, call: Call):
        if call.query:
            raise Unrecognised()
        regs = self.scpi_registers()
        regs["BEEPS"] = str(int(regs.get("BEEPS", "0")) + 1)


# ===================================================================== LakeShore 336


_LS_INPUTS = ("A", "B", "C", "D")
_LS_OUTPUTS = (1, 2, 3, 4)
_LS_MAX_SETPOINT_K = 1500.0


class LakeShore336Model(StatusMixin, DialectModel):
    """LakeShore 336 temperature controller; replies end with ``\\r\\n``.

    Serves ``KRDG?``/``CRDG?``/``SRDG?`` (input A-D, or 0 for all four), ``SETP``,
    ``RANGE`` (outputs 1-2: 0-3; outputs 3-4: 0-1), ``MOUT`` (0-100 %), ``HTR?``, ``PID``,
    ``RAMP``/``RAMPST?``, ``OUTMODE``, ``HTRSET``, ``HTRST?``, ``RDGST?``, ``INNAME``,
    ``INTYPE``, ``TLIMIT`` and the IEEE 488.2 common commands (``*IDN?``, ``*RST``,
    ``*CLS``, ``*ESR?``, ``*ESE``, ``*SRE``, ``*STB?``, ``*OPC``, ``*OPC?``, ``*WAI``,
    ``*TST?``). Temperatures come from ``world.temperature(input)``.

    The 336 is not SCPI: ``SYST:ERR?`` is an unknown query (no reply; the client times
    out), and errors set ``*ESR?`` bits. Not simulated: heater physics. ``HTR?`` is the
    world's ``heater_output(output)`` when it has one, else the manual output while the
    range is on and 0 when off. ``SRDG?`` reports a PT100 resistance for the temperature
    (100 ohm x (1 + 0.00385 (T - 273.15)), at least 0).
    """

    name = "LakeShore336"
    terminator = b"\r\n"
    idn = "LSCI,MODEL336,SIM0001/#######,2.7"

    _CMD = re.compile(r"^(\*[A-Za-z]{3}|[A-Za-z]+)(\?)?\s*(.*)$")

    def _regs(self) -> dict[str, str]:
        return registers_of(self.state.thermal)

    def record_error(self, err: CommandError, command: str) -> None:
        self.errors_served += 1
        self.status_or("ESR", err.esr_bit)

    def execute(self, command: str) -> str | None:
        m = self._CMD.match(command)
        if not m:
            raise Unrecognised()
        name, query, args = m.group(1).upper(), bool(m.group(2)), split_args(m.group(3))
        handler = getattr(self, "_cmd_" + name.replace("*", "star_"), None)
        if handler is None:
            raise Unrecognised()
        return handler(query, args)

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _input(text: str, *, allow_all: bool = False) -> str:
        up = text.strip().upper()
        if up in _LS_INPUTS or (allow_all and up == "0"):
            return up
        raise _out_of_range(f"input {text!r}; allowed: A, B, C, D" + (", 0 (all)" if allow_all else ""))

    @staticmethod
    def _output(text: str) -> int:
        n = _to_int(text, "output")
        if n not in _LS_OUTPUTS:
            raise _out_of_range(f"output {n} not in [1, 4]")
        return n

    @staticmethod
    def _arity(args: list[str], n: int) -> None:
        if len(args) != n:
            raise CommandError(-109 if len(args) < n else -108, f"expected {n} parameter(s)")

    def _reading(self, query, args, convert: Callable[[float], float], fmt: str) -> str:
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        which = self._input(args[0], allow_all=True)
        inputs = _LS_INPUTS if which == "0" else (which,)
        return ",".join(format(convert(float(self.world.temperature(i))), fmt) for i in inputs)

    # -- readings -------------------------------------------------------------------------------
    def _cmd_KRDG(self, query, args):
        return self._reading(query, args, lambda t: t, "+.4f")

    def _cmd_CRDG(self, query, args):
        return self._reading(query, args, lambda t: t - 273.15, "+.4f")

    def _cmd_SRDG(self, query, args):
        return self._reading(query, args, lambda t: max(0.0, 100.0 * (1 + 0.00385 * (t - 273.15))), "+.4f")

    def _cmd_RDGST(self, query, args):
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        self._input(args[0])
        return "000"

    # -- control loop ------------------------------------------------------------------------------
    def _cmd_SETP(self, query, args):
        th = self.state.thermal
        if query:
            self._arity(args, 1)
            return f"{th.setpoint[self._output(args[0])]:+.4f}"
        self._arity(args, 2)
        out = self._output(args[0])
        value = _to_float(args[1], "setpoint")
        limit = float(self._regs().get(f"TLIMIT_{out}", repr(_LS_MAX_SETPOINT_K)))
        if not 0.0 <= value <= limit:
            raise _out_of_range(f"setpoint {value:g} not in [0, {limit:g}]")
        th.setpoint[out] = value

    def _cmd_RANGE(self, query, args):
        th = self.state.thermal
        if query:
            self._arity(args, 1)
            return str(th.heater_range[self._output(args[0])])
        self._arity(args, 2)
        out = self._output(args[0])
        value = _to_int(args[1], "range")
        hi = 3 if out in (1, 2) else 1
        if not 0 <= value <= hi:
            raise _out_of_range(f"range {value} for output {out} not in [0, {hi}]")
        th.heater_range[out] = value

    def _cmd_MOUT(self, query, args):
        th = self.state.thermal
        if query:
            self._arity(args, 1)
            return f"{th.manual_output[self._output(args[0])]:+.3f}"
        self._arity(args, 2)
        out = self._output(args[0])
        value = _to_float(args[1], "manual output")
        if not 0.0 <= value <= 100.0:
            raise _out_of_range(f"manual output {value:g} not in [0, 100] %")
        th.manual_output[out] = value

    def _cmd_HTR(self, query, args):
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        out = self._output(args[0])
        if out not in (1, 2):
            raise _out_of_range(f"HTR? output {out} not in [1, 2]")
        fn = getattr(self.world, "heater_output", None)
        if fn is not None:
            return f"{float(fn(out)):+.3f}"
        th = self.state.thermal
        return f"{th.manual_output[out] if th.heater_range[out] else 0.0:+.3f}"

    def _cmd_HTRST(self, query, args):
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        self._output(args[0])
        return "0"

    def _multi(self, key: str, query: bool, args: list[str], specs: list[tuple[str, float, float, bool]],
               defaults: str, keyed_by: Callable[[str], Any]) -> str | None:
        """A multi-field setting ``KEY n,a,b,...`` (spec: name, low, high, integer?) kept in registers."""
        regs = self._regs()
        if query:
            self._arity(args, 1)
            n = keyed_by(args[0])
            return regs.get(f"{key}_{n}", defaults)
        self._arity(args, 1 + len(specs))
        n = keyed_by(args[0])
        texts = []
        for text, (what, lo, hi, integer) in zip(args[1:], specs):
            v = _to_int(text, what) if integer else _to_float(text, what)
            if not lo <= v <= hi:
                raise _out_of_range(f"{what} {v:g} not in [{lo:g}, {hi:g}]")
            texts.append(str(v) if integer else f"{v:+.1f}")
        regs[f"{key}_{n}"] = ",".join(texts)
        return None

    def _cmd_PID(self, query, args):
        return self._multi("PID", query, args, [("P", 0.1, 1000, False), ("I", 0.1, 1000, False), ("D", 0, 200, False)],
                           "+50.0,+20.0,+0.0", self._output)

    def _cmd_RAMP(self, query, args):
        return self._multi("RAMP", query, args, [("ramp on", 0, 1, True), ("rate", 0, 100, False)], "0,+0.1", self._output)

    def _cmd_RAMPST(self, query, args):
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        self._output(args[0])
        return "0"

    def _cmd_OUTMODE(self, query, args):
        return self._multi("OUTMODE", query, args, [("mode", 0, 5, True), ("input", 0, 4, True), ("powerup", 0, 1, True)],
                           "1,1,0", self._output)

    def _cmd_HTRSET(self, query, args):
        return self._multi("HTRSET", query, args,
                           [("resistance", 1, 2, True), ("max current", 0, 4, True),
                            ("max user current", 0, 2, False), ("display", 1, 2, True)], "1,2,+0.0,1", self._output)

    def _cmd_INTYPE(self, query, args):
        return self._multi("INTYPE", query, args,
                           [("sensor type", 0, 4, True), ("autorange", 0, 1, True), ("range", 0, 8, True),
                            ("compensation", 0, 1, True), ("units", 1, 3, True)], "3,1,0,1,1", self._input)

    def _cmd_TLIMIT(self, query, args):
        regs = self._regs()
        if query:
            self._arity(args, 1)
            out = self._output(args[0])
            return f"{float(regs.get(f'TLIMIT_{out}', repr(_LS_MAX_SETPOINT_K))):+.4f}"
        self._arity(args, 2)
        out = self._output(args[0])
        v = _to_float(args[1], "limit")
        if not 0 <= v <= _LS_MAX_SETPOINT_K:
            raise _out_of_range(f"limit {v:g}")
        regs[f"TLIMIT_{out}"] = repr(v)

    def _cmd_INNAME(self, query, args):
        regs = self._regs()
        if query:
            self._arity(args, 1)
            i = self._input(args[0])
            return regs.get(f"INNAME_{i}", f"Input {i}")
        if len(args) != 2:
            raise CommandError(-109, "expected input,name")
        i = self._input(args[0])
        name = args[1].strip().strip('"')
        if len(name) > 15:
            raise _out_of_range("input name longer than 15 characters")
        regs[f"INNAME_{i}"] = name

    # -- common commands --------------------------------------------------------------------------------
    def _cmd_star_IDN(self, query, args):
        if not query:
            raise Unrecognised()
        return self.idn

    def _cmd_star_RST(self, query, args):
        if query:
            raise Unrecognised()
        keep = {k: v for k, v in self._regs().items() if k.startswith(("INNAME", "INTYPE", "TLIMIT"))}
        reset_dataclass(self.state.thermal)
        self._regs().update(keep)

    def _cmd_star_CLS(self, query, args):
        if query:
            raise Unrecognised()
        self.status_set("ESR", 0)

    def _cmd_star_ESR(self, query, args):
        if not query:
            raise Unrecognised()
        return self.status_read_clear("ESR", [])

    def _cmd_star_ESE(self, query, args):
        return self.status_enable("ESE", query, args)

    def _cmd_star_SRE(self, query, args):
        return self.status_enable("SRE", query, args)

    def _cmd_star_STB(self, query, args):
        if not query:
            raise Unrecognised()
        stb = 32 if self.status_get("ESR") & self.status_get("ESE") else 0
        return str(stb | (64 if stb & self.status_get("SRE") else 0))

    def _cmd_star_OPC(self, query, args):
        if query:
            return "1"
        self.status_or("ESR", 1)

    def _cmd_star_WAI(self, query, args):
        if query:
            raise Unrecognised()

    def _cmd_star_TST(self, query, args):
        if not query:
            raise Unrecognised()
        return "0"


# ===================================================================== Newport ESP300


ESP300_GENERAL_ERRORS = {6: "COMMAND DOES NOT EXIST", 7: "PARAMETER OUT OF RANGE", 9: "AXIS NUMBER OUT OF RANGE",
                         37: "AXIS NUMBER MISSING", 38: "COMMAND PARAMETER MISSING"}
ESP300_AXIS_ERRORS = {6: "POSITIVE SOFTWARE LIMIT DETECTED", 7: "NEGATIVE SOFTWARE LIMIT DETECTED",
                      13: "MOTOR NOT ENABLED"}


class EspError(CommandError):
    """An ESP300 error code: general (< 100) or axis (axis * 100 + code)."""

    def __init__(self, code: int):
        if code > 100:
            text = ESP300_AXIS_ERRORS.get(code % 100, "AXIS ERROR")
        else:
            text = ESP300_GENERAL_ERRORS.get(code, "ERROR")
        super().__init__(code, text)


class ESP300Model(DialectModel):
    """Newport ESP300 motion controller, axes 1-3 (positions in mm in the bench state).

    Serves ``{n}PA``/``{n}PR`` (move; refused with axis error 13 if the motor is off, 06/07
    beyond the software limits; the World says where the axis stops), ``{n}TP`` (position;
    a query without ``?``), ``{n}DP?``, ``{n}MD?``, ``{n}MO``/``{n}MF``/``{n}MO?``,
    ``{n}WS`` (moves complete at once here), ``{n}ST``, ``{n}OR`` (home: position 0),
    ``{n}DH``, ``{n}SL``/``{n}SR`` (limits), ``{n}SN`` (units code), ``{n}VA``/``{n}AC``/
    ``{n}AG`` (stored), ``TE?`` (error code, queue of 10, 0 when empty), ``TB?``,
    ``VE?``, ``*IDN?``, ``*RST``.

    pymeasure's ``ESP300`` uses ``SCPIUnknownMixin``, and ``ESP300.shutdown()`` reads every
    property first (``*OPC?``, ``TE?``, ``*IDN?``, ``SYST:ERR?``, ``*OPT?``, ``*STB?``). A
    real ESP300 is not known to answer the SCPI ones; this model answers them (``1``,
    ``0,"NO ERROR"`` or the next queued error, ``0``, ``0``) so ``shutdown()`` completes.
    A bench should still disable the axes directly (``{n}MF``).
    """

    name = "ESP300"
    terminator = b"\n"
    idn = "ESP300 Version 3.08 09/09/02"
    AXES = (1, 2, 3)

    _CMD = re.compile(r"^(\d{0,2})([A-Za-z]{2})(\?)?\s*(.*)$")

    def __init__(self, state: BenchState, world):
        super().__init__(state, world)
        self.errors: deque[int] = deque(maxlen=10)

    def record_error(self, err: CommandError, command: str) -> None:
        self.errors_served += 1
        self.errors.append(err.code if err.code > 0 else 6)

    def execute(self, command: str) -> str | None:
        up = command.strip()
        scpi = self._scpi_accommodation(up.upper())
        if scpi is not None:
            return scpi
        m = self._CMD.match(up)
        if not m:
            raise Unrecognised(6, "COMMAND DOES NOT EXIST")
        axis_text, name, query, arg = m.group(1), m.group(2).upper(), bool(m.group(3)), m.group(4).strip()
        if name in ("TE", "TB", "VE"):
            if axis_text or not query:
                raise Unrecognised(6, "COMMAND DOES NOT EXIST")
            return self._controller_query(name)
        handler = getattr(self, "_ax_" + name, None)
        if handler is None:
            raise Unrecognised(6, "COMMAND DOES NOT EXIST")
        if not axis_text:
            raise EspError(37)
        axis = int(axis_text)
        if axis not in self.AXES:
            raise EspError(9)
        return handler(axis, query, arg)

    def _scpi_accommodation(self, up: str) -> str | None:
        if up == "*IDN?":
            return self.idn
        if up == "*RST":
            for n in self.AXES:
                reset_dataclass(self.state.stage[n])
            self.errors.clear()
            return None
        if up == "*OPC?":
            return "1"
        if up == "SYST:ERR?":
            if not self.errors:
                return '0,"NO ERROR"'
            err = EspError(self.errors.popleft())
            return f'{err.code},"{err.message}"'
        if up in ("*OPT?", "*STB?"):
            return "0"
        return None

    def _controller_query(self, name: str) -> str:
        if name == "VE":
            return self.idn
        code = self.errors.popleft() if self.errors else 0
        if name == "TE":
            return str(code)
        return f"{code}, 0, {EspError(code).message if code else 'NO ERROR DETECTED'}"

    # -- axis commands ----------------------------------------------------------------------
    def _value(self, arg: str) -> float:
        if not arg:
            raise EspError(38)
        try:
            v = float(arg)
        except ValueError:
            raise EspError(7) from None
        if not math.isfinite(v):
            raise EspError(7)
        return v

    def _ax_TP(self, axis, query, arg):
        return f"{self.state.stage[axis].position:.6f}"

    def _ax_DP(self, axis, query, arg):
        if not query:
            raise EspError(6)
        regs = registers_of(self.state.stage[axis])
        return f"{float(regs.get('DP', repr(self.state.stage[axis].position))):.6f}"

    def _move(self, axis: int, target: float) -> None:
        ax = self.state.stage[axis]
        if not ax.enabled:
            raise EspError(axis * 100 + 13)
        if target > ax.right_limit:
            raise EspError(axis * 100 + 6)
        if target < ax.left_limit:
            raise EspError(axis * 100 + 7)
        registers_of(ax)["DP"] = repr(target)
        ax.position = float(self.world.stage_reached(axis, target))

    def _ax_PA(self, axis, query, arg):
        if query:
            return f"{float(registers_of(self.state.stage[axis]).get('DP', repr(self.state.stage[axis].position))):.6f}"
        self._move(axis, self._value(arg))

    def _ax_PR(self, axis, query, arg):
        if query:
            raise EspError(6)
        ax = self.state.stage[axis]
        base = float(registers_of(ax).get("DP", repr(ax.position)))
        self._move(axis, base + self._value(arg))

    def _ax_MD(self, axis, query, arg):
        if not query:
            raise EspError(6)
        return "1"  # moves complete at once

    def _ax_MO(self, axis, query, arg):
        if query:
            return "1" if self.state.stage[axis].enabled else "0"
        self.state.stage[axis].enabled = True

    def _ax_MF(self, axis, query, arg):
        if query:
            raise EspError(6)
        self.state.stage[axis].enabled = False

    def _ax_WS(self, axis, query, arg):
        if query:
            raise EspError(6)
        if arg:
            self._value(arg)

    def _ax_ST(self, axis, query, arg):
        if query:
            raise EspError(6)

    def _ax_OR(self, axis, query, arg):
        if query:
            raise EspError(6)
        if arg and (not arg.isdigit() or int(arg) > 6):
            raise EspError(7)
        ax = self.state.stage[axis]
        if not ax.enabled:
            raise EspError(axis * 100 + 13)
        registers_of(ax)["DP"] = "0.0"
        ax.position = float(self.world.stage_reached(axis, 0.0))

    def _ax_DH(self, axis, query, arg):
        ax = self.state.stage[axis]
        if query:
            return f"{float(registers_of(ax).get('DH', '0.0')):.6f}"
        value = self._value(arg) if arg else 0.0
        registers_of(ax)["DH"] = repr(value)
        registers_of(ax)["DP"] = repr(value)
        ax.position = value

    def _limit(self, axis, query, arg, attr: str):
        ax = self.state.stage[axis]
        if query:
            return f"{getattr(ax, attr):.6f}"
        setattr(ax, attr, self._value(arg))

    def _ax_SL(self, axis, query, arg):
        return self._limit(axis, query, arg, "left_limit")

    def _ax_SR(self, axis, query, arg):
        return self._limit(axis, query, arg, "right_limit")

    def _ax_SN(self, axis, query, arg):
        ax = self.state.stage[axis]
        if query:
            return str(ax.units)
        v = self._value(arg)
        if not v.is_integer() or not 0 <= v <= 11:
            raise EspError(7)
        ax.units = int(v)

    def _stored(self, axis, query, arg, key: str, default: str, lo: float, hi: float):
        regs = registers_of(self.state.stage[axis])
        if query:
            return f"{float(regs.get(key, default)):.6f}"
        v = self._value(arg)
        if not lo <= v <= hi:
            raise EspError(7)
        regs[key] = repr(v)

    def _ax_VA(self, axis, query, arg):
        return self._stored(axis, query, arg, "VA", "1.0", 0.0, 1000.0)

    def _ax_AC(self, axis, query, arg):
        return self._stored(axis, query, arg, "AC", "4.0", 0.0, 10000.0)

    def _ax_AG(self, axis, query, arg):
        return self._stored(axis, query, arg, "AG", "4.0", 0.0, 10000.0)


# ===================================================================== Keithley 2750


def _channel_list(text: str) -> list[int]:
    """``(@101)``, ``(@101,102)``, ``(@101:105,110)`` -> channel numbers."""
    t = text.strip()
    if not (t.startswith("(@") and t.endswith(")")):
        raise CommandError(-141, f"Invalid character data;channel list {text!r} must look like (@101,102)")
    out: list[int] = []
    body = t[2:-1].strip()
    if not body:
        return out
    for item in body.split(","):
        lo_t, _, hi_t = item.strip().partition(":")
        lo = _to_int(lo_t, "channel")
        hi = _to_int(hi_t, "channel") if hi_t else lo
        if hi < lo:
            raise _illegal(f"channel range {item.strip()!r}")
        out.extend(range(lo, hi + 1))
    for ch in out:
        if not (1 <= ch // 100 <= 5 and 1 <= ch % 100 <= 40):
            raise _out_of_range(f"channel {ch} (slots 1-5, channels 01-40)")
    return out


class Keithley2750Model(ScpiModel):
    """Keithley 2750 switch system (channel 101 = mediator, 102 = environment link).

    Serves ``:ROUTe:MULTiple:CLOSe``/``:ROUTe:MULTiple:OPEN`` with channel lists
    (``(@101)``, ``(@101,102)``, ``(@101:105)``), ``:ROUTe:CLOSe`` (closes the list and
    opens every other channel, as the 2750 does), ``:ROUTe:OPEN`` (list),
    ``:ROUTe:OPEN:ALL``, ``:ROUTe:CLOSe?`` / ``:ROUTe:MULTiple:CLOSe?`` answered
    ``(@101,102)`` in ascending order, ``(@)`` when none is closed, and the SCPI common
    commands; ``*RST`` opens every channel.
    """

    name = "Keithley2750"
    terminator = b"\n"
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2750,SIM0001,A02  /A02"

    def scpi_registers(self) -> dict[str, str]:
        return registers_of(self.state.relay)

    def reset(self) -> None:
        self.state.relay.closed.clear()

    def _closed_reply(self) -> str:
        return "(@" + ",".join(str(c) for c in sorted(self.state.relay.closed)) + ")"

    def build_table(self) -> None:
        self.add("ROUTe MULTiple CLOSe", self._multiple_close)
        self.add("ROUTe MULTiple OPEN", self._multiple_open)
        self.add("ROUTe CLOSe", self._close)
        self.add("ROUTe OPEN", self._open)
        self.add("ROUTe OPEN ALL", self._open_all)

    def _list(self, call: Call) -> list[int]:
        if not call.args:
            raise CommandError(-109, "Missing parameter;channel list")
        return _channel_list(",".join(call.args))

    def _multiple_close(self, call: Call):
        if call.query:
            return self._closed_reply()
        self.state.relay.closed.update(self._list(call))

    def _multiple_open(self, call: Call):
        if call.query:
            raise Unrecognised()
        self.state.relay.closed.difference_update(self._list(call))

    def _close(self, call: Call):
        if call.query:
            return self._closed_reply()
        channels = self._list(call)
        self.state.relay.closed.clear()
        self.state.relay.closed.update(channels)

    def _open(self, call: Call):
        if call.query:
            raise Unrecognised()
        self.state.relay.closed.difference_update(self._list(call))

    def _open_all(self, call: Call):
        if call.query:
            raise Unrecognised()
        call.none()
        self.state.relay.closed.clear()


# ===================================================================== the fast digitizer


DIGITIZER_MAX_POINTS = 1 << 23  # points per channel
DIGITIZER_MAX_TAG = 2**31 - 1


class FastDigitizerModel(ScpiModel):
    """The fast digitizer, in the dialect documented in ``corrlab.instruments.drivers.digitizer``.

    ``INIT`` takes one record at once from ``world.acquire()`` (float32, shape (channels,
    points)) and stamps it with the record tag; writing ``RECord:TAG`` calls the world's
    ``begin_record(tag)`` when it has one (the trial starts afresh there). Blocks are sent
    as ``#<n><len>`` + little-endian float32 + ``\\n`` without copying the record.
    """

    name = "FastDigitizer"
    terminator = b"\n"
    idn = "CORRLAB,FD2,SIM0001,1.0"

    def scpi_registers(self) -> dict[str, str]:
        return registers_of(self.state.digitizer)

    def reset(self) -> None:
        reset_dataclass(self.state.digitizer)

    @property
    def d(self):
        return self.state.digitizer

    def build_table(self) -> None:
        self.add("[SENSe] SRATe", self._srate)
        self.add("[SENSe] RECord LENGth", self._length)
        self.add("[SENSe] CHANnels", self._channels)
        self.add("[SENSe] RECord TAG", self._tag)
        self.add("FORMat [DATA]", self._format)
        self.add("FORMat BORDer", self._border)
        self.add("INITiate [IMMediate]", self._init)
        self.add("ABORt", self._abort)
        self.add("ACQuire STATe", self._acq_state)
        self.add("FETCh DATA", self._fetch)
        self.add("FETCh DATA ALL", self._fetch_all)
        self.add("FETCh TAG", lambda call: self._record_attr(call, "RECORD_TAG"))
        self.add("FETCh POINts", lambda call: self._record_attr(call, "RECORD_POINTS"))
        self.add("FETCh CHANnels", lambda call: self._record_attr(call, "RECORD_CHANNELS"))

    def _srate(self, call: Call):
        if call.query:
            return repr(float(self.d.sample_rate))
        self.d.sample_rate = _number(call.one("SRAT"), "SRAT", 1.0, 100e6)

    def _length(self, call: Call):
        if call.query:
            return str(self.d.points)
        value = _number(call.one("RECord:LENGth"), "RECord:LENGth", 1, DIGITIZER_MAX_POINTS)
        if not float(value).is_integer():
            raise _bad_data(f"RECord:LENGth {call.args[0]!r} is not an integer")
        self.d.points = int(value)

    def _channels(self, call: Call):
        if call.query:
            return str(self.d.channels)
        value = _to_int(call.one("CHANnels"), "CHANnels")
        if value not in (2, 4):
            raise _illegal(f"CHANnels {value}; allowed: 2, 4")
        self.d.channels = value

    def _tag(self, call: Call):
        if call.query:
            return str(self.d.tag)
        value = _to_int(call.one("RECord:TAG"), "RECord:TAG")
        if not 0 <= value <= DIGITIZER_MAX_TAG:
            raise _out_of_range(f"RECord:TAG {value} not in [0, {DIGITIZER_MAX_TAG}]")
        self.d.tag = value
        begin = getattr(self.world, "begin_record", None)
        if begin is not None:
            begin(value)

    def _format(self, call: Call):
        if call.query:
            return "REAL,32"
        if [a.upper() for a in call.args] not in (["REAL", "32"], ["REAL"]):
            raise _illegal(f"FORMat {','.join(call.args)!r}; allowed: REAL,32")

    def _border(self, call: Call):
        if call.query:
            return "SWAP"
        if _keyword(call.one("FORMat:BORDer"), ("SWAPped", "NORMal"), "FORMat:BORDer") != "SWAP":
            raise _illegal("FORMat:BORDer NORMal is not supported; blocks are little-endian (SWAPped)")

    def _init(self, call: Call):
        if call.query:
            raise Unrecognised()
        call.none()
        regs = self.scpi_registers()
        regs["ACQ_STATE"] = "ARMED"
        d = self.d
        record = np.asarray(self.world.acquire())
        expected = (d.channels, d.points)
        if record.shape != expected:
            regs["ACQ_STATE"] = "IDLE"
            log.error("%s: the world returned a record of shape %s, expected %s", self.name, record.shape, expected)
            raise CommandError(-240, f"Hardware error;record shape {record.shape} is not {expected}")
        d.record = np.ascontiguousarray(record, dtype="<f4")
        regs["RECORD_TAG"] = str(d.tag)
        regs["RECORD_POINTS"] = str(d.points)
        regs["RECORD_CHANNELS"] = str(d.channels)
        regs["ACQ_STATE"] = "DONE"

    def _abort(self, call: Call):
        if call.query:
            raise Unrecognised()
        self.scpi_registers()["ACQ_STATE"] = "IDLE"

    def _acq_state(self, call: Call):
        if not call.query:
            raise Unrecognised()
        return self.scpi_registers().get("ACQ_STATE", "IDLE")

    def _record_attr(self, call: Call, key: str):
        if not call.query:
            raise Unrecognised()
        value = self.scpi_registers().get(key)
        if value is None or self.d.record is None:
            self.record_error(CommandError(-230, "Data corrupt or stale;no record (INIT first)"), call.text)
            return "-1"
        return value

    @staticmethod
    def _block(payload: memoryview) -> Binary:
        digits = str(payload.nbytes)
        return Binary(f"#{len(digits)}{digits}".encode("ascii"), payload, b"\n")

    def _empty_block(self, err: CommandError, call: Call) -> Binary:
        self.record_error(err, call.text)
        return Binary(b"#10\n")

    def _fetch(self, call: Call):
        if not call.query:
            raise Unrecognised()
        record = self.d.record
        if record is None:
            return self._empty_block(CommandError(-230, "Data corrupt or stale;no record (INIT first)"), call)
        try:
            ch = _to_int(call.one("FETCh:DATA?"), "channel")
        except CommandError as err:
            return self._empty_block(err, call)
        if not 1 <= ch <= record.shape[0]:
            return self._empty_block(_out_of_range(f"channel {ch} not in the record (1-{record.shape[0]})"), call)
        return self._block(memoryview(record[ch - 1]).cast("B"))

    def _fetch_all(self, call: Call):
        if not call.query:
            raise Unrecognised()
        record = self.d.record
        if record is None:
            return self._empty_block(CommandError(-230, "Data corrupt or stale;no record (INIT first)"), call)
        return self._block(memoryview(record).cast("B"))


# ===================================================================== the registry


MODELS: dict[str, type[DialectModel]] = {
    "SR830": SR830Model,
    "Agilent33500": Agilent33500Model,
    "LakeShore336": LakeShore336Model,
    "ESP300": ESP300Model,
    "Keithley2750": Keithley2750Model,
    "FastDigitizer": FastDigitizerModel,
}

TERMINATORS: dict[str, bytes] = {name: cls.terminator for name, cls in MODELS.items()}

__all__ = [
    "MODELS", "TERMINATORS", "DialectModel", "ScpiModel", "Binary", "CommandError", "Unrecognised", "Header",
    "SR830Model", "Agilent33500Model", "LakeShore336Model", "ESP300Model", "Keithley2750Model",
    "FastDigitizerModel", "split_commands", "split_args",
]
