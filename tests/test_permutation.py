"""Permutation tests: p-values against scipy.stats.permutation_test, exact identities of the
resampling schemes, and calibration on autocorrelated data (the notes' AR(1) trap:
independent AR(1) channels, phi = 0.95, 40 trials x 1000 samples: an i.i.d. shuffle gave
0.637 false positives at alpha = 0.05, circular shifts 0.043, trial re-pairing 0.047)."""

from __future__ import annotations

import numpy as np
import pytest
from corrlab.analysis.mi import gaussian_copula_mi, gaussian_mi, ksg_mi
from corrlab.analysis.permutation import (
    LabelPermutationResult,
    PermutationTestResult,
    circular_shift_test,
    label_permutation_test,
    random_derangements,
    repairing_test,
    time_local_blocks,
)
from scipy import signal, stats

from corrlab.errors import PlanError

ALPHA = 0.05


def _mc_tolerance(p, m1, m2, z=4.0):
    """z standard errors of the difference of two independent Monte-Carlo p-values."""
    p = min(max(p, 0.01), 0.99)
    return z * np.sqrt(p * (1 - p) * (1 / m1 + 1 / m2))


def _ar1(rng, shape, phi):
    return signal.lfilter([1.0], [1.0, -phi], rng.standard_normal(shape), axis=-1)


def _pearson_mi(x, y, axis=-1):
    r = stats.pearsonr(x, y, axis=axis).statistic
    return -0.5 * np.log1p(-(r**2))


# ----------------------------------------------------------------------------- re-pairing


@pytest.fixture
def weak_pair():
    rng = np.random.default_rng(2024)
    n = 50
    x = rng.standard_normal(n)
    y = 0.22 * x + rng.standard_normal(n)
    return x, y


def test_repairing_gaussian_pvalue_matches_scipy_permutation_test(weak_pair):
    x, y = weak_pair
    m = 9999
    ref = stats.permutation_test((x,), lambda xp, axis=-1: _pearson_mi(xp, y, axis=axis),
                                 permutation_type="pairings", vectorized=True, n_resamples=m,
                                 alternative="greater", rng=1)
    res = repairing_test(x, y, statistic="gaussian", n_resamples=m, rng=2)
    assert res.statistic == pytest.approx(float(ref.statistic), rel=1e-10)
    assert 0.005 < ref.pvalue < 0.5  # a case where the comparison says something
    assert abs(res.pvalue - ref.pvalue) < _mc_tolerance(ref.pvalue, m, m)


def test_repairing_copula_pvalue_matches_scipy_permutation_test(weak_pair):
    x, y = weak_pair
    m = 9999
    u = stats.norm.ppf(stats.rankdata(x) / (len(x) + 1))
    v = stats.norm.ppf(stats.rankdata(y) / (len(y) + 1))
    ref = stats.permutation_test((u,), lambda up, axis=-1: _pearson_mi(up, v, axis=axis),
                                 permutation_type="pairings", vectorized=True, n_resamples=m,
                                 alternative="greater", rng=3)
    res = repairing_test(x, y, n_resamples=m, rng=4)  # default statistic: gaussian_copula
    assert res.statistic == pytest.approx(gaussian_copula_mi(x, y), rel=1e-10)
    assert abs(res.pvalue - ref.pvalue) < _mc_tolerance(ref.pvalue, m, m)


@pytest.mark.parametrize("alternative", ["two-sided", "less"])
def test_repairing_alternatives_match_scipy(weak_pair, alternative):
    x, y = weak_pair
    y = -y if alternative == "less" else y
    m = 4999

    def corr(a, b):
        return stats.pearsonr(a, b).statistic

    ref = stats.permutation_test((x,), lambda xp, axis=-1: stats.pearsonr(xp, y, axis=axis).statistic,
                                 permutation_type="pairings", vectorized=True, n_resamples=m,
                                 alternative=alternative, rng=5)
    res = repairing_test(x, y, statistic=corr, n_resamples=m, alternative=alternative, rng=6)
    assert res.alternative == alternative
    assert abs(res.pvalue - ref.pvalue) < _mc_tolerance(ref.pvalue, m, m)


