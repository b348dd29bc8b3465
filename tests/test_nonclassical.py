"""The top rung on the simulated bench: the gaussian world, calibrated in vacuum units."""

from __future__ import annotations

import pytest

from analysis.pipeline import analyze_dataset
from daq.runner import run_protocol
from instruments.bench import bench_from_dict, load_bench
from instruments.sim.state import BenchState
from instruments.sim.world import GaussianWorld
from protocols.config import protocol_from_dict


@pytest.fixture(scope="module")
def gaussian_dataset(tmp_path_factory):
    p = protocol_from_dict({
        "protocol": {"name": "tmsv", "seed": 3},
        "schedule": {"trials": 60, "block_size": 6, "trials_per_part": 30,
                     "conditions": {"main": 3, "control:break_L": 1, "control:perturb_C": 1, "control:couple_env": 1}},
        "acquisition": {"samples": 2000, "record_quadratures": True},
        "stabilize": {"reads": 1, "interval_s": 0.0},
        "analysis": {"n_resamples": 1999},
    })
    data = load_bench().to_json()
    data["world"] = {"kind": "gaussian", "seed": None, "params": {"squeezing_r": 0.5, "vacuum_rms_v": 1e-3}}
    data["calibration"] = {"vacuum_variance": {"a": 1e-6, "b": 1e-6}}  # vacuum_rms_v ** 2
    root = tmp_path_factory.mktemp("tmsv")
    run_protocol(p, bench_from_dict(data), root, run_id="tmsv")
    return root / "tmsv"


def test_gaussian_world_is_graded_nonclassical_with_an_interval_covering_the_truth(gaussian_dataset):
    truth = GaussianWorld(BenchState(), seed=0, params={"squeezing_r": 0.5}).true_log_negativity()
    assert truth == pytest.approx(1.0)  # E_N = 2r for the two-mode squeezed vacuum
    r = analyze_dataset(gaussian_dataset)
    g = r.nonclassicality["gaussian"]
    assert g["ci"][0] <= truth <= g["ci"][1]
    assert g["ci"][0] > 0 and g["pvalue"] < 1e-6
    assert r.verdict.level == "nonclassical" and r.verdict.nonclassical and not r.verdict.signalling_detected
    # the same data, sign-binned at the lock-in phases, do not violate CHSH: a local model exists
    c = r.nonclassicality["chsh"]
    assert c is not None and c["pvalue"] > 0.05
    assert any("CHSH" in s and "not violated" in s for s in r.verdict.reasons)


def test_without_calibration_log_negativity_is_not_applicable(gaussian_dataset, tmp_path):
    import json
    import shutil

    copy = tmp_path / "uncal"
    shutil.copytree(gaussian_dataset, copy)
    m = json.loads((copy / "manifest.json").read_text())
    del m["calibration"]
    (copy / "manifest.json").write_text(json.dumps(m))
    r = analyze_dataset(copy)
    assert r.nonclassicality["gaussian"] is None
    assert "no vacuum calibration" in r.nonclassicality["not_applicable"]["log_negativity"]
    assert r.verdict.level != "nonclassical"
