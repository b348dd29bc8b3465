"""The stopping rule on the simulated bench (issue 17): a protocol stops once its evidence is
decided on a strong world and runs to its maximum on a null one; the manifest says why; the
analysis of the dataset finds the same e-values the runner acted on; a resume replays the
committed trials; a continued run multiplies the earlier run's e-values."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from corrlab.daq.cli import cli
from corrlab.daq.evidence import RunEvidence, prior_from
from corrlab.daq.runner import run_protocol
from corrlab.errors import CorrlabError, DatasetError
from corrlab.protocols.config import protocol_from_dict

from .conftest import world_bench as bench


def stopping_protocol(trials, *, seed=3, stopping=True, analysis=None):
    data = {
        "protocol": {"name": "stop", "seed": seed},
        "schedule": {"trials": trials, "block_size": 4, "trials_per_part": 8,
                     "conditions": {"main": 3, "control:perturb_C": 1}},
        "acquisition": {"samples": 16, "sample_rate_hz": 10000.0},
        "stabilize": {"reads": 1, "interval_s": 0.0},
        "analysis": {"n_resamples": 199, "estimators": ["gaussian_copula"], **(analysis or {})},
    }
    if stopping:
        data["stopping"] = {"decide": ["dependence", "controls"]}
    return protocol_from_dict(data)


@pytest.fixture(scope="module")
def strong_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("anytime")
    result = run_protocol(stopping_protocol(200), bench("common_cause", coupling=4.0), out, run_id="strong")
    return result, out


def test_strong_world_stops_when_decided_and_the_analysis_agrees(strong_run):
    result, out = strong_run
    assert result.status == "complete" and result.stopped == "decided"
    assert result.trials_committed < 200 and result.trials_committed % 8 == 0  # checked after each part
    m = json.loads((out / "strong" / "manifest.json").read_text())
    rec = m["anytime"]
    assert rec["stopped"] == "decided" and rec["trials_committed"] == result.trials_committed
    assert rec["rule"]["hypotheses"] == ["dependence", "controls:control:perturb_C"]
    ev = rec["evidence"]
    assert ev["dependence"]["decided"] and ev["controls:control:perturb_C"]["decided"]
    # the stop came at the first part boundary after both crossed (adjusted), not later
    crossed = max(ev["dependence"]["crossed_at_adjusted"], ev["controls:control:perturb_C"]["crossed_at_adjusted"])
    assert crossed <= rec["stopped_after_trial"] < crossed + 8
    events = [json.loads(x) for x in (out / "strong" / "events.jsonl").read_text().splitlines()]
    assert any(e["step"] == "stopping" and e["outcome"] == "decided" for e in events)
    # corrlab analyze reports the anytime section: the same e-values the runner acted on
    json_file = out / "strong.results.json"
    report = out / "strong.report.html"
    r = CliRunner().invoke(cli, ["analyze", str(out / "strong"), "--json", str(json_file), "--report", str(report)])
    assert r.exit_code == 0, r.output
    assert "evidence side by side" in r.output and "decided after trial" in r.output
    page = report.read_text()
    assert "Anytime evidence (e-values)" in page and "controls:control:perturb_C" in page
    res = json.loads(json_file.read_text())
    section = res["anytime"]
    assert section["monitoring"]["stopped"] == "decided"
    for key, v in ev.items():
        assert section["hypotheses"][key]["e_value"] == pytest.approx(v["e_value"], rel=1e-9)
        assert section["hypotheses"][key]["crossed_at_adjusted"] == v["crossed_at_adjusted"]
    dep = section["hypotheses"]["dependence"]
    assert dep["pvalue_anytime"] == pytest.approx(min(1.0, 1.0 / dep["sup_e"]))
    assert dep["null"] and dep["assumes"]
    last_trial, last_e = dep["trajectory"][-1]
    assert last_trial <= rec["stopped_after_trial"] and last_e == pytest.approx(dep["e_value"])


def test_a_resume_replays_and_a_continued_run_multiplies(strong_run):
    result, out = strong_run
    path = out / "strong"
    m = json.loads((path / "manifest.json").read_text())
    protocol = protocol_from_dict(m["protocol"])
    ev = RunEvidence(protocol)
    assert ev.replay(path) == result.trials_committed
    for key, v in m["anytime"]["evidence"].items():
        assert ev.monitor.snapshot()["hypotheses"][key]["e_value"] == pytest.approx(v["e_value"], rel=1e-9)
    prior, ids = prior_from([path, path], protocol)  # two runs' evidence multiplies
    assert ids == ["strong", "strong"]
    for key, v in m["anytime"]["evidence"].items():
        assert prior[key] == pytest.approx(v["e_value"] ** 2, rel=1e-9)
    other = stopping_protocol(200, analysis={"alpha": 0.01})
    with pytest.raises(DatasetError, match="another analysis plan"):
        prior_from([path], other)


def test_null_world_runs_to_the_maximum(tmp_path):
    result = run_protocol(stopping_protocol(96, seed=5), bench("independent"), tmp_path, run_id="null")
    assert result.status == "complete" and result.trials_committed == 96 and result.stopped == "max_trials"
    m = json.loads((tmp_path / "null" / "manifest.json").read_text())
    assert m["anytime"]["stopped"] == "max_trials"
    assert not m["anytime"]["evidence"]["controls:control:perturb_C"]["decided"]


def test_stopping_section_is_validated_and_absent_by_default():
    p = stopping_protocol(8, stopping=False)
    assert "stopping" not in p.to_json()  # protocols without the rule hash as before
    with pytest.raises(CorrlabError, match="no control condition"):
        protocol_from_dict({"protocol": {"name": "x", "seed": 1},
                            "schedule": {"trials": 4, "block_size": 1, "conditions": {"main": 1}},
                            "stopping": {"decide": ["controls"]}})
    with pytest.raises(CorrlabError, match="not in the plan's confirmatory family"):
        stopping_protocol(8, analysis={"confirmatory": ["dependence"]})
    with pytest.raises(CorrlabError, match="decide"):
        protocol_from_dict({**stopping_protocol(8).to_json(), "stopping": {"decide": ["dependence", "dependence"]}})


def test_a_second_run_continues_the_evidence(strong_run, tmp_path):
    _, out = strong_run
    first = json.loads((out / "strong" / "manifest.json").read_text())["anytime"]["evidence"]
    result = run_protocol(stopping_protocol(200), bench("common_cause", coupling=4.0), tmp_path, run_id="second",
                          continue_from=[out / "strong"])
    rec = json.loads((tmp_path / "second" / "manifest.json").read_text())["anytime"]
    assert rec["prior_runs"] == ["strong"]
    assert rec["prior"]["dependence"] == pytest.approx(first["dependence"]["e_value"], rel=1e-9)
    # already decided by the first run's evidence: the second stops at its first check
    assert result.stopped == "decided" and result.trials_committed == 8
    alone = RunEvidence(stopping_protocol(200))
    alone.replay(tmp_path / "second")
    own = alone.monitor.snapshot()["hypotheses"]
    for key in ("dependence", "controls:control:perturb_C", "chsh"):
        assert rec["evidence"][key]["e_value"] == pytest.approx(first[key]["e_value"] * own[key]["e_value"], rel=1e-9)
    # pooled in one analysis the two runs' evidence multiplies (each run's own, the recorded prior ignored)
    from corrlab.analysis.anytime import anytime_section
    from corrlab.analysis.multi import pool_trials
    from corrlab.analysis.pipeline import read_dataset

    data, runs, ctx = pool_trials([read_dataset(out / "strong"), read_dataset(tmp_path / "second")])
    pooled = anytime_section(data, ctx, runs=runs, schedule=ctx.schedule, record=ctx.anytime_record)
    assert len(pooled["runs"]) == 2 and "monitoring" not in pooled
    for key in ("dependence", "controls:control:perturb_C", "no_signalling:A:main"):
        assert pooled["hypotheses"][key]["e_value"] == pytest.approx(
            first[key]["e_value"] * own[key]["e_value"], rel=1e-9)
