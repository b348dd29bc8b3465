"""Progress on the terminal: a bar for the trials and one for the steps of the current trial."""

from __future__ import annotations

from corrlab.daq.runner import Observer

STEPS = ("control", "prepare", "isolate", "stabilize", "fix", "measure")


class RichObserver(Observer):
    """Draws rich progress bars; prints faults, outages, suspensions, reconnects and every role
    not confirmed in its safe state as they happen."""

    def __init__(self, console, *, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.progress = None
        self._trials = self._steps = None

    def __enter__(self):
        if not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False

    def run_started(self, *, run_id, path, total, done):
        self.console.print(f"run [bold]{run_id}[/] -> {path}")
        if self.progress is not None:
            self._trials = self.progress.add_task("trials", total=total, completed=done)
            self._steps = self.progress.add_task("steps", total=len(STEPS))

    def step(self, name, trial):
        if self.progress is None:
            return
        if name == "setup":
            self.progress.update(self._steps, description="setup", completed=0)
            return
        index = STEPS.index(name) if name in STEPS else 0
        self.progress.update(self._steps, description=f"trial {trial}: {name}", completed=index)

    def trial_done(self, result):
        if self.progress is not None:
            self.progress.update(self._steps, completed=len(STEPS))
            self.progress.advance(self._trials)

    def event(self, entry):
        step = entry.get("step")
        unsafe = step == "safe_state" and entry.get("outcome") in ("fail", "partial")
        if step in ("fault", "reconnect", "suspend", "resume", "outage") or unsafe:
            colour = "bold red" if unsafe else {"fault": "red", "suspend": "yellow", "outage": "yellow"}.get(step, "cyan")
            trial = entry.get("trial")
            where = f"trial {trial}: " if trial is not None else ""
            self.console.print(f"[{colour}]{step}[/] {where}{entry.get('message', '')}")
