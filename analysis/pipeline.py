"""The analysis stage: one dataset in, the results contract (v1) and the evidence ladder out.

Reading is part by part (bounded memory): per-trial observables are reduced as each part
is read; sample-level series are kept only where a test needs them (the circular-shift
null, coherence on a capped number of trials, the Gaussian witness on ``main``).

The confirmatory tests (the plan's ``confirmatory``) are corrected with Holm in two
families: the evidence (dependence, each control, the witnesses) and the no-signalling
checks. The verdict follows DESIGN.md's ladder:

1. dependence: main's trial-level permutation test rejects independence;
2. protocol-specific: dependence, main's MI exceeds every control's (label permutation
   among the interleaved trials, within blocks), and no signalling is detected;
3. nonclassical: a witness (CHSH with randomized settings, or positive log negativity
   of vacuum-calibrated quadratures) is violated and no signalling is detected.

``level`` is the highest rung whose own test holds; detected signalling caps it at
``dependence``. The family, Holm and the grading are :func:`corrlab.analysis.ladder.grade`'s.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from corrlab.plan import AnalysisPlan, load_plan, plan_sha256
from corrlab.results import Result, to_jsonable
from corrlab.analysis.design import recorded_design, verify_source
from corrlab.analysis.assumptions import build as build_assumptions
from corrlab.analysis.ladder import Verdict, control_key, grade, no_signalling_key, signalling_pvalues
from corrlab.errors import DatasetError, PlanError
from corrlab.dataset import open_source
from corrlab.dataset.trial_ids import format_ranges, format_trial_ids, missing_ids, parse_trial_ids

COHERENCE_MAX_TRIALS = 400  # per condition: coherence needs samples, not every trial of a night
INTERVAL_RESAMPLES = 1999  # bootstrap/subsampling resamples of the MI intervals (the tests use the plan's)


@dataclass
class TrialData:
    """Per-trial observables of a dataset (plus the series the sample-level tests need)."""

    trial: np.ndarray
    condition: np.ndarray
    block: np.ndarray
    setting_a: np.ndarray
    setting_b: np.ndarray
    f: np.ndarray
    a: np.ndarray  # (n,) or (n, 2): the windowed mean of x (and y)
    b: np.ndarray
    series: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)  # condition -> [(xa, xb)]
    quadratures: dict[str, list[np.ndarray]] = field(default_factory=dict)  # main: per trial (4, n): x_a,y_a,x_b,y_b
    sample_rate: float | None = None

    def select(self, condition: str) -> np.ndarray:
        return self.condition == condition

    @property
    def conditions(self) -> list[str]:
        present = sorted(set(self.condition.tolist()))
        return (["main"] if "main" in present else []) + [c for c in present if c != "main"]


def _complete(data: TrialData) -> np.ndarray:
    """Trials with both outcomes (no NaN observable on either side)."""
    def ok(v):
        return np.isfinite(v).all(axis=1) if v.ndim == 2 else np.isfinite(v)
    return ok(data.a) & ok(data.b)


def _subset(data: TrialData, keep: np.ndarray) -> TrialData:
    """The trials ``keep`` (series and quadratures hold only complete trials already, see extract)."""
    return replace(data, trial=data.trial[keep], condition=data.condition[keep], block=data.block[keep],
                   setting_a=data.setting_a[keep], setting_b=data.setting_b[keep], f=data.f[keep],
                   a=data.a[keep], b=data.b[keep])


def _window_means(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Mean of each trial's samples within [lo, hi) of its length (cumulative sums: one pass)."""
    lo = starts + np.floor(lengths * window[0]).astype(np.int64)
    hi = starts + np.maximum(np.floor(lengths * window[1]).astype(np.int64), np.floor(lengths * window[0]).astype(np.int64) + 1)
    csum = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    return (csum[hi] - csum[lo]) / (hi - lo)


