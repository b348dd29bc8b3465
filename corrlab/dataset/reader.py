"""Reading a dataset (or a single Parquet file with the same API, :func:`open_source`)
and verifying it against its manifest."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from corrlab.errors import DatasetError
from corrlab.hashing import sha256_file

from corrlab.dataset.format import (
    CORE_COLUMNS, FORMAT, FORMAT_VERSION, REQUIRED_MANIFEST_FIELDS, STATUSES, TRIAL_CORE, _pa,
    sample_schema,
)


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

    Samples are grouped by trial, whatever the file's row groups: writers cut row groups by
    size (pandas, Spark, DuckDB...), so a trial may run on across several. :meth:`iter_parts`
    yields whole trials, one row group at a time, carrying the rows of a trial that runs on
    into the next row group (memory: a row group plus one trial). A file whose trials are not
    contiguous (a trial's rows in two places) is grouped too, at the cost of reading the whole
    file: the pieces are put together in file order (in ``t`` order when the file has ``t``),
    unless they conflict (a sample time twice, two identical pieces, different condition,
    settings or f), which is an error naming the trial and the rows.
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
        self._runs_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

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

    def _runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The file's runs of equal trial ids (id, first row, rows), across row groups; one
        pass over the ``trial`` column, a row group at a time."""
        if self._runs_cache is not None:
            return self._runs_cache
        pa = _pa()
        ids, starts, row0 = [], [], 0
        for rg in range(self._file.num_row_groups):
            col = self._file.read_row_group(rg, columns=["trial"]).column(0)
            if col.null_count:
                at = row0 + int(np.flatnonzero(col.is_null().to_numpy())[0])
                raise DatasetError(f"{self.path}: trial is null at row {at} (every sample needs its trial id)")
            try:
                tr = col.cast(pa.int64()).to_numpy()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DatasetError(f"{self.path}: the trial column must hold integers ({exc})") from exc
            if len(tr):
                at = np.flatnonzero(np.r_[True, tr[1:] != tr[:-1]])
                ids.append(tr[at])
                starts.append(at + row0)
            row0 += len(tr)
        if not ids:
            self._runs_cache = (np.zeros(0, np.int64),) * 3
            return self._runs_cache
        ids_a, starts_a = np.concatenate(ids), np.concatenate(starts)
        keep = np.r_[True, ids_a[1:] != ids_a[:-1]]  # a run that goes on into the next row group is one run
        ids_a, starts_a = ids_a[keep], starts_a[keep]
        self._runs_cache = (ids_a, starts_a, np.diff(np.r_[starts_a, row0]))
        return self._runs_cache

    def iter_parts(self, columns: Iterable[str] | None = None) -> Iterator:
        """Whole trials, a row group at a time (see the class docstring)."""
        ids, starts, lengths = self._runs()
        if len(np.unique(ids)) != len(ids):
            table = self._complete(self._grouped())
            yield table.select(list(columns)) if columns is not None else table
            return
        pa = _pa()
        ends = starts + lengths  # each trial's end row, increasing: the places a part may end
        pending: list = []  # rows read but not yet yielded: the start of a trial that goes on
        row0 = first = 0  # the file rows of the first pending row and of the next row group's first
        for rg in range(self._file.num_row_groups):
            table = self._file.read_row_group(rg)
            k = int(np.searchsorted(ends, first + table.num_rows, side="right"))
            keep = (int(ends[k - 1]) if k else 0) - first  # this row group's rows that close whole trials
            first += table.num_rows
            if keep <= 0:
                pending.append(table)
                continue
            pieces = pending + [table.slice(0, keep)]
            out = pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]
            pending = [table.slice(keep)] if keep < table.num_rows else []
            if "t" in self._names:
                self._check_times(out, row0)
            row0 += out.num_rows
            out = self._complete(out)
            yield out.select(list(columns)) if columns is not None else out

    def _check_times(self, table, row0: int) -> None:
        """Whole trials in file order: a sample time twice within a trial is a repeat (one pass
        over t; the exact look only where t does not increase)."""
        pa = _pa()
        tr = table["trial"].cast(pa.int64()).to_numpy()
        t = table["t"].cast(pa.float64()).to_numpy(zero_copy_only=False)
        same = tr[1:] == tr[:-1]
        suspect = np.flatnonzero(same & ~(t[1:] > t[:-1]))
        if not suspect.size:
            return
        starts = np.flatnonzero(np.r_[True, ~same])
        ends = np.r_[starts[1:], len(tr)]
        for run in np.unique(np.searchsorted(starts, suspect, side="right") - 1):
            s, e = int(starts[run]), int(ends[run])
            times = t[s:e][np.isfinite(t[s:e])]
            uniq, counts = np.unique(times, return_counts=True)
            if (counts > 1).any():
                raise DatasetError(f"{self.path}: trial {tr[s]} has the sample time t = {uniq[counts > 1][0]:g} more "
                                   f"than once (rows {row0 + s}-{row0 + e - 1}): its samples are repeated")

    def _grouped(self):
        """The whole file with each trial's rows put together (trials in order of first
        appearance; within a trial, file order, or ``t`` order when the file has ``t``).
        Conflicting pieces are an error naming the trial and where its pieces are."""
        ids, starts, lengths = self._runs()
        table = self._file.read()
        order = np.argsort(ids, kind="stable")  # runs grouped by trial id, pieces in file order
        sorted_ids = ids[order]
        first_of = np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]
        # trials in order of first appearance: the first run of each id, by its position in the file
        groups = np.split(order, np.flatnonzero(first_of)[1:])
        groups.sort(key=lambda g: starts[g[0]])
        has_t = "t" in self._names
        t_all = table["t"].cast(_pa().float64()).to_numpy(zero_copy_only=False) if has_t else None
        index = []
        for g in groups:
            rows = np.concatenate([np.arange(starts[i], starts[i] + lengths[i]) for i in g])
            if len(g) > 1:
                self._check_pieces(table, int(ids[g[0]]), [(int(starts[i]), int(lengths[i])) for i in g], t_all)
                if has_t:
                    rows = rows[np.argsort(t_all[rows], kind="stable")]
            index.append(rows)
        return table.take(np.concatenate(index)) if index else table

    def _check_pieces(self, table, trial: int, pieces: list[tuple[int, int]], t_all) -> None:
        """Pieces of one trial found apart in the file: refuse them if they are a repeat or disagree."""
        where = ", ".join(f"rows {s}-{s + n - 1}" for s, n in pieces[:4]) + (" ..." if len(pieces) > 4 else "")
        head = f"{self.path}: trial {trial} is in {len(pieces)} places ({where})"
        for col in ("condition", "setting_a", "setting_b", "f"):
            if col in self._names:
                values = {table[col][s].as_py() for s, _ in pieces}
                if len(values) > 1:
                    raise DatasetError(f"{head} with different {col} ({', '.join(sorted(map(str, values)))}): "
                                       "two trials share its id")
        if t_all is not None:
            t = np.concatenate([t_all[s:s + n] for s, n in pieces])
            uniq, counts = np.unique(t, return_counts=True)
            if (counts > 1).any():
                raise DatasetError(f"{head} with the sample time t = {uniq[counts > 1][0]:g} more than once: "
                                   "its samples are repeated")
        seen: dict[tuple, int] = {}
        for s, n in pieces:
            key = tuple(np.ascontiguousarray(table[c].slice(s, n).to_numpy(zero_copy_only=False)).tobytes()
                        for c in ("x_a", "x_b"))
            if key in seen:
                raise DatasetError(f"{head}; the pieces from row {seen[key]} and from row {s} are identical: "
                                   "its samples are repeated")
            seen[key] = s

    def read(self, columns: Iterable[str] | None = None):
        tables = list(self.iter_parts(columns))
        if not tables:
            table = self._complete(self._file.schema_arrow.empty_table())
            return table.select(list(columns)) if columns is not None else table
        return _pa().concat_tables(tables) if len(tables) > 1 else tables[0]

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
