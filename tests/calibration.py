"""Replicate datasets for calibration: seeded runs of a world on the simulated bench, analysed.

Each replicate is a real run (the six steps over VISA, all three controls interleaved in
randomized blocks) of a small protocol, with its own world seed and schedule seed, then
``corrlab analyze`` with a reduced resample count. Replicates run in a process pool.

``python -m tests.calibration WORLD [N]`` prints the rates (what the slow test asserts).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tests.conftest import ROOT, demo_variant

ALPHA = 0.05
PROTOCOL = dict(trials=60, samples=200, trials_per_part=60, reads=2, interval_s=0.0, settle_s=0.0,
                n_resamples=199)


def replicate(world: str, seed: int, *, params: dict | None = None) -> dict:
    """Run and analyse one replicate; return its p-values and verdict (small, picklable)."""
    from corrlab.analysis.pipeline import analyze_dataset
    from corrlab.daq.runner import run_protocol
    from corrlab.instruments.benchfile import bench_from_dict
    from corrlab.protocols.config import protocol_from_dict

    with tempfile.TemporaryDirectory(prefix="corrlab-cal-") as tmp:
        tmp = Path(tmp)
        text = tomllib.loads(demo_variant(tmp / "p.toml", **PROTOCOL).read_text())
        text["protocol"]["seed"] = 1000 + seed  # a new schedule, settings and ΔL codes per replicate
        proto = protocol_from_dict(text)
        bench = tomllib.loads((ROOT / "instruments/simulated.toml").read_text())
        bench["world"] = {"kind": world, "seed": seed, "params": params or {}}
        run_protocol(proto, bench_from_dict(bench), tmp, run_id="r")
        res = analyze_dataset(tmp / "r", interval_resamples=199)
    out = {"level": res.verdict.level, "signalling": res.verdict.signalling_detected,
           "tests": {"dependence": res.conditions["main"]["pvalue"]}}
    for c in res.controls:
        out["tests"][c["control"]] = c["pvalue"]
    for t in res.no_signalling["tests"]:
        out["tests"][f"no_signalling:{t['side']}:{t['condition']}"] = t["pvalue"]
    if res.nonclassicality["chsh"]:
        out["tests"]["chsh"] = res.nonclassicality["chsh"]["pvalue"]
    return out


def _one(args):
    world, seed, params = args
    return replicate(world, seed, params=params)


def run_replicates(world: str, n: int, *, workers: int = 2, params: dict | None = None) -> list[dict]:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_one, [(world, s, params) for s in range(n)]))


def rates(results: list[dict]) -> dict:
    """Per test: the fraction of replicates rejecting at ALPHA; and the verdict levels' rates."""
    n = len(results)
    names = sorted({k for r in results for k in r["tests"]})
    per_test = {}
    for name in names:
        ps = [r["tests"][name] for r in results if r["tests"].get(name) is not None]
        per_test[name] = {"rate": sum(p < ALPHA for p in ps) / len(ps), "n": len(ps)}
    levels = {lv: sum(r["level"] == lv for r in results) / n
              for lv in ("none", "dependence", "protocol-specific", "nonclassical")}
    return {"n": n, "tests": per_test, "levels": levels,
            "signalling": sum(r["signalling"] for r in results) / n}


def upper_limit(n: int, alpha: float = ALPHA, *, tail: float = 1e-3) -> float:
    """The largest rejection rate that n replicates of a test at level alpha produce with
    probability above ``tail`` (binomial): alpha plus Monte-Carlo error."""
    from scipy.stats import binom

    return float(binom.ppf(1 - tail, n, alpha)) / n


def main(argv: list[str]) -> int:
    world = argv[0] if argv else "independent"
    n = int(argv[1]) if len(argv) > 1 else 200
    r = rates(run_replicates(world, n, workers=int(os.environ.get("CORRLAB_CAL_WORKERS", "2"))))
    r["upper_limit"] = upper_limit(n)
    print(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
