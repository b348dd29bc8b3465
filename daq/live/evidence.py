"""The live view's anytime evidence: the e-processes of issue 17, computed in the view's thread.

:class:`EvidencePanel` is a snapshot provider (:data:`~.hub.Provider`). It keeps its own
:class:`~corrlab.daq.evidence.RunEvidence`, built from the protocol the dataset's manifest
recorded (as ``resume_run`` rebuilds it) with a continued run's prior, and feeds it only the
rows of the hub's :class:`~.hub.TrialTable` it has not seen yet, in trial order, reduced as the
runner reduces them (the windowed mean over the plan's window, the schedule block). It never
touches the runner's monitor. Its numbers are therefore the runner's and the analysis' numbers.

When the table may be missing trials or holds them out of order (the view's bounded queue
dropped some, see ``TrialTable.gaps``) the panel shows no e-value: it says the live evidence is
incomplete and where the complete one is (the manifest, ``corrlab analyze``).
"""

from __future__ import annotations

import math

TITLE = "Evidence (anytime-valid)"
STOPPING_TITLE = "Stopping rule (anytime evidence)"


class IncompleteEvidence(Exception):
    """The view did not see every trial in order: no live e-value is shown."""


def _finite(v):
    return v if v is None or not isinstance(v, float) or math.isfinite(v) else None


class EvidencePanel:
    """Two providers over one monitor: :meth:`__call__` (per hypothesis: e-value, anytime p,
    adjusted p, crossed-at trial, decided) and :meth:`stopping` (the stopping rule's state)."""

    def __init__(self):
        self._table = None
        self._evidence = None
        self._fed = 0

    def _update(self, table):
        from corrlab.daq.evidence import RunEvidence
        from corrlab.protocols.config import protocol_from_dict

        if table is not self._table:  # a new run: a new monitor
            self._table, self._evidence, self._fed = table, None, 0
        if table.gaps:
            raise IncompleteEvidence(f"live evidence incomplete ({table.gaps[0]}); the run's own evidence is in "
                                     "its manifest (anytime) and in corrlab analyze")
        if self._evidence is None:
            proto = table.meta.get("protocol")
            if proto is None:
                return None  # the run's protocol is not known yet
            ev = RunEvidence(protocol_from_dict(proto, source="the run's manifest protocol"),
                             prior=table.meta.get("prior"))
            if tuple(table.meta.get("window", ())) != tuple(ev.plan.window):
                raise IncompleteEvidence(f"live evidence not shown: the view reduced trials over the window "
                                         f"{table.meta.get('window')}, the plan's is {tuple(ev.plan.window)}")
            self._evidence = ev
        ev = self._evidence
        for i in range(self._fed, len(table)):
            ev.add_observed(table.trial[i], table.condition[i], table.setting_a[i], table.setting_b[i],
                            table.plan_a[i], table.plan_b[i], table.block[i])
        self._fed = len(table)
        if ev.error is not None:
            raise IncompleteEvidence(f"live evidence incomplete: {ev.error}")
        return ev

    def __call__(self, table) -> dict:
        ev = self._update(table)
        if ev is None:
            return {}
        snap = ev.monitor.snapshot()
        rows = {}
        for key, h in snap["hypotheses"].items():
            rows[key] = {
                "e-value": _finite(h["e_value"]), "anytime p": _finite(h["pvalue_anytime"]),
                "adj. p": _finite(h["pvalue_adjusted"]),
                "crossed at": h["crossed_at_adjusted"] if h["family"] else h["crossed_at"],
                "decided": "yes" if h["decided"] else ("n/a" if h.get("not_applicable") else "no"),
            }
            if "prior_e" in h:
                rows[key]["prior e"] = _finite(h["prior_e"])
        return rows

    def stopping(self, table) -> dict:
        ev = self._update(table)
        if ev is None or ev.stopping is None:
            return {}
        snap = ev.monitor.snapshot()["hypotheses"]
        decided = [k for k in ev.keys if k in snap and snap[k]["decided"]]
        n = snap_n = ev.monitor.n_trials
        recorded = table.meta.get("anytime") or {}
        if recorded.get("stopped"):
            state = f"stopped: {recorded['stopped']}"
        elif ev.monitor.decided(ev.keys) and n >= ev.stopping.min_trials:
            state = "decided: stops at the end of this part"
        else:
            state = "measuring"
        return {"rule": {"decide": ", ".join(ev.keys), "decided": f"{len(decided)} of {len(ev.keys)}",
                         "trials": snap_n, "min trials": ev.stopping.min_trials, "max trials": ev.trials_max,
                         "alpha": ev.plan.alpha, "state": state}}


def evidence_providers() -> dict:
    """The live page's evidence panels, sharing one monitor (``Hub(providers=...)``)."""
    panel = EvidencePanel()
    return {TITLE: panel, STOPPING_TITLE: panel.stopping}
