"""Permutation tests whose null distribution respects the structure of the data.

Samples inside a trial are autocorrelated; trials are exchangeable. An i.i.d. shuffle of
samples ignores the autocorrelation and is badly anti-conservative (0.637 false positives at
a nominal 0.05 on independent AR(1) channels, phi = 0.95, 40 trials x 1000 samples). The
nulls here move whole trials or whole time series:

* :func:`repairing_test`: trial-level observables; A of trial ``i`` is re-paired with B of
  trial ``pi(i)``, ``pi`` a derangement (no trial keeps its own partner), within blocks
  if given (e.g. one block per run when pooling runs). Null: A and B independent, trials
  exchangeable within each block.
* :func:`circular_shift_test`: sample-level series; B of every trial is circularly shifted
  in time by an independent uniformly random lag, which keeps each series'
  autocorrelation and breaks its alignment with A.
* :func:`label_permutation_test`: ``MI(group 1) - MI(group 2)`` for two interleaved
  conditions, permuting the condition labels among their trials (within blocks). Null:
  the condition does not change the joint law of a trial's ``(x, y)``; with
  ``standardize_within_groups``, the dependence (copula) is the same in both conditions.

All three return a :class:`PermutationTestResult` (the label test a
:class:`LabelPermutationResult`) with ``statistic``, ``pvalue = (b + 1) / (m + 1)`` (``b`` the
number of the ``m`` resampled statistics at least as extreme as the observed one, with
scipy's relative tolerance of ``100 eps`` for ties), ``null_distribution``, ``n_resamples``,
``method`` (exactly what was done) and ``alternative``. For ``"two-sided"`` the p-value is
``min(1, 2 min(p_greater, p_less))`` as in ``scipy.stats.permutation_test``.

The omnibus statistic ("copula_omnibus")
----------------------------------------
The Gaussian-copula MI sees monotone association only: if B follows A**2 its rank
correlation is zero and it has no power (p = 0.86 where KSG finds 0.19 nats).
``statistic="copula_omnibus"`` pre-declares two statistics and one combination: (a) the
Gaussian-copula MI, and (b) the binned rank MI (:func:`corrlab.analysis.mi.binned_mi`,
``G / 2n`` of the ``K x K`` table of rank-quantile cells, ``K = clamp(round(sqrt(n / 20)), 3,
10)`` per side, :func:`corrlab.analysis.mi.omnibus_bins`), which is zero only for
independent cells and so sees any dependence the grid resolves. Both are computed on the
*same* resamples; every one of the ``m + 1`` statistics (observed first) gets its rank
p-value within each component (``p_a(j) = #{i: a_i >= a_j} / (m + 1)``, all ``m + 1``
counted), and the p-value is ``p = #{j: min(p_a(j), p_b(j)) <= min(p_a(0), p_b(0))} / (m + 1)``.
The ``m + 1`` are exchangeable under the null, so the combination is exact and pays for
looking twice (min-p, Westfall & Young). ``statistic`` and ``null_distribution`` stay the
copula MI's (nats, as before); ``components`` gives ``{name: (statistic, pvalue)}`` of
``"gaussian_copula"`` and ``"binned"``. For the re-pairings the cell counts of every
re-pairing come from FFT tables of the one-hot cell codes when the blocks are few and
large, else from a gather of the ``n`` re-paired codes per resample and one ``bincount``
per batch (n = 20000, m = 9999: about 0.2 s in one block, about 2 s CPU in blocks of 32).

Time-local blocks and drift
---------------------------
Trials are exchangeable only if nothing slow moves both sides: two independent slow drifts
(random walks, one per side) make whole-run re-pairing reject far above alpha (spurious
regression: a re-pairing across the run pairs trials from different drift states, the
observed pairing never does). :func:`time_local_blocks` cuts the trials, in time order
(and within runs), into blocks of consecutive trials; :func:`repairing_test` with those
``blocks`` and ``standardize_within_blocks=True`` re-pairs only within a block and
transforms each marginal within its block (normal scores of within-block ranks; centring
and scaling for ``"gaussian"`` and ``"ksg"``) before the statistic. The transform of a
block depends only on the block's multiset of values, so a within-block re-pairing just
permutes transformed values: the test is exact for exchangeable trials within blocks, and
the null is "A and B independent given the block", which a drift slower than a block
cannot fake. It gives up the between-block part of the covariance (about one degree of
freedom per block).

Controls on an equal footing
----------------------------
Permuting condition labels pools trials of both conditions, so a control recorded with
another gain and offsets but the same dependence is flagged (its pooled mixtures have
another dependence). ``standardize_within_groups=True`` transforms each condition's
marginals within that condition first (normal scores of within-condition ranks;
centring and scaling for ``"gaussian"``, ``"ksg"``), so the label test compares the
dependence, not the marginals. It is done per condition, not per condition x block cell:
interleaved schedules leave cells of a handful of trials. ``"copula_omnibus"`` works in
the label test too: the difference of each component, min-p combined over the same label
permutations.

How the re-pairings are drawn
-----------------------------
Put the trials of a block in a uniformly random order ``sigma`` and re-pair A at position
``j`` with B at position ``j + k (mod n)``: for ``k = 1 .. n-1`` every such re-pairing
``pi = sigma c^k sigma^-1`` is a derangement, and together with the identity (the observed
pairing, ``k = 0``) they form a group. So one random order with all ``n - 1`` lags is an
*exact* permutation test (the classical cyclic-permutation test, conjugated by a random
relabelling), and for the correlation-based statistics all ``n - 1`` lags cost one FFT
(a circular cross-correlation). When ``n_resamples`` exceeds ``n - 1``,
``ceil(n_resamples / (n - 1))`` independent random orders are used, each with distinct
random lags (all of them when the count allows), which refines the null towards that of
uniformly random derangements. With blocks, each block gets its own random order and its
own lag ``k_b in 1 .. n_b - 1`` (distinct, enumerated lags for the largest block; uniform
for the others), so every trial is re-paired with another trial of its own block. Blocks
of equal size are handled as one array (FFT along the block axis, one gather per resample
for all of them), so hundreds of time-local blocks cost about what one block does.

Statistics
----------
``"gaussian"``, ``"gaussian_copula"`` (and the copula part of ``"copula_omnibus"``) are computed once on the observed data (the
marginals are standardised, or turned into rank normal scores, and whitened once: a
re-pairing leaves each marginal unchanged), after which the statistic of a re-pairing is
``-1/2 ln det(I - C C^T)`` of the whitened cross-moment matrix ``C``, a gather from the FFT
tables. ``"ksg"`` keeps the marginal sort orders and trees and redoes only the joint
neighbour search per resample. A callable ``statistic(x, y) -> float`` (or, with
``vectorized=True``, ``statistic(x, y_batch) -> (batch,)``, ``y_batch`` of shape
``(batch, n, ...)``) may take any per-trial arrays, e.g. whole series ``(n_trials,
n_samples)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
from corrlab.analysis._validation import (
    as_group_codes,
    as_observations,
    as_series_list,
    check_alternative,
    check_choice,
    check_positive_int,
    check_rng,
    same_length,
)
from corrlab.analysis.mi import (
    ESTIMATORS,
    KSGEstimator,
    _binned_mi_from_counts,
    _mi_from_cross,
    _whiten,
    describe_estimator,
    normal_scores,
    omnibus_bins,
    rank_codes,
)

from corrlab.errors import PlanError
from corrlab.results import Result

__all__ = [
    "LabelPermutationResult",
    "PermutationTestResult",
    "circular_shift_test",
    "label_permutation_test",
    "random_derangements",
    "repairing_test",
    "time_local_blocks",
]

_MEMORY_ELEMENTS = 1 << 22  # ~32 MB of float64 per batch
_FEW_BLOCKS = 64  # up to this many blocks, random numbers are drawn block by block (as before)


# ----------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class PermutationTestResult(Result):
    """Outcome of a permutation test.

    Fields
    ------
    statistic : the observed statistic.
    pvalue : ``(b + 1) / (m + 1)`` for the chosen ``alternative``.
    null_distribution : the ``m`` resampled statistics (not in ``to_dict()``).
    n_resamples : ``m``.
    method : what was resampled, how, and the p-value formula.
    alternative : ``"greater"``, ``"less"`` or ``"two-sided"``.
    estimator : what the statistic is (e.g. the MI estimator and its settings).
    components : for a combined statistic (``"copula_omnibus"``), ``{name: (statistic,
        pvalue)}`` of each part, on the same resamples; ``pvalue`` is then the min-p
        combination's and ``statistic``/``null_distribution`` are the copula MI's. Empty
        otherwise.
    component_nulls : ``{name: null_distribution}`` of each part (not in ``to_dict()``).
    """

    statistic: float
    pvalue: float
    null_distribution: np.ndarray = dataclasses.field(repr=False, metadata={"internal": True})
    n_resamples: int
    method: str
    alternative: str
    estimator: str
    components: dict = dataclasses.field(default_factory=dict, kw_only=True)
    component_nulls: dict = dataclasses.field(default_factory=dict, kw_only=True, repr=False,
                                              metadata={"internal": True})

    def summary(self) -> str:
        null = np.asarray(self.null_distribution)
        lines = [
            f"{type(self).__name__}: {self.estimator}",
            f"  statistic = {self.statistic:.6g}, p = {self.pvalue:.4g} ({self.alternative})",
            (f"  null: mean {null.mean():.4g}, sd {null.std(ddof=1) if null.size > 1 else float('nan'):.4g}, "
             f"95% quantile {np.quantile(null, 0.95):.4g}"),
            f"  {self.method}",
        ]
        for name, (value, p) in self.components.items():
            lines.insert(-1, f"  component {name}: statistic = {value:.6g}, p = {p:.4g}")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class LabelPermutationResult(PermutationTestResult):
    """A :class:`PermutationTestResult` for ``MI(groups[0]) - MI(groups[1])``.

    Extra fields: ``groups`` (the two labels), ``estimates`` (the observed MI of each group,
    nats), ``n_trials`` (trials in each group).
    """

    groups: tuple
    estimates: tuple
    n_trials: tuple

    def summary(self) -> str:
        head = super().summary().splitlines()
        g1, g2 = self.groups
        head.insert(1, f"  MI[{g1}] = {self.estimates[0]:.6g} ({self.n_trials[0]} trials), "
                       f"MI[{g2}] = {self.estimates[1]:.6g} ({self.n_trials[1]} trials)")
        return "\n".join(head)


# ----------------------------------------------------------------------------- shared pieces


def _pvalue(observed: float, null: np.ndarray, alternative: str) -> float:
    """(b + 1) / (m + 1) with scipy.stats.permutation_test's tie tolerance."""
    m = null.size
    gamma = abs(observed) * np.finfo(np.float64).eps * 100
    with np.errstate(invalid="ignore"):
        b_greater = int(np.count_nonzero(null >= observed - gamma))
        b_less = int(np.count_nonzero(null <= observed + gamma))
    p_greater = (b_greater + 1) / (m + 1)
    p_less = (b_less + 1) / (m + 1)
    if alternative == "greater":
        return p_greater
    if alternative == "less":
        return p_less
    return min(1.0, 2.0 * min(p_greater, p_less))


