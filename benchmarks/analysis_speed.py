"""`corrlab analyze` at 10^4, 10^5, 10^6 trials: time and peak memory, new path against the reference.

Two kinds of dataset (benchmarks/_speed_data.py, single Parquet files written in row groups):

* ``quadratures``: one sample per trial, lock-in quadratures (x, y) of both sides, two-mode
  squeezed thermal state in ``main``, two interleaved controls; analysed with the default plan
  and ``--vacuum-variance 1,1`` (so the Gaussian witness and its trial bootstrap run too);
* ``series``: 64-sample AR(1) time series per trial, a weak common value in ``main``; the
  default plan.

Each analysis runs as ``corrlab analyze FILE --json ...`` in a child process (its own wall
time, CPU time and peak RSS from ``os.wait4``): the ``new`` path (this checkout) and the
``reference`` path (the pre-speed-up algorithms of tests/reference_analysis.py, tasks one at
a time), on the same file in the same run, and the two results compared (every number equal
to 1e-9 relative). The machine is shared (2 cores, other work running): compare ratios and
CPU times, not wall times across runs. The reference at 10^6 trials is not run by default
(hours, and scipy's Anderson-Darling permutation holds 1999 x 600 000 indices at once).

The interval part, against ``scipy.stats.bootstrap(method="BCa")`` on the same copula MI
statistic (``--scipy-bca``): one main-condition interval of the quadratures dataset, ours
(``mi_interval``) against scipy's own BCa with its full O(n^2) jackknife, at the sizes
where that finishes.

    python benchmarks/analysis_speed.py                       # 1e4 and 1e5, both kinds, both paths
    python benchmarks/analysis_speed.py --sizes 1e6 --paths new --kinds quadratures
    python benchmarks/analysis_speed.py --quick               # 2000 trials, ~1 min
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
path, kind, which, out = sys.argv[1:5]
from corrlab.daq.cli import main as cli_main
args = ["analyze", path, "--json", out] + (["--vacuum-variance", "1,1"] if kind == "quadratures" else [])
if which == "reference":
    from tests.reference_analysis import use_reference
    with use_reference():
        cli_main(args)
else:
    cli_main(args)
"""


def run_child(path: Path, kind: str, which: str, out: Path) -> dict:
    code = CHILD.format(root=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), kind, which, str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{which} {kind} {path.name} failed:\n{err[-3000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024}


def compare(a, b, where="results", rtol=1e-9) -> list[str]:
    """Paths where two results differ (numbers beyond rtol, anything else at all)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [where]
        return [d for k in a for d in compare(a[k], b[k], f"{where}.{k}", rtol)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [where]
        return [d for i, (u, v) in enumerate(zip(a, b)) for d in compare(u, v, f"{where}[{i}]", rtol)]
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b) or a == b or abs(a - b) <= rtol * max(abs(a), abs(b)):
            return []
        return [f"{where}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def scipy_bca(path: Path, n_resamples: int = 1999) -> dict:
    """Ours (mi_interval) against scipy.stats.bootstrap(method="BCa") on main's copula MI."""
    import numpy as np
    import pyarrow.parquet as pq
    from scipy import stats

    from corrlab.analysis.intervals import mi_interval
    from corrlab.analysis.mi import gaussian_copula_mi

    t = pq.read_table(path, columns=["condition", "x_a", "x_b"])
    main = np.asarray(t["condition"].to_numpy(zero_copy_only=False)) == "main"
    x, y = t["x_a"].to_numpy()[main], t["x_b"].to_numpy()[main]
    t0 = time.process_time()
    ours = mi_interval(x, y, estimator="gaussian_copula", n_resamples=n_resamples, rng=1)
    t_ours = time.process_time() - t0

    def stat(a, b, axis=-1):
        if a.ndim == 1:
            return gaussian_copula_mi(a, b)
        lead = a.shape[:-1]
        flat_a, flat_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        return np.array([gaussian_copula_mi(u, v) for u, v in zip(flat_a, flat_b)]).reshape(lead)

    t0 = time.process_time()
    res = stats.bootstrap((x, y), stat, paired=True, vectorized=True, n_resamples=n_resamples, batch=50,
                          method="BCa", rng=np.random.default_rng(1))
    t_scipy = time.process_time() - t0
    return {"n_main": int(main.sum()), "ours_cpu_s": t_ours, "ours_ci": list(ours.ci)[:2],
            "scipy_cpu_s": t_scipy, "scipy_ci": [float(res.confidence_interval.low), float(res.confidence_interval.high)]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e4,1e5", help="trials, comma separated")
    ap.add_argument("--kinds", default="quadratures,series")
    ap.add_argument("--paths", default="new,reference")
    ap.add_argument("--scipy-bca", default="", help="sizes (trials) for the scipy BCa comparison, e.g. 2000,10000")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", type=Path, help="write the datasets here and keep them")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.scipy_bca = "2000", args.scipy_bca or "2000"
    from benchmarks._speed_data import write_quadratures, write_series

    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    kinds = [k for k in args.kinds.split(",") if k]
    paths = [p for p in args.paths.split(",") if p]
    work = args.keep or Path(tempfile.mkdtemp(prefix="corrlab-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"{'kind':12} {'trials':>8} {'path':10} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9}")
    for n in sizes:
        for kind in kinds:
            data = work / f"{kind}-{n}.parquet"
            if not data.exists():
                (write_quadratures if kind == "quadratures" else write_series)(data, n)
            results = {}
            for which in paths:
                out = work / f"{kind}-{n}-{which}.json"
                r = run_child(data, kind, which, out)
                results[which] = json.loads(out.read_text())
                rows.append({"kind": kind, "trials": n, "path": which, **r})
                print(f"{kind:12} {n:8d} {which:10} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['peak_mib']:9.0f}",
                      flush=True)
            if len(results) == 2:
                new, ref = (rows[-2], rows[-1]) if rows[-2]["path"] == "new" else (rows[-1], rows[-2])
                diffs = compare(results["new"], results["reference"])
                print(f"  reference/new: wall {ref['wall_s'] / new['wall_s']:.1f}x, cpu {ref['cpu_s'] / new['cpu_s']:.1f}x;"
                      f" results {'equal (1e-9)' if not diffs else 'DIFFER: ' + '; '.join(diffs[:5])}", flush=True)
    for n in [int(float(s)) for s in args.scipy_bca.split(",") if s]:
        data = work / f"quadratures-{n}.parquet"
        if not data.exists():
            write_quadratures(data, n)
        r = scipy_bca(data)
        print(f"interval, main copula MI, {r['n_main']} trials: ours {r['ours_cpu_s']:.1f} s CPU {r['ours_ci']}, "
              f"scipy.stats.bootstrap BCa {r['scipy_cpu_s']:.1f} s CPU {r['scipy_ci']} "
              f"({r['scipy_cpu_s'] / r['ours_cpu_s']:.0f}x)", flush=True)
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
