"""Outages at night: the whole bench recovered, a safe state that is confirmed or named as not."""

from __future__ import annotations

import pytest


def test_a_frozen_simulated_server_answers_nothing_then_serves_what_it_held():
    import pyvisa

    from corrlab.instruments.sim.models import MODELS
    from corrlab.instruments.sim.server import SimServer
    from corrlab.instruments.sim.state import BenchState, StaticWorld

    state = BenchState()
    with SimServer(MODELS["LakeShore336"](state, StaticWorld(state)), name="thermal") as server:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(server.resource, read_termination="\r\n", write_termination="\n", timeout=200)
        assert inst.query("*IDN?").startswith("LSCI")
        server.faults.freeze(0.6)
        with pytest.raises(pyvisa.errors.VisaIOError):
            inst.query("*IDN?")
        other = rm.open_resource(server.resource, read_termination="\r\n", write_termination="\n", timeout=1000)
        assert other.query("*IDN?").startswith("LSCI")  # accepted during the freeze, answered at the thaw
        assert server.stats.snapshot()["held"] >= 2
        inst.close(), other.close()
        rm.close()
