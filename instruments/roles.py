"""Roles: what the protocol asks of each instrument, in the words of the experiment.

A role wraps one unmodified pymeasure driver and offers verbs (``close_mediator``,
``write_code``, ``acquire``...) and a ``safe_state()`` that the runner always restores:
written, then read back from the instrument (a write alone proves nothing; a write into a
dead socket may even "succeed"), raising :class:`InstrumentError` when it does not confirm.
Protocols speak to roles, never to drivers, so a lab with another relay unit writes one
role class, not a new protocol. Arguments are checked strictly here because several
pymeasure 0.16 validators clip silently (``truncated_range``), and a clipped reference
phase would be a wrong measurement, not an error.

:class:`ConnectedBench` connects every role, identifies it (``*IDN?``), translates errors into
corrlab's hierarchy, checks which roles still answer and reopens those that do not, and
restores safe states into a :class:`SafeStateReport` that names every role not confirmed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from corrlab.errors import InstrumentError, PlanError
from corrlab.instruments.benchfile import DRIVERS, BenchConfig, RoleConfig
from corrlab.instruments.connect import open_driver, translate_error

log = logging.getLogger(__name__)

DAC_FULL_SCALE = 32767  # Agilent 33500 DAC arb points: -32767..32767


def _in_list(value: float, allowed: list[float], what: str) -> float:
    for a in allowed:
        if math.isclose(value, a, rel_tol=1e-9, abs_tol=0.0):
            return a
    raise PlanError(f"{what} {value!r} is not one the instrument offers; allowed: {', '.join(f'{a:g}' for a in allowed)}")


def _in_range(value: float, lo: float, hi: float, what: str) -> float:
    if not lo <= value <= hi:
        raise PlanError(f"{what} {value!r} is outside [{lo:g}, {hi:g}]")
    return float(value)


def _confirm(role: str, what: str, read: Callable[[], Any], holds: Callable[[Any], bool]) -> None:
    """Read a safe state back from the instrument (``read``); raise unless it ``holds``."""
    try:
        got = read()
    except InstrumentError:
        raise
    except Exception as exc:
        raise translate_error(exc, role, f"the read-back of {what}") from exc
    if not holds(got):
        raise InstrumentError(f"{role}: {what} reads back {got!r} after the safe state", role=role)


class Role:
    """One instrument in its role. ``driver`` is the pymeasure instrument."""

    kind = ""

    def __init__(self, name: str, driver, options: dict[str, Any]):
        self.name = name
        self.driver = driver
        self.options = options

    def identify(self) -> str:
        return str(self.driver.id).strip()

    def safe_state(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        try:
            self.driver.adapter.close()
        except Exception:  # closing a dead socket may fail in many ways; it is closed either way
            pass


class Readout(Role):
    """SR830 lock-in: the reference phase is the local measurement setting."""

    kind = "readout"

    def configure(self, *, frequency: float, time_constant: float, sensitivity: float, filter_slope: int = 12) -> None:
        d = self.driver
        d.frequency = _in_range(frequency, 0.001, 102_000.0, f"{self.name} frequency (Hz)")
        d.time_constant = _in_list(time_constant, list(d.TIME_CONSTANTS), f"{self.name} time constant (s)")
        d.sensitivity = _in_list(sensitivity, list(d.SENSITIVITIES), f"{self.name} sensitivity (V)")
        d.filter_slope = int(_in_list(filter_slope, list(d.FILTER_SLOPES), f"{self.name} filter slope (dB/oct)"))
        got = {"frequency": d.frequency, "time_constant": d.time_constant, "sensitivity": d.sensitivity}
        want = {"frequency": frequency, "time_constant": time_constant, "sensitivity": sensitivity}
        for key, value in want.items():
            if not math.isclose(float(got[key]), value, rel_tol=1e-4):
                raise InstrumentError(f"{self.name}: {key} reads back {got[key]!r} after setting {value!r}", role=self.name)

    def set_phase(self, degrees: float) -> float:
        self.driver.phase = _in_range(degrees, -360.0, 729.99, f"{self.name} reference phase (deg)")
        return float(self.driver.phase)

    def read_xy(self) -> tuple[float, float]:
        x, y = self.driver.xy
        return float(x), float(y)

    def read_magnitude(self) -> float:
        return float(self.driver.magnitude)

    def safe_state(self) -> None:
        self.driver.sine_voltage = 0.004  # reference output to its minimum
        _confirm(self.name, "the reference amplitude (SLVL?)", lambda: float(self.driver.sine_voltage),
                 lambda v: math.isclose(v, 0.004, abs_tol=1e-6))


class Drive(Role):
    """Agilent 33500: channel 1 drives side A, channel 2 side B (through the mediator)."""

    kind = "drive"

    def _channel(self, side: str):
        return self.driver.ch_1 if side == "a" else self.driver.ch_2

    def write_code(self, code_a: list[int], code_b: list[int], *, sample_rate: float = 1.0e5) -> list:
        """Load each side's ΔL code (bits) as an arbitrary waveform and fire one burst.

        Returns the instrument's error queue after the burst (empty when all went well).
        """
        d = self.driver
        d.trigger_source = "BUS"  # *TRG fires the bursts only with the BUS trigger source
        for side, code in (("a", code_a), ("b", code_b)):
            if not code or any(b not in (0, 1) for b in code):
                raise PlanError(f"ΔL code for side {side} must be a non-empty list of bits")
            ch = self._channel(side)
            ch.output = False
            ch.data_volatile_clear()
            ch.data_arb("DLCODE", [DAC_FULL_SCALE if b else -DAC_FULL_SCALE for b in code], "DAC")
            ch.arb_file = "DLCODE"
            ch.arb_srate = sample_rate
            ch.shape = "ARB"
            ch.burst_ncycles = 1
            ch.burst_state = True
            ch.output = True
        d.trigger()
        for side in ("a", "b"):
            self._channel(side).output = False
            self._channel(side).burst_state = False
        return d.check_errors()

    def tone(self, *, frequency: float, amplitude: float) -> None:
        ch = self._channel("a")
        ch.burst_state = False
        ch.shape = "SIN"
        ch.frequency = _in_range(frequency, 1e-6, 20e6, "test tone frequency (Hz)")
        ch.amplitude = _in_range(amplitude, 0.01, 10.0, "test tone amplitude (Vpp)")
        ch.output = True
        self._sync()

    def tone_off(self) -> None:
        self._channel("a").output = False
        self._sync()

    def _sync(self) -> None:
        """*OPC?: the tone is really on (or off) before another instrument reads the effect."""
        self.driver.complete

    def safe_state(self) -> None:
        for side in ("a", "b"):
            self._channel(side).output = False
        for side, n in (("a", 1), ("b", 2)):
            _confirm(self.name, f"output {n} (OUTP{n}?)", lambda: self._channel(side).output, lambda v: v is False)


class Thermal(Role):
    """LakeShore 336: ΔM, the temperature of the material (input and heater from options)."""

    kind = "thermal"

    @property
    def _input(self):
        return getattr(self.driver, f"input_{self.options.get('input', 'A')}")

    @property
    def _heater(self):
        return getattr(self.driver, f"output_{int(self.options.get('heater', 1))}")

    def set_setpoint(self, kelvin: float, *, heater_range: str = "medium") -> None:
        self._heater.setpoint = _in_range(kelvin, 0.0, 1500.0, "setpoint (K)")
        if heater_range not in ("off", "low", "medium", "high"):
            raise PlanError(f"heater range {heater_range!r}; allowed: off, low, medium, high")
        self._heater.range = heater_range
        got = float(self._heater.setpoint)
        if not math.isclose(got, kelvin, abs_tol=1e-6):
            raise InstrumentError(f"{self.name}: setpoint reads back {got} K after setting {kelvin} K", role=self.name)

    def temperature(self) -> float:
        return float(self._input.kelvin)

    def safe_state(self) -> None:
        self._heater.range = "off"
        _confirm(self.name, f"heater {int(self.options.get('heater', 1))} range (RANGE?)", lambda: self._heater.range,
                 lambda v: v == "off")


class Stage(Role):
    """ESP300: ΔC, the alignment stages of A (axis_a) and B (axis_b), positions in mm."""

    kind = "stage"

    def _axis(self, side: str):
        number = int(self.options.get(f"axis_{side}", 1 if side == "a" else 2))
        return {1: self.driver.x, 2: self.driver.y, 3: self.driver.phi}[number]

    def move_pair(self, target_a: float, target_b: float, *, timeout_s: float = 30.0, poll_s: float = 0.005) -> tuple[float, float]:
        """Move both stages, wait (bounded) until both stop, return the read-back positions."""
        axes = {"a": self._axis("a"), "b": self._axis("b")}
        for side, target in (("a", target_a), ("b", target_b)):
            _in_range(target, -25.0, 25.0, f"stage {side} target (mm)")
            axes[side].enable()
            axes[side].position = target
        deadline = time.monotonic() + timeout_s
        for side, ax in axes.items():
            while not ax.motion_done:
                if time.monotonic() > deadline:
                    raise InstrumentError(f"{self.name}: axis {side} still moving after {timeout_s:g} s", role=self.name)
                time.sleep(poll_s)
        return float(axes["a"].position), float(axes["b"].position)

    def safe_state(self) -> None:
        # not ESP300.shutdown(): in pymeasure 0.16 it queries every property first
        for side in ("a", "b"):
            self._axis(side).disable()
        for side in ("a", "b"):
            _confirm(self.name, f"axis {side} motor (MO?)", lambda: self._axis(side).enabled, lambda v: v is False)


class Isolation(Role):
    """Keithley 2750 switch: the mediator relay, and the environment link."""

    kind = "isolation"

    @property
    def mediator(self) -> int:
        return int(self.options.get("mediator_channel", 101))

    @property
    def environment(self) -> int:
        return int(self.options.get("environment_channel", 102))

    def _switch(self, channel: int, closed: bool) -> None:
        """Switch one relay and confirm it from the instrument (a write alone proves nothing)."""
        (self.driver.close if closed else self.driver.open)(channel)
        if (channel in self.closed_channels()) != closed:
            raise InstrumentError(f"{self.name}: relay {channel} did not {'close' if closed else 'open'}", role=self.name)

    def close_mediator(self) -> None:
        self._switch(self.mediator, True)

    def open_mediator(self) -> None:
        self._switch(self.mediator, False)

    def couple_environment(self, on: bool) -> None:
        self._switch(self.environment, bool(on))

    def closed_channels(self) -> list[int]:
        # pymeasure 0.16 applies its list cleaner only to multi-value replies: a single
        # channel ("(@101)") or none ("(@)") comes back as the raw string
        from pymeasure.instruments.keithley.keithley2750 import clean_closed_channels

        value = self.driver.closed_channels
        if isinstance(value, str):
            value = clean_closed_channels(value)
        return sorted(int(c) for c in value)

    def safe_state(self) -> None:
        self.driver.open_all()
        _confirm(self.name, "the closed relays (ROUT:CLOS?)", self.closed_channels, lambda v: v == [])


class Digitizer(Role):
    """The fast two-channel digitizer (four channels when quadratures are recorded)."""

    kind = "digitizer"
    record_s = 0.0  # how long a record takes (points / sample rate), known once configured

    def configure(self, *, sample_rate: float, points: int, channels: int = 2) -> None:
        self.driver.sample_rate = sample_rate
        self.driver.record_length = int(points)
        self.driver.channels = int(channels)
        self.record_s = int(points) / float(sample_rate)

    def start_record(self, tag: int) -> None:
        """Tag the coming record with the trial index (the record header carries it)."""
        self.driver.record_tag = int(tag)
        if int(self.driver.record_tag) != int(tag):
            raise InstrumentError(f"{self.name}: record tag did not take the value {tag}", role=self.name)

    def acquire(self) -> np.ndarray:
        """Arm, wait for the record, fetch every channel: array (channels, points), volts.

        The wait (``*OPC?``) is allowed the record's own duration on top of the role's timeout:
        the timeout bounds an answer, not the acquisition (a 10 s record under a 2 s timeout
        timed out on every trial).
        """
        d = self.driver
        d.arm()
        conn = getattr(d.adapter, "connection", None)
        base = getattr(conn, "timeout", None)
        if not self.record_s or not isinstance(base, (int, float)):
            d.wait_complete()
        else:
            conn.timeout = base + 1000.0 * self.record_s
            try:
                d.wait_complete()
            finally:
                conn.timeout = base
        return d.fetch_all()

    def safe_state(self) -> None:
        self.driver.abort()
        _confirm(self.name, "the acquisition state (ACQ:STAT?)", lambda: str(self.driver.acquisition_state).strip(),
                 lambda v: v == "IDLE")


ROLE_CLASSES: dict[str, type[Role]] = {
    "Readout": Readout, "Drive": Drive, "Thermal": Thermal, "Stage": Stage,
    "Isolation": Isolation, "Digitizer": Digitizer,
}


@dataclass(frozen=True)
class Absence:
    """Why a role failed its check. ``answered``: it replied, but not with its identity (a late
    reply still in the stream): out of step, not lost; otherwise no answer or no connection."""

    reason: str
    answered: bool = False

    def __str__(self) -> str:
        return self.reason


@dataclass
class SafeStateReport:
    """Which roles the instruments confirmed in their safe state, and why the others are not.

    ``confirmed``: roles whose safe state was written and read back. ``not_confirmed``: role ->
    the reason (unreachable, no answer, a read-back that did not hold). A role is never counted
    safe without its instrument's answer.
    """

    confirmed: list[str] = field(default_factory=list)
    not_confirmed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.not_confirmed

    def to_json(self) -> dict:
        return {"confirmed": list(self.confirmed), "not_confirmed": dict(self.not_confirmed)}


class ConnectedBench:
    """Every role connected; calls go through :meth:`call`, which names the role on errors.

    ``resources`` overrides the bench file's resources (a simulated bench fills in the
    ports it bound). ``sleep`` is injectable so tests of the backoff need not wait.
    """

    def __init__(self, config: BenchConfig, resources: dict[str, str] | None = None, *,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.resources = {r: (resources or {}).get(r) or cfg.resource for r, cfg in config.roles.items()}
        self.roles: dict[str, Role] = {}
        self.idn: dict[str, str] = {}
        self._sleep = sleep
        self.reconnects: list[dict] = []

    # -- connection -----------------------------------------------------------------
    def _open_role(self, name: str) -> Role:
        cfg: RoleConfig = self.config.roles[name]
        resource = self.resources[name]
        if resource is None:
            raise PlanError(f"roles.{name}: no resource to connect to")
        driver = open_driver(name, cfg, resource, self.config.visa_library)
        role = ROLE_CLASSES[DRIVERS[cfg.driver].role_class](name, driver, dict(cfg.options))
        try:
            idn = role.identify()
        except Exception as exc:
            role.close()
            raise translate_error(exc, name, f"*IDN? at {resource}") from exc
        if not idn:
            role.close()
            raise InstrumentError(f"{name}: empty *IDN? reply from {resource}", role=name)
        self.idn.setdefault(name, idn)
        if idn != self.idn[name]:
            role.close()
            raise InstrumentError(f"{name}: *IDN? changed from {self.idn[name]!r} to {idn!r}", role=name)
        return role

    def _open_with_backoff(self, name: str, *, pause_first: bool) -> int:
        """Open one role, retrying with exponential backoff; return the attempts used."""
        rc = self.config.reconnect
        delay = rc.backoff_s
        last: InstrumentError | None = None
        tries = rc.attempts + (0 if pause_first else 1)
        for attempt in range(1, tries + 1):
            if pause_first or attempt > 1:
                self._sleep(delay)
                delay *= rc.backoff_factor
            try:
                self.roles[name] = self._open_role(name)
                return attempt
            except InstrumentError as exc:
                last = exc
        raise InstrumentError(f"{name}: not reachable after {tries} attempt(s): {last}", role=name) from last

    def connect(self) -> dict[str, str]:
        """Open and identify every role (retrying a refusal within the reconnect bound).

        On failure, close what was opened and raise.
        """
        try:
            for name in self.config.roles:
                self._open_with_backoff(name, pause_first=False)
        except BaseException:
            self.close()
            raise
        return dict(self.idn)

    def check(self, name: str) -> "Absence | None":
        """Is ``name`` still there? A cheap ``*IDN?`` on its connection: None when it answers with
        its recorded identity, else why not (never raises)."""
        role = self.roles.get(name)
        if role is None:
            return Absence(f"{name}: not connected")
        try:
            idn = role.identify()
        except Exception as exc:
            return Absence(str(translate_error(exc, name, "*IDN? (check)")))
        if idn != self.idn.get(name):
            return Absence(f"{name}: *IDN? answered {idn[:60]!r}, not {self.idn.get(name)!r}", answered=True)
        return None

    def check_all(self) -> "dict[str, Absence]":
        """Every role checked (:meth:`check`): role -> why it is gone, for those that are."""
        gone = {}
        for name in self.config.roles:
            why = self.check(name)
            if why is not None:
                gone[name] = why
        return gone

    def reopen(self, name: str) -> InstrumentError | None:
        """One attempt to open ``name`` afresh (its old connection closed first, no backoff):
        None when it is back with its identity, else the error."""
        old = self.roles.pop(name, None)
        if old is not None:
            old.close()
        try:
            self.roles[name] = self._open_role(name)
        except InstrumentError as exc:
            return exc
        return None

    def reconnect(self, name: str) -> int:
        """Reopen one role with bounded exponential backoff and an *IDN? check.

        Returns the number of attempts used; raises InstrumentError past the bound.
        """
        old = self.roles.pop(name, None)
        if old is not None:
            old.close()
        try:
            used = self._open_with_backoff(name, pause_first=True)
        except InstrumentError:
            self.reconnects.append({"role": name, "attempts": self.config.reconnect.attempts, "ok": False})
            raise
        self.reconnects.append({"role": name, "attempts": used, "ok": True})
        return used

    # -- calls ----------------------------------------------------------------------------
    def call(self, role: str, verb: str, *args, **kwargs):
        if role not in self.roles:
            raise InstrumentError(f"{role}: not connected", role=role)
        target = getattr(self.roles[role], verb, None)
        if target is None or verb.startswith("_"):
            raise PlanError(f"role {role} has no action {verb!r}")
        try:
            return target(*args, **kwargs)
        except InstrumentError as exc:
            if exc.role is None:  # raised inside a driver of ours: name the role, so it can be reconnected
                exc.role = role
                exc.args = (f"{role}: {exc}",)
            raise
        except PlanError:
            raise
        except Exception as exc:
            raise translate_error(exc, role, verb) from exc

    def safe_state(self) -> SafeStateReport:
        """Put every role of the bench in its safe state, confirmed by its instrument; never raises.

        Each role is checked first (``*IDN?``: a stale reply or a dead socket must not pass for a
        confirmation); one that is gone, or was never reconnected, gets one fresh connection;
        then its safe state is written and read back. A role that cannot be reached or does not
        confirm is in ``not_confirmed`` with the reason; the others are still made safe.
        """
        report = SafeStateReport()
        for name in self.config.roles:
            why = self.check(name)
            if why is not None:
                err = self.reopen(name)
                if err is not None:
                    report.not_confirmed[name] = f"not reachable: {err}"
                    continue
            try:
                self.roles[name].safe_state()
            except Exception as exc:  # once more on a fresh connection; then keep going with the others
                why = str(translate_error(exc, name, "safe state"))
                err = self.reopen(name)
                if err is not None:
                    report.not_confirmed[name] = f"{why}; then not reachable: {err}"
                    continue
                try:
                    self.roles[name].safe_state()
                except Exception as again:
                    report.not_confirmed[name] = str(translate_error(again, name, "safe state"))
                    continue
            report.confirmed.append(name)
        return report

    def close(self) -> None:
        for role in self.roles.values():
            role.close()
        self.roles.clear()
