"""Driver for corrlab's fast two-channel digitizer (four channels when quadratures are recorded).

pymeasure has no driver for a streaming digitizer with IEEE 488.2 definite-length blocks, so
this one is ours, in pymeasure's house style: a table of properties with strict validators
(nothing is clipped or rounded silently), verbs as methods, no sleeps and no file I/O.

The dialect (SCPI over a raw socket, port 5025 on a real unit; the simulated bench serves
it from ``corrlab.instruments.sim.models.FastDigitizerModel``):

* Commands end with LF (a CR before it is ignored); several per line separated by ``;``.
  Text replies end with LF; replies of several queries in one line are joined with ``;``.
* Common commands: ``*IDN?``, ``*RST``, ``*CLS``, ``*OPC?``, ``*OPC``, ``*WAI``,
  ``*ESR?``, ``*ESE``, ``*SRE``, ``*STB?``, ``SYSTem:ERRor[:NEXT]?`` (``+0,"No error"``).
* Settings (each also a query with ``?``):

  ======================== ==================================================================
  ``[SENSe:]SRATe f``      sample rate in Hz, 1 to 1e8
  ``[SENSe:]RECord:LENGth n`` points per channel, 1 to 8 388 608 (an integer)
  ``[SENSe:]CHANnels n``   2 (X_A, X_B) or 4 (X_A, X_B, Y_A, Y_B)
  ``[SENSe:]RECord:TAG n`` the tag stamped on the next record, 0 to 2**31-1 (the runner
                           writes the trial index here)
  ``FORMat[:DATA] REAL,32`` the only format: IEEE 754 float32, little-endian
                           (``FORMat:BORDer?`` answers ``SWAP``)
  ======================== ==================================================================

* Acquisition: ``INITiate[:IMMediate]`` arms and takes one record; ``ABORt`` abandons it;
  ``ACQuire:STATe?`` answers ``IDLE``, ``ARMED`` or ``DONE``; ``*OPC?`` answers ``1`` once
  the record is complete.
* Data: ``FETCh:DATA? ch`` sends channel ``ch`` of the last record as a definite-length
  block ``#<n><len><len bytes>`` followed by LF; ``FETCh:DATA:ALL?`` sends every channel,
  channel after channel, in one block. ``FETCh:TAG?``, ``FETCh:POINts?`` and
  ``FETCh:CHANnels?`` describe the record in memory (the tag it was stamped with).
  A fetch that cannot be served (no record yet, a channel the record lacks) answers an
  empty block ``#10`` and queues the reason (``-230`` / ``-222``) for ``SYST:ERR?``.
* Errors: a SCPI queue; ``-113`` undefined header, ``-104`` data type, ``-109`` missing
  parameter, ``-222`` data out of range, ``-224`` illegal value, ``-230`` no data.

Reading a block fast: pyvisa-py ends a read at every byte equal to the termination
character, and a float32 payload holds about one 0x0A byte in 256, so the ordinary path
returns thousands of times per megabyte. :meth:`FastDigitizer.read_block` turns the
termination character off for the block only (restored afterwards, even on errors; pyvisa's
own ``read_termination_context`` does not restore on an exception), reads the ``#<n><len>``
header, the payload, and consumes the trailing LF. Under pyvisa-py's raw-socket session the
payload goes straight from the socket into one preallocated buffer (``recv_into``; pyvisa-py's
own loop allocates a buffer per ``recv`` and copies the payload about five times), honouring
the bytes pyvisa-py already buffered and the resource's timeout; with any other VISA library
the payload is one ``read_bytes`` call with the termination off. A malformed
header raises :class:`~corrlab.errors.InstrumentError` naming the problem after a bounded
drain of what is left in the socket.
"""

from __future__ import annotations

import math
import select
import socket
import time

import numpy as np
import pyvisa
from pymeasure.instruments import Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from corrlab.errors import InstrumentError

MAX_POINTS = 1 << 23
MAX_TAG = 2**31 - 1
MAX_SAMPLE_RATE = 100e6
_BLOCK_TERMINATOR = b"\n"
_DRAIN_TIMEOUT_MS = 50
_DRAIN_MAX_BYTES = 256 * 1024 * 1024


def _pyvisa_py_session(conn):
    """pyvisa-py's session object behind a resource, or None (another VISA library)."""
    sessions = getattr(getattr(conn, "visalib", None), "sessions", None)
    if not isinstance(sessions, dict):
        return None
    return sessions.get(getattr(conn, "session", None))


