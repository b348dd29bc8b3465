"""Anytime-valid evidence: e-processes for the ladder, updated one committed trial at a time.

A fixed-n p-value looked at after every trial and acted on loses its meaning; an
e-process (a nonnegative process whose expectation stays at most 1 under its null, whatever
the stopping time) does not: by Ville's inequality ``P(sup_t E_t >= 1/alpha) <= alpha``, so the
anytime-valid p-value ``min(1, 1 / sup_t E_t)`` may be watched after every trial and a run
may stop the moment it crosses alpha. Each process here is a product of *test factors*
``F_t >= 0`` with ``E[F_t | past] <= 1`` under its null; the factor's bet is fixed from the
past (predictable) before trial t's data are used.

This module is core (numpy and the standard library only) because both the runner's
stopping rule (acquisition) and the analysis' ``anytime`` section use it.

The hypotheses (keys as the ladder's family names):

``dependence``
    Within ``main``: A and B independent. Consecutive main trials are taken in groups of six;
    under the null, with one side's outcomes exchangeable within each group given the other
    side's and the past (no serial dependence on at least one side, the dependence rung's
    assumption), the observed pairing is one of the 720 re-pairings, each equally likely.
    The factor ``exp(c T(id)) / mean_s exp(c T(s))``, ``T(s) = sum_i a_i b_s(i)`` on the
    group's standardized values (the likelihood ratio of a Gaussian dependence against
    re-pairing, at tilt ``c``), has mean exactly 1; a mixture over a grid of ``c`` of both
    signs is the e-process (the sequential form of the re-pairing test; pairs, the two-trial
    case, would use half the information). Sees signed (linear) dependence; a slow shared
    drift enters only through its change within a group.
``controls:<control>``
    Design-based, the sharp null "the condition does not matter": every trial's outcome
    would be the same under either label. The schedule draws the labels as random
    permutations within blocks, so given the past, a trial's label is ``c`` with probability
    ``(n_c - seen_c) / (B - seen)`` (counts of the block's composition not yet seen). The
    bet predicts the label from the trial's outcome (the angle of the pair of values
    standardized by each candidate condition's own past, under that condition's correlation
    against the two conditions' common one: scale-free, so a control with another gain and
    the same dependence gives it nothing to win) and pays ``q(label | outcome) / pi(label)``,
    which has mean exactly 1 under the sharp null whatever the drift or autocorrelation of
    the outcomes (the outcomes do not depend on the labels; the labels' law is known).
    One-sided: it bets only while main's estimated correlation is the larger in magnitude.
``no_signalling:<side>:<condition>``
    Design-based: each side's setting is drawn at random (probability ``p`` of setting 1)
    independently of everything else. Under "the local outcome does not depend on the
    remote setting", betting on the remote setting with a predicted ``q(setting | local
    outcome)`` pays ``q / p`` with mean 1. The predictor is a quadratic discriminant (a
    Gaussian per remote setting with its own mean and spread), so a remote setting that
    changes only the variance of the local outcome is caught.
``chsh``
    The prediction-based ratio (Zhang, Glancy and Knill, PRA 84, 062118 (2011); 88, 052119
    (2013)) on the sign outcomes of main trials: from past trials, a predicted conditional
    distribution ``p(ab|xy)``; its closest local distribution ``q*`` in KL divergence (EM
    over the 16 deterministic local strategies); the factor ``T = r / max_lambda sum_xy
    rho(xy) r(lambda(xy), xy)`` with ``r = p / q*``, normalised so that ``E[T] <= 1`` for
    every local (hidden-variable, memory allowed) model given settings drawn with known
    probabilities ``rho`` independently of the past: a test supermartingale.

Multiplicity: the family's e-values are merged by the arithmetic mean and closed (closed
e-Holm, Vovk and Wang 2021): hypothesis ``i`` is rejected at time t when ``min over S
containing i of mean_{j in S} E_j(t) >= 1/alpha``; the mean of e-processes on one filtration is
an e-process for the intersection, so the family-wise error stays at most alpha over all
times. Independent runs multiply (``prior``): each run's e-value is an e-value given the
runs before it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["EvidenceMonitor", "HYPOTHESES", "closed_e_holm", "window_mean", "MULTIPLICITY"]

HYPOTHESES = {
    "dependence": {
        "null": "A and B independent in main",
        "bet": "the observed pairing of each group of six consecutive main trials against its 720 re-pairings: "
               "factor exp(c T) / mean over re-pairings of exp(c T), T = sum of products of the group's standardized "
               "values, mixed over tilts c in +-{0.1, 0.2, 0.4, 0.8, 1.6}",
        "assumes": "within each group of six consecutive main trials, one side's outcomes exchangeable given the "
                   "other's (no serial dependence on at least one side; checked by the serial test of the "
                   "assumptions); sees signed (linear) dependence; a slow shared drift counts through its change "
                   "within a group (the drift diagnostic is beside it)",
        "design_based": False,
    },
    "controls": {
        "null": "sharp null: the condition does not matter (each trial's outcome the same under either label)",
        "bet": "the label, predicted from the angle of the trial's outcome pair standardized by each candidate "
               "condition's own past (exponentially weighted location and spread): the bivariate-normal angle density "
               "under that condition's correlation over that under the two conditions' common one (one-sided: only "
               "while main's correlation is the larger in magnitude; the angle ignores a gain common to both sides), "
               "paid q / pi with pi the schedule's randomization probability given the block's labels so far",
        "assumes": "labels drawn as the recorded schedule says (seeded random permutations within blocks); nothing "
                   "about drift or autocorrelation of the outcomes",
        "design_based": True,
    },
    "no_signalling": {
        "null": "the local outcome does not depend on the remote setting",
        "bet": "the remote setting, predicted from the local outcome by a quadratic discriminant (mean and spread "
               "per setting, from past trials), paid q / p with p the setting's drawing probability; mixed over "
               "shrinkages 0.25, 0.5, 1",
        "assumes": "settings drawn at random per trial with known probability, independently of everything else",
        "design_based": True,
    },
    "chsh": {
        "null": "a local hidden-variable model (memory allowed) produces the sign outcomes",
        "bet": "prediction-based ratio (Zhang, Glancy, Knill 2011/2013): predicted p(ab|xy) from past main trials, "
               "its KL-closest local q*, factor p/q* normalised over the 16 deterministic local strategies; "
               "mixed with 1 at weights 0.5 and 1",
        "assumes": "settings drawn at random per trial with known probability, independently of the past and of the "
                   "hidden variables; a missing outcome counted as +1 (or dropped under fair sampling)",
        "design_based": True,
    },
}

MULTIPLICITY = ("closed e-Holm: within each family (the evidence: dependence, controls, chsh; the no-signalling "
                "checks) the e-values are merged by their arithmetic mean over every subset and closed; a hypothesis "
                "is decided when every subset containing it has mean e-value >= 1/alpha (Vovk and Wang 2021)")

_LN2 = math.log(2.0)
_SHRINK = (0.25, 0.5, 1.0)  # the no-signalling bets: a mixture of shrinkages towards no bet
_LABEL_SHRINK = (1.0,)  # the label bets: the plug-in itself (a mixture cost up to ln 3 nats of the ~3.7 needed)
_GROUP = 6  # main trials re-paired together by the dependence process
_TILTS = np.array([0.1, 0.2, 0.4, 0.8, 1.6, -0.1, -0.2, -0.4, -0.8, -1.6])
_PERMS = np.array(list(__import__("itertools").permutations(range(_GROUP))))  # (720, 6)
_CHSH_SHRINK = (0.5, 1.0)
_TRAJECTORY_POINTS = 200


def window_mean(values, window: tuple[float, float] = (0.0, 1.0)) -> float:
    """A trial's observable: the mean of its samples in ``[start, stop)`` of its length, exactly
    as the analysis reduces a trial (``analysis.pipeline._window_means``)."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    lo = int(math.floor(n * window[0]))
    hi = max(int(math.floor(n * window[1])), lo + 1)
    return float(v[lo:hi].mean())


