"""``corrlab analyze DATASET``: tests, intervals and the evidence ladder."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from corrlab.daq.cli.common import vacuum_option


@click.command()
@click.argument("datasets", nargs=-1, required=True)
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="write the results (v1 contract; several datasets: one file holding each) here")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path),
              help="write an HTML report with plots here")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path),
              help="several datasets: write the table across datasets here")
@click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="an analysis plan (TOML [analysis] table, or a protocol file) instead of the recorded one")
@click.option("--exploratory", is_flag=True, help="allow a plan other than the recorded one (the results say so)")
@click.option("--vacuum-variance", callback=vacuum_option, metavar="VA,VB",
              help="calibration of a single Parquet file's quadratures (column units)")
@click.option("--resamples", type=int, help="override the plan's number of resamples (exploratory unless equal)")
@click.option("--exclude-trials", "exclude_trials", multiple=True, metavar="[DATASET=]IDS",
              help="leave these trials out (3,7-9; several datasets: RUN=3,7-9, repeatable); the analysis is then "
                   "exploratory and the results' excluded_trials name them")
@click.option("--no-pool", is_flag=True, help="several datasets under one plan: combine p-values instead of pooling")
@click.option("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:port)")
@click.option("--workers", type=click.IntRange(min=1), help="run on a local Dask cluster of N worker processes")
def analyze(datasets, json_file, report_file, csv_file, plan_file, exploratory, vacuum_variance, resamples,
            exclude_trials, no_pool, scheduler, workers):
    """Analyse DATASETS (dataset folders, folders of datasets, globs, or single Parquet files).

    One dataset: by its recorded plan. Several: each on its own, then pooled (one plan;
    runs are blocks of the permutation scheme) or their p-values combined (Fisher).
    """
    from rich.console import Console

    from corrlab.analysis.multi import expand_datasets

    console = Console(highlight=False)
    paths = expand_datasets(datasets)
    plan = None
    if plan_file is not None:
        from corrlab.config import read_toml

        data = read_toml(plan_file, what="plan")
        plan = data.get("analysis", data)
    if len(paths) > 1 and vacuum_variance is not None:
        raise click.UsageError("--vacuum-variance applies to a single Parquet file")
    excluded = _exclusions(exclude_trials)
    with _dask_client(scheduler, workers) as client:
        if len(paths) == 1:
            from corrlab.analysis.multi import resolve_exclusions

            _analyze_one(paths[0], console, plan, exploratory, resamples, vacuum_variance,
                         resolve_exclusions(paths, excluded).get(paths[0]), client, json_file, report_file)
        else:
            _analyze_many(paths, console, plan, exploratory, resamples, excluded, not no_pool, client, json_file,
                          report_file, csv_file)
    sys.exit(0)


def _exclusions(values: tuple[str, ...]):
    """--exclude-trials values: one dataset's ids (joined), or {dataset: ids} when each names its dataset."""
    if not values:
        return None
    named: dict[str, str] = {}
    plain = []
    for value in values:
        if "=" in value:
            name, ids = (v.strip() for v in value.split("=", 1))
            named[name] = f"{named[name]},{ids}" if name in named else ids
        else:
            plain.append(value)
    if named and plain:
        raise click.UsageError("--exclude-trials: name the dataset of every value (RUN=IDS) or of none")
    return named or ",".join(plain)


def _analyze_one(dataset, console, plan, exploratory, resamples, vacuum_variance, exclude_trials, client, json_file,
                 report_file) -> None:
    from corrlab.analysis.pipeline import analyze_dataset
    from corrlab.analysis.render import print_summary, write_report

    with console.status("analysing") as status:
        res = analyze_dataset(dataset, plan=plan, exploratory=exploratory, n_resamples=resamples,
                              vacuum_variance=vacuum_variance, exclude_trials=exclude_trials,
                              client=client, progress=lambda msg: status.update(f"analysing: {msg}"))
    print_summary(res, console)
    _write_outputs(console, res, json_file, report_file, write_report)


def _analyze_many(paths, console, plan, exploratory, resamples, exclude_trials, pool, client, json_file, report_file,
                  csv_file) -> None:
    from corrlab.analysis.multi import analyze_many
    from corrlab.analysis.render import print_many, write_many_report

    with console.status("analysing") as status:
        many = analyze_many(paths, plan=plan, exploratory=exploratory, n_resamples=resamples,
                            exclude_trials=exclude_trials, pool=pool,
                            client=client,
                            progress=lambda msg: status.update(f"analysing: {msg}"))
    print_many(many, console)
    _write_outputs(console, many, json_file, report_file, write_many_report)
    if csv_file:
        many.write_csv(csv_file)
        console.print(f"table: {csv_file}")


def _write_outputs(console, res, json_file, report_file, write_report) -> None:
    if json_file:
        json_file.write_text(json.dumps(res.to_dict(), indent=2) + "\n")
        console.print(f"results: {json_file}")
    if report_file:
        write_report(res, report_file)
        console.print(f"report: {report_file}")


@contextlib.contextmanager
def _dask_client(scheduler: str | None, workers: int | None):
    """A Dask client on ADDRESS, or on a local cluster of N single-threaded worker processes."""
    if not (scheduler or workers):
        yield None
        return
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise click.UsageError("--scheduler/--workers need Dask: pip install 'corrlab[dask]'") from exc
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            from corrlab.errors import PlanError

            raise PlanError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        with client:
            yield client
        return
    from corrlab.analysis.multi import local_cluster

    with local_cluster(workers) as cluster, Client(cluster) as client:
        yield client
