"""``corrlab watch DATASET_OR_CAMPAIGN``: the live view, fed from the files on disk."""

from __future__ import annotations

from pathlib import Path

import click

from corrlab.daq.cli.common import wait_until_stopped


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="chosen by the OS",
              help="the page's port on 127.0.0.1")
@click.option("--duration", type=float, default=None, help="stop serving by itself after this many seconds")
def watch(target, port, duration):
    """Watch TARGET in the browser: a dataset folder (a run in progress in another terminal is
    followed as it commits; a finished one is replayed), a campaign file or a campaign's data
    folder (its queue, and the run in progress). Serves a read-only page on 127.0.0.1 until
    Ctrl-C (or --duration)."""
    from corrlab.daq.live import Hub, LiveServer, watch_target
    from corrlab.daq.live.evidence import evidence_providers

    hub = Hub(providers=evidence_providers())
    kind = watch_target(hub, target)
    hub.start()
    try:
        server = LiveServer(hub, port=port).start()  # a busy port: CorrlabError
    except BaseException:
        hub.stop()
        raise
    click.echo(f"watching {kind} {target}: {server.url}", err=False)
    click.echo("Ctrl-C to stop" + (f" (stops by itself after {duration:g} s)" if duration else ""))
    try:
        wait_until_stopped(duration)
    finally:
        server.stop()
        hub.stop()
