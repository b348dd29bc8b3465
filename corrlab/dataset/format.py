"""The corrlab dataset, format version 1: constants, schema and durable writes.

A dataset is a folder ``<root>/<run_id>/``::

    manifest.json        what the run was, its status and its committed parts (with sha256)
    parts/part-NNNNNN.parquet   samples in long form, whole trials only
    trials.parquet       one row per committed trial: condition, settings, f, layer records
    events.jsonl         the step journal

Durability: a file is serialised in memory, written to a temporary name, fsynced and
renamed (:func:`atomic_write_bytes`); the manifest is the commit record.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable


from corrlab.errors import PlanError

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
