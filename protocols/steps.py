"""The six steps as small composable plans.

Each step is a generator that yields :mod:`corrlab.protocols.messages` and returns what it found;
:func:`trial_plan` composes them with ``yield from`` into one trial, :func:`setup_plan`
configures the bench once per run. Plans never touch instruments, files or clocks: the
runner does. A trial's ``f`` is ΔC ok and ΔM ok and ΔL ok and isolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Generator

import numpy as np

from corrlab.errors import InstrumentError
from corrlab.protocols.config import CONTROL_MEANING, Protocol
from corrlab.protocols.messages import Call, Monitor, Sleep, Step, StepDone
from corrlab.protocols.schedule import TrialSpec, code_checksum

Plan = Generator[Any, Any, Any]


@dataclass
class TrialResult:
    """A finished trial: its trials.parquet record and its samples (t, x_a, x_b[, y_a, y_b])."""

    record: dict
    samples: dict[str, np.ndarray] = field(repr=False)


def setup_plan(protocol: Protocol) -> Plan:
    """Bring the bench to the protocol's configuration (once per run, and after a reconnect)."""
    yield Step("setup", -1)
    ro, acq, st = protocol.readout, protocol.acquisition, protocol.stabilize
    for role in ("readout_a", "readout_b"):
        yield Call(role, "configure", kwargs=dict(
            frequency=ro.frequency_hz, time_constant=ro.time_constant_s,
            sensitivity=ro.sensitivity_v, filter_slope=ro.filter_slope_db))
    channels = 4 if acq.record_quadratures else 2
    yield Call("digitizer", "configure", kwargs=dict(sample_rate=acq.sample_rate_hz, points=acq.samples, channels=channels))
    yield Call("isolation", "safe_state")
    yield Call("drive", "safe_state")
    yield Call("thermal", "set_setpoint", (st.setpoint_k,), dict(heater_range=st.heater_range))
    yield StepDone("setup", -1, "ok", "bench configured")


def control(protocol: Protocol, spec: TrialSpec) -> Plan:
    """Step 6, per trial: say which condition this trial runs and what it breaks on purpose.

    The interleaving itself is :func:`corrlab.protocols.schedule.make_schedule`; the deliberate
    breaks are applied inside the steps they concern (codes, stage B target, environment).
    """
    yield Step("control", spec.trial)
    if spec.is_control:
        msg = f"{spec.condition}: {CONTROL_MEANING[spec.condition]}"
    else:
        msg = "main: every layer constraint aimed for"
    yield StepDone("control", spec.trial, "info", msg, {"condition": spec.condition, "block": spec.block})
    return spec.condition


def prepare(protocol: Protocol, spec: TrialSpec) -> Plan:
    """Step 1: write the ΔL code to both sides through the closed mediator."""
    yield Step("prepare", spec.trial)
    yield Call("isolation", "close_mediator")
    errors = yield Call("drive", "write_code", (list(spec.code_a), list(spec.code_b)),
                        dict(sample_rate=protocol.prepare.arb_sample_rate))
    crc_a, crc_b = code_checksum(spec.code_a), code_checksum(spec.code_b)
    ok = crc_a == crc_b and not errors
    why = "codes agree" if crc_a == crc_b else "codes differ"
    if errors:
        why += f"; generator reported {errors}"
    yield StepDone("prepare", spec.trial, "ok" if ok else "fail", f"ΔL {why} (crc {crc_a} / {crc_b})",
                   {"code_checksum_a": crc_a, "code_checksum_b": crc_b})
    return {"code_checksum_a": crc_a, "code_checksum_b": crc_b, "delta_l_ok": ok}


