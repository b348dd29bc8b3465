"""Design verified, not assumed (issue 22, item 2): the data's conditions, blocks and settings
are the ones the recorded seed and schedule produce.

A corrlab dataset's manifest keeps the protocol it ran (``manifest["protocol"]``: the seed in
``protocol.seed``, the schedule in ``schedule.{trials, block_size, conditions}``, the ΔL code
length in ``prepare.code_bits``). The schedule is a pure function of those values
(:func:`corrlab.schedule.schedule_arrays`, the generator the runner itself uses), so the analysis
recomputes it and compares every trial it has: condition, block, each side's setting and, where
the trials table records them, the ΔL code checksums. A trial left out (``--exclude-trials``) or
missing is not compared; a resumed run verifies like any other (its schedule is the same
function of the same protocol). A source without a recorded protocol (an imported single file)
is ``unchecked``: the data-driven sequence tests are what remains there.

:func:`recorded_design` pulls the inputs out of a source's manifest, :func:`verify_design`
compares plain per-trial values, :func:`verify_source` does both for a source (its trials
table, or the pipeline's ``TrialData``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from corrlab.schedule import schedule_arrays

INPUTS = ("seed", "trials", "block_size", "conditions", "code_bits")
WHERE = {  # each input's place in the manifest's protocol record
    "seed": ("protocol", "seed"),
    "trials": ("schedule", "trials"),
    "block_size": ("schedule", "block_size"),
    "conditions": ("schedule", "conditions"),
    "code_bits": ("prepare", "code_bits"),
}
COLUMNS = ("condition", "block", "setting_a", "setting_b", "code_checksum_a", "code_checksum_b")
ASSUMPTION = "the trials' conditions, blocks and settings are the recorded seed's randomized schedule"
CHECK = "schedule recomputed from the manifest's protocol seed and schedule, compared trial by trial"


@dataclass(frozen=True)
class DesignCheck:
    """The outcome of :func:`verify_design`.

    ``mismatches``: per compared column, the number of trials whose value differs from the
    schedule's (``trial`` counts ids outside the schedule); ``first_mismatch``: ``(trial,
    column, recorded value, scheduled value)`` of the lowest such trial id, else None.
    """

    outcome: str  # "holds" | "fails" | "unchecked"
    n_checked: int = 0
    mismatches: dict = field(default_factory=dict)
    first_mismatch: tuple | None = None
    detail: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["first_mismatch"] = list(self.first_mismatch) if self.first_mismatch is not None else None
        return d

    def entry(self) -> dict:
        """The check as an entry of the results' ``assumptions`` section (:mod:`corrlab.analysis.assumptions`)."""
        return {"assumption": ASSUMPTION, "check": CHECK, "outcome": self.outcome, "detail": self.detail, "pvalue": None}


def _unchecked(reason: str) -> DesignCheck:
    return DesignCheck("unchecked", 0, {}, None, reason)


# ============================================================================ the recorded inputs


def _inputs_from_protocol(record: Mapping, rng_seed=None) -> dict:
    out = {}
    for key, (section, name) in WHERE.items():
        sec = record.get(section)
        out[key] = sec.get(name) if isinstance(sec, Mapping) else None
    if out["seed"] is None and rng_seed is not None:
        out["seed"] = rng_seed  # the manifest's top-level copy of the protocol seed
    return out


def recorded_design(source) -> dict | None:
    """The schedule inputs a dataset recorded: ``{"seed", "trials", "block_size", "conditions",
    "code_bits"}`` (None for any the record lacks), or None when it recorded no protocol.

    ``source``: what :func:`corrlab.dataset.open_source` returns (its ``manifest``), or a
    manifest dict. An imported single file (:class:`corrlab.dataset.reader.ParquetSource`) has
    an empty protocol record: None.
    """
    manifest = getattr(source, "manifest", source)
    if not isinstance(manifest, Mapping):
        return None
    record = manifest.get("protocol")
    if not isinstance(record, Mapping) or not record:
        return None
    return _inputs_from_protocol(record, manifest.get("rng_seed"))


