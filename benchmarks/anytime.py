"""Anytime evidence (issue 17): trials to a decision with the stopping rule against the fixed-n
tests at the same power, and the cost of updating every e-process after a trial.

1. On a true protocol-specific world (tests/anytime_worlds.py ``protocol_specific``: main
   dependent at rho = 0.5, three independent controls, a drift shared by both sides; the
   seeded schedule, blocks of 3 main + one of each control), one run:

   * fixed n: the ladder's own tests (analysis.permutation: the time-blocked re-pairing test
     of main with the plan's default copula_omnibus statistic, the label permutation test of
     main against each control within blocks, and CHSH on the signs; Holm over the five, the
     plan's evidence family) at each n of a grid; the power to reach protocol-specific
     (dependence and every control rejected) per n; ``n_fixed``: the smallest n of the grid
     whose power reaches the target;
   * the stopping rule: every e-process fed after every trial; the stopping time tau is the
     first trial at which dependence and every control are decided (closed e-Holm over the
     same family); ``N_max``: the target quantile of tau (the maximum that gives the same
     power); reported: the median and mean of min(tau, N_max), against ``n_fixed``.

2. The per-trial update cost at 10^4 trials (four conditions: 13 e-processes), mean and 99th
   percentile, and a snapshot's cost; the reference measured in the same run is one fixed-n
   re-pairing test (999 resamples) on those trials' main condition, i.e. what re-running the
   confirmatory test after a trial would cost.

3. The calibration table (``--calibration N``): per null world of tests/anytime_worlds.py,
   monitored after every trial to 600 trials, N replicates: for each hypothesis class the
   largest count of runs whose e-value ever reached 1/alpha (raw, and after closed e-Holm),
   with its one-sided binomial p at rate alpha.

    nice python benchmarks/anytime.py [--replicates 100] [--target 0.8] [--calibration 200] [--quick]

Writes benchmarks/out/anytime.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.anytime_worlds import BLOCK, CONDITIONS, WORLDS, schedule  # noqa: E402

ALPHA = 0.05
CONTROLS = sorted(c for c in CONDITIONS if c != "main")


def world_run(seed: int, trials: int):
    s = schedule(seed, trials)
    rng = np.random.default_rng([seed, 17])
    a, b = WORLDS["protocol_specific"][0](s, rng)
    return s, a, b


def fixed_n_decides(seed: int, n: int, resamples: int) -> dict:
    """The ladder's fixed-n family on the first n trials: dependence reached? protocol-specific?"""
    from corrlab.analysis.bell import chsh_test
    from corrlab.analysis.nosignalling import holm
    from corrlab.analysis.permutation import label_permutation_test, repairing_test, time_local_blocks

    s, a, b = world_run(seed, n)
    main = s.condition == "main"
    rng = np.random.default_rng([seed, 3])
    ps = [repairing_test(a[main], b[main], statistic="copula_omnibus", n_resamples=resamples,
                         blocks=time_local_blocks(s.trial[main], size=32), standardize_within_blocks=True,
                         rng=rng).pvalue]
    for c in CONTROLS:
        ps.append(label_permutation_test((a, b), s.condition, statistic="copula_omnibus", groups=("main", c),
                                         blocks=s.block, n_resamples=resamples, standardize_within_groups=True,
                                         rng=rng).pvalue)
    oa, ob = np.where(a[main] >= 0, 1, -1), np.where(b[main] >= 0, 1, -1)
    ps.append(chsh_test(oa, ob, s.setting_a[main], s.setting_b[main]).pvalue)
    adj = holm(ps, alpha=ALPHA).pvalues
    return {"dependence": bool(adj[0] < ALPHA),
            "protocol-specific": bool(all(q < ALPHA for q in adj[:1 + len(CONTROLS)]))}


RULES = {"dependence": ["dependence"], "protocol-specific": ["dependence"] + [f"controls:{c}" for c in CONTROLS]}


def stopping_time(seed: int, n_max: int) -> dict:
    """Per rule, the first trial (count, at a block's end) at which its hypotheses are decided; inf if never."""
    from corrlab.anytime import EvidenceMonitor

    s, a, b = world_run(seed, n_max)
    m = EvidenceMonitor(CONDITIONS, BLOCK, alpha=ALPHA)
    tau = {rule: float("inf") for rule in RULES}
    for i, row in enumerate(zip(s.trial.tolist(), s.condition.tolist(), s.setting_a.tolist(),
                                s.setting_b.tolist(), a.tolist(), b.tolist())):
        m.update(*row)
        if i % BLOCK == BLOCK - 1:  # checked after each block (a runner checks per part)
            for rule, keys in RULES.items():
                if tau[rule] == float("inf") and m.decided(keys):
                    tau[rule] = float(i + 1)
            if all(v < float("inf") for v in tau.values()):
                break
    return tau