def isolate(protocol: Protocol, spec: TrialSpec) -> Plan:
    """Step 2: open the mediator and verify the crosstalk with the test tone."""
    yield Step("isolate", spec.trial)
    yield Call("isolation", "open_mediator")
    closed = yield Call("isolation", "closed_channels")
    tone_vpp = protocol.isolate.tone_vpp
    yield Call("drive", "tone", kwargs=dict(frequency=protocol.readout.frequency_hz, amplitude=tone_vpp))
    magnitude = yield Call("readout_b", "read_magnitude")
    yield Call("drive", "tone_off")
    tone_rms = tone_vpp / (2 * math.sqrt(2))
    crosstalk_db = 20 * math.log10(max(float(magnitude), 1e-15) / tone_rms)
    relay_open = 101 not in (closed or [])
    ok = relay_open and crosstalk_db <= protocol.isolate.max_crosstalk_db
    msg = f"crosstalk {crosstalk_db:.1f} dB (limit {protocol.isolate.max_crosstalk_db:g} dB)"
    if not relay_open:
        msg += "; mediator relay still closed"
    yield StepDone("isolate", spec.trial, "ok" if ok else "fail", msg, {"crosstalk_db": crosstalk_db})
    return {"crosstalk_db": crosstalk_db, "mediator_open": relay_open, "isolation_ok": ok}


def stabilize(protocol: Protocol, spec: TrialSpec) -> Plan:
    """Step 3: the temperature (ΔM) within tolerance over the settle window.

    Each read goes through the runner's suspender (:class:`Monitor`): while the reading is
    out of band, measurement pauses until it has been back in band for ``settle_s``.
    """
    st = protocol.stabilize
    yield Step("stabilize", spec.trial)
    readings = []
    for i in range(st.reads):
        if i:
            yield Sleep(st.interval_s)
        value = yield Monitor("thermal", "temperature", st.setpoint_k - st.tolerance_k, st.setpoint_k + st.tolerance_k,
                              name="temperature", settle_s=st.settle_s, max_wait_s=st.max_wait_s,
                              poll_s=max(st.interval_s, 0.01))
        readings.append(float(value))
    arr = np.asarray(readings)
    worst = float(np.max(np.abs(arr - st.setpoint_k)))
    ok = worst <= st.tolerance_k
    spread = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    yield StepDone("stabilize", spec.trial, "ok" if ok else "fail",
                   f"T = {arr.mean():.4f} K, spread {spread * 1e3:.2f} mK, worst offset {worst * 1e3:.1f} mK "
                   f"(tolerance {st.tolerance_k * 1e3:g} mK)",
                   {"temperature_k": float(arr.mean()), "temperature_spread_k": spread})
    return {"temperature_k": float(arr.mean()), "temperature_spread_k": spread, "delta_m_ok": ok}


def fix_geometry(protocol: Protocol, spec: TrialSpec) -> Plan:
    """Step 4: stages to target, read back within tolerance (ΔC)."""
    fx = protocol.fix
    yield Step("fix", spec.trial)
    offset_mm = fx.perturb_offset_um / 1000.0 if spec.condition == "control:perturb_C" else 0.0
    target_a, target_b = fx.target_a_mm, fx.target_b_mm + offset_mm
    pos_a, pos_b = yield Call("stage", "move_pair", (target_a, target_b), dict(timeout_s=fx.timeout_s))
    # the alignment error is the geometry's departure from the nominal one
    error_um = 1000.0 * max(abs(pos_a - fx.target_a_mm), abs(pos_b - fx.target_b_mm),
                            abs((pos_b - pos_a) - (fx.target_b_mm - fx.target_a_mm)))
    ok = error_um <= fx.tolerance_um
    yield StepDone("fix", spec.trial, "ok" if ok else "fail",
                   f"alignment error {error_um:.2f} um (tolerance {fx.tolerance_um:g} um)",
                   {"position_a_mm": pos_a, "position_b_mm": pos_b, "alignment_error_um": error_um})
    return {"position_a_mm": pos_a, "position_b_mm": pos_b, "alignment_error_um": error_um, "delta_c_ok": ok}