def _check_common(n_resamples, alternative, rng, batch):
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    check_alternative(alternative)
    gen = check_rng(rng)
    if batch is not None:
        batch = check_positive_int(batch, "batch")
    return n_resamples, gen, batch


def _check_statistic(statistic, extra=()):
    if callable(statistic):
        return statistic
    return check_choice(statistic, "statistic", tuple(ESTIMATORS) + tuple(extra))


def _batch_size(batch, per_row: int) -> int:
    if batch is not None:
        return batch
    return max(1, _MEMORY_ELEMENTS // max(1, per_row))


def _callable_name(fn) -> str:
    return f"callable statistic {getattr(fn, '__name__', type(fn).__name__)}"


# ----------------------------------------------------------------------------- re-pairings


class _Repairing:
    """The re-pairing scheme of :func:`repairing_test` (see the module docstring).

    The blocks are grouped by size; for each group ``(ids, orders)``, ``orders[r, i]`` is the
    random order of the trials of block ``ids[i]`` for relabelling ``r`` (an array
    ``(n_relabel, n_blocks_of_that_size, size)``), so the FFTs and gathers of many small
    blocks run as array operations. Resample ``j`` uses relabelling ``rel[j]`` and lag
    ``lags[j, b]`` in block ``b``.
    """

    def __init__(self, codes: np.ndarray, n_resamples: int, rng: np.random.Generator):
        self.n = codes.size
        nb = int(codes.max()) + 1
        sizes = np.bincount(codes, minlength=nb)
        if sizes.min() < 2:
            raise PlanError("blocks: every block needs at least 2 trials to be re-paired "
                            f"(smallest has {int(sizes.min())})")
        self.blocks = np.split(np.argsort(codes, kind="stable"), np.cumsum(sizes)[:-1])
        self.sizes = sizes
        m = n_resamples
        big = int(np.argmax(sizes))
        per = int(sizes[big]) - 1  # distinct non-identity lags of the largest block
        n_rel = math.ceil(m / per)
        # keep the tables of the FFT path bounded: n_rel * n values per statistic component
        n_rel = max(1, min(n_rel, _MEMORY_ELEMENTS // self.n))
        self.n_relabel = n_rel
        rel = np.repeat(np.arange(n_rel), math.ceil(m / n_rel))[:m]
        big_lags = rng.integers(1, sizes[big], size=m)
        for r in range(n_rel):
            idx = np.flatnonzero(rel == r)
            if idx.size <= per:  # distinct lags, in random order
                big_lags[idx] = rng.permutation(per)[: idx.size] + 1
        self.big = big
        self.rel = rel
        self.big_lags = big_lags
        self.rng = rng
        # Up to _FEW_BLOCKS blocks the random numbers are drawn one block at a time, as they
        # always were (same seed, same re-pairings); beyond, in whole arrays.
        self.few = nb <= _FEW_BLOCKS
        self.groups = []
        if self.few:
            orders = [[rng.permutation(blk) for blk in self.blocks] for _ in range(n_rel)]
        for size in np.unique(sizes):
            ids = np.flatnonzero(sizes == size)
            if self.few:
                arr = np.array([[orders[r][b] for b in ids] for r in range(n_rel)], dtype=np.intp)
            else:
                base = np.stack([self.blocks[b] for b in ids])
                arr = rng.permuted(np.broadcast_to(base, (n_rel,) + base.shape), axis=2)
            self.groups.append((ids, arr))
        self._codes = None

    def draw(self, rows: np.ndarray):
        """Relabelling index and per-block lags ``(len(rows), n_blocks)`` of these resamples.

        The other blocks' lags are drawn here, batch by batch, so memory stays bounded.
        """
        nb = len(self.blocks)
        if self.few:
            lags = np.empty((rows.size, nb), dtype=np.intp)
            for b, size in enumerate(self.sizes):
                if b == self.big:
                    lags[:, b] = self.big_lags[rows]
                else:
                    lags[:, b] = self.rng.integers(1, size, size=rows.size)
        else:
            lags = self.rng.integers(1, self.sizes, size=(rows.size, nb)).astype(np.intp)
            lags[:, self.big] = self.big_lags[rows]
        return self.rel[rows], lags

    def describe(self, m: int) -> str:
        nb = len(self.blocks)
        where = f"within each of {nb} blocks" if nb > 1 else f"of {self.n} trials"
        exact = ""
        if nb == 1 and self.n_relabel == 1 and m == self.n - 1:
            exact = "; all n-1 lags of one order: exact cyclic permutation test"
        return (f"trial re-pairing by random derangements {where} (B of trial sigma(j+k) with A of "
                f"trial sigma(j), k != 0, {self.n_relabel} uniformly random trial order(s) sigma"
                f"{exact}), {m} resamples, p=(b+1)/(m+1)")

    def permutations(self, rel: np.ndarray, lags: np.ndarray) -> np.ndarray:
        """Re-pairings ``pi`` (len(rel), n): B of trial ``pi[i]`` goes with A of trial ``i``."""
        out = np.empty((rel.size, self.n), dtype=np.intp)
        flat = out.reshape(-1)
        rowbase = (np.arange(rel.size, dtype=np.intp) * self.n)[:, None, None]
        for ids, arr in self.groups:
            size = arr.shape[2]
            order = arr[rel]  # (batch, blocks, size)
            pos = (np.arange(size)[None, None, :] + lags[:, ids][:, :, None]) % size
            flat[(rowbase + order).reshape(-1)] = np.take_along_axis(order, pos, axis=2).reshape(-1)
        return out

    def cross_tables(self, wx: np.ndarray, wy: np.ndarray) -> list:
        """Per block group, ``T[r, i, k] = sum_j wx[o_j]^T wy[o_(j+k)]`` (n_rel, blocks, size, dx, dy)."""
        tables = []
        for _, arr in self.groups:
            size = arr.shape[2]
            if wx.shape[1] == 1 and wy.shape[1] == 1:  # scalar observables: no outer product
                fa = np.fft.rfft(wx[arr, 0], axis=2)
                fb = np.fft.rfft(wy[arr, 0], axis=2)
                tables.append(np.fft.irfft(np.conj(fa) * fb, n=size, axis=2)[..., None, None])
                continue
            fa = np.fft.rfft(wx[arr], axis=2)
            fb = np.fft.rfft(wy[arr], axis=2)
            prod = np.conj(fa)[..., :, None] * fb[..., None, :]
            tables.append(np.fft.irfft(prod, n=size, axis=2))
        return tables

    def cross_moments(self, tables: list, rel: np.ndarray, lags: np.ndarray) -> np.ndarray:
        """``sum_b T_(rel, b)[lag_b]`` for the given resamples: (len(rel), dx, dy)."""
        out = np.zeros((rel.size,) + tables[0].shape[3:])
        for (ids, _), table in zip(self.groups, tables):
            out += table[rel[:, None], np.arange(ids.size)[None, :], lags[:, ids]].sum(axis=1)
        return out

    def table_cost(self, per_lag: int) -> tuple:
        """(memory of the FFT tables, gathers per resample) for ``per_lag`` values per lag."""
        return self.n_relabel * self.n * per_lag, len(self.blocks) * per_lag

    def joint_counts(self, ca: np.ndarray, cb: np.ndarray, kb: int, cells: int, rel: np.ndarray,
                     lags: np.ndarray) -> np.ndarray:
        """Contingency tables (len(rel), cells) of ``(ca[i], cb[pi(i)])`` over all trials ``i``.

        For the binned statistic when its FFT tables would be large (many small blocks): per
        resample a gather of ``n`` codes from each relabelling's codes in trial order, doubled
        so that a lag is a window (no modulo), and one ``bincount`` for the whole batch.
        """
        if self._codes is None or self._codes[0] is not ca or self._codes[1] is not cb:
            prepared = []
            for _, arr in self.groups:
                size = arr.shape[2]
                a = (ca[arr] * kb).astype(np.int32)
                b = cb[arr].astype(np.int32)
                windows = np.lib.stride_tricks.sliding_window_view(np.concatenate([b, b], axis=2), size, axis=2)
                prepared.append((a, windows))
            self._codes = (ca, cb, prepared)
        rows = rel.size
        offsets = (np.arange(rows, dtype=np.int32) * cells)[:, None, None]
        starts = np.flatnonzero(np.diff(rel, prepend=-1))  # rel is sorted: runs of one relabelling
        ends = np.append(starts[1:], rows)
        parts = []
        for (ids, arr), (a, windows) in zip(self.groups, self._codes[2]):
            joint = windows[rel[:, None], np.arange(arr.shape[1])[None, :], lags[:, ids]]  # (rows, blocks, size)
            joint += offsets
            for lo, hi in zip(starts, ends):
                joint[lo:hi] += a[rel[lo]]
            parts.append(joint.reshape(-1))
        flat = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return np.bincount(flat, minlength=rows * cells).reshape(rows, cells)


def random_derangements(n: int, size: int, *, blocks=None, rng=None) -> np.ndarray:
    """The re-pairings :func:`repairing_test` uses, as an array ``(size, n)`` of trial indices.

    Row ``r`` is a derangement ``pi`` (``pi[i] != i``) that maps every trial to a trial of
    its own block; see the module docstring for how they are drawn.
    """
    n = check_positive_int(n, "n", minimum=2)
    size = check_positive_int(size, "size")
    codes = as_group_codes(blocks, "blocks", n, min_group_size=2)
    scheme = _Repairing(codes, size, check_rng(rng))
    return scheme.permutations(*scheme.draw(np.arange(size)))


def time_local_blocks(order_key, *, size: int, within=None) -> np.ndarray:
    """Blocks of consecutive trials: integer codes ``0..B-1``, one per trial.

    Parameters
    ----------
    order_key : array_like, shape (n_trials,)
        What orders the trials in time (e.g. the trial ids); equal keys keep their order.
    size : int
        Trials per block (at least 2): the trials of each ``within`` group, in the order of
        ``order_key``, are cut into consecutive blocks of ``size``; the remainder joins the
        last block (so no block is smaller than ``size``, and none is ``2 size`` or larger),
        and a group with fewer than ``size`` trials is one block. ``0``: no time blocks,
        one block per ``within`` group.
    within : array_like, shape (n_trials,), optional
        Existing group labels (e.g. the run of each trial): blocks never straddle them.

    Returns
    -------
    numpy.ndarray of int
        Block codes numbered group by group (in the sorted order of the ``within`` labels)
        and in time within each group. Pass them as ``blocks`` to :func:`repairing_test`
        with ``standardize_within_blocks=True`` for a null that respects slow drifts.
    """
    key = np.asarray(order_key)
    if key.ndim != 1:
        raise PlanError(f"order_key must be 1-D with one entry per trial, got shape {key.shape}")
    n = key.size
    if n < 1:
        raise PlanError("order_key is empty")
    try:
        size = int(size)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"size must be an integer >= 2 or 0; got {size!r}") from exc
    if size != 0 and size < 2:
        raise PlanError(f"size must be an integer >= 2 (trials per block) or 0 (no time blocks); got {size}")
    groups = as_group_codes(within, "within", n)
    counts = np.bincount(groups)
    if size == 0:
        return groups.copy()
    order = np.lexsort((key, groups))
    gs = groups[order]
    pos = np.arange(n) - (np.cumsum(counts) - counts)[gs]
    n_blocks = np.maximum(1, counts // size)
    first = np.cumsum(n_blocks) - n_blocks
    out = np.empty(n, dtype=np.intp)
    out[order] = first[gs] + np.minimum(pos // size, n_blocks[gs] - 1)
    return out


def _center_scale_within(v: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each column centred and scaled (1/n standard deviation) within each group of ``codes``."""
    counts = np.bincount(codes).astype(float)[:, None]
    sums = np.stack([np.bincount(codes, weights=v[:, c]) for c in range(v.shape[1])], axis=1)
    mean = sums / counts
    dev = v - mean[codes]
    ss = np.stack([np.bincount(codes, weights=dev[:, c] ** 2) for c in range(v.shape[1])], axis=1)
    sd = np.sqrt(ss / counts)
    return dev / np.where(sd > 0, sd, 1.0)[codes]


def _all_pvalues(values: np.ndarray, alternative: str) -> np.ndarray:
    """The p-value ``#{j: v_j at least as extreme as v_i} / (m + 1)`` of every one of ``m + 1`` values.

    Entry 0 is the observed value and its p-value is :func:`_pvalue`'s (same tolerance).
    """
    total = values.size
    s = np.sort(values)
    gamma = np.where(np.isfinite(values), np.abs(values) * np.finfo(np.float64).eps * 100, 0.0)
    p_greater = (total - np.searchsorted(s, values - gamma, side="left")) / total
    p_less = np.searchsorted(s, values + gamma, side="right") / total
    if alternative == "greater":
        return p_greater
    if alternative == "less":
        return p_less
    return np.minimum(1.0, 2.0 * np.minimum(p_greater, p_less))


def _min_p(parts: dict, alternative: str) -> tuple:
    """Min-p combination over the same resamples: ``(p, {name: (observed, p)})``.

    Every one of the ``m + 1`` values (observed first) gets its rank p-value within each
    component's ``m + 1`` values; the combined p-value is the fraction of the ``m + 1``
    whose smallest component p-value is at most the observed one. The ``m + 1`` are
    exchangeable under the null, so this is exact, and the multiplicity is paid in full.
    """
    pv = np.stack([_all_pvalues(np.concatenate([[obs], null]), alternative) for obs, null in parts.values()])
    minp = pv.min(axis=0)
    combined = float(np.count_nonzero(minp <= minp[0]) / minp.size)
    comps = {name: (float(obs), float(p)) for (name, (obs, _)), p in zip(parts.items(), pv[:, 0])}
    return combined, comps


def _one_hot(codes: np.ndarray, cells: int) -> np.ndarray:
    out = np.zeros((codes.size, cells))
    out[np.arange(codes.size), codes] = 1.0
    return out


_OMNIBUS = "copula_omnibus"


def _side_cells(cells: int, d: int) -> int:
    from corrlab.analysis.mi import _column_bins

    return _column_bins(cells, d) ** d


def _describe_omnibus(grid: str, what: str = "") -> str:
    return (f"{what}Gaussian-copula MI (rank normal scores, nats: the statistic) and, for any dependence, the binned "
            f"MI of the {grid} quantile grid of the ranks (G/2n, nats), min-p combined over the same resamples "
            "(the p-value is the combination's)")


def repairing_test(
    x,
    y,
    *,
    statistic: str | Callable = "gaussian_copula",
    n_resamples: int = 9999,
    alternative: str = "greater",
    blocks=None,
    standardize_within_blocks: bool = False,
    rng=None,
    k: int = 3,
    vectorized: bool = False,
    batch: int | None = None,
) -> PermutationTestResult:
    """Test independence of trial-level observables by re-pairing trials (derangements).

    Parameters
    ----------
    x, y : array_like, shape (n_trials,) or (n_trials, d)
        The per-trial observables of side A and side B (for a callable statistic, any
        arrays whose first axis is the trial).
    statistic : {"gaussian_copula", "copula_omnibus", "gaussian", "ksg"} or callable, default "gaussian_copula"
        The dependence statistic: a mutual information estimator (nats), or
        ``statistic(x, y) -> float``. ``"copula_omnibus"`` is the Gaussian-copula MI and
        the binned rank MI (:func:`corrlab.analysis.mi.binned_mi`), min-p combined (module
        docstring): it sees non-monotone dependence too.
    n_resamples : int, default 9999
        Number of re-pairings ``m``.
    alternative : {"greater", "less", "two-sided"}, default "greater"
        ``"greater"``: the observed statistic is larger than under re-pairing.
    blocks : array_like, shape (n_trials,), optional
        Block label per trial: trials are re-paired only within their block (each block
        needs at least 2 trials). Use one block per run to pool runs, or
        :func:`time_local_blocks` against slow drifts.
    standardize_within_blocks : bool, default False
        Transform each marginal within each block before the statistic: rank normal scores
        of within-block ranks (``"gaussian_copula"``, ``"copula_omnibus"``; its binned part
        cuts within-block ranks), within-block centring and scaling (``"gaussian"``,
        ``"ksg"``: normal scores of small blocks would repeat the same values in every
        block, ties KSG cannot take). Not for a callable.
    rng : None, int or numpy.random.Generator
    k : int, default 3
        Neighbours for ``statistic="ksg"``.
    vectorized : bool, default False
        For a callable: call it as ``statistic(x, y_batch)`` with ``y_batch`` of shape
        ``(batch, n_trials, ...)``, returning ``(batch,)`` (the observed value is
        ``statistic(x, y[None])[0]``).
    batch : int, optional
        Resamples per vectorized step (bounds memory; default keeps a step near 32 MB).

    Returns
    -------
    PermutationTestResult
        ``method`` states the re-pairing scheme; the module docstring explains it. For
        ``"copula_omnibus"``, ``statistic`` and ``null_distribution`` are the copula MI's,
        ``pvalue`` the combination's, and ``components`` holds each part's
        ``(statistic, pvalue)``.
    """
    stat = _check_statistic(statistic, extra=(_OMNIBUS,))
    n_resamples, gen, batch = _check_common(n_resamples, alternative, rng, batch)
    standardize = bool(standardize_within_blocks)
    if standardize and callable(stat):
        raise PlanError("standardize_within_blocks needs a named statistic ('gaussian_copula', 'copula_omnibus', "
                        "'gaussian' or 'ksg'), not a callable")
    if callable(stat):
        xa = np.asarray(x)
        ya = np.asarray(y)
        if xa.ndim == 0 or ya.ndim == 0:
            raise PlanError("x and y must have a first (trial) axis")
        n = same_length(x=xa, y=ya)
        estimator = _callable_name(stat)
    else:
        xa = as_observations(x, "x", min_size=3)
        ya = as_observations(y, "y", min_size=3)
        n = same_length(x=xa, y=ya)
        estimator = "" if stat == _OMNIBUS else describe_estimator(stat, k)
    if n < 2:
        raise PlanError(f"re-pairing needs at least 2 trials; got {n}")
    codes = as_group_codes(blocks, "blocks", n, min_group_size=2)
    scheme = _Repairing(codes, n_resamples, gen)
    rows_all = np.arange(n_resamples)
    within = codes if standardize else None
    method = scheme.describe(n_resamples)
    if standardize:
        how = "within-block centring and scaling" if stat in ("gaussian", "ksg") else "normal scores of within-block ranks"
        method += f"; marginals standardised within each block ({how}) before the statistic"
    extra = {}

    if stat in ("gaussian", "gaussian_copula", _OMNIBUS):
        if stat == "gaussian":
            xs, ys = (_center_scale_within(xa, codes), _center_scale_within(ya, codes)) if standardize else (xa, ya)
        else:
            xs, ys = normal_scores(xa, groups=within), normal_scores(ya, groups=within)
        wx, wy = _whiten(xs, "x"), _whiten(ys, "y")
        observed = float(_mi_from_cross((wx.T @ wy)[None] / n)[0])
        tables = scheme.cross_tables(wx, wy)
        nb = len(scheme.blocks)
        if stat != _OMNIBUS:
            step = _batch_size(batch, nb * wx.shape[1] * wy.shape[1])
            null = np.concatenate([
                _mi_from_cross(scheme.cross_moments(tables, *scheme.draw(rows_all[s: s + step])) / n)
                for s in range(0, n_resamples, step)
            ])
        else:
            cells = omnibus_bins(n)
            ca, ka = rank_codes(xa, cells, groups=within)
            cb, kb = rank_codes(ya, cells, groups=within)
            observed_b = float(_binned_mi_from_counts(np.bincount(ca * kb + cb, minlength=ka * kb).reshape(ka, kb)))
            memory, gathers = scheme.table_cost(ka * kb)
            use_tables = memory <= 2 * _MEMORY_ELEMENTS and gathers <= n
            if use_tables:
                tables_b = scheme.cross_tables(_one_hot(ca, ka), _one_hot(cb, kb))
                step = _batch_size(batch, nb * max(ka * kb, wx.shape[1] * wy.shape[1]))
            else:
                step = _batch_size(batch, 16 * n)  # ~13 rows at n = 20000: stays in cache
            null = np.empty(n_resamples)
            null_b = np.empty(n_resamples)
            for s in range(0, n_resamples, step):
                rel, lags = scheme.draw(rows_all[s: s + step])
                null[s: s + rel.size] = _mi_from_cross(scheme.cross_moments(tables, rel, lags) / n)
                if use_tables:
                    counts = np.rint(scheme.cross_moments(tables_b, rel, lags))
                else:
                    counts = scheme.joint_counts(ca, cb, kb, ka * kb, rel, lags)
                null_b[s: s + rel.size] = _binned_mi_from_counts(counts.reshape(-1, ka, kb))
            parts = {"gaussian_copula": (observed, null), "binned": (observed_b, null_b)}
            pvalue, comps = _min_p(parts, alternative)
            estimator = _describe_omnibus(f"{ka}x{kb}")
            extra = {"components": comps, "component_nulls": {"gaussian_copula": null, "binned": null_b}}
    elif stat == "ksg":
        if standardize:
            xa, ya = _center_scale_within(xa, codes), _center_scale_within(ya, codes)
        est = KSGEstimator(xa, ya, k=k)
        observed = est()
        step = _batch_size(batch, n)
        null = np.empty(n_resamples)
        for s in range(0, n_resamples, step):
            rows = rows_all[s: s + step]
            for j, perm in zip(rows, scheme.permutations(*scheme.draw(rows))):
                null[j] = est(perm)
    else:
        if vectorized:
            first = np.asarray(stat(xa, ya[None]), dtype=float).reshape(-1)
            if first.size != 1:
                raise PlanError(f"vectorized statistic returned {first.size} values for 1 resample")
            observed = float(first[0])
        else:
            observed = _scalar(stat(xa, ya), "statistic(x, y)")
        step = _batch_size(batch, int(np.prod(ya.shape)))
        null = np.empty(n_resamples)
        for s in range(0, n_resamples, step):
            rows = rows_all[s: s + step]
            perms = scheme.permutations(*scheme.draw(rows))
            if vectorized:
                vals = np.asarray(stat(xa, ya[perms]), dtype=float).reshape(-1)
                if vals.size != rows.size:
                    raise PlanError(f"vectorized statistic returned {vals.size} values for {rows.size} resamples")
                null[rows] = vals
            else:
                for j, perm in zip(rows, perms):
                    null[j] = _scalar(stat(xa, ya[perm]), "statistic(x, y)")
    if not extra:
        pvalue = _pvalue(observed, null, alternative)
    return PermutationTestResult(
        statistic=observed,
        pvalue=pvalue,
        null_distribution=null,
        n_resamples=n_resamples,
        method=method,
        alternative=alternative,
        estimator=estimator,
        **extra,
    )


def _scalar(value, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{what} must return a real number; got {type(value).__name__}") from exc


# ----------------------------------------------------------------------------- circular shifts


def circular_shift_test(
    xa,
    xb,
    *,
    statistic: str | Callable = "gaussian",
    n_resamples: int = 9999,
    alternative: str = "greater",
    rng=None,
    k: int = 3,
    batch: int | None = None,
) -> PermutationTestResult:
    """Test independence of sample-level series by independent circular shifts of B per trial.

    Parameters
    ----------
    xa, xb : array_like (n_trials, n_samples) or sequences of 1-D arrays
        The series of side A and side B, trial by trial (trial ``i`` of ``xa`` and of ``xb``
        must have the same length; trials may differ in length).
    statistic : {"gaussian", "correlation", "ksg"} or callable, default "gaussian"
        On the samples pooled over trials: ``"correlation"`` is the Pearson correlation at
        lag 0, ``"gaussian"`` the Gaussian MI ``-1/2 ln(1 - r^2)`` (nats), ``"ksg"`` the KSG
        MI of the pooled samples; a callable is ``statistic(a, b) -> float`` on the pooled
        1-D arrays.
    n_resamples, alternative, rng, batch
        As in :func:`repairing_test`. Use ``"two-sided"`` with ``"correlation"`` for a
        sign-agnostic test.
    k : int, default 3
        Neighbours for ``"ksg"``.

    Notes
    -----
    Under the null each B series is independent of its A series and circularly stationary,
    so every combination of shifts (the group ``Z_n1 x Z_n2 x ...``) leaves the joint law
    unchanged; shifts are drawn uniformly from that group, so the p-value is exact under
    that null and approximately right for stationary series (the wrap-around splice is one
    point in ``n``). The shifts keep every trial's mean, so dependence *between* trial
    means is not what this tests: :func:`repairing_test` does that. For ``"gaussian"`` and
    ``"correlation"`` the pooled standardisation is fixed (shifts do not change it) and each
    trial's cross-correlation at every lag comes from one FFT, so a resample is a sum of
    ``n_trials`` table lookups. ``"ksg"`` redoes the joint neighbour search per resample
    (marginal orders reused): use a few hundred resamples on long records.
    """
    stat = _check_statistic(statistic, extra=("correlation",))
    if stat == "gaussian_copula":
        raise PlanError("statistic must be one of 'gaussian', 'correlation', 'ksg' or a callable for "
                        "circular_shift_test; got 'gaussian_copula'")
    n_resamples, gen, batch = _check_common(n_resamples, alternative, rng, batch)
    a_list = as_series_list(xa, "xa")
    b_list = as_series_list(xb, "xb")
    if len(a_list) != len(b_list):
        raise PlanError(f"xa has {len(a_list)} trials and xb has {len(b_list)}")
    lengths = np.array([a.size for a in a_list])
    for i, (a, b) in enumerate(zip(a_list, b_list)):
        if a.size != b.size:
            raise PlanError(f"trial {i}: xa has {a.size} samples and xb has {b.size}")
    n_trials = lengths.size
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.sum())
    a = np.concatenate(a_list)
    b = np.concatenate(b_list)

    def draw_shifts(count):
        return np.floor(gen.random((count, n_trials)) * lengths).astype(np.intp)

    method = (f"circular time shifts of B, independent and uniform within each of {n_trials} trials "
              f"({total} samples), {n_resamples} resamples, p=(b+1)/(m+1)")

    if stat in ("gaussian", "correlation"):
        sa, sb = a.std(), b.std()
        if sa == 0 or sb == 0:
            raise PlanError("xa or xb is constant; the correlation is undefined")
        za = (a - a.mean()) / sa
        zb = (b - b.mean()) / sb
        table = np.empty(total)
        for length in np.unique(lengths):  # batch the FFTs of equal-length trials
            idx = np.flatnonzero(lengths == length)
            rows = offsets[idx][:, None] + np.arange(length)[None, :]
            fa = np.fft.rfft(za[rows], axis=1)
            fb = np.fft.rfft(zb[rows], axis=1)
            table[rows] = np.fft.irfft(np.conj(fa) * fb, n=length, axis=1)
        r_obs = float(za @ zb) / total
        step = _batch_size(batch, n_trials)
        r_null = np.concatenate([table[offsets + draw_shifts(min(step, n_resamples - s))].sum(axis=1)
                                 for s in range(0, n_resamples, step)]) / total
        if stat == "correlation":
            observed, null = r_obs, r_null
            estimator = "Pearson correlation at lag 0 of the samples pooled over trials"
        else:
            observed = float(-0.5 * math.log1p(-min(r_obs * r_obs, 1.0)))
            with np.errstate(divide="ignore"):
                null = -0.5 * np.log1p(-np.minimum(r_null * r_null, 1.0))
            estimator = "Gaussian MI -1/2 ln(1 - r^2) of the samples pooled over trials (nats)"
    else:
        base = np.arange(total) - np.repeat(offsets, lengths)  # time index within the trial
        trial_of = np.repeat(np.arange(n_trials), lengths)

        def shifted_index(row):
            return offsets[trial_of] + (base + row[trial_of]) % lengths[trial_of]

        null = np.empty(n_resamples)
        if stat == "ksg":
            est = KSGEstimator(a, b, k=k)
            observed = est()
            for j in range(n_resamples):
                null[j] = est(shifted_index(draw_shifts(1)[0]))
            estimator = describe_estimator("ksg", k) + ", samples pooled over trials"
        else:
            observed = _scalar(stat(a, b), "statistic(a, b)")
            for j in range(n_resamples):
                null[j] = _scalar(stat(a, b[shifted_index(draw_shifts(1)[0])]), "statistic(a, b)")
            estimator = _callable_name(stat) + " of the samples pooled over trials"
    return PermutationTestResult(
        statistic=float(observed),
        pvalue=_pvalue(float(observed), null, alternative),
        null_distribution=null,
        n_resamples=n_resamples,
        method=method,
        alternative=alternative,
        estimator=estimator,
    )


# ----------------------------------------------------------------------------- label permutation


def _within_block_label_permutations(member: np.ndarray, codes: np.ndarray, count: int,
                                     rng: np.random.Generator) -> np.ndarray:
    """``count`` random permutations of the boolean ``member`` within blocks: (count, n) bool."""
    n = member.size
    if codes.max() == 0:
        return rng.permuted(np.broadcast_to(member, (count, n)), axis=1)
    order = np.argsort(codes, kind="stable")
    labels_in_order = member[order]
    keys = codes[None, :] + rng.random((count, n))
    pos = np.argsort(keys, axis=1)  # block-grouped positions, random within each block
    out = np.empty((count, n), dtype=bool)
    np.put_along_axis(out, pos, np.broadcast_to(labels_in_order, (count, n)), axis=1)
    return out


def _group_gaussian_mi(z: np.ndarray, masks: np.ndarray, dx: int) -> np.ndarray:
    """Gaussian MI of the rows selected by each mask (batch, n) from z = [x, y] (n, D)."""
    cnt = masks.sum(axis=1).astype(float)
    fm = masks.astype(float)
    s1 = fm @ z  # (batch, D)
    if z.shape[1] == 2:
        sxx = fm @ (z[:, 0] ** 2)
        syy = fm @ (z[:, 1] ** 2)
        sxy = fm @ (z[:, 0] * z[:, 1])
        cxx = sxx - s1[:, 0] ** 2 / cnt
        cyy = syy - s1[:, 1] ** 2 / cnt
        cxy = sxy - s1[:, 0] * s1[:, 1] / cnt
        r2 = np.minimum(cxy * cxy / (cxx * cyy), 1.0)
        with np.errstate(divide="ignore"):
            return -0.5 * np.log1p(-r2)
    s2 = np.einsum("bn,ni,nj->bij", fm, z, z)
    cov = s2 - s1[:, :, None] * s1[:, None, :] / cnt[:, None, None]
    return _mi_from_cov(cov, dx)


def _mi_from_cov(cov: np.ndarray, dx: int) -> np.ndarray:
    _, ld = np.linalg.slogdet(cov)
    _, ldx = np.linalg.slogdet(cov[:, :dx, :dx])
    _, ldy = np.linalg.slogdet(cov[:, dx:, dx:])
    return 0.5 * (ldx + ldy - ld)


def _column_order(z: np.ndarray, c: int) -> np.ndarray:
    """Sort order of column ``c``, ties broken by a fixed random key drawn for that column.

    The within-group ranks of the label test are counts along this order. Breaking ties by
    trial index would give tied values of two columns the same order, a dependence the
    data do not have (discrete observables); independent keys per column do not.
    """
    key = np.random.default_rng(1000 + c).random(z.shape[0])
    return np.lexsort((key, z[:, c]))


def _group_copula_mi(z: np.ndarray, masks: np.ndarray, dx: int, n1: int, n2: int) -> tuple:
    """Gaussian-copula MI of group 1 (mask) and group 2 (~mask), ranks taken within each group."""
    from scipy.special import ndtri

    q1 = ndtri(np.arange(1, n1 + 1) / (n1 + 1))
    q2 = ndtri(np.arange(1, n2 + 1) / (n2 + 1))
    s1, s2 = float(q1 @ q1), float(q2 @ q2)
    batch, n = masks.shape
    scores = np.empty((batch, n, z.shape[1]))
    for c in range(z.shape[1]):
        order = _column_order(z, c)
        ms = masks[:, order]
        r1 = np.cumsum(ms, axis=1)
        r2 = np.cumsum(~ms, axis=1)
        sc = np.where(ms, q1[np.maximum(r1 - 1, 0)], q2[np.maximum(r2 - 1, 0)])
        scores[:, order, c] = sc
    if z.shape[1] == 2:
        prod = scores[:, :, 0] * scores[:, :, 1]
        r_a = np.where(masks, prod, 0.0).sum(axis=1) / s1
        r_b = np.where(masks, 0.0, prod).sum(axis=1) / s2
        with np.errstate(divide="ignore"):
            return (-0.5 * np.log1p(-np.minimum(r_a * r_a, 1.0)),
                    -0.5 * np.log1p(-np.minimum(r_b * r_b, 1.0)))
    fm = masks.astype(float)
    r_a = np.einsum("bn,bni,bnj->bij", fm, scores, scores) / s1
    r_b = np.einsum("bn,bni,bnj->bij", 1.0 - fm, scores, scores) / s2
    return _mi_from_cov(r_a, dx), _mi_from_cov(r_b, dx)


def _group_binned_mi(z: np.ndarray, masks: np.ndarray, dx: int, n1: int, n2: int) -> tuple:
    """Binned rank MI of group 1 (mask) and group 2 (~mask), ranks and grid taken within each group.

    The grid of each group is :func:`corrlab.analysis.mi.rank_codes`'s for that group's size
    (``omnibus_bins(n_g)`` cells per side); ranks are cumulative counts along each column's
    fixed sort order (ties broken by a fixed random key per column).
    """
    from corrlab.analysis.mi import _column_bins

    batch, n = masks.shape
    sides = ((0, dx), (dx, z.shape[1]))
    side_codes = {1: [np.zeros((batch, n), dtype=np.intp) for _ in sides],
                  2: [np.zeros((batch, n), dtype=np.intp) for _ in sides]}
    side_cells = {1: [], 2: []}
    for g, size in ((1, n1), (2, n2)):
        cells = omnibus_bins(size)
        for lo, hi in sides:
            side_cells[g].append(_column_bins(cells, hi - lo) ** (hi - lo))
    for si, (lo, hi) in enumerate(sides):
        d = hi - lo
        b1, b2 = _column_bins(omnibus_bins(n1), d), _column_bins(omnibus_bins(n2), d)
        for c in range(lo, hi):
            order = _column_order(z, c)
            ms = masks[:, order]
            r1 = np.cumsum(ms, axis=1)
            r2 = np.cumsum(~ms, axis=1)
            k1 = np.minimum((b1 * (2 * r1 - 1)) // (2 * n1), b1 - 1)  # floor(b (r - 1/2) / n)
            k2 = np.minimum((b2 * (2 * r2 - 1)) // (2 * n2), b2 - 1)
            col1 = np.empty((batch, n), dtype=np.intp)
            col2 = np.empty((batch, n), dtype=np.intp)
            col1[:, order] = k1
            col2[:, order] = k2
            side_codes[1][si] = side_codes[1][si] * b1 + col1
            side_codes[2][si] = side_codes[2][si] * b2 + col2
    (kx1, ky1), (kx2, ky2) = side_cells[1], side_cells[2]
    c1, c2 = kx1 * ky1, kx2 * ky2
    joint = np.where(masks, side_codes[1][0] * ky1 + side_codes[1][1], c1 + side_codes[2][0] * ky2 + side_codes[2][1])
    joint += (np.arange(batch, dtype=np.intp) * (c1 + c2))[:, None]
    counts = np.bincount(joint.reshape(-1), minlength=batch * (c1 + c2)).reshape(batch, c1 + c2)
    return (_binned_mi_from_counts(counts[:, :c1].reshape(batch, kx1, ky1)),
            _binned_mi_from_counts(counts[:, c1:].reshape(batch, kx2, ky2)))


def label_permutation_test(
    values,
    labels,
    *,
    statistic: str | Callable = "gaussian_copula",
    groups=None,
    blocks=None,
    standardize_within_groups: bool = False,
    n_resamples: int = 9999,
    alternative: str = "greater",
    rng=None,
    k: int = 3,
    batch: int | None = None,
) -> LabelPermutationResult:
    """Test ``MI(groups[0]) > MI(groups[1])`` by permuting condition labels among trials.

    Parameters
    ----------
    values : pair (x, y)
        Per-trial observables of side A and side B: arrays of shape ``(n_trials,)`` or
        ``(n_trials, d)``, over all trials of the dataset.
    labels : array_like of str, shape (n_trials,)
        Condition of each trial (``"main"``, ``"control:break_L"``, ...). Trials of other
        conditions are ignored.
    statistic : {"gaussian_copula", "copula_omnibus", "gaussian", "ksg"} or callable, default "gaussian_copula"
        The MI estimator applied to each group; the test statistic is the difference. A
        callable is ``statistic(x, y) -> float`` applied to each group's rows.
        ``"copula_omnibus"``: the difference of the Gaussian-copula MIs and the difference
        of the binned rank MIs, min-p combined over the same label permutations
        (``statistic``, ``estimates`` and ``null_distribution`` are the copula's;
        ``components`` holds both).
    groups : (str, str), optional
        The two conditions compared, group 1 first. Default: the two labels present
        (``"main"`` first if it is one of them); more than two labels need ``groups``.
    blocks : array_like, shape (n_trials,), optional
        Randomisation block of each trial: labels are permuted only within blocks, which
        keeps the interleaving design (and so holds against drift between blocks).
    standardize_within_groups : bool, default False
        Before permuting, transform each condition's marginals within that condition:
        normal scores of within-condition ranks (``"gaussian_copula"``,
        ``"copula_omnibus"``), centring and scaling within the condition (``"gaussian"``,
        ``"ksg"``). The null is then "the dependence (the copula; for ``"gaussian"``, the
        correlation) is the same in the two conditions", whatever each condition's
        marginals (gain, offset), instead of "the condition changes nothing at all". The
        transformation is per condition over the whole dataset, not per condition x
        block cell: an interleaved schedule leaves a handful of trials of a condition in
        a block, and ranks of a handful throw most of the information away. Not for a
        callable.
    n_resamples, alternative, rng, batch
        As in :func:`repairing_test`; ``"greater"`` asks whether group 1 has the larger MI.
    k : int, default 3
        Neighbours for ``statistic="ksg"``.

    Notes
    -----
    Under the null that a trial's condition does not change the joint law of its
    ``(x, y)`` (and, within blocks, that trials of the two conditions are exchangeable)
    every permutation of the labels is equally likely, so ``(b + 1)/(m + 1)`` is exact.
    For ``"gaussian"`` the per-group correlations of every resample come from one matrix
    product with the group masks; for ``"gaussian_copula"`` the normal scores are recomputed
    from ranks *within each group* for every resample (a cumulative count along each
    column's fixed sort order, ties broken by a fixed random key per column),
    exactly as :func:`corrlab.analysis.mi.gaussian_copula_mi` would on each group.

    Without ``standardize_within_groups``, a permuted group mixes trials of both
    conditions, so two conditions with the same dependence but different marginals (a
    control recorded with another gain and offsets) have a permutation null made of
    mixtures, whose dependence differs from either: the test then flags marginals, not
    dependence. With it, every trial carries marginals of the same law, and under the
    null "same copula" the transformed pairs of the two conditions have the same joint law
    (up to the rank transform's finite-sample dependence between trials of a condition,
    so the test is exact for the hypothesis on the transformed data and very nearly so
    for "same copula").
    """
    stat = _check_statistic(statistic, extra=(_OMNIBUS,))
    standardize = bool(standardize_within_groups)
    if standardize and callable(stat):
        raise PlanError("standardize_within_groups needs a named statistic ('gaussian_copula', 'copula_omnibus', "
                        "'gaussian' or 'ksg'), not a callable")
    n_resamples, gen, batch = _check_common(n_resamples, alternative, rng, batch)
    try:
        x, y = values
    except (TypeError, ValueError) as exc:
        raise PlanError("values must be a pair (x, y) of per-trial arrays") from exc
    if callable(stat):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 0 or y.ndim == 0:
            raise PlanError("x and y must have a first (trial) axis")
    else:
        x = as_observations(x, "values[0] (x)", min_size=1)
        y = as_observations(y, "values[1] (y)", min_size=1)
    n_all = same_length(x=x, y=y)
    labels = np.asarray(labels).astype(str)
    if labels.ndim != 1 or labels.size != n_all:
        raise PlanError(f"labels must have one entry per trial ({n_all}); got shape {labels.shape}")
    present = list(dict.fromkeys(labels.tolist()))
    if groups is None:
        if len(present) != 2:
            raise PlanError(f"groups must name the two conditions to compare; labels has {present}")
        groups = tuple(sorted(present, key=lambda g: (g != "main", g)))
    try:
        g1, g2 = (str(g) for g in groups)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"groups must be a pair of condition labels; got {groups!r}") from exc
    if g1 == g2:
        raise PlanError(f"groups must name two different conditions; got {groups!r}")
    for g in (g1, g2):
        if g not in present:
            raise PlanError(f"groups: condition {g!r} has no trials; present are {present}")
    keep = np.flatnonzero((labels == g1) | (labels == g2))
    codes_all = as_group_codes(blocks, "blocks", n_all)
    x, y, codes = x[keep], y[keep], codes_all[keep]
    _, codes = np.unique(codes, return_inverse=True)
    codes = codes.reshape(-1)
    member = labels[keep] == g1
    n1, n2 = int(member.sum()), int((~member).sum())
    min_n = 3 if stat in ("gaussian", "gaussian_copula", _OMNIBUS) else 2
    if stat == "ksg":
        min_n = k + 1
    if min(n1, n2) < min_n:
        raise PlanError(f"each group needs at least {min_n} trials; {g1!r} has {n1}, {g2!r} has {n2}")
    n = member.size
    nb = int(codes.max()) + 1
    where = f" within {nb} blocks" if nb > 1 else ""
    method = (f"condition-label permutation{where} between {g1!r} ({n1} trials) and {g2!r} ({n2} trials), "
              f"{n_resamples} resamples, p=(b+1)/(m+1)")
    if standardize:
        cond = (~member).astype(np.intp)
        if stat in ("gaussian", "ksg"):
            x, y = _center_scale_within(x, cond), _center_scale_within(y, cond)
            how = "centred and scaled"
        else:
            x, y = normal_scores(x, groups=cond), normal_scores(y, groups=cond)
            how = "normal scores of within-condition ranks"
        method += f"; marginals standardised within each condition ({how}) before permuting"
    extra = {}

    if stat in ("gaussian", "gaussian_copula", _OMNIBUS):
        dx = x.shape[1]
        z = np.concatenate([x, y], axis=1)
        z = (z - z.mean(axis=0)) / np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
        if stat == _OMNIBUS:
            grids = [f"{_side_cells(omnibus_bins(size), dx)}x{_side_cells(omnibus_bins(size), z.shape[1] - dx)} "
                     f"({g})" for size, g in ((n1, g1), (n2, g2))]
            estimator = _describe_omnibus(" and ".join(grids), what="difference between the groups of: ")
        else:
            estimator = "difference of " + describe_estimator(stat, k)

        def both(masks):
            if stat == "gaussian":
                return _group_gaussian_mi(z, masks, dx), _group_gaussian_mi(z, ~masks, dx)
            return _group_copula_mi(z, masks, dx, n1, n2)

        e1, e2 = both(member[None, :])
        est = (float(e1[0]), float(e2[0]))
        if stat == _OMNIBUS:
            f1, f2 = _group_binned_mi(z, member[None, :], dx, n1, n2)
            observed_b = float(f1[0] - f2[0])
        step = _batch_size(batch, n * (z.shape[1] + (8 if stat == _OMNIBUS else 2)))
        null_parts, null_b_parts = [], []
        for s in range(0, n_resamples, step):
            masks = _within_block_label_permutations(member, codes, min(step, n_resamples - s), gen)
            a, b = both(masks)
            null_parts.append(a - b)
            if stat == _OMNIBUS:
                a, b = _group_binned_mi(z, masks, dx, n1, n2)
                null_b_parts.append(a - b)
        null = np.concatenate(null_parts)
        if stat == _OMNIBUS:
            null_b = np.concatenate(null_b_parts)
            pvalue, comps = _min_p({"gaussian_copula": (est[0] - est[1], null), "binned": (observed_b, null_b)},
                                   alternative)
            extra = {"components": comps, "component_nulls": {"gaussian_copula": null, "binned": null_b}}
    else:
        if stat == "ksg":
            from corrlab.analysis.mi import ksg_mi

            def mi(xx, yy):
                return ksg_mi(xx, yy, k=k)

            estimator = "difference of " + describe_estimator("ksg", k)
        else:
            def mi(xx, yy):
                return _scalar(stat(xx, yy), "statistic(x, y)")

            estimator = "difference of " + _callable_name(stat)
        est = (mi(x[member], y[member]), mi(x[~member], y[~member]))
        null = np.empty(n_resamples)
        step = _batch_size(batch, n)
        for s in range(0, n_resamples, step):
            masks = _within_block_label_permutations(member, codes, min(step, n_resamples - s), gen)
            for j, msk in enumerate(masks):
                null[s + j] = mi(x[msk], y[msk]) - mi(x[~msk], y[~msk])
    observed = est[0] - est[1]
    if not math.isfinite(observed):
        raise PlanError(f"the statistic is not finite for the observed labels (MI {est}); "
                        "a group may be degenerate")
    return LabelPermutationResult(
        statistic=float(observed),
        pvalue=pvalue if extra else _pvalue(float(observed), null, alternative),
        null_distribution=null,
        n_resamples=n_resamples,
        method=method,
        alternative=alternative,
        estimator=estimator,
        groups=(g1, g2),
        estimates=est,
        n_trials=(n1, n2),
        **extra,
    )