def update_cost(n: int = 10_002) -> dict:  # 10^4 rounded to whole blocks of 6
    from corrlab.anytime import EvidenceMonitor
    from corrlab.analysis.permutation import repairing_test, time_local_blocks

    s, a, b = world_run(7, n)
    m = EvidenceMonitor(CONDITIONS, BLOCK, alpha=ALPHA)
    times = np.empty(n)
    cpu = np.empty(n)  # thread CPU time: what the update costs, whatever else the machine runs
    for i, row in enumerate(zip(s.trial.tolist(), s.condition.tolist(), s.setting_a.tolist(),
                                s.setting_b.tolist(), a.tolist(), b.tolist())):
        c0, t0 = time.thread_time(), time.perf_counter()
        m.update(*row)
        times[i] = time.perf_counter() - t0
        cpu[i] = time.thread_time() - c0
    t0 = time.perf_counter()
    m.snapshot()
    snap_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    m.snapshot(trajectory=True)
    snap_traj_s = time.perf_counter() - t0
    main = s.condition == "main"
    t0 = time.perf_counter()
    repairing_test(a[main], b[main], statistic="copula_omnibus", n_resamples=999,
                   blocks=time_local_blocks(s.trial[main], size=32), standardize_within_blocks=True,
                   rng=np.random.default_rng(0))
    ref_s = time.perf_counter() - t0
    late = times[n // 2:]
    return {"trials": n, "processes": len(m.processes), "mean_ms": float(times.mean() * 1e3),
            "p99_ms": float(np.percentile(times, 99) * 1e3), "max_ms": float(times.max() * 1e3),
            "mean_ms_second_half": float(late.mean() * 1e3), "snapshot_ms": snap_s * 1e3,
            "cpu_mean_ms": float(cpu.mean() * 1e3), "cpu_p99_ms": float(np.percentile(cpu, 99) * 1e3),
            "cpu_max_ms": float(cpu.max() * 1e3),
            "snapshot_with_trajectories_ms": snap_traj_s * 1e3, "fixed_n_retest_s": ref_s,
            "ratio_retest_to_update": ref_s / times.mean()}


def calibration(reps: int, trials: int = 600) -> list[dict]:
    from scipy.stats import binomtest

    from tests.anytime_worlds import crossing_counts, is_null, is_true

    print(f"3. calibration: {reps} replicates per world, monitored after every trial to {trials}")
    print(f"   {'world':20s} {'hypotheses':16s} {'null: max crossed':>18s} {'adjusted':>9s} {'binom p':>8s}  true: crossed")
    rows = []
    for world in sorted(WORLDS):
        t0 = time.time()
        c = crossing_counts(world, reps, trials)
        for cls in ("dependence", "controls:", "no_signalling:", "chsh"):
            keys = [k for k in c["raw"] if k.startswith(cls)]
            nulls = [k for k in keys if is_null(world, k)]
            trues = [k for k in keys if is_true(world, k)]
            worst = max(nulls, key=lambda k: c["raw"][k], default=None)
            row = {"world": world, "class": cls.rstrip(":"), "nulls": len(nulls),
                   "max_crossed": c["raw"][worst] if worst else None, "worst": worst,
                   "max_adjusted": max((c["adjusted"].get(k, 0) for k in nulls), default=None),
                   "true_crossed": {k: c["raw"][k] for k in trues}, "seconds": time.time() - t0}
            if worst:
                row["binomial_p"] = float(binomtest(row["max_crossed"], reps, ALPHA, alternative="greater").pvalue)
            rows.append(row)
            print(f"   {world:20s} {cls.rstrip(':'):16s} "
                  f"{(str(row['max_crossed']) + '/' + str(reps)) if worst else '-':>18s} "
                  f"{str(row['max_adjusted']) if worst else '-':>9s} "
                  f"{row.get('binomial_p', float('nan')):8.3f}  "
                  + ", ".join(f"{k} {v}/{reps}" for k, v in row["true_crossed"].items()))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--target", type=float, default=0.8, help="the power both rules must reach")
    ap.add_argument("--resamples", type=int, default=199, help="permutations of each fixed-n test")
    ap.add_argument("--grid", default="120,180,240,300,360,480,600,720")
    ap.add_argument("--quick", action="store_true", help="20 replicates, a short grid")
    ap.add_argument("--calibration", type=int, default=0, help="replicates per null world (0: skip)")
    args = ap.parse_args(argv)
    if args.quick:
        args.replicates, args.grid = 20, "240,480"
    reps = args.replicates
    out: dict = {"target_power": args.target, "replicates": reps, "alpha": ALPHA,
                 "world": "protocol_specific (rho 0.5 in main, 3 independent controls, shared drift)"}

    print("1. per-trial update cost at 10^4 trials")
    cost = update_cost()
    out["cost"] = cost
    print(f"   {cost['processes']} e-processes: mean {cost['mean_ms']:.3f} ms per trial (second half "
          f"{cost['mean_ms_second_half']:.3f} ms), p99 {cost['p99_ms']:.3f} ms, max {cost['max_ms']:.2f} ms; "
          f"snapshot {cost['snapshot_ms']:.2f} ms ({cost['snapshot_with_trajectories_ms']:.1f} ms with trajectories)")
    print(f"   thread CPU time per update: mean {cost['cpu_mean_ms']:.3f} ms, p99 {cost['cpu_p99_ms']:.3f} ms, "
          f"max {cost['cpu_max_ms']:.2f} ms (wall-clock outliers are the machine's other work)")
    print(f"   reference: one fixed-n re-pairing test (999 resamples) on the same trials {cost['fixed_n_retest_s']:.2f} s "
          f"= {cost['ratio_retest_to_update']:.0f} x one update")

    print(f"2. trials to a decision, {reps} replicates, target power {args.target}")
    t0 = time.time()
    grid = [(int(x) // BLOCK) * BLOCK for x in args.grid.split(",")]
    power = {rule: {} for rule in RULES}
    for n in grid:
        got = [fixed_n_decides(20_000 + r, n, args.resamples) for r in range(reps)]
        for rule in RULES:
            power[rule][n] = float(np.mean([g[rule] for g in got]))
        print(f"   fixed n = {n}: power " + ", ".join(f"{rule} {power[rule][n]:.2f}" for rule in RULES))
    fixed_s = time.time() - t0
    t0 = time.time()
    n_cap = 4 * max(grid)
    taus = [stopping_time(30_000 + r, n_cap) for r in range(reps)]
    seq_s = time.time() - t0
    out["seconds"] = {"fixed_n": fixed_s, "stopping_rule": seq_s}
    out["rules"] = {}
    for rule in RULES:
        t = np.array([x[rule] for x in taus])
        reached = [n for n in sorted(power[rule]) if power[rule][n] >= args.target]
        n_fixed = reached[0] if reached else None
        q = float(np.quantile(t, args.target))
        n_max = q if np.isfinite(q) else None
        entry = {"fixed_power_by_n": power[rule], "n_fixed": n_fixed, "decided_by_cap": float(np.isfinite(t).mean()),
                 "cap": n_cap, "tau_quantiles": {k: float(np.quantile(t, k)) for k in (0.1, 0.25, 0.5, 0.75, 0.9)},
                 "n_max": n_max}
        line = f"   {rule}: stopping rule median tau {entry['tau_quantiles'][0.5]:.0f} trials; N_max ({args.target:.0%} decided) {n_max}"
        if n_max is not None:
            capped = np.minimum(t, n_max)
            entry.update(median=float(np.median(capped)), mean=float(capped.mean()))
            line += f"; min(tau, N_max) median {entry['median']:.0f}, mean {entry['mean']:.0f}"
        line += f"; fixed n for power {args.target}: {n_fixed}"
        if n_fixed and n_max is not None:
            entry["ratio_median_to_fixed"] = entry["median"] / n_fixed
            entry["ratio_mean_to_fixed"] = entry["mean"] / n_fixed
            line += f" -> median/fixed {entry['ratio_median_to_fixed']:.2f}, mean/fixed {entry['ratio_mean_to_fixed']:.2f}"
        out["rules"][rule] = entry
        print(line)
    if args.calibration:
        out["calibration"] = calibration(args.calibration)
    dest = ROOT / "benchmarks" / "out"
    dest.mkdir(exist_ok=True)
    (dest / "anytime.json").write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
