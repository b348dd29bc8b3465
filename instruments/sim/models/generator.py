"""The Agilent/Keysight 33500 two-channel generator (role ``generator``).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from corrlab.errors import PlanError
from corrlab.instruments.sim.models.base import (
    CommandError, Unrecognised, _bad_data, _illegal, _out_of_range, _to_float, _to_int, reset_dataclass,
)
from corrlab.instruments.sim.models.scpi import Call, ScpiModel, _boolean, _keyword, _number, _sci
from corrlab.instruments.sim.state import GeneratorChannelState


#: the models of the series this simulator presents (``*IDN?``): vendor, channels, top frequency
SERIES: dict[str, tuple[str, int, float]] = {
    "33521A": ("Agilent Technologies", 1, 30e6), "33522A": ("Agilent Technologies", 2, 30e6),
    "33509B": ("Keysight Technologies", 1, 20e6), "33510B": ("Keysight Technologies", 2, 20e6),
    "33511B": ("Keysight Technologies", 1, 20e6), "33512B": ("Keysight Technologies", 2, 20e6),
    "33521B": ("Keysight Technologies", 1, 30e6), "33522B": ("Keysight Technologies", 2, 30e6),
    "33611A": ("Keysight Technologies", 1, 80e6), "33612A": ("Keysight Technologies", 2, 80e6),
    "33621A": ("Keysight Technologies", 1, 120e6), "33622A": ("Keysight Technologies", 2, 120e6),
}
INFINITE = 9.9e37  # SCPI's INFinity, as the 33500 answers it
_INF_CYCLES = int(INFINITE)  # BURS:NCYC INF, kept in the integer field

_SHAPES = ("SINusoid", "SQUare", "TRIangle", "RAMP", "PULSe", "PRBS", "NOISe", "ARB", "DC")
_SLOPES = ("POSitive", "NEGative")
_ARB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,11}$")
_ARB_MIN_POINTS = 8
_ARB_MAX_POINTS = 65_536  # per waveform without the MEM option
_VOLATILE_POINTS = 1_048_576  # volatile memory per channel


class Agilent33500Model(ScpiModel):
    """Agilent/Keysight 33500-series generator (channel 1 = side A, 2 = side B), presenting
    the model ``model`` of :data:`SERIES` in ``*IDN?`` (default 33522A; e.g. ``33522B`` for
    clients that pick their channel count and limits from the model), with that model's
    channel count (``SOUR2`` on a one-channel model: -114) and top frequency.

    Serves the instrument-level forms (``FUNC``, ``FREQ`` ... act on channel 1) and the
    channel forms (``SOUR{ch}:...``, ``OUTP{ch}``) of everything ``Agilent33500`` and
    ``Agilent33500Channel`` send: shape, frequency, amplitude (+unit, high/low levels),
    offset, phase, square/ramp/pulse parameters, output and load, burst state/mode/period/
    cycles, arb selection/advance/filter/sample rate, ``DATA:VOL:CLE``, ``DATA:ARB:DAC``
    (name, 8-65536 values in [-32767, 32767]) and ``DATA:ARB`` (floats in [-1, 1], stored as
    DAC values) into the channel's volatile memory, ``DATA:VOL:CAT?``, ``TRIG:SOUR``,
    ``OUTP:TRIG``, ``PHAS:SYNC``, ``DISP:TEXT``, ``SYST:BEEP``; per channel also
    ``FREQ:MODE``, ``TRIG{ch}:SOUR/SLOP/COUN/DEL/TIM/LEV``, ``OUTP{ch}:POL``,
    ``OUTP{ch}:SYNC:MODE/POL``, ``BURS:PHAS``, ``BURS:GATE:POL``, ``BURS:NCYC INF``; for the
    instrument ``OUTP:SYNC``, ``OUTP:SYNC:SOUR``, ``OUTP:TRIG:SLOP/SOUR``. Amplitude and offset
    are interlocked against the output's range (50 ohm: |offset| + Vpp/2 <= 5 V; -221 beyond
    it). A numeric query with ``MIN``/``MAX`` (``FREQ? MAX``) answers the limit; ``*TRG``
    counts a trigger and calls ``world.trigger()``; ``*OPC?`` answers 1 (``*WAI`` returns at once).

    Numbers are answered in the 33500 style (``+1.000000000000000E+03``); ``FUNC:ARB?``
    answers the quoted name as SCPI string data. Out-of-range values are refused with
    ``-222`` (the setting keeps its value). Not simulated: the real ``*TRG`` acts only with
    ``TRIG:SOUR BUS`` (here every ``*TRG`` reaches the world; the source is stored).
    """

    name = "Agilent33500"
    terminator = b"\n"

    def __init__(self, state, world, model: str = "33522A"):
        if model not in SERIES:
            raise PlanError(f"Agilent33500Model: model must be one of {', '.join(SERIES)}; got {model!r}")
        self.model = model
        vendor, self.n_channels, self.max_frequency = SERIES[model]
        self.idn = f"{vendor},{model},SIM0000001,2.03-1.19-2.00-52-00"
        super().__init__(state, world)

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
        if n not in self.state.generator.channels or n > self.n_channels:
            raise CommandError(-114, f"Header suffix out of range;channel {n}")
        return self.state.generator.channels[n]

    def field(self, attr: str, parse: Callable[[str], Any], fmt: Callable[[Any], str], node: str = "SOUR",
              check: Callable[[GeneratorChannelState, str, Any], None] | None = None):
        def handler(call: Call):
            c = self.ch(call, node)
            if call.query:
                if call.args:  # FREQ? MIN / FREQ? MAX: the limit (the parser maps MIN/MAX)
                    return fmt(parse(call.one(attr)))
                return fmt(getattr(c, attr))
            value = parse(call.one(attr))
            if check is not None:
                check(c, attr, value)
            setattr(c, attr, value)
            return None

        return handler

    def register(self, key: str, default: str, parse: Callable[[str], str], fmt: Callable[[str], str] = str,
                 node: str = "SOUR"):
        def handler(call: Call):
            c = self.ch(call, node)
            if call.query:
                if call.args:
                    return fmt(parse(call.one(key)))
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
        self.add(S + "FREQuency", self.field("frequency", self.num("FREQ", 1e-6, self.max_frequency, 1e3), _sci))
        self.add(S + "FREQuency MODE", self.register("FREQ:MODE", "CW", self._freq_mode))
        self.add(S + "VOLTage", self.field("amplitude", self.num("VOLT", 1e-3, 10.0, 0.1), _sci, check=self._interlock))
        self.add(S + "VOLTage UNIT", self.register("VOLT:UNIT", "VPP", self.kw("VOLT:UNIT", ("VPP", "VRMS", "DBM"))))
        self.add(S + "VOLTage OFFSet", self.field("offset", self.num("VOLT:OFFS", -5.0, 5.0, 0.0), _sci,
                                                  check=self._interlock))
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
        self.add("OUTPut# POLarity", self.register("OUTP:POL", "NORM", self.kw("OUTP:POL", ("NORMal", "INVerted")),
                                                   node="OUTP"))
        self.add("OUTPut TRIGger", self.register("OUTP:TRIG", "0", self.onoff("OUTP:TRIG")))
        self.add("OUTPut TRIGger SLOPe", self.register("OUTP:TRIG:SLOP", "POS", self.kw("OUTP:TRIG:SLOP", _SLOPES)))
        self.add("OUTPut TRIGger SOURce", self.register("OUTP:TRIG:SOUR", "CH1", self.kw("OUTP:TRIG:SOUR", self._chans())))
        self.add("OUTPut SYNC [STATe]", self.instrument_register("OUTP:SYNC", "1", self.onoff("OUTP:SYNC")))
        self.add("OUTPut SYNC SOURce", self.instrument_register("OUTP:SYNC:SOUR", "CH1",
                                                                self.kw("OUTP:SYNC:SOUR", self._chans())))
        self.add("OUTPut# SYNC MODE", self.register("OUTP:SYNC:MODE", "NORM",
                                                    self.kw("OUTP:SYNC:MODE", ("NORMal", "CARRier", "MARKer")), node="OUTP"))
        self.add("OUTPut# SYNC POLarity", self.register("OUTP:SYNC:POL", "NORM",
                                                        self.kw("OUTP:SYNC:POL", ("NORMal", "INVerted")), node="OUTP"))
        self.add(S + "BURSt STATe", self.field("burst_state", lambda t: _boolean(t, "BURS:STAT"), bool_fmt))
        self.add(S + "BURSt MODE", self.register("BURS:MODE", "TRIG", self.kw("BURS:MODE", ("TRIGgered", "GATed"))))
        self.add(S + "BURSt INTernal PERiod",
                 self.register("BURS:INT:PER", "0.01", self.num_reg("BURS:INT:PER", 1e-6, 8000.0, 0.01), self.sci_reg))
        self.add(S + "BURSt NCYCles", self.field("burst_ncycles", self._ncycles,
                                                        lambda v: _sci(INFINITE if v == _INF_CYCLES else float(v))))
        self.add(S + "BURSt PHASe",
                 self.register("BURS:PHAS", "0.0", self.num_reg("BURS:PHAS", -360.0, 360.0, 0.0), self.sci_reg))
        self.add(S + "BURSt GATE POLarity",
                 self.register("BURS:GATE:POL", "NORM", self.kw("BURS:GATE:POL", ("NORMal", "INVerted"))))
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
        self.add("TRIGger# SLOPe", self.register("TRIG:SLOP", "POS", self.kw("TRIG:SLOP", _SLOPES), node="TRIG"))
        self.add("TRIGger# COUNt", self.register("TRIG:COUN", "1.0", self._trigger_count, self.sci_reg, node="TRIG"))
        self.add("TRIGger# DELay",
                 self.register("TRIG:DEL", "0.0", self.num_reg("TRIG:DEL", 0.0, 1000.0, 0.0), self.sci_reg, node="TRIG"))
        self.add("TRIGger# TIMer",
                 self.register("TRIG:TIM", "0.001", self.num_reg("TRIG:TIM", 1e-6, 8000.0, 1e-3), self.sci_reg, node="TRIG"))
        self.add("TRIGger# LEVel",
                 self.register("TRIG:LEV", "1.0", self.num_reg("TRIG:LEV", 0.9, 3.8, 1.0), self.sci_reg, node="TRIG"))
        self.add("DISPlay TEXT", self._display_text)
        self.add("DISPlay TEXT CLEar", self._display_clear)
        self.add("SYSTem BEEPer [IMMediate]", self._beep)

    def onoff(self, what: str) -> Callable[[str], str]:
        return lambda text: "1" if _boolean(text, what) else "0"

    def _chans(self) -> tuple[str, ...]:
        return tuple(f"CH{n}" for n in range(1, self.n_channels + 1))

    def instrument_register(self, key: str, default: str, parse: Callable[[str], str]):
        """A setting of the instrument, not of a channel (kept with channel 1's registers)."""

        def handler(call: Call):
            regs = self.scpi_registers()
            if call.query:
                return regs.get(key, default)
            regs[key] = parse(call.one(key))
            return None

        return handler

    # -- special handlers ----------------------------------------------------------------------
    @staticmethod
    def _interlock(c: GeneratorChannelState, attr: str, value: float) -> None:
        """Amplitude and offset share the output's range: |offset| + Vpp/2 <= 10 V x R/(R + 50 ohm)
        for the load setting R (5 V into 50 ohm, 10 V into high Z); a setting beyond it is a
        settings conflict (-221) and changes nothing. Checked in Vpp only."""
        if c.registers.get("VOLT:UNIT", "VPP") != "VPP":
            return
        amplitude = value if attr == "amplitude" else c.amplitude
        offset = value if attr == "offset" else c.offset
        load = float(c.registers.get("OUTP:LOAD", "50.0"))
        limit = 10.0 if load >= INFINITE else 10.0 * load / (load + 50.0)
        if abs(offset) + amplitude / 2 > limit + 1e-9:
            raise CommandError(-221, f"Settings conflict;|offset| + amplitude/2 = {abs(offset) + amplitude / 2:g} V "
                                     f"exceeds {limit:g} V at a {load:g} ohm load")

    @staticmethod
    def _freq_mode(text: str) -> str:
        mode = _keyword(text, ("CW", "FIXed", "SWEep", "LIST"), "FREQ:MODE")
        return "CW" if mode == "FIX" else mode  # FIXed is CW's synonym; the query answers CW

    @staticmethod
    def _trigger_count(text: str) -> str:
        if text.strip().upper() in ("INF", "INFINITY"):
            return repr(INFINITE)
        value = _number(text, "TRIG:COUN", 1, 1_000_000, 1)
        if not float(value).is_integer():
            raise _bad_data(f"TRIG:COUN {text!r} is not an integer")
        return repr(float(value))

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
        if text.strip().upper() in ("INF", "INFINITY"):
            return _INF_CYCLES
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
