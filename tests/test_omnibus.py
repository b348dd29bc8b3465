"""The omnibus dependence statistic ("copula_omnibus"): the binned rank MI, its exact min-p
combination with the Gaussian-copula MI over the same re-pairings, and what it buys.

Worlds (seeded): y = x**2 + noise, where the copula MI has no power (its rejection rate is
alpha) and the binned MI sees the dependence; a Gaussian pair, where the combination must
keep nearly all of the copula's power; independent pairs, where the combination must hold
alpha (it is exact by construction: min-p over the same m + 1 exchangeable statistics).
"""

from __future__ import annotations

import numpy as np
import pytest
from corrlab.analysis.mi import (
    binned_mi,
    gaussian_copula_mi,
    gaussian_mi,
    normal_scores,
    omnibus_bins,
    rank_codes,
    within_group_ranks,
)
from corrlab.analysis.permutation import (
    _one_hot,
    _Repairing,
    label_permutation_test,
    random_derangements,
    repairing_test,
    time_local_blocks,
)
from scipy import stats

from corrlab.errors import PlanError

ALPHA = 0.05


def _rate(pvalues):
    return float(np.mean(np.asarray(pvalues) <= ALPHA))


def _hand_min_p(observed: dict, nulls: dict) -> float:
    """The min-p combination written out: every one of the m + 1 values ranked in each null."""
    names = list(observed)
    values = {k: np.concatenate([[observed[k]], nulls[k]]) for k in names}
    total = len(values[names[0]])
    p = {k: np.array([np.sum(v >= v[i] - abs(v[i]) * 1e-13) for i in range(total)]) / total
         for k, v in values.items()}
    minp = np.minimum(*[p[k] for k in names])
    return float(np.sum(minp <= minp[0]) / total)


# ----------------------------------------------------------------------------- the binned MI


def test_omnibus_bins_follow_the_declared_rule():
    # clamp(round(sqrt(n / 20)), 3, 10)
    assert [omnibus_bins(n) for n in (10, 100, 300, 500, 1000, 2000, 20000)] == [3, 3, 4, 5, 7, 10, 10]


def test_binned_mi_is_the_g_statistic_of_the_quantile_table():
    rng = np.random.default_rng(1)
    n = 700  # K = 6 cells per side: not a divisor of n, so the cells hold 116 or 117
    x = rng.standard_normal(n)
    y = np.sin(2 * x) + rng.standard_normal(n)
    k = omnibus_bins(n)
    rx = np.argsort(np.argsort(x)) + 1
    ry = np.argsort(np.argsort(y)) + 1
    table = np.zeros((k, k))
    np.add.at(table, (np.floor(k * (rx - 0.5) / n).astype(int), np.floor(k * (ry - 0.5) / n).astype(int)), 1)
    g = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")[0]
    assert binned_mi(x, y) == pytest.approx(g / (2 * n), rel=1e-12)
    assert table.sum(axis=1).min() >= n // k  # equal-count cells
    # invariant under monotone transforms of each side, like every rank statistic
    assert binned_mi(np.exp(x), y**3) == pytest.approx(binned_mi(x, y), rel=1e-12)


def test_ranks_and_normal_scores_within_groups_are_those_of_each_group():
    rng = np.random.default_rng(2)
    x = np.round(rng.standard_normal((90, 2)), 1)  # ties, to check the average ranks
    groups = rng.integers(0, 4, 90)
    ranks, sizes = within_group_ranks(x, groups)
    scores = normal_scores(x, groups=groups)
    for g in range(4):
        sel = groups == g
        np.testing.assert_array_equal(ranks[sel], stats.rankdata(x[sel], axis=0))
        assert np.all(sizes[sel] == sel.sum())
        np.testing.assert_allclose(scores[sel], normal_scores(x[sel]), rtol=1e-14)
    codes, cells = rank_codes(x, 9, groups=groups)  # two columns: 3 bins each, 9 cells
    assert cells == 9 and codes.min() == 0 and codes.max() == 8


# ----------------------------------------------------------------------------- re-pairing test


