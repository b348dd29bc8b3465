"""No-signalling checks, drift, and the Holm correction.

No-signalling says that one side's local outcome statistics do not depend on the *remote*
side's measurement setting. With the settings randomized per trial, a dependence would
be signalling (or, in practice, drift, crosstalk or a bookkeeping error), which caps the
evidence ladder. It is an equivalence question, so :func:`no_signalling_test` reports

* a significance test of "the local marginal depends on the remote setting": the G-test
  (likelihood-ratio chi-square, 1 df, no continuity correction) on the 2x2 table of
  remote setting x binarized outcome, or the Anderson-Darling k-sample test on the raw
  local values;
* the difference of the proportions of +1 outcomes between remote settings 1 and 0 with
  its confidence interval (Agresti-Caffo);
* a TOST (two one-sided tests, statsmodels ``tost_proportions_2indep``, Agresti-Caffo)
  that the difference lies inside ``(-margin, margin)``.

The 2x2 table has rows = remote setting (0, 1) and columns = local outcome (+1, -1), the
outcome being +1 when the local value is ``>= binarize_at`` (the CHSH convention, sign
with 0 -> +1). The difference is ``P(+1 | remote 1) - P(+1 | remote 0)``. On the
reference table [[2540, 2578], [2413, 2519]]: G = 0.49715, p = 0.48076, 95% CI
(-0.0266, 0.0125), TOST p = 0.0106 at margin 0.03.

:func:`drift_test` checks whether a per-trial quantity drifts over the run (the usual
cause of apparent signalling); :func:`holm` applies Holm's step-down correction.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Mapping

import numpy as np

from corrlab.analysis._validation import (
    as_float_array,
    check_choice,
    check_confidence_level,
    check_positive_int,
    check_rng,
    same_length,
)
from corrlab.results import ConfidenceInterval, Result
from corrlab.errors import PlanError

__all__ = [
    "NoSignallingResult",
    "DriftResult",
    "HolmResult",
    "SequenceResult",
    "no_signalling_test",
    "drift_test",
    "sequence_test",
    "SerialResult",
    "serial_test",
    "holm",
]


# ----------------------------------------------------------------------------- no-signalling


@dataclasses.dataclass(frozen=True)
class NoSignallingResult(Result):
    """Does the local marginal depend on the remote setting?

    Fields
    ------
    statistic, pvalue : of the significance test (G, or the Anderson-Darling statistic).
    test : ``"g"`` or ``"anderson"``.
    difference : ``P(+1 | remote 1) - P(+1 | remote 0)`` of the binarized outcome.
    ci : its confidence interval (Agresti-Caffo), ``confidence_interval()``.
    tost_pvalue : TOST p-value for ``|difference| < margin`` (small: equivalent).
    margin : the equivalence margin on the difference of proportions.
    equivalent : ``tost_pvalue < 1 - confidence_level``.
    proportions : ``(P(+1 | remote 0), P(+1 | remote 1))``.
    table : the 2x2 counts, rows remote setting 0/1, columns outcome +1/-1.
    pvalue_bounded : True when the p-value is at a bound of a tabulated range (the
        Anderson-Darling interpolation is floored at 0.001 and capped at 0.25).
    method : what was computed.
    """

    statistic: float
    pvalue: float
    test: str
    difference: float
    ci: ConfidenceInterval
    tost_pvalue: float
    margin: float
    equivalent: bool
    proportions: tuple
    table: tuple
    n_trials: tuple
    confidence_level: float
    pvalue_bounded: bool
    method: str

    def summary(self) -> str:
        lo, hi = self.ci
        name = "G" if self.test == "g" else "Anderson-Darling"
        bound = " (at a bound of the tabulated range)" if self.pvalue_bounded else ""
        return "\n".join([
            "No-signalling (local marginal vs remote setting)",
            f"  {name} = {self.statistic:.5g}, p = {self.pvalue:.5g}{bound}",
            f"  P(+1 | remote 1) - P(+1 | remote 0) = {self.difference:.4f}, "
            f"{self.confidence_level:.0%} CI [{lo:.4f}, {hi:.4f}]",
            f"  TOST |diff| < {self.margin:g}: p = {self.tost_pvalue:.4g} "
            f"({'equivalent' if self.equivalent else 'equivalence not shown'})",
            f"  trials per remote setting {self.n_trials}; {self.method}",
        ])


def _binary_settings(setting, name: str) -> np.ndarray:
    arr = np.asarray(setting)
    if arr.ndim != 1:
        raise PlanError(f"{name} must be 1-D with one entry per trial, got shape {arr.shape}")
    if arr.dtype.kind == "b":
        return arr.astype(np.int8)
    try:
        values = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{name} must contain settings 0 and 1") from exc
    if not np.all((values == 0) | (values == 1)):
        bad = arr[~((values == 0) | (values == 1))][0]
        raise PlanError(f"{name} must contain only settings 0 and 1; found {bad!r}")
    return values.astype(np.int8)


def no_signalling_test(
    local,
    remote_setting,
    *,
    margin: float,
    test: str = "g",
    confidence_level: float = 0.95,
    binarize_at: float = 0.0,
    n_resamples: int | None = None,
    rng=None,
) -> NoSignallingResult:
    """Test whether one side's local outcomes depend on the other side's setting.

    Parameters
    ----------
    local : array_like, shape (n_trials,)
        The local per-trial observable of one side in one condition.
    remote_setting : array_like of 0/1, shape (n_trials,)
        The other side's setting in each of those trials.
    margin : float
        Equivalence margin for the difference of proportions (the plan's
        ``no_signalling_margin``), in (0, 1).
    test : {"g", "anderson"}, default "g"
        ``"g"``: G-test on the binarized 2x2 table (asymptotic chi-square, 1 df).
        ``"anderson"``: ``scipy.stats.anderson_ksamp`` (midrank variant) on the raw local
        values of the two remote settings; its tabulated p-value is floored at 0.001 and
        capped at 0.25 (``pvalue_bounded`` says when), unless ``n_resamples`` is given, in
        which case the p-value is a permutation p-value over the remote setting labels
        (valid because the settings are randomized per trial).
    confidence_level : float, default 0.95
        Of the interval for the difference; the TOST decision ``equivalent`` is taken at
        ``alpha = 1 - confidence_level``.
    binarize_at : float, default 0
        Outcome is +1 where ``local >= binarize_at``, else -1.
    n_resamples, rng
        Permutation p-value for ``test="anderson"`` (see above).

    Notes
    -----
    The difference, its interval and the TOST are always on the binarized outcome: the
    proportion scale makes the margin unit-free and is the marginal that no-signalling
    constrains for dichotomic (CHSH) outcomes. The G-test p-value is asymptotic (fine for
    the usual hundreds of trials per cell); with an outcome that never varies (a zero
    column) the G statistic is 0 and p = 1.
    """
    from scipy.stats import chi2_contingency
    from statsmodels.stats.proportion import confint_proportions_2indep, tost_proportions_2indep

    values = as_float_array(local, "local", ndim=1, min_size=2)
    settings = _binary_settings(remote_setting, "remote_setting")
    same_length(local=values, remote_setting=settings)
    check_choice(test, "test", ("g", "anderson"))
    if not isinstance(margin, numbers.Real) or not 0 < margin < 1:
        raise PlanError(f"margin must be in (0, 1) (a difference of proportions); got {margin!r}")
    level = check_confidence_level(confidence_level)
    if not isinstance(binarize_at, numbers.Real) or not math.isfinite(binarize_at):
        raise PlanError(f"binarize_at must be a finite number; got {binarize_at!r}")
    n0, n1 = int(np.sum(settings == 0)), int(np.sum(settings == 1))
    if min(n0, n1) < 2:
        raise PlanError(f"each remote setting needs at least 2 trials; setting 0 has {n0}, setting 1 has {n1}")
    plus = values >= binarize_at
    c0, c1 = int(np.sum(plus & (settings == 0))), int(np.sum(plus & (settings == 1)))
    table = ((c0, n0 - c0), (c1, n1 - c1))
    bounded = False

    if test == "g":
        tab = np.array(table)
        if np.any(tab.sum(axis=0) == 0):
            statistic, pvalue = 0.0, 1.0
            how = "G-test: the outcome never varies, G = 0, p = 1"
        else:
            res = chi2_contingency(tab, lambda_="log-likelihood", correction=False)
            statistic, pvalue = float(res.statistic), float(res.pvalue)
            how = "G-test (log-likelihood ratio, 1 df, no continuity correction) on remote setting x sign(local)"
    else:
        from scipy.stats import PermutationMethod, anderson_ksamp

        samples = [values[settings == 0], values[settings == 1]]
        if np.unique(values).size < 2:
            raise PlanError("local has a single distinct value; the Anderson-Darling test needs two")
        if n_resamples is None:
            import warnings

            with warnings.catch_warnings():  # the bound is reported in pvalue_bounded and method
                warnings.filterwarnings("ignore", message="p-value (capped|floored)", category=UserWarning)
                res = anderson_ksamp(samples, variant="midrank")
            bounded = bool(res.pvalue <= 0.001 or res.pvalue >= 0.25)
            how = ("Anderson-Darling k-sample (midrank) on local values by remote setting; "
                   "tabulated p-value, floored at 0.001 and capped at 0.25")
        else:
            m = check_positive_int(n_resamples, "n_resamples")
            gen = check_rng(rng)
            if math.comb(values.size, samples[0].size) <= m:  # scipy enumerates every split: exact test
                res = anderson_ksamp(samples, variant="midrank", method=PermutationMethod(n_resamples=m, rng=gen))
            else:
                import warnings

                with warnings.catch_warnings():  # only the statistic is used: the p-value is below
                    warnings.filterwarnings("ignore", message="p-value (capped|floored)", category=UserWarning)
                    res = anderson_ksamp(samples, variant="midrank")
                res = _AndersonPermutation(float(res.statistic), _anderson_permutation_pvalue(samples, m, gen))
            how = (f"Anderson-Darling k-sample (midrank) on local values by remote setting; permutation "
                   f"p-value over remote-setting labels, {m} resamples")
        statistic, pvalue = float(res.statistic), float(res.pvalue)

    alpha = 1.0 - level
    with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels' unused odds ratio at p = 0 or 1
        lo, hi = confint_proportions_2indep(c1, n1, c0, n0, method="agresti-caffo", compare="diff", alpha=alpha)
        tost = tost_proportions_2indep(c1, n1, c0, n0, -margin, margin, method="agresti-caffo", compare="diff")
    tost_p = float(tost.pvalue)  # tost[0] is the statistic, not the p-value
    diff = c1 / n1 - c0 / n0
    return NoSignallingResult(
        statistic=statistic,
        pvalue=pvalue,
        test=test,
        difference=float(diff),
        ci=ConfidenceInterval(float(lo), float(hi), level, "Agresti-Caffo, difference of proportions"),
        tost_pvalue=tost_p,
        margin=float(margin),
        equivalent=bool(tost_p < alpha),
        proportions=(c0 / n0, c1 / n1),
        table=table,
        n_trials=(n0, n1),
        confidence_level=level,
        pvalue_bounded=bounded,
        method=(f"{how}; outcome +1 where local >= {binarize_at:g}; difference P(+1|remote 1) - "
                f"P(+1|remote 0) with Agresti-Caffo CI and TOST (statsmodels tost_proportions_2indep) "
                f"against +/-{margin:g}"),
    )


@dataclasses.dataclass(frozen=True)
class _AndersonPermutation:
    statistic: float
    pvalue: float


def _anderson_permutation_pvalue(samples, n_resamples: int, rng: np.random.Generator) -> float:
    """The p-value of ``anderson_ksamp(samples, variant="midrank", method=PermutationMethod(n_resamples,
    rng=rng))`` for two samples, without sorting each resample.

    scipy's ``permutation_test`` draws ``rng.permutation(N)`` per resample, puts the first
    ``n_0`` of the permuted pooled values in sample 0, and recomputes Scholz and Stephens'
    ``A2akN`` (their equation 7), which sorts both samples. The pooled values, their
    distinct values ``Z*`` and the pooled counts do not change under a permutation: only
    each sample's count ``f_ij`` of each distinct value does, and the sample's midrank
    count below ``Z*_j`` is ``cumsum(f_i)_j - f_ij / 2``. So each resample is a
    ``bincount`` of sample 0's distinct-value codes (sample 1 has the rest) and a
    cumulative sum; the same permutations in the same order, and the same formula term by
    term, give scipy's null distribution and p-value (``(b + 1)/(m + 1)`` with its tie
    tolerance). Resamples are drawn in batches, so memory stays bounded (scipy holds all
    ``m x N`` indices at once: 9.6 GB for 1999 resamples of 600 000 trials).
    """
    pooled = np.concatenate([np.asarray(s, dtype=np.float64) for s in samples])
    n_obs = np.array([s.size for s in samples])
    N = pooled.size
    n0 = int(n_obs[0])
    Z = np.sort(pooled)
    Zstar, codes = np.unique(pooled, return_inverse=True)
    codes = codes.reshape(-1)
    J = Zstar.size
    left = Z.searchsorted(Zstar, "left")
    lj = 1.0 if N == J else Z.searchsorted(Zstar, "right") - left
    Bj = left + lj / 2.0
    total = np.bincount(codes, minlength=J)
    denom = Bj * (N - Bj) - N * lj / 4.0

    def a2akn(f0):  # f0: (rows, J) counts of sample 0; scipy's arithmetic, term by term
        out = np.zeros(f0.shape[0])
        for i, f in enumerate((f0, total[None, :] - f0)):
            mij = np.cumsum(f, axis=1).astype(float)
            mij -= f / 2.0
            inner = lj / float(N) * (N * mij - Bj * n_obs[i]) ** 2 / denom
            out += inner.sum(axis=1) / n_obs[i]
        return out * ((N - 1.0) / N)

    observed = float(a2akn(np.bincount(codes[:n0], minlength=J)[None, :])[0])
    step = max(1, (1 << 17) // max(N, J))  # rows per pass: the work arrays stay in cache
    null = np.empty(n_resamples)
    for s in range(0, n_resamples, step):
        rows = min(step, n_resamples - s)
        first = np.stack([rng.permutation(N)[:n0] for _ in range(rows)])
        flat = (codes[first] + (np.arange(rows) * J)[:, None]).reshape(-1)
        null[s:s + rows] = a2akn(np.bincount(flat, minlength=rows * J).reshape(rows, J))
    # scipy.stats.permutation_test, alternative "greater", random (not exact) permutations
    gamma = abs(np.finfo(np.float64).eps * 100 * observed)  # its relative tolerance for ties
    b = int(np.count_nonzero(null >= observed - gamma))
    return (b + 1) / (n_resamples + 1)


# ----------------------------------------------------------------------------- drift


@dataclasses.dataclass(frozen=True)
class DriftResult(Result):
    """Does a per-trial quantity drift over the run?

    Fields
    ------
    statistic : Spearman correlation of the values with time (monotone trend).
    pvalue : the combined permutation p-value of the trend and change-point statistics
        (min-p over the same permutations of the time order).
    trend_pvalue : permutation p-value of ``|Spearman rho|``.
    changepoint_statistic : Pettitt's rank CUSUM ``max_t |sum_(i<=t) (r_i - (n+1)/2)|``.
    changepoint_pvalue : its permutation p-value.
    changepoint_index : position (in time order) after which the level changes most.
    slope, ci, slope_pvalue : OLS slope of value on time, with a Newey-West (HAC)
        confidence interval and p-value (an effect size, not the decision).
    """

    statistic: float
    pvalue: float
    trend_pvalue: float
    changepoint_statistic: float
    changepoint_pvalue: float
    changepoint_index: int
    slope: float
    ci: ConfidenceInterval
    slope_pvalue: float
    hac_maxlags: int
    n_trials: int
    n_resamples: int
    method: str

    def summary(self) -> str:
        lo, hi = self.ci
        return "\n".join([
            "Drift over the run",
            f"  p = {self.pvalue:.4g} (trend and change point combined)",
            f"  Spearman rho = {self.statistic:.4f} (p = {self.trend_pvalue:.4g}); Pettitt K = "
            f"{self.changepoint_statistic:.4g} after position {self.changepoint_index} (p = {self.changepoint_pvalue:.4g})",
            f"  slope = {self.slope:.4g} per unit time, {self.ci.confidence_level:.0%} HAC CI [{lo:.4g}, {hi:.4g}] "
            f"(p = {self.slope_pvalue:.4g}, {self.hac_maxlags} lags)",
            f"  {self.n_trials} trials; {self.method}",
        ])


def _perm_pvalues(obs: float, null: np.ndarray) -> tuple:
    """p-value of obs and of every null value within the null (upper tail), (b+1)/(m+1)."""
    m = null.size
    srt = np.sort(null)
    tol = 100 * np.finfo(float).eps * max(1.0, abs(obs))
    p_obs = (m - np.searchsorted(srt, obs - tol, side="left") + 1) / (m + 1)
    # for null value j: count of null values >= it, itself included, plus the observed
    ge = m - np.searchsorted(srt, null - tol, side="left")
    p_null = (ge + (obs >= null - tol)) / (m + 1)
    return float(p_obs), p_null


def drift_test(
    values,
    time=None,
    *,
    n_resamples: int = 9999,
    confidence_level: float = 0.95,
    rng=None,
) -> DriftResult:
    """Test for drift of a per-trial quantity over the run (trend or change of level).

    Parameters
    ----------
    values : array_like, shape (n_trials,)
        E.g. each trial's local mean, or its binarized outcome.
    time : array_like, shape (n_trials,), optional
        Trial index or start time; default the order given.
    n_resamples : int, default 9999
        Permutations of the time order.
    confidence_level : float, default 0.95
        Of the HAC interval for the slope.
    rng : None, int or numpy.random.Generator

    Notes
    -----
    Why these statistics. Without drift the trials are exchangeable in time (the design
    assumption), so permuting the values over the time points gives an exact null for
    any statistic; no normality and no asymptotics are needed. Two rank statistics cover
    the two shapes drift takes: Spearman's rho for a monotone trend, and Pettitt's (1979)
    rank CUSUM for a change of level at an unknown time, which also catches a wander
    that comes back (up then down), where rho is near 0. Ranks make both insensitive to a
    few wild trials. The two are combined by min-p over the same permutations
    (Westfall-Young), which keeps the size exact without a Bonferroni factor. The OLS
    slope with Newey-West standard errors (``maxlags = floor(4 (n/100)^(2/9))``) reports
    how large the drift is, per unit of ``time``, with an interval that stays honest
    when the residuals are autocorrelated (which drift makes them).
    """
    from scipy.stats import rankdata
    import statsmodels.api as sm

    v = as_float_array(values, "values", ndim=1, min_size=4)
    t = np.arange(v.size, dtype=float) if time is None else as_float_array(time, "time", ndim=1, min_size=4)
    n = same_length(values=v, time=t)
    if np.ptp(t) == 0:
        raise PlanError("time must not be constant")
    m = check_positive_int(n_resamples, "n_resamples")
    level = check_confidence_level(confidence_level)
    gen = check_rng(rng)
    order = np.argsort(t, kind="stable")
    v, t = v[order], t[order]

    rt = rankdata(t)
    a = rt - rt.mean()
    a /= np.sqrt(a @ a)
    rv = rankdata(v)
    centred = rv - (n + 1) / 2.0
    scale = math.sqrt(centred @ centred)
    if scale == 0:
        raise PlanError("values are all equal; there is nothing to drift")

    def stats_of(c):  # c: (..., n) centred ranks in time order
        rho = (c @ a) / scale
        cusum = np.max(np.abs(np.cumsum(c, axis=-1)), axis=-1)
        return rho, cusum

    rho_obs, k_obs = stats_of(centred)
    k_arg = int(np.argmax(np.abs(np.cumsum(centred)))) + 1
    step = max(1, (1 << 22) // n)
    rho_null, k_null = [], []
    for s in range(0, m, step):
        c = gen.permuted(np.broadcast_to(centred, (min(step, m - s), n)), axis=1)
        r, kk = stats_of(c)
        rho_null.append(r)
        k_null.append(kk)
    rho_null = np.concatenate(rho_null)
    k_null = np.concatenate(k_null)
    p_trend, p_trend_null = _perm_pvalues(abs(float(rho_obs)), np.abs(rho_null))
    p_k, p_k_null = _perm_pvalues(float(k_obs), k_null)
    min_obs = min(p_trend, p_k)
    min_null = np.minimum(p_trend_null, p_k_null)
    p_combined = (int(np.count_nonzero(min_null <= min_obs * (1 + 1e-12))) + 1) / (m + 1)

    maxlags = int(math.floor(4 * (n / 100.0) ** (2.0 / 9.0)))
    design = sm.add_constant(t - t.mean())
    fit = sm.OLS(v, design).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags})
    lo, hi = fit.conf_int(alpha=1 - level)[1]
    return DriftResult(
        statistic=float(rho_obs),
        pvalue=float(p_combined),
        trend_pvalue=p_trend,
        changepoint_statistic=float(k_obs),
        changepoint_pvalue=p_k,
        changepoint_index=k_arg,
        slope=float(fit.params[1]),
        ci=ConfidenceInterval(float(lo), float(hi), level, f"OLS slope, Newey-West HAC ({maxlags} lags)"),
        slope_pvalue=float(fit.pvalues[1]),
        hac_maxlags=maxlags,
        n_trials=n,
        n_resamples=m,
        method=(f"permutation of the time order ({m} resamples): Spearman rho (trend) and Pettitt rank CUSUM "
                f"(change point), combined by min-p; p=(b+1)/(m+1); OLS slope with HAC errors as effect size"),
    )


# ----------------------------------------------------------------------------- serial dependence


@dataclasses.dataclass(frozen=True)
class SerialResult(Result):
    """Are a side's trial values exchangeable within their blocks (no serial correlation)?

    Fields
    ------
    statistic : the portmanteau ``Q = sum_(l=1..h) r_l^2`` of the within-block normal scores'
        autocorrelations ``r_l`` at lags ``1 .. h`` (pairs in the same block only).
    pvalue : its permutation p-value (values permuted within blocks; exact when they are
        exchangeable there).
    autocorrelation : ``(r_1, ..., r_h)``.
    """

    statistic: float
    pvalue: float
    autocorrelation: tuple
    lags: int
    n_blocks: int
    n_trials: int
    n_resamples: int
    method: str

    def summary(self) -> str:
        r1 = self.autocorrelation[0] if self.autocorrelation else float("nan")
        return (f"Serial dependence within {self.n_blocks} block(s): Q = {self.statistic:.4g} over {self.lags} lags "
                f"(r_1 = {r1:.3f}), p = {self.pvalue:.4g}; {self.n_trials} trials; {self.method}")


def _scores_within(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Rank normal scores of the values computed within each block (a block's level and scale drop out)."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    z = np.zeros(values.size)
    for g in np.unique(codes):
        idx = np.flatnonzero(codes == g)
        if idx.size > 1:
            z[idx] = ndtri(rankdata(values[idx]) / (idx.size + 1))
    return z


def serial_test(values, blocks=None, *, lags: int = 5, n_resamples: int = 1999, rng=None) -> SerialResult:
    """Test a per-trial series, given in time order, for serial dependence within its blocks.

    Parameters
    ----------
    values : array_like, shape (n_trials,)
        One side's trial values in time order.
    blocks : array_like, shape (n_trials,), optional
        Block code of each trial (e.g. consecutive time-local blocks): the values are turned
        into normal scores within each block, so a slow drift (a block's level) drops out,
        and only pairs of trials in the same block count.
    lags : int, default 5
        The autocorrelation lags ``1 .. lags`` in the portmanteau statistic.

    Notes
    -----
    Re-pairing trials (the dependence null) is exact when one side's trials are exchangeable
    within their blocks. What breaks it is serial dependence on both sides: two independent
    autocorrelated series (noise that runs on across trial boundaries, or drift left over
    inside the blocks) look dependent (the spurious-regression trap). The Ljung-Box-like
    ``Q`` sees autocorrelation at short lags; its null is the within-block permutation, so
    the check holds its size exactly on exchangeable trials and needs no normality.
    """
    v = as_float_array(values, "values", ndim=1, min_size=4)
    n = v.size
    codes = np.zeros(n, dtype=np.int64) if blocks is None else np.unique(np.asarray(blocks), return_inverse=True)[1]
    if codes.size != n:
        raise PlanError(f"blocks has {codes.size} entries for {n} values")
    h = check_positive_int(lags, "lags")
    h = min(h, n - 1)
    m = check_positive_int(n_resamples, "n_resamples")
    gen = check_rng(rng)
    z = _scores_within(v, codes)
    ss = float(z @ z)
    if ss == 0:
        raise PlanError("values are constant within every block; there is no serial dependence to test")
    same = [codes[k:] == codes[:-k] for k in range(1, h + 1)]

    def q_of(zz):  # zz: (..., n)
        r = np.stack([(zz[..., k:] * zz[..., :-k] * same[k - 1]).sum(axis=-1) / ss for k in range(1, h + 1)], axis=-1)
        return (r * r).sum(axis=-1), r

    q_obs, r_obs = q_of(z)
    # the blocks' positions grouped by block size: one (blocks, size) index table per size, so a
    # batch of within-block permutations is one rng.permuted along the last axis per size
    sizes = np.bincount(codes)
    tables = [np.stack([np.flatnonzero(codes == g) for g in np.flatnonzero(sizes == L)]) for L in np.unique(sizes)]
    step = max(1, (1 << 21) // n)
    null = []
    for s in range(0, m, step):
        c = min(step, m - s)
        zz = np.empty((c, n))
        for idx in tables:
            zz[:, idx] = gen.permuted(np.broadcast_to(z[idx], (c,) + idx.shape), axis=-1)
        null.append(q_of(zz)[0])
    null = np.concatenate(null)
    p, _ = _perm_pvalues(float(q_obs), null)
    nb = int(codes.max()) + 1
    return SerialResult(
        statistic=float(q_obs), pvalue=p, autocorrelation=tuple(float(x) for x in r_obs), lags=h, n_blocks=nb,
        n_trials=n, n_resamples=m,
        method=(f"portmanteau Q of the within-block normal scores' autocorrelations at lags 1..{h}, values "
                f"permuted within {nb} block(s) ({m} resamples), p=(b+1)/(m+1)"))


# ----------------------------------------------------------------------------- labels in time


@dataclasses.dataclass(frozen=True)
class SequenceResult(Result):
    """Are labels drawn independently of time and of the label before?

    Fields
    ------
    pvalue : the combined permutation p-value (min-p of the statistics below over the same
        permutations); the block statistic's alone when ``serial`` is off.
    block_statistic, block_pvalue : Pearson chi-square of label x time block (``n_blocks``
        consecutive blocks of equal length in time order) and its permutation p-value.
    serial_statistic, serial_pvalue : Pearson chi-square of the transition table (label of
        trial i-1 x label of trial i) and its permutation p-value; None when ``serial`` is off.
    counts : trials per label (in the order of ``labels``' sorted values).
    """

    pvalue: float
    block_statistic: float
    block_pvalue: float
    serial_statistic: float | None
    serial_pvalue: float | None
    n_blocks: int
    counts: tuple
    n_trials: int
    n_resamples: int
    method: str

    def summary(self) -> str:
        serial = (f"; serial chi2 = {self.serial_statistic:.4g} (p = {self.serial_pvalue:.4g})"
                  if self.serial_statistic is not None else "")
        return (f"Labels against time: p = {self.pvalue:.4g} (block chi2 = {self.block_statistic:.4g} over "
                f"{self.n_blocks} blocks, p = {self.block_pvalue:.4g}{serial}); {self.n_trials} trials; {self.method}")


def _chi2_rows(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Pearson chi-square of each row of ``observed`` (m, cells) against ``expected`` (cells,) or (m, cells)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (observed - expected) ** 2 / np.where(expected > 0, expected, 1.0), 0.0)
    return terms.sum(axis=-1)


def sequence_test(labels, *, serial: bool = True, n_blocks: int | None = None, n_resamples: int = 9999,
                  rng=None) -> SequenceResult:
    """Test labels given in time order (settings, condition labels) for dependence on time.

    Parameters
    ----------
    labels : array_like, shape (n_trials,)
        One label per trial, in the order the trials were taken.
    serial : bool, default True
        Also test the label against the label of the trial before (the transition table).
        Right for labels drawn independently per trial (CHSH settings); off for schedules
        randomized in blocks, whose sampling without replacement makes neighbours differ
        more often than independent draws would.
    n_blocks : int, optional
        Consecutive time blocks of the block statistic; default ``n // (5 k)`` (``k`` labels:
        five trials per cell on average) clipped to [2, 10].
    n_resamples : int, default 9999
        Permutations of the time order.

    Notes
    -----
    Labels drawn independently and identically per trial are exchangeable in time, so
    permuting them over the trials gives an exact null for any statistic; p = (b+1)/(m+1).
    The label x time-block chi-square sees labels that cluster in time (settings in time
    blocks, a schedule that was not interleaved, a generator biased by a slow state); the
    transition chi-square sees a label that depends on the one before. The two are combined
    by min-p over the same permutations (Westfall-Young), which keeps the size exact. The
    block statistic is conservative for designs balanced within blocks (its counts per time
    block vary less than independent draws would).
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise PlanError(f"labels must be 1-dimensional, got shape {arr.shape}")
    n = arr.size
    if n < 8:
        raise PlanError(f"labels need at least 8 trials to be tested against time; got {n}")
    m = check_positive_int(n_resamples, "n_resamples")
    gen = check_rng(rng)
    _, codes = np.unique(arr, return_inverse=True)
    codes = codes.astype(np.int64).ravel()
    k = int(codes.max()) + 1
    counts = np.bincount(codes, minlength=k)
    n_b = n_blocks if n_blocks is not None else max(2, min(10, n // (5 * max(k, 1))))
    n_b = check_positive_int(n_b, "n_blocks")
    if not 2 <= n_b <= n // 2:
        raise PlanError(f"n_blocks must be between 2 and half the trials ({n // 2}); got {n_b}")
    block = (np.arange(n) * n_b) // n
    block_sizes = np.bincount(block, minlength=n_b)
    exp_block = (np.outer(block_sizes, counts) / n).ravel()

    def block_stat(c):  # c: (rows, n)
        rows = c.shape[0]
        flat = (block * k + c + (np.arange(rows) * (n_b * k))[:, None]).ravel()
        obs = np.bincount(flat, minlength=rows * n_b * k).reshape(rows, n_b * k)
        return _chi2_rows(obs, exp_block)

    def serial_stat(c):
        rows = c.shape[0]
        flat = (c[:, :-1] * k + c[:, 1:] + (np.arange(rows) * (k * k))[:, None]).ravel()
        obs = np.bincount(flat, minlength=rows * k * k).reshape(rows, k, k).astype(float)
        exp = obs.sum(axis=2, keepdims=True) * obs.sum(axis=1, keepdims=True) / (n - 1)
        return _chi2_rows(obs.reshape(rows, -1), exp.reshape(rows, -1))

    if k < 2:  # one label only: nothing can depend on time
        return SequenceResult(1.0, 0.0, 1.0, 0.0 if serial else None, 1.0 if serial else None, n_b,
                              tuple(counts.tolist()), n, m, "a single label: nothing to test, p = 1")
    obs_b = float(block_stat(codes[None, :])[0])
    obs_s = float(serial_stat(codes[None, :])[0]) if serial else None
    null_b, null_s = [], []
    step = max(1, (1 << 21) // n)
    for s in range(0, m, step):
        c = gen.permuted(np.broadcast_to(codes, (min(step, m - s), n)), axis=1)
        null_b.append(block_stat(c))
        if serial:
            null_s.append(serial_stat(c))
    p_b, p_b_null = _perm_pvalues(obs_b, np.concatenate(null_b))
    if serial:
        p_s, p_s_null = _perm_pvalues(obs_s, np.concatenate(null_s))
        min_obs = min(p_b, p_s)
        p = (int(np.count_nonzero(np.minimum(p_b_null, p_s_null) <= min_obs * (1 + 1e-12))) + 1) / (m + 1)
    else:
        p_s, p = None, p_b
    what = (f"label x {n_b} time blocks chi-square" + (" and label(i-1) x label(i) transition chi-square, combined "
                                                       "by min-p" if serial else ""))
    return SequenceResult(
        pvalue=float(p), block_statistic=obs_b, block_pvalue=float(p_b), serial_statistic=obs_s,
        serial_pvalue=None if p_s is None else float(p_s), n_blocks=n_b, counts=tuple(counts.tolist()),
        n_trials=n, n_resamples=m,
        method=f"permutation of the time order ({m} resamples): {what}; p=(b+1)/(m+1)",
    )


# ----------------------------------------------------------------------------- Holm


@dataclasses.dataclass(frozen=True)
class HolmResult(Result):
    """Holm step-down adjusted p-values.

    ``pvalues`` are the adjusted p-values in input order, ``reject`` whether each is below
    ``alpha``, ``names`` the keys when a mapping was given (else ``None``).
    ``as_dict()`` pairs names with adjusted p-values.
    """

    pvalues: np.ndarray
    reject: np.ndarray
    alpha: float
    names: tuple | None
    method: str = "Holm step-down (statsmodels multipletests, method='holm')"

    def as_dict(self) -> dict:
        names = self.names if self.names is not None else tuple(range(len(self.pvalues)))
        return {name: float(p) for name, p in zip(names, self.pvalues)}

    def summary(self) -> str:
        names = self.names if self.names is not None else tuple(range(len(self.pvalues)))
        lines = [f"Holm adjustment at alpha = {self.alpha:g}"]
        for name, p, r in zip(names, self.pvalues, self.reject):
            lines.append(f"  {name}: {p:.4g}{'  reject' if r else ''}")
        return "\n".join(lines)


def holm(pvalues, *, alpha: float = 0.05) -> HolmResult:
    """Holm's step-down adjustment of a family of p-values.

    Parameters
    ----------
    pvalues : sequence of float, or mapping name -> float
        The raw p-values of the family the verdict rests on.
    alpha : float, default 0.05
        Family-wise error rate for ``reject``.
    """
    from statsmodels.stats.multitest import multipletests

    names = None
    if isinstance(pvalues, Mapping):
        names = tuple(pvalues.keys())
        pvalues = list(pvalues.values())
    p = as_float_array(pvalues, "pvalues", ndim=1, min_size=1)
    if np.any((p < 0) | (p > 1)):
        raise PlanError(f"pvalues must lie in [0, 1]; got {p[(p < 0) | (p > 1)][0]!r}")
    if not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise PlanError(f"alpha must be in (0, 1); got {alpha!r}")
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    return HolmResult(pvalues=adjusted, reject=reject, alpha=float(alpha), names=names)
