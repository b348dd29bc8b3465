"""What every ``corrlab`` command shares: exit codes, the error handler, option parsers."""

from __future__ import annotations

import time

import click

EXIT_ERROR = 2  # bad input or a corrlab error: one line on stderr
EXIT_INTERRUPTED = 3  # the run stopped and can be resumed (corrlab run --resume)
EXIT_ABORTED = 4
EXIT_NOT_SAFE = 5  # a role's safe state was not confirmed by its instrument: check it by hand (before 3 and 4)
EXIT_VERIFY_FAILED = 1


class CorrlabGroup(click.Group):
    """Turns any CorrlabError into one clear line and a nonzero exit code.

    Used by the top-level ``corrlab`` group and by subcommand groups that can also be invoked
    on their own (``corrlab simulate``), so the handling is written once.
    """

    def invoke(self, ctx):
        from corrlab.errors import CorrlabError

        try:
            return super().invoke(ctx)
        except CorrlabError as exc:
            click.secho(f"corrlab: error: {exc}", fg="red", err=True)
            ctx.exit(EXIT_ERROR)


def vacuum_option(ctx, param, value):
    """``--vacuum-variance VA,VB``: two positive numbers."""
    if value is None:
        return None
    try:
        va, vb = (float(v) for v in value.split(","))
    except ValueError as exc:
        raise click.BadParameter("expected two numbers VA,VB (vacuum variance of side A and B)") from exc
    if not (va > 0 and vb > 0):
        raise click.BadParameter("vacuum variances must be positive")
    return va, vb


def wait_until_stopped(duration: float | None, *, step_s: float = 0.2) -> None:
    """Block until Ctrl-C or, with ``duration``, until that many seconds have passed (what the
    serving commands do while their threads work)."""
    try:
        deadline = time.monotonic() + duration if duration else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(step_s)
    except KeyboardInterrupt:
        pass