def _socket_reader(conn):
    """For a pyvisa-py raw-socket session: a function reading exactly n bytes into one buffer.

    pyvisa-py's ``read`` allocates a fresh buffer per ``recv`` and copies the payload about
    five times on its way out; this reads with ``recv_into`` into one preallocated buffer.
    It first takes whatever pyvisa-py already holds in its pending buffer, waits with
    ``select`` within the resource's timeout like pyvisa-py, and raises ``VisaIOError``
    (``VI_ERROR_TMO``) on timeout. Returns None for any other session (NI-VISA, serial,
    a pyvisa-py without these attributes): the caller then uses ``read_bytes``.
    """
    session = _pyvisa_py_session(conn)
    sock = getattr(session, "interface", None)
    if not isinstance(sock, socket.socket) or not isinstance(getattr(session, "_pending_buffer", None), bytearray):
        return None

    def read_exactly(n: int) -> bytearray:
        out = bytearray(n)
        view = memoryview(out)
        pending = session._pending_buffer
        got = min(len(pending), n)
        if got:
            view[:got] = pending[:got]
            del pending[:got]
        timeout = conn.timeout  # ms; None or inf: wait for ever
        deadline = None if timeout is None or math.isinf(timeout) else time.monotonic() + timeout / 1000.0
        while got < n:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)
            ready, _, _ = select.select([sock], [], [], remaining)
            if not ready:
                continue
            k = sock.recv_into(view[got:], n - got)
            if k == 0:
                raise ConnectionAbortedError(f"the instrument closed the connection {got} bytes into a {n}-byte block")
            got += k
        return out

    return read_exactly


def strict_integer_range(value, values):
    """Accept an integer (or an integral float) inside ``[min(values), max(values)]``.

    pymeasure's ``%d`` formatting would truncate 2.7 to 2; this refuses it instead.
    """
    if isinstance(value, bool):
        raise ValueError(f"value {value!r} is a bool, not an integer")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value {value!r} is not an integer") from None
    if not as_float.is_integer():
        raise ValueError(f"value {value!r} is not an integer")
    return strict_range(int(as_float), values)


