"""Rendering results for people: the terminal summary and the HTML report with plots."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

RUNGS = (("dependence", "1 dependence"), ("protocol_specific", "2 protocol-specific"), ("nonclassical", "3 nonclassical"))


def _f(x, nd=3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and (abs(x) >= 1e4 or (0 < abs(x) < 1e-3)):
        return f"{x:.2e}"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def _ci(ci) -> str:
    return "-" if not ci or ci[0] is None else f"[{_f(ci[0])}, {_f(ci[1])}]"


def ladder_lines(res) -> list[str]:
    v = res.verdict
    out = []
    for key, label in RUNGS:
        held = getattr(v, key)
        out.append(f"  [{'x' if held else ' '}] {label}")
    out.append(f"  signalling detected: {'YES' if v.signalling_detected else 'no'}")
    out.append(f"  level: {v.level}")
    return out


def assumption_rows(res) -> list[tuple[str, dict]]:
    """(rung label, entry) of the results' ``assumptions``, in ladder order."""
    from corrlab.analysis.assumptions import WITNESSES, rung_lists

    labels = {"dependence": "1 dependence", "protocol-specific": "2 protocol-specific",
              **{w: f"3 nonclassical ({label})" for w, label in WITNESSES.items()}}
    return [(labels[rung], e) for rung, entries in rung_lists(getattr(res, "assumptions", None)).items() for e in entries]


def assumption_lines(res) -> list[str]:
    rows = assumption_rows(res)
    if not rows:
        return []
    out = ["assumptions (what each rung assumes, how it was checked, the outcome):"]
    for label, e in rows:
        out.append(f"  [{e['outcome']}] {label}: {e['assumption']} -- {e['check']}"
                   + (f"; {e['detail']}" if e["detail"] else ""))
    return out


def calibration_lines(res) -> list[str]:
    """The vacuum calibration and the Gaussian witnesses with and without its uncertainty (issue 14)."""
    cal = getattr(res, "calibration", None)
    if not cal:
        return []
    w = cal.get("witnesses") or {}
    ln = w.get("log_negativity") or {}
    out = []
    if cal["source"] == "stated":
        vv = cal.get("vacuum_variance") or {}
        out.append(f"vacuum calibration: STATED (a bare number: A {_f(vv.get('a'))}, B {_f(vv.get('b'))}); "
                   "the Gaussian witnesses are CONDITIONAL on an exact calibration")
    else:
        vv, box, rel = cal["vacuum_variance"], cal["interval"], cal["stat_relative"]
        out.append(f"vacuum calibration: MEASURED ({', '.join(cal['fits'])}; {cal['model']})")
        for s in ("a", "b"):
            fits = "; ".join(f"{k} {_f(f[s]['vacuum_variance'])} +- {f[s]['stat_relative']:.2%} "
                             f"(chi2/dof {f[s]['chi2']:.1f}/{f[s]['dof']})" for k, f in cal["fits"].items())
            out.append(f"  {s.upper()}: {_f(vv[s])} (stat +-{rel[s]:.2%}, syst +-{cal['systematic_relative']:.2%}); "
                       f"{cal['level_per_side']:.2%} interval [{_f(box[s][0])}, {_f(box[s][1])}]; {fits}")
        d = cal["drift"]
        if not d["checked"]:
            out.append("  drift: NOT CHECKED (one calibration)")
        else:
            out.append("  drift before -> after: " + ", ".join(
                f"{s.upper()} {x['relative_difference']:+.2%} (z {x['z']:.1f})" for s, x in d["sides"].items())
                + ("  FLAGGED: the set is the union of both intervals" if d["flagged"] else "  (within uncertainty)"))
        if cal.get("nominal_vacuum_variance"):
            nv = cal["nominal_vacuum_variance"]
            out.append(f"  nominal (bench file) value, not used: A {_f(nv['a'])}, B {_f(nv['b'])}")
    if ln:
        c, wc = ln["calibrated"], ln.get("worst_case")
        out.append(f"  E_N at the calibrated value: {_f(c['log_negativity'])} nats {_ci(c['ci'])} "
                   f"({c['confidence_level']:.0%})")
        if wc:
            out.append(f"  E_N worst case over the calibration: {_f(wc['log_negativity'])} nats {_ci(wc['ci'])} "
                       f"({wc['confidence_level']:.0%} joint, Bonferroni split)")
        for name in ("duan", "simon", "nu_pt"):
            x = w.get(name) or {}
            if x:
                out.append(f"  {name}: {_f(x['calibrated'])} calibrated, "
                           f"{_f(x.get('worst_case')) if x.get('worst_case') is not None else '-'} worst case "
                           f"(separable: >= {_f(x['bound'])})")
    if cal.get("statement"):
        out.append(f"  {cal['statement']}")
    return out


