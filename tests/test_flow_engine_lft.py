# amaranth: UnusedElaboratable=no
"""The hardware local flow table (:class:`hdl.flow_engine.lft.LocalFlowTable`) in Amaranth's
simulator against the golden model :class:`sim.model.lft.LocalFlowTable`: every response
(status, FID, counts, bucket, way) and, at the end, the whole table (each way's entry and the
install order of each bucket) and the statistics counters. Random mixes of add, delete, lookup
and no-op requests over a small key pool on tables small enough to evict all the time, back to
back (hazards) and under random idle and backpressure; latency and throughput; parameters.

Random tests print their seed and replay with ``SEED=<n>``.
"""

import random

import pytest
from amaranth.sim import Simulator

from hdl.hash.folded import FoldedFlowHash
from hdl.flow_engine.lft import LFT_STATS, LftOp, LftStatus, LocalFlowTable
from sim.flowhash import DEFAULT_SECRET, flow_hash
from sim.flowkey import FlowKey
from sim.model.lft import LocalFlowTable as ModelLft
from sim.cocotb.stream import pack, unpack
from sim.randkeys import random_flow_key
from tests.seeds import seeded_rng


SECRET = int.from_bytes(DEFAULT_SECRET, "little")
TAG_WIDTH = 16


# --- the model's answer to one request ------------------------------------------------------------

def expected(model, op, key, fid, length):
    """Apply one request to ``model`` as the flow engine model does and return the response
    fields the hardware must give: ``(status, fid, packets, bytes, way)``; ``way`` is None where
    the response leaves it undefined."""
    row = model._bucket(key)
    present = next((w for w, e in enumerate(row) if e is not None and e.key == key), None)
    if op == LftOp.NOP:
        return LftStatus.NONE, 0, 0, 0, None
    if op == LftOp.LOOKUP:
        entry = model.lookup(key)
        if entry is None:
            return LftStatus.MISS, 0, 0, 0, None
        entry.packets += 1          # the flow engine model counts on a hit
        entry.bytes += length
        return LftStatus.HIT, entry.fid, entry.packets, entry.bytes, present
    if op == LftOp.ADD:
        if present is not None:
            model.add(key, fid)
            e = row[present]
            return LftStatus.UPDATED, fid, e.packets, e.bytes, present
        victim = model.add(key, fid)
        way = next(w for w, e in enumerate(row) if e is not None and e.key == key)
        if victim is None:
            return LftStatus.INSTALLED, fid, 0, 0, way
        return LftStatus.EVICTED, victim.fid, victim.packets, victim.bytes, way
    entry = model.delete(key, fid)
    if entry is None:
        return LftStatus.NOT_FOUND, 0, 0, 0, None
    return LftStatus.DELETED, entry.fid, entry.packets, entry.bytes, present


# --- the bench ------------------------------------------------------------------------------------

class Run:
    def __init__(self):
        self.responses = []      # (cycle, payload view as dict)
        self.sent = []           # cycle of each request's transfer
        self.stats = None
        self.table = None        # [[(entry or None, rank)] per bucket]


