"""corrlab.anytime: each e-process is a test (super)martingale under its null, checked exactly
on the next trial's possible outcomes; closed e-Holm against brute force; decisions on
seeded worlds with known truth."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest

from corrlab.anytime import _DET, EvidenceMonitor, closed_e_holm, pbr_table, window_mean
from corrlab.schedule import schedule_arrays

CONDS = {"main": 3, "control:break_L": 1}


def feed(monitor, seed, n, *, rho_main=0.0, rho_ctrl=0.0, signal_b=0.0, var_signal_b=0.0, drift=0.0,
         conds=CONDS, block=4):
    full = schedule_arrays(seed, conds, -(-n // block) * block, block, 4)
    s = type(full)(*(getattr(full, f)[:n] for f in ("trial", "block", "condition", "setting_a", "setting_b",
                                                     "code_a", "code_b")))
    rng = np.random.default_rng(seed + 99)
    z = rng.standard_normal((n, 3))
    rho = np.where(s.condition == "main", rho_main, rho_ctrl)
    a = np.sqrt(1 - rho) * z[:, 0] + np.sqrt(rho) * z[:, 2]
    b = np.sqrt(1 - rho) * z[:, 1] + np.sqrt(rho) * z[:, 2]
    shared = drift * np.cumsum(rng.standard_normal(n)) / math.sqrt(n)
    a, b = a + shared, b + shared
    b = b * (1 + var_signal_b * s.setting_a) + signal_b * s.setting_a
    monitor.update_many(s.trial, s.condition, s.setting_a, s.setting_b, a, b)
    return s, a, b


def e(m, key):
    return m.snapshot()["hypotheses"][key]["e_value"]


def test_closed_e_holm_matches_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(50):
        k = int(rng.integers(1, 6))
        vals = dict(zip("abcde", rng.exponential(10, k).tolist()))
        got = closed_e_holm(vals)
        for i in vals:
            others = [j for j in vals if j != i]
            best = min(np.mean([vals[i]] + [vals[j] for j in sub])
                       for r in range(len(others) + 1) for sub in itertools.combinations(others, r))
            assert got[i] == pytest.approx(best, rel=1e-12)


def test_window_mean_is_the_analysis_reduction():
    from corrlab.analysis.pipeline import _window_means

    rng = np.random.default_rng(2)
    x = rng.standard_normal(37)
    for window in ((0.0, 1.0), (0.25, 0.75), (0.9, 1.0), (0.0, 0.01)):
        ref = _window_means(x, np.array([0]), np.array([37]), window)[0]
        assert window_mean(x, window) == pytest.approx(ref, rel=1e-12)


def test_label_bet_is_a_martingale_under_the_sharp_null():
    """For the next trial, with its outcome fixed, the e-value averaged over the labels the
    schedule could still draw (with their randomization probabilities) equals the current one."""
    m = EvidenceMonitor(CONDS, 4, alpha=0.05)
    s, a, b = feed(m, 5, 202, rho_main=0.4)  # a real effect so far: the bet is far from neutral
    key = "controls:control:break_L"
    before = e(m, key)
    assert before != 1.0
    t = 202
    seen = m._block_seen.get(t // 4, {})
    left = {c: n - seen.get(c, 0) for c, n in CONDS.items()}
    total = sum(left.values())
    assert total > 0
    for outcome in ((1.3, 1.1), (-2.0, 0.4), (0.1, -0.2)):
        expect = 0.0
        for c, k in left.items():
            trial = copy.deepcopy(m)
            trial.update(t, c, 0, 1, *outcome)
            expect += k / total * e(trial, key)
        assert expect == pytest.approx(before, rel=1e-12)


def test_no_signalling_bet_is_a_martingale():
    m = EvidenceMonitor(CONDS, 4, alpha=0.05, setting_probability=0.3)
    feed(m, 6, 200, var_signal_b=0.8)
    for side, key in (("A", "no_signalling:A:main"), ("B", "no_signalling:B:main")):
        before = e(m, key)
        assert before != 1.0
        expect = 0.0
        for remote, prob in ((0, 0.7), (1, 0.3)):
            nxt = copy.deepcopy(m)
            sa, sb = (0, remote) if side == "A" else (remote, 0)
            nxt.update(200, "main", sa, sb, 2.5, -1.7)
            expect += prob * e(nxt, key)
        assert expect == pytest.approx(before, rel=1e-12)


def test_dependence_bet_averaged_over_every_re_pairing_is_the_current_value():
    """The group's e-value averaged over the 720 re-pairings of B's outcomes (equally likely under
    the null) equals the e-value before the group."""
    m = EvidenceMonitor(CONDS, 4)
    feed(m, 7, 400, rho_main=0.3)
    assert m._dep_group == []
    before = e(m, "dependence")
    assert before != 1.0
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(6), rng.standard_normal(6) + 0.5
    out = []
    for perm in itertools.permutations(range(6)):
        nxt = copy.deepcopy(m)
        for i, j in enumerate(perm):
            nxt.update(400 + i, "main", 0, 0, a[i], b[j])
        out.append(e(nxt, "dependence"))
    assert np.ptp(out) > 0.1 * before
    assert np.mean(out) == pytest.approx(before, rel=1e-10)


def test_pbr_factors_have_expectation_at_most_one_under_every_local_strategy():
    rng = np.random.default_rng(8)
    for _ in range(30):
        rho = rng.dirichlet(np.ones(4))
        counts = rng.integers(0, 80, (4, 4)).astype(float)
        table, _ = pbr_table(counts, rho, iterations=int(rng.integers(1, 80)))
        assert (table >= 0).all()
        for lam in range(16):  # expectation under a deterministic local strategy
            assert float((rho[:, None] * _DET[lam] * table).sum()) <= 1 + 1e-12
        # and under a random local model (a mixture of them)
        w = rng.dirichlet(np.ones(16))
        q = np.einsum("l,lxa->xa", w, _DET)
        assert float((rho[:, None] * q * table).sum()) <= 1 + 1e-12


def test_pbr_is_neutral_on_local_predictions_and_bets_on_a_violation():
    rho = np.full(4, 0.25)
    # counts from a local model: q* = p, so every factor is 1 (no bet)
    w = np.random.default_rng(9).dirichlet(np.ones(16))
    local = np.einsum("l,lxa->xa", w, _DET) * 1000
    table, _ = pbr_table(local, rho, prior=0.0, iterations=2000)
    assert np.allclose(table, 1.0, atol=2e-3)
    # quantum-like counts (S = 2.4): the factors favour the violating outcomes
    e = np.array([1, 1, 1, -1]) * 0.6
    q = np.stack([(1 + e) / 4, (1 - e) / 4, (1 - e) / 4, (1 + e) / 4], axis=1) * 1000
    table, _ = pbr_table(q, rho)
    assert table[3, 1] > 1 and table[0, 0] > 1 and table[3, 0] < 1
    # the expected log factor is the KL divergence to the closest local model, which by symmetry has
    # every |E| = 1/2 (S = 2): 2 (0.4 ln(0.4/0.375) + 0.1 ln(0.1/0.125)) per setting pair
    p = q / q.sum(axis=1, keepdims=True)
    kl = 2 * (0.4 * math.log(0.4 / 0.375) + 0.1 * math.log(0.1 / 0.125))
    assert float((rho[:, None] * p * np.log(table)).sum()) == pytest.approx(kl, rel=1e-3)


def test_chsh_decides_on_a_violation_and_not_on_a_local_model():
    rng = np.random.default_rng(10)
    n = 3000
    sa, sb = rng.integers(0, 2, n), rng.integers(0, 2, n)
    oa = rng.choice([-1.0, 1.0], n)
    for corr, decided in ((0.8 / math.sqrt(2), True), (0.5, False)):  # S = 2.26; S = 2 (the local bound)
        e_xy = np.where((sa == 1) & (sb == 1), -corr, corr)
        ob = np.where(rng.random(n) < (1 + e_xy) / 2, oa, -oa)
        m = EvidenceMonitor({"main": 1}, 1)
        m.update_many(np.arange(n), ["main"] * n, sa, sb, oa, ob)
        assert m.snapshot()["hypotheses"]["chsh"]["decided"] is decided


def test_strong_world_decides_dependence_and_control_and_null_world_does_not():
    strong = EvidenceMonitor(CONDS, 4)
    feed(strong, 11, 1200, rho_main=0.5, drift=3.0)
    assert strong.decided(["dependence", "controls:control:break_L"])
    snap = strong.snapshot()["hypotheses"]
    assert snap["controls:control:break_L"]["crossed_at_adjusted"] < 1200
    assert not any(snap[k]["decided"] for k in snap if k.startswith("no_signalling"))
    null = EvidenceMonitor(CONDS, 4)
    feed(null, 12, 1200, rho_main=0.3, rho_ctrl=0.3, drift=3.0)  # equally dependent: not protocol-specific
    assert null.decided(["dependence"])
    assert not null.decided(["controls:control:break_L"])


def test_variance_only_signalling_is_caught():
    m = EvidenceMonitor(CONDS, 4)
    feed(m, 13, 1200, var_signal_b=0.6)  # B's spread depends on A's setting, its mean does not
    snap = m.snapshot()["hypotheses"]
    assert snap["no_signalling:B:main"]["decided"]
    assert not snap["no_signalling:A:main"]["decided"]


def test_prior_runs_multiply():
    first = EvidenceMonitor(CONDS, 4)
    feed(first, 14, 400, rho_main=0.3)
    prior = {k: v["e_value"] for k, v in first.snapshot()["hypotheses"].items()}
    alone, cont = EvidenceMonitor(CONDS, 4), EvidenceMonitor(CONDS, 4, prior=prior)
    feed(alone, 15, 400, rho_main=0.3)
    feed(cont, 15, 400, rho_main=0.3)
    for k in prior:
        assert e(cont, k) == pytest.approx(prior[k] * e(alone, k), rel=1e-9)


def test_snapshot_is_json_and_trajectory_bounded():
    import json

    m = EvidenceMonitor(CONDS, 4)
    feed(m, 16, 2000, rho_main=0.2)
    snap = m.snapshot(trajectory=True)
    json.dumps(snap, allow_nan=False)
    traj = snap["hypotheses"]["dependence"]["trajectory"]
    assert 2 <= len(traj) <= 200 and traj[-1][1] == pytest.approx(snap["hypotheses"]["dependence"]["e_value"])


def test_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        EvidenceMonitor(CONDS, 4, alpha=1.5)
    with pytest.raises(ValueError, match="block_size"):
        EvidenceMonitor(CONDS, 5)
    m = EvidenceMonitor(CONDS, 4)
    m.update(3, "main", 0, 0, 0.1, 0.2)
    with pytest.raises(ValueError, match="time order"):
        m.update(2, "main", 0, 0, 0.1, 0.2)