def _normalize(recorded) -> dict | None:
    """Flat inputs (as :func:`recorded_design` returns), a manifest's protocol record, or a whole manifest."""
    if recorded is None or not isinstance(recorded, Mapping) or not recorded:
        return None
    protocol = recorded.get("protocol")
    if "format" in recorded or (isinstance(protocol, Mapping) and "schedule" in protocol):
        return recorded_design(recorded)  # a whole manifest
    if any(k in recorded for k in ("schedule", "prepare")) or isinstance(protocol, Mapping):
        return _inputs_from_protocol(recorded)  # the protocol record
    return {k: recorded.get(k) for k in INPUTS}


# ============================================================================ the check


def _as_list(values, n: int | None, what: str) -> list:
    out = list(values) if isinstance(values, (list, tuple)) else np.asarray(values).reshape(-1).tolist()
    if n is not None and len(out) != n:
        raise ValueError(f"{what} has {len(out)} values for {n} trials")
    return out


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _same(column: str, got, want) -> bool:
    if _missing(got):
        return False
    if column == "condition":
        return str(got) == want
    if column.startswith("code_checksum"):
        return str(got).lower() == want
    try:
        return int(got) == want and float(got) == want
    except (TypeError, ValueError):
        return False


def _shown(v) -> str:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v) if isinstance(v, str) or v is None else str(v)


def verify_design(recorded, trial, condition, setting_a, setting_b, block=None, *,
                  code_checksum_a=None, code_checksum_b=None) -> DesignCheck:
    """Compare the given trials with the schedule the recorded seed produces.

    ``recorded``: :func:`recorded_design`'s dict, the manifest's protocol record
    (``manifest["protocol"]``) or the whole manifest; None (no protocol recorded) or a record
    lacking an input gives ``unchecked`` with the reason. ``trial``, ``condition``,
    ``setting_a``, ``setting_b`` (and ``block``, ``code_checksum_a``/``_b`` when given) are
    aligned per-trial sequences; trials not given are not compared. ``holds`` when every given
    trial matches, ``fails`` naming the first mismatching trial and column otherwise.
    """
    inputs = _normalize(recorded)
    if inputs is None:
        return _unchecked("no protocol recorded (an imported file?): the conditions and settings cannot be "
                          "compared with a schedule; the sequence tests on the data are what checks them")
    lacking = [".".join(WHERE[k]) for k in INPUTS if inputs.get(k) is None]
    if lacking:
        return _unchecked(f"the recorded protocol lacks {', '.join(lacking)}: its schedule cannot be recomputed")
    try:
        sched = schedule_arrays(inputs["seed"], inputs["conditions"], inputs["trials"], inputs["block_size"],
                                inputs["code_bits"])
    except ValueError as exc:
        return _unchecked(f"the recorded schedule cannot be recomputed: {exc}")

    ids = _as_list(trial, None, "trial")
    n = len(ids)
    if n == 0:
        return _unchecked("no trial to compare with the recorded schedule")
    given = {"condition": condition, "block": block, "setting_a": setting_a, "setting_b": setting_b,
             "code_checksum_a": code_checksum_a, "code_checksum_b": code_checksum_b}
    columns = {c: _as_list(v, n, c) for c, v in given.items() if v is not None}

    n_sched = len(sched)
    rows, inside = [], []
    for i, t in enumerate(ids):
        try:
            ti = int(t)
            ok = float(t) == ti and 0 <= ti < n_sched
        except (TypeError, ValueError):
            ok, ti = False, t
        (inside if ok else rows).append((i, ti))
    mismatches = {"trial": len(rows)} if rows else {}
    found = [(t, "trial", t, None) for _, t in rows]  # ids the schedule does not have
    idx = np.array([ti for _, ti in inside], dtype=np.int64)
    scheduled = {
        "condition": sched.condition[idx].tolist(), "block": sched.block[idx].tolist(),
        "setting_a": sched.setting_a[idx].tolist(), "setting_b": sched.setting_b[idx].tolist(),
    }
    if "code_checksum_a" in columns:
        scheduled["code_checksum_a"] = sched.code_checksums("a", idx)
    if "code_checksum_b" in columns:
        scheduled["code_checksum_b"] = sched.code_checksums("b", idx)
    for col in COLUMNS:
        if col not in columns:
            continue
        got_all, want_all = columns[col], scheduled[col]
        count = 0
        for k, (i, ti) in enumerate(inside):
            if not _same(col, got_all[i], want_all[k]):
                count += 1
                found.append((ti, col, got_all[i], want_all[k]))
        mismatches[col] = count

    compared = ", ".join(c for c in COLUMNS if c in columns)
    if not found:
        return DesignCheck("holds", n, mismatches, None,
                           f"all {n} trials' {compared} are the recorded seed's schedule "
                           f"(seed {inputs['seed']}, {n_sched // inputs['block_size']} blocks of {inputs['block_size']})")
    order = {c: k for k, c in enumerate(("trial", *COLUMNS))}
    first = min(found, key=lambda m: (m[0] if isinstance(m[0], int) else math.inf, order[m[1]]))
    t, col, got, want = first
    got = got.item() if isinstance(got, np.generic) else got
    if col == "trial":
        head = f"trial {_shown(t)}: not in the recorded schedule (trials 0..{n_sched - 1})"
    else:
        head = f"trial {t}: {col} is {_shown(got)}, the recorded seed's schedule says {_shown(want)}"
    n_bad = len({m[0] for m in found})
    counts = ", ".join(f"{c} {k}" for c, k in mismatches.items() if k)
    return DesignCheck("fails", n, mismatches, (t, col, got, want),
                       f"{head} ({len(found)} mismatch{'es' if len(found) > 1 else ''} in {n_bad} of {n} trials: {counts})")


