"""Each unmodified pymeasure 0.16 driver against its simulated server, and the fault modes.

Real client (pyvisa-py, ``@py``), real socket on 127.0.0.1, StaticWorld (fixed readings).
Expected values come from the instruments' manuals and closed forms, not from the models.
Writes are asynchronous: a test inspects the bench state only after a query round trip.
"""

from __future__ import annotations

import logging
import math
import socket
import struct
import time
import warnings

import numpy as np
import pytest
import pyvisa
from pymeasure.instruments.agilent import Agilent33500
from pymeasure.instruments.keithley import Keithley2750
from pymeasure.instruments.keithley.keithley2750 import clean_closed_channels
from pymeasure.instruments.lakeshore import LakeShore3xx
from pymeasure.instruments.newport import ESP300
from pymeasure.instruments.newport.esp300 import AxisError, GeneralError
from pymeasure.instruments.srs import SR830
from pymeasure.instruments.srs.sr830 import LIAStatus

from corrlab.errors import PlanError
from corrlab.instruments.sim.models import (
    MODELS, TERMINATORS, Agilent33500Model, ESP300Model, Keithley2750Model, LakeShore336Model, SR830Model,
)
from corrlab.instruments.sim.server import FAULT_OPTIONS, Faults, SimServer
from corrlab.instruments.sim.state import BenchState, StaticWorld

TMO = pyvisa.constants.StatusCode.error_timeout
X_A, Y_A = 1.0e-3, -2.0e-3  # StaticWorld's lock-in A outputs
X_B, Y_B = 3.0e-3, 4.0e-3


