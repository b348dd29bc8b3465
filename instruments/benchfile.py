"""The bench file: which instrument plays which role, and how to reach it.

A bench file (TOML) maps each role to a driver model and a VISA resource::

    name = "lab 3 bench"
    simulated = false
    visa_library = "@py"            # pyvisa-py; "@ivi" selects NI-VISA where installed

    [roles.readout_a]
    driver = "SR830"
    resource = "GPIB0::8::INSTR"

Driver models are names from :data:`DRIVERS`, never import paths: a bench file is data,
and cannot make corrlab import or run anything. A simulated bench (``simulated = true``)
gets its instruments from ``corrlab.instruments.sim`` on 127.0.0.1; any other host is refused.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from corrlab.config import load_model, validate
from corrlab.errors import PlanError
from corrlab.instruments.faults import check_fault_options

ROLES = ("readout_a", "readout_b", "drive", "thermal", "stage", "isolation", "digitizer")
LOOPBACK = "127.0.0.1"
DEFAULT_BENCH = Path(__file__).with_name("simulated.toml")


@dataclass(frozen=True)
class DriverSpec:
    """A driver model a bench may name: where its class lives and how it talks."""

    target: str  # "module:Class", fixed here, never read from a file
    roles: tuple[str, ...]
    read_termination: str
    write_termination: str = "\r\n"
    role_class: str = ""

    def load(self):
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


DRIVERS: dict[str, DriverSpec] = {
    "SR830": DriverSpec("pymeasure.instruments.srs.sr830:SR830", ("readout_a", "readout_b"), "\n", role_class="Readout"),
    "Agilent33500": DriverSpec("pymeasure.instruments.agilent.agilent33500:Agilent33500", ("drive",), "\n", role_class="Drive"),
    "LakeShore336": DriverSpec(
        "pymeasure.instruments.lakeshore.lakeshore3xx:LakeShore3xx", ("thermal",), "\r\n", role_class="Thermal"
    ),
    "ESP300": DriverSpec("pymeasure.instruments.newport.esp300:ESP300", ("stage",), "\n", role_class="Stage"),
    "Keithley2750": DriverSpec(
        "pymeasure.instruments.keithley.keithley2750:Keithley2750", ("isolation",), "\n", role_class="Isolation"
    ),
    "FastDigitizer": DriverSpec("corrlab.instruments.drivers.digitizer:FastDigitizer", ("digitizer",), "\n", role_class="Digitizer"),
}


class RoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: str
    resource: str | None = Field(None, description="VISA resource; omitted on a simulated bench (auto port)")
    read_termination: str | None = None
    write_termination: str | None = None
    timeout_ms: int = Field(2000, ge=10, le=600_000)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("driver")
    @classmethod
    def _driver(cls, v: str) -> str:
        if v not in DRIVERS:
            raise ValueError(f"unknown driver {v!r}; known drivers: {', '.join(DRIVERS)}")
        return v


class WorldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = "common_cause"
    seed: int | None = Field(None, ge=0, lt=2**63, description="world seed (0 <= seed < 2**63, as a protocol's); default: the run's seed")
    params: dict[str, Any] = Field(default_factory=dict)


class CalibrationConfig(BaseModel):
    """What the recorded columns mean, copied into the manifest's ``calibration``.

    ``vacuum_variance``: the vacuum variance of each side's quadratures (column units);
    ``magnetization_full_scale``: the volts of each side's record at normalized
    magnetization ``M / N = 1`` (the records are magnetizations). Either or both; a key
    left out is left out of the manifest too.
    """

    model_config = ConfigDict(extra="forbid")

    vacuum_variance: dict[Literal["a", "b"], float] | None = None
    magnetization_full_scale: dict[Literal["a", "b"], float] | None = None

    @field_validator("vacuum_variance", "magnetization_full_scale")
    @classmethod
    def _vv(cls, v, info):
        if v is not None and (set(v) != {"a", "b"} or any(not x > 0 for x in v.values())):
            raise ValueError(f"{info.field_name} needs positive values for both a and b")
        return v

    @model_validator(mode="after")
    def _some(self):
        if self.vacuum_variance is None and self.magnetization_full_scale is None:
            raise ValueError("calibration needs vacuum_variance or magnetization_full_scale")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler):
        return {k: v for k, v in handler(self).items() if v is not None}


class ReconnectConfig(BaseModel):
    """How the bench is brought back after a fault (``[reconnect]``).

    ``attempts``: retries per role when the bench connects (a start or a resume) and when the
    role that faulted is refreshed after a transient fault, ``backoff_s`` apart, each pause
    ``backoff_factor`` times the last. ``outage_tolerance_s``: after a lost connection (a role
    that does not answer ``*IDN?``: refused, dropped, silent), how long the run stays suspended
    while every role that is gone is retried, with the same backoff capped at ``max_backoff_s``;
    past it the run stops (``interrupted``, resumable). Overnight a power blip or an instrument
    reboot takes minutes, hence the default of 10 minutes.
    """

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(3, ge=0, le=100)
    backoff_s: float = Field(0.5, ge=0.0, le=600.0)
    backoff_factor: float = Field(2.0, ge=1.0, le=10.0)
    max_backoff_s: float = Field(30.0, gt=0.0, le=3600.0, description="longest pause between reconnection rounds in an outage")
    outage_tolerance_s: float = Field(600.0, ge=0.0, le=7 * 86400.0,
                                      description="how long a lost instrument may stay away before the run stops")


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "bench"
    simulated: bool = False
    visa_library: str = "@py"
    world: WorldConfig | None = None
    calibration: CalibrationConfig | None = None
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    faults: dict[str, dict[str, Any]] = Field(default_factory=dict, description="simulated benches only")
    roles: dict[str, RoleConfig]

    @field_validator("visa_library")
    @classmethod
    def _lib(cls, v: str) -> str:
        if v not in ("@py", "@ivi", "@sim", ""):
            raise ValueError("visa_library must be '@py' (pyvisa-py), '@ivi' (NI-VISA) or '@sim'")
        return v

    @model_validator(mode="after")
    def _roles(self):
        unknown = [r for r in self.roles if r not in ROLES]
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
        missing = [r for r in ROLES if r not in self.roles]
        if missing:
            raise ValueError(f"the bench lacks role(s) {', '.join(missing)}")
        for role, cfg in self.roles.items():
            spec = DRIVERS[cfg.driver]
            if role not in spec.roles:
                raise ValueError(f"roles.{role}: driver {cfg.driver} cannot play {role} (it plays {', '.join(spec.roles)})")
            if cfg.resource is None and not self.simulated:
                raise ValueError(f"roles.{role}: resource is required on a real bench")
        if self.simulated:
            for role, cfg in self.roles.items():
                if cfg.resource is not None:
                    host = resource_host(cfg.resource)
                    if host != LOOPBACK:
                        raise ValueError(
                            f"roles.{role}: simulated instruments bind to {LOOPBACK} only; got host {host!r}"
                        )
            for role, options in self.faults.items():
                if role not in ROLES:
                    raise ValueError(f"faults.{role}: unknown role; roles are {', '.join(ROLES)}")
                server_options = {k: v for k, v in options.items() if not (role == "thermal" and k == "stick_temperature")}
                try:
                    check_fault_options(role, server_options)
                except PlanError as exc:
                    raise ValueError(str(exc)) from None
                stick = options.get("stick_temperature")
                if stick is not None and (not isinstance(stick, dict) or set(stick) - {"trial", "offset_k", "reads", "first_read"}
                                          or not {"trial", "offset_k", "reads"} <= set(stick)):
                    raise ValueError("faults.thermal.stick_temperature needs {trial, offset_k, reads[, first_read]}")
        elif self.faults:
            raise ValueError("faults can only be injected on a simulated bench")
        if self.simulated and self.world is None:
            self.world = WorldConfig()
        return self

    def to_json(self) -> dict:
        return self.model_dump(mode="json")


_TCPIP_SOCKET = re.compile(r"^TCPIP\d*::([^:]+)::(\d+)::SOCKET$", re.IGNORECASE)


def resource_host(resource: str) -> str | None:
    m = _TCPIP_SOCKET.match(resource)
    return m.group(1) if m else None


def resource_port(resource: str) -> int | None:
    m = _TCPIP_SOCKET.match(resource)
    return int(m.group(2)) if m else None


def socket_resource(port: int, host: str = LOOPBACK) -> str:
    return f"TCPIP0::{host}::{port}::SOCKET"


def load_bench(path: str | Path | None = None) -> BenchConfig:
    """Read and validate a bench file; ``None`` gives the embedded simulated bench."""
    return load_model(BenchConfig, path or DEFAULT_BENCH, what="bench")


def bench_from_dict(data: dict, *, source: str = "bench") -> BenchConfig:
    return validate(BenchConfig, data, source=source)
