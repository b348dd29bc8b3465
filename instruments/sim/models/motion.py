"""The Newport ESP300 motion controller (role ``motion``).
"""

from __future__ import annotations

import math
import re
from collections import deque

from corrlab.instruments.sim.models.base import CommandError, DialectModel, Unrecognised, registers_of, reset_dataclass
from corrlab.instruments.sim.state import BenchState


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
    ``{n}AG``, ``{n}VU``, ``{n}AU``, ``{n}BA``, ``{n}FE``, ``{n}SU``, ``{n}OH``, ``{n}JH``
    (stored), ``{n}TH`` (target position), ``{n}TV`` (velocity, 0: moves complete at once),
    ``{n}ID?`` (stage), ``TE?`` (error code, queue of 10, 0 when empty), ``TB?``,
    ``TS``/``TX`` (status, activity: ``@``, none), ``AB``, ``RS``, ``VE?``, ``*IDN?``, ``*RST``.

    pymeasure's ``ESP300`` uses ``SCPIUnknownMixin``, and ``ESP300.shutdown()`` reads every
    property first (``*OPC?``, ``TE?``, ``*IDN?``, ``SYST:ERR?``, ``*OPT?``, ``*STB?``). A
    real ESP300 is not known to answer the SCPI ones; this model answers them (``1``,
    ``0,"NO ERROR"`` or the next queued error, ``0``, ``0``) so ``shutdown()`` completes.
    A bench should still disable the axes directly (``{n}MF``).
    """

    name = "ESP300"
    terminator = b"\n"
    cr_terminates = True  # the ESP300's native terminator is CR; LF and CR+LF are accepted too
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
        handled, scpi = self._scpi_accommodation(up.upper())
        if handled:
            return scpi
        m = self._CMD.match(up)
        if not m:
            raise Unrecognised(6, "COMMAND DOES NOT EXIST")
        axis_text, name, query, arg = m.group(1), m.group(2).upper(), bool(m.group(3)), m.group(4).strip()
        if name in ("TE", "TB", "VE", "TS", "TX"):
            if axis_text or not (query or name in ("TS", "TX")):
                raise Unrecognised(6, "COMMAND DOES NOT EXIST")
            return self._controller_query(name)
        if name in ("AB", "RS"):  # abort motion / reset the controller: no axis, no reply
            if axis_text or query or arg:
                raise Unrecognised(6, "COMMAND DOES NOT EXIST")
            if name == "RS":
                self._scpi_accommodation("*RST")
            return None
        handler = getattr(self, "_ax_" + name, None)
        if handler is None:
            raise Unrecognised(6, "COMMAND DOES NOT EXIST")
        if not axis_text:
            raise EspError(37)
        axis = int(axis_text)
        if axis not in self.AXES:
            raise EspError(9)
        return handler(axis, query, arg)

    def _scpi_accommodation(self, up: str) -> tuple[bool, str | None]:
        """(handled?, reply) for the common and SCPI commands the ESP300 answers. ``*RST`` is
        handled without a reply: before, its ``None`` fell through to the axis grammar, which
        queued error 6 and logged the reset as unrecognised."""
        if up == "*IDN?":
            return True, self.idn
        if up == "*RST":
            for n in self.AXES:
                reset_dataclass(self.state.stage[n])
            self.errors.clear()
            return True, None
        if up == "*OPC?":
            return True, "1"
        if up == "SYST:ERR?":
            if not self.errors:
                return True, '0,"NO ERROR"'
            err = EspError(self.errors.popleft())
            return True, f'{err.code},"{err.message}"'
        if up in ("*OPT?", "*STB?"):
            return True, "0"
        return False, None

    def _controller_query(self, name: str) -> str:
        if name == "VE":
            return self.idn
        if name == "TS":  # controller status: bit n-1 set while axis n moves ("@" = none moving)
            return "@"
        if name == "TX":  # controller activity: program, wait, ... none here
            return "@"
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

    def _ax_TH(self, axis, query, arg):
        """Target (desired) position, a query without ``?`` like ``TP``."""
        ax = self.state.stage[axis]
        return f"{float(registers_of(ax).get('DP', repr(ax.position))):.6f}"

    def _ax_TV(self, axis, query, arg):
        return "0.000000"  # actual velocity: moves complete at once

    def _ax_ID(self, axis, query, arg):
        if not query:
            raise EspError(6)
        return f"ILS100CC, {axis:02d}SIM0000"  # the stage model and serial the ESP300 reads from the stage

    def _ax_VU(self, axis, query, arg):
        return self._stored(axis, query, arg, "VU", "2.0", 0.0, 1000.0)

    def _ax_AU(self, axis, query, arg):
        return self._stored(axis, query, arg, "AU", "16.0", 0.0, 10000.0)

    def _ax_BA(self, axis, query, arg):
        return self._stored(axis, query, arg, "BA", "0.0", 0.0, 10.0)

    def _ax_FE(self, axis, query, arg):
        return self._stored(axis, query, arg, "FE", "0.05", 0.0, 100.0)

    def _ax_SU(self, axis, query, arg):
        return self._stored(axis, query, arg, "SU", "0.0001", 1e-9, 1.0)

    def _ax_OH(self, axis, query, arg):
        return self._stored(axis, query, arg, "OH", "1.0", 0.0, 1000.0)

    def _ax_JH(self, axis, query, arg):
        return self._stored(axis, query, arg, "JH", "1.0", 0.0, 1000.0)

    def _ax_VA(self, axis, query, arg):
        return self._stored(axis, query, arg, "VA", "1.0", 0.0, 1000.0)

    def _ax_AC(self, axis, query, arg):
        return self._stored(axis, query, arg, "AC", "4.0", 0.0, 10000.0)

    def _ax_AG(self, axis, query, arg):
        return self._stored(axis, query, arg, "AG", "4.0", 0.0, 10000.0)
