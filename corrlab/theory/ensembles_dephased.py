"""Dephased log negativity of two ensembles beyond the sector method: Gaussian regimes and tau = pi/4.

The sector method (:func:`corrlab.theory.ensembles.dephased_log_negativity`) is exact but grows as
N^3 (N = 2000 takes half an hour). This module adds four ways to reach the paper's sizes, each
named in the output (``method``), with what its error bound means (``bound_kind``):

``"gaussian"`` (closed form, large N, tau = g / (2N), Gamma t of order 1/N)
    Holstein-Primakoff around the x-polarised coherent states: S^z = sqrt(2N) x on each
    ensemble (vacuum variance 1/2), so J t S1^z S2^z = g x1 x2 is a CZ gate of strength
    g = 2 N tau, and the dephasing factor exp(-(Gamma t/2)(m - m')^2) = exp(-Gamma t N (x - x')^2)
    is a random p-displacement adding variance delta = 2 Gamma t N to p1 and p2 (it commutes
    with the gate). Covariance matrix (order x1 p1 x2 p2)::

        [[1/2,   0,                  0,    -g/2              ],
         [0,     (1 + g^2)/2 + delta, -g/2, 0                 ],
         [0,     -g/2,               1/2,  0                 ],
         [-g/2,  0,                  0,    (1 + g^2)/2 + delta]]

    det A = det B = (1 + g^2 + 2 delta)/4, det C = -g^2/4, det V = ((1 + 2 delta)/4)^2, so the
    smallest symplectic eigenvalue of the partial transpose is 2 nu = sqrt(s + g^2) - |g| with
    s = 1 + 2 delta = 1 + 4 Gamma t N, and

        E_N = max(0, log2((|g| + sqrt(g^2 + s)) / s))   bits,

    entangled iff Gamma t N < |g| / 2. At Gamma t = 0 this is log2(g + sqrt(1 + g^2)) = asinh(g)/ln 2.
    The finite-N value differs by O(1/N) (measured: 0.21/N bits at g = 1, Gamma t N = 0.05).

``"hp"`` (the same regime, any N: exact in the limit of the basis)
    The Krylov basis of S^z from the coherent state |x> is the x-Dicke basis (n atoms flipped
    from x), in which S^z is tridiagonal with off-diagonal sqrt((n + 1)(N - n)). Truncating at
    n <= n_max and diagonalising that Jacobi matrix gives Gauss nodes z_a and weights q_a^2 of
    the binomial distribution of m; the state and its dephasing take the same closed form as in
    the m basis with m -> z_a, c_m -> q_a. At n_max = N this *is* the exact state (nodes = m);
    in the Gaussian regime a few tens of excitations suffice at any N (10^6 included). The
    partial transpose ((n_max + 1)^2 rows) splits in two by the reflection z -> -z. Its error is
    *estimated* (not rigorous) from the change between n_max and n_max - 12.

``"hp-cat"`` (near the cat times tau = pi/4 mod pi/2, N even, Gamma t N of order 1: one bit plus hp)
    exp(-i (pi/4) m1 m2) = (-1)^(j1 j2) is a controlled-W (W = (-1)^j), diagonal in m, so it
    commutes with the dephasing and rho(pi/4 + delta) = V rho(delta) V^+. W maps the x-Dicke states
    below the equator onto those above it, so on states below the equator V acts as a two-qubit
    cluster state tensored in by local isometries: E_N(pi/4 + delta) = 1 + E_N(delta), the second
    term by hp (n_max < N/2). Equal to the sector method to 1e-14 at N = 80. Error *estimated* as hp's.

``"bracket"`` (everything else: no method reaches the point)
    0 <= E_N <= E_N(pure state), rigorous (dephasing is a local channel); no value (NaN, JSON null).

``"banded"`` (tau = pi/4 mod pi/2, N even, any Gamma t; rigorous lower and upper bounds)
    There psi = sum_p |p> (x) W^{s_p} |c>: the parity p of j = m/2 on ensemble 1 selects ensemble
    2's coherent state +x (s = 0) or -x = W|c> (s = 1), W = (-1)^j (a rotation by pi, diagonal in
    m, so it commutes with the dephasing). Let beta = G o c c^T be the dephased coherent state of
    one ensemble (G the dephasing kernel): it is *banded* (G[k, k'] = exp(-2 Gamma t (k - k')^2)).
    Both bounds rest on one function, convex and nondecreasing in lambda in [0, 1]::

        f(lambda) = (1 + lambda + ||beta - lambda W beta W||_1) / 2,

    the trace norm of the partial transpose of (ensemble 1 dephased) x (a qubit that went through
    a bit flip of probability (1 - lambda)/2). One eigvalsh of a banded S x S matrix per lambda.

    * Upper bound. The dephasing of ensemble 2 is a Gaussian mixture of rotations exp(i phi S^z);
      write phi = xi + k pi/2 with xi in (-pi/4, pi/4]. As W = exp(i pi S^z / 2), the rotation is
      exp(i xi S^z) W^k: for each xi an isometric encoding of a qubit (|s> -> R_xi W^s |c>,
      <c|W|c> = 0) after a bit flip of probability pi(xi) = P(k odd | xi). Convexity of the trace
      norm over xi gives ||rho^T2||_1 <= E_xi f(1 - 2 pi(xi)); the integral is bounded from above
      by chords of the convex f between nodes (pi(xi) is monotone in |xi|, checked on a fine grid).
    * Lower bound. A local channel on ensemble 2 cannot increase ||rho^T2||_1. It measures the
      phase (the Pegg-Barnett phase states of the window, padded to an even number, are a basis
      that W shifts by pi) up to the coset of pi and decodes |R W^s c> into a qubit |s> with the
      phase kept as a classical label l. For each l the qubit state is t_l X_{pi_l}(one-sided
      state) plus an off-diagonal part of trace norm <= 4 |T01_l|, so
      ||rho^T2||_1 >= sum_l t_l f(lambda_l) - 4 sum_l |T01_l|, with f(lambda_l) bounded below by f
      at the next node below lambda_l (f is nondecreasing).

    Both bounds tighten as 1/N (width 1.4e-4 bits at N = 200, Gamma t = 0.05) and cost
    O(S^2 b) per node instead of O(S^6): N = 10^4 takes seconds. The window is chosen so that
    the rigorous truncation bound (:func:`corrlab.theory.ensembles.negativity_truncation_bound`)
    is small, and is added to both sides; floating-point rounding is not included.

:func:`corrlab.theory.ensembles.dephased_negativity` picks the method per regime (``method="auto"``, see its docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from corrlab.errors import PlanError

METHODS = ("auto", "sector", "hp", "hp-cat", "banded", "bracket")
HP_MAX_G = 4.0  # the hp method is tried when |g| = 2 N |tau (reduced)| <= this ...
HP_MAX_GAMMA_T_N = 2.0  # ... and Gamma t N <= this
HP_NMAX_STEPS = (24, 36, 48, 60, 72)  # excitations kept, tried in turn until converged
HP_STEP = 12  # the error estimate compares n_max with n_max - HP_STEP
FAST_SECTOR_DIM = 3000  # auto: the exact sector method first when its blocks are at most this big
BANDED_XI_NODES = 96  # nodes of the xi integral (upper bound) on [0, pi/4]
BANDED_WINDOW_WEIGHT = 1e-15  # banded: probability weight the window may leave out (one ensemble)


def gaussian_limit_log_negativity_bits(g: float, gamma_t_n: float) -> float:
    """E_N (bits) of a CZ gate of strength g on two vacua with p-noise of variance 2 Gamma t N on each mode.

    ``gamma_t_n`` is Gamma t N in the "bec" convention. See the module docstring for the derivation.
    """
    g = abs(float(g))
    s = 1.0 + 4.0 * float(gamma_t_n)
    if s <= 0:
        raise PlanError("Gamma t N must be >= 0")
    return max(0.0, math.log2((g + math.sqrt(g * g + s)) / s))


def gaussian_limit_covariance(g: float, gamma_t_n: float) -> np.ndarray:
    """Covariance matrix (x1 p1 x2 p2, vacuum 1/2) of the Gaussian limit with dephasing."""
    g, d = float(g), 2.0 * float(gamma_t_n)
    b = (1 + g * g) / 2 + d
    return np.array([[0.5, 0, 0, -g / 2], [0, b, -g / 2, 0], [0, -g / 2, 0.5, 0], [-g / 2, 0, 0, b]])


def gaussian_log_negativity_from_covariance(v: np.ndarray) -> float:
    """E_N (bits) of a two-mode Gaussian state from its covariance matrix (vacuum 1/2)."""
    v = np.asarray(v, dtype=float)
    a, b, c = v[:2, :2], v[2:, 2:], v[:2, 2:]
    dd = np.linalg.det(a) + np.linalg.det(b) - 2 * np.linalg.det(c)
    nu2 = (dd - math.sqrt(max(dd * dd - 4 * np.linalg.det(v), 0.0))) / 2
    return max(0.0, -math.log2(2 * math.sqrt(nu2)))


def reduced_tau(n: int, tau: float) -> float:
    """tau folded to (-period/2, period/2]: the state is periodic in tau with period pi/2 (N even), pi (N odd)."""
    period = math.pi / 2 if n % 2 == 0 else math.pi
    return math.remainder(float(tau), period)


@dataclass(frozen=True)
class DephasedNegativity:
    """Dephased log negativity (bits) with its bracket and how it was obtained.

    ``lower_bits`` <= true value <= ``upper_bits``: rigorous when ``bound_kind`` is "rigorous"
    (sector: the window's truncation bound; banded: the bounds of the module docstring plus the
    window's), an estimate when it is "estimated" (hp: convergence in n_max). ``value_bits`` is
    the computed figure (banded: the midpoint of the bracket).
    """

    value_bits: float
    lower_bits: float
    upper_bits: float
    method: str
    bound_kind: str
    detail: str
    window_w: float | None = None
    omitted_weight: float | None = None

    @property
    def error_bound_bits(self) -> float:
        return max(self.upper_bits - self.value_bits, self.value_bits - self.lower_bits)


# ================================================================================ hp (Krylov / Gauss nodes)


def _hp_value(n: int, tau: float, gamma_t_bec: float, nmax: int) -> float:
    from scipy.linalg import eigh_tridiagonal, eigvalsh

    nmax = min(int(nmax), n)
    i = np.arange(nmax, dtype=float)
    z, q = eigh_tridiagonal(np.zeros(nmax + 1), np.sqrt((i + 1.0) * (n - i)))
    q = np.abs(q[0])  # signs of the eigenvectors are local diagonal unitaries; the reflection needs them equal
    d = nmax + 1
    # exp(-i tau z z') with the product reduced mod 2 pi in extended precision where it matters
    zz = np.outer(z, z)
    psi = np.outer(q, q) * np.exp(-1j * (tau * zz))
    gk = np.exp(-0.5 * gamma_t_bec * (z[:, None] - z[None, :]) ** 2)
    # rho^T2[(a, b), (a', b')] = psi[a, b'] conj(psi[a', b]) G[a, a'] G[b', b]
    pt = (psi[:, None, None, :] * psi.conj().T[None, :, :, None] * gk[:, None, :, None] * gk[None, :, None, :])
    pt = pt.reshape(d * d, d * d)
    # reflection z -> -z on both ensembles (index a -> d - 1 - a) commutes with rho^T2
    idx = np.arange(d * d)
    a, b = np.divmod(idx, d)
    partner = (d - 1 - a) * d + (d - 1 - b)
    rep = idx[idx < partner]
    fixed = idx[idx == partner]
    total = 0.0
    for sign in (1.0, -1.0):
        blk = pt[np.ix_(rep, rep)] + sign * pt[np.ix_(rep, partner[rep])]
        if sign > 0 and fixed.size:
            cross = math.sqrt(2.0) * pt[np.ix_(rep, fixed)]
            blk = np.block([[blk, cross], [cross.conj().T, pt[np.ix_(fixed, fixed)]]])
        blk = (blk + blk.conj().T) / 2
        total += float(np.sum(np.abs(eigvalsh(blk, check_finite=False, overwrite_a=True))))
    return math.log2(total)


def hp_log_negativity(n: int, tau: float, gamma_t_bec: float, *, tol: float = 1e-6,
                      nmax_steps=HP_NMAX_STEPS) -> DephasedNegativity:
    """Dephased E_N (bits) in the x-Dicke (Holstein-Primakoff) Krylov basis, growing n_max until converged.

    The error estimate is |E(n_max) - E(n_max - 12)| (exact when n_max reaches N). Returns the
    last value tried; ``detail`` says whether it met ``tol``.
    """
    tau_r = reduced_tau(n, tau)
    if abs(2 * n * tau_r) > HP_MAX_G and n > max(nmax_steps) - HP_STEP:
        # far from the coherent states a truncated basis can "converge" to a wrong value (aliased phases)
        raise PlanError(f"the hp method covers |g| = 2N|tau| <= {HP_MAX_G:g} (tau reduced mod the period) unless its "
                        f"basis is complete (N <= {max(nmax_steps) - HP_STEP}); here g = {2 * n * tau_r:.3g}")
    prev, est, used, val = None, math.inf, None, None
    for nm in nmax_steps:
        if nm - HP_STEP >= n:  # the basis is complete: exact
            val, est, used = _hp_value(n, tau_r, gamma_t_bec, n), 0.0, n
            break
        if prev is None:
            prev = _hp_value(n, tau_r, gamma_t_bec, nm - HP_STEP)
        val = _hp_value(n, tau_r, gamma_t_bec, nm)
        est, used = abs(val - prev), min(nm, n)
        if used == n:
            est = 0.0
        if est <= tol:
            break
        prev = val
    ok = est <= tol
    detail = (f"hp: x-Dicke Krylov basis, n_max = {used}" + (" (complete: exact)" if used == n else "")
              + f", change from n_max - {HP_STEP}: {est:.1e} bits" + ("" if ok else f" (above tol {tol:g})"))
    return DephasedNegativity(val, val - est, val + est, "hp", "estimated", detail)


def hp_regime(n: int, tau: float, gamma_t_bec: float) -> bool:
    """Near the x-polarised coherent states: |g| = 2N|tau (reduced)| <= 4 and Gamma t N <= 2."""
    return abs(2 * n * reduced_tau(n, tau)) <= HP_MAX_G and gamma_t_bec * n <= HP_MAX_GAMMA_T_N


def quarter_offset(n: int, tau: float) -> float | None:
    """delta = tau - (+-pi/4) for the nearest quarter period when N is even (the cat times), else None."""
    if n % 2:
        return None
    r = reduced_tau(n, tau)  # in (-pi/4, pi/4]
    return r - math.copysign(math.pi / 4, r) if r != 0 else -math.pi / 4


def hp_cat_regime(n: int, tau: float, gamma_t_bec: float) -> bool:
    """N even, |g| = 2N|tau - (+-pi/4)| <= 4, Gamma t N <= 2, and N large enough that the x-Dicke basis
    kept (n_max <= 72) stays below the equator (n_max < N/2)."""
    d = quarter_offset(n, tau)
    return (d is not None and abs(2 * n * d) <= HP_MAX_G and gamma_t_bec * n <= HP_MAX_GAMMA_T_N
            and n > 2 * HP_NMAX_STEPS[0])


def hp_cat_log_negativity(n: int, tau: float, gamma_t_bec: float, *, tol: float = 1e-6) -> DephasedNegativity:
    """Dephased E_N (bits) near tau = pi/4 (N even): one bit of cat plus the hp value at delta = tau - pi/4.

    Exact identity: exp(-i (pi/4) m1 m2) = (-1)^(j1 j2) (m = 2j) is the controlled unitary
    V = sum_s P_s (x) W^s (P_s: parity s of j on ensemble 1, W = (-1)^j on ensemble 2), diagonal in
    m, so it commutes with the dephasing: rho(pi/4 + delta) = V rho(delta) V^+. W maps the x-Dicke
    states below the equator (n < N/2) onto those above it, so C^2 (x) K_< -> H, |a, v> -> W^a v is
    an isometry on each ensemble and, for rho(delta) on K_< (x) K_<, V rho V^+ is the two-qubit cluster
    state (x) rho(delta) under these local isometries: E_N = 1 + E_N(rho(delta)). The hp method keeps
    n_max < N/2 x-Dicke states (its Krylov space lies in K_<), so this is exact for the state hp
    computes; the hp value's error is *estimated* as in :func:`hp_log_negativity`.
    """
    d = quarter_offset(n, tau)
    if d is None:
        raise PlanError("the hp-cat method covers tau near pi/4 (mod pi/2) with an even N only")
    if abs(2 * n * d) > HP_MAX_G:
        raise PlanError(f"the hp-cat method covers |g| = 2N|tau - pi/4| <= {HP_MAX_G:g} (mod pi/2); here g = "
                        f"{2 * n * d:.3g}")
    steps = tuple(s for s in HP_NMAX_STEPS if 2 * s < n)
    if not steps:
        raise PlanError(f"the hp-cat method needs N > {2 * HP_NMAX_STEPS[0]} (the x-Dicke basis must stay below "
                        f"the equator); the sector method covers smaller N")
    hp = hp_log_negativity(n, d, gamma_t_bec, tol=tol, nmax_steps=steps)
    detail = f"hp-cat: 1 bit (cat at pi/4) + hp at delta = tau - pi/4 = {d:.3e} ({hp.detail})"
    return DephasedNegativity(1.0 + hp.value_bits, 1.0 + hp.lower_bits, 1.0 + hp.upper_bits, "hp-cat",
                              "estimated", detail)


# ================================================================================ banded (tau = pi/4)


def is_banded_case(n: int, tau: float) -> bool:
    """tau = pi/4 mod pi/2 (to rounding) with N even: the case the banded bounds cover."""
    r = math.remainder(float(tau) - math.pi / 4, math.pi / 2)
    return n % 2 == 0 and abs(r) <= 8 * float(np.finfo(np.float64).eps) * max(1.0, abs(float(tau)))


def _wrapped_sums(edges: np.ndarray, gamma_t_bec: float) -> tuple[np.ndarray, np.ndarray]:
    """Q_i = P(xi in bin i) and M_i = E[lambda(xi); bin i] over bins [e_i, e_{i+1}] of [0, pi/4], both halves."""
    from scipy.special import ndtr

    sd = math.sqrt(gamma_t_bec)
    kmax = math.ceil(12 * sd / (math.pi / 2)) + 2
    q = np.zeros(edges.size - 1)
    mm = np.zeros(edges.size - 1)
    for k in range(-kmax, kmax + 1):
        cdf = ndtr((edges + k * math.pi / 2) / sd)
        part = np.diff(cdf)
        q += part
        mm += (-1) ** (k & 1) * part
    return 2 * q, 2 * mm  # xi and -xi


def _lambda_of_xi(xi: np.ndarray, gamma_t_bec: float) -> np.ndarray:
    """lambda(xi) = 1 - 2 P(k odd | xi) = sum_k (-1)^k p(xi + k pi/2) / sum_k p(xi + k pi/2)."""
    sd = math.sqrt(gamma_t_bec)
    kmax = math.ceil(12 * sd / (math.pi / 2)) + 2
    ks = np.arange(-kmax, kmax + 1)
    e = -((xi[:, None] + ks[None, :] * math.pi / 2) ** 2) / (2 * gamma_t_bec)
    e -= e.max(axis=1, keepdims=True)
    p = np.exp(e)
    return (p * np.where(ks % 2 == 0, 1.0, -1.0)[None, :]).sum(axis=1) / p.sum(axis=1)


class _BandedBeta:
    """beta = G o c c^T on the window, stored by diagonals (band b), with W = (-1)^j."""

    def __init__(self, n: int, gamma_t_bec: float, win, c: np.ndarray):
        self.c = np.asarray(c, dtype=float)  # amplitudes on the window, normalised
        size = self.c.size
        self.size = size
        k = np.arange(win.kmin, win.kmax + 1)
        self.w = np.where(((n // 2 - k) & 1) == 0, 1.0, -1.0)
        # entries exp(-2 Gamma t d^2) c_k c_k+d; drop diagonals where the kernel is below 1e-17 / size
        if gamma_t_bec > 0:
            b = math.ceil(math.sqrt(max(math.log(1e17 * size), 0.0) / (2 * gamma_t_bec)))
        else:
            b = size - 1
        self.b = min(b, size - 1)
        self.dropped = 0.0 if self.b == size - 1 else math.exp(-2 * gamma_t_bec * (self.b + 1) ** 2)
        self.kernel = np.exp(-2.0 * gamma_t_bec * np.arange(self.b + 1, dtype=float) ** 2)
        self.cw = float(np.sum(self.c * self.c * self.w))  # <c|W|c> on the window

    def band_lower(self, lam: float) -> np.ndarray:
        """beta - lam W beta W in LAPACK lower band storage."""
        s, c, w = self.size, self.c, self.w
        out = np.zeros((self.b + 1, s))
        for d in range(self.b + 1):
            v = self.kernel[d] * c[d:] * c[: s - d]
            ww = w[d:] * w[: s - d]
            out[d, : s - d] = v * (1.0 - lam * ww)
        return out

    def diagonal_sums(self):
        """s_delta^{xy} = sum_k w_k^x beta[k, k + delta] w_{k+delta}^y for delta = -b..b (xy = 00, 11, 01)."""
        s, c, w = self.size, self.c, self.w
        deltas = np.arange(-self.b, self.b + 1)
        s00, s11, s01 = (np.zeros(deltas.size) for _ in range(3))
        for i, d in enumerate(deltas):
            ad = abs(d)
            v = self.kernel[ad] * c[ad:] * c[: s - ad]
            if d >= 0:
                wl, wr = w[: s - ad], w[ad:]
            else:
                wl, wr = w[ad:], w[: s - ad]
            s00[i] = v.sum()
            s11[i] = (v * wl * wr).sum()
            s01[i] = (v * wr).sum()
        return deltas, s00, s11, s01

    def trace_norm_error(self) -> float:
        """Bound on the change of ||beta - lam W beta W||_1 from the dropped diagonals (both signs of lam)."""
        if self.dropped == 0.0:
            return 0.0
        cmax = float(self.c.max())
        return 2.0 * self.size * self.size * self.dropped * cmax * cmax


def _f_values(beta: _BandedBeta, lams: np.ndarray) -> np.ndarray:
    from scipy.linalg import eig_banded

    out = np.empty(lams.size)
    for i, lam in enumerate(lams):
        ev = eig_banded(beta.band_lower(float(lam)), lower=True, eigvals_only=True, check_finite=False)
        out[i] = (1.0 + lam + float(np.sum(np.abs(ev)))) / 2.0
    return out


def _convex_lower(nodes: np.ndarray, fv: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Lower bounds on a convex nondecreasing f at x from its values at ascending ``nodes``.

    For x in [n_j, n_j+1]: f(x) >= f(n_j) (monotone), and f lies above the extensions of the
    secants through (n_j-1, n_j) and (n_j+1, n_j+2) outside their intervals (convexity).
    """
    pos = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, nodes.size - 1)
    out = fv[pos].copy()
    j = pos
    ok = j >= 1
    if np.any(ok):
        a, b = nodes[j[ok] - 1], nodes[j[ok]]
        sl = (fv[j[ok]] - fv[j[ok] - 1]) / (b - a)
        out[ok] = np.maximum(out[ok], fv[j[ok]] + sl * (x[ok] - b))
    ok = j + 2 <= nodes.size - 1
    if np.any(ok):
        a, b = nodes[j[ok] + 1], nodes[j[ok] + 2]
        sl = (fv[j[ok] + 2] - fv[j[ok] + 1]) / (b - a)
        out[ok] = np.maximum(out[ok], fv[j[ok] + 1] + sl * (x[ok] - a))
    return out