def measure(protocol: Protocol, spec: TrialSpec) -> Plan:
    """Step 5: each side's setting as its reference phase; record X_A(t), X_B(t)."""
    yield Step("measure", spec.trial)
    phase_a = protocol.settings.a_deg[spec.setting_a]
    phase_b = protocol.settings.b_deg[spec.setting_b]
    yield Call("readout_a", "set_phase", (phase_a,))
    yield Call("readout_b", "set_phase", (phase_b,))
    coupled = spec.condition == "control:couple_env"
    if coupled:
        yield Call("isolation", "couple_environment", (True,))
    record = yield Call("digitizer", "acquire")
    if coupled:
        yield Call("isolation", "couple_environment", (False,))
    acq = protocol.acquisition
    expected = (4 if acq.record_quadratures else 2, acq.samples)
    # a record the instrument got wrong is an instrument fault (the runner discards and
    # repeats the trial), not a bug in the plan
    try:
        record = np.asarray(record, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InstrumentError(f"digitizer: malformed record ({exc}); expected {expected} (channels, samples)",
                              role="digitizer") from exc
    if record.shape != expected:
        raise InstrumentError(f"digitizer: wrong-shaped record: received {record.shape}, expected {expected} "
                              "(channels, samples)", role="digitizer")
    check_samples(record, CHANNEL_NAMES[:expected[0]], acq.range_v)
    samples = {"t": np.arange(acq.samples) / acq.sample_rate_hz, "x_a": record[0], "x_b": record[1]}
    if acq.record_quadratures:
        samples["y_a"], samples["y_b"] = record[2], record[3]
    yield StepDone("measure", spec.trial, "ok",
                   f"{acq.samples} samples per side at {acq.sample_rate_hz:g} Hz, phases {phase_a:g}/{phase_b:g} deg",
                   {"environment_coupled": coupled})
    return samples, {"phase_a_deg": phase_a, "phase_b_deg": phase_b, "environment_coupled": coupled}


CHANNEL_NAMES = ("x_a", "x_b", "y_a", "y_b")  # the digitizer's channels, in order, by their dataset columns


def check_samples(record: np.ndarray, names, range_v: float) -> None:
    """Refuse a record holding samples no intact digitizer gives: not finite, or outside its
    input range ``+-range_v`` (the protocol's ``acquisition.range_v``). Raises
    :class:`InstrumentError` (role ``digitizer``: the runner discards and repeats the trial)
    with one line naming, per channel, how many samples were wrong and the largest magnitude.
    """
    inside = np.abs(record) <= range_v  # False for NaN too
    if inside.all():
        return
    found = []
    for name, row, ok in zip(names, record, inside):
        if ok.all():
            continue
        finite = np.isfinite(row)
        n_bad, n_out = int((~finite).sum()), int((finite & ~ok).sum())
        what = [f"{n_bad} non-finite" if n_bad else "", f"{n_out} outside +-{range_v:g} V" if n_out else ""]
        text = f"{name}: {' and '.join(w for w in what if w)} of {row.size} samples"
        if n_out:
            text += f" (largest |value| {float(np.max(np.abs(row[finite]))):.3g} V)"
        found.append(text)
    raise InstrumentError(f"digitizer: impossible samples in the record: {'; '.join(found)} "
                          f"(acquisition.range_v = {range_v:g} V)", role="digitizer")


def trial_plan(protocol: Protocol, spec: TrialSpec) -> Plan:
    """One trial: tag the record, then control, prepare, isolate, stabilize, fix, measure."""
    yield Call("digitizer", "start_record", (spec.trial,))
    yield from control(protocol, spec)
    layer_l = yield from prepare(protocol, spec)
    layer_i = yield from isolate(protocol, spec)
    layer_m = yield from stabilize(protocol, spec)
    layer_c = yield from fix_geometry(protocol, spec)
    samples, meas = yield from measure(protocol, spec)
    isolated = layer_i["isolation_ok"] and not meas["environment_coupled"]
    f = bool(layer_c["delta_c_ok"] and layer_m["delta_m_ok"] and layer_l["delta_l_ok"] and isolated)
    record = {
        "trial": spec.trial, "condition": spec.condition, "block": spec.block,
        "setting_a": spec.setting_a, "setting_b": spec.setting_b, "f": f,
        **layer_c, **layer_m, **layer_l, **layer_i, "isolated": isolated, **meas,
    }
    return TrialResult(record, samples)
