"""The fast digitizer (role ``digitizer``).
"""

from __future__ import annotations

import numpy as np

from corrlab.instruments.sim.models.base import (
    Binary, CommandError, Unrecognised, _bad_data, _illegal, _out_of_range, _to_int, log, registers_of, reset_dataclass,
)
from corrlab.instruments.sim.models.scpi import Call, ScpiModel, _keyword, _number


DIGITIZER_MAX_POINTS = 1 << 23  # points per channel
DIGITIZER_MAX_TAG = 2**31 - 1


class FastDigitizerModel(ScpiModel):
    """The fast digitizer, in the dialect documented in ``corrlab.instruments.drivers.digitizer``.

    ``INIT`` takes one record at once from ``world.acquire()`` (float32, shape (channels,
    points)) and stamps it with the record tag; writing ``RECord:TAG`` calls the world's
    ``begin_record(tag)`` when it has one (the trial starts afresh there). Blocks are sent
    as ``#<n><len>`` + little-endian float32 + ``\\n`` without copying the record.
    """

    name = "FastDigitizer"
    terminator = b"\n"
    idn = "CORRLAB,FD2,SIM0001,1.0"

    def scpi_registers(self) -> dict[str, str]:
        return registers_of(self.state.digitizer)

    def reset(self) -> None:
        reset_dataclass(self.state.digitizer)

    @property
    def d(self):
        return self.state.digitizer

    def build_table(self) -> None:
        self.add("[SENSe] SRATe", self._srate)
        self.add("[SENSe] RECord LENGth", self._length)
        self.add("[SENSe] CHANnels", self._channels)
        self.add("[SENSe] RECord TAG", self._tag)
        self.add("FORMat [DATA]", self._format)
        self.add("FORMat BORDer", self._border)
        self.add("INITiate [IMMediate]", self._init)
        self.add("ABORt", self._abort)
        self.add("ACQuire STATe", self._acq_state)
        self.add("FETCh DATA", self._fetch)
        self.add("FETCh DATA ALL", self._fetch_all)
        self.add("FETCh TAG", lambda call: self._record_attr(call, "RECORD_TAG"))
        self.add("FETCh POINts", lambda call: self._record_attr(call, "RECORD_POINTS"))
        self.add("FETCh CHANnels", lambda call: self._record_attr(call, "RECORD_CHANNELS"))

    def _srate(self, call: Call):
        if call.query:
            return repr(float(self.d.sample_rate))
        self.d.sample_rate = _number(call.one("SRAT"), "SRAT", 1.0, 100e6)

    def _length(self, call: Call):
        if call.query:
            return str(self.d.points)
        value = _number(call.one("RECord:LENGth"), "RECord:LENGth", 1, DIGITIZER_MAX_POINTS)
        if not float(value).is_integer():
            raise _bad_data(f"RECord:LENGth {call.args[0]!r} is not an integer")
        self.d.points = int(value)

    def _channels(self, call: Call):
        if call.query:
            return str(self.d.channels)
        value = _to_int(call.one("CHANnels"), "CHANnels")
        if value not in (2, 4):
            raise _illegal(f"CHANnels {value}; allowed: 2, 4")
        self.d.channels = value

    def _tag(self, call: Call):
        if call.query:
            return str(self.d.tag)
        value = _to_int(call.one("RECord:TAG"), "RECord:TAG")
        if not 0 <= value <= DIGITIZER_MAX_TAG:
            raise _out_of_range(f"RECord:TAG {value} not in [0, {DIGITIZER_MAX_TAG}]")
        self.d.tag = value
        begin = getattr(self.world, "begin_record", None)
        if begin is not None:
            begin(value)

    def _format(self, call: Call):
        if call.query:
            return "REAL,32"
        if [a.upper() for a in call.args] not in (["REAL", "32"], ["REAL"]):
            raise _illegal(f"FORMat {','.join(call.args)!r}; allowed: REAL,32")

    def _border(self, call: Call):
        if call.query:
            return "SWAP"
        if _keyword(call.one("FORMat:BORDer"), ("SWAPped", "NORMal"), "FORMat:BORDer") != "SWAP":
            raise _illegal("FORMat:BORDer NORMal is not supported; blocks are little-endian (SWAPped)")

    def _init(self, call: Call):
        if call.query:
            raise Unrecognised()
        call.none()
        regs = self.scpi_registers()
        regs["ACQ_STATE"] = "ARMED"
        d = self.d
        record = np.asarray(self.world.acquire())
        expected = (d.channels, d.points)
        if record.shape != expected:
            regs["ACQ_STATE"] = "IDLE"
            log.error("%s: the world returned a record of shape %s, expected %s", self.name, record.shape, expected)
            raise CommandError(-240, f"Hardware error;record shape {record.shape} is not {expected}")
        d.record = np.ascontiguousarray(record, dtype="<f4")
        regs["RECORD_TAG"] = str(d.tag)
        regs["RECORD_POINTS"] = str(d.points)
        regs["RECORD_CHANNELS"] = str(d.channels)
        regs["ACQ_STATE"] = "DONE"

    def _abort(self, call: Call):
        if call.query:
            raise Unrecognised()
        self.scpi_registers()["ACQ_STATE"] = "IDLE"

    def _acq_state(self, call: Call):
        if not call.query:
            raise Unrecognised()
        return self.scpi_registers().get("ACQ_STATE", "IDLE")

    def _record_attr(self, call: Call, key: str):
        if not call.query:
            raise Unrecognised()
        value = self.scpi_registers().get(key)
        if value is None or self.d.record is None:
            self.record_error(CommandError(-230, "Data corrupt or stale;no record (INIT first)"), call.text)
            return "-1"
        return value

    @staticmethod
    def _block(payload: memoryview) -> Binary:
        digits = str(payload.nbytes)
        return Binary(f"#{len(digits)}{digits}".encode("ascii"), payload, b"\n")

    def _empty_block(self, err: CommandError, call: Call) -> Binary:
        self.record_error(err, call.text)
        return Binary(b"#10\n")

    def _fetch(self, call: Call):
        if not call.query:
            raise Unrecognised()
        record = self.d.record
        if record is None:
            return self._empty_block(CommandError(-230, "Data corrupt or stale;no record (INIT first)"), call)
        try:
            ch = _to_int(call.one("FETCh:DATA?"), "channel")
        except CommandError as err:
            return self._empty_block(err, call)
        if not 1 <= ch <= record.shape[0]:
            return self._empty_block(_out_of_range(f"channel {ch} not in the record (1-{record.shape[0]})"), call)
        return self._block(memoryview(record[ch - 1]).cast("B"))

    def _fetch_all(self, call: Call):
        if not call.query:
            raise Unrecognised()
        record = self.d.record
        if record is None:
            return self._empty_block(CommandError(-230, "Data corrupt or stale;no record (INIT first)"), call)
        return self._block(memoryview(record).cast("B"))
