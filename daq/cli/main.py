"""The ``corrlab`` command line. Heavy imports happen inside the commands, so ``--help`` is quick."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from corrlab import __version__
from corrlab.daq.cli.common import (EXIT_ABORTED, EXIT_INTERRUPTED, EXIT_NOT_SAFE, EXIT_VERIFY_FAILED, CorrlabGroup,
                                    wait_until_stopped)

@click.group(cls=CorrlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="corrlab")
def cli():
    """corrlab: acquire X_A(t), X_B(t) on a two-oscillator bench and grade the evidence.

    \b
    corrlab run protocols/demo.toml        run a protocol (simulated bench by default)
    corrlab inspect data/<run_id>          what a dataset holds; checksums verified
    corrlab analyze data/<run_id>          tests, intervals and the evidence ladder
    corrlab watch data/<run_id>            the run (or a campaign) in the browser
    """


def _console():
    from rich.console import Console

    return Console(stderr=False, highlight=False)


# ================================================================================ run


@cli.command()
@click.argument("protocol", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bench", "bench_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="bench file (TOML); default: the embedded simulated bench (common_cause world)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data"),
              show_default=True, help="data folder; the dataset goes to OUT/<run_id>")
@click.option("--run-id", help="dataset name (default: UTC time and protocol name)")
@click.option("--resume", "resume", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="continue an interrupted dataset with its recorded protocol and schedule")
@click.option("--continue-evidence", "continue_from", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="an earlier run of the same plan whose anytime evidence this run continues (its e-values "
                   "multiply into this run's; repeatable)")
@click.option("--quiet", is_flag=True, help="no progress bars")
@click.option("--analyze", "then_analyze", is_flag=True,
              help="when complete, analyse by the recorded plan: print the ladder, write "
                   "OUT/<run_id>.results.json and OUT/<run_id>.report.html")
@click.option("--live", is_flag=True, help="watch the run in a browser: serves a read-only page on 127.0.0.1 "
              "(prints its URL); the run never waits for it")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="chosen by the OS",
              help="the live view's port on 127.0.0.1 (with --live)")
@click.option("--live-control", is_flag=True,
              help="with --live: a 'stop after this trial' button (the run stops through the safe state, "
                   "resumable), guarded by a per-run token in the printed URL")
def run(protocol, bench_file, out_dir, run_id, resume, continue_from, quiet, then_analyze, live, port, live_control):
    """Run PROTOCOL (a protocol file, or the name of a bundled one such as 'demo').

    \b
    Exit status: 0 complete; 3 interrupted (resumable: --resume DATASET);
    4 aborted; 5 a role's safe state was not confirmed by its instrument
    (named on the terminal, in the journal and in the manifest's safe_state:
    check that instrument by hand; 5 wins over 3 and 4); 2 a corrlab error.
    """
    from corrlab.daq.progress import RichObserver
    from corrlab.daq.runner import resume_run, run_protocol
    from corrlab.instruments.benchfile import load_bench
    from corrlab.protocols.config import load_protocol

    console = _console()
    if (port or live_control) and not live:
        raise click.UsageError(f"{'--port' if port else '--live-control'} is for the live view: add --live")
    if resume and protocol:
        raise click.UsageError("give either PROTOCOL or --resume DATASET, not both")
    if not resume and not protocol:
        raise click.UsageError("missing PROTOCOL (e.g. protocols/demo.toml)")
    bench = load_bench(bench_file) if bench_file or not resume else None
    if resume and continue_from:
        raise click.UsageError("--continue-evidence starts a new run; a resumed run keeps its recorded evidence")
    proto = load_protocol(protocol) if not resume else None
    view = _live_view(console, port, live_control) if live else None
    try:
        with RichObserver(console, quiet=quiet) as obs:
            observer = obs if view is None else _both(obs, view.observer())
            if resume:
                result = resume_run(resume, bench, observer=observer)
            else:
                result = run_protocol(proto, bench, out_dir, run_id=run_id, observer=observer,
                                      continue_from=continue_from)
    finally:
        if view is not None:
            view.close()
    if view is not None:
        console.print(f"live view closed; replay the run with: corrlab watch {result.path}")
    colour = {"complete": "green", "interrupted": "yellow"}.get(result.status, "red")
    console.print(f"[{colour}]{result.status}[/]: {result.trials_committed}/{result.trials_planned} trials "
                  f"in {result.path} ({result.elapsed_s:.1f} s, {len(result.faults)} fault(s), "
                  f"{result.suspensions} suspension(s))")
    if result.reason:
        console.print(f"reason: {result.reason}")
    if result.stopped == "decided":
        console.print(f"stopped early: the evidence was decided after {result.trials_committed} trials "
                      "(manifest anytime.stopped)")
    not_safe = result.safe_state["not_confirmed"]
    for role, why in not_safe.items():
        console.print(f"[bold red]{role}: not confirmed safe[/]: {why}")
    if not_safe:
        confirmed = ", ".join(result.safe_state["confirmed"]) or "none"
        console.print(f"[bold red]check {', '.join(not_safe)} by hand[/] (confirmed safe: {confirmed})")
    if result.status == "interrupted":
        console.print(f"resume with: corrlab run --resume {result.path}")
    if result.status == "complete" and then_analyze:
        _analyze_after_run(console, result.path)
    if not_safe:
        sys.exit(EXIT_NOT_SAFE)
    if result.status == "interrupted":
        sys.exit(EXIT_INTERRUPTED)
    if result.status == "aborted":
        sys.exit(EXIT_ABORTED)


def _live_view(console, port: int, control: bool = False):
    """Start the live view (hub and server on 127.0.0.1) and print its address."""
    from corrlab.daq.live import LiveView
    from corrlab.daq.live.evidence import evidence_providers

    view = LiveView(port=port, control=control, providers=evidence_providers())  # a busy port: CorrlabError
    console.print(f"live view: {view.url}", soft_wrap=True)
    if control:
        console.print("the page can stop the run after a trial: keep its URL (with the token) to yourself")
    return view


def _both(*observers):
    from corrlab.daq.live import Observers

    return Observers(*observers)


def _analyze_after_run(console, path: Path) -> None:
    import json

    from corrlab.analysis.pipeline import analyze_dataset
    from corrlab.analysis.render import print_summary, write_report

    with console.status("analysing") as status:
        res = analyze_dataset(path, progress=lambda msg: status.update(f"analysing: {msg}"))
    print_summary(res, console)
    json_path = path.with_name(f"{path.name}.results.json")
    json_path.write_text(json.dumps(res.to_dict(), indent=2) + "\n")
    report = path.with_name(f"{path.name}.report.html")
    write_report(res, report)
    console.print(f"results: {json_path}\nreport:  {report}\ninspect: corrlab inspect {path}")


# ============================================================================ inspect


@cli.command()
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
def inspect(dataset):
    """What DATASET holds: status, trials per condition, f rate, checksums verified."""
    from rich.table import Table

    from corrlab.dataset import Dataset

    console = _console()
    ds = Dataset.open(dataset)
    m = ds.manifest
    report = ds.verify()
    console.print(f"[bold]{m['run_id']}[/]  status [bold]{m['status']}[/]  format v{m['format_version']}")
    console.print(f"created {m['created_utc']}  finished {m['finished_utc'] or '-'}")
    proto = m.get("protocol") or {}
    console.print(f"protocol {proto.get('protocol', {}).get('name', '?')}  seed {m['rng_seed']}  "
                  f"plan sha256 {str(m['plan_sha256'])[:16]}...")
    if m.get("stop_reason"):
        console.print(f"stop reason: {m['stop_reason']}")
    for role, why in ((m.get("safe_state") or {}).get("not_confirmed") or {}).items():
        console.print(f"[red]{role}: not confirmed safe[/] at the end of the run: {why}")
    trials = ds.trials()
    table = Table(title="trials by condition")
    for col in ("condition", "trials", "f = 1", "f rate", "settings (a,b) 00/01/10/11"):
        table.add_column(col, justify="right" if col != "condition" else "left")
    if len(trials):
        for cond, grp in trials.groupby("condition", sort=True):
            pairs = [int(((grp.setting_a == a) & (grp.setting_b == b)).sum()) for a in (0, 1) for b in (0, 1)]
            table.add_row(str(cond), str(len(grp)), str(int(grp.f.sum())), f"{grp.f.mean():.2f}",
                          "/".join(map(str, pairs)))
    console.print(table)
    planned = m.get("trials_planned")
    console.print(f"{len(trials)} trial(s) committed" + (f" of {planned} planned" if planned else "")
                  + f"; {len(m['parts'])} part(s), {ds.n_rows} sample rows; columns {', '.join(ds.columns)}")
    events = ds.events()
    faults = sum(1 for e in events if e.get("step") == "fault")
    suspends = sum(1 for e in events if e.get("step") == "suspend")
    console.print(f"journal: {len(events)} event(s), {faults} fault(s), {suspends} suspension(s)")
    for role, idn in (m.get("instruments") or {}).items():
        console.print(f"  {role:10s} {idn}")
    if report.ok:
        console.print(f"[green]verified[/]: {report.parts_checked} part(s), {report.rows_checked} rows, "
                      f"{report.trials_checked} trials; checksums match")
    else:
        for p in report.problems:
            console.print(f"[red]problem[/]: {p}")
        sys.exit(EXIT_VERIFY_FAILED)


@cli.command()
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
def verify(dataset):
    """Check every part's checksum and row count; name what is wrong (exit 1 if anything is)."""
    from corrlab.dataset import Dataset

    report = Dataset.open(dataset).verify()
    if report.ok:
        click.echo(f"ok: {report.parts_checked} part(s), {report.rows_checked} rows, {report.trials_checked} trials")
        return
    for problem in report.problems:
        click.echo(f"{dataset}: {problem}", err=True)
    sys.exit(EXIT_VERIFY_FAILED)