def verify_source(source, *, data=None, exclude: Sequence[int] = ()) -> DesignCheck:
    """:func:`verify_design` for a source from :func:`corrlab.dataset.open_source`.

    Without ``data``: every trial of its trials table not in ``exclude``. With ``data`` (the
    pipeline's ``TrialData``: ``trial``, ``condition``, ``block``, ``setting_a``, ``setting_b``):
    those trials as the analysis reads them, with the ΔL code checksums of the trials table.
    The trials table is read only when the source recorded a protocol.
    """
    recorded = recorded_design(source)
    if recorded is None:
        return verify_design(None, [], [], [], [])
    table = source.trials()
    codes = {}
    if {"code_checksum_a", "code_checksum_b"} <= set(table.columns):
        ids = table["trial"].to_numpy().tolist()
        codes = dict(zip(ids, zip(table["code_checksum_a"].tolist(), table["code_checksum_b"].tolist())))
    if data is None:
        skip = {int(t) for t in exclude}
        keep = ~table["trial"].isin(skip).to_numpy()
        table = table[keep]
        trial = table["trial"].to_numpy()
        cols = {c: table[c].to_numpy() for c in ("condition", "setting_a", "setting_b")}
        block = table["block"].to_numpy() if "block" in table.columns else None
    else:
        trial = np.asarray(data.trial)
        cols = {"condition": data.condition, "setting_a": data.setting_a, "setting_b": data.setting_b}
        block = data.block
    kw = {}
    if codes:
        pairs = [codes.get(int(t), (None, None)) for t in trial]
        kw = {"code_checksum_a": [p[0] for p in pairs], "code_checksum_b": [p[1] for p in pairs]}
    return verify_design(recorded, trial, cols["condition"], cols["setting_a"], cols["setting_b"], block=block, **kw)
