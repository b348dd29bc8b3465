"""Physics worlds behind the simulated bench (ground truth the analysis never sees).

Two mechanical oscillators A and B, read out by lock-ins whose reference phases are the
local measurement settings, recorded by a fast digitizer. What a world does, in brief:

* Each oscillator's quadratures in the lock-in's rotating frame are Ornstein-Uhlenbeck
  processes: amplitude damping gamma/2 (gamma = 2 pi x linewidth), stationary variance
  set by the thermal occupation n_th(T) = 1/(exp(h f / k T) - 1) at the LakeShore
  temperature T and the lock-in frequency f. The lock-in's low-pass filter (time
  constant and slope as set on the SR830) is applied, normalised so that ``noise_v`` is
  the rms at the lock-in output at the reference temperature.
* ``X = x cos(theta) + p sin(theta)``, ``Y = -x sin(theta) + p cos(theta)`` at the
  reference phase theta (the SR830's PHAS).
* Coupling only while the mediator relay is closed: the ΔL code that the generator
  bursts out reaches a side only if relay channel 101 is closed at ``*TRG``.
* Alignment error from the stage positions: eta_C = exp(-delta^2 / (2 w^2)), delta the
  separation of the two stages from ``optimal_separation_mm``.
* Coupling to the environment (relay channel 102 closed during the record) shortens the
  oscillators' coherence: common displacements shrink by ``env_coherence``.

Worlds: ``independent``, ``common_cause`` (the ΔL code sets a common hidden variable on
both sides), ``drift`` (a slow temperature drift that reaches both), ``leak`` (a residual
channel after isolation: B's output depends on A's setting), ``gaussian`` (a two-mode
squeezed thermal state, quadratures in vacuum units times ``vacuum_rms_v``).

Reproducibility: a world runs on its own clock. Every random draw is keyed by
``(seed, trial, purpose, ...)`` where the trial is the digitizer's record tag (the runner
writes the trial index there first thing in a trial), so a trial's data depend only on
the seed, the trial index and the instrument settings: a repeated or resumed trial gives
the same samples. All of the seed counts (:func:`keyed_rng`): seeds that differ only above
bit 32 give different worlds, as they give different schedules.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corrlab.errors import PlanError
from corrlab.instruments.sim.state import BenchState

H_OVER_K = 6.62607015e-34 / 1.380649e-23  # s K
MEDIATOR_CHANNEL = 101
ENVIRONMENT_CHANNEL = 102
SETTLE_SIGMA_MM = 0.0002  # stage settling error, 0.2 um rms
CAL_TAG_BASE = 2_000_000_000  # record tags at or above it are calibration records (protocols/calibrate.py)


def record_progress(tag: int, run_trials: float) -> float:
    """Where in the run a record falls, 0 (start) to 1 (end): a trial by its index over
    ``run_trials``; a calibration record by its tag (before: 0, after: 1)."""
    if tag >= CAL_TAG_BASE:
        return 0.0 if (tag - CAL_TAG_BASE) // 1_000_000 == 0 else 1.0
    return min(1.0, max(0.0, tag / max(run_trials, 1.0)))


def _key(*parts: Any) -> list[int]:
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(zlib.crc32(p.encode()))
        else:
            out.append(int(p) & 0xFFFFFFFF)
    return out


def _seed_spawn_key(seed: int) -> tuple[int, ...]:
    """The seed's bits above the low 32 (which :func:`_key` keeps), as a SeedSequence spawn key.

    Empty for ``0 <= seed < 2**32``, so those seeds give the worlds (and the recorded numbers)
    they always gave; any other seed adds its high part, tagged by sign, so seeds that differ
    only above bit 32 (the schedule uses all of a seed's bits) are different worlds.
    """
    high = int(seed) >> 32
    if high == 0:
        return ()
    return (1, high) if high > 0 else (2, -high)


def keyed_rng(seed: int, *parts: Any) -> np.random.Generator:
    """The generator keyed by ``(seed, *parts)``: the whole seed, every part."""
    return np.random.default_rng(np.random.SeedSequence(_key(seed, *parts), spawn_key=_seed_spawn_key(seed)))


def occupation(temperature_k: float, frequency_hz: float) -> float:
    """Bose-Einstein occupation of a mode at ``frequency_hz`` and ``temperature_k``."""
    if temperature_k <= 0:
        return 0.0
    x = H_OVER_K * frequency_hz / temperature_k
    return 1.0 / math.expm1(x) if x > 1e-12 else temperature_k / (H_OVER_K * frequency_hz)


def ou_paths(rng: np.random.Generator, n_paths: int, n: int, a: float) -> np.ndarray:
    """``n_paths`` stationary AR(1) paths of unit variance with coefficient ``a``."""
    from scipy.signal import lfilter

    eps = rng.standard_normal((n_paths, n))
    eps[:, 0] /= math.sqrt(1 - a * a)  # stationary start
    return lfilter([math.sqrt(1 - a * a)], [1.0, -a], eps, axis=1)


def lockin_filter(x: np.ndarray, b: float, poles: int, a: float) -> np.ndarray:
    """``poles`` first-order low-pass stages (coefficient b), normalised to unit gain on AR(1)(a) input."""
    from scipy.signal import lfilter

    if poles == 0 or b <= 0:
        return x
    y = x
    for _ in range(poles):
        zi = y[:, :1] * 1.0  # start at the input's level (steady state)
        y, _ = lfilter([1 - b], [1.0, -b], y, axis=1, zi=zi)
    return y / math.sqrt(filtered_variance(a, b, poles))


def filtered_variance(a: float, b: float, poles: int) -> float:
    """Variance of unit-variance AR(1)(a) noise after ``poles`` unit-DC-gain poles at b."""
    from scipy.signal import lfilter

    length = int(min(200_000, 40 / max(1e-9, -math.log(max(a, b, 1e-300)))) + 64)
    imp = np.zeros(length)
    imp[0] = 1.0
    h = lfilter([math.sqrt(1 - a * a)], [1.0, -a], imp)
    for _ in range(poles):
        h = lfilter([1 - b], [1.0, -b], h)
    return float(np.sum(h * h))


@dataclass
class TrialContext:
    """What the world remembers of the trial in progress."""

    trial: int
    codes: dict[str, tuple[int, ...] | None] = field(default_factory=lambda: {"a": None, "b": None})
    temperature_reads: int = 0
    stage_moves: int = 0
    records: int = 0


class OscillatorWorld:
    """Two thermal oscillators with optional common cause, drift and leak (see module doc)."""

    PRESETS: dict[str, dict[str, float]] = {
        "independent": {},
        "common_cause": {"coupling": 1.5},
        "drift": {"drift_k": 0.03, "drift_gain_v_per_k": 0.02},
        "leak": {"leak_v": 0.6e-3},
    }
    DEFAULTS: dict[str, float] = {
        "noise_v": 1.0e-3,  # rms of each lock-in output at the reference temperature
        "reference_temperature_k": 4.0,
        "linewidth_hz": 20.0,
        "coupling": 0.0,  # common displacement, in units of noise_v
        "memory_time_s": 2.0,  # the imprinted displacement decays on this time
        "drift_k": 0.0,  # amplitude of the slow temperature drift
        "drift_period_trials": 40.0,
        "drift_gain_v_per_k": 0.0,  # common output offset per kelvin of drift
        "leak_v": 0.0,  # B's output offset proportional to cos(theta_A)
        "temperature_noise_k": 0.004,
        "bath_temperature_k": 295.0,  # what the thermometer reads with the heater off
        # the highest temperature each LakeShore heater range (low, medium, high) can hold:
        # a setpoint above it is not reached, the sample stays at the range's limit
        "heater_reach_low_k": 10.0,
        "heater_reach_medium_k": 100.0,
        "heater_reach_high_k": 1000.0,
        "optimal_separation_mm": 0.0,
        "alignment_width_um": 10.0,
        "env_coherence": 0.25,
        "env_noise_factor": 1.5,
        "crosstalk_closed": 0.3,
        "crosstalk_open": 1.0e-5,
        "lockin_noise_v": 2.0e-8,  # rms of a spot reading's noise at lockin_noise_enbw_hz
        "lockin_noise_enbw_hz": 1250.0,  # the bandwidth of 100 us at 12 dB/oct (the protocols' default)
    }
    EXTRA_DEFAULTS: dict[str, float] = {}  # parameters of a subclass's own physics

    def __init__(self, state: BenchState, *, seed: int, kind: str = "independent", params: dict | None = None):
        if kind not in self.PRESETS:
            raise PlanError(f"world kind {kind!r} is not an oscillator world; kinds: {', '.join(self.PRESETS)}")
        self.state = state
        self.seed = int(seed)
        self.kind = kind
        merged = {**self.DEFAULTS, **self.EXTRA_DEFAULTS, **self.PRESETS[kind]}
        for k, v in (params or {}).items():
            if k not in merged:
                raise PlanError(f"world.params.{k}: unknown for the {kind} world; known: {', '.join(sorted(merged))}")
            merged[k] = v
        self.p = merged
        self.ctx = TrialContext(trial=0)
        self.excursions: list[dict] = []  # fault injection: temperature out of band

    def warm_up(self) -> None:
        """Do the one-time work of a first record now, before any instrument answers.

        The record's filters live in scipy.signal, imported on first use: 0.5 s on an idle
        machine, seconds under load. Left to the first ``INIT``, that import ran inside the
        digitizer's ``*OPC?`` wait, so the first trial after every start or resume timed out
        (issue 15). A simulated instrument answers its first record as fast as its tenth.
        """
        from scipy.signal import lfilter  # noqa: F401
        from scipy.special import ndtri  # noqa: F401

    # -- keyed randomness ----------------------------------------------------------
    def rng(self, *purpose: Any) -> np.random.Generator:
        return keyed_rng(self.seed, self.ctx.trial, *purpose)

    # -- trial bookkeeping -------------------------------------------------------------
    def begin_record(self, tag: int) -> None:
        """The runner wrote a record tag: a trial (or its repetition) starts afresh."""
        self.ctx = TrialContext(trial=int(tag))

    # -- World protocol ------------------------------------------------------------------
    def temperature(self, channel: str) -> float:
        ctx = self.ctx
        i = ctx.temperature_reads
        ctx.temperature_reads += 1
        noise = self.p["temperature_noise_k"] * self.rng("temperature", i).standard_normal()
        return float(self.true_temperature() + noise + self.excursion_offset(i))

    def true_temperature(self) -> float:
        """The material's temperature: the setpoint plus drift, or the bath with the heater off;
        a heater range holds at most its reach (``heater_reach_<range>_k``), so a setpoint above
        it leaves the sample at the reach."""
        th = self.state.thermal
        heater_range = th.heater_range.get(1, 0)
        if heater_range == 0:
            return float(self.p["bath_temperature_k"])
        reach = self.p[("heater_reach_low_k", "heater_reach_medium_k", "heater_reach_high_k")[min(heater_range, 3) - 1]]
        return float(min(th.setpoint.get(1, 0.0), reach) + self.drift_offset_k())

    def drift_offset_k(self) -> float:
        """The slow drift at this trial: a sinusoid plus a seeded slow random component."""
        amp = self.p["drift_k"]
        if not amp:
            return 0.0
        period = self.p["drift_period_trials"]
        phase = keyed_rng(self.seed, "drift-phase").uniform(0, 2 * math.pi)
        return float(amp * math.sin(2 * math.pi * self.ctx.trial / period + phase))

    def excursion_offset(self, read_index: int) -> float:
        for ex in self.excursions:
            if ex["trial"] == self.ctx.trial and ex["first_read"] <= read_index < ex["first_read"] + ex["reads"]:
                return float(ex["offset_k"])
        return 0.0

    def stick_temperature(self, *, trial: int, offset_k: float, reads: int, first_read: int = 0) -> None:
        """Fault injection: the thermometer reads ``offset_k`` off for ``reads`` reads of ``trial``."""
        self.excursions.append({"trial": int(trial), "offset_k": float(offset_k), "reads": int(reads),
                                "first_read": int(first_read)})

    def stage_reached(self, axis: int, target: float) -> float:
        ctx = self.ctx
        ctx.stage_moves += 1
        err = SETTLE_SIGMA_MM * self.rng("stage", axis, ctx.stage_moves).standard_normal()
        return float(target + err)

    def trigger(self) -> None:
        """Generator bursts: each enabled ARB channel delivers its code if the mediator is closed."""
        gen = self.state.generator
        closed = MEDIATOR_CHANNEL in self.state.relay.closed
        for ch, side in ((1, "a"), (2, "b")):
            c = gen.channels[ch]
            if not (c.output and c.shape.upper().startswith("ARB") and c.burst_state):
                continue
            data = c.arb_data.get(c.arb_file.upper()) or c.arb_data.get(c.arb_file)
            if data is None or not closed:
                continue
            self.ctx.codes[side] = tuple(1 if v > 0 else 0 for v in data)

    def lockin_outputs(self, side: str) -> tuple[float, float]:
        """Spot readings: the isolation test tone's crosstalk plus a little noise."""
        li = self.state.lockins[side]
        ch1 = self.state.generator.channels[1]
        signal = 0.0
        if side == "b" and ch1.output and ch1.shape.upper().startswith("SIN"):
            tau = time_constant_s(li.time_constant_index)
            if abs(ch1.frequency - li.frequency) < 1.0 / (2 * math.pi * tau) + 1e-9:
                ratio = self.p["crosstalk_closed"] if MEDIATOR_CHANNEL in self.state.relay.closed else self.p["crosstalk_open"]
                signal = ratio * ch1.amplitude / (2 * math.sqrt(2))  # Vpp -> Vrms
        n = self.lockin_noise_rms(side) * self.rng("spot", side, self.ctx.temperature_reads).standard_normal(2)
        theta = math.radians(li.phase_deg)
        return float(signal * math.cos(theta) + n[0]), float(-signal * math.sin(theta) + n[1])

    def lockin_noise_rms(self, side: str) -> float:
        """The rms noise of a spot reading: white noise through the output filter, so it scales
        with the square root of the filter's equivalent noise bandwidth (time constant, slope)."""
        li = self.state.lockins[side]
        enbw = enbw_hz(li.time_constant_index, li.filter_slope_index)
        ratio = enbw / self.p["lockin_noise_enbw_hz"]
        return self.p["lockin_noise_v"] * (1.0 if abs(ratio - 1.0) < 1e-9 else math.sqrt(ratio))

    # -- the record ---------------------------------------------------------------------
    def record_geometry(self) -> dict[str, float]:
        """Per-record physical parameters read from the instrument settings."""
        st = self.state
        d = st.digitizer
        li_a, li_b = st.lockins["a"], st.lockins["b"]
        dt = 1.0 / d.sample_rate
        env = ENVIRONMENT_CHANNEL in st.relay.closed
        gamma = 2 * math.pi * self.p["linewidth_hz"] * (self.p["env_noise_factor"] if env else 1.0)
        a = math.exp(-0.5 * gamma * dt)
        tau = time_constant_s(li_a.time_constant_index)
        b = math.exp(-dt / tau) if tau > 0 else 0.0
        poles = li_a.filter_slope_index + 1
        sep_um = 1000.0 * (st.stage[2].position - st.stage[1].position - self.p["optimal_separation_mm"])
        eta_c = math.exp(-(sep_um ** 2) / (2 * self.p["alignment_width_um"] ** 2))
        return {
            "dt": dt, "a": a, "b": b, "poles": poles, "env": env, "eta_c": eta_c,
            "theta_a": math.radians(li_a.phase_deg), "theta_b": math.radians(li_b.phase_deg),
            "freq": li_a.frequency,
        }

    def thermal_scale(self, temperature_k: float, frequency_hz: float) -> float:
        ref = occupation(self.p["reference_temperature_k"], frequency_hz) + 0.5
        return math.sqrt((occupation(temperature_k, frequency_hz) + 0.5) / ref)

    def hidden(self, side: str) -> float:
        """The hidden variable the delivered ΔL code sets (0 when no code arrived)."""
        code = self.ctx.codes[side]
        if not code:
            return 0.0
        value = int("".join(map(str, code)), 2)
        u = (value + 0.5) / (1 << len(code))
        from scipy.special import ndtri

        return float(ndtri(u))

    def acquire(self) -> np.ndarray:
        st = self.state
        d = st.digitizer
        g = self.record_geometry()
        n = int(d.points)
        ctx = self.ctx
        ctx.records += 1
        sigma = self.p["noise_v"] * self.thermal_scale(max(self.true_temperature(), 1e-3), g["freq"])
        if g["env"]:
            sigma *= math.sqrt(self.p["env_noise_factor"])
        q = ou_paths(self.rng("noise"), 4, n, g["a"])  # x_a, p_a, x_b, p_b
        q = lockin_filter(q, g["b"], g["poles"], g["a"]) * sigma
        # deterministic displacements (x quadrature) of each side
        t = np.arange(n) * g["dt"]
        decay = np.exp(-t / self.p["memory_time_s"])
        coherence = self.p["env_coherence"] if g["env"] else 1.0
        disp = {}
        for side in ("a", "b"):
            disp[side] = self.p["coupling"] * self.p["noise_v"] * self.hidden(side) * math.sqrt(g["eta_c"]) * coherence
        q[0] += disp["a"] * decay
        q[2] += disp["b"] * decay
        out = self.to_outputs(q, g, d.channels)
        # slow drift reaches both outputs alike; the leak puts A's setting into B's output
        out[0] += self.p["drift_gain_v_per_k"] * self.drift_offset_k()
        out[1] += self.p["drift_gain_v_per_k"] * self.drift_offset_k() + self.p["leak_v"] * math.cos(g["theta_a"])
        return out

    @staticmethod
    def to_outputs(q: np.ndarray, g: dict, channels: int) -> np.ndarray:
        """Rotate lab-frame quadratures into each lock-in's (X, Y) and order the channels."""
        ca, sa = math.cos(g["theta_a"]), math.sin(g["theta_a"])
        cb, sb = math.cos(g["theta_b"]), math.sin(g["theta_b"])
        xa = q[0] * ca + q[1] * sa
        ya = -q[0] * sa + q[1] * ca
        xb = q[2] * cb + q[3] * sb
        yb = -q[2] * sb + q[3] * cb
        rows = [xa, xb] if channels == 2 else [xa, xb, ya, yb]
        return np.asarray(rows, dtype=np.float32)

    def truth(self) -> dict:
        """The world's true parameters, for tests only."""
        return {"kind": self.kind, **self.p}


class GaussianWorld(OscillatorWorld):
    """A two-mode squeezed thermal state of A and B, quadratures in vacuum units.

    The vacuum calibration (issue 14): a record with no ΔL code delivered (the calibration
    step's, mediator open) sees each oscillator in equilibrium with the cryostat, ``V = (n_th(T)
    + 1/2) I`` at the LakeShore's true temperature and ``oscillator_frequency_hz``, read through
    the same chain, so its variance is ``vacuum_rms_v**2 (2 n_th + 1)``: the true vacuum variance
    sets what a thermal fit finds. ``correlated_noise`` m adds classically correlated
    displacement noise ``m [[I, Z], [Z, I]]`` to the prepared state (x correlated, p
    anticorrelated; ``m I`` on each side when not prepared): with ``squeezing_r = 0`` and
    ``occupation_n = 0`` it is separable exactly on the PPT boundary (nu_pt = 1/2 in these units),
    so a vacuum scale taken too large makes it look entangled. ``gain_drift``: the chain's power
    gain grows by this fraction over ``gain_drift_trials`` trials (the "after" calibration sees
    all of it, the "before" none).

    With matching ΔL codes delivered through the closed mediator the preparation makes
    V = (n + 1/2) [[cosh 2r I, sinh 2r Z], [sinh 2r Z, cosh 2r I]] (vacuum variance 1/2);
    otherwise each side is left in a thermal state of the same local variance. Misalignment
    is loss eta_C on both arms; the environment link mixes in ``env_occupation`` with
    weight 1 - env_coherence. Outputs are ``vacuum_rms_v * sqrt(2)`` volts per unit of
    quadrature, so the vacuum variance in the columns is ``vacuum_rms_v**2``.
    """

    PRESETS = {"gaussian": {}}
    EXTRA_DEFAULTS = {"squeezing_r": 0.5, "occupation_n": 0.0, "vacuum_rms_v": 1.0e-3, "env_occupation": 2.0,
                      "correlated_noise": 0.0, "oscillator_frequency_hz": 5.0e6, "gain_drift": 0.0,
                      "gain_drift_trials": 100.0}

    def __init__(self, state: BenchState, *, seed: int, kind: str = "gaussian", params: dict | None = None):
        super().__init__(state, seed=seed, kind=kind, params=params)

    def covariance(self, *, entangled: bool, eta: float, env: bool) -> np.ndarray:
        r, n = self.p["squeezing_r"], self.p["occupation_n"]
        c, s = math.cosh(2 * r), math.sinh(2 * r)
        i2, z = np.eye(2), np.diag([1.0, -1.0])
        v = (n + 0.5) * np.block([[c * i2, (s if entangled else 0.0) * z], [(s if entangled else 0.0) * z, c * i2]])
        m = self.p["correlated_noise"]
        if m:
            v = v + m * np.block([[i2, z if entangled else 0 * z], [z if entangled else 0 * z, i2]])
        v = eta * v + (1 - eta) * 0.5 * np.eye(4)
        if env:
            k = self.p["env_coherence"]
            v = k * v + (1 - k) * (self.p["env_occupation"] + 0.5) * np.eye(4)
        return v

    def true_covariance(self, *, entangled: bool = True, eta: float = 1.0, env: bool = False) -> np.ndarray:
        return self.covariance(entangled=entangled, eta=eta, env=env)

    def true_vacuum_variance(self) -> float:
        """The vacuum variance of each side's columns (V^2), at the start of the run."""
        return float(self.p["vacuum_rms_v"] ** 2)

    def gain(self) -> float:
        """The chain's power gain for the record in progress (1 at the start of the run)."""
        drift = self.p["gain_drift"]
        return 1.0 + drift * record_progress(self.ctx.trial, self.p["gain_drift_trials"]) if drift else 1.0

    def true_log_negativity(self, **kw) -> float:
        v = self.covariance(**{"entangled": True, "eta": 1.0, "env": False, **kw})
        a, b, cm = v[:2, :2], v[2:, 2:], v[:2, 2:]
        delta = np.linalg.det(a) + np.linalg.det(b) - 2 * np.linalg.det(cm)
        nu2 = (delta - math.sqrt(delta * delta - 4 * np.linalg.det(v))) / 2
        return max(0.0, -math.log(2 * math.sqrt(nu2)))

    def acquire(self) -> np.ndarray:
        st = self.state
        d = st.digitizer
        g = self.record_geometry()
        n = int(d.points)
        self.ctx.records += 1
        codes = self.ctx.codes
        entangled = codes["a"] is not None and codes["a"] == codes["b"]
        if codes["a"] is None and codes["b"] is None:  # nothing prepared: thermal equilibrium with the cryostat
            n_th = occupation(max(self.true_temperature(), 1e-6), self.p["oscillator_frequency_hz"])
            v = (n_th + 0.5) * np.eye(4)
        else:
            v = self.covariance(entangled=entangled, eta=g["eta_c"], env=g["env"])
        u = ou_paths(self.rng("noise"), 4, n, g["a"])
        u = lockin_filter(u, g["b"], g["poles"], g["a"])
        q = np.linalg.cholesky(v) @ u  # equal-time covariance v, common OU autocorrelation
        q *= self.p["vacuum_rms_v"] * math.sqrt(2.0 * self.gain())
        return self.to_outputs(q, g, d.channels)


class WernerWorld(OscillatorWorld):
    """A two-qubit source of Werner visibility V, measured along each side's setting.

    The lock-in reference phases are the measurement directions (angles in the x-z plane,
    radians = phase in degrees). Matching ΔL codes delivered through the closed mediator
    prepare the Werner state; otherwise the pair is uncorrelated (V = 0). Misalignment
    multiplies V by eta_C and the environment link by ``env_coherence``. Each trial is one
    pair: each side's record is its outcome (+-1) times ``outcome_v`` plus a little
    Ornstein-Uhlenbeck noise, so the trial's sign is its dichotomic outcome.
    """

    PRESETS = {"werner": {}}
    EXTRA_DEFAULTS = {"visibility": 0.9, "outcome_v": 1.0e-3, "readout_noise_v": 1.0e-4}

    def __init__(self, state: BenchState, *, seed: int, kind: str = "werner", params: dict | None = None):
        super().__init__(state, seed=seed, kind=kind, params=params)

    def effective_visibility(self, g: dict) -> float:
        codes = self.ctx.codes
        if codes["a"] is None or codes["a"] != codes["b"]:
            return 0.0
        v = self.p["visibility"] * g["eta_c"]
        return v * self.p["env_coherence"] if g["env"] else v

    def acquire(self) -> np.ndarray:
        from corrlab.theory.qubits import sample_werner_outcomes

        d = self.state.digitizer
        g = self.record_geometry()
        self.ctx.records += 1
        a, b = sample_werner_outcomes(self.effective_visibility(g), g["theta_a"], g["theta_b"], self.rng("pair"))
        noise = ou_paths(self.rng("noise"), d.channels, int(d.points), g["a"]) * self.p["readout_noise_v"]
        noise[0] += float(a[0]) * self.p["outcome_v"]
        noise[1] += float(b[0]) * self.p["outcome_v"]
        return noise.astype(np.float32)

    def truth(self) -> dict:
        from corrlab.theory.qubits import werner_true_values

        return {"kind": self.kind, **self.p, **werner_true_values(self.p["visibility"])}


SR830_TIME_CONSTANTS = [
    10e-6, 30e-6, 100e-6, 300e-6, 1e-3, 3e-3, 10e-3, 30e-3, 100e-3, 300e-3,
    1, 3, 10, 30, 100, 300, 1e3, 3e3, 10e3, 30e3,
]


def time_constant_s(index: int) -> float:
    return SR830_TIME_CONSTANTS[max(0, min(int(index), len(SR830_TIME_CONSTANTS) - 1))]


#: equivalent noise bandwidth x time constant of the SR830's output filter, by slope index
#: (6, 12, 18, 24 dB/oct): 1/4, 1/8, 3/32, 5/64 (SR830 manual, "Noise measurements")
ENBW_TIMES_TAU = (1 / 4, 1 / 8, 3 / 32, 5 / 64)


def enbw_hz(time_constant_index: int, filter_slope_index: int) -> float:
    return ENBW_TIMES_TAU[max(0, min(int(filter_slope_index), 3))] / time_constant_s(time_constant_index)
