"""The one exception hierarchy of corrlab.

Every error corrlab raises on purpose derives from :class:`CorrlabError`, so a caller can
catch the family and print ``str(exc)``: the message is one line that names the problem
(the field, the file, the instrument role) and, where there is a choice, the allowed
values. Causes are chained (``raise ... from exc``) so the traceback keeps the original.

::

    CorrlabError
    ├── InstrumentError        an instrument answered wrongly or could not be reached
    │   └── InstrumentTimeout  an instrument did not answer within its timeout
    ├── ProtocolAborted        a protocol stopped on purpose (failed check, operator, signal)
    ├── DatasetError           a dataset on disk is missing, malformed or corrupt
    └── PlanError              a protocol, bench, campaign or analysis plan is invalid
"""

from __future__ import annotations


class CorrlabError(Exception):
    """Base of every error corrlab raises on purpose."""


class InstrumentError(CorrlabError):
    """An instrument could not be reached, refused a command or replied with garbage.

    ``role`` names the bench role (``readout_a``, ``thermal``...) when known.
    """

    def __init__(self, message: str, *, role: str | None = None):
        super().__init__(message)
        self.role = role


class InstrumentTimeout(InstrumentError):
    """An instrument did not answer within its timeout."""


class ProtocolAborted(CorrlabError):
    """A protocol run stopped before its end: an operator, a signal or a failed check.

    ``status`` is the dataset status this stop leaves (``interrupted`` or ``aborted``).
    """

    def __init__(self, message: str, *, status: str = "aborted"):
        super().__init__(message)
        self.status = status


class DatasetError(CorrlabError):
    """A dataset is missing, not in the v1 format, or fails its checksums."""


class PlanError(CorrlabError):
    """A protocol, bench, campaign or analysis plan file is invalid."""


__all__ = [
    "CorrlabError",
    "InstrumentError",
    "InstrumentTimeout",
    "ProtocolAborted",
    "DatasetError",
    "PlanError",
]
