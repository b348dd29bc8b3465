"""Block reads from the fast digitizer over loopback through pyvisa-py: MB/s by read path.

    python benchmarks/bench_digitizer.py            # 4 MB blocks, 20 reads per path
    python benchmarks/bench_digitizer.py --quick    # 5 reads per path
    python benchmarks/bench_digitizer.py --mb 16 --in-process

The simulated digitizer runs in a child process by default (an instrument is another
machine; in-process it shares the GIL with the client). Its record is random float32 noise,
so about one payload byte in 256 is 0x0A, the termination character. Paths, all reading the
same ``FETC:DATA? 1`` block and checked bit for bit against the record:

* fast: ``FastDigitizer.fetch`` (termination off for the block; payload read with
  ``recv_into`` into one buffer under pyvisa-py)
* fast, via read_bytes: the driver's portable path for other VISA libraries (termination
  off, one pyvisa ``read_bytes`` call for the payload)
* termination on: the same framing read with the termination character left enabled
  (pyvisa-py returns at every 0x0A byte; ``read_bytes`` loops until the count is reached)
* pyvisa query_binary_values: pyvisa's stock IEEE block reader (termination on)

The goal is >= 500 MB/s for the fast path on 4 MB blocks.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_MB_S = 500.0


def _make_world(state, seed: int):
    from corrlab.instruments.sim.state import StaticWorld

    class NoiseWorld(StaticWorld):
        def acquire(self):
            d = self.state.digitizer
            return np.random.default_rng(seed).standard_normal((d.channels, d.points)).astype(np.float32)

    return NoiseWorld(state)


def _serve(conn, seed: int) -> None:
    """Child process: run the digitizer server until told to stop."""
    from corrlab.instruments.sim.models import FastDigitizerModel
    from corrlab.instruments.sim.server import SimServer
    from corrlab.instruments.sim.state import BenchState

    state = BenchState()
    server = SimServer(FastDigitizerModel(state, _make_world(state, seed)), name="digitizer").start()
    conn.send(server.port)
    conn.recv()  # anything: stop
    server.stop()


def _reference(points: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, points)).astype(np.float32)[0]


def _timed(fn, repeats: int, expected: bytes) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = fn()
        times.append(time.perf_counter() - t0)
        if data.tobytes() != expected:
            raise SystemExit("benchmark: a read path returned wrong data")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 reads per path instead of 20")
    parser.add_argument("--mb", type=float, default=4.0, help="block size in MB (10^6 bytes rounded to float32s)")
    parser.add_argument("--repeats", type=int, default=None, help="reads per path")
    parser.add_argument("--in-process", action="store_true", help="serve from this process (shares the GIL)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 20)
    points = int(args.mb * 2**20) // 4
    seed = 1234

    import pyvisa

    import corrlab.instruments.drivers.digitizer as digitizer_module
    from corrlab.instruments.drivers.digitizer import FastDigitizer

    child = None
    if args.in_process:
        from corrlab.instruments.sim.models import FastDigitizerModel
        from corrlab.instruments.sim.server import SimServer
        from corrlab.instruments.sim.state import BenchState

        state = BenchState()
        server = SimServer(FastDigitizerModel(state, _make_world(state, seed)), name="digitizer").start()
        port = server.port
    else:
        parent_conn, child_conn = mp.Pipe()
        child = mp.get_context("spawn").Process(target=_serve, args=(child_conn, seed), daemon=True)
        child.start()
        port = parent_conn.recv()
        server = None

    dig = FastDigitizer(f"TCPIP0::127.0.0.1::{port}::SOCKET", visa_library="@py", read_termination="\n",
                        timeout=20_000)
    try:
        dig.record_length = points
        dig.channels = 2
        dig.arm()
        dig.wait_complete()
        expected = _reference(points, seed).tobytes()
        nbytes = len(expected)
        conn = dig.adapter.connection

        def termination_on():
            dig.write("FETC:DATA? 1")
            head = conn.read_bytes(2)
            n = int(head[1:2])
            length = int(conn.read_bytes(n))
            payload = conn.read_bytes(length)
            conn.read_bytes(1)
            return np.frombuffer(payload, dtype="<f4")

        def stock_pyvisa():
            return conn.query_binary_values("FETC:DATA? 1", datatype="f", container=np.array)

        def fast_read_bytes():
            saved = digitizer_module._socket_reader
            digitizer_module._socket_reader = lambda conn: None  # the portable path: read_bytes
            try:
                return dig.fetch(1)
            finally:
                digitizer_module._socket_reader = saved

        paths = [
            ("fast (driver)", lambda: dig.fetch(1)),
            ("fast, via read_bytes", fast_read_bytes),
            ("termination on", termination_on),
            ("pyvisa query_binary_values", stock_pyvisa),
        ]
        lf = expected.count(b"\n")
        print(f"block: {nbytes / 1e6:.2f} MB ({points} float32), {lf} LF bytes in the payload; "
              f"server {'in-process' if args.in_process else 'in a child process'}; {repeats} reads per path; "
              f"pyvisa {pyvisa.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")
        results = {}
        for name, fn in paths:
            _timed(fn, 1, expected)  # warm-up
            times = _timed(fn, repeats, expected)
            med = statistics.median(times)
            results[name] = nbytes / med / 1e6
            print(f"  {name:28s} median {med * 1e3:8.2f} ms   {nbytes / med / 1e6:8.1f} MB/s   "
                  f"(best {nbytes / min(times) / 1e6:8.1f} MB/s)")
        fast, default = results["fast (driver)"], results["termination on"]
        print(f"ratio fast / termination on: {fast / default:.1f}x; "
              f"fast / pyvisa stock: {fast / results['pyvisa query_binary_values']:.1f}x")
        verdict = "meets" if fast >= GOAL_MB_S else "MISSES"
        print(f"goal >= {GOAL_MB_S:.0f} MB/s: fast path {verdict} it ({fast:.0f} MB/s)")
    finally:
        dig.adapter.close()
        if server is not None:
            server.stop()
        if child is not None:
            parent_conn.send("stop")
            child.join(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
