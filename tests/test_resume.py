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
