"""Writing a dataset: buffered whole trials, committed part by part.

A part is serialised in memory, hashed, written to a temporary name, fsynced and renamed;
then ``trials.parquet`` and ``manifest.json`` are rewritten the same way. The manifest is
the commit record: a part that the manifest does not list does not exist
(``DatasetWriter.reopen`` removes such leftovers). So a crash at any instant leaves either
the old or the new committed state, never a half-written trial.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from corrlab.errors import DatasetError, PlanError

from corrlab.dataset.format import (
    CORE_COLUMNS, FLOAT_COLUMNS, FORMAT, FORMAT_VERSION, STATUSES, TRIAL_CORE, _fsync_dir, _pa,
    atomic_write_bytes, atomic_write_json, check_run_id, parquet_bytes, sample_schema,
    software_versions, utc_now,
)
from corrlab.dataset.reader import Dataset


@dataclass
class _PendingTrial:
    record: dict
    columns: dict[str, np.ndarray]


class DatasetWriter:
    """Writes one dataset: buffered whole trials, committed part by part.

    Use :meth:`create` for a new run and :meth:`reopen` to continue an interrupted one.
    ``add_trial`` buffers a finished trial; ``commit`` makes every buffered trial durable;
    ``close(status)`` commits and records the final status.
    """

    def __init__(self, path: Path, manifest: dict, records: list[dict]):
        self.path = path
        self.manifest = manifest
        self.records = records
        self._written = {int(r["trial"]) for r in records}  # committed and pending trial ids
        self._pending: list[_PendingTrial] = []
        self.extra_columns: tuple[str, ...] = tuple(manifest.get("extra_columns", ()))
        self._journal = open(path / "events.jsonl", "a", encoding="utf-8")

    # -- construction ---------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | Path,
        run_id: str,
        *,
        protocol: dict,
        bench: dict,
        protocol_sha256: str,
        plan_sha256: str,
        rng_seed: int,
        instruments: dict[str, str],
        software: dict[str, str] | None = None,
        calibration: dict | None = None,
        extra_columns: Iterable[str] = (),
        extra: dict | None = None,
    ) -> "DatasetWriter":
        root = Path(root)
        check_run_id(run_id)
        path = root / run_id
        if path.resolve().parent != root.resolve():  # belt and braces after check_run_id
            raise PlanError(f"run id {run_id!r} would leave the data folder {root}")
        if path.exists():
            raise DatasetError(f"dataset {path} already exists; refusing to write over it")
        extra_columns = tuple(extra_columns)
        for name in extra_columns:
            if name in CORE_COLUMNS or not re.match(r"^[a-z][a-z0-9_]*$", name):
                raise PlanError(f"extra column name {name!r} is not allowed")
        (path / "parts").mkdir(parents=True)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "run_id": run_id,
            "status": "running",
            "created_utc": utc_now(),
            "finished_utc": None,
            "protocol": protocol,
            "bench": bench,
            "protocol_sha256": protocol_sha256,
            "plan_sha256": plan_sha256,
            "instruments": instruments,
            "software": software or software_versions(),
            "rng_seed": int(rng_seed),
            "extra_columns": list(extra_columns),
            "parts": [],
        }
        if calibration is not None:
            manifest["calibration"] = calibration
        if extra:
            manifest.update(extra)
        atomic_write_json(path / "manifest.json", manifest)
        _fsync_dir(root)
        return cls(path, manifest, [])

    @classmethod
    def reopen(cls, path: str | Path) -> "DatasetWriter":
        """Continue a dataset that did not finish: verify it, drop uncommitted leftovers."""
        ds = Dataset.open(path)
        report = ds.verify()
        if not report.ok:
            raise DatasetError(f"cannot resume {ds.path}: {report.problems[0]}")
        if ds.status == "complete":
            raise DatasetError(f"dataset {ds.path} is complete; nothing to resume")
        listed = {p["file"] for p in ds.manifest["parts"]}
        for leftover in list((ds.path / "parts").iterdir()):
            rel = f"parts/{leftover.name}"
            if rel not in listed:
                leftover.unlink()  # a part written but never committed (crash before manifest)
        records = [r for r in (ds.trials().to_dict("records") if ds.parts else []) if int(r["trial"]) in report.trials]
        manifest = dict(ds.manifest)
        now = utc_now()
        # how the previous session ended moves to the history: a running dataset carries no
        # stop of the past (a resumed run that completes has no stop_reason)
        manifest.setdefault("stops", []).append({
            "status": manifest.get("status"),  # "running": the process ended without recording one
            "finished_utc": manifest.get("finished_utc"),
            "stop_reason": manifest.pop("stop_reason", None),
            "safe_state": manifest.pop("safe_state", None),
            "resumed_utc": now,
        })
        manifest["status"] = "running"
        manifest["finished_utc"] = None
        manifest.setdefault("resumes", []).append(now)
        writer = cls(ds.path, manifest, records)
        writer._write_manifest()
        return writer

    # -- state -------------------------------------------------------------------------
    @property
    def committed_trials(self) -> list[int]:
        return [int(r["trial"]) for r in self.records]

    @property
    def pending_trials(self) -> int:
        return len(self._pending)

    # -- journal -----------------------------------------------------------------------
    def event(self, step: str, outcome: str, message: str = "", *, trial: int | None = None, **extra) -> dict:
        entry = {"time_utc": utc_now(), "step": step, "trial": trial, "outcome": outcome, "message": message}
        entry.update(extra)
        self._journal.write(json.dumps(entry, default=_json_default) + "\n")
        self._journal.flush()
        return entry

    # -- trials ------------------------------------------------------------------------
    def add_trial(self, record: dict, samples: dict[str, np.ndarray]) -> None:
        """Buffer one finished trial: its record (a trials.parquet row) and its samples.

        ``samples`` holds ``t``, ``x_a``, ``x_b`` and each declared extra column, all the
        same length; the per-sample trial/condition/settings/f come from ``record``.
        """
        for key in TRIAL_CORE:
            if key not in record:
                raise PlanError(f"trial record lacks {key!r}")
        needed = FLOAT_COLUMNS + self.extra_columns
        missing = [c for c in needed if c not in samples]
        if missing:
            raise PlanError(f"trial {record['trial']}: samples lack {', '.join(missing)}")
        n = len(samples["t"])
        columns = {}
        for c in needed:
            arr = np.ascontiguousarray(samples[c], dtype=np.float64)
            if arr.shape != (n,):
                raise PlanError(f"trial {record['trial']}: column {c} has shape {arr.shape}, expected ({n},)")
            columns[c] = arr
        trial = int(record["trial"])
        if trial in self._written:
            raise DatasetError(f"trial {trial} is already in {self.path}; a trial is written once")
        self._pending.append(_PendingTrial(dict(record), columns))
        self._written.add(trial)

    def _pending_table(self):
        pa = _pa()
        pend = self._pending
        lengths = np.array([len(p.columns["t"]) for p in pend])
        total = int(lengths.sum())
        rec = lambda key, dtype: np.repeat(np.array([p.record[key] for p in pend], dtype=dtype), lengths)  # noqa: E731
        conditions = [p.record["condition"] for p in pend]
        cats = sorted(set(conditions))
        codes = np.repeat(np.array([cats.index(c) for c in conditions], dtype=np.int32), lengths)
        arrays = [
            pa.array(rec("trial", np.int64)),
            pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(cats, pa.string())),
            pa.array(rec("setting_a", np.int8)),
            pa.array(rec("setting_b", np.int8)),
            pa.array(rec("f", np.bool_)),
        ]
        for c in FLOAT_COLUMNS + self.extra_columns:
            arrays.append(pa.array(np.concatenate([p.columns[c] for p in pend]) if total else np.empty(0)))
        table = pa.Table.from_arrays(arrays, schema=sample_schema(self.extra_columns))
        uniform = len(set(lengths.tolist())) == 1
        return table, (int(lengths[0]) if uniform and total else None), lengths

    def commit(self) -> dict | None:
        """Make every buffered trial durable: part, trials.parquet, manifest. Returns the part entry."""
        if not self._pending:
            return None
        table, rows_per_trial, lengths = self._pending_table()
        if rows_per_trial is not None:
            data = parquet_bytes(table, row_group_rows=rows_per_trial)
        else:  # trials of unequal length: still one row group per trial
            data = self._parquet_bytes_by_trial(table, lengths)
        index = len(self.manifest["parts"])
        rel = f"parts/part-{index:06d}.parquet"
        atomic_write_bytes(self.path / rel, data)
        trials = [int(p.record["trial"]) for p in self._pending]
        entry = {
            "file": rel,
            "rows": int(table.num_rows),
            "first_trial": min(trials),
            "last_trial": max(trials),
            "trials": len(trials),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        self.records.extend(p.record for p in self._pending)
        self._pending.clear()
        self._write_trials()
        self.manifest["parts"].append(entry)
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._write_manifest()
        return entry

    def discard_pending(self) -> int:
        n = len(self._pending)
        self._written.difference_update(int(p.record["trial"]) for p in self._pending)
        self._pending.clear()
        return n

    def _parquet_bytes_by_trial(self, table, lengths) -> bytes:
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        small = ["condition", "setting_a", "setting_b", "f"]
        enc = {c: "BYTE_STREAM_SPLIT" for c in table.column_names if c not in small and c != "trial"}
        enc["trial"] = "DELTA_BINARY_PACKED"
        with pq.ParquetWriter(sink, table.schema, use_dictionary=small, column_encoding=enc,
                              compression="zstd", compression_level=1, write_statistics=["trial"]) as w:
            start = 0
            for n in lengths:
                w.write_table(table.slice(start, int(n)), row_group_size=max(int(n), 1))
                start += int(n)
        return sink.getvalue()

    def _write_trials(self) -> None:
        import pyarrow.parquet as pq

        table = trials_table(self.records)
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        atomic_write_bytes(self.path / "trials.parquet", sink.getvalue())

    def _write_manifest(self) -> None:
        self.manifest["trials_committed"] = len(self.records)
        atomic_write_json(self.path / "manifest.json", self.manifest)

    def set_manifest(self, **fields) -> None:
        self.manifest.update(fields)
        self._write_manifest()

    def close(self, status: str, *, reason: str | None = None, fields: dict | None = None) -> None:
        """Commit what is buffered and record the final status (complete/interrupted/aborted).

        ``reason`` becomes ``stop_reason`` (removed when there is none, so a completed run never
        carries an old one); ``fields`` are further manifest fields recorded with the status.
        """
        if status not in STATUSES:
            raise PlanError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        try:
            self.commit()
        finally:
            self.manifest["status"] = status
            self.manifest["finished_utc"] = utc_now()
            if reason:
                self.manifest["stop_reason"] = reason
            else:
                self.manifest.pop("stop_reason", None)
            self.manifest.update(fields or {})
            self._write_manifest()
            self._journal.close()


def trials_table(records: list[dict]):
    """trials.parquet from records: core columns typed, further layer records inferred."""
    pa = _pa()
    core_types = {
        "trial": pa.int64(), "condition": pa.string(), "block": pa.int64(),
        "setting_a": pa.int8(), "setting_b": pa.int8(), "f": pa.bool_(),
        "start_utc": pa.timestamp("ms", tz="UTC"),
    }
    keys: list[str] = list(TRIAL_CORE)
    for r in records:
        keys += [k for k in r if k not in keys]
    arrays, fields = [], []
    for k in keys:
        values = [r.get(k) for r in records]
        if k == "start_utc":
            values = [_parse_time(v) for v in values]
        if k in core_types:
            typ = core_types[k]
        else:
            sample = next((v for v in values if v is not None), None)
            if isinstance(sample, (bool, np.bool_)):
                typ = pa.bool_()
            elif isinstance(sample, (int, np.integer)):
                typ = pa.int64()
            elif isinstance(sample, (float, np.floating)):
                typ = pa.float64()
            else:
                typ = pa.string()
                values = [None if v is None else str(v) for v in values]
        arrays.append(pa.array(values, type=typ))
        fields.append(pa.field(k, typ))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _parse_time(v):
    if v is None or isinstance(v, _dt.datetime):
        return v
    if hasattr(v, "to_pydatetime"):
        return v.to_pydatetime()
    return _dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)
