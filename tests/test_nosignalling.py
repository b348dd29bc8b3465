"""No-signalling, drift and Holm against scipy/statsmodels references, closed forms and the
notes' test vector ([[2540, 2578], [2413, 2519]]: G = 0.49715, p = 0.48076, 95% CI of the
difference (-0.0266, 0.0125), TOST at margin 0.03: p = 0.0106)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from corrlab.analysis.nosignalling import DriftResult, NoSignallingResult, drift_test, holm, no_signalling_test
from corrlab.errors import PlanError

ALPHA = 0.05
TABLE = np.array([[2540, 2578], [2413, 2519]])  # rows: remote setting 0, 1; columns: outcome +1, -1


def _trials_from_table(table, rng=None):
    """Per-trial local values (+1 / -1, as a sign) and remote settings reproducing a 2x2 table."""
    local = np.concatenate([np.ones(table[0, 0]), -np.ones(table[0, 1]), np.ones(table[1, 0]), -np.ones(table[1, 1])])
    remote = np.concatenate([np.zeros(table[0].sum(), int), np.ones(table[1].sum(), int)])
    if rng is not None:
        order = rng.permutation(local.size)
        local, remote = local[order], remote[order]
    return local, remote


def test_reference_table_reproduces_all_four_numbers():
    local, remote = _trials_from_table(TABLE, np.random.default_rng(0))
    res = no_signalling_test(local, remote, margin=0.03)
    assert isinstance(res, NoSignallingResult)
    assert res.statistic == pytest.approx(0.49715, abs=5e-6)
    assert res.pvalue == pytest.approx(0.48076, abs=5e-6)
    lo, hi = res.confidence_interval()
    assert lo == pytest.approx(-0.0266, abs=5e-5) and hi == pytest.approx(0.0125, abs=5e-5)
    assert res.tost_pvalue == pytest.approx(0.0106, abs=5e-5)
    assert res.equivalent
    assert res.table == ((2540, 2578), (2413, 2519))
    assert res.difference == pytest.approx(2413 / 4932 - 2540 / 5118, rel=1e-12)
    assert res.to_dict()["ci"]["low"] == pytest.approx(lo)


def test_g_statistic_against_chi2_contingency_and_the_closed_form():
    rng = np.random.default_rng(1)
    for _ in range(5):
        remote = rng.integers(0, 2, 700)
        local = rng.standard_normal(700) + 0.15 * remote
        res = no_signalling_test(local, remote, margin=0.05)
        table = np.array([[np.sum((remote == s) & (local >= 0)), np.sum((remote == s) & (local < 0))] for s in (0, 1)])
        ref = stats.chi2_contingency(table, lambda_="log-likelihood", correction=False)
        expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
        g = 2 * np.sum(table * np.log(table / expected))
        assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
        assert res.statistic == pytest.approx(g, rel=1e-10)
        assert res.pvalue == pytest.approx(stats.chi2.sf(g, 1), rel=1e-9)


def test_orientation_swapping_remote_settings_flips_the_difference():
    local, remote = _trials_from_table(TABLE)
    a = no_signalling_test(local, remote, margin=0.03)
    b = no_signalling_test(local, 1 - remote, margin=0.03)
    assert b.difference == pytest.approx(-a.difference)
    assert b.ci.low == pytest.approx(-a.ci.high, abs=1e-12)
    assert b.statistic == pytest.approx(a.statistic)


def test_outcome_at_the_threshold_counts_as_plus_one():
    local = np.array([0.0, 0.0, -1.0, 1.0, 0.5, -0.5, 0.0, -2.0])
    remote = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    res = no_signalling_test(local, remote, margin=0.1)
    assert res.table == ((3, 1), (2, 2))
    res = no_signalling_test(local, remote, margin=0.1, binarize_at=0.5)
    assert res.table == ((1, 3), (1, 3))


def test_constant_outcome_gives_no_evidence():
    res = no_signalling_test(np.abs(np.random.default_rng(2).standard_normal(50)), np.arange(50) % 2, margin=0.05)
    assert res.statistic == 0.0 and res.pvalue == 1.0


def test_signalling_is_detected_and_not_called_equivalent():
    rng = np.random.default_rng(3)
    remote = rng.integers(0, 2, 6000)
    local = rng.standard_normal(6000) + 0.3 * remote  # P(+1) moves by about 0.12
    res = no_signalling_test(local, remote, margin=0.03)
    assert res.pvalue < 1e-6
    assert res.ci.low > 0.03 and not res.equivalent and res.tost_pvalue > 0.5


def test_g_test_holds_its_size_without_signalling():
    rng = np.random.default_rng(4)
    replicates = 400
    rejections = 0
    for _ in range(replicates):
        remote = rng.integers(0, 2, 300)
        rejections += no_signalling_test(rng.standard_normal(300), remote, margin=0.1).pvalue <= ALPHA
    assert abs(rejections / replicates - ALPHA) <= 3 * np.sqrt(ALPHA * (1 - ALPHA) / replicates)


def test_tost_holds_its_size_at_the_margin():
    """True difference exactly at the margin: TOST must declare equivalence at most alpha of the time."""
    rng = np.random.default_rng(5)
    replicates, n, margin = 600, 1500, 0.05
    declared = 0
    for _ in range(replicates):
        remote = rng.integers(0, 2, n)
        p_plus = np.where(remote == 1, 0.5 + margin / 2, 0.5 - margin / 2)
        local = np.where(rng.random(n) < p_plus, 1.0, -1.0)
        declared += no_signalling_test(local, remote, margin=margin).equivalent
    assert declared / replicates <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / replicates)


def test_anderson_darling_matches_scipy_and_reports_its_bounds():
    rng = np.random.default_rng(6)
    remote = rng.integers(0, 2, 600)
    local = rng.standard_normal(600)
    res = no_signalling_test(local, remote, margin=0.05, test="anderson")
    with warnings.catch_warnings():  # scipy warns when it caps the p-value
        warnings.simplefilter("ignore", UserWarning)
        ref = stats.anderson_ksamp([local[remote == 0], local[remote == 1]], variant="midrank")
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert res.pvalue_bounded == (ref.pvalue >= 0.25 or ref.pvalue <= 0.001)
    assert "capped at 0.25" in res.method
    # a clear shift in the marginal: the tabulated p-value sits at its 0.001 floor
    shifted = local + 0.5 * remote
    floored = no_signalling_test(shifted, remote, margin=0.05, test="anderson")
    assert floored.pvalue == pytest.approx(0.001) and floored.pvalue_bounded
    # the permutation p-value is not floored
    perm = no_signalling_test(shifted, remote, margin=0.05, test="anderson", n_resamples=999, rng=7)
    assert perm.pvalue == pytest.approx(1 / 1000) and not perm.pvalue_bounded
    assert "permutation" in perm.method


def test_anderson_sees_a_change_of_spread_that_the_sign_does_not():
    rng = np.random.default_rng(8)
    remote = rng.integers(0, 2, 2000)
    local = rng.standard_normal(2000) * np.where(remote == 1, 2.0, 1.0)
    assert no_signalling_test(local, remote, margin=0.05, test="g").pvalue > 0.01
    assert no_signalling_test(local, remote, margin=0.05, test="anderson").pvalue <= 0.001


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(local=np.ones(4), remote_setting=[0, 1, 2, 1], margin=0.05), "only settings 0 and 1"),
        (dict(local=np.ones(4), remote_setting=[0, 1, 1], margin=0.05), "same length"),
        (dict(local=np.ones(4), remote_setting=[0, 1, 1, 0], margin=0.0), "margin"),
        (dict(local=np.ones(4), remote_setting=[0, 1, 1, 1], margin=0.05), "at least 2 trials"),
        (dict(local=np.ones(4), remote_setting=[0, 1, 1, 0], margin=0.05, test="ks"), "test must be one of"),
        (dict(local=[1, np.nan, 2, 3], remote_setting=[0, 1, 1, 0], margin=0.05), "non-finite"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(PlanError, match=message):
        no_signalling_test(**kwargs)


# ----------------------------------------------------------------------------- drift


def test_drift_statistics_against_independent_computations():
    rng = np.random.default_rng(10)
    n = 120
    t = np.sort(rng.uniform(0, 1000, n))
    v = rng.standard_normal(n) + 0.002 * t
    order = rng.permutation(n)  # given out of time order
    res = drift_test(v[order], t[order], n_resamples=4999, rng=11)
    assert isinstance(res, DriftResult)
    sp = stats.spearmanr(t, v)
    assert res.statistic == pytest.approx(sp.statistic, rel=1e-12)
    assert abs(res.trend_pvalue - sp.pvalue) < 4 * np.sqrt(max(sp.pvalue, 0.01) / 4999) + 0.01
    r = stats.rankdata(v)
    pettitt = np.max(np.abs(2 * np.cumsum(r) - np.arange(1, n + 1) * (n + 1))) / 2  # U_t / 2
    assert res.changepoint_statistic == pytest.approx(pettitt)
    assert res.slope == pytest.approx(np.polyfit(t, v, 1)[0], rel=1e-10)
    assert res.ci.low < res.slope < res.ci.high


def test_drift_test_holds_its_size_on_exchangeable_trials():
    rng = np.random.default_rng(12)
    replicates = 300
    p = np.array([drift_test(rng.standard_t(3, 80), n_resamples=199, rng=rng).pvalue for _ in range(replicates)])
    se = np.sqrt(ALPHA * (1 - ALPHA) / replicates)
    assert abs(np.mean(p <= ALPHA) - ALPHA) <= 3 * se


def test_drift_detects_a_trend_and_a_level_change_that_comes_back():
    rng = np.random.default_rng(13)
    n = 200
    trend = rng.standard_normal(n) + np.linspace(0, 1.5, n)
    assert drift_test(trend, n_resamples=999, rng=14).pvalue <= 0.002
    # up then down: Spearman sees nothing, the rank CUSUM sees the excursion
    bump = rng.standard_normal(n)
    bump[60:140] += 1.2
    res = drift_test(bump, n_resamples=999, rng=15)
    assert res.trend_pvalue > 0.05
    assert res.changepoint_pvalue <= 0.01 and res.pvalue <= 0.02
    assert 50 <= res.changepoint_index <= 150
    assert "min-p" in res.method


def test_drift_bad_input():
    with pytest.raises(PlanError, match="constant"):
        drift_test(np.arange(10.0), np.ones(10))
    with pytest.raises(PlanError, match="all equal"):
        drift_test(np.ones(10))


# ----------------------------------------------------------------------------- Holm


def _holm_by_hand(p):
    p = np.asarray(p, float)
    m = p.size
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def test_holm_against_the_step_down_definition():
    p = [0.01, 0.04, 0.03, 0.2, 0.001]
    res = holm(p, alpha=0.05)
    np.testing.assert_allclose(res.pvalues, _holm_by_hand(p))
    np.testing.assert_array_equal(res.reject, _holm_by_hand(p) <= 0.05)
    named = holm({"dependence": 0.01, "controls": 0.04, "no_signalling": 0.03})
    assert named.names == ("dependence", "controls", "no_signalling")
    assert named.as_dict() == pytest.approx({"dependence": 0.03, "controls": 0.06, "no_signalling": 0.06})
    assert "dependence" in named.summary()
    with pytest.raises(PlanError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])


# ----------------------------------------------------------------------------- serial dependence
def _ar1(rng, n, phi):
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def test_serial_test_holds_its_size_on_exchangeable_values_and_sees_autocorrelation():
    from corrlab.analysis.nosignalling import serial_test

    rng = np.random.default_rng(11)
    n = 600
    blocks = np.minimum(np.arange(n) // 32, n // 32 - 1)
    pvals = np.array([serial_test(rng.normal(size=n), blocks, n_resamples=99, rng=r).pvalue for r in range(300)])
    rate = float(np.mean(pvals <= 0.05))
    assert 0.02 <= rate <= 0.09, rate  # 300 replicates: nominal 0.05 within about 2.5 s.e.
    ar = serial_test(_ar1(rng, n, 0.8), blocks, n_resamples=199, rng=0)
    assert ar.pvalue == pytest.approx(1 / 200) and ar.autocorrelation[0] > 0.5
    assert ar.n_blocks == n // 32 and ar.lags == 5


def test_serial_test_within_time_blocks_drops_a_slow_drift_that_the_whole_run_sees():
    from corrlab.analysis.nosignalling import serial_test

    rng = np.random.default_rng(3)
    n = 2000
    drift = np.cumsum(rng.normal(scale=0.02, size=n))  # a random walk, sd well below the noise's 1
    x = rng.normal(size=n) + 4 * drift
    whole = serial_test(x, None, n_resamples=199, rng=1)
    local = serial_test(x, np.minimum(np.arange(n) // 32, n // 32 - 1), n_resamples=199, rng=1)
    assert whole.pvalue < 0.01 and whole.autocorrelation[0] > 0.2
    assert local.pvalue > 0.05 and abs(local.autocorrelation[0]) < 0.1


def test_serial_test_names_bad_input():
    from corrlab.analysis.nosignalling import serial_test

    with pytest.raises(PlanError, match="blocks has 3 entries for 10 values"):
        serial_test(np.arange(10.0), [0, 0, 1])
    with pytest.raises(PlanError, match="constant within every block"):
        serial_test(np.repeat([1.0, 2.0], 5), np.repeat([0, 1], 5))
