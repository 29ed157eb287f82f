"""The hardware GFT (:class:`hdl.gft.table.GlobalFlowTable`, default organisation: 1024
buckets x 4 ways + stash 8, dual-stack keys) in Amaranth's simulator, and its synthesis
figures. Written to ``build/bench/gft.json``.

One simulation per random key set, with the response stream always ready and no idle cycles:
RESERVEs of fresh keys fill the table; at 50 %, 90 % and 95 % load a batch of LOOKUPs (half of
them of stored keys, half of absent ones) runs back to back; the fill then goes on until the
first RESERVE answered FULL. The model (:mod:`sim.model.gft`) predicts which key that is, so
the request list is fixed in advance, and the whole run is checked afterwards by
:class:`sim.model.gft_ops.Scoreboard`: a figure from a run the model disagrees with is an
error, not a figure.

Figures
-------
lookups_per_cycle
    LOOKUPs answered per clock, from the first to the last answer of the batch at 95 % load
    (and ``..._by_load`` at each load): the rate the table sustains. The same batch counted
    at the request side (``lookups_taken_per_cycle_by_load``) is lower at high load because
    its first requests queue behind the last inserts of the fill, some of which relocate.
inserts_per_cycle_by_load
    Inserts per clock over the last 2 % of capacity inserted before each load point (this
    includes the relocation slow path, which the high loads need more often).
lookup_latency_cycles, insert_latency_cycles
    From a request's transfer to its response's, on an idle table (the fast path).
    ``max_insert_cycles_seen`` is the longest RESERVE in the fills, request to response:
    relocations plus the time spent queued behind earlier ones.
occupancy_at_first_failure
    Live entries / (buckets x ways + stash) when the first FULL is answered: min, median and
    each set's value, from the hardware runs; ``model_*`` repeats it over more key sets with
    the model alone, which the scoreboard shows the hardware equals.
fmax_mhz, luts, ffs, brams
    From ``build/synth/gft/summary.json`` (``make synth TOP=gft``; run here when missing or
    older than the HDL).
"""

import random
import statistics

from hdl.gft.layouts import EntryState, GftOp, GftParams, GftStatus
from hdl.gft.table import GlobalFlowTable
from sim.amaranth.gft import GftBench
from sim.model.gft import TableFull
from sim.model.gft_ops import Request, Scoreboard, model_for
from sim.randkeys import random_flow_key

from .model import occupancy_at_first_failure
from .synth import synth_figures


LOADS = (0.50, 0.90, 0.95)


def _plan(rng, dut, lookups):
    """The request list for one key set, and where each phase starts in it."""
    model = model_for(dut)
    capacity = dut.params.capacity
    requests, marks, stored = [], {}, []
    loads = list(LOADS)
    while True:
        key = random_flow_key(rng)
        requests.append(Request(GftOp.RESERVE, key, fid=len(stored), state=EntryState.BOUND))
        try:
            model.insert(key, fid=len(stored), state=EntryState.BOUND)
        except TableFull:
            marks["full"] = len(requests) - 1
            return requests, marks
        stored.append(key)
        if loads and len(stored) >= loads[0] * capacity:
            load = loads.pop(0)
            marks[load] = len(requests)
            for n in range(lookups if load == LOADS[-1] else lookups // 4):
                key = rng.choice(stored) if n % 2 else random_flow_key(rng)
                requests.append(Request(GftOp.LOOKUP, key))
            marks[("end", load)] = len(requests)


def _rate(cycles):
    return round(len(cycles) / (max(cycles) - min(cycles) + 1), 4)


def gft_run(seed, *, lookups=10_000):
    rng = random.Random(seed)
    dut = GlobalFlowTable()
    p = dut.params
    requests, marks = _plan(rng, dut, lookups)
    bench = GftBench(dut, rng=rng, timeout=1).run(requests)
    errors = Scoreboard(bench).check()
    if errors:
        raise AssertionError(f"seed {seed}: hardware and model disagree:\n" +
                             "\n".join(errors[:10]))
    taken = [cycle for _, cycle, _ in bench.sent]
    answered = [cycle for _, cycle, _ in bench.responses]
    full_at = marks["full"]
    assert bench.responses[full_at][0].status == GftStatus.FULL
    out = {"seed": seed, "requests": len(requests),
           "occupancy_at_first_failure": round((bench.stats["occupancy"]) / p.capacity, 4),
           "lookups_per_cycle_by_load": {}, "lookups_taken_per_cycle_by_load": {},
           "inserts_per_cycle_by_load": {},
           "max_insert_cycles": max(answered[n] - taken[n] for n, r in enumerate(requests)
                                    if r.op == GftOp.RESERVE)}
    window = max(1, int(0.02 * p.capacity))
    for load in LOADS:
        if load not in marks:
            continue
        start, end = marks[load], marks[("end", load)]
        out["lookups_per_cycle_by_load"][f"{load:.2f}"] = _rate(answered[start:end])
        out["lookups_taken_per_cycle_by_load"][f"{load:.2f}"] = _rate(taken[start:end])
        inserts = [taken[n] for n in range(start) if requests[n].op == GftOp.RESERVE][-window:]
        out["inserts_per_cycle_by_load"][f"{load:.2f}"] = _rate(inserts)
    return out


def latencies():
    """Request-to-response cycles of each op on an empty table, nothing else in flight."""
    rng = random.Random(3)
    dut = GlobalFlowTable()
    key = random_flow_key(rng)
    ops = [Request(GftOp.LOOKUP, key), Request(GftOp.RESERVE, key, fid=1),
           Request(GftOp.UPDATE, key, fid=2, mask=frozenset({"fid"})), Request(GftOp.DELETE, key)]
    out = {}
    for req in ops:
        bench = GftBench(dut, rng=rng).run([req])
        out[req.op.name.lower()] = bench.responses[0][1] - bench.sent[0][1]
    return out


def run(quick):
    p = GftParams()
    # About 3 minutes per key set on one core.
    runs = [gft_run(seed, lookups=1_000 if quick else 10_000) for seed in range(1 if quick else 3)]
    hw_occupancy = [r["occupancy_at_first_failure"] for r in runs]
    model = occupancy_at_first_failure(5 if quick else 50)
    lat = latencies()
    figures = {
        "config": {"buckets": p.buckets, "ways": p.ways, "stash": p.stash,
                   "move_budget": p.move_budget, "key_mode": p.key_mode,
                   "timestamp_bits": p.timestamp_bits},
        "entries": p.buckets * p.ways + p.stash,
        "lookups_per_cycle": min(r["lookups_per_cycle_by_load"].get("0.95", 0) for r in runs),
        "lookup_latency_cycles": lat["lookup"],
        "insert_latency_cycles": lat["reserve"],
        "latency_cycles_by_op": lat,
        "max_insert_cycles_seen": max(r["max_insert_cycles"] for r in runs),
        "occupancy_at_first_failure": {
            "min": min(hw_occupancy), "median": statistics.median(hw_occupancy),
            "key_sets": len(hw_occupancy),
            "model_min": round(min(model), 4), "model_median": round(statistics.median(model), 4),
            "model_key_sets": len(model)},
        "runs": runs,
    }
    figures.update(synth_figures("gft", rerun=not quick))
    return figures
