"""corrlab: acquisition and hypothesis testing for correlations between two oscillators.

The import packages are layered: ``instruments`` <- ``protocols`` <- ``daq``;
``analysis`` reads datasets through ``corrlab.dataset`` only. This small package holds what
every layer shares: the version and the exception hierarchy (:mod:`corrlab.errors`).
"""

__version__ = "0.1.0"
