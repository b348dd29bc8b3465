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
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from corrlab.errors import DatasetError, PlanError
from corrlab.hashing import sha256_file
from corrlab.dataset import DatasetWriter, check_run_id

FORMATS = ("csv", "tsv", "pymeasure", "hdf5", "npz")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".h5": "hdf5", ".hdf5": "hdf5", ".npz": "npz"}
DESTINATIONS = ("trial", "condition", "setting_a", "setting_b", "f", "t", "x_a", "x_b", "y_a", "y_b")
REQUIRED = ("trial", "x_a", "x_b")
EXTRA = ("y_a", "y_b")
DEFAULTS = {"condition": "main", "setting_a": 0, "setting_b": 0, "f": True, "t": "sample index within the trial"}
FLOATS = ("t", "x_a", "x_b", "y_a", "y_b")
CHUNK_ROWS = 262_144  # rows read from the source at a time
PART_ROWS = 1_000_000  # a part is committed once it holds at least this many rows (whole trials)
PART_TRIALS = 1_000  # ... or this many trials (one row group per trial: parts of many tiny trials stay small)
_NA_TOKENS = {"", "nan", "-nan", "na", "n/a", "nan%", "null", "none", "<na>"}
_TRUE = {"true", "t", "1", "1.0", "yes", "y"}
_FALSE = {"false", "f", "0", "0.0", "no", "n"}
_UNIT = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[^()]*)\)\s*$")


def _conditions() -> tuple[str, ...]:
    from corrlab.protocols.config import CONDITIONS

    return tuple(CONDITIONS)


# ============================================================================ mapping


def parse_mapping(specs: str | Iterable[str] | None) -> dict[str, str]:
    """``"trial=shot,x_a=XA"`` (or several such strings) as ``{"trial": "shot", "x_a": "XA"}``."""
    if specs is None:
        return {}
    if isinstance(specs, str):
        specs = [specs]
    out: dict[str, str] = {}
    for spec in specs:
        for item in spec.split(","):
            if not item.strip():
                continue
            dst, sep, src = item.partition("=")
            dst, src = dst.strip(), src.strip()
            if not sep or not dst or not src:
                raise PlanError(f"--map: {item.strip()!r} is not DEST=SOURCE (e.g. trial=shot,x_a=XA)")
            out[dst] = src
    return check_mapping(out, source="--map")


def check_mapping(mapping: Mapping[str, str], *, source: str = "mapping") -> dict[str, str]:
    """Destination names must be dataset columns; source names non-empty strings."""
    out = {}
    for dst, src in mapping.items():
        if dst not in DESTINATIONS:
            raise PlanError(f"{source}: unknown dataset column {dst!r}; allowed: {', '.join(DESTINATIONS)}")
        if not isinstance(src, str) or not src:
            raise PlanError(f"{source}: {dst} must name a source column (a non-empty string), got {src!r}")
        out[dst] = src
    return out


def read_mapping_file(path: str | Path) -> dict[str, str]:
    """A small TOML file: a ``[map]`` table of ``dest = "source column"``."""
    from corrlab.config import read_toml

    data = read_toml(path, what="mapping")
    unknown = sorted(set(data) - {"map"})
    if unknown:
        raise PlanError(f"mapping file {path}: unknown key(s) {', '.join(unknown)}; expected a [map] table")
    table = data.get("map")
    if not isinstance(table, dict):
        raise PlanError(f"mapping file {path}: expected a [map] table of dest = \"source column\"")
    return check_mapping(table, source=f"mapping file {path}")


def detect_format(path: str | Path) -> str:
    """The format of ``path`` from its extension; a ``.csv`` with pymeasure's header is ``pymeasure``."""
    path = Path(path)
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise PlanError(f"cannot tell the format of {path.name} from its extension; "
                        f"give --format ({', '.join(FORMATS)})")
    if fmt == "csv" and path.is_file():
        comments, _ = _leading_comments(path)
        if _is_pymeasure(comments):
            return "pymeasure"
    return fmt


# ============================================================================ readers


def _leading_comments(path: Path) -> tuple[list[str], bool]:
    """The leading '#' lines of a text file (without their newline) and whether a line follows."""
    comments: list[str] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for line in fh:
                if line.startswith("#"):
                    comments.append(line.rstrip("\r\n"))
                    continue
                return comments, bool(line.strip())
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return comments, False