@pytest.mark.parametrize("case", ["one block", "few blocks", "many blocks", "many blocks, standardised"])
def test_omnibus_components_are_the_statistics_of_the_same_re_pairings(case):
    """Resample by resample, each component is its statistic on the re-paired data (the same
    derangements as random_derangements with the same seed), and the p-value is the min-p
    combination computed by hand."""
    rng = np.random.default_rng(3)
    n, m = 600, 150
    x = rng.standard_normal(n)
    y = x**2 + 2.0 * rng.standard_normal(n) + 0.1 * x
    blocks = {"one block": None, "few blocks": np.repeat(np.arange(6), 100),
              "many blocks": time_local_blocks(np.arange(n), size=8),
              "many blocks, standardised": time_local_blocks(np.arange(n), size=8)}[case]
    std = case.endswith("standardised")
    res = repairing_test(x, y, statistic="copula_omnibus", n_resamples=m, blocks=blocks,
                         standardize_within_blocks=std, rng=4)
    perms = random_derangements(n, m, blocks=blocks, rng=4)
    groups = blocks if std else None
    u, v = normal_scores(x, groups=groups), normal_scores(y, groups=groups)
    copula = np.array([gaussian_mi(u, v[p]) for p in perms])
    binned = np.array([binned_mi(x, y[p], groups=groups) for p in perms])
    np.testing.assert_allclose(res.null_distribution, copula, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(res.component_nulls["binned"], binned, rtol=1e-9, atol=1e-13)
    assert res.statistic == pytest.approx(gaussian_mi(u, v), rel=1e-10)
    assert res.components["binned"][0] == pytest.approx(binned_mi(x, y, groups=groups), rel=1e-12)
    assert res.components["gaussian_copula"][0] == res.statistic
    expected = _hand_min_p({k: v[0] for k, v in res.components.items()}, res.component_nulls)
    assert res.pvalue == pytest.approx(expected, abs=1e-12)
    assert res.pvalue >= min(p for _, p in res.components.values())  # multiplicity is paid
    assert "min-p combined" in res.estimator and "binned" in res.to_dict()["components"]
    if std:
        assert "standardised within each block" in res.method
    if blocks is not None:
        assert np.all(np.asarray(blocks)[perms] == np.asarray(blocks))


def test_both_ways_of_counting_the_binned_tables_agree_on_many_blocks():
    """The FFT tables (few, large blocks) and the windowed gather of codes (many small blocks)
    must give the same contingency table for every resample, here on 80 blocks of 3 sizes."""
    rng = np.random.default_rng(5)
    n = 700
    codes_blocks = time_local_blocks(rng.permutation(n), size=8, within=np.repeat([0, 1, 2], [250, 250, 200]))
    assert len(np.unique(codes_blocks)) > 64  # the vectorised draw
    scheme = _Repairing(codes_blocks, 300, np.random.default_rng(6))
    ca = rng.integers(0, 4, n)
    cb = rng.integers(0, 5, n)
    rel, lags = scheme.draw(np.arange(300))
    by_fft = np.rint(scheme.cross_moments(scheme.cross_tables(_one_hot(ca, 4), _one_hot(cb, 5)), rel, lags))
    by_gather = scheme.joint_counts(ca, cb, 5, 20, rel, lags)
    np.testing.assert_array_equal(by_fft.reshape(300, 20), by_gather)
    perms = scheme.permutations(rel, lags)
    direct = np.stack([np.bincount(ca * 5 + cb[p], minlength=20) for p in perms])
    np.testing.assert_array_equal(by_gather, direct)


def test_omnibus_sees_a_square_law_where_the_copula_does_not():
    """y = x**2 + noise (sd 2): the copula MI rejects at about alpha, the omnibus nearly always."""
    rng = np.random.default_rng(7)
    n, replicates = 300, 60
    p_copula, p_omnibus = [], []
    for i in range(replicates):
        x = rng.standard_normal(n)
        y = x**2 + 2.0 * rng.standard_normal(n)
        p_copula.append(repairing_test(x, y, statistic="gaussian_copula", n_resamples=199, rng=i).pvalue)
        p_omnibus.append(repairing_test(x, y, statistic="copula_omnibus", n_resamples=199, rng=i).pvalue)
    print(f"\ny = x^2 + N(0, 2^2), n = {n}, {replicates} replicates: rejection at {ALPHA}: "
          f"copula {_rate(p_copula):.2f}, omnibus {_rate(p_omnibus):.2f}")
    assert _rate(p_copula) <= 0.15
    assert _rate(p_omnibus) >= 0.9


def test_omnibus_holds_alpha_under_independence():
    rng = np.random.default_rng(8)
    replicates = 400
    pv = [repairing_test(rng.standard_normal(120), rng.standard_t(3, 120), statistic="copula_omnibus",
                         n_resamples=99, rng=i).pvalue for i in range(replicates)]
    rate = _rate(pv)
    print(f"\nindependent pairs, n = 120, {replicates} replicates: omnibus rejection at {ALPHA}: {rate:.3f}")
    # binomial(400, 0.05): 0.05 +- 3.4 sd
    assert 0.013 <= rate <= 0.088
    assert stats.kstest(pv, "uniform").pvalue > 0.001  # p-values on a grid of 1/100: coarse check


@pytest.mark.slow
def test_omnibus_keeps_the_copula_power_on_gaussian_data_and_gains_on_a_square_law():
    """The numbers in the report: rho = 0.1, n = 1000, 300 replicates, m = 499."""
    rng = np.random.default_rng(9)
    n, replicates, m = 1000, 300, 499
    rho = 0.1
    gauss = {"gaussian_copula": [], "copula_omnibus": []}
    square = {"gaussian_copula": [], "copula_omnibus": []}
    for i in range(replicates):
        x = rng.standard_normal(n)
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
        y2 = x**2 + 4.0 * rng.standard_normal(n)
        for stat, pvalues in gauss.items():
            pvalues.append(repairing_test(x, y, statistic=stat, n_resamples=m, rng=i).pvalue)
            square[stat].append(repairing_test(x, y2, statistic=stat, n_resamples=m, rng=i).pvalue)
    pg = {k: _rate(v) for k, v in gauss.items()}
    ps = {k: _rate(v) for k, v in square.items()}
    print(f"\nGaussian rho = {rho}, n = {n}, {replicates} replicates, m = {m}: power copula "
          f"{pg['gaussian_copula']:.3f}, omnibus {pg['copula_omnibus']:.3f}")
    print(f"y = x^2 + N(0, 4^2), n = {n}: power copula {ps['gaussian_copula']:.3f}, omnibus {ps['copula_omnibus']:.3f}")
    assert pg["copula_omnibus"] >= pg["gaussian_copula"] - 0.08
    assert ps["gaussian_copula"] <= 0.12 and ps["copula_omnibus"] >= 0.8


# ----------------------------------------------------------------------------- label test


def test_label_omnibus_components_are_the_differences_per_group():
    rng = np.random.default_rng(10)
    n = 240
    x = rng.standard_normal(n)
    y = np.where(np.arange(n) < 160, x**2, 0.0) + rng.standard_normal(n)
    labels = np.where(np.arange(n) < 160, "main", "control:c")
    res = label_permutation_test((x, y), labels, statistic="copula_omnibus", n_resamples=120, rng=11)
    main, ctl = labels == "main", labels != "main"
    assert res.components["binned"][0] == pytest.approx(binned_mi(x[main], y[main]) - binned_mi(x[ctl], y[ctl]),
                                                         rel=1e-12)
    assert res.statistic == pytest.approx(gaussian_copula_mi(x[main], y[main]) - gaussian_copula_mi(x[ctl], y[ctl]),
                                          rel=1e-10)
    # the same label permutations as the per-resample definition (one batch, same seed)
    slow_b = label_permutation_test((x, y), labels, statistic=lambda a, b: binned_mi(a, b), n_resamples=120, rng=11)
    slow_c = label_permutation_test((x, y), labels, statistic=gaussian_copula_mi, n_resamples=120, rng=11)
    np.testing.assert_allclose(res.component_nulls["binned"], slow_b.null_distribution, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(res.null_distribution, slow_c.null_distribution, rtol=1e-9, atol=1e-12)
    expected = _hand_min_p({k: v[0] for k, v in res.components.items()}, res.component_nulls)
    assert res.pvalue == pytest.approx(expected, abs=1e-12)
    assert res.components["binned"][1] < 0.05  # the square law in main only: binned sees it


def test_standardising_needs_a_named_statistic():
    x = np.arange(10.0)
    with pytest.raises(PlanError, match="standardize_within_blocks"):
        repairing_test(x, x[::-1], statistic=lambda a, b: 0.0, standardize_within_blocks=True)
    with pytest.raises(PlanError, match="standardize_within_groups"):
        label_permutation_test((x, x), np.repeat(["main", "c"], 5), statistic=lambda a, b: 0.0,
                               standardize_within_groups=True)


# ----------------------------------------------------------------------------- the plan


def test_plan_declares_the_omnibus_and_time_blocks_without_changing_recorded_hashes():
    from corrlab.plan import AnalysisPlan, load_plan

    # the hash of a plan recorded before these fields existed (computed with the plan module of
    # commit 4b908d1): statistic stated explicitly, time_block_trials at its default
    recorded = {"statistic": "gaussian_copula"}
    assert load_plan(recorded).sha256 == "de9d5b00833ad8ae1508dc520c342f16c8d32b612014f4c29cda9f5ffa921e4d"
    assert "time_block_trials" not in load_plan(recorded).to_json()
    assert load_plan({"statistic": "copula_omnibus"}).statistic == "copula_omnibus"
    assert AnalysisPlan(time_block_trials=0).to_json()["time_block_trials"] == 0  # not the default: recorded
    assert AnalysisPlan(time_block_trials=64).sha256 != load_plan(recorded).sha256
    with pytest.raises(PlanError, match="time_block_trials"):
        load_plan({"time_block_trials": 2})
    with pytest.raises(PlanError, match="statistic"):
        load_plan({"statistic": "omnibus"})
