"""Intervals over trials: BCa against scipy.stats.bootstrap, jackknife against its textbook
formulas, and coverage of the KSG interval on simulated Gaussian data with known truth
(MI = -1/2 ln(1 - rho^2)); plus the trap: a bootstrap with replacement of KSG does not
cover (notes: n = 1e4, rho = 0.5, true 0.144 nats, bootstrap mean 1.108)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from corrlab.analysis.intervals import (
    IntervalResult,
    bca_interval,
    jackknife_interval,
    mi_difference_interval,
    mi_interval,
    subsampling_interval,
)
from corrlab.analysis.mi import gaussian_copula_mi, gaussian_mi, ksg_mi
from corrlab.errors import PlanError

RHO = 0.5
TRUTH = -0.5 * np.log(1 - RHO**2)  # 0.143841 nats


def _pair(rng, n, rho=RHO):
    x = rng.standard_normal(n)
    return x, rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)


def _coverage_se(level, replicates):
    return np.sqrt(level * (1 - level) / replicates)


# ----------------------------------------------------------------------------- BCa


def test_bca_equals_scipy_bootstrap_paired():
    rng = np.random.default_rng(0)
    x, y = _pair(rng, 80)

    def mi(a, b):
        return gaussian_mi(a, b)

    res = bca_interval((x, y), mi, paired=True, n_resamples=999, rng=5, batch=100)
    ref = stats.bootstrap((x, y), mi, paired=True, vectorized=False, n_resamples=999, rng=5, batch=100, method="BCa")
    assert isinstance(res, IntervalResult)
    assert res.ci.low == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert res.ci.high == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    assert res.standard_error == pytest.approx(ref.standard_error, rel=1e-12)
    assert res.estimate == pytest.approx(gaussian_mi(x, y))
    assert res.n_trials == (80,) and "BCa" in res.method


def test_bca_equals_scipy_bootstrap_for_independent_samples_and_rows():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(50), rng.standard_normal(70) + 0.3

    def diff(u, v, axis=-1):
        return np.mean(u, axis=axis) - np.mean(v, axis=axis)

    res = bca_interval((a, b), lambda u, v: diff(u, v), n_resamples=999, rng=6, batch=64)
    ref = stats.bootstrap((a, b), diff, n_resamples=999, rng=6, batch=64, method="BCa")
    assert (res.ci.low, res.ci.high) == pytest.approx(tuple(ref.confidence_interval), rel=1e-12)
    # (n, 2) rows keep x and y of a trial together, like paired=True on (x, y)
    x, y = _pair(rng, 60)
    rows = bca_interval((np.column_stack([x, y]),), lambda r: gaussian_mi(r[:, 0], r[:, 1]), n_resamples=499, rng=7)
    pairs = bca_interval((x, y), gaussian_mi, paired=True, n_resamples=499, rng=7)
    assert (rows.ci.low, rows.ci.high) == pytest.approx((pairs.ci.low, pairs.ci.high), rel=1e-12)


def test_bca_vectorized_statistic_matches_the_loop():
    rng = np.random.default_rng(2)
    x, y = _pair(rng, 50)

    def r_vec(a, b):
        a = a - a.mean(axis=-1, keepdims=True)
        b = b - b.mean(axis=-1, keepdims=True)
        return np.sum(a * b, axis=-1) / np.sqrt(np.sum(a * a, axis=-1) * np.sum(b * b, axis=-1))

    loop = bca_interval((x, y), lambda a, b: stats.pearsonr(a, b).statistic, paired=True, n_resamples=299, rng=8)
    vec = bca_interval((x, y), r_vec, paired=True, n_resamples=299, rng=8, vectorized=True)
    assert (vec.ci.low, vec.ci.high) == pytest.approx((loop.ci.low, loop.ci.high), rel=1e-10)


def _gaussian_mi_vec(a, b):
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    r2 = np.sum(a * b, axis=-1) ** 2 / (np.sum(a * a, axis=-1) * np.sum(b * b, axis=-1))
    return -0.5 * np.log1p(-r2)


def test_bca_covers_the_gaussian_mi_at_its_nominal_rate():
    rng = np.random.default_rng(3)
    replicates, level = 300, 0.9
    covered = 0
    for _ in range(replicates):
        x, y = _pair(rng, 200)
        res = bca_interval((x, y), _gaussian_mi_vec, paired=True, vectorized=True, n_resamples=999,
                           confidence_level=level, rng=rng)
        covered += res.ci.covers(TRUTH)
    assert abs(covered / replicates - level) <= 3 * _coverage_se(level, replicates)


def test_mi_interval_picks_bca_for_gaussian_estimators_and_subsampling_for_ksg():
    rng = np.random.default_rng(4)
    x, y = _pair(rng, 150)
    cop = mi_interval(x, y, n_resamples=499, rng=1)
    assert cop.estimate == pytest.approx(gaussian_copula_mi(x, y))
    assert "BCa" in cop.method and "copula" in cop.estimator
    assert cop.ci.low < cop.estimate < cop.ci.high
    ksg = mi_interval(x, y, estimator="ksg", n_resamples=50, rng=1)
    assert ksg.estimate == pytest.approx(ksg_mi(x, y))
    assert "without replacement" in ksg.method and "KSG" in ksg.estimator


# ----------------------------------------------------------------------------- KSG: subsampling


def test_subsampling_interval_follows_its_definition():
    """Replay the generator: subsamples of b = n/4 trials without replacement, se =
    sqrt(b/(n-b)) sd(theta_b), interval theta_n +/- z se."""
    rng = np.random.default_rng(5)
    x, y = _pair(rng, 200)
    res = subsampling_interval(x, y, n_resamples=60, rng=11)
    gen = np.random.default_rng(11)
    theta = ksg_mi(x, y)
    v = np.array([ksg_mi(x[i], y[i]) for i in (gen.choice(200, size=50, replace=False) for _ in range(60))])
    se = np.sqrt(50 / 150) * v.std(ddof=1)
    z = stats.norm.ppf(0.975)
    assert res.standard_error == pytest.approx(se, rel=1e-12)
    assert (res.ci.low, res.ci.high) == pytest.approx((theta - z * se, theta + z * se), rel=1e-12)
    assert res.estimate == pytest.approx(theta)
    assert "b = 50 of 200" in res.method and res.n_resamples == 60


def test_subsampling_recovers_the_variance_of_a_linear_statistic():
    """For a mean the subsampling variance is sigma^2 (1/b - 1/n): the sqrt(b/(n-b)) scale
    returns the plain standard error sigma / sqrt(n) (sqrt(b/n) alone would be 13% small)."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal(400)
    res = subsampling_interval(x, x, estimator=lambda a, b: float(np.mean(a)), n_resamples=4000, rng=15)
    assert res.standard_error == pytest.approx(x.std() / np.sqrt(400), rel=0.08)