def test_repairing_multivariate_matches_scipy_with_the_gaussian_statistic():
    rng = np.random.default_rng(7)
    n = 60
    x = rng.standard_normal((n, 2))
    y = x @ np.array([[0.15, 0.0], [0.1, 0.2]]) + rng.standard_normal((n, 2))
    m = 4999

    def stat(idx, axis=-1):  # scipy permutes trial indices of y; the statistic is the Gaussian MI
        idx = np.atleast_2d(idx)
        out = np.array([gaussian_mi(x, y[i]) for i in idx])
        return out if out.size > 1 else np.asarray(out[0])

    ref = stats.permutation_test((np.arange(n),), stat, permutation_type="pairings", vectorized=True,
                                 n_resamples=m, alternative="greater", rng=8)
    res = repairing_test(x, y, statistic="gaussian", n_resamples=m, rng=9)
    assert res.statistic == pytest.approx(gaussian_mi(x, y), rel=1e-10)
    assert abs(res.pvalue - ref.pvalue) < _mc_tolerance(ref.pvalue, m, m)


def test_vectorised_paths_agree_with_the_per_resample_definition(weak_pair):
    """The FFT path must give, resample by resample, the statistic of the re-paired data."""
    x, y = weak_pair
    for stat, fn in (("gaussian", gaussian_mi), ("gaussian_copula", gaussian_copula_mi)):
        fast = repairing_test(x, y, statistic=stat, n_resamples=300, rng=11)
        slow = repairing_test(x, y, statistic=lambda a, b, fn=fn: fn(a, b), n_resamples=300, rng=11)
        np.testing.assert_allclose(fast.null_distribution, slow.null_distribution, rtol=1e-9, atol=1e-13)
    blocks = np.repeat(np.arange(5), 10)
    fast = repairing_test(x, y, statistic="gaussian", n_resamples=300, blocks=blocks, rng=12)
    slow = repairing_test(x, y, statistic=lambda a, b: gaussian_mi(a, b), n_resamples=300, blocks=blocks, rng=12)
    np.testing.assert_allclose(fast.null_distribution, slow.null_distribution, rtol=1e-9, atol=1e-13)


def test_one_order_with_all_lags_is_the_full_cyclic_orbit(weak_pair):
    """m = n - 1: the resamples and the observed pairing are all n cyclic re-pairings of one
    random order, so the Pearson correlations of the n of them sum to exactly 0."""
    x, y = weak_pair
    n = len(x)

    def corr(a, b):
        return np.corrcoef(a, b)[0, 1]

    res = repairing_test(x, y, statistic=corr, n_resamples=n - 1, rng=13)
    assert res.statistic + res.null_distribution.sum() == pytest.approx(0.0, abs=1e-10)
    assert len(np.unique(np.round(res.null_distribution, 12))) == n - 1
    assert "exact cyclic permutation test" in res.method


def test_random_derangements_have_no_fixed_point_and_respect_blocks():
    rng = np.random.default_rng(14)
    for n in (2, 3, 7, 50):
        d = random_derangements(n, 500, rng=rng)
        assert d.shape == (500, n)
        assert np.all(np.sort(d, axis=1) == np.arange(n))
        assert not np.any(d == np.arange(n))
    blocks = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 0])
    d = random_derangements(10, 500, blocks=blocks, rng=rng)
    assert not np.any(d == np.arange(10))
    assert np.all(blocks[d] == blocks)
    # every trial is re-paired with every other trial of its block at some point
    for i in range(10):
        assert set(d[:, i]) == set(np.flatnonzero(blocks == blocks[i])) - {i}


def test_repairing_ksg_reuses_the_marginals_but_computes_ksg(weak_pair):
    x, y = weak_pair
    res = repairing_test(x, y, statistic="ksg", k=3, n_resamples=99, rng=15)
    assert res.statistic == pytest.approx(ksg_mi(x, y, k=3), abs=1e-12)
    perms = random_derangements(len(x), 99, rng=15)  # the same scheme and seed
    expected = np.array([ksg_mi(x, y[p], k=3) for p in perms[:10]])
    np.testing.assert_allclose(res.null_distribution[:10], expected, atol=1e-12)
    assert "KSG" in res.estimator


def test_repairing_detects_dependence_and_reports_method(weak_pair):
    rng = np.random.default_rng(16)
    x = rng.standard_normal(200)
    y = 0.5 * x + rng.standard_normal(200)
    res = repairing_test(x, y, n_resamples=999, rng=17)
    assert res.pvalue == pytest.approx(1 / 1000)
    assert isinstance(res, PermutationTestResult)
    assert "derangements" in res.method and "999 resamples" in res.method and "p=(b+1)/(m+1)" in res.method
    d = res.to_dict()
    assert "null_distribution" not in d and d["n_resamples"] == 999
    assert "p = 0.001" in res.summary()