def _is_pymeasure(comments: list[str]) -> bool:
    body = [c[1:].strip() for c in comments]
    return any(b.startswith("Procedure:") for b in body) or "Data:" in body


def parse_pymeasure_header(comments: list[str]) -> dict:
    """pymeasure's commented header: procedure, parameters and metadata (values as written)."""
    out: dict = {"procedure": None, "parameters": {}, "metadata": {}}
    section = None
    for raw in comments:
        line = raw[1:]
        head = line.strip()
        if head.startswith("Procedure:"):
            out["procedure"] = head.partition(":")[2].strip().strip("<>")
        elif head in ("Parameters:", "Metadata:"):
            section = head[:-1].lower()
        elif head == "Data:":
            section = None
        elif line.startswith("\t") and section:
            key, sep, value = line[1:].partition(": ")
            out[section][key] = _unescape(value) if sep else ""
        elif head:
            out.setdefault("comments", []).append(head)
    return out


def _unescape(value: str) -> str:
    """pymeasure writes header values through ``unicode_escape``; undo it when that is safe."""
    if "\\" not in value:
        return value
    try:
        return value.encode("ascii").decode("unicode_escape")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class _Reader:
    """A source read in chunks: ``columns``, ``chunks(names)``, ``where(row)`` for messages."""

    format: str
    name: str
    columns: list[str]
    info: dict

    def chunks(self, names: list[str], text: set[str], chunk_rows: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        raise NotImplementedError

    def where(self, *rows: int) -> list[str]:
        """How a person finds 0-based data rows in the source: 'row 5'."""
        return [f"row {r + 1}" for r in rows]

    def span(self, first: int, last: int) -> str:
        """0-based data rows first..last as a person reads them: 'rows 1-40'."""
        return self.where(first)[0] if first == last else f"rows {first + 1}-{last + 1}"

    def close(self) -> None:
        pass


class _TextReader(_Reader):
    """CSV, TSV and pymeasure results, read with pandas in chunks."""

    def __init__(self, path: Path, fmt: str):
        import pandas as pd

        self.path, self.name, self.format = path, path.name, fmt
        self.sep = "\t" if fmt == "tsv" else ","
        if path.stat().st_size == 0:
            raise DatasetError(f"{self.name} is empty")
        comments, has_header = _leading_comments(path)
        self.skip = len(comments)
        self.info = {}
        if fmt == "pymeasure":
            if not _is_pymeasure(comments):
                raise DatasetError(f"{self.name} has no pymeasure header (lines '#Procedure: <...>', "
                                   "'#Parameters:', '#Data:' before the column labels)")
            self.info["header"] = parse_pymeasure_header(comments)
        elif comments:
            self.info["comments"] = [c[1:].strip() for c in comments]
        if not has_header:
            after = " after its comment lines" if comments else ""
            raise DatasetError(f"{self.name} is empty: no column header{after}")
        try:
            cols = pd.read_csv(path, **self._options(), nrows=0).columns
        except (ValueError, pd.errors.ParserError) as exc:
            raise DatasetError(f"{self.name} cannot be read as {fmt}: {_one_line(exc)}") from exc
        self.columns = [str(c) for c in cols]

    def _options(self) -> dict:
        return dict(sep=self.sep, skiprows=self.skip, header=0, skipinitialspace=True, encoding="utf-8-sig",
                    engine="c")

    def chunks(self, names, text, chunk_rows):
        import pandas as pd

        dtype = {n: str for n in names if n in text}
        try:
            reader = pd.read_csv(self.path, **self._options(), usecols=list(names), dtype=dtype or None,
                                 chunksize=chunk_rows)
            with reader:
                for chunk in reader:
                    row0 = int(chunk.index[0]) if len(chunk) else 0
                    yield row0, {n: chunk[n].to_numpy() for n in names}
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise DatasetError(f"{self.name} cannot be read as {self.format}: {_one_line(exc)}") from exc

    def where(self, *rows):
        """'data row N (line L)': N counts data rows (blank lines skipped), L is the file line."""
        want = sorted(set(rows))
        lines: dict[int, int] = {}
        if want:
            count, k = -1, 0
            with open(self.path, encoding="utf-8-sig", errors="replace", newline="") as fh:
                for lineno, line in enumerate(fh, 1):
                    if lineno <= self.skip + 1 or not line.strip():
                        continue  # comments, the column labels, blank lines
                    count += 1
                    while k < len(want) and want[k] == count:
                        lines[count] = lineno
                        k += 1
                    if k == len(want):
                        break
        return [f"data row {r + 1}" + (f" (line {lines[r]})" if r in lines else "") for r in rows]

    def span(self, first, last):
        if first == last:
            return self.where(first)[0]
        a, b = self.where(first, last)
        la, lb = re.search(r"line (\d+)", a), re.search(r"line (\d+)", b)
        lines = f" (lines {la.group(1)}-{lb.group(1)})" if la and lb else ""
        return f"data rows {first + 1}-{last + 1}{lines}"


class _ArrayReader(_Reader):
    """Columns as 1-D arrays of equal length (HDF5 datasets, npz arrays), sliced in chunks."""

    def _get(self, name: str, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def _check(self, names: list[str], shapes: dict[str, tuple]) -> int:
        for n in names:
            if len(shapes[n]) != 1:
                raise DatasetError(f"{self.name}: column {n!r} has shape {shapes[n]}; columns must be 1-D")
        lengths = {n: shapes[n][0] for n in names}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{n} {k}" for n, k in lengths.items())
            raise DatasetError(f"{self.name}: columns have different lengths ({listed})")
        n = next(iter(lengths.values()), 0)
        if n == 0:
            raise DatasetError(f"{self.name} is empty: its columns hold no rows")
        return n

    def _shape(self, name: str) -> tuple:
        raise NotImplementedError

    def chunks(self, names, text, chunk_rows):
        n = self._check(names, {k: self._shape(k) for k in names})
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            yield start, {k: self._get(k, start, stop) for k in names}


class _HDF5Reader(_ArrayReader):
    def __init__(self, path: Path, group: str | None):
        try:
            import h5py
        except ImportError as exc:  # pragma: no cover - h5py is a test dependency
            raise DatasetError("reading HDF5 needs h5py: pip install 'corrlab[import]'") from exc
        self.path, self.name, self.format = path, path.name, "hdf5"
        if path.stat().st_size == 0:
            raise DatasetError(f"{self.name} is empty")
        try:
            self._file = h5py.File(path, "r")
        except OSError as exc:
            raise DatasetError(f"{self.name} cannot be read as HDF5: {_one_line(exc)}") from exc
        where = group or "/"
        node = self._file.get(where)
        if not isinstance(node, h5py.Group):
            groups = ["/"]
            self._file.visititems(lambda k, v: groups.append("/" + k) if isinstance(v, h5py.Group) else None)
            self.close()
            raise DatasetError(f"{self.name} has no group {where!r}; it has: {_listing(groups)}")
        self._group = node
        self._h5py = h5py
        self.columns = [k for k, v in node.items() if isinstance(v, h5py.Dataset)]
        if not self.columns:
            self.close()
            raise DatasetError(f"{self.name}: group {where!r} holds no datasets (columns)")
        self.info = {"group": node.name}
        attrs = _jsonable_attrs(node.attrs)
        if attrs:
            self.info["attributes"] = attrs

    def _shape(self, name):
        return tuple(self._group[name].shape)

    def _get(self, name, start, stop):
        ds = self._group[name]
        if self._h5py.check_string_dtype(ds.dtype) is not None:
            return np.asarray(ds.asstr()[start:stop], dtype=object)
        return ds[start:stop]

    def close(self):
        self._file.close()


class _NpzReader(_ArrayReader):
    def __init__(self, path: Path):
        import zipfile

        self.path, self.name, self.format = path, path.name, "npz"
        if path.stat().st_size == 0:
            raise DatasetError(f"{self.name} is empty")
        try:
            self._npz = np.load(path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{self.name} cannot be read as npz: {_one_line(exc)}") from exc
        if not hasattr(self._npz, "files"):
            raise DatasetError(f"{self.name} is a single .npy array, not an .npz archive of named columns")
        self.columns = list(self._npz.files)
        if not self.columns:
            raise DatasetError(f"{self.name} is empty: it holds no arrays")
        self.info = {}
        self._cache: dict[str, np.ndarray] = {}

    def _array(self, name):
        if name not in self._cache:
            try:
                self._cache[name] = self._npz[name]
            except ValueError as exc:  # object arrays need pickle, which is never allowed
                raise DatasetError(f"{self.name}: array {name!r} cannot be read without pickle "
                                   f"(store text as a fixed-width string array): {_one_line(exc)}") from exc
        return self._cache[name]

    def _shape(self, name):
        return self._array(name).shape

    def _get(self, name, start, stop):
        arr = self._array(name)[start:stop]
        if arr.dtype.kind == "S":
            arr = np.char.decode(arr, "utf-8").astype(object)
        return arr

    def close(self):
        self._cache.clear()
        self._npz.close()


def _open_reader(path: Path, fmt: str, group: str | None) -> _Reader:
    if group is not None and fmt != "hdf5":
        raise PlanError(f"--group applies to HDF5 sources only, not {fmt}")
    if fmt in ("csv", "tsv", "pymeasure"):
        return _TextReader(path, fmt)
    if fmt == "hdf5":
        return _HDF5Reader(path, group)
    return _NpzReader(path)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _listing(names: list[str], limit: int = 30) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "") if names else "(nothing)"


def _jsonable_attrs(attrs) -> dict:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            continue
        if isinstance(value, (str, int, float, bool)):
            out[str(key)] = value
    return out


# ============================================================================ columns


def resolve_mapping(mapping: Mapping[str, str], columns: list[str], *, source: str) -> dict[str, str]:
    """Dataset column -> source column: the mapping, then same-named columns for the rest."""
    out: dict[str, str] = {}
    for dst, src in mapping.items():
        if src not in columns:
            raise DatasetError(f"{source} has no column {src!r} (mapped to {dst}); it has: {_listing(columns)}")
        out[dst] = src
    for dst in DESTINATIONS:
        if dst in out:
            continue
        if dst in columns:
            out[dst] = dst
            continue
        loose = [c for c in columns if _bare(c) == dst]
        if len(loose) == 1:
            out[dst] = loose[0]
        elif dst in REQUIRED:
            raise DatasetError(f"{source} has no column {dst!r} (needed for {dst}; map one with --map {dst}=NAME); "
                               f"it has: {_listing(columns)}")
    return {d: out[d] for d in DESTINATIONS if d in out}


def _bare(column: str) -> str:
    """'X A (V)' -> 'x_a': the name without its unit, lower case, spaces and '-' as '_'."""
    m = _UNIT.match(column)
    return re.sub(r"[\s-]+", "_", (m.group("name") if m else column).strip().lower())


@dataclass
class _Columns:
    """One chunk converted to the dataset's types (absent optional columns are None)."""

    row0: int
    trial: np.ndarray
    condition: np.ndarray | None = None  # int8 codes into the allowed conditions
    setting_a: np.ndarray | None = None
    setting_b: np.ndarray | None = None
    f: np.ndarray | None = None
    floats: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.trial)

    def keys(self) -> list[str]:
        return ["trial"] + [k for k in ("condition", "setting_a", "setting_b", "f") if getattr(self, k) is not None]

    def concat(self, other: "_Columns") -> "_Columns":
        out = _Columns(self.row0, np.concatenate([self.trial, other.trial]))
        for k in ("condition", "setting_a", "setting_b", "f"):
            a = getattr(self, k)
            if a is not None:
                setattr(out, k, np.concatenate([a, getattr(other, k)]))
        out.floats = {k: np.concatenate([v, other.floats[k]]) for k, v in self.floats.items()}
        return out

    def tail(self, start: int) -> "_Columns":
        out = _Columns(self.row0 + start, self.trial[start:].copy())
        for k in ("condition", "setting_a", "setting_b", "f"):
            a = getattr(self, k)
            if a is not None:
                setattr(out, k, a[start:].copy())
        out.floats = {k: v[start:].copy() for k, v in self.floats.items()}
        return out


class _Converter:
    """Raw source arrays -> typed columns, with one-line errors that name column and row."""

    def __init__(self, reader: _Reader, mapping: dict[str, str]):
        self.reader = reader
        self.mapping = mapping
        self.conditions = _conditions()

    def _label(self, dst: str) -> str:
        src = self.mapping[dst]
        return f"column {src!r}" + (f" ({dst})" if src != dst else "")

    def _fail(self, what: str, row0: int, i: int, hint: str = "") -> None:
        where = self.reader.where(row0 + i)[0]
        raise DatasetError(f"{self.reader.name}: {what} at {where}" + (f"; {hint}" if hint else ""))

    def numbers(self, dst: str, raw: np.ndarray, row0: int) -> np.ndarray:
        if raw.dtype.kind in "iu":
            return raw.astype(np.float64) if dst in FLOATS else raw
        if raw.dtype.kind == "b":
            return raw.astype(np.float64) if dst in FLOATS else raw.astype(np.int64)
        if raw.dtype.kind == "f":
            values = raw.astype(np.float64, copy=False)
        else:
            import pandas as pd

            values = pd.to_numeric(pd.Series(raw, copy=False), errors="coerce")
            values = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            i = int(bad[0])
            cell = raw[i]
            if _is_na(cell):
                self._fail(f"NaN or empty value in {self._label(dst)}", row0, i, f"{dst} must be a finite number")
            if np.isinf(values[i]):
                self._fail(f"infinite value {_show(cell)} in {self._label(dst)}", row0, i,
                           f"{dst} must be a finite number")
            self._fail(f"non-numeric value {_show(cell)} in {self._label(dst)}", row0, i)
        return values

    def integers(self, dst: str, raw: np.ndarray, row0: int, allowed: tuple[int, ...] | None = None) -> np.ndarray:
        values = self.numbers(dst, raw, row0)
        if values.dtype.kind == "f":
            frac = np.flatnonzero(values != np.round(values))
            if len(frac):
                i = int(frac[0])
                self._fail(f"value {_show(raw[i])} in {self._label(dst)}", row0, i, f"{dst} must be an integer")
        values = values.astype(np.int64)
        if allowed is not None:
            out = np.flatnonzero(~np.isin(values, allowed))
            if len(out):
                i = int(out[0])
                self._fail(f"value {_show(raw[i])} in {self._label(dst)}", row0, i,
                           f"allowed: {', '.join(map(str, allowed))}")
        return values

    def condition(self, raw: np.ndarray, row0: int) -> np.ndarray:
        import pandas as pd

        if raw.dtype.kind == "S":
            raw = np.char.decode(raw, "utf-8").astype(object)
        codes = pd.Index(list(self.conditions)).get_indexer(pd.Series(raw, dtype=object, copy=False))
        bad = np.flatnonzero(codes < 0)
        if len(bad):
            i = int(bad[0])
            cell = raw[i]
            shown = "empty condition" if _is_na(cell) or str(cell).strip() == "" else f"unknown condition {_show(cell)}"
            self._fail(f"{shown} in {self._label('condition')}", row0, i, f"allowed: {', '.join(self.conditions)}")
        return codes.astype(np.int8)

    def flags(self, raw: np.ndarray, row0: int) -> np.ndarray:
        if raw.dtype.kind == "b":
            return raw
        if raw.dtype.kind in "iuf":
            return self.integers("f", raw, row0, allowed=(0, 1)).astype(bool)
        import pandas as pd

        text = pd.Series(raw, dtype=object, copy=False).astype(str).str.strip().str.lower()
        true, false = text.isin(_TRUE).to_numpy(), text.isin(_FALSE).to_numpy()
        bad = np.flatnonzero(~(true | false))
        if len(bad):
            i = int(bad[0])
            self._fail(f"value {_show(raw[i])} in {self._label('f')}", row0, i, "allowed: true/false or 1/0")
        return true

    def __call__(self, row0: int, raw: dict[str, np.ndarray]) -> _Columns:
        src = self.mapping
        out = _Columns(row0, self.integers("trial", raw[src["trial"]], row0))
        if "condition" in src:
            out.condition = self.condition(raw[src["condition"]], row0)
        for s in ("setting_a", "setting_b"):
            if s in src:
                setattr(out, s, self.integers(s, raw[src[s]], row0, allowed=(0, 1)).astype(np.int8))
        if "f" in src:
            out.f = self.flags(raw[src["f"]], row0)
        out.floats = {k: self.numbers(k, raw[src[k]], row0) for k in FLOATS if k in src}
        return out


def _is_na(cell) -> bool:
    if cell is None:
        return True
    if isinstance(cell, (float, np.floating)):
        return bool(np.isnan(cell))
    if isinstance(cell, (str, bytes)):
        text = cell.decode("utf-8", "replace") if isinstance(cell, bytes) else cell
        return text.strip().lower() in _NA_TOKENS
    try:
        import pandas as pd

        return bool(pd.isna(cell))
    except (TypeError, ValueError):
        return False


def _show(cell) -> str:
    if isinstance(cell, (np.generic,)):
        cell = cell.item()
    text = repr(cell)
    return text if len(text) <= 40 else text[:37] + "..."


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