def _ksg_coverage(replicates, n, m, seed, level=0.95):
    rng = np.random.default_rng(seed)
    covered = 0
    for _ in range(replicates):
        x, y = _pair(rng, n)
        covered += subsampling_interval(x, y, n_resamples=m, confidence_level=level, rng=rng).ci.covers(TRUTH)
    return covered / replicates


def test_ksg_subsampling_interval_covers_at_its_nominal_rate():
    replicates = 200
    coverage = _ksg_coverage(replicates, n=300, m=200, seed=6)
    assert abs(coverage - 0.95) <= 3 * _coverage_se(0.95, replicates)


@pytest.mark.slow
def test_ksg_subsampling_interval_covers_at_its_nominal_rate_many_replicates():
    replicates = 1000
    coverage = _ksg_coverage(replicates, n=500, m=400, seed=7)
    assert abs(coverage - 0.95) <= 3 * _coverage_se(0.95, replicates)


def test_bootstrap_with_replacement_of_ksg_does_not_cover():
    """The trap, documented: duplicated trials are zero-distance neighbours."""
    rng = np.random.default_rng(8)
    x, y = _pair(rng, 2000)
    # our estimator refuses a with-replacement resample outright ...
    with pytest.raises(PlanError, match="never bootstrap KSG with replacement"):
        stats.bootstrap((x, y), lambda a, b: ksg_mi(a, b), paired=True, vectorized=False, n_resamples=5,
                        method="percentile", rng=9)
    # ... and with ties broken by 1e-10 noise (what scikit-learn does) it is wildly off
    covered = 0
    means = []
    for _ in range(8):
        x, y = _pair(rng, 2000)
        boot = np.array([ksg_mi(x[i], y[i], jitter=1e-10, rng=rng) for i in (rng.integers(0, 2000, 2000) for _ in range(20))])
        lo, hi = np.quantile(boot, [0.025, 0.975])
        covered += lo <= TRUTH <= hi
        means.append(boot.mean())
    assert covered == 0
    assert np.mean(means) > 4 * TRUTH  # notes, n = 1e4: 1.108 against 0.144


