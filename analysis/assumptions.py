"""Each rung's assumptions: what it assumes, how corrlab checked it, and the outcome (issue 22).

The results' ``assumptions`` section (an additive extension of results v1) is plain data::

    {"dependence": [entry, ...],
     "protocol-specific": [entry, ...],
     "nonclassical": {"chsh": [entry, ...], "log_negativity": [entry, ...]}}

    entry = {"assumption": str, "check": str, "outcome": "holds" | "fails" | "unchecked" | "stated",
             "detail": str, "pvalue": float or None}

``check`` says how corrlab checked it (the test and its p-value), ``stated`` means the plan or an
import option declares it (the data cannot show it). A witness's list is there only when the
witness was computed. :func:`corrlab.analysis.ladder.grade` grants a rung only when none of its
assumptions ``fails`` or is ``unchecked``; a ``stated`` one conditions the rung, and the reasons
say which. The checks' level is the plan's alpha; where one assumption rests on two tests the
p-value is their Bonferroni (Holm's first step), so a clean experiment loses a rung to a
false alarm of one check at most at rate alpha.
"""

from __future__ import annotations

from collections.abc import Sequence

OUTCOMES = ("holds", "fails", "unchecked", "stated")
RUNGS = ("dependence", "protocol-specific", "nonclassical")
WITNESSES = {"chsh": "CHSH", "log_negativity": "log negativity"}


def _p(p) -> str:
    return "n/a" if p is None else (f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}")


def entry(assumption: str, check: str, outcome: str, detail: str = "", pvalue: float | None = None) -> dict:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}; got {outcome!r}")
    return {"assumption": assumption, "check": check, "outcome": outcome, "detail": detail,
            "pvalue": None if pvalue is None else float(pvalue)}


def rung_lists(assumptions: dict | None) -> dict[str, list]:
    """The section flattened: ``{"dependence": [...], "protocol-specific": [...], "chsh": [...],
    "log_negativity": [...]}`` (missing keys are empty lists)."""
    a = assumptions or {}
    nc = a.get("nonclassical") or {}
    return {"dependence": list(a.get("dependence") or []), "protocol-specific": list(a.get("protocol-specific") or []),
            **{w: list(nc.get(w) or []) for w in WITNESSES}}


def blocking(entries: Sequence[dict]) -> list[dict]:
    """The entries that keep a rung from being granted: ``fails``, or ``unchecked`` (not stated)."""
    return [e for e in entries if e["outcome"] in ("fails", "unchecked")]


def _observable(test: dict) -> str:
    """``x_a``, ``y_b``, ...: the observable a no-signalling test is about (``observable`` x or y, ``side``)."""
    return f"{test.get('observable', 'x')}_{test['side'].lower()}"


def no_signalling_entry(ns_tests: Sequence[dict], adjusted: dict | None, *, alpha: float, observables: Sequence[str],
                        key) -> dict:
    """'No signalling in each of these observables': holds when every one was tested and none
    signals. ``adjusted``: the p-values the verdict's signalling flag uses
    (:func:`corrlab.analysis.ladder.signalling_pvalues`), so the entry and the flag agree."""
    name = f"no signalling in every observable used ({', '.join(observables)})"
    adjusted = adjusted or {}
    tested, signals = set(), []
    for t in ns_tests:
        obs = _observable(t)
        if obs not in observables:
            continue
        tested.add(obs)
        q = adjusted.get(key(t), t["pvalue"])
        if q is not None and q < alpha:
            signals.append((obs, t, q))
    untested = [o for o in observables if o not in tested]
    check = (f"{sum(1 for t in ns_tests if _observable(t) in observables)} test(s) of each local observable against "
             "the remote setting, per condition (Holm within the no-signalling family when confirmatory)")
    if signals:
        obs, t, q = min(signals, key=lambda s: s[2])
        return entry(name, check, "fails", f"{obs} depends on the remote setting in {t['condition']} "
                     f"(p = {_p(t['pvalue'])}, adjusted {_p(q)})", t["pvalue"])
    if untested:
        return entry(name, check, "unchecked", f"not tested: {', '.join(untested)} (a remote setting seen in too "
                     "few trials)")
    worst = min((t["pvalue"] for t in ns_tests if _observable(t) in observables), default=None)
    return entry(name, check, "holds", f"smallest p = {_p(worst)}", worst)


