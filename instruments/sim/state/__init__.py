"""The simulated bench's shared state, and the interface between dialects and the world.

Each simulated instrument (``corrlab.instruments.sim.models``) parses its model's command dialect
and keeps its settings in its own part of one :class:`BenchState`. Whatever a real
instrument would *measure* (lock-in outputs, a temperature, where a stage really stopped,
a digitizer record) it asks the :class:`World` for; the world reads the settings it needs
from the same state. So the dialect layer knows nothing of physics, and the physics knows
nothing of SCPI.

All access happens under ``state.lock`` (the servers run one thread per connection).

This contract is a package of its own, below both sides: the dialect models
(``corrlab.instruments.sim.models``) and the worlds import it, the simulated bench imports
the models, and it imports neither, so the simulator's folders import one way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class LockinState:
    """An SR830: settings as the driver writes them (indices where the instrument uses them)."""

    frequency: float = 1000.0
    phase_deg: float = 0.0
    sine_voltage: float = 1.0
    sensitivity_index: int = 26  # 1 V full scale
    time_constant_index: int = 8  # 100 ms
    filter_slope_index: int = 1  # 12 dB/oct
    reference_source: int = 1  # internal
    harmonic: int = 1
    registers: dict[str, str] = field(default_factory=dict)  # every other setting, by mnemonic


@dataclass
class GeneratorChannelState:
    shape: str = "SIN"
    frequency: float = 1000.0
    amplitude: float = 0.1
    offset: float = 0.0
    phase: float = 0.0
    output: bool = False
    burst_state: bool = False
    burst_ncycles: int = 1
    arb_file: str = ""
    arb_data: dict[str, list[int]] = field(default_factory=dict)  # volatile memory
    registers: dict[str, str] = field(default_factory=dict)


@dataclass
class GeneratorState:
    """An Agilent 33500 two-channel generator; channel 1 drives side A, channel 2 side B."""

    channels: dict[int, GeneratorChannelState] = field(
        default_factory=lambda: {1: GeneratorChannelState(), 2: GeneratorChannelState()}
    )
    trigger_count: int = 0


@dataclass
class ThermalState:
    """A LakeShore 336: heater outputs 1-4."""

    setpoint: dict[int, float] = field(default_factory=lambda: {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0})
    heater_range: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0, 3: 0, 4: 0})
    manual_output: dict[int, float] = field(default_factory=lambda: {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0})
    registers: dict[str, str] = field(default_factory=dict)


@dataclass
class StageAxisState:
    """One ESP300 axis (1 = stage of A, 2 = stage of B, 3 = spare). Positions in mm."""

    position: float = 0.0
    enabled: bool = False
    units: int = 2
    left_limit: float = -25.0
    right_limit: float = 25.0
    registers: dict[str, str] = field(default_factory=dict)


@dataclass
class RelayState:
    """A Keithley 2750 switch system: the set of closed channels (101 = mediator)."""

    closed: set[int] = field(default_factory=set)
    registers: dict[str, str] = field(default_factory=dict)


@dataclass
class DigitizerState:
    """The fast digitizer: acquisition settings and the last record."""

    sample_rate: float = 10_000.0
    points: int = 1000
    channels: int = 2
    tag: int = 0  # record tag; the runner writes the trial index here
    record: np.ndarray | None = None  # shape (channels, points), float32, volts
    registers: dict[str, str] = field(default_factory=dict)


@dataclass
class BenchState:
    lockins: dict[str, LockinState] = field(default_factory=lambda: {"a": LockinState(), "b": LockinState()})
    generator: GeneratorState = field(default_factory=GeneratorState)
    thermal: ThermalState = field(default_factory=ThermalState)
    stage: dict[int, StageAxisState] = field(
        default_factory=lambda: {1: StageAxisState(), 2: StageAxisState(), 3: StageAxisState()}
    )
    relay: RelayState = field(default_factory=RelayState)
    digitizer: DigitizerState = field(default_factory=DigitizerState)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)


class World(Protocol):
    """What the simulated instruments ask of the physics. Called with ``state.lock`` held."""

    state: BenchState

    def lockin_outputs(self, side: str) -> tuple[float, float]:
        """Instantaneous (X, Y) outputs of lock-in ``side`` ('a' or 'b'), volts at the input."""

    def temperature(self, channel: str) -> float:
        """The LakeShore reading of input ``channel`` ('A'...'D'), kelvin."""

    def stage_reached(self, axis: int, target: float) -> float:
        """Where axis ``axis`` really stops when commanded to ``target`` (mm)."""

    def trigger(self) -> None:
        """The generator was triggered (``*TRG``): bursts on enabled channels go out."""

    def acquire(self) -> np.ndarray:
        """Take one digitizer record: float32 array (channels, points) in volts."""


class StaticWorld:
    """A world with no physics, for testing dialects: fixed readings, zero records."""

    def __init__(self, state: BenchState | None = None, *, temperature_k: float = 4.2):
        self.state = state or BenchState()
        self.temperature_k = temperature_k
        self.triggers = 0

    def lockin_outputs(self, side: str) -> tuple[float, float]:
        return (1.0e-3, -2.0e-3) if side == "a" else (3.0e-3, 4.0e-3)

    def temperature(self, channel: str) -> float:
        return self.temperature_k

    def stage_reached(self, axis: int, target: float) -> float:
        return target

    def trigger(self) -> None:
        self.triggers += 1

    def acquire(self) -> np.ndarray:
        d = self.state.digitizer
        ramp = np.arange(d.points, dtype=np.float32) / np.float32(max(d.points, 1))
        return np.stack([ramp * (c + 1) for c in range(d.channels)]).astype(np.float32)
