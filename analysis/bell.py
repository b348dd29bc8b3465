"""Bell-CHSH tests from recorded outcomes.

Data convention (the dataset contract)
--------------------------------------
A trial has one local setting per side (``setting_a``, ``setting_b`` in {0, 1}, drawn at
random per trial by the protocol) and one outcome per side. A dichotomic outcome is the
sign of the trial's observable, ``>= 0 -> +1`` (:func:`binarize`); outcomes bounded in
``[-1, 1]`` (e.g. a magnetization divided by the number of spins) are accepted as well.
``S = E(0,0) + E(0,1) + E(1,0) - E(1,1)`` unless ``arrangement`` names another setting pair
for the minus sign (the plan's ``chsh_minus``).

Two p-values for the null ``S <= 2`` (every local hidden variable model):

* ``pvalue_normal``: the normal approximation ``P(Z > (S - 2) / se)`` with
  ``se = sqrt(sum over pairs of Var(a b) / N_pair)`` (``(1 - E^2) / N_pair`` for +-1 outcomes).
  It assumes independent, identically distributed trials.
* ``pvalue`` (the bound; the results' ``pvalue`` and the one the evidence ladder uses):
  valid for **any** local model, including one with memory and drifting
  hidden variables (trials not identically distributed, not independent), as long as the
  settings of each trial are drawn with the stated probabilities independently of
  everything before. Per trial ``Y = sign(s, t) a b / (p_A(s) p_B(t))``: given the past and
  the trial's hidden variable, ``E[Y] = sum_{s,t} sign(s,t) a(s) b(t) <= 2``, so the
  ``Y_i - 2`` are supermartingale differences. With ``M = max 1 / (p_A p_B)`` the rescaled
  ``U = (Y + M) / (2 M)`` lies in ``[0, 1]`` with conditional mean at most
  ``u0 = (M + 2) / (2 M)``; Hoeffding's inequality in its Kullback-Leibler form holds for
  such sequences: ``P(mean U >= u) <= exp(-n KL(u || u0))``. With uniform settings and +-1
  outcomes ``U`` is the CHSH-game win indicator (``u0 = 3/4``), and the number of wins is
  stochastically below Binomial(n, 3/4): the bound is the exact binomial tail.

The theory these tests are compared with (correlation tensors, the Horodecki maximum, the
two-setting local bound, Werner states, the macroscopic Bell criteria of the seed paper)
lives in :mod:`corrlab.theory.qubits`, the one copy the simulated worlds use as well.

Qubit order: qubit 0 is the most significant (leftmost) factor of the tensor product, as
in ``numpy.kron`` and QuTiP.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from corrlab.analysis._validation import as_float_array, check_confidence_level, same_length
from corrlab.results import ConfidenceInterval, Result
from corrlab.errors import PlanError
from corrlab.validation import check_arrangement

__all__ = [
    "binarize",
    "chsh_test",
    "CHSHResult",
    "plane_tensor_from_correlators",
    "settings_test",
    "SettingsResult",
]

_PAIRS = ((0, 0), (0, 1), (1, 0), (1, 1))


# ---------------------------------------------------------------------------------------
# CHSH from outcomes
# ---------------------------------------------------------------------------------------
def binarize(values) -> np.ndarray:
    """The dichotomic outcome of each trial: ``+1`` where ``value >= 0``, else ``-1`` (int8)."""
    arr = as_float_array(values, "values", ndim=1)
    return np.where(arr >= 0, 1, -1).astype(np.int8)


def _settings(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise PlanError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    try:
        ok = np.isin(arr, (0, 1)).all()
    except TypeError:
        ok = False
    if not ok:
        bad = sorted({repr(v) for v in np.unique(arr).tolist() if v not in (0, 1)})[:3]
        raise PlanError(f"{name} must contain only the settings 0 and 1; found {', '.join(bad)}")
    return arr.astype(np.int8)


def _outcomes(x, name: str) -> np.ndarray:
    arr = as_float_array(x, name, ndim=1)
    if np.any(np.abs(arr) > 1.0 + 1e-12):
        i = int(np.flatnonzero(np.abs(arr) > 1.0 + 1e-12)[0])
        raise PlanError(
            f"{name} must be +-1 (or bounded in [-1, 1]); row {i} is {arr[i]!r}: "
            "binarize observables with corrlab.analysis.bell.binarize (>= 0 -> +1) or divide by their range"
        )
    return arr


def _probabilities(setting_probabilities) -> tuple[tuple[float, float], tuple[float, float]]:
    if setting_probabilities is None:
        return ((0.5, 0.5), (0.5, 0.5))
    try:
        (pa0, pa1), (pb0, pb1) = ((float(u), float(v)) for u, v in setting_probabilities)
    except (TypeError, ValueError) as exc:
        raise PlanError(
            "setting_probabilities must be ((p_A(0), p_A(1)), (p_B(0), p_B(1))); "
            f"got {setting_probabilities!r}"
        ) from exc
    for side, (u, v) in (("A", (pa0, pa1)), ("B", (pb0, pb1))):
        if not (0 < u < 1 and 0 < v < 1 and abs(u + v - 1) < 1e-9):
            raise PlanError(f"setting_probabilities of side {side} must be in (0, 1) and sum to 1; got ({u}, {v})")
    return ((pa0, pa1), (pb0, pb1))


def _kl_bernoulli(u: float, u0: float) -> float:
    """KL(u || u0) for Bernoulli means (nats), u in [0, 1], u0 in (0, 1)."""
    out = 0.0
    if u > 0:
        out += u * math.log(u / u0)
    if u < 1:
        out += (1 - u) * math.log((1 - u) / (1 - u0))
    return out


@dataclasses.dataclass(frozen=True)
class CHSHResult(Result):
    """CHSH from randomized local settings.

    Fields: ``S`` (also ``statistic``), ``se``, ``ci`` (normal), ``pvalue`` (the bound for
    ``S <= 2``, valid without identical distribution or independence, see the module doc;
    the results' ``pvalue``) and ``bound_method``, ``pvalue_normal`` (normal approximation,
    one-sided for ``S > 2``; the results' ``pvalue_normal``),
    ``correlators`` and ``counts`` per setting pair (keys ``"00"``, ``"01"``, ``"10"``,
    ``"11"`` = setting_a, setting_b), ``arrangement`` (the pair with the minus sign),
    ``S_unbiased`` (the estimate with the known setting probabilities, the mean of the
    per-trial ``Y`` the bound uses), ``wins`` (trials with ``sign * a * b > 0``),
    ``settings_pvalue`` (chi-square test that the observed setting-pair counts match the
    stated probabilities; a small value says the randomization or its record is off, and
    then neither p-value can be trusted).
    """

    S: float
    se: float
    ci: ConfidenceInterval
    pvalue: float
    pvalue_normal: float
    bound_method: str
    correlators: dict
    counts: dict
    arrangement: tuple[int, int]
    n_trials: int
    S_unbiased: float
    wins: int
    setting_probabilities: tuple
    settings_pvalue: float
    confidence_level: float

    @property
    def statistic(self) -> float:
        return self.S

    def summary(self) -> str:
        lo, hi = self.ci
        e = ", ".join(f"E{k} = {v:+.4f} (n={self.counts[k]})" for k, v in self.correlators.items())
        return "\n".join([
            f"CHSH (minus sign on settings {self.arrangement[0]}{self.arrangement[1]}), {self.n_trials} trials",
            f"  S = {self.S:.4f} +- {self.se:.4f}; {self.confidence_level:.0%} CI [{lo:.4f}, {hi:.4f}]",
            f"  p (S <= 2): normal {self.pvalue_normal:.3g}; bound {self.pvalue:.3g} ({self.bound_method})",
            f"  {e}",
            f"  settings balance p = {self.settings_pvalue:.3g}",
        ])


def chsh_test(
    outcome_a, outcome_b, setting_a, setting_b, *, arrangement=None,
    confidence_level: float = 0.95, setting_probabilities=None,
) -> CHSHResult:
    """CHSH ``S`` with its standard error, a model-free bound (``pvalue``) and a normal p-value
    (``pvalue_normal``) for ``S <= 2``.

    Parameters
    ----------
    outcome_a, outcome_b : one outcome per trial, +-1 (see :func:`binarize`) or in [-1, 1].
    setting_a, setting_b : the recorded local setting of each trial, 0 or 1.
    arrangement : the ``(setting_a, setting_b)`` pair that carries the minus sign; default
        ``(1, 1)``: ``S = E00 + E01 + E10 - E11``.
    confidence_level : of the normal interval ``S +- z se``.
    setting_probabilities : ``((p_A(0), p_A(1)), (p_B(0), p_B(1)))`` with which the protocol
        draws the settings, independently per trial; default uniform. ``pvalue`` (the bound)
        is valid only if this is how they were drawn.

    Every setting pair needs at least one trial (:class:`corrlab.errors.PlanError` otherwise).
    """
    level = check_confidence_level(confidence_level)
    a = _outcomes(outcome_a, "outcome_a")
    b = _outcomes(outcome_b, "outcome_b")
    sa = _settings(setting_a, "setting_a")
    sb = _settings(setting_b, "setting_b")
    n = same_length(outcome_a=a, outcome_b=b, setting_a=sa, setting_b=sb)
    minus = check_arrangement(arrangement)
    (pa, pb) = _probabilities(setting_probabilities)

    from scipy.special import bdtrc, chdtrc, ndtr, ndtri

    prod = a * b
    sign = np.where((sa == minus[0]) & (sb == minus[1]), -1.0, 1.0)
    corr, counts = {}, {}
    s_val, var = 0.0, 0.0
    for s, t in _PAIRS:
        mask = (sa == s) & (sb == t)
        k = int(mask.sum())
        key = f"{s}{t}"
        if k == 0:
            raise PlanError(f"setting pair ({s}, {t}) has no trials; CHSH needs all four setting pairs")
        x = prod[mask]
        e = float(x.mean())
        corr[key], counts[key] = e, k
        sgn = -1.0 if (s, t) == minus else 1.0
        s_val += sgn * e
        var += max(float(np.mean(x * x)) - e * e, 0.0) / k  # (1 - E^2) / N for +-1 outcomes
    se = math.sqrt(var)
    z = float(ndtri(0.5 + level / 2))
    ci = ConfidenceInterval(s_val - z * se, s_val + z * se, level, "normal approximation")
    if se > 0:
        p_normal = float(ndtr(-(s_val - 2.0) / se))
    else:
        p_normal = 0.0 if s_val > 2.0 else 1.0

    # the model-free bound: Y_i = sign a b / (p_A p_B), E[Y | past] <= 2 under any LHV model
    weight = np.array([[1.0 / (pa[0] * pb[0]), 1.0 / (pa[0] * pb[1])], [1.0 / (pa[1] * pb[0]), 1.0 / (pa[1] * pb[1])]])
    y = sign * prod * weight[sa, sb]
    big_m = float(weight.max())
    u = (y + big_m) / (2 * big_m)
    u0 = (big_m + 2.0) / (2 * big_m)
    binary = bool(np.all(np.abs(prod) == 1.0))
    uniform = all(abs(p - 0.5) < 1e-12 for p in (*pa, *pb))
    wins = int(np.sum(sign * prod > 0))
    if uniform and binary:
        p_bound = float(bdtrc(wins - 1, n, 0.75)) if wins > 0 else 1.0  # P(Binomial(n, 3/4) >= wins)
        method = "exact binomial tail of CHSH-game wins, P(win) <= 3/4 per trial under any LHV model with memory"
    else:
        ubar = float(u.mean())
        p_bound = math.exp(-n * _kl_bernoulli(min(ubar, 1.0), u0)) if ubar > u0 else 1.0
        method = ("Hoeffding (KL form) for the supermartingale sum of Y = sign*a*b/(p_A p_B), "
                  "E[Y] <= 2 under any LHV model")
    expected = np.array([n * pa[s] * pb[t] for s, t in _PAIRS])
    observed = np.array([counts[f"{s}{t}"] for s, t in _PAIRS])
    settings_p = float(chdtrc(3, np.sum((observed - expected) ** 2 / expected)))  # chi-square, 3 dof
    return CHSHResult(
        S=s_val, se=se, ci=ci, pvalue=min(1.0, p_bound), pvalue_normal=p_normal, bound_method=method,
        correlators=corr, counts=counts, arrangement=minus, n_trials=n,
        S_unbiased=float(y.mean()), wins=wins, setting_probabilities=(pa, pb),
        settings_pvalue=settings_p, confidence_level=level,
    )


# ---------------------------------------------------------------------------------------
# the correlation tensor in the setting planes, from measured correlators
# ---------------------------------------------------------------------------------------
def plane_tensor_from_correlators(E, theta_a, theta_b) -> np.ndarray:
    """The 2x2 correlation tensor in the setting planes from the four correlators.

    ``E[s][t]`` is the correlator of settings ``(s, t)``; the settings of each side are
    angles ``theta_*[0], theta_*[1]`` inside that side's plane (e.g. from z towards x). With
    ``A`` the rows ``(cos theta_a, sin theta_a)`` (and ``B`` likewise), ``E = A T B^T``. Feed
    ``np.sum(result**2)`` to the two-setting LHV condition (``<= 1``).
    """
    e = as_float_array(E, "E", ndim=2, min_size=2)
    if e.shape != (2, 2):
        raise PlanError(f"E must be 2x2 (settings of A by settings of B); got shape {e.shape}")
    rows = []
    for name, th in (("theta_a", theta_a), ("theta_b", theta_b)):
        t = as_float_array(th, name, ndim=1, min_size=2)
        if t.shape != (2,):
            raise PlanError(f"{name} must be two angles; got shape {t.shape}")
        m = np.stack([np.cos(t), np.sin(t)], axis=1)
        if abs(np.linalg.det(m)) < 1e-9:
            raise PlanError(f"{name}: the two settings are parallel or antiparallel and span no plane")
        rows.append(m)
    a_m, b_m = rows
    return np.linalg.solve(a_m, np.linalg.solve(b_m, e.T).T)


# ---------------------------------------------------------------------------------------
# were the settings drawn at random, independently of the past?
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SettingsResult(Result):
    """The CHSH bound's own assumption, checked from the data: settings drawn with the stated
    probabilities, each trial independently of the trials before.

    Fields: ``balance_statistic``, ``balance_pvalue`` (chi-square, 3 dof, of the setting-pair
    counts against the stated probabilities), ``independence_pvalue`` (exact permutation test of
    the setting pair against time block and against the pair of the trial before,
    :func:`corrlab.analysis.nosignalling.sequence_test`), ``block_pvalue``, ``serial_pvalue``,
    ``n_blocks``, and ``pvalue``: Bonferroni over the two, ``min(1, 2 min(p))`` (Holm's first step:
    at least one of them rejects at ``alpha`` exactly when ``pvalue < alpha``).
    """

    pvalue: float
    balance_statistic: float
    balance_pvalue: float
    independence_pvalue: float
    block_pvalue: float
    serial_pvalue: float
    n_blocks: int
    counts: dict
    n_trials: int
    n_resamples: int
    method: str

    def summary(self) -> str:
        return (f"Settings randomized? p = {self.pvalue:.3g} (balance p = {self.balance_pvalue:.3g}; independence of "
                f"time and of the trial before p = {self.independence_pvalue:.3g}: time blocks {self.block_pvalue:.3g}, "
                f"serial {self.serial_pvalue:.3g}); {self.n_trials} trials")


def settings_test(setting_a, setting_b, *, setting_probabilities=None, n_blocks: int | None = None,
                  n_resamples: int = 9999, rng=None) -> SettingsResult:
    """Test that the settings of trials given in time order were drawn at random per trial.

    The CHSH bound (:func:`chsh_test`'s ``pvalue``) holds for a local model with memory only if
    each trial's settings are drawn with the stated probabilities independently of everything
    before. Two checks: the pair counts against the stated probabilities (balance, chi-square)
    and the pair sequence against time (``sequence_test``: time blocks and the previous pair;
    exact). Settings in time blocks, or a generator biased by a slowly varying state, fail the
    second even when the counts balance. The outcomes of earlier trials are not tested here
    (permuting settings alone is not an exact null for them: outcomes depend on settings).
    """
    from scipy.special import chdtrc

    from corrlab.analysis.nosignalling import sequence_test

    sa = _settings(setting_a, "setting_a")
    sb = _settings(setting_b, "setting_b")
    n = same_length(setting_a=sa, setting_b=sb)
    (pa, pb) = _probabilities(setting_probabilities)
    codes = 2 * sa.astype(np.int64) + sb
    observed = np.bincount(codes, minlength=4).astype(float)
    expected = np.array([n * pa[s] * pb[t] for s, t in _PAIRS])
    stat = float(np.sum((observed - expected) ** 2 / expected))
    balance_p = float(chdtrc(3, stat))
    seq = sequence_test(codes, serial=True, n_blocks=n_blocks, n_resamples=n_resamples, rng=rng)
    return SettingsResult(
        pvalue=min(1.0, 2 * min(balance_p, seq.pvalue)), balance_statistic=stat, balance_pvalue=balance_p,
        independence_pvalue=seq.pvalue, block_pvalue=seq.block_pvalue, serial_pvalue=float(seq.serial_pvalue),
        n_blocks=seq.n_blocks, counts={f"{s}{t}": int(observed[2 * s + t]) for s, t in _PAIRS}, n_trials=n,
        n_resamples=seq.n_resamples,
        method=("balance: chi-square (3 dof) of the setting-pair counts against the stated probabilities; "
                f"independence: {seq.method}; combined by Bonferroni over the two"),
    )
