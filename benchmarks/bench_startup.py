"""Start-up benchmark: `corrlab --help` against `python -c "import pyvisa"`, same run.

Heavy imports (pandas, scipy, pyarrow, pymeasure, matplotlib) are lazy, so the help text
should come in at most 1.5x the time of importing pyvisa alone. Medians of N runs of
fresh interpreters, interleaved so machine load hits both alike.

    python benchmarks/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="5 runs")
    args = ap.parse_args(argv)
    runs = 5 if args.quick else args.runs
    help_cmd = [sys.executable, "-c", "from corrlab.daq.cli import main; main()", "--help"]
    ref_cmd = [sys.executable, "-c", "import pyvisa"]
    timed(help_cmd), timed(ref_cmd)  # warm the file cache
    ours, ref = [], []
    for _ in range(runs):
        ours.append(timed(help_cmd))
        ref.append(timed(ref_cmd))
    m_ours, m_ref = statistics.median(ours), statistics.median(ref)
    print(f"corrlab --help      : median {m_ours * 1e3:6.1f} ms over {runs} runs")
    print(f"python -c 'import pyvisa': median {m_ref * 1e3:6.1f} ms")
    ratio = m_ours / m_ref
    print(f"ratio               : {ratio:.2f}  (goal <= 1.5) {'OK' if ratio <= 1.5 else 'ABOVE GOAL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
