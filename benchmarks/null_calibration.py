"""Null calibration of the evidence ladder on issue 22's worlds: wrong-rung rates and power.

The replicate study of tests/test_null_calibration.py, printed as a table: for each null world
of tests/worlds.py, the number of replicates whose level is the world's wrong rung, its rate,
and the one-sided binomial p of that count at rate alpha = 0.05 (the check passes when p >
0.001); for each positive world the power (the fraction reaching ``dependence``), for the
default plan and, beside it, the plan with ``statistic = "gaussian_copula"``. Seconds are
wall time on the pool (2 workers by default), with the mean CPU seconds of one replicate.

    python benchmarks/null_calibration.py [--replicates 200] [--power-replicates 100] [--workers 2] [--quick]

Writes benchmarks/out/null_calibration.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=200, help="per null world")
    ap.add_argument("--power-replicates", type=int, default=100, help="per positive world and plan")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="40 replicates per null world, 20 per positive world")
    ap.add_argument("--worlds", default=None, help="comma-separated world names (default: all)")
    args = ap.parse_args(argv)
    n, n_power = (40, 20) if args.quick else (args.replicates, args.power_replicates)

    from tests.worlds import (
        NULL_WORLDS,
        POSITIVE_WORLDS,
        TAIL,
        default_statistic,
        format_table,
        study,
    )

    chosen = args.worlds.split(",") if args.worlds else None
    nulls = [w for w in NULL_WORLDS if chosen is None or w in chosen]
    positives = [w for w in POSITIVE_WORLDS if chosen is None or w in chosen]

    def say(r):
        what = (f"wrong {r['wrong']}/{r['replicates']}, binomial p {r['binomial_p']:.3g}" if "binomial_p" in r
                else f"power {r['power']:.3f}")
        print(f"  {r['world']:24s} {r['plan']:16s} {what}  {r['seconds']:.0f} s", flush=True)

    print(f"default statistic: {default_statistic()!r}; {n} replicates per null world, {n_power} per positive "
          f"world and plan, {args.workers} workers", flush=True)
    t0 = time.perf_counter()
    rows = study(nulls, n, workers=args.workers, progress=say) if nulls else []
    if positives:
        rows += study(positives, n_power, workers=args.workers, plans=("default", "gaussian_copula"), progress=say)
    total = time.perf_counter() - t0
    print()
    print(format_table(rows))
    failing = [r["world"] for r in rows if r.get("ok") is False]
    print(f"\ntotal {total:.0f} s; null worlds failing the binomial check (p <= {TAIL}): "
          f"{', '.join(failing) if failing else 'none'}")
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "null_calibration.json").write_text(json.dumps(
        {"default_statistic": default_statistic(), "replicates": n, "power_replicates": n_power,
         "workers": args.workers, "total_seconds": total, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
