"""Dephased log negativity at large N (corrlab.theory.ensembles_dephased), issue 19.

Checked against the exact sector method (itself checked against QuTiP and a brute-force partial
transpose in test_ensembles.py), a brute-force partial transpose here, QuTiP's master equation,
the closed-form Gaussian limit, and the general two-mode Gaussian formula of shared/notes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from corrlab.theory import ensembles as E
from corrlab.theory import ensembles_dephased as D


pytestmark = pytest.mark.usefixtures("one_blas_thread")  # see tests/conftest.py


def brute_dephased_logneg(n: int, tau: float, gamma_t: float) -> float:
    k = np.arange(n + 1)
    m = n - 2 * k
    c = np.array([math.sqrt(math.comb(n, int(i)) / 2**n) for i in k])
    psi = np.outer(c, c) * np.exp(-1j * tau * np.outer(m, m).astype(float))
    d = np.exp(-gamma_t / 2 * (m[:, None] - m[None, :]).astype(float) ** 2)
    rho = np.einsum("ab,cd->abcd", psi, psi.conj()) * d[:, None, :, None] * d[None, :, None, :]
    pt = rho.transpose(0, 3, 2, 1).reshape((n + 1) ** 2, (n + 1) ** 2)
    return float(np.log2(np.abs(np.linalg.eigvalsh(pt)).sum()))


# ============================================================================ Gaussian limit


def test_gaussian_closed_form_matches_the_general_covariance_formula():
    for g in (0.0, 0.5, 1.0, 2.0, 3.0):
        for gtn in (0.0, 0.01, 0.05, 0.2, 1.0):
            v = D.gaussian_limit_covariance(g, gtn)
            assert abs(D.gaussian_limit_log_negativity_bits(g, gtn)
                       - D.gaussian_log_negativity_from_covariance(v)) < 1e-12


def test_gaussian_formula_reference_values():
    # shared/notes: two-mode squeezed vacuum r = 0.5 has E_N = 1 nat (checks the covariance formula)
    r = 0.5
    ch, sh = math.cosh(2 * r) / 2, math.sinh(2 * r) / 2
    v = np.array([[ch, 0, sh, 0], [0, ch, 0, -sh], [sh, 0, ch, 0], [0, -sh, 0, ch]])
    assert abs(D.gaussian_log_negativity_from_covariance(v) * math.log(2) - 1.0) < 1e-12
    # no dephasing: asinh(g) / ln 2; entangled iff Gamma t N < g / 2
    assert abs(D.gaussian_limit_log_negativity_bits(1.0, 0.0) - math.asinh(1.0) / math.log(2)) < 1e-14
    assert D.gaussian_limit_log_negativity_bits(1.0, 0.5) == 0.0
    assert D.gaussian_limit_log_negativity_bits(1.0, 0.49) > 0.0


@pytest.mark.parametrize("g, gtn", [(1.0, 0.05), (2.0, 0.2), (0.5, 0.01)])
def test_gaussian_limit_against_the_sector_method_shrinks_as_one_over_n(g, gtn):
    """Sector (exact) at N = 50..200: the difference to the Gaussian limit falls as N^-1 (fitted slope)."""
    ns = np.array([50, 100, 200])
    diffs = []
    for n in ns:
        ex = E.dephased_log_negativity(int(n), g / (2 * n), gtn / n, tol=1e-5).log_negativity_bits
        diffs.append(abs(ex - D.gaussian_limit_log_negativity_bits(g, gtn)))
    slope = np.polyfit(np.log(ns), np.log(diffs), 1)[0]
    assert -1.15 < slope < -0.85, (slope, diffs)


def test_gaussian_limit_against_hp_up_to_a_million_atoms_shrinks_as_one_over_n():
    """hp (checked against the sector method below) from N = 10^3 to 10^6 at g = 1, Gamma t N = 0.05."""
    ns = np.array([1_000, 10_000, 1_000_000])
    gauss = D.gaussian_limit_log_negativity_bits(1.0, 0.05)
    diffs = [abs(D.hp_log_negativity(int(n), 1 / (2 * n), 0.05 / n, tol=1e-8).value_bits - gauss) for n in ns]
    slope = np.polyfit(np.log(ns), np.log(diffs), 1)[0]
    assert -1.05 < slope < -0.95, (slope, diffs)
    # the coefficient the benchmark's error estimate uses: N * difference = 0.206
    assert 0.19 < diffs[-1] * 1e6 < 0.22


# ============================================================================ hp


@pytest.mark.parametrize("n, g, gtn", [(8, 1.0, 0.05), (11, 2.0, 0.2), (14, 0.5, 0.5)])
def test_hp_with_the_complete_basis_equals_brute_force(n, g, gtn):
    """n_max = N: the Gauss nodes are the m lattice, the method is exact (any tau)."""
    for tau in (g / (2 * n), 0.3):
        val = D._hp_value(n, D.reduced_tau(n, tau), gtn / n, n)
        assert abs(val - brute_dephased_logneg(n, tau, gtn / n)) < 1e-10


@pytest.mark.parametrize("n, g, gtn", [(60, 1.0, 0.05), (100, 2.0, 0.2), (80, -1.5, 0.02), (101, 1.0, 0.1),
                                         pytest.param(150, -1.5, 0.02, marks=pytest.mark.slow)])
def test_hp_equals_the_sector_method(n, g, gtn):
    tau = g / (2 * n)
    hp = D.hp_log_negativity(n, tau, gtn / n, tol=1e-7)
    # a window of w = 12 (the default weight-chosen window was 1.7e-6 bits off at N = 150, g = -1.5)
    ex = E.dephased_log_negativity(n, tau, gtn / n, window=12).log_negativity_bits
    assert abs(hp.value_bits - ex) < 1e-6
    assert hp.bound_kind == "estimated"


def test_hp_near_the_revival_uses_the_period():
    """N even: the state has period pi/2 in tau, so tau = pi/2 + g/(2N) is the Gaussian regime again."""
    n = 40
    a = D.hp_log_negativity(n, math.pi / 2 + 1 / (2 * n), 0.05 / n).value_bits
    b = D.hp_log_negativity(n, 1 / (2 * n), 0.05 / n).value_bits
    assert abs(a - b) < 1e-9
    small = D.hp_log_negativity(10, math.pi / 2 + 1 / 20, 0.005).value_bits
    assert abs(small - brute_dephased_logneg(10, math.pi / 2 + 1 / 20, 0.005)) < 1e-10


@pytest.mark.parametrize("n, tau, gtn", [(5, 1 / 10, 0.05), (6, 0.3, 0.4)])
def test_hp_complete_basis_matches_qutip_master_equation(n, tau, gtn):
    """QuTiP mesolve: H = S1z S2z (J = 1), collapse operators sqrt(Gamma) S^z on each ensemble, t = tau."""
    qutip = pytest.importorskip("qutip")
    k = np.arange(n + 1)
    sz = qutip.Qobj(np.diag((n - 2 * k).astype(float)))
    ident = qutip.qeye(n + 1)
    c = np.array([math.sqrt(math.comb(n, int(i)) / 2**n) for i in k])
    x = qutip.Qobj(c.reshape(-1, 1))
    psi0 = qutip.tensor(x, x)
    h = qutip.tensor(sz, sz)
    gamma = gtn / n / tau
    cops = [math.sqrt(gamma) * qutip.tensor(sz, ident), math.sqrt(gamma) * qutip.tensor(ident, sz)]
    res = qutip.mesolve(h, psi0 * psi0.dag(), [0.0, tau], c_ops=cops,
                        options={"atol": 1e-12, "rtol": 1e-10})
    rho = res.states[-1].full().reshape(n + 1, n + 1, n + 1, n + 1)
    pt = rho.transpose(0, 3, 2, 1).reshape((n + 1) ** 2, (n + 1) ** 2)
    ref = float(np.log2(np.abs(np.linalg.eigvalsh((pt + pt.conj().T) / 2)).sum()))
    assert abs(D._hp_value(n, D.reduced_tau(n, tau), gtn / n, n) - ref) < 1e-6


# ============================================================================ banded bounds

SECTOR_QUARTER_PI = {}


def _sector(n, gamma_t):
    key = (n, gamma_t)
    if key not in SECTOR_QUARTER_PI:
        SECTOR_QUARTER_PI[key] = E.dephased_log_negativity(n, math.pi / 4, gamma_t, tol=1e-6).log_negativity_bits
    return SECTOR_QUARTER_PI[key]


@pytest.mark.parametrize("n", [10, 20])
@pytest.mark.parametrize("gamma_t", [0.05, 0.2, 0.5, 1.0])
def test_banded_bounds_bracket_brute_force(n, gamma_t):
    ref = brute_dephased_logneg(n, math.pi / 4, gamma_t)
    r = E.banded_bounds(n, math.pi / 4, gamma_t)
    assert r.lower_bits - 1e-12 <= ref <= r.upper_bits + 1e-12
    assert r.bound_kind == "rigorous"


@pytest.mark.parametrize("n, gamma_t", [(60, 0.05), (100, 0.05), (60, 0.5), (100, 0.01)])
def test_banded_bounds_bracket_the_sector_method(n, gamma_t):
    ref = _sector(n, gamma_t)
    r = E.banded_bounds(n, math.pi / 4, gamma_t)
    assert r.lower_bits - 1e-9 <= ref <= r.upper_bits + 1e-9  # rounding (~1e-12) is outside the bounds


def test_banded_bracket_narrows_as_one_over_n():
    widths = [E.banded_bounds(n, math.pi / 4, 0.05).upper_bits - E.banded_bounds(n, math.pi / 4, 0.05).lower_bits
              for n in (200, 2000)]
    assert widths[1] < widths[0] / 5
    assert widths[1] < 2e-5


def test_banded_lower_bound_matches_the_full_decoder_matrix():
    """The lower bound's closed form (f per phase point minus 4|T01|) is below the full 2S x 2S decoder matrix."""
    n, g = 40, 0.3
    win = E._window_from_kmin(n, 0)
    b = D._BandedBeta(n, g, win, E._window_amplitudes(n, win.kmin, win.kmax))
    k = np.arange(n + 1)
    m = n - 2 * k
    beta = np.exp(-g / 2 * (m[:, None] - m[None, :]).astype(float) ** 2) * np.outer(b.c, b.c)
    s = b.size
    big_l = s + 1
    ph = np.exp(1j * np.outer(np.arange(s), 2 * np.pi * np.arange(big_l) / big_l)) / math.sqrt(big_l)
    sa = (((n // 2 - k) & 1) != 0).astype(int)
    wm = np.diag(b.w)
    total = 0.0
    for ell in range(big_l // 2):
        f = ph[:, ell]
        t = np.array([[f.conj() @ np.linalg.matrix_power(wm, x) @ beta @ np.linalg.matrix_power(wm, y) @ f
                       for y in range(2)] for x in range(2)])
        mat = np.zeros((s, 2, s, 2), complex)
        for s1 in range(2):
            for s2 in range(2):
                mat[:, s1, :, s2] = beta * t[(s2 + sa[:, None]) % 2, (s1 + sa[None, :]) % 2]
        mat = mat.reshape(2 * s, 2 * s)
        total += np.abs(np.linalg.eigvalsh((mat + mat.conj().T) / 2)).sum()
    full = math.log2(total)
    r = E.banded_bounds(n, math.pi / 4, g)
    assert r.lower_bits <= full + 1e-9
    assert full - r.lower_bits < 2e-3


def test_banded_refuses_other_times_and_odd_n():
    from corrlab.errors import PlanError

    with pytest.raises(PlanError):
        E.banded_bounds(100, 0.3, 0.05)
    with pytest.raises(PlanError):
        E.banded_bounds(101, math.pi / 4, 0.05)


def test_banded_ten_thousand_atoms_is_fast_and_tight():
    import time

    t0 = time.perf_counter()
    r = E.banded_bounds(10_000, math.pi / 4, 0.05)
    assert time.perf_counter() - t0 < 60
    assert r.upper_bits - r.lower_bits < 5e-6
    # the sector method at N = 2000 (29 min, benchmarks/README.md) gave 0.998704290 bits
    assert abs(r.value_bits - 0.9987043) < 3e-5


@pytest.mark.slow
def test_banded_brackets_the_sector_method_at_1000_atoms():
    ref = _sector(1000, 0.05)  # ~4 min
    r = E.banded_bounds(1000, math.pi / 4, 0.05)
    assert r.lower_bits <= ref <= r.upper_bits


# ============================================================================ dispatcher, JSON, CLI


def test_auto_method_per_regime():
    small = E.ensemble_point(20, math.pi / 4, dephasing=0.05)
    assert small.log_negativity_method == "sector" and small.log_negativity_bound_kind == "rigorous"
    gauss = E.ensemble_point(1_000_000, 1 / 2e6, dephasing=0.05 / 1e6)
    assert gauss.log_negativity_method == "hp" and gauss.log_negativity_bound_kind == "estimated"
    assert abs(gauss.log_negativity_bits - D.gaussian_limit_log_negativity_bits(1.0, 0.05)) < 3e-7
    big = E.ensemble_point(10_000, math.pi / 4, dephasing=0.05)
    assert big.log_negativity_method == "banded"
    assert big.log_negativity_lower_bits <= big.log_negativity_bits <= big.log_negativity_upper_bits
    assert big.log_negativity_error_bound_bits < 5e-6


def test_auto_gives_a_rigorous_bracket_where_no_method_reaches():
    """tau = 0.3 at N = 10^4 with Gamma t = 0.05: no value, 0 <= E_N <= E_N(pure), labelled."""
    p = E.ensemble_point(10_000, 0.3, dephasing=0.05)
    assert p.log_negativity_method == "bracket" and p.log_negativity_bound_kind == "rigorous"
    assert math.isnan(p.log_negativity_bits) and p.to_dict()["log_negativity_bits"] is None
    assert p.log_negativity_lower_bits == 0.0
    assert abs(p.log_negativity_upper_bits - p.log_negativity_pure_bits) <= p.log_negativity_pure_error_bound_bits + 1e-15
    assert p.log_negativity_upper_bits > 5  # the pure state is highly entangled there


@pytest.mark.parametrize("n, tau, gamma_t", [(12, 0.3, 0.05), (14, 1.0, 0.01), (11, 0.7, 0.2)])
def test_bracket_contains_brute_force(n, tau, gamma_t):
    ref = brute_dephased_logneg(n, tau, gamma_t)
    r = E.dephased_negativity(n, tau, gamma_t, method="bracket")
    assert r.lower_bits <= ref <= r.upper_bits
    assert ref < r.upper_bits - 1e-3  # dephasing does lose entanglement: the upper bound is the pure state's


# ============================================================================ hp-cat (near pi/4)


@pytest.mark.parametrize("n, g, gtn", [(64, 1.0, 0.05), pytest.param(80, 1.0, 0.05, marks=pytest.mark.slow),
                                         pytest.param(100, -2.0, 0.3, marks=pytest.mark.slow),
                                         pytest.param(80, 0.0, 0.5, marks=pytest.mark.slow)])
def test_hp_cat_equals_the_sector_method(n, g, gtn):
    """tau = pi/4 + g/(2N): 1 bit + hp(delta) equals the exact sector method (measured: 1e-14 at N = 80, g = 1)."""
    tau = math.pi / 4 + g / (2 * n)
    r = D.hp_cat_log_negativity(n, tau, gtn / n, tol=1e-7)
    ex = E.dephased_log_negativity(n, tau, gtn / n, window=12).log_negativity_bits
    assert abs(r.value_bits - ex) < 1e-6
    assert r.method == "hp-cat" and r.bound_kind == "estimated"
    # and on the other side of the period: tau = -pi/4 + delta, and 3 pi/4 + delta
    for t2 in (-math.pi / 4 + g / (2 * n), 3 * math.pi / 4 + g / (2 * n)):
        assert abs(D.hp_cat_log_negativity(n, t2, gtn / n, tol=1e-7).value_bits - r.value_bits) < 1e-9


@pytest.mark.parametrize("g, gtn", [(1.0, 0.05), pytest.param(-2.0, 0.3, marks=pytest.mark.slow)])
def test_hp_cat_tends_to_one_bit_plus_the_gaussian_limit_as_one_over_n(g, gtn):
    ns = np.array([1_000, 10_000, 100_000])
    gauss = 1.0 + D.gaussian_limit_log_negativity_bits(g, gtn)
    diffs = [abs(D.hp_cat_log_negativity(int(n), math.pi / 4 + g / (2 * n), gtn / n, tol=1e-8).value_bits - gauss)
             for n in ns]
    slope = np.polyfit(np.log(ns), np.log(diffs), 1)[0]
    assert -1.1 < slope < -0.9, (g, gtn, slope, diffs)


def test_hp_cat_refuses_odd_n_and_small_n():
    from corrlab.errors import PlanError

    with pytest.raises(PlanError, match="even N"):
        D.hp_cat_log_negativity(1001, math.pi / 4, 1e-4)
    with pytest.raises(PlanError, match="N > 48"):
        D.hp_cat_log_negativity(40, math.pi / 4, 1e-3)
    # far from pi/4 a truncated basis "converged" to 1 bit at N = 100, tau = 0.3 (brute force at N = 60: 1.83)
    with pytest.raises(PlanError, match="hp-cat method covers"):
        D.hp_cat_log_negativity(100, 0.3, 0.05)
    with pytest.raises(PlanError, match="hp method covers"):
        D.hp_log_negativity(100, 0.3, 0.05)


def test_auto_picks_hp_cat_near_the_cat_time():
    n = 10_000
    p = E.ensemble_point(n, math.pi / 4 - 1.5 / (2 * n), dephasing=0.1 / n)
    assert p.log_negativity_method == "hp-cat" and p.log_negativity_bound_kind == "estimated"
    assert abs(p.log_negativity_bits - 1 - D.gaussian_limit_log_negativity_bits(1.5, 0.1)) < 1e-4
    assert "hp-cat" in p.method


def test_cli_json_gains_method_and_bracket():
    from corrlab.daq.cli.simulate import simulate

    res = CliRunner().invoke(simulate, ["ensembles", "--n", "10000", "--tau", "pi/4", "--dephasing", "0.05",
                                        "--json", "-"])
    assert res.exit_code == 0, res.output
    p = json.loads(res.output)["points"][0]
    assert p["log_negativity_method"] == "banded"
    assert p["log_negativity_bound_kind"] == "rigorous"
    assert p["log_negativity_lower_bits"] <= p["log_negativity_bits"] <= p["log_negativity_upper_bits"]
    res = CliRunner().invoke(simulate, ["ensembles", "--n", "20", "--tau", "pi/4", "--json", "-"])
    p = json.loads(res.output)["points"][0]
    assert p["log_negativity_method"] is None and p["log_negativity_lower_bits"] is None


def test_cli_crevasse_dephased_writes_the_figure_and_its_numbers(tmp_path):
    """N = 10^4: curves, map corners and the cat point against the Gaussian limit and the banded value."""
    from corrlab.daq.cli.simulate import simulate

    png, js = tmp_path / "c.png", tmp_path / "c.json"
    res = CliRunner().invoke(simulate, ["crevasse-dephased", str(png), "--n", "10000", "--gamma-t-n", "0.5",
                                        "--cat-gamma-t", "0.05", "--g-max", "2", "--g-steps", "2",
                                        "--map-steps", "2", "2", "--map-gamma-t-n-max", "1.2", "--json", str(js)])
    assert res.exit_code == 0, res.output
    assert png.stat().st_size > 20_000
    d = json.loads(js.read_text())
    assert d["g"] == [0.0, 2.0] and d["map_gamma_t_n"] == [0.0, 1.2]
    pure, half = d["curves"]["0"], d["curves"]["0.5"]
    assert pure[1]["method"] == "pure" and abs(pure[1]["value"] - 1 - math.asinh(2) / math.log(2)) < 2e-3
    assert half[1]["method"] == "hp-cat"
    assert abs(half[1]["value"] - 1 - D.gaussian_limit_log_negativity_bits(2.0, 0.5)) < 2e-3
    assert abs(half[0]["value"] - 1.0) < 1e-6  # g = 0: the cat's bit alone
    dead = d["map"][1][1]  # g = 2, Gamma t N = 1.2 > |g|/2: the Gaussian part is gone
    assert dead["method"] == "hp-cat" and abs(dead["value"] - 1.0) < 1e-3
    cat = d["cat"][0]
    # banded at N = 10^4 (benchmarks/README.md: [0.9987147, 0.9987179]; the sector method at N = 2000: 0.9987043)
    assert cat["method"] == "banded" and cat["lower"] <= cat["value"] <= cat["upper"]
    assert cat["upper"] - cat["lower"] < 5e-6 and 0.99870 < cat["value"] < 0.99873


def test_cli_scan_with_dephasing_across_the_crevasse(tmp_path):
    """--scan near pi/4 at N = 10^4: hp-cat at every point, even in g, on 1 + the Gaussian limit; a plot."""
    from corrlab.daq.cli.simulate import simulate

    n, png = 10_000, tmp_path / "s.png"
    t0, t1 = math.pi / 4 - 1 / (2 * n), math.pi / 4 + 1 / (2 * n)  # g = -1 .. 1
    res = CliRunner().invoke(simulate, ["ensembles", "--n", str(n), "--scan", f"{t0!r}:{t1!r}:3",
                                        "--dephasing", str(0.05 / n), "--json", "-", "--plot", str(png)])
    assert res.exit_code == 0, res.output
    pts = json.loads(res.output[res.output.index("{"):])["points"]
    assert [p["log_negativity_method"] for p in pts] == ["hp-cat"] * 3
    gauss = 1 + D.gaussian_limit_log_negativity_bits(1.0, 0.05)
    assert abs(pts[0]["log_negativity_bits"] - pts[2]["log_negativity_bits"]) < 1e-7
    assert abs(pts[2]["log_negativity_bits"] - gauss) < 1e-4  # -0.206/N (benchmarks/README.md)
    assert abs(pts[1]["log_negativity_bits"] - 1.0) < 1e-9
    assert png.stat().st_size > 10_000
