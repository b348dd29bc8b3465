"""CHSH and the macroscopic Bell criteria (corrlab.analysis.bell) against closed forms, QuTiP and
seeded simulations with known truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from corrlab.analysis import bell
from corrlab.errors import PlanError
from corrlab.theory import qubits as q
from tests.test_gaussian import sample_quadratures, tmst

qt = pytest.importorskip("qutip")


def random_settings(n, rng, p_a=0.5, p_b=0.5):
    return (rng.random(n) >= p_a).astype(np.int8), (rng.random(n) >= p_b).astype(np.int8)


def werner_run(V, n, rng, *, angles=q.CHSH_ANGLES):
    sa, sb = random_settings(n, rng)
    ta = np.asarray(angles[0])[sa]
    tb = np.asarray(angles[1])[sb]
    a, b = q.sample_werner_outcomes(V, ta, tb, rng)
    return a, b, sa, sb


def qutip_tensor(rho) -> np.ndarray:
    ops = (qt.sigmax(), qt.sigmay(), qt.sigmaz())
    return np.array([[qt.expect(qt.tensor(x, y), rho) for y in ops] for x in ops]).real


def qutip_werner(V):
    singlet = qt.bell_state("11")  # (|01> - |10>) / sqrt 2
    return V * qt.ket2dm(singlet) + (1 - V) * qt.qeye([2, 2]) / 4


# ---------------------------------------------------------------------------------------
# reference values
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("V, expected", [(1.0, 2.828427), (0.8, 2.262742), (1 / math.sqrt(2), 2.000000)])
def test_horodecki_werner(V, expected):
    T = q.correlation_tensor(q.werner_state(V))
    assert np.allclose(T, qutip_tensor(qutip_werner(V)), atol=1e-12)
    assert np.allclose(q.werner_state(V), qutip_werner(V).full(), atol=1e-12)
    assert q.horodecki_max(T) == pytest.approx(expected, abs=5e-7)
    assert q.horodecki_max(T) == pytest.approx(2 * math.sqrt(2) * V, rel=1e-12)


def test_horodecki_partially_entangled_state():
    a = math.pi / 8
    psi = qt.Qobj(np.array([math.cos(a), 0, 0, math.sin(a)]), dims=[[2, 2], [1, 1]])
    T = q.correlation_tensor(psi.full().ravel())
    assert np.allclose(T, qutip_tensor(psi), atol=1e-12)
    assert q.horodecki_max(T) == pytest.approx(2.449490, abs=5e-7)
    # Horodecki's maximum is reached by explicit settings (Gisin): a in the x-z plane
    theta = math.atan(math.sin(2 * a))  # tan theta = t_x / t_z
    A = q.direction([0.0, math.pi / 2])
    B = q.direction([theta, -theta])
    assert q.chsh_from_tensor(T, A, B) == pytest.approx(2.449490, abs=5e-7)


def test_werner_thresholds_against_partial_transpose_and_chsh():
    th = q.werner_thresholds()
    assert th.entangled == pytest.approx(1 / 3) and th.chsh == pytest.approx(1 / math.sqrt(2))
    assert (th.lhv_projective_2006, th.lhv_projective_2017, th.lhv_povm) == (0.6595, 0.6829, pytest.approx(5 / 12))
    assert th.lhv_povm < th.lhv_projective_2006 < th.lhv_projective_2017 < th.chsh
    for V, entangled in ((th.entangled - 0.01, False), (th.entangled + 0.01, True)):
        pt = qt.partial_transpose(qutip_werner(V), [0, 1])
        assert (min(pt.eigenenergies()) < -1e-12) == entangled
    for V in (th.chsh - 0.01, th.chsh + 0.01):
        assert (q.horodecki_max(q.correlation_tensor(q.werner_state(V))) > 2) == (V > th.chsh)
    assert json.loads(json.dumps(th.to_dict()))["lhv_povm"] == pytest.approx(5 / 12)


def test_monogamy_bound_values_and_big_spin_singlets():
    assert [q.monogamy_bound(r) for r in (2, 3, 4, 8)] == pytest.approx([2 / 3, 5 / 9, 1 / 2, 5 / 12])
    assert q.monogamy_bound(8) == pytest.approx(q.werner_thresholds().lhv_povm)
    # two big spins in a singlet reach the bound: built here in the qubit basis from QuTiP's
    # spin states (symmetric Dicke states) and reduced with QuTiP's ptrace
    for n in (2, 3):
        total = 0
        for k in range(n + 1):  # m = j - k, sign (-1)^(j - m)
            total = total + (-1) ** k * qt.tensor(_dicke(n, k), _dicke(n, n - k))
        psi = (total / math.sqrt(n + 1)).unit()
        rho_pair = psi.ptrace([0, n])  # one spin from each region (all pairs are alike)
        eff = q.effective_two_qubit_state(psi.full().ravel(), range(n), range(n, 2 * n))
        assert np.allclose(eff, rho_pair.full(), atol=1e-12)
        assert q.werner_visibility(eff) == pytest.approx(q.monogamy_bound(n), abs=1e-12)
        assert np.allclose(eff, q.werner_state(q.monogamy_bound(n)), atol=1e-12)


def _dicke(n, k):
    """Symmetric n-qubit state with k qubits in |1>, as a QuTiP ket."""
    from itertools import combinations

    out = 0
    for ones in combinations(range(n), k):
        out = out + qt.tensor(*[qt.basis(2, 1 if i in ones else 0) for i in range(n)])
    return out.unit()


def test_effective_state_against_qutip_ptrace():
    rng = np.random.default_rng(3)
    for n, ra, rb in ((3, [0], [1, 2]), (4, [0, 2], [1, 3]), (5, [4, 0], [2, 3])):
        for mixed in (False, True):
            if mixed:
                rho = qt.rand_dm([2] * n, seed=int(rng.integers(1 << 30)))
                arr = rho.full()
            else:
                rho = qt.rand_ket([2] * n, seed=int(rng.integers(1 << 30)))
                arr = rho.full().ravel()
            ref = sum(_pair(rho, i, j) for i in ra for j in rb) / (len(ra) * len(rb))
            ours = q.effective_two_qubit_state(arr, ra, rb)
            assert np.allclose(ours, ref, atol=1e-12)


def _pair(rho, i, j):
    """QuTiP's reduced state of qubits i (first factor) and j; ptrace keeps ascending order."""
    r = rho.ptrace(sorted([i, j]))
    return (r if i < j else r.permute([1, 0])).full()


