"""Injected faults on the simulated bench: the run survives, nothing is lost, the journal says what."""

from __future__ import annotations

import numpy as np
import pytest

from corrlab.errors import InstrumentError, PlanError
from corrlab.dataset import Dataset
from corrlab.daq.runner import resume_run, run_protocol
from corrlab.instruments.benchfile import bench_from_dict, load_bench
from corrlab.protocols.config import protocol_from_dict


def protocol(trials=12, **sections):
    data = {
        "protocol": {"name": "faulty", "seed": 11},
        "schedule": {"trials": trials, "block_size": 6, "trials_per_part": 4,
                     "conditions": {"main": 3, "control:break_L": 1, "control:perturb_C": 1, "control:couple_env": 1}},
        "acquisition": {"samples": 200},
        "stabilize": {"reads": 3, "interval_s": 0.0, "settle_s": 0.0},
    }
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    return protocol_from_dict(data)


def bench(faults=None, timeout_ms=400, attempts=3, tolerance_s=0.5, **world):
    data = load_bench().to_json()
    data["faults"] = faults or {}
    data["reconnect"] = {"attempts": attempts, "backoff_s": 0.01, "backoff_factor": 2.0, "max_backoff_s": 0.1,
                         "outage_tolerance_s": tolerance_s}
    data["world"] = {"kind": "common_cause", "seed": None, "params": {}, **world}
    for cfg in data["roles"].values():
        cfg["timeout_ms"] = timeout_ms
    return bench_from_dict(data)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same protocol without faults: what every survived run must equal."""
    root = tmp_path_factory.mktemp("ref")
    run_protocol(protocol(), bench(), root, run_id="ref")
    return Dataset.open(root / "ref").read().to_pandas()


def faults_in_journal(ds):
    return [e for e in ds.events() if e["step"] == "fault"]


@pytest.mark.parametrize(
    "role, faults, error",
    [
        ("readout_b", {"drop_after_commands": 40}, "InstrumentTimeout"),  # peer closed: timeout, later BrokenPipe
        ("stage", {"drop_after_commands": 30, "drop_reset": True}, "InstrumentError"),  # RST: ConnectionResetError
        ("thermal", {"delay_queries": 1, "delay_pattern": "KRDG", "delay_s": 0.8}, "InstrumentTimeout"),
        ("readout_b", {"garble_queries": 1, "garble_pattern": "OUTP\\?3"}, "InstrumentError"),
        ("digitizer", {"garble_queries": 1, "garble_pattern": "FETC"}, "InstrumentError"),
    ],
)
def test_a_fault_mid_run_is_survived_and_the_data_equal_a_clean_run(tmp_path, reference, role, faults, error):
    result = run_protocol(protocol(), bench({role: faults}), tmp_path, run_id="f")
    assert result.status == "complete", result.reason
    ds = Dataset.open(tmp_path / "f")
    assert ds.verify().ok
    journal = faults_in_journal(ds)
    assert len(journal) >= 1 and journal[0]["role"] == role and journal[0]["error_type"] == error
    assert role in journal[0]["message"] and "discarded" in journal[0]["message"]
    assert any(e["step"] == "reconnect" and e["outcome"] == "ok" for e in ds.events())
    trials = ds.trials()
    assert list(trials.trial) == list(range(12))
    assert trials.attempts.max() >= 2  # the trial hit was repeated, not half-written
    data = ds.read().to_pandas()
    for col in ("x_a", "x_b", "setting_a", "setting_b"):
        np.testing.assert_array_equal(data[col].to_numpy(), reference[col].to_numpy())
    assert result.faults and result.faults[0]["role"] == role


def test_past_the_outage_tolerance_the_run_stops_interrupted_and_resumes(tmp_path, reference):
    def die_at_trial_5(sim):
        """readout_a drops its connection after trial 5's record and refuses every reconnection."""
        acquire = sim.world.acquire

        def hooked():
            if sim.world.ctx.trial == 5:
                sim.servers["readout_a"].faults.configure(drop_after_commands=0, refuse_connections=1000)
            return acquire()

        sim.world.acquire = hooked

    result = run_protocol(protocol(), bench(), tmp_path, run_id="bound", sim_hook=die_at_trial_5)
    assert result.status == "interrupted"
    assert result.reason.startswith("readout_a: not reachable for 0.5 s (outage tolerance 0.5 s)"), result.reason
    ds = Dataset.open(tmp_path / "bound")
    assert ds.status == "interrupted" and ds.verify().ok
    # trial 6 met the dead readout (its phase setting): discarded, never half-written
    assert list(ds.trials().trial) == [0, 1, 2, 3, 4, 5]
    assert [(e["step"], e["outcome"], e["trial"]) for e in ds.events() if e["step"] in ("fault", "reconnect", "outage")] == [
        ("fault", "fault", 6), ("outage", "start", 6), ("outage", "fail", 6)]
    assert ds.manifest["safe_state"]["not_confirmed"].keys() == {"readout_a"}
    # the instrument is repaired: resume finishes the run with the same data
    done = resume_run(tmp_path / "bound", bench())
    assert done.status == "complete"
    data = Dataset.open(tmp_path / "bound").read().to_pandas()
    np.testing.assert_array_equal(data.x_b.to_numpy(), reference.x_b.to_numpy())


