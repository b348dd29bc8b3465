"""The pure quantum samplers of the simulated worlds (corrlab.theory.qubits), against QuTiP
and closed forms."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

from corrlab.errors import PlanError
from corrlab.theory import qubits as q

qt = pytest.importorskip("qutip")


def sigma_n(theta, phi=0.0):
    return (math.sin(theta) * math.cos(phi) * qt.sigmax() + math.sin(theta) * math.sin(phi) * qt.sigmay()
            + math.cos(theta) * qt.sigmaz())


def qutip_werner(V):
    return V * qt.ket2dm(qt.bell_state("11")) + (1 - V) * qt.qeye([2, 2]) / 4


def test_werner_state_and_correlation_against_qutip():
    rng = np.random.default_rng(1)
    for V in (1.0, 0.8, 0.3, -0.2):
        assert np.allclose(q.werner_state(V), qutip_werner(V).full(), atol=1e-12)
        for _ in range(5):
            ta, tb, pa, pb = rng.uniform(-math.pi, math.pi, 4)
            ref = qt.expect(qt.tensor(sigma_n(ta, pa), sigma_n(tb, pb)), qutip_werner(V))
            assert q.werner_correlation(V, ta, tb, pa, pb) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("V, expected", [(1.0, 2.828427), (0.8, 2.262742), (1 / math.sqrt(2), 2.000000)])
def test_true_chsh_reference_values(V, expected):
    assert q.true_chsh(V) == pytest.approx(expected, abs=5e-7)
    truth = q.werner_true_values(V)
    assert truth["S"] == pytest.approx(expected, abs=5e-7)
    assert truth["S_max"] == pytest.approx(expected, abs=5e-7)
    assert truth["lhv_sum"] == pytest.approx(2 * V * V)
    # from QuTiP: the same four correlators at CHSH_ANGLES
    (a0, a1), (b0, b1) = q.CHSH_ANGLES
    rho = qutip_werner(V)
    e = lambda x, y: qt.expect(qt.tensor(sigma_n(x), sigma_n(y)), rho)  # noqa: E731
    assert e(a0, b0) + e(a0, b1) + e(a1, b0) - e(a1, b1) == pytest.approx(expected, abs=5e-7)


def test_true_chsh_other_arrangement():
    ta, tb = (0.2, 1.1), (-0.4, 2.5)
    E = [[q.werner_correlation(0.9, x, y) for y in tb] for x in ta]
    assert q.true_chsh(0.9, ta, tb, arrangement=(0, 1)) == pytest.approx(E[0][0] - E[0][1] + E[1][0] + E[1][1])


def test_sample_werner_outcomes_has_born_frequencies():
    rng = np.random.default_rng(2)
    V = 0.9
    n = 40_000
    settings = rng.integers(0, 2, size=(2, n))
    ta = np.asarray(q.CHSH_ANGLES[0])[settings[0]]
    tb = np.asarray(q.CHSH_ANGLES[1])[settings[1]]
    a, b = q.sample_werner_outcomes(V, ta, tb, rng)
    assert a.dtype == np.int8 and set(np.unique(a)) == {-1, 1} and set(np.unique(b)) == {-1, 1}
    rho = qutip_werner(V)
    for s in (0, 1):
        for t in (0, 1):
            m = (settings[0] == s) & (settings[1] == t)
            for oa in (1, -1):
                for ob in (1, -1):
                    pa = (qt.qeye(2) + oa * sigma_n(q.CHSH_ANGLES[0][s])) / 2
                    pb = (qt.qeye(2) + ob * sigma_n(q.CHSH_ANGLES[1][t])) / 2
                    p = qt.expect(qt.tensor(pa, pb), rho)
                    freq = np.mean((a[m] == oa) & (b[m] == ob))
                    assert abs(freq - p) < 4.5 * math.sqrt(p * (1 - p) / m.sum())
    # scalar angles and reproducibility
    a1, b1 = q.sample_werner_outcomes(V, 0.0, 0.0, np.random.default_rng(5))
    a2, b2 = q.sample_werner_outcomes(V, 0.0, 0.0, np.random.default_rng(5))
    assert a1.shape == (1,) and (a1 == a2).all() and (b1 == b2).all()


def test_sample_two_qubit_outcomes_any_state():
    rng = np.random.default_rng(3)
    al = math.pi / 8
    psi = qt.Qobj(np.array([math.cos(al), 0, 0, math.sin(al)]), dims=[[2, 2], [1, 1]])
    rho_mixed = qt.rand_dm([2, 2], seed=7)
    for rho in (qt.ket2dm(psi), rho_mixed):
        n = 30_000
        ta, tb, pa, pb = 0.7, 2.1, 0.3, -1.2
        a, b = q.sample_two_qubit_outcomes(rho.full(), np.full(n, ta), np.full(n, tb), rng,
                                           phi_a=pa, phi_b=pb)
        for oa in (1, -1):
            for ob in (1, -1):
                proj = qt.tensor((qt.qeye(2) + oa * sigma_n(ta, pa)) / 2, (qt.qeye(2) + ob * sigma_n(tb, pb)) / 2)
                p = qt.expect(proj, rho)
                assert abs(np.mean((a == oa) & (b == ob)) - p) < 4.5 * math.sqrt(p * (1 - p) / n)
    T = q.correlation_tensor(qt.ket2dm(psi).full())
    s = np.linalg.svd(T, compute_uv=False)
    assert 2 * math.sqrt(s[0] ** 2 + s[1] ** 2) == pytest.approx(2.449490, abs=5e-7)


def _qutip_magnetization_pmf(rho, n, ra, rb, ta, tb, pa, pb):
    """P(M_A, M_B) from spectral projectors of the collective operators, built in QuTiP."""

    def collective(region, theta, phi):
        ops = []
        for i in region:
            factors = [qt.qeye(2)] * n
            factors[i] = sigma_n(theta, phi)
            ops.append(qt.tensor(*factors))
        return sum(ops)

    ma = collective(ra, ta, pa)
    mb = collective(rb, tb, pb)
    wa, va = np.linalg.eigh(ma.full())
    wb, vb = np.linalg.eigh(mb.full())
    r = rho.full() if rho.isoper else (rho * rho.dag()).full()
    out = {}
    for m1 in range(-len(ra), len(ra) + 1, 2):
        pa_ = va[:, np.isclose(wa, m1)]
        proj_a = pa_ @ pa_.conj().T
        for m2 in range(-len(rb), len(rb) + 1, 2):
            pb_ = vb[:, np.isclose(wb, m2)]
            proj_b = pb_ @ pb_.conj().T
            out[m1, m2] = float(np.real(np.trace(r @ proj_a @ proj_b)))  # they commute
    return out


def test_magnetization_distribution_against_qutip():
    rng = np.random.default_rng(4)
    cases = ((4, [0, 1], [2, 3]), (5, [3, 0], [4, 1]), (4, [1], [0, 2, 3]))
    for n, ra, rb in cases:
        for mixed in (False, True):
            rho = qt.rand_dm([2] * n, seed=int(rng.integers(1 << 30))) if mixed else \
                qt.rand_ket([2] * n, seed=int(rng.integers(1 << 30)))
            arr = rho.full() if mixed else rho.full().ravel()
            ta, tb, pa, pb = rng.uniform(-math.pi, math.pi, 4)
            ma, mb, pmf = q.magnetization_distribution(arr, ra, rb, ta, tb, phi_a=pa, phi_b=pb)
            ref = _qutip_magnetization_pmf(rho, n, ra, rb, ta, tb, pa, pb)
            assert list(ma) == list(range(-len(ra), len(ra) + 1, 2))
            for i, m1 in enumerate(ma):
                for j, m2 in enumerate(mb):
                    assert pmf[i, j] == pytest.approx(ref[m1, m2], abs=1e-12)


def test_sampled_magnetizations_match_the_distribution_and_truth():
    rng = np.random.default_rng(5)
    state = q.random_state(4, rng)
    ra, rb = [0, 1], [2, 3]
    angles_a, angles_b = (0.0, math.pi / 2), (math.pi / 4, -math.pi / 4)
    n = 20_000
    sa, sb = rng.integers(0, 2, n), rng.integers(0, 2, n)
    M_a, M_b = q.sample_magnetizations(state, ra, rb, np.asarray(angles_a)[sa], np.asarray(angles_b)[sb], rng)
    assert M_a.dtype.kind == "i" and set(np.unique(M_a)) <= {-2, 0, 2}
    truth = q.spin_true_values(state, ra, rb, angles_a, angles_b)
    for s in (0, 1):
        for t in (0, 1):
            m = (sa == s) & (sb == t)
            va, vb, pmf = q.magnetization_distribution(state, ra, rb, angles_a[s], angles_b[t])
            exact_corr = float(np.sum(pmf * np.outer(va, vb))) / 4  # <M_A M_B> / (N_A N_B)
            assert truth["correlators"][s, t] == pytest.approx(exact_corr, abs=1e-12)
            x = M_a[m] * M_b[m] / 4
            assert abs(x.mean() - exact_corr) < 4.5 * x.std() / math.sqrt(m.sum())
            # the marginal distribution of M_A as well
            for i, v in enumerate(va):
                p = pmf[i].sum()
                assert abs(np.mean(M_a[m] == v) - p) < 4.5 * math.sqrt(p * (1 - p) / m.sum()) + 1e-12
    assert truth["lhv_sum"] <= truth["lhv_sum_max"] <= 1.0


def _dicke_embed(psi, na, nb):
    """Two-big-spin Dicke amplitudes as a (na + nb)-qubit state vector."""
    t = np.asarray(psi).reshape(na + 1, nb + 1)
    out = np.zeros(1 << (na + nb), dtype=complex)
    for ka in range(na + 1):
        for kb in range(nb + 1):
            for ones_a in combinations(range(na), ka):
                for ones_b in combinations(range(na, na + nb), kb):
                    idx = sum(1 << (na + nb - 1 - i) for i in (*ones_a, *ones_b))
                    out[idx] = t[ka, kb] / math.sqrt(math.comb(na, ka) * math.comb(nb, kb))
    return out


def test_big_spins_agree_with_qubits_and_qutip_spin_operators():
    rng = np.random.default_rng(6)
    for na, nb in ((2, 2), (3, 2), (1, 3)):
        d = (na + 1) * (nb + 1)
        psi = rng.standard_normal(d) + 1j * rng.standard_normal(d)
        psi /= np.linalg.norm(psi)
        full = _dicke_embed(psi, na, nb)
        assert np.linalg.norm(full) == pytest.approx(1.0)
        ta, tb, pa, pb = rng.uniform(-math.pi, math.pi, 4)
        _, _, p_sym = q.symmetric_magnetization_distribution(psi, na, nb, ta, tb, phi_a=pa, phi_b=pb)
        _, _, p_qub = q.magnetization_distribution(full, range(na), range(na, na + nb), ta, tb, phi_a=pa, phi_b=pb)
        assert np.allclose(p_sym, p_qub, atol=1e-12)
        eff_sym = q.symmetric_effective_state(psi, na, nb)
        eff_qub = q.effective_two_qubit_state(full, range(na), range(na, na + nb))
        assert np.allclose(eff_sym, eff_qub, atol=1e-12)
    # QuTiP's spin-j operators (basis m = j .. -j, as here) give the same distribution
    j = 2
    n = 2 * j
    psi = q.big_spin_singlet(n)
    ket = qt.Qobj(psi.reshape(-1, 1), dims=[[n + 1, n + 1], [1, 1]])
    ta, tb = 0.4, 1.3
    ja = qt.jmat(j, "x") * math.sin(ta) + qt.jmat(j, "z") * math.cos(ta)
    jb = qt.jmat(j, "x") * math.sin(tb) + qt.jmat(j, "z") * math.cos(tb)
    wa, va = np.linalg.eigh(ja.full())
    wb, vb = np.linalg.eigh(jb.full())
    amp = va.conj().T @ psi.reshape(n + 1, n + 1) @ vb.conj()  # eigenvalues ascending: M = 2 m ascending
    assert np.allclose(q.symmetric_magnetization_distribution(psi, n, n, ta, tb)[2], np.abs(amp) ** 2, atol=1e-12)
    assert qt.expect(qt.tensor(qt.jmat(j, "z"), qt.qeye(n + 1)) + qt.tensor(qt.qeye(n + 1), qt.jmat(j, "z")), ket) \
        == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 8, 50, 400])
def test_big_spin_singlet_effective_state_is_werner_at_the_monogamy_bound(n):
    psi = q.big_spin_singlet(n)
    eff = q.symmetric_effective_state(psi, n, n)
    V = (n + 2) / (3 * n)
    assert np.allclose(eff, q.werner_state(V), atol=1e-9)


def test_large_big_spin_singlet_sampling():
    rng = np.random.default_rng(7)
    n = 400
    psi = q.big_spin_singlet(n)
    V = (n + 2) / (3 * n)
    trials = 6000
    ta = np.where(rng.random(trials) < 0.5, 0.0, math.pi / 3)
    tb = np.where(rng.random(trials) < 0.5, 0.0, -math.pi / 4)
    M_a, M_b = q.sample_symmetric_magnetizations(psi, n, n, ta, tb, rng)
    same = (ta == 0) & (tb == 0)
    assert (M_a[same] == -M_b[same]).all()  # total spin 0: opposite magnetizations along one axis
    truth = q.symmetric_true_values(psi, n, n, (0.0, math.pi / 3), (0.0, -math.pi / 4))
    assert truth["S_max"] == pytest.approx(2 * math.sqrt(2) * V, abs=1e-9)
    assert truth["lhv_sum_max"] == pytest.approx(2 * V * V, abs=1e-9) and truth["lhv_sum_max"] < 1
    for x in (0.0, math.pi / 3):
        for y in (0.0, -math.pi / 4):
            m = (ta == x) & (tb == y)
            corr = M_a[m] * M_b[m] / (n * n)
            assert abs(corr.mean() - (-V * math.cos(x - y))) < 4.5 * corr.std() / math.sqrt(m.sum()) + 1e-12


def test_random_state_and_validation():
    rng = np.random.default_rng(8)
    v = q.random_state(3, rng)
    assert v.shape == (8,) and np.linalg.norm(v) == pytest.approx(1.0)
    rho = q.random_state(3, rng, mixed=True, rank=2)
    w = np.linalg.eigvalsh(rho)
    assert np.trace(rho).real == pytest.approx(1.0) and w.min() > -1e-12 and np.sum(w > 1e-12) == 2
    assert np.allclose(rho, rho.conj().T)
    with pytest.raises(PlanError, match="regions"):
        q.magnetization_distribution(v, [0, 1], [1, 2], 0.0, 0.0)
    with pytest.raises(PlanError, match="V must be"):
        q.sample_werner_outcomes(1.2, 0.0, 0.0, rng)
    with pytest.raises(TypeError, match="Generator"):
        q.sample_werner_outcomes(0.5, 0.0, 0.0, 42)
    with pytest.raises(PlanError, match="amplitudes"):
        q.symmetric_magnetization_distribution(np.ones(5), 2, 2, 0.0, 0.0)