def extract(source, plan: AnalysisPlan, *, phases: dict | None = None, want_series: bool = True,
            want_quadratures: bool = False, exclude=()) -> TrialData:
    """Stream the parts once; reduce each trial to its observable.

    ``exclude``: trial ids left out (each must be in the dataset: :class:`PlanError` naming
    those that are not). Every value that enters the analysis (x, and y where read) must be
    finite: otherwise one :class:`DatasetError` line names each column, the trials and what
    to exclude (checked here, where the data enter, not in an estimator).
    """
    columns = ["trial", "condition", "setting_a", "setting_b", "f", "t", "x_a", "x_b"]
    has_y = {"y_a", "y_b"} <= set(source.columns)
    if plan.observable == "quadratures" and not has_y:
        raise PlanError("the plan's observable is 'quadratures' but the dataset has no y_a/y_b columns")
    if has_y and (plan.observable == "quadratures" or want_quadratures):
        columns += ["y_a", "y_b"]
    values = [c for c in columns if c in ("x_a", "x_b", "y_a", "y_b")]
    out: dict[str, list] = {k: [] for k in ("trial", "condition", "setting_a", "setting_b", "f", "a", "b")}
    series: dict[str, list] = {}
    quads: dict[str, list] = {}
    dt = None
    excluded = np.asarray(sorted(exclude), dtype=np.int64)
    excluded_seen: set[int] = set()
    bad: dict[str, dict[int, str]] = {}  # column -> trial -> "part" | "null" | "all" (what was wrong)
    missing: dict[str, dict[int, dict]] = {}  # side "a"/"b" -> trial -> its arm's columns and kinds (no outcome)
    for table in source.iter_parts(columns):
        if table.num_rows == 0:
            continue
        trial = table["trial"].to_numpy()
        if excluded.size:
            drop = np.isin(trial, excluded)
            if drop.any():
                excluded_seen.update(np.unique(trial[drop]).tolist())
                table = table.filter(~drop)
                if table.num_rows == 0:
                    continue
                trial = table["trial"].to_numpy()
        starts = np.flatnonzero(np.r_[True, trial[1:] != trial[:-1]])
        lengths = np.diff(np.r_[starts, len(trial)])
        out["trial"].append(trial[starts])
        _find_bad_values(table, values, trial, starts, lengths, bad)
        _take_missing_arms(bad, missing)
        if bad:  # the analysis stops at the end of the pass: only look for more bad values
            continue
        lost = {side: np.isin(trial[starts], list(missing[side])) if missing.get(side) else None for side in "ab"}
        cond = np.asarray(table["condition"].cast("string").to_numpy(zero_copy_only=False))[starts]
        out["condition"].append(cond)
        for key in ("setting_a", "setting_b", "f"):
            out[key].append(table[key].to_numpy()[starts])
        xa, xb = _finite_or_zero(table["x_a"].to_numpy()), _finite_or_zero(table["x_b"].to_numpy())
        ma, mb = _window_means(xa, starts, lengths, plan.window), _window_means(xb, starts, lengths, plan.window)
        if plan.observable == "quadratures":
            ya, yb = _finite_or_zero(table["y_a"].to_numpy()), _finite_or_zero(table["y_b"].to_numpy())
            ma = np.column_stack([ma, _window_means(ya, starts, lengths, plan.window)])
            mb = np.column_stack([mb, _window_means(yb, starts, lengths, plan.window)])
        for side, means in (("a", ma), ("b", mb)):  # a missing outcome stays missing (NaN), never a number
            if lost[side] is not None:
                means[lost[side]] = np.nan
        either = (lost["a"] if lost["a"] is not None else np.zeros(len(starts), bool)) | (
            lost["b"] if lost["b"] is not None else np.zeros(len(starts), bool))
        out["a"].append(ma)
        out["b"].append(mb)
        if dt is None and lengths[0] > 1:
            t = table["t"].to_numpy()
            dt = float(t[starts[0] + 1] - t[starts[0]])
        if want_series or plan.observable == "samples":
            for s, n, c in zip(starts[~either], lengths[~either], cond[~either]):
                kept = series.setdefault(c, [])
                if plan.observable == "samples" or len(kept) < COHERENCE_MAX_TRIALS:
                    kept.append((xa[s:s + n].copy(), xb[s:s + n].copy()))
        if want_quadratures and has_y:
            ya, yb = table["y_a"].to_numpy(), table["y_b"].to_numpy()
            for i, (s, n, c) in enumerate(zip(starts[~either], lengths[~either], cond[~either])):
                if c == "main":
                    quads.setdefault("main", []).append(
                        np.stack([xa[s:s + n], ya[s:s + n], xb[s:s + n], yb[s:s + n]]))
    unknown = sorted(set(excluded.tolist()) - excluded_seen)
    if unknown:
        held = np.concatenate(out["trial"]) if out["trial"] else np.zeros(0, np.int64)
        held = np.union1d(held, np.asarray(sorted(excluded_seen), dtype=np.int64))
        span = f"it holds {held.size} trials, ids {held.min()} to {held.max()}" if held.size else "it holds no trial"
        raise PlanError(f"exclude_trials: trial{'s' if len(unknown) > 1 else ''} {format_trial_ids(unknown)} "
                        f"{'are' if len(unknown) > 1 else 'is'} not in the dataset ({span})")
    if bad:
        raise DatasetError(_bad_values_message(_put_back_missing(bad, missing), values))
    if not out["trial"]:
        raise DatasetError("no trial left once the excluded trials are left out" if excluded_seen
                           else "the dataset holds no committed trial")
    data = {k: np.concatenate(v) for k, v in out.items()}
    trials_df = source.trials()
    block = np.zeros(len(data["trial"]), dtype=np.int64)
    if "block" in trials_df.columns and len(trials_df):
        lookup = dict(zip(trials_df["trial"].to_numpy().tolist(), trials_df["block"].to_numpy().tolist()))
        block = np.array([lookup.get(int(t), 0) for t in data["trial"]], dtype=np.int64)
    ids, counts = np.unique(data["trial"], return_counts=True)
    if (counts > 1).any():
        twice = ids[counts > 1]
        raise DatasetError(f"trial{'s' if len(twice) > 1 else ''} {format_trial_ids(twice[:20])} "
                           f"{'are' if len(twice) > 1 else 'is'} in more than one part of the dataset "
                           "(a part holds whole trials: split across parts, or repeated)")
    if any(missing.values()):
        main = data["condition"].astype(str) == "main"
        pairs = set(zip(data["setting_a"][main].tolist(), data["setting_b"][main].tolist()))
        if len(pairs) < 4:  # not a Bell test: an arm without values is a bad value, as any other
            raise DatasetError(_bad_values_message(_put_back_missing({}, missing), values))
    return TrialData(data["trial"], data["condition"].astype(str), block, data["setting_a"].astype(np.int64),
                     data["setting_b"].astype(np.int64), data["f"].astype(bool), data["a"], data["b"],
                     series, quads, (1.0 / dt) if dt else None)


def _finite_or_zero(v: np.ndarray) -> np.ndarray:
    """The values with non-finite ones (only ever those of a missing outcome) set to 0, so the
    cumulative sums of the window means stay finite for the other trials."""
    return v if np.isfinite(v).all() else np.where(np.isfinite(v), v, 0.0)


def _take_missing_arms(bad: dict, missing: dict) -> None:
    """Move, from ``bad`` to ``missing``, each trial whose x of one side has no finite value at all
    (non-finite or null throughout, with that side's y alike where read): a missing outcome
    (a detector that did not fire), which a Bell test counts instead of stopping on it.
    Whether the dataset is a Bell test is known only at the end: :func:`extract` puts them
    back as bad values when it is not."""
    for side in "ab":
        xs, ys = bad.get(f"x_{side}", {}), bad.get(f"y_{side}", {})
        for t in [t for t, kind in xs.items() if kind in ("all", "null")]:
            if ys.get(t, "all") not in ("all", "null"):
                continue  # y recorded in that trial: a bad value, not a missing outcome
            missing.setdefault(side, {})[t] = {f"x_{side}": xs.pop(t), **({f"y_{side}": ys.pop(t)} if t in ys else {})}
    for col in [c for c, trials in bad.items() if not trials]:
        del bad[col]


def _put_back_missing(bad: dict, missing: dict) -> dict:
    """``bad`` with the missing outcomes among the bad values again (for the one-line message)."""
    out = {c: dict(t) for c, t in bad.items()}
    for trials in missing.values():
        for t, kinds in trials.items():
            for col, kind in kinds.items():
                out.setdefault(col, {})[t] = kind
    return out


def _find_bad_values(table, values, trial, starts, lengths, bad: dict) -> None:
    """Note, per column, the trials with a non-finite or null value (cheap when all is well)."""
    for col in values:
        column = table[col]
        v = column.to_numpy()
        finite = np.isfinite(v)
        if finite.all():
            continue
        n_bad = np.add.reduceat((~finite).astype(np.int64), starts)
        n_null = (np.add.reduceat(column.is_null().to_numpy().astype(np.int64), starts) if column.null_count
                  else np.zeros_like(n_bad))
        noted = bad.setdefault(col, {})
        for i in np.flatnonzero(n_bad):
            kind = "null" if n_null[i] == lengths[i] else "all" if n_bad[i] == lengths[i] else "part"
            noted[int(trial[starts[i]])] = kind


def _some_trials(ids: list[int]) -> str:
    """'trial 7', 'trial 7 (and 2 more trials: 9, 12)', at most ten ids spelled out."""
    head = f"trial {ids[0]}"
    if len(ids) == 1:
        return head
    more = ", ".join(map(str, ids[1:10])) + (", ..." if len(ids) > 10 else "")
    return f"{head} (and {len(ids) - 1} more trial{'s' if len(ids) > 2 else ''}: {more})"


