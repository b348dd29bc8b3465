"""The corrlab dataset, format version 1: writer and reader (the contract of DESIGN.md).

A dataset is a folder ``<root>/<run_id>/``::

    manifest.json        what the run was, its status and its committed parts (with sha256)
    parts/part-NNNNNN.parquet   samples in long form, whole trials only
    trials.parquet       one row per committed trial: condition, settings, f, layer records
    events.jsonl         the step journal

Durability: a part is serialised in memory, hashed, written to a temporary name, fsynced
and renamed; then ``trials.parquet`` and ``manifest.json`` are rewritten the same way.
The manifest is the commit record: a part that the manifest does not list does not exist
(``DatasetWriter.reopen`` removes such leftovers). So a crash at any instant leaves either
the old or the new committed state, never a half-written trial.

Analysis imports this module only (never ``instruments`` or ``protocols``), and reads a
single Parquet file with the same API (:func:`open_source`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from corrlab.errors import DatasetError, PlanError
from corrlab.hashing import sha256_file

FORMAT = "corrlab-dataset"
FORMAT_VERSION = 1
STATUSES = ("running", "complete", "interrupted", "aborted")
REQUIRED_MANIFEST_FIELDS = (
    "format", "format_version", "run_id", "status", "created_utc", "finished_utc",
    "protocol", "bench", "protocol_sha256", "plan_sha256", "instruments", "software",
    "rng_seed", "parts",
)
CORE_COLUMNS = ("trial", "condition", "setting_a", "setting_b", "f", "t", "x_a", "x_b")
FLOAT_COLUMNS = ("t", "x_a", "x_b")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# trials.parquet: the core columns; further layer records may follow (float64, bool or string)
TRIAL_CORE = ("trial", "condition", "block", "setting_a", "setting_b", "f", "start_utc")


def _pa():
    import pyarrow as pa

    return pa


def sample_schema(extra_columns: Iterable[str] = ()):
    """The Arrow schema of a part: the contract's columns in order, then float extras."""
    pa = _pa()
    fields = [
        pa.field("trial", pa.int64(), nullable=False),
        pa.field("condition", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("setting_a", pa.int8(), nullable=False),
        pa.field("setting_b", pa.int8(), nullable=False),
        pa.field("f", pa.bool_(), nullable=False),
        pa.field("t", pa.float64(), nullable=False),
        pa.field("x_a", pa.float64(), nullable=False),
        pa.field("x_b", pa.float64(), nullable=False),
    ]
    fields += [pa.field(name, pa.float64(), nullable=False) for name in extra_columns]
    return pa.schema(fields)


def check_run_id(run_id: str) -> str:
    """A run id is a single safe path component: letters, digits, '.', '_', '-'; no '..'."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id) or ".." in run_id:
        raise PlanError(
            f"run id {run_id!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'"
        )
    return run_id


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def parquet_bytes(table, *, row_group_rows: int | None = None) -> bytes:
    """Serialise a samples table with the encodings tuned for this data.

    Dictionary only on the small columns (condition, settings, f), BYTE_STREAM_SPLIT for
    the floats, DELTA_BINARY_PACKED for the trial index, zstd; one row group per trial
    (``row_group_rows``) so that one trial reads without the rest.
    """
    import pyarrow.parquet as pq

    names = table.column_names
    small = [c for c in ("condition", "setting_a", "setting_b", "f") if c in names]
    encoding = {c: "BYTE_STREAM_SPLIT" for c in names if c not in small and c != "trial"}
    if "trial" in names:
        encoding["trial"] = "DELTA_BINARY_PACKED"
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        row_group_size=row_group_rows or max(table.num_rows, 1),
        use_dictionary=small,
        column_encoding=encoding,
        compression="zstd",
        compression_level=1,
        write_statistics=["trial"],
        store_schema=True,
    )
    return sink.getvalue()


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
        manifest["status"] = "running"
        manifest["finished_utc"] = None
        manifest.setdefault("resumes", []).append(utc_now())
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

    def close(self, status: str, *, reason: str | None = None) -> None:
        """Commit what is buffered and record the final status (complete/interrupted/aborted)."""
        if status not in STATUSES:
            raise PlanError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        try:
            self.commit()
        finally:
            self.manifest["status"] = status
            self.manifest["finished_utc"] = utc_now()
            if reason:
                self.manifest["stop_reason"] = reason
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


def software_versions() -> dict[str, str]:
    from importlib import metadata

    import corrlab

    out = {"corrlab": corrlab.__version__}
    for dist in ("pyvisa", "pyvisa-py", "pymeasure", "numpy", "pyarrow", "scipy", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    import platform

    out["python"] = platform.python_version()
    return out


# =========================================================================== reading


@dataclass
class VerifyReport:
    """What ``Dataset.verify`` found: ``ok`` and one line per problem."""

    path: Path
    parts_checked: int = 0
    rows_checked: int = 0
    trials_checked: int = 0
    problems: list[str] = field(default_factory=list)
    trials: set[int] = field(default_factory=set, repr=False)  # the committed trial indices

    @property
    def ok(self) -> bool:
        return not self.problems


def _load_manifest(path: Path) -> dict:
    mpath = path / "manifest.json"
    if not path.exists():
        raise DatasetError(f"dataset {path} does not exist")
    if not mpath.exists():
        raise DatasetError(f"{path} is not a corrlab dataset: manifest.json is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{mpath} is not valid JSON (line {exc.lineno} column {exc.colno})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{mpath}: format is {manifest.get('format') if isinstance(manifest, dict) else None!r}, expected {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{mpath}: format_version {manifest.get('format_version')!r} is not supported (this corrlab reads {FORMAT_VERSION})"
        )
    missing = [k for k in REQUIRED_MANIFEST_FIELDS if k not in manifest]
    if missing:
        raise DatasetError(f"{mpath}: missing field(s) {', '.join(missing)}")
    if manifest["status"] not in STATUSES:
        raise DatasetError(f"{mpath}: status {manifest['status']!r} is not one of {', '.join(STATUSES)}")
    for i, part in enumerate(manifest["parts"]):
        if not isinstance(part, dict) or not {"file", "rows", "first_trial", "last_trial", "sha256"} <= set(part):
            raise DatasetError(f"{mpath}: parts[{i}] lacks file/rows/first_trial/last_trial/sha256")
        if not re.match(r"^parts/part-\d{6}\.parquet$", str(part["file"])):
            raise DatasetError(f"{mpath}: parts[{i}] names {part['file']!r}, not a part file")
    return manifest


class Dataset:
    """A v1 dataset folder, read-only. ``Dataset.open(path)`` checks the manifest."""

    def __init__(self, path: Path, manifest: dict):
        self.path = path
        self.manifest = manifest

    @classmethod
    def open(cls, path: str | Path) -> "Dataset":
        path = Path(path)
        return cls(path, _load_manifest(path))

    # -- manifest views ---------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def status(self) -> str:
        return self.manifest["status"]

    @property
    def parts(self) -> list[dict]:
        return self.manifest["parts"]

    @property
    def protocol(self) -> dict:
        return self.manifest["protocol"]

    @property
    def plan(self) -> dict:
        return (self.manifest.get("protocol") or {}).get("analysis", {})

    @property
    def calibration(self) -> dict | None:
        return self.manifest.get("calibration")

    @property
    def columns(self) -> list[str]:
        return list(CORE_COLUMNS) + list(self.manifest.get("extra_columns", ()))

    @property
    def n_rows(self) -> int:
        return sum(int(p["rows"]) for p in self.parts)

    @property
    def manifest_sha256(self) -> str:
        return sha256_file(self.path / "manifest.json")

    # -- checks -----------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Check every part: present, sha256, row count, whole trials, schema; trials.parquet."""
        import pyarrow.parquet as pq

        report = VerifyReport(self.path)
        expected = sample_schema(self.manifest.get("extra_columns", ()))
        seen: set[int] = set()
        for part in self.parts:
            fpath = self.path / part["file"]
            if not fpath.exists():
                report.problems.append(f"{part['file']} is missing")
                continue
            digest = sha256_file(fpath)
            if digest != part["sha256"]:
                report.problems.append(
                    f"{part['file']} fails its checksum (manifest {part['sha256'][:12]}..., file {digest[:12]}...)"
                )
                continue
            try:
                meta = pq.ParquetFile(fpath)
                schema = meta.schema_arrow
                trials = pq.read_table(fpath, columns=["trial"]).column("trial").to_numpy()
            except Exception as exc:  # pyarrow raises several types for corrupt files
                report.problems.append(f"{part['file']} cannot be read as Parquet ({exc})")
                continue
            if list(schema.names) != list(expected.names):
                report.problems.append(f"{part['file']} has columns {schema.names}, expected {expected.names}")
            if meta.metadata.num_rows != int(part["rows"]):
                report.problems.append(f"{part['file']} has {meta.metadata.num_rows} rows, manifest says {part['rows']}")
            unique = np.unique(trials)
            if len(unique) and (unique[0] != part["first_trial"] or unique[-1] != part["last_trial"]):
                report.problems.append(
                    f"{part['file']} holds trials {unique[0]}..{unique[-1]}, manifest says {part['first_trial']}..{part['last_trial']}"
                )
            dup = seen.intersection(unique.tolist())
            if dup:
                report.problems.append(f"{part['file']} repeats trial(s) {sorted(dup)[:5]}")
            seen.update(unique.tolist())
            report.parts_checked += 1
            report.rows_checked += int(meta.metadata.num_rows)
        if self.parts and not report.problems:  # compare with trials.parquet once the parts are sound
            tpath = self.path / "trials.parquet"
            if not tpath.exists():
                report.problems.append("trials.parquet is missing")
            else:
                try:
                    listed = set(pq.read_table(tpath, columns=["trial"]).column("trial").to_pylist())
                except Exception as exc:
                    report.problems.append(f"trials.parquet cannot be read ({exc})")
                else:
                    if not seen <= listed:
                        report.problems.append(
                            f"trials.parquet lacks trial(s) {sorted(seen - listed)[:5]} that the parts hold"
                        )
                    elif listed - seen and self.status == "complete":
                        report.problems.append(
                            f"trials.parquet lists trial(s) {sorted(listed - seen)[:5]} that no part holds"
                        )
                    # a run stopped between writing trials.parquet and its manifest lists
                    # trials it never committed; reopen() drops them
        report.trials_checked = len(seen)
        report.trials = seen
        return report

    def require_valid(self) -> "Dataset":
        report = self.verify()
        if not report.ok:
            raise DatasetError(f"dataset {self.path}: {report.problems[0]}")
        return self

    # -- data ---------------------------------------------------------------------------
    def trials(self):
        """trials.parquet as a pandas DataFrame (empty frame if no trial is committed)."""
        import pandas as pd
        import pyarrow.parquet as pq

        tpath = self.path / "trials.parquet"
        if not tpath.exists():
            return pd.DataFrame(columns=list(TRIAL_CORE))
        try:
            return pq.read_table(tpath).to_pandas()
        except Exception as exc:
            raise DatasetError(f"{tpath} cannot be read ({exc})") from exc

    def iter_parts(self, columns: Iterable[str] | None = None) -> Iterator:
        """Yield each committed part as a pyarrow Table (bounded memory: one part at a time)."""
        import pyarrow.parquet as pq

        cols = list(columns) if columns is not None else None
        for part in self.parts:
            fpath = self.path / part["file"]
            if not fpath.exists():
                raise DatasetError(f"dataset {self.path}: {part['file']} is missing")
            try:
                yield pq.read_table(fpath, columns=cols)
            except Exception as exc:
                raise DatasetError(f"dataset {self.path}: {part['file']} cannot be read ({exc})") from exc

    def read(self, columns: Iterable[str] | None = None):
        """All committed samples as one pyarrow Table."""
        pa = _pa()
        tables = list(self.iter_parts(columns))
        if not tables:
            return sample_schema(self.manifest.get("extra_columns", ())).empty_table().select(
                list(columns) if columns is not None else self.columns
            )
        return pa.concat_tables(tables, promote_options="permissive")

    def read_trial(self, trial: int, columns: Iterable[str] | None = None):
        """One trial, reading only the row group that holds it."""
        import pyarrow.parquet as pq

        for part in self.parts:
            if part["first_trial"] <= trial <= part["last_trial"]:
                pf = pq.ParquetFile(self.path / part["file"])
                for rg in range(pf.num_row_groups):
                    stats = pf.metadata.row_group(rg).column(0).statistics
                    if stats is not None and stats.has_min_max and not (stats.min <= trial <= stats.max):
                        continue
                    table = pf.read_row_group(rg, columns=list(columns) if columns else None)
                    import pyarrow.compute as pc

                    if "trial" in table.column_names:
                        table = table.filter(pc.equal(table["trial"], trial))
                    if table.num_rows:
                        return table
        raise DatasetError(f"dataset {self.path} has no trial {trial}")

    def events(self) -> list[dict]:
        epath = self.path / "events.jsonl"
        if not epath.exists():
            return []
        out = []
        for i, line in enumerate(epath.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                # a line cut by a crash mid-write: keep reading, report it as such
                out.append({"step": "journal", "outcome": "corrupt", "message": f"line {i} unreadable"})
        return out


class ParquetSource:
    """A single Parquet file analysed as a dataset (DESIGN.md: at least trial, condition, x_a, x_b).

    Missing columns default: settings 0, f true, t the sample index within the trial.
    ``vacuum_variance=(va, vb)`` supplies the calibration a manifest would carry.
    """

    REQUIRED = ("trial", "condition", "x_a", "x_b")

    def __init__(self, path: str | Path, *, vacuum_variance: tuple[float, float] | None = None):
        import pyarrow.parquet as pq

        self.path = Path(path)
        if not self.path.exists():
            raise DatasetError(f"{self.path} does not exist")
        try:
            self._file = pq.ParquetFile(self.path)
        except Exception as exc:
            raise DatasetError(f"{self.path} cannot be read as Parquet ({exc})") from exc
        names = self._file.schema_arrow.names
        missing = [c for c in self.REQUIRED if c not in names]
        if missing:
            raise DatasetError(f"{self.path} lacks column(s) {', '.join(missing)} (needs {', '.join(self.REQUIRED)})")
        self._names = names
        self.manifest = {
            "run_id": self.path.stem,
            "status": "complete",
            "protocol": {},
            "plan_sha256": None,
            "parts": [{"file": self.path.name, "rows": self._file.metadata.num_rows}],
        }
        if vacuum_variance is not None:
            self.manifest["calibration"] = {"vacuum_variance": {"a": float(vacuum_variance[0]), "b": float(vacuum_variance[1])}}
        self.run_id = self.path.stem
        self.status = "complete"

    plan = property(lambda self: {})
    protocol = property(lambda self: {})
    calibration = property(lambda self: self.manifest.get("calibration"))
    n_rows = property(lambda self: self._file.metadata.num_rows)

    @property
    def manifest_sha256(self) -> str:
        return sha256_file(self.path)

    @property
    def columns(self) -> list[str]:
        extra = [c for c in self._names if c not in CORE_COLUMNS]
        return list(CORE_COLUMNS) + extra

    def verify(self) -> VerifyReport:
        return VerifyReport(self.path, parts_checked=1, rows_checked=self.n_rows)

    def _complete(self, table):
        import pyarrow.compute as pc

        pa = _pa()
        n = table.num_rows
        trial = table["trial"].cast(pa.int64())
        if "setting_a" not in table.column_names:
            table = table.append_column("setting_a", pa.array(np.zeros(n, np.int8)))
        if "setting_b" not in table.column_names:
            table = table.append_column("setting_b", pa.array(np.zeros(n, np.int8)))
        if "f" not in table.column_names:
            table = table.append_column("f", pa.array(np.ones(n, bool)))
        if "t" not in table.column_names:
            tr = trial.to_numpy()
            starts = np.r_[True, tr[1:] != tr[:-1]]
            idx = np.arange(n) - np.maximum.accumulate(np.where(starts, np.arange(n), 0))
            table = table.append_column("t", pa.array(idx.astype(np.float64)))
        cond = table["condition"]
        if not pa.types.is_dictionary(cond.type):
            cond = pc.dictionary_encode(cond.cast(pa.string()))
        out = {
            "trial": trial, "condition": cond,
            "setting_a": table["setting_a"].cast(pa.int8()), "setting_b": table["setting_b"].cast(pa.int8()),
            "f": table["f"].cast(pa.bool_()), "t": table["t"].cast(pa.float64()),
            "x_a": table["x_a"].cast(pa.float64()), "x_b": table["x_b"].cast(pa.float64()),
        }
        for c in table.column_names:
            if c not in out:
                out[c] = table[c]
        return pa.table(out)

    def iter_parts(self, columns: Iterable[str] | None = None) -> Iterator:
        for rg in range(self._file.num_row_groups):
            table = self._complete(self._file.read_row_group(rg))
            yield table.select(list(columns)) if columns is not None else table

    def read(self, columns: Iterable[str] | None = None):
        table = self._complete(self._file.read())
        return table.select(list(columns)) if columns is not None else table

    def trials(self):
        """One row per trial, derived from the samples (first row of each trial)."""
        df = self.read(["trial", "condition", "setting_a", "setting_b", "f"]).to_pandas()
        df["condition"] = df["condition"].astype(str)
        out = df.groupby("trial", sort=True).first().reset_index()
        out["block"] = 0
        return out

    def events(self) -> list[dict]:
        return []


def open_source(path: str | Path, *, vacuum_variance: tuple[float, float] | None = None):
    """A v1 dataset folder or a single Parquet file, with the same read API."""
    path = Path(path)
    if path.is_dir():
        ds = Dataset.open(path)
        if vacuum_variance is not None:
            calibration = dict(ds.manifest.get("calibration") or {})  # keep the other keys (magnetization_full_scale)
            calibration["vacuum_variance"] = {"a": vacuum_variance[0], "b": vacuum_variance[1]}
            ds.manifest = dict(ds.manifest, calibration=calibration)
        return ds
    if path.suffix.lower() in (".parquet", ".pq"):
        return ParquetSource(path, vacuum_variance=vacuum_variance)
    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    raise DatasetError(f"{path} is neither a dataset folder nor a .parquet file")
