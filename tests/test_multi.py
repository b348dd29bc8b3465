"""Many datasets: expansion, pooling with runs as blocks, Fisher combination, Dask scale-out."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from scipy.stats import combine_pvalues

from corrlab.analysis.multi import analyze_many, expand_datasets
from corrlab.analysis.pipeline import analyze_dataset
from corrlab.errors import DatasetError
from corrlab.daq.cli import cli
from tests.synthetic import write_dataset

PLAN = {"n_resamples": 199, "estimators": ["gaussian_copula"], "seed": 3}
FAST = {"interval_resamples": 99}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs under one plan, each with a weak dependence in main."""
    root = tmp_path_factory.mktemp("runs")
    for i in range(3):
        write_dataset(root, f"run{i}", n_trials=60, coupling=0.6, seed=10 + i, plan=PLAN)
    return root


def test_expand_folders_globs_and_errors(runs, tmp_path):
    assert [p.name for p in expand_datasets([runs])] == ["run0", "run1", "run2"]
    assert [p.name for p in expand_datasets([str(runs / "run[02]"), runs / "run0"])] == ["run0", "run2"]
    with pytest.raises(DatasetError, match="no dataset matches"):
        expand_datasets([str(tmp_path / "nothing*")])
    with pytest.raises(DatasetError, match="holds no dataset folders"):
        expand_datasets([tmp_path])


def test_pooled_runs_gain_power_and_count_every_trial(runs):
    many = analyze_many(expand_datasets([runs]), **FAST)
    assert many.mode == "pooled"
    assert [r["run_id"] for r in many.datasets] == ["run0", "run1", "run2"]
    pooled = many.pooled.to_dict()
    assert pooled["conditions"]["main"]["n_trials"] == sum(r["n_trials"] for r in many.datasets) == 90
    # 90 trials pooled detect the dependence at least as surely as the best run alone
    assert pooled["conditions"]["main"]["pvalue"] <= min(r["p_dependence"] for r in many.datasets)
    assert pooled["conditions"]["main"]["pvalue"] < 0.05
    assert "re-pairing" in pooled["conditions"]["main"]["test"] and "within each of 3 blocks" in \
        pooled["conditions"]["main"]["test"]
    # each run's own results equal a single-dataset analysis of it
    single = analyze_dataset(runs / "run1", **FAST).to_dict()
    assert many.results[1] == json.loads(json.dumps(single))


def test_runs_are_blocks_a_run_offset_is_not_dependence(tmp_path):
    # Two runs with no dependence inside either, but both sides shifted in the second run:
    # re-pairing across runs would call the shift a dependence; within runs it is not one.
    write_dataset(tmp_path, "a", n_trials=60, offset=0.0, seed=1, plan=PLAN)
    write_dataset(tmp_path, "b", n_trials=60, offset=3.0, seed=2, plan=PLAN)
    many = analyze_many(expand_datasets([tmp_path]), **FAST)
    main_ = many.pooled.to_dict()["conditions"]["main"]
    assert main_["pvalue"] > 0.05
    assert main_["mi"]["estimate"] > 0.2  # the pooled MI is large: the shift is in the pooled data
    from corrlab.analysis.pipeline import analyze_trials, read_dataset
    from corrlab.analysis.multi import pool_trials

    data, runs_, ctx = pool_trials([read_dataset(tmp_path / r) for r in ("a", "b")])
    naive = analyze_trials(data, ctx, runs=None, **FAST)  # re-pairing across runs: fooled
    assert naive.conditions["main"]["pvalue"] < 0.01


def test_different_plans_are_combined_by_fisher(tmp_path):
    for i in range(3):
        write_dataset(tmp_path, f"r{i}", n_trials=36, coupling=0.3, seed=20 + i, plan={**PLAN, "seed": i})
    many = analyze_many(expand_datasets([tmp_path]), **FAST)
    assert many.mode == "combined" and many.pooled is None
    dep = next(t for t in many.combined["tests"] if t["test"] == "dependence")
    ps = [r["conditions"]["main"]["pvalue"] for r in many.results]
    assert dep["pvalue"] == pytest.approx(combine_pvalues(ps, method="fisher").pvalue, rel=1e-12)
    assert dep["n_runs"] == 3 and "Fisher" in many.combined["method"]


