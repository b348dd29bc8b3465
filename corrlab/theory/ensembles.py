"""Two atomic ensembles entangled by H = J S1^z S2^z: entanglement at up to 10^6 atoms.

Model ("szsz"). Two ensembles of N two-level atoms each, in their symmetric (Fock)
subspaces, basis |k> (k atoms in the second level). Both start x-polarised,
c_k = sqrt(C(N, k) / 2^N), and evolve under H = J S1^z S2^z:

    psi[k1, k2] = c_k1 c_k2 exp(-i tau m1 m2),   m = N - 2k,   tau = J t.

Two conventions, both available and named in every output:

* ``"bec"``:    S^z = n_a - n_b (eigenvalues m = N - 2k); the time is tau = J t.
* ``"spin-j"``: J_z = (n_a - n_b) / 2 = S^z / 2; H = chi J1z J2z, the time is chi t = 4 tau.

Time arguments of the public functions are in the convention's own time variable (tau for
"bec", chi t for "spin-j"); results carry both ``tau`` (= J t) and ``chi_t`` (= 4 tau).

Dephasing. Collective dephasing on each ensemble, Lindblad operator sqrt(Gamma) times the
convention's spin operator (S^z for "bec", J_z for "spin-j"). It commutes with H, so the
state at time t is exact in closed form: the joint density matrix is multiplied elementwise
by exp(-(Gamma_b t / 2) [(m1 - m1')^2 + (m2 - m2')^2]) with Gamma_b t = Gamma t in the "bec"
convention and Gamma t / 4 in the "spin-j" one. ``dephasing`` (GAMMA_T) is that dimensionless
product Gamma * t **in the named convention**, applied at each time point as given;
``dephasing_rate`` is Gamma / J ("bec") = Gamma / chi ("spin-j") (the same number in both
conventions), so that Gamma t grows with the time along a scan.

What is computed, per time point:

* the entanglement entropy of the pure state, in bits, from the reduced state of ensemble 1,
  rho[k, k'] = c_k c_k' cos^N(2 tau (k - k')) (closed form; the sum over ensemble 2 is exact);
* the logarithmic negativity of the pure state, 2 log2 sum_i sqrt(lambda_i), in bits;
* with dephasing, the logarithmic negativity log2 ||rho^T2||_1 of the mixed state, in bits.

How it is fast (the physics behind the structure):

* Entropy. Row k of psi is ensemble 2's coherent state rotated to the angle 4 tau k (mod 2 pi);
  two of them overlap as cos^N(half their angle difference), which is negligible beyond an
  angle d_c ~ sqrt(300 / N). Sorting the window's states by that angle (folded by the
  reflection k -> N - k, which splits rho into its even and odd blocks) makes each block
  *banded*, with a bandwidth of 16 states at N = 10^6, tau = 0.3. LAPACK's banded
  eigensolver (``scipy.linalg.eig_banded``) then costs O(n^2 b) instead of O(n^3). Near magic
  times the angles cluster: gaps wider than d_c split the blocks, and a cluster block is
  numerically low-rank, which a pivoted Cholesky (LAPACK dpstrf) detects and exploits. The
  entries dropped outside the band are bounded (|entry| <= 2 c_i c_j cos^N(d_c / 2)), so the
  eigenvalue shift is bounded (Weyl) and enters the reported error bound.
* Window. Only k in N/2 +- w sqrt(N)/2 is kept. If it leaves out the probability weight eps,
  the sorted spectra of the full and windowed reduced states differ by a nonnegative vector
  summing to eps (Weyl monotonicity), so the entropy error is at most
  eps log2(N) + h2(eps) (Fannes-Audenaert). ``tol`` picks the smallest window meeting it.
* Dephased negativity. The partial transpose is, in the m-lattice (p, q) = (m1, m2'), a
  Gaussian-weighted twisted convolution: invariant under the 90-degree rotation
  (p, q) -> (-q, p) (four sectors) and, combined with complex conjugation, under the mirror
  p -> -p (each sector is real symmetric in a suitable basis). The (w sqrt(N))^2-dimensional
  Hermitian problem becomes four real symmetric ones of a quarter the size: 64x less work
  and 32x less memory than the dense complex matrix. At tau = pi/4 with N even the matrix is
  real and the mirror is a plain symmetry (the dihedral group of the square): sectors 0 and 2
  split in two and sector 3 repeats sector 1, another ~2.7x. It is still O(N^3) in time
  (N = 1000 takes minutes): the regime of the paper (far larger N) is out of reach exactly.

The crevasse at a magic time is 1/N wide: near tau = pi/4 the entropy is 1 bit (the cat)
plus the Gaussian two-mode CZ entropy at g = 2N(tau - pi/4) (see :func:`corrlab.theory.ensembles_figures.plot_crevasse`).

Conventions of the window: ``window`` (w) is the half-width in units of sqrt(N)/2 (the
standard deviation of k in the initial state); ``omitted_weight`` is the probability weight
of one ensemble's k outside the window (the joint state loses 1 - (1 - eps)^2).

All functions here are pure: same arguments, same result (windows and amplitudes are
memoised, invisibly); no files except ``plot_crevasse`` and ``plot_scan`` (in :mod:`corrlab.theory.ensembles_figures`), which write the
figure they are asked for. Only numpy is imported at module level.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from corrlab.errors import PlanError

MODEL = "szsz"
CONVENTIONS = ("bec", "spin-j")
PLANES = ("xz", "xy")

TIME_VARIABLE = {"bec": "tau = J t", "spin-j": "chi t = 4 tau"}
SPIN_OPERATOR = {"bec": "S^z = n_a - n_b", "spin-j": "J_z = (n_a - n_b)/2"}

DEFAULT_TOL = 1e-6  # bits
EXACT_MAX_STATES = 400  # below this many Fock states per ensemble the window is the whole space
DEFAULT_MAX_SECTOR_DIM = 12_000  # dephased negativity: largest real symmetric block we diagonalise
# (N = 1000 at tau = pi/4, tol 1e-6 needs 9312 rows: minutes, ~1 GB)
SVD_MAX_STATES = 128  # windows this small: singular values of psi itself (sum sqrt(lambda) to ~1e-14)
# a block goes banded when it is at least this many times wider than its band: measured (one thread) at
# N = 10^4, blocks of 286 states with a band of 14: 7.3 ms per point banded, 12.5 ms dense; neutral at
# N = 3000 and 3 x 10^4 (25 and 12 alike)
_BANDED_WIDTH_RATIO = 12

# pi as a sum of four doubles of at most 21 significant bits (the last one rounded), so that
# j * part is exact for |j| < 2^32: the argument reduction below is exact to ~1e-16 absolute.
_PI_PARTS = (3.141592025756836, 6.278328328335192e-07, 1.2446738518329115e-13, 5.825464112186712e-20)
_SPLIT = 134217729.0  # 2^27 + 1 (Veltkamp)
_EPS = float(np.finfo(np.float64).eps)


# ================================================================================ validation


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise PlanError(f"n must be an integer number of atoms (1 to 10^7), got {n!r}")
    n = int(n)
    if not 1 <= n <= 10_000_000:
        raise PlanError(f"n must be between 1 and 10^7 atoms, got {n}")
    return n


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise PlanError(f"convention must be one of {', '.join(CONVENTIONS)}; got {convention!r}")
    return convention


def _check_time(t, name: str = "time") -> float:
    try:
        t = float(t)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{name} must be a number, got {t!r}") from exc
    if not math.isfinite(t) or abs(t) > 1e6:
        raise PlanError(f"{name} must be finite with |{name}| <= 1e6, got {t}")
    return t


def _check_tol(tol) -> float:
    try:
        tol = float(tol)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"tol must be a number of bits in (0, 0.1], got {tol!r}") from exc
    if not 0 < tol <= 0.1:
        raise PlanError(f"tol must be a number of bits in (0, 0.1], got {tol}")
    return tol


def _check_window(window) -> float | None:
    if window is None:
        return None
    try:
        w = float(window)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"window must be a positive number of standard deviations (e.g. 6), got {window!r}") from exc
    if not (math.isfinite(w) and w > 0):
        raise PlanError(f"window must be a positive number of standard deviations (e.g. 6), got {window}")
    return w


def _check_gamma(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{name} must be a number >= 0, got {value!r}") from exc
    if not (math.isfinite(value) and value >= 0):
        raise PlanError(f"{name} must be a finite number >= 0, got {value}")
    return value


def tau_from_time(time: float, convention: str = "bec") -> float:
    """tau = J t from the convention's time variable (tau itself, or chi t = 4 tau)."""
    _check_convention(convention)
    return float(time) if convention == "bec" else float(time) / 4.0


