"""Shared machinery of every dialect model: message splitting, argument parsing, command
errors, :class:`DialectModel` (one message in, the replies out; unknown commands logged and
reported) and the IEEE 488.2 status registers (:class:`StatusMixin`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import deque
from typing import Any

from corrlab.errors import PlanError
from corrlab.instruments.sim.state import BenchState

log = logging.getLogger("corrlab.instruments.sim.models")  # one logger for every model (its name is the contract)


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
    #: a CR alone also ends a message (the ESP300's native terminator); else only LF does
    cr_terminates = False

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
            self.begin_message()
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

    def begin_message(self) -> None:
        """A new message starts (SCPI: the header path goes back to the root)."""

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
