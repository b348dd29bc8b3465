"""The simulated instruments against their manuals and against an independent client.

Part 1, per instrument: a table of manual commands with the reply format the manual gives,
sent over a plain TCP socket to the server on 127.0.0.1 (an OS-assigned port), including the
grammar the manuals allow (case, short/long SCPI forms, numeric suffixes, ``;`` chaining,
whitespace before ``?``) and what an unknown header does (no reply; an error queued or a
status bit set; a warning in the log naming the instrument and the header).

Part 2: QCoDeS's unmodified drivers (SR830, Keysight 33522B, LakeShore Model 336) through
pyvisa-py (``@py``, ``TCPIP0::127.0.0.1::<port>::SOCKET``). Every parameter they offer is
read, and written back where settable (with the value read, or the first valid value when
the driver's own validator refuses what it read); a parameter counts as ok when no call
raises and the instrument records no error while serving it. The counts are printed
(``pytest -s``) and each failure must be one of the named exceptions below, with its reason:
all of them are the driver's, not the dialect's (README, "The simulated bench").
"""

from __future__ import annotations

import logging
import math
import re
import socket
import struct
import time

import pytest
from corrlab.instruments.sim.models import (
    Agilent33500Model,
    ESP300Model,
    FastDigitizerModel,
    Keithley2750Model,
    LakeShore336Model,
    SR830Model,
)
from corrlab.instruments.sim.server import SimServer
from corrlab.instruments.sim.state import BenchState, StaticWorld
from corrlab.instruments.sim.world import OscillatorWorld

FLOAT = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
INT = r"[+-]?\d+"
SCI = r"[+-]\d\.\d{15}E[+-]\d{2}"  # the 33500's numeric replies


