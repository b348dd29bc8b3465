"""Connecting a role's pymeasure driver: open it (terminations explicit, Nagle off on TCP)
and map pyvisa, socket and parse errors onto corrlab's one-line instrument errors.

Apart from :mod:`corrlab.instruments.benchfile`, which only reads and checks the bench file
(no pyvisa import, no connection).
"""

from __future__ import annotations

import warnings

from corrlab.errors import InstrumentError, InstrumentTimeout
from corrlab.instruments.benchfile import DRIVERS, RoleConfig, resource_host


def translate_error(exc: BaseException, role: str, what: str) -> InstrumentError:
    """Map pyvisa / socket / parse errors onto corrlab's hierarchy (one line, role named)."""
    import pyvisa

    if isinstance(exc, InstrumentError):
        return exc
    if isinstance(exc, pyvisa.errors.VisaIOError):
        if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
            return InstrumentTimeout(f"{role}: no answer to {what} within the timeout", role=role)
        return InstrumentError(f"{role}: VISA error during {what}: {exc.abbreviation}", role=role)
    if isinstance(exc, ConnectionRefusedError):
        return InstrumentError(f"{role}: connection refused during {what}", role=role)
    if isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
        return InstrumentError(f"{role}: connection dropped during {what} ({type(exc).__name__})", role=role)
    if isinstance(exc, OSError):
        return InstrumentError(f"{role}: I/O error during {what}: {exc}", role=role)
    if isinstance(exc, (ValueError, TypeError, IndexError, KeyError)):
        return InstrumentError(f"{role}: unexpected reply during {what} ({exc})", role=role)
    return InstrumentError(f"{role}: {type(exc).__name__} during {what}: {exc}", role=role)


def open_driver(role: str, cfg: RoleConfig, resource: str, visa_library: str):
    """Instantiate the pymeasure driver for a role (termination passed explicitly)."""
    spec = DRIVERS[cfg.driver]
    cls = spec.load()
    kwargs = dict(
        visa_library=visa_library,
        read_termination=cfg.read_termination if cfg.read_termination is not None else spec.read_termination,
        write_termination=cfg.write_termination if cfg.write_termination is not None else spec.write_termination,
        timeout=cfg.timeout_ms,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # ESP300: SCPIUnknownMixin notice
            driver = cls(resource, **kwargs)
    except Exception as exc:
        raise translate_error(exc, role, f"opening {resource}") from exc
    if resource_host(resource) is not None:
        set_tcp_nodelay(driver.adapter.connection)
    return driver


def set_tcp_nodelay(connection) -> bool:
    """Turn Nagle's algorithm off on a VISA TCP socket (NI-VISA's default).

    Without it every write followed by a query waits for a delayed ACK: about 40 ms per
    set-then-confirm here. pyvisa-py 0.8.1 registers the VI_ATTR_TCPIP_NODELAY setter
    wrongly (setting it raises UnknownAttribute), so fall back to the session's socket.
    """
    import socket

    import pyvisa

    try:
        connection.set_visa_attribute(pyvisa.constants.VI_ATTR_TCPIP_NODELAY, True)
        return True
    except Exception:
        pass
    sessions = getattr(getattr(connection, "visalib", None), "sessions", None)
    sock = getattr(sessions.get(getattr(connection, "session", None)), "interface", None) if isinstance(sessions, dict) else None
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return True
    return False