def closed_e_holm(evalues: Mapping[str, float]) -> dict[str, float]:
    """Each hypothesis' e-value adjusted by closed testing with arithmetic-mean merging:
    ``min over subsets S containing i of mean_{j in S} e_j`` (the worst S holds i and the
    smallest others). Reject ``i`` at level alpha when the adjusted value is >= 1/alpha."""
    keys = list(evalues)
    vals = [float(evalues[k]) for k in keys]
    order = sorted(range(len(vals)), key=vals.__getitem__)
    out = {}
    for i, k in enumerate(keys):
        best, total, size = vals[i], vals[i], 1
        for j in order:
            if j == i:
                continue
            total += vals[j]
            size += 1
            best = min(best, total / size)
        out[k] = best
    return out


class _EW:
    """Exponentially weighted mean and variance of a stream (halflife in updates; inf: plain)."""

    __slots__ = ("w", "n", "mean", "var", "halflife", "last")

    def __init__(self, halflife: float):
        self.halflife = halflife
        self.w = 0.0 if not math.isfinite(halflife) else 1.0 - 2.0 ** (-1.0 / halflife)
        self.n = 0
        self.mean = 0.0
        self.var = 0.0
        self.last: int | None = None

    def z(self, x: float) -> float | None:
        if self.n < 3 or self.var <= 0:
            return None
        return (x - self.mean) / math.sqrt(self.var)

    def add(self, x: float, t: int | None = None) -> None:
        """One more value; with ``t`` (its trial) the weight decays with the trials elapsed since
        the last value, so a sparse stream (a control's) follows a drift as fast in time as main."""
        self.n += 1
        w = self.w
        if t is not None and self.last is not None and math.isfinite(self.halflife):
            w = 1.0 - 2.0 ** (-max(t - self.last, 1) / self.halflife)
        self.last = t
        w = max(w, 1.0 / self.n)
        d = x - self.mean
        self.mean += w * d
        self.var = (1 - w) * (self.var + w * d * d)


