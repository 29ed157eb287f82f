"""The hardware flow hash: keys per cycle and latency. Written to ``build/bench/flowhash.json``."""

import random

from amaranth.sim import Simulator

from hdl.hash.siphash import FlowHash
from sim.flowhash import DEFAULT_SECRET, flow_hash
from sim.randkeys import random_flow_key


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
    return {"keys": keys, "stages_per_round": dut.stages_per_round,
            "latency_cycles": result["latency"],
            "keys_per_cycle": round(keys / result["cycles"], 4)}



def run(quick):
    return flowhash_pipeline(64 if quick else 512)