def test_repairing_pools_runs_as_blocks():
    """Two runs whose B offsets differ: a pooled re-pairing across runs sees the offset
    as dependence if A has the same offsets, re-pairing within runs does not."""
    rng = np.random.default_rng(18)
    n = 60
    run = np.repeat([0, 1], n // 2)
    x = rng.standard_normal(n) + 3 * run
    y = rng.standard_normal(n) + 3 * run
    pooled = repairing_test(x, y, statistic="gaussian", n_resamples=999, rng=19)
    within = repairing_test(x, y, statistic="gaussian", n_resamples=999, blocks=run, rng=19)
    assert pooled.pvalue < 0.01
    assert within.pvalue > ALPHA  # the offsets are shared by every within-run re-pairing
    assert within.null_distribution.mean() > 0.5 * within.statistic
    assert "within each of 2 blocks" in within.method


# ----------------------------------------------------------------------------- circular shifts


def test_circular_shift_null_has_the_moments_of_independent_uniform_lags():
    rng = np.random.default_rng(20)
    a = _ar1(rng, (6, 64), 0.8)
    b = _ar1(rng, (6, 64), 0.8)
    za, zb = (a - a.mean()) / a.std(), (b - b.mean()) / b.std()
    total = a.size
    # brute force: every trial's correlation contribution at every lag, with np.roll
    lag_values = np.array([[za[j] @ np.roll(zb[j], -s) for s in range(64)] for j in range(6)]) / total
    mean_ref = lag_values.mean(axis=1).sum()
    var_ref = lag_values.var(axis=1).sum()
    m = 20000
    res = circular_shift_test(a, b, statistic="correlation", n_resamples=m, alternative="two-sided", rng=21)
    assert res.statistic == pytest.approx(lag_values[:, 0].sum(), rel=1e-10)
    assert res.null_distribution.mean() == pytest.approx(mean_ref, abs=5 * np.sqrt(var_ref / m))
    assert res.null_distribution.var() == pytest.approx(var_ref, rel=0.05)


def test_circular_shift_builtin_and_callable_statistics_agree():
    rng = np.random.default_rng(22)
    a = [_ar1(rng, 300, 0.9), _ar1(rng, 200, 0.9), _ar1(rng, 250, 0.9)]  # unequal trial lengths
    b = [_ar1(rng, len(s), 0.9) for s in a]

    def pooled_r(pa, pb):
        return np.corrcoef(pa, pb)[0, 1]

    fast = circular_shift_test(a, b, statistic="correlation", n_resamples=200, rng=23)
    slow = circular_shift_test(a, b, statistic=pooled_r, n_resamples=200, rng=23)
    np.testing.assert_allclose(fast.null_distribution, slow.null_distribution, rtol=1e-9, atol=1e-12)
    g = circular_shift_test(a, b, statistic="gaussian", n_resamples=200, rng=23)
    np.testing.assert_allclose(g.null_distribution, -0.5 * np.log1p(-fast.null_distribution**2), rtol=1e-12)


def test_circular_shift_ksg_null_reproduces_the_autocorrelation_inflation():
    """Notes: independent series with phi = 0.99 inflate KSG (+0.069 nats); the circular-shift
    null reproduces it (+0.072). An i.i.d. shuffle does not."""
    rng = np.random.default_rng(24)
    a = _ar1(rng, (20, 1000), 0.99)
    b = _ar1(rng, (20, 1000), 0.99)
    res = circular_shift_test(a, b, statistic="ksg", n_resamples=29, rng=25)
    null = res.null_distribution
    assert res.statistic > 0.02 and null.mean() > 0.02
    assert abs(res.statistic - null.mean()) < 4 * null.std(ddof=1)
    shuffled = [ksg_mi(a.ravel(), rng.permutation(b.ravel())) for _ in range(3)]
    assert max(shuffled) < 0.01 < res.statistic


def test_circular_shift_detects_a_shared_signal():
    rng = np.random.default_rng(26)
    common = _ar1(rng, (10, 500), 0.9)
    a = common + _ar1(rng, (10, 500), 0.9)
    b = common + _ar1(rng, (10, 500), 0.9)
    res = circular_shift_test(a, b, n_resamples=999, rng=27)
    assert res.pvalue == pytest.approx(1 / 1000)
    assert "circular time shifts" in res.method


# ----------------------------------------------------------------------------- calibration


def _calibration(replicates, m, seed, iid_resamples, iid_replicates=None):
    """False-positive rates at ALPHA; the i.i.d. shuffle (the trap) on the first iid_replicates."""
    iid_replicates = replicates if iid_replicates is None else iid_replicates
    rng = np.random.default_rng(seed)
    trials, samples, phi = 40, 1000, 0.95
    rejections = {"iid": 0, "shift": 0, "repair": 0}
    index = np.arange(trials)

    for rep in range(replicates):
        a = _ar1(rng, (trials, samples), phi)
        b = _ar1(rng, (trials, samples), phi)
        za, zb = (a - a.mean()) / a.std(), (b - b.mean()) / b.std()
        if rep < iid_replicates:
            obs = abs(za.ravel() @ zb.ravel())
            flat = zb.ravel()
            null = np.abs([za.ravel() @ rng.permutation(flat) for _ in range(iid_resamples)])
            rejections["iid"] += (np.sum(null >= obs) + 1) / (iid_resamples + 1) <= ALPHA
        rejections["shift"] += circular_shift_test(a, b, n_resamples=m, rng=rng).pvalue <= ALPHA
        # re-pairing whole series: the pooled sample correlation of a re-pairing pi is
        # sum_i G[i, pi(i)] / N with G the trial-by-trial Gram matrix; the statistic gets the
        # re-paired trial indices (vectorised: (batch, trials))
        gram = za @ zb.T / za.size

        def pooled_mi(ia, ib_batch, gram=gram):
            r = gram[ia[None, :], ib_batch].sum(axis=1)
            return -0.5 * np.log1p(-(r**2))

        rejections["repair"] += repairing_test(index, index, statistic=pooled_mi, vectorized=True,
                                               n_resamples=m, rng=rng).pvalue <= ALPHA
    rates = {k: v / replicates for k, v in rejections.items()}
    rates["iid"] = rejections["iid"] / iid_replicates
    return rates


def test_calibration_on_independent_ar1_channels():
    replicates = 200
    rates = _calibration(replicates, m=199, seed=31, iid_resamples=39, iid_replicates=60)
    se = np.sqrt(ALPHA * (1 - ALPHA) / replicates)
    assert rates["iid"] > 0.45  # the trap: an i.i.d. shuffle (notes: 0.637)
    assert rates["shift"] <= ALPHA + 3 * se
    assert rates["repair"] <= ALPHA + 3 * se


@pytest.mark.slow
def test_calibration_on_independent_ar1_channels_many_replicates():
    replicates = 1000
    rates = _calibration(replicates, m=199, seed=32, iid_resamples=199)
    se = np.sqrt(ALPHA * (1 - ALPHA) / replicates)
    assert rates["iid"] > 0.55
    assert abs(rates["shift"] - ALPHA) <= 3 * se
    assert abs(rates["repair"] - ALPHA) <= 3 * se


def _trial_level_fpr(replicates, seed, statistic, m):
    rng = np.random.default_rng(seed)
    rejected = 0
    for _ in range(replicates):
        x = rng.standard_t(3, 40)
        y = rng.standard_t(3, 40)
        rejected += repairing_test(x, y, statistic=statistic, n_resamples=m, rng=rng).pvalue <= ALPHA
    return rejected / replicates


@pytest.mark.parametrize("statistic", ["gaussian", "gaussian_copula"])
def test_repairing_holds_alpha_on_heavy_tailed_trial_data(statistic):
    replicates = 300
    rate = _trial_level_fpr(replicates, 33, statistic, 199)
    assert abs(rate - ALPHA) <= 3 * np.sqrt(ALPHA * (1 - ALPHA) / replicates)


# ----------------------------------------------------------------------------- time-local blocks


def test_time_local_blocks_cut_consecutive_trials_within_runs():
    ids = np.array([5, 1, 3, 2, 4, 0, 9, 8, 7, 6, 10])  # trial ids out of order
    runs = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    codes = time_local_blocks(ids, size=2, within=runs)
    # run 0: ids 0..5 -> blocks {0,1} {2,3} {4,5}; run 1: ids 6..10 -> {6,7} {8,9,10} (remainder joins the last)
    expected = {0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 3, 7: 3, 8: 4, 9: 4, 10: 4}
    assert codes.tolist() == [expected[i] for i in ids]
    big = time_local_blocks(np.arange(1000), size=32)
    sizes = np.bincount(big)
    assert sizes.size == 31 and sizes.min() == 32 and sizes.max() == 32 + 1000 % 32
    assert np.all(np.diff(big) >= 0)  # consecutive in time
    small_run = time_local_blocks(np.arange(12), size=8, within=np.repeat([0, 1], [10, 2]))
    assert np.bincount(small_run).tolist() == [10, 2]  # a run shorter than size is one block
    np.testing.assert_array_equal(time_local_blocks(ids, size=0, within=runs), runs)  # 0: no time blocks
    with pytest.raises(PlanError, match="size"):
        time_local_blocks(ids, size=1)


def test_standardising_within_blocks_is_the_statistic_of_per_block_transformed_data():
    rng = np.random.default_rng(50)
    n = 96
    x = rng.standard_normal((n, 2)) + np.linspace(0, 3, n)[:, None]
    y = x[:, :1] + rng.standard_normal((n, 1)) + np.linspace(0, -2, n)[:, None]
    blocks = time_local_blocks(np.arange(n), size=12)
    xs, ys = x.copy(), y.copy()
    for b in np.unique(blocks):  # written out block by block
        sel = blocks == b
        xs[sel] = (x[sel] - x[sel].mean(axis=0)) / x[sel].std(axis=0)
        ys[sel] = (y[sel] - y[sel].mean(axis=0)) / y[sel].std(axis=0)
    for stat, value in (("gaussian", gaussian_mi(xs, ys)), ("ksg", ksg_mi(xs, ys, k=3))):
        res = repairing_test(x, y, statistic=stat, blocks=blocks, standardize_within_blocks=True, n_resamples=50,
                             rng=51)
        assert res.statistic == pytest.approx(value, rel=1e-10)
    res = repairing_test(x, y, statistic="gaussian_copula", blocks=blocks, standardize_within_blocks=True,
                         n_resamples=50, rng=51)
    u = np.concatenate([stats.norm.ppf(stats.rankdata(x[blocks == b], axis=0) / 13) for b in range(8)])
    v = np.concatenate([stats.norm.ppf(stats.rankdata(y[blocks == b], axis=0) / 13) for b in range(8)])
    assert res.statistic == pytest.approx(gaussian_mi(u, v), rel=1e-10)
    assert "standardised within each block (normal scores of within-block ranks)" in res.method


def _drift_world(rng, n, drift_sd, rho=0.0):
    """Per-trial noise 1; two independent random walks (one per side) whose increments are
    drift_sd / sqrt(n), so each walk's sd reaches drift_sd only at the end of the run."""
    wa = np.cumsum(rng.standard_normal(n)) * drift_sd / np.sqrt(n)
    wb = np.cumsum(rng.standard_normal(n)) * drift_sd / np.sqrt(n)
    e = rng.standard_normal(n)
    return e + wa, rho * e + np.sqrt(1 - rho**2) * rng.standard_normal(n) + wb


@pytest.mark.parametrize("statistic", ["gaussian_copula", "copula_omnibus"])
def test_time_blocks_standardised_hold_alpha_under_two_independent_drifts(statistic):
    """Spurious regression: two independent drifts make whole-run re-pairing reject far above
    alpha; re-pairing within blocks of 32 consecutive trials, standardised within them, does not."""
    rng = np.random.default_rng(52)
    n, replicates = 2000, 100
    blocks = time_local_blocks(np.arange(n), size=32)
    whole, local = [], []
    for i in range(replicates):
        x, y = _drift_world(rng, n, drift_sd=1.0)
        whole.append(repairing_test(x, y, statistic=statistic, n_resamples=199, rng=i).pvalue)
        local.append(repairing_test(x, y, statistic=statistic, n_resamples=199, blocks=blocks,
                                    standardize_within_blocks=True, rng=i).pvalue)
    r_whole, r_local = np.mean(np.array(whole) <= ALPHA), np.mean(np.array(local) <= ALPHA)
    print(f"\n{statistic}, two independent drifts, n = {n}, {replicates} replicates: rejection at {ALPHA}: "
          f"whole run {r_whole:.2f}, time blocks of 32 standardised {r_local:.2f}")
    assert r_whole >= 0.3
    assert r_local <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / replicates)


