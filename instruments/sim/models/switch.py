"""The Keithley 2750 switch system (role ``switch``).
"""

from __future__ import annotations

from corrlab.instruments.sim.models.base import (
    CommandError, Unrecognised, _illegal, _out_of_range, _to_int, registers_of,
)
from corrlab.instruments.sim.models.scpi import Call, ScpiModel


def _channel_list(text: str) -> list[int]:
    """``(@101)``, ``(@101,102)``, ``(@101:105,110)`` -> channel numbers."""
    t = text.strip()
    if not (t.startswith("(@") and t.endswith(")")):
        raise CommandError(-141, f"Invalid character data;channel list {text!r} must look like (@101,102)")
    out: list[int] = []
    body = t[2:-1].strip()
    if not body:
        return out
    for item in body.split(","):
        lo_t, _, hi_t = item.strip().partition(":")
        lo = _to_int(lo_t, "channel")
        hi = _to_int(hi_t, "channel") if hi_t else lo
        if hi < lo:
            raise _illegal(f"channel range {item.strip()!r}")
        out.extend(range(lo, hi + 1))
    for ch in out:
        if not (1 <= ch // 100 <= 5 and 1 <= ch % 100 <= 40):
            raise _out_of_range(f"channel {ch} (slots 1-5, channels 01-40)")
    return out


class Keithley2750Model(ScpiModel):
    """Keithley 2750 switch system (channel 101 = mediator, 102 = environment link).

    Serves ``:ROUTe:MULTiple:CLOSe``/``:ROUTe:MULTiple:OPEN`` with channel lists
    (``(@101)``, ``(@101,102)``, ``(@101:105)``), ``:ROUTe:CLOSe`` (closes the list and
    opens every other channel, as the 2750 does), ``:ROUTe:OPEN`` (list),
    ``:ROUTe:OPEN:ALL``, ``:ROUTe:CLOSe?`` / ``:ROUTe:MULTiple:CLOSe?`` answered
    ``(@101,102)`` in ascending order, ``(@)`` when none is closed, and the SCPI common
    commands; ``*RST`` opens every channel.
    """

    name = "Keithley2750"
    terminator = b"\n"
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2750,SIM0001,A02  /A02"

    def scpi_registers(self) -> dict[str, str]:
        return registers_of(self.state.relay)

    def reset(self) -> None:
        self.state.relay.closed.clear()

    def _closed_reply(self) -> str:
        return "(@" + ",".join(str(c) for c in sorted(self.state.relay.closed)) + ")"

    def build_table(self) -> None:
        self.add("ROUTe MULTiple CLOSe", self._multiple_close)
        self.add("ROUTe MULTiple OPEN", self._multiple_open)
        self.add("ROUTe CLOSe", self._close)
        self.add("ROUTe OPEN", self._open)
        self.add("ROUTe OPEN ALL", self._open_all)

    def _list(self, call: Call) -> list[int]:
        if not call.args:
            raise CommandError(-109, "Missing parameter;channel list")
        return _channel_list(",".join(call.args))

    def _multiple_close(self, call: Call):
        if call.query:
            return self._closed_reply()
        self.state.relay.closed.update(self._list(call))

    def _multiple_open(self, call: Call):
        if call.query:
            raise Unrecognised()
        self.state.relay.closed.difference_update(self._list(call))

    def _close(self, call: Call):
        if call.query:
            return self._closed_reply()
        channels = self._list(call)
        self.state.relay.closed.clear()
        self.state.relay.closed.update(channels)

    def _open(self, call: Call):
        if call.query:
            raise Unrecognised()
        self.state.relay.closed.difference_update(self._list(call))

    def _open_all(self, call: Call):
        if call.query:
            raise Unrecognised()
        call.none()
        self.state.relay.closed.clear()
