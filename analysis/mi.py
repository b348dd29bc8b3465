"""Mutual information estimators, in nats.

Three estimators, all for continuous data, ``x`` and ``y`` each 1-D ``(n,)`` or ``(n, d)``
(one row per observation, e.g. one trial's windowed mean or quadrature pair):

* :func:`ksg_mi`: Kraskov, Stoegbauer & Grassberger (2004), algorithm 1, max-norm, in the
  digamma form ``psi(k) + psi(n) - <psi(n_x + 1) + psi(n_y + 1)>``. **Not clipped at zero**:
  under independence the estimate scatters around 0 on both sides, which is what a
  permutation null needs (scikit-learn's ``mutual_info_regression`` clips at 0 and so puts a
  point mass there: 47.7% of its outputs at n = 1000 under independence were exactly 0).
  Each column is scaled to unit variance first (the max-norm is not scale invariant; MI is,
  so this changes only the estimator's bias, as in scikit-learn).
* :func:`gaussian_copula_mi`: ranks -> normal scores ``Phi^-1(r / (n + 1))`` per column,
  then :func:`gaussian_mi` of the scores (Ince et al. 2017 without their bias correction).
  A lower bound on the MI that is invariant to monotone transforms of each column.
* :func:`gaussian_mi`: the MI of a Gaussian with the sample correlation matrix,
  ``-1/2 ln(det R / (det R_xx det R_yy)) = -1/2 sum_i ln(1 - c_i^2)`` over the canonical
  correlations ``c_i``; in 1-D it is ``-1/2 ln(1 - rho^2)``.

For tests of dependence, :func:`binned_mi` is the plug-in MI of the table of
rank-quantile cells (``G / 2n``), an omnibus statistic that sees non-monotone dependence
(``y = x**2``) that the Gaussian-copula MI cannot; :func:`omnibus_bins` declares its grid
from ``n``. It is biased (by about the number of cells over ``2n``): a test statistic,
not an estimate, so it is not one of ``ESTIMATORS``. :func:`normal_scores`,
:func:`within_group_ranks` and :func:`rank_codes` take ``groups`` to rank within each
group (time-local blocks, conditions).

:func:`mutual_information` dispatches on ``method``; :func:`describe_estimator` gives the
string that result objects carry in ``method``.

Implementation notes
--------------------
KSG needs, for every point, the distance ``eps_i`` to its k-th neighbour in the joint space
(a ``scipy.spatial.cKDTree`` query, made in the tree's own order for cache locality) and
the number of points strictly closer than ``eps_i`` in each marginal. For a 1-D marginal
those counts come from one sort and two ``searchsorted`` passes, with a fix-up pass so that
"strictly closer" is decided on the same floating-point differences ``|v_j - v_i|`` the tree
uses (scikit-learn's ``nextafter(eps, 0)`` radius gives the same set). Marginal sort orders
and trees do not change when the observations are re-paired, so
:class:`KSGEstimator` keeps them for the permutation tests.

Repeated points make ``eps_i = 0`` and the estimator undefined; :func:`ksg_mi` raises a
:class:`corrlab.errors.PlanError` then (pass ``jitter`` to break ties the way Kraskov et al.
and scikit-learn do). This is also the guard against bootstrapping KSG with replacement:
duplicated observations are zero-distance neighbours (see :mod:`corrlab.analysis.intervals`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from corrlab.analysis._validation import (
    as_observations,
    check_choice,
    check_positive_int,
    check_rng,
    same_length,
)

from corrlab.errors import PlanError

__all__ = [
    "ESTIMATORS",
    "KSGEstimator",
    "ResampledMI",
    "batched_mi",
    "binned_mi",
    "describe_estimator",
    "gaussian_copula_mi",
    "gaussian_mi",
    "ksg_mi",
    "mutual_information",
    "normal_scores",
    "omnibus_bins",
    "rank_codes",
    "within_group_ranks",
]

ESTIMATORS = ("ksg", "gaussian_copula", "gaussian")


def describe_estimator(method: str, k: int = 3) -> str:
    """The one-line name of an estimator as results carry it in ``method``."""
    check_choice(method, "method", ESTIMATORS)
    if method == "ksg":
        return f"KSG mutual information (Kraskov algorithm 1, k={k}, max-norm, unit-variance columns, unclipped, nats)"
    if method == "gaussian_copula":
        return "Gaussian-copula mutual information (rank normal scores, -1/2 ln det R, nats)"
    return "Gaussian mutual information (-1/2 ln det R of the sample correlation, nats)"


# ----------------------------------------------------------------------------- Gaussian


def _whiten(z: np.ndarray, name: str) -> np.ndarray:
    """Centre ``z`` (n, d) and map it to identity sample covariance (1/n normalisation)."""
    z = z - z.mean(axis=0)
    n = z.shape[0]
    cov = (z.T @ z) / n
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError as exc:
        raise PlanError(f"{name} has a constant or linearly dependent column; its correlation "
                        "matrix is singular") from exc
    if np.any(np.diag(chol) <= 1e-12 * np.sqrt(np.max(np.diag(cov)))):
        raise PlanError(f"{name} has a constant or linearly dependent column; its correlation "
                        "matrix is singular")
    # w = z L^-T, so that w^T w / n = L^-1 cov L^-T = I. numpy's inverse of the small factor:
    # scipy.linalg.solve_triangular costs milliseconds per call on this machine's OpenBLAS.
    if z.shape[1] == 1:
        return z / chol[0, 0]
    return z @ np.linalg.inv(chol).T


def _mi_from_cross(c: np.ndarray) -> np.ndarray:
    """``-1/2 ln det(I - C C^T)`` for whitened cross-moment matrices ``C`` (..., dx, dy).

    The singular values of ``C`` are the canonical correlations. 1x1 blocks take the
    ``log1p`` route for precision.
    """
    if c.shape[-2:] == (1, 1):
        r = c[..., 0, 0]
        with np.errstate(divide="ignore"):
            return -0.5 * np.log1p(-np.minimum(r * r, 1.0))
    s = np.linalg.svd(c, compute_uv=False)
    s2 = np.minimum(s * s, 1.0)
    with np.errstate(divide="ignore"):
        return -0.5 * np.sum(np.log1p(-s2), axis=-1)


def gaussian_mi(x, y) -> float:
    """Mutual information (nats) of a Gaussian with the sample correlation of ``(x, y)``.

    Parameters
    ----------
    x, y : array_like, shape (n,) or (n, d)
        Paired observations, one row each.

    Returns
    -------
    float
        ``-1/2 ln(det R / (det R_xx det R_yy))``; for 1-D ``x`` and ``y`` this is
        ``-1/2 ln(1 - rho^2)`` with ``rho`` the Pearson correlation. ``inf`` if a linear
        combination of ``x`` equals one of ``y`` exactly.
    """
    x, y = _validate_pair(x, y, min_size=3)
    return float(_gaussian_mi_2d(x, y))


def _gaussian_mi_2d(x: np.ndarray, y: np.ndarray) -> float:
    n = x.shape[0]
    wx = _whiten(x, "x")
    wy = _whiten(y, "y")
    return float(_mi_from_cross((wx.T @ wy) / n))


def normal_scores(x, *, groups=None) -> np.ndarray:
    """Rank-based normal scores ``Phi^-1(rank / (n + 1))`` of each column (average ranks for ties).

    With ``groups`` (integer codes ``0..g-1``, one per row) the ranks are taken within each
    group and ``n`` is the group's size: every group's scores have the same law.
    """
    from scipy.special import ndtri

    ranks, sizes = within_group_ranks(x, groups)
    return ndtri(ranks / (sizes + 1)[:, None] if ranks.ndim == 2 else ranks / (sizes + 1))


def within_group_ranks(x, groups=None) -> tuple:
    """Average ranks (1-based) of each column of ``x`` within each group, and each row's group size.

    ``x`` (n,) or (n, d); ``groups`` integer codes ``0..g-1`` (one per row) or None for one
    group. Returns ``(ranks, sizes)``: ``ranks`` of ``x``'s shape, ``sizes`` (n,) the size of
    the row's group. Ties get the average of their ranks, as ``scipy.stats.rankdata``.
    """
    from scipy.stats import rankdata

    arr = np.asarray(x, dtype=np.float64)
    n = arr.shape[0]
    if groups is None:
        return rankdata(arr, axis=0, method="average"), np.full(n, n, dtype=np.intp)
    codes = np.asarray(groups, dtype=np.intp).reshape(-1)
    if codes.size != n:
        raise PlanError(f"groups has {codes.size} entries for {n} rows")
    counts = np.bincount(codes)
    starts = np.cumsum(counts) - counts
    cols = arr.reshape(n, -1)
    out = np.empty(cols.shape)
    for c in range(cols.shape[1]):
        v = cols[:, c]
        order = np.lexsort((v, codes))
        sv, sc = v[order], codes[order]
        pos = np.arange(n) - starts[sc] + 1.0  # ordinal rank within the group
        new = np.ones(n, dtype=bool)
        new[1:] = (sv[1:] != sv[:-1]) | (sc[1:] != sc[:-1])  # a new run of equal values
        first = np.flatnonzero(new)
        last = np.append(first[1:] - 1, n - 1)
        avg = (pos[first] + pos[last]) / 2.0
        out[order, c] = avg[np.cumsum(new) - 1]
    return out.reshape(arr.shape), counts[codes]


# ----------------------------------------------------------------------------- binned (omnibus)


def omnibus_bins(n: int) -> int:
    """Cells per side of the binned rank MI for ``n`` observations: ``clamp(round(sqrt(n / 20)), 3, 10)``.

    Declared before the data: about 20 observations per cell of the ``K x K`` grid up to
    ``n = 2000`` (``K = 10`` above), never fewer than 3 cells per side.
    """
    n = check_positive_int(n, "n")
    return min(10, max(3, math.floor(math.sqrt(n / 20.0) + 0.5)))


def _column_bins(cells: int, d: int) -> int:
    """Bins per column so that a side of ``d`` columns has about ``cells`` cells (at least 2 each)."""
    return max(2, math.floor(cells ** (1.0 / d) + 0.5))


def rank_codes(x, cells: int, *, groups=None) -> tuple:
    """Quantile-grid cell of each row: ``(codes (n,), n_cells)``.

    Each column is cut at its rank quantiles into ``b = max(2, round(cells ** (1/d)))``
    equal-count bins, ``floor(b (rank - 1/2) / n)`` with average ranks (ranks within each
    group, ``n`` the group's size, when ``groups`` is given); a row's cell is the mixed-radix
    combination of its columns' bins, so a side has ``b ** d`` cells.
    """
    arr = np.asarray(x, dtype=np.float64)
    cols = arr.reshape(arr.shape[0], -1)
    d = cols.shape[1]
    b = _column_bins(cells, d)
    ranks, sizes = within_group_ranks(cols, groups)
    per = np.minimum(np.floor(b * (ranks - 0.5) / sizes[:, None]), b - 1).astype(np.intp)
    codes = np.zeros(cols.shape[0], dtype=np.intp)
    for c in range(d):
        codes = codes * b + per[:, c]
    return codes, b ** d


def _binned_mi_from_counts(counts: np.ndarray) -> np.ndarray:
    """Plug-in MI (nats) of contingency tables ``counts`` (..., ka, kb): ``G / (2 n)``."""
    from scipy.special import xlogy

    c = np.asarray(counts, dtype=np.float64)
    n = c.sum(axis=(-2, -1))
    joint = xlogy(c, c).sum(axis=(-2, -1))
    ra = c.sum(axis=-1)
    rb = c.sum(axis=-2)
    return (joint - xlogy(ra, ra).sum(axis=-1) - xlogy(rb, rb).sum(axis=-1) + xlogy(n, n)) / n


def binned_mi(x, y, *, cells: int | None = None, groups=None) -> float:
    """Plug-in mutual information (nats) on the quantile grid of the ranks (an omnibus statistic).

    ``x`` and ``y`` are each cut into about ``cells`` equal-count cells (see
    :func:`rank_codes`; default :func:`omnibus_bins` of ``n``) and the MI of the contingency
    table is returned: ``sum p_ij ln(p_ij / (p_i p_j)) = G / (2n)``. It is zero only for a
    table with independent margins, so it sees any dependence the grid resolves, monotone
    or not (``y = x**2`` included), where the Gaussian-copula MI sees only monotone
    association. Biased upwards by about ``(ka - 1)(kb - 1) / (2n)``: use it as a test
    statistic, not as an estimate. ``groups``: ranks within each group (as in
    :func:`normal_scores`).
    """
    x, y = _validate_pair(x, y, min_size=3)
    n = x.shape[0]
    cells = omnibus_bins(n) if cells is None else check_positive_int(cells, "cells", minimum=2)
    ca, ka = rank_codes(x, cells, groups=groups)
    cb, kb = rank_codes(y, cells, groups=groups)
    counts = np.bincount(ca * kb + cb, minlength=ka * kb).reshape(ka, kb)
    return float(_binned_mi_from_counts(counts))


def gaussian_copula_mi(x, y) -> float:
    """Gaussian-copula mutual information (nats): :func:`gaussian_mi` of rank normal scores.

    Each column of ``x`` and ``y`` is replaced by ``Phi^-1(rank / (n + 1))`` (average ranks
    for ties), so the value depends on the data only through their ranks and is a lower
    bound on the MI when the dependence is not Gaussian in the copula sense.

    Parameters
    ----------
    x, y : array_like, shape (n,) or (n, d)
    """
    x, y = _validate_pair(x, y, min_size=3)
    return float(_gaussian_mi_2d(normal_scores(x), normal_scores(y)))


def batched_mi(x: np.ndarray, y: np.ndarray, *, method: str = "gaussian_copula") -> np.ndarray:
    """Gaussian or Gaussian-copula MI (nats) of each of a batch of samples, in one pass.

    ``x`` (batch, n, dx) and ``y`` (batch, n, dy), already validated (e.g. resamples of
    validated trials). Equals :func:`gaussian_mi` / :func:`gaussian_copula_mi` of each
    ``(x[i], y[i])`` to rounding; a degenerate resample (a constant column) gives ``nan``
    instead of an error, so a bootstrap can count it rather than stop.
    """
    check_choice(method, "method", ("gaussian", "gaussian_copula"))
    z = np.concatenate([x, y], axis=-1).astype(np.float64, copy=False)
    if method == "gaussian_copula":
        from scipy.special import ndtri
        from scipy.stats import rankdata

        z = ndtri(rankdata(z, axis=1, method="average") / (z.shape[1] + 1))
    z = z - z.mean(axis=1, keepdims=True)
    dx = x.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        if z.shape[-1] == 2:
            cxy = np.einsum("bn,bn->b", z[..., 0], z[..., 1])
            r2 = cxy * cxy / (np.einsum("bn,bn->b", z[..., 0], z[..., 0]) * np.einsum("bn,bn->b", z[..., 1], z[..., 1]))
            return -0.5 * np.log1p(-np.minimum(r2, 1.0))
        cov = np.einsum("bni,bnj->bij", z, z)
        sign, ld = np.linalg.slogdet(cov)
        sx, ldx = np.linalg.slogdet(cov[:, :dx, :dx])
        sy, ldy = np.linalg.slogdet(cov[:, dx:, dx:])
        out = 0.5 * (ldx + ldy - ld)
    return np.where((sign > 0) & (sx > 0) & (sy > 0), np.maximum(out, 0.0), np.nan)


class ResampledMI:
    """:func:`batched_mi` of resamples of fixed trials, given as index arrays (no gather, no sort).

    ``ResampledMI(x, y, method)(idx)`` equals ``batched_mi(x[idx], y[idx], method=method)``
    for ``idx`` (batch, m) of trial indices (with repeats, as a bootstrap draws them, or
    without, as a jackknife deletes), to rounding: the statistic of a resample depends only
    on how many times it holds each trial, ``w = bincount(idx)``, so each resample is one
    ``bincount`` and weighted sums over the ``n`` trials.

    Ranks are carried through the resamples exactly. A resample's average rank of a value
    is the weight of the values below it plus half its own run's weight plus 1/2 (``C +
    (W + 1)/2``: the mean of the ranks ``C + 1 .. C + W`` of its ``W`` copies), and the
    order of the values is the original sample's: so the ranks come from a cumulative sum
    of the weights along the original sort order, the same half-integers that
    ``scipy.stats.rankdata(method="average")`` of the resample gives, hence the same
    normal scores ``Phi^-1(rank / (m + 1))`` to the bit. (The bootstrap of the *ranks* is
    not this: resampled ranks keep the full sample's spacing, ``m / n`` of a resample's
    own; only the cumulative weights give the resample's ranks.) Equal values in the data
    form one run (the fast path applies when a column has none). Only the sums of the
    scores' products are taken in another order than ``batched_mi`` takes them.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, method: str = "gaussian_copula"):
        check_choice(method, "method", ("gaussian", "gaussian_copula"))
        z = np.concatenate([np.asarray(x, np.float64).reshape(len(x), -1),
                            np.asarray(y, np.float64).reshape(len(y), -1)], axis=1)
        self.n, self.d = z.shape
        self.dx = np.asarray(x).reshape(len(x), -1).shape[1]
        self.method = method
        self.z = z
        self._tables: dict = {}
        # per column: its sort order, each sorted position's run of equal values [first, stop)
        # (None without ties), and where the first column's order finds the column's values
        self.columns = []
        if method == "gaussian_copula":
            for c in range(self.d):
                order = np.argsort(z[:, c], kind="stable")
                inv = np.empty(self.n, dtype=np.intp)
                inv[order] = np.arange(self.n)
                pos = None if c == 0 else inv[self.columns[0][0]]
                s = z[order, c]
                new = np.r_[True, s[1:] != s[:-1]]
                if new.all():
                    self.columns.append((order, None, None, pos))
                    continue
                first = np.flatnonzero(new)
                run = np.cumsum(new) - 1
                last = np.r_[first[1:], self.n] - 1
                self.columns.append((order, first[run], last[run] + 1, pos))

    def weights(self, idx: np.ndarray) -> np.ndarray:
        """Trial counts (batch, n) of the resamples ``idx`` (batch, m)."""
        rows = idx.shape[0]
        flat = (idx + (np.arange(rows, dtype=np.intp) * self.n)[:, None]).reshape(-1)
        return np.bincount(flat, minlength=rows * self.n).reshape(rows, self.n)

    def _scores(self, m: int) -> np.ndarray:
        """``ndtri((j / 2) / (m + 1))`` for ``j = 0 .. 2m + 1``: the normal score of every
        possible average rank ``j / 2`` in a resample of ``m`` (the same floating-point
        operations as ``ndtri(rank / (m + 1))``, so the same values)."""
        table = self._tables.get(m)
        if table is None:
            from scipy.special import ndtri

            with np.errstate(divide="ignore"):
                table = ndtri((np.arange(2 * m + 2) / 2.0) / (m + 1))
            if len(self._tables) > 1:  # the bootstrap's and the jackknife's sizes
                self._tables.pop(next(iter(self._tables)))
            self._tables[m] = table
        return table

    def __call__(self, idx) -> np.ndarray:
        idx = np.asarray(idx)
        lead, m = idx.shape[:-1], idx.shape[-1]
        flat = idx.reshape(-1, m)
        if flat.shape[0] > 1 and flat.strides[0] == 0:  # one resample broadcast to many rows
            return np.broadcast_to(self(flat[:1])[0], lead).copy()
        step = max(1, _CACHE_ELEMENTS // self.n)  # rows per pass: the work arrays stay in cache
        out = np.concatenate([self._batch(flat[s:s + step], m) for s in range(0, flat.shape[0], step)])
        return out.reshape(lead)

    def _batch(self, idx: np.ndarray, m: int) -> np.ndarray:
        counts = self.weights(idx)
        if self.method == "gaussian_copula":
            table = self._scores(m)
            ref = self.columns[0][0]
            w = counts[:, ref].astype(np.float64)  # in the first column's sort order
            z = np.empty(w.shape + (self.d,))
            for c, (order, first, stop, pos) in enumerate(self.columns):
                ws = counts[:, order]
                cum = np.cumsum(ws, axis=1)
                if first is None:  # no ties in the data: a run is one value with its copies
                    twice = 2 * cum - ws + 1  # twice the average rank C + (W + 1)/2
                else:
                    ext = np.concatenate([np.zeros((ws.shape[0], 1), ws.dtype), cum], axis=1)
                    twice = ext[:, first] + ext[:, stop] + 1
                scores = table[twice]
                z[..., c] = scores if pos is None else scores[:, pos]
        else:
            w = counts.astype(np.float64)
            z = np.broadcast_to(self.z, w.shape + (self.d,))
        mean = np.einsum("bn,bni->bi", w, z) / m
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.d == 2:
                z0 = z[..., 0] - mean[:, :1]
                z1 = z[..., 1] - mean[:, 1:]
                wz0 = w * z0
                cxy = np.einsum("bn,bn->b", wz0, z1)
                r2 = cxy * cxy / (np.einsum("bn,bn->b", wz0, z0) * np.einsum("bn,bn->b", w * z1, z1))
                return -0.5 * np.log1p(-np.minimum(r2, 1.0))
            zc = z - mean[:, None, :]
            cov = np.einsum("bn,bni,bnj->bij", w, zc, zc)
            sign, ld = np.linalg.slogdet(cov)
            sx, ldx = np.linalg.slogdet(cov[:, :self.dx, :self.dx])
            sy, ldy = np.linalg.slogdet(cov[:, self.dx:, self.dx:])
            out = 0.5 * (ldx + ldy - ld)
        return np.where((sign > 0) & (sx > 0) & (sy > 0), np.maximum(out, 0.0), np.nan)


_CACHE_ELEMENTS = 1 << 17  # ~1 MB of float64 per work array of ResampledMI


# ----------------------------------------------------------------------------- KSG


class _Marginal:
    """Strict-radius neighbour counts in one marginal; reusable because values never change."""

    def __init__(self, v: np.ndarray, workers: int = 1):
        self.n, self.d = v.shape
        self.workers = workers
        if self.d == 1:
            self.order = np.argsort(v[:, 0])
            self.sorted = v[self.order, 0]
        else:
            from scipy.spatial import cKDTree

            self.v = v
            self.tree = cKDTree(v)

    def counts(self, eps: np.ndarray) -> np.ndarray:
        """``#{j != i : max|v_j - v_i| < eps[i]}`` for every value ``i`` (indexed like ``v``).

        The result is returned in the *sorted* order for 1-D marginals: callers only use the
        mean of ``psi(count + 1)``, which does not depend on the order.
        """
        if self.d > 1:
            r = np.nextafter(eps, 0.0)
            c = self.tree.query_ball_point(self.v, r, p=np.inf, return_length=True, workers=self.workers)
            return np.asarray(c) - 1
        s = self.sorted
        e = eps[self.order]
        n = s.shape[0]
        hi = np.searchsorted(s, s + e, side="left")
        lo = np.searchsorted(s, s - e, side="right")
        pos = np.arange(n)
        # Fix-up so that membership is decided on fl(s_q - s_p) < e_p, as the tree does.
        _adjust_down(hi, lambda q, p: (s[q - 1] - s[p]) >= e[p], pos)
        _adjust_up(hi, lambda q, p: (s[q] - s[p]) < e[p], pos, n)
        _adjust_down(lo, lambda q, p: (s[p] - s[q - 1]) < e[p], pos)
        _adjust_up(lo, lambda q, p: (s[p] - s[q]) >= e[p], pos, n)
        return hi - lo - 1


def _adjust_down(idx, cond, pos):
    active = pos[idx > 0]
    while active.size:
        ok = cond(idx[active], active)
        active = active[ok]
        idx[active] -= 1
        active = active[idx[active] > 0]


def _adjust_up(idx, cond, pos, n):
    active = pos[idx < n]
    while active.size:
        ok = cond(idx[active], active)
        active = active[ok]
        idx[active] += 1
        active = active[idx[active] < n]


class KSGEstimator:
    """KSG (algorithm 1) for one fixed ``x`` and ``y`` under any re-pairing of their rows.

    ``KSGEstimator(x, y, k=3)(perm)`` is the KSG estimate for the pairs
    ``(x[i], y[perm[i]])``; ``perm=None`` is the observed pairing. The inputs are scaled
    once (unit variance per column) and the marginal sort orders / trees are built once,
    since a re-pairing leaves both marginals unchanged; only the joint neighbour search
    is redone. Used by :mod:`corrlab.analysis.permutation`; most callers want :func:`ksg_mi`.
    """

    def __init__(self, x, y, *, k: int = 3, workers: int = 1):
        x, y = _validate_pair(x, y, min_size=2)
        self.k = check_positive_int(k, "k")
        if self.k >= x.shape[0]:
            raise PlanError(f"k must be smaller than the number of observations ({x.shape[0]}); got {k}")
        self.workers = _check_workers(workers)
        self.x = _unit_scale(x, "x")
        self.y = _unit_scale(y, "y")
        self.n = x.shape[0]
        self._mx = _Marginal(self.x, self.workers)
        self._my = _Marginal(self.y, self.workers)
        from scipy.special import digamma

        self._const = float(digamma(self.k) + digamma(self.n))

    def __call__(self, perm=None) -> float:
        from scipy.spatial import cKDTree
        from scipy.special import digamma

        y = self.y if perm is None else self.y[perm]
        xy = np.concatenate([self.x, y], axis=1)
        # an unbalanced (sliding-midpoint), non-compact tree builds faster and queries as fast
        tree = cKDTree(xy, balanced_tree=False, compact_nodes=False)
        # query in the tree's own order: neighbouring queries touch neighbouring nodes
        order = tree.indices
        dist, _ = tree.query(xy[order], k=self.k + 1, p=np.inf, workers=self.workers)
        eps = np.empty(self.n)
        eps[order] = dist[:, self.k]
        if not np.all(eps > 0):
            bad = int(np.count_nonzero(eps <= 0))
            raise PlanError(
                f"x, y have {bad} point(s) with {self.k} or more exact duplicates (k-th neighbour at "
                "distance 0): KSG needs continuous data. Break ties with jitter=..., and never "
                "bootstrap KSG with replacement (duplicates are zero-distance neighbours)"
            )
        nx = self._mx.counts(eps)
        if perm is None:
            eps_y = eps
        else:  # the y value perm[i] is used by joint point i
            eps_y = np.empty(self.n)
            eps_y[perm] = eps
        ny = self._my.counts(eps_y)
        return self._const - float(np.mean(digamma(nx + 1.0))) - float(np.mean(digamma(ny + 1.0)))


def ksg_mi(x, y, *, k: int = 3, jitter: float = 0.0, rng=None, workers: int = 1) -> float:
    """Kraskov-Stoegbauer-Grassberger mutual information (algorithm 1), in nats, unclipped.

    Parameters
    ----------
    x, y : array_like, shape (n,) or (n, d)
        Paired continuous observations, one row each. Each column is scaled to unit
        variance before the neighbour search (the max-norm is not scale invariant).
    k : int, default 3
        Number of neighbours in the joint space.
    jitter : float, default 0
        If positive, add Gaussian noise of standard deviation ``jitter`` (in units of each
        column's standard deviation) before estimating, to break exact ties (scikit-learn
        uses 1e-10). With the default 0, exact duplicates that make a k-th neighbour
        distance zero raise :class:`corrlab.errors.PlanError`.
    rng : None, int or numpy.random.Generator
        Source of the jitter noise (unused when ``jitter == 0``).
    workers : int, default 1
        Threads for the tree queries (``-1``: all cores), as in ``scipy.spatial.cKDTree``.

    Returns
    -------
    float
        ``psi(k) + psi(n) - mean(psi(n_x + 1) + psi(n_y + 1))``, ``n_x`` (``n_y``) the number
        of other points strictly closer than the k-th joint neighbour in the ``x`` (``y``)
        marginal. Negative values are kept: they say "no detectable dependence" with the
        estimator's own sampling noise, and clipping them would bias any average or null
        distribution.

    Notes
    -----
    Matches ``sklearn.feature_selection.mutual_info_regression`` (same scaling, same strict
    neighbour sets) wherever that is positive; it is several times faster at 10^6 pairs
    (``benchmarks/bench_ksg.py``).
    """
    x, y = _validate_pair(x, y, min_size=2)
    if not isinstance(jitter, numbers.Real) or not math.isfinite(jitter) or jitter < 0:
        raise PlanError(f"jitter must be a finite number >= 0; got {jitter!r}")
    if jitter > 0:
        gen = check_rng(rng)
        x = x + jitter * x.std(axis=0) * gen.standard_normal(x.shape)
        y = y + jitter * y.std(axis=0) * gen.standard_normal(y.shape)
    return KSGEstimator(x, y, k=k, workers=workers)()


def mutual_information(x, y, *, method: str = "ksg", k: int = 3) -> float:
    """Mutual information in nats by ``method``: ``"ksg"``, ``"gaussian_copula"`` or ``"gaussian"``.

    ``k`` is used by KSG only. See :func:`ksg_mi`, :func:`gaussian_copula_mi`,
    :func:`gaussian_mi`.
    """
    check_choice(method, "method", ESTIMATORS)
    if method == "ksg":
        return ksg_mi(x, y, k=k)
    if method == "gaussian_copula":
        return gaussian_copula_mi(x, y)
    return gaussian_mi(x, y)


# ----------------------------------------------------------------------------- helpers


def _validate_pair(x, y, *, min_size: int):
    x = as_observations(x, "x", min_size=min_size)
    y = as_observations(y, "y", min_size=min_size)
    same_length(x=x, y=y)
    return x, y


def _unit_scale(v: np.ndarray, name: str) -> np.ndarray:
    sd = v.std(axis=0)
    if np.any(sd == 0):
        raise PlanError(f"{name} has a constant column ({int(np.flatnonzero(sd == 0)[0])}); "
                        "mutual information is undefined")
    return v / sd


def _check_workers(workers) -> int:
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers == 0 or workers < -1:
        raise PlanError(f"workers must be -1 (all cores) or a positive integer; got {workers!r}")
    return int(workers)