@pytest.mark.parametrize("statistic", ["gaussian_copula", "copula_omnibus"])
def test_time_blocks_standardised_are_exact_for_exchangeable_trials(statistic):
    rng = np.random.default_rng(53)
    n, replicates = 256, 400
    blocks = time_local_blocks(np.arange(n), size=32)
    pv = np.array([repairing_test(rng.standard_normal(n), rng.standard_t(3, n), statistic=statistic,
                                  blocks=blocks, standardize_within_blocks=True, n_resamples=99, rng=i).pvalue
                   for i in range(replicates)])
    rate = np.mean(pv <= ALPHA)
    print(f"\n{statistic}, exchangeable trials, blocks of 32 standardised: rejection at {ALPHA}: {rate:.3f}")
    assert abs(rate - ALPHA) <= 3.4 * np.sqrt(ALPHA * (1 - ALPHA) / replicates)
    assert abs(np.mean(pv <= 0.2) - 0.2) <= 3.4 * np.sqrt(0.2 * 0.8 / replicates)


def test_time_blocks_standardised_keep_the_power_on_a_true_dependence():
    rng = np.random.default_rng(54)
    n, replicates, rho = 2000, 300, 0.06
    blocks = time_local_blocks(np.arange(n), size=32)
    whole, local = [], []
    for i in range(replicates):
        x, y = _drift_world(rng, n, drift_sd=0.0, rho=rho)
        whole.append(repairing_test(x, y, n_resamples=199, rng=i).pvalue)
        local.append(repairing_test(x, y, n_resamples=199, blocks=blocks, standardize_within_blocks=True,
                                    rng=i).pvalue)
    p_whole, p_local = np.mean(np.array(whole) <= ALPHA), np.mean(np.array(local) <= ALPHA)
    print(f"\nrho = {rho}, n = {n}, no drift: power whole run {p_whole:.2f}, time blocks standardised {p_local:.2f}")
    assert 0.3 <= p_whole <= 0.95  # a test of power, not a certainty
    # the blocks take out the between-block part of the covariance (about 1 df in 32): measured over
    # 4 x 300 replicates the power drops by 0.004 to 0.09 (0.05 on average; paired sd about 0.025)
    assert p_whole - 0.12 <= p_local <= p_whole + 0.05


