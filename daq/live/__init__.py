"""The live view: watch a run (or a campaign) in the browser, served on 127.0.0.1.

:class:`LiveView` puts together the :class:`~.hub.Hub` (the view's state, in its own thread)
and the :class:`~.server.LiveServer` (standard-library HTTP with server-sent events). A live
run hands it data through :meth:`LiveView.observer`, a bounded drop-oldest queue that never
blocks the runner; ``corrlab watch`` feeds it from the dataset on disk (:mod:`.tail`).
"""

from __future__ import annotations

import time
from pathlib import Path

from corrlab.daq.live.hub import Hub, LiveObserver, Observers, Provider, TrialTable
from corrlab.daq.live.server import LiveServer

__all__ = ["Hub", "LiveObserver", "LiveServer", "LiveView", "Observers", "Provider", "TrialTable", "watch_target"]


class LiveView:
    """A hub and its server, started; :meth:`close` stops both (after a last update)."""

    def __init__(self, *, port: int = 0, providers: dict[str, Provider] | None = None, control: bool = False):
        self.hub = Hub(providers=providers).start()
        try:
            self.server = LiveServer(self.hub, port=port, control=control).start()
        except BaseException:
            self.hub.stop()
            raise

    @property
    def url(self) -> str:
        return self.server.url

    def observer(self) -> LiveObserver:
        return self.hub.observer()

    def close(self, *, linger_s: float = 0.5) -> None:
        """Let the page receive the final state, then stop serving."""
        try:
            self.hub.flush(timeout=2.0)
            time.sleep(linger_s)
        finally:
            self.server.stop()
            self.hub.stop()

    def __enter__(self) -> "LiveView":
        return self

    def __exit__(self, *exc) -> bool:
        self.close(linger_s=0.5 if exc[0] is None else 0.0)
        return False


def watch_target(hub: Hub, target: str | Path) -> str:
    """Attach ``hub`` to a dataset folder, a campaign file (TOML) or a campaign's data folder.
    Returns what was attached ("dataset" or "campaign"); a path that is none of these is a
    :class:`~corrlab.errors.DatasetError` naming it."""
    from corrlab.daq.campaign import STATE_FILE
    from corrlab.daq.live.tail import CampaignTail, DatasetTail
    from corrlab.errors import DatasetError

    target = Path(target)
    if target.is_dir() and (target / "manifest.json").exists():
        hub.pollers.append(DatasetTail(target))
        return "dataset"
    if target.is_dir() and (target / STATE_FILE).exists():
        hub.pollers.append(CampaignTail(target))
        return "campaign"
    if target.is_file() and target.suffix == ".toml":
        from corrlab.daq.campaign import Campaign

        camp = Campaign.load(target, check=False)
        hub.pollers.append(CampaignTail(camp.out, camp.spec.campaign.name))
        return "campaign"
    raise DatasetError(f"{target} is neither a dataset (no manifest.json), nor a campaign file (.toml), "
                       f"nor a campaign's data folder (no {STATE_FILE})")
