"""Mapping and converting columns: the --map / mapping file, resolving dataset columns to source
columns, and converting raw source chunks to the dataset's types (one-line errors naming the
column and the row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from corrlab.errors import DatasetError, PlanError
from corrlab.daq.importer.sources import _Reader, _listing

DESTINATIONS = ("trial", "condition", "setting_a", "setting_b", "f", "t", "x_a", "x_b", "y_a", "y_b")
REQUIRED = ("trial", "x_a", "x_b")
FLOATS = ("t", "x_a", "x_b", "y_a", "y_b")
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