# ----------------------------------------------------------------------------- labels


@pytest.fixture
def two_conditions():
    rng = np.random.default_rng(40)
    n1, n2 = 70, 60
    x1 = rng.standard_normal(n1)
    y1 = 0.45 * x1 + rng.standard_normal(n1)
    x2 = 2 * rng.standard_normal(n2) + 1
    y2 = 0.1 * x2 + rng.standard_normal(n2)
    order = rng.permutation(n1 + n2)  # interleaved
    x = np.r_[x1, x2][order]
    y = np.r_[y1, y2][order]
    labels = np.array(["main"] * n1 + ["control:break_L"] * n2)[order]
    return x, y, labels


@pytest.mark.parametrize("statistic, fn", [("gaussian", gaussian_mi), ("gaussian_copula", gaussian_copula_mi)])
def test_label_permutation_matches_scipy(two_conditions, statistic, fn):
    x, y, labels = two_conditions
    main = labels == "main"
    m = 3999

    def stat(lab, axis=-1):  # scipy permutes the 0/1 labels; the statistic recomputes both MIs
        lab = np.atleast_2d(lab)
        out = np.array([fn(x[r == 1], y[r == 1]) - fn(x[r == 0], y[r == 0]) for r in lab])
        return out if out.size > 1 else np.asarray(out[0])

    ref = stats.permutation_test((main.astype(int),), stat, permutation_type="pairings", vectorized=True,
                                 n_resamples=m, alternative="greater", rng=41)
    res = label_permutation_test((x, y), labels, statistic=statistic, n_resamples=m, rng=42)
    assert isinstance(res, LabelPermutationResult)
    assert res.groups == ("main", "control:break_L") and res.n_trials == (70, 60)
    assert res.estimates[0] == pytest.approx(fn(x[main], y[main]), rel=1e-9)
    assert res.estimates[1] == pytest.approx(fn(x[~main], y[~main]), rel=1e-9)
    assert res.statistic == pytest.approx(float(ref.statistic), rel=1e-9)
    assert 0.005 < ref.pvalue < 0.5
    assert abs(res.pvalue - ref.pvalue) < _mc_tolerance(ref.pvalue, m, m)


