"""The simulated worlds' physics against closed forms, and their reproducibility."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from corrlab.errors import PlanError
from corrlab.instruments.sim.state import BenchState
from corrlab.instruments.sim.world import (
    GaussianWorld, OscillatorWorld, filtered_variance, lockin_filter, occupation, ou_paths,
)
from corrlab.instruments.sim.world_registry import make_world


def configured_state(*, points=4000, rate=10_000.0, channels=2, tc_index=2, slope_index=1, setpoint=4.0):
    st = BenchState()
    st.digitizer.points, st.digitizer.sample_rate, st.digitizer.channels = points, rate, channels
    for li in st.lockins.values():
        li.time_constant_index, li.filter_slope_index, li.frequency = tc_index, slope_index, 1000.0
    st.thermal.setpoint[1], st.thermal.heater_range[1] = setpoint, 2
    st.stage[1].position = st.stage[2].position = 1.0
    return st


def deliver(world, code_a, code_b, *, mediator_closed=True):
    st = world.state
    st.relay.closed = {101} if mediator_closed else set()
    for ch, code in ((1, code_a), (2, code_b)):
        c = st.generator.channels[ch]
        c.output, c.shape, c.burst_state, c.arb_file = True, "ARB", True, "DLCODE"
        c.arb_data = {"DLCODE": [32767 if b else -32767 for b in code]}
    world.trigger()
    st.relay.closed = set()
    for ch in (1, 2):
        st.generator.channels[ch].output = False


def test_occupation_is_bose_einstein():
    h, k = 6.62607015e-34, 1.380649e-23
    assert occupation(4.0, 1e9) == pytest.approx(1 / math.expm1(h * 1e9 / (k * 4.0)))
    assert occupation(300.0, 1e3) == pytest.approx(k * 300 / (h * 1e3), rel=1e-6)  # classical limit
    assert occupation(0.0, 1e3) == 0.0


def test_ou_paths_have_unit_variance_and_exponential_autocorrelation():
    a = 0.95
    x = ou_paths(np.random.default_rng(1), 200, 2000, a)
    assert x.var() == pytest.approx(1.0, abs=0.02)
    lag1 = np.mean(x[:, 1:] * x[:, :-1])
    lag5 = np.mean(x[:, 5:] * x[:, :-5])
    assert lag1 == pytest.approx(a, abs=0.01) and lag5 == pytest.approx(a**5, abs=0.015)


def test_lockin_filter_keeps_unit_variance_and_adds_smoothing():
    a, b = 0.97, 0.8
    x = ou_paths(np.random.default_rng(2), 200, 4000, a)
    y = lockin_filter(x, b, 2, a)
    assert y.var() == pytest.approx(1.0, abs=0.03)
    # closed form for one pole: (1-b)^2 (1+ab) / ((1-b^2)(1-ab))
    assert filtered_variance(a, b, 1) == pytest.approx((1 - b) ** 2 * (1 + a * b) / ((1 - b * b) * (1 - a * b)), rel=1e-9)
    assert np.mean(y[:, 1:] * y[:, :-1]) > np.mean(x[:, 1:] * x[:, :-1])


def test_a_trial_depends_only_on_seed_trial_and_settings():
    def record(seed, trial, phase=0.0, reads_before=0):
        w = make_world(configured_state(points=256), kind="common_cause", seed=seed)
        w.begin_record(trial)
        for _ in range(reads_before):
            w.temperature("A")
        deliver(w, (1, 0, 1, 1), (1, 0, 1, 1))
        w.state.lockins["a"].phase_deg = phase
        return w.acquire()

    base = record(7, 3)
    np.testing.assert_array_equal(base, record(7, 3, reads_before=5))  # unaffected by how often T was read
    assert not np.array_equal(base, record(7, 4))
    assert not np.array_equal(base, record(8, 3))
    assert not np.array_equal(base, record(7, 3, phase=45.0))
    # and a repeated trial (tag written again) reproduces its temperatures too
    w = make_world(configured_state(), kind="drift", seed=1)
    w.begin_record(9)
    first = [w.temperature("A") for _ in range(3)]
    w.begin_record(9)
    assert [w.temperature("A") for _ in range(3)] == first


def test_the_whole_seed_keys_the_world():
    # Seeds up to 2**63 are accepted and the schedule uses all of a seed's bits; seeds that differ
    # only above bit 32 must give different worlds too (they used to give the same one).
    from corrlab.instruments.sim.spin_worlds import SpinLatticeWorld

    def record(seed):
        w = make_world(configured_state(points=256), kind="drift", seed=seed)
        w.begin_record(3)
        temps = [w.temperature("A") for _ in range(3)]
        deliver(w, (1, 0, 1, 1), (1, 0, 1, 1))
        return temps, w.acquire()

    def lattice(seed):
        return SpinLatticeWorld(BenchState(), seed=seed, params={"state": "random", "n_a": 2, "n_b": 2}).psi

    for low in (7, 2**32 - 1):
        temps, rec = record(low)
        for seed in (low + 2**32, low + 2**40, low + 2**62, low - 2**32):
            other_temps, other_rec = record(seed)
            assert other_temps != temps and not np.array_equal(other_rec, rec), seed
            assert not np.allclose(lattice(seed), lattice(low)), seed
    np.testing.assert_array_equal(record(2**40 + 7)[1], record(2**40 + 7)[1])  # still reproducible
    # seeds below 2**32 keep the worlds (and recorded numbers) they always had: the legacy key
    w = make_world(configured_state(), kind="independent", seed=2**32 - 1)
    w.begin_record(5)
    legacy = np.random.default_rng([2**32 - 1, 5, zlib.crc32(b"noise")]).standard_normal(4)
    np.testing.assert_array_equal(w.rng("noise").standard_normal(4), legacy)


def _windowed_means(kind, conditions, n_trials=300, seed=11, **params):
    out = {c: ([], []) for c in conditions}
    for trial in range(n_trials):
        cond = conditions[trial % len(conditions)]
        st = configured_state(points=400)
        w = make_world(st, kind=kind, seed=seed, params=params or None)
        w.begin_record(trial)
        rng = np.random.default_rng(trial)
        code = tuple(int(b) for b in rng.integers(0, 2, 16))
        other = tuple(int(b) for b in rng.integers(0, 2, 16))
        deliver(w, code, other if cond == "break_L" else code, mediator_closed=cond != "open_relay")
        if cond == "perturb_C":
            st.stage[2].position = 1.05
        if cond == "couple_env":
            st.relay.closed = {102}
        rec = w.acquire()
        out[cond][0].append(rec[0].mean())
        out[cond][1].append(rec[1].mean())
    return {c: np.corrcoef(a, b)[0, 1] for c, (a, b) in out.items()}


def test_common_cause_correlates_only_when_every_layer_holds():
    r = _windowed_means("common_cause", ["main", "break_L", "perturb_C", "couple_env", "open_relay"], n_trials=500)
    assert r["main"] > 0.6
    assert abs(r["break_L"]) < 0.2 and abs(r["perturb_C"]) < 0.2 and abs(r["open_relay"]) < 0.2
    assert 0.05 < r["couple_env"] < r["main"] - 0.2


def test_independent_world_has_no_correlation_and_temperature_sets_the_noise():
    r = _windowed_means("independent", ["main"], n_trials=300)
    assert abs(r["main"]) < 0.15
    cold, hot = configured_state(setpoint=4.0), configured_state(setpoint=40.0)
    var = []
    for st in (cold, hot):
        w = make_world(st, kind="independent", seed=3)
        w.begin_record(0)
        var.append(w.acquire()[0].var())
    n4, n40 = occupation(4.0, 1000.0) + 0.5, occupation(40.0, 1000.0) + 0.5
    assert var[1] / var[0] == pytest.approx(n40 / n4, rel=0.1)


def test_leak_makes_b_depend_on_a_setting():
    means = {0.0: [], 90.0: []}
    for trial in range(200):
        st = configured_state(points=2000)
        w = make_world(st, kind="leak", seed=5)
        w.begin_record(trial)
        phase = 0.0 if trial % 2 else 90.0
        st.lockins["a"].phase_deg = phase
        means[phase].append(w.acquire()[1].mean())
    shift = np.mean(means[0.0]) - np.mean(means[90.0])
    se = math.hypot(np.std(means[0.0], ddof=1), np.std(means[90.0], ddof=1)) / math.sqrt(100)
    leak = OscillatorWorld.PRESETS["leak"]["leak_v"]  # cos(0) - cos(90 deg) = 1
    assert abs(shift - leak) < 4 * se and shift > 4 * se


def test_gaussian_world_reproduces_the_two_mode_squeezed_covariance():
    st = configured_state(points=20_000, channels=4)
    w = GaussianWorld(st, seed=2, params={"squeezing_r": 0.5, "vacuum_rms_v": 1e-3})
    samples = []
    for trial in range(40):
        w.begin_record(trial)
        deliver(w, (1, 0, 1), (1, 0, 1))
        rec = w.acquire().astype(np.float64)  # rows: x_a, x_b, y_a, y_b at phase 0
        samples.append(rec[[0, 2, 1, 3]])  # -> x_a, p_a, x_b, p_b
    q = np.concatenate(samples, axis=1) / 1e-3 / math.sqrt(2.0)
    v = np.cov(q)
    c, s = math.cosh(1.0), math.sinh(1.0)
    expected = 0.5 * np.array([[c, 0, s, 0], [0, c, 0, -s], [s, 0, c, 0], [0, -s, 0, c]])
    np.testing.assert_allclose(v, expected, atol=0.04)
    assert w.true_log_negativity() == pytest.approx(1.0, abs=1e-12)  # E_N = 2r
    # without matching codes the two sides are uncorrelated thermal states
    recs = []
    for trial in range(100, 140):
        w.begin_record(trial)
        deliver(w, (1, 0, 1), (0, 0, 1))
        recs.append(w.acquire().astype(np.float64))
    rec = np.concatenate(recs, axis=1)
    assert abs(np.corrcoef(rec[0], rec[1])[0, 1]) < 0.05


def test_unknown_world_and_params_are_refused():
    with pytest.raises(PlanError, match="world.kind 'bell' is unknown"):
        make_world(BenchState(), kind="bell", seed=0)
    with pytest.raises(PlanError, match="world.params.coupllng: unknown"):
        make_world(BenchState(), kind="common_cause", seed=0, params={"coupllng": 1})