def time_from_tau(tau: float, convention: str = "bec") -> float:
    """The convention's time variable (tau, or chi t = 4 tau) from tau = J t."""
    _check_convention(convention)
    return float(tau) if convention == "bec" else 4.0 * float(tau)


def bec_gamma_t(gamma_t: float, convention: str = "bec") -> float:
    """Gamma t in the "bec" convention (factor exp(-(Gamma t/2)(m - m')^2)) from the convention's Gamma t."""
    _check_convention(convention)
    return float(gamma_t) if convention == "bec" else float(gamma_t) / 4.0


# ================================================================================ numerics


def _two_product(a, b):
    """a * b = hi + lo exactly (Dekker/Veltkamp, no fma needed)."""
    p = a * b
    t = _SPLIT * a
    ah = t - (t - a)
    al = a - ah
    t = _SPLIT * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _reduce_mod_pi(scale: float, ints) -> tuple[np.ndarray, np.ndarray]:
    """``scale * ints = j pi + delta`` with integer j and |delta| <= pi/2, to ~1e-16 absolute.

    ``scale`` is taken as the exact double it is; ``ints`` are integers below 2^53. This is
    what keeps cos^N(2 tau d) right at N = 10^6: a naive float product loses ~1e-12 in the
    angle, which N times the angle turns into ~1e-7 relative error.
    """
    d = np.asarray(ints, dtype=np.float64)
    hi, lo = _two_product(np.float64(scale), d)
    j = np.rint(hi / math.pi)
    if j.size and np.max(np.abs(j)) >= 2.0**32:
        raise PlanError("time too large for exact argument reduction (|tau| * N^2 must stay below 1e9)")
    r = hi - j * _PI_PARTS[0]
    r = r - j * _PI_PARTS[1]
    r = r - j * _PI_PARTS[2]
    r = (r - j * _PI_PARTS[3]) + lo
    # |r| can exceed pi/2 by rounding of hi / pi: fold once more
    fix = np.rint(r / math.pi)
    if np.any(fix):
        j = j + fix
        r = r - fix * math.pi
    return j, r


def _cos_power(n_atoms: int, tau: float, d) -> np.ndarray:
    """cos(2 tau d)^N for integer d, accurate for N up to 10^7."""
    j, delta = _reduce_mod_pi(2.0 * tau, d)
    s = np.sin(delta)
    with np.errstate(divide="ignore"):
        logc = 0.5 * np.log1p(-s * s)
    odd = (np.abs(j).astype(np.int64) & 1) * (n_atoms & 1)
    return (1 - 2 * odd) * np.exp(n_atoms * logc)


def _phase_table(tau: float, jmax: int) -> np.ndarray:
    """exp(-i tau j) for integer j in [-jmax, jmax] (index j + jmax)."""
    j = np.arange(-jmax, jmax + 1)
    turns, delta = _reduce_mod_pi(tau, j)
    sign = 1 - 2 * (np.abs(turns).astype(np.int64) & 1)
    return sign * np.exp(-1j * delta)


def _binom_pmf(n_atoms: int, k) -> np.ndarray:
    from scipy.stats import binom

    return binom.pmf(np.asarray(k), n_atoms, 0.5)


def coherent_amplitudes(n: int, k=None) -> np.ndarray:
    """c_k = sqrt(C(N, k) / 2^N), the x-polarised coherent state in the Fock basis (k = 0..N by default)."""
    n = _check_n(n)
    k = np.arange(n + 1) if k is None else np.asarray(k)
    return np.sqrt(_binom_pmf(n, k))


