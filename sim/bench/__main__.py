"""``python -m sim.bench [--quick]``: run every benchmark that exists and write build/bench/*.json."""

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from amaranth.sim import Simulator

from hdl.hash.siphash import FlowHash
from sim.flowhash import DEFAULT_SECRET, flow_hash
from sim.model.device import Device
from sim.model.gft import EntryState, GlobalFlowTable, TableFull
from sim.packets.capture import read_capture
from sim.randkeys import random_flow_key

OUT = Path(__file__).resolve().parents[2] / "build" / "bench"
PCAPS = Path(__file__).resolve().parents[3] / "shared" / "pcaps"


def gft_model_occupancy(sets, seed=1):
    """Occupancy at the first insertion failure of the model GFT (default organisation)."""
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
    return {"config": {"buckets": gft.buckets, "ways": gft.ways, "stash": gft.stash,
                       "move_budget": gft.move_budget, "entries": gft.capacity},
            "key_sets": sets, "min": round(min(figures), 4),
            "median": round(statistics.median(figures), 4), "max": round(max(figures), 4)}


def flowhash_pipeline(keys=512):
    """Keys per cycle and latency of the hardware hash, measured in Amaranth's simulator:
    ``keys`` back-to-back keys, output always ready."""
    dut = FlowHash()
    rng = random.Random(7)
    inputs = [random_flow_key(rng) for _ in range(keys)]
    result = {}

    async def bench(ctx):
        ctx.set(dut.secret, int.from_bytes(DEFAULT_SECRET, "little"))
        ctx.set(dut.o_stream.ready, 1)
        cycle, first_in, first_out, got = 0, None, None, []
        pending = list(inputs)
        while len(got) < keys:
            if pending:
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.payload.key.as_value(), pending[0].pack())
            else:
                ctx.set(dut.i_stream.valid, 0)
            took = pending and ctx.get(dut.i_stream.ready)
            out = ctx.get(dut.o_stream.valid)
            if out:
                got.append(ctx.get(dut.o_stream.payload.hash))
                first_out = cycle if first_out is None else first_out
            if took:
                first_in = cycle if first_in is None else first_in
                pending.pop(0)
            await ctx.tick()
            cycle += 1
        result.update(cycles=cycle - first_out, latency=first_out - first_in, hashes=got)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert result["hashes"] == [flow_hash(DEFAULT_SECRET, k) for k in inputs], "hash mismatch"
    return {"keys": keys, "latency_cycles": result["latency"],
            "keys_per_cycle": round(keys / result["cycles"], 4)}


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


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer key sets (a smoke run)")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    figures = {
        "gft_model_occupancy_at_first_failure": gft_model_occupancy(2 if args.quick else 10),
        "flowhash": flowhash_pipeline(64 if args.quick else 512),
        "model_speed_rr": model_speed(),
    }
    (OUT / "model.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"wrote {OUT / 'model.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
