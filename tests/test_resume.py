"""A run killed with SIGKILL mid-part, then resumed, equals an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from corrlab.daq.cli import cli
from corrlab.dataset import Dataset

ROOT = Path(__file__).resolve().parents[1]


def test_sigkill_mid_part_then_resume_equals_an_uninterrupted_run(tmp_path, demo_protocol):
    proto = demo_protocol(trials=36, samples=400, trials_per_part=5)
    out = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-c", "from corrlab.daq.cli import main; main()", "run", str(proto), "--out",
                             str(out), "--run-id", "killed", "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "killed/manifest.json"
    deadline = time.monotonic() + 60
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists():
            try:
                committed = json.loads(manifest.read_text()).get("trials_committed", 0)
            except json.JSONDecodeError:
                committed = 0
            if committed >= 10:
                # two parts are committed; wait until a third is under way (trials buffered), then kill
                time.sleep(0.4)
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ds = Dataset.open(out / "killed")
    assert ds.status == "running"  # SIGKILL leaves no chance to record a status
    before = {p["file"]: hashlib.sha256((out / "killed" / p["file"]).read_bytes()).hexdigest() for p in ds.parts}
    samples_before = ds.read().to_pandas()
    n_before = len(ds.trials())
    assert 10 <= n_before < 36

    runner = CliRunner()
    res = runner.invoke(cli, ["run", "--resume", str(out / "killed"), "--quiet"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["verify", str(out / "killed")])
    assert res.exit_code == 0, res.output

    ds = Dataset.open(out / "killed")
    assert ds.status == "complete" and ds.manifest.get("resumes")
    trials = ds.trials()
    assert list(trials.trial) == list(range(36))  # every trial once, in order
    for f, digest in before.items():  # parts committed before the kill are untouched
        assert hashlib.sha256((out / "killed" / f).read_bytes()).hexdigest() == digest
    after = ds.read().to_pandas()
    pre = after[after.trial < n_before].reset_index(drop=True)
    np.testing.assert_array_equal(pre.x_a.to_numpy(), samples_before.x_a.to_numpy())
    np.testing.assert_array_equal(pre.x_b.to_numpy(), samples_before.x_b.to_numpy())

    # and the whole dataset equals an uninterrupted run of the same protocol, sample for sample
    res = runner.invoke(cli, ["run", str(proto), "--out", str(out), "--run-id", "whole", "--quiet"])
    assert res.exit_code == 0, res.output
    whole = Dataset.open(out / "whole")
    ref = whole.read().to_pandas()
    for col in ("trial", "setting_a", "setting_b", "f", "t", "x_a", "x_b"):
        np.testing.assert_array_equal(after[col].to_numpy(), ref[col].to_numpy())
    assert list(after.condition.astype(str)) == list(ref.condition.astype(str))
    assert list(whole.trials().condition) == list(trials.condition)


def test_a_resumed_run_that_completes_carries_no_old_stop_reason(tmp_path):
    """The stop of an earlier session goes to the manifest's ``stops`` history; a complete dataset
    has no ``stop_reason`` (issue 15, case 5: it kept the old one)."""
    from corrlab.daq.runner import resume_run, run_protocol
    from corrlab.instruments.benchfile import bench_from_dict, load_bench
    from corrlab.protocols.config import protocol_from_dict

    proto = protocol_from_dict({
        "protocol": {"name": "stops", "seed": 5},
        "schedule": {"trials": 6, "block_size": 6, "trials_per_part": 2,
                     "conditions": {"main": 3, "control:break_L": 1, "control:perturb_C": 1, "control:couple_env": 1}},
        "acquisition": {"samples": 64},
        "stabilize": {"reads": 2, "interval_s": 0.0, "max_wait_s": 0.2},
    })
    data = load_bench().to_json()
    data["faults"] = {"thermal": {"stick_temperature": {"trial": 3, "offset_k": 1.0, "reads": 100000}}}
    first = run_protocol(proto, bench_from_dict(data), tmp_path, run_id="s")
    assert first.status == "interrupted" and "stayed outside" in first.reason
    ds = Dataset.open(tmp_path / "s")
    assert ds.manifest["stop_reason"] == first.reason
    data["faults"] = {}
    done = resume_run(tmp_path / "s", bench_from_dict(data))
    assert done.status == "complete" and done.reason is None
    m = Dataset.open(tmp_path / "s").manifest
    assert m["status"] == "complete" and "stop_reason" not in m and m["trials_committed"] == 6
    assert len(m["stops"]) == 1 and len(m["resumes"]) == 1
    stop = m["stops"][0]
    assert stop["status"] == "interrupted" and stop["stop_reason"] == first.reason
    assert stop["resumed_utc"] == m["resumes"][0] and stop["finished_utc"] < stop["resumed_utc"]
    # and the journal keeps the whole story
    runs = [(e["outcome"], e["message"]) for e in Dataset.open(tmp_path / "s").events() if e["step"] == "run"]
    assert [o for o, _ in runs] == ["start", "interrupted", "start", "complete"] and runs[1][1] == first.reason
