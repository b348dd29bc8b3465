"""Issue 18: the faster analysis computes what the reference (pre-speed-up) code computed.

The reference path is a verbatim copy of the old modules (tests/reference_analysis.py).
Where the algorithm is unchanged and only the work is arranged differently, results are
equal: bit for bit where the same floating-point operations are done (the label
permutation test: same permutations, same ranks, same sums), and to rounding where only
the order of a sum changed (the BCa intervals: the same resamples and the same normal
scores, summed as weighted sums over trials instead of over the resample's rows).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata

from corrlab.analysis import intervals as iv
from corrlab.analysis.mi import ResampledMI, batched_mi
from corrlab.analysis.permutation import label_permutation_test
from tests import reference_intervals as ref_iv
from tests import reference_permutation as ref_perm

RTOL = 1e-11  # rounding of sums taken in another order (values are O(0.01-1) nats)


def _data(rng, n, d=1, ties=False, rho=0.4):
    x = rng.standard_normal((n, d))
    y = rho * x + rng.standard_normal((n, d))
    if ties:  # discrete observables: many exact ties in each column
        x, y = np.round(x, 1), np.round(y, 1)
    return x, y


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("method", ["gaussian_copula", "gaussian"])
def test_resampled_mi_equals_batched_mi_of_the_gathered_resamples(d, ties, method):
    rng = np.random.default_rng(10 * d + ties)
    x, y = _data(rng, 240, d, ties)
    stat = ResampledMI(x, y, method)
    boot = rng.integers(0, 240, (40, 240))  # with replacement: copies of trials
    jack = np.stack([np.delete(np.arange(240), rng.choice(240, 7, replace=False)) for _ in range(30)])
    for idx in (boot, jack):
        np.testing.assert_allclose(stat(idx), batched_mi(x[idx], y[idx], method=method), rtol=RTOL, atol=1e-15)
    # a broadcast resample (the other sample in a jackknife of a difference) is computed once
    same = np.broadcast_to(np.arange(240), (5, 240))
    np.testing.assert_allclose(stat(same), batched_mi(x[None], y[None], method=method)[0], rtol=RTOL)


def test_carried_ranks_are_the_resamples_own_average_ranks():
    """The cumulative weights along the data's sort order give rankdata's average ranks of the
    resample (not the resampled ranks of the full sample), ties and copies included."""
    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal(50), 1)
    idx = rng.integers(0, 50, (1, 50))
    stat = ResampledMI(x, x + rng.standard_normal(50), "gaussian_copula")
    counts = stat.weights(idx)[0]
    order, first, stop, _ = stat.columns[0]
    ext = np.r_[0, np.cumsum(counts[order])]
    twice = ext[first] + ext[stop] + 1
    ranks_by_trial = np.empty(50)
    ranks_by_trial[order] = twice / 2
    np.testing.assert_array_equal(ranks_by_trial[idx[0]], rankdata(x[idx[0]], method="average"))
    assert not np.array_equal(ranks_by_trial[idx[0]], rankdata(x)[idx[0]])  # the trap named in the issue


@pytest.mark.parametrize("n, jackknife_max", [(150, 2000), (420, 120)])  # scipy's jackknife; the grouped one
@pytest.mark.parametrize("estimator", ["gaussian_copula", "gaussian"])
def test_mi_intervals_equal_the_reference(monkeypatch, n, jackknife_max, estimator):
    monkeypatch.setattr(iv, "JACKKNIFE_MAX", jackknife_max)
    monkeypatch.setattr(ref_iv, "JACKKNIFE_MAX", jackknife_max)
    rng = np.random.default_rng(n)
    x, y = _data(rng, n, d=2 if estimator == "gaussian" else 1)
    new = iv.mi_interval(x, y, estimator=estimator, n_resamples=499, rng=4)
    old = ref_iv.mi_interval(x, y, estimator=estimator, n_resamples=499, rng=4)
    assert new.method == old.method
    for a, b in ((new.estimate, old.estimate), (new.ci.low, old.ci.low), (new.ci.high, old.ci.high),
                 (new.standard_error, old.standard_error)):
        assert a == pytest.approx(b, rel=RTOL, abs=1e-15)
    x2, y2 = _data(rng, n // 3, rho=0.0)
    new = iv.mi_difference_interval((x[:, :1], y[:, :1]), (x2, y2), estimator=estimator, n_resamples=499, rng=5)
    old = ref_iv.mi_difference_interval((x[:, :1], y[:, :1]), (x2, y2), estimator=estimator, n_resamples=499, rng=5)
    assert (new.ci.low, new.ci.high, new.standard_error) == pytest.approx(
        (old.ci.low, old.ci.high, old.standard_error), rel=RTOL, abs=1e-15)


def test_an_mi_interval_at_the_boundary_is_handled_as_before():
    """Few trials: resamples repeat a trial or two and their MI is infinite (top of the distribution)."""
    x = np.array([0.1, 0.5, -0.3, 1.2, 0.7])
    y = np.array([0.2, 0.4, -0.1, 1.0, 0.9])
    new = iv.mi_interval(x, y, estimator="gaussian_copula", n_resamples=199, rng=1)
    old = ref_iv.mi_interval(x, y, estimator="gaussian_copula", n_resamples=199, rng=1)
    assert new.method == old.method
    assert (new.ci.low, new.ci.high) == pytest.approx((old.ci.low, old.ci.high), rel=RTOL)
    assert math.isinf(new.ci.high) == math.isinf(old.ci.high)


@pytest.mark.parametrize("statistic, d, blocked", [("copula_omnibus", 1, True), ("copula_omnibus", 2, False),
                                                   ("gaussian_copula", 1, False), ("gaussian", 2, True)])
def test_label_permutation_test_is_bit_for_bit_the_reference(statistic, d, blocked):
    rng = np.random.default_rng(7)
    n = 900
    x, y = _data(rng, n, d)
    labels = np.where(rng.random(n) < 0.7, "main", "control:break_L")
    kw = dict(statistic=statistic, groups=("main", "control:break_L"), n_resamples=499, rng=3,
              standardize_within_groups=True, blocks=np.arange(n) // 6 if blocked else None)
    new = label_permutation_test((x, y), labels, **kw)
    old = ref_perm.label_permutation_test((x, y), labels, **kw)
    assert new.pvalue == old.pvalue and new.statistic == old.statistic and new.components == old.components
    np.testing.assert_array_equal(new.null_distribution, old.null_distribution)
    for name, null in old.component_nulls.items():
        np.testing.assert_array_equal(new.component_nulls[name], null)


@pytest.mark.parametrize("n, ties", [(9, False), (300, False), (300, True), (2500, False)])
def test_anderson_permutation_pvalue_is_scipys(n, ties):
    """Same permutations, same formula: scipy's anderson_ksamp(method=PermutationMethod) p-value
    (n = 9: scipy enumerates every split, the exact test, and is called as before)."""
    from corrlab.analysis.nosignalling import no_signalling_test
    from tests.reference_nosignalling import no_signalling_test as reference

    rng = np.random.default_rng(n + ties)
    v = rng.standard_normal(n) + 0.3 * (np.arange(n) % 2)
    if ties:
        v = np.round(v, 1)
    s = np.arange(n) % 2
    new = no_signalling_test(v, s, margin=0.05, test="anderson", n_resamples=999, rng=2)
    old = reference(v, s, margin=0.05, test="anderson", n_resamples=999, rng=2)
    assert (new.statistic, new.pvalue) == (old.statistic, old.pvalue)
    if n == 2500:
        assert new.pvalue < 0.01  # the shift is seen: not a p-value that cannot move


def test_the_pipeline_with_threads_equals_the_reference_path(tmp_path, monkeypatch):
    """A whole analysis (default plan: copula omnibus, three estimators, controls, no-signalling,
    drift, serial, order) with the tasks on 2 threads equals the reference run task by task."""
    from corrlab.analysis.pipeline import analyze_dataset
    from tests.reference_analysis import use_reference
    from tests.synthetic import write_dataset

    path = write_dataset(tmp_path, "run", n_trials=150, samples=8, coupling=2.0, plan={"n_resamples": 199})
    monkeypatch.setenv("CORRLAB_ANALYSIS_THREADS", "2")
    new = analyze_dataset(path, interval_resamples=199).to_dict()
    with use_reference():
        old = analyze_dataset(path, interval_resamples=199).to_dict()
    _assert_close(new, old)
    assert new["conditions"]["main"]["pvalue"] < 0.05  # a real effect was analysed, not an empty shell


def _assert_close(a, b, where="results"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_close(u, v, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=RTOL, abs=1e-15, nan_ok=True), where
    else:
        assert a == b, where