def _eta_bits(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    pos = x > 0
    out[pos] = -x[pos] * np.log2(x[pos])
    return out


def _h2(p: float) -> float:
    if p <= 0 or p >= 1:
        return 0.0
    return float(-p * math.log2(p) - (1 - p) * math.log2(1 - p))


def binomial_entropy_bits(n: int) -> float:
    """Shannon entropy of Binomial(N, 1/2) in bits: an upper bound on the entanglement entropy."""
    from scipy.stats import binom

    n = _check_n(n)
    return float(binom.entropy(n, 0.5)) / math.log(2)


def gaussian_limit_entropy_bits(g: float) -> float:
    """Holstein-Primakoff limit tau = g / (2N): entropy of a CZ gate of strength g on two vacua.

    h(nu) = (nu + 1/2) log2(nu + 1/2) - (nu - 1/2) log2(nu - 1/2), nu = sqrt(1 + g^2) / 2.
    """
    nu = math.sqrt(1.0 + float(g) ** 2) / 2.0
    a, b = nu + 0.5, nu - 0.5
    return a * math.log2(a) - (b * math.log2(b) if b > 0 else 0.0)


# ================================================================================ window


@dataclass(frozen=True)
class Window:
    """The Fock-space window k in [kmin, kmax] of one ensemble (symmetric about N/2)."""

    n: int
    kmin: int
    kmax: int
    omitted_weight: float  # probability weight of k outside the window, one ensemble

    @functools.cached_property
    def tail_amplitude(self) -> float:
        """sum of c_k outside the window (bounds Schmidt 1-norms of what the window drops)."""
        if self.kmin == 0:
            return 0.0
        lo = max(0, self.kmin - 1 - int(40 * math.sqrt(self.n)) - 40)
        return float(2.0 * np.sum(np.sqrt(_binom_pmf(self.n, np.arange(lo, self.kmin)))))

    @property
    def exact(self) -> bool:
        return self.kmin == 0 and self.kmax == self.n

    @property
    def size(self) -> int:
        return self.kmax - self.kmin + 1

    @property
    def w(self) -> float | None:
        """Half-width in units of sqrt(N)/2, or None when the window is the whole space."""
        if self.exact:
            return None
        return (self.n / 2 - self.kmin) / (math.sqrt(self.n) / 2)


@functools.lru_cache(maxsize=4096)
def _window_from_kmin(n: int, kmin: int) -> Window:
    from scipy.stats import binom

    kmin = min(max(0, int(kmin)), n // 2)
    if kmin == 0:
        return Window(n, 0, n, 0.0)
    omitted = float(min(1.0, 2.0 * binom.cdf(kmin - 1, n, 0.5)))
    return Window(n, kmin, n - kmin, omitted)


@functools.lru_cache(maxsize=256)
def _window_amplitudes(n: int, kmin: int, kmax: int) -> np.ndarray:
    """c_k on the window, renormalised to sum c_k^2 = 1 (read-only, cached)."""
    c = np.sqrt(_binom_pmf(n, np.arange(kmin, kmax + 1)))
    c = c / math.sqrt(float(np.sum(c * c)))
    c.setflags(write=False)
    return c


def window_from_w(n: int, w: float) -> Window:
    """The window k in N/2 +- w sqrt(N)/2 (clipped to 0..N)."""
    n = _check_n(n)
    w = _check_window(w)
    kmin = math.ceil(n / 2 - w * math.sqrt(n) / 2 - 1e-9)
    return _window_from_kmin(n, min(kmin, n // 2))


def entropy_truncation_bound(n: int, omitted_weight: float) -> float:
    """Bound on the entropy error (bits) from a window leaving out ``omitted_weight``.

    The spectra differ by a nonnegative vector of sum eps (Weyl), so after normalising the
    trace distance of the spectra is at most eps: eps log2(N) + h2(eps) (Fannes-Audenaert).
    """
    eps = float(omitted_weight)
    if eps <= 0:
        return 0.0
    eps = min(eps, 0.5)
    return eps * math.log2(max(n, 2)) + _h2(eps)


WINDOW_CRITERIA = ("entropy", "weight")


def choose_window(n: int, tol: float = DEFAULT_TOL, *, criterion: str = "entropy",
                  exact_max_states: int = EXACT_MAX_STATES) -> Window:
    """Smallest symmetric window meeting ``tol``, or the whole space for at most ``exact_max_states`` states.

    ``criterion``: "entropy" (the entropy truncation bound, :func:`entropy_truncation_bound`,
    at most ``tol`` bits) or "weight" (omitted probability weight at most ``tol``).
    """
    n = _check_n(n)
    tol = _check_tol(tol)
    if criterion not in WINDOW_CRITERIA:
        raise PlanError(f"criterion must be one of {', '.join(WINDOW_CRITERIA)}; got {criterion!r}")
    return _choose_window(n, tol, criterion, int(exact_max_states))


@functools.lru_cache(maxsize=1024)
def _choose_window(n: int, tol: float, criterion: str, exact_max_states: int) -> Window:
    if criterion == "entropy":
        bound = lambda win: entropy_truncation_bound(n, win.omitted_weight)  # noqa: E731
    else:
        bound = lambda win: win.omitted_weight  # noqa: E731
    if n + 1 <= exact_max_states:
        return _window_from_kmin(n, 0)
    lo, hi = 0, n // 2  # kmin = lo always satisfies (exact); find the largest kmin that does
    if bound(_window_from_kmin(n, hi)) <= tol:
        return _window_from_kmin(n, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bound(_window_from_kmin(n, mid)) <= tol:
            lo = mid
        else:
            hi = mid
    win = _window_from_kmin(n, lo)
    if win.size >= n + 1 - 2:  # the window would be (almost) everything: be exact
        return _window_from_kmin(n, 0)
    return win


# ================================================================================ reduced state


def reduced_density_matrix(n: int, tau: float, window: Window | None = None) -> np.ndarray:
    """Dense reduced state of ensemble 1 on the window (BEC tau), normalised to trace 1.

    rho[k, k'] = c_k c_k' cos^N(2 tau (k - k')). O(n^2) memory: for small windows, tests and
    the dense baseline.
    """
    n = _check_n(n)
    win = window if window is not None else _window_from_kmin(n, 0)
    k = np.arange(win.kmin, win.kmax + 1)
    c = np.sqrt(_binom_pmf(n, k))
    c = c / math.sqrt(float(np.sum(c * c)))
    i = np.arange(k.size)
    table = _cos_power(n, tau, np.arange(-(k.size - 1), k.size))
    return np.outer(c, c) * table[i[:, None] - i[None, :] + k.size - 1]


@dataclass(frozen=True)
class SchmidtSpectrum:
    """Eigenvalues of the windowed, normalised reduced state (the squared Schmidt coefficients)."""

    n: int
    tau: float
    window: Window
    eigenvalues: np.ndarray  # normalised to sum 1, sorted descending; may hold tiny negatives
    perturbation: float  # bound on |computed - exact| per eigenvalue (dropped entries + rounding)
    method: str
    # small windows: the singular values of the windowed psi (descending) and a bound on the error of each
    singular_values: np.ndarray | None = None
    singular_value_error: float = 0.0

    def entropy_bits(self) -> float:
        lam = np.clip(self.eigenvalues, 0.0, None)
        return float(np.sum(_eta_bits(lam)))

    def schmidt_one_norm(self) -> float:
        """sum_i sqrt(lambda_i); eigenvalues below the rounding floor (size * eps * lambda_max) count as 0.

        With singular values (small windows) it is their normalised sum: sqrt of an eigenvalue known
        to +-eps is known to +-sqrt(eps) ~ 1e-8, a singular value to +-eps.
        """
        if self.singular_values is not None:
            sv = self.singular_values
            return float(np.sum(sv) / math.sqrt(float(np.sum(sv * sv))))
        lam = self.eigenvalues
        floor = lam.size * _EPS * max(float(lam.max()), 0.0)
        return float(np.sum(np.sqrt(np.where(lam > floor, lam, 0.0))))

    def log_negativity_bits(self) -> float:
        """Pure state: log2 (sum_i sqrt(lambda_i))^2."""
        return 2.0 * math.log2(self.schmidt_one_norm())

    def entropy_error_bound(self) -> float:
        """Truncation (window) bound plus the eigenvalue-perturbation bound, bits."""
        lam = self.eigenvalues
        delta = self.perturbation
        lo = np.clip(lam - delta, 0.0, 1.0)
        hi = np.clip(lam + delta, 0.0, 1.0)
        mid = np.clip(lam, 0.0, 1.0)
        e_mid = _eta_bits(mid)
        dev = np.maximum(np.abs(_eta_bits(lo) - e_mid), np.abs(_eta_bits(hi) - e_mid))
        peak = (lo <= 1 / math.e) & (hi >= 1 / math.e)
        dev = np.where(peak, np.maximum(dev, np.abs(float(_eta_bits(np.array([1 / math.e]))[0]) - e_mid)), dev)
        return entropy_truncation_bound(self.n, self.window.omitted_weight) + float(np.sum(dev))

    def log_negativity_error_bound(self) -> float:
        """Bound on the pure-state log negativity error, bits (window + perturbation).

        sum sqrt is not continuous at 0 the way the entropy is: a window leaving out eps can
        change sum sqrt(lambda) by up to sqrt((N + 1) eps), and each eigenvalue known to
        +-delta contributes up to sqrt(delta). Expect this bound to exceed the entropy's.
        """
        lam = self.eigenvalues
        delta = self.perturbation
        s1 = self.schmidt_one_norm()
        if self.singular_values is not None:
            pert = self.singular_values.size * self.singular_value_error
        else:
            pert = float(np.sum(np.sqrt(np.clip(lam + delta, 0, None)) - np.sqrt(np.clip(lam - delta, 0, None))))
        eps = self.window.omitted_weight
        win = 0.0
        if eps > 0:
            q = s1 * math.sqrt(1 - eps)  # unnormalised sum sqrt of the windowed spectrum
            up = 2 * math.log2(1 + math.sqrt((self.n + 1) * eps) / q) + math.log2(1 - eps)
            win = max(-math.log2(1 - eps), up)
        return win + 2.0 * pert / (s1 * math.log(2))


def _perturbation_target(size: int, tol: float) -> float:
    """delta such that size * eta(delta) (bits) <= tol / 4: the budget for dropped entries."""
    y = tol * math.log(2) / 4 / max(size, 1)  # need delta ln(1/delta) <= y
    delta = y / 30.0
    for _ in range(50):
        delta = y / max(math.log(1 / delta), 1.0)
    return min(delta, 1e-3)


def _rounding_entropy_cost(size: int) -> float:
    """Entropy bound (bits) spent on rounding alone: ``size`` eigenvalues each known to +-2 size eps.

    At N = 10^6 (5725 states) this is ~5.6e-7 bits: more than the quarter of a 1e-6 budget that
    the dropped entries get, so :func:`schmidt_spectrum` takes the excess from the window's half.
    """
    d = 2.0 * size * _EPS
    return size * d * math.log2(1.0 / d)


def _block_values(table, shift, k, c, rows, cols, sign, center, n_atoms):
    """Entries of the even (sign=+1) / odd (sign=-1) block of rho for index arrays rows, cols.

    Pair representatives i have k_i < N/2; the even basis is (|k_i> + |N-k_i>)/sqrt(2), plus
    the center |N/2> (index ``center``) for even N. ``table[d + shift]`` = cos^N(2 tau d).
    """
    ki, kj = k[rows], k[cols]
    val = c[rows] * c[cols] * (table[ki - kj + shift] + sign * table[ki + kj - n_atoms + shift])
    if center is not None:
        # center row/column: sqrt(2) c_i c_c T(k_i - N/2); center diagonal: c_c^2
        ri, ci = rows == center, cols == center
        one = ri ^ ci
        if np.any(one):
            other = np.where(ri, cols, rows)[one]
            val[one] = math.sqrt(2) * c[other] * c[center] * table[k[other] - n_atoms // 2 + shift]
        both = ri & ci
        val[both] = c[center] ** 2
    return val


def _dense_block(table, shift, k, c, comp, sign, center, n_atoms):
    """The even/odd block of rho restricted to the index set ``comp`` (see :func:`_block_values`)."""
    kc, cc = k[comp], c[comp]
    block = table[kc[:, None] - kc[None, :] + shift] + sign * table[kc[:, None] + kc[None, :] - n_atoms + shift]
    block *= cc[:, None] * cc[None, :]
    if center is not None:
        at = np.flatnonzero(comp == center)
        if at.size:
            i = int(at[0])
            row = math.sqrt(2) * cc * c[center] * table[kc - n_atoms // 2 + shift]
            block[i, :] = row
            block[:, i] = row
            block[i, i] = c[center] ** 2
    return block


def _psd_eigenvalues(block: np.ndarray, tol: float, *, try_low_rank: bool = True) -> tuple[np.ndarray, int]:
    """Eigenvalues of a positive semidefinite block, via a pivoted Cholesky when it is low rank.

    LAPACK dpstrf stops when every remaining pivot is below ``tol``; the neglected Schur
    complement is PSD with trace below s * tol, which bounds the eigenvalue shift (Weyl).
    Near magic times a cluster block has rank ~1, so this replaces O(s^3) by O(s^2 r).
    """
    from scipy.linalg import eigvalsh
    from scipy.linalg.lapack import dpstrf

    s = block.shape[0]
    if try_low_rank and s > 96:
        fac, _piv, rank, info = dpstrf(block, tol=tol, lower=1)
        if info >= 0 and rank < s // 4:
            low = np.tril(fac)[:, :rank]
            lam = eigvalsh(low.T @ low, check_finite=False)
            return np.concatenate([lam, np.zeros(s - rank)]), rank
    return eigvalsh(block, check_finite=False), s


def schmidt_spectrum(n: int, tau: float, *, window: Window | float | None = None, tol: float = DEFAULT_TOL,
                     method: str = "auto") -> SchmidtSpectrum:
    """Spectrum of ensemble 1's reduced state at tau = J t (BEC), on a window.

    ``window``: a :class:`Window`, a half-width w (units of sqrt(N)/2), or None for the
    smallest window meeting ``tol`` on the entropy. ``method``: "auto" (windows of at most
    ``SVD_MAX_STATES`` states: singular values of the windowed psi, which give the pure log
    negativity to ~1e-14 instead of ~1e-7; else banded where the angle-sorted blocks are
    narrow, dense blocks elsewhere), or "dense" (one dense eigvalsh of the whole window: the
    reference the benchmark compares with).
    """
    from scipy.linalg import eig_banded

    n = _check_n(n)
    tau = _check_time(tau, "tau")
    tol = _check_tol(tol)
    if method not in ("auto", "dense"):
        raise PlanError(f"method must be one of auto, dense; got {method!r}")
    if window is None:
        win = choose_window(n, tol / 2)  # half the budget; a quarter for dropped entries
        # rounding (size eps per eigenvalue) can exceed the quarter at N ~ 10^6: narrow the window's share
        excess = 1.1 * _rounding_entropy_cost(win.size) - tol / 4
        if excess > 0 and tol / 2 - excess >= tol / 20:
            win = choose_window(n, tol / 2 - excess)
    elif isinstance(window, Window):
        win = window
    else:
        win = window_from_w(n, window)

    k = np.arange(win.kmin, win.kmax + 1)
    size = k.size
    c = _window_amplitudes(n, win.kmin, win.kmax)

    if method == "auto" and size <= SVD_MAX_STATES:
        # small windows: singular values of psi[k1, k2] = c_k1 c_k2 exp(-i tau m1 m2) on the window
        # (backward stable: each known to +-size eps sigma_max, where sqrt(eigvalsh) would give +-sqrt(eps))
        m = n - 2 * k
        turns, delta = _reduce_mod_pi(tau, np.outer(m, m).ravel())
        phase = ((1 - 2 * (np.abs(turns).astype(np.int64) & 1)) * np.exp(-1j * delta)).reshape(size, size)
        sv = np.linalg.svd(np.outer(c, c) * phase, compute_uv=False)
        sv_err = size * _EPS * float(sv[0])
        lam = sv * sv / float(np.sum(sv * sv))
        return SchmidtSpectrum(n, tau, win, lam, 3.0 * sv_err, "svd", sv, sv_err)

    shift = size - 1
    table = _cos_power(n, tau, np.arange(-shift, shift + 1))  # cos^N(2 tau d), |d| < size
    if method == "dense" or size <= 64:
        i = np.arange(size)
        rho = np.outer(c, c) * table[i[:, None] - i[None, :] + shift]
        lam = np.linalg.eigvalsh(rho)[::-1]
        pert = size * _EPS * max(float(lam[0]), 0.0)
        return SchmidtSpectrum(n, tau, win, lam, pert, "dense")

    # reflection k -> N - k: pair representatives (k < N/2) and the center (even N)
    half = size // 2
    reps = np.arange(half)
    center = half if size % 2 else None
    # folded angle u = |2 tau m| mod 2 pi in [0, pi]; the center (m = 0) sits at u = 0
    m = n - 2 * k
    _, dl = _reduce_mod_pi(tau, m)
    u_all = 2.0 * np.abs(dl)

    # per-eigenvalue budget: rounding (size * eps, as lambda_max <= 1) plus what we allow ourselves
    delta_num = size * _EPS
    delta_target = max(_perturbation_target(size, tol) - delta_num, delta_num)
    chol_tol = delta_target / 2  # residual of low-rank (pivoted Cholesky) blocks, summed below
    cmax, csum = float(c.max()), float(c.sum())
    r = delta_target / 2 / (2.0 * cmax * csum)  # dropped entries: the other half
    dc = math.pi if r >= 1 else 2.0 * math.acos(min(1.0, math.exp(math.log(r) / n)))

    eigs, kinds = [], []
    blocks = [(+1, np.concatenate([reps, [center]]) if center is not None else reps), (-1, reps)]
    for sign, idx in blocks:
        cen = center if sign > 0 else None
        order = idx[np.argsort(u_all[idx], kind="stable")]
        u = u_all[order]
        # components: gaps wider than dc decouple (the entries between are below the bound)
        cuts = np.flatnonzero(np.diff(u) > dc) + 1
        for comp in np.split(order, cuts):
            s = comp.size
            uc = u_all[comp]
            reach = np.searchsorted(uc, uc + dc, side="right") - np.arange(s) - 1
            b = int(reach.max()) if s else 0
            # LAPACK's band reduction (dsbtrd) runs at a fraction of the flop rate of a dense eigvalsh: banded
            # pays off (6 s^2 b against 4/3 s^3 flops) once the block is ~12 times wider than its band
            if s <= 64 or b * _BANDED_WIDTH_RATIO > s:
                block = _dense_block(table, shift, k, c, comp, sign, cen, n)
                # a cluster narrower than ~2 d_c (near a magic time) is numerically low-rank
                lam_b, rank = _psd_eigenvalues(block, chol_tol / s, try_low_rank=bool(uc[-1] - uc[0] < 2 * dc))
                eigs.append(lam_b)
                kinds.append(("dense", s, rank))
            else:
                band = np.zeros((b + 1, s))
                for o in range(b + 1):
                    band[o, : s - o] = _block_values(table, shift, k, c, comp[o:], comp[: s - o], sign, cen, n)
                eigs.append(eig_banded(band, lower=True, eigvals_only=True, check_finite=False))
                kinds.append(("banded", s, b))
    lam = np.sort(np.concatenate(eigs))[::-1]
    pert = delta_target + delta_num
    nb = [x for x in kinds if x[0] == "banded"]
    nd = [x for x in kinds if x[0] == "dense"]
    desc = []
    if nb:
        desc.append(f"banded {len(nb)} blocks, max size {max(x[1] for x in nb)}, max bandwidth {max(x[2] for x in nb)}")
    if nd:
        desc.append(f"dense {len(nd)} blocks, max size {max(x[1] for x in nd)}, max rank {max(x[2] for x in nd)}")
    return SchmidtSpectrum(n, tau, win, lam, pert, "; ".join(desc))


# ================================================================================ dephased negativity


@dataclass(frozen=True)
class NegativityResult:
    """Logarithmic negativity of the dephased two-ensemble state (bits) and how it was obtained."""

    log_negativity_bits: float
    error_bound_bits: float  # window truncation bound (rigorous; floating-point rounding not included)
    trace_deviation: float  # |sum of all eigenvalues - 1|: a rounding check
    window: Window
    sector_dims: tuple[int, ...]
    gamma_t_bec: float


def negativity_truncation_bound(window: Window, schmidt_one_norm: float, windowed_trace_norm: float) -> float:
    """Bound (bits) on the error of the windowed dephased log negativity.

    With Pi the window projector, rho_in = Pi rho Pi is a local filtering of rho, so
    ||rho_in^T2||_1 <= ||rho^T2||_1; and rho - rho_in = E(psi psi^+ - psi_in psi_in^+) with E
    the dephasing channel (a mixture of local unitaries, which cannot increase the trace norm
    of a partial transpose), so the difference is at most 2 A B + B^2 with A the Schmidt
    1-norm of psi and B <= 2 sum_{k outside} c_k that of psi - psi_in.
    """
    eps = window.omitted_weight
    if eps <= 0:
        return 0.0
    a = schmidt_one_norm
    b = 2.0 * window.tail_amplitude
    gap = 2 * a * b + b * b
    x_in = windowed_trace_norm * (1 - eps) ** 2  # unnormalised trace norm of the windowed state
    low = -2 * math.log2(1 - eps)
    high = math.log2(1 + gap / x_in) + 2 * math.log2(1 - eps)
    return max(low, high)


def _sector_geometry(m: np.ndarray, *, mirror_split: bool = False):
    """Orbit representatives of the 90-degree rotation and the real (mirror-invariant) basis.

    Returns the representative lattice points (as index pairs into m) and, per sector l, a
    list of parts, each the real basis of one block as arrays (rep index a, coefficient
    alpha, rep index b, coefficient beta): w = alpha v_l(rep a) + beta v_l(rep b) (b = -1
    when absent). One part per sector, or with ``mirror_split`` (tau = pi/4, N even: the
    mirror p -> -p is then a unitary symmetry) two parts, mirror-even and mirror-odd, for
    sectors 0 and 2.
    """
    pos = np.flatnonzero(m > 0)  # indices of positive m, ascending m if m ascending
    zero = np.flatnonzero(m == 0)
    reps = []  # (i, j) index pairs with p = m[i] > 0, q = m[j] >= 0
    for i in pos:
        if zero.size:
            reps.append((i, zero[0]))
        for j in pos:
            reps.append((i, j))
    reps = np.array(reps, dtype=np.int64).reshape(-1, 2)
    lookup = {(int(a), int(b)): r for r, (a, b) in enumerate(reps)}
    has_origin = zero.size > 0
    basis = {}
    s2 = 1 / math.sqrt(2)
    for ell in range(4):
        a_idx, a_cf, b_idx, b_cf, odd = [], [], [], [], []  # odd: mirror parity (sectors 0, 2)
        il = 1j**ell
        for r, (i, j) in enumerate(reps):
            p, q = m[i], m[j]
            if q == 0:  # axis point: Theta v = (-1)^l v; mirror-even
                a_idx.append(r), a_cf.append(il), b_idx.append(-1), b_cf.append(0), odd.append(False)
            elif p == q:  # diagonal: Theta v = i^l v; mirror parity i^l
                a_idx.append(r), a_cf.append(np.exp(1j * np.pi * ell / 4)), b_idx.append(-1), b_cf.append(0)
                odd.append(ell == 2)
            elif p > q:  # pair with (q, p): Theta v(x) = i^l v(x~)
                rt = lookup[(int(j), int(i))]
                a_idx.append(r), a_cf.append(s2), b_idx.append(rt), b_cf.append(s2 * il), odd.append(False)
                a_idx.append(r), a_cf.append(1j * s2), b_idx.append(rt), b_cf.append(-1j * s2 * il), odd.append(True)
        if ell == 0 and has_origin:
            a_idx.append(len(reps)), a_cf.append(1.0), b_idx.append(-1), b_cf.append(0), odd.append(False)
        arrays = (np.array(a_idx, dtype=np.int64), np.array(a_cf, dtype=complex),
                  np.array(b_idx, dtype=np.int64), np.array(b_cf, dtype=complex))
        odd = np.array(odd, dtype=bool)
        if mirror_split and ell in (0, 2):
            basis[ell] = [tuple(a[~odd] for a in arrays), tuple(a[odd] for a in arrays)]
        else:
            basis[ell] = [arrays]
    return reps, has_origin, basis


def _sector_matrix(ell, m, c, g_table, phase, jmax, reps, has_origin, part, chunk_bytes=256 << 20):
    """Real symmetric block of rho^T2 in sector l (U = i^l) on the real basis ``part``, built in row chunks."""
    nrep = len(reps)
    # representative coordinates (the origin, if any, is appended as the last representative)
    pi_ = np.concatenate([m[reps[:, 0]], [0] if has_origin else []]).astype(np.int64)
    qi_ = np.concatenate([m[reps[:, 1]], [0] if has_origin else []]).astype(np.int64)
    cp = np.concatenate([c[reps[:, 0]] * c[reps[:, 1]], [c[m == 0][0] ** 2] if has_origin else []])
    norm = np.ones(pi_.size)
    if has_origin:
        norm[nrep] = 0.5  # <0|rho|v(x')> = (1/2) sum_s A(0; U^s x')

    a_idx, a_cf, b_idx, b_cf = part
    dim = a_idx.size
    out = np.empty((dim, dim))
    il = 1j**ell
    gsh = (g_table.size - 1) // 2

    def g(diff):
        return g_table[diff // 2 + gsh]

    def h_rows(rows):
        p, q = pi_[rows][:, None], qi_[rows][:, None]
        p2, q2 = pi_[None, :], qi_[None, :]
        x = p * q2 - p2 * q
        y = p * p2 + q * q2
        h = g(p - p2) * g(q - q2) * phase[x + jmax]
        h += (1 / il) * g(p + q2) * g(q - p2) * phase[y + jmax]
        h += (il * il) * g(p + p2) * g(q + q2) * phase[jmax - x]
        h += il * g(p - q2) * g(q + p2) * phase[jmax - y]
        h *= (cp[rows] * norm[rows])[:, None] * (cp * norm)[None, :]
        return h

    # The origin (even N, sector 0 only) is its own orbit, v(0) = |0,0>: H[0, x'] is half the
    # four-term sum (norm 1/2 on the row), H[x, 0] likewise, and H[0, 0] = A(0; 0) is a
    # quarter of the four identical terms (norm 1/2 on both sides).
    # temporaries: ~8 complex arrays of (rows x representatives); keep them below half the block's size
    budget = min(chunk_bytes, max(16 << 20, 4 * dim * dim))
    per_row = max(1, budget // (16 * 8 * max(pi_.size, 1)))
    for start in range(0, dim, per_row):
        sl = slice(start, min(dim, start + per_row))
        ra, rb = a_idx[sl], b_idx[sl]
        rows = np.unique(np.concatenate([ra, rb[rb >= 0]]))
        hr = h_rows(rows)
        pos_a = np.searchsorted(rows, ra)
        left = np.conj(a_cf[sl])[:, None] * hr[pos_a]
        has_b = rb >= 0
        if np.any(has_b):
            pos_b = np.searchsorted(rows, rb[has_b])
            left[has_b] += np.conj(b_cf[sl][has_b])[:, None] * hr[pos_b]
        # now combine columns
        res = left[:, a_idx] * a_cf[None, :]
        cb = b_idx >= 0
        res[:, cb] += left[:, b_idx[cb]] * b_cf[None, cb]
        out[sl] = res.real
    return out


def _is_quarter_pi(tau: float) -> bool:
    """tau = pi/4 (mod pi/2) to rounding: the partial transpose is then real (even N) with a mirror symmetry."""
    r = math.remainder(tau - math.pi / 4, math.pi / 2)
    return abs(r) <= 8 * _EPS * max(1.0, abs(tau))


def dephased_log_negativity(n: int, tau: float, gamma_t_bec: float, *, window: Window | float | None = None,
                            tol: float = DEFAULT_TOL, max_sector_dim: int = DEFAULT_MAX_SECTOR_DIM,
                            schmidt_one_norm: float | None = None) -> NegativityResult:
    """Log negativity (bits) of the two ensembles at tau = J t under collective dephasing.

    ``gamma_t_bec``: Gamma t in the "bec" convention (coherences between m and m' decay as
    exp(-(Gamma t / 2)(m - m')^2) on each ensemble).

    ``window``: a :class:`Window`, a w, or None: exact for N <= 60, else the smallest window
    leaving out at most ``tol`` / 1000 of one ensemble's probability weight. The rigorous
    bound on the window's error (:func:`negativity_truncation_bound`, reported as
    ``error_bound_bits``) scales as sqrt(eps) and is loose by orders of magnitude, so it
    does not choose the window; the factor 1000 comes from measurements: the error of the
    windowed log negativity over the omitted weight eps was 7 to 77 for pure states at
    tau = 0.3 (N = 64, 200, 800; w = 3 to 6), 2.3 at N = 64 with Gamma t = 0.1, and 0.1 at
    tau = pi/4 (N = 300, Gamma t = 0.05 and 0.5). A window given explicitly is used as is.

    The four real symmetric sector blocks (rotation sectors l = 0..3, each made real by the
    mirror) have about (window size)^2 / 4 rows; at tau = pi/4 with N even the partial
    transpose is real and mirror-symmetric, which halves sectors 0 and 2 and makes sector 3
    a copy of sector 1. Blocks above ``max_sector_dim`` rows raise PlanError rather than
    running for hours.
    """
    from scipy.linalg import eigh

    n = _check_n(n)
    tau = _check_time(tau, "tau")
    gamma_t_bec = _check_gamma(gamma_t_bec, "dephasing")
    tol = _check_tol(tol)
    if isinstance(max_sector_dim, bool) or not isinstance(max_sector_dim, (int, np.integer)) or max_sector_dim < 1:
        raise PlanError(f"max_sector_dim must be a positive integer, got {max_sector_dim!r}")
    if schmidt_one_norm is None:
        schmidt_one_norm = schmidt_spectrum(n, tau, tol=min(tol, 1e-6)).schmidt_one_norm()

    if window is None:
        win = choose_window(n, tol * 1e-3, criterion="weight", exact_max_states=61)
    elif isinstance(window, Window):
        win = window
    else:
        win = window_from_w(n, window)

    size = win.size
    quarter = _is_quarter_pi(tau) and n % 2 == 0
    sector = (size * size + 3) // 4
    if sector > max_sector_dim:
        wtxt = "exact" if win.w is None else f"w={win.w:.2f}"
        raise PlanError(
            f"dephased log negativity at n={n} with a window of {size} states ({wtxt}) needs sector blocks of "
            f"{sector} rows, over max_sector_dim={max_sector_dim}; give a smaller window or a larger tol "
            "(the error bound is reported), or raise max_sector_dim"
        )

    k = np.arange(win.kmin, win.kmax + 1)
    c = np.sqrt(_binom_pmf(n, k))
    c = c / math.sqrt(float(np.sum(c * c)))
    m = (n - 2 * k)[::-1].astype(np.int64)  # ascending, symmetric
    c = c[::-1].copy()
    mmax = int(m.max())
    jmax = 2 * mmax * mmax
    phase = _phase_table(tau, jmax)
    # g(diff) for even diff in [-4 mmax, 4 mmax]: exp(-(gamma_t/2) diff^2)
    dd = np.arange(-2 * mmax, 2 * mmax + 1) * 2
    g_table = np.exp(-0.5 * gamma_t_bec * dd.astype(float) ** 2)

    reps, has_origin, basis = _sector_geometry(m, mirror_split=quarter)
    total_abs, total, dims = 0.0, 0.0, []
    for ell in range(4):
        if quarter and ell == 3:  # the mirror maps sector 3 onto sector 1: same spectrum
            continue
        weight = 2.0 if (quarter and ell == 1) else 1.0
        for part in basis[ell]:
            block = _sector_matrix(ell, m, c, g_table, phase, jmax, reps, has_origin, part)
            dims.append(block.shape[0])
            if block.shape[0] == 0:
                continue
            lam = eigh(block.T, eigvals_only=True, overwrite_a=True, check_finite=False, driver="evd")
            total_abs += weight * float(np.sum(np.abs(lam)))
            total += weight * float(np.sum(lam))
            del block
    value = math.log2(total_abs)
    bound = negativity_truncation_bound(win, schmidt_one_norm, total_abs)
    return NegativityResult(value, bound, abs(total - 1.0), win, tuple(dims), gamma_t_bec)


def banded_bounds(n: int, tau: float, gamma_t_bec: float, *, window: Window | float | None = None,
                  xi_nodes: int | None = None, schmidt_one_norm: float = math.sqrt(2.0)):
    """Rigorous lower and upper bounds (bits) on the dephased E_N at tau = pi/4 mod pi/2, N even.

    ``window``: a Window, a w, or None (leave out at most 1e-15 of one ensemble's weight).
    ``schmidt_one_norm``: an upper bound on the pure state's Schmidt 1-norm (sqrt 2 at pi/4), for
    the window's truncation bound. Returns a
    :class:`corrlab.theory.ensembles_dephased.DephasedNegativity`; the bounds are derived in
    that module's docstring.
    """
    from corrlab.theory import ensembles_dephased as dd

    n = _check_n(n)
    tau = _check_time(tau, "tau")
    gamma_t_bec = _check_gamma(gamma_t_bec, "dephasing")
    if window is None:
        win = _choose_window(n, dd.BANDED_WINDOW_WEIGHT, "weight", 61)
    elif isinstance(window, Window):
        win = window
    else:
        win = window_from_w(n, window)
    c = _window_amplitudes(n, win.kmin, win.kmax)
    return dd.banded_bounds_on_window(
        n, tau, gamma_t_bec, win, c, lambda tn: negativity_truncation_bound(win, schmidt_one_norm, tn),
        xi_nodes=dd.BANDED_XI_NODES if xi_nodes is None else int(xi_nodes))


def dephased_negativity(n: int, tau: float, gamma_t_bec: float, *, method: str = "auto", tol: float = 1e-6,
                        window=None, max_sector_dim: int = 12_000,
                        schmidt_one_norm: float | None = None):
    """Dephased log negativity (bits) by the method of ``method``, or chosen per regime ("auto").

    "auto", in order: the exact sector method when its blocks have at most 3000 rows (seconds);
    "hp" near the coherent states (|g| = 2N|tau| <= 4, Gamma t N <= 2, tau reduced mod pi/2 for
    even N) and "hp-cat" near the cat times tau = pi/4 mod pi/2 (N even, |g| = 2N|tau - pi/4| <= 4,
    Gamma t N <= 2: one bit plus hp at tau - pi/4), each when it converges to ``tol``; the sector
    method up to ``max_sector_dim``; "banded" at tau = pi/4 with N even; the hp / hp-cat value with
    its (larger) estimated error if one was tried; otherwise "bracket": the rigorous bracket
    0 <= E_N <= E_N(pure state) (dephasing is a local channel and cannot increase E_N), with no
    value (NaN). ``method`` may also name one of these directly.
    """
    from corrlab.theory.ensembles_dephased import (
        FAST_SECTOR_DIM,
        METHODS,
        DephasedNegativity,
        hp_cat_log_negativity,
        hp_cat_regime,
        hp_log_negativity,
        hp_regime,
        is_banded_case,
    )

    if method not in METHODS:
        raise PlanError(f"negativity method must be one of {', '.join(METHODS)}; got {method!r}")

    def sector(limit):
        r = dephased_log_negativity(n, tau, gamma_t_bec, window=window, tol=tol, max_sector_dim=limit,
                                    schmidt_one_norm=schmidt_one_norm)
        v = r.log_negativity_bits
        detail = f"sector: blocks {'x'.join(map(str, r.sector_dims))}"
        return DephasedNegativity(v, max(v - r.error_bound_bits, 0.0), v + r.error_bound_bits, "sector", "rigorous",
                                  detail, r.window.w, r.window.omitted_weight)

    def banded():
        return banded_bounds(n, tau, gamma_t_bec, window=window,
                             schmidt_one_norm=schmidt_one_norm if schmidt_one_norm else math.sqrt(2.0))

    def bracket(why: str):
        sp = schmidt_spectrum(n, tau, tol=tol)
        up = sp.log_negativity_bits() + sp.log_negativity_error_bound()
        detail = (f"bracket: 0 <= E_N <= E_N(pure) = {up:.6f} bits (dephasing is local; rigorous); no method "
                  f"reaches this point: {why}")
        return DephasedNegativity(math.nan, 0.0, up, "bracket", "rigorous", detail, sp.window.w,
                                  sp.window.omitted_weight)

    if method == "sector":
        return sector(max_sector_dim)
    if method == "hp":
        return hp_log_negativity(n, tau, gamma_t_bec, tol=tol)
    if method == "hp-cat":
        return hp_cat_log_negativity(n, tau, gamma_t_bec, tol=tol)
    if method == "banded":
        return banded()
    if method == "bracket":
        return bracket("asked for")
    if gamma_t_bec == 0:
        return sector(max_sector_dim)
    win = choose_window(n, tol * 1e-3, criterion="weight", exact_max_states=61) if window is None else None
    size = win.size if win is not None else None
    sector_dim = None if size is None else (size * size + 3) // 4
    if sector_dim is not None and sector_dim <= FAST_SECTOR_DIM:
        return sector(max_sector_dim)
    approx = None
    for regime, compute in ((hp_regime, hp_log_negativity), (hp_cat_regime, hp_cat_log_negativity)):
        if regime(n, tau, gamma_t_bec):
            approx = compute(n, tau, gamma_t_bec, tol=tol)
            if approx.upper_bits - approx.value_bits <= tol:
                return approx
    if sector_dim is None or sector_dim <= max_sector_dim:
        return sector(max_sector_dim)
    if is_banded_case(n, tau):
        return banded()
    if approx is not None:
        return approx
    return bracket(
        f"the exact sector method needs blocks of {sector_dim} rows (max_sector_dim={max_sector_dim}); hp covers "
        f"tau within 4/(2N) of a multiple of pi/2 and hp-cat of pi/4 (N even), both with Gamma t N <= 2; the "
        f"banded bounds tau = pi/4 exactly (N even)")


# ================================================================================ public API


def _json_float(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class EnsemblePoint:
    """Entanglement of the two ensembles at one time (all entanglement figures in bits).

    ``tau`` = J t and ``chi_t`` = 4 tau are both given whatever the convention.
    ``log_negativity_bits`` is the dephased state's when ``gamma_t`` is set, else the pure
    state's (equal to ``log_negativity_pure_bits``). ``window`` is the half-width in units of
    sqrt(N)/2 (None: the whole Fock space, exact) and ``omitted_weight`` the probability weight
    of one ensemble it leaves out; both refer to the entropy, and the ``log_negativity_``
    variants to the dephased negativity's window. Error bounds: window truncation plus
    eigenvalue perturbation (rigorous for the entropy); the dephased one covers the window only.
    """

    tau: float
    chi_t: float
    entropy_bits: float
    log_negativity_bits: float
    window: float | None
    omitted_weight: float
    entropy_error_bound_bits: float
    log_negativity_error_bound_bits: float
    log_negativity_pure_bits: float
    log_negativity_pure_error_bound_bits: float
    gamma_t: float | None = None
    log_negativity_window: float | None = None
    log_negativity_omitted_weight: float | None = None
    method: str = ""
    # dephased only (None without dephasing): how the dephased E_N was obtained ("sector", "hp", "hp-cat",
    # "banded", "bracket"; see corrlab.theory.ensembles_dephased), its bracket lower <= E_N <= upper, and whether
    # that bracket is "rigorous" (sector, banded, bracket) or "estimated" (hp, hp-cat). With "bracket" no
    # method reaches the point: log_negativity_bits is NaN (JSON null) and only the bracket is given.
    log_negativity_method: str | None = None
    log_negativity_lower_bits: float | None = None
    log_negativity_upper_bits: float | None = None
    log_negativity_bound_kind: str | None = None

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v if isinstance(v, str) or (v is None) else _json_float(v)
        return out


@dataclass(frozen=True)
class EnsembleScan:
    """Entanglement against time for one N and one convention: what ``corrlab simulate ensembles`` prints."""

    n: int
    convention: str
    points: tuple[EnsemblePoint, ...]
    dephasing: float | None = None  # Gamma t per point (convention units), if fixed
    dephasing_rate: float | None = None  # Gamma / J = Gamma / chi, if Gamma t grows with time
    tol: float = DEFAULT_TOL

    @property
    def times(self) -> np.ndarray:
        """The time of each point in the convention's own variable (tau, or chi t)."""
        key = "tau" if self.convention == "bec" else "chi_t"
        return np.array([getattr(p, key) for p in self.points])

    def to_dict(self) -> dict:
        deph = None
        if self.dephasing is not None or self.dephasing_rate is not None:
            deph = {
                "lindblad": f"sqrt(Gamma) {SPIN_OPERATOR[self.convention].split(' =')[0]} on each ensemble",
                "gamma_t": _json_float(self.dephasing),
                "gamma_over_coupling": _json_float(self.dephasing_rate),
                "gamma_t_meaning": ("Gamma * t in this convention; coherences decay as "
                                    + ("exp(-(Gamma t/2)(m - m')^2)" if self.convention == "bec"
                                       else "exp(-(Gamma t/8)(m - m')^2)") + ", m = n_a - n_b"),
            }
        return {
            "model": MODEL,
            "convention": self.convention,
            "n": self.n,
            "hamiltonian": "J S1^z S2^z" if self.convention == "bec" else "chi J1z J2z",
            "spin_operator": SPIN_OPERATOR[self.convention],
            "time_variable": TIME_VARIABLE[self.convention],
            "units": "bits",
            "tol_bits": self.tol,
            "dephasing": deph,
            "points": [p.to_dict() for p in self.points],
        }

    def summary(self) -> str:
        lab = "tau" if self.convention == "bec" else "chi t"
        head = (f"two ensembles of N = {self.n} atoms, H = {self.to_dict()['hamiltonian']}, "
                f"convention {self.convention} ({SPIN_OPERATOR[self.convention]}, {TIME_VARIABLE[self.convention]})")
        lines = [head]
        if self.dephasing is not None:
            lines.append(f"  dephasing Gamma t = {self.dephasing:g} ({self.convention} convention)")
        if self.dephasing_rate is not None:
            lines.append(f"  dephasing Gamma/{'J' if self.convention == 'bec' else 'chi'} = {self.dephasing_rate:g}")
        for p, t in zip(self.points, self.times):
            w = "exact" if p.window is None else f"w={p.window:.2f}"
            neg = (f", E_N(dephased) = {p.log_negativity_bits:.6f} [{p.log_negativity_method}, "
                   f"{p.log_negativity_lower_bits:.6f}..{p.log_negativity_upper_bits:.6f}]" if p.gamma_t is not None else "")
            lines.append(f"  {lab} = {t:.6g}: S = {p.entropy_bits:.6f} bits (+-{p.entropy_error_bound_bits:.1e}), "
                         f"E_N(pure) = {p.log_negativity_pure_bits:.6f}{neg}; {w}, omitted {p.omitted_weight:.1e}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _resolve_gamma_t(time: float, convention: str, dephasing, dephasing_rate) -> float | None:
    if dephasing is not None and dephasing_rate is not None:
        raise PlanError("give either dephasing (Gamma t) or dephasing_rate (Gamma / J), not both")
    if dephasing is not None:
        return _check_gamma(dephasing, "dephasing")
    if dephasing_rate is not None:
        return _check_gamma(dephasing_rate, "dephasing_rate") * abs(time)
    return None


def ensemble_point(n: int, time: float, *, convention: str = "bec", dephasing: float | None = None,
                   dephasing_rate: float | None = None, window: float | None = None, tol: float = DEFAULT_TOL,
                   max_sector_dim: int = DEFAULT_MAX_SECTOR_DIM, negativity_method: str = "auto") -> EnsemblePoint:
    """Entanglement of the two ensembles at one ``time`` (tau for "bec", chi t for "spin-j").

    ``dephasing``: Gamma t in the convention (see the module docstring); ``dephasing_rate``:
    Gamma / J = Gamma / chi, so Gamma t = rate * |time|. ``window``: half-width w in units of
    sqrt(N)/2, or None to choose it for ``tol`` bits (exact for small N). ``negativity_method``:
    "auto" (per regime, see :func:`corrlab.theory.ensembles_dephased.dephased_negativity`),
    "sector", "hp" or "banded".
    """
    n = _check_n(n)
    convention = _check_convention(convention)
    time = _check_time(time)
    tol = _check_tol(tol)
    w = _check_window(window)
    gamma_t = _resolve_gamma_t(time, convention, dephasing, dephasing_rate)
    tau = tau_from_time(time, convention)

    sp = schmidt_spectrum(n, tau, window=w, tol=tol)
    s_bits = sp.entropy_bits()
    ln_pure = sp.log_negativity_bits()
    ln_pure_bound = sp.log_negativity_error_bound()
    ln, ln_bound, ln_w, ln_eps, method = ln_pure, ln_pure_bound, None, None, sp.method
    neg_method = neg_lower = neg_upper = neg_kind = None
    if gamma_t is not None:
        if gamma_t == 0.0:
            ln_w, ln_eps = sp.window.w, sp.window.omitted_weight
            neg_method, neg_kind = "pure", "rigorous"
            neg_lower, neg_upper = max(ln_pure - ln_pure_bound, 0.0), ln_pure + ln_pure_bound
        else:
            a_upper = sp.schmidt_one_norm() + math.sqrt((n + 1) * sp.window.omitted_weight)
            a_upper = min(a_upper * (1 + 1e-9) + 1e-12, math.sqrt(n + 1))
            neg = dephased_negativity(n, tau, bec_gamma_t(gamma_t, convention), method=negativity_method,
                                      window=w, tol=tol, max_sector_dim=max_sector_dim, schmidt_one_norm=a_upper)
            ln, ln_bound = neg.value_bits, neg.error_bound_bits
            ln_w, ln_eps = neg.window_w, neg.omitted_weight
            neg_method, neg_lower, neg_upper, neg_kind = neg.method, neg.lower_bits, neg.upper_bits, neg.bound_kind
            method += f"; negativity {neg.detail}"
    return EnsemblePoint(
        tau=tau, chi_t=4.0 * tau, entropy_bits=s_bits, log_negativity_bits=ln, window=sp.window.w,
        omitted_weight=sp.window.omitted_weight, entropy_error_bound_bits=sp.entropy_error_bound(),
        log_negativity_error_bound_bits=ln_bound, log_negativity_pure_bits=ln_pure,
        log_negativity_pure_error_bound_bits=ln_pure_bound, gamma_t=gamma_t, log_negativity_window=ln_w,
        log_negativity_omitted_weight=ln_eps, method=method, log_negativity_method=neg_method,
        log_negativity_lower_bits=neg_lower, log_negativity_upper_bits=neg_upper, log_negativity_bound_kind=neg_kind,
    )


def simulate_ensembles(n: int, times: Sequence[float], *, convention: str = "bec", dephasing: float | None = None,
                       dephasing_rate: float | None = None, window: float | None = None, tol: float = DEFAULT_TOL,
                       max_sector_dim: int = DEFAULT_MAX_SECTOR_DIM, negativity_method: str = "auto",
                       progress: Callable[[int, int], None] | None = None) -> EnsembleScan:
    """Entanglement at each of ``times`` (the convention's time variable): the Python side of the CLI.

    ``progress(done, total)`` is called after each point.
    """
    n = _check_n(n)
    convention = _check_convention(convention)
    try:
        times = [float(t) for t in np.atleast_1d(np.asarray(times, dtype=float))]
    except (TypeError, ValueError) as exc:
        raise PlanError(f"times must be numbers, got {times!r}") from exc
    if not times:
        raise PlanError("times must hold at least one time")
    pts = []
    for i, t in enumerate(times):
        pts.append(ensemble_point(n, t, convention=convention, dephasing=dephasing, dephasing_rate=dephasing_rate,
                                  window=window, tol=tol, max_sector_dim=max_sector_dim,
                                  negativity_method=negativity_method))
        if progress is not None:
            progress(i + 1, len(times))
    return EnsembleScan(n, convention, tuple(pts), None if dephasing is None else float(dephasing),
                        None if dephasing_rate is None else float(dephasing_rate), float(tol))


def parse_time(text: str) -> float:
    """A time value: a number, or a multiple/fraction of pi ("pi/4", "3pi/8", "3*pi/8", "0.5pi")."""
    import re

    s = str(text).strip().lower().replace("π", "pi").replace(" ", "")
    try:
        return float(s)
    except ValueError:
        pass
    mt = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+)?)\*?pi(?:/((?:\d+\.?\d*|\.\d+)))?", s)
    if not mt:
        raise PlanError(f"time {text!r} is not a number or a multiple of pi such as pi/4 or 3pi/8")
    a = mt.group(1)
    coef = 1.0 if a in ("", "+") else (-1.0 if a == "-" else float(a))
    den = float(mt.group(2)) if mt.group(2) else 1.0
    if den == 0:
        raise PlanError(f"time {text!r} divides by zero")
    return coef * math.pi / den


def parse_scan(text: str) -> np.ndarray:
    """"T0:T1:STEPS" -> STEPS equally spaced times from T0 to T1 inclusive (T0, T1 may be "pi/4" etc.)."""
    parts = str(text).split(":")
    if len(parts) != 3:
        raise PlanError(f"scan must be T0:T1:STEPS (e.g. 0:pi/2:2000), got {text!r}")
    t0, t1 = parse_time(parts[0]), parse_time(parts[1])
    try:
        steps = int(parts[2])
    except ValueError as exc:
        raise PlanError(f"scan STEPS must be an integer >= 1, got {parts[2]!r}") from exc
    if steps < 1 or steps > 1_000_000:
        raise PlanError(f"scan STEPS must be between 1 and 10^6, got {steps}")
    return np.linspace(t0, t1, steps)


# ================================================================================ joint distribution


@dataclass(frozen=True)
class JointDistribution:
    """Joint distribution of the two collective spin projections along chosen directions.

    ``values``: the possible outcomes of either side in the convention's units (m = N - 2k for
    "bec", m / 2 for "spin-j"), descending; ``probabilities[i, j]`` = P(A = values[i],
    B = values[j]). The directions are n(angle) = (sin a, 0, cos a) in the "xz" plane (a: polar
    angle from +z) and (cos a, sin a, 0) in the "xy" plane (a: azimuth from +x); ``plane`` is
    the pair (plane of A, plane of B).
    """

    n: int
    tau: float
    convention: str
    plane: tuple[str, str]
    angle_a: float
    angle_b: float
    gamma_t: float | None
    values: np.ndarray
    probabilities: np.ndarray

    def marginal_a(self) -> np.ndarray:
        return self.probabilities.sum(axis=1)

    def marginal_b(self) -> np.ndarray:
        return self.probabilities.sum(axis=0)

    def correlation(self) -> float:
        """E[A B]."""
        return float(self.values @ self.probabilities @ self.values)

    def sample(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``size`` independent outcome pairs (A, B), drawn with the caller's generator."""
        if not isinstance(rng, np.random.Generator):
            raise PlanError("rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed))")
        p = np.clip(self.probabilities.ravel(), 0.0, None)
        idx = rng.choice(p.size, size=int(size), p=p / p.sum())
        i, j = np.divmod(idx, self.values.size)
        return self.values[i], self.values[j]

    def to_dict(self) -> dict:
        return {"model": MODEL, "convention": self.convention, "n": self.n, "tau": self.tau, "chi_t": 4 * self.tau,
                "plane": list(self.plane), "angle_a": self.angle_a, "angle_b": self.angle_b,
                "gamma_t": _json_float(self.gamma_t), "values": self.values.tolist(),
                "probabilities": self.probabilities.tolist()}

    def summary(self) -> str:
        return (f"joint distribution, N = {self.n}, {TIME_VARIABLE[self.convention]} = "
                f"{time_from_tau(self.tau, self.convention):.6g}, planes {'/'.join(self.plane)}, angles "
                f"({self.angle_a:.4g}, {self.angle_b:.4g}): E[AB] = {self.correlation():.6g}")


JOINT_MAX_N = 200
JOINT_MAX_N_DEPHASED = 64


def _measurement_basis(n: int, plane: str, angle: float) -> np.ndarray:
    """Columns: eigenvectors of n.J (outcomes j, j-1, ..., -j) in the Fock basis |k> (J_z = j - k)."""
    from scipy.linalg import eigh_tridiagonal

    j = n / 2
    k = np.arange(n + 1)
    mz = j - k
    # J_+ |k> = sqrt(k (N - k + 1)) |k - 1>; J_x tridiagonal with off-diagonals sqrt(k (N-k+1)) / 2
    off = np.sqrt(k[1:] * (n - k[1:] + 1.0)) / 2.0
    if plane == "xz":
        _, v = eigh_tridiagonal(math.cos(angle) * mz, math.sin(angle) * off)
        return v[:, ::-1]  # descending eigenvalue j, j-1, ...
    # xy: n.J = exp(-i a J_z) J_x exp(i a J_z)
    _, v = eigh_tridiagonal(np.zeros(n + 1), off)
    return (np.exp(-1j * angle * mz)[:, None] * v)[:, ::-1]


def joint_distribution(n: int, time: float, angle_a: float, angle_b: float, *, plane: str | tuple[str, str] = "xz",
                       convention: str = "bec", dephasing: float | None = None) -> JointDistribution:
    """P(A, B) for collective spin projections of ensembles 1 (A) and 2 (B) along given directions.

    ``plane``: "xz" or "xy" for both sides, or a pair (plane of A, plane of B); the angles are
    as in :class:`JointDistribution`. Pure function of its arguments (N <= 200; with
    dephasing N <= 64). ``time`` is tau for
    "bec" and chi t for "spin-j"; ``dephasing`` is Gamma t in the convention. Sampling is
    :meth:`JointDistribution.sample` with an explicit generator.
    """
    n = _check_n(n)
    convention = _check_convention(convention)
    planes = (plane, plane) if isinstance(plane, str) else tuple(plane)
    if len(planes) != 2 or any(pl not in PLANES for pl in planes):
        raise PlanError(f"plane must be one of {', '.join(PLANES)} (or a pair of them, for A and B); got {plane!r}")
    time = _check_time(time)
    angle_a, angle_b = _check_time(angle_a, "angle_a"), _check_time(angle_b, "angle_b")
    gamma_t = None if dephasing is None else _check_gamma(dephasing, "dephasing")
    limit = JOINT_MAX_N if not gamma_t else JOINT_MAX_N_DEPHASED
    if n > limit:
        raise PlanError(f"n must be at most {limit} for the joint distribution{' with dephasing' if gamma_t else ''}, got {n}")
    tau = tau_from_time(time, convention)
    k = np.arange(n + 1)
    m = n - 2 * k
    c = coherent_amplitudes(n)
    turns, delta = _reduce_mod_pi(tau, np.outer(m, m).ravel())
    ph = ((1 - 2 * (np.abs(turns).astype(np.int64) & 1)) * np.exp(-1j * delta)).reshape(n + 1, n + 1)
    psi = np.outer(c, c) * ph
    va = _measurement_basis(n, planes[0], angle_a)
    vb = _measurement_basis(n, planes[1], angle_b)
    if not gamma_t:
        amp = va.conj().T @ psi @ vb.conj()
        prob = np.abs(amp) ** 2
    else:
        g = bec_gamma_t(gamma_t, convention)
        dmat = np.exp(-0.5 * g * (m[:, None] - m[None, :]).astype(float) ** 2)
        lam, u = np.linalg.eigh(dmat)  # dephasing = sum_l lam_l diag(u_l) . diag(u_l)
        keep = lam > 1e-15 * lam.max()
        lam, u = lam[keep], u[:, keep]
        left = [va.conj().T * ui[None, :] for ui in u.T]  # V_a^+ diag(u_l)
        right = [ui[:, None] * vb.conj() for ui in u.T]  # diag(u_l) conj(V_b)
        prob = np.zeros((n + 1, n + 1))
        for l1, a in zip(lam, left):
            ap = a @ psi
            for l2, b in zip(lam, right):
                prob += l1 * l2 * np.abs(ap @ b) ** 2
    prob = np.clip(prob, 0.0, None)
    prob /= prob.sum()
    values = m.astype(float) if convention == "bec" else m / 2.0
    return JointDistribution(n, tau, convention, planes, angle_a, angle_b, gamma_t, values, prob)
