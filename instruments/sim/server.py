"""TCP servers for the simulated bench: one per instrument, on 127.0.0.1 only.

A :class:`SimServer` accepts raw-socket connections (``TCPIP0::127.0.0.1::<port>::SOCKET``
for pyvisa-py), splits the byte stream into messages on ``\\n`` (an optional ``\\r`` before it
is dropped; a model with ``cr_terminates``, the ESP300, also ends a message on a CR alone, its
native terminator), hands each message to its dialect model (``corrlab.instruments.sim.models``)
and sends back whatever the model answers, as the model frames it (text replies carry the model's
terminator; binary replies such as the SR830 ``TRCB?`` go out exactly as produced, with
``sendall`` and no extra copy). Each connection has its own daemon thread; the model
serialises access to the shared bench state.

Fault injection (:class:`Faults`) is deterministic: every fault is counted in commands,
queries or connections, except ``refuse(seconds=...)``, which is the wall-clock time an
instrument takes to boot. Faults come from the bench file's ``[faults.<role>]`` table
(:meth:`Faults.configure`, option names in :data:`FAULT_OPTIONS`) or from tests::

    server.faults.drop_after(3)                      # serve 3 commands, close on the 4th
    server.faults.delay_replies(1, seconds=1.0)      # the next reply arrives 1 s late
    server.faults.delay_replies(pattern=r"^KRDG")    # every matching query is late
    server.faults.garble_replies(2)                  # the next 2 replies are garbage
    server.faults.refuse(seconds=0.5)                # port not listening for 0.5 s
    server.faults.refuse(connections=2)              # reset the next 2 connections at once
    server.faults.freeze(20.0)                       # answer nothing for 20 s (SIGSTOP-like)
    server.faults.corrupt_payloads(1, value="huge")  # the next data block: header intact, samples 3e38

What a pyvisa-py 0.8.1 client sees (tests/test_sim_dialects.py checks each):

* late reply: ``VisaIOError`` (``VI_ERROR_TMO``) when the delay exceeds the client timeout;
  the late reply then answers the *next* query, and every later query gets the answer of
  the one before it, until the client clears the socket or reconnects.
* dropped connection (FIN): the query that met the drop times out (``VI_ERROR_TMO`` after
  the full timeout: pyvisa-py reads the closed socket as "no data"); later writes raise
  ``BrokenPipeError``. With ``reset`` (RST): ``ConnectionResetError`` at once.
* refused (not listening): ``open_resource`` succeeds, the first I/O raises
  ``ConnectionRefusedError``.
* refused (connection reset on accept): ``open_resource`` succeeds, the first I/O raises
  ``ConnectionResetError`` or ``BrokenPipeError``.
* garbage: a well-framed reply that is not a number; the driver's parser fails.
* corrupted block (``corrupt_payloads``): a definite-length block (``#<n><len>`` + payload)
  whose header and length are intact and whose float32 payload holds NaN, +-inf or +-3e38
  at evenly spaced samples; the driver reads it without complaint (what the digitizer's
  memory would give after a fault), so only a check of the samples catches it.
* frozen (``freeze``, a stopped process): connections are accepted and kept, nothing is
  served; every query times out (``VI_ERROR_TMO``). At the thaw the messages held are
  served in order (so a client that stayed connected gets stale replies).

Counters (:class:`ServerStats`, ``server.stats``) record connections, commands, queries
and every fault served, so tests assert on them.
"""

from __future__ import annotations

import logging
import re
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any, Iterable

import numpy as np

from corrlab.errors import PlanError
from corrlab.instruments.faults import FAULT_OPTIONS, FaultOptions, check_fault_options

log = logging.getLogger("corrlab.instruments.sim.server")

LOOPBACK = "127.0.0.1"
GARBAGE = b"?GARBLED:%#"  # printable, not a number, not a block header
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a 33500 arb upload of 16 Mpts in DAC text fits
_POLL_S = 0.05  # how often idle threads look at the stop flag


