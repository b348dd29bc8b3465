"""The evidence ladder of DESIGN.md: the confirmatory family, Holm, the verdict and its reasons.

:func:`grade` takes plain data (the results' sections as the pipeline writes them, and the
plan fields that matter) and returns the family with its adjusted p-values, the verdict and
the reasons, so the ladder can be tested alone with hand-made p-values.

The confirmatory tests (the plan's ``confirmatory``) are corrected with Holm in two
families: the evidence (dependence, each control, the witnesses) and the no-signalling
checks. The rungs:

1. dependence: main's trial-level permutation test rejects independence;
2. protocol-specific: dependence, main's MI exceeds every control's, and no signalling is
   detected;
3. nonclassical: a witness (CHSH with randomized settings, or positive log negativity of
   vacuum-calibrated quadratures) is violated and no signalling is detected.

With a measured vacuum calibration (issue 14) the log negativity counts only when, besides its
Holm-adjusted p at the calibrated value, the lower bound of its worst case over the calibration's
confidence set (joint coverage 1 - alpha, :mod:`corrlab.analysis.vacuum`) excludes E_N = 0.

``level`` is the highest rung whose own test holds; detected signalling caps it at
``dependence``. Evidence counts only as the plan's confirmatory family declared it; a
no-signalling test counts whether or not the plan made it confirmatory (it can only lower
the level). Given the results' ``assumptions`` (:mod:`corrlab.analysis.assumptions`), a rung
or witness whose test holds is granted only when none of its assumptions fails or is
unchecked; the reasons name every failing, unchecked or stated assumption.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

from corrlab.results import Result

LEVELS = ("none", "dependence", "protocol-specific", "nonclassical")


@dataclass(frozen=True)
class Verdict(Result):
    level: str
    dependence: bool
    protocol_specific: bool
    signalling_detected: bool
    nonclassical: bool
    reasons: list[str]


@dataclass(frozen=True)
class Grading(Result):
    """What :func:`grade` found: the family ``(name, pvalue, adjusted)``, the adjusted
    p-values by name (Holm, or the raw ones when the plan's multiplicity is not Holm), and
    the verdict."""

    family: list
    adjusted: dict
    verdict: Verdict


def control_key(control: dict) -> str:
    """The family name of a control's test (``controls:<condition>``)."""
    return f"controls:{control['control']}"


def no_signalling_key(test: dict) -> str:
    """The family name of a no-signalling test: ``no_signalling:<side>:<condition>`` for the x
    observable, ``no_signalling:<side>:<condition>:y`` for the y quadrature."""
    obs = test.get("observable", "x")
    return f"no_signalling:{test['side']}:{test['condition']}" + ("" if obs == "x" else f":{obs}")


def signalling_pvalues(no_signalling: Sequence[dict], *, alpha: float, confirmatory: Sequence[str],
                       multiplicity: str = "holm") -> dict:
    """The p-value of each no-signalling test that the signalling flag compares with alpha:
    Holm-adjusted within the no-signalling family when it is confirmatory (and the plan's
    multiplicity is Holm), raw otherwise -- the rule of :func:`grade`."""
    raw = {no_signalling_key(t): float(t["pvalue"]) for t in no_signalling}
    if "no_signalling" not in confirmatory or multiplicity != "holm" or not raw:
        return raw
    from corrlab.analysis.nosignalling import holm

    return dict(zip(raw, (float(q) for q in holm(list(raw.values()), alpha=alpha).pvalues)))


def grade(main: dict, controls: Sequence[dict], no_signalling: Sequence[dict], nonclassicality: dict, *,
          alpha: float, confirmatory: Sequence[str], multiplicity: str = "holm", no_signalling_margin: float,
          exploratory: bool = False, preregistered: bool = True, notes: Sequence[str] = (),
          assumptions: dict | None = None, anytime: dict | None = None) -> Grading:
    """The family, its Holm adjustment, the level and the reasons.

    Parameters
    ----------
    main : the results' ``conditions["main"]``: ``pvalue`` (None: too few trials),
        ``n_trials``, ``mi`` with ``estimate``.
    controls : the results' ``controls``: ``control``, ``pvalue``, ``mi_difference``
        (``estimate``, ``ci``, ``method``).
    no_signalling : the results' ``no_signalling["tests"]``: ``side``, ``condition``,
        ``pvalue``, ``difference``, ``equivalent``.
    nonclassicality : the results' ``nonclassicality``: ``chsh`` (``S``, ``se``, ``pvalue``)
        or None, ``gaussian`` (``log_negativity``, ``ci``, ``pvalue``) or None, and
        ``not_applicable`` (name -> why).
    alpha, confirmatory, multiplicity, no_signalling_margin : the plan's.
    exploratory, preregistered : how the plan was chosen (named in the reasons).
    notes : lines about the data analysed (trials excluded by hand, ids missing), placed in
        the reasons after the plan's.
    assumptions : the results' ``assumptions`` (:mod:`corrlab.analysis.assumptions`): a rung
        (and a witness) is granted only when none of its assumptions ``fails`` or is
        ``unchecked``; a ``stated`` one conditions it. The reasons name each. None: no
        assumption is checked (the rungs' tests alone, as before).
    """
    from corrlab.analysis.assumptions import WITNESSES, blocking, rung_lists

    lists = rung_lists(assumptions)
    blocked = {k: blocking(v) for k, v in lists.items()}
    chsh, gaussian = nonclassicality.get("chsh"), nonclassicality.get("gaussian")
    dependence_p = main.get("pvalue")
    chsh_p = chsh["pvalue"] if chsh is not None else None
    # with a measured calibration the Gaussian evidence must also hold in the worst case over the
    # calibration's confidence set: its lower bound (joint coverage 1 - alpha) excludes E_N = 0 (issue 14)
    gauss_wc = (gaussian or {}).get("worst_case")
    gauss_p = gaussian["pvalue"] if gaussian is not None else None
    family: list[tuple[str, float]] = []
    if "dependence" in confirmatory and dependence_p is not None:
        family.append(("dependence", dependence_p))
    if "controls" in confirmatory:
        family += [(control_key(c), c["pvalue"]) for c in controls]
    if "no_signalling" in confirmatory:
        family += [(no_signalling_key(t), t["pvalue"]) for t in no_signalling]
    if "chsh" in confirmatory and chsh_p is not None:
        family.append(("chsh", chsh_p))
    if "log_negativity" in confirmatory and gauss_p is not None:
        family.append(("log_negativity", gauss_p))
    # Two families, each Holm-corrected as the plan declares: the evidence the ladder climbs on
    # (dependence, controls, witnesses), and the no-signalling checks, whose rejection is a
    # warning, so that a clean experiment is not flagged at eight times alpha by chance.
    adj: dict[str, float] = {}
    for members in ([f for f in family if not f[0].startswith("no_signalling:")],
                    [f for f in family if f[0].startswith("no_signalling:")]):
        if not members:
            continue
        ps = [p for _, p in members]
        if multiplicity == "holm":
            from corrlab.analysis.nosignalling import holm

            qs = holm(ps, alpha=alpha).pvalues
        else:
            qs = ps
        adj.update({name: float(q) for (name, _), q in zip(members, qs)})
    fam = [(name, float(p), adj[name]) for name, p in family]

    def passes(name: str) -> bool:
        """Evidence counts only as the plan's confirmatory family declared it (Holm-adjusted, or
        its e-process decided when the verdict rests on the anytime evidence)."""
        q = adj.get(name)
        if anytime is not None and name in anytime:
            return q is not None and anytime[name]["decided"]
        return q is not None and q < alpha

    def warns(name: str, raw: float | None) -> bool:
        """Signalling counts whether or not the plan made it confirmatory (it can only lower the level)."""
        if anytime is not None and name in anytime:
            return anytime[name]["decided"]
        q = adj.get(name, raw)
        return q is not None and q < alpha

    signalling = any(warns(no_signalling_key(t), t["pvalue"]) for t in no_signalling)
    dependence_test = passes("dependence")
    controls_ok = bool(controls) and all(passes(control_key(c)) for c in controls)
    chsh_test_ok = chsh_p is not None and passes("chsh")
    gauss_test_ok = (gauss_p is not None and passes("log_negativity") and gaussian["ci"][0] > 0
                     and (gauss_wc is None or gauss_wc["ci"][0] > 0))
    # a rung (or witness) whose test holds is granted only when its assumptions hold or are stated
    dependence = dependence_test and not blocked["dependence"]
    protocol_specific = dependence and controls_ok and not signalling and not blocked["protocol-specific"]
    chsh_ok = chsh_test_ok and not blocked["chsh"]
    gauss_ok = gauss_test_ok and not blocked["log_negativity"]
    nonclassical_ok = (chsh_ok or gauss_ok) and not signalling
    reasons = _reasons(main, controls, no_signalling, nonclassicality, adj, alpha=alpha,
                       no_signalling_margin=no_signalling_margin, dependence=dependence_test, chsh_ok=chsh_test_ok,
                       gauss_ok=gauss_test_ok, exploratory=exploratory, preregistered=preregistered, notes=notes)
    if anytime is not None:
        rested = [n for n, _, _ in fam if n in anytime] + [no_signalling_key(t) for t in no_signalling
                                                           if no_signalling_key(t) in anytime and
                                                           no_signalling_key(t) not in adj]
        kept = [n for n, _, _ in fam if n not in anytime]
        reasons.insert(0, "the verdict rests on the ANYTIME evidence (plan evidence = anytime): "
                       + ", ".join(f"{n} e = {_fmt_e(anytime[n]['e_value'])} (anytime p {_fmt_p(anytime[n]['pvalue'])}"
                                   f"{', decided' if anytime[n]['decided'] else ''})" for n in rested)
                       + (f"; fixed-n tests kept for {', '.join(kept)} (no e-process)" if kept else "")
                       + "; the fixed-n p-values below are reported beside it")
        flagged = [k for k, d in anytime.items() if k.startswith("no_signalling:") and d["decided"]]
        if flagged:
            reasons.insert(1, f"SIGNALLING DETECTED by the anytime evidence ({', '.join(flagged)}: e-value reached "
                           f"1/alpha); the verdict is capped at 'dependence'")
    names = {"dependence": "dependence", "protocol-specific": "protocol-specific",
             **{w: f"nonclassical through {label}" for w, label in WITNESSES.items()}}
    holds = {"dependence": dependence_test, "protocol-specific": dependence_test and controls_ok,
             "chsh": chsh_test_ok, "log_negativity": gauss_test_ok}
    for rung, entries in lists.items():
        for e in entries:
            what = f"{e['assumption']} ({e['check']}: {e['detail']})" if e["detail"] else f"{e['assumption']} ({e['check']})"
            if e["outcome"] == "fails":
                r = "not granted" if holds[rung] else "would not be granted"
                reasons.append(f"ASSUMPTION FAILS for {names[rung]}, {r}: {what}")
            elif e["outcome"] == "unchecked":
                r = "not granted" if holds[rung] else "would not be granted"
                reasons.append(f"ASSUMPTION UNCHECKED for {names[rung]}, {r} (not stated by the plan or an import "
                               f"option): {what}")
            elif e["outcome"] == "stated" and holds[rung] and not blocked[rung]:
                reasons.append(f"{names[rung]} rests on a STATED assumption, not checked: {what}")
    if nonclassical_ok:
        level = "nonclassical"
    elif protocol_specific:
        level = "protocol-specific"
    elif dependence:
        level = "dependence"
    else:
        level = "none"
    return Grading(fam, adj, Verdict(level, dependence, protocol_specific, signalling, nonclassical_ok, reasons))


def _fmt_e(e) -> str:
    return "n/a" if e is None else (f"{e:.3g}" if 1e-3 <= e < 1e4 else f"{e:.2e}")


def _fmt_p(p) -> str:
    return "n/a" if p is None else (f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}")


def _reasons(main, controls, ns_tests, nonclassical, adj, *, alpha, no_signalling_margin, dependence, chsh_ok,
             gauss_ok, exploratory, preregistered, notes=()) -> list[str]:
    r = []
    if exploratory:
        r.append("EXPLORATORY: analysed with a plan other than the one recorded at acquisition; "
                 "these p-values do not carry pre-registered weight")
    if not preregistered:
        r.append("no pre-registered plan was recorded with these data (default or supplied plan)")
    r.extend(notes)
    mi = main["mi"]
    est = mi.get("estimate")
    r.append(f"dependence in main: MI {est:.3g} nats, permutation p = {_fmt_p(main['pvalue'])} "
             f"(Holm {_fmt_p(adj.get('dependence'))}) over {main['n_trials']} trials -> "
             f"{'independence rejected' if dependence else 'independence not rejected'} at alpha = {alpha}"
             if est is not None else "dependence in main: too few trials")
    if not controls:
        r.append("no control conditions: protocol-specificity cannot be tested")
    for c in controls:
        q = adj.get(control_key(c))
        ok = q is not None and q < alpha
        d = c["mi_difference"]
        span = (f"{d['estimate']:.3g} nats [{d['ci'][0]:.3g}, {d['ci'][1]:.3g}]" if d["estimate"] is not None
                else d["method"])
        r.append(f"main vs {c['control']}: MI difference {span}, p = {_fmt_p(c['pvalue'])} "
                 f"(Holm {_fmt_p(q)}) -> {'main exceeds it' if ok else 'not shown to exceed it'}")
    sig = [t for t in ns_tests if adj.get(no_signalling_key(t), t["pvalue"]) < alpha]
    if sig:
        worst = min(sig, key=lambda t: t["pvalue"])
        r.append(f"SIGNALLING DETECTED: side {worst['side']}'s marginal depends on the remote setting in "
                 f"{worst['condition']} (p = {_fmt_p(worst['pvalue'])}, difference {worst['difference']:.3g}); "
                 "the verdict is capped at 'dependence' (a leak or drift, not a correlation)")
    elif ns_tests:
        eq = sum(1 for t in ns_tests if t["equivalent"])
        r.append(f"no signalling detected in {len(ns_tests)} test(s); {eq} shown equivalent within the margin "
                 f"{no_signalling_margin} (TOST)")
    if nonclassical.get("chsh") is not None:
        c = nonclassical["chsh"]
        r.append(f"CHSH: S = {c['S']:.3f} +- {c['se']:.3f}, p(S <= 2) = {_fmt_p(c['pvalue'])} (bound valid without "
                 f"i.i.d.) -> {'violated' if chsh_ok else 'not violated: a local model can account for these outcomes'}")
    if nonclassical.get("gaussian") is not None:
        g = nonclassical["gaussian"]
        wc = g.get("worst_case")
        if wc is not None:
            r.append(f"log negativity E_N = {g['log_negativity']:.3f} nats [{g['ci'][0]:.3f}, {g['ci'][1]:.3f}] "
                     f"(bias-corrected) at the calibrated vacuum; worst case over the calibration's confidence set "
                     f"{wc['log_negativity']:.3f} [{wc['ci'][0]:.3f}, {wc['ci'][1]:.3f}] ({wc['confidence_level']:.0%} "
                     f"joint), worst-case p = {_fmt_p(wc['pvalue'])} -> {'entangled' if gauss_ok else 'not shown entangled'}")
        else:
            r.append(f"log negativity E_N = {g['log_negativity']:.3f} nats [{g['ci'][0]:.3f}, {g['ci'][1]:.3f}] "
                     f"(bias-corrected) -> {'entangled' if gauss_ok else 'not shown entangled'}"
                     + (f"; {g['conditional']}" if g.get("conditional") else ""))
    for name, why in nonclassical.get("not_applicable", {}).items():
        r.append(f"{name}: not applicable ({why})")
    if dependence and not (chsh_ok or gauss_ok):
        r.append("dependence alone is never entanglement: a classical common cause produces it too")
    return r