def strict_finite_range(value, values):
    """``strict_range`` that also refuses NaN, infinities and non-numbers with a clear message."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value {value!r} is not a number") from None
    if not np.isfinite(v):
        raise ValueError(f"value {value!r} is not finite")
    return strict_range(v, values)


class FastDigitizer(SCPIMixin, Instrument):
    """corrlab's fast digitizer (see the module docstring for its dialect).

    .. code-block:: python

        dig = FastDigitizer("TCPIP0::127.0.0.1::5025::SOCKET", visa_library="@py",
                            read_termination="\\n", timeout=2000)
        dig.sample_rate = 10e3
        dig.record_length = 1000
        dig.channels = 2
        dig.record_tag = 17          # the trial index
        dig.arm()
        dig.wait_complete()
        record = dig.fetch_all(expect_tag=17)   # float32, shape (2, 1000)
    """

    sample_rate = Instrument.control(
        "SRAT?", "SRAT %s",
        """Control the sample rate in Hz (float, 1 to 1e8; sent exactly, never rounded or clipped).""",
        validator=strict_finite_range,
        values=[1.0, MAX_SAMPLE_RATE],
        set_process=lambda v: repr(float(v)),
    )

    record_length = Instrument.control(
        "REC:LENG?", "REC:LENG %d",
        """Control the number of points per channel in a record (int, 1 to 8 388 608).""",
        validator=strict_integer_range,
        values=[1, MAX_POINTS],
        cast=int,
    )

    channels = Instrument.control(
        "CHAN?", "CHAN %d",
        """Control how many channels a record holds (int): 2 (X_A, X_B) or 4 (X_A, X_B, Y_A, Y_B).""",
        validator=strict_discrete_set,
        values=[2, 4],
        cast=int,
    )

    record_tag = Instrument.control(
        "REC:TAG?", "REC:TAG %d",
        """Control the tag stamped on the next record (int, 0 to 2**31-1; the trial index).""",
        validator=strict_integer_range,
        values=[0, MAX_TAG],
        cast=int,
    )

    data_format = Instrument.control(
        "FORM?", "FORM %s",
        """Control the block data format (str): only ``"REAL,32"`` (float32, little-endian).""",
        validator=strict_discrete_set,
        values=["REAL,32"],
        cast=str,
        maxsplit=0,
    )

    acquisition_state = Instrument.measurement(
        "ACQ:STAT?",
        """Get the acquisition state (str): ``IDLE``, ``ARMED`` or ``DONE``.""",
        cast=str,
    )

    fetched_tag = Instrument.measurement(
        "FETC:TAG?",
        """Get the tag of the record in memory (int; -1 when there is none).""",
        cast=int,
    )

    fetched_channels = Instrument.measurement(
        "FETC:CHAN?",
        """Get the number of channels of the record in memory (int; -1 when there is none).""",
        cast=int,
    )

    fetched_points = Instrument.measurement(
        "FETC:POIN?",
        """Get the points per channel of the record in memory (int; -1 when there is none).""",
        cast=int,
    )

    def __init__(self, adapter, name="Fast two-channel digitizer", **kwargs):
        kwargs.setdefault("read_termination", "\n")
        super().__init__(adapter, name, **kwargs)

    # -- verbs -------------------------------------------------------------------------------
    def arm(self):
        """Arm the digitizer: it takes one record, stamped with :attr:`record_tag`."""
        self.write("INIT")

    def abort(self):
        """Abandon an acquisition in progress (safe to send at any time)."""
        self.write("ABOR")

    def wait_complete(self):
        """Block until the record is complete (``*OPC?``), within the adapter's timeout."""
        reply = self.ask("*OPC?").strip()
        if reply != "1":
            raise InstrumentError(f"{self.name}: *OPC? answered {reply!r}, expected '1'")

    def fetch(self, channel: int) -> np.ndarray:
        """Channel ``channel`` (1-based) of the last record: float32 array, volts."""
        channel = strict_integer_range(channel, [1, 4])
        self.write(f"FETC:DATA? {channel}")
        payload = self.read_block()
        if not payload:
            raise InstrumentError(f"{self.name}: no data for channel {channel}: {self._queued_error()}")
        return self._floats(payload)

    def fetch_all(self, *, expect_tag: int | None = None) -> np.ndarray:
        """Every channel of the last record: float32 array of shape (channels, points), volts.

        With ``expect_tag``, first check that the record in memory carries that tag (one
        short query) and raise :class:`InstrumentError` on a stale record.
        """
        if expect_tag is not None:
            tag = self.fetched_tag
            if tag != expect_tag:
                raise InstrumentError(f"{self.name}: the record in memory carries tag {tag}, expected {expect_tag}")
        n_channels = self.fetched_channels
        if n_channels not in (2, 4):
            raise InstrumentError(f"{self.name}: no record to fetch ({self._queued_error()})")
        self.write("FETC:DATA:ALL?")
        payload = self.read_block()
        if not payload:
            raise InstrumentError(f"{self.name}: no record to fetch ({self._queued_error()})")
        values = self._floats(payload)
        if values.size % n_channels:
            raise InstrumentError(
                f"{self.name}: block of {values.size} values does not split into {n_channels} channels"
            )
        return values.reshape(n_channels, values.size // n_channels)

    # -- the block read ------------------------------------------------------------------------
    def read_block(self) -> bytes | bytearray:
        """Read one definite-length block (``#<n><len><payload>`` + LF); return the payload."""
        conn = self.adapter.connection
        if not hasattr(conn, "set_visa_attribute"):  # not a VISA resource (e.g. a test adapter)
            return self._read_block_with(self.read_bytes, self.read_bytes)
        attr = pyvisa.constants.VI_ATTR_TERMCHAR_EN
        previous = conn.get_visa_attribute(attr)
        conn.set_visa_attribute(attr, pyvisa.constants.VI_FALSE)
        try:
            raw = _socket_reader(conn)
            payload_reader = raw or (lambda n: conn.read_bytes(n, chunk_size=max(n, 1)))
            return self._read_block_with(conn.read_bytes, payload_reader)
        finally:
            conn.set_visa_attribute(attr, previous)

    def _read_block_with(self, read, read_payload) -> bytes | bytearray:
        head = read(2)
        if head[:1] != b"#":
            self._drain()
            raise InstrumentError(f"{self.name}: malformed block: expected '#', got {head!r}")
        digits = head[1:2]
        if not digits.isdigit():
            self._drain()
            raise InstrumentError(f"{self.name}: malformed block header {head!r}: the length digit count is not a digit")
        n = int(digits)
        if n == 0:
            self._drain()
            raise InstrumentError(f"{self.name}: indefinite-length block (#0) is not part of this dialect")
        length_text = read(n)
        if len(length_text) != n or not length_text.isdigit():
            self._drain()
            raise InstrumentError(f"{self.name}: malformed block header {head + length_text!r}: length is not {n} digits")
        length = int(length_text)
        payload = read_payload(length) if length else b""
        if len(payload) != length:
            raise InstrumentError(f"{self.name}: block announced {length} bytes, received {len(payload)}")
        tail = read(len(_BLOCK_TERMINATOR))
        if tail != _BLOCK_TERMINATOR:
            self._drain()
            raise InstrumentError(f"{self.name}: block of {length} bytes not followed by LF (got {tail!r})")
        return payload

    def _floats(self, payload: bytes | bytearray) -> np.ndarray:
        if len(payload) % 4:
            raise InstrumentError(f"{self.name}: block of {len(payload)} bytes is not a whole number of float32")
        return np.frombuffer(payload, dtype="<f4").astype(np.float32, copy=False)

    def _queued_error(self) -> str:
        try:
            code, *text = self.next_error
        except Exception as exc:  # the reason is a courtesy; the caller raises anyway
            return f"SYST:ERR? failed: {exc}"
        return f"{int(code)},{','.join(str(t) for t in text)}"

    def _drain(self) -> None:
        """After a framing error: discard what is left of the reply (bounded in time and bytes)."""
        conn = self.adapter.connection
        if not hasattr(conn, "timeout"):
            return
        timeout = conn.timeout
        conn.timeout = _DRAIN_TIMEOUT_MS
        drained = 0
        try:
            while drained < _DRAIN_MAX_BYTES:
                drained += len(conn.read_bytes(1 << 20, chunk_size=1 << 20))
        except (pyvisa.errors.VisaIOError, OSError):
            pass
        finally:
            conn.timeout = timeout


__all__ = ["FastDigitizer", "strict_integer_range", "strict_finite_range", "MAX_POINTS", "MAX_TAG"]