def _bad_values_message(bad: dict[str, dict[int, str]], order: list[str]) -> str:
    """One line: each column's bad trials, then the --exclude-trials that leaves them out."""
    pieces, every = [], set()
    for col in (c for c in order if c in bad):
        trials = bad[col]
        every.update(trials)
        said = []
        for kind, words, after in (("part", "non-finite value in ", ""), ("all", "non-finite for the whole of ", ""),
                                   ("null", "null for the whole of ", " (that arm was not recorded)")):
            ids = sorted(t for t, k in trials.items() if k == kind)
            if ids:
                said.append(words + _some_trials(ids) + after)
        pieces.append(f"{col}: {', '.join(said)}")
    ids = sorted(every)
    return (f"{'; '.join(pieces)}; exclude {'it' if len(ids) == 1 else 'them'} with --exclude-trials "
            f"{format_trial_ids(ids)} (the analysis is then exploratory)")


# ============================================================================ results


@dataclass(frozen=True)
class AnalysisResults(Result):
    """Everything ``corrlab analyze`` found; ``to_dict()`` is the results contract (v1)."""

    run_id: str
    dataset_sha256: str
    plan_sha256: str | None
    plan: dict
    alpha: float
    exploratory: bool
    preregistered: bool
    conditions: dict
    controls: list
    no_signalling: dict
    nonclassicality: dict
    verdict: Verdict
    family: list = field(default_factory=list)  # (name, pvalue, adjusted) of the confirmatory family
    excluded_trials: dict = field(default_factory=dict)  # run_id -> trial ids left out by hand (exploratory)
    missing_trials: dict = field(default_factory=dict)  # run_id -> [[first, last], ...] ids absent between the ends
    assumptions: dict = field(default_factory=dict)  # rung -> [{assumption, check, outcome, detail, pvalue}]
    calibration: dict | None = None  # the vacuum calibration and the witnesses over it (issue 14)
    anytime: dict | None = None  # the e-processes (issue 17): analysis/anytime.py
    details: dict = field(default_factory=dict, metadata={"internal": True}, repr=False)  # for the report

    def to_dict(self) -> dict:
        return to_jsonable({
            "format": "corrlab-results",
            "format_version": 1,
            "dataset": {"run_id": self.run_id, "sha256": self.dataset_sha256},
            "plan_sha256": self.plan_sha256,
            "alpha": self.alpha,
            "exploratory": self.exploratory,
            "preregistered": self.preregistered,
            "conditions": self.conditions,
            "controls": self.controls,
            "no_signalling": self.no_signalling,
            "nonclassicality": self.nonclassicality,
            "verdict": self.verdict.to_dict(),
            "family": [{"test": n, "pvalue": p, "pvalue_holm": q} for n, p, q in self.family],
            "excluded_trials": self.excluded_trials,
            "missing_trials": self.missing_trials,
            "assumptions": self.assumptions,
            **({"calibration": self.calibration} if self.calibration else {}),
            **({"anytime": self.anytime} if self.anytime else {}),
        })

    def summary(self) -> str:
        from corrlab.analysis.render import summary_text

        return summary_text(self)


# =========================================================================== analysis


def _resolve_plan(source, plan_override: dict | None, exploratory: bool) -> tuple[AnalysisPlan, str | None, bool, bool]:
    """The plan to use, its hash, whether the run is exploratory, and whether it was pre-registered."""
    recorded = source.plan if source.manifest.get("protocol") else None
    recorded_sha = source.manifest.get("plan_sha256")
    if recorded:
        if plan_sha256(recorded) != recorded_sha:
            raise DatasetError("the recorded analysis plan does not match its recorded plan_sha256 (altered?)")
        if plan_override is None:
            return load_plan(recorded, source="recorded plan"), recorded_sha, False, True
        plan = load_plan(plan_override, source="--plan")
        if plan.sha256 == recorded_sha:
            return plan, recorded_sha, False, True
        if not exploratory:
            raise PlanError(_NOT_THE_RECORDED_PLAN)
        return plan, plan.sha256, True, True
    plan = load_plan(plan_override or {}, source="--plan" if plan_override else "default plan")
    return plan, plan.sha256, bool(exploratory), False


_NOT_THE_RECORDED_PLAN = ("this plan differs from the one recorded at acquisition; rerun with --exploratory "
                          "(the results will say so)")


def _with_resamples(ctx: DatasetContext, n_resamples: int | None) -> DatasetContext:
    """The context whose plan has ``n_resamples`` (another plan, by :func:`_resolve_plan`'s rule)."""
    if n_resamples is None or n_resamples == ctx.plan.n_resamples:
        return ctx
    if ctx.preregistered and not ctx.exploratory:
        raise PlanError(_NOT_THE_RECORDED_PLAN)
    plan = load_plan(dict(ctx.plan.to_json(), n_resamples=n_resamples), source="n_resamples")
    return replace(ctx, plan=plan, plan_sha256=plan.sha256)


def _setting_phases(source) -> tuple[tuple[float, float], tuple[float, float]]:
    settings = (source.protocol or {}).get("settings") or {}
    return tuple(settings.get("a_deg", (0.0, 0.0))), tuple(settings.get("b_deg", (0.0, 0.0)))


def analyze_dataset(path, *, plan: dict | None = None, exploratory: bool = False,
                    vacuum_variance: tuple[float, float] | None = None, n_resamples: int | None = None,
                    exclude_trials=None, interval_resamples: int = INTERVAL_RESAMPLES, client=None,
                    progress: Callable[[str], None] | None = None) -> AnalysisResults:
    """Analyse one dataset (a v1 folder or a single Parquet file) by its recorded plan.

    ``n_resamples`` overrides the plan's permutation count (as ``corrlab analyze --resamples``:
    a count other than the recorded plan's is another plan, allowed with ``exploratory``, and
    the results' plan shows it), ``interval_resamples`` the resamples of each bootstrap or
    subsampling interval. ``exclude_trials`` (``"3,7-9"`` or ids, as ``--exclude-trials``)
    leaves those trials out: the analysis is then exploratory, and the results'
    ``excluded_trials`` say which.
    """
    (progress or (lambda msg: None))("reading trials")
    data, ctx = read_dataset(path, plan=plan, exploratory=exploratory, vacuum_variance=vacuum_variance,
                             n_resamples=n_resamples, exclude_trials=exclude_trials)
    return analyze_trials(data, ctx, interval_resamples=interval_resamples, client=client, progress=progress)


