"""The top rung on the simulated bench: the gaussian world, calibrated in vacuum units."""

from __future__ import annotations

import pytest

from corrlab.analysis.pipeline import analyze_dataset
from corrlab.daq.runner import run_protocol
from corrlab.instruments.benchfile import bench_from_dict, load_bench
from corrlab.instruments.sim.state import BenchState
from corrlab.instruments.sim.world import GaussianWorld
from corrlab.protocols.config import protocol_from_dict


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


def werner_run(root, visibility):
    p = protocol_from_dict({
        "protocol": {"name": "werner", "seed": 8},
        "schedule": {"trials": 360, "block_size": 1, "trials_per_part": 120, "conditions": {"main": 1}},
        "settings": {"a_deg": [0.0, 90.0], "b_deg": [-135.0, 135.0]},  # the CHSH-optimal directions
        "acquisition": {"samples": 64},
        "stabilize": {"reads": 1, "interval_s": 0.0},
        "analysis": {"n_resamples": 999},
    })
    data = load_bench().to_json()
    data["world"] = {"kind": "werner", "seed": None, "params": {"visibility": visibility}}
    run_protocol(p, bench_from_dict(data), root, run_id=f"w{visibility}")
    return analyze_dataset(root / f"w{visibility}")


def test_werner_source_violates_chsh_at_v09_and_not_at_v06(tmp_path):
    from corrlab.theory.qubits import true_chsh

    strong = werner_run(tmp_path, 0.9)
    c = strong.nonclassicality["chsh"]
    truth = true_chsh(0.9)
    assert truth == pytest.approx(2 * 2**0.5 * 0.9)
    assert c["ci"][0] <= truth <= c["ci"][1]
    assert c["pvalue"] < 1e-3 and strong.verdict.level == "nonclassical"
    weak = werner_run(tmp_path, 0.6)
    assert weak.nonclassicality["chsh"]["pvalue"] > 0.05 and weak.verdict.level != "nonclassical"
