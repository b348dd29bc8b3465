"""Reading configuration files (protocol, bench, campaign): TOML as data, never code.

Files are parsed with :mod:`tomllib` and validated with pydantic models that forbid
unknown fields; every problem becomes one :class:`~corrlab.errors.PlanError` line that
names the file, the field path and what was wrong.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from corrlab.errors import PlanError

T = TypeVar("T")


def format_validation_error(exc) -> str:
    """Pydantic's first error as one line: 'field.path: message (got value)'."""
    errors = exc.errors()
    err = errors[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    got = err.get("input")
    got_txt = ""
    if got is not None and not isinstance(got, dict) and len(repr(got)) < 80:
        got_txt = f" (got {got!r})"
    more = len(errors) - 1
    return f"{loc}: {msg}{got_txt}" + (f"; and {more} more problem(s)" if more else "")


def read_toml(path: str | Path, *, what: str) -> dict:
    path = Path(path)
    if not path.exists():
        raise PlanError(f"{what} file {path} does not exist")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{what} file {path} is not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{what} file {path} cannot be read: {exc}") from exc


def validate(model: type[T], data: dict, *, source: str) -> T:
    from pydantic import ValidationError

    try:
        return model.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise PlanError(f"{source}: {format_validation_error(exc)}") from exc


def load_model(model: type[T], path: str | Path, *, what: str) -> T:
    return validate(model, read_toml(path, what=what), source=f"{what} file {path}")