@dataclass(frozen=True)
class DatasetContext:
    """What the analysis needs to know of a dataset besides its trials."""

    run_id: str
    dataset_sha256: str
    plan: AnalysisPlan
    plan_sha256: str | None
    exploratory: bool
    preregistered: bool
    calibration: dict | None  # the vacuum variances {"a", "b"}, or None
    phases: tuple  # the settings' reference phases (degrees) of side A and side B
    magnetization_full_scale: dict | None = None  # volts at M/N = 1 {"a", "b"}: the records are magnetizations
    excluded_trials: dict = field(default_factory=dict)  # run_id -> trial ids left out by hand
    missing_trials: dict = field(default_factory=dict)  # run_id -> [[first, last], ...] ids absent between the ends
    design: dict = field(default_factory=dict)  # run_id -> DesignCheck.to_json(): the data against the recorded seed
    vacuum_calibration: dict | None = None  # the manifest's calibration with measurements (issue 14), or None
    schedule: dict | None = None  # {"conditions", "block_size"} of the recorded schedule the data were verified against
    anytime_record: dict | None = None  # the manifest's ``anytime``: the run's stopping rule, why it stopped, its prior


def read_dataset(path, *, plan: dict | None = None, exploratory: bool = False,
                 vacuum_variance: tuple[float, float] | None = None,
                 n_resamples: int | None = None, exclude_trials=None) -> tuple[TrialData, DatasetContext]:
    """Verify a dataset, resolve its plan, and reduce its parts to per-trial observables.

    ``n_resamples`` replaces the count of ``plan`` (default: the recorded plan), as
    ``corrlab analyze --resamples`` does, before the plan is resolved. ``exclude_trials``
    (``"3,7-9"`` or ids) leaves trials out (:func:`extract`); the context records them.
    """
    exclude = parse_trial_ids(exclude_trials) if exclude_trials is not None else []
    source = open_source(path, vacuum_variance=vacuum_variance)
    if isinstance(path, (str, Path)) and Path(path).is_dir():
        report = source.verify()
        if not report.ok:
            raise DatasetError(f"dataset {path}: {report.problems[0]}")
    if n_resamples is not None:
        plan = dict(plan or source.plan or {}, n_resamples=n_resamples)
    the_plan, sha, is_exploratory, preregistered = _resolve_plan(source, plan, exploratory)
    calibration = (source.calibration or {}).get("vacuum_variance")
    data = extract(source, the_plan, want_series=True, want_quadratures=calibration is not None, exclude=exclude)
    gaps = missing_ids(np.union1d(data.trial, np.asarray(exclude, dtype=np.int64)).tolist())
    design = verify_source(source, data=data)  # the labels the analysis uses, against the recorded seed
    recorded = recorded_design(source) if design.outcome == "holds" else None
    schedule = ({"conditions": dict(recorded["conditions"]), "block_size": int(recorded["block_size"])}
                if recorded and recorded.get("conditions") and recorded.get("block_size") else None)
    ctx = DatasetContext(source.run_id, source.manifest_sha256, the_plan, sha, is_exploratory, preregistered,
                         calibration, _setting_phases(source),
                         (source.calibration or {}).get("magnetization_full_scale"),
                         excluded_trials={source.run_id: exclude} if exclude else {},
                         missing_trials={source.run_id: [list(g) for g in gaps]} if gaps else {},
                         design={} if design.outcome == "unchecked" else {source.run_id: design.to_json()},
                         # a number given here (--vacuum-variance) is a stated calibration, whatever was measured
                         vacuum_calibration=None if vacuum_variance is not None else source.calibration,
                         schedule=schedule, anytime_record=source.manifest.get("anytime"))
    return data, ctx


