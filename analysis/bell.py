"""Bell-CHSH tests from recorded outcomes, and the macroscopic Bell criteria of the seed paper.

Data convention (the dataset contract)
--------------------------------------
A trial has one local setting per side (``setting_a``, ``setting_b`` in {0, 1}, drawn at
random per trial by the protocol) and one outcome per side. A dichotomic outcome is the
sign of the trial's observable, ``>= 0 -> +1`` (:func:`binarize`); outcomes bounded in
``[-1, 1]`` (e.g. a magnetization divided by the number of spins) are accepted as well.
``S = E(0,0) + E(0,1) + E(1,0) - E(1,1)`` unless ``arrangement`` names another setting pair
for the minus sign (the plan's ``chsh_minus``).

Two p-values for the null ``S <= 2`` (every local hidden variable model):

* ``pvalue``: the normal approximation ``P(Z > (S - 2) / se)`` with
  ``se = sqrt(sum over pairs of Var(a b) / N_pair)`` (``(1 - E^2) / N_pair`` for +-1 outcomes).
  It assumes independent, identically distributed trials.
* ``pvalue_bound``: valid for **any** local model, including one with memory and drifting
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

Macroscopic criteria (the seed paper on macroscopic Bell inequalities)
----------------------------------------------------------------------
Magnetization correlations between regions A and B, ``<M_A M_B> / (N_A N_B)``, are those of
the *effective two-qubit state*, the average of the pairwise reduced states over ``i in A``,
``j in B`` (:func:`effective_two_qubit_state`). Two-setting correlations admit a local
model when the sum of squares of the correlation tensor in the plane of the settings is at
most 1 (:func:`two_setting_lhv_sum`, Zukowski-Brukner). For rotationally invariant states
the effective state is Werner with visibility ``V <= (R + 2) / (3 R)``,
``R = max(N_A, N_B)`` (:func:`monogamy_bound`), to be compared with
:func:`werner_thresholds`.

Qubit order: qubit 0 is the most significant (leftmost) factor of the tensor product, as
in ``numpy.kron`` and QuTiP.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from corrlab.analysis._validation import as_float_array, check_confidence_level, same_length
from corrlab.analysis.results import ConfidenceInterval, Result
from corrlab.errors import PlanError

__all__ = [
    "PAULI",
    "binarize",
    "chsh_test",
    "CHSHResult",
    "correlation_tensor",
    "horodecki_max",
    "chsh_from_tensor",
    "effective_two_qubit_state",
    "two_setting_lhv_sum",
    "plane_tensor_from_correlators",
    "werner_state",
    "werner_visibility",
    "werner_thresholds",
    "WernerThresholds",
    "monogamy_bound",
    "macroscopic_bell",
    "MacroscopicBellResult",
    "direction",
]

PAULI = (
    np.array([[0, 1], [1, 0]], dtype=complex),
    np.array([[0, -1j], [1j, 0]], dtype=complex),
    np.array([[1, 0], [0, -1]], dtype=complex),
)
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


def _arrangement(arrangement) -> tuple[int, int]:
    if arrangement is None:
        return (1, 1)
    try:
        pair = tuple(int(v) for v in arrangement)
        if len(pair) != 2 or any(v not in (0, 1) for v in pair) or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in arrangement
        ):
            raise ValueError
    except (TypeError, ValueError) as exc:
        raise PlanError(
            f"arrangement must be the (setting_a, setting_b) pair with the minus sign, one of "
            f"(0, 0), (0, 1), (1, 0), (1, 1); got {arrangement!r}"
        ) from exc
    return pair


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

    Fields: ``S`` (also ``statistic``), ``se``, ``ci`` (normal), ``pvalue`` (normal
    approximation, one-sided for ``S > 2``), ``pvalue_bound`` (valid without identical
    distribution or independence, see the module doc) and ``bound_method``,
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
    pvalue_bound: float
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
            f"  p (S <= 2): normal {self.pvalue:.3g}; bound {self.pvalue_bound:.3g} ({self.bound_method})",
            f"  {e}",
            f"  settings balance p = {self.settings_pvalue:.3g}",
        ])


def chsh_test(
    outcome_a, outcome_b, setting_a, setting_b, *, arrangement=None,
    confidence_level: float = 0.95, setting_probabilities=None,
) -> CHSHResult:
    """CHSH ``S`` with its standard error, a normal p-value and a model-free bound for ``S <= 2``.

    Parameters
    ----------
    outcome_a, outcome_b : one outcome per trial, +-1 (see :func:`binarize`) or in [-1, 1].
    setting_a, setting_b : the recorded local setting of each trial, 0 or 1.
    arrangement : the ``(setting_a, setting_b)`` pair that carries the minus sign; default
        ``(1, 1)``: ``S = E00 + E01 + E10 - E11``.
    confidence_level : of the normal interval ``S +- z se``.
    setting_probabilities : ``((p_A(0), p_A(1)), (p_B(0), p_B(1)))`` with which the protocol
        draws the settings, independently per trial; default uniform. ``pvalue_bound`` is
        valid only if this is how they were drawn.

    Every setting pair needs at least one trial (:class:`corrlab.errors.PlanError` otherwise).
    """
    level = check_confidence_level(confidence_level)
    a = _outcomes(outcome_a, "outcome_a")
    b = _outcomes(outcome_b, "outcome_b")
    sa = _settings(setting_a, "setting_a")
    sb = _settings(setting_b, "setting_b")
    n = same_length(outcome_a=a, outcome_b=b, setting_a=sa, setting_b=sb)
    minus = _arrangement(arrangement)
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
        S=s_val, se=se, ci=ci, pvalue=p_normal, pvalue_bound=min(1.0, p_bound), bound_method=method,
        correlators=corr, counts=counts, arrangement=minus, n_trials=n,
        S_unbiased=float(y.mean()), wins=wins, setting_probabilities=(pa, pb),
        settings_pvalue=settings_p, confidence_level=level,
    )


# ---------------------------------------------------------------------------------------
# two-qubit states and correlation tensors
# ---------------------------------------------------------------------------------------
def _as_density(rho, name: str = "rho", dim: int | None = None) -> np.ndarray:
    """A density matrix from a density matrix or a state vector; checks shape and trace."""
    try:
        arr = np.asarray(rho, dtype=complex)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{name} must be a numeric state vector or density matrix") from exc
    if arr.ndim == 1:
        norm = np.vdot(arr, arr).real
        if not norm > 0:
            raise PlanError(f"{name} is a zero vector")
        arr = np.outer(arr, arr.conj()) / norm
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise PlanError(f"{name} must be a state vector or a square density matrix; got shape {arr.shape}")
    d = arr.shape[0]
    if dim is not None and d != dim:
        raise PlanError(f"{name} must have dimension {dim}; got {d}")
    if d < 2 or d & (d - 1):
        raise PlanError(f"{name} must act on qubits (dimension a power of 2); got {d}")
    if not np.all(np.isfinite(arr)):
        raise PlanError(f"{name} has non-finite entries")
    tr = np.trace(arr).real
    if abs(tr - 1) > 1e-8 or np.max(np.abs(arr - arr.conj().T)) > 1e-8:
        raise PlanError(f"{name} must be Hermitian with unit trace (trace {tr:.6g})")
    return arr


def correlation_tensor(rho) -> np.ndarray:
    """``T_kl = Tr(rho sigma_k (x) sigma_l)`` (k, l = x, y, z) of a two-qubit state (real 3x3)."""
    r = _as_density(rho, dim=4)
    return np.array([[np.trace(r @ np.kron(sk, sl)).real for sl in PAULI] for sk in PAULI])


def _as_tensor(T) -> np.ndarray:
    arr = as_float_array(T, "T", ndim=2, min_size=3)
    if arr.shape != (3, 3):
        raise PlanError(f"T must be the 3x3 correlation tensor; got shape {arr.shape}")
    return arr


def horodecki_max(T) -> float:
    """The largest CHSH value over all settings: ``2 sqrt(t1^2 + t2^2)``, t1, t2 the two
    largest singular values of the correlation tensor (Horodecki^3 1995)."""
    s = np.linalg.svd(_as_tensor(T), compute_uv=False)
    return float(2.0 * math.sqrt(s[0] ** 2 + s[1] ** 2))


def direction(theta, phi=0.0) -> np.ndarray:
    """Unit vector(s) ``(sin theta cos phi, sin theta sin phi, cos theta)``: angle ``theta``
    from z towards x (settings "in the x-z plane" have ``phi = 0``)."""
    th = np.asarray(theta, dtype=float)
    ph = np.broadcast_to(np.asarray(phi, dtype=float), th.shape)
    return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1)


def _unit_pair(settings, name: str) -> np.ndarray:
    arr = as_float_array(settings, name, ndim=2, min_size=2)
    if arr.shape != (2, 3):
        raise PlanError(f"{name} must be two 3-vectors (shape (2, 3)); got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1)
    if np.any(norms < 1e-12):
        raise PlanError(f"{name} has a zero vector")
    return arr / norms[:, None]


def chsh_from_tensor(T, a_settings, b_settings, *, arrangement=None) -> float:
    """CHSH value of ``E(s, t) = a_s . T . b_t`` for the given setting vectors (each (2, 3))."""
    T = _as_tensor(T)
    a = _unit_pair(a_settings, "a_settings")
    b = _unit_pair(b_settings, "b_settings")
    minus = _arrangement(arrangement)
    return float(sum((-1.0 if (s, t) == minus else 1.0) * a[s] @ T @ b[t] for s, t in _PAIRS))


def _plane_basis(pair: np.ndarray, name: str) -> np.ndarray:
    x = pair[0] + pair[1]
    y = pair[0] - pair[1]
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx < 1e-9 or ny < 1e-9:
        raise PlanError(f"{name}: the two settings are parallel or antiparallel and span no plane")
    return np.stack([x / nx, y / ny])


def two_setting_lhv_sum(T, a_settings, b_settings) -> float:
    """``sum_{k,l in {x,y}} T_kl^2`` in the planes of the settings (Zukowski-Brukner).

    ``x`` and ``y`` of each side lie along the sum and the difference of its two (unit)
    setting vectors. A value ``<= 1`` means the four two-setting correlations admit a local
    hidden variable model; the value does not depend on the basis chosen inside the planes.
    """
    T = _as_tensor(T)
    pa = _plane_basis(_unit_pair(a_settings, "a_settings"), "a_settings")
    pb = _plane_basis(_unit_pair(b_settings, "b_settings"), "b_settings")
    t2 = pa @ T @ pb.T
    return float(np.sum(t2 * t2))


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


def _n_qubits(dim: int) -> int:
    return int(round(math.log2(dim)))


def _regions(regions, name: str, n: int) -> list[int]:
    try:
        out = [int(q) for q in regions]
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{name} must be a sequence of qubit indices") from exc
    if not out:
        raise PlanError(f"{name} must name at least one qubit")
    if len(set(out)) != len(out) or any(q < 0 or q >= n for q in out):
        raise PlanError(f"{name} must hold distinct qubit indices in 0..{n - 1}; got {out}")
    return out


def _pair_state(rho: np.ndarray, i: int, j: int, n: int) -> np.ndarray:
    """Reduced density matrix of qubits (i, j) (in that order) of an n-qubit density matrix."""
    t = rho.reshape((2,) * (2 * n))
    rest = [q for q in range(n) if q not in (i, j)]
    perm = [i, j, *rest, n + i, n + j, *(n + q for q in rest)]
    r = 1 << len(rest)
    t = np.transpose(t, perm).reshape(4, r, 4, r)
    return np.einsum("arbr->ab", t)


def _as_state(rho):
    """``(vector, None)`` for a state vector, ``(None, density)`` for a density matrix."""
    arr = np.asarray(rho)
    if arr.ndim == 1:
        try:
            vec = np.asarray(rho, dtype=complex)
        except (TypeError, ValueError) as exc:
            raise PlanError("rho must be a numeric state vector or density matrix") from exc
        d = len(vec)
        if d < 2 or d & (d - 1):
            raise PlanError(f"rho must act on qubits (dimension a power of 2); got {d}")
        nrm = math.sqrt(np.vdot(vec, vec).real)
        if not (nrm > 0 and np.all(np.isfinite(vec))):
            raise PlanError("rho is a zero or non-finite state vector")
        return vec / nrm, None
    return None, _as_density(rho)


def effective_two_qubit_state(rho, regions_a, regions_b) -> np.ndarray:
    """The average of the two-qubit reduced states over ``i in regions_a``, ``j in regions_b``.

    ``rho`` is an N-qubit state vector or density matrix (qubit 0 the leftmost factor).
    Its correlation tensor gives the magnetization correlations
    ``<M_A(a) M_B(b)> / (N_A N_B) = a . T_eff . b`` of the two regions.
    """
    vec, dens = _as_state(rho)
    dim = len(vec) if vec is not None else dens.shape[0]
    n = _n_qubits(dim)
    ra = _regions(regions_a, "regions_a", n)
    rb = _regions(regions_b, "regions_b", n)
    if set(ra) & set(rb):
        raise PlanError(f"regions_a and regions_b overlap: {sorted(set(ra) & set(rb))}")
    acc = np.zeros((4, 4), dtype=complex)
    for i in ra:
        for j in rb:
            if vec is not None:
                rest = [q for q in range(n) if q not in (i, j)]
                m = np.transpose(vec.reshape((2,) * n), [i, j, *rest]).reshape(4, -1)
                acc += m @ m.conj().T
            else:
                acc += _pair_state(dens, i, j, n)
    return acc / (len(ra) * len(rb))


# ---------------------------------------------------------------------------------------
# Werner states, thresholds, monogamy
# ---------------------------------------------------------------------------------------
_SINGLET = np.array([0, 1, -1, 0], dtype=complex) / math.sqrt(2)


def werner_state(V: float) -> np.ndarray:
    """``V |psi-><psi-| + (1 - V) I / 4`` (correlation tensor ``-V I``, ``S_max = 2 sqrt(2) V``)."""
    if not isinstance(V, numbers.Real) or not -1 / 3 <= V <= 1:
        raise PlanError(f"V must be a number in [-1/3, 1]; got {V!r}")
    return float(V) * np.outer(_SINGLET, _SINGLET.conj()) + (1 - float(V)) * np.eye(4) / 4


def werner_visibility(rho) -> float:
    """The visibility of the Werner state with the same singlet fidelity: ``(4 F - 1) / 3``.

    Twirling (``U (x) U`` averaged over all U) maps any two-qubit state onto that Werner
    state; for a rotationally invariant state this is its own ``V``.
    """
    r = _as_density(rho, dim=4)
    f = float(np.real(_SINGLET.conj() @ r @ _SINGLET))
    return (4 * f - 1) / 3


@dataclasses.dataclass(frozen=True)
class WernerThresholds(Result):
    """Visibility thresholds of the two-qubit Werner state.

    entangled: V > 1/3 (PPT). chsh: CHSH violated iff V > 1/sqrt(2). lhv_projective_2006:
    a local model for all projective measurements exists for V <= 0.6595 (Acin, Gisin,
    Toner 2006, from Grothendieck's constant). lhv_projective_2017: improved to 0.6829
    (Hirsch et al. 2017; Diviansky et al. 2017). lhv_povm: a local model for all POVMs for
    V <= 5/12 (Barrett 2002).
    """

    entangled: float = 1.0 / 3.0
    chsh: float = 1.0 / math.sqrt(2.0)
    lhv_projective_2006: float = 0.6595
    lhv_projective_2017: float = 0.6829
    lhv_povm: float = 5.0 / 12.0


def werner_thresholds() -> WernerThresholds:
    """The known Werner-visibility thresholds (see :class:`WernerThresholds`)."""
    return WernerThresholds()


def monogamy_bound(R) -> float:
    """``(R + 2) / (3 R)``: the largest Werner visibility of the effective state of regions
    with ``R = max(N_A, N_B)`` spins for rotationally invariant states (two big spins in a
    singlet reach it). R = 2: 2/3, 3: 5/9, 4: 1/2, 8: 5/12."""
    if isinstance(R, bool) or not isinstance(R, numbers.Integral) or R < 1:
        raise PlanError(f"R must be an integer >= 1 (the larger region's number of spins); got {R!r}")
    return (R + 2) / (3 * R)


@dataclasses.dataclass(frozen=True)
class MacroscopicBellResult(Result):
    """The seed paper's criteria for the effective two-qubit state of two regions.

    ``tensor``: its correlation tensor; ``S_max``: Horodecki maximum; ``lhv_sum_max``:
    ``t1^2 + t2^2``, the two-setting sum in the best pair of planes (``<= 1``: every
    two-setting experiment on magnetizations has a local model); ``lhv_sum``: the sum in
    the planes of the given settings (None without settings); ``visibility``: the twirled
    Werner visibility; ``monogamy_bound``: ``(R + 2) / (3 R)`` (binding for rotationally
    invariant states only); ``n_a``, ``n_b``: region sizes.
    """

    effective_state: np.ndarray
    tensor: np.ndarray
    S_max: float
    lhv_sum_max: float
    lhv_sum: float | None
    visibility: float
    monogamy_bound: float
    n_a: int
    n_b: int


def macroscopic_bell(rho, regions_a, regions_b, *, a_settings=None, b_settings=None) -> MacroscopicBellResult:
    """Effective state of two regions and the seed paper's criteria in one call."""
    eff = effective_two_qubit_state(rho, regions_a, regions_b)
    T = correlation_tensor(eff)
    s = np.linalg.svd(T, compute_uv=False)
    lhv = None
    if a_settings is not None or b_settings is not None:
        if a_settings is None or b_settings is None:
            raise PlanError("give both a_settings and b_settings, or neither")
        lhv = two_setting_lhv_sum(T, a_settings, b_settings)
    na, nb = len(list(regions_a)), len(list(regions_b))
    eff.setflags(write=False)
    T.setflags(write=False)
    return MacroscopicBellResult(
        effective_state=eff, tensor=T, S_max=horodecki_max(T), lhv_sum_max=float(s[0] ** 2 + s[1] ** 2),
        lhv_sum=lhv, visibility=werner_visibility(eff), monogamy_bound=monogamy_bound(max(na, nb)),
        n_a=na, n_b=nb,
    )