def simulate(dut, requests, *, rng=None, idle=0.0, backpressure=0.0, patience=500, junk=False):
    """Send ``requests`` ``(op, key, fid, length)`` to ``dut``, tagged with their number, and
    collect every response. Checks the stream rules of ``resp`` every cycle. ``junk`` fills
    both RAMs with ones before the first clock edge, as a block RAM may hold anything at
    power-up and holds the old table through a reset."""
    run = Run()
    rng = rng or random.Random(0)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        ctx.set(dut.secret, SECRET)
        if junk:
            for memory in dut.storage.values():
                for b in range(dut.buckets):
                    ctx.set(memory.data[b], (1 << memory.shape.width) - 1)
        waited = 0
        while ctx.get(dut.initialising):     # one bucket cleared per cycle
            assert waited <= dut.buckets, f"still initialising after {waited} cycles"
            await ctx.tick()
            waited += 1
        pending = list(enumerate(requests))
        offering, shown, quiet, cycle = False, None, 0, 0
        while len(run.responses) < len(requests):
            if not offering:
                offering = bool(pending) and rng.random() >= idle
            if offering:
                n, (op, key, fid, length) = pending[0]
                ctx.set(dut.req.valid, 1)
                ctx.set(dut.req.payload.as_value(), pack(dut.request_layout, {
                    "op": op.value, "key": FlowKey(*key).pack(), "fid": fid, "length": length,
                    "tag": n}))
            else:
                ctx.set(dut.req.valid, 0)
            ready = rng.random() >= backpressure
            ctx.set(dut.resp.ready, ready)
            valid = ctx.get(dut.resp.valid)
            payload = ctx.get(dut.resp.payload.as_value())
            if shown is not None:
                assert valid and payload == shown, f"cycle {cycle}: response withdrawn or changed"
            took = offering and ctx.get(dut.req.ready)
            if took:
                pending.pop(0)
                run.sent.append(cycle)
                offering = False
            if valid and ready:
                run.responses.append((cycle, payload))
            shown = payload if valid and not ready else None
            quiet = 0 if took or (valid and ready) else quiet + 1
            assert quiet < patience, f"no transfer for {patience} cycles"
            await ctx.tick()
            cycle += 1
        await ctx.tick().repeat(2)
        run.stats = {name: ctx.get(getattr(dut.stats, name)) for name in
                     (*LFT_STATS, "occupancy")}
        entries, order = dut.storage["entries"], dut.storage["order"]
        run.table = [dut.unpack_bucket(ctx.get(entries.data[b]), ctx.get(order.data[b]))
                     for b in range(dut.buckets)]

    sim.add_testbench(bench)
    sim.run()
    return run


def decode(dut, payload):
    fields = unpack(dut.response_layout, payload)
    fields["op"], fields["status"] = LftOp(fields["op"]), LftStatus(fields["status"])
    return fields


def check(dut, requests, run, *, secret=DEFAULT_SECRET):
    """Every response, the counters and the whole table against the model."""
    model = ModelLft(buckets=dut.buckets, ways=dut.ways, secret=secret)
    assert len(run.responses) == len(requests)
    for n, ((op, key, fid, length), (_, payload)) in enumerate(zip(requests, run.responses)):
        got = decode(dut, payload)
        status, want_fid, packets, nbytes, way = expected(model, op, FlowKey(*key), fid, length)
        want = {"tag": n, "op": op, "status": status, "fid": want_fid, "packets": packets,
                "bytes": nbytes, "key": FlowKey(*key).pack(),
                "bucket": flow_hash(secret, FlowKey(*key)) & (dut.buckets - 1)}
        have = {name: got[name] for name in want}
        if way is not None:
            want["way"], have["way"] = way, got["way"]
        assert have == want, f"request {n} {op.name} {FlowKey(*key)}"
    model_stats = {name: model.stats[name] for name in LFT_STATS}
    assert {name: run.stats[name] for name in LFT_STATS} == model_stats
    assert run.stats["occupancy"] == len(model)
    for b, (hw_row, model_row) in enumerate(zip(run.table, model._table)):
        hw = [None if e is None else (FlowKey.unpack(e["key"]), e["fid"], e["packets"],
                                      e["bytes"]) for e, _ in hw_row]
        sw = [None if e is None else (e.key, e.fid, e.packets, e.bytes) for e in model_row]
        assert hw == sw, f"bucket {b}"
        # Install order: ranks of the valid ways sort them as the model's install numbers do.
        live = [w for w, e in enumerate(model_row) if e is not None]
        by_rank = sorted(live, key=lambda w: hw_row[w][1])
        by_install = sorted(live, key=lambda w: model_row[w].installed)
        assert by_rank == by_install, f"bucket {b}: install order"
        assert sorted(hw_row[w][1] for w in live) == list(range(len(live))), f"bucket {b}: ranks"


def random_requests(rng, count, *, pool, ops=(LftOp.LOOKUP, LftOp.ADD, LftOp.DELETE, LftOp.NOP),
                    weights=(4, 3, 2, 1), fids=4):
    """``count`` requests over a pool of ``pool`` keys; each key's FID comes from a few values,
    so deletes sometimes name a stale FID."""
    keys = [tuple(random_flow_key(rng)) for _ in range(pool)]
    requests = []
    for _ in range(count):
        op = rng.choices(ops, weights)[0]
        key = rng.choice(keys)
        fid = (hash(key) * 7919 + rng.randrange(fids)) & 0xFFFF_FFFF
        requests.append((op, key, fid, rng.randrange(1, 1 << 16)))
    return requests


