"""``corrlab campaign run|resume|status``: overnight queues of protocol runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def campaign():
    """Overnight queues of protocol runs: run, resume, status."""


def verdict_level(path: Path) -> str:
    """The verdict level of a completed run (what a campaign records per entry)."""
    from corrlab.analysis.pipeline import analyze_dataset

    return analyze_dataset(path).verdict.level


def _run(file: Path, at: str | None, resume: bool) -> None:
    from rich.console import Console

    from corrlab.daq.campaign import Campaign, execute
    from corrlab.daq.progress import RichObserver

    console = Console(highlight=False)
    camp = Campaign.load(file)
    observers = []

    def factory(entry):
        console.rule(f"run {entry['index']}: {entry['run_id']}")
        obs = RichObserver(console)
        obs.__enter__()
        observers.append(obs)
        return obs

    def waiting(left):
        if int(left) % 600 == 0:
            console.print(f"waiting {left / 60:.0f} min for the start")

    try:
        state = execute(camp, at=at, resume=resume, observer_factory=factory, on_wait=waiting,
                        analyze=verdict_level)
    except KeyboardInterrupt:
        console.print(f"[yellow]campaign halted[/]; continue with: corrlab campaign resume {file}")
        sys.exit(3)
    finally:
        for obs in observers:
            obs.__exit__(None, None, None)
    _print_status(console, camp, state)
    if any((e.get("safe_state") or {}).get("not_confirmed") for e in state["queue"]):
        from corrlab.daq.cli.common import EXIT_NOT_SAFE

        sys.exit(EXIT_NOT_SAFE)


@campaign.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--at", "at", metavar="HH:MM", help="wait until this local time before starting")
def run_cmd(file, at):
    """Run the campaign FILE's queue in order (after waiting for --at, if given).

    Exit status 5 when a run ended with a role not confirmed in its safe state (the status
    table names it), 3 when an operator halted the campaign.
    """
    if at is not None:
        from corrlab.daq.campaign import parse_hhmm

        try:
            parse_hhmm(at)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--at") from exc
    _run(file, at, resume=False)


@campaign.command("resume")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def resume_cmd(file):
    """Continue the campaign FILE where it stopped (after a crash, a reboot or Ctrl-C)."""
    _run(file, None, resume=True)


@campaign.command("status")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def status_cmd(file):
    """The morning summary: per run its status, trials, faults, time and verdict."""
    from rich.console import Console

    from corrlab.daq.campaign import Campaign

    camp = Campaign.load(file, check=False)  # the morning report reads the state, even if a file broke since
    state = camp.read_state()
    console = Console(highlight=False)
    if state is None:
        console.print(f"campaign {camp.spec.campaign.name} has not started (no {camp.state_path})")
        return
    _print_status(console, camp, state)


def _print_status(console, camp, state) -> None:
    from rich.table import Table

    table = Table(title=f"campaign {state['campaign']}")
    for col in ("#", "run", "status", "trials", "faults", "outages", "suspensions", "time", "safe state", "verdict",
                "reason"):
        table.add_column(col, overflow="fold")
    colour = {"complete": "green", "interrupted": "yellow", "failed": "red", "running": "cyan"}
    for e in state["queue"]:
        planned = e.get("trials_planned")
        table.add_row(
            str(e["index"]), e["run_id"], f"[{colour.get(e['status'], 'white')}]{e['status']}[/]",
            f"{e['trials_committed']}/{planned if planned is not None else '?'}", str(len(e["faults"])),
            str(len(e.get("outages") or [])), str(e["suspensions"]), f"{e['elapsed_s']:.0f} s", _safe_cell(e),
            str(e.get("verdict") or "-"), e.get("reason") or "",
        )
    console.print(table)
    for e in state["queue"]:
        for fault in e["faults"]:
            console.print(f"  run {e['index']} fault: {fault}")
        for outage in e.get("outages") or []:
            console.print(f"  run {e['index']} outage: {', '.join(outage['roles'])} away {outage['duration_s']:.1f} s "
                          f"from {outage['start_utc']} ({outage['outcome']})")
        for role, why in ((e.get("safe_state") or {}).get("not_confirmed") or {}).items():
            console.print(f"  [bold red]run {e['index']}: {role} NOT CONFIRMED SAFE[/]: {why}")
    console.print(f"log: {camp.log_path}")


def _safe_cell(entry: dict) -> str:
    """The safe state at the end of a run: ok (every role confirmed), the roles not confirmed, or
    - (the run never reached the bench, or ended before this was recorded)."""
    safe = entry.get("safe_state")
    if not safe:
        return "-"
    if safe.get("not_confirmed"):
        return f"[bold red]NOT SAFE: {', '.join(safe['not_confirmed'])}[/]"
    return "[green]ok[/]"