def design_entry(design: dict | None) -> dict | None:
    """'The design is the recorded seed's': fails if any run's data differ from its recomputed
    schedule (naming the run and the first trial and column), holds if every checked run agrees;
    None when no run could be checked (imports: the data-driven tests stand in)."""
    from corrlab.analysis.design import ASSUMPTION, CHECK

    if not design:
        return None
    bad = [(run, d) for run, d in sorted(design.items()) if d["outcome"] == "fails"]
    if bad:
        run, d = bad[0]
        where = f"run {run}: " if len(design) > 1 else ""
        return entry(ASSUMPTION, CHECK, "fails", where + d["detail"])
    n = sum(d["n_checked"] for d in design.values())
    runs = f" in {len(design)} runs" if len(design) > 1 else ""
    return entry(ASSUMPTION, CHECK, "holds", f"all {n} trials{runs} match the recorded schedule")


def build(*, alpha: float, ns_tests: Sequence[dict], adjusted: dict | None, ns_key, drift: Sequence[dict],
          serial: dict | None = None, time_block_trials: int = 0, order=None, has_controls: bool, settings=None, chsh: dict | None = None, gaussian: dict | None = None,
          quadrature_observables: bool = False, fair_sampling: bool = False, missing_outcomes: dict | None = None,
          missing_ids: int = 0, calibration_source: str | None = None, design: dict | None = None,
          vacuum_calibration: dict | None = None) -> dict:
    """The section from the tests the pipeline ran (plain data in, plain data out).

    ``drift``: the results' drift diagnostics (``side``, ``pvalue``; shown, not a gate: the
    dependence null removes slow drift within time-local blocks); ``serial``: ``{"A", "B"}`` ->
    :func:`corrlab.analysis.nosignalling.serial_test` of main's values in time order within the
    dependence test's blocks of ``time_block_trials`` trials (0: the whole run); ``order``: the
    :class:`~corrlab.analysis.nosignalling.SequenceResult` of the condition labels in time
    (None: not tested); ``settings``: the :class:`~corrlab.analysis.bell.SettingsResult` of
    main's settings; ``design``: ``{run_id: DesignCheck.to_json()}`` of the runs whose recorded
    seed and schedule were recomputed (:mod:`corrlab.analysis.design`; imports have none); ``missing_outcomes``: ``{"a": n, "b": n, "trials": n}`` of main's trials
    with a missing outcome; ``missing_ids``: trial ids absent between the first and last;
    ``vacuum_calibration``: the results' ``calibration`` section (:mod:`corrlab.analysis.vacuum`).
    """
    x_obs = ["x_a", "x_b"]
    used = x_obs + (["y_a", "y_b"] if quadrature_observables else [])

    # -- dependence: exchangeable trials ---------------------------------------------------------
    dep = []
    by_side = {d["side"]: d["pvalue"] for d in drift}
    where = (f"within time-local blocks of {time_block_trials} consecutive trials, each side's values turned into "
             "normal scores within its block (a slow drift drops out)" if time_block_trials else "over the whole run")
    name = "exchangeable trials: no serial dependence on both sides (re-pairing is exact " + where + ")"
    drift_note = (f"; drift over the run (informational): A p = {_p(by_side.get('A'))}, B p = {_p(by_side.get('B'))}"
                  if by_side else "")
    serial = serial or {}
    if {"A", "B"} <= set(serial):
        pa, pb = serial["A"].pvalue, serial["B"].pvalue
        both = max(pa, pb) < alpha and min(pa, pb) < alpha / 2  # Holm over the two: both reject
        check = (f"portmanteau of each side's within-block autocorrelations at lags 1..{serial['A'].lags} (within-block "
                 f"permutation): A p = {_p(pa)} (r_1 = {serial['A'].autocorrelation[0]:.3f}), B p = {_p(pb)} "
                 f"(r_1 = {serial['B'].autocorrelation[0]:.3f})")
        dep.append(entry(
            name, check, "fails" if both else "holds",
            ("both sides are serially dependent: two independent autocorrelated series look dependent when trials "
             "are re-paired (the spurious-regression trap)" if both else
             "at most one side is serially dependent: re-pairing against the other is exact") + drift_note,
            max(pa, pb)))
    else:
        dep.append(entry(name, "serial dependence of each side", "unchecked",
                         "too few trials to test for serial dependence (8 needed)" + drift_note))

    # -- protocol-specific: condition order, no signalling ---------------------------------------
    ps = []
    seed_entry = design_entry(design)
    if has_controls:
        if seed_entry is not None:
            ps.append(seed_entry)
        if order is None:
            ps.append(entry("condition order randomized in time (controls interleaved with main)",
                            "condition labels against time blocks", "unchecked", "too few trials to test"))
        else:
            ps.append(entry(
                "condition order randomized in time (controls interleaved with main)",
                f"condition label x {order.n_blocks} time blocks, chi-square, exact permutation p = {_p(order.pvalue)}",
                "fails" if order.pvalue < alpha else "holds",
                ("the conditions cluster in time: drift can masquerade as a difference between them"
                 if order.pvalue < alpha else "no clustering of conditions in time"), order.pvalue))
        ps.append(no_signalling_entry(ns_tests, adjusted, alpha=alpha, observables=x_obs if not quadrature_observables
                                      else used, key=ns_key))

    # -- the witnesses --------------------------------------------------------------------------
    nc: dict[str, list] = {}
    if chsh is not None:
        lst = [] if seed_entry is None else [seed_entry]
        if settings is None:
            lst.append(entry("settings drawn at random each trial, independent of the past",
                             "balance and time tests of main's settings", "unchecked", "too few trials to test"))
        else:
            ok = settings.pvalue >= alpha
            lst.append(entry(
                "settings drawn at random each trial, independent of the past",
                f"setting-pair balance chi-square p = {_p(settings.balance_pvalue)}; pair x {settings.n_blocks} time "
                f"blocks and pair x previous pair, exact permutation p = {_p(settings.independence_pvalue)} (blocks "
                f"{_p(settings.block_pvalue)}, serial {_p(settings.serial_pvalue)}); Bonferroni p = {_p(settings.pvalue)}",
                "holds" if ok else "fails",
                ("settings look freshly drawn per trial" if ok else
                 "the settings depend on time or on the trial before (or are unbalanced): the CHSH bound does not "
                 "hold for a local model with memory"), settings.pvalue))
        mo = missing_outcomes or {"a": 0, "b": 0, "trials": 0}
        name = "every trial's outcome counted (no post-selection; fair sampling not assumed)"
        if fair_sampling and (mo["trials"] or missing_ids):
            lst.append(entry(name, "missing outcomes and trial ids counted", "stated",
                             f"plan fair_sampling = true: {mo['trials']} main trial(s) with a missing outcome dropped"
                             + (f", {missing_ids} trial id(s) missing from the dataset" if missing_ids else "")
                             + "; the bound then assumes detection does not depend on the hidden variables"))
        elif missing_ids:
            lst.append(entry(name, "trial ids between the first and last", "unchecked",
                             f"{missing_ids} trial id(s) missing from the dataset: their settings and outcomes are "
                             "unknown (only the detected trials exported?); state fair_sampling = true in the plan "
                             "to assume they are missing at random"))
        elif mo["trials"]:
            lst.append(entry(name, "missing outcomes counted", "holds",
                             f"{mo['trials']} main trial(s) with a missing outcome (A {mo['a']}, B {mo['b']}), "
                             "each counted with the outcome +1: a fixed local assignment keeps S <= 2 for every "
                             "local model"))
        else:
            lst.append(entry(name, "missing outcomes and trial ids counted", "holds",
                             f"all {chsh.get('n_trials')} main trials have both outcomes; no trial id missing"))
        lst.append(no_signalling_entry(ns_tests, adjusted, alpha=alpha, observables=x_obs, key=ns_key))
        nc["chsh"] = lst
    if gaussian is not None:
        # the calibration's entry (issue 14)
        from corrlab.analysis.vacuum import assumption_entry

        nc["log_negativity"] = [
            entry(*assumption_entry(vacuum_calibration, calibration_source)),
            no_signalling_entry(ns_tests, adjusted, alpha=alpha, observables=["x_a", "y_a", "x_b", "y_b"], key=ns_key),
        ]
    return {"dependence": dep, "protocol-specific": ps, "nonclassical": nc}
