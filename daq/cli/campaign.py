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


def _run(file: Path, at: str | None, resume: bool, live: bool = False, port: int = 0) -> None:
    from rich.console import Console

    from corrlab.daq.campaign import Campaign, execute
    from corrlab.daq.progress import RichObserver

    console = Console(highlight=False)
    camp = Campaign.load(file)
    observers = []
    view = _live_view(console, camp, port) if live else None

    def factory(entry):
        console.rule(f"run {entry['index']}: {entry['run_id']}")
        obs = RichObserver(console)
        obs.__enter__()
        observers.append(obs)
        if view is not None:
            from corrlab.daq.live import Observers

            return Observers(obs, view.observer())
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
        if view is not None:
            view.close()
    _print_status(console, camp, state)
    if any((e.get("safe_state") or {}).get("not_confirmed") for e in state["queue"]):
        from corrlab.daq.cli.common import EXIT_NOT_SAFE

        sys.exit(EXIT_NOT_SAFE)


def _live_view(console, camp, port: int):
    """The live view of a campaign: its queue (from the state file) and each run as it goes."""
    from corrlab.daq.live import LiveView
    from corrlab.daq.live.evidence import evidence_providers
    from corrlab.daq.live.tail import CampaignTail

    view = LiveView(port=port, providers=evidence_providers())  # a busy port: CorrlabError
    view.hub.pollers.append(CampaignTail(camp.out, camp.spec.campaign.name, follow=False))
    console.print(f"live view: {view.url}", soft_wrap=True)
    return view


LIVE = click.option("--live", is_flag=True, help="watch the campaign in a browser (a read-only page on 127.0.0.1)")
PORT = click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="chosen by the OS",
                    help="the live view's port on 127.0.0.1 (with --live)")


@campaign.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--at", "at", metavar="HH:MM", help="wait until this local time before starting")
@LIVE
@PORT
def run_cmd(file, at, live, port):
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
    if port and not live:
        raise click.UsageError("--port is for the live view: add --live")
    _run(file, at, resume=False, live=live, port=port)


@campaign.command("resume")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@LIVE
@PORT
def resume_cmd(file, live, port):
    """Continue the campaign FILE where it stopped (after a crash, a reboot or Ctrl-C)."""
    if port and not live:
        raise click.UsageError("--port is for the live view: add --live")
    _run(file, None, resume=True, live=live, port=port)


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
