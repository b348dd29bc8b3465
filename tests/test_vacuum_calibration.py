"""The vacuum calibration (issue 14): the thermal fit, the calibration step on the simulated bench,
and its propagation into the Gaussian witnesses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from corrlab.daq.runner import run_protocol
from corrlab.protocols.config import protocol_from_dict

from corrlab.calibration import (
    calibration_set,
    compare,
    fit_thermal,
    interval,
    occupation,
)
from corrlab.dataset import Dataset
from corrlab.errors import PlanError
from tests.test_end_to_end import sim_bench, tiny_protocol

HBAR_OVER_K = 1.054571817e-34 / 1.380649e-23
CAL = {"temperatures_k": [0.05, 0.1, 0.2, 0.3, 0.4], "readings": 4, "samples": 20000, "systematic_relative": 0.01,
       "oscillator_frequency_hz": 5e6}


# ------------------------------------------------------------------------------------ the fit
def test_occupation_is_bose_einstein():
    f, t = 5e6, 0.1
    assert occupation(t, f) == pytest.approx(1 / (math.exp(HBAR_OVER_K * 2 * math.pi * f / t) - 1), rel=1e-8)
    assert occupation(0.0, f) == 0.0


def test_fit_matches_scipy_weighted_least_squares():
    from scipy.optimize import curve_fit

    rng = np.random.default_rng(1)
    f = 5e6
    t = np.array([0.05, 0.1, 0.2, 0.3, 0.4])
    g = 2 / np.expm1(HBAR_OVER_K * 2 * np.pi * f / t) + 1
    se = 0.02 * 1e-6 * g
    y = 1e-6 * g + se * rng.standard_normal(len(t))
    fit = fit_thermal(t, y, se, frequency_hz=f)
    popt, pcov = curve_fit(lambda tt, v: v * (2 / np.expm1(HBAR_OVER_K * 2 * np.pi * f / tt) + 1), t, y,
                           p0=[1e-6], sigma=se, absolute_sigma=True)
    assert fit.vacuum_variance == pytest.approx(popt[0], rel=1e-9)
    assert fit.fit_se == pytest.approx(math.sqrt(pcov[0, 0]), rel=1e-6)
    assert fit.dof == 4 and fit.stat_se >= fit.fit_se


def test_fit_inflates_by_the_birge_ratio_when_points_scatter():
    t = np.array([1.0, 2.0, 3.0])
    g = 2 * occupation(t, 1e3) + 1
    y = g * np.array([1.0, 1.2, 0.8])  # far more scatter than the errors say
    fit = fit_thermal(t, y, 0.001 * g, frequency_hz=1e3)
    assert fit.birge > 10 and fit.stat_se == pytest.approx(fit.fit_se * fit.birge) and fit.pvalue < 1e-6


def test_interval_adds_the_systematic_linearly_and_compare_flags_drift():
    assert interval(2.0, 0.01, 0.03, 2.0) == pytest.approx((2 * 0.95, 2 * 1.05))
    a = fit_thermal([1.0, 2.0], [4.0, 4.01], [0.01, 0.01], frequency_hz=1e12)  # n_th ~ 0: g ~ 1
    b = fit_thermal([1.0, 2.0], [4.4, 4.41], [0.01, 0.01], frequency_hz=1e12)
    assert compare(a, b, alpha=0.05)["flagged"] and not compare(a, a, alpha=0.05)["flagged"]
    with pytest.raises(PlanError):
        fit_thermal([1.0], [1.0], [0.1], frequency_hz=1e3)


def test_protocol_calibration_fields_are_validated():
    with pytest.raises(PlanError, match="systematic_relative"):
        tiny_protocol(calibration={"temperatures_k": [0.1, 0.2]})
    with pytest.raises(PlanError, match="two different temperatures"):
        tiny_protocol(calibration={"temperatures_k": [0.1, 0.1], "systematic_relative": 0.01})
    # a protocol without a calibration hashes as before (the key is left out of its JSON)
    assert "calibration" not in tiny_protocol().to_json()
    assert protocol_from_dict(tiny_protocol(calibration=CAL).to_json()).calibration.readings == 4


# ------------------------------------------------------------------------- on the simulated bench
def _run(tmp_path, run_id="c", trials=12, params=None, calibration=None, bench_calibration=None, **sections):
    p = tiny_protocol(trials=trials, acquisition={"record_quadratures": True},
                      calibration=calibration or CAL, **sections)
    extra = {"calibration": bench_calibration} if bench_calibration else {}
    bench = sim_bench("gaussian", **extra)
    bench.world.params = dict(params or {})
    r = run_protocol(p, bench, tmp_path, run_id=run_id)
    assert r.status == "complete", r.reason
    return Dataset.open(tmp_path / run_id)


def test_calibration_step_measures_the_worlds_true_vacuum_before_and_after(tmp_path):
    truth = 1.3e-3 ** 2
    ds = _run(tmp_path, params={"vacuum_rms_v": 1.3e-3},
              bench_calibration={"vacuum_variance": {"a": 1.05 * truth, "b": 1.05 * truth}})
    cal = ds.manifest["calibration"]
    assert cal["source"] == "measured"
    assert cal["nominal_vacuum_variance"] == {"a": 1.05 * truth, "b": 1.05 * truth}  # the bench's stated number, kept
    assert [m["which"] for m in cal["measurements"]] == ["before", "after"]
    for m in cal["measurements"]:
        assert len(m["points"]) == 5 and all(len(p["readings"]["a"]) == 4 for p in m["points"])
        assert m["systematic_relative"] == 0.01 and m["oscillator_frequency_hz"] == 5e6
        for side in ("a", "b"):
            f = m["fit"][side]
            assert 0.005 < f["stat_relative"] < 0.05
            assert abs(f["vacuum_variance"] - truth) < 4 * f["stat_se"], (side, f, truth)
    # the analysis refits from the raw readings: same numbers
    cs = calibration_set(cal, alpha_per_side=0.0125, drift_alpha=0.05)
    assert cs.fits["before"]["a"].vacuum_variance == pytest.approx(cal["measurements"][0]["fit"]["a"]["vacuum_variance"])
    assert not cs.drift_flagged
    lo, hi = cs.box["a"]
    assert lo < truth < hi
    # the journal has the step
    events = ds.events()
    assert [e["step"] for e in events if e["step"] == "calibrate"] == ["calibrate", "calibrate"]


def test_a_gain_drift_between_the_calibrations_is_flagged_and_widens_the_set(tmp_path):
    ds = _run(tmp_path, params={"gain_drift": 0.15, "gain_drift_trials": 12})
    cal = ds.manifest["calibration"]
    before, after = (m["fit"]["a"]["vacuum_variance"] for m in cal["measurements"])
    assert after / before == pytest.approx(1.15, rel=0.1)
    cs = calibration_set(cal, alpha_per_side=0.0125, drift_alpha=0.05)
    assert cs.drift_flagged
    plain = interval(cs.value["a"], cs._stat_rel("a"), cs.systematic_relative, cs.z)
    assert cs.box["a"][0] < plain[0] and cs.box["a"][1] > plain[1]