def test_label_permutation_vectorised_null_is_the_per_resample_statistic(two_conditions):
    x, y, labels = two_conditions
    for stat, fn in (("gaussian", gaussian_mi), ("gaussian_copula", gaussian_copula_mi)):
        fast = label_permutation_test((x, y), labels, statistic=stat, n_resamples=200, rng=43)
        slow = label_permutation_test((x, y), labels, statistic=lambda a, b, fn=fn: fn(a, b), n_resamples=200, rng=43)
        np.testing.assert_allclose(fast.null_distribution, slow.null_distribution, rtol=1e-8, atol=1e-12)


def test_label_permutation_multivariate_quadratures(two_conditions):
    rng = np.random.default_rng(44)
    x, y, labels = two_conditions
    xq = np.column_stack([x, rng.standard_normal(len(x))])
    yq = np.column_stack([y, rng.standard_normal(len(y))])
    for stat, fn in (("gaussian", gaussian_mi), ("gaussian_copula", gaussian_copula_mi)):
        fast = label_permutation_test((xq, yq), labels, statistic=stat, n_resamples=100, rng=45)
        slow = label_permutation_test((xq, yq), labels, statistic=lambda a, b, fn=fn: fn(a, b), n_resamples=100, rng=45)
        np.testing.assert_allclose(fast.null_distribution, slow.null_distribution, rtol=1e-8, atol=1e-12)


