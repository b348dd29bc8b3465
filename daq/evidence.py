"""The runner's anytime evidence and stopping rule (issue 17).

:class:`RunEvidence` keeps a :class:`corrlab.anytime.EvidenceMonitor` for a run: each
measured trial is reduced to its observable (the windowed mean of x on each side, as the
analysis reduces it) and fed in time order; a resumed run first replays the trials already
committed, and a run that continues earlier runs of the same plan (``continue_from``) starts
from the product of their e-values (independent runs multiply), so the evidence continues
instead of starting over. With the protocol's ``[stopping]`` section the runner asks
:meth:`RunEvidence.should_stop` after each committed part; the manifest's ``anytime`` records
the rule, why the run stopped (``decided`` or ``max_trials``, or the status when it did not
finish), the trial it stopped after, the final e-values and the prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from corrlab.anytime import EvidenceMonitor, window_mean
from corrlab.errors import DatasetError
from corrlab.plan import load_plan
from corrlab.protocols.config import Protocol


class RunEvidence:
    """The e-processes of one run, fed with its committed trials."""

    def __init__(self, protocol: Protocol, *, prior: dict | None = None, prior_runs: Sequence[str] = ()):
        plan = load_plan(protocol.analysis, source=f"protocol {protocol.name} [analysis]")
        sch = protocol.schedule
        self.plan = plan
        self.stopping = protocol.stopping
        self.trials_max = sch.trials
        self.prior = dict(prior or {})
        self.prior_runs = list(prior_runs)
        self.monitor = EvidenceMonitor(sch.conditions, sch.block_size, alpha=plan.alpha,
                                       confirmatory=plan.confirmatory, halflife=plan.time_block_trials or None,
                                       chsh=True, fair_sampling=plan.fair_sampling, prior=self.prior)
        controls = sorted(c for c in sch.conditions if c.startswith("control:"))
        self.keys: list[str] = []
        for h in (self.stopping.decide if self.stopping else []):
            self.keys += [f"controls:{c}" for c in controls] if h == "controls" else [h]
        self.stopped: str | None = None
        self.error: str | None = None

    # -- feeding ---------------------------------------------------------------------
    def add(self, record: dict, samples: dict) -> None:
        """One measured trial (its trials.parquet record and its samples). The evidence never stops
        a run: a trial it cannot take (out of time order) switches it off, noted in the record."""
        if self.error is not None:
            return
        w = self.plan.window
        self.add_observed(record["trial"], record["condition"], record["setting_a"], record["setting_b"],
                          window_mean(samples["x_a"], w), window_mean(samples["x_b"], w), record.get("block"))

    def add_observed(self, trial: int, condition: str, setting_a: int, setting_b: int, a: float, b: float,
                     block=None) -> None:
        """One trial already reduced to its observables (``window_mean`` of x_a and x_b over the
        plan's window): what :meth:`add` feeds, and what the live view's evidence panel feeds
        from its own table."""
        if self.error is not None:
            return
        try:
            self.monitor.update(trial, condition, setting_a, setting_b, a, b, block=block)
        except ValueError as exc:
            self.error = f"evidence monitoring stopped at trial {trial}: {exc}"

    def replay(self, path: str | Path) -> int:
        """Feed the trials a dataset committed (in trial order); returns how many."""
        from corrlab.dataset import Dataset

        ds = Dataset.open(path)
        blocks = {}
        trials = ds.trials()
        if len(trials) and "block" in trials.columns:
            blocks = dict(zip(trials["trial"].to_numpy().tolist(), trials["block"].to_numpy().tolist()))
        rows = []
        w = self.plan.window
        for table in ds.iter_parts(["trial", "condition", "setting_a", "setting_b", "x_a", "x_b"]):
            if table.num_rows == 0:
                continue
            trial = table["trial"].to_numpy()
            starts = np.flatnonzero(np.r_[True, trial[1:] != trial[:-1]])
            ends = np.r_[starts[1:], len(trial)]
            cond = table["condition"].cast("string").to_numpy(zero_copy_only=False)
            sa, sb = table["setting_a"].to_numpy(), table["setting_b"].to_numpy()
            xa = table["x_a"].to_numpy(zero_copy_only=False)
            xb = table["x_b"].to_numpy(zero_copy_only=False)
            for s, e in zip(starts.tolist(), ends.tolist()):
                t = int(trial[s])
                rows.append((t, str(cond[s]), int(sa[s]), int(sb[s]), window_mean(xa[s:e], w),
                             window_mean(xb[s:e], w), blocks.get(t)))
        rows.sort(key=lambda r: r[0])
        for t, c, a_set, b_set, a, b, blk in rows:
            if self.monitor.last_trial is not None and t <= self.monitor.last_trial:
                continue
            self.monitor.update(t, c, a_set, b_set, a, b, block=blk)
        return len(rows)

    # -- the rule ----------------------------------------------------------------------
    def should_stop(self, committed: int) -> bool:
        """After a committed part: the named hypotheses are all decided (and ``min_trials`` reached)."""
        if (self.stopping is None or self.error is not None or committed < self.stopping.min_trials
                or committed >= self.trials_max):
            return False
        if self.monitor.decided(self.keys):
            self.stopped = "decided"
            return True
        return False

    def record(self, status: str, committed: int) -> dict:
        """The manifest's ``anytime`` entry."""
        snap = self.monitor.snapshot()
        if self.stopped is None:
            self.stopped = "max_trials" if status == "complete" else status
        out = {
            "rule": ({"decide": list(self.stopping.decide), "hypotheses": self.keys,
                      "min_trials": self.stopping.min_trials, "max_trials": self.trials_max,
                      "alpha": self.plan.alpha, "checked": "after each committed part"}
                     if self.stopping is not None else None),
            "stopped": self.stopped,
            "stopped_after_trial": self.monitor.last_trial,
            "trials_committed": committed,
            "evidence": {k: {"e_value": v["e_value"], "pvalue_anytime": v["pvalue_anytime"],
                             "pvalue_adjusted": v["pvalue_adjusted"], "crossed_at": v["crossed_at"],
                             "crossed_at_adjusted": v["crossed_at_adjusted"], "decided": v["decided"]}
                         for k, v in snap["hypotheses"].items()},
        }
        if self.error is not None:
            out["error"] = self.error
        if self.prior:
            out["prior"] = self.prior
            out["prior_runs"] = self.prior_runs
        return out


def prior_from(paths: Sequence[str | Path], protocol: Protocol) -> tuple[dict, list[str]]:
    """The product of the e-values of earlier runs of the same plan (each replayed from its
    committed trials), and their run ids. A run of another plan is refused."""
    from corrlab.dataset import Dataset
    from corrlab.plan import load_plan as _load

    plan_sha = _load(protocol.analysis).sha256
    prior: dict[str, float] = {}
    ids = []
    for path in paths:
        ds = Dataset.open(path)
        if ds.manifest.get("plan_sha256") != plan_sha:
            raise DatasetError(f"{path}: recorded with another analysis plan (plan_sha256 "
                               f"{str(ds.manifest.get('plan_sha256'))[:12]}, this protocol's {plan_sha[:12]}); "
                               "only runs of the same plan continue the evidence")
        from corrlab.protocols.config import protocol_from_dict

        earlier = RunEvidence(protocol_from_dict(ds.manifest["protocol"], source=f"{path} manifest protocol"))
        earlier.replay(path)
        for k, v in earlier.monitor.snapshot()["hypotheses"].items():
            prior[k] = prior.get(k, 1.0) * v["e_value"]
        ids.append(ds.manifest["run_id"])
    return {k: v for k, v in prior.items() if math.isfinite(v)}, ids
