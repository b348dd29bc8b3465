"""The calibration step (issue 14): the thermal vacuum calibration, before the first trial and after the last.

It sits between stabilize and measure in the protocol's logic (the bench is set up and held at
temperature; nothing is measured until the vacuum scale is known) and is repeated after the
last trial to catch drift. With nothing prepared (mediator open, no ΔL code written, record tags
of their own), the oscillators are in equilibrium with the cryostat: at each temperature the
plan sets the LakeShore setpoint, waits in band (the runner's suspender, as stabilize does),
takes ``readings`` records and reads each side's quadrature variance, and finally fits
``variance = v_vac (2 n_th(T) + 1)`` per side (:mod:`corrlab.calibration`). It returns the
manifest's measurement record: the raw readings per point, the measured temperatures, the fit
and its statistical uncertainty, the declared systematic.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
from corrlab.protocols.config import Protocol
from corrlab.protocols.messages import Call, Monitor, Step, StepDone

from corrlab.calibration import MODEL, fit_thermal, side_readings
from corrlab.errors import DatasetError, InstrumentError

Plan = Generator[Any, Any, Any]

CAL_TAG_BASE = 2_000_000_000  # record tags of calibration records: above any trial index (<= 10^7)
WHICH = ("before", "after")


def calibration_tag(which: str, point: int, reading: int) -> int:
    """The digitizer record tag of one calibration record (trial tags are the trial indices)."""
    return CAL_TAG_BASE + WHICH.index(which) * 1_000_000 + point * 1000 + reading


def calibrate(protocol: Protocol, which: str) -> Plan:
    """The thermal calibration; returns the measurement record (see the module doc)."""
    cal = protocol.calibration
    st, acq = protocol.stabilize, protocol.acquisition
    freq = cal.oscillator_frequency_hz or protocol.readout.frequency_hz
    tol = cal.tolerance_k or st.tolerance_k
    samples = cal.samples or acq.samples
    yield Step("calibrate", -1)
    yield Call("isolation", "open_mediator")  # nothing prepared reaches the oscillators
    yield Call("readout_a", "set_phase", (0.0,))
    yield Call("readout_b", "set_phase", (0.0,))
    yield Call("digitizer", "configure", kwargs={"sample_rate": acq.sample_rate_hz, "points": samples, "channels": 4})
    points = []
    for i, temp in enumerate(cal.temperatures_k):
        yield Call("thermal", "set_setpoint", (float(temp),), {"heater_range": st.heater_range})
        t0 = yield Monitor("thermal", "temperature", temp - tol, temp + tol, name="calibration temperature",
                           settle_s=st.settle_s, max_wait_s=st.max_wait_s, poll_s=max(st.interval_s, 0.01))
        temps, reads = [float(t0)], {"a": [], "b": []}
        for k in range(cal.readings):
            yield Call("digitizer", "start_record", (calibration_tag(which, i, k),))
            record = yield Call("digitizer", "acquire")
            try:
                record = np.asarray(record, dtype=np.float64).reshape(4, samples)
            except (TypeError, ValueError) as exc:
                raise InstrumentError(f"digitizer: malformed calibration record ({exc})", role="digitizer") from exc
            if not np.all(np.isfinite(record)):
                raise InstrumentError("digitizer: non-finite samples in a calibration record", role="digitizer")
            for side, v in side_readings(record).items():
                reads[side].append(v)
            temps.append(float((yield Call("thermal", "temperature"))))
        points.append({"setpoint_k": float(temp), "temperature_k": float(np.mean(temps)),
                       "temperature_spread_k": float(np.std(temps, ddof=1)), "readings": reads})
    # back to the protocol's configuration: the trials (or the safe state) follow
    yield Call("thermal", "set_setpoint", (st.setpoint_k,), {"heater_range": st.heater_range})
    yield Call("digitizer", "configure", kwargs={"sample_rate": acq.sample_rate_hz, "points": acq.samples,
                                                     "channels": 4 if acq.record_quadratures else 2})
    temps = np.asarray([p["temperature_k"] for p in points])
    fits, msg = {}, []
    for side in ("a", "b"):
        r = [np.asarray(p["readings"][side]) for p in points]
        try:
            f = fit_thermal(temps, [x.mean() for x in r], [x.std(ddof=1) / np.sqrt(len(x)) for x in r],
                            frequency_hz=freq, errors="pooled_relative")
        except DatasetError as exc:
            yield StepDone("calibrate", -1, "fail", f"{which}: side {side}: {exc}", {"which": which})
            fits[side] = None
            continue
        fits[side] = f.to_json()
        msg.append(f"{side.upper()} v_vac = {f.vacuum_variance:.5g} +- {f.stat_relative:.2%} (stat, chi2/dof "
                   f"{f.chi2:.1f}/{f.dof})")
    measurement = {"which": which, "model": MODEL, "oscillator_frequency_hz": float(freq),
                   "systematic_relative": float(cal.systematic_relative), "samples_per_reading": int(samples),
                   "sample_rate_hz": float(acq.sample_rate_hz), "points": points, "fit": fits}
    if all(fits.values()):
        yield StepDone("calibrate", -1, "ok", f"{which}: {'; '.join(msg)}; systematic "
                       f"{cal.systematic_relative:.2%} declared", {"which": which})
    return measurement