def analyze_trials(data: TrialData, ctx: DatasetContext, *, n_resamples: int | None = None,
                   interval_resamples: int = INTERVAL_RESAMPLES, runs: np.ndarray | None = None, client=None,
                   progress: Callable[[str], None] | None = None) -> AnalysisResults:
    """The analysis proper, on per-trial observables (one dataset, or several pooled).

    ``runs`` (one code per trial) marks pooled runs: trials are re-paired only within
    their run, as randomization blocks are. ``client`` (a ``dask.distributed.Client``)
    spreads the resampling tasks over its workers; each task has its own generator seeded
    by the plan's seed and the task's name, so the results do not depend on where or in
    which order the tasks ran. ``n_resamples`` other than the plan's makes another plan, as in
    :func:`read_dataset` (the results' plan shows it; a pre-registered plan needs the context
    to be exploratory already).
    """
    from corrlab.analysis import coherence as coh
    from corrlab.analysis.bell import chsh_test
    from corrlab.analysis import vacuum
    from corrlab.analysis.gaussian import gaussian_entanglement
    from corrlab.analysis.intervals import mi_difference_interval, mi_interval
    from corrlab.analysis.bell import settings_test
    from corrlab.analysis.nosignalling import drift_test, no_signalling_test, sequence_test, serial_test
    from corrlab.analysis.permutation import (circular_shift_test, label_permutation_test, repairing_test,
                                              time_local_blocks)

    say = progress or (lambda msg: None)
    ctx = _with_resamples(ctx, n_resamples)
    the_plan, sha, is_exploratory, preregistered = ctx.plan, ctx.plan_sha256, ctx.exploratory, ctx.preregistered
    data_notes = _data_notes(ctx)
    # trials with a missing outcome (a Bell test's detector did not fire, see extract): counted by
    # CHSH, left out of every other test (which need both values)
    full = data
    from corrlab.analysis.anytime import anytime_section, decisions

    say("anytime evidence (e-processes)")
    anytime = anytime_section(full, ctx, runs=runs, schedule=ctx.schedule, record=ctx.anytime_record)
    complete = _complete(data)
    if not complete.all():
        data = _subset(data, complete)
        runs = None if runs is None else runs[complete]
    m = the_plan.n_resamples
    calibration = ctx.calibration
    conditions = data.conditions
    if "main" not in conditions:
        raise DatasetError("the dataset has no 'main' trials to analyse")
    alpha = the_plan.alpha
    details: dict[str, Any] = {"data": data, "nulls": {}, "coherence": {}}

    # -- the resampling work: independent tasks, each with its own seeded generator ------------
    # (so they can run in any order, here or on a Dask cluster, with the same results)
    first = (lambda v: v[:, 0] if v.ndim == 2 else v)
    seed = the_plan.seed
    sizes = {cond: int(data.select(cond).sum()) for cond in conditions}
    effect = _effect_estimator(the_plan.statistic)
    time_block = the_plan.time_block_trials

    def dependence_blocks(sel):
        """The re-pairing blocks of these trials: consecutive trials in time (within runs when pooled)."""
        within = None if runs is None else runs[sel]
        return time_local_blocks(data.trial[sel], size=time_block, within=within) if time_block else within

    jobs: list[_Job] = []
    for cond in conditions:
        sel = data.select(cond)
        a, b = data.a[sel], data.b[sel]
        if sizes[cond] < 4:
            continue
        for est in the_plan.estimators:
            jobs.append(_Job(("mi", cond, est), mi_interval, (a, b), dict(
                estimator=est, k=the_plan.ksg_k, confidence_level=the_plan.confidence_level,
                n_resamples=interval_resamples, rng=_task_rng(seed, "mi", cond, est))))
        if the_plan.observable == "samples":
            xs = data.series.get(cond, [])
            jobs.append(_Job(("dependence", cond), circular_shift_test, ([s[0] for s in xs], [s[1] for s in xs]),
                             dict(n_resamples=m, rng=_task_rng(seed, "dependence", cond))))
        else:
            jobs.append(_Job(("dependence", cond), repairing_test, (a, b), dict(
                statistic=the_plan.statistic, n_resamples=m, k=the_plan.ksg_k, blocks=dependence_blocks(sel),
                standardize_within_blocks=bool(time_block), rng=_task_rng(seed, "dependence", cond))))
        if cond.startswith("control:"):
            jobs.append(_Job(("control", cond), label_permutation_test, ((data.a, data.b), data.condition), dict(
                statistic=the_plan.statistic, groups=("main", cond), blocks=data.block, n_resamples=m,
                k=the_plan.ksg_k, standardize_within_groups=True, rng=_task_rng(seed, "control", cond))))
            sel_m = data.select("main")
            jobs.append(_Job(("difference", cond), mi_difference_interval,
                             ((data.a[sel_m], data.b[sel_m]), (a, b)), dict(
                                 estimator=effect, k=the_plan.ksg_k,
                                 confidence_level=the_plan.confidence_level, n_resamples=interval_resamples,
                                 rng=_task_rng(seed, "difference", cond))))
        for side, local, remote in (("A", first(a), data.setting_b[sel]), ("B", first(b), data.setting_a[sel])):
            counts = np.unique(remote, return_counts=True)[1]
            if len(counts) < 2 or counts.min() < 2:  # a setting seen once cannot be compared
                continue
            jobs.append(_Job(("no_signalling", cond, side), no_signalling_test, (local, remote), dict(
                margin=the_plan.no_signalling_margin, test=the_plan.no_signalling_test,
                confidence_level=the_plan.confidence_level, rng=_task_rng(seed, "no_signalling", cond, side),
                n_resamples=interval_resamples if the_plan.no_signalling_test == "anderson" else None)))
            # every observable that enters a test is tested: y too when the quadratures are the observable
            y_local = (a if side == "A" else b)[:, 1] if the_plan.observable == "quadratures" else None
            if y_local is None and cond == "main" and calibration is not None and data.quadratures.get("main"):
                y_local = np.array([q[1 if side == "A" else 3].mean() for q in data.quadratures["main"]])  # the witness's
            if y_local is not None:
                jobs.append(_Job(("no_signalling", cond, side, "y"), no_signalling_test, (y_local, remote), dict(
                    margin=the_plan.no_signalling_margin, test=the_plan.no_signalling_test,
                    confidence_level=the_plan.confidence_level, rng=_task_rng(seed, "no_signalling", cond, side, "y"),
                    n_resamples=interval_resamples if the_plan.no_signalling_test == "anderson" else None)))
    order = np.argsort(data.trial)
    for side, values in (("A", first(data.a)), ("B", first(data.b))):
        if len(values) >= 8:
            jobs.append(_Job(("drift", side), drift_test, (values[order], data.trial[order].astype(float)),
                             dict(n_resamples=min(m, 1999), rng=_task_rng(seed, "drift", side))))
    # the dependence null's own assumption: main's trials exchangeable within its blocks on one side at least
    sel_m = data.select("main")
    if sizes.get("main", 0) >= 8:
        in_time_m = np.argsort(data.trial[sel_m], kind="stable")
        blocks_m = dependence_blocks(sel_m)
        for side, values in (("A", first(data.a[sel_m])), ("B", first(data.b[sel_m]))):
            jobs.append(_Job(("serial", side), serial_test, (values[in_time_m],), dict(
                blocks=None if blocks_m is None else np.asarray(blocks_m)[in_time_m], n_resamples=min(m, 999),
                rng=_task_rng(seed, "serial", side))))
    # the assumptions that the data can show: settings drawn per trial, conditions interleaved in time
    in_time = np.argsort(full.trial, kind="stable")
    main_in_time = in_time[full.condition[in_time] == "main"]
    if len(main_in_time) >= 8 and len(set(zip(full.setting_a[main_in_time].tolist(),
                                             full.setting_b[main_in_time].tolist()))) == 4:
        jobs.append(_Job(("settings",), settings_test, (full.setting_a[main_in_time], full.setting_b[main_in_time]),
                         dict(n_resamples=m, rng=_task_rng(seed, "settings"))))
    if len(conditions) > 1 and len(in_time) >= 8:
        jobs.append(_Job(("order",), sequence_test, (full.condition[in_time],), dict(
            serial=False, n_resamples=m, rng=_task_rng(seed, "order"))))
    say(f"{len(jobs)} resampling tasks ({m} permutations each)" + (" on the cluster" if client is not None else ""))
    done = _run_jobs(jobs, client, say)

    def result(*key):
        out = done[key]
        if isinstance(out, PlanError):
            raise out
        return out

    # -- per condition: MI with intervals, and the dependence test ---------------------
    cond_out: dict[str, dict] = {}
    for cond in conditions:
        entry: dict[str, Any] = {"n_trials": sizes[cond], "f_rate": float(data.f[data.select(cond)].mean())}
        cond_out[cond] = entry
        if sizes[cond] < 4:
            entry.update(mi={"estimate": None, "ci": [None, None], "method": "too few trials (< 4)"},
                         pvalue=None, n_resamples=0)
            continue
        estimates = {}
        for est in the_plan.estimators:
            r = done[("mi", cond, est)]
            estimates[est] = ({"estimate": None, "ci": [None, None], "method": f"not computed: {r}"}
                              if isinstance(r, PlanError)  # e.g. too few trials to subsample for KSG
                              else {"estimate": r.estimate, "ci": list(r.ci), "method": r.method})
        entry["mi"] = estimates.get(effect) or next(iter(estimates.values()))
        entry["estimators"] = estimates
        test = result("dependence", cond)
        entry.update(pvalue=test.pvalue, n_resamples=test.n_resamples, test=test.method, statistic=test.statistic)
        if getattr(test, "components", None):
            entry["components"] = {k: {"statistic": v[0], "pvalue": v[1]} for k, v in test.components.items()}
        details["nulls"][cond] = (test.statistic, test.null_distribution)

    # -- controls: main against each control ------------------------------------------------
    controls_out = []
    for cond in conditions:
        if ("control", cond) not in done:
            continue
        test = result("control", cond)
        diff = done[("difference", cond)]
        difference = ({"estimate": None, "ci": [None, None], "method": f"not computed: {diff}"}
                      if isinstance(diff, PlanError)
                      else {"estimate": diff.estimate, "ci": list(diff.ci), "method": diff.method})
        controls_out.append({"control": cond, "mi_difference": difference,
                             "pvalue": test.pvalue, "n_resamples": test.n_resamples, "test": test.method})
        details["nulls"][f"main - {cond}"] = (test.statistic, test.null_distribution)

    # -- no-signalling --------------------------------------------------------------------
    ns_tests = []
    for key in (k for k in done if k[0] == "no_signalling"):
        r = result(*key)
        ns_tests.append({"side": key[2], "condition": key[1], "observable": key[3] if len(key) > 3 else "x",
                         "statistic": r.statistic, "pvalue": r.pvalue,
                         "test": r.test, "difference": r.difference, "ci": list(r.ci), "tost_pvalue": r.tost_pvalue,
                         "margin": r.margin, "equivalent": r.equivalent, "n_trials": r.n_trials})
    drift = []
    for key in (k for k in done if k[0] == "drift"):
        d = result(*key)
        drift.append({"side": key[1], "statistic": d.statistic, "pvalue": d.pvalue, "slope": d.slope,
                      "method": d.method})

    # -- non-classicality ----------------------------------------------------------------------
    nonclassical: dict[str, Any] = {"gaussian": None, "chsh": None, "macroscopic": None, "not_applicable": {}}
    calibration_out = None
    if calibration is None:
        nonclassical["not_applicable"]["log_negativity"] = "no vacuum calibration (manifest calibration or --vacuum-variance)"
    elif not data.quadratures.get("main"):
        nonclassical["not_applicable"]["log_negativity"] = "no quadrature columns (y_a, y_b) recorded"
    else:
        say("Gaussian entanglement witness")
        phases_a, phases_b = ctx.phases
        sel = data.select("main")
        xs = []
        for q, sa, sb in zip(data.quadratures["main"], data.setting_a[sel], data.setting_b[sel]):
            xs.append(_derotate(q, math.radians(phases_a[int(sa)]), math.radians(phases_b[int(sb)])))
        lens = [x.shape[1] for x in xs]
        stacked = np.concatenate(xs, axis=1)
        trial_ids = np.repeat(np.arange(len(xs)), lens)
        try:  # at the calibrated value: the measured calibration's (issue 14), else the stated number
            cal_set = vacuum.confidence_set(ctx.vacuum_calibration, alpha=alpha)
            vv = cal_set.value if cal_set is not None else calibration
            g = gaussian_entanglement(stacked[0], stacked[1], stacked[2], stacked[3],
                                      vacuum_variance=(vv["a"], vv["b"]), trial=trial_ids,
                                      confidence_level=the_plan.confidence_level,
                                      rng=_task_rng(the_plan.seed, "gaussian"))
        except (DatasetError, PlanError) as exc:  # an unphysical matrix is an error, not a number
            nonclassical["not_applicable"]["log_negativity"] = f"not computed: {exc}"
        else:
            nonclassical["gaussian"] = {"log_negativity": g.log_negativity_corrected, "ci": list(g.ci),
                                        "log_negativity_raw": g.log_negativity, "bias": g.bias,
                                        "bias_statement": g.bias_statement, "pvalue": g.pvalue,
                                        "simon_entangled": g.simon.entangled, "duan": g.duan.statistic,
                                        "covariance": g.covariance, "method": g.method}
            details["gaussian"] = g
            calibration_out = vacuum.propagate(
                nonclassical["gaussian"], g, stacked, trial_ids, cal_set, calibration, alpha=alpha,
                n_resamples=1999, rng=_task_rng(the_plan.seed, "gaussian", "calibration"),
                nominal=(ctx.vacuum_calibration or {}).get("nominal_vacuum_variance"))
    sel = data.select("main")
    pairs = {(sa, sb) for sa, sb in zip(data.setting_a[sel], data.setting_b[sel])}
    if len(pairs) < 4:
        nonclassical["not_applicable"]["chsh"] = "main trials do not cover all four setting pairs"
    else:
        say("CHSH")
        # every main trial whose settings were recorded, a missing outcome counted as +1 (a fixed local
        # assignment: S <= 2 still holds for every local model), unless the plan states fair sampling
        fsel = full.select("main")
        xa_all, xb_all = first(full.a[fsel]), first(full.b[fsel])
        lost_a, lost_b = ~np.isfinite(xa_all), ~np.isfinite(xb_all)
        keep = ~(lost_a | lost_b) if the_plan.fair_sampling else np.ones(len(xa_all), bool)
        oa = np.where(lost_a | (xa_all >= 0), 1, -1)[keep]
        ob = np.where(lost_b | (xb_all >= 0), 1, -1)[keep]
        minus = tuple(the_plan.chsh_minus)
        missing_outcomes = {"a": int(lost_a.sum()), "b": int(lost_b.sum()), "trials": int((lost_a | lost_b).sum())}
        try:
            c = chsh_test(oa, ob, full.setting_a[fsel][keep], full.setting_b[fsel][keep], arrangement=minus,
                          confidence_level=the_plan.confidence_level)
        except PlanError as exc:  # fair sampling dropped every trial of a setting pair
            nonclassical["not_applicable"]["chsh"] = f"not computed: {exc}"
        else:
            nonclassical["chsh"] = {
                "S": c.S, "se": c.se, "pvalue": c.pvalue, "pvalue_normal": c.pvalue_normal, "ci": list(c.ci),
                "bound_method": c.bound_method, "n_trials": c.n_trials, "correlators": c.correlators,
                "missing_outcomes": missing_outcomes,
                "missing_outcome_rule": ("dropped (plan fair_sampling = true)" if the_plan.fair_sampling
                                         else "counted as +1")}
            details["chsh"] = c
    # the seed paper's macroscopic criterion: informational, never in the family, never the verdict
    full_scale = ctx.magnetization_full_scale
    if len(pairs) < 4:
        nonclassical["not_applicable"]["macroscopic"] = "main trials do not cover all four setting pairs"
    elif full_scale is None:
        nonclassical["not_applicable"]["macroscopic"] = (
            "no magnetization calibration (manifest calibration.magnetization_full_scale): the records are not "
            "known to be normalized magnetizations")
    else:
        say("macroscopic Bell criterion")
        try:
            nonclassical["macroscopic"] = _macroscopic(
                first(data.a[sel]) / full_scale["a"], first(data.b[sel]) / full_scale["b"], data.setting_a[sel],
                data.setting_b[sel], *ctx.phases, confidence_level=the_plan.confidence_level)
        except PlanError as exc:
            nonclassical["not_applicable"]["macroscopic"] = f"not computed: {exc}"

    # -- each rung's assumptions (corrlab.analysis.assumptions) ----------------------------------
    settings_check = done.get(("settings",))
    order_check = done.get(("order",))
    if not full.f.size or complete.all():
        lost_note = []
    else:
        n_lost = int((~complete).sum())
        lost_note = [f"{n_lost} trial(s) with a missing outcome (an arm without values: a detector that did not "
                     "fire): counted by CHSH" + (" as +1" if not the_plan.fair_sampling else
                                                 ": dropped, fair sampling stated") + "; left out of the other tests"]
    assumptions = build_assumptions(
        alpha=alpha, ns_tests=ns_tests,
        adjusted=signalling_pvalues(ns_tests, alpha=alpha, confirmatory=the_plan.confirmatory,
                                    multiplicity=the_plan.multiplicity),
        ns_key=no_signalling_key, drift=drift, time_block_trials=time_block,
        serial={side: done[("serial", side)] for side in "AB"
                if not isinstance(done.get(("serial", side), PlanError("")), PlanError)},
        order=None if isinstance(order_check, PlanError) else order_check,
        has_controls=any(c.startswith("control:") for c in conditions),
        settings=None if isinstance(settings_check, PlanError) else settings_check,
        chsh=nonclassical["chsh"], gaussian=nonclassical["gaussian"],
        quadrature_observables=the_plan.observable == "quadratures" or nonclassical["gaussian"] is not None,
        fair_sampling=the_plan.fair_sampling,
        missing_outcomes=(nonclassical["chsh"] or {}).get("missing_outcomes"),
        missing_ids=sum(hi - lo + 1 for gaps in ctx.missing_trials.values() for lo, hi in gaps),
        design=ctx.design,
        calibration_source="the vacuum calibration (manifest calibration or --vacuum-variance)",
        vacuum_calibration=calibration_out)
    if nonclassical["chsh"] is not None and settings_check is not None and not isinstance(settings_check, PlanError):
        nonclassical["chsh"]["settings"] = {
            "pvalue": settings_check.pvalue, "balance_pvalue": settings_check.balance_pvalue,
            "independence_pvalue": settings_check.independence_pvalue, "block_pvalue": settings_check.block_pvalue,
            "serial_pvalue": settings_check.serial_pvalue, "counts": settings_check.counts,
            "method": settings_check.method}

    # -- the family, Holm, the verdict (corrlab.analysis.ladder) ---------------------------------
    graded = grade(cond_out["main"], controls_out, ns_tests, nonclassical, alpha=alpha,
                   confirmatory=the_plan.confirmatory, multiplicity=the_plan.multiplicity,
                   no_signalling_margin=the_plan.no_signalling_margin, exploratory=is_exploratory,
                   preregistered=preregistered, notes=data_notes + lost_note, assumptions=assumptions,
                   anytime=decisions(anytime) if the_plan.evidence == "anytime" else None)
    adj = graded.adjusted
    for t in ns_tests:
        t["pvalue_holm"] = adj.get(no_signalling_key(t))
    for c in controls_out:
        c["pvalue_holm"] = adj.get(control_key(c))
    cond_out["main"]["pvalue_holm"] = adj.get("dependence")
    verdict = graded.verdict
    details["coherence"] = _coherence(data, the_plan, coh)
    return AnalysisResults(
        run_id=ctx.run_id, dataset_sha256=ctx.dataset_sha256, plan_sha256=sha, plan=the_plan.to_json(),
        alpha=alpha, exploratory=is_exploratory or bool(ctx.excluded_trials), preregistered=preregistered,
        conditions=cond_out, controls=controls_out,
        no_signalling={"tests": ns_tests, "signalling_detected": verdict.signalling_detected, "drift": drift},
        nonclassicality=nonclassical, verdict=verdict, family=graded.family,
        excluded_trials=ctx.excluded_trials, missing_trials=ctx.missing_trials, assumptions=assumptions,
        calibration=calibration_out, anytime=anytime,
        details=details)


