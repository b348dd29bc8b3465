"""Reading the source formats: format detection, pymeasure's header, the text, HDF5 and npz readers.

A reader gives the source's ``columns``, yields its data in chunks (bounded memory) and says
where a 0-based data row is in the file (``where``, ``span``) for error messages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from corrlab.errors import DatasetError, PlanError

FORMATS = ("csv", "tsv", "pymeasure", "hdf5", "npz")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".h5": "hdf5", ".hdf5": "hdf5", ".npz": "npz"}


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