def test_connections_refused_at_start_are_retried_within_the_bound(tmp_path):
    result = run_protocol(protocol(trials=6), bench({"thermal": {"refuse_connections": 2}}), tmp_path, run_id="r")
    assert result.status == "complete"
    with pytest.raises(InstrumentError, match=r"^thermal: not reachable after 4 attempt\(s\)"):
        run_protocol(protocol(trials=6), bench({"thermal": {"refuse_connections": 50}}), tmp_path, run_id="r2")
    assert not (tmp_path / "r2").exists()  # nothing written when the bench never came up


def test_a_stuck_temperature_suspends_measurement_until_back_in_band(tmp_path, reference):
    stick = {"stick_temperature": {"trial": 4, "offset_k": 0.5, "reads": 6, "first_read": 1}}
    result = run_protocol(protocol(stabilize={"settle_s": 0.05}), bench({"thermal": stick}), tmp_path, run_id="s")
    assert result.status == "complete" and result.suspensions == 1
    ds = Dataset.open(tmp_path / "s")
    events = ds.events()
    suspend = [e for e in events if e["step"] == "suspend"]
    resume = [e for e in events if e["step"] == "resume"]
    assert len(suspend) == 1 and suspend[0]["trial"] == 4 and suspend[0]["reading"] == pytest.approx(4.5, abs=0.02)
    assert len(resume) == 1 and resume[0]["suspended_s"] >= 0.05
    trials = ds.trials().set_index("trial")
    assert trials.loc[4, "suspended_s"] >= 0.05 and (trials.drop(index=4).suspended_s == 0).all()
    assert trials.loc[4, "delta_m_ok"]  # the readings kept for ΔM are the in-band ones
    np.testing.assert_array_equal(ds.read().to_pandas().x_a.to_numpy(), reference.x_a.to_numpy())


def test_a_suspension_past_its_limit_interrupts(tmp_path):
    stick = {"stick_temperature": {"trial": 2, "offset_k": 1.0, "reads": 100000}}
    result = run_protocol(protocol(stabilize={"max_wait_s": 0.3}), bench({"thermal": stick}), tmp_path, run_id="x")
    assert result.status == "interrupted" and "stayed outside" in result.reason
    ds = Dataset.open(tmp_path / "x")
    assert ds.verify().ok and len(ds.trials()) == 2


def test_bad_fault_options_are_refused_when_the_bench_is_read():
    with pytest.raises(PlanError, match="unknown option 'drop_afterr'"):
        bench({"thermal": {"drop_afterr": 3}})
    with pytest.raises(PlanError, match="stick_temperature needs"):
        bench({"thermal": {"stick_temperature": {"trial": 1}}})


@pytest.mark.parametrize("reshape, received", [
    (lambda rec: rec[:, :-7], (2, 193)),  # fewer samples than asked
    (lambda rec: np.concatenate([rec, rec[:, :5]], axis=1), (2, 205)),  # more samples than asked
    (lambda rec: rec[:1], (1, 200)),  # a channel missing
])
def test_a_wrong_shaped_digitizer_record_is_an_instrument_fault(tmp_path, reference, monkeypatch, reshape, received):
    """The digitizer hands back a record of the wrong shape once (trial 5): discarded and repeated, not a bug."""
    from corrlab.instruments.drivers.digitizer import FastDigitizer

    fetch_all, calls = FastDigitizer.fetch_all, []

    def wrong_once(self, *args, **kwargs):
        record = fetch_all(self, *args, **kwargs)
        calls.append(record.shape)
        return reshape(record) if len(calls) == 6 else record  # trial 5's record

    monkeypatch.setattr(FastDigitizer, "fetch_all", wrong_once)
    result = run_protocol(protocol(), bench(), tmp_path, run_id="w")
    assert result.status == "complete", result.reason
    assert result.trials_committed == result.trials_planned == 12
    ds = Dataset.open(tmp_path / "w")
    assert ds.verify().ok
    journal = faults_in_journal(ds)
    assert len(journal) == 1 and journal[0]["role"] == "digitizer" and journal[0]["error_type"] == "InstrumentError"
    message = journal[0]["message"]
    assert "digitizer" in message and "discarded" in message and journal[0]["trial"] == 5
    assert str(received) in message and "(2, 200)" in message  # received and expected shapes
    assert result.faults and result.faults[0]["role"] == "digitizer" and result.faults[0]["trial"] == 5
    trials = ds.trials()
    assert list(trials.trial) == list(range(12))
    assert trials.set_index("trial").attempts.to_dict() == {t: 2 if t == 5 else 1 for t in range(12)}
    data = ds.read().to_pandas()
    for col in ("x_a", "x_b", "setting_a", "setting_b"):
        np.testing.assert_array_equal(data[col].to_numpy(), reference[col].to_numpy())