@dataclass
class ServerStats:
    """What a server has served; read under ``lock`` for a consistent snapshot."""

    connections: int = 0  # accepted and served
    commands: int = 0  # messages (lines) received
    queries: int = 0  # messages that produced a reply
    bytes_sent: int = 0
    refused: int = 0  # connections reset on accept (refusals while not listening never reach us)
    dropped: int = 0  # connections closed by a fault
    delayed: int = 0  # replies delayed by a fault
    garbled: int = 0  # replies replaced with garbage by a fault
    held: int = 0  # messages held by a freeze until the thaw
    corrupted: int = 0  # block replies whose samples a fault replaced with garbage
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "lock"}


@dataclass
class Faults(FaultOptions):
    """Faults one server injects. Fields are the bench-file options (``[faults.<role>]``,
    :class:`~corrlab.instruments.faults.FaultOptions`: names, defaults and checks).

    Counted faults are consumed as they are served; ``pattern`` faults with a count of 0
    apply to every matching query until cleared. All methods are thread-safe.
    """

    name: str = field(default="server", repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _server: Any = field(default=None, repr=False, compare=False)
    _drop_left: int | None = field(default=None, repr=False, compare=False)
    _frozen_until: float = field(default=0.0, repr=False, compare=False)  # monotonic time of the thaw

    def __post_init__(self) -> None:
        super().__post_init__()
        self._drop_left = self.drop_after_commands

    # -- configuration ------------------------------------------------------------------
    def configure(self, **options: Any) -> "Faults":
        """Set faults from a bench file's ``[faults.<role>]`` table (names: FAULT_OPTIONS);
        a bad option or value is refused and changes nothing."""
        with self._lock:
            check_fault_options(self.name, options, current=self.options())
            for key, value in options.items():
                setattr(self, key, value)
            if "drop_after_commands" in options:  # other options leave a countdown running
                self._drop_left = self.drop_after_commands
        if options.get("refuse_s"):
            self._notify_refuse(float(options["refuse_s"]))
        return self

    def clear(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self.drop_after_commands = None
            self._drop_left = None
            self.drop_times = 1
            self.drop_reset = False
            self.delay_queries = 0
            self.delay_pattern = None
            self.garble_queries = 0
            self.garble_pattern = None
            self.refuse_connections = 0
            self.refuse_s = 0.0
            self._frozen_until = 0.0
            self.corrupt_blocks = 0
            self.corrupt_value = "mixed"

    # -- the test API ---------------------------------------------------------------------
    def drop_after(self, n: int, *, times: int = 1, reset: bool = False) -> None:
        """Serve ``n`` more commands and close the connection when the next one arrives (it is
        not served); ``times`` drops in all, ``n`` commands apart; ``reset`` closes with RST."""
        self.configure(drop_after_commands=n, drop_times=times, drop_reset=reset)

    def delay_replies(self, count: int = 0, *, seconds: float = 1.0, pattern: str | None = None) -> None:
        """Delay replies by ``seconds``: the next ``count`` (matching ``pattern`` if given),
        or with ``count=0`` every query matching ``pattern``."""
        if not count and pattern is None:
            raise PlanError("delay_replies needs a count, a pattern or both")
        self.configure(delay_queries=count, delay_pattern=pattern, delay_s=seconds)

    def garble_replies(self, count: int = 0, *, pattern: str | None = None) -> None:
        """Reply with garbage: the next ``count`` replies (matching ``pattern`` if given),
        or with ``count=0`` every query matching ``pattern``."""
        if not count and pattern is None:
            raise PlanError("garble_replies needs a count, a pattern or both")
        self.configure(garble_queries=count, garble_pattern=pattern)

    def refuse(self, *, seconds: float = 0.0, connections: int = 0) -> None:
        """Refuse connections: stop listening for ``seconds`` (ECONNREFUSED, also on a running
        server: existing connections stay up), and/or reset the next ``connections``."""
        if not seconds and not connections:
            raise PlanError("refuse needs seconds, connections or both")
        self.configure(refuse_s=seconds, refuse_connections=connections)

    def freeze(self, seconds: float) -> None:
        """Answer nothing for ``seconds`` from now (a stopped process): messages that arrive are
        held, connections are accepted and kept; at the thaw the held messages are served."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
            raise PlanError(f"freeze needs a number of seconds in (0, 3600]; got {seconds!r}")
        with self._lock:
            self._frozen_until = time.monotonic() + float(seconds)

    def corrupt_payloads(self, count: int, *, value: str = "mixed") -> None:
        """The next ``count`` binary block replies keep their header and carry garbage samples
        (``value``: nan, inf, huge or mixed; see :data:`CORRUPT_VALUES`)."""
        self.configure(corrupt_blocks=count, corrupt_value=value)

    # -- decisions, called by the server ------------------------------------------------------
    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen_until > time.monotonic()

    def wait_thaw(self, stop: threading.Event) -> bool:
        """Hold the caller while frozen; True when it may serve (thawed, or never frozen), False
        when ``stop`` was set meanwhile."""
        while True:
            with self._lock:
                left = self._frozen_until - time.monotonic()
            if left <= 0:
                return True
            if stop.wait(min(left, _POLL_S)):
                return False

    def _notify_refuse(self, seconds: float) -> None:
        server = self._server
        if server is not None:
            server._go_down(seconds)

    def take_refusal(self) -> bool:
        with self._lock:
            if self.refuse_connections > 0:
                self.refuse_connections -= 1
                return True
            return False

    def take_drop(self) -> tuple[bool, bool]:
        """A command arrived: (drop the connection instead of serving it?, with RST?)."""
        with self._lock:
            if self._drop_left is None:
                return False, False
            if self._drop_left > 0:
                self._drop_left -= 1
                return False, False
            reset = self.drop_reset
            self.drop_times -= 1
            if self.drop_times > 0:
                self._drop_left = self.drop_after_commands
            else:
                self._drop_left = None
                self.drop_after_commands = None
                self.drop_times = 1
                self.drop_reset = False
            return True, reset

    def _take(self, message: str, count_attr: str, pattern_attr: str) -> bool:
        count = getattr(self, count_attr)
        pattern = getattr(self, pattern_attr)
        if pattern is not None and not re.search(pattern, message):
            return False
        if count > 0:
            setattr(self, count_attr, count - 1)
            if count == 1:
                setattr(self, pattern_attr, None)
            return True
        return pattern is not None

    def take_corruption(self) -> str | None:
        """For a block reply about to be sent: the garbage to put in it (consumes one), or None."""
        with self._lock:
            if self.corrupt_blocks <= 0:
                return None
            self.corrupt_blocks -= 1
            return self.corrupt_value

    def take_reply_faults(self, message: str) -> tuple[float, bool]:
        """For a query about to be answered: (delay in seconds or 0, garble?)."""
        with self._lock:
            delay = self.delay_s if self._take(message, "delay_queries", "delay_pattern") else 0.0
            garble = self._take(message, "garble_queries", "garble_pattern")
            return delay, garble


_HUGE = 3.0e38  # a float32 a digitizer never records (about 0.9 of float32's largest)
_GARBAGE_SAMPLES = {"nan": (np.nan,), "inf": (np.inf, -np.inf), "huge": (_HUGE, -_HUGE),
                    "mixed": (np.nan, np.inf, _HUGE, -np.inf, -_HUGE)}
_CORRUPTED_PER_BLOCK = 16  # garbage samples per block, evenly spaced (so every channel gets some)


def _is_block(parts: list) -> bool:
    """Is this reply an IEEE 488.2 definite-length block with a non-empty payload?"""
    head = bytes(memoryview(parts[0])[:11]) if parts else b""
    if head[:1] != b"#" or not head[1:2].isdigit() or head[1:2] == b"0":
        return False
    digits = head[2:2 + int(head[1:2])]
    return len(digits) == int(head[1:2]) and digits.isdigit() and int(digits) > 0


def _corrupt_block(parts: list, value: str) -> list[bytes]:
    """The same block (header, length and terminator intact) with garbage float32 samples."""
    raw = b"".join(bytes(p) for p in parts)
    ndigits = int(raw[1:2])
    start = 2 + ndigits
    length = int(raw[2:start])
    out = bytearray(raw)
    samples = np.frombuffer(memoryview(out)[start:start + length - length % 4], dtype="<f4")
    if samples.size:
        where = np.linspace(0, samples.size - 1, min(_CORRUPTED_PER_BLOCK, samples.size)).astype(np.int64)
        garbage = _GARBAGE_SAMPLES[value]
        samples[where] = np.resize(np.asarray(garbage, dtype="<f4"), where.size)
    return [bytes(out)]


def _reply_size(parts: Iterable[bytes | memoryview]) -> int:
    return sum(memoryview(p).nbytes for p in parts)


class SimServer:
    """One simulated instrument: a TCP server on 127.0.0.1 in front of a dialect model.

    ``model`` has ``handle(message: str) -> list[bytes | memoryview]`` (the reply buffers,
    empty when the message asks for nothing). ``port=0`` picks a free port; ``name`` (the
    bench role) appears in log lines and fault messages.
    """

    def __init__(self, model, *, host: str = LOOPBACK, port: int = 0, name: str | None = None,
                 faults: Faults | None = None, history: int = 2000):
        if host != LOOPBACK:
            raise PlanError(f"simulated servers bind to {LOOPBACK} only; got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise PlanError(f"simulated server port must be an integer in [0, 65535]; got {port!r}")
        self.model = model
        self.host = host
        self.name = name or getattr(model, "name", type(model).__name__)
        self.faults = faults or Faults()
        self.faults.name = self.name
        self.faults._server = self
        self.stats = ServerStats()
        self.received: deque[str] = deque(maxlen=history)  # the last messages, verbatim
        self._requested_port = port
        self._port: int | None = None
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._accept_thread: threading.Thread | None = None
        self._down_until = 0.0  # monotonic time before which the port does not listen
        self._down_request: float | None = None
        self._down_ack = threading.Event()

    # -- properties ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise PlanError(f"simulated server {self.name} is not started")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def resource(self) -> str:
        """The VISA resource string clients open (pyvisa-py raw socket)."""
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    @property
    def running(self) -> bool:
        return self._started and not self._stop.is_set()

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> "SimServer":
        if self._started:
            raise PlanError(f"simulated server {self.name} is already started")
        sock = self._bind(self._requested_port)
        self._port = sock.getsockname()[1]
        refuse = self.faults.refuse_s
        if refuse > 0:
            # bound but not listening: connection attempts get ECONNREFUSED, the port is ours
            self._down_until = time.monotonic() + refuse
        else:
            sock.listen(16)
        self._listener = sock
        self._started = True
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"sim-{self.name}-accept", daemon=True)
        self._accept_thread.start()
        log.debug("%s listening on %s:%d", self.name, self.host, self._port)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Close the listener and every connection; join the threads (bounded)."""
        if not self._started:
            return
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # wake the threads; each closes its own socket
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftovers = list(self._conns)
        for conn in leftovers:  # threads that did not end in time are daemons; close their sockets
            _hard_close(conn)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._started = False

    def __enter__(self) -> "SimServer":
        return self.start()

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port else "not started"
        return f"<SimServer {self.name} {where}>"

    # -- listening -------------------------------------------------------------------------------
    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, port))
        except OSError as exc:
            sock.close()
            raise PlanError(f"simulated server {self.name}: cannot bind {self.host}:{port} ({exc.strerror})") from exc
        return sock

    def _go_down(self, seconds: float) -> None:
        """Stop listening for ``seconds`` (called from Faults; waits for the accept thread)."""
        if not self.running:
            return  # start() reads refuse_s itself
        self._down_ack.clear()
        self._down_request = seconds
        if not self._down_ack.wait(2.0):
            raise PlanError(f"simulated server {self.name}: the accept thread did not stop listening")

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            if self._down_request is not None:
                seconds, self._down_request = self._down_request, None
                if self._listener is not None:
                    self._listener.close()
                # a fresh socket on the same port, bound but not listening: refused
                self._listener = self._rebind()
                self._down_until = time.monotonic() + seconds
                self._down_ack.set()
            if self._down_until:
                remaining = self._down_until - time.monotonic()
                if remaining > 0:
                    self._stop.wait(min(remaining, _POLL_S))
                    continue
                self._down_until = 0.0
                if self._listener is None:
                    self._listener = self._rebind()
                if self._listener is None:
                    return
                self._listener.listen(16)
            listener = self._listener
            if listener is None:
                return
            try:
                ready, _, _ = select.select([listener], [], [], _POLL_S)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                conn, _addr = listener.accept()
            except OSError:
                continue
            if self.faults.take_refusal():
                self.stats.add(refused=1)
                log.info("%s: fault: connection reset on accept", self.name)
                _hard_close(conn, reset=True)
                continue
            self.stats.add(connections=1)
            t = threading.Thread(target=self._serve, args=(conn,), name=f"sim-{self.name}-conn", daemon=True)
            with self._lock:
                if self._stop.is_set():
                    _hard_close(conn)
                    return
                self._conns.add(conn)
                self._threads.add(t)
            t.start()

    def _rebind(self) -> socket.socket | None:
        for _ in range(40):
            try:
                return self._bind(self._port or 0)
            except PlanError:
                if self._stop.wait(_POLL_S):
                    return None
        log.error("%s: could not re-bind port %s", self.name, self._port)
        return None

    # -- one connection -----------------------------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        scanned = 0
        cr_terminates = bool(getattr(self.model, "cr_terminates", False))
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stop.is_set():
                try:
                    ready, _, _ = select.select([conn], [], [], _POLL_S)
                except (OSError, ValueError):
                    return
                if not ready:
                    continue
                try:
                    data = conn.recv(1 << 16)
                except OSError:
                    return
                if not data:
                    return  # the client closed
                if cr_terminates:  # CR, LF and CR+LF all end a message (empty ones are skipped)
                    data = data.replace(b"\r", b"\n")
                buf += data
                while True:
                    i = buf.find(b"\n", scanned)
                    if i < 0:
                        scanned = len(buf)
                        if len(buf) > MAX_MESSAGE_BYTES:
                            log.error("%s: message longer than %d bytes without a terminator; closing",
                                      self.name, MAX_MESSAGE_BYTES)
                            return
                        break
                    line = bytes(buf[:i])
                    del buf[: i + 1]
                    scanned = 0
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    message = line.decode("latin-1")
                    if not message.strip():
                        continue
                    if not self._handle(conn, message):
                        return
        except OSError as exc:  # the socket died under us (stop(), the peer): the connection ends
            log.debug("%s: connection ended: %s", self.name, exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._threads.discard(threading.current_thread())
            _hard_close(conn)

    def _handle(self, conn: socket.socket, message: str) -> bool:
        """Serve one message; False when the connection must end."""
        self.stats.add(commands=1)
        self.received.append(message)
        if self.faults.frozen:
            self.stats.add(held=1)
            if not self.faults.wait_thaw(self._stop):
                return False
        drop, reset = self.faults.take_drop()
        if drop:
            self.stats.add(dropped=1)
            log.info("%s: fault: connection dropped on %r (not served)", self.name, message)
            _hard_close(conn, reset=reset)
            return False
        try:
            parts = self.model.handle(message)
        except Exception:  # a model bug must not kill the bench silently: log it, keep serving
            log.exception("%s: the model failed on %r", self.name, message)
            parts = []
        if parts:
            self.stats.add(queries=1)
            delay, garble = self.faults.take_reply_faults(message)
            if garble:
                self.stats.add(garbled=1)
                log.info("%s: fault: garbage reply to %r", self.name, message)
                parts = [GARBAGE + getattr(self.model, "terminator", b"\n")]
            elif self.faults.corrupt_blocks and _is_block(parts):  # (unlocked peek: the take decides)
                value = self.faults.take_corruption()
                if value is not None:
                    self.stats.add(corrupted=1)
                    log.info("%s: fault: block reply to %r carries garbage samples (%s)", self.name, message, value)
                    parts = _corrupt_block(parts, value)
            if delay > 0:
                self.stats.add(delayed=1)
                log.info("%s: fault: reply to %r delayed %.3f s", self.name, message, delay)
                if self._stop.wait(delay):
                    return False
            try:
                for part in parts:
                    conn.sendall(part)
            except OSError:
                return False
            self.stats.add(bytes_sent=_reply_size(parts))
        return True


def _hard_close(conn: socket.socket, *, reset: bool = False) -> None:
    try:
        if reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


__all__ = ["SimServer", "Faults", "ServerStats", "FAULT_OPTIONS", "LOOPBACK", "GARBAGE"]
