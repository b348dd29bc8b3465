"""Spin worlds on the simulated bench: regions of qubits and atomic ensembles read as magnetizations.

Two worlds, both subclasses of :class:`corrlab.instruments.sim.world.OscillatorWorld` (the bench,
the layer checks and the keyed randomness are the oscillator world's):

* ``spin_lattice``: N_A + N_B qubits in two regions A and B (the seed paper on macroscopic
  Bell inequalities). Every qubit of a region is measured along that side's setting; a
  trial's outcome is the region's normalized magnetization ``M / N`` in ``[-1, 1]``.
* ``ensembles``: two ensembles of ``n`` atoms entangled by ``H = J S1^z S2^z`` (the seed
  paper on atomic ensembles, :mod:`corrlab.theory.ensembles`); a trial's outcome is the
  collective spin projection along the side's setting, normalized to ``[-1, 1]``
  (``S / N`` with ``S = n_a - n_b`` summed over the atoms, whatever the convention).

What the bench does to them (as in :class:`corrlab.instruments.sim.world.WernerWorld`):

* The lock-in reference phase of a side is its measurement direction (degrees -> radians):
  the polar angle from +z towards +x in the x-z plane, or, for an ensemble side whose
  ``plane_*`` is "xy", the azimuth from +x.
* Matching ΔL codes delivered through the closed mediator prepare the correlated state.
  Otherwise (no code, codes that differ: the ``control:break_L`` condition) the trial is
  drawn from the product of the two regions' reduced states, so each side's marginal is
  the same in every condition and only the correlation changes. Misalignment and the
  environment link dilute the preparation: with probability
  ``eta = eta_C x (env_coherence if the environment is coupled)`` a trial comes from the
  prepared state, otherwise from that product state (a mixture, itself a state).
* Each trial's record on channel A (B) is ``m_A x outcome_v`` (``m_B x outcome_v``) plus
  Ornstein-Uhlenbeck readout noise of rms ``readout_noise_v`` (the oscillator world's
  bandwidth), so the trial's windowed mean is its normalized magnetization and a bench
  file's ``calibration.magnetization_full_scale = {a = outcome_v, b = outcome_v}`` states it
  honestly. Quadrature channels (``y_a``, ``y_b``), when recorded, carry noise only.
* Sampling is exact: the joint distribution of ``(M_A, M_B)`` for the trial's setting pair
  (cached per setting pair), one draw per trial with the generator keyed by
  ``(seed, trial, "pair")``.

``truth()`` gives the ground truth for tests (never shown to the analysis): the effective
two-qubit state's correlation tensor, the two-setting LHV sums, the Horodecki maximum and,
for given settings, the correlators, CHSH of the magnetizations and CHSH of sign-binned
outcomes. Sign binning follows the dataset contract (a trial's outcome is the sign of its
observable); a magnetization of exactly 0 (even N) leaves the sign to the readout noise, a
fair coin independent of everything else, so it contributes 0 to the sign correlators.
Note that the macroscopic LHV condition constrains the *magnetization* correlations only:
sign-binned outcomes are other observables and can violate CHSH where the magnetizations
cannot (two spin-3/2 in their singlet, settings (0, 90) and (-135, 135) degrees: sign-binned
S = 2.12 while the LHV sum is 0.62).
"""

from __future__ import annotations

import math

import numpy as np

from corrlab.errors import PlanError
from corrlab.instruments.sim.state import BenchState
from corrlab.instruments.sim.world import OscillatorWorld, keyed_rng, ou_paths

__all__ = ["SpinLatticeWorld", "EnsemblesWorld", "SPIN_STATES", "make_spin_world"]

#: state choices of the spin-lattice world
SPIN_STATES = ("singlet_pairs", "random", "random_symmetric", "big_spin_singlet")
EXACT_MAX_QUBITS = 16  # "random": a state vector of N_A + N_B qubits, sampled exactly
SYMMETRIC_MAX_N = 1000  # "random_symmetric", "big_spin_singlet": Dicke basis of each region
PAIRS_MAX_N = 1_000_000  # "singlet_pairs": sampled pair by pair in closed form
TRUTH_PMF_MAX = 200  # truth(): sign-binned CHSH needs the exact pmf (singlet pairs up to this N)
_CELLS = ((0, 0), (0, 1), (1, 0), (1, 1))


