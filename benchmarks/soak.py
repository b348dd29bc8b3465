"""Soak: protocol runs on the simulated bench for a while, with faults injected at random.

Every run uses the same protocol and seed, so every finished dataset must equal a clean
reference run sample for sample. Faults (dropped connections with FIN or RST, late
replies past the timeout, garbage replies, a thermometer stuck out of band, refused
reconnections that push a run past its reconnect bound, every server restarted at once,
a server frozen shorter or longer than the outage tolerance) are drawn from a seeded
generator and fired at random trials. Interrupted runs are resumed until complete; every
run must end with every role confirmed in its safe state, or name the role that was not
(a link lost past the tolerance), and every outage must be journaled.

Figures: runs, trials measured, faults injected and survived, suspensions, resumes, and
data lost (trials missing, duplicated, failing checksums, or differing from the
reference: must be zero).

    python benchmarks/soak.py --minutes 20 [--seed 1]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corrlab.dataset import Dataset  # noqa: E402
from corrlab.daq.runner import resume_run, run_protocol  # noqa: E402
from corrlab.instruments.benchfile import bench_from_dict, load_bench  # noqa: E402
from corrlab.protocols.config import protocol_from_dict  # noqa: E402

OUTAGE_TOLERANCE_S = 3.0  # short, so a freeze past it happens within a soak
ROLES = ("readout_a", "readout_b", "drive", "thermal", "stage", "isolation", "digitizer")


def soak_protocol(trials: int):
    return protocol_from_dict({
        "protocol": {"name": "soak", "seed": 4242},
        "schedule": {"trials": trials, "block_size": 6, "trials_per_part": 6,
                     "conditions": {"main": 3, "control:break_L": 1, "control:perturb_C": 1, "control:couple_env": 1}},
        "acquisition": {"samples": 512},
        "stabilize": {"reads": 3, "interval_s": 0.0, "settle_s": 0.02, "max_wait_s": 5.0},
    })


def soak_bench(faults=None):
    data = load_bench().to_json()
    data["faults"] = faults or {}
    data["reconnect"] = {"attempts": 3, "backoff_s": 0.02, "backoff_factor": 2.0,
                         "outage_tolerance_s": OUTAGE_TOLERANCE_S, "max_backoff_s": 0.2}
    for cfg in data["roles"].values():
        cfg["timeout_ms"] = 300
    return bench_from_dict(data)


def draw_faults(rng: np.random.Generator, trials: int):
    """One to three faults for a run: (kind, role, trial)."""
    kinds = ("drop", "drop_rst", "delay", "garble", "stuck_temperature", "dead", "restart_all", "freeze_short",
             "freeze_long")
    weights = np.array([3, 2, 2, 3, 2, 1, 2, 2, 1], float)
    out = []
    for _ in range(int(rng.integers(1, 4))):
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        role = "thermal" if kind == "stuck_temperature" else ROLES[int(rng.integers(len(ROLES)))]
        out.append((kind, role, int(rng.integers(1, trials - 1))))
    return out


def make_hook(plan):
    """Fire each planned fault when the world starts the chosen trial."""

    def hook(sim):
        begin = sim.world.begin_record
        fired = set()

        def begin_record(tag):
            begin(tag)
            for i, (kind, role, trial) in enumerate(plan):
                if trial != tag or i in fired:
                    continue
                fired.add(i)
                faults = sim.servers[role].faults
                if kind == "drop":
                    faults.configure(drop_after_commands=3)
                elif kind == "drop_rst":
                    faults.configure(drop_after_commands=2, drop_reset=True)
                elif kind == "delay":
                    faults.configure(delay_queries=1, delay_s=0.5)
                elif kind == "garble":
                    faults.configure(garble_queries=1)
                elif kind == "dead":
                    faults.configure(drop_after_commands=1, refuse_connections=100)
                elif kind == "restart_all":  # a power blip: every instrument resets, its port closed 1 s
                    for server in sim.servers.values():
                        server.model.handle("*RST")
                        server.faults.configure(drop_after_commands=0, drop_reset=True)
                        server.faults.refuse(seconds=1.0)
                elif kind == "freeze_short":
                    faults.freeze(OUTAGE_TOLERANCE_S / 3)
                elif kind == "freeze_long":
                    faults.freeze(OUTAGE_TOLERANCE_S * 2)
                elif kind == "stuck_temperature":
                    sim.world.stick_temperature(trial=tag, offset_k=0.3, reads=4, first_read=1)

        sim.world.begin_record = begin_record

    return hook


def unjournaled_outages(path: Path) -> int:
    """Outages in the manifest without their start and end (or fail) in the journal."""
    import json

    events = [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines() if line.strip()]
    outage = [e for e in events if e.get("step") == "outage"]
    starts = sum(e.get("outcome") == "start" for e in outage)
    ends = sum(e.get("outcome") in ("end", "fail") for e in outage)
    recorded = len(Dataset.open(path).manifest.get("outages", []))
    return max(recorded - min(starts, ends), 0) + abs(starts - ends)


def compare(path: Path, reference) -> int:
    """Trials lost: missing, duplicated, failing verification, or not equal to the reference."""
    ds = Dataset.open(path)
    report = ds.verify()
    if not report.ok:
        return len(reference.trial.unique())
    data = ds.read().to_pandas()
    lost = len(set(reference.trial.unique()) - set(data.trial.unique()))
    lost += int(ds.trials().trial.duplicated().sum())
    if len(data) == len(reference):
        bad = (data.x_a.to_numpy() != reference.x_a.to_numpy()) | (data.x_b.to_numpy() != reference.x_b.to_numpy())
        lost += len(set(data.trial.to_numpy()[bad]))
    else:
        lost += abs(len(data) - len(reference)) // 512
    return lost


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trials", type=int, default=60, help="trials per run (a multiple of 6)")
    ap.add_argument("--keep", action="store_true", help="keep the datasets (printed folder)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    root = Path(tempfile.mkdtemp(prefix="corrlab-soak-"))
    protocol = soak_protocol(args.trials)
    run_protocol(protocol, soak_bench(), root, run_id="reference")
    reference = Dataset.open(root / "reference").read().to_pandas()
    totals = dict(runs=0, trials=0, injected=0, faults_met=0, suspensions=0, resumes=0, lost=0, interrupted=0,
                  outages=0, outages_unjournaled=0, stops_not_safe_named=0, ends_not_safe=0)
    deadline = time.monotonic() + args.minutes * 60
    t0 = time.monotonic()
    try:
        while time.monotonic() < deadline:
            run_id = f"run{totals['runs']:04d}"
            plan = draw_faults(rng, args.trials)
            totals["injected"] += len(plan)
            result = run_protocol(protocol, soak_bench(), root, run_id=run_id, sim_hook=make_hook(plan))
            met, susp = len(result.faults), result.suspensions
            while result.status != "complete":
                totals["interrupted"] += 1
                totals["resumes"] += 1
                # a stop must name every role it could not confirm safe (a frozen or lost link), never claim ok
                totals["stops_not_safe_named"] += len(result.safe_state["not_confirmed"])
                result = resume_run(root / run_id, soak_bench())
                met += len(result.faults)
                susp += result.suspensions
            if result.safe_state["not_confirmed"] or not result.safe_state["confirmed"]:
                totals["ends_not_safe"] += 1
            totals["outages"], totals["outages_unjournaled"] = (
                totals["outages"] + len(Dataset.open(root / run_id).manifest.get("outages", [])),
                totals["outages_unjournaled"] + unjournaled_outages(root / run_id))
            lost = compare(root / run_id, reference)
            totals["runs"] += 1
            totals["trials"] += result.trials_committed
            totals["faults_met"] += met
            totals["suspensions"] += susp
            totals["lost"] += lost
            print(f"{run_id}: faults planned {[f'{k}@{r}:{t}' for k, r, t in plan]}, met {met}, "
                  f"suspensions {susp}, lost {lost}", flush=True)
            if not args.keep:
                shutil.rmtree(root / run_id)
    finally:
        elapsed = time.monotonic() - t0
        print(f"\nsoak: {elapsed / 60:.1f} min, {totals['runs']} runs, {totals['trials']} trials measured "
              f"({totals['trials'] / max(elapsed, 1e-9):.1f}/s)")
        print(f"faults injected {totals['injected']}, faults met by the runner {totals['faults_met']} "
              f"(all survived), suspensions {totals['suspensions']}, runs interrupted past the bound and resumed "
              f"{totals['interrupted']}")
        print(f"outages ridden out or stopped at the tolerance: {totals['outages']} (not journaled: "
              f"{totals['outages_unjournaled']}); roles named not confirmed safe at a stop: "
              f"{totals['stops_not_safe_named']}; runs ending with a role not confirmed safe: {totals['ends_not_safe']}")
        print(f"data lost: {totals['lost']} trial(s)  {'OK' if totals['lost'] == 0 else 'DATA LOST'}")
        if args.keep:
            print(f"datasets in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    ok = totals["lost"] == 0 and totals["outages_unjournaled"] == 0 and totals["ends_not_safe"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
