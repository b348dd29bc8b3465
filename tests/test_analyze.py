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
from corrlab.protocols.config import protocol_from_dict

from .conftest import world_bench as bench

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


# -- single files written by other software: split row groups, bad values, trials left out ----------------


def _flat(n_trials=40, n=50, seed=0, coupling=1.0):
    """A long-form table by hand (pyarrow only): per-trial common offsets make A and B dependent."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n_trials) * coupling
    trial = np.repeat(np.arange(n_trials), n)
    return {"trial": trial, "condition": np.where(trial % 4 == 3, "control:break_L", "main"),
            "setting_a": (trial % 2).astype(np.int8), "setting_b": ((trial // 2) % 2).astype(np.int8),
            "t": np.tile(np.arange(n) / 1e3, n_trials),
            "x_a": (z[:, None] + rng.standard_normal((n_trials, n))).ravel(),
            "x_b": (z[:, None] + rng.standard_normal((n_trials, n))).ravel()}


FLAT_PLAN = {"n_resamples": 199, "estimators": ["gaussian_copula"]}


def _rounded(x):
    """Floats to 9 significant digits: trial means are cumulative sums over each part read, so
    their last bits depend on where the parts start."""
    if isinstance(x, float):
        return float(f"{x:.9g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def _results_without_identity(res) -> dict:
    d = res.to_dict()
    d.pop("dataset")
    return _rounded(d)


def test_a_file_whose_row_groups_split_trials_is_analysed_as_the_same_data_in_one_group(tmp_path):
    table = pa.table(_flat())
    pq.write_table(table, tmp_path / "one.parquet")  # one row group
    pq.write_table(table, tmp_path / "cut.parquet", row_group_size=333)  # 50-sample trials cut at every 333 rows
    assert pq.ParquetFile(tmp_path / "cut.parquet").num_row_groups == 7
    one = analyze_dataset(tmp_path / "one.parquet", plan=FLAT_PLAN, interval_resamples=99)
    cut = analyze_dataset(tmp_path / "cut.parquet", plan=FLAT_PLAN, interval_resamples=99)
    assert cut.conditions["main"]["n_trials"] == 30 and cut.verdict.dependence
    assert _results_without_identity(cut) == _results_without_identity(one)
    assert cut.to_dict()["missing_trials"] == {} and cut.to_dict()["excluded_trials"] == {}


def test_nan_in_three_trials_names_the_column_and_the_trials_in_one_line(tmp_path):
    cols = _flat()
    for trial, k in ((7, 3), (9, 0), (12, 49)):
        cols["x_a"][trial * 50 + k] = np.nan if trial != 9 else np.inf
    pq.write_table(pa.table(cols), tmp_path / "nan.parquet", row_group_size=100)
    expected = ("x_a: non-finite value in trial 7 (and 2 more trials: 9, 12); exclude them with "
                "--exclude-trials 7,9,12 (the analysis is then exploratory)")
    from corrlab.errors import DatasetError

    with pytest.raises(DatasetError) as info:
        analyze_dataset(tmp_path / "nan.parquet", plan=FLAT_PLAN)
    assert str(info.value) == expected
    res = CliRunner().invoke(cli, ["analyze", str(tmp_path / "nan.parquet")])
    assert res.exit_code == 2 and res.output.strip() == f"corrlab: error: {expected}"


def test_one_arm_null_for_a_whole_trial_is_named_as_such(tmp_path):
    cols = _flat()
    xb = pa.array(cols["x_b"], mask=cols["trial"] == 5)  # side B not recorded in trial 5
    cols["x_a"][21 * 50 + 10] = np.nan
    table = pa.table({**cols, "x_b": xb})
    pq.write_table(table, tmp_path / "null.parquet", row_group_size=64)
    from corrlab.errors import DatasetError

    with pytest.raises(DatasetError, match=r"^x_a: non-finite value in trial 21; x_b: null for the whole of trial 5 "
                                           r"\(that arm was not recorded\); exclude them with --exclude-trials 5,21 "):
        analyze_dataset(tmp_path / "null.parquet", plan=FLAT_PLAN)
    res = analyze_dataset(tmp_path / "null.parquet", plan=FLAT_PLAN, exclude_trials="5,21", interval_resamples=99)
    assert res.exploratory and res.to_dict()["excluded_trials"] == {"null": [5, 21]}


def test_excluded_trials_are_left_out_recorded_and_make_the_analysis_exploratory(tmp_path):
    cols = _flat()
    bad = (7, 8, 9, 12)
    for trial in bad:
        cols["x_b"][trial * 50 + 1] = np.nan
    pq.write_table(pa.table(cols), tmp_path / "run.parquet", row_group_size=128)
    res = analyze_dataset(tmp_path / "run.parquet", plan=FLAT_PLAN, exclude_trials="7-9,12", interval_resamples=99)
    d = res.to_dict()
    assert d["exploratory"] is True and d["excluded_trials"] == {"run": [7, 8, 9, 12]} and d["missing_trials"] == {}
    assert res.conditions["main"]["n_trials"] + res.conditions["control:break_L"]["n_trials"] == 36
    assert res.verdict.reasons[1].startswith("EXPLORATORY: 4 trial(s) of run excluded by hand (7-9,12, exclude_trials)")
    # the same as the file without those trials, written by hand; there, their ids are missing
    keep = ~np.isin(cols["trial"], bad)
    pq.write_table(pa.table({k: v[keep] for k, v in cols.items()}), tmp_path / "run.parquet")
    trimmed = analyze_dataset(tmp_path / "run.parquet", plan=FLAT_PLAN, interval_resamples=99)
    t = trimmed.to_dict()
    assert t["missing_trials"] == {"run": [[7, 9], [12, 12]]} and not t["exploratory"]
    assert any(r.startswith("4 trial id(s) missing from run between its first and last (7-9,12)")
               for r in trimmed.verdict.reasons)
    for key in ("conditions", "controls", "no_signalling", "nonclassicality"):
        assert _rounded(d[key]) == _rounded(t[key])


def test_an_excluded_trial_that_is_not_there_is_named(tmp_path):
    pq.write_table(pa.table(_flat()), tmp_path / "f.parquet")
    with pytest.raises(PlanError, match=r"^exclude_trials: trials 40,77 are not in the dataset \(it holds 40 trials, "
                                        r"ids 0 to 39\)$"):
        analyze_dataset(tmp_path / "f.parquet", plan=FLAT_PLAN, exclude_trials="3,40,77")
    with pytest.raises(PlanError, match=r"exclude_trials: 'x' is not a trial id"):
        analyze_dataset(tmp_path / "f.parquet", plan=FLAT_PLAN, exclude_trials="3,x")


def test_cli_exclude_trials_lists_and_ranges_into_the_json(tmp_path):
    cols = _flat()
    cols["x_a"][3 * 50] = np.nan
    pq.write_table(pa.table(cols), tmp_path / "c.parquet")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["analyze", str(tmp_path / "c.parquet"), "--exclude-trials", "3,10-11",
                                   "--exclude-trials", "20", "--json", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    check_contract(d)
    assert d["excluded_trials"] == {"c": [3, 10, 11, 20]} and d["exploratory"] is True
    assert "EXPLORATORY" in res.output and "excluded by hand" in res.output
    res = CliRunner().invoke(cli, ["analyze", str(tmp_path / "c.parquet"), "--exclude-trials", "c=3",
                                   "--exclude-trials", "5"])
    assert res.exit_code == 2 and "name the dataset of every value" in res.output