@pytest.fixture
def bench():
    """``bench.open(ModelClass, DriverClass, **driver_kwargs)`` -> (model, server, driver)."""

    class Bench:
        def __init__(self):
            self.state = BenchState()
            self.world = StaticWorld(self.state)
            self.servers: list[SimServer] = []
            self.drivers = []

        def serve(self, model, **kw) -> SimServer:
            server = SimServer(model, **kw).start()
            self.servers.append(server)
            return server

        def driver(self, cls, server, *, timeout=500, read_termination="\n"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # ESP300's SCPIUnknownMixin notice
                drv = cls(server.resource, visa_library="@py", read_termination=read_termination,
                          write_termination="\r\n", timeout=timeout)
            self.drivers.append(drv)
            return drv

        def open(self, model_cls, driver_cls, *, side=None, timeout=500, read_termination="\n", **model_kw):
            model = model_cls(self.state, self.world, side, **model_kw) if side else model_cls(self.state, self.world)
            server = self.serve(model, name=model.name)
            return model, server, self.driver(driver_cls, server, timeout=timeout, read_termination=read_termination)

        def close(self):
            for drv in self.drivers:
                try:
                    drv.adapter.close()
                except Exception:
                    pass
            for server in self.servers:
                server.stop()

    b = Bench()
    yield b
    b.close()


def raw_exchange(port: int, message: bytes, n_bytes: int, timeout: float = 1.0) -> bytes:
    """Send bytes on a plain socket and read exactly ``n_bytes`` back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(message)
        got = b""
        while len(got) < n_bytes:
            chunk = s.recv(n_bytes - len(got))
            if not chunk:
                break
            got += chunk
        s.settimeout(0.1)
        try:
            extra = s.recv(100)
        except socket.timeout:
            extra = b""
    return got + extra


# ============================================================== registry and server basics


def test_registry_names_every_bench_driver_and_its_terminator():
    assert set(MODELS) == {"SR830", "Agilent33500", "LakeShore336", "ESP300", "Keithley2750", "FastDigitizer"}
    assert TERMINATORS["LakeShore336"] == b"\r\n"
    assert {k for k, v in TERMINATORS.items() if v == b"\n"} == set(MODELS) - {"LakeShore336"}


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "192.168.1.20", "::1", "127.0.0.2"])
def test_binding_anything_but_loopback_is_refused(host):
    state = BenchState()
    with pytest.raises(PlanError, match=r"simulated servers bind to 127\.0\.0\.1 only; got"):
        SimServer(Keithley2750Model(state, StaticWorld(state)), host=host)


def test_server_life_cycle(bench):
    server = SimServer(Keithley2750Model(bench.state, bench.world), name="isolation")
    with pytest.raises(PlanError, match="not started"):
        server.port
    with server:
        assert server.running and server.resource == f"TCPIP0::127.0.0.1::{server.port}::SOCKET"
        assert server.address == ("127.0.0.1", server.port)
        with pytest.raises(PlanError, match="already started"):
            server.start()
        with pytest.raises(PlanError, match="cannot bind"):
            SimServer(Keithley2750Model(bench.state, bench.world), port=server.port).start()
    assert not server.running


def test_stop_is_prompt_with_clients_connected_and_a_reply_pending(bench):
    _, server, li = bench.open(SR830Model, SR830, side="a", timeout=200)
    server.faults.delay_replies(1, seconds=30.0)
    with pytest.raises(pyvisa.errors.VisaIOError):
        li.x
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 1.0
    assert not server._threads and server._accept_thread is not None and not server._accept_thread.is_alive()


def test_a_long_message_and_cr_lf_endings(bench):
    _, server, gen = bench.open(Agilent33500Model, Agilent33500)
    points = [(-1) ** i * (i % 32768) for i in range(65_536)]
    gen.ch_1.data_arb("BIG", points, "DAC")
    assert gen.check_errors() == []
    assert bench.state.generator.channels[1].arb_data["BIG"] == points
    assert raw_exchange(server.port, b"FREQ?\r\n", 23) == b"+1.000000000000000E+03\n"


# ============================================================== SR830


def test_sr830_outputs_and_snap(bench):
    _, server, li = bench.open(SR830Model, SR830, side="a")
    assert li.id == "Stanford_Research_Systems,SR830,s/nSIM0A,ver1.07"
    assert li.x == pytest.approx(X_A) and li.y == pytest.approx(Y_A)
    assert li.magnitude == pytest.approx(math.hypot(X_A, Y_A))
    assert li.theta == pytest.approx(math.degrees(math.atan2(Y_A, X_A)), abs=1e-5)
    assert li.xy == pytest.approx([X_A, Y_A])
    six = li.snap("X", "Y", "R", "Theta", "Frequency", "CH1")
    assert six == pytest.approx([X_A, Y_A, math.hypot(X_A, Y_A), math.degrees(math.atan2(Y_A, X_A)), 1000.0, X_A])
    assert "SNAP? 1,2" in server.received and "OUTP?1" in server.received
    _, _, li_b = bench.open(SR830Model, SR830, side="b")
    assert li_b.xy == pytest.approx([X_B, Y_B])
    assert li_b.id.endswith("s/nSIM0B,ver1.07")


def test_sr830_indexed_settings_round_trip_into_the_bench_state(bench):
    _, server, li = bench.open(SR830Model, SR830, side="a")
    li.frequency = 1234.5
    li.phase = 45.0
    li.sine_voltage = 0.5
    li.sensitivity = 5e-3
    li.time_constant = 0.1
    li.filter_slope = 24
    li.harmonic = 2
    assert li.frequency == 1234.5 and "FREQ1.23450e+03" in server.received
    assert li.phase == 45.0 and li.sine_voltage == 0.5
    assert li.sensitivity == 5e-3 and li.time_constant == 0.1 and li.filter_slope == 24 and li.harmonic == 2
    a = bench.state.lockins["a"]
    assert (a.frequency, a.phase_deg, a.sine_voltage) == (1234.5, 45.0, 0.5)
    assert (a.sensitivity_index, a.time_constant_index, a.filter_slope_index, a.harmonic) == (19, 8, 3, 2)
    assert bench.state.lockins["b"].sensitivity_index == 26  # the other side is untouched
    li.filter_synchronous = True
    li.input_config = "A - B"
    li.input_grounding = "Ground"
    li.input_coupling = "DC"
    li.input_notch_config = "Both"
    li.reference_source_trigger = "POS EDGE"
    li.reserve = "Low Noise"
    li.sample_frequency = 64
    assert (li.filter_synchronous, li.input_config, li.input_grounding) == (True, "A - B", "Ground")
    assert (li.input_coupling, li.input_notch_config, li.reference_source_trigger) == ("DC", "Both", "POS EDGE")
    assert (li.reserve, li.sample_frequency) == ("Low Noise", 64)
    assert "SRAT10.000000" in server.received  # pymeasure sends the index as a float
    li.sample_frequency = None
    assert li.sample_frequency is None  # index 14: trigger
    li.reference_source = "External"
    assert li.reference_source == "External" and a.reference_source == 0


def test_sr830_phase_wraps_like_the_manual_says(bench):
    _, _, li = bench.open(SR830Model, SR830, side="a")
    li.phase = 541.0
    assert li.phase == -179.0  # SR830 manual, PHAS: 541 - 360 = 181 -> -179


def test_sr830_displays_aux_and_scaling(bench):
    _, server, li = bench.open(SR830Model, SR830, side="a")
    li.channel1 = "R"
    assert li.channel1 == [1.0, 0.0]  # DDEF? answers "j,k": pymeasure hands back the list
    assert "DDEF1,1,0" in server.received
    assert li.ask("OUTR?1") == f"{math.hypot(X_A, Y_A):.6e}"
    li.aux_out_1 = 1.5
    assert li.aux_out_1 == 1.5 and li.aux_in_1 == 0.0
    assert "AUXV1,1.500000;" in server.received
    # pymeasure quirk: set_scaling sends discreteTruncate(expand, [1, 10, 100]), a value, where
    # the SR830 wants the index 0/1/2: the default expand=0 becomes index 1 (x10) ...
    li.set_scaling("Y", 12.5)
    assert li.get_scaling("Y") == (12.5, 10)
    assert "OEXP 2,12.50,1" in server.received
    # ... and expand=10 sends 10, which the instrument refuses (execution error, unchanged)
    li.set_scaling("Y", 50.0, 10)
    assert li.ask("*ESR?") == "16" and li.get_scaling("Y") == (12.5, 10)
    li.sensitivity = 1.0
    li.auto_offset("X")
    assert li.get_scaling("X") == (pytest.approx(100 * X_A / 1.0, abs=0.01), 1)


def test_sr830_auto_phase_and_gain(bench):
    _, _, li = bench.open(SR830Model, SR830, side="a")
    li.auto_phase()
    assert li.phase == pytest.approx(math.degrees(math.atan2(Y_A, X_A)), abs=0.01)
    li.auto_gain()
    assert li.sensitivity == 5e-3  # the smallest full scale above |R| = 2.24 mV


def test_sr830_status_overload_and_quick_range(bench):
    _, _, li = bench.open(SR830Model, SR830, side="a")
    assert li.lia_status == LIAStatus.NO_ERROR and int(li.err_status) == 0
    assert li.is_out_of_range() is False
    li.time_constant = 10e-6  # quick_range sleeps 5 time constants per step
    li.sensitivity = 2e-9
    assert li.is_out_of_range() is True
    li.quick_range()
    assert li.sensitivity == 5e-3
    assert li.is_out_of_range() is False


def test_sr830_setups(bench):
    _, _, li = bench.open(SR830Model, SR830, side="a")
    li.frequency = 1000.0
    li.sensitivity = 1e-3
    li.save_setup(3)
    li.frequency = 2000.0
    li.sensitivity = 1.0
    li.load_setup(3)
    assert li.frequency == 1000.0 and li.sensitivity == 1e-3


def test_sr830_buffer_binary_transfer(bench):
    _, server, li = bench.open(SR830Model, SR830, side="a", timeout=150)
    li.sample_frequency = None  # trigger mode
    li.reset_buffer()
    li.start_buffer()
    for _ in range(5):
        li.trigger()
    assert li.buffer_count == 5
    ch1 = li.get_buffer(1, 0, 5)  # costs one adapter timeout: pymeasure reads until it expires
    ch2 = li.get_buffer(2, 1, 4)
    assert ch1.dtype == np.float32 and ch1.tolist() == [np.float32(X_A)] * 5
    assert ch2.tolist() == [np.float32(Y_A)] * 3
    assert "TRCB?1,0,5" in server.received
    # exactly 4*count bytes, little-endian float32, no terminator
    assert raw_exchange(server.port, b"TRCB?1,0,2\n", 8) == struct.pack("<2f", X_A, X_A)
    assert li.ask("TRCA?2,0,2") == f"{Y_A:.6e},{Y_A:.6e}"
    li.pause_buffer()
    li.trigger()
    assert li.buffer_count == 5


def test_sr830_trcl_non_normalised_format(bench):
    _, server, li = bench.open(SR830Model, SR830, side="b")
    li.sample_frequency = None
    li.start_scan()
    li.trigger()
    li.trigger()
    assert li.buffer_count == 2  # a round trip before another connection reads the buffer
    raw = raw_exchange(server.port, b"TRCL?1,0,2\n", 8)
    words = struct.unpack("<4h", raw)  # per point: mantissa, exponent; value = m * 2**(e - 124)
    values = [m * 2.0 ** (e - 124) for m, e in zip(words[0::2], words[1::2])]
    assert values == pytest.approx([X_B, X_B], rel=2**-14)


def test_sr830_timed_buffer_follows_the_clock():
    now = [100.0]
    state = BenchState()
    model = SR830Model(state, StaticWorld(state), "a", clock=lambda: now[0])
    model.handle("SRAT8")  # 16 Hz
    model.handle("STRT")
    now[0] += 1.0
    assert model.handle("SPTS?") == [b"17\n"]  # points at t = 0, 1/16, ..., 1
    model.handle("PAUS")
    now[0] += 5.0
    assert model.handle("SPTS?") == [b"17\n"]
    model.handle("STRD")  # delayed start: 0.5 s
    now[0] += 0.25
    assert model.handle("SPTS?") == [b"17\n"]
    now[0] += 0.5
    assert model.handle("SPTS?") == [b"22\n"]  # 17 + (floor(0.25 * 16) + 1)


def test_sr830_unknown_and_refused_commands_set_esr_bits(bench, caplog):
    model, _, li = bench.open(SR830Model, SR830, side="a", timeout=150)
    li.write("FOOB 3")
    assert li.ask("*ESR?") == "32"  # CME
    assert li.ask("*ESR?") == "0"  # reading clears
    li.write("SENS 27")
    assert li.ask("*ESR?") == "16" and li.sensitivity == 1.0  # EXE; unchanged
    with caplog.at_level(logging.WARNING, logger="corrlab.instruments.sim.models"):
        with pytest.raises(pyvisa.errors.VisaIOError) as info:
            li.ask("FOOB?")
    assert info.value.error_code == TMO
    assert list(model.unrecognised) == ["FOOB 3", "FOOB?"]
    assert "unrecognised query 'FOOB?'" in caplog.text
    assert li.ask("FREQ?;PHAS?") == "1000;0.00"  # several queries, one reply line


# ============================================================== Agilent 33500


def test_33500_instrument_level_settings(bench):
    _, server, gen = bench.open(Agilent33500Model, Agilent33500)
    assert gen.id == "Agilent Technologies,33522A,SIM0000001,2.03-1.19-2.00-52-00"
    gen.shape = "SQU"
    gen.frequency = 1000
    gen.amplitude = 0.5
    gen.offset = 0.1
    gen.output = True
    assert (gen.shape, gen.frequency, gen.amplitude, gen.offset, gen.output) == ("SQU", 1000, 0.5, 0.1, True)
    assert "FREQ 1000.000000" in server.received and "OUTP 1" in server.received
    c1 = bench.state.generator.channels[1]
    assert (c1.shape, c1.frequency, c1.amplitude, c1.offset, c1.output) == ("SQU", 1000.0, 0.5, 0.1, True)
    assert bench.state.generator.channels[2].output is False
    gen.amplitude_unit = "VRMS"
    gen.phase = -90
    gen.square_dutycycle = 25
    gen.ramp_symmetry = 40
    gen.output_load = 50
    assert (gen.amplitude_unit, gen.phase, gen.square_dutycycle, gen.ramp_symmetry, gen.output_load) == (
        "VRMS", -90, 25, 40, 50)
    gen.voltage_high = 1.0
    gen.voltage_low = -0.5
    assert (gen.voltage_high, gen.voltage_low, gen.amplitude, gen.offset) == (1.0, -0.5, 1.5, 0.25)
    gen.pulse_period = 1e-3
    assert gen.frequency == 1000  # the pulse period sets the frequency
    gen.pulse_width = 1e-4
    gen.pulse_hold = "DCYCLE"
    gen.pulse_dutycycle = 20
    gen.pulse_transition = 1e-7
    assert (gen.pulse_width, gen.pulse_hold, gen.pulse_dutycycle, gen.pulse_transition) == (1e-4, "DCYC", 20, 1e-7)
    gen.trigger_source = "BUS"
    gen.ext_trig_out = True
    assert (gen.trigger_source, gen.ext_trig_out) == ("BUS", True)
    gen.display = "corrlab; running"
    assert gen.ask("DISP:TEXT?") == '"corrlab; running"'
    gen.clear_display()
    gen.beep()
    gen.phase_sync()
    assert gen.check_errors() == []


def test_33500_channels_burst_and_arb_upload_reach_the_bench_state(bench):
    _, server, gen = bench.open(Agilent33500Model, Agilent33500)
    code = [1, 0, 1, 1, 0, 0, 1, 0]
    for ch, chan in ((1, gen.ch_1), (2, gen.ch_2)):
        chan.output = False
        chan.data_volatile_clear()
        chan.data_arb("DLCODE", [32767 if b else -32767 for b in code], "DAC")
        chan.arb_file = "DLCODE"
        chan.arb_srate = 1e5
        chan.arb_advance = "SRATE"
        chan.arb_filter = "STEP"
        chan.shape = "ARB"
        chan.burst_ncycles = 1
        chan.burst_mode = "TRIGGERED"
        chan.burst_period = 0.5
        chan.burst_state = True
        chan.output = True
    gen.ch_2.frequency = 2000
    assert gen.ch_2.frequency == 2000 and gen.ch_1.frequency == 1000
    assert "SOUR1:DATA:ARB:DAC DLCODE, 32767, -32767, 32767, 32767, -32767, -32767, 32767, -32767" in server.received
    assert "SOUR2:FREQ 2000.000000" in server.received and "OUTP2 1" in server.received
    assert gen.ch_1.arb_file == '"DLCODE"'  # SCPI string data comes back quoted
    assert (gen.ch_1.arb_srate, gen.ch_1.arb_advance, gen.ch_1.arb_filter) == (1e5, "SRAT", "STEP")
    assert (gen.ch_2.burst_mode, gen.ch_2.burst_period, gen.ch_2.burst_ncycles) == ("TRIG", 0.5, 1)
    assert gen.ch_2.burst_state is True and gen.ch_2.output is True and gen.ch_2.shape == "ARB"
    for ch in (1, 2):
        c = bench.state.generator.channels[ch]
        assert c.arb_data == {"DLCODE": [32767 if b else -32767 for b in code]}
        assert (c.arb_file, c.shape, c.burst_state, c.burst_ncycles, c.output) == ("DLCODE", "ARB", True, 1, True)
    gen.trigger()
    assert gen.complete == "1"
    assert bench.world.triggers == 1 and bench.state.generator.trigger_count == 1
    gen.ch_1.data_arb("FLT", [0.5, -0.5] * 4, "float")
    assert gen.ask("SOUR1:DATA:VOL:CAT?") == '"DLCODE","FLT"'
    assert bench.state.generator.channels[1].arb_data["FLT"] == [16384, -16384] * 4
    assert gen.check_errors() == []


def test_33500_errors_queue_once_then_no_error(bench):
    model, _, gen = bench.open(Agilent33500Model, Agilent33500)
    assert gen.next_error == [0, '"No error"']
    gen.write("SOUR1:FREQ 1e9")
    gen.write("SOUR3:FREQ 10")
    gen.write("OUTP:GLOW ON")
    gen.ch_1.data_arb("DUP", [0] * 8, "DAC")
    gen.ch_1.data_arb("DUP", [0] * 8, "DAC")
    gen.ch_1.data_arb("SHORT", [0] * 7, "DAC")
    gen.write("SOUR1:FUNC:ARB NOPE")
    errors = gen.check_errors()
    assert [int(e[0]) for e in errors] == [-222, -114, -113, -221, -222, -224]
    assert errors[2][1] == '"Undefined header"'
    assert gen.check_errors() == []
    assert bench.state.generator.channels[1].frequency == 1000.0
    assert list(model.unrecognised) == ["OUTP:GLOW ON"]
    assert gen.ask("*ESR?") == str(32 | 16)  # CME and EXE latched
    gen.write("FOO")
    gen.clear()
    assert gen.check_errors() == [] and gen.ask("*STB?") == "0"


def test_33500_wait_for_trigger_and_reset(bench):
    _, _, gen = bench.open(Agilent33500Model, Agilent33500)
    gen.ch_1.data_arb("KEEP", [1] * 8, "DAC")
    gen.ch_1.frequency = 5e3
    gen.wait_for_trigger(timeout=1)
    gen.reset()
    assert gen.ch_1.frequency == 1000 and bench.state.generator.channels[1].arb_data == {"KEEP": [1] * 8}


# ============================================================== LakeShore 336


def test_lakeshore_replies_end_with_cr_lf(bench):
    _, server, _ = bench.open(LakeShore336Model, LakeShore3xx, read_termination="\r\n")
    assert raw_exchange(server.port, b"KRDG? A\r\n", 9) == b"+4.2000\r\n"


def test_lakeshore_temperatures_setpoint_range_heater(bench):
    _, server, ls = bench.open(LakeShore336Model, LakeShore3xx, read_termination="\r\n")
    assert ls.id == "LSCI,MODEL336,SIM0001/#######,2.7"
    assert ls.input_A.kelvin == 4.2 and ls.input_D.kelvin == 4.2
    assert ls.input_A.celsius == pytest.approx(4.2 - 273.15)
    assert ls.input_B.sensor == pytest.approx(max(0.0, 100 * (1 + 0.00385 * (4.2 - 273.15))), abs=1e-4)
    ls.output_1.setpoint = 50
    assert ls.output_1.setpoint == 50.0 and bench.state.thermal.setpoint[1] == 50.0
    assert "SETP 1,50.000000" in server.received
    ls.output_1.mout = 12.5
    assert ls.output_1.mout == 12.5
    assert ls.output_1.range == "off" and ls.output_1.output == 0.0
    ls.output_1.range = "medium"
    assert ls.output_1.range == "medium" and bench.state.thermal.heater_range[1] == 2
    assert ls.output_1.output == 12.5
    ls.input_A.wait_for_temperature(4.2, accuracy=1, interval=0.001, timeout=1)
    assert ls.ask("KRDG? 0") == "+4.2000,+4.2000,+4.2000,+4.2000"


def test_lakeshore_refusals_and_unknown_queries(bench):
    model, _, ls = bench.open(LakeShore336Model, LakeShore3xx, read_termination="\r\n", timeout=150)
    ls.output_3.range = "medium"  # outputs 3 and 4 are on/off only
    assert ls.ask("*ESR?") == "16" and bench.state.thermal.heater_range[3] == 0
    with pytest.raises(pyvisa.errors.VisaIOError) as info:
        ls.next_error  # SYST:ERR? is not LakeShore: no reply, as on the real unit
    assert info.value.error_code == TMO
    assert ls.ask("*ESR?") == "32" and "SYST:ERR?" in model.unrecognised
    ls.write("PID 1,50,20,0")
    ls.write("RAMP 1,1,0.5")
    assert ls.ask("PID? 1") == "+50.0,+20.0,+0.0" and ls.ask("RAMP? 1") == "1,+0.5"


# ============================================================== Newport ESP300


def test_esp300_move_wait_and_read_back(bench):
    _, server, esp = bench.open(ESP300Model, ESP300)
    assert esp.id == "ESP300 Version 3.08 09/09/02"
    esp.x.enable()
    assert esp.x.enabled is True and esp.y.enabled is False
    esp.x.position = 12.5
    esp.x.wait_for_stop()
    assert esp.x.motion_done is True
    assert esp.x.position == 12.5 and bench.state.stage[1].position == 12.5
    for wire in ("1MO", "1PA12.5", "1WS0", "1MD?", "1TP", "1MO?"):
        assert wire in server.received
    esp.x.left_limit = -5
    esp.x.right_limit = 20
    assert (esp.x.left_limit, esp.x.right_limit) == (-5.0, 20.0)
    esp.x.units = "micrometer"
    assert esp.x.units == "micrometer" and bench.state.stage[1].units == 3
    esp.x.define_position(3.0)
    assert esp.x.position == 3.0
    esp.x.home()
    esp.x.zero()
    assert esp.x.position == 0.0
    assert esp.error == 0


def test_esp300_errors(bench):
    model, _, esp = bench.open(ESP300Model, ESP300)
    esp.y.position = 1.0  # motor off
    esp.y.enable()
    esp.y.position = 30.0  # beyond the right limit (25 mm)
    esp.write("1XX")
    errors = esp.errors
    assert [type(e) for e in errors] == [AxisError, AxisError, GeneralError]
    assert [e.message for e in errors] == ["MOTOR NOT ENABLED", "POSITIVE SOFTWARE LIMIT DETECTED",
                                           "COMMAND DOES NOT EXIST"]
    assert bench.state.stage[2].position == 0.0
    assert list(model.unrecognised) == ["1XX"]
    esp.x.position = 1.0
    esp.clear_errors()
    assert esp.error == 0


def test_esp300_shutdown_quirk_completes_without_hanging(bench):
    _, server, esp = bench.open(ESP300Model, ESP300, timeout=500)
    for axis in (esp.x, esp.y, esp.phi):
        axis.enable()
    esp.error  # a round trip
    t0 = time.monotonic()
    esp.shutdown()
    assert time.monotonic() - t0 < 0.5
    assert esp.error == 0  # a round trip: the MF writes have been served
    assert not any(bench.state.stage[n].enabled for n in (1, 2, 3))
    for spurious in ("*OPC?", "TE?", "*IDN?", "SYST:ERR?", "*OPT?", "*STB?", "1MF", "2MF", "3MF"):
        assert spurious in server.received


# ============================================================== Keithley 2750


def test_keithley_2750_close_open_and_the_closed_channels_reply(bench):
    _, server, sw = bench.open(Keithley2750Model, Keithley2750)
    assert sw.id == "KEITHLEY INSTRUMENTS INC.,MODEL 2750,SIM0001,A02  /A02"
    assert sw.closed_channels == "(@)"  # pymeasure 0.16 skips clean_closed_channels for 0 or 1 entries
    sw.close(101)
    assert sw.closed_channels == "(@101)"
    assert ":ROUTe:MULTiple:CLOSe (@101)" in server.received
    assert clean_closed_channels(sw.closed_channels) == [101]
    sw.close(102)
    assert sw.closed_channels == [101, 102] and bench.state.relay.closed == {101, 102}
    sw.open(101)
    assert clean_closed_channels(sw.closed_channels) == [102]
    sw.write(":ROUTe:MULTiple:CLOSe (@105:107)")
    assert sw.closed_channels == [102, 105, 106, 107]
    sw.write(":ROUT:CLOS (@101)")  # without MULTiple: this channel only
    assert sw.closed_channels == "(@101)"
    sw.open_all()
    assert clean_closed_channels(sw.closed_channels) == [] and bench.state.relay.closed == set()
    sw.close(999)
    assert [int(e[0]) for e in sw.check_errors()] == [-222]


# ============================================================== faults, as pyvisa-py reports them


def test_faults_configure_validates_option_names_and_values():
    f = Faults(name="thermal")
    with pytest.raises(PlanError, match=r"faults\.thermal: unknown option 'drop_later'; options are drop_after"):
        f.configure(drop_later=3)
    with pytest.raises(PlanError, match="delay_s must be a number of seconds"):
        f.configure(delay_queries=1, delay_s=-1)
    assert f.delay_queries == 0  # a refused configuration leaves the faults as they were
    with pytest.raises(PlanError, match="invalid regular expression"):
        f.configure(garble_pattern="(")
    with pytest.raises(PlanError, match="non-negative integer"):
        Faults(drop_after_commands=-1)
    with pytest.raises(PlanError, match="drop_times must be at least 1"):
        f.drop_after(2, times=0)
    f.drop_after(2)
    assert f.take_drop() == (False, False)
    f.configure(garble_queries=1)  # configuring another fault leaves the drop countdown running
    assert f.take_drop() == (False, False) and f.take_drop() == (True, False)
    f.configure(delay_queries=2, delay_pattern="^KRDG", delay_s=0.5)
    assert (f.delay_queries, f.delay_pattern, f.delay_s) == (2, "^KRDG", 0.5)
    assert set(FAULT_OPTIONS) == {"drop_after_commands", "drop_times", "drop_reset", "delay_queries",
                                  "delay_pattern", "delay_s", "garble_queries", "garble_pattern",
                                  "refuse_s", "refuse_connections", "corrupt_blocks", "corrupt_value"}


def test_fault_delay_gives_a_timeout_then_a_stale_reply(bench):
    _, server, li = bench.open(SR830Model, SR830, side="a", timeout=200)
    server.faults.delay_replies(1, seconds=0.3)  # late for OUTP?1, in time for the next read
    with pytest.raises(pyvisa.errors.VisaIOError) as info:
        li.x
    assert info.value.error_code == TMO
    assert li.y == pytest.approx(X_A)  # the late answer to OUTP?1 answers OUTP?2
    assert li.ask("SENS?") == f"{Y_A:.6e}"  # and the stream stays one behind
    assert server.stats.snapshot()["delayed"] == 1


def test_fault_delay_by_pattern_hits_every_match_only(bench):
    _, server, ls = bench.open(LakeShore336Model, LakeShore3xx, read_termination="\r\n", timeout=150)
    server.faults.delay_replies(pattern=r"^KRDG\?", seconds=0.3)
    with pytest.raises(pyvisa.errors.VisaIOError):
        ls.input_A.kelvin
    time.sleep(0.35)
    ls.adapter.connection.clear()  # drop the late reply
    assert ls.output_1.setpoint == 0.0
    with pytest.raises(pyvisa.errors.VisaIOError):
        ls.input_A.kelvin
    assert server.stats.snapshot()["delayed"] == 2


def test_fault_drop_gives_timeouts_then_broken_pipe_and_a_reconnect_works(bench):
    _, server, li = bench.open(SR830Model, SR830, side="a", timeout=200)
    server.faults.drop_after(2)
    assert li.x == pytest.approx(X_A) and li.y == pytest.approx(Y_A)
    t0 = time.monotonic()
    for _ in range(2):  # the closed socket reads as "no data" until a write meets the RST
        with pytest.raises(pyvisa.errors.VisaIOError) as info:
            li.x
        assert info.value.error_code == TMO
    assert time.monotonic() - t0 >= 0.39  # each costs the full timeout
    with pytest.raises(BrokenPipeError):
        li.x
    again = bench.driver(SR830, server)
    assert again.x == pytest.approx(X_A)
    snap = server.stats.snapshot()
    assert (snap["connections"], snap["dropped"], snap["commands"], snap["queries"]) == (2, 1, 4, 3)


def test_fault_drop_with_reset_and_repeated_drops(bench):
    _, server, li = bench.open(SR830Model, SR830, side="a", timeout=200)
    server.faults.drop_after(0, reset=True)
    with pytest.raises(ConnectionResetError):
        li.x
    server.faults.drop_after(1, times=2)
    for _ in range(2):
        drv = bench.driver(SR830, server, timeout=150)
        assert drv.x == pytest.approx(X_A)
        with pytest.raises(pyvisa.errors.VisaIOError):
            drv.x
    assert bench.driver(SR830, server).y == pytest.approx(Y_A)
    assert server.stats.snapshot()["dropped"] == 3


def test_fault_refuse_at_start_for_some_seconds(bench):
    state = bench.state
    server = SimServer(LakeShore336Model(state, bench.world), name="thermal")
    server.faults.configure(refuse_s=0.3)
    server.start()
    bench.servers.append(server)
    ls = bench.driver(LakeShore3xx, server, read_termination="\r\n")  # pyvisa-py 0.8.1: open succeeds
    with pytest.raises(ConnectionRefusedError):
        ls.input_A.kelvin
    time.sleep(0.4)
    assert bench.driver(LakeShore3xx, server, read_termination="\r\n").input_A.kelvin == 4.2


def test_fault_refuse_connections_resets_the_first_n(bench):
    _, server, first = bench.open(Keithley2750Model, Keithley2750)
    assert first.closed_channels == "(@)"
    server.faults.refuse(connections=2)
    for _ in range(2):
        drv = bench.driver(Keithley2750, server)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            drv.id
    assert bench.driver(Keithley2750, server).id.startswith("KEITHLEY")
    assert first.id.startswith("KEITHLEY")  # the established connection never noticed
    assert server.stats.snapshot()["refused"] == 2


def test_fault_refuse_on_a_running_server_is_a_power_cycle_of_the_port(bench):
    _, server, first = bench.open(ESP300Model, ESP300)
    server.faults.refuse(seconds=0.3)
    late = bench.driver(ESP300, server)
    with pytest.raises(ConnectionRefusedError):
        late.error
    assert first.error == 0
    time.sleep(0.4)
    assert bench.driver(ESP300, server).error == 0


def test_fault_garbage_is_a_parse_error_in_the_driver(bench):
    _, server, li = bench.open(SR830Model, SR830, side="a")
    server.faults.garble_replies(1)
    with pytest.raises(ValueError, match="GARBLED"):
        li.sensitivity  # map_values: int() of the reply
    assert li.sensitivity == 1.0
    _, server2, ls = bench.open(LakeShore336Model, LakeShore3xx, read_termination="\r\n")
    server2.faults.garble_replies(pattern=r"^KRDG")
    reading = ls.input_A.kelvin
    assert isinstance(reading, str)  # pymeasure keeps a reply it cannot cast: the role's float() must fail
    with pytest.raises(ValueError):
        float(reading)
    assert ls.output_1.setpoint == 0.0
    assert server.stats.snapshot()["garbled"] == 1 and server2.stats.snapshot()["garbled"] == 1


def test_esp300_reset_is_a_command_not_an_error():
    state = BenchState()
    model = ESP300Model(state, StaticWorld(state))
    state.stage[1].enabled = True
    assert model.handle("*RST") == []
    assert list(model.unrecognised) == [] and model.handle("TE?") == [b"0\n"]
    assert state.stage[1].enabled is False
