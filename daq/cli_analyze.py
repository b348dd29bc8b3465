"""``corrlab analyze DATASET``: tests, intervals and the evidence ladder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _vacuum(ctx, param, value):
    if value is None:
        return None
    try:
        va, vb = (float(v) for v in value.split(","))
    except ValueError as exc:
        raise click.BadParameter("expected two numbers VA,VB (vacuum variance of side A and B)") from exc
    if not (va > 0 and vb > 0):
        raise click.BadParameter("vacuum variances must be positive")
    return va, vb


@click.command()
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="write the results (v1 contract) here")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path),
              help="write an HTML report with plots here")
@click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="an analysis plan (TOML [analysis] table, or a protocol file) instead of the recorded one")
@click.option("--exploratory", is_flag=True, help="allow a plan other than the recorded one (the results say so)")
@click.option("--vacuum-variance", callback=_vacuum, metavar="VA,VB",
              help="calibration of a single Parquet file's quadratures (column units)")
@click.option("--resamples", type=int, help="override the plan's number of resamples (exploratory unless equal)")
def analyze(dataset, json_file, report_file, plan_file, exploratory, vacuum_variance, resamples):
    """Analyse DATASET (a dataset folder or a single Parquet file) by its recorded plan."""
    from rich.console import Console

    from analysis.pipeline import analyze_dataset
    from analysis.render import print_summary, write_report

    console = Console(highlight=False)
    plan = None
    if plan_file is not None:
        from corrlab.config import read_toml

        data = read_toml(plan_file, what="plan")
        plan = data.get("analysis", data)
    if resamples is not None:
        plan = dict(plan or _recorded_plan(dataset) or {}, n_resamples=resamples)
    with console.status("analysing") as status:
        res = analyze_dataset(dataset, plan=plan, exploratory=exploratory, vacuum_variance=vacuum_variance,
                              progress=lambda msg: status.update(f"analysing: {msg}"))
    print_summary(res, console)
    if json_file:
        json_file.write_text(json.dumps(res.to_dict(), indent=2) + "\n")
        console.print(f"results: {json_file}")
    if report_file:
        write_report(res, report_file)
        console.print(f"report: {report_file}")
    sys.exit(0)


def _recorded_plan(dataset: Path) -> dict | None:
    from daq.dataset import open_source

    return open_source(dataset).plan or None
