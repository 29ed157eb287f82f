"""Golden-model figures: GFT occupancy at the first insertion failure (the organisation the
hardware copies) and the model's speed over every capture. Written to ``build/bench/model.json``."""

import random
import statistics
import time

from sim.model.device import Device
from sim.model.gft import EntryState, GlobalFlowTable, TableFull
from sim.packets.capture import read_capture
from sim.randkeys import random_flow_key

from .common import PCAPS


def occupancy_at_first_failure(sets, seed=1):
    """Occupancy at the first insertion failure of the model GFT (default organisation, the
    hardware's) for ``sets`` random key sets and secrets: a list of fractions."""
    figures = []
    for n in range(sets):
        rng = random.Random(seed * 1000 + n)
        gft = GlobalFlowTable(secret=rng.randbytes(16))
        while True:
            try:
                gft.insert(random_flow_key(rng), fid=len(gft) + 1, state=EntryState.BOUND)
            except TableFull:
                break
        figures.append(gft.occupancy)
    return figures


def gft_model_occupancy(sets, seed=1):
    figures = occupancy_at_first_failure(sets, seed)
    gft = GlobalFlowTable()
    return {"config": {"buckets": gft.buckets, "ways": gft.ways, "stash": gft.stash,
                       "move_budget": gft.move_budget, "entries": gft.capacity},
            "key_sets": sets, "min": round(min(figures), 4),
            "median": round(statistics.median(figures), 4), "max": round(max(figures), 4)}


def model_speed(ingress="rr"):
    """Golden-model packets per second over every capture."""
    total_packets, total_s = 0, 0.0
    for capture in sorted(PCAPS.glob("*.pcap*")):
        packets = read_capture(capture)
        started = time.perf_counter()
        Device(slots=4, pps=4, ingress=ingress).run(packets)
        total_s += time.perf_counter() - started
        total_packets += len(packets)
    return {"captures": len(list(PCAPS.glob("*.pcap*"))), "packets": total_packets,
            "seconds": round(total_s, 2), "packets_per_s": round(total_packets / total_s)}



def run(quick):
    return {
        "gft_model_occupancy_at_first_failure": gft_model_occupancy(2 if quick else 10),
        "model_speed_rr": model_speed(),
    }
