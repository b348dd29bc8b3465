"""The FastDigitizer driver against its simulated server: real pyvisa-py client, real socket.

References are independent of the code under test: the arrays the world hands out (compared
bit for bit), struct-packed blocks built here by hand, and the dialect as documented.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import pyvisa

from corrlab.errors import InstrumentError
from corrlab.instruments.drivers.digitizer import FastDigitizer
from corrlab.instruments.sim.models import DialectModel, FastDigitizerModel
from corrlab.instruments.sim.server import SimServer
from corrlab.instruments.sim.state import BenchState, StaticWorld

TIMEOUT_MS = 500


class RecordWorld(StaticWorld):
    """Hands out a chosen record; remembers the tags the runner wrote."""

    def __init__(self, state, maker=None):
        super().__init__(state)
        self.maker = maker
        self.begun: list[int] = []
        self.acquired = 0

    def begin_record(self, tag):
        self.begun.append(tag)

    def acquire(self):
        d = self.state.digitizer
        self.acquired += 1
        if self.maker is not None:
            return self.maker(d.channels, d.points, self.acquired)
        rng = np.random.default_rng(1000 + self.acquired)
        return rng.standard_normal((d.channels, d.points)).astype(np.float32)


@pytest.fixture
def rig():
    opened = []

    def make(maker=None, *, timeout=TIMEOUT_MS):
        state = BenchState()
        world = RecordWorld(state, maker)
        server = SimServer(FastDigitizerModel(state, world), name="digitizer").start()
        dig = FastDigitizer(server.resource, visa_library="@py", read_termination="\n",
                            write_termination="\r\n", timeout=timeout)
        opened.append((server, dig))
        return state, world, server, dig

    yield make
    for server, dig in opened:
        dig.adapter.close()
        server.stop()


def test_settings_round_trip_and_reach_the_bench_state(rig):
    state, _, server, dig = rig()
    assert dig.id == "CORRLAB,FD2,SIM0001,1.0"
    dig.sample_rate = 12345.678901
    dig.record_length = 4096
    dig.channels = 4
    dig.record_tag = 2**31 - 1
    dig.data_format = "REAL,32"
    assert dig.sample_rate == 12345.678901  # exact: not %g's 6 significant digits
    assert dig.record_length == 4096
    assert dig.channels == 4
    assert dig.record_tag == 2**31 - 1
    assert dig.data_format == "REAL,32"
    d = state.digitizer
    assert (d.sample_rate, d.points, d.channels, d.tag) == (12345.678901, 4096, 4, 2**31 - 1)
    assert "SRAT 12345.678901" in server.received
    assert dig.check_errors() == []


@pytest.mark.parametrize(
    "prop, value",
    [
        ("record_length", 2.5), ("record_length", 0), ("record_length", (1 << 23) + 1), ("record_length", True),
        ("channels", 3), ("channels", 1),
        ("record_tag", -1), ("record_tag", 2**31), ("record_tag", 1.5),
        ("sample_rate", 0.5), ("sample_rate", 2e8), ("sample_rate", float("nan")),
        ("data_format", "REAL,64"),
    ],
)
def test_validators_refuse_without_sending(rig, prop, value):
    _, _, server, dig = rig()
    before = server.stats.snapshot()["commands"]
    with pytest.raises(ValueError):
        setattr(dig, prop, value)
    assert server.stats.snapshot()["commands"] == before


def test_server_refuses_what_a_looser_client_sends(rig):
    state, _, _, dig = rig()
    dig.write("REC:LENG 2.5")
    dig.write("CHAN 3")
    dig.write("SRAT 0")
    errors = dig.check_errors()
    assert [int(e[0]) for e in errors] == [-104, -224, -222]
    assert (state.digitizer.points, state.digitizer.channels, state.digitizer.sample_rate) == (1000, 2, 10_000.0)


@pytest.mark.parametrize("channels", [2, 4])
def test_fetch_returns_the_worlds_record_bit_for_bit(rig, channels):
    state, world, _, dig = rig()
    dig.record_length = 3001
    dig.channels = channels
    dig.arm()
    dig.wait_complete()
    assert dig.acquisition_state == "DONE"
    truth = state.digitizer.record.copy()
    assert truth.shape == (channels, 3001)
    for ch in range(1, channels + 1):
        got = dig.fetch(ch)
        assert got.dtype == np.float32 and got.shape == (3001,)
        assert got.tobytes() == truth[ch - 1].tobytes()
    every = dig.fetch_all()
    assert every.shape == (channels, 3001)
    assert every.tobytes() == truth.tobytes()
    assert world.acquired == 1


def test_record_tag_is_stamped_and_reaches_the_world(rig):
    _, world, _, dig = rig()
    dig.record_tag = 7
    dig.wait_complete()  # a round trip: the write has been served
    assert world.begun == [7]
    dig.arm()
    dig.wait_complete()
    dig.record_tag = 8  # the next trial starts; the record in memory still carries 7
    assert dig.fetched_tag == 7
    assert dig.fetch_all(expect_tag=7).shape == (2, 1000)
    with pytest.raises(InstrumentError, match="carries tag 7, expected 8"):
        dig.fetch_all(expect_tag=8)
    dig.arm()
    assert dig.fetched_tag == 8
    assert world.begun == [7, 8]


@pytest.fixture(params=["socket", "read_bytes"])
def read_path(request, monkeypatch):
    """Run a test over the pyvisa-py socket path and over the portable read_bytes path."""
    import corrlab.instruments.drivers.digitizer as module

    if request.param == "read_bytes":
        monkeypatch.setattr(module, "_socket_reader", lambda conn: None)
    return request.param


def test_payloads_full_of_newline_bytes(rig, read_path):
    lf = np.frombuffer(b"\n" * 4, dtype="<f4")[0]

    def maker(channels, points, _):
        rows = np.full((channels, points), lf, dtype=np.float32)
        rows[:, ::3] = np.float32(1.0)  # 0x3F800000: no LF
        return rows

    state, _, _, dig = rig(maker)
    dig.record_length = 100_003
    dig.arm()
    dig.wait_complete()
    truth = state.digitizer.record.copy()
    assert truth[0].tobytes().count(b"\n") > 250_000
    assert dig.fetch(1).tobytes() == truth[0].tobytes()
    assert dig.fetch_all().tobytes() == truth.tobytes()
    # the termination is back on after the block: ordinary queries still end at LF
    assert dig.adapter.connection.get_visa_attribute(pyvisa.constants.VI_ATTR_TERMCHAR_EN)
    assert dig.record_length == 100_003


def test_block_bytes_already_buffered_by_pyvisa_py_are_used(rig, read_path):
    """A text reply and a block in one stream: pyvisa-py's text read buffers part of the block."""
    state, _, _, dig = rig()
    dig.record_length = 50_000
    dig.arm()
    dig.write("*OPC?;FETC:DATA? 2")
    assert dig.read() == "1"
    payload = dig.read_block()
    assert bytes(payload) == state.digitizer.record[1].tobytes()
    assert dig.id == "CORRLAB,FD2,SIM0001,1.0"


