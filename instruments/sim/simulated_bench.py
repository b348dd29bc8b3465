"""Start a whole simulated bench: one TCP server per role on 127.0.0.1, one world.

``SimulatedBench(config, seed).start()`` returns the VISA resource of every role
(``TCPIP0::127.0.0.1::<port>::SOCKET``); the same runner and drivers then talk to it as
to a LAN bench. Faults named in the bench file's ``[faults.<role>]`` tables are applied
to that role's server.
"""

from __future__ import annotations

from corrlab.errors import PlanError
from corrlab.instruments.benchfile import LOOPBACK, BenchConfig, resource_host, resource_port, socket_resource
from corrlab.instruments.sim.state import BenchState
from corrlab.instruments.sim.world_registry import make_world


class SimulatedBench:
    def __init__(self, config: BenchConfig, *, seed: int):
        if not config.simulated:
            raise PlanError("SimulatedBench needs a bench file with simulated = true")
        self.config = config
        self.seed = int(seed)
        self.state = BenchState()
        world_cfg = config.world
        self.world = make_world(self.state, kind=world_cfg.kind, seed=self.seed, params=world_cfg.params)
        self.servers: dict = {}

    def start(self) -> dict[str, str]:
        from corrlab.instruments.sim.models import MODELS
        from corrlab.instruments.sim.server import SimServer

        warm_up = getattr(self.world, "warm_up", None)
        if warm_up is not None:  # one-time work now, not inside the first timed query
            warm_up()
        try:
            for role, cfg in self.config.roles.items():
                port = 0
                if cfg.resource is not None:
                    host = resource_host(cfg.resource)
                    if host != LOOPBACK:
                        raise PlanError(f"roles.{role}: simulated instruments bind to {LOOPBACK} only; got {host!r}")
                    port = resource_port(cfg.resource) or 0
                model_cls = MODELS[cfg.driver]
                if cfg.driver == "SR830":
                    model = model_cls(self.state, self.world, side=role[-1])
                else:
                    model = model_cls(self.state, self.world)
                server = SimServer(model, host=LOOPBACK, port=port, name=role)
                faults = dict(self.config.faults.get(role) or {})
                stick = faults.pop("stick_temperature", None) if role == "thermal" else None
                if stick:
                    self.world.stick_temperature(**stick)
                if faults:
                    server.faults.configure(**faults)
                server.start()
                self.servers[role] = server
        except BaseException:
            self.stop()
            raise
        return {role: socket_resource(server.port) for role, server in self.servers.items()}

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
