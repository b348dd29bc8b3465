"""Overnight campaigns: a queue of protocol runs that survives faults, crashes and reboots.

A campaign file (TOML) lists protocol runs with repetitions::

    [campaign]
    name = "night-1123"
    out = "data/night-1123"       # data folder, relative to the campaign file
    bench = "bench.toml"          # optional; default: the embedded simulated bench
    start_at = "22:30"            # optional; `--at HH:MM` overrides
    analyze = true                # analyse each completed run (its recorded plan)

    [[runs]]
    protocol = "../protocols/demo.toml"
    repeat = 3

The queue runs in order and continues past a failed run (recorded with its reason). Its
state lives in ``<out>/campaign-state.json`` (rewritten atomically after every change) and
a human log in ``<out>/campaign.log``; ``resume`` picks up where a crash left it,
continuing an interrupted dataset with ``corrlab run --resume`` semantics. An operator's
Ctrl-C stops the whole campaign (resumable); anything else stops only the run it hit.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from corrlab.config import load_model
from corrlab.errors import CorrlabError, PlanError
from corrlab.dataset import atomic_write_json, check_run_id, utc_now

STATE_FILE = "campaign-state.json"
LOG_FILE = "campaign.log"


class CampaignMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    out: str = "data"
    bench: str | None = None
    start_at: str | None = None
    analyze: bool = True

    @field_validator("start_at")
    @classmethod
    def _hhmm(cls, v):
        if v is not None:
            parse_hhmm(v)
        return v


class CampaignRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: str
    repeat: int = Field(1, ge=1, le=10_000)
    bench: str | None = None


class CampaignFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign: CampaignMeta
    runs: list[CampaignRun] = Field(min_length=1)


def parse_hhmm(text: str) -> tuple[int, int]:
    try:
        hh, mm = text.split(":")
        h, m = int(hh), int(mm)
    except ValueError as exc:
        raise ValueError(f"start time {text!r} is not HH:MM") from exc
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"start time {text!r} is not a time of day (00:00-23:59)")
    return h, m


def next_start(text: str, now: _dt.datetime) -> _dt.datetime:
    """The next local time HH:MM at or after ``now`` (tomorrow if it has passed today)."""
    h, m = parse_hhmm(text)
    start = now.replace(hour=h, minute=m, second=0, microsecond=0)
    return start if start >= now else start + _dt.timedelta(days=1)


@dataclass
class Campaign:
    """A loaded campaign: its file, resolved paths and its state on disk."""

    file: Path
    spec: CampaignFile

    @classmethod
    def load(cls, path: str | Path, *, check: bool = True) -> "Campaign":
        """Read a campaign file; with ``check`` (the default) also every entry's files (:meth:`check`)."""
        path = Path(path)
        campaign = cls(path, load_model(CampaignFile, path, what="campaign"))
        if check:
            campaign.check()
        return campaign

    def check(self) -> None:
        """Validate every entry's protocol file (with its ``[analysis]`` plan) and bench file.

        Files only, no instrument is touched: a typo in the fifth entry fails now, not at
        3 a.m. The first problem raises one :class:`PlanError` line naming the entry (queue
        index and run id), the file and what is wrong.
        """
        from corrlab.protocols.config import load_protocol

        checked: set[tuple[str, str | None]] = set()
        for entry in self.queue():
            for kind, name in (("protocol", entry["protocol"]), ("bench", entry["bench"])):
                if (kind, name) in checked:
                    continue
                try:
                    if kind == "protocol":
                        load_protocol(self._rel(name))  # validates the analysis plan too
                    else:
                        _bench_file(self, name)
                except CorrlabError as exc:
                    raise PlanError(f"campaign file {self.file}, run {entry['index']} ({entry['run_id']}): {exc}") from exc
                checked.add((kind, name))

    # -- paths -----------------------------------------------------------------------
    def _rel(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else (self.file.parent / q)

    @property
    def out(self) -> Path:
        return self._rel(self.spec.campaign.out)

    @property
    def state_path(self) -> Path:
        return self.out / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.out / LOG_FILE

    # -- the queue ---------------------------------------------------------------------
    def queue(self) -> list[dict]:
        entries = []
        for i, run in enumerate(self.spec.runs):
            stem = Path(run.protocol).stem
            for rep in range(1, run.repeat + 1):
                index = len(entries)
                entries.append({
                    "index": index, "protocol": run.protocol, "bench": run.bench or self.spec.campaign.bench,
                    "repetition": rep,
                    "run_id": check_run_id(f"{self.spec.campaign.name}-{index:03d}-{stem}-r{rep}"),
                    "status": "pending", "reason": None, "trials_committed": 0, "trials_planned": None,
                    "faults": [], "suspensions": 0, "started_utc": None, "finished_utc": None,
                    "elapsed_s": 0.0, "verdict": None, "safe_state": None, "outages": [],
                })
        return entries

    def read_state(self) -> dict | None:
        if not self.state_path.exists():
            return None
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PlanError(f"campaign state {self.state_path} is not valid JSON (line {exc.lineno})") from exc

    def write_state(self, state: dict) -> None:
        state["updated_utc"] = utc_now()
        atomic_write_json(self.state_path, state)

    def log(self, message: str) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {message}\n")


def _bench_file(campaign: Campaign, bench: str | None):
    """Read and validate a bench file (relative to the campaign file; None: the simulated bench)."""
    from corrlab.instruments.benchfile import load_bench

    return load_bench(campaign._rel(bench) if bench else None)


def _load_bench(campaign: Campaign, entry: dict):
    return _bench_file(campaign, entry["bench"])


def execute(campaign: Campaign, *, at: str | None = None, resume: bool = False, observer_factory=None,
            sleep: Callable[[float], None] = time.sleep, now: Callable[[], _dt.datetime] = None,
            on_wait: Callable[[float], None] | None = None, sim_hook=None,
            analyze: Callable[[Path], str] | None = None) -> dict:
    """Run (or resume) the queue; returns the final state.

    ``analyze`` gives the verdict level of a completed run; it is required when the campaign
    file asks for analysis (``[campaign] analyze = true``). Acquisition does not import the
    analysis: the caller (the CLI) passes it in.
    """
    from corrlab.daq.runner import resume_run, run_protocol
    from corrlab.protocols.config import load_protocol

    now = now or (lambda: _dt.datetime.now().astimezone())
    state = campaign.read_state()
    if state is not None and not resume and any(e["status"] != "pending" for e in state["queue"]):
        raise PlanError(f"campaign {campaign.spec.campaign.name} has already started ({campaign.state_path}); "
                        "use 'corrlab campaign resume'")
    if state is None:
        if resume:
            raise PlanError(f"campaign {campaign.spec.campaign.name} has no state at {campaign.state_path}; "
                            "use 'corrlab campaign run'")
        state = {"campaign": campaign.spec.campaign.name, "file": str(campaign.file), "created_utc": utc_now(),
                 "queue": campaign.queue()}
    if campaign.spec.campaign.analyze and analyze is None:
        raise PlanError(f"campaign {campaign.spec.campaign.name} asks for analysis ([campaign] analyze = true) "
                        "but no analysis was given (execute(..., analyze=...); the CLI passes it)")
    campaign.out.mkdir(parents=True, exist_ok=True)
    start_at = at or (campaign.spec.campaign.start_at if not resume else None)
    if start_at:
        target = next_start(start_at, now())
        campaign.log(f"waiting for the start at {target.isoformat(timespec='minutes')}")
        state["waiting_until"] = target.isoformat()
        campaign.write_state(state)
        while (left := (target - now()).total_seconds()) > 0:
            if on_wait:
                on_wait(left)
            sleep(min(left, 1.0))
        state.pop("waiting_until", None)
    campaign.log(("resuming" if resume else "starting") + f" campaign {campaign.spec.campaign.name}: "
                 f"{sum(e['status'] not in ('complete', 'failed', 'aborted') for e in state['queue'])} run(s) to go")
    campaign.write_state(state)
    for entry in state["queue"]:
        if entry["status"] in ("complete", "failed", "aborted"):
            continue
        dataset = campaign.out / entry["run_id"]
        entry["started_utc"] = entry["started_utc"] or utc_now()
        entry["status"] = "running"
        campaign.write_state(state)
        campaign.log(f"run {entry['index']} ({entry['run_id']}): start")
        observer = observer_factory(entry) if observer_factory else None
        try:
            bench = _load_bench(campaign, entry)
            if dataset.exists():
                result = resume_run(dataset, bench, observer=observer, sim_hook=sim_hook)
            else:
                protocol = load_protocol(campaign._rel(entry["protocol"]))
                result = run_protocol(protocol, bench, campaign.out, run_id=entry["run_id"], observer=observer,
                                      sim_hook=sim_hook)
        except (KeyboardInterrupt, SystemExit):
            entry["status"], entry["reason"] = "interrupted", "operator stop"
            campaign.write_state(state)
            campaign.log(f"run {entry['index']}: operator stop; campaign halted (resume to continue)")
            raise
        except CorrlabError as exc:
            entry.update(status="failed", reason=str(exc), finished_utc=utc_now())
            campaign.write_state(state)
            campaign.log(f"run {entry['index']}: FAILED: {exc}")
            continue
        except Exception as exc:  # a bug must not cost the rest of the night
            entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}", finished_utc=utc_now())
            campaign.write_state(state)
            campaign.log(f"run {entry['index']}: FAILED with an unexpected error:\n{traceback.format_exc()}")
            continue
        entry.update(
            status=result.status if result.status != "aborted" else "failed",
            reason=result.reason, trials_committed=result.trials_committed, trials_planned=result.trials_planned,
            faults=entry["faults"] + [f["error"] for f in result.faults],
            suspensions=entry["suspensions"] + result.suspensions,
            elapsed_s=round(entry["elapsed_s"] + result.elapsed_s, 3), finished_utc=utc_now(),
            safe_state=result.safe_state,
            outages=entry.get("outages", []) + list(getattr(result, "outages", [])),
        )
        campaign.log(f"run {entry['index']}: {result.status}, {result.trials_committed}/{result.trials_planned} trials, "
                     f"{len(result.faults)} fault(s), {result.suspensions} suspension(s), {result.elapsed_s:.1f} s"
                     + (f"; {result.reason}" if result.reason else ""))
        for role, why in result.safe_state["not_confirmed"].items():
            campaign.log(f"run {entry['index']}: {role} NOT CONFIRMED SAFE: {why}")
        if result.status == "complete" and campaign.spec.campaign.analyze:
            try:
                entry["verdict"] = analyze(result.path)
                campaign.log(f"run {entry['index']}: verdict {entry['verdict']}")
            except Exception as exc:  # analysis trouble is reported, the campaign goes on
                entry["verdict"] = f"analysis failed: {exc}"
                campaign.log(f"run {entry['index']}: analysis failed: {exc}")
        campaign.write_state(state)
        if result.signal:
            campaign.log("operator stop; campaign halted (resume to continue)")
            raise KeyboardInterrupt(result.signal)
    campaign.log("campaign finished")
    state["finished_utc"] = utc_now()
    campaign.write_state(state)
    return state