def anytime_rows(res) -> list[list]:
    """Each hypothesis with both kinds of evidence side by side (issue 17): ``[name, fixed-n p,
    Holm p, e-value, anytime p, adjusted anytime p, crossed 1/alpha at (adjusted)]``."""
    section = getattr(res, "anytime", None) or {}
    if not section.get("hypotheses"):
        return []
    from corrlab.analysis.ladder import control_key, no_signalling_key

    fixed = {name: (p, q) for name, p, q in getattr(res, "family", [])}
    main = res.conditions.get("main", {})
    fixed.setdefault("dependence", (main.get("pvalue"), main.get("pvalue_holm")))
    for c in res.controls:
        fixed.setdefault(control_key(c), (c.get("pvalue"), c.get("pvalue_holm")))
    for t in res.no_signalling.get("tests", []):
        if t.get("observable", "x") == "x":
            fixed.setdefault(no_signalling_key(t), (t.get("pvalue"), t.get("pvalue_holm")))
    chsh = res.nonclassicality.get("chsh")
    if chsh:
        fixed.setdefault("chsh", (chsh.get("pvalue"), None))
    rows = []
    for key, h in section["hypotheses"].items():
        p, q = fixed.get(key, (None, None))
        if h.get("not_applicable"):
            rows.append([key, p, q, None, None, None, "not applicable: " + h["not_applicable"]])
            continue
        crossed = h.get("crossed_at_adjusted") if h.get("family") else h.get("crossed_at")
        rows.append([key, p, q, h["e_value"], h["pvalue_anytime"], h.get("pvalue_adjusted"),
                     "-" if crossed is None else f"trial {crossed}"])
    return rows


def anytime_lines(res) -> list[str]:
    rows = anytime_rows(res)
    if not rows:
        return []
    from corrlab.analysis.anytime import fmt_e

    section = res.anytime
    basis = "ANYTIME e-values" if section.get("verdict_basis") == "anytime" else "fixed-n tests"
    out = [f"evidence side by side (the verdict rests on the {basis}; decided: e >= 1/alpha = "
           f"{section['threshold']:g}, closed e-Holm within each family):",
           f"  {'hypothesis':34s} {'p':>8s} {'Holm p':>8s} {'e-value':>9s} {'anytime p':>9s} {'adj. p':>8s}  crossed"]
    for key, p, q, e, pa, padj, crossed in rows:
        out.append(f"  {key:34s} {_f(p):>8s} {_f(q):>8s} {fmt_e(e):>9s} {_f(pa):>9s} {_f(padj):>8s}  {crossed}")
    rec = section.get("monitoring") or {}
    if rec.get("stopped"):
        out.append(f"  the run stopped: {rec['stopped']} after trial {rec.get('stopped_after_trial')} "
                   f"({rec.get('trials_committed')} trials committed)")
    out += [f"  note: {n}" for n in section.get("notes", [])]
    return out


def anytime_html(res, plt) -> str:
    """The report's self-contained anytime section: the table side by side and each e-process'
    trajectory against 1/alpha."""
    rows = anytime_rows(res)
    if not rows:
        return ""
    from corrlab.analysis.anytime import fmt_e

    section = res.anytime
    basis = "the anytime e-values" if section.get("verdict_basis") == "anytime" else "the fixed-n tests"
    out = [f"<h2>Anytime evidence (e-values)</h2><p>The verdict rests on {basis}. A hypothesis is decided when its "
           f"e-value reaches 1/alpha = {section['threshold']:g} (closed e-Holm within each family); the anytime "
           f"p-value min(1, 1/sup E) stays valid however often it is looked at.</p>",
           _table(["hypothesis", "p (fixed n)", "Holm p", "e-value", "anytime p", "adjusted anytime p", "crossed"],
                  [[k, _f(p), _f(q), fmt_e(e), _f(pa), _f(padj), c] for k, p, q, e, pa, padj, c in rows])]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for key, h in section["hypotheses"].items():
        traj = h.get("trajectory") or []
        if len(traj) > 1:
            t = [x[0] for x in traj]
            ax.plot(t, [np.log10(max(x[1], 1e-300)) for x in traj], lw=0.9, label=key)
    ax.axhline(np.log10(section["threshold"]), color="k", ls="--", lw=0.8, label="1/alpha")
    ax.set_xlabel("trial")
    ax.set_ylabel("log10 e-value")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title("Anytime e-processes against 1/alpha")
    out.append(_png(fig, f"Each hypothesis' e-value (log10) against the trial, with the decision threshold "
                         f"1/alpha = {section['threshold']:g} as a dashed line"))
    rec = section.get("monitoring") or {}
    if rec.get("stopped"):
        out.append(f"<p>The run stopped: {html.escape(str(rec['stopped']))} after trial "
                   f"{rec.get('stopped_after_trial')}.</p>")
    out += [f"<p>{html.escape(n)}</p>" for n in section.get("notes", [])]
    return "".join(out)


