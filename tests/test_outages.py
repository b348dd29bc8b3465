"""Outages at night: the whole bench recovered, a safe state that is confirmed or named as not.

Each test injects a fault into the simulated bench and checks the run's status, the dataset,
the journal and the simulated instruments' own state, read from the simulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from corrlab.daq.cli import cli
from corrlab.daq.cli.common import EXIT_NOT_SAFE
from corrlab.daq.runner import run_protocol
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


def bench(*, timeout_ms=400, faults=None):
    data = load_bench().to_json()
    data["faults"] = faults or {}
    data["reconnect"] = {"attempts": 3, "backoff_s": 0.02, "backoff_factor": 2.0}
    data["world"] = {"kind": "common_cause", "seed": None, "params": {}}
    for cfg in data["roles"].values():
        cfg["timeout_ms"] = timeout_ms
    return bench_from_dict(data)


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


def link_lost(role):
    """``role``'s link is gone for good: its connection drops, every reconnection is reset."""
    def action(sim):
        sim.servers[role].faults.configure(drop_after_commands=0, drop_reset=True, refuse_connections=100_000)
    return action


def steps(ds, *names):
    return [e for e in ds.events() if e["step"] in names]


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
    first = run_protocol(load_protocol(proto), bench(), out, run_id="resumed", sim_hook=AtTrial(6, link_lost("stage")))
    assert first.status == "interrupted"
    n_before = len(Dataset.open(out / "resumed").events())
    done = corrlab("run", "--resume", out / "resumed", "--bench", bench_file, "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    ds = Dataset.open(out / "resumed")
    assert ds.status == "complete" and list(ds.trials().trial) == list(range(12))
    after = ds.events()[n_before:]
    assert not [e for e in after if e["step"] == "fault"], [e for e in after if e["step"] == "fault"]
