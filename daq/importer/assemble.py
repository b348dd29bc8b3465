"""Assembling converted chunks into whole trials and writing the dataset: ``import_dataset``.

See :mod:`corrlab.daq.importer` for the whole import (sources, mapping, defaults, errors).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from corrlab.errors import DatasetError, PlanError
from corrlab.hashing import sha256_file
from corrlab.dataset import DatasetWriter, check_run_id
from corrlab.daq.importer.columns import _UNIT, _Columns, _Converter, check_mapping, resolve_mapping
from corrlab.daq.importer.sources import FORMATS, _open_reader, _Reader, detect_format

EXTRA = ("y_a", "y_b")
DEFAULTS = {"condition": "main", "setting_a": 0, "setting_b": 0, "f": True, "t": "sample index within the trial"}
CHUNK_ROWS = 262_144  # rows read from the source at a time
PART_ROWS = 1_000_000  # a part is committed once it holds at least this many rows (whole trials)
PART_TRIALS = 1_000  # ... or this many trials (one row group per trial: parts of many tiny trials stay small)


# ============================================================================ import


class _Assembler:
    """Cuts converted chunks into whole trials, checks them, and feeds the writer."""

    def __init__(self, writer: DatasetWriter, reader: _Reader, mapping: dict[str, str], conditions,
                 part_rows: int, part_trials: int):
        self.writer, self.reader, self.mapping = writer, reader, mapping
        self.conditions = conditions
        self.part_rows, self.part_trials = part_rows, part_trials
        self.extras = tuple(k for k in EXTRA if k in mapping)
        self.carry: _Columns | None = None
        self.seen: dict[int, tuple[int, int]] = {}  # trial -> (first, last) 0-based data rows
        self.pending_rows = 0
        self.rows = 0
        self.trials = 0

    def feed(self, cols: _Columns) -> None:
        if len(cols) == 0:
            return
        if self.carry is not None:
            cols = self.carry.concat(cols)
            self.carry = None
        tr = cols.trial
        same = tr[1:] == tr[:-1]
        for key, what in (("condition", "condition"), ("setting_a", "setting_a"), ("setting_b", "setting_b"),
                          ("f", "f value")):
            values = getattr(cols, key)
            if values is None:
                continue
            clash = np.flatnonzero(same & (values[1:] != values[:-1]))
            if len(clash):
                i = int(clash[0])
                a, b = self.reader.where(cols.row0 + i, cols.row0 + i + 1)
                va, vb = self._show(key, values[i]), self._show(key, values[i + 1])
                raise DatasetError(f"{self.reader.name}: trial {int(tr[i])} has {what} {va} at {a} but {vb} at {b}; "
                                   f"a trial has one {what}")
        starts = np.flatnonzero(np.r_[True, ~same])
        ends = np.r_[starts[1:], len(tr)]
        last = len(starts) - 1
        for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
            trial = int(tr[s])
            if trial in self.seen:
                first, end = self.seen[trial]
                raise DatasetError(f"{self.reader.name}: trial {trial} is split across the file: "
                                   f"{self.reader.span(first, end)}, then again from "
                                   f"{self.reader.where(cols.row0 + s)[0]}; a trial's samples must be consecutive")
            if k == last:
                self.carry = cols.tail(s)  # may continue in the next chunk
            else:
                self._add(cols, s, e)

    def finish(self) -> None:
        if self.carry is not None and len(self.carry):
            self._add(self.carry, 0, len(self.carry))
            self.carry = None

    def _show(self, key, value) -> str:
        if key == "condition":
            return repr(self.conditions[int(value)])
        return repr(bool(value)) if key == "f" else str(int(value))

    def _add(self, cols: _Columns, s: int, e: int) -> None:
        trial = int(cols.trial[s])
        self.seen[trial] = (cols.row0 + s, cols.row0 + e - 1)
        cond = cols.condition
        record = {
            "trial": trial,
            "condition": DEFAULTS["condition"] if cond is None else self.conditions[int(cond[s])],
            "block": 0,
            "setting_a": int(cols.setting_a[s]) if cols.setting_a is not None else DEFAULTS["setting_a"],
            "setting_b": int(cols.setting_b[s]) if cols.setting_b is not None else DEFAULTS["setting_b"],
            "f": bool(cols.f[s]) if cols.f is not None else DEFAULTS["f"],
            "start_utc": None,
            "source_row": cols.row0 + s + 1,
        }
        samples = {k: v[s:e] for k, v in cols.floats.items()}
        if "t" not in samples:
            samples["t"] = np.arange(e - s, dtype=np.float64)
        self.writer.add_trial(record, samples)
        self.pending_rows += e - s
        self.rows += e - s
        self.trials += 1
        if self.pending_rows >= self.part_rows or self.writer.pending_trials >= self.part_trials:
            self.writer.commit()
            self.pending_rows = 0


def default_run_id(source: str | Path) -> str:
    """A run id from the source's file name: unsafe characters become '_'."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem).strip("._-")
    stem = re.sub(r"\.{2,}", ".", stem)[:128]
    return stem or "import"


