"""Many datasets on a local Dask cluster against one process, same run, same results.

Writes ``--datasets`` synthetic v1 datasets of ``--samples`` samples each (AR(1) lock-in
noise, a weak common signal in main, interleaved controls, one recorded plan), then
analyses them all with ``corrlab.analysis.multi.analyze_many`` (what ``corrlab analyze DIR``
runs) in this process, and again on a ``LocalCluster`` of ``--workers`` single-threaded
worker processes (what ``--workers N`` starts). Prints both wall times, the speed-up, and
whether the two results are equal. Expect close to 2x on 2 cores.

    python benchmarks/bench_dask.py [--datasets 50] [--samples 1e6] [--workers 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corrlab.analysis.multi import LOCAL_WORKER_ENV, analyze_many, expand_datasets, local_cluster  # noqa: E402
from tests.synthetic import write_dataset  # noqa: E402

SAMPLES_PER_TRIAL = 2000


def _warm() -> None:
    import corrlab.analysis.multi  # noqa: F401
    import scipy.stats  # noqa: F401


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=50)
    ap.add_argument("--samples", type=float, default=1e6, help="samples per dataset")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--resamples", type=int, default=999, help="permutation resamples per test")
    ap.add_argument("--interval-resamples", type=int, default=199)
    ap.add_argument("--quick", action="store_true", help="10 datasets of 1e5 samples")
    args = ap.parse_args()
    if args.quick:
        args.datasets, args.samples = 10, 1e5
    import os

    from dask.distributed import Client

    if any(os.environ.get(k) != v for k, v in LOCAL_WORKER_ENV.items()):  # one core for the reference too
        os.environ.update(LOCAL_WORKER_ENV)
        os.execv(sys.executable, [sys.executable, *sys.argv])

    root = Path(tempfile.mkdtemp(prefix="corrlab-dask-"))
    try:
        n_trials = max(12, int(args.samples) // SAMPLES_PER_TRIAL // 6 * 6)
        plan = {"n_resamples": args.resamples, "seed": 7}
        t0 = time.perf_counter()
        for i in range(args.datasets):
            write_dataset(root, f"run{i:03d}", n_trials=n_trials, samples=SAMPLES_PER_TRIAL, coupling=0.1,
                          seed=i, plan=plan, per_part=60)
        print(f"wrote {args.datasets} datasets of {n_trials * SAMPLES_PER_TRIAL:.3g} samples "
              f"({n_trials} trials) in {time.perf_counter() - t0:.0f} s")
        paths = expand_datasets([root])
        opts = {"interval_resamples": args.interval_resamples, "pool": False}
        t0 = time.perf_counter()
        single = analyze_many(paths, **opts).to_dict()
        t_single = time.perf_counter() - t0
        with local_cluster(args.workers) as cluster, Client(cluster) as client:
            client.run(_warm)  # workers up, libraries imported, before the clock starts
            t0 = time.perf_counter()
            spread = analyze_many(paths, client=client, **opts).to_dict()
            t_dask = time.perf_counter() - t0
        equal = json.dumps(single, sort_keys=True) == json.dumps(spread, sort_keys=True)
        print(f"single process: {t_single:.1f} s")
        print(f"Dask LocalCluster, {args.workers} workers: {t_dask:.1f} s")
        print(f"speed-up: {t_single / t_dask:.2f}x")
        print(f"results equal: {equal}")
        return 0 if equal else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
