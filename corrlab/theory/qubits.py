"""Qubit theory: samplers of the simulated spin and Bell worlds, local bounds, Bell criteria.

The one copy of the two-qubit and LHV theory: the simulated worlds sample from it and the
tests of the analysis compare with it. Nothing here knows about instruments, SCPI or the
analysis; bad input raises :class:`corrlab.errors.PlanError` naming the argument. Each sampler takes a state,
measurement settings and a ``numpy.random.Generator`` and returns outcomes with the
Born-rule probabilities. The worlds wrap them; the ``true_*`` functions give the ground
truth for tests and are never shown to the analysis.

Conventions
-----------
* Qubit 0 is the most significant (leftmost) tensor factor, as in ``numpy.kron`` and
  QuTiP; ``|0>`` is spin up, ``sigma_z = +1``.
* A measurement direction is given by angles: ``theta`` from z towards x and ``phi``
  about z (``phi = 0`` puts every setting in the x-z plane):
  ``n = (sin theta cos phi, sin theta sin phi, cos theta)``.
* A qubit outcome is ``+1`` / ``-1``, the eigenvalue of ``sigma . n``. A region's
  magnetization is ``M = sum_i sigma_i . n`` (an integer in ``-N..N`` in steps of 2); its
  normalized value ``M / N`` is in ``[-1, 1]``.
* The Werner state is ``V |psi-><psi-| + (1 - V) I / 4`` (singlet-based): correlation
  ``E(a, b) = -V a . b``, ``S_max = 2 sqrt(2) V``.
* The CHSH value is ``S = E(0,0) + E(0,1) + E(1,0) - E(1,1)`` unless ``arrangement`` names
  another setting pair for the minus sign; :data:`CHSH_ANGLES` reach ``2 sqrt(2) V`` with
  the default arrangement for the singlet-based Werner state.

Exact sampling of N qubits costs ``O(N 2^N)`` per distinct setting pair (N up to about 20
with a state vector, 10 with a density matrix). Two big spins (each region in its
permutation-symmetric subspace, e.g. :func:`big_spin_singlet`) are sampled exactly in the
``(N_A + 1)(N_B + 1)``-dimensional Dicke basis (N in the thousands); for any state the
magnetization correlations are those of the effective two-qubit state
(:func:`effective_two_qubit_state` and :func:`symmetric_effective_state`).

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
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers

import numpy as np

from corrlab.errors import PlanError
from corrlab.results import Result
from corrlab.validation import as_float_array, check_arrangement

__all__ = [
    "CHSH_ANGLES",
    "direction",
    "PAULI",
    "werner_state",
    "werner_visibility",
    "werner_thresholds",
    "WernerThresholds",
    "horodecki_max",
    "chsh_from_tensor",
    "two_setting_lhv_sum",
    "monogamy_bound",
    "macroscopic_bell",
    "MacroscopicBellResult",
    "werner_correlation",
    "sample_werner_outcomes",
    "true_chsh",
    "sample_two_qubit_outcomes",
    "random_state",
    "effective_two_qubit_state",
    "magnetization_distribution",
    "sample_magnetizations",
    "big_spin_singlet",
    "symmetric_magnetization_distribution",
    "sample_symmetric_magnetizations",
    "symmetric_effective_state",
    "correlation_tensor",
    "werner_true_values",
    "spin_true_values",
    "symmetric_true_values",
]

PAULI = (
    np.array([[0, 1], [1, 0]], dtype=complex),
    np.array([[0, -1j], [1j, 0]], dtype=complex),
    np.array([[1, 0], [0, -1]], dtype=complex),
)
_PAIRS = ((0, 0), (0, 1), (1, 0), (1, 1))

#: (theta_a, theta_b) settings in the x-z plane giving S = 2 sqrt(2) V for the Werner
#: state with the default arrangement (minus sign on the setting pair (1, 1)).
CHSH_ANGLES = ((0.0, math.pi / 2), (-3 * math.pi / 4, 3 * math.pi / 4))


def _check_v(V) -> float:
    if isinstance(V, bool) or not isinstance(V, numbers.Real) or not -1 / 3 <= V <= 1:
        raise PlanError(f"V must be a number in [-1/3, 1] (Werner visibility); got {V!r}")
    return float(V)


def _rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator; got {type(rng).__name__}")
    return rng


def direction(theta, phi=0.0) -> np.ndarray:
    """Unit vector(s) ``(sin theta cos phi, sin theta sin phi, cos theta)``: angle ``theta``
    from z towards x (settings "in the x-z plane" have ``phi = 0``)."""
    th = np.asarray(theta, dtype=float)
    ph = np.broadcast_to(np.asarray(phi, dtype=float), th.shape)
    return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1)


# ---------------------------------------------------------------------------------------
# two qubits: Werner and general
# ---------------------------------------------------------------------------------------
_SINGLET = np.array([0, 1, -1, 0], dtype=complex) / math.sqrt(2)


def werner_state(V: float) -> np.ndarray:
    """``V |psi-><psi-| + (1 - V) I / 4`` (correlation tensor ``-V I``, ``S_max = 2 sqrt(2) V``)."""
    V = _check_v(V)
    return V * np.outer(_SINGLET, _SINGLET.conj()) + (1 - V) * np.eye(4) / 4


def werner_correlation(V: float, theta_a, theta_b, phi_a=0.0, phi_b=0.0) -> np.ndarray:
    """``E = -V n_a . n_b`` (``-V cos(theta_a - theta_b)`` in the x-z plane)."""
    V = _check_v(V)
    return -V * np.sum(direction(theta_a, phi_a) * direction(theta_b, phi_b), axis=-1)


def sample_werner_outcomes(V: float, theta_a, theta_b, rng, *, phi_a=0.0, phi_b=0.0):
    """One +-1 outcome pair per trial for the Werner state measured along ``theta_a``, ``theta_b``.

    ``theta_a``, ``theta_b`` (and ``phi_*``) are per-trial angles (arrays of one length, or
    scalars). The Born probabilities are ``P(a, b) = (1 + a b E) / 4`` with
    ``E = -V n_a . n_b``: uniform marginals, so ``a`` is a fair coin and ``b = a`` with
    probability ``(1 + E) / 2``. Returns ``(a, b)`` as int8 arrays.
    """
    gen = _rng(rng)
    e = np.atleast_1d(werner_correlation(V, theta_a, theta_b, phi_a, phi_b))
    a = np.where(gen.random(e.shape) < 0.5, 1, -1).astype(np.int8)
    same = gen.random(e.shape) < (1 + e) / 2
    b = np.where(same, a, -a).astype(np.int8)
    return a, b


def true_chsh(V: float, theta_a=CHSH_ANGLES[0], theta_b=CHSH_ANGLES[1], *, arrangement=None) -> float:
    """The quantum CHSH value of the Werner state for the two angles of each side."""
    minus = check_arrangement(arrangement)
    ta, tb = np.asarray(theta_a, float), np.asarray(theta_b, float)
    return float(sum((-1 if (s, t) == minus else 1) * werner_correlation(V, ta[s], tb[t]) for s, t in _PAIRS))


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


def _bloch(rho) -> tuple[np.ndarray, np.ndarray]:
    rho = np.asarray(rho, dtype=complex)
    eye = np.eye(2)
    ra = np.array([np.trace(rho @ np.kron(p, eye)).real for p in PAULI])
    rb = np.array([np.trace(rho @ np.kron(eye, p)).real for p in PAULI])
    return ra, rb


def sample_two_qubit_outcomes(rho, theta_a, theta_b, rng, *, phi_a=0.0, phi_b=0.0):
    """+-1 outcome pairs of any two-qubit state measured along per-trial directions.

    ``P(a, b) = (1 + a r_A . n_a + b r_B . n_b + a b n_a . T . n_b) / 4``. Used for the
    effective two-qubit description of two regions: its outcomes have the regions'
    normalized magnetization means and correlations (not their full distributions).
    """
    gen = _rng(rng)
    T = correlation_tensor(rho)
    ra, rb = _bloch(rho)
    na = np.atleast_2d(direction(theta_a, phi_a))
    nb = np.atleast_2d(direction(theta_b, phi_b))
    na, nb = np.broadcast_arrays(na, nb)
    ma, mb = na @ ra, nb @ rb
    e = np.einsum("ti,ij,tj->t", na, T, nb)
    # P(a=+1) and P(b=+1 | a)
    pa = (1 + ma) / 2
    a = np.where(gen.random(len(e)) < pa, 1, -1)
    p_ab = (1 + a * ma + mb + a * e) / 4  # P(a, b=+1)
    p_a = (1 + a * ma) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        pb = np.where(p_a > 0, p_ab / p_a, 0.5)
    b = np.where(gen.random(len(e)) < np.clip(pb, 0, 1), 1, -1)
    return a.astype(np.int8), b.astype(np.int8)


# ---------------------------------------------------------------------------------------
# N qubits in two regions
# ---------------------------------------------------------------------------------------
def random_state(n_qubits: int, rng, *, mixed: bool = False, rank: int | None = None) -> np.ndarray:
    """A Haar-random pure state vector, or (``mixed=True``) a random density matrix
    ``G G^dagger / Tr`` with ``G`` a complex Ginibre matrix of ``rank`` columns (default
    full rank: the Hilbert-Schmidt measure)."""
    gen = _rng(rng)
    d = 1 << int(n_qubits)
    if not mixed:
        v = gen.standard_normal(d) + 1j * gen.standard_normal(d)
        return v / np.linalg.norm(v)
    k = d if rank is None else int(rank)
    g = gen.standard_normal((d, k)) + 1j * gen.standard_normal((d, k))
    rho = g @ g.conj().T
    return rho / np.trace(rho).real


def _unitary(theta: float, phi: float) -> np.ndarray:
    """Columns ``|+n>``, ``|-n>``: the eigenbasis of ``sigma . n``."""
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    e = complex(math.cos(phi), math.sin(phi))
    return np.array([[c, -s / e], [e * s, c]], dtype=complex)


def _apply_1q(t: np.ndarray, u: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(np.tensordot(u, t, axes=([1], [axis])), 0, axis)


def _probabilities(state: np.ndarray, n: int, rotations: dict[int, np.ndarray]) -> np.ndarray:
    """Computational-basis probabilities after rotating each listed qubit's measurement basis."""
    if state.ndim == 1:
        t = state.reshape((2,) * n)
        for q, u in rotations.items():
            t = _apply_1q(t, u.conj().T, q)
        return np.abs(t.reshape(-1)) ** 2
    t = state.reshape((2,) * (2 * n))
    for q, u in rotations.items():
        t = _apply_1q(t, u.conj().T, q)
        t = _apply_1q(t, u.T, n + q)  # rho -> U^dag rho U
    d = 1 << n
    return np.clip(np.real(np.diagonal(t.reshape(d, d))), 0, None)


