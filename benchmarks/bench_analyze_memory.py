"""Peak memory of ``corrlab analyze`` on a large dataset, against the dataset's in-memory size.

Writes a v1 dataset of ``--samples`` samples (trials of 2000 samples: AR(1) lock-in noise
with a weak common signal in ``main``, interleaved controls, randomized settings), then
runs ``corrlab analyze`` on it in a child process and reads the child's peak resident set
size. The reference, measured in the same run: the dataset's size as one in-memory Arrow
table (what "load it all" costs), and the peak of a child that does exactly that
(``pyarrow.parquet.read_table`` of every part). Goals: analyze below 4x the in-memory size
at 10^7 samples (issue 4), and below 2 GiB at 10^8 samples (issue 8: out-of-core).

    python benchmarks/bench_analyze_memory.py [--samples 1e7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corrlab.dataset import DatasetWriter  # noqa: E402

CONDITIONS = ["main", "main", "main", "control:break_L", "control:perturb_C", "control:couple_env"]


def write_dataset(root: Path, n_samples: int, samples_per_trial: int, per_part: int = 50, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    n_trials = max(12, n_samples // samples_per_trial)
    t = np.arange(samples_per_trial) / 1e4
    w = DatasetWriter.create(root, "big", protocol={}, bench={}, protocol_sha256="0" * 64, plan_sha256=None,
                             rng_seed=seed, instruments={})
    phi = 0.95
    for i in range(n_trials):
        block, pos = divmod(i, 6)
        cond = CONDITIONS[(pos + block) % 6]
        eps = rng.standard_normal((2, samples_per_trial))
        eps[:, 0] /= np.sqrt(1 - phi * phi)  # AR(1) from its stationary law, as lock-in outputs are
        x = lfilter([np.sqrt(1 - phi * phi)], [1.0, -phi], eps, axis=1)
        if cond == "main":
            x += 0.3 * rng.standard_normal()
        rec = {"trial": i, "condition": cond, "block": block, "setting_a": int(rng.integers(2)),
               "setting_b": int(rng.integers(2)), "f": True, "start_utc": "2026-11-23T00:00:00Z"}
        w.add_trial(rec, {"t": t, "x_a": x[0] * 1e-3, "x_b": x[1] * 1e-3})
        if w.pending_trials >= per_part:
            w.commit()
    w.close("complete")
    return root / "big"


def in_memory_bytes(path: Path) -> int:
    import pyarrow.parquet as pq

    total = 0
    for part in sorted((path / "parts").glob("*.parquet")):
        total += pq.read_table(part).nbytes
    return total


def child_peak(cmd: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of a child process (its own, via wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[2:4]} failed: {proc.stderr.read()[-2000:]}")
    return wall, usage.ru_maxrss * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=float, default=1e7)
    ap.add_argument("--samples-per-trial", type=int, default=2000)
    ap.add_argument("--keep", type=Path, help="write the dataset here and keep it")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="corrlab-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        path = base / "big"
        if not path.exists():
            t0 = time.perf_counter()
            write_dataset(base, int(args.samples), args.samples_per_trial)
            print(f"wrote {int(args.samples):.3g} samples in {time.perf_counter() - t0:.1f} s")
        size = in_memory_bytes(path)
        py = sys.executable
        _, baseline = child_peak([py, "-c", "import numpy, scipy.stats, pyarrow.parquet, pandas"])
        load_wall, load_peak = child_peak(
            [py, "-c", f"import pyarrow.parquet as pq; t = pq.read_table({str(path / 'parts')!r})"])
        out = base / "results.json"
        wall, peak = child_peak([py, "-m", "corrlab.daq.cli", "analyze", str(path), "--json", str(out)])
        verdict = json.loads(out.read_text())["verdict"]["level"]
        mib = 1 << 20
        print(f"dataset: {int(args.samples):.3g} samples, {size / mib:.0f} MiB in memory (Arrow)")
        print(f"interpreter with numpy/scipy/pyarrow/pandas imported: {baseline / mib:.0f} MiB")
        print(f"reference, load everything: peak {load_peak / mib:.0f} MiB in {load_wall:.1f} s")
        print(f"corrlab analyze: peak {peak / mib:.0f} MiB in {wall:.1f} s (verdict {verdict})")
        print(f"ratio analyze peak / in-memory size: {peak / size:.2f} (goal < 4 at 1e7)")
        print(f"ratio analyze peak / load-everything peak: {peak / load_peak:.2f}")
        print(f"analyze peak below 2 GiB: {peak < 2 * 1024 * mib}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
