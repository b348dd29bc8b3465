"""Estimators, tests, the evidence ladder and reports.

Analysis reads datasets through :mod:`daq.dataset` only; it never imports ``instruments``
or ``protocols``, so a dataset recorded years ago, or imported from elsewhere, is analysed
by the same code. Heavy imports (scipy, pandas, statsmodels, matplotlib) happen inside the
modules that need them.
"""
