"""What the hub and the dataset tail share (so neither imports the other)."""

from __future__ import annotations

import json
from pathlib import Path

STEPS = ("control", "prepare", "isolate", "stabilize", "fix", "measure")
TRACE_TRIALS = 3  # latest trials whose X_A(t), X_B(t) are shown


def event_key(entry: dict) -> tuple:
    """What identifies a journal entry (to drop one read twice)."""
    return (entry.get("time_utc"), entry.get("step"), entry.get("trial"), entry.get("outcome"), entry.get("message"))


def read_json(path: Path) -> dict | None:
    """A JSON file, or None when it is missing or being replaced."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