def test_label_permutation_within_blocks_keeps_each_blocks_labels():
    """One main and one control trial per block: with x = block index, the sum of x over
    the main trials is the same under every within-block permutation."""
    n_blocks = 30
    blocks = np.repeat(np.arange(n_blocks), 2)
    labels = np.tile(["main", "control:perturb_C"], n_blocks)
    rng = np.random.default_rng(46)
    labels = np.array([row[rng.permutation(2)] for row in labels.reshape(-1, 2)]).ravel()
    x = blocks.astype(float)
    y = rng.standard_normal(2 * n_blocks)

    def block_sum(a, b):
        return a.sum()

    within = label_permutation_test((x, y), labels, statistic=block_sum, blocks=blocks, n_resamples=200, rng=47)
    assert np.all(within.null_distribution == within.statistic)
    assert within.pvalue == 1.0
    free = label_permutation_test((x, y), labels, statistic=block_sum, n_resamples=200, rng=47)
    assert np.std(free.null_distribution) > 10
    assert "within 30 blocks" in within.method


def test_label_permutation_ksg_difference(two_conditions):
    x, y, labels = two_conditions
    main = labels == "main"
    res = label_permutation_test((x, y), labels, statistic="ksg", n_resamples=49, rng=48, groups=("main", "control:break_L"))
    assert res.statistic == pytest.approx(ksg_mi(x[main], y[main]) - ksg_mi(x[~main], y[~main]), abs=1e-12)
    assert res.null_distribution.shape == (49,)


def test_label_permutation_ignores_other_conditions_and_checks_groups(two_conditions):
    x, y, labels = two_conditions
    labels = labels.copy()
    labels[:10] = "control:couple_env"
    with pytest.raises(PlanError, match="groups must name the two conditions"):
        label_permutation_test((x, y), labels, n_resamples=10)
    res = label_permutation_test((x, y), labels, groups=("main", "control:break_L"), n_resamples=99, rng=0)
    assert sum(res.n_trials) == len(x) - 10
    with pytest.raises(PlanError, match="has no trials"):
        label_permutation_test((x, y), labels, groups=("main", "control:nothing"), n_resamples=10)


def _controls_world(rng, n_main, rho_main, rho_control):
    """Control: a quarter of main's trials, recorded with 3x the gain and offsets (+3, -3)."""
    n_ctl = n_main // 4

    def pair(n, rho):
        x = rng.standard_normal(n)
        return x, rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)

    xm, ym = pair(n_main, rho_main)
    xc, yc = pair(n_ctl, rho_control)
    order = rng.permutation(n_main + n_ctl)  # interleaved
    x = np.concatenate([xm, 3 * xc + 3])[order]
    y = np.concatenate([ym, 3 * yc - 3])[order]
    labels = np.repeat(["main", "control:break_L"], [n_main, n_ctl])[order]
    return x, y, labels


