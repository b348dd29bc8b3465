"""Protocols are tested by listing what they yield (no instruments, no files, no clocks)."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from corrlab.errors import PlanError
from corrlab.protocols.config import load_protocol, protocol_from_dict
from corrlab.protocols.messages import Call, Monitor, Sleep, Step, StepDone
from corrlab.protocols.schedule import code_checksum, make_schedule
from corrlab.protocols.steps import setup_plan, trial_plan

DEMO = "protocols/demo.toml"


def small_protocol(**overrides):
    data = {
        "protocol": {"name": "t", "seed": 5},
        "schedule": {"trials": 12, "block_size": 6, "conditions": {"main": 3, "control:break_L": 1,
                                                                   "control:perturb_C": 1, "control:couple_env": 1}},
        "acquisition": {"samples": 64, "sample_rate_hz": 1000.0},
        "stabilize": {"reads": 3, "interval_s": 0.5},
    }
    for key, value in overrides.items():
        data.setdefault(key, {}).update(value)
    return protocol_from_dict(data)


class Answers:
    """Answers the calls a trial plan makes, like a healthy bench would."""

    def __init__(self, protocol, *, crosstalk_v=1e-6, temperature=4.0, positions=None, closed=()):
        self.p = protocol
        self.crosstalk_v = crosstalk_v
        self.temperature = temperature
        self.positions = positions
        self.closed = list(closed)

    def __call__(self, msg):
        if isinstance(msg, Monitor):
            return self.temperature
        if not isinstance(msg, Call):
            return None
        key = (msg.role, msg.verb)
        if key == ("drive", "write_code"):
            return []
        if key == ("isolation", "closed_channels"):
            return self.closed
        if key == ("readout_b", "read_magnitude"):
            return self.crosstalk_v
        if key == ("stage", "move_pair"):
            return self.positions or tuple(msg.args)
        if key == ("digitizer", "acquire"):
            return np.zeros((2, self.p.acquisition.samples))
        return None


def run_listing(plan, answer):
    """Drive a plan with ``answer``; return (messages, return value)."""
    messages, reply = [], None
    while True:
        try:
            msg = plan.send(reply)
        except StopIteration as stop:
            return messages, stop.value
        messages.append(msg)
        reply = answer(msg)


def test_trial_plan_yields_the_six_steps_in_order_with_their_actions():
    p = small_protocol()
    spec = next(s for s in make_schedule(p) if s.condition == "main")
    msgs, result = run_listing(trial_plan(p, spec), Answers(p))
    steps = [m.name for m in msgs if isinstance(m, Step)]
    assert steps == ["control", "prepare", "isolate", "stabilize", "fix", "measure"]
    calls = [(m.role, m.verb) for m in msgs if isinstance(m, Call)]
    assert calls[0] == ("digitizer", "start_record")
    # the mediator is closed for preparation and opened before the isolation check
    assert calls.index(("isolation", "close_mediator")) < calls.index(("drive", "write_code"))
    assert calls.index(("drive", "write_code")) < calls.index(("isolation", "open_mediator"))
    assert calls.index(("isolation", "open_mediator")) < calls.index(("drive", "tone"))
    assert calls.index(("drive", "tone")) < calls.index(("readout_b", "read_magnitude")) < calls.index(("drive", "tone_off"))
    # the settings become the reference phases just before the record
    phases = [m for m in msgs if isinstance(m, Call) and m.verb == "set_phase"]
    assert [c.args[0] for c in phases] == [p.settings.a_deg[spec.setting_a], p.settings.b_deg[spec.setting_b]]
    assert calls[-1] == ("digitizer", "acquire")
    monitors = [m for m in msgs if isinstance(m, Monitor)]
    assert len(monitors) == p.stabilize.reads
    assert monitors[0].low == pytest.approx(4.0 - 0.05) and monitors[0].high == pytest.approx(4.0 + 0.05)
    assert sum(isinstance(m, Sleep) for m in msgs) == p.stabilize.reads - 1
    outcomes = {m.name: m.outcome for m in msgs if isinstance(m, StepDone)}
    assert outcomes == {"control": "info", "prepare": "ok", "isolate": "ok", "stabilize": "ok", "fix": "ok", "measure": "ok"}
    assert result.record["f"] is True
    assert set(result.samples) == {"t", "x_a", "x_b"}
    assert result.samples["t"][1] == pytest.approx(1e-3)


def test_each_control_breaks_its_own_layer_and_f():
    p = small_protocol()
    by_cond = {s.condition: s for s in make_schedule(p)}
    results = {c: run_listing(trial_plan(p, s), Answers(p))[1].record for c, s in by_cond.items()}
    assert results["main"]["f"]
    r = results["control:break_L"]
    assert not r["delta_l_ok"] and not r["f"] and r["code_checksum_a"] != r["code_checksum_b"]
    msgs, res = run_listing(trial_plan(p, by_cond["control:perturb_C"]), Answers(p))
    move = next(m for m in msgs if isinstance(m, Call) and m.verb == "move_pair")
    assert move.args == (1.0, pytest.approx(1.0 + 0.050))
    assert not res.record["delta_c_ok"] and res.record["alignment_error_um"] == pytest.approx(50.0)
    msgs, res = run_listing(trial_plan(p, by_cond["control:couple_env"]), Answers(p))
    env = [m.args for m in msgs if isinstance(m, Call) and m.verb == "couple_environment"]
    assert env == [(True,), (False,)]
    assert not res.record["isolated"] and not res.record["f"]


@pytest.mark.parametrize(
    "answers, failed, key",
    [
        (dict(crosstalk_v=0.1), "isolate", "isolation_ok"),  # -11 dB: above the -60 dB limit
        (dict(closed=[101]), "isolate", "isolation_ok"),  # relay did not open
        (dict(temperature=4.2), "stabilize", "delta_m_ok"),
        (dict(positions=(1.0, 1.004)), "fix", "delta_c_ok"),  # 4 um > 2 um
    ],
)
def test_a_failed_layer_check_is_journalled_and_clears_f(answers, failed, key):
    p = small_protocol()
    spec = next(s for s in make_schedule(p) if s.condition == "main")
    msgs, res = run_listing(trial_plan(p, spec), Answers(p, **answers))
    done = {m.name: m for m in msgs if isinstance(m, StepDone)}
    assert done[failed].outcome == "fail"
    assert res.record[key] is False and res.record["f"] is False


def test_crosstalk_is_computed_from_the_tone_rms():
    p = small_protocol()
    spec = make_schedule(p)[0]
    tone_rms = 1.0 / (2 * np.sqrt(2))
    _, res = run_listing(trial_plan(p, spec), Answers(p, crosstalk_v=tone_rms * 1e-3))
    assert res.record["crosstalk_db"] == pytest.approx(-60.0)


def test_setup_plan_configures_every_role():
    p = small_protocol(acquisition={"record_quadratures": True})
    msgs, _ = run_listing(setup_plan(p), lambda m: None)
    calls = {(m.role, m.verb): m for m in msgs if isinstance(m, Call)}
    assert calls[("digitizer", "configure")].kwargs == {"sample_rate": 1000.0, "points": 64, "channels": 4}
    assert calls[("readout_a", "configure")].kwargs["time_constant"] == p.readout.time_constant_s
    assert calls[("thermal", "set_setpoint")].args == (4.0,)


def test_schedule_interleaves_balanced_blocks_deterministically():
    p = load_protocol(DEMO)
    s1, s2 = make_schedule(p), make_schedule(p)
    assert s1 == s2
    assert [t.trial for t in s1] == list(range(p.schedule.trials))
    for block in range(p.schedule.trials // p.schedule.block_size):
        counts = collections.Counter(t.condition for t in s1 if t.block == block)
        assert counts == collections.Counter(p.schedule.conditions)
    orders = {tuple(t.condition for t in s1 if t.block == b) for b in range(20)}
    assert len(orders) > 5  # blocks are shuffled, not one fixed pattern
    # settings independent and balanced-ish
    a = np.array([t.setting_a for t in s1])
    b = np.array([t.setting_b for t in s1])
    assert 0.35 < a.mean() < 0.65 and 0.35 < b.mean() < 0.65
    assert all((t.code_a == t.code_b) == (t.condition != "control:break_L") for t in s1)
    other = protocol_from_dict({**p.to_json(), "protocol": {**p.to_json()["protocol"], "seed": 1}})
    assert [t.condition for t in make_schedule(other)] != [t.condition for t in s1]


def test_code_checksum_is_crc32_of_the_bits():
    import zlib

    assert code_checksum((1, 0, 1)) == f"{zlib.crc32(bytes([1, 0, 1])):08x}"
    assert code_checksum((1, 0, 1)) != code_checksum((1, 0, 0))


@pytest.mark.parametrize(
    "patch, needle",
    [
        ({"schedule": {"conditions": {"main": 5, "control:break_X": 1}}}, "unknown condition 'control:break_X'"),
        ({"schedule": {"trials": 13}}, "multiple of block_size"),
        ({"schedule": {"conditions": {"main": 2}}}, "add up to 2"),
        ({"settings": {"a_deg": [0.0, 800.0]}}, "reference phases"),
        ({"readout": {"filter_slope_db": 7}}, "readout.filter_slope_db"),
        ({"fix": {"perturb_offset_um": 1.0}}, "perturb_offset_um must exceed"),
        ({"stabilize": {"setpiont_k": 4}}, "stabilize.setpiont_k: unknown field"),
    ],
)
def test_bad_protocols_get_one_line_errors_naming_the_field(patch, needle):
    with pytest.raises(PlanError) as err:
        small_protocol(**patch)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_toml_is_a_one_line_error(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[protocol\nname = 'x'\n")
    with pytest.raises(PlanError, match=r"bad.toml is not valid TOML"):
        load_protocol(f)
    with pytest.raises(PlanError, match="does not exist"):
        load_protocol(tmp_path / "missing.toml")


def test_bundled_protocols_validate_and_their_plans_resolve():
    from corrlab.daq.runner import resolve

    for name in ("demo", "overnight"):
        p = load_protocol(name)
        data, sha = resolve(p)
        assert len(sha) == 64 and data["analysis"]["n_resamples"] >= 9999
    with pytest.raises(PlanError, match=r"\[analysis\]: statistc: unknown field"):
        resolve(small_protocol(analysis={"statistc": "ksg"}))


def test_a_typo_in_the_analysis_plan_fails_when_the_protocol_is_loaded(tmp_path):
    from tests.conftest import ROOT

    f = tmp_path / "typo.toml"
    f.write_text((ROOT / DEMO).read_text().replace("\nalpha = 0.05", "\nalpah = 0.05", 1))
    with pytest.raises(PlanError) as err:
        load_protocol(f)
    msg = str(err.value)
    assert "\n" not in msg
    assert "typo.toml" in msg and "[analysis]" in msg and "alpah: unknown field" in msg
    f.write_text((ROOT / DEMO).read_text().replace("\nalpha = 0.05", "\nalpha = 0.7", 1))
    with pytest.raises(PlanError, match=r"protocol demo \(file .*typo.toml\) \[analysis\]: alpha"):
        load_protocol(f)


@pytest.mark.parametrize("reply", [
    np.zeros((2, 63)),  # fewer samples than asked
    np.zeros(128),  # one flat block
    [[0.0] * 64, [0.0] * 60],  # ragged channels
    None,  # nothing
])
def test_a_wrong_shaped_or_malformed_record_is_an_instrument_fault_of_the_digitizer(reply):
    from corrlab.errors import InstrumentError

    p = small_protocol()
    spec = make_schedule(p)[0]
    healthy = Answers(p)

    def answer(msg):
        return reply if isinstance(msg, Call) and (msg.role, msg.verb) == ("digitizer", "acquire") else healthy(msg)

    with pytest.raises(InstrumentError) as err:
        run_listing(trial_plan(p, spec), answer)
    assert err.value.role == "digitizer"
    assert str(err.value).startswith("digitizer: ") and "(2, 64)" in str(err.value) and "\n" not in str(err.value)