# ================================================================================ sim


@cli.group()
def sim():
    """The simulated bench."""


@sim.command("serve")
@click.argument("bench_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="world seed (if the bench file sets none)")
@click.option("--duration", type=float, default=None, help="stop by itself after this many seconds")
def sim_serve(bench_file, seed, duration):
    """Serve the simulated instruments of BENCH_FILE on 127.0.0.1 until Ctrl-C (or --duration)."""
    from corrlab.instruments.benchfile import load_bench
    from corrlab.instruments.sim.simulated_bench import SimulatedBench

    config = load_bench(bench_file)
    if not config.simulated:
        raise click.UsageError(f"{bench_file} is not a simulated bench (simulated = true)")
    world_seed = config.world.seed if config.world.seed is not None else seed
    simbench = SimulatedBench(config, seed=world_seed)
    resources = simbench.start()
    console = _console()
    console.print(f"simulated bench '{config.name}', world {config.world.kind}, seed {world_seed}:")
    for role, res in resources.items():
        console.print(f"  {role:10s} {config.roles[role].driver:14s} {res}")
    console.print("Ctrl-C to stop" + (f" (stops by itself after {duration:g} s)" if duration else ""))
    try:
        wait_until_stopped(duration, step_s=0.1)
    finally:
        simbench.stop()
        console.print("stopped")


def _register_optional():
    """Subcommand groups that live in their own modules (imported lazily by click)."""
    from importlib.util import find_spec

    for module, name in (("corrlab.daq.cli.simulate", "simulate"), ("corrlab.daq.cli.analyze", "analyze"),
                         ("corrlab.daq.cli.campaign", "campaign"), ("corrlab.daq.cli.importing", "import"),
                         ("corrlab.daq.cli.watching", "watch")):
        if name not in cli.commands and find_spec(module) is not None:
            cli.add_command(LazyCommand(module, name))


class LazyCommand(click.Command):
    """A command whose module is imported only when it runs (or shows its own help)."""

    def __init__(self, module: str, name: str):
        super().__init__(name)
        self._module, self._target = module, name
        self._real = None

    def _load(self):
        if self._real is None:
            import importlib

            self._real = getattr(importlib.import_module(self._module), self._target)
        return self._real

    def get_short_help_str(self, limit: int = 45) -> str:
        return LAZY_HELP.get(self._target, "")

    def make_context(self, info_name, args, parent=None, **extra):
        return self._load().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx):
        return self._load().invoke(ctx)

    def get_params(self, ctx):
        return self._load().get_params(ctx)


LAZY_HELP = {
    "simulate": "Theory: entanglement of two atomic ensembles (S1z S2z).",
    "analyze": "Tests, intervals and the evidence ladder for datasets.",
    "campaign": "Overnight queues of protocol runs: run, resume, status.",
    "import": "CSV, TSV, pymeasure, HDF5 or .npz data into a v1 dataset.",
    "watch": "A run or campaign in the browser (live, or replayed).",
}


_register_optional()


def main(argv=None):
    cli.main(args=argv, prog_name="corrlab")


if __name__ == "__main__":  # pragma: no cover
    main()
