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


# ------------------------------------------------------------------ the witnesses over the calibration
def test_worst_case_corner_matches_the_witness_computed_at_that_corner():
    from corrlab.analysis.gaussian import calibration_worst_case, gaussian_entanglement

    rng = np.random.default_rng(5)
    i2, z = np.eye(2), np.diag([1.0, -1.0])
    c, s = math.cosh(0.4), math.sinh(0.4)  # two-mode squeezed vacuum, r = 0.2: E_N = 0.4 nats
    v = 0.5 * np.block([[c * i2, s * z], [s * z, c * i2]]) * 2e-6  # columns: vacuum variance 1e-6
    x = rng.multivariate_normal(np.zeros(4), v, size=200 * 50)
    trial = np.repeat(np.arange(200), 50)
    box = ((0.9e-6, 1.1e-6), (0.95e-6, 1.05e-6))
    wc = calibration_worst_case(*x.T, trial=trial, box=box, calibration_alpha=0.025, rng=1)
    at = gaussian_entanglement(*x.T, vacuum_variance=(0.9e-6, 0.95e-6), trial=trial, rng=1)
    mid = gaussian_entanglement(*x.T, vacuum_variance=(1e-6, 1e-6), trial=trial, rng=1)
    assert wc.at == pytest.approx((0.9e-6, 0.95e-6))
    assert wc.corners["lo_a,lo_b"] == pytest.approx(at.log_negativity_corrected, abs=0.005)
    assert wc.log_negativity < mid.log_negativity_corrected < wc.corners["hi_a,hi_b"]
    # both sides scaled by s shift E_N by ln s (the notes): the symmetric corners differ by ln(1.1/0.9) roughly
    assert wc.duan > mid.duan.statistic and wc.nu_pt > mid.nu_pt
    assert wc.ci.confidence_level == pytest.approx(0.95) and wc.pvalue >= 0.025
    assert wc.ci.low < at.ci.low  # at its own level 0.975 the bound is lower than at 0.95
    with pytest.raises(PlanError):
        calibration_worst_case(*x.T, trial=trial, box=((1.0, 0.5), (1.0, 1.0)), calibration_alpha=0.025)


WORLD = {"linewidth_hz": 500.0}
BOUNDARY = {**WORLD, "squeezing_r": 0.0, "occupation_n": 0.0, "correlated_noise": 0.5}
STATED_5PC_OFF = {"vacuum_variance": {"a": 1.05e-6, "b": 1.05e-6}}  # the truth is vacuum_rms_v**2 = 1e-6


def _analysed(tmp, params, *, calibration=None, bench_calibration=STATED_5PC_OFF, trials=60, **kw):
    from corrlab.analysis.pipeline import analyze_dataset

    p = tiny_protocol(trials=trials, samples=2000, acquisition={"record_quadratures": True},
                      **({"calibration": calibration} if calibration else {}))
    bench = sim_bench("gaussian", calibration=bench_calibration)
    bench.world.params = dict(params)
    assert run_protocol(p, bench, tmp, run_id="w").status == "complete"
    return analyze_dataset(tmp / "w", interval_resamples=199, **kw)


@pytest.fixture(scope="module")
def boundary_stated(tmp_path_factory):
    return _analysed(tmp_path_factory.mktemp("bs"), BOUNDARY)


def test_separable_boundary_read_5pc_off_is_nonclassical_today_but_says_it_is_conditional(boundary_stated):
    r = boundary_stated
    g = r.nonclassicality["gaussian"]
    assert 0.02 < g["log_negativity"] < 0.07 and g["ci"][0] > 0  # ln 1.05 = 0.049 of apparent entanglement
    assert r.verdict.level == "nonclassical"  # a bare number is accepted ...
    assert g["calibration"] == "stated" and g["worst_case"] is None
    assert r.calibration["source"] == "stated" and "CONDITIONAL" in r.calibration["statement"]
    entry = r.assumptions["nonclassical"]["log_negativity"][0]
    assert entry["outcome"] == "stated" and "CONDITIONAL on an exact calibration" in entry["detail"]
    # ... and the verdict says, in words, that the claim is conditional on it
    assert any("CONDITIONAL on an exact vacuum calibration" in x for x in r.verdict.reasons)
    assert any("rests on a STATED assumption" in x and "vacuum units" in x for x in r.verdict.reasons)


def test_separable_boundary_is_not_nonclassical_once_the_calibration_is_measured(tmp_path):
    r = _analysed(tmp_path, BOUNDARY, calibration=CAL)
    cal = r.calibration
    assert cal["source"] == "measured" and cal["nominal_vacuum_variance"] == STATED_5PC_OFF["vacuum_variance"]
    for s in ("a", "b"):
        lo, hi = cal["interval"][s]
        assert lo < 1e-6 < hi < 1.05e-6  # the measurement excludes the stated number
    g = r.nonclassicality["gaussian"]
    assert g["calibration"] == "measured" and g["worst_case"]["ci"][0] == 0.0
    assert r.verdict.level != "nonclassical" and not r.verdict.nonclassical
    assert r.assumptions["nonclassical"]["log_negativity"][0]["outcome"] == "holds"
    w = cal["witnesses"]
    assert w["duan"]["worst_case"] >= w["duan"]["calibrated"] and w["log_negativity"]["worst_case"]["ci"][0] == 0.0


def test_a_gain_drift_over_the_run_is_flagged_and_the_calibration_fails(tmp_path):
    r = _analysed(tmp_path, {**BOUNDARY, "gain_drift": 0.1, "gain_drift_trials": 60}, calibration=CAL)
    cal = r.calibration
    assert cal["drift"]["checked"] and cal["drift"]["flagged"]
    entry = r.assumptions["nonclassical"]["log_negativity"][0]
    assert entry["outcome"] == "fails" and "drifted" in entry["detail"]
    assert not r.verdict.nonclassical
    assert any("ASSUMPTION FAILS for nonclassical through log negativity" in x for x in r.verdict.reasons)


