"""Permutation tests: p-values against scipy.stats.permutation_test, exact identities of the
resampling schemes, and calibration on autocorrelated data (the notes' AR(1) trap:
independent AR(1) channels, phi = 0.95, 40 trials x 1000 samples: an i.i.d. shuffle gave
0.637 false positives at alpha = 0.05, circular shifts 0.043, trial re-pairing 0.047)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal, stats

from corrlab.analysis.mi import gaussian_copula_mi, gaussian_mi, ksg_mi
from corrlab.analysis.permutation import (
    LabelPermutationResult,
    PermutationTestResult,
    circular_shift_test,
    label_permutation_test,
    random_derangements,
    repairing_test,
)
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
        slow = repairing_test(x, y, statistic=lambda a, b: fn(a, b), n_resamples=300, rng=11)
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
        slow = label_permutation_test((x, y), labels, statistic=lambda a, b: fn(a, b), n_resamples=200, rng=43)
        np.testing.assert_allclose(fast.null_distribution, slow.null_distribution, rtol=1e-8, atol=1e-12)


def test_label_permutation_multivariate_quadratures(two_conditions):
    rng = np.random.default_rng(44)
    x, y, labels = two_conditions
    xq = np.column_stack([x, rng.standard_normal(len(x))])
    yq = np.column_stack([y, rng.standard_normal(len(y))])
    for stat, fn in (("gaussian", gaussian_mi), ("gaussian_copula", gaussian_copula_mi)):
        fast = label_permutation_test((xq, yq), labels, statistic=stat, n_resamples=100, rng=45)
        slow = label_permutation_test((xq, yq), labels, statistic=lambda a, b: fn(a, b), n_resamples=100, rng=45)
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
    ],
)
def test_bad_input_raises_plan_error(call, message):
    with pytest.raises(PlanError, match=message):
        call()