def summary_text(res) -> str:
    lines = [f"corrlab analysis of {res.run_id} (plan {str(res.plan_sha256)[:12]}...)"
             + ("  EXPLORATORY" if res.exploratory else "")]
    lines.append(f"{'condition':22s} {'trials':>6s} {'MI (nats)':>10s} {'CI':>22s} {'p':>9s}")
    for cond, e in res.conditions.items():
        mi = e["mi"]
        lines.append(f"{cond:22s} {e['n_trials']:6d} {_f(mi.get('estimate')):>10s} {_ci(mi.get('ci')):>22s} "
                     f"{_f(e.get('pvalue')):>9s}")
    for c in res.controls:
        d = c["mi_difference"]
        lines.append(f"main - {c['control']}: {_f(d['estimate'])} {_ci(d['ci'])} p={_f(c['pvalue'])}")
    lines += calibration_lines(res)
    lines += anytime_lines(res)
    lines.append("evidence ladder:")
    lines += ladder_lines(res)
    lines += assumption_lines(res)
    lines += [f"  - {r}" for r in res.verdict.reasons]
    return "\n".join(_wrap80(lines))


def _wrap80(lines: list[str]) -> list[str]:
    """Lines longer than 80 columns wrapped at spaces, continued under their own indent + 4."""
    import textwrap

    out = []
    for line in lines:
        if len(line) <= 80:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip()) + 4)
        out += textwrap.wrap(line, 80, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
    return out


def _Table(*args, **kwargs):
    """A rich table for an 80-column terminal: no vertical rules, cells wrap at spaces and fold a
    word longer than its column (never cut with an ellipsis)."""
    from rich import box
    from rich.table import Table

    kwargs.setdefault("box", box.SIMPLE_HEAD)
    kwargs.setdefault("pad_edge", False)
    kwargs.setdefault("collapse_padding", True)
    table = Table(*args, **kwargs)
    add = table.add_column
    table.add_column = lambda *a, **kw: add(*a, **{"overflow": "fold", **kw})
    return table


def print_summary(res, console) -> None:
    """The terminal view: a table per condition, controls, no-signalling, the ladder with ticks.
    Fits 80 columns: cells wrap (a word longer than its column folds), nothing is cut."""
    Table = _Table
    title = f"{res.run_id}" + ("  [bold red]EXPLORATORY[/]" if res.exploratory else "")
    t = Table(title=f"conditions of {title} (MI: {res.plan['statistic']})")
    for col in ("condition", "trials", "f rate", "MI (nats)", f"{int(100 * res.plan['confidence_level'])}% CI",
                "perm. p", "Holm p"):
        t.add_column(col, justify="left" if col == "condition" else "right",
                     no_wrap=col == "condition")
    for cond, e in res.conditions.items():
        mi = e["mi"]
        t.add_row(cond, str(e["n_trials"]), _f(e.get("f_rate"), 2), _f(mi.get("estimate")), _ci(mi.get("ci")),
                  _f(e.get("pvalue")), _f(e.get("pvalue_holm")))
    console.print(t)
    if res.controls:
        t = Table(title="main against each control (label permutation within blocks)")
        for col in ("control", "MI main - control", "CI", "p", "Holm p"):
            t.add_column(col, justify="right" if col != "control" else "left",
                         no_wrap=col == "control")
        for c in res.controls:
            d = c["mi_difference"]
            t.add_row(c["control"], _f(d["estimate"]), _ci(d["ci"]), _f(c["pvalue"]), _f(c.get("pvalue_holm")))
        console.print(t)
    ns = res.no_signalling
    if ns["tests"]:
        tests = sorted({x["test"] for x in ns["tests"]})
        one = len(tests) == 1  # the usual case: the test named once, in the title
        t = Table(title="no-signalling: local marginal against the remote setting"
                  + (f" ({tests[0]})" if one else ""))
        for col in ("obs.", "condition") + (() if one else ("test",)) + ("diff.", "CI", "p", "Holm p", "TOST p",
                                                                           "equiv."):
            t.add_column(col, no_wrap=col == "condition")
        for x in ns["tests"]:
            t.add_row(f"{x.get('observable', 'x')}_{x['side'].lower()}", x["condition"],
                      *(() if one else (x["test"],)), _f(x["difference"]), _ci(x["ci"]), _f(x["pvalue"]),
                      _f(x.get("pvalue_holm")), _f(x["tost_pvalue"]), "yes" if x["equivalent"] else "no")
        console.print(t)
    for d in ns.get("drift", []):
        console.print(f"drift over trial time, side {d['side']}: p = {_f(d['pvalue'])} ({d['method']})")
    nc = res.nonclassicality
    if nc.get("chsh"):
        c = nc["chsh"]
        console.print(f"CHSH: S = {_f(c['S'])} +- {_f(c['se'])}  CI {_ci(c['ci'])}  p(S<=2) = {_f(c['pvalue'])} "
                      f"(normal approx. {_f(c['pvalue_normal'])}); local bound 2, Tsirelson 2.828")
    if nc.get("gaussian"):
        from rich.markup import escape

        g = nc["gaussian"]
        console.print(f"log negativity: {_f(g['log_negativity'])} nats {_ci(g['ci'])}  ({g['bias_statement']})")
        for line in calibration_lines(res):
            console.print(escape(line))
    if nc.get("macroscopic"):
        from rich.markup import escape

        console.print(f"macroscopic (informational): {escape(nc['macroscopic']['statement'])}")
    for name, why in nc.get("not_applicable", {}).items():
        console.print(f"{name}: not applicable - {why}")
    rows = anytime_rows(res)
    if rows:
        from rich.markup import escape
        from rich.text import Text

        from corrlab.analysis.anytime import fmt_e

        basis = "ANYTIME e-values" if res.anytime.get("verdict_basis") == "anytime" else "fixed-n tests"
        t = Table(title=f"evidence side by side: fixed-n and anytime (verdict on the {basis}; "
                        f"decided at e >= {res.anytime['threshold']:g})")
        for col in ("hypothesis", "p", "Holm p", "e-value", "anytime p", "adj. anytime p", "crossed"):
            t.add_column(col, justify="left" if col in ("hypothesis", "crossed") else "right")
        for k, p, q, e, pa, padj, c in rows:
            t.add_row(Text(k), _f(p), _f(q), fmt_e(e), _f(pa), _f(padj), Text(c))  # Text: no ':A:' emoji
        console.print(t)
        for line in anytime_lines(res)[2 + len(rows):]:
            console.print(escape(line))
    console.print("[bold]evidence ladder[/]")
    v = res.verdict
    for key, label in RUNGS:
        held = getattr(v, key)
        console.print(f"  {'[green]✔[/]' if held else '[dim]✘[/]'} {label}")
    if v.signalling_detected:
        console.print("  [red]⚠ signalling detected: the level is capped at 'dependence'[/]")
    colour = {"none": "white", "dependence": "yellow", "protocol-specific": "cyan", "nonclassical": "green"}[v.level]
    console.print(f"  level: [bold {colour}]{v.level}[/]")
    rows = assumption_rows(res)
    if rows:
        from rich.markup import escape

        shade = {"holds": "green", "fails": "red", "unchecked": "yellow", "stated": "cyan"}
        if console.width >= 120:
            t = Table(title="assumptions of each rung: how corrlab checked them")
            for col in ("rung", "assumption", "check", "outcome", "detail"):
                t.add_column(col)
            for label, e in rows:
                t.add_row(label, escape(e["assumption"]), escape(e["check"]),
                          f"[{shade[e['outcome']]}]{e['outcome']}[/]", escape(e["detail"]))
            console.print(t)
        else:  # a narrow terminal: one paragraph per assumption, wrapped at words
            console.print("[bold]assumptions of each rung: how corrlab checked them[/]")
            for label, e in rows:
                console.print(f"  [{shade[e['outcome']]}]{e['outcome']}[/] [bold]{escape(label)}[/]: "
                              f"{escape(e['assumption'])}. [dim]check:[/] {escape(e['check'])}"
                              + (f". {escape(e['detail'])}" if e["detail"] else ""))
    for r in v.reasons:
        console.print(f"  - {r}")


# ================================================================================ HTML


def _png(fig, alt: str) -> str:
    """The figure as an embedded PNG with its alt text (what the plot shows, for a screen reader
    or a broken image); it scales down to the page's width."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return ("<img src='data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            + f"' alt='{html.escape(alt, quote=True)}'/>")


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>"


LEVEL_MEANING = {
    "none": "no rung of the ladder holds: the data do not show X_A and X_B dependent",
    "dependence": "X_A and X_B are dependent in main; not shown to come from the protocol (a common cause "
                  "would do), not nonclassical",
    "protocol-specific": "the dependence in main exceeds every control's, with no signalling; still "
                         "explainable by a classical common cause",
    "nonclassical": "a witness that no local hidden-variable model can meet is violated",
}


def _verdict_html(res) -> str:
    """The verdict at the top of the report: the level, what it means, the rungs, at a glance."""
    v = res.verdict
    rungs = "".join(f"<li class='{'held' if getattr(v, k) else 'not'}'>{'&#10004;' if getattr(v, k) else '&#10008;'} "
                    f"{html.escape(label)}</li>" for k, label in RUNGS)
    caps = ("<p class='warn'>Signalling detected: the level is capped at dependence.</p>"
            if v.signalling_detected else "")
    explo = " <span class='warn'>EXPLORATORY</span>" if res.exploratory else ""
    return (f"<section class='verdict level-{html.escape(v.level)}' aria-label='verdict'>"
            f"<p class='level'>Verdict: <b>{html.escape(v.level)}</b>{explo}</p>"
            f"<p>{html.escape(LEVEL_MEANING.get(v.level, ''))}.</p><ul class='rungs'>{rungs}</ul>{caps}</section>")


def write_report(res, path) -> None:
    """A self-contained HTML page: plots embedded as PNG, tables, the ladder and its reasons."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = res.details.get("data")
    parts = [f"<h1>corrlab analysis: {html.escape(res.run_id)}</h1>", _verdict_html(res)]
    if res.exploratory:  # why: the plan, trials excluded by hand (the verdict's EXPLORATORY lines)
        parts += [f"<p class='warn'>{html.escape(r)}</p>" for r in res.verdict.reasons if r.startswith("EXPLORATORY")]
    parts.append(f"<p>plan sha256 {html.escape(str(res.plan_sha256))}; alpha {res.alpha}; "
                 f"dataset sha256 {html.escape(res.dataset_sha256)}</p>")
    v = res.verdict
    ladder = "".join(f"<li>{'&#10004;' if getattr(v, k) else '&#10008;'} {label}</li>" for k, label in RUNGS)
    parts.append(f"<h2>Evidence ladder: {html.escape(v.level)}</h2><ul>{ladder}</ul>"
                 + ("<p class='warn'>Signalling detected: level capped at dependence.</p>" if v.signalling_detected else "")
                 + "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in v.reasons) + "</ul>")
    rows = assumption_rows(res)
    if rows:
        parts.append("<h3>Assumptions of each rung</h3>" + _table(
            ["rung", "assumption", "check", "outcome", "detail"],
            [[label, e["assumption"], e["check"], e["outcome"].upper() if e["outcome"] in ("fails", "unchecked")
              else e["outcome"], e["detail"]] for label, e in rows]))
    # scatter of trial observables per condition
    if data is not None:
        conds = data.conditions
        fig, axes = plt.subplots(1, len(conds), figsize=(3.2 * len(conds), 3.2), squeeze=False)
        for ax, cond in zip(axes[0], conds):
            sel = data.select(cond)
            a = data.a[sel] if data.a.ndim == 1 else data.a[sel, 0]
            b = data.b[sel] if data.b.ndim == 1 else data.b[sel, 0]
            ax.scatter(a, b, s=8, alpha=0.6)
            ax.set_title(f"{cond} ({int(sel.sum())} trials)", fontsize=9)
            ax.set_xlabel("X_A, trial observable (recorded units)", fontsize=8)
            ax.set_ylabel("X_B, trial observable (recorded units)", fontsize=8)
        fig.tight_layout()
        parts.append("<h2>X_A against X_B per condition</h2>" + _png(
            fig, f"Scatter plots, one per condition ({', '.join(conds)}), of each trial's observable of side A "
                 f"(horizontal) against side B (vertical), in the dataset's recorded units."))
    # MI with intervals
    conds = list(res.conditions)
    est = [res.conditions[c]["mi"].get("estimate") for c in conds]
    if all(e is not None for e in est):
        lo = [res.conditions[c]["mi"]["ci"][0] for c in conds]
        hi = [res.conditions[c]["mi"]["ci"][1] for c in conds]
        fig, ax = plt.subplots(figsize=(6, 3))
        x = np.arange(len(conds))
        # an interval need not contain its estimate (BCa near the MI >= 0 boundary): draw it as it is;
        # an unbounded end runs to the plot's edge with an arrowhead: a degenerate resample's infinite MI
        # makes the BCa quantile inf, or the float range's midpoint (~9e307) when it is interpolated
        def bounded(v):
            return v is not None and bool(np.isfinite(v)) and abs(v) < 1e300

        lo = [v if bounded(v) else -np.inf for v in lo]
        hi = [v if bounded(v) else np.inf for v in hi]
        finite = [v for v in (*est, *lo, *hi) if bounded(v)]
        top = max(finite + [0.0]) * 1.15 + 1e-3
        bottom = min(finite + [0.0]) - 0.15 * (top - min(finite + [0.0]))
        lo_d = [v if np.isfinite(v) else bottom for v in lo]
        hi_d = [v if np.isfinite(v) else top for v in hi]
        ax.vlines(x, lo_d, hi_d, color="tab:blue")
        for xi, a, b in zip(x, lo, hi):
            if not np.isfinite(b):
                ax.plot([xi], [top], "^", color="tab:blue")
            if not np.isfinite(a):
                ax.plot([xi], [bottom], "v", color="tab:blue")
        ax.plot(x, est, "o", color="tab:blue")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(x, conds, rotation=20, fontsize=8)
        ax.set_ylabel(f"MI (nats), {res.plan['statistic']}")
        ax.set_xlabel("condition")
        ax.set_title(f"mutual information with {int(100 * res.plan['confidence_level'])}% intervals", fontsize=9)
        parts.append("<h2>Mutual information by condition</h2>" + _png(
            fig, "Mutual information in nats per condition with its interval: "
                 + "; ".join(f"{c} {_f(e)} {_ci([lo_, hi_])}" for c, e, lo_, hi_ in zip(conds, est, lo, hi)) + "."))
    parts.append("<h2>Conditions</h2>" + _table(
        ["condition", "trials", "MI", "CI", "p", "Holm p"],
        [[c, e["n_trials"], _f(e["mi"].get("estimate")), _ci(e["mi"].get("ci")), _f(e.get("pvalue")),
          _f(e.get("pvalue_holm"))] for c, e in res.conditions.items()]))
    if res.controls:
        parts.append("<h2>Controls</h2>" + _table(
            ["control", "MI difference", "CI", "p", "Holm p"],
            [[c["control"], _f(c["mi_difference"]["estimate"]), _ci(c["mi_difference"]["ci"]), _f(c["pvalue"]),
              _f(c.get("pvalue_holm"))] for c in res.controls]))
    nulls = res.details.get("nulls", {})
    if nulls:
        fig, axes = plt.subplots(1, len(nulls), figsize=(3.2 * len(nulls), 2.8), squeeze=False)
        for ax, (name, (obs, null)) in zip(axes[0], nulls.items()):
            null = np.asarray(null, dtype=float)
            ax.hist(null[np.isfinite(null)], bins=50, color="lightgrey")  # an infinite statistic has no bin
            if np.isfinite(obs):
                ax.axvline(obs, color="red")
            ax.set_title(name, fontsize=8)
            ax.set_xlabel("statistic under the null", fontsize=8)
            ax.set_ylabel("resamples (count)", fontsize=8)
        fig.tight_layout()
        parts.append("<h2>Null distributions (grey) and observed values (red)</h2>" + _png(
            fig, "Histograms of each test's statistic over its resamples under the null hypothesis, with the "
                 "observed value as a red line: " + ", ".join(nulls) + "."))
    coh = res.details.get("coherence", {})
    if coh:
        fig, ax = plt.subplots(figsize=(6, 3))
        for cond, c in coh.items():
            ax.semilogx(c.frequencies[1:], c.coherence[1:], label=cond, lw=0.8)
        some = next(iter(coh.values()))
        ax.axhline(some.threshold, color="k", ls="--", lw=0.8, label=f"significance ({some.alpha}, overlap-corrected)")
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("magnitude-squared coherence")
        ax.legend(fontsize=7)
        ax.set_title("magnitude-squared coherence of X_A and X_B per condition", fontsize=9)
        parts.append("<h2>Coherence X_A-X_B (Welch)</h2>" + _png(
            fig, "Coherence of X_A and X_B against frequency in hertz (log scale), one line per condition, with the "
                 "overlap-corrected significance level as a dashed line."))
    ns = res.no_signalling
    parts.append("<h2>No-signalling</h2>" + _table(
        ["side", "condition", "test", "difference", "CI", "p", "Holm p", "TOST p", "equivalent"],
        [[t["side"], t["condition"], t["test"], _f(t["difference"]), _ci(t["ci"]), _f(t["pvalue"]),
          _f(t.get("pvalue_holm")), _f(t["tost_pvalue"]), t["equivalent"]] for t in ns["tests"]]))
    nc = res.nonclassicality
    parts.append("<h2>Non-classicality</h2>")
    if nc.get("chsh"):
        c = nc["chsh"]
        fig, ax = plt.subplots(figsize=(5, 1.6))
        ax.errorbar([c["S"]], [0], xerr=[[c["S"] - c["ci"][0]], [c["ci"][1] - c["S"]]], fmt="o", capsize=4)
        for x, lab in ((2, "local bound 2"), (2 * np.sqrt(2), "Tsirelson 2.83")):
            ax.axvline(x, ls="--", color="grey")
            ax.text(x, 0.5, lab, fontsize=7)
        ax.set_yticks([])
        ax.set_xlabel("CHSH S (dimensionless)")
        ax.set_title("CHSH S with its interval", fontsize=9)
        parts.append(f"<p>CHSH S = {_f(c['S'])} ± {_f(c['se'])}, p(S ≤ 2) = {_f(c['pvalue'])}</p>" + _png(
            fig, f"CHSH S = {_f(c['S'])} with interval {_ci(c['ci'])}, against the local bound 2 and the "
                 "Tsirelson bound 2.83 (dashed lines)."))
    cal = getattr(res, "calibration", None)
    if cal:
        parts.append(_calibration_html(cal, plt))
    if nc.get("gaussian"):
        g = nc["gaussian"]
        cov = np.asarray(g["covariance"])
        parts.append(f"<p>E_N = {_f(g['log_negativity'])} nats {_ci(g['ci'])}; {html.escape(g['bias_statement'])}</p>"
                     + _table(["", "x_A", "p_A", "x_B", "p_B"],
                              [[n] + [f"{v:.4f}" for v in row] for n, row in zip(["x_A", "p_A", "x_B", "p_B"], cov)]))
    if nc.get("macroscopic"):
        parts.append(f"<p>Macroscopic criterion (informational): {html.escape(nc['macroscopic']['statement'])}</p>")
    for name, why in nc.get("not_applicable", {}).items():
        parts.append(f"<p>{html.escape(name)}: not applicable ({html.escape(why)})</p>")
    parts.append(anytime_html(res, plt))
    _write_page(path, f"corrlab {res.run_id}", parts)


def _calibration_html(cal: dict, plt) -> str:
    """The vacuum calibration: the thermal fit with its data points, and the witnesses with and
    without the calibration's uncertainty (issue 14)."""
    out = ["<h2>Vacuum calibration</h2>"]
    if cal["source"] == "stated":
        out.append(f"<p class='warn'>{html.escape(cal['statement'])}</p>")
    else:
        from corrlab.calibration import occupation

        f = cal["oscillator_frequency_hz"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), squeeze=False)
        for ax, side in zip(axes[0], ("a", "b")):
            for k, (which, pts) in enumerate(cal["points"].items()):
                t = np.asarray(pts["temperatures_k"])
                ax.errorbar(t, pts[side]["mean"], yerr=pts[side]["se"], fmt="os"[k % 2], capsize=3, color=f"C{k}",
                            label=f"{which} (mean of {len(pts[side]['readings'][0])} readings +- s.e.)")
                for ti, r in zip(t, pts[side]["readings"]):
                    ax.plot([ti] * len(r), r, ".", color="grey", alpha=0.5, ms=3)
                tt = np.linspace(0.8 * t.min(), 1.1 * t.max(), 100)
                v = cal["fits"][which][side]["vacuum_variance"]
                ax.plot(tt, v * (2 * occupation(tt, f) + 1), "-", lw=1, color=f"C{k}",
                        label=f"{which} fit: v_vac = {v:.4g}")
            ax.set_title(f"side {side.upper()}: variance = v_vac (2 n_th(T) + 1)", fontsize=9)
            ax.set_xlabel("cryostat temperature T (K)")
            ax.set_ylabel("quadrature variance (column units)")
            ax.legend(fontsize=7)
        out.append(_png(fig, "The vacuum calibration of each side: quadrature variance against cryostat temperature "
                              "in kelvin, the readings, their means with standard errors, and the thermal fit."))
        rows = []
        for s in ("a", "b"):
            lo, hi = cal["interval"][s]
            rows.append([s.upper(), f"{cal['vacuum_variance'][s]:.5g}", f"{cal['stat_relative'][s]:.2%}",
                         f"{cal['systematic_relative']:.2%}", f"[{lo:.5g}, {hi:.5g}] ({cal['level_per_side']:.2%})",
                         ", ".join(f"{w} {fs[s]['vacuum_variance']:.5g}" for w, fs in cal["fits"].items()),
                         (f"{cal['drift']['sides'][s]['relative_difference']:+.2%} (z {cal['drift']['sides'][s]['z']:.1f})"
                          if cal["drift"]["checked"] else "not checked")])
        out.append(_table(["side", "vacuum variance", "stat", "syst (declared)", "interval", "fits", "drift"], rows))
        if cal["drift"]["flagged"]:
            out.append("<p class='warn'>Drift between the calibrations beyond their uncertainty: each side's "
                       "interval is the union of both calibrations' intervals.</p>")
    w = cal.get("witnesses") or {}
    if w:
        ln = w["log_negativity"]
        c, wc = ln["calibrated"], ln.get("worst_case")
        rows = [["log negativity E_N (nats)", f"{_f(c['log_negativity'])} {_ci(c['ci'])}",
                 f"{_f(wc['log_negativity'])} {_ci(wc['ci'])}" if wc else "-", "0 (E_N > 0: entangled)"]]
        for name, label in (("duan", "Duan sum"), ("simon", "Simon invariant"), ("nu_pt", "nu_pt")):
            x = w.get(name) or {}
            if x:
                rows.append([label, _f(x["calibrated"]), _f(x.get("worst_case")) if x.get("worst_case") is not None
                             else "-", f"{_f(x['bound'])} (below: entangled)"])
        out.append("<h3>Gaussian witnesses with and without the calibration's uncertainty</h3>" + _table(
            ["witness", "at the calibrated value", "worst case over the calibration", "classical boundary"], rows))
        if wc:
            fig, ax = plt.subplots(figsize=(6, 1.8))
            ax.errorbar([c["log_negativity"]], [1], xerr=[[c["log_negativity"] - c["ci"][0]],
                        [c["ci"][1] - c["log_negativity"]]], fmt="o", capsize=4)
            ax.errorbar([wc["log_negativity"]], [0], xerr=[[wc["log_negativity"] - wc["ci"][0]],
                        [wc["ci"][1] - wc["log_negativity"]]], fmt="s", capsize=4, color="C3")
            ax.axvline(0, ls="--", color="grey")
            ax.set_yticks([0, 1], ["worst case over\nthe calibration", "calibrated value"])
            ax.set_xlabel("E_N (nats)")
            ax.set_title("log negativity: calibrated and worst case over the calibration", fontsize=9)
            out.append(_png(fig, f"Log negativity in nats at the calibrated value, {_f(c['log_negativity'])} "
                                 f"{_ci(c['ci'])}, and in the worst case over the calibration, "
                                 f"{_f(wc['log_negativity'])} {_ci(wc['ci'])}; entangled above 0 (dashed)."))
    if cal.get("statement"):
        out.append(f"<p>{html.escape(cal['statement'])}</p>")
    return "".join(out)


def _write_page(path, title: str, parts: list[str]) -> None:
    style = ("<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 12px;overflow-wrap:anywhere}"
             "h1{font-size:1.5em}img{max-width:100%;height:auto}.scroll{overflow-x:auto;max-width:100%}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}"
             ".warn{color:#b00;font-weight:bold}"
             ".verdict{border:2px solid #888;border-radius:8px;padding:8px 14px;margin:8px 0 16px;background:#f6f7f8}"
             ".verdict .level{font-size:1.6em;margin:0 0 4px}.verdict p{margin:4px 0}"
             ".verdict ul{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:4px 18px}"
             ".verdict li.held{color:#1a7f37;font-weight:bold}.verdict li.not{color:#666}"
             ".level-none{border-color:#888}.level-dependence{border-color:#b26a00;background:#fff8eb}"
             ".level-protocol-specific{border-color:#0b62a4;background:#eef5ff}"
             ".level-nonclassical{border-color:#1a7f37;background:#ecf9ef}</style>")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                 f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
                 f"{style}</head><body>{''.join(parts)}</body></html>")


