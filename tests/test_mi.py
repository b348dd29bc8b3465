"""Mutual information estimators against independent references.

References: scikit-learn's ``mutual_info_regression`` (KSG, on cases where it does not clip),
a brute-force O(n^2) KSG written here from the paper, ``-1/2 ln(1 - rho^2)`` and the
Gaussian log-determinant formula, scipy's Pearson r and rank functions.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import digamma

from corrlab.analysis.mi import (
    describe_estimator,
    gaussian_copula_mi,
    gaussian_mi,
    ksg_mi,
    mutual_information,
    normal_scores,
)
from corrlab.errors import PlanError


def _sklearn_preprocessed(x, y, seed):
    """The exact inputs mutual_info_regression feeds its KSG: unit scale + 1e-10 noise."""
    rs = np.random.RandomState(seed)
    X = x.reshape(-1, 1) / x.std()
    X = X + 1e-10 * np.maximum(1, np.mean(np.abs(X), axis=0)) * rs.standard_normal(size=X.shape)
    Y = y / y.std()
    Y = Y + 1e-10 * max(1, np.mean(np.abs(Y))) * rs.standard_normal(size=Y.shape)
    return X[:, 0], Y


def _brute_ksg(x, y, k):
    """KSG algorithm 1 straight from Kraskov et al. (2004), eq. (8), O(n^2)."""
    x = x.reshape(len(x), -1) / x.reshape(len(x), -1).std(axis=0)
    y = y.reshape(len(y), -1) / y.reshape(len(y), -1).std(axis=0)
    n = len(x)
    dx = np.max(np.abs(x[:, None, :] - x[None, :, :]), axis=-1)
    dy = np.max(np.abs(y[:, None, :] - y[None, :, :]), axis=-1)
    dz = np.maximum(dx, dy)
    np.fill_diagonal(dz, np.inf)
    eps = np.sort(dz, axis=1)[:, k - 1]
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dy, np.inf)
    nx = np.sum(dx < eps[:, None], axis=1)
    ny = np.sum(dy < eps[:, None], axis=1)
    return digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))


def _gaussian_pair(rng, n, rho):
    x = rng.standard_normal(n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    return x, y


@pytest.mark.parametrize(
    "n, rho, k, transform",
    [
        (500, 0.5, 3, None),
        (2000, 0.3, 3, None),
        (2000, 0.8, 5, None),
        (5000, 0.6, 3, np.exp),  # a monotone, skewing transform of x
        (20000, 0.5, 3, None),
    ],
)
def test_ksg_matches_sklearn_on_positive_cases(n, rho, k, transform):
    from sklearn.feature_selection import mutual_info_regression

    rng = np.random.default_rng(n + k)
    x, y = _gaussian_pair(rng, n, rho)
    if transform is not None:
        x = transform(x)
    reference = mutual_info_regression(x.reshape(-1, 1), y, n_neighbors=k, random_state=7)[0]
    assert reference > 0  # sklearn clips at 0; only compare where it does not
    xs, ys = _sklearn_preprocessed(x, y, 7)
    assert ksg_mi(xs, ys, k=k) == pytest.approx(reference, abs=1e-3)
    # without sklearn's 1e-10 noise the estimate is the same to far better than 1e-3
    assert ksg_mi(x, y, k=k) == pytest.approx(reference, abs=1e-3)


@pytest.mark.parametrize("dx, dy, k", [(1, 1, 3), (2, 1, 4), (2, 2, 3), (3, 2, 1)])
def test_ksg_matches_bruteforce_definition(dx, dy, k):
    rng = np.random.default_rng(10 * dx + dy)
    n = 300
    x = rng.standard_normal((n, dx))
    y = x[:, :1] * 0.7 + rng.standard_normal((n, dy))
    y[:, 0] = y[:, 0] ** 3  # not Gaussian
    got = ksg_mi(x if dx > 1 else x[:, 0], y if dy > 1 else y[:, 0], k=k)
    assert got == pytest.approx(_brute_ksg(x, y, k), abs=1e-10)


def test_ksg_converges_to_gaussian_truth():
    rng = np.random.default_rng(1)
    x, y = _gaussian_pair(rng, 50_000, 0.5)
    truth = -0.5 * np.log(1 - 0.25)  # 0.143841
    assert ksg_mi(x, y) == pytest.approx(truth, abs=0.01)


def test_ksg_two_dimensional_gaussian_truth():
    rng = np.random.default_rng(2)
    n = 20_000
    cov = np.array([[1.0, 0.2, 0.5, 0.1], [0.2, 1.0, 0.0, 0.4], [0.5, 0.0, 1.0, 0.3], [0.1, 0.4, 0.3, 1.0]])
    z = rng.multivariate_normal(np.zeros(4), cov, size=n)
    truth = 0.5 * (np.linalg.slogdet(cov[:2, :2])[1] + np.linalg.slogdet(cov[2:, 2:])[1] - np.linalg.slogdet(cov)[1])
    assert ksg_mi(z[:, :2], z[:, 2:]) == pytest.approx(truth, abs=0.02)


def test_ksg_is_not_clipped_under_independence():
    rng = np.random.default_rng(3)
    values = np.array([ksg_mi(rng.standard_normal(1000), rng.standard_normal(1000)) for _ in range(40)])
    assert np.all(values != 0.0)
    assert 0.2 < np.mean(values < 0) < 0.8  # sklearn: 47.7% exactly 0; here a spread around 0
    assert abs(values.mean()) < 0.01


def test_ksg_is_invariant_to_the_scale_of_each_side():
    rng = np.random.default_rng(4)
    x, y = _gaussian_pair(rng, 3000, 0.4)
    assert ksg_mi(1e6 * x + 3, 1e-3 * y) == pytest.approx(ksg_mi(x, y), abs=1e-9)


def test_ksg_refuses_duplicates_and_jitter_breaks_ties():
    rng = np.random.default_rng(5)
    x, y = _gaussian_pair(rng, 1000, 0.5)
    idx = rng.integers(0, 1000, 1000)  # a bootstrap resample: many duplicated pairs
    with pytest.raises(PlanError, match="duplicates"):
        ksg_mi(x[idx], y[idx])
    jittered = ksg_mi(x[idx], y[idx], jitter=1e-10, rng=0)
    assert jittered > 0.5  # duplicates as zero-distance neighbours: far above the truth 0.144


def test_ksg_workers_give_the_same_value():
    rng = np.random.default_rng(6)
    x, y = _gaussian_pair(rng, 5000, 0.5)
    assert ksg_mi(x, y, workers=-1) == ksg_mi(x, y, workers=1)


def test_gaussian_mi_equals_closed_form_in_1d():
    rng = np.random.default_rng(7)
    x, y = _gaussian_pair(rng, 400, 0.6)
    r = stats.pearsonr(x, y).statistic
    assert gaussian_mi(x, y) == pytest.approx(-0.5 * np.log(1 - r**2), rel=1e-12)


def test_gaussian_mi_multivariate_log_determinant_form():
    rng = np.random.default_rng(8)
    z = rng.standard_normal((500, 5)) @ rng.standard_normal((5, 5))
    x, y = z[:, :2], z[:, 2:]
    c = np.cov(z, rowvar=False)
    expected = 0.5 * (np.linalg.slogdet(c[:2, :2])[1] + np.linalg.slogdet(c[2:, 2:])[1] - np.linalg.slogdet(c)[1])
    assert gaussian_mi(x, y) == pytest.approx(expected, rel=1e-10)
    # -1/2 ln det R with R the joint correlation matrix when each side is 1-D
    r = np.corrcoef(z[:, 0], z[:, 3])
    assert gaussian_mi(z[:, 0], z[:, 3]) == pytest.approx(-0.5 * np.linalg.slogdet(r)[1], rel=1e-10)


def test_gaussian_mi_is_infinite_for_exact_linear_dependence():
    x = np.arange(10.0)
    assert gaussian_mi(x, 2 * x + 1) == np.inf


def test_gaussian_copula_mi_is_gaussian_mi_of_normal_scores():
    rng = np.random.default_rng(9)
    x, y = _gaussian_pair(rng, 300, 0.5)
    n = len(x)
    u = stats.norm.ppf(stats.rankdata(x) / (n + 1))
    v = stats.norm.ppf(stats.rankdata(y) / (n + 1))
    r = stats.pearsonr(u, v).statistic
    assert gaussian_copula_mi(x, y) == pytest.approx(-0.5 * np.log(1 - r**2), rel=1e-12)
    assert np.allclose(normal_scores(x), u)


def test_gaussian_copula_mi_ignores_monotone_transforms_and_finds_the_truth():
    rng = np.random.default_rng(10)
    x, y = _gaussian_pair(rng, 20_000, 0.5)
    base = gaussian_copula_mi(x, y)
    assert gaussian_copula_mi(np.exp(x), y**3) == pytest.approx(base, rel=1e-12)
    assert base == pytest.approx(-0.5 * np.log(0.75), abs=0.01)
    # the plain Gaussian MI is fooled by the transform, the copula is not
    assert gaussian_mi(np.exp(x), y**3) < base - 0.02


def test_dispatcher_and_descriptions():
    rng = np.random.default_rng(11)
    x, y = _gaussian_pair(rng, 200, 0.5)
    assert mutual_information(x, y, method="ksg", k=4) == ksg_mi(x, y, k=4)
    assert mutual_information(x, y, method="gaussian") == gaussian_mi(x, y)
    assert mutual_information(x, y, method="gaussian_copula") == gaussian_copula_mi(x, y)
    assert "k=4" in describe_estimator("ksg", 4) and "unclipped" in describe_estimator("ksg")
    with pytest.raises(PlanError, match="method must be one of 'ksg', 'gaussian_copula', 'gaussian'"):
        mutual_information(x, y, method="kraskov")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ksg_mi([1.0, 2.0, 3.0], [1.0, 2.0]), "same length"),
        (lambda: ksg_mi([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]), "non-finite"),
        (lambda: ksg_mi(np.arange(4.0), np.arange(4.0) ** 2, k=4), "k must be smaller"),
        (lambda: ksg_mi(np.arange(5.0), np.arange(5.0), k=0), "k must be an integer"),
        (lambda: ksg_mi(np.ones(5), np.arange(5.0)), "constant column"),
        (lambda: ksg_mi(np.arange(5.0), np.arange(5.0), jitter=-1), "jitter"),
        (lambda: ksg_mi(np.arange(5.0), np.arange(5.0), workers=0), "workers"),
        (lambda: gaussian_mi(np.ones(5), np.arange(5.0)), "constant or linearly dependent"),
        (lambda: gaussian_mi(np.zeros((4, 2, 2)), np.zeros(4)), "1-D"),
    ],
)
def test_bad_input_raises_plan_error_naming_the_problem(call, message):
    with pytest.raises(PlanError, match=message):
        call()


def test_batched_mi_equals_the_scalar_estimators_and_marks_degenerate_resamples():
    from corrlab.analysis.mi import batched_mi

    rng = np.random.default_rng(7)
    for d in (1, 2):
        x = rng.standard_normal((6, 40, d))
        y = 0.6 * x[..., :1] + rng.standard_normal((6, 40, d))
        x[:, :8] = x[:, :1]  # ties, as a bootstrap resample has them
        for method, scalar in (("gaussian", gaussian_mi), ("gaussian_copula", gaussian_copula_mi)):
            want = [scalar(a, b) for a, b in zip(x, y)]
            np.testing.assert_allclose(batched_mi(x, y, method=method), want, rtol=0, atol=1e-12)
    x = rng.standard_normal((2, 30, 1))
    x[1] = 3.0  # a resample that drew one trial only
    out = batched_mi(x, rng.standard_normal((2, 30, 1)), method="gaussian")
    assert np.isfinite(out[0]) and np.isnan(out[1])
