"""Trial-level worlds for the calibration of the anytime e-processes (issue 17).

Each world draws one run at trial level with numpy: the conditions, blocks and settings are
the seeded schedule's (:func:`corrlab.schedule.schedule_arrays`, as the runner draws them);
the outcomes are built by the world, whose truth is known. ``WORLDS`` gives, per world,
which hypotheses are null there (their e-processes must cross 1/alpha in at most alpha of the
replicates, monitored after every trial up to the maximum) and which are true (power).

The nulls, by hypothesis:

* ``controls:*`` (sharp null: the label does not matter): any world whose outcomes ignore the
  label, whatever the drift or autocorrelation; and (``gain_control``) a control whose gain
  differs while its dependence (copula) is main's, the one-sided reading's null;
* ``no_signalling:*``: every world but the signalling ones;
* ``dependence``: independent sides, at most one side serially dependent (its assumption);
* ``chsh``: a local model (memory allowed) at the local bound S = 2.
"""

from __future__ import annotations

import math

import numpy as np

from corrlab.anytime import EvidenceMonitor
from corrlab.schedule import schedule_arrays

CONDITIONS = {"main": 3, "control:break_L": 1, "control:perturb_C": 1, "control:couple_env": 1}
BLOCK = 6
ALPHA = 0.05


def _ar(rng, n, phi):
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x * math.sqrt(1 - phi * phi)


def _walk(rng, n, total_sd):
    return np.cumsum(rng.standard_normal(n)) * total_sd / math.sqrt(n)


def _pair(rng, n, rho):
    """Unit-variance Gaussian pairs with correlation ``rho`` (an array or a number)."""
    z = rng.standard_normal((3, n))
    rho = np.broadcast_to(np.asarray(rho, float), (n,))
    c = np.sqrt(np.abs(rho))
    return np.sqrt(1 - np.abs(rho)) * z[0] + c * z[2], np.sqrt(1 - np.abs(rho)) * z[1] + np.sign(rho) * c * z[2]


def independent(s, rng):
    n = len(s.trial)
    return rng.standard_normal(n), rng.standard_normal(n)


def shared_drift(s, rng):
    """Main and controls equally dependent (rho 0.3), a large drift shared by both sides."""
    n = len(s.trial)
    a, b = _pair(rng, n, 0.3)
    d = _walk(rng, n, 3.0)
    return a + d, b + d


def autocorrelated(s, rng):
    """Independent sides, each strongly autocorrelated across trials (AR(1), phi = 0.95)."""
    n = len(s.trial)
    return _ar(rng, n, 0.95), _ar(rng, n, 0.95)


def one_side_serial(s, rng):
    """Independent sides: A autocorrelated (phi 0.95) and drifting, B i.i.d."""
    n = len(s.trial)
    return _ar(rng, n, 0.95) + _walk(rng, n, 2.0), rng.standard_normal(n)


def gain_control(s, rng):
    """Every condition with main's dependence (rho 0.4), the controls at 3x gain and an offset."""
    n = len(s.trial)
    a, b = _pair(rng, n, 0.4)
    ctrl = s.condition != "main"
    return np.where(ctrl, 3 * a + 1.5, a), np.where(ctrl, 3 * b - 2.0, b)


def _saturating():
    """The deterministic local strategies (a0, a1, b0, b1) in {+1, -1} with S = 2 (minus pair (1, 1))."""
    out = []
    for bits in range(16):
        a0, a1, b0, b1 = (1 - 2 * ((bits >> k) & 1) for k in range(4))
        if a0 * b0 + a0 * b1 + a1 * b0 - a1 * b1 == 2:
            out.append((a0, a1, b0, b1))
    return out


SATURATING = _saturating()


def local_bell(s, rng):
    """Sign outcomes of a local model with memory at the bound S = 2: each trial one of the
    deterministic strategies that saturate CHSH, chosen from the previous trial's settings and
    outcomes (memory) and a coin; outcome magnitudes uniform in [0.5, 1.5)."""
    n = len(s.trial)
    a, b = np.empty(n), np.empty(n)
    k = 0
    for i in range(n):
        a0, a1, b0, b1 = SATURATING[k]
        x, y = int(s.setting_a[i]), int(s.setting_b[i])
        a[i] = (a1 if x else a0) * (0.5 + rng.random())
        b[i] = (b1 if y else b0) * (0.5 + rng.random())
        k = (k + 1 + 2 * x + y + (a[i] > 0) + int(rng.integers(0, 2))) % len(SATURATING)
    return a, b


def protocol_specific(s, rng, rho=0.5):
    """Main dependent (rho), controls independent, a shared drift."""
    n = len(s.trial)
    a, b = _pair(rng, n, np.where(s.condition == "main", rho, 0.0))
    d = _walk(rng, n, 2.0)
    return a + d, b + d


def variance_signalling(s, rng):
    """B's spread (not its mean) depends on A's setting: sd 1 or 1.6."""
    a, b = independent(s, rng)
    return a, b * np.where(s.setting_a == 1, 1.6, 1.0)


NULL_ALL = ("controls:", "no_signalling:", "dependence", "chsh")
WORLDS = {
    # name: (generator, null prefixes, true prefixes)
    "independent": (independent, NULL_ALL, ()),
    "shared_drift": (shared_drift, ("controls:", "no_signalling:", "chsh"), ("dependence",)),
    "autocorrelated": (autocorrelated, ("controls:", "no_signalling:", "chsh"), ()),
    "one_side_serial": (one_side_serial, NULL_ALL, ()),
    "gain_control": (gain_control, ("controls:", "no_signalling:", "chsh"), ("dependence",)),
    "local_bell": (local_bell, ("controls:", "no_signalling:", "chsh"), ()),
    "protocol_specific": (protocol_specific, ("no_signalling:", "chsh"), ("dependence", "controls:")),
    "variance_signalling": (variance_signalling, ("controls:", "dependence", "no_signalling:A:", "chsh"),
                            ("no_signalling:B:main",)),
}


def schedule(seed: int, trials: int):
    return schedule_arrays(seed, CONDITIONS, trials, BLOCK, 16)


def monitor_run(world: str, seed: int, trials: int, *, alpha: float = ALPHA) -> EvidenceMonitor:
    """One replicate: the world's run, monitored trial by trial up to ``trials``."""
    s = schedule(seed, trials)
    rng = np.random.default_rng([seed, 17])
    a, b = WORLDS[world][0](s, rng)
    m = EvidenceMonitor(CONDITIONS, BLOCK, alpha=alpha)
    m.update_many(s.trial, s.condition, s.setting_a, s.setting_b, a, b)
    return m


def crossing_counts(world: str, replicates: int, trials: int, *, first_seed: int = 1000) -> dict:
    """Per hypothesis: in how many replicates its e-value ever reached 1/alpha (``raw``), and its
    closed e-Holm adjusted value (``adjusted``, family members only)."""
    raw: dict[str, int] = {}
    adjusted: dict[str, int] = {}
    for r in range(replicates):
        snap = monitor_run(world, first_seed + r, trials).snapshot()["hypotheses"]
        for k, h in snap.items():
            raw[k] = raw.get(k, 0) + (h["crossed_at"] is not None)
            if h["family"]:
                adjusted[k] = adjusted.get(k, 0) + (h["crossed_at_adjusted"] is not None)
    return {"raw": raw, "adjusted": adjusted, "replicates": replicates}


def is_null(world: str, key: str) -> bool:
    return any(key.startswith(p) for p in WORLDS[world][1])


def is_true(world: str, key: str) -> bool:
    return any(key.startswith(p) for p in WORLDS[world][2])