def test_cli_many_datasets_table_csv_json_and_report(runs, tmp_path):
    out, table, report = tmp_path / "r.json", tmp_path / "t.csv", tmp_path / "r.html"
    res = CliRunner().invoke(cli, ["analyze", str(runs / "run*"), "--json", str(out), "--csv", str(table),
                                    "--report", str(report), "--resamples", "199"])
    assert res.exit_code == 0, res.output
    assert "run1" in res.output and "pooled" in res.output
    rows = list(csv.DictReader(table.open()))
    assert [r["run_id"] for r in rows] == ["run0", "run1", "run2", "pooled: 3 runs"]
    assert json.loads(out.read_text())["mode"] == "pooled"
    assert "<img" in report.read_text()


def test_cli_missing_dataset_is_one_line(tmp_path):
    res = CliRunner().invoke(cli, ["analyze", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert "no such dataset" in res.output and len(res.output.strip().splitlines()) == 1


def test_dask_local_cluster_gives_the_single_process_result(runs, tmp_path):
    pytest.importorskip("dask.distributed")
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    args = ["analyze", str(runs), "--resamples", "199"]
    r1 = CliRunner().invoke(cli, args + ["--json", str(one)])
    r2 = CliRunner().invoke(cli, args + ["--json", str(two), "--workers", "2"])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    assert json.loads(one.read_text()) == json.loads(two.read_text())


def test_one_dataset_spreads_its_resampling_tasks_with_the_same_result(runs, tmp_path):
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client

    from corrlab.analysis.multi import local_cluster

    local = analyze_dataset(runs / "run0", **FAST).to_dict()
    with local_cluster(2) as cluster, Client(cluster) as client:
        spread = analyze_dataset(runs / "run0", client=client, **FAST).to_dict()
        pooled = analyze_many(expand_datasets([runs]), client=client, **FAST).to_dict()
    assert spread == local
    assert pooled == analyze_many(expand_datasets([runs]), **FAST).to_dict()


def test_unreachable_scheduler_is_one_line(runs):
    pytest.importorskip("dask.distributed")
    res = CliRunner().invoke(cli, ["analyze", str(runs / "run0"), "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_trials_excluded_from_one_run_are_named_per_run_and_make_the_pool_exploratory(runs, tmp_path):
    from corrlab.errors import PlanError

    paths = expand_datasets([runs])
    many = analyze_many(paths, exclude_trials={"run1": "0-3,10"}, **FAST)
    assert [r["excluded_trials"] for r in many.results] == [{}, {"run1": [0, 1, 2, 3, 10]}, {}]
    assert [r["exploratory"] for r in many.results] == [False, True, False]
    pooled = many.pooled.to_dict()
    assert pooled["exploratory"] and pooled["excluded_trials"] == {"run1": [0, 1, 2, 3, 10]}
    n_main = analyze_dataset(runs / "run1", exclude_trials=[0, 1, 2, 3, 10], **FAST).conditions["main"]["n_trials"]
    assert pooled["conditions"]["main"]["n_trials"] == 60 + n_main
    with pytest.raises(PlanError, match=r"trial ids belong to one dataset; with several, name the dataset of each"):
        analyze_many(paths, exclude_trials="3", **FAST)
    with pytest.raises(PlanError, match=r"exclude_trials: 'run9' names none of the datasets \(run0, run1, run2\)"):
        analyze_many(paths, exclude_trials={"run9": "3"}, **FAST)
    with pytest.raises(PlanError, match=r"run2: exclude_trials: trial 999 is not in the dataset"):
        analyze_many(paths, exclude_trials={"run2": "999"}, **FAST)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["analyze", str(runs / "run*"), "--exclude-trials", "run0=5",
                                   "--exclude-trials", "run2=7-8", "--no-pool", "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert [r["excluded_trials"] for r in d["results"]] == [{"run0": [5]}, {}, {"run2": [7, 8]}]