def banded_bounds_on_window(n: int, tau: float, gamma_t_bec: float, win, c: np.ndarray, truncation_bound,
                            *, xi_nodes: int = BANDED_XI_NODES) -> DephasedNegativity:
    """Rigorous lower and upper bounds (bits) on the dephased E_N at tau = pi/4 mod pi/2, N even.

    ``win``: the window (kmin, kmax, omitted_weight, w); ``c``: the normalised amplitudes on it;
    ``truncation_bound(trace_norm)``: the window's rigorous error bound in bits. The public entry
    is :func:`corrlab.theory.ensembles.banded_bounds`; see the module docstring for the bounds.
    """
    if not is_banded_case(n, tau):
        raise PlanError("the banded bounds cover tau = pi/4 (mod pi/2) with an even N only")
    if gamma_t_bec <= 0:
        raise PlanError("the banded bounds need dephasing (Gamma t > 0)")
    beta = _BandedBeta(n, gamma_t_bec, win, c)

    # ---- lambda nodes: xi on [0, pi/4], denser where lambda moves
    xi = np.linspace(0.0, math.pi / 4, int(xi_nodes) + 1)
    fine = np.linspace(0.0, math.pi / 4, 40 * int(xi_nodes) + 1)
    lam_fine = _lambda_of_xi(fine, gamma_t_bec)
    if np.any(np.diff(lam_fine) > 1e-12):
        raise PlanError("lambda(xi) is not monotone on the grid: the banded upper bound does not apply")
    lam = np.clip(_lambda_of_xi(xi, gamma_t_bec), 0.0, 1.0)
    lam[-1] = 0.0  # xi = pi/4: an even split
    nodes = np.unique(np.concatenate([lam, [0.0, 1.0]]))  # ascending
    fv = _f_values(beta, nodes)
    err_f = beta.trace_norm_error() / 2.0
    f_of = dict(zip(nodes.tolist(), fv.tolist()))

    # ---- upper bound: chords of f between lambda(xi_{i+1}) <= lambda <= lambda(xi_i) on each xi bin
    qb, mb = _wrapped_sums(xi, gamma_t_bec)
    lo_l, hi_l = lam[1:], lam[:-1]
    f_lo = np.array([f_of[x] for x in lo_l])
    f_hi = np.array([f_of[x] for x in hi_l])
    span = hi_l - lo_l
    slope = np.where(span > 0, (f_hi - f_lo) / np.where(span > 0, span, 1.0), 0.0)
    upper_tn = float(np.sum(np.where(span > 0, qb * f_lo + (mb - qb * lo_l) * slope, qb * f_hi)))
    upper_tn = upper_tn / float(np.sum(qb))  # the bins hold all the mass up to ~1e-16
    upper_tn = (upper_tn + err_f) * (1.0 + abs(beta.cw))

    # ---- lower bound: phase-resolved decoding of ensemble 2 into a qubit
    big_l = beta.size + 1  # padded to even: W shifts the phase grid by L/2
    deltas, s00, s11, s01 = beta.diagonal_sums()
    theta = 2 * math.pi * np.arange(big_l // 2) / big_l
    ph = np.exp(1j * np.outer(theta, deltas))  # f_l^+ X f_l = (1/L) sum_delta e^{i delta theta} s_delta
    d00 = (ph @ s00).real / big_l
    d11 = (ph @ s11).real / big_l
    d01 = (ph @ s01) / big_l
    t = d00 + d11
    with np.errstate(invalid="ignore", divide="ignore"):
        lam_l = np.where(t > 0, np.abs(d00 - d11) / np.where(t > 0, t, 1.0), 0.0)
    f_low = _convex_lower(nodes, fv, lam_l)
    lower_tn = float(np.sum(np.clip(t, 0, None) * (f_low - err_f))) - 4.0 * float(np.sum(np.abs(d01)))

    # ---- the window (rigorous, both sides): local filtering below, the pure tail above
    eps = win.omitted_weight
    win_bound = truncation_bound(max(lower_tn, 1.0))
    low_bits = math.log2(max(lower_tn, 1.0)) + (2 * math.log2(1 - eps) if eps > 0 else 0.0)
    up_bits = math.log2(upper_tn) + win_bound
    low_bits = max(low_bits, 0.0)
    mid = (low_bits + up_bits) / 2
    detail = (f"banded: window {beta.size} states, band {beta.b}, {nodes.size} eigvalsh of banded "
              f"{beta.size}x{beta.size}; bracket [{low_bits:.7f}, {up_bits:.7f}] bits "
              f"(window bound {win_bound:.1e})")
    return DephasedNegativity(mid, low_bits, up_bits, "banded", "rigorous", detail, win.w, eps)
