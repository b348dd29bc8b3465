"""Spin worlds: regions of qubits and atomic ensembles, sampled exactly and graded end to end.

References are independent of the worlds' code: explicit N-qubit states through
``corrlab.theory.qubits`` / ``corrlab.analysis.bell``, QuTiP spin operators, closed forms (the
singlet's ``-cos``, the binomial marginals); the end-to-end runs compare the analysis
with ``truth()``, which the analysis never sees.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil

import numpy as np
import pytest

from corrlab.analysis.pipeline import analyze_dataset
from corrlab.errors import PlanError
from corrlab.daq.runner import run_protocol
from corrlab.instruments.benchfile import bench_from_dict, load_bench
from corrlab.instruments.sim.spin_worlds import EnsemblesWorld, SpinLatticeWorld, _singlet_pairs_pmf
from corrlab.instruments.sim.state import BenchState
from corrlab.instruments.sim.world_registry import make_world
from corrlab.protocols.config import protocol_from_dict

CHSH_DEG = ((0.0, 90.0), (-135.0, 135.0))  # the CHSH-optimal directions of the singlet
ENSEMBLE_DEG = ((60.0, 120.0), (-30.0, 30.0))  # A (x-y plane): mostly y; B (x-z plane): mostly z
FULL_SCALE_V = 1.0e-3  # outcome_v: the record at M/N = 1


# ------------------------------------------------------------------------------- helpers
def g_test(counts: np.ndarray, expected_p: np.ndarray) -> float:
    """G-test p-value of observed counts against probabilities (cells with expected < 5 pooled)."""
    from scipy.stats import chi2

    obs, p = np.asarray(counts, float).ravel(), np.asarray(expected_p, float).ravel()
    exp = p / p.sum() * obs.sum()
    small = exp < 5
    if small.any():
        obs = np.r_[obs[~small], obs[small].sum()]
        exp = np.r_[exp[~small], exp[small].sum()]
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    g = 2 * np.sum(np.where(obs > 0, obs * np.log(np.where(obs > 0, obs, 1) / exp), 0.0))
    return float(chi2.sf(g, len(obs) - 1))


def drive(world, phase_a_deg: float, phase_b_deg: float, trials: int, *, matching: bool = True) -> np.ndarray:
    """Run the world's record directly (no servers): each trial's windowed mean over the full scale."""
    st = world.state
    st.digitizer.points, st.digitizer.channels = 16, 2
    st.lockins["a"].phase_deg, st.lockins["b"].phase_deg = phase_a_deg, phase_b_deg
    st.stage[1].position = st.stage[2].position = 1.0  # aligned: eta_C = 1
    out = np.empty((trials, 2))
    for t in range(trials):
        world.begin_record(t)
        world.ctx.codes = {"a": (1, 0, 1, 1), "b": (1, 0, 1, 1) if matching else (0, 1, 1, 0)}
        out[t] = world.acquire().mean(axis=1) / world.p["outcome_v"]
    return out


def lattice_counts(m: np.ndarray, values_a: np.ndarray, values_b: np.ndarray) -> np.ndarray:
    """Counts of the recovered magnetizations on the exact value lattice (noise far below the spacing)."""
    i = np.abs(m[:, :1] - values_a[None, :]).argmin(axis=1)
    j = np.abs(m[:, 1:] - values_b[None, :]).argmin(axis=1)
    assert np.max(np.abs(m[:, 0] - values_a[i])) < 0.25 * np.min(np.diff(np.sort(values_a)))
    counts = np.zeros((len(values_a), len(values_b)))
    np.add.at(counts, (i, j), 1)
    return counts


def spin_run(root, run_id, kind, params, *, settings, trials, conditions=None, seed=8, calibrated=True):
    conditions = conditions or {"main": 1}
    p = protocol_from_dict({
        "protocol": {"name": run_id, "seed": seed},
        "schedule": {"trials": trials, "block_size": sum(conditions.values()), "trials_per_part": 120,
                     "conditions": conditions},
        "settings": {"a_deg": list(settings[0]), "b_deg": list(settings[1])},
        "acquisition": {"samples": 64},
        "stabilize": {"reads": 1, "interval_s": 0.0},
        "analysis": {"n_resamples": 999},
    })
    data = load_bench().to_json()
    data["world"] = {"kind": kind, "seed": None, "params": {"outcome_v": FULL_SCALE_V, **params}}
    if calibrated:
        data["calibration"] = {"magnetization_full_scale": {"a": FULL_SCALE_V, "b": FULL_SCALE_V}}
    run_protocol(p, bench_from_dict(data), root, run_id=run_id)
    return root / run_id


def analyze(path, **kw):
    return analyze_dataset(path, interval_resamples=499, **kw)


def world_seed(path) -> int:
    return int(json.loads((path / "manifest.json").read_text())["world_seed"])


def max_abs_chsh(e) -> float:
    """The largest |S| over the four placements of the minus sign."""
    e = np.asarray(e)
    return max(abs(e.sum() - 2 * e[s, t]) for s, t in itertools.product((0, 1), repeat=2))


# ------------------------------------------------------------------------ unit: the worlds
def test_singlet_pairs_pmf_equals_the_explicit_state():
    from corrlab.theory.qubits import magnetization_distribution

    singlet = np.array([0, 1, -1, 0]) / math.sqrt(2)
    # qubits (A0, A1, B0, B1): A0-B0 and A1-B1 in singlets
    psi = np.einsum("ac,bd->abcd", singlet.reshape(2, 2), singlet.reshape(2, 2)).reshape(-1)
    for ta, tb in ((0.3, 1.1), (0.0, math.pi / 2), (-2.0, 2.5)):
        ma, mb, ref = magnetization_distribution(psi, [0, 1], [2, 3], ta, tb)
        va, vb, pmf = _singlet_pairs_pmf(2, ta, tb)
        assert np.array_equal(ma, va) and np.array_equal(mb, vb)
        np.testing.assert_allclose(pmf, ref, atol=1e-12)


def test_spin_lattice_truth_against_analysis_bell():
    from corrlab.theory.qubits import direction, macroscopic_bell, werner_state

    w = SpinLatticeWorld(BenchState(), seed=29, params={"state": "random", "n_a": 2, "n_b": 2})
    t = w.truth(CHSH_DEG)
    (a0, a1), (b0, b1) = np.radians(CHSH_DEG)
    ref = macroscopic_bell(w.psi, [0, 1], [2, 3], a_settings=direction([a0, a1]), b_settings=direction([b0, b1]))
    assert t["lhv_sum"] == pytest.approx(ref.lhv_sum, abs=1e-12)
    assert t["lhv_sum_max"] == pytest.approx(ref.lhv_sum_max, abs=1e-12)
    assert t["S_max"] == pytest.approx(ref.S_max, abs=1e-12)
    assert t["lhv_sum_max"] <= 1.0  # the macroscopic criterion: regions of two qubits always admit LHV
    # singlet pairs: the effective state is Werner with V = 1/N
    pairs = SpinLatticeWorld(BenchState(), seed=0, params={"state": "singlet_pairs", "n_a": 3, "n_b": 3})
    np.testing.assert_allclose(pairs.effective_state(), werner_state(1 / 3), atol=1e-12)


def test_big_spin_singlet_sign_binned_chsh_violates_while_magnetizations_admit_lhv():
    """Documented in the module: two spin-3/2 singlet, sign of J.n: S = 2.12 > 2, LHV sum 0.62 (QuTiP)."""
    qutip = pytest.importorskip("qutip")

    w = SpinLatticeWorld(BenchState(), seed=0, params={"state": "big_spin_singlet", "n_a": 3, "n_b": 3})
    t = w.truth(CHSH_DEG)
    j = 1.5
    jx, jz = qutip.jmat(j, "x"), qutip.jmat(j, "z")
    # singlet of two spins j: sum_m (-1)^(j - m) |m>|-m> / sqrt(2j + 1)
    dim = int(2 * j + 1)
    psi = sum((-1) ** k * qutip.tensor(qutip.basis(dim, k), qutip.basis(dim, dim - 1 - k)) for k in range(dim)).unit()

    def sign_op(theta):
        op = math.sin(theta) * jx + math.cos(theta) * jz
        vals, vecs = op.eigenstates()
        return sum(np.sign(v) * vec * vec.dag() for v, vec in zip(vals, vecs))

    def mag_op(theta):
        return (math.sin(theta) * jx + math.cos(theta) * jz) / j

    (a0, a1), (b0, b1) = np.radians(CHSH_DEG)
    es = np.array([[qutip.expect(qutip.tensor(sign_op(a), sign_op(b)), psi) for b in (b0, b1)] for a in (a0, a1)])
    em = np.array([[qutip.expect(qutip.tensor(mag_op(a), mag_op(b)), psi) for b in (b0, b1)] for a in (a0, a1)])
    np.testing.assert_allclose(t["correlators_sign"], es, atol=1e-10)
    np.testing.assert_allclose(t["correlators"], em, atol=1e-10)
    assert t["S_sign"] == pytest.approx(1.5 * math.sqrt(2), abs=1e-9) and t["S_sign"] > 2
    assert t["lhv_sum"] == pytest.approx(2 * (5 / 9) ** 2, abs=1e-10) and t["lhv_sum"] < 1  # Werner V = 5/9


def test_ensembles_truth_against_qutip():
    qutip = pytest.importorskip("qutip")
    from scipy.special import comb

    n, tau = 10, 0.13
    w = EnsemblesWorld(BenchState(), seed=0, params={"n": n, "tau": tau})
    t = w.truth(ENSEMBLE_DEG)
    k = np.arange(n + 1)
    m = n - 2 * k  # S^z = n_a - n_b = 2 J_z; qutip's jmat basis is m_J = j, j-1, ... (index k)
    c = np.sqrt(comb(n, k) / 2.0 ** n)
    amp = np.outer(c, c) * np.exp(-1j * tau * np.outer(m, m))
    psi = qutip.Qobj(amp.reshape(-1, 1), dims=[[n + 1, n + 1], [1, 1]])
    ops = [2 * qutip.jmat(n / 2, ax) / n for ax in "xyz"]
    T = np.array([[qutip.expect(qutip.tensor(a, b), psi) for b in ops] for a in ops])
    np.testing.assert_allclose(t["tensor"], T, atol=1e-10)
    assert t["entropy_bits"] == pytest.approx(qutip.entropy_vn(psi.ptrace(0), base=2), abs=1e-8)
    # the settings: A in the x-y plane (azimuth from x), B in the x-z plane (polar angle from z)
    a_dirs = [(math.cos(a), math.sin(a), 0.0) for a in np.radians(ENSEMBLE_DEG[0])]
    b_dirs = [(math.sin(b), 0.0, math.cos(b)) for b in np.radians(ENSEMBLE_DEG[1])]
    e_ref = np.array([[np.array(a) @ T @ np.array(b) for b in b_dirs] for a in a_dirs])
    np.testing.assert_allclose(t["correlators"], e_ref, atol=1e-10)
    assert t["lhv_sum"] == pytest.approx(np.sum(T[np.ix_([0, 1], [0, 2])] ** 2), abs=1e-12)
    assert t["lhv_sum_max"] <= 1.0


@pytest.mark.parametrize("kind, params, phases", [
    ("spin_lattice", {"state": "random", "n_a": 2, "n_b": 2}, (90.0, 135.0)),
    ("spin_lattice", {"state": "big_spin_singlet", "n_a": 3, "n_b": 3}, (0.0, -135.0)),
    ("ensembles", {"n": 10, "tau": 0.1}, (90.0, 0.0)),
    ("ensembles", {"n": 8, "tau": 0.3, "dephasing": 0.05, "convention": "spin-j"}, (90.0, 0.0)),
])
def test_world_records_follow_the_exact_joint_distribution(kind, params, phases):
    from corrlab.theory import ensembles, qubits

    w = make_world(BenchState(), kind=kind, seed=29, params={**params, "readout_noise_v": 1e-7})
    ta, tb = np.radians(phases)
    if kind == "ensembles":  # reference: the module's own joint distribution at chi t = 4 tau ("spin-j")
        time = params["tau"] * (4 if params.get("convention") == "spin-j" else 1)
        d = ensembles.joint_distribution(params["n"], time, ta, tb, plane=("xy", "xz"),
                                         convention=params.get("convention", "bec"), dephasing=params.get("dephasing"))
        va = vb = d.values / np.max(np.abs(d.values))
        ref = d.probabilities
    elif params["state"] == "random":
        ma, mb, ref = qubits.magnetization_distribution(w.psi, [0, 1], [2, 3], ta, tb)
        va, vb = ma / 2, mb / 2
    else:
        ma, mb, ref = qubits.symmetric_magnetization_distribution(qubits.big_spin_singlet(3), 3, 3, ta, tb)
        va, vb = ma / 3, mb / 3
    m = drive(w, *phases, 2000)
    counts = lattice_counts(m, va, vb)
    assert g_test(counts, ref) > 1e-3
    # the uncorrelated preparation (codes differ): the product of the same marginals
    m0 = drive(w, *phases, 2000, matching=False)
    counts0 = lattice_counts(m0, va, vb)
    assert g_test(counts0, np.outer(ref.sum(axis=1), ref.sum(axis=0))) > 1e-3
    if abs(np.sum(np.outer(va, vb) * (ref - np.outer(ref.sum(1), ref.sum(0))))) > 0.05:
        assert g_test(counts0, ref) < 1e-6  # and that differs from the joint where it is correlated


def test_many_singlet_pairs_sampled_in_closed_form():
    n = 300  # above the table limit: pair-by-pair binomials
    w = SpinLatticeWorld(BenchState(), seed=3, params={"state": "singlet_pairs", "n_a": n, "n_b": n})
    rng = np.random.default_rng(5)
    ta, tb = 0.4, 1.9
    draws = np.array([w.sample(ta, tb, True, rng) for _ in range(6000)])
    _, _, pmf = _singlet_pairs_pmf(n, ta, tb)
    up = np.round((draws * n + n) / 2).astype(int)
    # the sum and the difference of the up counts, against the exact table
    s_ref = np.bincount((np.add.outer(np.arange(n + 1), np.arange(n + 1))).ravel(), weights=pmf.ravel())
    d_ref = np.bincount((np.subtract.outer(np.arange(n + 1), np.arange(n + 1)) + n).ravel(), weights=pmf.ravel())
    assert g_test(np.bincount(up.sum(axis=1), minlength=2 * n + 1), s_ref) > 1e-3
    assert g_test(np.bincount(up[:, 0] - up[:, 1] + n, minlength=2 * n + 1), d_ref) > 1e-3
    e = draws[:, 0] * draws[:, 1]
    assert abs(e.mean() + math.cos(ta - tb) / n) < 4 * e.std() / math.sqrt(len(e))


def test_bad_parameters_name_the_field():
    with pytest.raises(PlanError, match="n_a == n_b"):
        make_world(BenchState(), kind="spin_lattice", seed=0, params={"state": "singlet_pairs", "n_a": 2, "n_b": 3})
    with pytest.raises(PlanError, match="n_a \\+ n_b <= 16"):
        make_world(BenchState(), kind="spin_lattice", seed=0, params={"state": "random", "n_a": 9, "n_b": 9})
    with pytest.raises(PlanError, match="world.params.state must be one of"):
        make_world(BenchState(), kind="spin_lattice", seed=0, params={"state": "ghz"})
    with pytest.raises(PlanError, match="world.params.n must be an integer in 1..64"):
        make_world(BenchState(), kind="ensembles", seed=0, params={"n": 100, "dephasing": 0.1})
    with pytest.raises(PlanError, match="world.params.plane_a"):
        make_world(BenchState(), kind="ensembles", seed=0, params={"plane_a": "yz"})


# ------------------------------------------------------------------- end to end: the bench
@pytest.fixture(scope="module")
def singlet_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("singlet")
    return spin_run(root, "singlet", "spin_lattice", {"state": "singlet_pairs", "n_a": 1, "n_b": 1},
                    settings=CHSH_DEG, trials=200)


@pytest.fixture(scope="module")
def random_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("random")
    return spin_run(root, "random22", "spin_lattice", {"state": "random", "n_a": 2, "n_b": 2},
                    settings=CHSH_DEG, trials=200, seed=29)


@pytest.fixture(scope="module")
def ensembles_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensembles")
    return spin_run(root, "ens", "ensembles", {"n": 20, "tau": 0.1}, settings=ENSEMBLE_DEG, trials=200,
                    conditions={"main": 3, "control:break_L": 1}, seed=4)


def test_one_qubit_per_region_in_a_singlet_is_werner_v1_through_the_bench(singlet_dataset, tmp_path):
    from corrlab.theory.qubits import true_chsh

    r = analyze(singlet_dataset)
    c = r.nonclassicality["chsh"]
    assert true_chsh(1.0) == pytest.approx(2 * math.sqrt(2))
    assert c["ci"][0] <= true_chsh(1.0) <= c["ci"][1]
    assert c["pvalue"] < 1e-3 and r.verdict.level == "nonclassical" and not r.verdict.signalling_detected
    mac = r.nonclassicality["macroscopic"]
    assert mac["ci"][0] <= 2.0 <= mac["ci"][1] and mac["ci"][0] > 1 and mac["holds"] is False
    # informational only: with the minus sign on (0, 0) CHSH is 1.41 < 2 on the same data; the failed
    # macroscopic condition alone does not make the verdict nonclassical
    r2 = analyze(singlet_dataset, plan=dict(r.plan, chsh_minus=[0, 0]), exploratory=True)
    assert r2.nonclassicality["chsh"]["pvalue"] > 0.05
    assert r2.nonclassicality["macroscopic"]["holds"] is False and r2.verdict.level != "nonclassical"
    # without the full-scale calibration the criterion is not applicable
    copy = tmp_path / "uncal"
    shutil.copytree(singlet_dataset, copy)
    m = json.loads((copy / "manifest.json").read_text())
    del m["calibration"]
    (copy / "manifest.json").write_text(json.dumps(m))
    r3 = analyze(copy)
    assert r3.nonclassicality["macroscopic"] is None
    assert "magnetization" in r3.nonclassicality["not_applicable"]["macroscopic"]


def test_random_two_qubit_regions_lhv_sum_covers_the_truth_and_never_nonclassical(random_dataset):
    truth = SpinLatticeWorld(BenchState(), seed=world_seed(random_dataset),
                             params={"state": "random", "n_a": 2, "n_b": 2}).truth(CHSH_DEG)
    assert truth["lhv_sum"] == pytest.approx(0.126, abs=0.001)  # seed 29's state
    assert max_abs_chsh(truth["correlators_sign"]) < 2  # the physics: no sign-binned violation either
    r = analyze(random_dataset)
    mac = r.nonclassicality["macroscopic"]
    assert mac["ci"][0] <= truth["lhv_sum"] <= mac["ci"][1]
    assert mac["holds"] is True and mac["ci"][1] < 1
    for key, se in mac["correlator_se"].items():
        s, t = int(key[0]), int(key[1])
        assert abs(mac["correlators"][key] - truth["correlators"][s, t]) < 4 * se
    assert r.verdict.level != "nonclassical" and not r.verdict.nonclassical


def test_ensembles_graded_dependent_never_nonclassical_correlators_match_truth(ensembles_dataset, tmp_path):
    truth = EnsemblesWorld(BenchState(), seed=world_seed(ensembles_dataset), params={"n": 20, "tau": 0.1}).truth(
        ENSEMBLE_DEG)
    assert truth["lhv_sum"] < 1 and max_abs_chsh(truth["correlators_sign"]) < 2
    assert truth["entropy_bits"] > 2  # strongly entangled, yet local for magnetizations
    r = analyze(ensembles_dataset)
    assert r.verdict.dependence and r.conditions["main"]["pvalue"] < 0.01
    assert r.verdict.level in ("dependence", "protocol-specific") and not r.verdict.nonclassical
    mac = r.nonclassicality["macroscopic"]
    assert mac["holds"] is True and mac["ci"][0] <= truth["lhv_sum"] <= mac["ci"][1]
    for key, se in mac["correlator_se"].items():
        s, t = int(key[0]), int(key[1])
        assert abs(mac["correlators"][key] - truth["correlators"][s, t]) < 4 * se
    # the report shows the criterion in words
    from corrlab.analysis.render import write_report

    write_report(r, tmp_path / "r.html")
    assert "Macroscopic criterion" in (tmp_path / "r.html").read_text()
