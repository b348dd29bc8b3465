"""Many datasets: each analysed on its own, then pooled (one plan) or combined (several plans).

* Each dataset gets the full single-dataset analysis (its own recorded plan and seed).
* Pooled, when every dataset was analysed under the same plan (same ``plan_sha256``):
  the trials of all runs enter one analysis; the runs are blocks of the permutation
  scheme (trials are re-paired only within their run, condition labels permuted only
  within a run's randomization blocks), so a difference between runs cannot pass for
  dependence.
* Combined, otherwise: for each test that every run carries in its confirmatory family,
  one p-value across runs by Fisher's method (``scipy.stats.combine_pvalues``), named in
  the results; the runs are independent experiments, so the combination is valid.

Work is spread over a Dask cluster when a ``client`` (``dask.distributed.Client``) is
given: each dataset is read (parts through pyarrow) and analysed on a worker, and the
pooled analysis gathers only per-trial observables and spreads its resampling tasks over
the workers. Every task is seeded by the plan's seed and its name, so the results equal
the single-process ones.
"""

from __future__ import annotations

import csv
import glob
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from corrlab.analysis.pipeline import (
    COHERENCE_MAX_TRIALS,
    INTERVAL_RESAMPLES,
    AnalysisResults,
    DatasetContext,
    TrialData,
    analyze_dataset,
    analyze_trials,
    read_dataset,
)
from corrlab.analysis.render import SUMMARY_COLUMNS, summary_row  # the table's row (rendering); re-exported
from corrlab.results import Result, to_jsonable
from corrlab.errors import DatasetError, PlanError


def expand_datasets(args: Sequence[str | Path]) -> list[Path]:
    """Dataset paths from folders, globs and single Parquet files, in a stable order.

    A folder with a ``manifest.json`` is a dataset; a folder without one stands for the
    datasets directly inside it.
    """
    out: list[Path] = []
    for arg in args:
        text = str(arg)
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not matches:
            raise DatasetError(f"{text}: no dataset matches")
        for m in map(Path, matches):
            if m.is_dir() and not (m / "manifest.json").exists():
                inner = sorted(p for p in m.iterdir() if (p / "manifest.json").exists())
                if not inner:
                    raise DatasetError(f"{m}: not a dataset and holds no dataset folders")
                out += inner
            elif m.exists():
                out.append(m)
            else:
                raise DatasetError(f"{m}: no such dataset")
    seen = set()
    unique = [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]
    if not unique:
        raise DatasetError("no datasets given")
    return unique


@dataclass(frozen=True)
class ManyResults(Result):
    """The analysis of several datasets: each one, and their pooling or combination."""

    mode: str  # "pooled" | "combined" | "single"
    datasets: list  # summary rows, one per dataset
    results: list  # each dataset's results dict (v1 contract)
    pooled: AnalysisResults | None = None
    combined: dict | None = None
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return to_jsonable({
            "format": "corrlab-multi-results", "format_version": 1, "mode": self.mode,
            "datasets": self.datasets, "results": self.results,
            "pooled": self.pooled.to_dict() if self.pooled is not None else None,
            "combined": self.combined, "notes": self.notes,
        })

    def summary(self) -> str:
        from corrlab.analysis.render import many_summary_text

        return many_summary_text(self)

    def write_csv(self, path: str | Path) -> None:
        rows = list(self.datasets)
        if self.pooled is not None:
            rows.append(summary_row(self.pooled.to_dict()))
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
            w.writeheader()
            w.writerows(rows)


def _mapper(client) -> Callable:
    if client is None:
        return lambda fn, items: [fn(x) for x in items]
    return lambda fn, items: client.gather(client.map(fn, items, pure=False))