# ----------------------------------------------------------------------------- jackknife


def test_delete_one_jackknife_textbook_formula():
    rng = np.random.default_rng(10)
    x, y = _pair(rng, 40)
    res = jackknife_interval(x, y, estimator="gaussian", confidence_level=0.9)
    n = 40
    theta = gaussian_mi(x, y)
    loo = np.array([gaussian_mi(np.delete(x, i), np.delete(y, i)) for i in range(n)])
    theta_j = n * theta - (n - 1) * loo.mean()
    se = np.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2))
    t = stats.t.ppf(0.95, n - 1)
    assert res.bias_corrected == pytest.approx(theta_j, rel=1e-10)
    assert res.standard_error == pytest.approx(se, rel=1e-10)
    assert (res.ci.low, res.ci.high) == pytest.approx((theta_j - t * se, theta_j + t * se), rel=1e-10)
    assert res.estimate == pytest.approx(theta)


def test_delete_a_block_jackknife_with_unequal_blocks_is_exact_for_the_mean():
    """Busing et al. weights: for the mean, the pseudo-values are the block means, the
    bias-corrected estimate is the overall mean, and the variance is
    (1/g) sum_j (mean_j - mean)^2 / (h_j - 1), h_j = n / n_j."""
    rng = np.random.default_rng(11)
    sizes = np.array([3, 7, 5, 9, 4, 6])
    blocks = np.repeat(np.arange(sizes.size), sizes)
    x = rng.standard_normal(blocks.size)
    res = jackknife_interval(x, x, estimator=lambda a, b: float(np.mean(a)), blocks=blocks)
    n, g = blocks.size, sizes.size
    block_means = np.array([x[blocks == j].mean() for j in range(g)])
    h = n / sizes
    var = np.sum((block_means - x.mean()) ** 2 / (h - 1)) / g
    assert res.bias_corrected == pytest.approx(x.mean(), rel=1e-12)
    assert res.standard_error == pytest.approx(np.sqrt(var), rel=1e-12)
    assert "delete-one-block" in res.method


def test_jackknife_refuses_ksg():
    rng = np.random.default_rng(12)
    x, y = _pair(rng, 50)
    with pytest.raises(PlanError, match="not valid for the KSG"):
        jackknife_interval(x, y, estimator="ksg")


def test_jackknife_covers_the_gaussian_mi():
    rng = np.random.default_rng(16)
    replicates = 200
    covered = 0
    for _ in range(replicates):
        x, y = _pair(rng, 150)
        covered += jackknife_interval(x, y, estimator="gaussian", blocks=np.arange(150) % 15).ci.covers(TRUTH)
    assert abs(covered / replicates - 0.95) <= 3 * _coverage_se(0.95, replicates)


# ----------------------------------------------------------------------------- differences


