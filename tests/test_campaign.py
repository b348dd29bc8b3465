"""Campaigns: the queue goes on past a failed run, waits for its start, and resumes after a crash."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from click.testing import CliRunner

from corrlab.errors import PlanError
from corrlab.daq.campaign import Campaign, execute, next_start
from corrlab.daq.cli import cli
from corrlab.daq.cli.campaign import verdict_level
from corrlab.dataset import Dataset

BENCH_OK = """
name = "sim"
simulated = true
[world]
kind = "independent"
[reconnect]
attempts = 1
backoff_s = 0.01
[roles.readout_a]
driver = "SR830"
[roles.readout_b]
driver = "SR830"
[roles.drive]
driver = "Agilent33500"
[roles.thermal]
driver = "LakeShore336"
[roles.stage]
driver = "ESP300"
[roles.isolation]
driver = "Keithley2750"
[roles.digitizer]
driver = "FastDigitizer"
"""

# the second run's thermal controller refuses every connection: that run fails at start
BENCH_BROKEN = BENCH_OK + """
[faults.thermal]
refuse_connections = 1000
"""


def write_campaign(tmp_path, demo_protocol, *, analyze=False, start_at=None):
    demo_protocol("p.toml", trials=6, samples=64)
    (tmp_path / "ok.toml").write_text(BENCH_OK)
    (tmp_path / "broken.toml").write_text(BENCH_BROKEN)
    head = f'[campaign]\nname = "night"\nout = "data"\nbench = "ok.toml"\nanalyze = {str(analyze).lower()}\n'
    if start_at:
        head += f'start_at = "{start_at}"\n'
    runs = ('[[runs]]\nprotocol = "p.toml"\n\n[[runs]]\nprotocol = "p.toml"\nbench = "broken.toml"\n\n'
            '[[runs]]\nprotocol = "p.toml"\n')
    path = tmp_path / "night.toml"
    path.write_text(head + "\n" + runs)
    return path


def test_a_failed_run_does_not_stop_the_queue_and_status_says_why(tmp_path, demo_protocol):
    path = write_campaign(tmp_path, demo_protocol, analyze=True)
    with pytest.raises(PlanError, match="asks for analysis"):  # acquisition does not import the analysis
        execute(Campaign.load(path))
    state = execute(Campaign.load(path), analyze=verdict_level)
    statuses = [e["status"] for e in state["queue"]]
    assert statuses == ["complete", "failed", "complete"]
    # analysed on completion by the recorded plan (the independent world: no rung reached)
    assert [e["verdict"] for e in state["queue"]] == ["none", None, "none"]
    failed = state["queue"][1]
    assert failed["reason"].startswith("thermal: not reachable after 2 attempt(s)")
    for e in (state["queue"][0], state["queue"][2]):
        ds = Dataset.open(tmp_path / "data" / e["run_id"])
        assert ds.status == "complete" and ds.verify().ok and e["trials_committed"] == 6
    log = (tmp_path / "data/campaign.log").read_text()
    assert "run 1: FAILED: thermal: not reachable" in log and "campaign finished" in log
    res = CliRunner().invoke(cli, ["campaign", "status", str(path)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "failed" in res.output and "thermal: not reachable" in res.output and "6/6" in res.output
    with pytest.raises(PlanError, match="has already started"):
        execute(Campaign.load(path))
    # a bench file broken since the night: the morning report still reads the state
    (tmp_path / "ok.toml").write_text("[roles\n")
    with pytest.raises(PlanError, match="ok.toml"):
        Campaign.load(path)
    res = CliRunner().invoke(cli, ["campaign", "status", str(path)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "thermal: not reachable" in res.output


def test_resume_after_a_crash_continues_the_interrupted_run(tmp_path, demo_protocol):
    path = write_campaign(tmp_path, demo_protocol)
    camp = Campaign.load(path)
    # a crash (power cut) in the first run: its dataset is left 'running' with 2 trials committed
    state = execute(camp)
    first = tmp_path / "data" / state["queue"][0]["run_id"]
    m = json.loads((first / "manifest.json").read_text())
    m["status"], m["parts"], m["trials_committed"] = "running", m["parts"][:0], 0
    (first / "manifest.json").write_text(json.dumps(m))
    state["queue"][0]["status"] = "running"
    state["queue"][2]["status"] = "pending"
    camp.write_state(state)
    (tmp_path / "data" / state["queue"][2]["run_id"]).rename(tmp_path / "data/old-third")
    state = execute(camp, resume=True)
    assert [e["status"] for e in state["queue"]] == ["complete", "failed", "complete"]
    ds = Dataset.open(first)
    assert ds.status == "complete" and ds.manifest.get("resumes") and len(ds.trials()) == 6


def test_the_start_waits_for_the_clock(tmp_path, demo_protocol):
    path = write_campaign(tmp_path, demo_protocol)
    clock = [dt.datetime(2026, 11, 23, 21, 59, 57).astimezone()]
    slept = []

    def sleep(s):
        slept.append(s)
        clock[0] += dt.timedelta(seconds=s)

    state = execute(Campaign.load(path), at="22:00", sleep=sleep, now=lambda: clock[0])
    assert sum(slept) == pytest.approx(3.0) and state["queue"][0]["status"] == "complete"
    assert next_start("07:30", dt.datetime(2026, 11, 23, 8, 0)) == dt.datetime(2026, 11, 24, 7, 30)
    res = CliRunner().invoke(cli, ["campaign", "run", str(path), "--at", "25:00"])
    assert res.exit_code == 2 and "not a time of day" in res.output


def test_bad_campaign_files(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[campaign]\nname = "x"\n')
    with pytest.raises(PlanError, match="runs: Field required"):
        Campaign.load(f)
    f.write_text('[campaign]\nname = "../x"\n[[runs]]\nprotocol = "p.toml"\n')
    with pytest.raises(PlanError, match="campaign.name"):
        Campaign.load(f)


@pytest.mark.parametrize(
    "fifth, bench_text, needles",
    [
        # the fifth entry's protocol file does not exist
        ('protocol = "pp.toml"', None, ["pp.toml does not exist"]),
        # its bench file has a typo
        ('protocol = "p.toml"\nbench = "typo.toml"', BENCH_OK.replace("backoff_s", "backof_s"),
         ["typo.toml", "reconnect.backof_s: unknown field"]),
        # its protocol's analysis plan has a typo
        ('protocol = "bad-plan.toml"', None, ["bad-plan.toml", "[analysis]", "alpah: unknown field"]),
    ],
)
def test_every_entry_is_checked_when_the_campaign_is_loaded(tmp_path, demo_protocol, fifth, bench_text, needles):
    demo_protocol("p.toml", trials=6, samples=64)
    text = (tmp_path / "p.toml").read_text()
    (tmp_path / "bad-plan.toml").write_text(text.replace("\nalpha = 0.05", "\nalpah = 0.05", 1))
    (tmp_path / "ok.toml").write_text(BENCH_OK)
    if bench_text:
        (tmp_path / "typo.toml").write_text(bench_text)
    runs = '[[runs]]\nprotocol = "p.toml"\nrepeat = 2\n\n' * 2 + f"[[runs]]\n{fifth}\n"
    path = tmp_path / "night.toml"
    path.write_text('[campaign]\nname = "night"\nout = "data"\nbench = "ok.toml"\nanalyze = false\n\n' + runs)
    with pytest.raises(PlanError) as err:
        Campaign.load(path)
    msg = str(err.value)
    assert "\n" not in msg, msg
    assert "run 4 (night-004-" in msg and "night.toml" in msg, msg  # the entry: queue index and run id
    for needle in needles:
        assert needle in msg, msg
    assert not (tmp_path / "data").exists()  # nothing ran, nothing was written


def test_the_morning_summary_names_a_role_not_confirmed_safe(tmp_path, demo_protocol):
    """A run whose heater range never reads back: the state, the log, the status table and the
    exit status of `campaign run` all say thermal was not confirmed safe."""
    demo_protocol("p.toml", trials=6, samples=64)
    (tmp_path / "ok.toml").write_text(BENCH_OK)
    (tmp_path / "unsafe.toml").write_text(BENCH_OK + '\n[faults.thermal]\ngarble_pattern = "RANGE\\\\?"\n')
    path = tmp_path / "night.toml"
    path.write_text('[campaign]\nname = "night"\nout = "data"\nbench = "ok.toml"\nanalyze = false\n\n'
                    '[[runs]]\nprotocol = "p.toml"\nbench = "unsafe.toml"\n\n[[runs]]\nprotocol = "p.toml"\n')
    res = CliRunner().invoke(cli, ["campaign", "run", str(path)], env={"COLUMNS": "250"})
    assert res.exit_code == 5, res.output
    state = json.loads((tmp_path / "data/campaign-state.json").read_text())
    first, second = state["queue"]
    assert first["status"] == second["status"] == "complete"
    assert list(first["safe_state"]["not_confirmed"]) == ["thermal"] and "thermal" not in first["safe_state"]["confirmed"]
    assert second["safe_state"]["not_confirmed"] == {} and len(second["safe_state"]["confirmed"]) == 7
    assert "run 0: thermal NOT CONFIRMED SAFE" in (tmp_path / "data/campaign.log").read_text()
    res = CliRunner().invoke(cli, ["campaign", "status", str(path)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "NOT SAFE: thermal" in res.output and "run 0: thermal NOT CONFIRMED SAFE" in res.output
    assert res.output.count("NOT SAFE") == 1  # the second run: ok


def test_an_outage_ridden_out_overnight_is_in_the_morning_summary(tmp_path, demo_protocol):
    """The thermal controller freezes for 1.5 s (its timeout: 0.3 s) in a run, tolerance 5 s: the run completes,
    the campaign state keeps the outage and the status table counts and describes it."""
    demo_protocol("p.toml", trials=6, samples=64)
    bench = BENCH_OK.replace("backoff_s = 0.01", "backoff_s = 0.01\nmax_backoff_s = 0.1\noutage_tolerance_s = 5.0")
    (tmp_path / "ok.toml").write_text(re.sub(r'(?m)^(driver = ".*")$', r"\1\ntimeout_ms = 300", bench))
    path = tmp_path / "night.toml"
    path.write_text('[campaign]\nname = "night"\nout = "data"\nbench = "ok.toml"\nanalyze = false\n\n'
                    '[[runs]]\nprotocol = "p.toml"\n')
    fired = []

    def freeze_thermal_at_trial_2(sim):
        begin = sim.world.begin_record

        def hooked(tag):
            begin(tag)
            if tag == 2 and not fired:
                fired.append(tag)
                sim.servers["thermal"].faults.freeze(1.5)

        sim.world.begin_record = hooked

    state = execute(Campaign.load(path), sim_hook=freeze_thermal_at_trial_2)
    entry = state["queue"][0]
    assert entry["status"] == "complete" and entry["trials_committed"] == 6
    assert len(entry["outages"]) == 1
    outage = entry["outages"][0]
    assert outage["roles"] == ["thermal"] and outage["outcome"] == "end" and 0 < outage["duration_s"] < 5
    assert entry["safe_state"]["not_confirmed"] == {}
    res = CliRunner().invoke(cli, ["campaign", "status", str(path)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "run 0 outage: thermal away" in res.output and "(end)" in res.output