def _effect_estimator(statistic: str) -> str:
    """The MI estimator reported as the effect size of a test statistic (the omnibus test's copula part)."""
    return "gaussian_copula" if statistic == "copula_omnibus" else statistic


def _data_notes(ctx: DatasetContext) -> list[str]:
    """The verdict's lines about the trials analysed: excluded by hand, ids missing."""
    notes = []
    for run_id, ids in ctx.excluded_trials.items():
        notes.append(f"EXPLORATORY: {len(ids)} trial(s) of {run_id} excluded by hand ({format_trial_ids(ids)}, "
                     "exclude_trials); these p-values do not carry pre-registered weight")
    for run_id, gaps in ctx.missing_trials.items():
        n = sum(hi - lo + 1 for lo, hi in gaps)
        spelled = format_ranges(gaps[:10]) + (",..." if len(gaps) > 10 else "")
        notes.append(f"{n} trial id(s) missing from {run_id} between its first and last ({spelled}): trials not "
                     "recorded or not exported; the tests assume their absence is unrelated to their outcomes")
    return notes


# ====================================================================== resampling tasks


def _task_rng(seed: int, *name: str) -> np.random.Generator:
    """The generator of one named task: the plan's seed and the task's name, nothing else."""
    return np.random.default_rng([int(seed), *(zlib.crc32(str(p).encode()) for p in name)])


