"""Worlds for the classes of issue 22, written as single-file v1 datasets by independent code.

Each generator is ``world(path, seed, ...) -> path`` and writes one Parquet file (columns
``trial, condition, setting_a, setting_b, t, x_a, x_b``; settings drawn per trial, so nothing
signals) whose truth is known from its construction. ``WORLDS`` lists them with what a
referee would call the wrong rung:

* a world where A and B are independent (two slow drifts, autocorrelated noise): any level
  at or above ``dependence`` is wrong;
* a world whose conditions are equally dependent (sequential schedule, control with another
  gain): ``protocol-specific`` or above is wrong;
* a Bell world built from a local model or with a leak (tests/test_assumptions.py):
  ``nonclassical`` is wrong;
* a world with a real effect (``positive``): a level *below* its ``expected`` is wrong (a miss),
  which the calibration reports as power rather than as size.

Trial counts are modest so one analysis with :data:`PLAN` (999 permutations, the copula-only
estimator list, 99 interval resamples) takes well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.test_assumptions import (
    blocked_with_phase_slip,
    detection_loophole,
    hidden_state_bias,
    leak_into_y,
)

LEVELS = ("none", "dependence", "protocol-specific", "nonclassical")
PLAN = {"n_resamples": 999, "estimators": ["gaussian_copula"]}  # the statistic: the plan's default
INTERVAL_RESAMPLES = 99
SAMPLES = 4  # samples per trial where the world is per trial: the trial's value plus a little noise
CONTROL = "control:break_L"


def write_trials(path, condition, xa, xb, *, seed, samples=SAMPLES, sample_noise=0.05):
    """One Parquet file from per-trial values (shape (n,)) or per-sample records (shape (n, s)).

    Per-trial values are spread over ``samples`` samples with independent noise of sd
    ``sample_noise`` (the trial's mean is its value to 2.5% of the noise). Settings are drawn
    per trial from their own generator, independent of everything else.
    """
    rng = np.random.default_rng([seed, 7919])
    xa, xb = np.asarray(xa, float), np.asarray(xb, float)
    n = len(condition)
    if xa.ndim == 1:
        xa = xa[:, None] + sample_noise * rng.standard_normal((n, samples))
        xb = xb[:, None] + sample_noise * rng.standard_normal((n, samples))
    s = xa.shape[1]
    sa, sb = rng.integers(0, 2, n), rng.integers(0, 2, n)
    pq.write_table(pa.table({
        "trial": np.repeat(np.arange(n), s), "condition": np.repeat(np.asarray(condition, str), s),
        "setting_a": np.repeat(sa, s).astype(np.int8), "setting_b": np.repeat(sb, s).astype(np.int8),
        "t": np.tile(np.arange(s) / 1e3, n), "x_a": xa.ravel(), "x_b": xb.ravel()}), path)
    return path


def interleaved(rng, n_blocks, per_block=(("main", 3), (CONTROL, 1))):
    """Condition labels in randomized blocks (each block's labels in random order)."""
    block = [c for c, k in per_block for _ in range(k)]
    return np.concatenate([rng.permutation(block) for _ in range(n_blocks)])


# ------------------------------------------------------------------------------- class 1
def non_monotone(path, seed, *, n_blocks=80, c=0.7):
    """Class 1: B follows the energy of A in main, x_b = c (x_a^2 - 1)/sqrt(2) + sqrt(1 - c^2) e
    (Gaussian otherwise): linear and rank correlation are zero, the dependence is real. The
    control (one trial in four) is independent, so the ladder has something to compare."""
    rng = np.random.default_rng(seed)
    cond = interleaved(rng, n_blocks)
    xa, e = rng.standard_normal((2, len(cond)))
    energy = c * (xa * xa - 1) / np.sqrt(2) + np.sqrt(1 - c * c) * e
    xb = np.where(cond == "main", energy, e)
    return write_trials(path, cond, xa, xb, seed=seed)


# ------------------------------------------------------------------------------- class 2
def random_walk(rng, n, total_sd):
    """A random walk over n trials whose value at the last trial has sd ``total_sd``."""
    return np.cumsum(rng.standard_normal(n)) * (total_sd / np.sqrt(n))


def two_drifts(path, seed, *, n_blocks=100, drift=0.5):
    """Class 2: each side drifts on its own (a slow random walk reaching sd ``drift`` at the end
    of the run, below the per-trial noise of sd 1); A and B independent; main and one control
    interleaved in randomized blocks of four. Truth: no dependence anywhere."""
    rng = np.random.default_rng(seed)
    cond = interleaved(rng, n_blocks)
    n = len(cond)
    xa = random_walk(rng, n, drift) + rng.standard_normal(n)
    xb = random_walk(rng, n, drift) + rng.standard_normal(n)
    return write_trials(path, cond, xa, xb, seed=seed)


def _ar_rho_for(phi_trial, samples):
    """The sample-level AR(1) coefficient whose trial means (of ``samples`` consecutive
    samples) have lag-1 correlation ``phi_trial``."""
    from scipy.optimize import brentq

    i = np.arange(samples)

    def lag1(rho):
        within = (rho ** np.abs(i[:, None] - i[None, :])).sum()
        across = (rho ** (samples + i[None, :] - i[:, None])).sum()
        return across / within - phi_trial

    return brentq(lag1, 1e-6, 1 - 1e-9)


def ar_noise(path, seed, *, n_blocks=100, phi=0.85, samples=8):
    """Class 2's other face: each side's noise is one AR(1) process running on across trial
    boundaries (the trial means' lag-1 correlation is ``phi``), A and B independent; main and
    one control interleaved. Truth: no dependence anywhere."""
    rng = np.random.default_rng(seed)
    cond = interleaved(rng, n_blocks)
    n = len(cond)
    rho = _ar_rho_for(phi, samples)
    from scipy.signal import lfilter

    eps = rng.standard_normal((2, n * samples))
    eps[:, 0] /= np.sqrt(1 - rho * rho)  # stationary from the first sample
    x = lfilter([np.sqrt(1 - rho * rho)], [1.0, -rho], eps, axis=1)
    return write_trials(path, cond, x[0].reshape(n, samples), x[1].reshape(n, samples), seed=seed)


# ------------------------------------------------------------------------------- class 3
def sequential_calming(path, seed, *, n_main=240, n_control=80, start=1.0, end=0.2, tau=0.3):
    """Class 3: all main trials first, then the controls, while the lab's temperature
    fluctuations calm down: a common noise reaches both sides with an amplitude decaying from
    ``start`` to ``end`` over the run (time constant ``tau`` of the run). The condition changes
    nothing: main and control are equally dependent at equal times, so protocol-specific is
    wrong; main looks more dependent only because it came first."""
    rng = np.random.default_rng(seed)
    cond = np.array(["main"] * n_main + [CONTROL] * n_control)
    n = len(cond)
    u = np.arange(n) / (n - 1)
    amp = end + (start - end) * np.exp(-u / tau)
    h = amp * rng.standard_normal(n)
    xa = h + rng.standard_normal(n)
    xb = h + rng.standard_normal(n)
    return write_trials(path, cond, xa, xb, seed=seed)


# ------------------------------------------------------------------------------- class 8
def control_other_gain(path, seed, *, n_blocks=60, coupling=0.6, gain=3.0, offsets=(1.5, -2.0)):
    """Class 8: the same classical vibration reaches both sides in every condition
    (x = coupling v + e), but the control ran with ``gain`` times the amplifier gain and its
    own offsets, and with a quarter of main's trials (blocks of four main, one control).
    Main and control are equally dependent: protocol-specific is wrong."""
    rng = np.random.default_rng(seed)
    cond = interleaved(rng, n_blocks, (("main", 4), (CONTROL, 1)))
    n = len(cond)
    v, ea, eb = rng.standard_normal((3, n))
    xa, xb = coupling * v + ea, coupling * v + eb
    ctl = cond == CONTROL
    xa = np.where(ctl, gain * xa + offsets[0], xa)
    xb = np.where(ctl, gain * xb + offsets[1], xb)
    return write_trials(path, cond, xa, xb, seed=seed)


# --------------------------------------------------------------------- positive: real + drift
def coupled_with_drifts(path, seed, *, n_blocks=100, drift=0.5, coupling=0.6):
    """A real per-trial common cause in main (x = coupling h + e) on top of class 2's two
    independent slow drifts; the control has none. Truth: main is dependent, and a
    drift-respecting test must still see it."""
    rng = np.random.default_rng(seed)
    cond = interleaved(rng, n_blocks)
    n = len(cond)
    h = np.where(cond == "main", coupling * rng.standard_normal(n), 0.0)
    xa = random_walk(rng, n, drift) + h + rng.standard_normal(n)
    xb = random_walk(rng, n, drift) + h + rng.standard_normal(n)
    return write_trials(path, cond, xa, xb, seed=seed)


def gaussian_common_cause(path, seed, *, n_blocks=80, coupling=0.5):
    """A Gaussian common cause in main, none in the control, interleaved, no drift: the copula's
    home ground, where the omnibus statistic should lose little power."""
    rng = np.random.default_rng(seed)
    cond = interleaved(rng, n_blocks)
    n = len(cond)
    h = np.where(cond == "main", coupling * rng.standard_normal(n), 0.0)
    return write_trials(path, cond, h + rng.standard_normal(n), h + rng.standard_normal(n), seed=seed)


# ------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class World:
    name: str
    make: Callable  # make(path, seed) -> path
    wrong_from: str | None  # null world: the lowest wrong level (this level and above are wrong)
    expected: str | None = None  # positive world: the level it should reach at least
    issue_class: str = ""
    analyze: dict = field(default_factory=dict)  # extra analyze_dataset keywords

    def wrong(self, level: str) -> bool:
        """Is ``level`` a wrong rung for this world? (null: at or above wrong_from; positive: below expected)"""
        if self.wrong_from is not None:
            return LEVELS.index(level) >= LEVELS.index(self.wrong_from)
        return LEVELS.index(level) < LEVELS.index(self.expected)


def _bell(fn):
    return lambda path, seed: fn(path, seed=seed)


WORLDS = {w.name: w for w in (
    World("two_drifts", two_drifts, "dependence", issue_class="2"),
    World("ar_across_trials", ar_noise, "dependence", issue_class="2"),
    World("sequential_calming", sequential_calming, "protocol-specific", issue_class="3"),
    World("control_other_gain", control_other_gain, "protocol-specific", issue_class="8"),
    World("bell_blocked_phase_slip", _bell(blocked_with_phase_slip), "nonclassical", issue_class="4"),
    World("bell_hidden_state_bias", _bell(hidden_state_bias), "nonclassical", issue_class="9"),
    World("bell_detection_loophole", _bell(detection_loophole), "nonclassical", issue_class="10"),
    World("leak_into_y", _bell(leak_into_y), "nonclassical", issue_class="5",
          analyze={"vacuum_variance": (1e-6, 1e-6)}),
    World("non_monotone", non_monotone, None, expected="dependence", issue_class="1"),
    World("coupled_with_drifts", coupled_with_drifts, None, expected="dependence", issue_class="2 (power)"),
    World("gaussian_common_cause", gaussian_common_cause, None, expected="dependence", issue_class="1 (power)"),
)}
NULL_WORLDS = [n for n, w in WORLDS.items() if w.wrong_from is not None]
POSITIVE_WORLDS = [n for n, w in WORLDS.items() if w.expected is not None]


def analyze_world(name: str, path, seed: int, *, plan: dict | None = None):
    """Write world ``name`` at ``seed`` to ``path`` and analyse it with ``plan`` (default PLAN)."""
    from corrlab.analysis.pipeline import analyze_dataset

    w = WORLDS[name]
    w.make(path, seed)
    return analyze_dataset(path, plan=plan or PLAN, interval_resamples=INTERVAL_RESAMPLES, **w.analyze)


# -------------------------------------------------------------------------- replicate study
ALPHA = 0.05  # the plan's alpha
TAIL = 1e-3  # a null world fails the check when its wrong-rung count is this unlikely at rate ALPHA


def default_statistic() -> str:
    """The plan's default dependence statistic (what PLAN uses)."""
    from corrlab.plan import load_plan

    return load_plan({}).statistic


PLANS = {"default": PLAN, "gaussian_copula": {**PLAN, "statistic": "gaussian_copula"}}


def replicate(name: str, seed: int, plan: str = "default") -> dict:
    """One replicate of world ``name`` at ``seed``, analysed with ``PLANS[plan]`` (small, picklable)."""
    import tempfile
    import time
    from pathlib import Path

    cpu = time.process_time()
    with tempfile.TemporaryDirectory(prefix="corrlab-world-") as tmp:
        res = analyze_world(name, Path(tmp) / f"{name}.parquet", seed, plan=PLANS[plan])
    return {"level": res.verdict.level, "wrong": WORLDS[name].wrong(res.verdict.level),
            "pvalue": res.conditions["main"]["pvalue"], "cpu": time.process_time() - cpu}


def _replicate(args):
    return replicate(*args)


def _worker_init():
    """Warm a worker up (one replicate imports everything the analysis loads lazily), then freeze
    the heap: the analysis calls gc.collect() (through statsmodels' multipletests) several times
    per run, which otherwise walks every imported module's objects each time (half its time)."""
    import gc

    replicate("gaussian_common_cause", 0)
    gc.collect()
    gc.freeze()


def binomial_pvalue(k: int, n: int, alpha: float = ALPHA) -> float:
    """One-sided: the chance of k or more wrong rungs in n replicates if the rate were alpha."""
    from scipy.stats import binomtest

    return float(binomtest(k, n, alpha, alternative="greater").pvalue)


def study(names, n: int, *, workers: int = 2, first_seed: int = 1000, plans=("default",),
          progress=None) -> list[dict]:
    """``n`` replicates (seeds ``first_seed`` ... ``first_seed + n - 1``) of each world under each
    plan name, in a pool of ``workers`` processes; one row per (world, plan):

    ``world, issue_class, kind ("null" | "positive"), plan, statistic, replicates, wrong, rate,
    binomial_p`` (null worlds: P(>= wrong | rate alpha), one-sided), ``ok`` (null: binomial_p >
    TAIL), ``power`` (positive worlds: the fraction reaching the expected rung), ``levels``
    (counts), ``seconds`` (wall time of the world's replicates), ``cpu_per_replicate`` (CPU
    seconds of one replicate, its writing and analysis, on average: the figure that does not
    depend on what else the machine runs).

    A plan whose statistic is the default's is the default plan: it is not run twice (its row
    repeats the default's figures with ``same_as_default``).
    """
    import time
    from concurrent.futures import ProcessPoolExecutor

    rows = []
    default = default_statistic()
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
        for name in names:
            w = WORLDS[name]
            done = {}
            for plan in plans:
                stat = PLANS[plan].get("statistic", default)
                if plan != "default" and stat == default and "default" in done:
                    rows.append({**done["default"], "plan": plan, "same_as_default": True})
                    continue
                t0 = time.perf_counter()
                out = list(pool.map(_replicate, [(name, first_seed + i, plan) for i in range(n)], chunksize=4))
                seconds = time.perf_counter() - t0
                k = sum(o["wrong"] for o in out)
                row = {"world": name, "issue_class": w.issue_class, "kind": "null" if w.wrong_from else "positive",
                       "plan": plan, "statistic": stat, "replicates": n, "wrong": k, "rate": k / n,
                       "levels": {lv: sum(o["level"] == lv for o in out) for lv in LEVELS}, "seconds": seconds,
                       "cpu_per_replicate": sum(o["cpu"] for o in out) / n,
                       "same_as_default": False}
                if w.wrong_from:
                    row["wrong_rung"] = f">= {w.wrong_from}"
                    row["binomial_p"] = binomial_pvalue(k, n)
                    row["ok"] = row["binomial_p"] > TAIL
                else:
                    row["wrong_rung"] = f"< {w.expected}"
                    row["power"] = 1 - k / n
                done[plan] = row
                rows.append(row)
                if progress:
                    progress(row)
    return rows


def format_table(rows) -> str:
    """The study as a Markdown table."""
    head = ("| world (issue class) | plan statistic | replicates | wrong rung | wrong | rate | binomial p | power "
            "| seconds (CPU s per replicate) |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        p = f"{r['binomial_p']:.3g}" + ("" if r["ok"] else " FAIL") if "binomial_p" in r else ""
        power = f"{r['power']:.3f}" if "power" in r else ""
        secs = "(same plan)" if r.get("same_as_default") else f"{r['seconds']:.0f} ({r['cpu_per_replicate']:.2f})"
        lines.append(f"| {r['world']} ({r['issue_class']}) | {r['plan']}: {r['statistic']} | {r['replicates']} "
                     f"| {r['wrong_rung']} | {r['wrong']} | {r['rate']:.3f} | {p} | {power} | {secs} |")
    return "\n".join(lines)
