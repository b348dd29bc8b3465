"""Outages at night: the whole bench recovered, a safe state that is confirmed or named as not.

Each test injects an outage into the simulated bench (every server restarted, one link lost
for good, a server frozen shorter or longer than the outage tolerance) and checks the run's
status, the dataset, the journal, the manifest's ``safe_state`` and the simulated
instruments' own final state (heater, outputs, motors, relays), read from the simulator.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import corrlab.daq.runner as runner_module
from corrlab.daq.cli import cli
from corrlab.daq.cli.common import EXIT_INTERRUPTED, EXIT_NOT_SAFE
from corrlab.daq.runner import resume_run, run_protocol
from corrlab.dataset import Dataset
from corrlab.instruments.benchfile import ROLES, bench_from_dict, load_bench
from corrlab.protocols.config import protocol_from_dict

ROOT = Path(__file__).resolve().parents[1]


def protocol(trials=12, **sections):
    data = {
        "protocol": {"name": "outage", "seed": 11},
        "schedule": {"trials": trials, "block_size": 6, "trials_per_part": 4,
                     "conditions": {"main": 3, "control:break_L": 1, "control:perturb_C": 1, "control:couple_env": 1}},
        "acquisition": {"samples": 200},
        "stabilize": {"reads": 3, "interval_s": 0.0, "settle_s": 0.0},
    }
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    return protocol_from_dict(data)


def bench(*, tolerance_s=5.0, timeout_ms=400, faults=None):
    data = load_bench().to_json()
    data["faults"] = faults or {}
    data["reconnect"] = {"attempts": 3, "backoff_s": 0.02, "backoff_factor": 2.0, "max_backoff_s": 0.2,
                         "outage_tolerance_s": tolerance_s}
    data["world"] = {"kind": "common_cause", "seed": None, "params": {}}
    for cfg in data["roles"].values():
        cfg["timeout_ms"] = timeout_ms
    return bench_from_dict(data)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same protocol without faults: what every survived run must equal."""
    root = tmp_path_factory.mktemp("ref")
    run_protocol(protocol(), bench(), root, run_id="ref")
    return Dataset.open(root / "ref").read().to_pandas()


class AtTrial:
    """A sim hook: when trial ``trial`` starts (its record tag is written), do ``action(sim)`` once.

    Keeps the simulated bench (``self.sim``) so the test reads its state after the run.
    """

    def __init__(self, trial, action):
        self.trial, self.action, self.sim, self.fired_at = trial, action, None, None

    def __call__(self, sim):
        self.sim = sim
        begin = sim.world.begin_record

        def hooked(tag):
            begin(tag)
            if tag == self.trial and self.fired_at is None:
                self.fired_at = time.monotonic()
                self.action(sim)

        sim.world.begin_record = hooked


def power_blip(down_s):
    """Every instrument reboots: back to its power-on defaults, its connection dead (RST on the
    next command) and its port closed for ``down_s``."""
    def action(sim):
        for server in sim.servers.values():
            server.model.handle("*RST")
            server.faults.configure(drop_after_commands=0, drop_reset=True)
            server.faults.refuse(seconds=down_s)
    return action


def frozen(role, seconds):
    """``role``'s server stops (SIGSTOP-like) for ``seconds``: connections kept, nothing answered."""
    def action(sim):
        sim.servers[role].faults.freeze(seconds)
    return action


def link_lost(role):
    """``role``'s link is gone for good: its connection drops, every reconnection is reset."""
    def action(sim):
        sim.servers[role].faults.configure(drop_after_commands=0, drop_reset=True, refuse_connections=100_000)
    return action


def safe_in_sim(state) -> dict[str, bool]:
    """Each role's safe state read from the simulated instruments themselves."""
    return {
        "readout_a": state.lockins["a"].sine_voltage == pytest.approx(0.004),
        "readout_b": state.lockins["b"].sine_voltage == pytest.approx(0.004),
        "drive": not state.generator.channels[1].output and not state.generator.channels[2].output,
        "thermal": state.thermal.heater_range[1] == 0,
        "stage": not state.stage[1].enabled and not state.stage[2].enabled,
        "isolation": not state.relay.closed,
        "digitizer": state.digitizer.registers.get("ACQ_STATE", "IDLE") == "IDLE",
    }