def test_block_framing_is_exactly_ieee_488_2(rig):
    """A raw look at the wire: #<n><len>, float32 little-endian, LF."""
    import socket

    def maker(channels, points, _):
        return np.arange(channels * points, dtype=np.float32).reshape(channels, points) - 2.5

    _, _, server, dig = rig(maker)
    dig.record_length = 3
    dig.arm()
    dig.wait_complete()
    with socket.create_connection(("127.0.0.1", server.port), timeout=1.0) as s:
        s.sendall(b"FETC:DATA? 2\n")
        expected = b"#212" + struct.pack("<3f", 0.5, 1.5, 2.5) + b"\n"
        got = b""
        while len(got) < len(expected):
            got += s.recv(100)
    assert got == expected


def test_fetch_without_a_record_or_beyond_its_channels_fails_fast(rig):
    _, _, _, dig = rig()
    with pytest.raises(InstrumentError, match="-230"):
        dig.fetch(1)
    with pytest.raises(InstrumentError, match="no record"):
        dig.fetch_all()
    assert dig.fetched_tag == -1
    dig.check_errors()
    dig.arm()
    with pytest.raises(InstrumentError, match="-222"):
        dig.fetch(3)
    with pytest.raises(ValueError):
        dig.fetch(5)  # the driver refuses before asking
    assert dig.fetch(2).shape == (1000,)


def test_abort_and_reset(rig):
    state, _, _, dig = rig()
    dig.channels = 4
    dig.arm()
    dig.abort()
    assert dig.acquisition_state == "IDLE"
    dig.reset()
    assert dig.channels == 2 and state.digitizer.record is None