def test_mi_difference_interval_gaussian_and_ksg():
    rng = np.random.default_rng(13)
    main = _pair(rng, 200, 0.6)
    control = _pair(rng, 150, 0.0)
    g = mi_difference_interval(main, control, estimator="gaussian", n_resamples=999, rng=1)
    assert g.estimate == pytest.approx(gaussian_mi(*main) - gaussian_mi(*control))
    assert g.n_trials == (200, 150)
    assert g.ci.low > 0  # rho 0.6 against 0: MI 0.223
    k = mi_difference_interval(main, control, estimator="ksg", n_resamples=60, rng=1)
    assert k.estimate == pytest.approx(ksg_mi(*main) - ksg_mi(*control))
    assert k.ci.low < -0.5 * np.log(1 - 0.36) < k.ci.high
    assert "each condition" in k.method


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: subsampling_interval(np.arange(10.0), np.arange(9.0)), "same length"),
        (lambda: subsampling_interval(np.arange(10.0), np.arange(10.0) ** 2, subsample_fraction=1.0), "subsample_fraction"),
        (lambda: subsampling_interval(np.arange(10.0), np.arange(10.0) ** 2, estimator="mine"), "estimator must be one of"),
        (lambda: subsampling_interval(np.arange(5.0), np.arange(5.0) ** 2), "too few"),
        (lambda: mi_interval(np.arange(10.0), np.arange(10.0) ** 2, confidence_level=95), "confidence_level"),
        (lambda: bca_interval(np.arange(10.0), np.mean), "sequence of per-trial arrays"),
        (lambda: bca_interval((np.arange(10.0), np.arange(9.0)), np.mean, paired=True), "same number of trials"),
        (lambda: jackknife_interval(np.arange(10.0), np.arange(10.0) ** 2, blocks=[0] * 5 + [1] * 5), "at least 3"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(PlanError, match=message):
        call()


def test_bca_at_the_boundary_falls_back_to_a_percentile_interval_that_holds_the_estimate():
    # Ten trials whose copula MI is ~1e-7: every resample (duplicated trials) lies above
    # it, BCa's bias correction is infinite and scipy returns nan.
    x = np.array([-5.683, -0.866, -12.956, 4.554, -4.391, 0.474, 4.430, 2.543, -0.637, 18.876])
    y = np.array([-10.118, 7.709, 8.554, 15.253, 11.997, -5.296, 2.852, -14.716, -19.070, -2.307])
    r = mi_interval(x, y, estimator="gaussian_copula", n_resamples=199, rng=0)
    assert r.estimate < 1e-3
    assert r.ci.low <= r.estimate < r.ci.high < 2.0
    assert "BCa undefined" in r.method and "percentile" in r.ci.method
    # where BCa is defined it is used
    rng = np.random.default_rng(1)
    x = rng.standard_normal(60)
    r = mi_interval(x, 0.8 * x + rng.standard_normal(60), estimator="gaussian_copula", n_resamples=199, rng=0)
    assert r.method.startswith("BCa") and r.ci.low < r.estimate < r.ci.high


def test_bca_above_the_jackknife_limit_uses_grouped_acceleration_and_agrees_with_scipy(monkeypatch):
    import corrlab.analysis.intervals as iv

    rng = np.random.default_rng(3)
    x = rng.standard_normal(600)
    y = 0.4 * x + rng.standard_normal(600)
    full = mi_interval(x, y, estimator="gaussian_copula", n_resamples=999, rng=5)
    monkeypatch.setattr(iv, "JACKKNIFE_MAX", 200)
    grouped = mi_interval(x, y, estimator="gaussian_copula", n_resamples=999, rng=5)
    assert "delete-group jackknife, 200 groups" in grouped.method and "jackknife" not in full.method
    assert grouped.estimate == full.estimate
    # same resamples; only the acceleration's estimate differs
    assert grouped.ci.low == pytest.approx(full.ci.low, rel=0.03)
    assert grouped.ci.high == pytest.approx(full.ci.high, rel=0.03)
    diff = mi_difference_interval((x[:300], y[:300]), (x[300:], y[300:]), estimator="gaussian", n_resamples=999, rng=6)
    monkeypatch.setattr(iv, "JACKKNIFE_MAX", 100)
    diff_g = mi_difference_interval((x[:300], y[:300]), (x[300:], y[300:]), estimator="gaussian", n_resamples=999,
                                    rng=6)
    assert diff_g.ci.low == pytest.approx(diff.ci.low, abs=0.01)
    assert diff_g.ci.high == pytest.approx(diff.ci.high, abs=0.01)
