"""Estimators, tests, the evidence ladder and reports.

Analysis reads datasets through :mod:`corrlab.dataset` only; it never imports ``instruments``
or ``protocols``, so a dataset recorded years ago, or imported from elsewhere, is analysed
by the same code. Heavy imports (scipy, pandas, statsmodels, matplotlib) happen inside the
modules that need them.
"""

if __name__ != "corrlab.analysis":  # this folder put on sys.path by hand (e.g. from the checkout's root)
    raise ImportError("the package is corrlab.analysis: import corrlab.analysis, never 'analysis' (corrlab installs one top-level name)")