def _int_param(p: dict, name: str, lo: int, hi: int, kind: str) -> int:
    v = p[name]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) and not (isinstance(v, float) and v.is_integer()):
        raise PlanError(f"world.params.{name} must be an integer in {lo}..{hi} for the {kind} world; got {v!r}")
    v = int(v)
    if not lo <= v <= hi:
        raise PlanError(f"world.params.{name} must be an integer in {lo}..{hi} for the {kind} world; got {v}")
    p[name] = v
    return v


def _float_param(p: dict, name: str, kind: str, *, lo: float = 0.0, strict: bool = False) -> float:
    v = p[name]
    try:
        v = float(v)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"world.params.{name} must be a number for the {kind} world; got {v!r}") from exc
    if not math.isfinite(v) or v < lo or (strict and v == lo):
        raise PlanError(f"world.params.{name} must be a finite number {'>' if strict else '>='} {lo} "
                        f"for the {kind} world; got {v}")
    p[name] = v
    return v


def _choice_param(p: dict, name: str, choices: tuple[str, ...], kind: str) -> str:
    v = p[name]
    if v not in choices:
        raise PlanError(f"world.params.{name} must be one of {', '.join(choices)} for the {kind} world; got {v!r}")
    return v


def _sign0(values: np.ndarray) -> np.ndarray:
    """Sign-binned outcome's mean given the magnetization: +-1, and 0 for a tie left to the noise."""
    return np.sign(values)


def _tensor_summary(T: np.ndarray, plane_a: tuple[int, int], plane_b: tuple[int, int]) -> dict:
    """Criteria of the seed paper from a correlation tensor (axes x, y, z = 0, 1, 2)."""
    s = np.linalg.svd(T, compute_uv=False)
    block = T[np.ix_(plane_a, plane_b)]
    return {
        "tensor": T,
        "S_max": float(2 * math.sqrt(s[0] ** 2 + s[1] ** 2)),  # Horodecki maximum
        "lhv_sum_max": float(s[0] ** 2 + s[1] ** 2),  # two-setting sum in the best planes
        "lhv_sum": float(np.sum(block * block)),  # in the planes the settings span
    }


def _chsh(e: np.ndarray, arrangement=(1, 1)) -> float:
    return float(sum((-1.0 if (s, t) == tuple(arrangement) else 1.0) * e[s, t] for s, t in _CELLS))