class _Process:
    """One e-process: a mixture (mean) of the wealths of a grid of bets, kept in logs."""

    def __init__(self, key: str, kind: str, grid: int, prior_log: float = 0.0):
        self.key = key
        self.kind = kind
        self.logw = [0.0] * grid
        self.prior_log = prior_log
        self.log_e = prior_log
        self.sup_log_e = prior_log
        self.crossed_at: int | None = None
        self.crossed_at_adjusted: int | None = None
        self.sup_log_adjusted = prior_log
        self.n_updates = 0
        self.n_bets = 0
        self.traj_trial: list[int] = []
        self.traj_log: list[float] = []
        self.not_applicable: str | None = None

    def apply(self, trial: int, factors: Sequence[float] | None, threshold_log: float) -> None:
        self.n_updates += 1
        if factors is not None:
            self.n_bets += 1
            lw = self.logw
            for i, f in enumerate(factors):
                lw[i] += math.log(f) if f > 0 else -745.0
            top = max(lw)
            self.log_e = self.prior_log + top + math.log(sum(math.exp(x - top) for x in lw) / len(lw))
            if self.log_e > self.sup_log_e:
                self.sup_log_e = self.log_e
            if self.crossed_at is None and self.log_e >= threshold_log:
                self.crossed_at = trial
        self.traj_trial.append(trial)
        self.traj_log.append(self.log_e)