def resolve_exclusions(paths: Sequence[Path], exclude_trials) -> dict[Path, object]:
    """Which trials to leave out of which dataset: ``{path: ids}``.

    ``exclude_trials``: None; ids (``"3,7-9"`` or a list) of the one dataset given; or a
    mapping from a dataset (its path, folder or file name, or file stem: the run id) to its
    ids. Ids of one dataset with several given are ambiguous and refused, as is a name that
    matches no dataset or several.
    """
    if exclude_trials is None:
        return {}
    if not isinstance(exclude_trials, Mapping):
        if len(paths) != 1:
            raise PlanError("exclude_trials: trial ids belong to one dataset; with several, name the dataset of each "
                            "(exclude_trials={'RUN': '7,9'}; corrlab analyze --exclude-trials RUN=7,9)")
        return {paths[0]: exclude_trials}
    out: dict[Path, object] = {}
    for key, ids in exclude_trials.items():
        matches = [p for p in paths if str(key) in (str(p), p.name, p.stem)]
        if len(matches) != 1:
            names = ", ".join(p.name for p in paths)
            raise PlanError(f"exclude_trials: {key!r} names {'none' if not matches else 'more than one'} of the "
                            f"datasets ({names})")
        out[matches[0]] = ids
    return out


def analyze_many(paths: Sequence[str | Path], *, plan: dict | None = None, exploratory: bool = False,
                 n_resamples: int | None = None, exclude_trials=None, interval_resamples: int = INTERVAL_RESAMPLES,
                 pool: bool = True, client=None, progress: Callable[[str], None] | None = None) -> ManyResults:
    """Analyse each dataset, then pool them (same plan) or combine their p-values (Fisher).

    ``exclude_trials`` leaves trials out by hand (:func:`resolve_exclusions`: a mapping from
    each dataset to its ids, or the ids of a single dataset); each dataset so trimmed, and
    the pooled analysis, are exploratory and say which trials were left out.
    """
    say = progress or (lambda msg: None)
    paths = [Path(p) for p in paths]
    if not paths:
        raise DatasetError("no datasets given")
    run = _mapper(client)
    exclusions = resolve_exclusions(paths, exclude_trials)
    opts = {"plan": plan, "exploratory": exploratory, "n_resamples": n_resamples}
    say(f"analysing {len(paths)} datasets" + (" on the cluster" if client is not None else ""))
    results = run(_AnalyzeOne(dict(opts, interval_resamples=interval_resamples), exclusions), paths)
    rows = [summary_row(r) for r in results]
    if len(paths) == 1:
        return ManyResults("single", rows, results)
    shas = {r["plan_sha256"] for r in results}
    if pool and len(shas) == 1:
        say(f"pooling {len(paths)} runs")
        parts = run(_ReadOne(opts, exclusions), paths)
        data, runs, ctx = pool_trials(parts)
        pooled = analyze_trials(data, ctx, interval_resamples=interval_resamples, runs=runs, client=client,
                                progress=progress)
        return ManyResults("pooled", rows, results, pooled=pooled,
                           notes=[f"pooled {len(paths)} runs under one plan ({ctx.plan_sha256[:12]}): "
                                  "trials re-paired and labels permuted within runs"])
    why = "different plans" if len(shas) > 1 else "pooling not asked for"
    return ManyResults("combined", rows, results, combined=combine_results(results),
                       notes=[f"{len(paths)} runs with {why}: p-values combined across runs (Fisher)"])


class _AnalyzeOne:
    """A picklable task: one dataset's results dict (workers return plain data)."""

    def __init__(self, opts: dict, exclusions: dict | None = None):
        self.opts = opts
        self.exclusions = exclusions or {}

    def __call__(self, path: Path) -> dict:
        try:
            return analyze_dataset(path, exclude_trials=self.exclusions.get(path), **self.opts).to_dict()
        except (DatasetError, PlanError) as exc:
            raise type(exc)(f"{path}: {exc}") from exc


class _ReadOne(_AnalyzeOne):
    """A picklable task: one dataset's per-trial observables and context, for pooling."""

    def __call__(self, path: Path):
        try:
            return read_dataset(path, exclude_trials=self.exclusions.get(path), **self.opts)
        except (DatasetError, PlanError) as exc:
            raise type(exc)(f"{path}: {exc}") from exc