@dataclass(frozen=True)
class _Job:
    """One resampling task: ``fn(*args, **kwargs)``; a PlanError is returned, not raised."""

    key: tuple
    fn: Callable
    args: tuple
    kwargs: dict

    def __call__(self):
        try:
            return self.fn(*self.args, **self.kwargs)
        except PlanError as exc:
            return exc


def _run_job(job: _Job):
    return job()


def _job_threads() -> int:
    """Threads for the resampling tasks: ``CORRLAB_ANALYSIS_THREADS``, else the cores (at most 4)."""
    import os

    value = os.environ.get("CORRLAB_ANALYSIS_THREADS", "")
    if value.strip():
        try:
            return max(1, int(value))
        except ValueError as exc:
            raise PlanError(f"CORRLAB_ANALYSIS_THREADS must be a positive integer; got {value!r}") from exc
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _run_jobs(jobs: list[_Job], client, say: Callable[[str], None]) -> dict:
    if client is None:
        # The tasks are independent (each its own seeded generator) and spend their time in
        # numpy/scipy calls that release the GIL: threads run them side by side, and the
        # results are those of the sequential loop (same keys, same order, same values).
        threads = min(_job_threads(), len(jobs))
        if threads > 1:
            import warnings
            from concurrent.futures import ThreadPoolExecutor

            from scipy.stats import DegenerateDataWarning

            # The tasks silence these two warnings with warnings.catch_warnings(), which saves and
            # restores the process-wide filters: threads can restore each other's state. Silenced
            # here for the whole pool, every state they restore silences them too, and the
            # filters are the caller's again once the pool is done.
            import scipy.linalg  # noqa: F401  (scipy's own OpenBLAS: loaded before it is limited)
            import scipy.stats  # noqa: F401
            from threadpoolctl import threadpool_limits

            # one BLAS thread per task thread: OpenBLAS's own threads spin between the many small
            # matrix products of a resampling loop, and on 2 cores took as much CPU as the work
            with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
                warnings.simplefilter("ignore", DegenerateDataWarning)
                warnings.filterwarnings("ignore", message="p-value (capped|floored)", category=UserWarning)
                futures = [pool.submit(job) for job in jobs]
                out = {}
                for i, (job, fut) in enumerate(zip(jobs, futures), 1):
                    say(f"task {i}/{len(jobs)}: {' '.join(job.key)}")
                    out[job.key] = fut.result()
            return out
        out = {}
        for i, job in enumerate(jobs, 1):
            say(f"task {i}/{len(jobs)}: {' '.join(job.key)}")
            out[job.key] = job()
        return out
    futures = client.map(_run_job, jobs, pure=False)
    return dict(zip((j.key for j in jobs), client.gather(futures)))


