"""Each rung checks its own assumptions (issue 22, classes 4, 5, 9, 10): worlds written by
independent code in this file as single Parquet files, fixed seeds, graded as a referee would.

Each world is a local (classical) model or leaks a setting, and yet its witness is met; the
verdict must not be nonclassical, and the results' ``assumptions`` must say which assumption
failed. The positive control is a singlet-like source with settings drawn per trial.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corrlab.analysis.pipeline import analyze_dataset
from tests.test_analyze import check_contract

PLAN = {"n_resamples": 999, "estimators": ["gaussian_copula"]}
SAMPLES = 4  # per trial: the outcome's sign, with a little noise that never flips it


def write_bell(path, sa, sb, oa, ob, *, seed=0):
    """One Parquet file, every trial 'main', x = outcome * (1 + noise); NaN outcome -> NaN samples."""
    rng = np.random.default_rng(seed)
    n = len(sa)
    trial = np.repeat(np.arange(n), SAMPLES)

    def samples(o):
        return np.repeat(np.asarray(o, float), SAMPLES) * (1 + 0.1 * rng.random(n * SAMPLES))

    pq.write_table(pa.table({
        "trial": trial, "condition": ["main"] * (n * SAMPLES),
        "setting_a": np.repeat(sa, SAMPLES).astype(np.int8), "setting_b": np.repeat(sb, SAMPLES).astype(np.int8),
        "t": np.tile(np.arange(SAMPLES) / 1e3, n), "x_a": samples(oa), "x_b": samples(ob)}), path)
    return path


def flip(rng, values, q):
    """Each value's sign flipped with probability q (local noise)."""
    return np.where(rng.random(len(values)) < q, -values, values)


def entries(res, rung, witness=None):
    a = res.assumptions[rung] if witness is None else res.assumptions[rung][witness]
    return {e["assumption"].split(" (")[0].split(":")[0]: e for e in a}


SETTINGS = "settings drawn at random each trial, independent of the past"
COUNTED = "every trial's outcome counted"


# ---------------------------------------------------------------------------------------- worlds
def singlet_like(path, n=1000, e=0.65, seed=1):
    """Positive control: settings drawn per trial, E = +e, +e, +e, -e (S = 4e)."""
    rng = np.random.default_rng(seed)
    sa, sb = rng.integers(0, 2, n), rng.integers(0, 2, n)
    a = rng.choice([-1, 1], n)
    sign = np.where((sa == 1) & (sb == 1), -1, 1)
    b = sign * flip(rng, a, (1 - e) / 2)
    return write_bell(path, sa, sb, a, b, seed=seed)