# ------------------------------------------------------------------------ many datasets

MANY_HEADERS = ("run", "trials", "MI main", "CI", "p dependence", "max p controls", "signalling", "level")
SUMMARY_COLUMNS = ("run_id", "n_trials", "mi_main", "mi_ci_low", "mi_ci_high", "p_dependence",
                   "p_controls_max", "signalling", "level")


def summary_row(res: dict) -> dict:
    """One line of the cross-dataset table from a results dict (v1 contract)."""
    main = res["conditions"]["main"]
    ctrl = [c["pvalue"] for c in res["controls"] if c.get("pvalue") is not None]
    ci = main["mi"].get("ci") or [None, None]
    return {"run_id": res["dataset"]["run_id"], "n_trials": main["n_trials"], "mi_main": main["mi"]["estimate"],
            "mi_ci_low": ci[0], "mi_ci_high": ci[1], "p_dependence": main.get("pvalue"),
            "p_controls_max": max(ctrl) if ctrl else None,
            "signalling": res["no_signalling"]["signalling_detected"], "level": res["verdict"]["level"]}


def _many_rows(many) -> list[list[str]]:
    rows = list(many.datasets)
    if many.pooled is not None:
        rows.append(summary_row(many.pooled.to_dict()))
    return [[r["run_id"], r["n_trials"], _f(r["mi_main"]), _ci([r["mi_ci_low"], r["mi_ci_high"]]),
             _f(r["p_dependence"]), _f(r["p_controls_max"]), "YES" if r["signalling"] else "no", r["level"]]
            for r in rows]


