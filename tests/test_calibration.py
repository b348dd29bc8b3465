"""Calibration of the whole analysis on replicate runs of the simulated bench (slow).

Under the independent world every null holds: each test's rejection rate and the rate of
``protocol-specific`` verdicts must stay within alpha plus Monte-Carlo error over the
replicates. Under the drift world a slow temperature drift reaches both sides: main's
trials *are* dependent (a common cause across trials, which the dependence rung rightly
sees when the drift is strong enough), but the controls are interleaved in randomized
blocks, so the control tests, the no-signalling tests and the protocol-specific verdict
must keep their level. Within-trial AR(1) autocorrelation is in every world here (the
oscillators are Ornstein-Uhlenbeck processes); tests/test_permutation.py checks the
sample-level nulls on AR(1) channels directly.

``CORRLAB_CAL_REPLICATES`` (default 200) sets the number of replicates per world.
"""

from __future__ import annotations

import os

import pytest

from tests.calibration import rates, run_replicates, upper_limit

N = int(os.environ.get("CORRLAB_CAL_REPLICATES", "200"))


def _check(r: dict, *, skip: tuple[str, ...] = ()) -> None:
    limit = upper_limit(r["n"])
    for name, t in r["tests"].items():
        if name in skip:
            continue
        assert t["rate"] <= upper_limit(t["n"]), f"{name} rejects at {t['rate']:.3f} over {t['n']} replicates"
    assert r["levels"]["protocol-specific"] <= limit
    assert r["levels"]["nonclassical"] == 0.0
    assert r["signalling"] <= limit


@pytest.mark.slow
def test_independent_world_every_test_holds_its_level():
    r = rates(run_replicates("independent", N))
    print(r)
    _check(r)


@pytest.mark.slow
def test_drift_world_controls_and_no_signalling_hold_their_level():
    r = rates(run_replicates("drift", N))
    print(r)
    _check(r, skip=("dependence",))
