"""Calibration of the anytime e-processes (issue 17, slow): on null worlds, monitored after every
trial up to the maximum, the fraction of runs whose evidence ever reaches 1/alpha is at most
alpha plus Monte-Carlo error (one-sided binomial check, p > 0.001, 200 replicates per world);
the family's closed e-Holm keeps the chance that any null member is decided at most alpha;
a variance-only signalling world is caught; a protocol-specific world decides."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from tests.anytime_worlds import ALPHA, WORLDS, crossing_counts, is_null, is_true, monitor_run

REPLICATES = 200
TRIALS = 600  # the maximum: 100 blocks of 6 (3 main, one of each control)
TAIL = 1e-3


def binomial_p(k: int, n: int) -> float:
    return float(binomtest(k, n, ALPHA, alternative="greater").pvalue)


@pytest.mark.slow
@pytest.mark.parametrize("world", sorted(WORLDS))
def test_null_hypotheses_cross_at_most_alpha(world):
    counts = crossing_counts(world, REPLICATES, TRIALS)
    checked = 0
    for key, k in counts["raw"].items():
        if not is_null(world, key):
            continue
        checked += 1
        p = binomial_p(k, REPLICATES)
        assert p > TAIL, f"{world}: {key} crossed 1/alpha in {k}/{REPLICATES} runs (binomial p {p:.2g})"
    assert checked >= 3


@pytest.mark.slow
@pytest.mark.parametrize("world", ["independent", "one_side_serial", "local_bell"])
def test_closed_e_holm_keeps_the_family_wise_error(world):
    """Every member of the evidence family is null here (dependence too, in the first two): the
    chance that any is decided after adjustment is at most alpha."""
    any_decided = 0
    for r in range(REPLICATES):
        snap = monitor_run(world, 5000 + r, TRIALS).snapshot()
        fam = snap["families"]["evidence"]
        nulls = [k for k in fam if is_null(world, k)]
        assert nulls
        any_decided += any(snap["hypotheses"][k]["crossed_at_adjusted"] is not None for k in nulls)
    p = binomial_p(any_decided, REPLICATES)
    assert p > TAIL, f"{world}: some null member decided in {any_decided}/{REPLICATES} runs"


@pytest.mark.slow
def test_true_effects_are_found():
    n = 100
    for world, key, least, trials in (("variance_signalling", "no_signalling:B:main", 0.9, TRIALS),
                                      ("protocol_specific", "dependence", 0.9, TRIALS),
                                      # the scale-free label bet needs more: one control in six trials
                                      ("protocol_specific", "controls:control:perturb_C", 0.5, 3 * TRIALS)):
        assert is_true(world, key)
        counts = crossing_counts(world, n, trials, first_seed=9000)
        assert counts["raw"][key] >= least * n, f"{world}: {key} decided in {counts['raw'][key]}/{n}"
