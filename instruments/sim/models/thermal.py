"""The LakeShore 336 temperature controller (role ``thermal``).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from corrlab.instruments.sim.models.base import (
    CommandError, DialectModel, StatusMixin, Unrecognised, _out_of_range, _to_float, _to_int, registers_of,
    reset_dataclass, split_args,
)


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

    _CMD = re.compile(r"^(\*[A-Za-z]{3}|[A-Za-z]+)\s*(\?)?\s*(.*)$")

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
