"""Live-view overhead: trials per second of the demo protocol without a view, with ``--live``
(the hub and server running, nobody watching) and with a headless Chromium watching the page,
in one run. The three modes are interleaved, round after round, so a neighbour's load on this
shared machine falls on all of them alike; the ratio of the medians is printed against the
plain run. Goal: live / plain >= 0.97.

Each measurement is one run of the demo protocol (its samples per trial, stabilize reads and
parts) on the simulated bench, in this process, as ``corrlab run`` does it; trials per second
is trials committed / the runner's elapsed time.

    python benchmarks/live_overhead.py [--trials 120] [--rounds 3] [--no-browser]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import demo_variant  # noqa: E402

from corrlab.daq.live import LiveView  # noqa: E402
from corrlab.daq.runner import run_protocol  # noqa: E402
from corrlab.instruments.benchfile import load_bench  # noqa: E402
from corrlab.protocols.config import load_protocol  # noqa: E402


def one_run(protocol, root: Path, name: str, mode: str, browser=None) -> tuple[float, dict]:
    view = LiveView() if mode != "plain" else None
    page = None
    try:
        if mode == "browser":
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(view.url)
        result = run_protocol(protocol, load_bench(), root, run_id=name,
                              observer=view.observer() if view else None)
        assert result.status == "complete", result.reason
        extra = {}
        if view is not None:
            view.hub.flush()
            extra = {"dropped": max(view.hub.pushed - view.hub.taken - len(view.hub.queue), 0),
                     "shown": view.hub.run["done"],
                     "hub_cpu_ms_per_trial": round(1e3 * view.hub.cpu_s / max(result.trials_committed, 1), 2)}
            if page is not None:
                time.sleep(0.5)
                extra["page_counter"] = int(page.inner_text("#trials-done"))
        return result.trials_committed / result.elapsed_s, extra
    finally:
        if page is not None:
            page.close()
        if view is not None:
            view.close(linger_s=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=120, help="trials per run (a multiple of 6)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="corrlab-live-bench-"))
    protocol = load_protocol(demo_variant(root / "demo.toml", trials=args.trials))
    modes = ["plain", "live"] + ([] if args.no_browser else ["browser"])
    pw = browser = None
    if "browser" in modes:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        exe = shutil.which("chromium") or "/usr/bin/chromium"
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
    rates: dict[str, list[float]] = {m: [] for m in modes}
    try:
        one_run(protocol, root, "warmup", "plain")  # imports, first connections
        for r in range(args.rounds):
            order = modes if r % 2 == 0 else modes[::-1]
            for mode in order:
                rate, extra = one_run(protocol, root, f"r{r}-{mode}", mode, browser)
                rates[mode].append(rate)
                print(f"round {r + 1} {mode:8s} {rate:6.2f} trials/s {extra or ''}", flush=True)
    finally:
        if browser is not None:
            browser.close()
            pw.stop()
        shutil.rmtree(root, ignore_errors=True)
    plain = statistics.median(rates["plain"])
    print(f"\ndemo protocol, {args.trials} trials per run, {args.rounds} interleaved rounds (median trials/s):")
    print(f"  plain   {plain:6.2f}")
    for mode in modes[1:]:
        med = statistics.median(rates[mode])
        paired = statistics.median(m / p for m, p in zip(rates[mode], rates["plain"]))
        print(f"  {mode:7s} {med:6.2f}   ratio of medians {med / plain:.3f}, median of the rounds' ratios "
              f"{paired:.3f} (goal >= 0.97)")


if __name__ == "__main__":
    main()