def _derotate(q: np.ndarray, theta_a: float, theta_b: float) -> np.ndarray:
    """Lock-in (X, Y) at reference phase theta back to the common frame's (x, p)."""
    out = np.empty_like(q, dtype=np.float64)
    for i, th in ((0, theta_a), (2, theta_b)):
        c, s = math.cos(th), math.sin(th)
        out[i] = q[i] * c - q[i + 1] * s
        out[i + 1] = q[i] * s + q[i + 1] * c
    return out


def _macroscopic(m_a, m_b, setting_a, setting_b, phases_a, phases_b, *, confidence_level: float) -> dict:
    """The seed paper's two-setting criterion on normalized magnetizations ``m`` in [-1, 1].

    ``E(s, t)`` is the mean of ``m_A m_B`` over the trials of settings ``(s, t)``; the 2x2
    correlation tensor ``T`` in the planes of the settings comes from
    :func:`corrlab.analysis.bell.plane_tensor_from_correlators` (each setting's angle is its
    reference phase). ``sum T^2 <= 1`` iff a local model gives these correlations for every
    pair of settings in the two planes (the largest CHSH value there is ``2 sqrt(sum)``).
    The plug-in sum is biased upwards by the entries' variances, ``sum Var(T)``; the
    estimate subtracts their estimates (cells are independent: ``Var E = var(m_A m_B) / n``).
    Interval: normal, around that estimate, with ``Var = 4 t' C t + 2 tr C^2`` (``C`` the
    covariance of the entries, ``t`` the plug-in tensor: exact for Gaussian entries, and
    conservative near 0). Coverage of the 95% interval measured on the spin worlds
    (2000 replicates each, 200 trials): 0.94 (true sum 0.03), 0.99 (0.017), 0.995 (0.005),
    0.93 (2.0), 0.95 (0.89), 0.94 (0.235); a BCa bootstrap over trials within setting
    pairs covered 0.85-0.89 near 0.
    """
    from scipy.special import ndtri

    from corrlab.analysis.bell import plane_tensor_from_correlators

    th_a, th_b = np.radians(np.asarray(phases_a, float)), np.radians(np.asarray(phases_b, float))
    cell = 2 * np.asarray(setting_a, np.int64) + np.asarray(setting_b, np.int64)
    prod = np.asarray(m_a, float) * np.asarray(m_b, float)
    big = float(max(np.max(np.abs(m_a)), np.max(np.abs(m_b))))
    if big > 1.5:
        raise PlanError(f"a calibrated magnetization reaches |m| = {big:.3g} > 1.5: check "
                        "calibration.magnetization_full_scale")
    groups = [prod[cell == i] for i in range(4)]
    counts = [len(g) for g in groups]
    if min(counts) < 5:
        raise PlanError(f"too few main trials per setting pair (00, 01, 10, 11: {counts}; 5 needed each)")
    # T is linear in E: its coefficients for each setting pair, from the same function
    basis = np.stack([plane_tensor_from_correlators(np.eye(4)[i].reshape(2, 2), th_a, th_b)
                      for i in range(4)]).reshape(4, 4)
    e = np.array([g.mean() for g in groups])
    var_e = np.array([g.var(ddof=1) / len(g) for g in groups])
    tensor = plane_tensor_from_correlators(e.reshape(2, 2), th_a, th_b)
    t = tensor.ravel()
    cov = (basis.T * var_e) @ basis
    plug_in = float(t @ t)
    estimate = plug_in - float(np.trace(cov))
    se = math.sqrt(4 * float(t @ cov @ t) + 2 * float(np.trace(cov @ cov)))
    z = float(ndtri(0.5 + confidence_level / 2))
    lo, hi = estimate - z * se, estimate + z * se
    if hi <= 1:
        holds, words = True, ("<= 1: the LHV condition holds; a local model gives these magnetization "
                              "correlations for every pair of settings in these planes")
    elif lo > 1:
        holds, words = False, (f"> 1: the LHV condition fails; some settings in these planes would give "
                               f"the magnetization correlations CHSH up to 2 sqrt(sum) = {2 * math.sqrt(plug_in):.3f} "
                               "(not a test of the settings used: that is CHSH's)")
    else:
        holds, words = None, "undecided: the interval contains 1"
    keys = ("00", "01", "10", "11")
    return {
        "lhv_sum": estimate, "ci": [lo, hi], "se": se, "lhv_sum_plug_in": plug_in, "holds": holds,
        "tensor": tensor, "correlators": dict(zip(keys, e.tolist())),
        "correlator_se": dict(zip(keys, np.sqrt(var_e).tolist())), "counts": dict(zip(keys, counts)),
        "method": ("two-setting LHV sum of the plane correlation tensor from E = mean(m_A m_B) per setting pair, "
                   "bias-corrected; normal interval with second-order variance"),
        "statement": (f"two-setting LHV sum {estimate:.3f} ({confidence_level:.0%} CI {lo:.3f} to {hi:.3f}) "
                      f"{words}; informational, not in the confirmatory family"),
    }


def _coherence(data: TrialData, plan: AnalysisPlan, coh) -> dict:
    out = {}
    if not data.sample_rate:
        return out
    for cond, series in data.series.items():
        n = min(len(s[0]) for s in series) if series else 0
        if n < 2 * 8:
            continue
        nperseg = min(plan.coherence_nperseg, n // 2)
        try:
            out[cond] = coh.welch_coherence([s[0] for s in series], [s[1] for s in series], fs=data.sample_rate,
                                            nperseg=nperseg, alpha=plan.alpha)
        except PlanError:
            continue
    return out