def _check_state(state, n_min: int = 2):
    arr = np.asarray(state, dtype=complex)
    d = arr.shape[0]
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape != (d, d)) or d < 4 or d & (d - 1):
        raise PlanError(f"state must be an N-qubit state vector or density matrix; got shape {arr.shape}")
    if arr.ndim == 1:
        arr = arr / np.linalg.norm(arr)
    return arr, int(round(math.log2(d)))


def _check_regions(regions_a, regions_b, n: int) -> tuple[list[int], list[int]]:
    ra, rb = _regions(regions_a, "regions_a", n), _regions(regions_b, "regions_b", n)
    if set(ra) & set(rb):
        raise PlanError(f"regions_a and regions_b overlap: {sorted(set(ra) & set(rb))}")
    return ra, rb


def magnetization_distribution(state, regions_a, regions_b, theta_a: float, theta_b: float,
                               *, phi_a: float = 0.0, phi_b: float = 0.0):
    """Exact joint distribution of ``(M_A, M_B)`` for one setting pair.

    Returns ``(m_a_values, m_b_values, pmf)`` with ``pmf[i, j] = P(M_A = m_a_values[i],
    M_B = m_b_values[j])``; ``m_*_values = -N_* .. N_*`` in steps of 2. Every qubit of
    region A is measured along ``n(theta_a, phi_a)``, of B along ``n(theta_b, phi_b)``;
    other qubits are ignored (traced out).
    """
    arr, n = _check_state(state)
    ra, rb = _check_regions(regions_a, regions_b, n)
    ua, ub = _unitary(theta_a, phi_a), _unitary(theta_b, phi_b)
    rot = {q: ua for q in ra}
    rot.update({q: ub for q in rb})
    p = _probabilities(arr, n, rot)
    idx = np.arange(1 << n)
    bits = (idx[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1  # bit of qubit q
    ka = bits[:, ra].sum(axis=1)  # number of -1 outcomes in A
    kb = bits[:, rb].sum(axis=1)
    na, nb = len(ra), len(rb)
    pmf = np.zeros((na + 1, nb + 1))
    np.add.at(pmf, (na - ka, nb - kb), p)  # index i <-> M = 2 i - N
    pmf /= pmf.sum()
    return np.arange(-na, na + 1, 2), np.arange(-nb, nb + 1, 2), pmf


def _sample_grouped(theta_a, theta_b, phi_a, phi_b, rng, dist):
    """Sample (M_A, M_B) per trial, grouping trials by their distinct setting tuple."""
    gen = _rng(rng)
    ta = np.atleast_1d(np.asarray(theta_a, float))
    tb = np.atleast_1d(np.asarray(theta_b, float))
    pa = np.broadcast_to(np.asarray(phi_a, float), ta.shape)
    pb = np.broadcast_to(np.asarray(phi_b, float), tb.shape)
    if ta.shape != tb.shape or ta.ndim != 1:
        raise PlanError("theta_a and theta_b must be 1-D per-trial angles of one length")
    keys = np.stack([ta, tb, pa, pb], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    out_a = np.empty(len(ta), dtype=np.int64)
    out_b = np.empty(len(ta), dtype=np.int64)
    for g, (a_th, b_th, a_ph, b_ph) in enumerate(uniq):
        ma, mb, pmf = dist(a_th, b_th, a_ph, b_ph)
        sel = np.flatnonzero(inv == g)
        flat = gen.choice(pmf.size, size=len(sel), p=pmf.reshape(-1))
        i, j = np.divmod(flat, pmf.shape[1])
        out_a[sel], out_b[sel] = ma[i], mb[j]
    return out_a, out_b


def sample_magnetizations(state, regions_a, regions_b, theta_a, theta_b, rng, *, phi_a=0.0, phi_b=0.0):
    """Per-trial magnetizations ``(M_A, M_B)`` (integers) of an N-qubit state, exactly.

    ``theta_a``, ``theta_b`` are per-trial angles (the world maps each trial's recorded
    setting to its angle); trials with the same settings share one exact distribution.
    """
    arr, n = _check_state(state)
    _check_regions(regions_a, regions_b, n)
    return _sample_grouped(
        theta_a, theta_b, phi_a, phi_b, rng,
        lambda a, b, pa, pb: magnetization_distribution(arr, regions_a, regions_b, a, b, phi_a=pa, phi_b=pb),
    )


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
# two big spins (each region permutation-symmetric): the Dicke basis
# ---------------------------------------------------------------------------------------
def _spin_ops(n: int):
    """J_z, J_+ for spin j = n / 2 in the basis m = j, j - 1, ..., -j (index k = j - m)."""
    j = n / 2
    m = j - np.arange(n + 1)
    jz = np.diag(m)
    # <m+1|J_+|m> = sqrt(j(j+1) - m(m+1)); J_+ maps index k to k - 1
    jp = np.zeros((n + 1, n + 1))
    for k in range(1, n + 1):
        mm = m[k]
        jp[k - 1, k] = math.sqrt(j * (j + 1) - mm * (mm + 1))
    return jz, jp


@functools.lru_cache(maxsize=16)
def _jy_eigh(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition of J_y and the diagonal of J_z for spin n / 2 (cached, read-only)."""
    jz, jp = _spin_ops(n)
    w, v = np.linalg.eigh((jp - jp.T) / 2j)
    m = np.diag(jz).copy()
    for arr in (w, v, m):
        arr.setflags(write=False)
    return w, v, m


def _spin_rotation(n: int, theta: float, phi: float) -> np.ndarray:
    """``R = exp(-i phi J_z) exp(-i theta J_y)``: its columns are the eigenbasis of ``J . n``
    (column ``k`` <-> ``m = j - k``)."""
    w, v, m = _jy_eigh(int(n))
    ry = (v * np.exp(-1j * theta * w)) @ v.conj().T
    return np.exp(-1j * phi * m)[:, None] * ry


def big_spin_singlet(n: int) -> np.ndarray:
    """Two spins ``j = n / 2`` in their singlet, in the Dicke basis (``(n+1)^2`` amplitudes,
    index ``k_a (n + 1) + k_b``): ``sum_m (-1)^(j - m) |j, m> |j, -m> / sqrt(2 j + 1)``.

    As ``2 n`` qubits (each region in its symmetric subspace) its effective two-qubit state
    is Werner with ``V = (n + 2) / (3 n)``, the monogamy bound.
    """
    n = int(n)
    if n < 1:
        raise PlanError(f"n must be >= 1; got {n}")
    psi = np.zeros((n + 1, n + 1))
    for k in range(n + 1):
        psi[k, n - k] = (-1) ** k
    return (psi / math.sqrt(n + 1)).reshape(-1)


def _check_symmetric(psi, n_a: int, n_b: int) -> np.ndarray:
    arr = np.asarray(psi, dtype=complex)
    if arr.shape != ((n_a + 1) * (n_b + 1),):
        raise PlanError(
            f"psi must have (N_A + 1)(N_B + 1) = {(n_a + 1) * (n_b + 1)} Dicke amplitudes; got {arr.shape}"
        )
    return (arr / np.linalg.norm(arr)).reshape(n_a + 1, n_b + 1)


def symmetric_magnetization_distribution(psi, n_a: int, n_b: int, theta_a: float, theta_b: float,
                                         *, phi_a: float = 0.0, phi_b: float = 0.0):
    """Exact ``(M_A, M_B)`` distribution of two big spins (Dicke-basis state ``psi``).

    Returns ``(m_a_values, m_b_values, pmf)`` as :func:`magnetization_distribution`.
    """
    t = _check_symmetric(psi, n_a, n_b)
    ra = _spin_rotation(n_a, theta_a, phi_a)
    rb = _spin_rotation(n_b, theta_b, phi_b)
    amp = ra.conj().T @ t @ rb.conj()  # <k_a|R_a^dag (x) <k_b|R_b^dag |psi>
    pmf = np.abs(amp) ** 2
    pmf = pmf[::-1, ::-1]  # index k = j - m -> ascending M = 2 m
    pmf /= pmf.sum()
    return np.arange(-n_a, n_a + 1, 2), np.arange(-n_b, n_b + 1, 2), pmf


def sample_symmetric_magnetizations(psi, n_a: int, n_b: int, theta_a, theta_b, rng, *, phi_a=0.0, phi_b=0.0):
    """Per-trial ``(M_A, M_B)`` of two big spins, exactly (see :func:`sample_magnetizations`)."""
    _check_symmetric(psi, n_a, n_b)
    return _sample_grouped(
        theta_a, theta_b, phi_a, phi_b, rng,
        lambda a, b, pa, pb: symmetric_magnetization_distribution(psi, n_a, n_b, a, b, phi_a=pa, phi_b=pb),
    )


def symmetric_effective_state(psi, n_a: int, n_b: int) -> np.ndarray:
    """Effective two-qubit state of two big spins from their collective moments:
    ``r_A = 2 <J_A> / N_A``, ``r_B = 2 <J_B> / N_B``, ``T_kl = 4 <J_A^k J_B^l> / (N_A N_B)``."""
    t = _check_symmetric(psi, n_a, n_b)
    ops = []
    for n in (n_a, n_b):
        jz, jp = _spin_ops(n)
        ops.append(((jp + jp.T) / 2, (jp - jp.T) / 2j, jz.astype(complex)))
    ja, jb = ops
    ra = np.array([np.vdot(t, j @ t).real for j in ja]) * 2 / n_a
    rb = np.array([np.vdot(t, t @ j.T).real for j in jb]) * 2 / n_b
    T = np.array([[np.vdot(t, a @ t @ b.T).real for b in jb] for a in ja]) * 4 / (n_a * n_b)
    eye = np.eye(2)
    rho = np.kron(eye, eye).astype(complex)
    for k in range(3):
        rho += ra[k] * np.kron(PAULI[k], eye) + rb[k] * np.kron(eye, PAULI[k])
        for m in range(3):
            rho += T[k, m] * np.kron(PAULI[k], PAULI[m])
    return rho / 4


# ---------------------------------------------------------------------------------------
# ground truth for tests
# ---------------------------------------------------------------------------------------
def _tensor_values(T: np.ndarray, theta_a, theta_b, arrangement) -> dict:
    minus = check_arrangement(arrangement)
    na, nb = direction(np.asarray(theta_a, float)), direction(np.asarray(theta_b, float))
    e = na @ T @ nb.T
    s = float(sum((-1 if (u, v) == minus else 1) * e[u, v] for u, v in _PAIRS))
    sv = np.linalg.svd(T, compute_uv=False)
    # the x-z plane of each side: the tensor's (x, z) block
    plane = T[np.ix_([0, 2], [0, 2])]
    return {
        "correlators": e,
        "S": s,
        "S_max": float(2 * math.sqrt(sv[0] ** 2 + sv[1] ** 2)),
        "lhv_sum": float(np.sum(plane * plane)),
        "lhv_sum_max": float(sv[0] ** 2 + sv[1] ** 2),
        "tensor": T,
    }


def werner_true_values(V: float, theta_a=CHSH_ANGLES[0], theta_b=CHSH_ANGLES[1], *, arrangement=None) -> dict:
    """Ground truth of the Werner world: correlators ``E[s, t]``, ``S`` at these settings,
    ``S_max = 2 sqrt(2) V``, the two-setting LHV sum in the x-z planes (``2 V^2``) and its
    maximum over planes, and the tensor ``-V I``."""
    return _tensor_values(-_check_v(V) * np.eye(3), theta_a, theta_b, arrangement)


def spin_true_values(state, regions_a, regions_b, theta_a, theta_b, *, arrangement=None) -> dict:
    """Ground truth of an N-qubit spin world with settings in the x-z plane.

    Correlators are the normalized magnetization correlations ``<M_A M_B> / (N_A N_B)``;
    also ``S``, ``S_max`` (Horodecki, of the effective state), ``lhv_sum`` (x-z planes),
    ``lhv_sum_max``, the effective state and its tensor.
    """
    eff = effective_two_qubit_state(state, regions_a, regions_b)
    out = _tensor_values(correlation_tensor(eff), theta_a, theta_b, arrangement)
    out["effective_state"] = eff
    return out


def symmetric_true_values(psi, n_a: int, n_b: int, theta_a, theta_b, *, arrangement=None) -> dict:
    """Ground truth of a two-big-spin world (Dicke-basis ``psi``), as :func:`spin_true_values`."""
    eff = symmetric_effective_state(psi, n_a, n_b)
    out = _tensor_values(correlation_tensor(eff), theta_a, theta_b, arrangement)
    out["effective_state"] = eff
    return out


# ---------------------------------------------------------------------------------------
# local hidden variable bounds, Werner thresholds, the macroscopic Bell criteria
# ---------------------------------------------------------------------------------------
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
    minus = check_arrangement(arrangement)
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
