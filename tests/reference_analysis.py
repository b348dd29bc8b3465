"""The analysis as it was before issue 18's speed-ups, kept as a reference path.

``tests/reference_intervals.py``, ``tests/reference_permutation.py`` and
``tests/reference_nosignalling.py`` are verbatim copies of ``analysis/intervals.py``,
``analysis/permutation.py`` and ``analysis/nosignalling.py`` at commit 26b02ec (before the
speed-ups): BCa intervals that gather every resample and rank it with
``scipy.stats.rankdata`` (``corrlab.analysis.mi.batched_mi``), the label permutation test
that scatters ranks back per column, and the no-signalling Anderson-Darling test whose
permutation p-value is ``scipy.stats.anderson_ksamp(method=PermutationMethod(...))``. :func:`use_reference` swaps them into the
modules the pipeline imports from, and runs the resampling tasks one after another, so
``analyze_dataset`` inside it computes what the old code computed. The equality tests
(``tests/test_speed.py``) and ``benchmarks/analysis_speed.py`` (``--path reference``) use it.
"""

from __future__ import annotations

import contextlib

from tests import reference_intervals, reference_nosignalling, reference_permutation

SWAPS = (
    ("corrlab.analysis.intervals", "mi_interval", reference_intervals.mi_interval),
    ("corrlab.analysis.intervals", "mi_difference_interval", reference_intervals.mi_difference_interval),
    ("corrlab.analysis.intervals", "bca_interval", reference_intervals.bca_interval),
    ("corrlab.analysis.permutation", "label_permutation_test", reference_permutation.label_permutation_test),
    ("corrlab.analysis.nosignalling", "no_signalling_test", reference_nosignalling.no_signalling_test),
)


@contextlib.contextmanager
def use_reference():
    """Within: the pipeline runs the reference algorithms, tasks one at a time."""
    import importlib

    from corrlab.analysis import pipeline

    saved = []
    try:
        for module, name, ref in SWAPS:
            mod = importlib.import_module(module)
            saved.append((mod, name, getattr(mod, name)))
            setattr(mod, name, ref)
        saved.append((pipeline, "_job_threads", pipeline._job_threads))
        pipeline._job_threads = lambda: 1
        yield
    finally:
        for mod, name, value in reversed(saved):
            setattr(mod, name, value)