class Line:
    """A raw socket to one server: send a message, read one reply line (or nothing)."""

    def __init__(self, port: int, terminator: bytes):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
        self.terminator = terminator
        self.buf = b""

    def send(self, message: str, end: bytes = b"\n") -> None:
        self.sock.sendall(message.encode("ascii") + end)

    def ask(self, message: str, end: bytes = b"\n") -> str:
        self.send(message, end)
        while self.terminator not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, f"connection closed waiting for the reply to {message!r}"
            self.buf += chunk
        line, _, self.buf = self.buf.partition(self.terminator)
        return line.decode("ascii")

    def read_bytes(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self.sock.recv(4096)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def silent(self, message: str, wait: float = 0.15) -> bool:
        """Send a message and check that nothing comes back."""
        self.send(message)
        self.sock.settimeout(wait)
        try:
            got = self.sock.recv(4096)
        except TimeoutError:
            got = b""
        finally:
            self.sock.settimeout(1.0)
        return got == b"" and self.buf == b""

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def served():
    """``served(model) -> (server, line)``; every server and socket is closed at the end."""
    opened = []

    def serve(model):
        server = SimServer(model, name=model.name).start()
        line = Line(server.port, model.terminator)
        opened.append((server, line))
        return server, line

    yield serve
    for server, line in opened:
        line.close()
        server.stop()


def check_table(line: Line, table: list[tuple[str, str]]) -> None:
    for command, pattern in table:
        reply = line.ask(command)
        assert re.fullmatch(pattern, reply), f"{command!r} -> {reply!r}, the manual's format is {pattern!r}"


# =========================================================================== SR830

SR830_TABLE = [  # (query, reply format), SR830 manual chapter 5
    ("*IDN?", r"Stanford_Research_Systems,SR830,s/n\w+,ver\d\.\d{2}"),
    ("PHAS?", FLOAT), ("FMOD?", "[01]"), ("FREQ?", FLOAT), ("RSLP?", "[0-2]"), ("HARM?", r"\d+"),
    ("SLVL?", FLOAT), ("ISRC?", "[0-3]"), ("IGND?", "[01]"), ("ICPL?", "[01]"), ("ILIN?", "[0-3]"),
    ("SENS?", r"\d{1,2}"), ("RMOD?", "[0-2]"), ("OFLT?", r"\d{1,2}"), ("OFSL?", "[0-3]"), ("SYNC?", "[01]"),
    ("DDEF? 1", r"[0-4],[0-2]"), ("FPOP? 1", "[01]"), ("OEXP? 1", FLOAT + r",[0-2]"),
    ("OAUX? 1", FLOAT), ("AUXV? 1", FLOAT), ("OUTX?", "[01]"), ("OVRM?", "[01]"), ("KCLK?", "[01]"),
    ("ALRM?", "[01]"), ("SRAT?", r"\d{1,2}"), ("SEND?", "[01]"), ("TSTR?", "[01]"), ("SPTS?", r"\d+"),
    ("OUTP? 1", FLOAT), ("OUTP? 4", FLOAT), ("OUTR? 2", FLOAT), ("SNAP? 1,2,9", ",".join([FLOAT] * 3)),
    ("*ESR?", r"\d+"), ("*ESE?", r"\d+"), ("*SRE?", r"\d+"), ("*STB?", r"\d+"), ("*PSC?", "[01]"),
    ("ERRS?", r"\d+"), ("ERRE?", r"\d+"), ("LIAS?", r"\d+"), ("LIAE?", r"\d+"), ("LOCL?", "[0-2]"),
    # the grammar: any case, whitespace before '?' and between parameters (QCoDeS sends these)
    ("srat ?", r"\d{1,2}"), ("DDEF ? 1", r"[0-4],[0-2]"), ("OEXP ? 2", FLOAT + r",[0-2]"), ("snap ? 1, 2", FLOAT + "," + FLOAT),
]


def test_sr830_manual_queries_and_reply_formats(served):
    _, line = served(_sr830())
    check_table(line, SR830_TABLE)
    assert line.ask("FREQ?;PHAS?;SENS?").count(";") == 2  # chained queries, one reply line


def _sr830(state=None):
    state = state or BenchState()
    return SR830Model(state, StaticWorld(state), "a")


def test_sr830_settings_round_trip_in_the_manuals_forms(served):
    _, line = served(_sr830())
    for setting, query, want in [
        ("FREQ 1234.5", "FREQ?", "1234.5"), ("PHAS 541.0", "PHAS?", "-179.00"), ("SENS 19", "SENS?", "19"),
        ("OFLT 10", "OFLT?", "10"), ("DDEF 2, 1, 0", "DDEF? 2", "1,0"), ("OEXP 2, 10.5, 1", "OEXP? 2", "10.50,1"),
        ("AUXV 3, -1.25", "AUXV? 3", "-1.250"), ("FPOP 1,0", "FPOP? 1", "0"), ("SRAT 13.000000", "SRAT?", "13"),
        ("harm 3;slvl 0.5", "HARM?;SLVL?", "3;0.500"),
    ]:
        line.send(setting)
        assert line.ask(query) == want, setting


def test_sr830_buffer_transfers_trca_trcb_trcl(served):
    state = BenchState()
    _, line = served(_sr830(state))
    line.send("SRAT 14;SEND 1;REST;STRT")
    for _ in range(5):
        line.send("TRIG")
    assert line.ask("SPTS ?") == "5"
    ascii_values = [float(v) for v in line.ask("TRCA ? 1,0,5").split(",")]
    assert ascii_values == pytest.approx([1.0e-3] * 5, rel=1e-6)  # CH1 displays X (StaticWorld)
    line.send("TRCB ? 1,0,5")
    assert struct.unpack("<5f", line.read_bytes(20)) == pytest.approx(ascii_values, rel=1e-6)
    line.send("TRCL ? 1,0,5")
    raw = line.read_bytes(20)  # exactly 4 bytes a point, no terminator
    words = struct.unpack("<10h", raw)
    decoded = [m * 2.0 ** (e - 124) for m, e in zip(words[::2], words[1::2])]  # the manual's formula
    assert decoded == pytest.approx(ascii_values, rel=1e-4)
    assert line.ask("*ESR?") == "0"


def test_sr830_time_constant_filters_the_output_noise(served):
    """White noise through the output filter: rms proportional to sqrt(ENBW), ENBW = 1/(8 tau)
    at 12 dB/oct and 5/(64 tau) at 24 dB/oct (SR830 manual)."""
    state = BenchState()
    world = OscillatorWorld(state, seed=5)  # the test tone is off: a spot reading is noise only
    _, line = served(SR830Model(state, world, "a"))
    line.send("OFSL 1;OFLT 2")  # 100 us
    fast = [float(v) for v in line.ask("SNAP? 1,2").split(",")]
    line.send("OFLT 10")  # 1 s: ENBW 10**4 times narrower
    slow = [float(v) for v in line.ask("SNAP? 1,2").split(",")]
    assert slow == pytest.approx([v / 100 for v in fast], rel=1e-5)
    line.send("OFSL 3")  # 24 dB/oct
    steep = [float(v) for v in line.ask("SNAP? 1,2").split(",")]
    assert steep == pytest.approx([v * math.sqrt((5 / 64) / (1 / 8)) for v in slow], rel=1e-5)


def test_sr830_unknown_query_is_silent_sets_cme_and_is_logged(served, caplog):
    model = _sr830()
    _, line = served(model)
    with caplog.at_level(logging.WARNING, logger="corrlab.instruments.sim.models"):
        assert line.silent("FOOB ?")
    assert line.ask("*ESR?") == "32"  # CME, the command error bit
    assert "SR830" in caplog.text and "FOOB ?" in caplog.text


# =========================================================================== 33500

GEN_TABLE = [
    ("*IDN?", r"Keysight Technologies,33522B,\w+,[\d.-]+"),
    ("SOURce1:FUNCtion?", "SIN"), ("FUNC?", "SIN"), ("sour2:func?", "SIN"),
    ("SOURce1:FREQuency?", SCI), ("FREQ? MAX", r"\+3\.000000000000000E\+07"), ("FREQ? MIN", r"\+1\.0+E-06"),
    ("SOURce1:FREQuency:MODE?", "CW"), ("SOURce2:PHASe?", SCI), ("VOLT?", SCI), ("VOLT:UNIT?", "VPP"),
    ("VOLT:OFFS?", SCI), ("VOLT:HIGH?", SCI), ("VOLT:LOW?", SCI), ("FUNC:SQU:DCYC?", SCI),
    ("FUNC:RAMP:SYMM?", SCI), ("FUNC:PULS:WIDT?", SCI), ("FUNC:PULS:TRAN?", SCI),
    ("OUTPut1?", "[01]"), ("OUTP2?", "[01]"), ("OUTP1:LOAD?", SCI), ("OUTPut1:POLarity?", "NORM"),
    ("OUTPut:SYNC?", "[01]"), ("OUTPut:SYNC:SOURce?", "CH[12]"), ("OUTP1:SYNC:MODE?", "NORM"),
    ("OUTP:TRIG?", "[01]"), ("OUTP:TRIG:SLOP?", "POS"),
    ("TRIGger1:SOURce?", "IMM"), ("TRIGger1:SLOPe?", "POS"), ("TRIGger2:COUNt?", SCI), ("TRIG1:DEL?", SCI),
    ("TRIG1:TIM?", SCI), ("SOURce1:BURSt:STATe?", "[01]"), ("SOURce1:BURSt:MODE?", "TRIG"),
    ("SOURce1:BURSt:NCYCles?", SCI), ("SOURce1:BURSt:PHASe?", SCI), ("SOURce1:BURSt:GATE:POLarity?", "NORM"),
    ("SOURce1:BURSt:INTernal:PERiod?", SCI), ("SOUR1:DATA:VOL:CAT?", '".*"'),
    ("*OPC?", "1"), ("*ESR?", r"\d+"), ("*STB?", r"\d+"), ("SYSTem:ERRor?", r'\+0,"No error"'),
]


def test_33500_manual_queries_short_long_forms_and_model_choice(served):
    state = BenchState()
    _, line = served(Agilent33500Model(state, StaticWorld(state), model="33522B"))
    check_table(line, GEN_TABLE)
    line.send("SOURce2:FREQuency 2500;VOLTage 0.5;:OUTPut2:POLarity INVerted")  # ';' continues at SOURce2
    assert line.ask("SOUR2:FREQ?;SOUR2:VOLT?;OUTP2:POL?") == "+2.500000000000000E+03;+5.000000000000000E-01;INV"
    assert state.generator.channels[1].amplitude == 0.1  # channel 1 untouched
    line.send("BURS:NCYC INF")
    assert line.ask("BURS:NCYC?") == "+9.900000000000000E+37"
    assert line.ask("SYST:ERR?") == '+0,"No error"'


def test_33500_amplitude_and_offset_share_the_outputs_range(served):
    state = BenchState()
    _, line = served(Agilent33500Model(state, StaticWorld(state)))
    line.send("VOLT:OFFS 2;VOLT 8")  # 2 + 8/2 = 6 V > 5 V into 50 ohm
    assert line.ask("VOLT?;SYST:ERR?") == '+1.000000000000000E-01;-221,"Settings conflict;|offset| + amplitude/2 = 6 V exceeds 5 V at a 50 ohm load"'
    line.send("OUTP1:LOAD INF;:VOLT 8")  # high Z: 10 V
    assert line.ask("VOLT?;SYST:ERR?") == '+8.000000000000000E+00;+0,"No error"'


def test_33500_one_channel_model_and_unknown_headers(served, caplog):
    state = BenchState()
    model = Agilent33500Model(state, StaticWorld(state), model="33511B")
    _, line = served(model)
    assert line.ask("*IDN?").startswith("Keysight Technologies,33511B,")
    assert line.ask("FREQ? MAX") == "+2.000000000000000E+07"
    with caplog.at_level(logging.WARNING, logger="corrlab.instruments.sim.models"):
        assert line.silent("SOUR1:FREQ:BOGUS?")
    assert line.silent("SOUR2:FREQ?")  # one channel: header suffix out of range
    assert line.ask("SYST:ERR?") == '-113,"Undefined header"'
    assert line.ask("SYST:ERR?").startswith("-114,")
    assert line.ask("SYST:ERR?") == '+0,"No error"'
    assert "Agilent33500" in caplog.text and "SOUR1:FREQ:BOGUS?" in caplog.text
    with pytest.raises(Exception, match="model must be one of"):
        Agilent33500Model(state, None, model="33999Z")


# =========================================================================== LakeShore 336

LS_TABLE = [  # Model 336 manual, chapter 6
    ("*IDN?", r"LSCI,MODEL336,[^,]+,\d\.\d"), ("KRDG? A", r"[+-]\d+\.\d{4}"),
    ("KRDG? 0", ",".join([r"[+-]\d+\.\d{4}"] * 4)), ("CRDG? B", r"[+-]\d+\.\d{4}"), ("SRDG? C", r"[+-]\d+\.\d{4}"),
    ("RDGST? A", r"\d{1,3}"), ("SETP? 1", r"[+-]\d+\.\d{4}"), ("RANGE? 1", "[0-3]"), ("RANGE? 3", "[01]"),
    ("MOUT? 1", r"[+-]\d+\.\d{3}"), ("HTR? 1", r"[+-]\d+\.\d{3}"), ("AOUT? 3", r"[+-]\d+\.\d{3}"),
    ("PID? 1", ",".join([FLOAT] * 3)), ("RAMP? 1", r"[01]," + FLOAT), ("RAMPST? 1", "[01]"),
    ("OUTMODE? 1", r"[0-5],[0-4],[01]"), ("HTRSET? 1", r"[12],[0-4],[+-]\d\.\d{3},[12]"), ("HTRST? 1", "[0-2]"),
    ("INNAME? A", r".{15}"), ("INTYPE? A", r"[0-5],[01],\d,[01],[1-3]"), ("INCRV? A", r"\d{1,2}"),
    ("CRVHDR? 6", r"PT-100 {9},.{10},[1-4],[+-]\d+\.\d{3},[12]"), ("TLIMIT? A", r"[+-]\d+\.\d{4}"),
    ("ALARM? A", r"[01]," + ",".join([r"[+-]\d+\.\d{4}"] * 3) + r",[01],[01],[01]"), ("ALARMST? A", "[01],[01]"),
    ("RELAY? 1", r"[0-2],[A-D],[0-2]"), ("RELAYST? 1", "[01]"), ("FILTER? A", r"[01],\d+,\d+"), ("MODE?", "[0-2]"),
    ("*ESR?", r"\d+"), ("*STB?", r"\d+"), ("*OPC?", "1"), ("*TST?", "0"),
    ("krdg ? a", r"[+-]\d+\.\d{4}"),  # any case, a space before '?'
]


def _lakeshore(state=None, world=None):
    state = state or BenchState()
    return LakeShore336Model(state, world or StaticWorld(state))


def test_lakeshore_manual_queries_and_reply_formats(served):
    _, line = served(_lakeshore())
    assert line.terminator == b"\r\n"
    check_table(line, LS_TABLE)
    line.send('INNAME B,"Sample stage"')
    assert line.ask("INNAME? B") == "Sample stage   "
    line.send("HTRSET 2,2,0,1.5,2")
    assert line.ask("HTRSET? 2") == "2,0,+1.500,2"
    assert line.silent("HTRSET? 3")  # outputs 3 and 4 are voltage outputs: no heater setup
    assert line.ask("*ESR?") == "16"  # EXE


def test_lakeshore_unknown_query_is_silent_sets_cme_and_is_logged(served, caplog):
    _, line = served(_lakeshore())
    with caplog.at_level(logging.WARNING, logger="corrlab.instruments.sim.models"):
        assert line.silent("SYST:ERR?")  # not a LakeShore command
    assert line.ask("*ESR?") == "32"
    assert "LakeShore336" in caplog.text and "SYST:ERR?" in caplog.text


def test_lakeshore_tlimit_switches_the_heaters_off_and_a_range_limits_the_temperature(served):
    state = BenchState()
    world = OscillatorWorld(state, seed=3, params={"temperature_noise_k": 0.0})
    _, line = served(_lakeshore(state, world))
    line.send("SETP 1,50;RANGE 1,1")  # low range: holds at most 10 K
    assert float(line.ask("KRDG? A")) == pytest.approx(10.0)
    line.send("RANGE 1,2")  # medium: 50 K is within reach
    assert float(line.ask("KRDG? A")) == pytest.approx(50.0)
    line.send("TLIMIT A,40")
    assert float(line.ask("KRDG? A")) == pytest.approx(50.0)  # above the limit: every output goes off
    assert line.ask("RANGE? 1") == "0"
    assert float(line.ask("KRDG? A")) == pytest.approx(295.0)  # the bath, heater off
    line.send("ALARM A,1,300,1,0,1,0,0")
    line.ask("KRDG? A")
    assert line.ask("ALARMST? A") == "0,0"
    line.send("TLIMIT A,0;ALARM A,1,100,1,0,1,0,0")
    line.ask("KRDG? A")
    assert line.ask("ALARMST? A") == "1,0"  # high alarm, latched


# =========================================================================== ESP300, 2750, digitizer


def test_esp300_manual_queries_and_its_cr_terminator(served):
    state = BenchState()
    model = ESP300Model(state, StaticWorld(state))
    _, line = served(model)
    check_table(line, [("*IDN?", r"ESP300 Version [\d.]+ .*"), ("VE?", r"ESP300 Version .*"), ("TE?", "0"),
                       ("1TP", FLOAT), ("1MO?", "[01]"), ("1MD?", "[01]"), ("1SL?", FLOAT), ("1SR?", FLOAT),
                       ("1SN?", r"\d{1,2}"), ("1VA?", FLOAT), ("1AC?", FLOAT), ("1DP?", FLOAT), ("TB?", r"0, 0, .*"),
                       ("2TH", FLOAT), ("2TV", FLOAT), ("3ID?", r"[\w.-]+, \w+"), ("1VU?", FLOAT), ("1AU?", FLOAT),
                       ("1BA?", FLOAT), ("1FE?", FLOAT), ("1SU?", FLOAT), ("TS", "@"), ("TX", "@")])
    line.send("1MO", end=b"\r")  # the ESP300's own terminator
    assert line.ask("1MO?", end=b"\r") == "1"
    line.send("*RST")
    assert line.ask("TE?") == "0" and list(model.unrecognised) == []


def test_keithley_2750_and_digitizer_manual_queries(served):
    state = BenchState()
    _, sw = served(Keithley2750Model(state, StaticWorld(state)))
    check_table(sw, [("*IDN?", r"KEITHLEY INSTRUMENTS INC\.,MODEL 2750,\w+,.*"), ("ROUTe:CLOSe?", r"\(@\)"),
                     ("SYST:ERR?", r'\+0,"No error"')])
    sw.send(":ROUT:MULT:CLOS (@101,102)")
    assert sw.ask(":route:multiple:close?") == "(@101,102)"
    _, dig = served(FastDigitizerModel(state, StaticWorld(state)))
    check_table(dig, [("*IDN?", r"[^,]+,[^,]+,[^,]+,[^,]+"), ("SENSe:SRATe?", FLOAT), ("SRAT?", FLOAT),
                      ("RECord:LENGth?", r"\d+"), ("CHAN?", "[24]"), ("FORM?", "REAL,32"), ("FORM:BORD?", "SWAP"),
                      ("ACQ:STAT?", "IDLE"), ("SYST:ERR?", r'\+0,"No error"')])


# =========================================================================== QCoDeS, unmodified

#: parameters the QCoDeS drivers offer that cannot work against the real instrument either,
#: with the reason (each is the driver's; README, "The simulated bench")
QCODES_EXCEPTIONS = {
    "SR830": {
        "output_interface": "the driver maps the reply with its line feed ('1\\n'), which only a GPIB read "
                            "without a termination keeps; on a socket the termination is stripped",
        **{f"ch{c}_{kind}": "read with visa_handle.read_raw(), which on a socket returns only at a line feed: "
                            "the binary TRCL block (4 bytes a point, no terminator) has none, or one inside it, "
                            "so the read times out or stops short (GPIB ends the block with EOI); the block is "
                            "checked byte for byte in test_sr830_buffer_transfers_trca_trcb_trcl"
           for c in (1, 2) for kind in ("databuffer", "datatrace")},
    },
    "33522B": {},
    "LakeShore336": {
        **{f"output_{n}.{p}": "the 336's HTRSET has four fields (no output type) and exists on heaters 1-2 only; "
                              "QCoDeS's shared base sends the 335's five (QCoDeS PR #8520)"
           for n in (1, 2, 3, 4) for p in ("output_type", "output_heater_resistance", "output_max_current",
                                           "output_max_user_current", "output_display")},
        **{f"output_{n}.output": "HTR? takes heater 1 or 2; outputs 3-4 are voltage outputs, read with AOUT?"
           for n in (3, 4)},
    },
}


def _walk(node, prefix=""):
    for name, p in node.parameters.items():
        yield prefix + name, p
    for sname, sub in node.submodules.items():
        if hasattr(sub, "parameters"):  # channel lists repeat the channels
            yield from _walk(sub, prefix + sname + ".")


def _exercise(inst, model, *, last=(), before_last=None, skip=("IDN", "timeout")) -> tuple[int, dict[str, str]]:
    """Get (and set back) every parameter; those named in ``last`` go at the end, after
    ``before_last(inst)`` (the SR830's buffer: filled and prepared as its driver requires)."""
    ok, failed = 0, {}
    params = [(n, p) for n, p in _walk(inst) if n not in skip]
    params = [(n, p) for n, p in params if n not in last] + [(n, p) for n, p in params if n in last]
    for i, (name, p) in enumerate(params):
        if before_last is not None and name in last and all(n not in last for n, _ in params[:i]):
            before_last(inst)
        errors_before, unknown_before = model.errors_served, len(model.unrecognised)
        try:
            value = p.get() if p.gettable else None
            if p.settable and value is not None:
                try:
                    p.validate(value)
                except (ValueError, TypeError):  # the driver's own validator refuses its reading
                    valid = getattr(p.vals, "valid_values", ())
                    value = valid[0] if valid else value
                try:
                    p.set(value)
                except RuntimeError as err:
                    if "no `set_cmd` defined" not in str(err):  # a read-only member of a group
                        raise
                if p.gettable:
                    p.get()
            if model.errors_served != errors_before:
                raise RuntimeError(f"the instrument recorded an error; unknown: {list(model.unrecognised)[unknown_before:]}")
            ok += 1
        except Exception as err:  # noqa: BLE001 - a count of what works, failures named below
            failed[name] = f"{type(err).__name__}: {str(err)[:160]}"
            inst.device_clear()
    return ok, failed


def _sr830_fill_buffer(inst):
    inst.buffer_SR("Trigger")
    inst.buffer_reset()
    inst.buffer_start()
    for _ in range(4):
        inst.send_trigger()
    inst.set_sweep_parameters(inst.frequency, 1000.0, 1003.0, n_points=4)  # one setpoint per stored point
    inst.buffer_npts()
    for c in (1, 2):
        getattr(inst, f"ch{c}_databuffer").prepare_buffer_readout()


@pytest.mark.parametrize("which", ["SR830", "33522B", "LakeShore336"])
def test_qcodes_drivers_exercise_every_parameter(which, capsys):
    qcodes = pytest.importorskip("qcodes")
    logging.getLogger("qcodes").setLevel(logging.CRITICAL)
    state = BenchState()
    world = StaticWorld(state)
    if which == "SR830":
        from qcodes.instrument_drivers.stanford_research import SR830 as driver

        model, terminator = SR830Model(state, world, "a"), "\n"
    elif which == "33522B":
        from qcodes.instrument_drivers.Keysight import Keysight33522B as driver

        model, terminator = Agilent33500Model(state, world, model="33522B"), "\n"
    else:
        from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336 as driver

        model, terminator = LakeShore336Model(state, world), "\r\n"
    server = SimServer(model, name=which).start()
    inst = None
    t0 = time.monotonic()
    try:
        inst = driver(f"conformance_{which}_{server.port}", server.resource, visalib="@py",
                      terminator=terminator, timeout=0.25)
        if which == "SR830":
            buffer = [f"ch{c}_{kind}" for c in (1, 2) for kind in ("databuffer", "datatrace")] + ["sweep_setpoints"]
            ok, failed = _exercise(inst, model, last=buffer, before_last=_sr830_fill_buffer)
        else:
            ok, failed = _exercise(inst, model)
    finally:
        if inst is not None:
            inst.close()
        server.stop()
    total = ok + len(failed)
    with capsys.disabled():
        print(f"\nQCoDeS {qcodes.__version__} {driver.__name__} on the simulated {which}: {ok}/{total} parameters ok "
              f"({time.monotonic() - t0:.1f} s)")
        if failed:
            print(f"  not ok: {', '.join(sorted(failed))}")
    expected = QCODES_EXCEPTIONS[which]
    assert set(failed) == set(expected), {k: v for k, v in failed.items() if k not in expected}
    assert total >= 40 and math.isclose(ok / total, 1 - len(expected) / total)