# ---------------------------------------------------------------------------------------
# the two-setting LHV condition
# ---------------------------------------------------------------------------------------
def test_two_setting_lhv_sum_is_the_plane_norm_and_bounds_chsh():
    rng = np.random.default_rng(4)
    T = q.correlation_tensor(q.werner_state(0.9))
    xz_a = q.direction([0.1, 1.3])
    xz_b = q.direction([-0.4, 2.0])
    assert q.two_setting_lhv_sum(T, xz_a, xz_b) == pytest.approx(2 * 0.81, abs=1e-12)
    for _ in range(50):
        rho = qt.rand_dm([2, 2], seed=int(rng.integers(1 << 30))).full()
        T = q.correlation_tensor(rho)
        A = rng.standard_normal((2, 3))
        B = rng.standard_normal((2, 3))
        lhv = q.two_setting_lhv_sum(T, A, B)
        # independent construction of the planes: QR of the two setting vectors
        qa, _ = np.linalg.qr((A / np.linalg.norm(A, axis=1)[:, None]).T)
        qb, _ = np.linalg.qr((B / np.linalg.norm(B, axis=1)[:, None]).T)
        assert lhv == pytest.approx(np.sum((qa.T @ T @ qb) ** 2), abs=1e-12)
        # CHSH with settings in those planes is at most 2 sqrt(lhv sum)
        assert abs(q.chsh_from_tensor(T, A, B)) <= 2 * math.sqrt(lhv) + 1e-12
        assert lhv <= q.macroscopic_bell(rho, [0], [1]).lhv_sum_max + 1e-12
    with pytest.raises(PlanError, match="span no plane"):
        q.two_setting_lhv_sum(T, [[0, 0, 1], [0, 0, -1]], B)


def test_plane_tensor_from_correlators_recovers_the_tensor():
    rng = np.random.default_rng(6)
    rho = qt.rand_dm([2, 2], seed=9).full()
    T = q.correlation_tensor(rho)
    ta, tb = rng.uniform(0, math.pi, 2), rng.uniform(0, math.pi, 2)
    E = q.direction(ta) @ T @ q.direction(tb).T
    plane = bell.plane_tensor_from_correlators(E, ta, tb)
    # direction(theta) = (sin, 0, cos): in-plane coordinates (cos, sin) are (z, x)
    assert np.allclose(plane, T[np.ix_([2, 0], [2, 0])], atol=1e-12)
    assert np.sum(plane ** 2) == pytest.approx(
        q.two_setting_lhv_sum(T, q.direction(ta), q.direction(tb)), abs=1e-12
    )


