"""Importing data recorded elsewhere into a v1 dataset (``corrlab import``).

Sources: CSV and TSV files, pymeasure results files (a CSV with a commented header:
``#Procedure: <...>``, ``#Parameters:``, optional ``#Metadata:``, ``#Data:``, then the
column labels), HDF5 files (one 1-D dataset per column, in the root or in a group) and
NumPy ``.npz`` archives (one 1-D array per column). The format comes from the extension
(``.csv``, ``.tsv``/``.tab``, ``.h5``/``.hdf5``, ``.npz``) unless given; a ``.csv`` whose
commented header is pymeasure's is read as ``pymeasure`` and the header (procedure,
parameters, metadata, column units) is kept in the manifest.

A mapping names the source column of each dataset column (``{"trial": "shot", ...}``).
Unmapped columns are looked up by their own name (``x_a``), then, if exactly one matches,
by their name without a unit suffix, case-insensitively, spaces as '_' (``X A (V)``).
``trial``, ``x_a`` and ``x_b`` are required; the others default as for a single Parquet
file (DESIGN.md): ``condition`` "main", ``setting_a``/``setting_b`` 0, ``f`` true, ``t``
the sample index within the trial (``t`` from the source is taken as given). ``y_a`` and
``y_b`` are carried as extra columns when present. Trial-level values (condition,
settings, f) must be constant within a trial, and a trial's samples consecutive.

The source is read in chunks (bounded memory) and written in parts of whole trials
(``part_rows`` bounds a part). The dataset is built in a hidden staging folder next to its
destination and renamed into place only when complete, so a bad row found late leaves no
half dataset behind. The manifest records ``import``: the source's name, sha256 and size,
the format, the resolved mapping and the defaults used; there is no protocol, so the
analysis uses the default plan (not pre-registered).

Every problem with the input is one :class:`~corrlab.errors.DatasetError` line naming the
file, the column, the row (1-based data row, and the file line for text formats), the
trial or the value, and what is allowed; a bad mapping or option is a
:class:`~corrlab.errors.PlanError`.

The package: :mod:`.sources` reads the formats, :mod:`.columns` maps and converts the
columns, :mod:`.assemble` cuts them into trials and writes the dataset (:func:`import_dataset`).
"""

from corrlab.daq.importer.assemble import (
    CHUNK_ROWS,
    DEFAULTS,
    EXTRA,
    PART_ROWS,
    PART_TRIALS,
    default_run_id,
    import_dataset,
)
from corrlab.daq.importer.columns import (
    DESTINATIONS,
    FLOATS,
    REQUIRED,
    check_mapping,
    parse_mapping,
    read_mapping_file,
    resolve_mapping,
)
from corrlab.daq.importer.sources import EXTENSIONS, FORMATS, detect_format, parse_pymeasure_header

__all__ = [
    "CHUNK_ROWS",
    "DEFAULTS",
    "DESTINATIONS",
    "EXTENSIONS",
    "EXTRA",
    "FLOATS",
    "FORMATS",
    "PART_ROWS",
    "PART_TRIALS",
    "REQUIRED",
    "check_mapping",
    "default_run_id",
    "detect_format",
    "import_dataset",
    "parse_mapping",
    "parse_pymeasure_header",
    "read_mapping_file",
    "resolve_mapping",
]