def import_dataset(
    source: str | Path,
    to: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    format: str | None = None,  # noqa: A002 - the user-facing name
    run_id: str | None = None,
    group: str | None = None,
    vacuum_variance: tuple[float, float] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    part_rows: int = PART_ROWS,
    part_trials: int = PART_TRIALS,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Import ``source`` into a new complete v1 dataset ``to/<run_id>``; return its path.

    ``mapping`` maps dataset columns to source columns (``{"trial": "shot"}``); ``format``
    is one of :data:`FORMATS` (default: from the extension); ``run_id`` defaults to the
    source's file name; ``group`` is the HDF5 group that holds the columns (default: root);
    ``vacuum_variance=(va, vb)`` records the calibration of the quadrature columns.
    ``progress(rows)`` is called after every chunk with the rows read so far. The
    manifest's ``import`` object says what was imported (rows, trials, mapping, defaults).
    """
    source, to = Path(source), Path(to)
    if not source.exists():
        raise DatasetError(f"{source} does not exist")
    if not source.is_file():
        raise DatasetError(f"{source} is not a file")
    fmt = format or detect_format(source)
    if fmt not in FORMATS:
        raise PlanError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if min(chunk_rows, part_rows, part_trials) < 1:
        raise PlanError("chunk_rows, part_rows and part_trials must be at least 1")
    given = check_mapping(dict(mapping or {}))
    run_id = check_run_id(run_id if run_id is not None else default_run_id(source))
    calibration = None
    if vacuum_variance is not None:
        va, vb = (float(v) for v in vacuum_variance)
        if not (va > 0 and vb > 0):
            raise PlanError("vacuum_variance must be two positive numbers (side A, side B)")
        calibration = {"vacuum_variance": {"a": va, "b": vb}}
    dest = to / run_id
    if dest.exists():
        raise DatasetError(f"dataset {dest} already exists; refusing to write over it (choose another --run-id)")
    digest = sha256_file(source)
    size = source.stat().st_size

    reader = _open_reader(source, fmt, group)
    staging = writer = None
    try:
        resolved = resolve_mapping(given, reader.columns, source=reader.name)
        info = {
            "source": source.name,
            "source_sha256": digest,
            "source_bytes": size,
            "format": fmt,
            "mapping": resolved,
            "defaults": {k: v for k, v in DEFAULTS.items() if k not in resolved},
        }
        info.update(reader.info)
        if fmt == "pymeasure":
            units = {d: m.group("unit") for d, s in resolved.items() if (m := _UNIT.match(s))}
            if units:
                info["units"] = units
        to.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{run_id}.importing-", dir=to))
        extras = tuple(k for k in EXTRA if k in resolved)
        writer = DatasetWriter.create(
            staging, run_id, protocol={}, bench={}, protocol_sha256=None, plan_sha256=None, rng_seed=0,
            instruments={}, calibration=calibration, extra_columns=extras,
            extra={"rng_seed": None, "import": info},
        )
        writer.event("import", "started", f"from {source.name} ({fmt})")
        convert = _Converter(reader, resolved)
        assembler = _Assembler(writer, reader, resolved, convert.conditions, part_rows, part_trials)
        names = list(dict.fromkeys(resolved.values()))
        text = {resolved[k] for k in ("condition", "f") if k in resolved}
        for row0, raw in reader.chunks(names, text, chunk_rows):
            assembler.feed(convert(row0, raw))
            if progress is not None:
                progress(assembler.rows + (len(assembler.carry) if assembler.carry is not None else 0))
        assembler.finish()
        if assembler.rows == 0:
            raise DatasetError(f"{reader.name} is empty: a header but no data rows")
        info.update(rows=assembler.rows, trials=assembler.trials)
        writer.event("import", "complete", f"{assembler.rows} rows, {assembler.trials} trials")
        writer.close("complete")
        writer = None
        if dest.exists():
            raise DatasetError(f"dataset {dest} appeared during the import; refusing to write over it")
        os.rename(staging / run_id, dest)
        os.rmdir(staging)
        staging = None
    finally:
        reader.close()
        if writer is not None:
            writer.discard_pending()
            try:
                writer.close("aborted", reason="import failed")
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return dest
