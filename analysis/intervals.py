"""Confidence intervals over trials for mutual information and other trial-level statistics.

The unit of resampling is the trial (trials are exchangeable; samples inside a trial are
not). Three constructions:

* :func:`bca_interval`: ``scipy.stats.bootstrap(method="BCa")`` over trials for any
  statistic of per-trial values (Gaussian or Gaussian-copula MI, a correlation, a
  difference between conditions). scipy's BCa jackknife is O(n^2) and its default
  ``batch`` holds every resample at once, so the trials are resampled as *indices* and
  ``batch`` is bounded (a sample-level BCa at n = 1e5 took 283 s and tens of GB here).
* :func:`subsampling_interval`: m-out-of-n subsampling **without replacement**
  (Politis & Romano 1994) with the rate rescaling and the finite-population correction,
  the interval for KSG.
* :func:`jackknife_interval`: delete-one-trial or delete-a-block jackknife (Busing et al.
  1999 weights for unequal blocks) with a Student-t interval, for smooth estimators
  (it refuses KSG, see below).

:func:`mi_interval` and :func:`mi_difference_interval` pick the right one for an MI
estimator: BCa for ``"gaussian"`` and ``"gaussian_copula"``, subsampling for ``"ksg"``.

What carries through a resample
-------------------------------
The BCa intervals of the two Gaussian estimators take scipy's resamples as trial indices
and compute each statistic from the trial counts (:class:`corrlab.analysis.mi.ResampledMI`):
the Gaussian MI is a function of weighted moments; the copula MI needs the *resample's*
ranks, which are the cumulative counts along the full sample's sort order (the order of
the values does not change, only their multiplicities), exactly rankdata's average ranks of
the resample. What does not carry: the full sample's ranks themselves (a resample of ranks
keeps the full sample's spacing, not the resample's own ranks), and KSG (a resample's
neighbours are other points; copies are zero-distance neighbours), whose subsamples are
estimated afresh. The delete-group jackknife of the acceleration is the same computation
with counts 0 and 1. Same resamples, same scores; only sums are taken in another order, so
intervals agree with the old gather-and-rankdata code to rounding (tests/test_speed.py).

Why not the ordinary bootstrap for KSG
--------------------------------------
A bootstrap resample drawn *with replacement* repeats about 37% of the observations. A
repeated point is its own nearest neighbour at distance zero, so the k-th neighbour
distances collapse, the marginal counts ``n_x``, ``n_y`` become tiny and
``psi(k) + psi(n) - <psi(n_x + 1) + psi(n_y + 1)>`` explodes: at n = 1e4 and rho = 0.5
(true MI 0.144 nats) the bootstrap resamples averaged 1.108 nats (with ties broken by
1e-10 noise as scikit-learn does; :func:`corrlab.analysis.mi.ksg_mi` refuses exact duplicates
instead). The bootstrap distribution then says nothing about the sampling distribution
of the estimator. Subsamples drawn without replacement contain no duplicates: each is an
honest sample of size ``b`` from the same distribution; what remains is the scale.

The rate rescaling, and the interval
------------------------------------
Politis-Romano: ``tau_b (theta_b - theta_n)`` has nearly the law of ``tau_n (theta_n -
theta)``, ``tau_n = sqrt(n)``, so the spread of ``theta_b`` over subsamples is scaled by
``sqrt(b / n)``; because every subsample comes from the same ``n`` trials, the part of the
estimator that is a sum over trials varies over subsamples only by ``sigma^2 (1/b - 1/n)``
(finite-population correction), so :func:`subsampling_interval` scales by
``sqrt(b / (n - b))`` (as the delete-d jackknife with ``d = n - b`` does) and reports
``theta_n +/- z se``. The nearest-neighbour noise of KSG is not shared between a
subsample and the full sample (a subsample has other neighbours), which makes this scale
conservative when ``b / n`` is large and exact only for ``b / n -> 0``, while very small
subsamples carry their own small-sample behaviour; ``b = n / 4`` balances the two.
Measured here, Gaussian data, 95% intervals, 100-200 replicates each:

standard error over the Monte-Carlo sd of the estimate, for b = n/5, n/4, n/3, n/2:

    n = 200,  rho = 0.5:          0.99  1.03  1.08  1.20
    n = 500,  rho = 0.5:          1.06  1.10  1.15  1.24
    n = 2000, rho = 0.5:          1.06  1.09  1.13  1.21
    n = 500,  rho = 0.9:          0.93  0.95  0.98  1.02
    n = 500,  rho = 0 (independent): 1.09  1.14  1.21  1.34

and coverage at b = n/4: 0.960 (n = 200), 0.955 (500), 0.98 (2000), 0.94 (rho = 0.9, where
KSG's own bias is +0.018), 0.98 (rho = 0).

The "basic" interval ``[theta_n - q_hi, theta_n - q_lo]`` of the roots ``theta_b -
theta_n`` covered only 0.885 (n = 500, 400 replicates): its centre ``2 theta_n - mean
theta_b`` adds the full sample's neighbour noise a second time. Unscaled half-sampling
quantiles (``sqrt(b/n)`` at ``b = n/2``) covered 0.84.

The interval is for the estimator's sampling variability; it does not remove the
estimator's bias. For Gaussian-like marginals KSG's bias is negligible (|bias| < 0.005
nats for n = 75..1200 at rho = 0.5), but with strongly skewed marginals it is not
(x -> exp(x), y -> y^3 at n = 300: -0.022 nats, half a standard error), and no interval
fixes that.

Why not the jackknife for KSG
-----------------------------
Deleting one trial moves a few neighbour counts by one, a non-smooth change the jackknife
multiplies by ``n - 1``: at n = 300 the delete-one standard error was 1.5x the truth and
the bias-corrected centre scattered by more than the estimate itself (coverage 0.72 at a
nominal 0.95 over 60 replicates), so :func:`jackknife_interval` refuses ``"ksg"``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from typing import Callable

import numpy as np

from corrlab.analysis._validation import (
    as_group_codes,
    as_observations,
    check_choice,
    check_confidence_level,
    check_positive_int,
    check_rng,
    same_length,
)
from corrlab.analysis.mi import ESTIMATORS, ResampledMI, describe_estimator, mutual_information
from corrlab.results import ConfidenceInterval, Result
from corrlab.errors import PlanError

__all__ = [
    "IntervalResult",
    "bca_interval",
    "subsampling_interval",
    "jackknife_interval",
    "mi_interval",
    "mi_difference_interval",
]

_MEMORY_ELEMENTS = 1 << 22


@dataclasses.dataclass(frozen=True)
class IntervalResult(Result):
    """A point estimate with a confidence interval over trials.

    Fields
    ------
    estimate : the statistic on all the data (also ``statistic``).
    ci : :class:`corrlab.results.ConfidenceInterval` (``confidence_interval()``).
    standard_error : the resampling standard error of ``estimate`` (rescaled for
        subsampling).
    n_trials : trials per sample (a tuple when there are several samples).
    n_resamples : bootstrap resamples, subsamples, or jackknife deletions.
    confidence_level : as requested.
    method : how the interval was made.
    estimator : what ``estimate`` is.
    bias_corrected : the jackknife bias-corrected estimate (jackknife only, else NaN).
    """

    estimate: float
    ci: ConfidenceInterval
    standard_error: float
    n_trials: tuple
    n_resamples: int
    confidence_level: float
    method: str
    estimator: str
    bias_corrected: float = math.nan

    @property
    def statistic(self) -> float:
        return self.estimate

    def summary(self) -> str:
        lo, hi = self.ci
        lines = [
            f"{self.estimator}",
            f"  estimate = {self.estimate:.6g}  {self.confidence_level:.0%} CI [{lo:.6g}, {hi:.6g}]  "
            f"(se {self.standard_error:.3g})",
        ]
        if not math.isnan(self.bias_corrected):
            lines.append(f"  jackknife bias-corrected estimate = {self.bias_corrected:.6g}")
        lines.append(f"  {self.method}; trials {self.n_trials}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- BCa


def _as_trial_arrays(data, name: str = "data") -> list:
    if isinstance(data, np.ndarray) or not isinstance(data, (list, tuple)):
        raise PlanError(f"{name} must be a sequence of per-trial arrays, e.g. (x,) or (x, y)")
    out = []
    for i, d in enumerate(data):
        arr = np.asarray(d)
        if arr.ndim == 0 or arr.shape[0] < 2:
            raise PlanError(f"{name}[{i}] needs a first (trial) axis with at least 2 trials; got shape {arr.shape}")
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            raise PlanError(f"{name}[{i}] has a non-finite value")
        out.append(arr)
    if not out:
        raise PlanError(f"{name} is empty")
    return out


_TOP = np.finfo(np.float64).max / 2
_UNBOUNDED = 1e300  # an interval end beyond this came from _TOP: reported infinite


def _finite_top(values: np.ndarray) -> np.ndarray:
    """Infinite or undefined resample statistics (MI of a resample that repeats one or two
    trials) as the largest finite number: they stay at the top of the bootstrap distribution
    and scipy's interpolated quantiles stay defined (inf - inf is nan); an interval end
    that lands there is reported as infinite. A difference of two MIs can be -inf: -_TOP."""
    return np.clip(np.nan_to_num(values, nan=_TOP, posinf=_TOP, neginf=-_TOP), -_TOP, _TOP)


JACKKNIFE_MAX = 2000  # trials; above, BCa's acceleration comes from this many jackknife groups


def _grouped_acceleration(call, index_data, groups: int, rng: np.random.Generator, batch: int) -> float:
    """BCa acceleration from the delete-group jackknife (Efron and Tibshirani, 11.5 and 14.3).

    Each sample's trials are split at random into ``groups`` near-equal groups; the
    statistic is recomputed with one group left out (the other samples whole), and
    ``a = sum_j sum_g U^3 / (6 (sum_j sum_g U^2)^1.5)`` with ``U = (G - 1)(mean - theta_g)``
    (each sample's terms scaled by 1/G^3 and 1/G^2, as scipy scales its n^3 and n^2).
    """
    nums = dens = 0.0
    for j, idx in enumerate(index_data):
        g = min(groups, idx.size)
        order = rng.permutation(idx.size)
        keep_len = idx.size - int(math.ceil(idx.size / g))
        theta = []
        for start in range(0, g, batch):  # groups differ by one trial at most: trim to one length
            block = np.stack([np.delete(idx, order[k::g])[:keep_len] for k in range(start, min(g, start + batch))])
            args = [block if i == j else np.broadcast_to(other, (block.shape[0], other.size))
                    for i, other in enumerate(index_data)]
            theta.append(np.asarray(call(*args)))
        theta = np.concatenate(theta)
        u = (g - 1) * (theta.mean() - theta)
        nums += float(np.sum(u ** 3)) / g ** 3
        dens += float(np.sum(u ** 2)) / g ** 2
    return nums / (6 * dens ** 1.5) if dens > 0 else 0.0


def bca_interval(
    data,
    statistic: Callable,
    *,
    paired: bool = False,
    confidence_level: float = 0.95,
    n_resamples: int = 9999,
    rng=None,
    batch: int | None = None,
    vectorized: bool = False,
    indexed: bool = False,
) -> IntervalResult:
    """BCa bootstrap interval over trials of ``statistic(*data)``, via ``scipy.stats.bootstrap``.

    Parameters
    ----------
    data : sequence of array_like
        Per-trial arrays; the first axis of each is the trial (trailing axes are kept
        together, so an ``(n, 2)`` array resamples ``(x, y)`` pairs).
    statistic : callable
        ``statistic(*samples) -> float``. With ``vectorized=True`` each sample gets a leading
        batch axis and the return value has shape ``(batch,)``.
    paired : bool, default False
        If True all samples have the same trials and are resampled with the same indices
        (e.g. ``data=(x, y)``); if False each sample is resampled on its own (e.g. the
        trials of two conditions).
    confidence_level, n_resamples, rng
        As in ``scipy.stats.bootstrap``.
    batch : int, optional
        Resamples per call into the statistic machinery; the default bounds a step to about
        4 million indices (scipy's default holds all ``n_resamples`` at once, and its
        jackknife ``n`` at once).
    indexed : bool, default False
        With ``vectorized=True``: call ``statistic`` with the resamples' trial *indices*
        (each ``(batch, m)``, into the corresponding array of ``data``) instead of the
        gathered values, for statistics that work from trial counts
        (:class:`corrlab.analysis.mi.ResampledMI`). The resamples are the same.

    Notes
    -----
    Trials, not samples: a bootstrap of autocorrelated samples underestimates the
    standard error (an AR(1) mean, phi = 0.95: 0.0061 against the true 0.0273) and a
    sample-level BCa jackknife costs O(n^2). Do not use this for the KSG estimator (see
    the module docstring): use :func:`subsampling_interval`.
    """
    from scipy.stats import DegenerateDataWarning, bootstrap

    arrays = _as_trial_arrays(data)
    if not callable(statistic):
        raise PlanError(f"statistic must be callable; got {type(statistic).__name__}")
    level = check_confidence_level(confidence_level)
    n_resamples = check_positive_int(n_resamples, "n_resamples", minimum=2)
    gen = check_rng(rng)
    sizes = tuple(a.shape[0] for a in arrays)
    if paired and len(set(sizes)) > 1:
        raise PlanError(f"paired samples must have the same number of trials; got {sizes}")
    if batch is None:
        batch = max(1, _MEMORY_ELEMENTS // max(sizes))
    else:
        batch = check_positive_int(batch, "batch")

    def call(*idx, axis=-1):
        if paired:
            idx = idx * len(arrays)
        lead = np.broadcast_shapes(*(i.shape[:-1] for i in idx))
        if vectorized:
            flat = [np.broadcast_to(i, lead + i.shape[-1:]).reshape(-1, i.shape[-1]) for i in idx]
            vals = np.asarray(statistic(*(flat if indexed else (a[f] for a, f in zip(arrays, flat)))), dtype=float)
            return _finite_top(vals).reshape(lead)
        if not lead:
            return np.asarray(float(statistic(*(a[i] for a, i in zip(arrays, idx)))))
        flat = [np.broadcast_to(i, lead + i.shape[-1:]).reshape(-1, i.shape[-1]) for i in idx]
        out = np.array([float(statistic(*(a[f[j]] for a, f in zip(arrays, flat))))
                        for j in range(flat[0].shape[0])])
        return _finite_top(out).reshape(lead)

    index_data = (np.arange(sizes[0]),) if paired else tuple(np.arange(s) for s in sizes)
    estimate = float(call(*index_data))
    estimate = math.inf if estimate >= _TOP else estimate
    # A resample of a few-trial condition can repeat one or two trials only, and its MI is
    # infinite: it takes its place at the top of the resampling distribution (numpy's
    # standard deviation of such a set is nan, and says so; the percentiles are fine).
    # scipy's BCa takes its acceleration from the full jackknife: n statistics of n - 1 trials,
    # O(n^2) (an hour for a copula MI of 25 000 trials). Above JACKKNIFE_MAX trials the
    # acceleration comes from a delete-group jackknife of JACKKNIFE_MAX groups instead; the
    # resampling is scipy's either way.
    grouped = max(sizes) > JACKKNIFE_MAX
    with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)  # handled below
        res = bootstrap(index_data, call, n_resamples=n_resamples, batch=batch, vectorized=True,
                        paired=False, confidence_level=level, method="percentile" if grouped else "BCa", rng=gen)
    dist = res.bootstrap_distribution
    below = float(np.mean(dist < estimate))
    how = "paired" if paired or len(arrays) == 1 else "each sample on its own"
    method = f"BCa bootstrap over trials ({how}), scipy.stats.bootstrap, {n_resamples} resamples"
    lo, hi = res.confidence_interval.low, res.confidence_interval.high
    if grouped and 0.0 < below < 1.0:
        from scipy.special import ndtr, ndtri

        accel = _grouped_acceleration(call, index_data, JACKKNIFE_MAX, gen, batch)
        z0 = ndtri(below)
        z = ndtri(np.array([(1 - level) / 2, (1 + level) / 2]))
        with np.errstate(invalid="ignore", over="ignore"):
            lo, hi = np.quantile(dist, ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z))))
        method += f" (acceleration from a delete-group jackknife, {JACKKNIFE_MAX} groups)"
    ci_method = "BCa bootstrap over trials"
    if below in (0.0, 1.0) or np.isnan(lo) or np.isnan(hi):
        # Every resample on one side of the estimate (an MI at its boundary 0 with few trials):
        # BCa's bias correction is infinite. The percentile interval, widened to hold the
        # estimate, and said so.
        q = np.quantile(dist, [(1 - level) / 2, (1 + level) / 2])
        lo, hi = min(estimate, float(q[0])), max(estimate, float(q[1]))
        method = (f"percentile bootstrap over trials ({how}), widened to hold the estimate: BCa undefined "
                  f"({below:.0%} of {n_resamples} resamples below the estimate)")
        ci_method = "percentile bootstrap over trials (BCa undefined)"
    # an end interpolated between a finite resample and an infinite one (_TOP) is unbounded too: no MI
    # reaches 1e300 nats, and the interpolation can land anywhere up to one ulp below _TOP
    lo, hi = (float(v) if abs(v) < _UNBOUNDED else math.copysign(math.inf, v) for v in (lo, hi))
    ci = ConfidenceInterval(lo, hi, level, ci_method)
    return IntervalResult(
        estimate=estimate,
        ci=ci,
        standard_error=float(res.standard_error),
        n_trials=sizes[:1] if paired else sizes,
        n_resamples=n_resamples,
        confidence_level=level,
        method=method,
        estimator=getattr(statistic, "__name__", type(statistic).__name__),
    )


# ----------------------------------------------------------------------------- subsampling


def _check_fraction(fraction) -> float:
    if not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise PlanError(f"subsample_fraction must be in (0, 1); got {fraction!r}")
    return float(fraction)


def _subsample_sizes(sizes, fraction: float, minimum: int):
    out = []
    for n in sizes:
        b = int(round(fraction * n))
        b = min(max(b, minimum), n - 1)
        if b < minimum:
            raise PlanError(f"{n} trials are too few to subsample (need subsamples of at least {minimum})")
        out.append(b)
    return out


def _subsampling(groups, mi_fn, fraction: float, n_resamples: int, level: float, rng, minimum: int):
    """Subsampling interval for sum_g sign_g * mi_fn(x_g, y_g), groups subsampled on their own.

    ``groups`` is a list of ``(x, y, sign)``. Each subsample statistic draws
    ``b_g = round(fraction n_g)`` trials of every group without replacement; the standard
    error is ``sqrt(b/(n-b))`` times their spread (one fraction for all groups, so one scale;
    with rounding the mean of ``b_g / (n_g - b_g)`` is used). Returns
    (estimate, (lo, hi), se, sizes, values).
    """
    from scipy.special import ndtri

    sizes = [g[0].shape[0] for g in groups]
    bs = _subsample_sizes(sizes, fraction, minimum)
    estimate = float(sum(sign * mi_fn(x, y) for x, y, sign in groups))
    values = np.empty(n_resamples)
    for j in range(n_resamples):
        val = 0.0
        for (x, y, sign), n, b in zip(groups, sizes, bs):
            idx = rng.choice(n, size=b, replace=False)
            val += sign * mi_fn(x[idx], y[idx])
        values[j] = val
    scale2 = float(np.mean([b / (n - b) for b, n in zip(bs, sizes)]))
    se = math.sqrt(scale2 * float(values.var(ddof=1)))
    z = float(ndtri(0.5 + level / 2))
    return estimate, (estimate - z * se, estimate + z * se), se, bs, values


def subsampling_interval(
    x,
    y,
    *,
    estimator: str | Callable = "ksg",
    k: int = 3,
    subsample_fraction: float = 0.25,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    rng=None,
) -> IntervalResult:
    """m-out-of-n subsampling interval (without replacement) for an MI estimate over trials.

    Parameters
    ----------
    x, y : array_like, shape (n_trials,) or (n_trials, d)
        Per-trial observables of sides A and B.
    estimator : {"ksg", "gaussian_copula", "gaussian"} or callable, default "ksg"
        An MI estimator, or ``estimator(x, y) -> float``.
    k : int, default 3
        KSG neighbours.
    subsample_fraction : float, default 0.25
        ``b / n``: subsamples have ``b = round(fraction * n)`` trials (at least ``k + 2``
        for KSG, at most ``n - 1``).
    n_resamples : int, default 1000
        Number of subsamples.
    confidence_level, rng
        As usual.

    Returns
    -------
    IntervalResult
        ``theta_n +/- z se``, ``se = sqrt(b / (n - b)) sd(theta_b)`` over the subsamples
        (the module docstring gives the reasons and the measured coverage).
    """
    xo, yo = _pair(x, y)
    k = check_positive_int(k, "k")
    mi, name, minimum = _estimator(estimator, k)
    fraction = _check_fraction(subsample_fraction)
    n_resamples = check_positive_int(n_resamples, "n_resamples", minimum=2)
    level = check_confidence_level(confidence_level)
    gen = check_rng(rng)
    estimate, (lo, hi), se, bs, _ = _subsampling([(xo, yo, 1.0)], mi, fraction, n_resamples, level, gen, minimum)
    n = xo.shape[0]
    method = (f"m-out-of-n subsampling without replacement (Politis-Romano), {n_resamples} subsamples of "
              f"b = {bs[0]} of {n} trials, se = sqrt(b/(n-b)) sd(theta_b), estimate +/- z se")
    return IntervalResult(
        estimate=float(estimate),
        ci=ConfidenceInterval(float(lo), float(hi), level, "subsampling without replacement"),
        standard_error=se,
        n_trials=(n,),
        n_resamples=n_resamples,
        confidence_level=level,
        method=method,
        estimator=name,
    )


# ----------------------------------------------------------------------------- jackknife


def jackknife_interval(
    x,
    y,
    *,
    estimator: str | Callable = "gaussian_copula",
    k: int = 3,
    blocks=None,
    confidence_level: float = 0.95,
) -> IntervalResult:
    """Delete-one-trial (or delete-a-block) jackknife interval for an MI estimate.

    Parameters
    ----------
    x, y : array_like, shape (n_trials,) or (n_trials, d)
    estimator : {"gaussian_copula", "gaussian"} or callable, default "gaussian_copula"
        A smooth MI estimator, or ``estimator(x, y) -> float``. ``"ksg"`` raises
        :class:`corrlab.errors.PlanError` (see the module docstring).
    k : int, default 3
    blocks : array_like, shape (n_trials,), optional
        Delete one block at a time (blocks may differ in size: Busing, Meijer & van der
        Leeden 1999 weights ``h_j = n / n_j``). Default: delete one trial at a time.
    confidence_level : float, default 0.95

    Returns
    -------
    IntervalResult
        ``theta_J +/- t_(g-1) se_J`` with ``theta_J`` the bias-corrected jackknife estimate
        (also in ``bias_corrected``) and ``g`` the number of deletions; ``estimate`` is the
        plain estimate on all trials.
    """
    from scipy.stats import t as student_t

    xo, yo = _pair(x, y)
    level = check_confidence_level(confidence_level)
    k = check_positive_int(k, "k")
    if isinstance(estimator, str) and estimator == "ksg":
        raise PlanError("the jackknife is not valid for the KSG estimator (deleting a trial changes neighbour "
                        "counts non-smoothly: delete-one coverage 0.72 at a nominal 0.95 here); use "
                        "subsampling_interval")
    mi, name, minimum = _estimator(estimator, k)
    n = xo.shape[0]
    codes = np.arange(n) if blocks is None else as_group_codes(blocks, "blocks", n)
    g = int(codes.max()) + 1
    if g < 3:
        raise PlanError(f"the jackknife needs at least 3 trials or blocks; got {g}")

    theta = mi(xo, yo)
    sizes = np.bincount(codes, minlength=g)
    if np.any(n - sizes < minimum):
        raise PlanError("deleting the largest block leaves too few trials for the estimator")
    loo = np.array([mi(xo[codes != j], yo[codes != j]) for j in range(g)])
    h = n / sizes
    theta_j = g * theta - float(np.sum((1 - 1 / h) * loo))
    pseudo = h * theta - (h - 1) * loo
    var = float(np.sum((pseudo - theta_j) ** 2 / (h - 1)) / g)
    se = math.sqrt(var)
    tq = float(student_t.ppf(0.5 + level / 2, g - 1))
    unit = "trial" if blocks is None else "block"
    return IntervalResult(
        estimate=float(theta),
        ci=ConfidenceInterval(theta_j - tq * se, theta_j + tq * se, level, f"delete-one-{unit} jackknife"),
        standard_error=se,
        n_trials=(n,),
        n_resamples=g,
        confidence_level=level,
        method=(f"delete-one-{unit} jackknife ({g} deletions, Busing et al. weights), "
                f"bias-corrected estimate +/- t_{g - 1} se"),
        estimator=name,
        bias_corrected=float(theta_j),
    )


# ----------------------------------------------------------------------------- MI front ends


def _estimator(estimator, k: int):
    """(function of (x, y), its name, the smallest sample it accepts) for a name or a callable."""
    if callable(estimator):
        def fn(a, b):
            value = estimator(a, b)
            try:
                return float(value)
            except (TypeError, ValueError) as exc:
                raise PlanError(f"estimator(x, y) must return a real number; got {type(value).__name__}") from exc

        return fn, getattr(estimator, "__name__", type(estimator).__name__), 2
    check_choice(estimator, "estimator", ESTIMATORS)

    def mi(a, b):
        return mutual_information(a, b, method=estimator, k=k)

    return mi, describe_estimator(estimator, k), (k + 2 if estimator == "ksg" else 4)


def _pair(x, y):
    xo = as_observations(x, "x", min_size=4)
    yo = as_observations(y, "y", min_size=4)
    same_length(x=xo, y=yo)
    return xo, yo


def mi_interval(
    x,
    y,
    *,
    estimator: str = "gaussian_copula",
    k: int = 3,
    confidence_level: float = 0.95,
    n_resamples: int | None = None,
    rng=None,
) -> IntervalResult:
    """MI estimate with the interval that suits the estimator.

    ``"gaussian"`` and ``"gaussian_copula"``: :func:`bca_interval` over paired trials
    (default 9999 resamples). ``"ksg"``: :func:`subsampling_interval` at b = n/4
    (default 1000 subsamples), never a bootstrap with replacement.
    """
    check_choice(estimator, "estimator", ESTIMATORS)
    if estimator == "ksg":
        return subsampling_interval(x, y, estimator="ksg", k=k, confidence_level=confidence_level,
                                    n_resamples=1000 if n_resamples is None else n_resamples, rng=rng)
    xo, yo = _pair(x, y)
    resampled = ResampledMI(xo, yo, estimator)

    def mi(ia, ib):  # paired: the same trials on both sides
        return resampled(ia)

    res = bca_interval((xo, yo), mi, paired=True, confidence_level=confidence_level,
                       n_resamples=9999 if n_resamples is None else n_resamples, rng=rng, vectorized=True,
                       indexed=True)
    return dataclasses.replace(res, estimator=describe_estimator(estimator, k))


def mi_difference_interval(
    first,
    second,
    *,
    estimator: str = "gaussian_copula",
    k: int = 3,
    confidence_level: float = 0.95,
    n_resamples: int | None = None,
    subsample_fraction: float = 0.25,
    rng=None,
) -> IntervalResult:
    """Interval for ``MI(first) - MI(second)``, each a pair ``(x, y)`` of per-trial arrays.

    The two conditions' trials are resampled independently of each other: BCa for the
    Gaussian estimators, subsampling without replacement for KSG (the same fraction in
    both conditions, so one scale ``sqrt(b / (n - b))`` applies; see
    :func:`subsampling_interval`).
    """
    check_choice(estimator, "estimator", ESTIMATORS)
    try:
        (x1, y1), (x2, y2) = first, second
    except (TypeError, ValueError) as exc:
        raise PlanError("first and second must each be a pair (x, y) of per-trial arrays") from exc
    x1, y1 = _pair(x1, y1)
    x2, y2 = _pair(x2, y2)
    level = check_confidence_level(confidence_level)
    k = check_positive_int(k, "k")
    name = "difference of " + describe_estimator(estimator, k)
    if estimator == "ksg":
        fraction = _check_fraction(subsample_fraction)
        m = check_positive_int(1000 if n_resamples is None else n_resamples, "n_resamples", minimum=2)

        def mi(a, b):
            return mutual_information(a, b, method="ksg", k=k)

        est, (lo, hi), se, bs, _ = _subsampling([(x1, y1, 1.0), (x2, y2, -1.0)], mi, fraction, m, level,
                                                check_rng(rng), k + 2)
        return IntervalResult(
            estimate=float(est),
            ci=ConfidenceInterval(float(lo), float(hi), level, "subsampling without replacement"),
            standard_error=se,
            n_trials=(x1.shape[0], x2.shape[0]),
            n_resamples=m,
            confidence_level=level,
            method=(f"m-out-of-n subsampling without replacement of each condition (b = {bs[0]} and {bs[1]} "
                    f"trials), {m} subsamples, se = sqrt(b/(n-b)) sd, estimate +/- z se"),
            estimator=name,
        )
    rows1 = np.concatenate([x1, y1], axis=1)
    rows2 = np.concatenate([x2, y2], axis=1)
    first_mi, second_mi = ResampledMI(x1, y1, estimator), ResampledMI(x2, y2, estimator)

    def diff(i1, i2):
        return first_mi(i1) - second_mi(i2)

    res = bca_interval((rows1, rows2), diff, paired=False, confidence_level=level,
                       n_resamples=9999 if n_resamples is None else n_resamples, rng=rng, vectorized=True,
                       indexed=True)
    return dataclasses.replace(res, estimator=name)
