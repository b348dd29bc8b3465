"""The dataset format, version 1 (DESIGN.md): the contract between acquisition and analysis.

It sits below both: ``corrlab.daq`` writes datasets through it and ``corrlab.analysis`` reads
them through it; neither imports the other. ``format`` holds the constants, schema and
durable writes, ``writer`` the :class:`DatasetWriter`, ``reader`` the :class:`Dataset` and the
single-file :class:`ParquetSource`.
"""

from corrlab.dataset.format import (
    CORE_COLUMNS, FLOAT_COLUMNS, FORMAT, FORMAT_VERSION, REQUIRED_MANIFEST_FIELDS, RUN_ID_PATTERN,
    STATUSES, TRIAL_CORE, atomic_write_bytes, atomic_write_json, check_run_id, parquet_bytes,
    sample_schema, software_versions, utc_now,
)
from corrlab.dataset.reader import Dataset, ParquetSource, VerifyReport, open_source
from corrlab.dataset.writer import DatasetWriter, trials_table

__all__ = [
    "CORE_COLUMNS", "FLOAT_COLUMNS", "FORMAT", "FORMAT_VERSION", "REQUIRED_MANIFEST_FIELDS",
    "RUN_ID_PATTERN", "STATUSES", "TRIAL_CORE", "Dataset", "DatasetWriter", "ParquetSource",
    "VerifyReport", "atomic_write_bytes", "atomic_write_json", "check_run_id", "open_source",
    "parquet_bytes", "sample_schema", "software_versions", "trials_table", "utc_now",
]
