"""Feeding the live view from the dataset on disk: a run in progress (tailed), a finished one
(replayed), a campaign's queue. Read-only: the files are opened for reading, never locked.

What is on disk is what the view can show: trials appear a committed part at a time (the
protocol's ``trials_per_part``), the journal (``events.jsonl``, flushed after every entry)
as it is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from corrlab.anytime import window_mean
from corrlab.daq.live.common import STEPS, TRACE_TRIALS, event_key, read_json

BACKFILL_KEYS = 1000  # events remembered from a backfill, to drop the same events arriving live


class DatasetTail:
    """A poller (``hub.pollers``) that follows one dataset folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0  # bytes of events.jsonl read (whole lines only)
        self.parts = 0  # manifest parts read
        self.status: str | None = None

    def __call__(self, hub) -> bool:
        manifest = read_json(self.path / "manifest.json")
        if manifest is None:
            return False
        changed = False
        if hub.run["run_id"] != manifest.get("run_id"):
            hub.reset_run()
            hub.run.update(run_id=manifest.get("run_id"), path=str(self.path))
            changed = True
        hub.describe(manifest)
        last_step = None
        for entry in self._new_events():
            hub.on_event(entry)
            if entry.get("step") in STEPS:
                last_step = entry
            changed = True
        parts = manifest.get("parts") or []
        if len(parts) > self.parts:
            self._read_parts(hub, parts[self.parts:])
            self.parts = len(parts)
            changed = True
        status = manifest.get("status")
        if status != self.status or changed:
            self.status = status
            hub.run["status"] = status
            hub.run["reason"] = manifest.get("stop_reason")
            if status != "running":
                hub.current = {"name": None, "trial": None}
            elif last_step is not None:
                hub.current = {"name": last_step["step"], "trial": last_step.get("trial")}
            hub._eta()
            changed = True
        return changed

    def _new_events(self) -> list[dict]:
        epath = self.path / "events.jsonl"
        try:
            with open(epath, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next poll
        self.offset += end
        out = []
        for line in data[:end].splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"step": "journal", "outcome": "corrupt", "message": "a journal line is unreadable"})
        return out

    def _read_parts(self, hub, parts: list[dict]) -> None:
        import pyarrow.parquet as pq

        try:
            trials = pq.read_table(self.path / "trials.parquet").to_pylist()
        except Exception:
            return  # being replaced right now: the next poll reads it (self.parts is not advanced)
        records = {int(r["trial"]): r for r in trials}
        for i, part in enumerate(parts):
            table = pq.read_table(self.path / part["file"], columns=["trial", "t", "x_a", "x_b"])
            cols = {c: table.column(c).to_numpy() for c in ("trial", "t", "x_a", "x_b")}
            if not len(cols["trial"]):
                continue
            starts = np.concatenate([[0], np.flatnonzero(np.diff(cols["trial"])) + 1])
            ends = np.concatenate([starts[1:], [len(cols["trial"])]])
            mean_a = np.add.reduceat(cols["x_a"], starts) / (ends - starts)
            mean_b = np.add.reduceat(cols["x_b"], starts) / (ends - starts)
            last_part = i == len(parts) - 1
            for k, (lo, hi) in enumerate(zip(starts, ends)):
                trial = int(cols["trial"][lo])
                record = records.get(trial) or {"trial": trial, "condition": "?"}
                traced = last_part and k >= len(starts) - TRACE_TRIALS
                samples = {c: cols[c][lo:hi] for c in ("t", "x_a", "x_b")} if traced else None
                hub.add_trial(record, float(mean_a[k]), float(mean_b[k]), samples,
                              window_mean(cols["x_a"][lo:hi], hub.window), window_mean(cols["x_b"][lo:hi], hub.window))


def backfill(hub, path: str | Path) -> None:
    """Read what a dataset already holds into ``hub`` (a live run that resumes a dataset); the
    latest events read are remembered so the same ones arriving live are not listed twice."""
    tail = DatasetTail(path)
    tail(hub)
    hub.backfilled = set()
    lines = (Path(path) / "events.jsonl").read_bytes()[:tail.offset].splitlines()[-BACKFILL_KEYS:]
    for line in lines:
        try:
            hub.backfilled.add(event_key(json.loads(line)))
        except ValueError:
            pass
    hub.run["status"] = "running"


class CampaignTail:
    """A poller that follows a campaign: its queue from ``campaign-state.json``, and the dataset
    of the run in progress (or, once nothing runs, the latest one that has a dataset). With
    ``follow=False`` only the queue: the runs come from the live observer (``campaign run --live``)."""

    def __init__(self, out: str | Path, name: str | None = None, *, follow: bool = True):
        self.out = Path(out)
        self.name = name
        self.follow = follow
        self.tail: DatasetTail | None = None
        self.mtime = None

    def __call__(self, hub) -> bool:
        from corrlab.daq.campaign import STATE_FILE

        changed = False
        spath = self.out / STATE_FILE
        try:
            mtime = spath.stat().st_mtime_ns
        except OSError:
            mtime = None
        if mtime != self.mtime:
            self.mtime = mtime
            state = read_json(spath)
            changed = True
            if state is None:
                hub.campaign = {"name": self.name, "queue": [], "waiting_until": None, "finished_utc": None}
            else:
                hub.campaign = {
                    "name": state.get("campaign", self.name), "waiting_until": state.get("waiting_until"),
                    "finished_utc": state.get("finished_utc"),
                    "queue": [{"index": e.get("index"), "run_id": e.get("run_id"), "status": e.get("status"),
                               "trials_committed": e.get("trials_committed"), "trials_planned": e.get("trials_planned"),
                               "faults": len(e.get("faults") or []), "verdict": e.get("verdict"),
                               "reason": e.get("reason")} for e in state.get("queue") or []],
                }
                target = self._target(state) if self.follow else None
                if target is not None and (self.tail is None or self.tail.path != target):
                    hub.reset_run()
                    self.tail = DatasetTail(target)
        if self.tail is not None:
            changed = self.tail(hub) or changed
        return changed

    def _target(self, state: dict) -> Path | None:
        queue = state.get("queue") or []
        running = [e for e in queue if e.get("status") == "running"]
        for entry in running or reversed(queue):
            path = self.out / str(entry.get("run_id"))
            if (path / "manifest.json").exists():
                return path
        return None
