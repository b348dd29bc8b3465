"""The SR830 lock-in amplifier (role ``lockin_a`` / ``lockin_b``).
"""

from __future__ import annotations

import math
import re
import struct
import time
from collections import deque
from typing import Callable

from corrlab.errors import PlanError
from corrlab.instruments.sim.models.base import (
    Binary, CommandError, DialectModel, StatusMixin, Unrecognised, _out_of_range, _to_float, _to_int, reset_dataclass,
    split_args,
)
from corrlab.instruments.sim.state import BenchState, LockinState


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

    The time constant and slope filter the outputs in the world (the record, the test tone's
    bandwidth, the spot readings' noise). Not simulated: the X/Y noise displays (DDEF j=2 reads 0), the offset/expand applied to
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
    _CMD = re.compile(r"^(\*[A-Za-z]{3}|[A-Za-z]{4})\s*(\?)?\s*(.*)$")  # the manual allows "SRAT ?"

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

    def _cmd_FPOP(self, query, args):
        """Front-panel BNC source: ``FPOP i,j`` (i = 1 CH1: j 0 display / 1 X; i = 2 CH2: 0 display / 1 Y)."""
        if query:
            self._arity(args, 1)
            ch = _to_int(args[0], "FPOP channel")
            if ch not in (1, 2):
                raise _out_of_range(f"FPOP channel {ch}")
            return self.li.registers.get(f"FPOP{ch}", "1")
        self._arity(args, 2)
        ch, j = (_to_int(a, "FPOP") for a in args)
        if ch not in (1, 2) or j not in (0, 1):
            raise _out_of_range(f"FPOP {ch},{j}")
        self.li.registers[f"FPOP{ch}"] = str(j)
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
