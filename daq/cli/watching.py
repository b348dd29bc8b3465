"""``corrlab watch DATASET_OR_CAMPAIGN``: the live view, fed from the files on disk."""

from __future__ import annotations

import time
from pathlib import Path

import click


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
    from corrlab.errors import CorrlabError

    hub = Hub(providers=evidence_providers())
    kind = watch_target(hub, target)
    hub.start()
    try:
        server = LiveServer(hub, port=port).start()
    except OSError as exc:
        hub.stop()
        raise CorrlabError(f"--port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})") from exc
    click.echo(f"watching {kind} {target}: {server.url}", err=False)
    click.echo("Ctrl-C to stop" + (f" (stops by itself after {duration:g} s)" if duration else ""))
    try:
        deadline = time.monotonic() + duration if duration else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        hub.stop()