def test_more_than_one_qubit_per_region_admits_lhv_random_states():
    """The seed paper: with at least two qubits in a region the effective state's two-setting
    sum is at most 1 (no CHSH violation by magnetizations). Random states drawn here."""
    rng = np.random.default_rng(2025)
    worst = 0.0
    for na, nb in ((2, 2), (2, 3), (3, 2), (3, 3), (2, 4)):
        for k in range(40):
            n = na + nb + (k % 2)  # sometimes an extra qubit outside both regions
            state = q.random_state(n, rng, mixed=(k % 3 == 0), rank=(k % 4) + 1)
            qubits = rng.permutation(n)
            ra, rb = qubits[:na], qubits[na:na + nb]
            res = q.macroscopic_bell(state, ra, rb, a_settings=rng.standard_normal((2, 3)),
                                        b_settings=rng.standard_normal((2, 3)))
            assert res.lhv_sum <= res.lhv_sum_max + 1e-12
            assert res.lhv_sum_max <= 1 + 1e-12
            assert res.S_max <= 2 + 1e-12
            worst = max(worst, res.lhv_sum_max)
    assert worst > 0.05  # the states were not trivially uncorrelated


def _max_lhv_sum(na, nb, restarts, seed):
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    n = na + nb
    d = 1 << n

    def f(x):
        T = q.correlation_tensor(q.effective_two_qubit_state(x[:d] + 1j * x[d:], range(na), range(na, n)))
        s = np.linalg.svd(T, compute_uv=False)
        return -(s[0] ** 2 + s[1] ** 2)

    return max(-minimize(f, rng.standard_normal(2 * d), method="L-BFGS-B").fun for _ in range(restarts))


def test_optimised_two_setting_sum_reaches_the_notes_maxima():
    # notes: maxima found (1,1) 2, (1,2) 1, (2,2) 1
    assert _max_lhv_sum(1, 1, 3, seed=1) == pytest.approx(2.0, abs=1e-6)
    assert _max_lhv_sum(1, 2, 3, seed=2) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_optimised_two_setting_sum_2_2():
    assert _max_lhv_sum(2, 2, 6, seed=3) == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------------------------------
# CHSH from outcomes
# ---------------------------------------------------------------------------------------
def test_chsh_estimate_and_standard_error_formula():
    # a hand-made table: counts and agreements per setting pair
    table = {(0, 0): (100, 80), (0, 1): (120, 90), (1, 0): (90, 60), (1, 1): (110, 20)}
    a, b, sa, sb = [], [], [], []
    for (s, t), (n, agree) in table.items():
        a += [1] * n
        b += [1] * agree + [-1] * (n - agree)
        sa += [s] * n
        sb += [t] * n
    res = bell.chsh_test(a, b, sa, sb)
    E = {k: (2 * agree - n) / n for k, (n, agree) in table.items()}
    S = E[0, 0] + E[0, 1] + E[1, 0] - E[1, 1]
    se = math.sqrt(sum((1 - E[k] ** 2) / table[k][0] for k in table))
    assert res.S == pytest.approx(S, abs=1e-12) and res.statistic == res.S
    assert res.se == pytest.approx(se, abs=1e-12)
    assert res.correlators == pytest.approx({f"{s}{t}": E[s, t] for s, t in table})
    assert res.counts == {f"{s}{t}": n for (s, t), (n, _) in table.items()}
    from scipy.stats import norm

    assert res.pvalue_normal == pytest.approx(norm.sf((S - 2) / se), rel=1e-12)
    lo, hi = res.ci
    assert (lo, hi) == pytest.approx((S - 1.959964 * se, S + 1.959964 * se), abs=1e-5)
    # another arrangement: the minus sign on (0, 1)
    res01 = bell.chsh_test(a, b, sa, sb, arrangement=(0, 1))
    assert res01.S == pytest.approx(E[0, 0] - E[0, 1] + E[1, 0] + E[1, 1], abs=1e-12)
    assert res01.arrangement == (0, 1)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["S"] == pytest.approx(S) and d["counts"]["11"] == 110
    assert "CHSH" in res.summary()