def test_two_mode_squeezed_state_stays_nonclassical_with_a_realistic_calibration(tmp_path):
    r = _analysed(tmp_path, WORLD, calibration={**CAL, "systematic_relative": 0.05}, bench_calibration=None)
    g = r.nonclassicality["gaussian"]
    wc = g["worst_case"]
    assert 0.9 < g["log_negativity"] < 1.1  # r = 0.5: E_N = 1 nat
    assert 0 < wc["ci"][0] < g["ci"][0] and wc["log_negativity"] < g["log_negativity"]
    # the worst corner is the smallest vacuum: both sides scaled by (1 - h) cost -ln(1 - h) nats or so
    h = 1 - wc["at"]["a"] / r.calibration["vacuum_variance"]["a"]
    assert g["log_negativity"] - wc["log_negativity"] == pytest.approx(-math.log(1 - h), abs=0.03)
    assert r.verdict.level == "nonclassical"
    assert r.assumptions["nonclassical"]["log_negativity"][0]["outcome"] == "holds"
    assert not any("CONDITIONAL" in x for x in r.verdict.reasons)


def test_a_number_given_on_the_command_line_is_a_stated_calibration(tmp_path):
    r = _analysed(tmp_path, WORLD, calibration=CAL, bench_calibration=None, vacuum_variance=(1e-6, 1e-6))
    assert r.calibration["source"] == "stated"
    assert r.assumptions["nonclassical"]["log_negativity"][0]["outcome"] == "stated"


def test_the_ladder_needs_the_worst_case_lower_bound_above_zero():
    from corrlab.analysis.ladder import grade

    main = {"pvalue": 0.5, "n_trials": 30, "mi": {"estimate": 0.0}}
    g = {"log_negativity": 0.3, "ci": [0.2, 0.4], "pvalue": 1e-6, "worst_case": None}
    kw = {"alpha": 0.05, "confirmatory": ["log_negativity"], "no_signalling_margin": 0.1}
    assert grade(main, [], [], {"gaussian": g, "chsh": None}, **kw).verdict.nonclassical
    g["worst_case"] = {"log_negativity": 0.0, "ci": [0.0, 0.5], "pvalue": 0.4, "confidence_level": 0.95}
    v = grade(main, [], [], {"gaussian": g, "chsh": None}, **kw).verdict
    assert not v.nonclassical and any("worst case over the calibration" in r for r in v.reasons)


def test_one_calibration_leaves_the_drift_unchecked():
    from corrlab.analysis.vacuum import assumption_entry

    section = {"source": "measured", "fits": {"before": {}}, "stat_relative": {"a": 0.01, "b": 0.01},
               "systematic_relative": 0.02, "drift": {"checked": False, "flagged": False, "sides": {}}}
    _name, _check, outcome, detail = assumption_entry(section, None)
    assert outcome == "unchecked" and "one calibration only" in detail


def test_cli_run_of_a_calibrated_protocol_then_the_report_shows_the_fit_and_both_witnesses(tmp_path):
    """As a user: ``corrlab run`` of a small calibrated protocol on a simulated bench (the
    two-mode squeezed world), ``--analyze``; the results and the report carry the calibration."""
    import json
    import re

    from click.testing import CliRunner
    from corrlab.daq.cli import cli

    from tests.conftest import ROOT

    text = (ROOT / "protocols/demo_calibrated.toml").read_text()
    for key, value in {"trials": 24, "samples": 2000, "n_resamples": 199}.items():
        text, n = re.subn(rf"(?m)^{key}\s*=\s*[^#\n]*", f"{key} = {value} ", text, count=1)  # the first: acquisition
        assert n == 1
    text = re.sub(r"(?m)^temperatures_k\s*=.*$", "temperatures_k = [0.05, 0.1, 0.2, 0.3, 0.4]", text)
    text = text.replace("# oscillator_frequency_hz = 1000.0", "oscillator_frequency_hz = 5e6")
    proto = tmp_path / "cal.toml"
    proto.write_text(text)
    bench = (ROOT / "instruments/simulated.toml").read_text()
    bench = re.sub(r"(?s)\[world\].*?(?=\[reconnect\])",
                   '[world]\nkind = "gaussian"\n[world.params]\nlinewidth_hz = 500.0\n\n', bench)
    (tmp_path / "bench.toml").write_text(bench)
    res = CliRunner().invoke(cli, ["run", str(proto), "--bench", str(tmp_path / "bench.toml"), "--out",
                                   str(tmp_path / "d"), "--run-id", "cal", "--quiet", "--analyze"])
    assert res.exit_code == 0, res.output
    assert "vacuum calibration: MEASURED" in res.output and "worst case over the calibration" in res.output
    results = json.loads((tmp_path / "d/cal.results.json").read_text())
    cal = results["calibration"]
    assert cal["source"] == "measured" and set(cal["fits"]) == {"before", "after"}
    for s in ("a", "b"):
        assert cal["interval"][s][0] < 1e-6 < cal["interval"][s][1]
    g = results["nonclassicality"]["gaussian"]
    assert g["worst_case"]["ci"][0] > 0 and results["verdict"]["nonclassical"]
    report = (tmp_path / "d/cal.report.html").read_text()
    section = report[report.index("<h2>Vacuum calibration</h2>"):]
    assert section.count("<img") >= 2  # the fit with its data points; the witness with and without
    assert "Gaussian witnesses with and without the calibration" in section and "worst case" in section
