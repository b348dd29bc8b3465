"""Dialect models: each simulated instrument's command language, over the shared bench state.

A model turns one message (a line without its terminator) into the bytes to send back::

    model.handle("SNAP? 1,2")  ->  [b"1.000000e-03,-2.000000e-03\\n"]

Conventions common to every model, as the real instruments behave with the unmodified
pymeasure 0.16 drivers:

* A message is split on ``;`` outside quotes; empty fragments (the SR830 driver sends
  ``AUXV1,1.500000;``) are ignored. Replies of several queries in one message are joined
  with ``;`` and end with one terminator (``terminator``: ``\\n``, LakeShore ``\\r\\n``).
  Binary replies (SR830 ``TRCB?``, digitizer blocks) go out as produced.
* Grammar, as the manuals give it: headers in any case; SCPI short and long forms
  (``FREQ``/``FREQuency``), optional nodes and numeric suffixes (``SOUR1:FREQ`` = ``FREQ``);
  after ``;`` a SCPI header without a leading ``:`` continues at the previous command's level
  (``SOUR2:FREQ 1e3;VOLT 1`` sets SOUR2:VOLT); whitespace where the manuals allow it (the SR830
  and LakeShore take ``SRAT ?``, ``DDEF ? 1``, ``KRDG ? A``); the ESP300 also ends a message on
  a CR alone (its native terminator).
* Settings live in the :class:`~corrlab.instruments.sim.state.BenchState` (``registers`` dicts for
  the settings the physics does not need), so a getter returns what a setter stored, also
  across reconnects. Measured values come from the World.
* An unknown command or query is never answered and never silent: it is appended to
  ``model.unrecognised``, logged (warning, logger ``corrlab.instruments.sim.models``) and
  reported the way the instrument reports it: SCPI models queue ``-113,"Undefined
  header"`` for ``SYST:ERR?``; the SR830 and the LakeShore set the command-error bit
  (CME, 32) of ``*ESR?``; the ESP300 queues error 6 (COMMAND DOES NOT EXIST) for ``TE?``.
  A client that sends an unknown *query* waits for its timeout, as with the real unit.
* A bad parameter is refused (the setting keeps its value) and reported: SCPI ``-222``
  (out of range), ``-224`` (illegal value), ``-104`` (data type), ``-109`` (missing);
  SR830 / LakeShore execution-error bit (EXE, 16) of ``*ESR?``; ESP300 error 7.

Model specifics (what is simulated and what is not) are in each class's docstring. One module per
instrument: ``base`` (shared machinery, status registers), ``scpi`` (SCPI machinery), ``lockin``
(SR830), ``generator`` (Agilent 33500), ``thermal`` (LakeShore 336), ``motion`` (ESP300),
``switch`` (Keithley 2750), ``digitizer`` (the fast digitizer); this package holds the registry.
"""

from __future__ import annotations

from corrlab.instruments.sim.models.base import Binary, CommandError, DialectModel, Unrecognised, split_args, split_commands
from corrlab.instruments.sim.models.digitizer import FastDigitizerModel
from corrlab.instruments.sim.models.generator import Agilent33500Model
from corrlab.instruments.sim.models.lockin import SR830Model
from corrlab.instruments.sim.models.motion import ESP300Model
from corrlab.instruments.sim.models.scpi import Header, ScpiModel
from corrlab.instruments.sim.models.switch import Keithley2750Model
from corrlab.instruments.sim.models.thermal import LakeShore336Model

MODELS: dict[str, type[DialectModel]] = {
    "SR830": SR830Model,
    "Agilent33500": Agilent33500Model,
    "LakeShore336": LakeShore336Model,
    "ESP300": ESP300Model,
    "Keithley2750": Keithley2750Model,
    "FastDigitizer": FastDigitizerModel,
}

TERMINATORS: dict[str, bytes] = {name: cls.terminator for name, cls in MODELS.items()}

__all__ = [
    "MODELS", "TERMINATORS", "DialectModel", "ScpiModel", "Binary", "CommandError", "Unrecognised", "Header",
    "SR830Model", "Agilent33500Model", "LakeShore336Model", "ESP300Model", "Keithley2750Model",
    "FastDigitizerModel", "split_commands", "split_args",
]
