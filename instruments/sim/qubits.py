"""Pure quantum samplers for the simulated spin and Bell worlds (numpy only).

Nothing here knows about instruments, SCPI or the analysis: each function takes a state,
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
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "CHSH_ANGLES",
    "direction",
    "werner_density_matrix",
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

_SX = np.array([[0, 1], [1, 0]], dtype=complex)
_SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
_SZ = np.array([[1, 0], [0, -1]], dtype=complex)
_PAULI = (_SX, _SY, _SZ)
_PAIRS = ((0, 0), (0, 1), (1, 0), (1, 1))

#: (theta_a, theta_b) settings in the x-z plane giving S = 2 sqrt(2) V for the Werner
#: state with the default arrangement (minus sign on the setting pair (1, 1)).
CHSH_ANGLES = ((0.0, math.pi / 2), (-3 * math.pi / 4, 3 * math.pi / 4))


def _check_v(V: float) -> float:
    V = float(V)
    if not -1 / 3 <= V <= 1:
        raise ValueError(f"Werner visibility V must be in [-1/3, 1]; got {V!r}")
    return V


def _rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator; got {type(rng).__name__}")
    return rng


def direction(theta, phi=0.0) -> np.ndarray:
    """Unit vector(s) ``(sin theta cos phi, sin theta sin phi, cos theta)``."""
    th = np.asarray(theta, dtype=float)
    ph = np.broadcast_to(np.asarray(phi, dtype=float), th.shape)
    return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1)


def _arrangement(arrangement) -> tuple[int, int]:
    if arrangement is None:
        return (1, 1)
    pair = tuple(int(v) for v in arrangement)
    if len(pair) != 2 or any(v not in (0, 1) for v in pair):
        raise ValueError(f"arrangement must be a (setting_a, setting_b) pair in {{0, 1}}^2; got {arrangement!r}")
    return pair


# ---------------------------------------------------------------------------------------
# two qubits: Werner and general
# ---------------------------------------------------------------------------------------
def werner_density_matrix(V: float) -> np.ndarray:
    """``V |psi-><psi-| + (1 - V) I / 4``."""
    V = _check_v(V)
    s = np.array([0, 1, -1, 0], dtype=complex) / math.sqrt(2)
    return V * np.outer(s, s.conj()) + (1 - V) * np.eye(4) / 4


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
    minus = _arrangement(arrangement)
    ta, tb = np.asarray(theta_a, float), np.asarray(theta_b, float)
    return float(sum((-1 if (s, t) == minus else 1) * werner_correlation(V, ta[s], tb[t]) for s, t in _PAIRS))


def correlation_tensor(rho) -> np.ndarray:
    """``T_kl = Tr(rho sigma_k (x) sigma_l)`` of a two-qubit density matrix."""
    rho = np.asarray(rho, dtype=complex)
    return np.array([[np.trace(rho @ np.kron(a, b)).real for b in _PAULI] for a in _PAULI])


def _bloch(rho) -> tuple[np.ndarray, np.ndarray]:
    rho = np.asarray(rho, dtype=complex)
    eye = np.eye(2)
    ra = np.array([np.trace(rho @ np.kron(p, eye)).real for p in _PAULI])
    rb = np.array([np.trace(rho @ np.kron(eye, p)).real for p in _PAULI])
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
        raise ValueError(f"state must be an N-qubit state vector or density matrix; got shape {arr.shape}")
    if arr.ndim == 1:
        arr = arr / np.linalg.norm(arr)
    return arr, int(round(math.log2(d)))


def _check_regions(regions_a, regions_b, n: int) -> tuple[list[int], list[int]]:
    ra, rb = [int(q) for q in regions_a], [int(q) for q in regions_b]
    allq = ra + rb
    if not ra or not rb or len(set(allq)) != len(allq) or any(q < 0 or q >= n for q in allq):
        raise ValueError(f"regions must be non-empty, disjoint qubit indices in 0..{n - 1}; got {ra}, {rb}")
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
        raise ValueError("theta_a and theta_b must be 1-D per-trial angles of one length")
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


def effective_two_qubit_state(state, regions_a, regions_b) -> np.ndarray:
    """The average of the pairwise reduced states over ``i in A``, ``j in B`` (4x4)."""
    arr, n = _check_state(state)
    ra, rb = _check_regions(regions_a, regions_b, n)
    acc = np.zeros((4, 4), dtype=complex)
    for i in ra:
        for j in rb:
            rest = [q for q in range(n) if q not in (i, j)]
            if arr.ndim == 1:
                m = np.transpose(arr.reshape((2,) * n), [i, j, *rest]).reshape(4, -1)
                acc += m @ m.conj().T
            else:
                t = np.transpose(arr.reshape((2,) * (2 * n)), [i, j, *rest, n + i, n + j, *(n + q for q in rest)])
                r = 1 << len(rest)
                acc += np.einsum("arbr->ab", t.reshape(4, r, 4, r))
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
        raise ValueError(f"n must be >= 1; got {n}")
    psi = np.zeros((n + 1, n + 1))
    for k in range(n + 1):
        psi[k, n - k] = (-1) ** k
    return (psi / math.sqrt(n + 1)).reshape(-1)


def _check_symmetric(psi, n_a: int, n_b: int) -> np.ndarray:
    arr = np.asarray(psi, dtype=complex)
    if arr.shape != ((n_a + 1) * (n_b + 1),):
        raise ValueError(
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
        rho += ra[k] * np.kron(_PAULI[k], eye) + rb[k] * np.kron(eye, _PAULI[k])
        for m in range(3):
            rho += T[k, m] * np.kron(_PAULI[k], _PAULI[m])
    return rho / 4


# ---------------------------------------------------------------------------------------
# ground truth for tests
# ---------------------------------------------------------------------------------------
def _tensor_values(T: np.ndarray, theta_a, theta_b, arrangement) -> dict:
    minus = _arrangement(arrangement)
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