@pytest.mark.parametrize("statistic", ["gaussian_copula", "copula_omnibus", "gaussian"])
def test_controls_standardised_within_conditions_compare_dependence_not_marginals(statistic):
    """Same dependence (rho 0.5) in main and in a control with another gain and offsets:
    pooled label permutation mixes marginals and flags the control; standardising each
    condition's marginals within it holds alpha."""
    rng = np.random.default_rng(60)
    replicates = 60
    raw, std = [], []
    for i in range(replicates):
        x, y, labels = _controls_world(rng, 800, 0.5, 0.5)
        kw = {"statistic": statistic, "n_resamples": 199, "alternative": "two-sided", "rng": i}
        raw.append(label_permutation_test((x, y), labels, **kw).pvalue)
        std.append(label_permutation_test((x, y), labels, standardize_within_groups=True, **kw).pvalue)
    r_raw, r_std = np.mean(np.array(raw) <= ALPHA), np.mean(np.array(std) <= ALPHA)
    print(f"\n{statistic}: same dependence, control gain 3 and offsets, {replicates} replicates: flagged at {ALPHA}: "
          f"pooled {r_raw:.2f}, standardised within conditions {r_std:.2f}")
    assert r_raw >= 0.3
    assert r_std <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / replicates)


@pytest.mark.parametrize("statistic", ["gaussian_copula", "copula_omnibus"])
def test_controls_standardised_still_detect_a_control_without_dependence(statistic):
    rng = np.random.default_rng(61)
    x, y, labels = _controls_world(rng, 800, 0.5, 0.0)
    res = label_permutation_test((x, y), labels, statistic=statistic, standardize_within_groups=True,
                                 n_resamples=999, rng=62)
    assert res.pvalue == pytest.approx(1 / 1000)
    assert res.estimates[0] > 0.1 and abs(res.estimates[1]) < 0.03
    assert "standardised within each condition" in res.method


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: repairing_test(np.arange(5.0), np.arange(4.0)), "same length"),
        (lambda: repairing_test(np.arange(5.0), np.arange(5.0), statistic="pearson"), "statistic must be one of"),
        (lambda: repairing_test(np.arange(5.0), np.arange(5.0), alternative="bigger"), "alternative"),
        (lambda: repairing_test(np.arange(5.0), np.arange(5.0), n_resamples=0), "n_resamples"),
        (lambda: repairing_test(np.arange(5.0), np.arange(5.0) ** 2, blocks=[0, 0, 1, 1, 2]), "at least 2"),
        (lambda: repairing_test(np.arange(5.0), np.arange(5.0), rng="seed"), "rng"),
        (lambda: circular_shift_test(np.ones((2, 5)), np.ones((3, 5))), "trials"),
        (lambda: circular_shift_test(np.ones((2, 5)), np.ones((2, 5)), statistic="gaussian_copula"), "circular_shift_test"),
        (lambda: circular_shift_test([np.ones(5)], [np.ones(4)]), "trial 0"),
        (lambda: label_permutation_test(np.ones(5), ["main"] * 5), "pair"),
        (lambda: time_local_blocks(np.ones((2, 2)), size=4), "1-D"),
        (lambda: time_local_blocks(np.arange(4), size=4, within=[0, 1]), "entries"),
    ],
)
def test_bad_input_raises_plan_error(call, message):
    with pytest.raises(PlanError, match=message):
        call()


def test_label_test_breaks_ties_independently_per_column():
    """Independent binary x and y (e.g. CHSH outcomes): within-group ranks with ties broken by
    trial index would rank tied x and tied y in the same order, a dependence the data do not
    have (copula MI 0.05 and 0.06 nats here, binned difference 0.56); independent random keys per
    column leave them near 0."""
    rng = np.random.default_rng(63)
    n = 3000
    x = np.sign(rng.standard_normal(n))
    y = np.sign(rng.standard_normal(n))
    labels = np.where(rng.random(n) < 0.3, "control:c", "main")
    res = label_permutation_test((x, y), labels, statistic="copula_omnibus", n_resamples=99, rng=64)
    assert max(abs(e) for e in res.estimates) < 0.01
    assert abs(res.components["binned"][0]) < 0.05
