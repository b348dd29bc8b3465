"""The live view: `corrlab run --live` in a real headless Chromium, the view's numbers against an
independent reference, a view that dies mid-run, `corrlab watch` on a dataset and a campaign,
and the server's refusals (loopback only, Host/Origin, read-only)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from corrlab.dataset import Dataset
from corrlab.daq.live import Hub, LiveObserver, LiveServer, LiveView, Observers, watch_target
from corrlab.daq.runner import Observer, run_protocol
from corrlab.instruments.benchfile import bench_from_dict, load_bench
from corrlab.protocols.config import load_protocol

from .conftest import demo_variant

CORRLAB = [sys.executable, "-m", "corrlab.daq.cli"]
FAULT_BENCH = """\
name = "simulated bench, the stage drops its connection mid-run"
simulated = true
visa_library = "@py"
[world]
kind = "common_cause"
[reconnect]
attempts = 3
backoff_s = 0.01
max_backoff_s = 0.1
outage_tolerance_s = 5.0
[faults.stage]
drop_after_commands = 80    # during trial 9 of the protocol below
drop_reset = true
"""


def _fault_bench(tmp_path: Path) -> Path:
    text = (Path(__file__).resolve().parents[1] / "instruments/simulated.toml").read_text()
    roles = text[text.index("[roles.readout_a]"):]
    path = tmp_path / "bench.toml"
    path.write_text(FAULT_BENCH + roles)
    return path


def reference_stats(path: Path) -> dict:
    """Per condition, from the dataset on disk with pandas: n, means, variances (ddof 1) and
    the Pearson correlation of the per-trial means of x_a and x_b."""
    ds = Dataset.open(path)
    data = ds.read(["trial", "condition", "x_a", "x_b"]).to_pandas()
    per_trial = data.groupby("trial", observed=True).agg(condition=("condition", "first"), a=("x_a", "mean"), b=("x_b", "mean"))
    out = {}
    for cond, g in per_trial.groupby("condition", observed=True):
        out[str(cond)] = {"n": len(g), "mean_a": g.a.mean(), "mean_b": g.b.mean(), "var_a": g.a.var(ddof=1),
                          "var_b": g.b.var(ddof=1), "r": float(np.corrcoef(g.a, g.b)[0, 1])}
    return out


def check_stats(shown: dict, ref: dict) -> None:
    assert set(shown) == set(ref)
    for cond, r in ref.items():
        s = shown[cond]
        assert s["n"] == r["n"], cond
        for key in ("mean_a", "mean_b", "var_a", "var_b"):
            assert s[key] == pytest.approx(r[key], rel=1e-4, abs=1e-12), (cond, key)
        if r["n"] < 3:  # two points always line up: no correlation is shown
            assert s["r"] is None, cond
        else:
            assert s["r"] == pytest.approx(r["r"], abs=1e-3), cond


def state_of(url: str) -> dict:
    with urllib.request.urlopen(url + "state", timeout=5) as resp:
        return json.loads(resp.read())


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def small_protocol(tmp_path: Path, **values):
    return load_protocol(demo_variant(tmp_path / "small.toml", **{"trials": 12, "samples": 200, "interval_s": 0.0,
                                                                "settle_s": 0.0, **values}))


# ============================================================================ the browser


def _browser():
    """A headless Chromium driven by playwright (Debian's chromium; no browser download). When
    it cannot start: a failure under CI (CI set), a skip elsewhere."""
    why = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        why = f"the playwright client is not installed ({exc})"
    exe = os.environ.get("CORRLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if why is None and exe is None:
        why = "no chromium on PATH (apt-get install chromium)"
    if why is None:
        pw = sync_playwright().start()
        try:
            return pw, pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        except Exception as exc:
            pw.stop()
            why = f"chromium ({exe}) did not start: {str(exc).splitlines()[0]}"
    if os.environ.get("CI"):
        pytest.fail(f"the browser test cannot run in CI: {why}")
    pytest.skip(why)


def test_a_live_run_in_chromium_shows_traces_the_counter_advancing_and_the_injected_fault(tmp_path):
    """`corrlab run --live --live-control` in headless Chromium at a phone's width: traces, the
    counter advancing, the fault injected at trial 9 in the journal; then the page's stop button
    ends the run after a trial, through the safe state (interrupted, resumable, verified)."""
    proto = demo_variant(tmp_path / "p.toml", trials=36, samples=400, interval_s=0.04)
    bench = _fault_bench(tmp_path)
    proc = subprocess.Popen([*CORRLAB, "run", str(proto), "--bench", str(bench), "--out", str(tmp_path / "data"),
                             "--run-id", "live", "--quiet", "--live", "--live-control"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"live view: (http://127\.0\.0\.1:\d+/)(\?token=\S+)", line)
        assert match, f"no URL printed: {line!r}"
        url, query = match.groups()
        pw, browser = _browser()
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone's width
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            requests = []
            page.on("request", lambda req: requests.append(req.url))
            page.goto(url + query)  # the page's Content-Security-Policy stays on: read through locators
            points = lambda sel: int(page.locator(sel).get_attribute("data-points") or 0)  # noqa: E731
            done = lambda: int(page.inner_text("#trials-done"))  # noqa: E731
            wait_for(lambda: points("#traces") > 0, 15, "traces on the page")
            first = done()
            wait_for(lambda: done() > first, 10, "the trial counter to advance")
            assert int(page.inner_text("#trials-total")) == 36
            wait_for(lambda: "stage: connection dropped" in page.inner_text("#journal"), 15, "the fault in the journal")
            fault = page.locator("#journal li.fault").first.inner_text()
            assert "trial 9" in fault and "discarded" in fault
            assert int(page.inner_text("#faults").split(",")[0]) >= 1
            assert points("#scatter") > 0 and points("#temperature") > 0
            # the running anytime evidence (its numbers are checked against the runner's below)
            wait_for(lambda: "dependence" in page.inner_text("#panels"), 10, "the evidence panel")
            assert "Evidence (anytime-valid)" in page.inner_text("#panels") and "anytime p" in page.inner_text("#panels")
            assert "X_A and X_B against time for trial" in page.locator("#traces").get_attribute("aria-label")
            # nothing is wider than a phone, and nothing is fetched from elsewhere
            for box in (el.bounding_box() for el in page.locator("section:visible, header").all()):
                assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
            assert all(u.startswith(url) for u in requests), requests
            page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
            assert (tmp_path / "live.png").stat().st_size > 10_000
            readonly = browser.new_page()
            readonly.goto(url)  # without the token: no stop button
            wait_for(lambda: readonly.inner_text("#trials-done") != "0", 10, "the read-only page")
            assert readonly.locator("#stop").is_hidden()
            page.on("dialog", lambda dialog: dialog.accept())
            pressed_at = done()
            page.locator("#stop").click()
            wait_for(lambda: page.inner_text("#status") == "interrupted", 15, "the run to stop")
            assert not errors, errors
        finally:
            browser.close()
            pw.stop()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, out  # interrupted: resumable
    assert "at the request of the live view" in out and "replay the run with: corrlab watch" in out
    ds = Dataset.open(tmp_path / "data/live")
    assert ds.status == "interrupted" and ds.verify().ok and ds.manifest["safe_state"]["not_confirmed"] == {}
    kept = list(ds.trials().trial)
    assert kept == list(range(len(kept))) and pressed_at <= len(kept) < 36


# ============================================================================ numbers


def test_the_views_running_statistics_equal_the_datasets_and_a_replay_shows_the_same(tmp_path):
    proto = small_protocol(tmp_path, trials=18)

    def positives(table):  # a panel: per condition, how many trials had both observables above zero
        rows = {}
        for cond, a, b in zip(table.condition, table.obs_a, table.obs_b):
            rows.setdefault(cond, {"trials": 0, "both > 0": 0})
            rows[cond]["trials"] += 1
            rows[cond]["both > 0"] += int(a > 0 and b > 0)
        return rows

    def broken(table):
        raise ValueError("no evidence yet")

    def not_json(table):
        return {"all": {"r": float("nan")}}

    with LiveView(providers={"positives": positives, "broken": broken, "nan": not_json}) as view:
        result = run_protocol(proto, load_bench(), tmp_path, run_id="s", observer=view.observer())
        view.hub.flush()
        live = state_of(view.url)
    assert result.status == "complete"
    ref = reference_stats(tmp_path / "s")
    check_stats(live["stats"], ref)
    assert live["run"]["done"] == 18 and live["run"]["total"] == 18 and live["run"]["status"] == "complete"
    assert [t["trial"] for t in live["traces"]] == [15, 16, 17]
    last = Dataset.open(tmp_path / "s").read_trial(17).to_pandas()
    # 200 points: all of them, to 5 significant digits of the largest
    assert live["traces"][-1]["x_a"] == pytest.approx(list(last.x_a), abs=1e-4 * np.abs(last.x_a).max())
    assert sum(len(v) for v in live["scatter"].values()) == 18
    temps = [e["temperature_k"] for e in Dataset.open(tmp_path / "s").events() if e["step"] == "stabilize"]
    assert [p[1] for p in live["temperature"]["points"]] == pytest.approx(temps, rel=1e-6)
    assert live["temperature"]["band"] == {"setpoint_k": 4.0, "tolerance_k": 0.05}
    assert {s["name"]: s["outcome"] for s in live["steps"]}["measure"] == "ok"
    data = Dataset.open(tmp_path / "s").read(["trial", "condition", "x_a", "x_b"]).to_pandas()
    means = data.groupby("trial", observed=True).agg(c=("condition", "first"), a=("x_a", "mean"), b=("x_b", "mean"))
    expected = {str(c): {"trials": len(g), "both > 0": int(((g.a > 0) & (g.b > 0)).sum())}
                for c, g in means.groupby("c", observed=True)}
    assert live["panels"][:2] == [{"title": "positives", "rows": expected, "error": None},
                                  {"title": "broken", "rows": {}, "error": "ValueError: no evidence yet"}]
    assert live["panels"][2]["rows"] == {} and "not JSON compliant" in live["panels"][2]["error"]
    assert live["view"]["error"] is None  # the panels' trouble stays in the panels

    hub = Hub()
    assert watch_target(hub, tmp_path / "s") == "dataset"
    hub.start()
    try:
        replay = json.loads(wait_for(lambda: hub.run["done"] == 18 and hub.snapshot_json()[1], 10, "the replay"))
    finally:
        hub.stop()
    check_stats(replay["stats"], ref)
    assert replay["run"]["status"] == "complete" and [t["trial"] for t in replay["traces"]] == [15, 16, 17]
    assert replay["temperature"]["points"] == live["temperature"]["points"]


def test_decimated_traces_keep_every_extreme():
    from corrlab.daq.live.hub import decimate

    rng = np.random.default_rng(3)
    t = np.arange(20_000) / 1e4
    x = rng.normal(size=t.size)
    x[12_345] = 40.0  # a spike
    tt, xx = decimate(t, x, points=600)
    assert len(tt) <= 600 and max(xx) == 40.0 and min(xx) == pytest.approx(x.min(), rel=1e-4)
    assert tt == sorted(tt)


def test_the_evidence_panel_equals_the_runners_and_the_analysis_and_says_when_it_is_incomplete(tmp_path):
    """The live page's anytime evidence (computed in the view's thread from its own table) equals
    the manifest's (the runner's monitor) and corrlab analyze's, on a protocol whose plan window
    makes the windowed observable differ from the plain mean; a replay by `corrlab watch` shows the
    same; a view whose queue dropped trials, or that got them out of order, shows no e-value."""
    from click.testing import CliRunner

    from corrlab.daq.cli import cli
    from corrlab.daq.live.evidence import STOPPING_TITLE, TITLE, EvidencePanel, IncompleteEvidence, evidence_providers
    from corrlab.daq.live.hub import TrialTable
    from corrlab.protocols.config import protocol_from_dict

    proto = protocol_from_dict({
        "protocol": {"name": "ev", "seed": 5},
        "schedule": {"trials": 200, "block_size": 4, "trials_per_part": 8, "conditions": {"main": 3, "control:perturb_C": 1}},
        "acquisition": {"samples": 16, "sample_rate_hz": 10000.0},
        "stabilize": {"reads": 1, "interval_s": 0.0},
        "analysis": {"n_resamples": 99, "estimators": ["gaussian_copula"], "window": [0.5, 1.0]},
        "stopping": {"decide": ["dependence", "controls"]},
    })
    data = load_bench().to_json()
    data["world"] = {"kind": "common_cause", "seed": None, "params": {"coupling": 8.0}}
    lossy = Hub(queue_size=40, providers=evidence_providers())  # started after the run: its queue dropped trials
    with LiveView(providers=evidence_providers()) as view:
        result = run_protocol(proto, bench_from_dict(data), tmp_path, run_id="e",
                              observer=Observers(view.observer(), lossy.observer()))
        view.hub.flush()
        live = state_of(view.url)
    assert result.status == "complete" and result.stopped == "decided" and result.trials_committed < 200
    panels = {p["title"]: p for p in live["panels"]}
    rows = panels[TITLE]["rows"]
    assert panels[TITLE]["error"] is None
    recorded = json.loads((tmp_path / "e/manifest.json").read_text())["anytime"]["evidence"]
    assert set(rows) == set(recorded)
    for key, r in recorded.items():  # the same numbers (a plain per-trial mean would not give them)
        shown = rows[key]
        assert shown["e-value"] == pytest.approx(r["e_value"], rel=1e-12), key
        assert shown["anytime p"] == pytest.approx(r["pvalue_anytime"], rel=1e-12), key
        assert shown["adj. p"] == (None if r["pvalue_adjusted"] is None else pytest.approx(r["pvalue_adjusted"], rel=1e-12))
        assert shown["crossed at"] == (r["crossed_at_adjusted"] if r["pvalue_adjusted"] is not None else r["crossed_at"])
        assert (shown["decided"] == "yes") == r["decided"], key
    assert rows["dependence"]["decided"] == "yes" and rows["dependence"]["e-value"] >= 20
    from corrlab.daq.evidence import RunEvidence

    plain, t = RunEvidence(proto), view.hub.table  # the plots' plain per-trial means give other e-values
    for i in range(len(t)):
        plain.add_observed(t.trial[i], t.condition[i], t.setting_a[i], t.setting_b[i], t.obs_a[i], t.obs_b[i], t.block[i])
    assert plain.monitor.snapshot()["hypotheses"]["dependence"]["e_value"] != pytest.approx(
        recorded["dependence"]["e_value"], rel=1e-3)
    assert panels[STOPPING_TITLE]["rows"]["rule"]["decided"] == "2 of 2"
    assert panels[STOPPING_TITLE]["rows"]["rule"]["trials"] == result.trials_committed
    assert panels[STOPPING_TITLE]["rows"]["rule"]["state"] == "stopped: decided"
    out = CliRunner().invoke(cli, ["analyze", str(tmp_path / "e"), "--json", str(tmp_path / "e.json")])
    assert out.exit_code == 0, out.output
    section = json.loads((tmp_path / "e.json").read_text())["anytime"]["hypotheses"]
    for key, shown in rows.items():
        assert shown["e-value"] == pytest.approx(section[key]["e_value"], rel=1e-9), key

    queued = sum(kind == "trial" for kind, _ in lossy.queue)
    assert 0 < queued < lossy.trials_pushed == result.trials_committed  # it kept only the latest entries
    lossy.start()
    try:
        state = wait_for(lambda: (s := state_of_hub(lossy))["panels"] and s["panels"][0]["error"] and s, 5,
                         "the lossy view's panels")
    finally:
        lossy.stop()
    ev = {p["title"]: p for p in state["panels"]}[TITLE]
    assert ev["rows"] == {} and "live evidence incomplete" in ev["error"] and "dropped" in ev["error"]

    hub = Hub(providers=evidence_providers())  # `corrlab watch`: replayed from the dataset
    watch_target(hub, tmp_path / "e")
    hub.start()
    try:
        replay = wait_for(lambda: (s := state_of_hub(hub))["run"]["done"] == result.trials_committed
                          and s["run"]["status"] == "complete" and any(p["rows"] for p in s["panels"]) and s, 10, "the replay")
    finally:
        hub.stop()
    again = {p["title"]: p for p in replay["panels"]}
    assert again[TITLE]["rows"] == rows
    assert again[STOPPING_TITLE]["rows"]["rule"]["state"] == "stopped: decided"

    # a run continuing this one's evidence: its prior is in the manifest from the start, the panel multiplies it in
    with LiveView(providers=evidence_providers()) as view:
        more = run_protocol(proto, bench_from_dict(data), tmp_path, run_id="f", observer=view.observer(),
                            continue_from=[tmp_path / "e"])
        view.hub.flush()
        cont = {p["title"]: p for p in state_of(view.url)["panels"]}[TITLE]["rows"]
    assert more.stopped == "decided" and more.trials_committed < result.trials_committed  # the prior helped
    rec = json.loads((tmp_path / "f/manifest.json").read_text())["anytime"]
    assert rec["prior"]["dependence"] == pytest.approx(rows["dependence"]["e-value"], rel=1e-12)
    for key, r in rec["evidence"].items():
        assert cont[key]["e-value"] == pytest.approx(r["e_value"], rel=1e-12), key

    table = TrialTable()  # trials out of order: no e-value either
    table.meta.update(protocol=json.loads((tmp_path / "e/manifest.json").read_text())["protocol"], window=(0.5, 1.0))
    for trial in (1, 0):
        table.append({"trial": trial, "condition": "main", "setting_a": 0, "setting_b": 1}, 0.1, 0.2)
    with pytest.raises(IncompleteEvidence, match="trial 0 arrived after trial 1"):
        EvidencePanel()(table)


def state_of_hub(hub) -> dict:
    return json.loads(hub.snapshot_json()[1])


# ============================================================================ faults of the view


def test_a_view_that_dies_mid_run_leaves_the_run_untouched(tmp_path):
    """The hub thread crashes, then the server is stopped, mid-run: the run completes, the dataset
    is complete and verifies (corrlab verify), equal to a run without a view."""
    proto = small_protocol(tmp_path, trials=12)
    view = LiveView()
    crash_at, stop_at = 3, 7

    def kill_the_view(sim):
        acquire = sim.world.acquire

        def hooked():
            if sim.world.ctx.trial == crash_at:
                view.hub.on_trial = lambda *a: (_ for _ in ()).throw(RuntimeError("the view crashed"))
            if sim.world.ctx.trial == stop_at:
                view.server.stop()
                view.hub.stop()
            return acquire()

        sim.world.acquire = hooked

    obs = view.observer()
    result = run_protocol(proto, load_bench(), tmp_path, run_id="v", observer=obs, sim_hook=kill_the_view)
    assert result.status == "complete" and result.trials_committed == 12
    assert not view.hub.alive() and view.hub.error == "RuntimeError: the view crashed"
    with pytest.raises(OSError):
        urllib.request.urlopen(view.url + "state", timeout=2)
    out = subprocess.run([*CORRLAB, "verify", str(tmp_path / "v")], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("ok: ") and "12 trials" in out.stdout, out
    run_protocol(proto, load_bench(), tmp_path, run_id="plain")
    a = Dataset.open(tmp_path / "v").read().to_pandas()
    b = Dataset.open(tmp_path / "plain").read().to_pandas()
    assert a.equals(b)


def test_the_observer_never_blocks_or_raises_into_the_runner(tmp_path):
    hub = Hub(queue_size=8)  # never started: nothing drains the queue
    obs = hub.observer()
    for i in range(100):
        obs.step("measure", i)
    assert len(hub.queue) == 8 and hub.pushed == 100  # the oldest were dropped
    assert hub.queue[0] == ("step", ("measure", 92))

    class Broken:
        def append(self, item):
            raise MemoryError("no room")

    hub.queue = Broken()
    obs.event({"step": "fault"})  # must not raise
    assert obs.disabled == "MemoryError: no room"
    obs.step("measure", 1)  # switched off: returns at once
    # the terminal's observer runs first and is unaffected
    seen = []

    class Terminal(Observer):
        def step(self, name, trial):
            seen.append((name, trial))

    Observers(Terminal(), obs).step("fix", 3)
    assert seen == [("fix", 3)]


# ============================================================================ watch


def test_a_campaign_run_live_shows_its_queue_and_each_run_and_watch_replays_it(tmp_path):
    proto = demo_variant(tmp_path / "p.toml", trials=12, samples=100, interval_s=0.02, settle_s=0.0)
    cfile = tmp_path / "night.toml"
    cfile.write_text(f'[campaign]\nname = "night"\nout = "data"\nanalyze = false\n\n'
                     f'[[runs]]\nprotocol = "{proto.name}"\nrepeat = 2\n')
    proc = subprocess.Popen([*CORRLAB, "campaign", "run", str(cfile), "--live"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        url = re.search(r"live view: (http://127\.0\.0\.1:\d+/)", proc.stdout.readline()).group(1)
        while proc.poll() is None:
            try:
                seen.append(state_of(url))
            except OSError:
                pass  # closed at the end of the campaign
            time.sleep(0.1)
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    last = seen[-1]
    assert [e["run_id"] for e in last["campaign"]["queue"]] == ["night-000-p-r1", "night-001-p-r2"]
    assert last["campaign"]["queue"][0]["status"] == "complete"
    assert last["run"]["run_id"] == "night-001-p-r2" and last["run"]["done"] == 12
    assert any(s["run"]["run_id"] == "night-000-p-r1" and s["run"]["done"] > 0 for s in seen)  # each run live
    ref = reference_stats(tmp_path / "data/night-001-p-r2")
    check_stats(last["stats"], ref)

    # corrlab watch on the campaign file afterwards: its queue and its latest run, from disk
    proc = subprocess.Popen([*CORRLAB, "watch", str(cfile), "--duration", "30"], stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", proc.stdout.readline()).group(1)
        state = wait_for(lambda: (s := state_of(url))["run"]["done"] == 12 and s["campaign"] and s, 10, "the replay")
    finally:
        proc.terminate()
        proc.wait(10)
    assert [(e["index"], e["status"], e["trials_committed"]) for e in state["campaign"]["queue"]] == [
        (0, "complete", 12), (1, "complete", 12)]
    assert state["run"]["run_id"] == "night-001-p-r2" and state["run"]["status"] == "complete"
    check_stats(state["stats"], ref)
    from click.testing import CliRunner

    from corrlab.daq.cli import cli

    bad = CliRunner().invoke(cli, ["watch", str(tmp_path)])
    assert bad.exit_code == 2 and "is neither a dataset" in bad.output


# ============================================================================ the server's refusals


def test_the_server_listens_on_loopback_only_and_refuses_other_hosts_origins_and_writes():
    hub = Hub().start()
    server = LiveServer(hub).start()
    try:
        assert server.httpd.server_address[0] == "127.0.0.1"

        def get(path, method="GET", **headers):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.putrequest(method, path, skip_host=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            return resp.status, body

        own = f"127.0.0.1:{server.port}"
        assert get("/state", Host=own)[0] == 200
        assert get("/", Host=f"localhost:{server.port}")[0] == 200
        assert get("/state", Host=f"evil.example:{server.port}")[0] == 403  # DNS rebinding
        assert get("/state", Host=own, Origin="http://evil.example")[0] == 403
        assert get("/state", Host=own, Origin=f"http://{own}")[0] == 200
        assert get("/state", method="POST", Host=own, **{"Content-Length": "0"})[0] == 405
        assert get("/static/../hub.py", Host=own)[0] == 404
        for name in ("", "static/plot.js", "static/live.js", "static/live.css"):
            status, body = get("/" + name, Host=own)
            assert status == 200 and b"http://" not in body and b"https://" not in body, name  # offline
    finally:
        server.stop()
        hub.stop()


# ============================================================================ the stop control


def test_the_stop_control_needs_the_runs_token_and_stops_through_the_safe_state(tmp_path):
    """`--live-control`: POST /stop without the token, with a wrong one or from another origin is
    refused; with it the run stops after the trial in progress, confirmed safe, resumable."""
    from corrlab.daq.runner import resume_run

    proto = small_protocol(tmp_path, trials=18)
    view = LiveView(control=True)
    token = view.server.token
    assert token and view.url == f"{view.server.base_url}?token={token}"
    answers = []

    def post(query="", **headers):
        conn = http.client.HTTPConnection("127.0.0.1", view.server.port, timeout=5)
        conn.request("POST", "/stop" + query, body=b"", headers=headers)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status

    def press_stop_at_trial_5(sim):
        acquire = sim.world.acquire

        def hooked():
            if sim.world.ctx.trial == 5 and not answers:
                answers.append(post())  # no token
                answers.append(post("?token=" + "x" * len(token)))  # a wrong one
                answers.append(post("?token=" + token, Origin="http://evil.example"))  # the right one, elsewhere
                assert view.hub.stop_request is None
                answers.append(post("?token=" + token, Origin=view.server.base_url.rstrip("/")))
            return acquire()

        sim.world.acquire = hooked

    try:
        result = run_protocol(proto, load_bench(), tmp_path, run_id="stop", observer=view.observer(),
                              sim_hook=press_stop_at_trial_5)
    finally:
        view.close(linger_s=0)
    assert answers == [403, 403, 403, 202]
    assert result.status == "interrupted" and result.safe
    assert result.reason == "stopped after trial 5 at the request of the live view (stop after this trial)"
    ds = Dataset.open(tmp_path / "stop")
    assert ds.verify().ok and list(ds.trials().trial) == [0, 1, 2, 3, 4, 5]  # trial 5 finished and kept
    assert ds.manifest["safe_state"]["not_confirmed"] == {}
    again = resume_run(tmp_path / "stop")  # the same schedule goes on; no view, no stop
    assert again.status == "complete" and len(Dataset.open(tmp_path / "stop").trials()) == 18


def test_a_port_in_use_is_one_named_error_and_leaves_no_thread_behind():
    import socket
    import threading

    from corrlab.errors import CorrlabError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = threading.active_count()
        with pytest.raises(CorrlabError, match=rf"^--port {port}: the live view cannot listen on 127\.0\.0\.1:{port} \("):
            LiveView(port=port)
        assert threading.active_count() == before  # the hub's thread was stopped, not left running
