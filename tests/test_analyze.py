"""`corrlab analyze` end to end: the results contract, the ladder on worlds with known truth."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corrlab.analysis.pipeline import analyze_dataset
from corrlab.errors import PlanError
from corrlab.daq.cli import cli
from corrlab.daq.runner import run_protocol
from corrlab.instruments.benchfile import bench_from_dict, load_bench
from corrlab.protocols.config import protocol_from_dict

LEVELS = ("none", "dependence", "protocol-specific", "nonclassical")


def protocol(trials=144, seed=5, **analysis):
    return protocol_from_dict({
        "protocol": {"name": "an", "seed": seed},
        "schedule": {"trials": trials, "block_size": 6, "trials_per_part": 24,
                     "conditions": {"main": 3, "control:break_L": 1, "control:perturb_C": 1, "control:couple_env": 1}},
        "acquisition": {"samples": 2000},
        "stabilize": {"reads": 1, "interval_s": 0.0},
        "analysis": {"n_resamples": 1999, **analysis},
    })


def bench(kind, **params):
    data = load_bench().to_json()
    data["world"] = {"kind": kind, "seed": None, "params": params}
    return bench_from_dict(data)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("worlds")
    out = {}
    for kind, params in (("common_cause", {"coupling": 2.0}), ("independent", {}), ("leak", {"leak_v": 1.5e-3})):
        run_protocol(protocol(), bench(kind, **params), root, run_id=kind)
        out[kind] = root / kind
    return out


def check_contract(d: dict) -> None:
    """The v1 results contract of DESIGN.md: required keys and types (extensions allowed)."""
    assert d["format"] == "corrlab-results" and d["format_version"] == 1
    assert set(d["dataset"]) >= {"run_id", "sha256"} and len(d["dataset"]["sha256"]) == 64
    assert isinstance(d["plan_sha256"], str) and 0 < d["alpha"] < 1
    for name, c in d["conditions"].items():
        assert name == "main" or name.startswith("control:")
        assert isinstance(c["n_trials"], int)
        assert set(c["mi"]) >= {"estimate", "ci", "method"} and len(c["mi"]["ci"]) == 2
        assert "pvalue" in c and "n_resamples" in c
    for c in d["controls"]:
        assert set(c) >= {"control", "mi_difference", "pvalue"} and set(c["mi_difference"]) >= {"estimate", "ci"}
    ns = d["no_signalling"]
    assert isinstance(ns["signalling_detected"], bool)
    for t in ns["tests"]:
        assert t["side"] in ("A", "B") and set(t) >= {"condition", "statistic", "pvalue", "test"}
    nc = d["nonclassicality"]
    assert nc["gaussian"] is None or set(nc["gaussian"]) >= {"log_negativity", "ci"}
    assert nc["chsh"] is None or set(nc["chsh"]) >= {"S", "se", "pvalue"}
    v = d["verdict"]
    assert v["level"] in LEVELS and isinstance(v["reasons"], list) and all(isinstance(r, str) for r in v["reasons"])
    for key in ("dependence", "protocol_specific", "signalling_detected", "nonclassical"):
        assert isinstance(v[key], bool)
    json.dumps(d, allow_nan=False)  # strict JSON: no NaN


def test_common_cause_reaches_protocol_specific_and_never_nonclassical(datasets, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["analyze", str(datasets["common_cause"]), "--json", str(tmp_path / "r.json"),
                              "--report", str(tmp_path / "r.html")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "r.json").read_text())
    check_contract(d)
    assert d["verdict"]["level"] == "protocol-specific"
    assert d["verdict"]["dependence"] and d["verdict"]["protocol_specific"] and not d["verdict"]["nonclassical"]
    assert {c["control"] for c in d["controls"]} == {"control:break_L", "control:perturb_C", "control:couple_env"}
    assert d["nonclassicality"]["gaussian"] is None  # no calibration: not applicable, never computed
    assert "no vacuum calibration" in d["nonclassicality"]["not_applicable"]["log_negativity"]
    assert "✔ 1 dependence" in res.output and "level: protocol-specific" in res.output
    html = (tmp_path / "r.html").read_text()
    assert html.count("<img src='data:image/png;base64,") >= 4 and "No-signalling" in html
    assert d["dataset"]["sha256"] == __import__("hashlib").sha256((datasets["common_cause"] / "manifest.json").read_bytes()).hexdigest()


def test_independent_world_reaches_no_rung(datasets):
    r = analyze_dataset(datasets["independent"])
    assert r.verdict.level == "none" and not r.verdict.dependence
    assert r.conditions["main"]["pvalue"] > 0.01


def test_leak_world_sets_signalling_and_caps_the_level(datasets):
    r = analyze_dataset(datasets["leak"])
    assert r.verdict.signalling_detected
    assert r.verdict.level in ("none", "dependence")
    flagged = [t for t in r.no_signalling["tests"] if t["pvalue_holm"] < 0.05]
    assert flagged and all(t["side"] == "B" for t in flagged)  # B's marginal moves with A's setting
    assert any("SIGNALLING DETECTED" in s for s in r.verdict.reasons)


def test_a_different_plan_needs_exploratory_and_says_so(datasets):
    with pytest.raises(PlanError, match="--exploratory"):
        analyze_dataset(datasets["common_cause"], plan={"statistic": "gaussian", "n_resamples": 499})
    r = analyze_dataset(datasets["common_cause"], plan={"statistic": "gaussian", "n_resamples": 499}, exploratory=True)
    assert r.exploratory and r.to_dict()["exploratory"] is True
    assert r.verdict.reasons[0].startswith("EXPLORATORY")
    from corrlab.dataset import Dataset

    recorded = Dataset.open(datasets["common_cause"]).plan
    assert not analyze_dataset(datasets["common_cause"], plan=recorded).exploratory  # the same plan, restated


def test_the_recorded_plan_is_protected_by_its_hash(datasets, tmp_path):
    import shutil

    from corrlab.errors import DatasetError

    copy = tmp_path / "copy"
    shutil.copytree(datasets["independent"], copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["protocol"]["analysis"]["alpha"] = 0.2  # edited after the data were seen
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="does not match its recorded plan_sha256"):
        analyze_dataset(copy)


def test_a_single_parquet_file_is_analysed_with_defaults(tmp_path):
    rng = np.random.default_rng(0)
    n_trials, n = 80, 50
    z = rng.standard_normal(n_trials)
    xa = (z[:, None] + rng.standard_normal((n_trials, n))).ravel()
    xb = (z[:, None] + rng.standard_normal((n_trials, n))).ravel()
    table = pa.table({"trial": np.repeat(np.arange(n_trials), n), "condition": ["main"] * (n_trials * n),
                      "x_a": xa, "x_b": xb})
    pq.write_table(table, tmp_path / "flat.parquet")
    r = analyze_dataset(tmp_path / "flat.parquet", plan={"n_resamples": 499})
    assert r.verdict.dependence and r.verdict.level == "dependence"  # no controls: rung 2 untestable
    assert not r.preregistered and any("no pre-registered plan" in s for s in r.verdict.reasons)
    assert r.nonclassicality["chsh"] is None  # settings default to 0: CHSH not applicable
    check_contract(r.to_dict())


def test_a_control_with_five_trials_is_reported_not_computed_for_ksg(tmp_path):
    from tests.synthetic import write_dataset

    path = write_dataset(tmp_path, "small", n_trials=30, seed=5,
                         plan={"n_resamples": 199, "statistic": "ksg", "estimators": ["ksg", "gaussian"]})
    res = analyze_dataset(path, interval_resamples=99)
    ctrl = res.conditions["control:break_L"]
    assert ctrl["n_trials"] == 5
    assert ctrl["estimators"]["ksg"]["estimate"] is None and "too few to subsample" in ctrl["estimators"]["ksg"]["method"]
    assert ctrl["estimators"]["gaussian"]["estimate"] is not None
    assert all(c["mi_difference"]["estimate"] is None for c in res.controls)
    assert any("not computed" in r for r in res.verdict.reasons)


def test_only_the_confirmatory_family_climbs_the_ladder(tmp_path):
    from tests.synthetic import write_dataset

    plan = {"n_resamples": 199, "estimators": ["gaussian_copula"]}
    strong = write_dataset(tmp_path, "strong", n_trials=60, coupling=2.0, seed=8, plan=plan)
    res = analyze_dataset(strong, interval_resamples=99)
    assert res.conditions["main"]["pvalue"] < 0.01 and res.verdict.dependence
    off = analyze_dataset(strong, plan={**plan, "confirmatory": ["controls", "no_signalling"]}, exploratory=True,
                          interval_resamples=99)
    assert off.conditions["main"]["pvalue"] < 0.01  # still computed and reported
    assert not off.verdict.dependence and off.verdict.level == "none"