class _MagnetizationWorld(OscillatorWorld):
    """Shared by the spin worlds: the preparation logic and the record (see the module doc)."""

    EXTRA_DEFAULTS: dict = {"outcome_v": 1.0e-3, "readout_noise_v": 1.0e-4}

    def __init__(self, state: BenchState, *, seed: int, kind: str, params: dict | None = None):
        super().__init__(state, seed=seed, kind=kind, params=params)
        _float_param(self.p, "outcome_v", kind, strict=True)
        _float_param(self.p, "readout_noise_v", kind)
        self._pmf_cache: dict = {}

    def warm_up(self) -> None:
        super().warm_up()
        from scipy.stats import binom  # noqa: F401  (the singlet pairs' distribution)

    # -- subclasses provide the exact joint distribution (normalized values) --------------------
    def joint(self, theta_a: float, theta_b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(m_a_values, m_b_values, pmf)`` of the normalized magnetizations, cached per setting pair."""
        key = (round(float(theta_a), 12), round(float(theta_b), 12))
        hit = self._pmf_cache.get(key)
        if hit is None:
            va, vb, pmf = self._joint(*key)
            pmf = np.clip(np.asarray(pmf, dtype=float), 0.0, None)
            hit = (np.asarray(va, float), np.asarray(vb, float), pmf / pmf.sum())
            if len(self._pmf_cache) > 64:
                self._pmf_cache.clear()
            self._pmf_cache[key] = hit
        return hit

    def _joint(self, theta_a: float, theta_b: float):
        raise NotImplementedError

    def sample(self, theta_a: float, theta_b: float, correlated: bool, rng: np.random.Generator) -> tuple[float, float]:
        """One trial's ``(m_A, m_B)``: from the joint distribution, or from the product of its marginals."""
        va, vb, pmf = self.joint(theta_a, theta_b)
        if correlated:
            i, j = np.divmod(int(rng.choice(pmf.size, p=pmf.reshape(-1))), pmf.shape[1])
        else:
            i = int(rng.choice(len(va), p=pmf.sum(axis=1)))
            j = int(rng.choice(len(vb), p=pmf.sum(axis=0)))
        return float(va[i]), float(vb[j])

    # -- the bench ---------------------------------------------------------------------------------
    def preparation_weight(self, g: dict) -> float:
        """Probability that a trial comes from the prepared (correlated) state."""
        codes = self.ctx.codes
        if codes["a"] is None or codes["a"] != codes["b"]:
            return 0.0
        eta = g["eta_c"]
        return eta * self.p["env_coherence"] if g["env"] else eta

    def acquire(self) -> np.ndarray:
        d = self.state.digitizer
        g = self.record_geometry()
        self.ctx.records += 1
        rng = self.rng("pair")
        correlated = bool(rng.random() < self.preparation_weight(g))
        ma, mb = self.sample(g["theta_a"], g["theta_b"], correlated, rng)
        noise = ou_paths(self.rng("noise"), d.channels, int(d.points), g["a"]) * self.p["readout_noise_v"]
        noise[0] += ma * self.p["outcome_v"]
        noise[1] += mb * self.p["outcome_v"]
        return noise.astype(np.float32)

    # -- truth helpers ---------------------------------------------------------------------------------
    def _settings_truth(self, settings_deg, arrangement) -> dict:
        """Correlators of the magnetizations and of the sign-binned outcomes at the given settings."""
        (a0, a1), (b0, b1) = settings_deg
        ta, tb = np.radians([a0, a1]), np.radians([b0, b1])
        e = np.zeros((2, 2))
        es = np.zeros((2, 2))
        means = {"a": np.zeros(2), "b": np.zeros(2)}
        for s, t in _CELLS:
            va, vb, pmf = self.joint(ta[s], tb[t])
            e[s, t] = va @ pmf @ vb
            es[s, t] = _sign0(va) @ pmf @ _sign0(vb)
            means["a"][s] = va @ pmf.sum(axis=1)
            means["b"][t] = vb @ pmf.sum(axis=0)
        return {"settings_deg": ((a0, a1), (b0, b1)), "correlators": e, "S": _chsh(e, arrangement),
                "correlators_sign": es, "S_sign": _chsh(es, arrangement), "means": means}


class SpinLatticeWorld(_MagnetizationWorld):
    """N_A + N_B qubits in two regions; each region's magnetization along its side's setting.

    Parameters (``world.params``): ``n_a``, ``n_b`` (qubits per region), ``state``:

    * ``"singlet_pairs"``: qubit i of A and qubit i of B in a singlet (needs ``n_a == n_b``);
      sampled pair by pair in closed form (any N up to 10^6). Effective state: Werner with
      ``V = 1 / N``.
    * ``"random"``: a Haar-random pure state of the ``n_a + n_b`` qubits drawn from the
      world's seed (A = qubits ``0..n_a-1``); exact, ``n_a + n_b <= 16``.
    * ``"random_symmetric"``: a random pure state of two big spins (each region in its
      permutation-symmetric subspace, uniform on the unit sphere of the Dicke basis) drawn
      from the world's seed; exact up to 1000 qubits per region.
    * ``"big_spin_singlet"``: two spins ``n/2`` in their singlet (``n_a == n_b``); its
      effective state is Werner at the monogamy bound ``V = (N + 2) / (3 N)``; exact up to
      1000 qubits per region.

    Settings lie in the x-z plane (the lock-in phase is the polar angle from +z towards +x).
    """

    PRESETS = {"spin_lattice": {}}
    EXTRA_DEFAULTS = {**_MagnetizationWorld.EXTRA_DEFAULTS, "n_a": 1, "n_b": 1, "state": "singlet_pairs"}

    def __init__(self, state: BenchState, *, seed: int, kind: str = "spin_lattice", params: dict | None = None):
        super().__init__(state, seed=seed, kind=kind, params=params)
        p = self.p
        choice = _choice_param(p, "state", SPIN_STATES, kind)
        hi = {"singlet_pairs": PAIRS_MAX_N, "random": EXACT_MAX_QUBITS - 1}.get(choice, SYMMETRIC_MAX_N)
        na = _int_param(p, "n_a", 1, hi, kind)
        nb = _int_param(p, "n_b", 1, hi, kind)
        if choice in ("singlet_pairs", "big_spin_singlet") and na != nb:
            raise PlanError(f"world.params: state {choice!r} needs n_a == n_b; got n_a = {na}, n_b = {nb}")
        if choice == "random" and na + nb > EXACT_MAX_QUBITS:
            raise PlanError(f"world.params: state 'random' is sampled exactly for n_a + n_b <= {EXACT_MAX_QUBITS} "
                            f"qubits; got {na + nb} (use 'random_symmetric' for large regions)")
        self.n_a, self.n_b, self.choice = na, nb, choice
        gen = keyed_rng(self.seed, "spin-lattice-state")
        self.psi = None
        if choice == "random":
            from corrlab.theory.qubits import random_state

            self.psi = random_state(na + nb, gen)
        elif choice == "random_symmetric":
            dim = (na + 1) * (nb + 1)
            v = gen.standard_normal(dim) + 1j * gen.standard_normal(dim)
            self.psi = v / np.linalg.norm(v)
        elif choice == "big_spin_singlet":
            from corrlab.theory.qubits import big_spin_singlet

            self.psi = big_spin_singlet(na).astype(complex)

    @property
    def regions(self) -> tuple[list[int], list[int]]:
        return list(range(self.n_a)), list(range(self.n_a, self.n_a + self.n_b))

    def _joint(self, theta_a: float, theta_b: float):
        from corrlab.theory import qubits

        if self.choice == "random":
            ma, mb, pmf = qubits.magnetization_distribution(self.psi, *self.regions, theta_a, theta_b)
        elif self.choice == "singlet_pairs":
            ma, mb, pmf = _singlet_pairs_pmf(self.n_a, theta_a, theta_b)
        else:
            ma, mb, pmf = qubits.symmetric_magnetization_distribution(self.psi, self.n_a, self.n_b, theta_a, theta_b)
        return ma / self.n_a, mb / self.n_b, pmf

    def sample(self, theta_a, theta_b, correlated, rng):
        if self.choice != "singlet_pairs" or self.n_a <= TRUTH_PMF_MAX:
            return super().sample(theta_a, theta_b, correlated, rng)
        # many singlet pairs: count outcomes pair by pair in closed form (no (N+1)^2 table)
        n = self.n_a
        up_a = int(rng.binomial(n, 0.5))
        if correlated:
            same = (1.0 - math.cos(theta_a - theta_b)) / 2.0  # P(b = a) for the singlet
            up_b = int(rng.binomial(up_a, same)) + int(rng.binomial(n - up_a, 1.0 - same))
        else:
            up_b = int(rng.binomial(n, 0.5))
        return (2 * up_a - n) / n, (2 * up_b - n) / n

    def effective_state(self) -> np.ndarray:
        """The average of the pairwise reduced states over i in A, j in B (4x4)."""
        from corrlab.theory import qubits

        if self.choice == "singlet_pairs":
            return qubits.werner_state(1.0 / self.n_a)
        if self.choice == "random":
            return qubits.effective_two_qubit_state(self.psi, *self.regions)
        return qubits.symmetric_effective_state(self.psi, self.n_a, self.n_b)

    def truth(self, settings_deg=None, *, arrangement=(1, 1)) -> dict:
        """Ground truth, for tests only.

        Always: the effective state, its correlation tensor ``tensor``, ``S_max`` (Horodecki),
        ``lhv_sum_max`` (best planes), ``lhv_sum`` (x-z planes, where the settings lie),
        ``visibility`` (singlet-fidelity Werner visibility) and ``monogamy_bound``
        ``(R + 2) / (3 R)``. With ``settings_deg = ((a0, a1), (b0, b1))`` (the protocol's
        reference phases): ``correlators`` ``<M_A M_B> / (N_A N_B)`` per setting pair, ``S``,
        the sign-binned ``correlators_sign`` and ``S_sign`` (None for singlet pairs beyond
        N = 200), and the local ``means``.
        """
        from corrlab.theory.qubits import correlation_tensor

        eff = self.effective_state()
        T = correlation_tensor(eff)
        singlet = np.array([0, 1, -1, 0], dtype=complex) / math.sqrt(2)
        r = max(self.n_a, self.n_b)
        out = {"kind": self.kind, **self.p, "effective_state": eff,
               **_tensor_summary(T, (0, 2), (0, 2)),
               "visibility": float((4 * np.real(singlet.conj() @ eff @ singlet) - 1) / 3),
               "monogamy_bound": (r + 2) / (3 * r)}
        if settings_deg is not None:
            if self.choice == "singlet_pairs" and self.n_a > TRUTH_PMF_MAX:
                (a0, a1), (b0, b1) = settings_deg
                ta, tb = np.radians([a0, a1]), np.radians([b0, b1])
                e = np.array([[-math.cos(ta[s] - tb[t]) / self.n_a for t in (0, 1)] for s in (0, 1)])
                out.update(settings_deg=((a0, a1), (b0, b1)), correlators=e, S=_chsh(e, arrangement),
                           correlators_sign=None, S_sign=None, means={"a": np.zeros(2), "b": np.zeros(2)})
            else:
                out.update(self._settings_truth(settings_deg, arrangement))
        return out


def _singlet_pairs_pmf(n: int, theta_a: float, theta_b: float):
    """Exact ``(M_A, M_B)`` pmf of n singlet pairs (A's qubit i with B's qubit i), ascending M."""
    from scipy.stats import binom

    same = (1.0 - math.cos(theta_a - theta_b)) / 2.0  # P(b = a)
    k = np.arange(n + 1)
    pmf = np.zeros((n + 1, n + 1))
    for up_a in range(n + 1):  # up_b = Bin(up_a, same) + Bin(n - up_a, 1 - same)
        row = np.convolve(binom.pmf(k[:up_a + 1], up_a, same), binom.pmf(k[:n - up_a + 1], n - up_a, 1.0 - same))
        pmf[up_a] = binom.pmf(up_a, n, 0.5) * row
    m = 2 * k - n
    return m, m, pmf


class EnsemblesWorld(_MagnetizationWorld):
    """Two atomic ensembles after ``H = J S1^z S2^z`` for a time tau = J t, measured along the settings.

    Parameters (``world.params``): ``n`` atoms per ensemble; ``tau`` = J t (the "bec" time;
    chi t = 4 tau in the "spin-j" convention); ``convention`` ("bec" or "spin-j"), which
    names the units of ``dephasing`` (Gamma t of collective dephasing, as in
    :func:`corrlab.theory.ensembles.joint_distribution`; 0 = none) and of the spin values
    in ``truth()``; ``plane_a``, ``plane_b`` ("xz": the phase is the polar angle from +z
    towards +x; "xy": the azimuth from +x). The interaction correlates A's y with B's z (and
    A's z with B's y), so the default puts A's settings in the x-y plane and B's in the x-z
    plane. Exact joint distribution: n <= 200 (n <= 64 with dephasing).
    """

    PRESETS = {"ensembles": {}}
    EXTRA_DEFAULTS = {**_MagnetizationWorld.EXTRA_DEFAULTS, "n": 20, "tau": 0.1, "convention": "bec",
                      "dephasing": 0.0, "plane_a": "xy", "plane_b": "xz"}

    def __init__(self, state: BenchState, *, seed: int, kind: str = "ensembles", params: dict | None = None):
        from corrlab.theory import ensembles as ens

        super().__init__(state, seed=seed, kind=kind, params=params)
        p = self.p
        _choice_param(p, "convention", ens.CONVENTIONS, kind)
        _choice_param(p, "plane_a", ens.PLANES, kind)
        _choice_param(p, "plane_b", ens.PLANES, kind)
        _float_param(p, "tau", kind, lo=-1e5)
        gamma_t = _float_param(p, "dephasing", kind)
        limit = ens.JOINT_MAX_N_DEPHASED if gamma_t > 0 else ens.JOINT_MAX_N
        _int_param(p, "n", 1, limit, kind)

    @property
    def time(self) -> float:
        """The convention's own time variable (tau, or chi t = 4 tau)."""
        from corrlab.theory.ensembles import time_from_tau

        return time_from_tau(self.p["tau"], self.p["convention"])

    def _distribution(self, angle_a: float, angle_b: float, planes: tuple[str, str]):
        from corrlab.theory.ensembles import joint_distribution

        p = self.p
        return joint_distribution(p["n"], self.time, angle_a, angle_b, plane=planes, convention=p["convention"],
                                  dephasing=p["dephasing"] or None)

    def _joint(self, theta_a: float, theta_b: float):
        d = self._distribution(theta_a, theta_b, (self.p["plane_a"], self.p["plane_b"]))
        v = d.values / np.max(np.abs(d.values))  # S / N in [-1, 1] in either convention
        return v, v, d.probabilities

    def tensor(self) -> np.ndarray:
        """``T_kl = <S_A^k S_B^l> / N^2`` (S = n_a - n_b summed over atoms): the effective
        two-qubit state's correlation tensor, from the exact joint distributions."""
        axes = {0: ("xz", math.pi / 2), 1: ("xy", math.pi / 2), 2: ("xz", 0.0)}  # x, y, z
        T = np.zeros((3, 3))
        for k, (pa, aa) in axes.items():
            for m, (pb, ab) in axes.items():
                d = self._distribution(aa, ab, (pa, pb))
                v = d.values / np.max(np.abs(d.values))
                T[k, m] = v @ d.probabilities @ v
        return T

    def truth(self, settings_deg=None, *, arrangement=(1, 1)) -> dict:
        """Ground truth, for tests only.

        ``entropy_bits`` (of the pure state), ``log_negativity_bits`` (of the dephased state
        when ``dephasing`` > 0, else the pure state's), ``tau`` and ``chi_t``, the
        correlation tensor of the effective two-qubit state, ``S_max``, ``lhv_sum_max`` and
        ``lhv_sum`` (in the planes ``plane_a``, ``plane_b``). With ``settings_deg``: the
        correlators ``<S_A S_B> / N^2`` per setting pair, ``S``, the sign-binned
        ``correlators_sign`` and ``S_sign``, and the local ``means``.
        """
        from corrlab.theory.ensembles import ensemble_point

        p = self.p
        point = ensemble_point(p["n"], self.time, convention=p["convention"], dephasing=p["dephasing"] or None)
        axes = {"xz": (0, 2), "xy": (0, 1)}
        out = {"kind": self.kind, **p, "tau": point.tau, "chi_t": point.chi_t, "entropy_bits": point.entropy_bits,
               "log_negativity_bits": point.log_negativity_bits,
               "log_negativity_pure_bits": point.log_negativity_pure_bits,
               **_tensor_summary(self.tensor(), axes[p["plane_a"]], axes[p["plane_b"]])}
        if settings_deg is not None:
            out.update(self._settings_truth(settings_deg, arrangement))
        return out


def make_spin_world(state: BenchState, *, kind: str, seed: int, params: dict | None = None):
    """The spin world a bench file names (``spin_lattice`` or ``ensembles``)."""
    if kind == "spin_lattice":
        return SpinLatticeWorld(state, seed=seed, params=params)
    if kind == "ensembles":
        return EnsemblesWorld(state, seed=seed, params=params)
    raise PlanError(f"world.kind {kind!r} is not a spin world; kinds: spin_lattice, ensembles")
