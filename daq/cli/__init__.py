"""The ``corrlab`` command line: the top of the layers, the only place that imports them all.

``main`` (the console script) and ``cli`` (the click group) live in :mod:`.main`; each
subcommand group in its own module, imported only when it runs, so ``--help`` is quick.
"""

from corrlab.daq.cli.main import cli, main

__all__ = ["cli", "main"]
