"""The results' ``anytime`` section: the e-processes of :mod:`corrlab.anytime` run over a dataset.

The trials are fed in time order (trial ids; per run when runs are pooled) exactly as the
runner feeds them during acquisition, so the e-values here are the ones a stopping rule saw.
Pooled runs are independent experiments: the evidence continues across them by multiplying
each run's e-values (the next run's monitor starts from the product so far).

The design-based processes (the controls' label bets) need the schedule's block composition:
they run only when the dataset recorded a protocol whose schedule the data were verified
against (:mod:`corrlab.analysis.design`); elsewhere they are ``not_applicable``. The settings'
drawing probability is the schedule's (1/2 on each side); for a source without a recorded
protocol it is a stated assumption, named in the section.
"""

from __future__ import annotations

import math

import numpy as np

from corrlab.anytime import HYPOTHESES, EvidenceMonitor


def _kind(key: str) -> str:
    return key.split(":", 1)[0]


def _describe(key: str) -> dict:
    h = HYPOTHESES[_kind(key)]
    out = {"null": h["null"], "bet": h["bet"], "assumes": h["assumes"], "design_based": h["design_based"]}
    if key.startswith("controls:"):
        out["null"] = f"{h['null']}: main against {key.split(':', 1)[1]}"
    elif key.startswith("no_signalling:"):
        _, side, cond = key.split(":", 2)
        remote = "B" if side == "A" else "A"
        out["null"] = f"side {side}'s outcome in {cond} does not depend on side {remote}'s setting"
    return out


def anytime_section(data, ctx, *, runs: np.ndarray | None = None, schedule: dict | None = None,
                    record: dict | None = None) -> dict:
    """The ``anytime`` section for per-trial observables ``data`` (the pipeline's ``TrialData``,
    every trial including those with a missing outcome) under ``ctx``'s plan.

    ``runs``: one code per trial when several runs are pooled (their evidence multiplies);
    ``schedule``: ``{"conditions", "block_size"}`` of a verified design (None: the label bets
    are not applicable); ``record``: what the manifest recorded of the run's own monitoring
    (its stopping rule, why it stopped, the prior of runs it continued).
    """
    plan = ctx.plan
    first = (lambda v: v[:, 0] if v.ndim == 2 else v)
    a_all, b_all = first(np.asarray(data.a, float)), first(np.asarray(data.b, float))
    main = data.condition == "main"
    pairs = set(zip(data.setting_a[main].tolist(), data.setting_b[main].tolist()))
    bell = len(pairs) == 4
    prior = dict((record or {}).get("prior") or {}) if runs is None else {}
    run_codes = np.zeros(len(data.trial), dtype=np.int64) if runs is None else np.asarray(runs)
    conditions = (schedule or {}).get("conditions")
    notes = []
    if conditions is None:
        notes.append("no verified schedule: the controls' label bets (design-based) are not applicable")
    if not (ctx.design and all(d.get("outcome") == "holds" for d in ctx.design.values())):
        notes.append("settings' drawing probability 1/2 per side STATED (no recorded schedule verified against the data)")
    if not bell:
        notes.append("main trials do not cover all four setting pairs: no CHSH process")
    monitor = None
    per_run = []
    offset_traj: dict[str, list] = {}
    for code in sorted(set(run_codes.tolist())):
        sel = np.flatnonzero(run_codes == code)
        sel = sel[np.argsort(data.trial[sel], kind="stable")]
        if monitor is not None:  # an independent run: the evidence so far multiplies
            prior = {k: v["e_value"] for k, v in monitor.snapshot()["hypotheses"].items()}
        monitor_next = EvidenceMonitor(
            conditions, (schedule or {}).get("block_size"), alpha=plan.alpha, confirmatory=plan.confirmatory,
            halflife=plan.time_block_trials or None, chsh=bell, fair_sampling=plan.fair_sampling,
            condition_names=sorted(set(data.condition.tolist())), prior=prior)
        blocks = data.block[sel] if conditions is not None else [None] * len(sel)
        for t, c, sa, sb, a, b, blk in zip(data.trial[sel].tolist(), data.condition[sel].tolist(),
                                            data.setting_a[sel].tolist(), data.setting_b[sel].tolist(),
                                            a_all[sel].tolist(), b_all[sel].tolist(),
                                            np.asarray(blocks).tolist() if conditions is not None else blocks):
            monitor_next.update(t, c, sa, sb, a, b, block=blk)
        for k in monitor_next.processes:
            offset_traj.setdefault(k, []).extend(monitor_next.trajectory(k, points=200))
        monitor = monitor_next
        per_run.append({"run": int(code), "n_trials": int(len(sel))})
    snap = monitor.snapshot()
    hyps = {}
    for key, entry in snap["hypotheses"].items():
        traj = offset_traj.get(key, [])
        if len(traj) > 200:
            idx = sorted(set(np.linspace(0, len(traj) - 1, 200).round().astype(int).tolist()))
            traj = [traj[i] for i in idx]
        hyps[key] = {**_describe(key), **entry, "trajectory": traj}
    out = {
        "alpha": plan.alpha,
        "threshold": 1.0 / plan.alpha,
        "verdict_basis": plan.evidence,
        "n_trials": int(len(data.trial)),
        "multiplicity": snap["multiplicity"],
        "families": snap["families"],
        "hypotheses": hyps,
        "validity": ("each e-value E satisfies P(sup over trials E >= 1/alpha) <= alpha under its null (Ville), so "
                     "pvalue_anytime = min(1, 1/sup E) may be watched after every trial and acted on"),
        "notes": notes,
    }
    if runs is not None and len(per_run) > 1:
        out["runs"] = per_run
        out["notes"].append(f"{len(per_run)} independent runs: e-values multiplied across runs in order")
    if record:
        out["monitoring"] = record
        if prior and runs is None:
            out["notes"].append("this run continued the evidence of earlier runs (monitoring.prior): its e-values "
                                "include their product")
    return out


def decisions(section: dict) -> dict[str, dict]:
    """``{family key: {"decided", "pvalue"}}`` for the ladder: a hypothesis in a closed e-Holm family
    by its adjusted crossing, one outside by its own; ``pvalue`` the matching anytime p-value."""
    out = {}
    for key, h in (section or {}).get("hypotheses", {}).items():
        if h.get("not_applicable"):
            continue
        fam = h.get("family")
        p = h["pvalue_adjusted"] if fam else h["pvalue_anytime"]
        out[key] = {"decided": bool(h["decided"]), "pvalue": p, "e_value": h["e_value"]}
    return out


def fmt_e(v) -> str:
    if v is None:
        return "-"
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    return f"{v:.3g}" if 1e-3 <= v < 1e4 else f"{v:.2e}"
