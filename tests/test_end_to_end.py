"""The runner end to end on the simulated bench: real drivers, real sockets, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from corrlab.errors import InstrumentError
from corrlab.daq.cli import cli
from corrlab.dataset import Dataset
from corrlab.daq.runner import run_protocol
from corrlab.instruments.benchfile import bench_from_dict, load_bench
from corrlab.protocols.config import protocol_from_dict
from corrlab.protocols.schedule import make_schedule

ROOT = Path(__file__).resolve().parents[1]


def tiny_protocol(trials=12, samples=256, seed=3, **sections):
    data = {
        "protocol": {"name": "tiny", "seed": seed},
        "schedule": {"trials": trials, "block_size": 6, "trials_per_part": 4,
                     "conditions": {"main": 3, "control:break_L": 1, "control:perturb_C": 1, "control:couple_env": 1}},
        "acquisition": {"samples": samples, "sample_rate_hz": 10000.0},
        "stabilize": {"reads": 2, "interval_s": 0.0},
        "analysis": {"n_resamples": 999},
    }
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    return protocol_from_dict(data)


def sim_bench(kind="common_cause", **extra):
    data = load_bench().to_json()
    data["world"] = {"kind": kind, "seed": None, "params": {}}
    data.update(extra)
    return bench_from_dict(data)


def test_a_protocol_run_writes_a_complete_verified_dataset(tmp_path):
    p = tiny_protocol()
    result = run_protocol(p, sim_bench(), tmp_path, run_id="e2e")
    assert result.status == "complete" and result.trials_committed == 12
    ds = Dataset.open(tmp_path / "e2e")
    assert ds.verify().ok
    m = ds.manifest
    assert m["status"] == "complete" and m["rng_seed"] == 3 and len(m["parts"]) == 3
    assert m["instruments"]["readout_a"].startswith("Stanford_Research_Systems,SR830")
    assert m["instruments"]["thermal"].startswith("LSCI,MODEL336")
    assert m["protocol"]["analysis"]["n_resamples"] == 999 and len(m["plan_sha256"]) == 64
    assert m["software"]["pymeasure"].startswith("0.16")
    # conditions and settings exactly as scheduled; f from the layer checks
    trials = ds.trials()
    schedule = make_schedule(p)
    assert list(trials.trial) == [s.trial for s in schedule]
    assert list(trials.condition) == [s.condition for s in schedule]
    assert list(trials.setting_a) == [s.setting_a for s in schedule]
    assert (trials.f == (trials.condition == "main")).all()
    assert (trials.loc[trials.condition == "control:perturb_C", "alignment_error_um"] > 40).all()
    assert (trials.loc[trials.condition == "main", "crosstalk_db"] < -60).all()
    # samples: the digitizer record, sample times from the acquisition rate
    data = ds.read().to_pandas()
    assert len(data) == 12 * 256
    np.testing.assert_allclose(data.t[:3], [0.0, 1e-4, 2e-4])
    assert data.x_a.std() > 1e-5
    # the journal has every step of every trial, and the safe state at the end
    events = ds.events()
    steps = {(e["trial"], e["step"]) for e in events if e["trial"] is not None}
    for t in range(12):
        for s in ("control", "prepare", "isolate", "stabilize", "fix", "measure"):
            assert (t, s) in steps
    assert any(e["step"] == "safe_state" and e["outcome"] == "ok" for e in events)
    assert events[-1]["step"] == "run" and events[-1]["outcome"] == "complete"


def test_same_seed_same_samples_and_another_world_seed_differs(tmp_path):
    p = tiny_protocol(trials=6)
    run_protocol(p, sim_bench(), tmp_path, run_id="a")
    run_protocol(p, sim_bench(), tmp_path, run_id="b")
    a = Dataset.open(tmp_path / "a").read().to_pandas()
    b = Dataset.open(tmp_path / "b").read().to_pandas()
    np.testing.assert_array_equal(a.x_a.to_numpy(), b.x_a.to_numpy())
    bench = sim_bench()
    bench.world.seed = 99
    run_protocol(p, bench, tmp_path, run_id="c")
    c = Dataset.open(tmp_path / "c").read().to_pandas()
    assert not np.array_equal(a.x_a.to_numpy(), c.x_a.to_numpy())


def test_quadratures_are_recorded_as_extra_columns(tmp_path):
    p = tiny_protocol(trials=6, acquisition={"record_quadratures": True})
    bench = sim_bench("gaussian", calibration={"vacuum_variance": {"a": 1e-6, "b": 1e-6}})
    run_protocol(p, bench, tmp_path, run_id="q")
    ds = Dataset.open(tmp_path / "q")
    assert ds.columns[-2:] == ["y_a", "y_b"]
    assert ds.manifest["calibration"] == {"vacuum_variance": {"a": 1e-6, "b": 1e-6}}
    d = ds.read().to_pandas()
    assert {"y_a", "y_b"} <= set(d.columns) and d.y_b.std() > 0


def test_a_resource_that_refuses_is_a_clear_error(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    data = load_bench().to_json()
    data["simulated"] = False
    data["world"] = None
    data["roles"] = {r: {**c, "resource": f"TCPIP0::127.0.0.1::{port}::SOCKET", "timeout_ms": 300}
                     for r, c in data["roles"].items()}
    with pytest.raises(InstrumentError) as err:
        run_protocol(tiny_protocol(), bench_from_dict(data), tmp_path, run_id="x")
    assert str(err.value).startswith("readout_a: ") and "refused" in str(err.value)
    assert not (tmp_path / "x").exists()


def test_cli_run_inspect_verify_and_a_corrupted_part(tmp_path, demo_protocol):
    proto = demo_protocol(trials=12, samples=128)
    runner = CliRunner()
    res = runner.invoke(cli, ["run", str(proto), "--out", str(tmp_path / "data"), "--run-id", "cli", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "complete: 12/12 trials" in res.output
    res = runner.invoke(cli, ["inspect", str(tmp_path / "data/cli")])
    assert res.exit_code == 0 and "verified" in res.output and "main" in res.output
    res = runner.invoke(cli, ["verify", str(tmp_path / "data/cli")])
    assert res.exit_code == 0 and res.output.startswith("ok: ")
    part = tmp_path / "data/cli/parts/part-000000.parquet"
    blob = bytearray(part.read_bytes())
    blob[-20] ^= 0x55
    part.write_bytes(bytes(blob))
    res = runner.invoke(cli, ["verify", str(tmp_path / "data/cli")])
    assert res.exit_code == 1 and "part-000000.parquet fails its checksum" in res.output
    res = runner.invoke(cli, ["run", str(tmp_path / "nope.toml")])
    assert res.exit_code == 2 and "protocol file" in res.output and "does not exist" in res.output


def test_sigterm_leaves_interrupted_with_committed_trials_intact(tmp_path, demo_protocol):
    proto = demo_protocol(trials=120, samples=512, trials_per_part=3)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from corrlab.daq.cli import main; main()", "run", str(proto), "--out",
                             str(tmp_path / "d"), "--run-id", "term", "--quiet"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    manifest = tmp_path / "d/term/manifest.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if manifest.exists() and json.loads(manifest.read_text()).get("trials_committed", 0) >= 6:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, out
    ds = Dataset.open(tmp_path / "d/term")
    assert ds.status == "interrupted" and "SIGTERM" in ds.manifest["stop_reason"]
    assert ds.verify().ok
    n = len(ds.trials())
    assert 6 <= n < 120 and list(ds.trials().trial) == list(range(n))
    assert any(e["step"] == "safe_state" for e in ds.events())
    assert "resume with: corrlab run --resume" in out


def test_sim_serve_standalone_is_reached_like_a_lan_bench(tmp_path):
    """`corrlab sim serve` in its own process; a real (non-simulated) bench file points at its ports."""
    import re

    proc = subprocess.Popen([sys.executable, "-c", "from corrlab.daq.cli import main; main()", "sim", "serve", "--seed", "4",
                             "--duration", "60"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        resources = {}
        deadline = time.monotonic() + 30
        while len(resources) < 7 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            m = re.match(r"\s+(\w+)\s+\w+\s+(TCPIP0::127\.0\.0\.1::\d+::SOCKET)", line)
            if m:
                resources[m.group(1)] = m.group(2)
        assert len(resources) == 7, resources
        data = load_bench().to_json()
        data.update(simulated=False, world=None)
        for role, cfg in data["roles"].items():
            cfg["resource"] = resources[role]
        result = run_protocol(tiny_protocol(trials=6), bench_from_dict(data), tmp_path, run_id="lan")
        assert result.status == "complete"
        ds = Dataset.open(tmp_path / "lan")
        assert ds.verify().ok and ds.manifest["bench"]["simulated"] is False
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