def test_werner_09_violates_and_06_does_not():
    rng = np.random.default_rng(90)
    a, b, sa, sb = werner_run(0.9, 4000, rng)
    res = bell.chsh_test(a, b, sa, sb)
    assert q.true_chsh(0.9) == pytest.approx(2 * math.sqrt(2) * 0.9)
    assert res.ci.covers(q.true_chsh(0.9))
    assert res.pvalue_normal < 1e-12 and res.pvalue < 1e-9
    assert "binomial" in res.bound_method
    assert res.settings_pvalue > 0.001
    rng = np.random.default_rng(60)
    a, b, sa, sb = werner_run(0.6, 4000, rng)
    res = bell.chsh_test(a, b, sa, sb)
    assert res.ci.covers(q.true_chsh(0.6))
    assert res.pvalue_normal > 0.5 and res.pvalue > 0.5


def test_bound_is_valid_for_a_local_model_with_memory():
    """A local model that drifts and reacts to the past (trials neither independent nor
    identically distributed): the bound's false-positive rate stays below alpha."""
    rng = np.random.default_rng(77)
    strategies = np.array([(a0, a1, b0, b1) for a0 in (1, -1) for a1 in (1, -1) for b0 in (1, -1) for b1 in (1, -1)])
    local_s = strategies[:, 0] * (strategies[:, 2] + strategies[:, 3]) + strategies[:, 1] * (
        strategies[:, 2] - strategies[:, 3])
    best = strategies[local_s == 2]  # the 8 deterministic strategies with S = 2
    assert len(best) == 8 and local_s.max() == 2
    n, reps, alpha = 100, 1500, 0.05
    sa = (rng.random((reps, n)) < 0.5).astype(np.int8)
    sb = (rng.random((reps, n)) < 0.5).astype(np.int8)
    a = np.empty((reps, n))
    b = np.empty((reps, n))
    current = best[rng.integers(len(best), size=reps)]
    rows = np.arange(reps)
    for i in range(n):
        # memory: after a trial with equal settings switch to another optimal strategy;
        # drift: a growing chance of a poor strategy. Never uses the present settings.
        if i > 0:
            switch = sa[:, i - 1] == sb[:, i - 1]
            current[switch] = best[rng.integers(len(best), size=int(switch.sum()))]
        poor = rng.random(reps) < 0.1 * i / n
        play = np.where(poor[:, None], strategies[rng.integers(16, size=reps)], current)
        a[:, i] = play[rows, sa[:, i]]
        b[:, i] = play[rows, 2 + sb[:, i]]
    p_bound = np.array([bell.chsh_test(a[k], b[k], sa[k], sb[k]).pvalue for k in range(reps)])
    rate = float(np.mean(p_bound < alpha))
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)


def test_bound_with_unequal_setting_probabilities():
    rng = np.random.default_rng(12)
    probs = ((0.7, 0.3), (0.4, 0.6))
    n = 6000
    sa = (rng.random(n) >= 0.7).astype(int)
    sb = (rng.random(n) >= 0.4).astype(int)
    ta = np.asarray(q.CHSH_ANGLES[0])[sa]
    tb = np.asarray(q.CHSH_ANGLES[1])[sb]
    a, b = q.sample_werner_outcomes(0.95, ta, tb, rng)
    res = bell.chsh_test(a, b, sa, sb, setting_probabilities=probs)
    assert "Hoeffding" in res.bound_method
    assert res.pvalue < 1e-6
    assert res.S_unbiased == pytest.approx(q.true_chsh(0.95), abs=4 * res.se * 1.5)
    assert res.settings_pvalue > 0.001
    # the best local strategy with these probabilities is not rejected
    a = np.ones(n)
    b = np.ones(n)
    local = bell.chsh_test(a, b, sa, sb, setting_probabilities=probs)
    assert local.S == pytest.approx(2.0) and local.pvalue > 0.05 and local.pvalue_normal == 1.0
    # a wrong statement of the probabilities is visible in the settings balance
    assert bell.chsh_test(a, b, sa, sb).settings_pvalue < 1e-6


