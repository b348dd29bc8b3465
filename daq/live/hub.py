"""The live view's state: what the page shows, built in the view's own thread.

The acquisition loop never waits for the view. :class:`LiveObserver` (a runner
:class:`~corrlab.daq.runner.Observer`) appends each callback's arguments to a bounded
``collections.deque`` that drops the oldest entry when full (an append never blocks and never
raises); any error inside a callback switches the view off for the rest of the run and is never
raised into the runner. :class:`Hub` drains that queue in its own thread and keeps everything
the page needs: the latest traces (decimated), the per-trial observables for the scatter, the
temperature against the stabilize band, the six steps with their latest check, the journal of
faults, reconnects, outages and suspensions, the trial counter with rate and time left, running
statistics per condition, a campaign's queue, and optional panels from snapshot providers.

The same hub is fed from the dataset on disk (:mod:`.tail`) by ``corrlab watch``, and when a
live run resumes a dataset (backfill), so a page attached late shows the whole run.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from corrlab.anytime import window_mean
from corrlab.daq.live.common import STEPS, TRACE_TRIALS, event_key, read_json
from corrlab.daq.runner import Observer

# journal entries the page lists (every other step's outcome shows in the timeline)
JOURNAL_STEPS = ("fault", "reconnect", "outage", "suspend", "resume", "safe_state", "run", "calibration")
TRACE_POINTS = 600  # at most this many points per trace (min/max per bucket keeps the extremes)
SCATTER_POINTS = 1000  # per condition, the latest
JOURNAL_ENTRIES = 200
TEMPERATURE_POINTS = 1500
QUEUE_SIZE = 4096  # the observer's queue; the oldest entries go first when the view falls behind


def _utc_seconds(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _num(v: float, digits: int = 6) -> float | None:
    """A float for JSON: rounded to ``digits`` significant digits; None when not finite."""
    v = float(v)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def _rounded(a: np.ndarray, digits: int = 5) -> list:
    """``a`` as a list of floats to ``digits`` significant digits of its largest magnitude
    (vectorised; JSON stays short); non-finite values become None."""
    a = np.asarray(a, dtype=float)
    finite = np.isfinite(a)
    top = float(np.max(np.abs(a[finite]))) if finite.any() else 0.0
    decimals = digits - 1 - int(math.floor(math.log10(top))) if top > 0 else digits
    out = np.round(a, decimals).tolist()
    if not finite.all():
        out = [v if ok else None for v, ok in zip(out, finite.tolist())]
    return out


def decimate(t: np.ndarray, *ys: np.ndarray, points: int = TRACE_POINTS) -> tuple[list, ...]:
    """At most ``points`` points per series: the minimum and the maximum of each bucket (in time
    order, chosen on the first series), so a spike survives; shorter series are returned whole."""
    t = np.asarray(t, dtype=float)
    n = len(t)
    if n > points:
        buckets = points // 2
        size = -(-n // buckets)  # ceil
        pad = buckets * size - n
        first = np.asarray(ys[0], dtype=float)
        filled = np.concatenate([first, np.full(pad, np.nan)]).reshape(buckets, size) if pad else first.reshape(buckets, size)
        lo = np.nanargmin(np.where(np.isnan(filled), np.inf, filled), axis=1)
        hi = np.nanargmax(np.where(np.isnan(filled), -np.inf, filled), axis=1)
        base = np.arange(buckets) * size
        idx = np.sort(np.concatenate([base + lo, base + hi]))
        idx = np.unique(idx[idx < n])
    else:
        idx = slice(None)
    return tuple(_rounded(np.asarray(a, dtype=float)[idx]) for a in (t, *ys))


class RunningStats:
    """n, means, variances and the correlation of two series, updated one pair at a time
    (Welford's co-moment update; numerically stable for any offset)."""

    __slots__ = ("n", "mean_a", "mean_b", "m2_a", "m2_b", "c_ab", "f")

    def __init__(self):
        self.n = 0
        self.mean_a = self.mean_b = self.m2_a = self.m2_b = self.c_ab = 0.0
        self.f = 0

    def add(self, a: float, b: float, f: bool = False) -> None:
        self.n += 1
        self.f += bool(f)
        da = a - self.mean_a
        self.mean_a += da / self.n
        db = b - self.mean_b
        self.mean_b += db / self.n
        self.m2_a += da * (a - self.mean_a)
        self.m2_b += db * (b - self.mean_b)
        self.c_ab += da * (b - self.mean_b)

    def to_json(self) -> dict:
        n = self.n
        var_a = self.m2_a / (n - 1) if n > 1 else None
        var_b = self.m2_b / (n - 1) if n > 1 else None
        r = self.c_ab / math.sqrt(self.m2_a * self.m2_b) if n > 2 and self.m2_a > 0 and self.m2_b > 0 else None
        return {"n": n, "mean_a": _num(self.mean_a) if n else None, "mean_b": _num(self.mean_b) if n else None,
                "var_a": _num(var_a) if var_a is not None else None, "var_b": _num(var_b) if var_b is not None else None,
                "r": _num(r, 4) if r is not None else None, "f_rate": _num(self.f / n, 3) if n else None}


class TrialTable:
    """Every trial seen so far, one compact row each (what snapshot providers are given).

    ``obs_a``/``obs_b`` are the plain per-trial means (the plots); ``plan_a``/``plan_b`` the
    observable the run's anytime evidence is fed (``window_mean`` over the plan's window, as the
    runner and the analysis reduce a trial); ``block`` the schedule block when the record has it.
    ``meta`` holds what the manifest says of the run (``protocol``: the recorded protocol,
    ``prior``: a continued run's prior e-values, ``anytime``: the run's recorded evidence once it
    closed). ``gaps`` says why the table may miss trials or hold them out of order (the view's
    bounded queue dropped some): a provider must not present numbers over such a table as complete.
    """

    def __init__(self):
        self.trial: list[int] = []
        self.condition: list[str] = []
        self.setting_a: list[int] = []
        self.setting_b: list[int] = []
        self.f: list[bool] = []
        self.obs_a: list[float] = []  # the per-trial mean of x_a
        self.obs_b: list[float] = []
        self.plan_a: list[float] = []  # the windowed mean of x_a over the plan's window
        self.plan_b: list[float] = []
        self.block: list[int | None] = []
        self.meta: dict[str, Any] = {}
        self.gaps: list[str] = []

    def __len__(self) -> int:
        return len(self.trial)

    def append(self, record: dict, obs_a: float, obs_b: float, plan_a: float | None = None,
               plan_b: float | None = None) -> None:
        if self.trial and int(record["trial"]) < self.trial[-1]:
            self.gaps.append(f"trial {int(record['trial'])} arrived after trial {self.trial[-1]}")
        self.trial.append(int(record["trial"]))
        self.condition.append(str(record["condition"]))
        self.setting_a.append(int(record.get("setting_a", 0)))
        self.setting_b.append(int(record.get("setting_b", 0)))
        self.f.append(bool(record.get("f", True)))
        self.obs_a.append(float(obs_a))
        self.obs_b.append(float(obs_b))
        self.plan_a.append(float(obs_a if plan_a is None else plan_a))
        self.plan_b.append(float(obs_b if plan_b is None else plan_b))
        block = record.get("block")
        self.block.append(None if block is None else int(block))


Provider = Callable[[TrialTable], dict]


class Hub:
    """The view's state and its thread. Feed it through :meth:`observer` (a live run) or a
    poller (:mod:`.tail`); read it with :meth:`snapshot_json` / :meth:`wait`."""

    def __init__(self, *, providers: dict[str, Provider] | None = None, queue_size: int = QUEUE_SIZE,
                 poll_s: float = 0.5, interval_s: float = 0.5):
        self.queue: collections.deque = collections.deque(maxlen=queue_size)
        self.providers: dict[str, Provider] = dict(providers or {})
        self.pollers: list[Callable[["Hub"], None]] = []
        self.poll_s = poll_s
        self.interval_s = interval_s
        self.cpu_s = 0.0  # the hub thread's CPU time (what the view costs)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.version = 0
        self._json = b"{}"
        self.pushed = 0  # entries appended by the observer (the count of drops is pushed - taken - len)
        self.taken = 0
        self.trials_pushed = 0  # trials appended by the observer: each carries its number in this sequence
        self._next_trial_seq = 0  # the next one the hub expects (a gap: the queue dropped trials)
        self.error: str | None = None
        self.campaign: dict | None = None
        self.stop_request: str | None = None  # set by the server's guarded stop control
        self._dirty = False
        self.reset_run()

    # -- the run's state (touched by the hub thread only) ----------------------------------------
    def reset_run(self) -> None:
        self.run: dict[str, Any] = {"run_id": None, "path": None, "status": "waiting", "protocol": None,
                                    "total": None, "done": 0, "rate_per_s": None, "eta_s": None, "reason": None,
                                    "observable": "per-trial mean of x_a, x_b"}
        self.current = {"name": None, "trial": None}
        self.steps = {name: None for name in ("setup",) + STEPS}
        self.traces: collections.deque = collections.deque(maxlen=TRACE_TRIALS)
        self.scatter: dict[str, collections.deque] = {}
        self.temperature: collections.deque = collections.deque(maxlen=TEMPERATURE_POINTS)
        self.band: dict | None = None
        self.journal: collections.deque = collections.deque(maxlen=JOURNAL_ENTRIES)
        self.counts = collections.Counter()  # faults, reconnects, outages, suspensions
        self.stats: dict[str, RunningStats] = {}
        self.table = TrialTable()
        self.window: tuple[float, float] = (0.0, 1.0)  # the plan's window (the evidence's observable)
        self.seen: set[int] = set()
        self.starts: collections.deque = collections.deque(maxlen=30)  # (trial start, utc seconds)
        self.t0: float | None = None
        self.panels: list[dict] = []
        self._panels_at = 0.0
        self.backfilled: set = set()  # the latest events read from disk by a backfill

    # -- thread ------------------------------------------------------------------------------
    def start(self) -> "Hub":
        self._publish()  # a page that connects before any data sees an empty, well-formed state
        self._thread = threading.Thread(target=self._loop, name="corrlab-live-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until the queue is drained (the end of a run); True when it was."""
        end = time.monotonic() + timeout
        while (self.queue or self._busy) and time.monotonic() < end and self.alive():
            self._wake.set()
            time.sleep(0.02)
        return not self.queue

    _busy = False

    def _loop(self) -> None:
        next_poll = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)  # a fixed pace: the runner never signals the hub
            self._wake.clear()
            changed, self._dirty = self._dirty, False
            cpu = time.thread_time()
            try:
                self._busy = True
                while self.queue:
                    kind, args = self.queue.popleft()
                    self.taken += 1
                    getattr(self, "on_" + kind)(*args)
                    changed = True
                now = time.monotonic()
                if self.pollers and now >= next_poll:
                    next_poll = now + self.poll_s
                    for poll in list(self.pollers):
                        changed = bool(poll(self)) or changed
                if changed:
                    self._publish()
            except Exception as exc:  # the view is broken; acquisition is not affected
                self.error = f"{type(exc).__name__}: {exc}"
                try:
                    self._publish()
                except Exception:
                    pass
            finally:
                self._busy = False
                self.cpu_s += time.thread_time() - cpu

    # -- feeding (hub thread) ----------------------------------------------------------------
    def on_started(self, run_id: str, path: str | Path, total: int | None, done: int) -> None:
        path = Path(path)
        if self.run["run_id"] is not None and self.run["run_id"] != run_id:
            self.reset_run()
        self.run.update(run_id=run_id, path=str(path), total=total, status="running")
        manifest = read_json(path / "manifest.json") or {}
        self.describe(manifest)
        if done and not self.seen:
            from corrlab.daq.live.tail import backfill

            backfill(self, path)

    def describe(self, manifest: dict) -> None:
        """What the manifest says about the run: protocol name, trials planned, the stabilize band."""
        proto = manifest.get("protocol") or {}
        self.run["protocol"] = (proto.get("protocol") or {}).get("name", self.run["protocol"])
        if manifest.get("trials_planned"):
            self.run["total"] = manifest["trials_planned"]
        if self.t0 is None:
            self.t0 = _utc_seconds(manifest.get("created_utc"))
        st = proto.get("stabilize") or {}
        if "setpoint_k" in st and "tolerance_k" in st:
            self.band = {"setpoint_k": st["setpoint_k"], "tolerance_k": st["tolerance_k"]}
        if proto:
            self.table.meta["protocol"] = proto
            window = (proto.get("analysis") or {}).get("window")
            if window is not None and len(window) == 2:
                self.window = (float(window[0]), float(window[1]))
            self.table.meta["window"] = self.window
        anytime = manifest.get("anytime") or {}
        if anytime.get("prior"):
            self.table.meta["prior"] = dict(anytime["prior"])
        if manifest.get("status") not in (None, "running") and "evidence" in anytime:
            self.table.meta["anytime"] = anytime
        observable = ((proto.get("analysis") or {}).get("observable"))
        if observable and observable != "mean":
            self.run["observable"] = f"per-trial mean of x_a, x_b (the plan's observable is {observable!r})"

    def on_step(self, name: str, trial: int) -> None:
        self.current = {"name": name, "trial": None if trial is None or trial < 0 else int(trial)}

    def on_trial(self, record: dict, samples: dict, seq: int | None = None) -> None:
        if seq is not None:
            if seq != self._next_trial_seq:
                self.table.gaps.append(f"the view's queue dropped {seq - self._next_trial_seq} trial(s) "
                                       f"before trial {record.get('trial')}")
            self._next_trial_seq = seq + 1
        xa = np.asarray(samples["x_a"], dtype=float)
        xb = np.asarray(samples["x_b"], dtype=float)
        obs_a, obs_b = float(np.mean(xa)) if xa.size else math.nan, float(np.mean(xb)) if xb.size else math.nan
        plan_a = window_mean(xa, self.window) if xa.size else math.nan
        plan_b = window_mean(xb, self.window) if xb.size else math.nan
        self.add_trial(record, obs_a, obs_b, samples, plan_a, plan_b)

    def add_trial(self, record: dict, obs_a: float, obs_b: float, samples: dict | None = None,
                  plan_a: float | None = None, plan_b: float | None = None) -> None:
        """One trial: its record, its observables and (for the traces) its samples or None;
        ``plan_a``/``plan_b``: its windowed means over the plan's window (default: the means)."""
        trial = int(record["trial"])
        if trial in self.seen:
            return
        self.seen.add(trial)
        cond = str(record["condition"])
        self.table.append(record, obs_a, obs_b, plan_a, plan_b)
        if math.isfinite(obs_a) and math.isfinite(obs_b):
            self.stats.setdefault(cond, RunningStats()).add(obs_a, obs_b, record.get("f", False))
            self.scatter.setdefault(cond, collections.deque(maxlen=SCATTER_POINTS)).append(
                (_num(obs_a, 5), _num(obs_b, 5)))
        if samples is not None:
            xa, xb = np.asarray(samples["x_a"], dtype=float), np.asarray(samples["x_b"], dtype=float)
            t = np.asarray(samples["t"], dtype=float) if "t" in samples else np.arange(xa.size, dtype=float)
            tt, ta, tb = decimate(t, xa, xb)
            self.traces.append({"trial": trial, "condition": cond, "t": tt, "x_a": ta, "x_b": tb})
        self.run["done"] = len(self.seen)
        start = _utc_seconds(record.get("start_utc"))
        if start is not None:
            self.starts.append(start)
            if len(self.starts) >= 2 and self.starts[-1] > self.starts[0]:
                rate = (len(self.starts) - 1) / (self.starts[-1] - self.starts[0])
                self.run["rate_per_s"] = _num(rate, 3)
        self._eta()

    def _eta(self) -> None:
        rate, total = self.run["rate_per_s"], self.run["total"]
        if rate and total is not None and self.run["status"] == "running":
            self.run["eta_s"] = _num(max(total - self.run["done"], 0) / rate, 3)
        elif self.run["status"] != "running":
            self.run["eta_s"] = 0

    def on_event(self, entry: dict) -> None:
        if self.backfilled and event_key(entry) in self.backfilled:
            return  # read from disk already (a resumed run's backfill raced the runner)
        step = entry.get("step")
        when = _utc_seconds(entry.get("time_utc"))
        if self.t0 is None and when is not None:
            self.t0 = when
        rel = _num(when - self.t0, 6) if when is not None and self.t0 is not None else None
        if step in self.steps:
            self.steps[step] = {"outcome": entry.get("outcome"), "message": entry.get("message", ""),
                                "trial": entry.get("trial")}
            if step == "stabilize" and entry.get("temperature_k") is not None and rel is not None:
                self.temperature.append((rel, _num(entry["temperature_k"], 7), entry.get("trial")))
        if step == "suspend" and entry.get("reading") is not None and rel is not None:
            self.temperature.append((rel, _num(entry["reading"], 7), entry.get("trial")))
        if step in JOURNAL_STEPS:
            self.journal.append({"time_s": rel, "time_utc": entry.get("time_utc"), "step": step,
                                 "outcome": entry.get("outcome"), "trial": entry.get("trial"),
                                 "message": entry.get("message", "")})
            if step in ("fault", "reconnect", "outage", "suspend") and entry.get("outcome") in ("fault", "ok", "start",
                                                                                               "paused"):
                self.counts[step] += 1
        if step == "run" and entry.get("outcome") not in (None, "start"):
            self.run["status"] = entry.get("outcome")
            self.run["reason"] = entry.get("message") or None
            self._eta()

    def on_finished(self, status: str, reason: str | None) -> None:
        if self.run["path"]:  # the closed manifest: what the run recorded (its anytime evidence, why it stopped)
            manifest = read_json(Path(self.run["path"]) / "manifest.json")
            if manifest is not None and manifest.get("run_id") == self.run["run_id"]:
                self.describe(manifest)
        self.run["status"] = status
        self.run["reason"] = reason
        self.current = {"name": None, "trial": None}
        self._eta()

    # -- reading (any thread) ------------------------------------------------------------------
    def _publish(self) -> None:
        now = time.monotonic()
        if self.providers and (now - self._panels_at >= 1.0 or self.run["status"] != "running"):
            self._panels_at = now
            self.panels = []
            for title, provider in self.providers.items():
                try:
                    rows = provider(self.table)
                    json.dumps(rows, allow_nan=False)  # what the page can read (NaN is not JSON)
                    self.panels.append({"title": title, "rows": rows, "error": None})
                except Exception as exc:  # a provider's trouble shows in its panel only
                    self.panels.append({"title": title, "rows": {}, "error": f"{type(exc).__name__}: {exc}"})
        state = self._state()
        data = json.dumps(state, separators=(",", ":"), allow_nan=False).encode()
        with self._changed:
            self.version += 1
            self._json = data
            self._changed.notify_all()

    def _state(self) -> dict:
        dropped = max(self.pushed - self.taken - len(self.queue), 0)
        return {
            "run": dict(self.run), "current": dict(self.current),
            "steps": [{"name": k, **(v or {"outcome": None, "message": "", "trial": None})} for k, v in self.steps.items()],
            "traces": list(self.traces),
            "scatter": {k: list(v) for k, v in sorted(self.scatter.items())},
            "temperature": {"points": list(self.temperature), "band": self.band},
            "journal": list(self.journal), "counts": dict(self.counts),
            "stats": {k: v.to_json() for k, v in sorted(self.stats.items())},
            "panels": list(self.panels), "campaign": self.campaign,
            "view": {"dropped": dropped, "error": self.error, "stop_requested": self.stop_request is not None},
        }

    def snapshot_json(self) -> tuple[int, bytes]:
        with self._lock:
            return self.version, self._json

    def wait(self, after: int, timeout: float) -> tuple[int, bytes]:
        """The state once its version passes ``after`` (or the current one after ``timeout``)."""
        with self._changed:
            self._changed.wait_for(lambda: self.version > after or self._stop.is_set(), timeout)
            return self.version, self._json

    # -- the acquisition side ------------------------------------------------------------------
    def request_stop(self, who: str) -> int | None:
        """The run stops after the trial in progress (the runner asks after every trial).
        Returns that trial, as far as the view knows."""
        self.stop_request = who
        self._dirty = True
        self._wake.set()
        return self.current.get("trial")

    def observer(self) -> "LiveObserver":
        return LiveObserver(self)


class LiveObserver(Observer):
    """The runner's side of the view: appends to the hub's bounded queue and returns at once.

    ``deque.append`` on a full deque drops the oldest entry; it never blocks. Every callback is
    wrapped: an error switches the view off (``disabled`` holds why) and is never raised into
    the runner.
    """

    def __init__(self, hub: Hub):
        self.hub = hub
        self.disabled: str | None = None

    def _push(self, kind: str, args: tuple) -> None:
        if self.disabled is not None:
            return
        try:
            self.hub.queue.append((kind, args))
            self.hub.pushed += 1
        except Exception as exc:  # pragma: no cover - a deque append does not fail; belt and braces
            self.disabled = f"{type(exc).__name__}: {exc}"

    def run_started(self, *, run_id, path, total, done):
        self._push("started", (run_id, str(path), total, done))

    def step(self, name, trial):
        self._push("step", (name, trial))

    def trial_done(self, result):
        try:
            seq = self.hub.trials_pushed
            self.hub.trials_pushed = seq + 1
            self._push("trial", (dict(result.record), result.samples, seq))
        except Exception as exc:
            self.disabled = f"{type(exc).__name__}: {exc}"

    def event(self, entry):
        self._push("event", (entry,))

    def run_finished(self, result):
        try:
            self._push("finished", (result.status, result.reason))
        except Exception as exc:
            self.disabled = f"{type(exc).__name__}: {exc}"

    def stop_requested(self):
        try:
            return None if self.disabled is not None else self.hub.stop_request
        except Exception:
            return None


class Observers(Observer):
    """Several observers as one, called in order (the terminal's bars, then the live view,
    whose callbacks never raise)."""

    def __init__(self, *observers: Observer):
        self.observers = [o for o in observers if o is not None]

    def _each(self, name: str, *args, **kwargs) -> None:
        for obs in self.observers:
            getattr(obs, name)(*args, **kwargs)

    def run_started(self, **kw):
        self._each("run_started", **kw)

    def step(self, name, trial):
        self._each("step", name, trial)

    def trial_done(self, result):
        self._each("trial_done", result)

    def event(self, entry):
        self._each("event", entry)

    def run_finished(self, result):
        self._each("run_finished", result)

    def stop_requested(self):
        for obs in self.observers:
            who = obs.stop_requested()
            if who:
                return who
        return None