def test_a_digitizer_block_of_garbage_samples_is_an_instrument_fault(tmp_path, reference):
    """Blocks whose header is intact but whose samples are NaN, +-inf or +-3e38 (the bench file's
    ``corrupt_blocks`` for the first record, the server's ``corrupt_payloads`` mid-run): each such
    trial is discarded and repeated, journaled, and the dataset holds only the clean records."""
    plan = {4: (1, "nan"), 9: (2, "huge")}  # trial: (blocks, value); 9 fails twice, its third attempt succeeds
    server = {}

    def corrupt_later(sim):
        acquire = sim.world.acquire
        server["digitizer"] = sim.servers["digitizer"]

        def hooked():
            if sim.world.ctx.trial in plan:
                count, value = plan.pop(sim.world.ctx.trial)
                sim.servers["digitizer"].faults.corrupt_payloads(count, value=value)
            return acquire()

        sim.world.acquire = hooked

    faults = {"digitizer": {"corrupt_blocks": 1, "corrupt_value": "mixed"}}
    result = run_protocol(protocol(), bench(faults), tmp_path, run_id="g", sim_hook=corrupt_later)
    assert result.status == "complete", result.reason
    assert result.trials_committed == result.trials_planned == 12
    assert server["digitizer"].stats.corrupted == 4 and not plan
    ds = Dataset.open(tmp_path / "g")
    assert ds.verify().ok
    journal = faults_in_journal(ds)
    assert [(e["trial"], e["role"], e["error_type"]) for e in journal] == [
        (0, "digitizer", "InstrumentError"), (4, "digitizer", "InstrumentError"),
        (9, "digitizer", "InstrumentError"), (9, "digitizer", "InstrumentError")]
    first, nan, huge = journal[0]["message"], journal[1]["message"], journal[2]["message"]
    assert "\n" not in first and "discarded" in first
    # 400 samples, 16 replaced (8 per channel) cycling NaN, inf, 3e38, -inf, -3e38
    assert "x_a: 5 non-finite and 3 outside +-10 V of 200 samples (largest |value| 3e+38 V)" in first
    assert "x_b: " in first and "acquisition.range_v = 10 V" in first
    assert "x_a: 8 non-finite of 200 samples" in nan and "x_b: 8 non-finite of 200 samples" in nan
    assert "x_a: 8 outside +-10 V of 200 samples (largest |value| 3e+38 V)" in huge
    trials = ds.trials().set_index("trial")
    assert trials.attempts.to_dict() == {t: {0: 2, 4: 2, 9: 3}.get(t, 1) for t in range(12)}
    data = ds.read().to_pandas()
    assert np.isfinite(data[["x_a", "x_b"]].to_numpy()).all() and data[["x_a", "x_b"]].abs().max().max() < 10
    for col in ("x_a", "x_b", "setting_a", "setting_b"):
        np.testing.assert_array_equal(data[col].to_numpy(), reference[col].to_numpy())


def test_samples_outside_the_protocols_range_are_refused_with_their_channel():
    from corrlab.protocols.steps import check_samples

    record = np.zeros((4, 50))
    check_samples(record, ("x_a", "x_b", "y_a", "y_b"), 1.0)  # a clean record passes
    record[3, 7] = 1.5
    record[3, 9] = -np.inf
    with pytest.raises(InstrumentError, match=r"^digitizer: impossible samples in the record: y_b: 1 non-finite and "
                                              r"1 outside \+-1 V of 50 samples \(largest \|value\| 1.5 V\) "
                                              r"\(acquisition.range_v = 1 V\)$") as info:
        check_samples(record, ("x_a", "x_b", "y_a", "y_b"), 1.0)
    assert info.value.role == "digitizer"
    with pytest.raises(PlanError, match="range_v"):
        protocol(acquisition={"range_v": 0})


def test_bad_corruption_options_are_refused_when_the_bench_is_read():
    with pytest.raises(PlanError, match=r"faults.digitizer.corrupt_value must be one of nan, inf, huge, mixed; got 'zero'"):
        bench({"digitizer": {"corrupt_blocks": 1, "corrupt_value": "zero"}})
    with pytest.raises(PlanError, match=r"faults.digitizer.corrupt_blocks must be a non-negative integer"):
        bench({"digitizer": {"corrupt_blocks": -1}})