def test_sign_binned_homodyne_on_two_mode_squeezed_vacuum_is_local():
    """r = 0.5: log negativity 1 nat, but its Wigner function is positive, so sign-binned
    homodyne outcomes have a local model: S <= 2 at any phases (Sheppard's arcsin law
    E = (2/pi) arcsin(tanh(2r) cos(theta_a + theta_b)) gives the correlators)."""
    r = 0.5
    k = math.tanh(2 * r)

    def s_arcsin(ta0, ta1, tb0, tb1):
        e = lambda x, y: 2 / math.pi * math.asin(k * math.cos(x + y))  # noqa: E731
        return e(ta0, tb0) + e(ta0, tb1) + e(ta1, tb0) - e(ta1, tb1)

    grid = np.linspace(-math.pi, math.pi, 25)
    best, angles = -9.0, None
    for ta1 in grid:
        for tb0 in grid:
            for tb1 in grid:
                v = s_arcsin(0.0, ta1, tb0, tb1)
                if v > best:
                    best, angles = v, (0.0, ta1, tb0, tb1)
    assert best < 2.0
    rng = np.random.default_rng(55)
    n = 4000
    sa, sb = random_settings(n, rng)
    theta_a = np.asarray(angles[:2])[sa]
    theta_b = np.asarray(angles[2:])[sb]
    xa, ya, xb, yb, trial = sample_quadratures(tmst(r), n, 20, 0.8, rng, vacuum_variance=(1e-6, 1e-6),
                                               theta_a=theta_a, theta_b=theta_b)
    # the trial's observable: the mean in-phase output; its sign is the outcome
    obs_a = xa.reshape(n, 20).mean(axis=1)
    obs_b = xb.reshape(n, 20).mean(axis=1)
    res = bell.chsh_test(bell.binarize(obs_a), bell.binarize(obs_b), sa, sb)
    assert abs(res.S - best) < 4 * res.se
    for (s, t), key in zip(((0, 0), (0, 1), (1, 0), (1, 1)), ("00", "01", "10", "11")):
        expected = 2 / math.pi * math.asin(k * math.cos(angles[s] + angles[2 + t]))
        assert abs(res.correlators[key] - expected) < 4 * math.sqrt((1 - expected ** 2) / res.counts[key])
    assert res.pvalue_normal > 0.05 and res.pvalue > 0.05


def test_magnetization_correlations_of_random_states_meet_the_lhv_condition():
    rng = np.random.default_rng(31)
    na, nb = 2, 2
    theta_a, theta_b = (0.0, math.pi / 2), (math.pi / 4, -math.pi / 4)
    for k in range(3):
        state = q.random_state(na + nb, rng, mixed=bool(k % 2))
        n = 6000
        sa, sb = random_settings(n, rng)
        ma, mb = q.sample_magnetizations(state, range(na), range(na, na + nb),
                                         np.asarray(theta_a)[sa], np.asarray(theta_b)[sb], rng)
        xa, xb = ma / na, mb / nb
        E = np.array([[np.mean((xa * xb)[(sa == s) & (sb == t)]) for t in (0, 1)] for s in (0, 1)])
        truth = q.spin_true_values(state, range(na), range(na, na + nb), theta_a, theta_b)
        assert np.allclose(E, truth["correlators"], atol=0.05)
        plane = bell.plane_tensor_from_correlators(E, theta_a, theta_b)
        assert np.sum(plane ** 2) == pytest.approx(truth["lhv_sum"], abs=0.1)
        assert np.sum(plane ** 2) < 1
        assert truth["lhv_sum"] <= truth["lhv_sum_max"] <= 1
        # normalized magnetizations as bounded outcomes: no violation
        res = bell.chsh_test(xa, xb, sa, sb)
        assert res.S == pytest.approx(truth["S"], abs=4 * res.se)
        assert res.pvalue_normal > 0.05 and res.pvalue > 0.05
        assert "Hoeffding" in res.bound_method


def test_input_validation():
    a = np.array([1, -1, 1, 1])
    s = np.array([0, 1, 0, 1])
    with pytest.raises(PlanError, match="setting pair"):
        bell.chsh_test(a, a, s, s)
    with pytest.raises(PlanError, match="binarize"):
        bell.chsh_test(a * 2.0, a, s, s[::-1])
    with pytest.raises(PlanError, match="0 and 1"):
        bell.chsh_test(a, a, s + 1, s)
    with pytest.raises(PlanError, match="arrangement"):
        bell.chsh_test(a, a, s, s[::-1], arrangement=(2, 0))
    with pytest.raises(PlanError, match="same length"):
        bell.chsh_test(a, a[:3], s, s[::-1])
    with pytest.raises(PlanError, match="setting_probabilities"):
        bell.chsh_test(a, a, s, s[::-1], setting_probabilities=((0.5, 0.6), (0.5, 0.5)))
    assert bell.binarize([0.0, -1e-9, 2.5]).tolist() == [1, -1, 1]
    with pytest.raises(PlanError, match="overlap"):
        q.effective_two_qubit_state(np.ones(8), [0, 1], [1, 2])
    with pytest.raises(PlanError, match="R must be"):
        q.monogamy_bound(0)
    with pytest.raises(PlanError, match="V must be"):
        q.werner_state(1.5)