def blocked_with_phase_slip(path, n=800, seed=4):
    """Class 4: the four setting pairs in four time blocks; a shared classical sign, and B's sign
    slips by pi in the last block (a local event in time): S = 4 E with no quantum anything."""
    rng = np.random.default_rng(seed)
    pair = np.repeat(np.arange(4), n // 4)
    sa, sb = pair // 2, pair % 2
    lam = rng.choice([-1, 1], n)
    a = lam
    b = flip(rng, lam, 0.17) * np.where(pair == 3, -1, 1)
    return write_bell(path, sa, sb, a, b, seed=seed)


def hidden_state_bias(path, n=1000, seed=9):
    """Class 9: a slow hidden state h biases the setting generator (towards 11 when h = 1) and
    flips B's outcome; everything is local and nothing signals."""
    rng = np.random.default_rng(seed)
    h = np.zeros(n, int)
    for i in range(1, n):
        h[i] = h[i - 1] ^ int(rng.random() < 0.02)
    pair = np.where(h == 1, np.where(rng.random(n) < 0.9, 3, rng.integers(0, 3, n)), rng.integers(0, 3, n))
    sa, sb = pair // 2, pair % 2
    lam = rng.choice([-1, 1], n)
    b = flip(rng, lam, 0.1) * np.where(h == 1, -1, 1)
    return write_bell(path, sa, sb, lam, b, seed=seed)


def detection_loophole(path, n=1200, q=0.83, seed=10):
    """Class 10: a local model whose B detector fires only when its setting is the one its hidden
    variable guessed (guess 0 more often: B fires less at setting 1); no-clicks recorded as NaN.
    On the clicked trials alone S ~ 2.8."""
    rng = np.random.default_rng(seed)
    sa, sb = rng.integers(0, 2, n), rng.integers(0, 2, n)
    cheat = rng.random(n) < q
    guess = (rng.random(n) < 0.4).astype(int)  # B's guessed setting: 0 with probability 0.6
    a0 = rng.choice([-1, 1], n)
    a1 = np.where(guess == 0, a0, -a0)  # outcomes that win the CHSH game at B's guessed setting
    a = np.where(cheat, np.where(sa == 0, a0, a1), rng.choice([-1, 1], n))
    b = np.where(cheat, np.where(sb == guess, a0, np.nan), rng.choice([-1, 1], n)).astype(float)
    return write_bell(path, sa, sb, a, b, seed=seed)


def leak_into_y(path, n_trials=60, samples=500, r=0.5, vacuum=1e-6, leak=0.25, seed=7):
    """Class 5: two-mode squeezed vacuum quadratures (E_N = 2r), and B's y offset follows A's
    setting (a leak): x alone shows nothing, y_b signals."""
    rng = np.random.default_rng(seed)
    c, s = np.cosh(2 * r), np.sinh(2 * r)
    z = np.diag([1.0, -1.0])
    cov = vacuum * np.block([[c * np.eye(2), s * z], [s * z, c * np.eye(2)]])  # vacuum variance = `vacuum`
    q = rng.multivariate_normal(np.zeros(4), cov, size=n_trials * samples)
    sa, sb = rng.integers(0, 2, n_trials), rng.integers(0, 2, n_trials)
    q[:, 3] += leak * np.sqrt(vacuum) * np.repeat(sa, samples)
    pq.write_table(pa.table({
        "trial": np.repeat(np.arange(n_trials), samples), "condition": ["main"] * (n_trials * samples),
        "setting_a": np.repeat(sa, samples).astype(np.int8), "setting_b": np.repeat(sb, samples).astype(np.int8),
        "t": np.tile(np.arange(samples) / 1e4, n_trials),
        "x_a": q[:, 0], "y_a": q[:, 1], "x_b": q[:, 2], "y_b": q[:, 3]}), path)
    return path


# ----------------------------------------------------------------------------------------- tests
def test_randomized_singlet_like_source_still_reaches_nonclassical(tmp_path):
    res = analyze_dataset(singlet_like(tmp_path / "singlet.parquet"), plan=PLAN, interval_resamples=99)
    c = res.nonclassicality["chsh"]
    assert 2.4 < c["S"] < 2.8 and c["pvalue"] < 1e-6
    assert res.verdict.level == "nonclassical"
    e = entries(res, "nonclassical", "chsh")
    assert e[SETTINGS]["outcome"] == "holds" and e[SETTINGS]["pvalue"] >= 0.05
    assert e[COUNTED]["outcome"] == "holds" and c["missing_outcomes"] == {"a": 0, "b": 0, "trials": 0}
    assert all(x["outcome"] == "holds" for x in res.assumptions["nonclassical"]["chsh"])
    d = res.to_dict()
    check_contract(d)
    assert d["assumptions"]["nonclassical"]["chsh"][0]["outcome"] in ("holds", "fails", "unchecked", "stated")


def test_settings_in_time_blocks_with_a_phase_slip_are_not_nonclassical(tmp_path):
    res = analyze_dataset(blocked_with_phase_slip(tmp_path / "blocks.parquet"), plan=PLAN, interval_resamples=99)
    c = res.nonclassicality["chsh"]
    assert c["S"] > 2.4 and c["pvalue"] < 1e-6  # the witness alone would claim it
    assert res.verdict.level != "nonclassical" and not res.verdict.nonclassical
    e = entries(res, "nonclassical", "chsh")[SETTINGS]
    assert e["outcome"] == "fails" and c["settings"]["block_pvalue"] <= 0.002
    assert any(r.startswith("ASSUMPTION FAILS for nonclassical through CHSH, not granted: settings drawn at random")
               for r in res.verdict.reasons)


def test_settings_biased_by_a_slow_hidden_state_are_not_nonclassical(tmp_path):
    res = analyze_dataset(hidden_state_bias(tmp_path / "hidden.parquet"), plan=PLAN, interval_resamples=99)
    c = res.nonclassicality["chsh"]
    assert c["S"] > 2.4 and c["pvalue"] < 1e-6
    assert res.verdict.level != "nonclassical"
    assert entries(res, "nonclassical", "chsh")[SETTINGS]["outcome"] == "fails"
    assert c["settings"]["serial_pvalue"] <= 0.002 and c["settings"]["independence_pvalue"] <= 0.002


def test_missing_outcomes_are_counted_and_close_the_detection_loophole(tmp_path):
    path = detection_loophole(tmp_path / "clicks.parquet")
    res = analyze_dataset(path, plan=PLAN, interval_resamples=99)
    c = res.nonclassicality["chsh"]
    mo = c["missing_outcomes"]
    assert mo["a"] == 0 and mo["b"] > 300 and mo["trials"] == mo["b"] and c["n_trials"] == 1200
    assert c["missing_outcome_rule"] == "counted as +1" and c["S"] < 2 and c["pvalue"] > 0.05
    assert res.verdict.level != "nonclassical"
    e = entries(res, "nonclassical", "chsh")[COUNTED]
    assert e["outcome"] == "holds" and f"{mo['trials']} main trial(s) with a missing outcome" in e["detail"]
    assert any(f"{mo['trials']} trial(s) with a missing outcome" in r for r in res.verdict.reasons)
    assert res.conditions["main"]["n_trials"] == 1200 - mo["trials"]  # the other tests need both values
    # fair sampling stated in the plan: the no-clicks are dropped, the claim rests on the statement
    fair = analyze_dataset(path, plan={**PLAN, "fair_sampling": True}, exploratory=True, interval_resamples=99)
    fc = fair.nonclassicality["chsh"]
    assert fc["S"] > 2.6 and fc["n_trials"] == 1200 - mo["trials"] and fc["pvalue"] < 1e-6
    assert fair.verdict.level == "nonclassical"
    assert entries(fair, "nonclassical", "chsh")[COUNTED]["outcome"] == "stated"
    assert any("rests on a STATED assumption" in r and "fair_sampling" in r for r in fair.verdict.reasons)


def test_trials_missing_from_a_bell_export_leave_the_rung_unchecked(tmp_path):
    """Only the clicked trials exported (class 10's other face): their ids are missing."""
    path = detection_loophole(tmp_path / "clicks.parquet")
    t = pq.read_table(path)
    keep = np.isfinite(t["x_b"].to_numpy())
    pq.write_table(t.filter(pa.array(keep)), tmp_path / "clicked.parquet")
    res = analyze_dataset(tmp_path / "clicked.parquet", plan=PLAN, interval_resamples=99)
    assert res.nonclassicality["chsh"]["pvalue"] < 1e-6 and res.verdict.level != "nonclassical"
    e = entries(res, "nonclassical", "chsh")[COUNTED]
    assert e["outcome"] == "unchecked" and "fair_sampling" in e["detail"]
    assert any(r.startswith("ASSUMPTION UNCHECKED for nonclassical through CHSH, not granted") for r in res.verdict.reasons)


def test_a_leak_into_b_y_is_signalling_and_the_gaussian_witness_does_not_count(tmp_path):
    path = leak_into_y(tmp_path / "leak.parquet")
    res = analyze_dataset(path, plan=PLAN, vacuum_variance=(1e-6, 1e-6), interval_resamples=999)
    g = res.nonclassicality["gaussian"]
    assert g is not None and g["ci"][0] > 0  # the witness alone would claim entanglement
    tests = {(t["side"], t["observable"]): t for t in res.no_signalling["tests"]}
    assert set(tests) == {("A", "x"), ("B", "x"), ("A", "y"), ("B", "y")}
    assert tests[("B", "y")]["pvalue"] <= 0.002 and tests[("B", "x")]["pvalue"] > 0.05
    assert res.verdict.signalling_detected and res.verdict.level != "nonclassical"
    e = entries(res, "nonclassical", "log_negativity")["no signalling in every observable used"]
    assert e["outcome"] == "fails" and e["detail"].startswith("y_b depends on the remote setting")
    names = [n for n, _, _ in res.family]
    assert "no_signalling:B:main:y" in names  # in the no-signalling family, Holm with the others
    json.dumps(res.to_dict(), allow_nan=False)


def test_the_assumptions_are_shown_next_to_the_ladder_in_the_terminal_and_the_report(tmp_path):
    from click.testing import CliRunner

    from corrlab.daq.cli import cli

    path = blocked_with_phase_slip(tmp_path / "blocks.parquet")
    res = CliRunner().invoke(cli, ["analyze", str(path), "--resamples", "999", "--json", str(tmp_path / "r.json"),
                                   "--report", str(tmp_path / "r.html")], env={"COLUMNS": "240"})
    assert res.exit_code == 0, res.output
    out = res.output
    assert out.index("evidence ladder") < out.index("assumptions of each rung") < out.index("ASSUMPTION FAILS")
    assert "settings drawn at random each trial" in out and "fails" in out
    page = (tmp_path / "r.html").read_text()
    assert "Assumptions of each rung" in page and "FAILS" in page
    d = json.loads((tmp_path / "r.json").read_text())
    assert [e["outcome"] for e in d["assumptions"]["nonclassical"]["chsh"]] == ["fails", "holds", "holds"]
    assert "assumptions" in analyze_dataset(path, plan=PLAN, interval_resamples=99).summary()


# ------------------------------------------------------------------ the checks and the ladder alone
def test_labels_against_time_are_exact_under_random_draws_and_see_blocks_and_memory():
    from corrlab.analysis.nosignalling import sequence_test

    rng = np.random.default_rng(0)
    ps = np.array([sequence_test(rng.integers(0, 4, 300), n_resamples=199, rng=i).pvalue for i in range(200)])
    assert (ps < 0.05).mean() <= 0.05 + 2.33 * np.sqrt(0.05 * 0.95 / 200)  # size at most alpha + MC error
    blocks = sequence_test(np.repeat(np.arange(4), 100), n_resamples=999, rng=1)
    assert blocks.pvalue == blocks.block_pvalue == pytest.approx(1 / 1000)
    sticky = np.zeros(400, int)  # each label repeats the one before with probability 0.9
    for i in range(1, 400):
        sticky[i] = sticky[i - 1] if rng.random() < 0.9 else rng.integers(0, 4)
    assert sequence_test(sticky, n_resamples=999, rng=2).serial_pvalue == pytest.approx(1 / 1000)
    # a schedule balanced within blocks (conditions permuted in each block of 6) is not flagged
    sched = np.concatenate([rng.permutation(["main"] * 3 + ["c1", "c2", "c3"]) for _ in range(50)])
    assert sequence_test(sched, serial=False, n_resamples=999, rng=3).pvalue > 0.5


def test_settings_test_checks_balance_against_the_stated_probabilities():
    from corrlab.analysis.bell import settings_test

    rng = np.random.default_rng(3)
    sa, sb = (rng.random(2000) < 0.6).astype(int), rng.integers(0, 2, 2000)
    r = settings_test(sa, sb, n_resamples=199, rng=0)
    assert r.balance_pvalue < 1e-6 and r.pvalue == pytest.approx(min(1, 2 * r.balance_pvalue))
    ok = settings_test(sa, sb, setting_probabilities=((0.4, 0.6), (0.5, 0.5)), n_resamples=199, rng=0)
    assert ok.pvalue > 0.05


def _grade(assumptions):
    from corrlab.analysis.ladder import grade

    main = {"pvalue": 1e-4, "n_trials": 100, "mi": {"estimate": 0.3}}
    chsh = {"S": 2.6, "se": 0.1, "pvalue": 1e-6}
    return grade(main, [], [], {"chsh": chsh, "gaussian": None}, alpha=0.05,
                 confirmatory=("dependence", "chsh"), no_signalling_margin=0.05, assumptions=assumptions).verdict


def test_a_failing_or_unchecked_assumption_withholds_its_rung_and_a_stated_one_is_named():
    from corrlab.analysis.assumptions import entry

    assert _grade(None).level == "nonclassical"
    ok = entry("settings drawn at random", "balance p = 0.5", "holds")
    assert _grade({"nonclassical": {"chsh": [ok]}}).level == "nonclassical"
    v = _grade({"nonclassical": {"chsh": [ok, entry("settings drawn at random", "blocks p = 1e-4", "fails", "in blocks")]}})
    assert v.level == "dependence" and not v.nonclassical
    assert "ASSUMPTION FAILS for nonclassical through CHSH, not granted: settings drawn at random (blocks p = 1e-4: in blocks)" in v.reasons
    v = _grade({"nonclassical": {"chsh": [entry("every outcome counted", "ids", "unchecked", "3 ids missing")]}})
    assert v.level == "dependence" and any(r.startswith("ASSUMPTION UNCHECKED for nonclassical through CHSH") for r in v.reasons)
    v = _grade({"nonclassical": {"chsh": [entry("every outcome counted", "ids", "stated", "fair_sampling = true")]}})
    assert v.level == "nonclassical" and any("rests on a STATED assumption" in r for r in v.reasons)
    v = _grade({"dependence": [entry("exchangeable trials", "drift A p = 1e-4, B p = 1e-4", "fails")]})
    assert v.level == "nonclassical" and not v.dependence  # a witness stands on its own (DESIGN)