def lft(buckets, ways):
    return LocalFlowTable(buckets=buckets, ways=ways, tag_width=TAG_WIDTH)


# --- against the model ----------------------------------------------------------------------------

@pytest.mark.parametrize("buckets, ways", [(1, 1), (1, 3), (2, 2), (4, 4), (8, 3)])
def test_random_requests_back_to_back_match_the_model(request, buckets, ways):
    """No idle, no backpressure: every request meets the ones just before it on its bucket."""
    rng = seeded_rng(request.node.name)
    dut = lft(buckets, ways)
    requests = random_requests(rng, 160, pool=3 * buckets * ways)
    check(dut, requests, simulate(dut, requests, rng=rng))


@pytest.mark.parametrize("idle, backpressure", [(0.5, 0.0), (0.0, 0.7), (0.4, 0.4)])
def test_random_requests_under_idle_and_backpressure_match_the_model(request, idle, backpressure):
    rng = seeded_rng(request.node.name)
    dut = lft(4, 2)
    requests = random_requests(rng, 120, pool=20)
    check(dut, requests, simulate(dut, requests, rng=rng, idle=idle, backpressure=backpressure))


@pytest.mark.slow
@pytest.mark.parametrize("buckets, ways", [(2, 1), (1, 2), (4, 3), (2, 5), (8, 7), (1, 16),
                                           (16, 4), (64, 2)])
def test_long_random_runs_over_odd_sizes_match_the_model(request, buckets, ways):
    rng = seeded_rng(request.node.name)
    dut = lft(buckets, ways)
    requests = random_requests(rng, 600, pool=2 * buckets * ways + 3)
    check(dut, requests, simulate(dut, requests, rng=rng, idle=rng.choice((0.0, 0.3)),
                                  backpressure=rng.choice((0.0, 0.5))))


@pytest.mark.parametrize("buckets", [1, 2, 8])
def test_initialising_empties_every_bucket_whatever_the_rams_held(request, buckets):
    """Every way of every bucket starts valid with a junk key; after ``initialising`` the
    table must answer as an empty one and hold only what the requests installed."""
    rng = seeded_rng(request.node.name)
    dut = lft(buckets, 2)
    requests = random_requests(rng, 40, pool=3 * buckets)
    check(dut, requests, simulate(dut, requests, rng=rng, junk=True))


def test_full_bucket_evicts_the_oldest_installed_way_even_after_hits_and_deletes(request):
    """One bucket of three ways: installs, hits on the oldest, a delete in the middle, then
    installs that each must take the model's victim."""
    rng = seeded_rng(request.node.name)
    dut = lft(1, 3)
    k = [tuple(random_flow_key(rng)) for _ in range(6)]
    requests = [(LftOp.ADD, k[i], 100 + i, 0) for i in range(3)]
    requests += [(LftOp.LOOKUP, k[0], 0, 64), (LftOp.DELETE, k[1], 101, 0),
                 (LftOp.ADD, k[3], 103, 0), (LftOp.ADD, k[4], 104, 0),
                 (LftOp.ADD, k[5], 105, 0), (LftOp.LOOKUP, k[0], 0, 64),
                 (LftOp.LOOKUP, k[2], 0, 64)]
    run = simulate(dut, requests)
    check(dut, requests, run)
    statuses = [decode(dut, p)["status"] for _, p in run.responses]
    assert statuses[5:] == [LftStatus.INSTALLED, LftStatus.EVICTED, LftStatus.EVICTED,
                            LftStatus.MISS, LftStatus.MISS]