def steps(ds, *names):
    return [e for e in ds.events() if e["step"] in names]


def assert_same_data(ds, reference):
    data = ds.read().to_pandas()
    for col in ("x_a", "x_b", "setting_a", "setting_b"):
        np.testing.assert_array_equal(data[col].to_numpy(), reference[col].to_numpy())


def _toml(data: dict) -> str:
    """A small TOML writer for the tests' bench and protocol files."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = []

    def table(prefix, d):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) and v is not None}
        tables = {k: v for k, v in d.items() if isinstance(v, dict)}
        if prefix and (scalars or not tables):
            lines.append(f"[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{json.dumps(k)} = {value(v)}")
        for k, v in tables.items():
            table(f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k), v)

    table("", data)
    return "\n".join(lines) + "\n"


# ============================================================ every server restarted


def test_every_server_restarted_mid_run_is_ridden_out_and_the_data_equal_a_clean_run(tmp_path, reference):
    hook = AtTrial(5, power_blip(down_s=1.0))
    result = run_protocol(protocol(), bench(tolerance_s=10.0), tmp_path, run_id="blip", sim_hook=hook)
    assert result.status == "complete", result.reason
    assert result.trials_committed == result.trials_planned == 12
    ds = Dataset.open(tmp_path / "blip")
    assert ds.verify().ok and ds.status == "complete"
    trials = ds.trials()
    assert list(trials.trial) == list(range(12))  # none lost, none twice
    assert trials.set_index("trial").attempts.to_dict() == {t: 2 if t == 5 else 1 for t in range(12)}
    assert_same_data(ds, reference)
    # one fault (the trial in flight, discarded), one outage, every role reconnected in it
    faults = steps(ds, "fault")
    assert len(faults) == 1 and faults[0]["trial"] == 5
    outage = steps(ds, "outage")
    assert [e["outcome"] for e in outage] == ["start", "end"]
    start, end = outage
    assert sorted(start["roles"]) == sorted(ROLES)
    assert sorted(end["roles"]) == sorted(ROLES)
    assert 0.9 <= end["duration_s"] < 5.0, end
    reconnected = [e["role"] for e in steps(ds, "reconnect") if e["outcome"] == "ok"]
    assert sorted(reconnected) == sorted(ROLES)
    assert len(result.outages) == 1 and result.outages[0]["duration_s"] == end["duration_s"]
    # the safe state, confirmed from every instrument, and true in the simulator
    assert ds.manifest["safe_state"]["not_confirmed"] == {}
    assert sorted(ds.manifest["safe_state"]["confirmed"]) == sorted(ROLES)
    assert all(safe_in_sim(hook.sim.state).values()), safe_in_sim(hook.sim.state)
    assert ds.manifest["outages"][0]["duration_s"] == end["duration_s"]
    assert "stop_reason" not in ds.manifest


# ============================================================ one link lost for good


def test_one_link_lost_for_good_stops_the_run_and_names_the_role_not_confirmed_safe(tmp_path, reference, monkeypatch):
    hook = AtTrial(5, link_lost("thermal"))
    monkeypatch.setattr(runner_module, "run_protocol", functools.partial(run_protocol, sim_hook=hook))
    (tmp_path / "bench.toml").write_text(_toml(bench(tolerance_s=0.5).to_json()))
    (tmp_path / "p.toml").write_text(_toml(protocol().to_json()))
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "p.toml"), "--bench", str(tmp_path / "bench.toml"),
                                   "--out", str(tmp_path), "--run-id", "lost", "--quiet"])
    assert res.exit_code == EXIT_NOT_SAFE != EXIT_INTERRUPTED, res.output
    assert "thermal" in res.output and "not confirmed safe" in res.output
    ds = Dataset.open(tmp_path / "lost")
    assert ds.status == "interrupted" and ds.verify().ok
    assert list(ds.trials().trial) == [0, 1, 2, 3, 4]  # trial 5 was in flight: discarded
    reason = ds.manifest["stop_reason"]
    assert reason.startswith("thermal: not reachable") and "outage tolerance 0.5 s" in reason, reason
    # the journal, the manifest and the simulator agree: thermal not confirmed, the others safe
    safe = ds.manifest["safe_state"]
    assert list(safe["not_confirmed"]) == ["thermal"]
    assert sorted(safe["confirmed"]) == sorted(r for r in ROLES if r != "thermal")
    journal = steps(ds, "safe_state")
    assert [e["role"] for e in journal if e["outcome"] == "fail"] == ["thermal"]
    assert "not confirmed safe" in [e for e in journal if e["outcome"] == "fail"][0]["message"]
    assert not any(e["outcome"] == "ok" for e in journal)
    assert journal[-1]["outcome"] == "partial" and journal[-1]["not_confirmed"] == ["thermal"]
    in_sim = safe_in_sim(hook.sim.state)
    assert not in_sim.pop("thermal")  # the heater is still on: nobody could switch it off, and we say so
    assert all(in_sim.values()), in_sim
    outage = steps(ds, "outage")
    assert [e["outcome"] for e in outage] == ["start", "fail"] and outage[-1]["roles"] == ["thermal"]

    # repaired, the run resumes and completes: the old stop reason goes to the history
    done = resume_run(tmp_path / "lost", bench())
    assert done.status == "complete" and done.safe_state["not_confirmed"] == {}
    ds = Dataset.open(tmp_path / "lost")
    m = ds.manifest
    assert m["status"] == "complete" and "stop_reason" not in m
    assert m["safe_state"]["not_confirmed"] == {} and sorted(m["safe_state"]["confirmed"]) == sorted(ROLES)
    assert [s["status"] for s in m["stops"]] == ["interrupted"] and m["stops"][0]["stop_reason"] == reason
    assert m["stops"][0]["safe_state"] == safe
    assert len(m["resumes"]) == 1
    assert_same_data(ds, reference)


# ============================================================ a frozen server


def test_a_freeze_shorter_than_the_tolerance_is_ridden_out(tmp_path, reference):
    hook = AtTrial(4, frozen("thermal", 1.5))
    t0 = time.monotonic()
    result = run_protocol(protocol(), bench(tolerance_s=6.0), tmp_path, run_id="short", sim_hook=hook)
    assert result.status == "complete", result.reason
    assert time.monotonic() - t0 >= 1.5
    ds = Dataset.open(tmp_path / "short")
    assert list(ds.trials().trial) == list(range(12))
    assert_same_data(ds, reference)
    outage = steps(ds, "outage")
    assert [e["outcome"] for e in outage] == ["start", "end"] and outage[0]["roles"] == ["thermal"]
    # from the fault (a timeout) to the thaw: the freeze less the time before thermal was asked
    assert 0.5 <= outage[1]["duration_s"] < 1.5 + 1.0, outage[1]
    assert [e["role"] for e in steps(ds, "reconnect") if e["outcome"] == "ok"] == ["thermal"]
    assert sorted(ds.manifest["safe_state"]["confirmed"]) == sorted(ROLES)
    assert all(safe_in_sim(hook.sim.state).values())


def test_a_freeze_longer_than_the_tolerance_stops_the_run_with_the_frozen_role_not_confirmed(tmp_path):
    hook = AtTrial(4, frozen("thermal", 30.0))
    t0 = time.monotonic()
    result = run_protocol(protocol(), bench(tolerance_s=1.0), tmp_path, run_id="long", sim_hook=hook)
    took = time.monotonic() - t0
    assert result.status == "interrupted"
    assert took < 10.0  # the tolerance, then the safe state; not the freeze
    assert result.reason.startswith("thermal: not reachable"), result.reason
    assert list(result.safe_state["not_confirmed"]) == ["thermal"]
    ds = Dataset.open(tmp_path / "long")
    assert ds.status == "interrupted" and list(ds.trials().trial) == [0, 1, 2, 3]
    outage = steps(ds, "outage")
    assert [e["outcome"] for e in outage] == ["start", "fail"]
    assert 1.0 <= outage[-1]["duration_s"] < 3.0
    safe = ds.manifest["safe_state"]
    assert list(safe["not_confirmed"]) == ["thermal"] and "thermal" in safe["not_confirmed"]["thermal"]
    assert sorted(safe["confirmed"]) == sorted(r for r in ROLES if r != "thermal")
    in_sim = safe_in_sim(hook.sim.state)
    assert not in_sim.pop("thermal")  # frozen: its heater was never switched off
    assert all(in_sim.values()), in_sim


# ============================================================ what is not an outage


def test_a_transient_fault_on_a_live_connection_still_counts_toward_the_attempts(tmp_path):
    # every temperature reply garbled: the link is fine, the trial fails three times
    result = run_protocol(protocol(trials=6), bench(faults={"thermal": {"garble_pattern": "KRDG"}}), tmp_path,
                          run_id="g")
    assert result.status == "interrupted"
    assert result.reason.startswith("trial 0 failed 3 times; last: thermal:"), result.reason
    ds = Dataset.open(tmp_path / "g")
    assert not steps(ds, "outage") and len(steps(ds, "fault")) == 3
    assert sorted(ds.manifest["safe_state"]["confirmed"]) == sorted(ROLES)


# ============================================================ the simulator's freeze


def test_a_frozen_simulated_server_answers_nothing_then_serves_what_it_held():
    import pyvisa

    from corrlab.instruments.sim.models import MODELS
    from corrlab.instruments.sim.server import SimServer
    from corrlab.instruments.sim.state import BenchState, StaticWorld

    state = BenchState()
    with SimServer(MODELS["LakeShore336"](state, StaticWorld(state)), name="thermal") as server:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(server.resource, read_termination="\r\n", write_termination="\n", timeout=200)
        assert inst.query("*IDN?").startswith("LSCI")
        server.faults.freeze(0.6)
        with pytest.raises(pyvisa.errors.VisaIOError):
            inst.query("*IDN?")
        other = rm.open_resource(server.resource, read_termination="\r\n", write_termination="\n", timeout=1000)
        assert other.query("*IDN?").startswith("LSCI")  # accepted during the freeze, answered at the thaw
        assert server.stats.snapshot()["held"] >= 2
        inst.close(), other.close()
        rm.close()


# ============================================================ a safe state is confirmed, or named as not


def test_a_safe_state_the_instrument_does_not_confirm_is_not_confirmed():
    from corrlab.instruments.roles import ConnectedBench
    from corrlab.instruments.sim.simulated_bench import SimulatedBench

    config = bench(faults={"thermal": {"garble_pattern": "RANGE\\?"}})
    with SimulatedBench(config, seed=1) as resources:
        connected = ConnectedBench(config, resources)
        connected.connect()
        try:
            connected.call("thermal", "set_setpoint", 4.0, heater_range="medium")
            report = connected.safe_state()
        finally:
            connected.close()
    assert list(report.not_confirmed) == ["thermal"] and "RANGE?" in report.not_confirmed["thermal"]
    assert sorted(report.confirmed) == sorted(r for r in ROLES if r != "thermal")
    assert not report.ok


def test_the_run_names_a_role_not_confirmed_safe_in_journal_manifest_terminal_and_exit_status(tmp_path):
    # the heater's range query answers garbage: the write may have worked, nothing confirms it
    config = bench(faults={"thermal": {"garble_pattern": "RANGE\\?"}})
    (tmp_path / "bench.toml").write_text(_toml(config.to_json()))
    (tmp_path / "p.toml").write_text(_toml(protocol(trials=6).to_json()))
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "p.toml"), "--bench", str(tmp_path / "bench.toml"),
                                   "--out", str(tmp_path), "--run-id", "r", "--quiet"])
    assert res.exit_code == EXIT_NOT_SAFE, res.output
    assert "complete: 6/6" in res.output and "thermal: not confirmed safe" in res.output
    ds = Dataset.open(tmp_path / "r")
    assert ds.status == "complete" and ds.verify().ok  # the data are whole; the bench needs a look
    safe = ds.manifest["safe_state"]
    assert list(safe["not_confirmed"]) == ["thermal"] and "RANGE?" in safe["not_confirmed"]["thermal"]
    assert sorted(safe["confirmed"]) == sorted(r for r in ROLES if r != "thermal")
    journal = steps(ds, "safe_state")
    assert [(e["outcome"], e.get("role")) for e in journal] == [("fail", "thermal"), ("partial", None)]
    assert journal[0]["message"].startswith("thermal: not confirmed safe: ")
    assert journal[1]["not_confirmed"] == ["thermal"] and "1 role(s) not confirmed safe: thermal" in journal[1]["message"]
    res = CliRunner().invoke(cli, ["inspect", str(tmp_path / "r")])
    assert res.exit_code == 0 and "thermal: not confirmed safe" in res.output


# ============================================================ the first trial after a start or a resume


def test_no_spurious_digitizer_timeout_on_the_first_trial_after_a_start_or_a_resume(tmp_path, demo_protocol):
    """A fresh process (as `corrlab run` is) with a digitizer timeout short enough that any
    one-time work inside the first acquisition shows as a fault (it did: scipy.signal's import
    ran inside the first INIT, 0.5 s idle, seconds under load)."""
    from corrlab.protocols.config import load_protocol

    proto = demo_protocol(trials=12, samples=64, trials_per_part=6)
    data = bench(timeout_ms=2000).to_json()
    data["roles"]["digitizer"]["timeout_ms"] = 250
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(_toml(data))

    def corrlab(*args):
        return subprocess.run([sys.executable, "-c", "from corrlab.daq.cli import main; main()", *map(str, args)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    out = tmp_path / "d"
    done = corrlab("run", proto, "--bench", bench_file, "--out", out, "--run-id", "fresh", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not steps(Dataset.open(out / "fresh"), "fault")
    # an interrupted run (a link lost for good at trial 6), resumed in a fresh process
    first = run_protocol(load_protocol(proto), bench(tolerance_s=0.0), out, run_id="resumed",
                         sim_hook=AtTrial(6, link_lost("stage")))
    assert first.status == "interrupted"
    n_before = len(Dataset.open(out / "resumed").events())
    done = corrlab("run", "--resume", out / "resumed", "--bench", bench_file, "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    ds = Dataset.open(out / "resumed")
    assert ds.status == "complete" and list(ds.trials().trial) == list(range(12))
    after = ds.events()[n_before:]
    assert not [e for e in after if e["step"] == "fault"], [e for e in after if e["step"] == "fault"]


def test_a_record_longer_than_the_timeout_is_waited_for(tmp_path):
    """A digitizer that takes its record in real time (0.4 s here) under a 0.2 s timeout: the
    wait for the record allows its duration, so no trial times out (before, every one did)."""
    def real_time_records(sim):
        acquire = sim.world.acquire

        def slow():
            d = sim.state.digitizer
            time.sleep(d.points / d.sample_rate)
            return acquire()

        sim.world.acquire = slow

    proto = protocol(trials=6, acquisition={"samples": 100, "sample_rate_hz": 250.0})
    data = bench(tolerance_s=0.0).to_json()
    data["roles"]["digitizer"]["timeout_ms"] = 200
    result = run_protocol(proto, bench_from_dict(data), tmp_path, run_id="slow", sim_hook=real_time_records)
    assert result.status == "complete", result.reason
    assert not steps(Dataset.open(tmp_path / "slow"), "fault")
