"""The LakeShore 336 temperature controller (role ``thermal``).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from corrlab.instruments.sim.models.base import (
    CommandError, DialectModel, log, StatusMixin, Unrecognised, _out_of_range, _to_float, _to_int, registers_of,
    reset_dataclass, split_args,
)


_LS_INPUTS = ("A", "B", "C", "D")
_LS_OUTPUTS = (1, 2, 3, 4)
_LS_MAX_SETPOINT_K = 1500.0
_LS_HEATERS = (1, 2)  # current outputs (HTR?, HTRSET); 3 and 4 are voltage outputs (AOUT?)
_LS_NAME_WIDTH = 15  # INNAME and CRVHDR names are fixed-width fields (format s[15])
# standard curves in the 336's memory: number -> (name, serial, format, limit K, coefficient)
# format 1 mV/K, 2 V/K, 3 ohm/K, 4 log ohm/K; coefficient 1 negative, 2 positive
_LS_STANDARD_CURVES = {
    1: ("DT-470", "STANDARD", 2, 475.0, 1), 2: ("DT-670", "STANDARD", 2, 500.0, 1),
    3: ("DT-500-D", "STANDARD", 2, 365.0, 1), 4: ("DT-500-E1", "STANDARD", 2, 330.0, 1),
    6: ("PT-100", "STANDARD", 3, 800.0, 2), 7: ("PT-1000", "STANDARD", 3, 800.0, 2),
    8: ("RX-102A-AA", "STANDARD", 4, 40.0, 1), 9: ("RX-202A-AA", "STANDARD", 4, 40.0, 1),
    12: ("Type K", "STANDARD", 1, 1505.0, 2), 13: ("Type E", "STANDARD", 1, 934.0, 2),
    14: ("Type T", "STANDARD", 1, 670.0, 2),
}
_LS_USER_CURVES = range(21, 60)


class LakeShore336Model(StatusMixin, DialectModel):
    """LakeShore 336 temperature controller; replies end with ``\\r\\n``.

    Serves ``KRDG?``/``CRDG?``/``SRDG?`` (input A-D, or 0 for all four), ``SETP``,
    ``RANGE`` (outputs 1-2: 0-3; outputs 3-4: 0-1), ``MOUT`` (0-100 %), ``HTR?`` (heaters 1-2),
    ``AOUT?`` (voltage outputs 3-4), ``PID``, ``RAMP``/``RAMPST?``, ``OUTMODE``, ``HTRSET``
    (heaters 1-2, four fields), ``HTRST?``, ``RDGST?``, ``INNAME`` (a 15-character field),
    ``INTYPE``, ``INCRV``, ``CRVHDR`` (standard curves, user curves 21-59), ``TLIMIT`` (per
    input: above it every control output goes off), ``ALARM``/``ALARMST?``/``ALMRST``,
    ``RELAY``/``RELAYST?``, ``FILTER``, ``MODE`` and the IEEE 488.2 common commands (``*IDN?``, ``*RST``,
    ``*CLS``, ``*ESR?``, ``*ESE``, ``*SRE``, ``*STB?``, ``*OPC``, ``*OPC?``, ``*WAI``,
    ``*TST?``). Temperatures come from ``world.temperature(input)``.

    The 336 is not SCPI: ``SYST:ERR?`` is an unknown query (no reply; the client times
    out), and errors set ``*ESR?`` bits. Heater physics is the world's (a heater range holds
    at most its reach). ``HTR?`` is the
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
        return ",".join(format(convert(self._kelvin(i)), fmt) for i in inputs)

    def _kelvin(self, channel: str) -> float:
        """A reading of input ``channel``; past its TLIMIT every control output goes off (the
        336's temperature limit), and a latching alarm remembers a crossing."""
        t = float(self.world.temperature(channel))
        regs = self._regs()
        limit = float(regs.get(f"TLIMIT_{channel}", "0"))
        if limit > 0 and t > limit:
            th = self.state.thermal
            if any(th.heater_range.values()):
                log.warning("%s: input %s reads %.4f K above its TLIMIT %.4f K: every control output off",
                            self.name, channel, t, limit)
            for out in th.heater_range:
                th.heater_range[out] = 0
        high, low = self._alarm_states(channel, t)
        if regs.get(f"ALARM_{channel}", "0").split(",")[0] == "1":
            latched = regs.get(f"ALARMST_{channel}", "0,0").split(",")
            regs[f"ALARMST_{channel}"] = f"{int(high or latched[0] == '1')},{int(low or latched[1] == '1')}"
        return t

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
        if not 0.0 <= value <= _LS_MAX_SETPOINT_K:
            raise _out_of_range(f"setpoint {value:g} not in [0, {_LS_MAX_SETPOINT_K:g}]")
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
        out = self._heater(args[0])
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

    def _multi(self, key: str, query: bool, args: list[str], specs: list[tuple[str, float, float, bool | str]],
               defaults: str, keyed_by: Callable[[str], Any]) -> str | None:
        """A multi-field setting ``KEY n,a,b,...`` kept in registers; spec: name, low, high, and
        True for an integer, False for a float (``+.1f``) or a float format."""
        regs = self._regs()
        if query:
            self._arity(args, 1)
            n = keyed_by(args[0])
            return regs.get(f"{key}_{n}", defaults)
        self._arity(args, 1 + len(specs))
        n = keyed_by(args[0])
        texts = []
        for text, (what, lo, hi, kind) in zip(args[1:], specs):
            integer = kind is True
            v = _to_int(text, what) if integer else _to_float(text, what)
            if not lo <= v <= hi:
                raise _out_of_range(f"{what} {v:g} not in [{lo:g}, {hi:g}]")
            texts.append(str(v) if integer else format(v, kind if isinstance(kind, str) else "+.1f"))
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
        """``HTRSET <1|2>,<resistance 1=25/2=50 ohm>,<max current 0 user/1-4>,<max user current A>,
        <display 1 current/2 power>``: four fields, heater outputs only (the 335's extra output-type
        field is not the 336's)."""
        return self._multi("HTRSET", query, args,
                           [("resistance", 1, 2, True), ("max current", 0, 4, True),
                            ("max user current", 0, 1.732, "+.3f"), ("display", 1, 2, True)], "1,2,+0.000,1",
                           self._heater)

    def _heater(self, text: str) -> int:
        out = self._output(text)
        if out not in _LS_HEATERS:
            raise _out_of_range(f"output {out} is not a heater output (1, 2)")
        return out

    def _cmd_INTYPE(self, query, args):
        return self._multi("INTYPE", query, args,
                           [("sensor type", 0, 4, True), ("autorange", 0, 1, True), ("range", 0, 8, True),
                            ("compensation", 0, 1, True), ("units", 1, 3, True)], "2,1,2,1,1", self._input)

    def _cmd_TLIMIT(self, query, args):
        """Temperature limit of an input, kelvin (0 = off): above it every control output is
        switched off."""
        regs = self._regs()
        if query:
            self._arity(args, 1)
            i = self._input(args[0])
            return f"{float(regs.get(f'TLIMIT_{i}', '0')):+.4f}"
        self._arity(args, 2)
        i = self._input(args[0])
        v = _to_float(args[1], "limit")
        if not 0 <= v <= 2000.0:
            raise _out_of_range(f"limit {v:g} not in [0, 2000] K")
        regs[f"TLIMIT_{i}"] = repr(v)

    # -- sensor curves ---------------------------------------------------------------------------
    def _cmd_INCRV(self, query, args):
        regs = self._regs()
        if query:
            self._arity(args, 1)
            return regs.get(f"INCRV_{self._input(args[0])}", "6")  # PT-100: the inputs read platinum
        self._arity(args, 2)
        i = self._input(args[0])
        n = _to_int(args[1], "curve")
        if not (n == 0 or n in _LS_STANDARD_CURVES or n in _LS_USER_CURVES):
            raise _out_of_range(f"curve {n}; allowed: 0 (none), {', '.join(map(str, _LS_STANDARD_CURVES))}, 21-59")
        regs[f"INCRV_{i}"] = str(n)

    def _cmd_CRVHDR(self, query, args):
        regs = self._regs()
        if query:
            self._arity(args, 1)
            n = _to_int(args[0], "curve")
            if n in _LS_STANDARD_CURVES:
                name, sn, fmt, limit, coeff = _LS_STANDARD_CURVES[n]
            elif n in _LS_USER_CURVES:
                name, sn, fmt, limit, coeff = regs.get(f"CRVHDR_{n}", "User Curve,,2,+325.000,1").split(",")
            else:
                raise _out_of_range(f"curve {n} not in 1-59")
            return f"{name:<{_LS_NAME_WIDTH}.{_LS_NAME_WIDTH}},{sn:<10.10},{int(fmt)},{float(limit):+.3f},{int(coeff)}"
        self._arity(args, 6)
        n = _to_int(args[0], "curve")
        if n not in _LS_USER_CURVES:
            raise _out_of_range(f"curve {n}: only user curves 21-59 take a header")
        name, sn = args[1].strip().strip('"'), args[2].strip().strip('"')
        fmt, limit, coeff = _to_int(args[3], "format"), _to_float(args[4], "limit"), _to_int(args[5], "coefficient")
        if len(name) > _LS_NAME_WIDTH or len(sn) > 10 or fmt not in (1, 2, 3, 4) or coeff not in (1, 2) \
                or not 0 < limit <= 9999:
            raise _out_of_range(f"CRVHDR {','.join(args[1:])}")
        regs[f"CRVHDR_{n}"] = f"{name},{sn},{fmt},{limit!r},{coeff}"

    # -- alarms and relays ------------------------------------------------------------------------
    def _alarm_states(self, channel: str, t: float) -> tuple[bool, bool]:
        fields = self._regs().get(f"ALARM_{channel}", "0,+0.0000,+0.0000,+0.0000,0,0,0").split(",")
        if fields[0] != "1":
            return False, False
        return t > float(fields[1]), t < float(fields[2])

    def _cmd_ALARM(self, query, args):
        """``ALARM <input>,<off/on>,<high>,<low>,<deadband>,<latch>,<audible>,<visible>``."""
        regs = self._regs()
        if query:
            self._arity(args, 1)
            return regs.get(f"ALARM_{self._input(args[0])}", "0,+0.0000,+0.0000,+0.0000,0,0,0")
        self._arity(args, 8)
        i = self._input(args[0])
        on, latch, audible, visible = (_to_int(args[k], "alarm flag") for k in (1, 5, 6, 7))
        high, low, deadband = (_to_float(args[k], "alarm value") for k in (2, 3, 4))
        if any(f not in (0, 1) for f in (on, latch, audible, visible)) or deadband < 0:
            raise _out_of_range(f"ALARM {','.join(args)}")
        regs[f"ALARM_{i}"] = f"{on},{high:+.4f},{low:+.4f},{deadband:+.4f},{latch},{audible},{visible}"
        regs.pop(f"ALARMST_{i}", None)

    def _cmd_ALARMST(self, query, args):
        """``ALARMST? <input>`` -> ``<high state>,<low state>`` (latched ones stay until ALMRST)."""
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        i = self._input(args[0])
        regs = self._regs()
        t = float(self.world.temperature(i))
        high, low = self._alarm_states(i, t)
        fields = regs.get(f"ALARM_{i}", "0,0,0,0,0,0,0").split(",")
        if fields[4] == "1":  # latching
            latched = regs.get(f"ALARMST_{i}", "0,0").split(",")
            high, low = high or latched[0] == "1", low or latched[1] == "1"
            regs[f"ALARMST_{i}"] = f"{int(high)},{int(low)}"
        return f"{int(high)},{int(low)}"

    def _cmd_ALMRST(self, query, args):
        if query:
            raise Unrecognised()
        self._arity(args, 0)
        for i in _LS_INPUTS:
            self._regs().pop(f"ALARMST_{i}", None)

    def _cmd_RELAY(self, query, args):
        """``RELAY <relay 1-2>,<mode 0 off/1 on/2 alarm>,<input alarm>,<alarm type 0 low/1 high/2 both>``."""
        regs = self._regs()
        if query:
            self._arity(args, 1)
            return regs.get(f"RELAY_{self._relay(args[0])}", "0,A,0")
        if len(args) not in (2, 4):
            raise CommandError(-109 if len(args) < 2 else -108, "RELAY takes relay,mode[,input,type]")
        n, mode = self._relay(args[0]), _to_int(args[1], "relay mode")
        inp = self._input(args[2]) if len(args) == 4 else "A"
        kind = _to_int(args[3], "alarm type") if len(args) == 4 else 0
        if mode not in (0, 1, 2) or kind not in (0, 1, 2):
            raise _out_of_range(f"RELAY {','.join(args)}")
        regs[f"RELAY_{n}"] = f"{mode},{inp},{kind}"

    def _cmd_RELAYST(self, query, args):
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        mode, inp, kind = self._regs().get(f"RELAY_{self._relay(args[0])}", "0,A,0").split(",")
        if mode != "2":
            return mode
        high, low = (s == "1" for s in self._cmd_ALARMST(True, [inp]).split(","))
        active = low if kind == "0" else high if kind == "1" else (high or low)
        return str(int(active))

    @staticmethod
    def _relay(text: str) -> int:
        n = _to_int(text, "relay")
        if n not in (1, 2):
            raise _out_of_range(f"relay {n} not in [1, 2]")
        return n

    def _cmd_AOUT(self, query, args):
        """``AOUT? <3|4>``: a voltage output's level, percent."""
        if not query:
            raise Unrecognised()
        self._arity(args, 1)
        out = self._output(args[0])
        if out not in (3, 4):
            raise _out_of_range(f"AOUT? output {out} not in [3, 4]")
        th = self.state.thermal
        return f"{th.manual_output[out] if th.heater_range[out] else 0.0:+.3f}"

    def _cmd_FILTER(self, query, args):
        return self._multi("FILTER", query, args, [("filter on", 0, 1, True), ("points", 2, 64, True),
                                                    ("window", 1, 10, True)], "1,10,2", self._input)

    def _cmd_MODE(self, query, args):
        regs = self._regs()
        if query:
            self._arity(args, 0)
            return regs.get("MODE", "1")
        self._arity(args, 1)
        v = _to_int(args[0], "mode")
        if v not in (0, 1, 2):
            raise _out_of_range(f"MODE {v}; allowed: 0 local, 1 remote, 2 remote with lock")
        regs["MODE"] = str(v)

    def _cmd_INNAME(self, query, args):
        regs = self._regs()
        if query:
            self._arity(args, 1)
            i = self._input(args[0])
            return f"{regs.get(f'INNAME_{i}', f'Input {i}'):<{_LS_NAME_WIDTH}}"  # a fixed-width field
        if len(args) != 2:
            raise CommandError(-109, "expected input,name")
        i = self._input(args[0])
        name = args[1].strip().strip('"').rstrip()
        if len(name) > _LS_NAME_WIDTH:
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
        keep = {k: v for k, v in self._regs().items() if k.startswith(("INNAME", "INTYPE", "INCRV", "CRVHDR", "TLIMIT"))}
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