def test_add_then_lookups_on_the_next_clocks_see_the_entry_and_count_every_packet(request):
    """The hazard rule: requests on one bucket back to back serialise in request order."""
    rng = seeded_rng(request.node.name)
    dut = lft(2, 2)
    key = tuple(random_flow_key(rng))
    requests = ([(LftOp.LOOKUP, key, 0, 60), (LftOp.ADD, key, 7, 0)] +
                [(LftOp.LOOKUP, key, 0, 60 + i) for i in range(5)] +
                [(LftOp.DELETE, key, 7, 0), (LftOp.LOOKUP, key, 0, 60)])
    run = simulate(dut, requests)
    check(dut, requests, run)
    statuses = [decode(dut, p)["status"] for _, p in run.responses]
    assert statuses == [LftStatus.MISS, LftStatus.INSTALLED] + [LftStatus.HIT] * 5 + \
        [LftStatus.DELETED, LftStatus.MISS]
    deleted = decode(dut, run.responses[7][1])
    assert (deleted["packets"], deleted["bytes"]) == (5, sum(60 + i for i in range(5)))


def test_delete_with_a_stale_fid_leaves_the_entry(request):
    rng = seeded_rng(request.node.name)
    dut = lft(2, 2)
    key = tuple(random_flow_key(rng))
    requests = [(LftOp.ADD, key, 5, 0), (LftOp.DELETE, key, 4, 0), (LftOp.LOOKUP, key, 0, 1)]
    run = simulate(dut, requests)
    check(dut, requests, run)
    assert [decode(dut, p)["status"] for _, p in run.responses] == \
        [LftStatus.INSTALLED, LftStatus.NOT_FOUND, LftStatus.HIT]


# --- timing ---------------------------------------------------------------------------------------

def distinct_bucket_keys(rng, buckets, count):
    """``count`` keys whose buckets differ from the previous five keys' (no hazard: a request
    waits for one on its bucket at R, B, C, M or D)."""
    keys = []
    while len(keys) < count:
        key = random_flow_key(rng)
        bucket = flow_hash(DEFAULT_SECRET, key) & (buckets - 1)
        if all(flow_hash(DEFAULT_SECRET, k) & (buckets - 1) != bucket for k in keys[-5:]):
            keys.append(key)
    return keys


def test_eight_requests_per_clock_then_one_per_four_cycles_and_the_documented_latency(request):
    """The folded hash takes 8 keys back to back, then 8 per 32 cycles (one per its
    ``interval``); the table behind it answers each one ``latency`` cycles after it entered."""
    rng = seeded_rng(request.node.name)
    dut = lft(64, 2)
    requests = [(LftOp.LOOKUP, tuple(k), 0, 64) for k in distinct_bucket_keys(rng, 64, 48)]
    run = simulate(dut, requests)
    check(dut, requests, run)
    ring, period = FoldedFlowHash.ring, FoldedFlowHash.ring * FoldedFlowHash.interval
    cycles = [c for c, _ in run.responses]
    assert run.responses[0][0] - run.sent[0] == dut.latency
    assert cycles == [cycles[0] + period * (n // ring) + n % ring for n in range(len(requests))]
    assert run.sent[:ring] == list(range(run.sent[0], run.sent[0] + ring))


def test_requests_on_one_bucket_back_to_back_wait_five_cycles_each(request):
    # Five: the write of a request is at D, five stages (R, B, C, M, D) after its issue; M was
    # added so that the compare's result is registered before the decision (125 MHz).
    rng = seeded_rng(request.node.name)
    dut = lft(1, 2)
    key = tuple(random_flow_key(rng))
    requests = [(LftOp.LOOKUP, key, 0, 64)] * 6
    run = simulate(dut, requests)
    cycles = [c for c, _ in run.responses]
    assert [b - a for a, b in zip(cycles, cycles[1:])] == [6] * 5


# --- parameters -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(buckets=0), "buckets must be a power of two, not 0"),
    (dict(buckets=12), "buckets must be a power of two, not 12"),
    (dict(buckets=4.0), "buckets must be a power of two, not 4.0"),
    (dict(buckets=True), "buckets must be a power of two, not True"),
    (dict(ways=0), "ways must be an integer from 1 to 16, not 0"),
    (dict(ways=17), "ways must be an integer from 1 to 16, not 17"),
    (dict(ways="2"), "ways must be an integer from 1 to 16, not '2'"),
    (dict(tag_width=-1), "tag_width must be a non-negative integer, not -1"),
])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        LocalFlowTable(**kwargs)
