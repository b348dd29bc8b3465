"""The world a bench file names: ``WORLD_KINDS`` and ``make_world``.

The registry sits above the worlds: the oscillator worlds (:mod:`corrlab.instruments.sim.world`)
and the spin worlds (:mod:`corrlab.instruments.sim.spin_worlds`, built on the oscillator world)
never import it, so the worlds' import graph has one direction.
"""

from __future__ import annotations

from corrlab.errors import PlanError
from corrlab.instruments.sim.spin_worlds import make_spin_world
from corrlab.instruments.sim.state import BenchState
from corrlab.instruments.sim.world import GaussianWorld, OscillatorWorld, WernerWorld

__all__ = ["WORLD_KINDS", "make_world"]

WORLD_KINDS = ("independent", "common_cause", "drift", "leak", "gaussian", "werner", "spin_lattice", "ensembles")


def make_world(state: BenchState, *, kind: str, seed: int, params: dict | None = None):
    """Build the world a bench file names."""
    if kind == "gaussian":
        return GaussianWorld(state, seed=seed, params=params)
    if kind == "werner":
        return WernerWorld(state, seed=seed, params=params)
    if kind in ("spin_lattice", "ensembles"):  # instruments/sim/spin_worlds.py
        return make_spin_world(state, kind=kind, seed=seed, params=params)
    if kind in OscillatorWorld.PRESETS:
        return OscillatorWorld(state, seed=seed, kind=kind, params=params)
    raise PlanError(f"world.kind {kind!r} is unknown; kinds: {', '.join(WORLD_KINDS)}")