def test_unknown_commands_are_queued_and_recorded(rig):
    _, _, server, dig = rig()
    dig.write("ACQ:TURBO ON")
    assert [int(e[0]) for e in dig.check_errors()] == [-113]
    assert list(server.model.unrecognised) == ["ACQ:TURBO ON"]


class CannedModel(DialectModel):
    """Answers every query with one canned byte string (to feed the driver broken blocks)."""

    name = "canned"

    def __init__(self, reply: bytes):
        super().__init__(BenchState(), None)
        self.reply = reply

    def handle(self, message):
        if message.startswith("*IDN?"):
            return [b"canned\n"]
        return [self.reply] if "?" in message else []


@pytest.mark.parametrize(
    "reply, message",
    [
        (b"12345678\n", "expected '#'"),
        (b"#A1234\n", "length digit count is not a digit"),
        (b"#3a1b\n", "length is not 3 digits"),
        (b"#0abcd\n", "indefinite-length block"),
        (b"#14abcdX", "not followed by LF"),
        (b"#13abc\n", "not a whole number of float32"),
    ],
)
def test_malformed_blocks_raise_instrument_error(reply, message):
    with SimServer(CannedModel(reply)) as server:
        dig = FastDigitizer(server.resource, visa_library="@py", read_termination="\n", timeout=300)
        try:
            with pytest.raises(InstrumentError, match=message):
                dig.fetch(1)
            conn = dig.adapter.connection
            assert conn.read_termination == "\n"
            assert conn.get_visa_attribute(pyvisa.constants.VI_ATTR_TERMCHAR_EN)
            assert dig.id == "canned"  # the stream is usable again after the drain
        finally:
            dig.adapter.close()


@pytest.mark.usefixtures("read_path")
def test_a_truncated_block_times_out():
    with SimServer(CannedModel(b"#3100" + b"\x0a" * 40)) as server:
        dig = FastDigitizer(server.resource, visa_library="@py", read_termination="\n", timeout=200)
        try:
            with pytest.raises(pyvisa.errors.VisaIOError) as info:
                dig.fetch(1)
            assert info.value.error_code == pyvisa.constants.StatusCode.error_timeout
            assert dig.adapter.connection.get_visa_attribute(pyvisa.constants.VI_ATTR_TERMCHAR_EN)
        finally:
            dig.adapter.close()


def test_garbled_block_from_a_fault_is_an_instrument_error(rig):
    state, _, server, dig = rig()
    dig.arm()
    dig.wait_complete()
    server.faults.garble_replies(1, pattern=r"^FETC:DATA")
    with pytest.raises(InstrumentError, match="malformed block"):
        dig.fetch(1)
    assert server.stats.snapshot()["garbled"] == 1
    assert dig.fetch(1).tobytes() == state.digitizer.record[0].tobytes()


@pytest.mark.parametrize("value, expect", [
    ("nan", lambda bad: np.isnan(bad).all()),
    ("inf", lambda bad: np.isinf(bad).all() and (bad > 0).any() and (bad < 0).any()),
    ("huge", lambda bad: (np.abs(bad) == np.float32(3e38)).all()),
    ("mixed", lambda bad: np.isnan(bad).any() and np.isinf(bad).any() and (np.abs(bad) == np.float32(3e38)).any()),
])
def test_a_corrupted_block_keeps_its_header_and_reads_as_garbage_samples(rig, value, expect):
    """corrupt_payloads: the driver reads the block without complaint (header, length, LF intact);
    16 evenly spaced samples are garbage, the rest are the record; the next block is clean."""
    state, _, server, dig = rig()
    dig.channels, dig.record_length = 2, 100
    dig.arm()
    dig.wait_complete()
    server.faults.corrupt_payloads(1, value=value)
    got = dig.fetch_all()
    clean = state.digitizer.record
    assert got.shape == clean.shape == (2, 100)
    differs = got.ravel() != clean.ravel()  # NaN != x: counted
    assert differs.sum() == 16 and differs[0] and differs[-1] and differs[:100].sum() == differs[100:].sum() == 8
    assert expect(got.ravel()[differs])
    assert server.stats.snapshot()["corrupted"] == 1
    assert dig.fetch_all().tobytes() == clean.tobytes()
    assert dig.check_errors() == []
