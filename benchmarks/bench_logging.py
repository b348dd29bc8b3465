"""Logging benchmark: committing trials to Parquet against a plain pyarrow write, same run.

corrlab's commit = parts serialised with tuned encodings (dictionary only on the small
columns, BYTE_STREAM_SPLIT floats, DELTA trial index, zstd, one row group per trial),
written to a temp name, fsynced, renamed; then trials.parquet and the manifest rewritten
atomically. The reference is ``pyarrow.parquet.write_table`` of the same arrays (pyarrow
defaults) into one file per part, with fsync. Goal: corrlab's throughput >= 0.5 of the
reference. Also reported: file sizes and the speed of reading one trial against reading
a whole part.

    python benchmarks/bench_logging.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corrlab.dataset import Dataset, DatasetWriter, sample_schema  # noqa: E402


def make_trials(n_trials: int, samples: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 1e4
    out = []
    for i in range(n_trials):
        rec = {"trial": i, "condition": ["main", "control:break_L"][i % 2], "block": i // 6, "setting_a": i % 2,
               "setting_b": (i // 2) % 2, "f": i % 2 == 0, "start_utc": "2026-11-23T00:00:00Z", "temperature_k": 4.0}
        # lock-in outputs: smooth (autocorrelated) noise, as recorded
        x = np.cumsum(rng.standard_normal((2, samples)), axis=1) * 1e-5
        out.append((rec, {"t": t, "x_a": x[0], "x_b": x[1]}))
    return out


def run_corrlab(root: Path, trials, per_part: int) -> float:
    t0 = time.perf_counter()
    w = DatasetWriter.create(root, "bench", protocol={}, bench={}, protocol_sha256="0" * 64, plan_sha256="0" * 64,
                             rng_seed=0, instruments={})
    for rec, s in trials:
        w.add_trial(rec, s)
        if w.pending_trials >= per_part:
            w.commit()
    w.close("complete")
    return time.perf_counter() - t0


def plain_tables(trials, per_part: int):
    """The same arrays as Arrow tables, one per part (built outside the timed region)."""
    tables = []
    for start in range(0, len(trials), per_part):
        chunk = trials[start:start + per_part]
        n = np.array([len(s["t"]) for _, s in chunk])
        cols = {
            "trial": np.repeat([r["trial"] for r, _ in chunk], n).astype(np.int64),
            "condition": pa.array(np.repeat([r["condition"] for r, _ in chunk], n)).dictionary_encode(),
            "setting_a": np.repeat([r["setting_a"] for r, _ in chunk], n).astype(np.int8),
            "setting_b": np.repeat([r["setting_b"] for r, _ in chunk], n).astype(np.int8),
            "f": np.repeat([r["f"] for r, _ in chunk], n),
        }
        for c in ("t", "x_a", "x_b"):
            cols[c] = np.concatenate([s[c] for _, s in chunk])
        tables.append(pa.table(cols, schema=sample_schema()))
    return tables


def run_plain(root: Path, tables) -> float:
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    for i, table in enumerate(tables):
        path = root / f"part-{i:06d}.parquet"
        pq.write_table(table, path)
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller dataset (seconds)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    n_trials, samples, per_part = (40, 20_000, 10) if args.quick else (200, 50_000, 20)
    trials = make_trials(n_trials, samples)
    tables = plain_tables(trials, per_part)
    rows = n_trials * samples
    raw_mb = rows * (8 + 4 + 1 + 1 + 1 + 8 * 3) / 1e6
    print(f"{n_trials} trials x {samples} samples = {rows:,} rows ({raw_mb:.0f} MB in memory), "
          f"{per_part} trials per part, best of {args.repeats}")
    best_ours = best_plain = float("inf")
    sizes = {}
    for rep in range(args.repeats):
        tmp = Path(tempfile.mkdtemp(prefix="corrlab-bench-"))
        try:
            best_plain = min(best_plain, run_plain(tmp / "plain", tables))
            best_ours = min(best_ours, run_corrlab(tmp, trials, per_part))
            sizes = {"corrlab": sum(f.stat().st_size for f in (tmp / "bench/parts").iterdir()),
                     "plain": sum(f.stat().st_size for f in (tmp / "plain").iterdir())}
            if rep == args.repeats - 1:
                ds = Dataset.open(tmp / "bench")
                t0 = time.perf_counter()
                for _ in range(5):
                    ds.read_trial(per_part // 2)
                one = (time.perf_counter() - t0) / 5
                t0 = time.perf_counter()
                for _ in range(5):
                    pq.read_table(tmp / "bench" / ds.parts[0]["file"])
                whole = (time.perf_counter() - t0) / 5
                t0 = time.perf_counter()
                for _ in range(5):
                    pq.read_table(tmp / "plain/part-000000.parquet").filter(pa.compute.equal(pa.compute.field("trial"), per_part // 2))
                plain_one = (time.perf_counter() - t0) / 5
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    ours_mbs, plain_mbs = raw_mb / best_ours, raw_mb / best_plain
    print(f"plain pyarrow write_table + fsync : {best_plain:7.3f} s  {plain_mbs:7.1f} MB/s  files {sizes['plain'] / 1e6:7.1f} MB")
    print(f"corrlab commit (atomic, manifest) : {best_ours:7.3f} s  {ours_mbs:7.1f} MB/s  files {sizes['corrlab'] / 1e6:7.1f} MB")
    ratio = ours_mbs / plain_mbs
    print(f"throughput ratio corrlab/plain    : {ratio:.2f}  (goal >= 0.5) {'OK' if ratio >= 0.5 else 'BELOW GOAL'}")
    print(f"size ratio corrlab/plain          : {sizes['corrlab'] / sizes['plain']:.2f}; corrlab/raw {sizes['corrlab'] / 1e6 / raw_mb:.2f}")
    print(f"one trial (row group) read        : {one * 1e3:.2f} ms; whole part {whole * 1e3:.2f} ms "
          f"({whole / one:.1f}x); plain file read+filter {plain_one * 1e3:.2f} ms ({plain_one / one:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
