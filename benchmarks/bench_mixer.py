"""CPU a monitored call's mixing costs: ``python -m benchmarks.bench_mixer``.

Times what :class:`~minicc.switch.media.mixer.MixBridge` does every 20 ms for one supervised
call: decode each party's G.711 frame, mix for every listener the relay does not serve
directly (N-1 mixing) and encode each mix. The UDP sends are not included. Prints
microseconds per tick and the share of one core that is, per monitored call.
"""

from __future__ import annotations

import argparse
import math
import time
from array import array

from minicc.switch.media.mixer import (
    AGENT,
    CALLER,
    SUPERVISOR,
    MixMode,
    decode,
    encode,
    mix_for_listeners,
    supervisor_routing,
)

_DIRECT = {CALLER: AGENT, AGENT: CALLER}


def tick_cost(mode: MixMode, ticks: int) -> float:
    """Seconds of CPU per 20 ms tick in ``mode``."""
    tone = [round(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(160)]
    frame = encode(array("h", tone), "PCMU")
    routing = supervisor_routing(mode)
    mixed = {p: s for p, s in routing.items() if s != {_DIRECT.get(p)}}
    start = time.process_time()
    for _ in range(ticks):
        frames = {p: decode(frame, "PCMU") for p in (CALLER, AGENT, SUPERVISOR)}
        for samples in mix_for_listeners(frames, mixed).values():
            encode(samples, "PCMU")
    return (time.process_time() - start) / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=5000, help="20 ms ticks to time per mode")
    args = parser.parse_args()
    for mode in MixMode:
        cost = tick_cost(mode, args.ticks)
        print(
            f"{mode.value:8} {cost * 1e6:6.0f} us per 20 ms tick = "
            f"{cost / 0.02 * 100:.2f}% of a core per monitored call"
        )


if __name__ == "__main__":
    main()