def pool_trials(parts: list[tuple[TrialData, DatasetContext]]) -> tuple[TrialData, np.ndarray, DatasetContext]:
    """Concatenate runs' trials: trial and block numbers made unique per run, a run code per trial."""
    datas = [d for d, _ in parts]
    ctxs = [c for _, c in parts]
    first = ctxs[0]
    offsets_t = np.cumsum([0] + [int(d.trial.max()) + 1 for d in datas[:-1]])
    offsets_b = np.cumsum([0] + [int(d.block.max()) + 1 for d in datas[:-1]])
    series: dict[str, list] = {}
    quads: dict[str, list] = {}
    for d in datas:
        for cond, s in d.series.items():
            series.setdefault(cond, []).extend(s)
        for cond, q in d.quadratures.items():
            quads.setdefault(cond, []).extend(q)
    if first.plan.observable != "samples":  # coherence only: keep the cap of one dataset
        series = {c: s[:COHERENCE_MAX_TRIALS] for c, s in series.items()}
    rates = {d.sample_rate for d in datas}
    data = TrialData(
        trial=np.concatenate([d.trial + o for d, o in zip(datas, offsets_t)]),
        condition=np.concatenate([d.condition for d in datas]),
        block=np.concatenate([d.block + o for d, o in zip(datas, offsets_b)]),
        setting_a=np.concatenate([d.setting_a for d in datas]),
        setting_b=np.concatenate([d.setting_b for d in datas]),
        f=np.concatenate([d.f for d in datas]),
        a=np.concatenate([d.a for d in datas]),
        b=np.concatenate([d.b for d in datas]),
        series=series,
        quadratures=quads,
        sample_rate=rates.pop() if len(rates) == 1 else None,
    )
    runs = np.concatenate([np.full(len(d.trial), i) for i, d in enumerate(datas)])
    same = {(str(c.calibration), str(c.magnetization_full_scale), c.phases) for c in ctxs}
    digest = hashlib.sha256("".join(sorted(c.dataset_sha256 for c in ctxs)).encode()).hexdigest()
    ctx = replace(first, run_id=f"pooled: {len(ctxs)} runs", dataset_sha256=digest,
                  exploratory=any(c.exploratory for c in ctxs), preregistered=all(c.preregistered for c in ctxs),
                  calibration=first.calibration if len(same) == 1 else None,
                  magnetization_full_scale=first.magnetization_full_scale if len(same) == 1 else None,
                  excluded_trials={k: v for c in ctxs for k, v in c.excluded_trials.items()},
                  missing_trials={k: v for c in ctxs for k, v in c.missing_trials.items()},
                  design={k: v for c in ctxs for k, v in c.design.items()},
                  # the label bets need one block composition; each run's own monitoring record stays with it
                  schedule=first.schedule if all(c.schedule == first.schedule for c in ctxs) else None,
                  anytime_record=None)
    if len(same) > 1:
        data.quadratures.clear()
    return data, runs, ctx


def combine_results(results: list[dict]) -> dict:
    """Fisher's combination, per confirmatory test that every run carries, of the raw p-values."""
    from scipy.stats import combine_pvalues

    families = [{f["test"]: f["pvalue"] for f in r["family"]} for r in results]
    common = [name for name in families[0] if all(name in f for f in families[1:])]
    tests = []
    for name in common:
        ps = [f[name] for f in families]
        stat, p = combine_pvalues(ps, method="fisher")
        tests.append({"test": name, "pvalue": float(p), "statistic": float(stat), "n_runs": len(ps)})
    return {"method": "Fisher's method (scipy.stats.combine_pvalues, -2 sum ln p ~ chi2(2k)) over independent runs",
            "tests": tests}


# Worker settings for a local cluster: one BLAS thread per worker process (no
# oversubscription of the cores), Dask's 10 ms stack profiler off and glibc's trimming at
# its usual threshold (Dask's 64 kB default returns freed arrays to the OS every time):
# together about 10% of a task's time here.
LOCAL_WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
LOCAL_DASK_CONFIG = {"distributed.worker.profile.enabled": False,
                     "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 128 << 20}


def local_cluster(n_workers: int):
    """A LocalCluster of single-threaded worker processes on 127.0.0.1 (no dashboard)."""
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set(LOCAL_DASK_CONFIG):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=None, env=LOCAL_WORKER_ENV)
