"""Protocol files (TOML): what a run does, validated before any instrument is touched.

A protocol declares the schedule (trials, block size, conditions per block), the local
settings (reference phases), readout and acquisition, the tolerances of each layer check,
the seed, and the ``[analysis]`` plan whose hash goes into the manifest. See
``protocols/demo.toml`` for every field with a comment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from corrlab.config import load_model, validate
from corrlab.hashing import sha256_json

CONDITIONS = ("main", "control:break_L", "control:perturb_C", "control:couple_env")
CONTROL_MEANING = {
    "control:break_L": "ΔL code randomized independently per side",
    "control:perturb_C": "geometry outside tolerance (stage B offset)",
    "control:couple_env": "stronger coupling to the environment (environment link closed)",
}
PROTOCOL_DIR = Path(__file__).parent


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProtocolMeta(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    description: str = ""
    seed: int = Field(ge=0, lt=2**63)


class Schedule(_Section):
    trials: int = Field(ge=1, le=10_000_000)
    block_size: int = Field(ge=1, le=10_000)
    conditions: dict[str, int] = Field(description="how many trials of each condition in one block")
    trials_per_part: int = Field(10, ge=1, le=100_000)

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, v: dict[str, int]) -> dict[str, int]:
        for name, count in v.items():
            if name not in CONDITIONS:
                raise ValueError(f"unknown condition {name!r}; allowed: {', '.join(CONDITIONS)}")
            if count < 1:
                raise ValueError(f"condition {name!r} needs at least 1 trial per block")
        if "main" not in v:
            raise ValueError("the schedule needs a 'main' condition")
        return v

    @model_validator(mode="after")
    def _blocks(self):
        if sum(self.conditions.values()) != self.block_size:
            raise ValueError(
                f"conditions add up to {sum(self.conditions.values())} trials per block, block_size is {self.block_size}"
            )
        if self.trials % self.block_size:
            raise ValueError(f"trials ({self.trials}) must be a multiple of block_size ({self.block_size})")
        return self


class Settings(_Section):
    a_deg: tuple[float, float] = Field((0.0, 45.0), description="lock-in A reference phase for setting 0 and 1")
    b_deg: tuple[float, float] = Field((22.5, 67.5), description="lock-in B reference phase for setting 0 and 1")

    @field_validator("a_deg", "b_deg")
    @classmethod
    def _phase(cls, v):
        if any(not -360.0 <= x <= 729.99 for x in v):
            raise ValueError("reference phases must lie in [-360, 729.99] degrees (SR830 range)")
        return v


class Readout(_Section):
    frequency_hz: float = Field(1000.0, gt=0.001, le=102_000)
    time_constant_s: float = 1e-4
    sensitivity_v: float = 0.01
    filter_slope_db: Literal[6, 12, 18, 24] = 12


class Acquisition(_Section):
    sample_rate_hz: float = Field(10_000.0, gt=0, le=1e9)
    samples: int = Field(2000, ge=16, le=50_000_000)
    record_quadratures: bool = Field(False, description="also record y_a, y_b (four digitizer channels)")
    range_v: float = Field(10.0, gt=0, le=1000, description=(
        "the digitizer's input range: every sample lies within +-range_v volts (the SR830's outputs span "
        "+-10 V at full scale); a sample outside it, or not finite, is a digitizer fault and the trial is repeated"))


class Prepare(_Section):
    code_bits: int = Field(16, ge=4, le=64)
    arb_sample_rate: float = Field(1.0e5, gt=0)


class Isolate(_Section):
    tone_vpp: float = Field(1.0, ge=0.01, le=10)
    max_crosstalk_db: float = Field(-60.0, le=0)


class Stabilize(_Section):
    setpoint_k: float = Field(4.0, gt=0, le=1500)
    tolerance_k: float = Field(0.05, gt=0)
    reads: int = Field(5, ge=1, le=10_000)
    interval_s: float = Field(0.01, ge=0, le=3600)
    heater_range: Literal["low", "medium", "high"] = "medium"
    settle_s: float = Field(0.0, ge=0, description="back in band this long before measuring resumes")
    max_wait_s: float = Field(600.0, gt=0, description="suspended longer than this: the run stops, interrupted")


class Fix(_Section):
    target_a_mm: float = Field(1.0, ge=-25, le=25)
    target_b_mm: float = Field(1.0, ge=-25, le=25)
    tolerance_um: float = Field(2.0, gt=0)
    perturb_offset_um: float = Field(50.0, gt=0, description="stage B offset in control:perturb_C")
    timeout_s: float = Field(30.0, gt=0)


class Calibration(_Section):
    """The vacuum calibration (issue 14): a thermal fit before the first trial and after the last.

    At each of ``temperatures_k`` (set through the thermal role, then held in band as in
    stabilize) the digitizer takes ``readings`` records of ``samples`` points with nothing
    prepared (mediator open, drive off): each record's quadrature variance per side is one
    reading. The fit (:mod:`corrlab.calibration`) gives each side's vacuum variance and its
    statistical standard error; ``systematic_relative`` is the declared bound on what the fit
    cannot see (thermometry, gain between calibration and measurement), required.
    """

    temperatures_k: list[float] = Field(min_length=2, max_length=100)
    readings: int = Field(4, ge=2, le=10_000, description="records per temperature (their spread is the point's error)")
    samples: int | None = Field(None, ge=16, le=50_000_000, description="points per record (default: acquisition.samples)")
    systematic_relative: float = Field(ge=0, lt=1, description="declared systematic relative uncertainty (a bound)")
    oscillator_frequency_hz: float | None = Field(None, gt=0, description="for n_th(T) (default: readout.frequency_hz)")
    tolerance_k: float | None = Field(None, gt=0, description="band around each temperature (default: stabilize's)")
    repeat_at_end: bool = Field(True, description="calibrate again after the last trial (drift check)")

    @field_validator("temperatures_k")
    @classmethod
    def _temps(cls, v):
        if any(not 0 < t <= 1500 for t in v):
            raise ValueError("calibration temperatures must lie in (0, 1500] K")
        if len(set(v)) < 2:
            raise ValueError("a thermal fit needs at least two different temperatures")
        return v


class Stopping(_Section):
    """The stopping rule (issue 17): the measure step stops once the plan's confirmatory evidence
    is decided, or at ``schedule.trials`` (the maximum).

    After each committed part the runner updates the anytime e-processes
    (:class:`corrlab.anytime.EvidenceMonitor`) and stops when every hypothesis named in
    ``decide`` has an e-value at or above 1/alpha (adjusted by closed e-Holm within the plan's
    confirmatory family). E-values stay valid at any stopping time, so stopping early costs no
    error rate. The dataset's manifest records why the run stopped (``anytime.stopped``).
    """

    decide: list[Literal["dependence", "controls", "chsh"]] = Field(
        default_factory=lambda: ["dependence", "controls"], min_length=1,
        description="the hypotheses that must be decided (controls: every control of the schedule); the default is "
        "the protocol-specific rung")
    min_trials: int = Field(0, ge=0, description="never stop before this many trials are committed")

    @field_validator("decide")
    @classmethod
    def _decide(cls, v):
        if len(set(v)) != len(v):
            raise ValueError("stopping.decide lists a hypothesis twice")
        return v


class Protocol(_Section):
    protocol: ProtocolMeta
    schedule: Schedule
    settings: Settings = Field(default_factory=Settings)
    readout: Readout = Field(default_factory=Readout)
    acquisition: Acquisition = Field(default_factory=Acquisition)
    prepare: Prepare = Field(default_factory=Prepare)
    isolate: Isolate = Field(default_factory=Isolate)
    stabilize: Stabilize = Field(default_factory=Stabilize)
    fix: Fix = Field(default_factory=Fix)
    calibration: Calibration | None = None
    stopping: Stopping | None = None
    analysis: dict[str, Any] = Field(default_factory=dict, description="the analysis plan (validated by corrlab.plan)")

    @model_validator(mode="after")
    def _perturb(self):
        if "control:perturb_C" in self.schedule.conditions and self.fix.perturb_offset_um <= self.fix.tolerance_um:
            raise ValueError("fix.perturb_offset_um must exceed fix.tolerance_um, or control:perturb_C stays in tolerance")
        if self.stopping is not None:
            if "controls" in self.stopping.decide and not any(c.startswith("control:") for c in self.schedule.conditions):
                raise ValueError("stopping.decide names 'controls' but the schedule has no control condition")
            confirmatory = self.analysis.get("confirmatory")
            if confirmatory is not None:
                off = [h for h in self.stopping.decide if h not in confirmatory]
                if off:
                    raise ValueError(f"stopping.decide names {', '.join(off)}, not in the plan's confirmatory family")
        return self

    # -- views ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.protocol.name

    @property
    def seed(self) -> int:
        return self.protocol.seed

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return ("y_a", "y_b") if self.acquisition.record_quadratures else ()

    def to_json(self) -> dict:
        data = self.model_dump(mode="json")
        for key in ("calibration", "stopping"):  # left out when absent: protocols without one hash as before
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @property
    def sha256(self) -> str:
        return sha256_json(self.to_json())


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol file (names a bundled protocol if no such file exists).

    The ``[analysis]`` plan is validated here too (:func:`corrlab.plan.load_plan`), so a
    typo in it fails at load, not when a run starts.
    """
    from corrlab.plan import load_plan

    p = Path(path)
    if not p.exists() and not p.suffix and (PROTOCOL_DIR / f"{p.name}.toml").exists():
        p = PROTOCOL_DIR / f"{p.name}.toml"
    protocol = load_model(Protocol, p, what="protocol")
    load_plan(protocol.analysis, source=f"protocol {protocol.name} (file {p}) [analysis]")
    return protocol


def protocol_from_dict(data: dict, *, source: str = "protocol") -> Protocol:
    return validate(Protocol, data, source=source)