def _combined_lines(many) -> list[str]:
    out = list(many.notes)
    if many.pooled is not None:
        out.append(f"pooled level: {many.pooled.verdict.level}")
        out += [f"  - {r}" for r in many.pooled.verdict.reasons]
    if many.combined:
        out.append(many.combined["method"])
        out += [f"  {t['test']}: combined p = {_f(t['pvalue'])} over {t['n_runs']} runs" for t in many.combined["tests"]]
    return out


def many_summary_text(many) -> str:
    widths = (28, 6, 8, 20, 12, 14, 10, 18)

    def line(cells) -> str:
        return " ".join(f"{str(c):>{w}s}" if i else f"{str(c):{w}s}" for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(MANY_HEADERS)] + [line(r) for r in _many_rows(many)] + _combined_lines(many))


def print_many(many, console) -> None:
    """The terminal view of several datasets: one row each (and the pooled one), then the combination."""
    Table = _Table
    t = Table(title=f"{len(many.datasets)} datasets ({many.mode})")
    for h in MANY_HEADERS:
        t.add_column(h, justify="left" if h == "run" else "right")
    for r in _many_rows(many):
        t.add_row(*map(str, r))
    console.print(t)
    for line in _combined_lines(many):
        console.print(line)


def write_many_report(many, path) -> None:
    """HTML: the table across datasets, main's MI with intervals run by run, the pooling or combination."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [f"<h1>corrlab analysis of {len(many.datasets)} datasets ({html.escape(many.mode)})</h1>",
             _table(MANY_HEADERS, _many_rows(many))]
    rows = [r for r in many.datasets if r["mi_main"] is not None]
    if rows:
        fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(rows) + 2), 3))
        x = np.arange(len(rows))
        ax.vlines(x, [r["mi_ci_low"] for r in rows], [r["mi_ci_high"] for r in rows], color="tab:blue")
        ax.plot(x, [r["mi_main"] for r in rows], "o", color="tab:blue")
        if many.pooled is not None:
            mi = many.pooled.conditions["main"]["mi"]
            ax.axhspan(mi["ci"][0], mi["ci"][1], color="tab:orange", alpha=0.25, label="pooled CI")
            ax.legend(fontsize=7)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(x, [r["run_id"] for r in rows], rotation=60, fontsize=7, ha="right")
        ax.set_ylabel("MI in main (nats)")
        ax.set_xlabel("run")
        ax.set_title("mutual information in main with its interval, run by run", fontsize=9)
        parts.append("<h2>Mutual information in main, run by run</h2>" + _png(
            fig, f"Mutual information in nats of the main condition with its interval for each of {len(rows)} runs"
                 + (", with the pooled interval as a band." if many.pooled is not None else ".")))
    parts.append("<h2>Across runs</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in _combined_lines(many))
                 + "</ul>")
    _write_page(path, "corrlab: many datasets", parts)
