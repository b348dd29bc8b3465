"""Trial re-pairing test, 10^4 re-pairings of 10^4 trials: corrlab.analysis.permutation.repairing_test
against scipy.stats.permutation_test(permutation_type="pairings", vectorized=True), same run.

The statistic is the default one, the Gaussian-copula MI ``-1/2 ln(1 - r^2)`` of rank normal
scores. scipy is given a vectorized statistic that computes it from the re-paired data
(ranks of the permuted sample, normal scores, Pearson r) with a bounded ``batch`` (an
unset batch holds every resample at once). For reference the script also times scipy on
the precomputed normal scores (permuting scores and taking Pearson r: the most a scipy
user can hoist out of the loop). Goal: ratio >= 20 against the first, with p-values equal
within Monte-Carlo error.

It then times the options of issue 22 on 20,000 trials and 9,999 re-pairings (wall and CPU
seconds; the CPU time is the one to compare on a shared machine): the omnibus statistic
("copula_omnibus") in one block, and the Gaussian-copula and omnibus statistics in
time-local blocks of 32 trials standardised within each block. Goal: a couple of seconds each.

    python benchmarks/bench_permutation.py [--quick] [--trials N] [--resamples M] [--batch B]

Writes benchmarks/out/bench_permutation.json.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10**4)
    ap.add_argument("--resamples", type=int, default=10**4)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="2000 trials, 2000 re-pairings")
    args = ap.parse_args(argv)
    n, m = (2000, 2000) if args.quick else (args.trials, args.resamples)

    from corrlab.analysis.mi import gaussian_copula_mi
    from corrlab.analysis.permutation import repairing_test
    from scipy import stats
    from scipy.special import ndtri

    rng = np.random.default_rng(0)
    rho = 1.8 / math.sqrt(n)  # weak dependence, so that the p-values say something
    x = rng.standard_normal(n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(n)

    t0 = time.perf_counter()
    ours = repairing_test(x, y, statistic="gaussian_copula", n_resamples=m, rng=1)
    t_ours = time.perf_counter() - t0

    def copula_mi(xp, axis=-1):  # from scratch on the re-paired data
        u = ndtri(stats.rankdata(xp, axis=axis) / (n + 1))
        v = ndtri(stats.rankdata(y) / (n + 1))
        r = stats.pearsonr(u, v, axis=axis).statistic
        return -0.5 * np.log1p(-(r**2))

    t0 = time.perf_counter()
    ref = stats.permutation_test((x,), copula_mi, permutation_type="pairings", vectorized=True,
                                 n_resamples=m, batch=args.batch, alternative="greater", rng=2)
    t_scipy = time.perf_counter() - t0

    u = ndtri(stats.rankdata(x) / (n + 1))
    v = ndtri(stats.rankdata(y) / (n + 1))

    def score_mi(up, axis=-1):
        r = stats.pearsonr(up, v, axis=axis).statistic
        return -0.5 * np.log1p(-(r**2))

    t0 = time.perf_counter()
    ref_scores = stats.permutation_test((u,), score_mi, permutation_type="pairings", vectorized=True,
                                        n_resamples=m, batch=args.batch, alternative="greater", rng=3)
    t_scores = time.perf_counter() - t0

    se = math.sqrt(max(ref.pvalue * (1 - ref.pvalue), 1e-4) * 2 / m)
    ratio = t_scipy / t_ours
    print(f"re-pairing test, {n:,} trials, {m:,} re-pairings, Gaussian-copula MI (observed {ours.statistic:.3e} nats, "
          f"check {gaussian_copula_mi(x, y):.3e})")
    print(f"  corrlab.analysis.permutation.repairing_test           : {t_ours:8.3f} s   p = {ours.pvalue:.4f}")
    print(f"  scipy permutation_test, copula MI from scratch: {t_scipy:8.3f} s   p = {ref.pvalue:.4f}  (batch {args.batch})")
    print(f"  scipy permutation_test, precomputed scores    : {t_scores:8.3f} s   p = {ref_scores.pvalue:.4f}")
    print(f"  ratio (scipy / ours): {ratio:.1f} (goal >= 20) {'OK' if ratio >= 20 else 'BELOW GOAL'}; "
          f"against precomputed scores {t_scores / t_ours:.1f}")
    print(f"  |p_ours - p_scipy| = {abs(ours.pvalue - ref.pvalue):.4f} (Monte-Carlo s.e. of the difference {se:.4f})")
    print(f"  method: {ours.method}")

    from corrlab.analysis.permutation import time_local_blocks

    n2, m2 = (2000, 2000) if args.quick else (20000, 9999)
    x2 = rng.standard_normal(n2)
    y2 = 0.02 * x2 + rng.standard_normal(n2)
    blocks = time_local_blocks(np.arange(n2), size=32)
    options = {}
    for name, kw in (("copula_omnibus, one block", {"statistic": "copula_omnibus"}),
                     ("gaussian_copula, blocks of 32 standardised",
                      {"statistic": "gaussian_copula", "blocks": blocks, "standardize_within_blocks": True}),
                     ("copula_omnibus, blocks of 32 standardised",
                      {"statistic": "copula_omnibus", "blocks": blocks, "standardize_within_blocks": True})):
        t0, c0 = time.perf_counter(), time.process_time()
        res = repairing_test(x2, y2, n_resamples=m2, rng=4, **kw)
        options[name] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "pvalue": res.pvalue}
        print(f"  {name:45s}: {options[name]['wall_s']:6.2f} s wall, {options[name]['cpu_s']:6.2f} s CPU "
              f"({n2:,} trials, {m2:,} re-pairings), p = {res.pvalue:.4f}")

    out = pathlib.Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_permutation.json").write_text(json.dumps({
        "trials": n, "resamples": m, "batch": args.batch,
        "seconds": {"ours": t_ours, "scipy_from_scratch": t_scipy, "scipy_precomputed_scores": t_scores},
        "pvalues": {"ours": ours.pvalue, "scipy_from_scratch": float(ref.pvalue),
                    "scipy_precomputed_scores": float(ref_scores.pvalue)},
        "ratio": ratio, "ratio_precomputed": t_scores / t_ours, "method": ours.method,
        "issue22_options": {"trials": n2, "resamples": m2, **options},
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
