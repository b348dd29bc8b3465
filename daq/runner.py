"""The one runner: executes a protocol's plans on a bench and writes the dataset.

It journals every step, commits whole trials in parts, restores the bench's safe state in
``finally`` (each role's written and read back from its instrument; a role that could not be
reached or did not confirm is named in the journal and in the manifest's ``safe_state``, never
counted safe), and leaves an honest status: ``complete``; ``interrupted`` (Ctrl-C, SIGTERM,
an instrument that stayed away past the reconnect bound, a suspension past its limit:
resumable); ``aborted`` (anything else). Committed trials are never touched again.

Faults: an instrument error during a trial discards that trial (it was never written),
checks every role of the bench (``*IDN?``), brings back whatever is gone, reconfigures the
bench and repeats the trial. A lost connection (a role that does not answer at all: a power
blip, a reboot, a freeze) suspends the run in an outage, journaled from start to end, while
every role that is gone is retried with backoff, for up to the bench file's
``[reconnect] outage_tolerance_s``; any other fault reopens the role that faulted and counts
toward ``max_trial_attempts``. Past either bound the run stops as ``interrupted``. Signals arriving while a part is being committed are held until the
commit is done, so a part is never half-recorded.
"""

from __future__ import annotations

import datetime as _dt
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from corrlab.errors import CorrlabError, DatasetError, InstrumentError, PlanError, ProtocolAborted
from corrlab.dataset import DatasetWriter, check_run_id, utc_now
from corrlab.protocols.config import Protocol
from corrlab.protocols.messages import Call, Monitor, Sleep, Step, StepDone
from corrlab.protocols.schedule import TrialSpec, make_schedule
from corrlab.protocols.steps import TrialResult, setup_plan, trial_plan


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached the runner (a BaseException, like KeyboardInterrupt)."""


class Observer:
    """Progress callbacks; the CLI draws bars from them. All are optional no-ops here."""

    def run_started(self, *, run_id: str, path: Path, total: int, done: int) -> None: ...
    def step(self, name: str, trial: int) -> None: ...
    def trial_done(self, result: TrialResult) -> None: ...
    def event(self, entry: dict) -> None: ...
    def run_finished(self, result: "RunResult") -> None: ...

    def stop_requested(self) -> str | None:
        """Asked after every trial: a reason to stop the run there (who asked), or None to go on.
        The run then stops as ``interrupted`` (resumable) through the safe state."""
        return None


@dataclass
class RunResult:
    path: Path
    run_id: str
    status: str
    trials_committed: int
    trials_planned: int
    reason: str | None = None
    faults: list[dict] = field(default_factory=list)
    suspensions: int = 0
    elapsed_s: float = 0.0
    signal: str | None = None  # set when an operator's SIGINT/SIGTERM stopped the run
    outages: list[dict] = field(default_factory=list)
    safe_state: dict = field(default_factory=lambda: {"confirmed": [], "not_confirmed": {}})
    stopped: str | None = None  # the stopping rule's outcome (issue 17): "decided", "max_trials", or the status

    @property
    def safe(self) -> bool:
        """Every role confirmed in its safe state by its instrument."""
        return not self.safe_state["not_confirmed"]


def default_run_id(protocol: Protocol) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return check_run_id(f"{stamp}-{protocol.name}")


class Runner:
    """Executes plans; one instance per run (or resume)."""

    def __init__(self, protocol: Protocol, bench, writer: DatasetWriter, *, observer: Observer | None = None,
                 max_trial_attempts: int = 3, max_outages_per_trial: int = 10,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 evidence=None):
        self.protocol = protocol
        self.evidence = evidence  # corrlab.daq.evidence.RunEvidence: the e-processes and the stopping rule
        self.bench = bench
        self.writer = writer
        self.observer = observer or Observer()
        self.max_trial_attempts = max_trial_attempts
        self.max_outages_per_trial = max_outages_per_trial
        self.sleep = sleep
        self.clock = clock
        self.faults: list[dict] = []
        self.outages: list[dict] = []  # each: trial, start_utc, roles, reconnected, duration_s, outcome (end | fail)
        self.suspensions = 0
        self._suspended_s = 0.0
        self._critical = False
        self._held_signal: int | None = None

    # -- journal ------------------------------------------------------------------------
    def journal(self, step: str, outcome: str, message: str = "", *, trial: int | None = None, **data) -> None:
        entry = self.writer.event(step, outcome, message, trial=trial, **data)
        self.observer.event(entry)

    # -- executing messages ----------------------------------------------------------------
    def execute(self, msg: Any) -> Any:
        if isinstance(msg, Call):
            return self.bench.call(msg.role, msg.verb, *msg.args, **msg.kwargs)
        if isinstance(msg, Sleep):
            if msg.seconds > 0:
                self.sleep(msg.seconds)
            return None
        if isinstance(msg, Monitor):
            return self.monitor(msg)
        if isinstance(msg, Step):
            self.observer.step(msg.name, msg.trial)
            return None
        if isinstance(msg, StepDone):
            self.journal(msg.name, msg.outcome, msg.message, trial=None if msg.trial < 0 else msg.trial, **msg.data)
            return None
        raise PlanError(f"a plan yielded {msg!r}, which the runner does not know")

    def drive(self, plan) -> Any:
        """Run a plan to its end; return its return value."""
        reply = None
        while True:
            try:
                msg = plan.send(reply)
            except StopIteration as stop:
                return stop.value
            try:
                reply = self.execute(msg)
            except BaseException:
                plan.close()
                raise

    def monitor(self, msg: Monitor) -> float:
        """A suspender: pause while the reading is out of band; resume after ``settle_s`` in band."""
        value = float(self.bench.call(msg.role, msg.verb))
        if msg.low <= value <= msg.high:
            return value
        trial = self._trial
        start = self.clock()
        self.suspensions += 1
        self.journal("suspend", "paused", f"{msg.name or msg.verb} {value:.6g} outside [{msg.low:.6g}, {msg.high:.6g}]",
                     trial=trial, reading=value)
        in_band_since: float | None = None
        while True:
            now = self.clock()
            if now - start > msg.max_wait_s:
                self._suspended_s += now - start
                raise ProtocolAborted(
                    f"{msg.name or msg.verb} stayed outside [{msg.low:.6g}, {msg.high:.6g}] for more than {msg.max_wait_s:g} s",
                    status="interrupted")
            self.sleep(msg.poll_s)
            value = float(self.bench.call(msg.role, msg.verb))
            now = self.clock()
            if msg.low <= value <= msg.high:
                in_band_since = now if in_band_since is None else in_band_since
                if now - in_band_since >= msg.settle_s:
                    waited = now - start
                    self._suspended_s += waited
                    self.journal("resume", "ok", f"{msg.name or msg.verb} back in band for {msg.settle_s:g} s "
                                 f"after {waited:.2f} s", trial=trial, reading=value, suspended_s=waited)
                    return value
            else:
                in_band_since = None

    # -- signals ----------------------------------------------------------------------------
    def _on_signal(self, signum, frame):
        if self._critical:
            self._held_signal = signum
            return
        raise Interrupted(signal.Signals(signum).name)

    def _commit(self) -> None:
        self._critical = True
        try:
            self.writer.commit()
        finally:
            self._critical = False
        if self._held_signal is not None:
            signum, self._held_signal = self._held_signal, None
            raise Interrupted(signal.Signals(signum).name)

    # -- the safe state ---------------------------------------------------------------------------
    def restore_safe_state(self) -> dict:
        """Every role in its safe state, confirmed by its instrument; journal each role that is not.

        Returns the manifest's ``safe_state``: ``{"confirmed": [...], "not_confirmed": {role: why}}``.
        """
        report = self.bench.safe_state()
        for role, why in report.not_confirmed.items():
            self.journal("safe_state", "fail", f"{role}: not confirmed safe: {why}", role=role)
        if report.ok:
            self.journal("safe_state", "ok", f"every role confirmed in its safe state by its instrument "
                         f"({', '.join(report.confirmed)})", confirmed=report.confirmed)
        else:
            self.journal("safe_state", "partial",
                         f"{len(report.not_confirmed)} role(s) not confirmed safe: {', '.join(report.not_confirmed)}; "
                         f"confirmed: {', '.join(report.confirmed) or 'none'}",
                         confirmed=report.confirmed, not_confirmed=list(report.not_confirmed))
        return report.to_json()

    # -- the vacuum calibration (issue 14) --------------------------------------------------------
    def calibrate(self, which: str) -> None:
        """Run the protocol's calibration step (if it has one) and record it in the manifest's
        ``calibration``: ``measurements`` (each with its raw readings and fit), and
        ``vacuum_variance`` set to the latest fit (a stated one from the bench file is kept as
        ``nominal_vacuum_variance``). A "before" already recorded (a resumed run) is not repeated."""
        if self.protocol.calibration is None:
            return
        from corrlab.protocols.calibrate import calibrate

        cal = dict(self.writer.manifest.get("calibration") or {})
        done = cal.get("measurements") or []
        if which == "before" and any(m.get("which") == "before" for m in done):
            return
        measurement = self.drive(calibrate(self.protocol, which))
        measurement["time_utc"] = utc_now()
        if "vacuum_variance" in cal and not done and "nominal_vacuum_variance" not in cal:
            cal["nominal_vacuum_variance"] = cal["vacuum_variance"]
        cal["measurements"] = list(done) + [measurement]
        fit = measurement["fit"]
        if all(fit.get(s) for s in ("a", "b")):
            cal["vacuum_variance"] = {s: fit[s]["vacuum_variance"] for s in ("a", "b")}
        cal["source"] = "measured"
        self.writer.set_manifest(calibration=cal)

    # -- faults and outages -------------------------------------------------------------------------
    def recover(self, exc: InstrumentError, spec: TrialSpec, attempt: int, counted: int, outages: int) -> bool:
        """After an instrument fault in a trial (the trial is discarded): journal it, find out what
        is gone on the bench, and bring it all back before the trial is repeated.

        Every role is checked (``*IDN?``), not only the one that faulted: after a power blip each
        role holds a dead socket. When a role does not answer at all (refused, dropped, silent),
        connections were lost: the run is suspended in an outage (:meth:`ride_out`) until every
        role is back or the outage tolerance has passed. Such a fault does not count toward
        ``max_trial_attempts`` (the bench went away; the trial did not fail), but one trial meets
        at most ``max_outages_per_trial`` outages. Any other fault (garbage, a late reply, a
        record refused) counts, and the role that faulted is reopened with bounded backoff, as is
        any role found out of step. Returns True when the fault counted.
        """
        since, since_utc = self.clock(), utc_now()
        fault = {"trial": spec.trial, "role": exc.role, "error": str(exc), "attempt": attempt, "time_utc": since_utc}
        self.faults.append(fault)
        self.journal("fault", "fault", f"{exc}; trial {spec.trial} discarded (attempt {attempt})", trial=spec.trial,
                     role=exc.role, error_type=type(exc).__name__)
        gone = self.bench.check_all()
        if any(not absence.answered for absence in gone.values()):
            fault["outage"] = True
            if outages >= self.max_outages_per_trial:
                raise ProtocolAborted(f"trial {spec.trial} met {outages + 1} outages; last: {exc}",
                                      status="interrupted") from exc
            self.ride_out({role: str(absence) for role, absence in gone.items()}, spec, since, since_utc)
            return False
        if counted + 1 >= self.max_trial_attempts:
            raise ProtocolAborted(f"trial {spec.trial} failed {counted + 1} times; last: {exc}", status="interrupted") from exc
        refresh = list(gone)
        if exc.role in self.bench.config.roles and exc.role not in refresh:
            refresh.append(exc.role)  # a late reply may still be on its way: a fresh connection
        for role in refresh:
            try:
                used = self.bench.reconnect(role)
            except InstrumentError as again:  # gone after all: an outage, within its tolerance
                self.journal("reconnect", "fail", str(again), trial=spec.trial, role=role)
                self.ride_out({role: str(again)}, spec, since, since_utc)
                continue
            fault.setdefault("reconnect_attempts", used)
            self.journal("reconnect", "ok", f"{role} back after {used} attempt(s); *IDN? matches",
                         trial=spec.trial, role=role)
        return True

    def ride_out(self, gone: dict[str, str], spec: TrialSpec, since: float, since_utc: str) -> None:
        """An outage: suspend the run and reopen every role in ``gone`` (role -> why) with backoff
        (``[reconnect]`` of the bench file) until all are back and every role of the bench answers;
        raise :class:`ProtocolAborted` (``interrupted``) once ``outage_tolerance_s`` has passed
        since the fault (``since``, on the runner's clock). Journals the start, each role
        reconnected, and the end (or the failure) with the duration; records it in ``outages``.
        """
        rc = self.bench.config.reconnect
        tolerance = rc.outage_tolerance_s
        first = dict(gone)
        self.journal("outage", "start", f"{', '.join(gone)} not answering; run suspended for up to {tolerance:g} s "
                     f"(first: {next(iter(gone.values()))})", trial=spec.trial, roles=list(gone), reasons=first)
        record = {"trial": spec.trial, "start_utc": since_utc, "roles": list(gone), "reconnected": [],
                  "duration_s": 0.0, "outcome": "start"}
        self.outages.append(record)
        delay = rc.backoff_s
        while True:
            for role in list(gone):
                err = self.bench.reopen(role)
                if err is None:
                    del gone[role]
                    record["reconnected"].append(role)
                    self.journal("reconnect", "ok", f"{role} back {self.clock() - since:.2f} s after the fault; "
                                 "*IDN? matches", trial=spec.trial, role=role)
                else:
                    gone[role] = str(err)
            if not gone:  # every role reopened: is the whole bench there (a role may have gone since)?
                gone = {role: str(absence) for role, absence in self.bench.check_all().items()}
                if not gone:
                    break
                record["roles"] += [r for r in gone if r not in record["roles"]]
            elapsed = self.clock() - since
            if elapsed >= tolerance:
                record.update(duration_s=round(elapsed, 3), outcome="fail")
                last = next(iter(gone.values()))
                self.journal("outage", "fail", f"{', '.join(gone)} still not answering after {elapsed:.2f} s "
                             f"(outage tolerance {tolerance:g} s); last: {last}", trial=spec.trial, roles=list(gone),
                             duration_s=record["duration_s"], reconnected=list(record["reconnected"]))
                raise ProtocolAborted(f"{', '.join(gone)}: not reachable for {elapsed:.1f} s "
                                      f"(outage tolerance {tolerance:g} s); last: {last}", status="interrupted")
            self.sleep(max(0.0, min(delay, rc.max_backoff_s, tolerance - elapsed)))
            delay = min(delay * rc.backoff_factor, rc.max_backoff_s) if delay > 0 else min(0.01, rc.max_backoff_s)
        duration = self.clock() - since
        record.update(duration_s=round(duration, 3), outcome="end")
        self.journal("outage", "end", f"bench back {duration:.2f} s after the fault; reconnected: "
                     f"{', '.join(record['reconnected'])}; the trial is repeated", trial=spec.trial,
                     roles=list(record["reconnected"]), duration_s=record["duration_s"])

    # -- the run -------------------------------------------------------------------------------
    def run_trial(self, spec: TrialSpec) -> TrialResult:
        """One trial; after a fault it is discarded, the bench recovered and reconfigured, and the
        trial repeated."""
        attempt, counted, outages, reconfigure = 1, 0, 0, False
        while True:
            self._trial = spec.trial
            self._suspended_s = 0.0
            started = utc_now()
            try:
                if reconfigure:
                    self.drive(setup_plan(self.protocol))
                result = self.drive(trial_plan(self.protocol, spec))
            except InstrumentError as exc:
                if self.recover(exc, spec, attempt, counted, outages):
                    counted += 1
                else:
                    outages += 1
                attempt, reconfigure = attempt + 1, True
                continue
            result.record.update(start_utc=started, attempts=attempt, suspended_s=round(self._suspended_s, 6))
            return result

    def run(self, schedule: list[TrialSpec]) -> RunResult:
        t0 = time.monotonic()
        done = set(self.writer.committed_trials)
        todo = [s for s in schedule if s.trial not in done]
        self._trial = None
        run_id = self.writer.manifest["run_id"]
        self.observer.run_started(run_id=run_id, path=self.writer.path, total=len(schedule), done=len(done))
        status, reason, stop_signal = "aborted", None, None
        old_handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old_handlers[sig] = signal.signal(sig, self._on_signal)
        try:
            self.journal("run", "start", f"{len(todo)} trial(s) to measure, {len(done)} already committed")
            self.drive(setup_plan(self.protocol))
            if todo:
                self.calibrate("before")
            per_part = self.protocol.schedule.trials_per_part
            for spec in todo:
                result = self.run_trial(spec)
                self.writer.add_trial(result.record, result.samples)
                if self.evidence is not None:
                    self.evidence.add(result.record, result.samples)
                self.observer.trial_done(result)
                if self.writer.pending_trials >= per_part:
                    self._commit()
                    if self.evidence is not None and self.evidence.should_stop(len(self.writer.committed_trials)):
                        self.journal("stopping", "decided", f"the evidence is decided after trial {spec.trial} "
                                     f"({', '.join(self.evidence.keys)}: e-value >= 1/alpha); measuring stops",
                                     trial=spec.trial)
                        break
                ask = getattr(self.observer, "stop_requested", None)  # an observer of an older shape has none
                who = ask() if ask is not None else None
                if who:
                    raise ProtocolAborted(f"stopped after trial {spec.trial} at the request of {who}",
                                          status="interrupted")
            self._commit()
            if todo and self.protocol.calibration is not None and self.protocol.calibration.repeat_at_end:
                self.calibrate("after")
            status = "complete"
        except (Interrupted, KeyboardInterrupt) as exc:
            stop_signal = str(exc) or "SIGINT"
            status, reason = "interrupted", f"stopped by {stop_signal}"
        except ProtocolAborted as exc:
            status, reason = exc.status, str(exc)
        except InstrumentError as exc:  # outside a trial (setup): resumable
            status, reason = "interrupted", str(exc)
        except CorrlabError as exc:
            status, reason = "aborted", str(exc)
        except Exception as exc:  # a bug or an unforeseen failure: record it, then re-raise
            status, reason = "aborted", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            safe = self.restore_safe_state()
            self.journal("run", status, reason or "")
            fields = {"safe_state": safe}
            if self.evidence is not None:  # a run with a stopping rule or a prior (run_protocol, resume_run)
                fields["anytime"] = self.evidence.record(status, len(self.writer.committed_trials) +
                                                         self.writer.pending_trials)
            if self.outages or self.writer.manifest.get("outages"):  # every session's, in order
                fields["outages"] = list(self.writer.manifest.get("outages", [])) + self.outages
            self.writer.close(status, reason=reason, fields=fields)  # commits whole trials measured before a stop
        result = RunResult(self.writer.path, run_id, status, len(self.writer.committed_trials), len(schedule), reason,
                           self.faults, self.suspensions, time.monotonic() - t0, stop_signal, self.outages, safe,
                           self.evidence.stopped if self.evidence is not None else None)
        self.observer.run_finished(result)
        return result


# ==================================================================== entry points


def resolve(protocol: Protocol) -> tuple[dict, str]:
    """The protocol as recorded: its analysis plan validated and resolved; and the plan hash."""
    from corrlab.plan import load_plan

    plan = load_plan(protocol.analysis, source=f"protocol {protocol.name} [analysis]")
    data = protocol.to_json()
    data["analysis"] = plan.to_json()
    return data, plan.sha256


def run_protocol(protocol: Protocol, bench_config, out_dir: str | Path, *, run_id: str | None = None,
                 observer: Observer | None = None, max_trial_attempts: int = 3, sim_hook=None,
                 continue_from=()) -> RunResult:
    """Run ``protocol`` on the bench into ``out_dir/<run_id>``. Starts a simulated bench if asked.

    ``sim_hook(sim)`` is called with the started simulated bench (tests inject faults there).
    ``continue_from``: datasets of earlier runs of the same plan whose anytime evidence this run
    continues (their e-values multiply into this run's; :mod:`corrlab.daq.evidence`).
    """
    from corrlab.daq.evidence import RunEvidence, prior_from
    from corrlab.hashing import sha256_json
    from corrlab.instruments.roles import ConnectedBench

    protocol_json, plan_sha = resolve(protocol)
    run_id = check_run_id(run_id) if run_id else default_run_id(protocol)
    out_dir = Path(out_dir)
    if (out_dir / run_id).exists():
        raise DatasetError(f"dataset {out_dir / run_id} already exists; choose another run id or use --resume")
    schedule = make_schedule(protocol)
    prior, prior_runs = prior_from(continue_from, protocol) if continue_from else ({}, [])
    # the e-processes run inside acquisition only for a run that records them (a stopping rule or a prior)
    evidence = (RunEvidence(protocol, prior=prior, prior_runs=prior_runs)
                if protocol.stopping is not None or prior else None)
    with _SimulatorIfAsked(bench_config, protocol.seed) as (resources, sim):
        if sim_hook and sim is not None:
            sim_hook(sim)
        bench = ConnectedBench(bench_config, resources)
        idn = bench.connect()
        try:
            bench_json = bench_config.to_json()
            bench_json["resolved_resources"] = dict(bench.resources)
            calibration = bench_config.calibration.model_dump() if bench_config.calibration else None
            out_dir.mkdir(parents=True, exist_ok=True)
            writer = DatasetWriter.create(
                out_dir, run_id, protocol=protocol_json, bench=bench_json,
                protocol_sha256=sha256_json(protocol_json), plan_sha256=plan_sha, rng_seed=protocol.seed,
                instruments=idn, calibration=calibration, extra_columns=protocol.extra_columns,
                extra={"trials_planned": len(schedule),
                       "world_seed": sim.seed if sim is not None else None,
                       # a continued run's prior, known from the start (the live view's evidence
                       # panel reads it); the run's full record replaces it when it closes
                       **({"anytime": {"prior": prior, "prior_runs": prior_runs}} if prior else {})},
            )
            runner = Runner(protocol, bench, writer, observer=observer, max_trial_attempts=max_trial_attempts,
                            evidence=evidence)
            return runner.run(schedule)
        finally:
            bench.close()


def resume_run(path: str | Path, bench_config=None, *, observer: Observer | None = None,
               max_trial_attempts: int = 3, sim_hook=None) -> RunResult:
    """Continue an interrupted dataset with the recorded protocol and the same schedule."""
    from corrlab.daq.evidence import RunEvidence
    from corrlab.instruments.benchfile import bench_from_dict
    from corrlab.instruments.roles import ConnectedBench
    from corrlab.protocols.config import protocol_from_dict

    writer = DatasetWriter.reopen(path)
    try:
        manifest = writer.manifest
        recorded = dict(manifest["protocol"])
        protocol = protocol_from_dict(recorded, source=f"{path} manifest protocol")
        if bench_config is None:
            bench_data = {k: v for k, v in manifest["bench"].items() if k != "resolved_resources"}
            bench_config = bench_from_dict(bench_data, source=f"{path} manifest bench")
        schedule = make_schedule(protocol)
        world_seed = manifest.get("world_seed")
        with _SimulatorIfAsked(bench_config, protocol.seed if world_seed is None else world_seed) as (resources, sim):
            if sim_hook and sim is not None:
                sim_hook(sim)
            bench = ConnectedBench(bench_config, resources)
            try:
                idn = bench.connect()
                changed = {r: (manifest["instruments"].get(r), v) for r, v in idn.items() if manifest["instruments"].get(r) != v}
                if changed:
                    writer.event("resume", "warn", f"instrument identity changed since the run started: {changed}")
                writer.event("resume", "ok", f"resuming after trial {max(writer.committed_trials, default=-1)}")
                # the evidence continues: the committed trials replayed, the prior of a continued run kept
                recorded = manifest.get("anytime") or {}
                evidence = None
                if protocol.stopping is not None or recorded.get("prior"):
                    evidence = RunEvidence(protocol, prior=recorded.get("prior"),
                                           prior_runs=recorded.get("prior_runs", ()))
                    evidence.replay(path)
                runner = Runner(protocol, bench, writer, observer=observer, max_trial_attempts=max_trial_attempts,
                                evidence=evidence)
                return runner.run(schedule)
            finally:
                bench.close()
    except BaseException:
        if not writer._journal.closed:
            writer.close("interrupted", reason="resume failed before measuring")
        raise


class _SimulatorIfAsked:
    """Context manager: start the simulated bench if the bench file asks for it.

    Yields ``(resources, sim)``; on a real bench ``({}, None)``.
    """

    def __init__(self, bench_config, seed: int):
        self.config = bench_config
        self.seed = seed
        self.sim = None

    def __enter__(self):
        if not self.config.simulated:
            return {}, None
        from corrlab.instruments.sim.simulated_bench import SimulatedBench

        world_seed = self.config.world.seed if self.config.world and self.config.world.seed is not None else self.seed
        self.sim = SimulatedBench(self.config, seed=world_seed)
        resources = self.sim.start()
        return resources, self.sim

    def __exit__(self, *exc):
        if self.sim is not None:
            self.sim.stop()
        return False