class EvidenceMonitor:
    """Every e-process of the ladder, fed one trial at a time in time order.

    Parameters
    ----------
    conditions : trials of each condition per block (the schedule's composition), or None
        when the schedule is unknown (then the controls' design-based processes are not
        applicable).
    block_size : trials per block (``sum(conditions.values())``).
    alpha : the plan's alpha; a hypothesis is decided when its e-value reaches 1/alpha.
    setting_probability : probability of setting 1 on each side (the schedule's: 0.5).
    confirmatory : the plan's confirmatory family (the closed e-Holm families are its
        members: evidence = dependence, controls, chsh; and the no-signalling checks).
    halflife : updates of the exponentially weighted standardization (the plan's
        ``time_block_trials``; 0 or None: no decay).
    chsh : whether the CHSH process runs (main trials with randomized settings).
    fair_sampling : CHSH drops trials with a missing outcome instead of counting it as +1.
    prior : ``{key: e-value}`` of earlier independent runs of the same plan: the evidence
        continues from their product.
    """

    def __init__(self, conditions: Mapping[str, int] | None, block_size: int | None = None, *, alpha: float = 0.05,
                 setting_probability: float = 0.5,
                 confirmatory: Sequence[str] = ("dependence", "controls", "no_signalling", "chsh"),
                 halflife: float | None = 32, chsh: bool = True, fair_sampling: bool = False,
                 condition_names: Sequence[str] | None = None, prior: Mapping[str, float] | None = None):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")
        if not 0 < setting_probability < 1:
            raise ValueError(f"setting_probability must lie in (0, 1); got {setting_probability!r}")
        self.alpha = float(alpha)
        self.threshold_log = math.log(1.0 / alpha)
        self.p1 = float(setting_probability)
        self.confirmatory = tuple(confirmatory)
        self.fair_sampling = bool(fair_sampling)
        hl = float(halflife) if halflife else math.inf
        self.design = dict(conditions) if conditions else None
        if self.design is not None:
            self.block_size = int(block_size or sum(self.design.values()))
            if sum(self.design.values()) != self.block_size:
                raise ValueError(f"conditions add up to {sum(self.design.values())}, block_size is {self.block_size}")
            names = list(self.design)
        else:
            self.block_size = None
            names = list(condition_names or ["main"])
        names = (["main"] if "main" in names else []) + sorted(c for c in names if c != "main")
        self.conditions = names
        controls = [c for c in names if c.startswith("control:")]
        prior = {k: float(v) for k, v in (prior or {}).items()}

        def lp(key):
            v = prior.get(key, 1.0)
            if not v >= 0:
                raise ValueError(f"prior e-value of {key} must be >= 0; got {v!r}")
            return math.log(v) if v > 0 else -745.0

        self.processes: dict[str, _Process] = {}
        self.processes["dependence"] = _Process("dependence", "dependence", len(_TILTS), lp("dependence"))
        for c in controls:
            p = _Process(f"controls:{c}", "controls", len(_LABEL_SHRINK), lp(f"controls:{c}"))
            if self.design is None:
                p.not_applicable = "no recorded schedule: the labels' randomization probabilities are unknown"
            self.processes[p.key] = p
        for c in names:
            for side in "AB":
                key = f"no_signalling:{side}:{c}"
                self.processes[key] = _Process(key, "no_signalling", len(_SHRINK), lp(key))
        if chsh:
            self.processes["chsh"] = _Process("chsh", "chsh", len(_CHSH_SHRINK), lp("chsh"))
        self.prior = {k: v for k, v in prior.items() if k in self.processes}
        # the families of the closed e-Holm (the plan's confirmatory members only)
        evidence = [k for k, p in self.processes.items() if p.not_applicable is None and (
            (k == "dependence" and "dependence" in self.confirmatory)
            or (k.startswith("controls:") and "controls" in self.confirmatory)
            or (k == "chsh" and "chsh" in self.confirmatory))]
        ns = [k for k in self.processes if k.startswith("no_signalling:") and "no_signalling" in self.confirmatory]
        self.families = {"evidence": evidence, "no_signalling": ns}
        self._family_of = {k: f for f, ks in self.families.items() for k in ks}
        # state
        self.n_trials = 0
        self.last_trial: int | None = None
        self._block_seen: dict[int, dict[str, int]] = {}
        # per condition: each side's EW location and spread, and its correlation sums (n, Sab, Saa, Sbb)
        self._cls = {c: (_EW(hl), _EW(hl), [0, 0.0, 0.0, 0.0]) for c in names}
        self._controls = controls
        self._dep_group: list[tuple[float, float]] = []
        self._ns = {(c, s): (_EW(hl), [[0, 0.0, 0.0], [0, 0.0, 0.0]]) for c in names for s in "AB"}
        self._chsh_counts = np.zeros((4, 4))
        self._chsh_table: np.ndarray | None = None
        self._chsh_since = 0
        self._chsh_w = np.full(16, 1 / 16)
        self._rho = np.array([(1 - self.p1) * (1 - self.p1), (1 - self.p1) * self.p1,
                              self.p1 * (1 - self.p1), self.p1 * self.p1])

    # ------------------------------------------------------------------ feeding
    def update(self, trial: int, condition: str, setting_a: int, setting_b: int, a: float, b: float, *,
               block: int | None = None) -> None:
        """One committed trial (in time order): its label, settings and the two observables
        (NaN: a missing outcome). ``block``: its randomization block (default ``trial //
        block_size``, the schedule's numbering)."""
        trial = int(trial)
        if self.design is not None:
            block = trial // self.block_size if block is None else int(block)
        if self.last_trial is not None and trial <= self.last_trial:
            raise ValueError(f"trials must arrive in time order: trial {trial} after trial {self.last_trial}")
        self.last_trial = trial
        self.n_trials += 1
        a, b = float(a), float(b)
        sa, sb = int(setting_a), int(setting_b)
        ok_a, ok_b = math.isfinite(a), math.isfinite(b)
        complete = ok_a and ok_b
        thr = self.threshold_log
        touched = []
        # -- controls: the label bet, before the block's counts and the standardization see this trial
        pi = self._label_probabilities(block)
        zs = {c: self._zpair(c, a, b) for c in ("main", condition) if c in self._cls} if complete else {}
        for c in self._controls:
            proc = self.processes[f"controls:{c}"]
            if proc.not_applicable is not None or condition not in ("main", c):
                continue
            factors = None
            if complete and pi is not None:
                pm, pk = pi.get("main", 0.0), pi.get(c, 0.0)
                if pm > 0 and pk > 0:
                    zk = zs[c] if c in zs else self._zpair(c, a, b)
                    factors = self._label_factors(self._cls["main"][2], self._cls[c][2], zs.get("main"), zk,
                                                  pm / (pm + pk), condition == "main")
            proc.apply(trial, factors, thr)
            touched.append(proc)
        if complete and condition in self._cls:
            ew_a, ew_b, sums = self._cls[condition]
            z = zs.get(condition)
            if z is not None:
                sums[0] += 1; sums[1] += z[0] * z[1]; sums[2] += z[0] * z[0]; sums[3] += z[1] * z[1]  # noqa: E702
            ew_a.add(a, trial)  # decay in trials elapsed: a control's sparse stream follows a drift as main's
            ew_b.add(b, trial)
        if self.design is not None:
            seen = self._block_seen.setdefault(block, {})
            seen[condition] = seen.get(condition, 0) + 1
        # -- no-signalling: each side's outcome against the remote setting
        for side, local, ok, remote in (("A", a, ok_a, sb), ("B", b, ok_b, sa)):
            key = (condition, side)
            if not ok or key not in self._ns:
                continue
            proc = self.processes[f"no_signalling:{side}:{condition}"]
            proc.apply(trial, self._ns_factors(key, local, remote), thr)
            touched.append(proc)
        # -- dependence: groups of consecutive main trials, the observed pairing against every re-pairing
        if condition == "main" and complete:
            self._dep_group.append((a, b))
            if len(self._dep_group) == _GROUP:
                factors = repairing_factors(np.array(self._dep_group))
                self._dep_group = []
                proc = self.processes["dependence"]
                proc.apply(trial, None if factors is None else factors.tolist(), thr)
                touched.append(proc)
        # -- CHSH: the prediction-based ratio on the sign outcomes of main trials
        if condition == "main" and "chsh" in self.processes and sa in (0, 1) and sb in (0, 1) and (
                complete or not self.fair_sampling):
            oa = 0 if (not ok_a or a >= 0) else 1  # bit 0: outcome +1 (a missing outcome counts as +1)
            ob = 0 if (not ok_b or b >= 0) else 1
            xy, ab = 2 * sa + sb, 2 * oa + ob
            table = self._chsh_factor_table()
            factors = None if table is None else [1.0 + k * (table[xy, ab] - 1.0) for k in _CHSH_SHRINK]
            self._chsh_counts[xy, ab] += 1
            self._chsh_since += 1
            proc = self.processes["chsh"]
            proc.apply(trial, factors, thr)
            touched.append(proc)
        if touched:
            self._adjust(trial, {p.key for p in touched})

    def update_many(self, trial, condition, setting_a, setting_b, a, b) -> None:
        """Several trials (arrays in time order), as :meth:`update` each."""
        for row in zip(np.asarray(trial).tolist(), np.asarray(condition).tolist(), np.asarray(setting_a).tolist(),
                       np.asarray(setting_b).tolist(), np.asarray(a, float).tolist(), np.asarray(b, float).tolist()):
            self.update(*row)

    # ------------------------------------------------------------------ bets
    def _label_probabilities(self, block: int | None) -> dict[str, float] | None:
        """P(label = c | labels seen so far in the trial's block), from the block's composition."""
        if self.design is None:
            return None
        seen = self._block_seen.get(block, {})
        left = {c: n - seen.get(c, 0) for c, n in self.design.items()}
        total = sum(v for v in left.values() if v > 0)
        if total <= 0:
            return None  # more trials of the block than its composition: not this schedule
        return {c: max(v, 0) / total for c, v in left.items()}

    def _zpair(self, c: str, a: float, b: float) -> tuple[float, float] | None:
        """(a, b) standardized by condition ``c``'s past (EW location and spread), clipped at 4."""
        ew_a, ew_b, _ = self._cls[c]
        za, zb = ew_a.z(a), ew_b.z(b)
        if za is None or zb is None:
            return None
        return max(-4.0, min(4.0, za)), max(-4.0, min(4.0, zb))

    @staticmethod
    def _label_factors(main, ctrl, zm, zk, pi: float, is_main: bool) -> list[float] | None:
        """The label bet. ``h(L) = f_{rho_L}(theta^L) / f_{rho_0}(theta^L)``: the density of the angle
        of the trial's values, standardized by class L's own past, under class L's correlation
        over that under the two classes' common one (scale-free: a control's other gain, at the
        same dependence, leaves the angle's law as it is); the factor ``h(L) / E_pi[h]`` has mean
        1 under the sharp null.
        One-sided: only while main's correlation is the larger in magnitude."""
        if zm is None or zk is None:
            return None
        rhos = []
        for n, sab, saa, sbb in (main, ctrl):
            if n < 3 or saa <= 0 or sbb <= 0:
                return None
            rhos.append(max(-0.95, min(0.95, sab / math.sqrt(saa * sbb) * n / (n + 2.0))))
        rm, rk = rhos
        if abs(rm) <= abs(rk):  # one-sided: main's dependence above the control's
            return None
        r0 = (main[0] * rm + ctrl[0] * rk) / (main[0] + ctrl[0])
        lhm = max(-4.0, min(4.0, _log_angle(rm, *zm) - _log_angle(r0, *zm)))
        lhk = max(-4.0, min(4.0, _log_angle(rk, *zk) - _log_angle(r0, *zk)))
        llr = lhm - lhk
        q = pi * math.exp(llr) / (pi * math.exp(llr) + 1 - pi)
        r = q / pi if is_main else (1 - q) / (1 - pi)
        return [1.0 + k * (r - 1.0) for k in _LABEL_SHRINK]

    def _ns_factors(self, key, local: float, remote: int) -> list[float] | None:
        std, cls = self._ns[key]
        z = std.z(local)
        factors = None
        if z is not None and remote in (0, 1):
            z = max(-6.0, min(6.0, z))
            (n0_, s0, q0), (n1_, s1, q1) = cls
            if n0_ >= 3 and n1_ >= 3:
                prior = 2.0
                m0, m1 = s0 / (n0_ + prior), s1 / (n1_ + prior)
                v0 = max((q0 - s0 * s0 / n0_ + prior) / (n0_ + prior), 1e-3)
                v1 = max((q1 - s1 * s1 / n1_ + prior) / (n1_ + prior), 1e-3)
                llr = 0.5 * math.log(v0 / v1) - (z - m1) ** 2 / (2 * v1) + (z - m0) ** 2 / (2 * v0)
                llr = max(-3.0, min(3.0, llr))
                p1 = self.p1
                q = p1 * math.exp(llr) / (p1 * math.exp(llr) + 1 - p1)
                r = q / p1 if remote == 1 else (1 - q) / (1 - p1)
                factors = [1.0 + k * (r - 1.0) for k in _SHRINK]
            c = cls[remote]
            c[0] += 1; c[1] += z; c[2] += z * z  # noqa: E702
        std.add(local)
        return factors

    def _chsh_factor_table(self) -> np.ndarray | None:
        counts = self._chsh_counts
        if counts.sum(axis=1).min() < 2:
            return None
        n = counts.sum()
        if self._chsh_table is None or self._chsh_since >= max(4, min(64, int(n // 32))):
            self._chsh_table, self._chsh_w = pbr_table(counts, self._rho, w0=self._chsh_w)
            self._chsh_since = 0
        return self._chsh_table

    # ------------------------------------------------------------------ multiplicity
    def _adjust(self, trial: int, touched: set[str]) -> None:
        thr = self.threshold_log
        for fam, keys in self.families.items():
            if not keys or not (touched & set(keys)):
                continue
            adj = closed_e_holm({k: math.exp(min(self.processes[k].log_e, 700.0)) for k in keys})
            for k, v in adj.items():
                p = self.processes[k]
                lv = math.log(v) if v > 0 else -745.0
                if lv > p.sup_log_adjusted:
                    p.sup_log_adjusted = lv
                if p.crossed_at_adjusted is None and lv >= thr - 1e-12:
                    p.crossed_at_adjusted = trial

    # ------------------------------------------------------------------ reading
    def decided(self, keys: Sequence[str]) -> bool:
        """Whether every hypothesis in ``keys`` has crossed 1/alpha (adjusted within its family
        when it belongs to one). A key that is not monitored is not decided."""
        for k in keys:
            p = self.processes.get(k)
            if p is None or p.not_applicable is not None:
                return False
            crossed = p.crossed_at_adjusted if k in self._family_of else p.crossed_at
            if crossed is None:
                return False
        return True

    def trajectory(self, key: str, points: int = _TRAJECTORY_POINTS) -> list[list]:
        """``[[trial, e_value], ...]``: at most ``points`` of the process' updates (evenly spread,
        the last always kept)."""
        p = self.processes[key]
        n = len(p.traj_trial)
        if n == 0:
            return []
        idx = sorted(set(np.linspace(0, n - 1, min(points, n)).round().astype(int).tolist()))
        return [[p.traj_trial[i], _e(p.traj_log[i])] for i in idx]

    def snapshot(self, *, trajectory: bool = False) -> dict:
        """A JSON-serialisable view: per hypothesis the e-value, the anytime-valid p-value
        ``min(1, 1/sup E)``, its closed e-Holm adjustment, the trial at which it crossed
        1/alpha, and (``trajectory=True``) its trajectory."""
        hyps = {}
        for k, p in self.processes.items():
            fam = self._family_of.get(k)
            entry = {
                "family": fam,
                "e_value": _e(p.log_e),
                "log10_e": p.log_e / math.log(10),
                "sup_e": _e(p.sup_log_e),
                "pvalue_anytime": min(1.0, math.exp(-p.sup_log_e)),
                "crossed_at": p.crossed_at,
                "pvalue_adjusted": min(1.0, math.exp(-p.sup_log_adjusted)) if fam else None,
                "crossed_at_adjusted": p.crossed_at_adjusted if fam else None,
                "decided": (p.crossed_at_adjusted if fam else p.crossed_at) is not None,
                "n_updates": p.n_updates,
                "n_bets": p.n_bets,
            }
            if p.prior_log != 0.0:
                entry["prior_e"] = _e(p.prior_log)
            if p.not_applicable:
                entry["not_applicable"] = p.not_applicable
            if trajectory:
                entry["trajectory"] = self.trajectory(k)
            hyps[k] = entry
        return {"alpha": self.alpha, "threshold": 1.0 / self.alpha, "n_trials": self.n_trials,
                "last_trial": self.last_trial, "multiplicity": MULTIPLICITY, "families": self.families,
                "hypotheses": hyps}


def repairing_factors(group: np.ndarray) -> np.ndarray | None:
    """The dependence process' test factors for one group of main trials ``(a_i, b_i)``, one per
    tilt ``c`` of the grid: ``exp(c T(id)) / mean over permutations s of exp(c T(s))`` with
    ``T(s) = sum_i a_i b_s(i)`` on the group's standardized values. If B's outcomes are
    exchangeable within the group given A's and the past, the observed pairing is uniform among
    the re-pairings and each factor has mean exactly 1. None when a side is constant."""
    a, b = group[:, 0], group[:, 1]
    sa, sb = a.std(), b.std()
    if not (sa > 0 and sb > 0):
        return None
    a, b = (a - a.mean()) / sa, (b - b.mean()) / sb
    m = np.outer(a, b)
    t = m[np.arange(_GROUP), _PERMS].sum(axis=1)  # (720,): T of every re-pairing; _PERMS[0] is the identity
    x = _TILTS[:, None] * t[None, :]
    top = x.max(axis=1, keepdims=True)
    log_mean = top[:, 0] + np.log(np.exp(x - top).mean(axis=1))
    return np.exp(x[:, 0] - log_mean)


def _log_angle(rho: float, x: float, y: float) -> float:
    """Log density (up to a constant) of the angle of (x, y) for a bivariate normal with unit
    variances and correlation ``rho``: ``sqrt(1 - rho^2) / (2 pi (1 - rho sin 2 theta))``. The
    angle does not see a gain common to both sides (the radius would)."""
    r2 = x * x + y * y
    s2 = 2 * x * y / r2 if r2 > 1e-24 else 0.0
    return 0.5 * math.log(1 - rho * rho) - math.log(1 - rho * s2)


def _e(log_e: float) -> float:
    return math.exp(min(log_e, 700.0))


# ---------------------------------------------------------------------- CHSH: the PBR
def _strategies() -> np.ndarray:
    """(16, 4, 4) indicator: deterministic strategy (a0, a1, b0, b1) -> outcome pair ab for settings xy."""
    d = np.zeros((16, 4, 4))
    for lam in range(16):
        bits = [(lam >> i) & 1 for i in range(4)]  # a0, a1, b0, b1 (bit 1: outcome -1)
        for x in (0, 1):
            for y in (0, 1):
                d[lam, 2 * x + y, 2 * bits[x] + bits[2 + y]] = 1.0
    return d


_DET = _strategies()
_DET_FLAT = _DET.reshape(16, 16)


def pbr_table(counts: np.ndarray, rho: np.ndarray, *, w0: np.ndarray | None = None, iterations: int = 60,
              prior: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The prediction-based-ratio test factors ``T[xy, ab]`` from past counts ``counts[xy, ab]``.

    ``p(ab|xy)``: the counts with ``prior`` added (a predicted conditional distribution);
    ``q*``: the local distribution closest to it in KL divergence weighted by ``rho``
    (EM on the weights of the 16 deterministic strategies, started from ``w0``); ``r = p /
    q*``, normalised by its largest expectation over the deterministic strategies, so that
    ``sum_xy rho(xy) sum_ab q(ab|xy) T[xy, ab] <= 1`` for every local ``q``, whether or not
    the EM converged. Returns ``(T, w)`` (``w`` to warm-start the next call).
    """
    p = (counts + prior) / (counts.sum(axis=1, keepdims=True) + 4 * prior)
    w = np.full(16, 1 / 16) if w0 is None else np.maximum(np.asarray(w0, float), 1e-12)
    w = w / w.sum()
    target = (rho[:, None] * p).ravel()  # (16,) over (xy, ab)
    for _ in range(iterations):  # EM on the mixture weights of the deterministic strategies
        w = w * (_DET_FLAT @ (target / (w @ _DET_FLAT)))
        w /= w.sum()
    q = (w @ _DET_FLAT).reshape(4, 4)
    r = p / q
    worst = (_DET_FLAT @ (rho[:, None] * r).ravel()).max()
    return r / worst, w
