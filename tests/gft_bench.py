"""Bench for the hardware GFT in Amaranth's simulator: drives requests with random idle
cycles, takes responses and aged entries under random backpressure, and scoreboards every
answer, location, counter and the final table contents against the golden model."""

import random
from dataclasses import dataclass, field, replace

from amaranth.sim import Simulator

from hdl.gft.layouts import EntryState, GftOp
from hdl.gft.table import GlobalFlowTable
from sim.flowkey import V4_MAPPED, FlowKey
from sim.model.gft import GlobalFlowTable as ModelTable
from sim.model.gft_ops import MASK_FIELDS, Aged, GftOpsModel, Request, Response


__all__ = ["GftBench", "Scoreboard", "model_for", "model_contents", "entry_payload",
           "bucket_payload", "random_request", "SECRET"]


SECRET = bytes(range(16))


def model_for(dut, *, secret=SECRET, timeout=1):
    """A golden-model table with the hardware's organisation."""
    p = dut.params
    half = 1 << (p.timestamp_bits - 1)
    return ModelTable(buckets=p.buckets, ways=p.ways, stash=p.stash, move_budget=p.move_budget,
                      secret=secret, timestamp_bits=p.timestamp_bits,
                      tentative_timeout=min(max(timeout, 1), half - 1), key_mode=p.key_mode)


def _entry_value(params, e, buckets):
    """A stored entry as a comparable tuple (key, fields..., candidate buckets)."""
    k = e.key
    if params.key_mode == "dual":
        key = FlowKey(k.src_addr, k.dst_addr, k.src_port, k.dst_port, k.proto, k.zone)
    else:
        key = FlowKey(V4_MAPPED | k.src_addr, V4_MAPPED | k.dst_addr, k.src_port, k.dst_port,
                      k.proto, k.zone)
    return (key, e.fid, EntryState(e.state), e.timestamp, e.aware, e.counter, bool(e.predict),
            buckets)


def model_contents(table):
    """``{location: entry tuple}`` of the model table."""
    out = {}
    (buckets, stash) = table.snapshot()
    for b, bucket in enumerate(buckets):
        for w, e in enumerate(bucket):
            if e is not None:
                out[(b, w)] = (e.key, e.fid, e.state, e.timestamp, e.aware, e.counter,
                               e.predict, tuple(e.buckets))
    for i, e in enumerate(stash):
        if e is not None:
            out[("stash", i)] = (e.key, e.fid, e.state, e.timestamp, e.aware, e.counter,
                                 e.predict, tuple(e.buckets))
    return out


@dataclass
class GftBench:
    """Runs one simulation of ``dut``.

    Each cycle the request driver offers the next request unless a random idle cycle is due
    (probability ``idle``; a request once offered is held until taken, as streams require),
    and the response and aged sinks drop ``ready`` with probability ``backpressure``.
    ``now(cycle)`` gives the time input. After the last response the bench idles
    ``drain`` cycles (for aging), then stops aging, takes the frees still in flight, and reads
    the counters and the whole table. A run with no transfer for ``patience`` cycles fails.
    """
    dut: GlobalFlowTable
    rng: random.Random
    idle: float = 0.0
    backpressure: float = 0.0
    timeout: int = 1
    now: object = staticmethod(lambda cycle: 0)
    drain: int = 0
    secret: bytes = SECRET
    patience: int = 2000      # cycles without any transfer before the bench gives up
    sent: list = field(default_factory=list)        # (request, cycle, now)
    responses: list = field(default_factory=list)   # (Response, cycle, now)
    aged: list = field(default_factory=list)        # Aged
    stats: dict = None
    contents: dict = None
    cycles: int = 0

    def run(self, requests, *, until=None, testbench=None):
        """Simulate ``requests``. ``until(bench)``, when given, ends the drain early;
        ``testbench`` is an extra ``async def (ctx)`` run alongside (for directed tests)."""
        dut, p, rng = self.dut, self.dut.params, self.rng
        sim = Simulator(dut)
        sim.add_clock(1e-8)
        pending = list(requests)
        req_bits = dut.req.payload.as_value()
        resp_bits = dut.resp.payload.as_value()
        aged_bits = dut.aged.payload.as_value()

        async def bench(ctx):
            ctx.set(dut.secret, int.from_bytes(self.secret, "little"))
            ctx.set(dut.timeout, self.timeout)
            current, cycle, drained, last_transfer = None, 0, 0, 0
            while True:
                if cycle - last_transfer > self.patience:
                    raise AssertionError(
                        f"no transfer for {self.patience} cycles at cycle {cycle}: "
                        f"{len(self.sent)} requests taken, {len(self.responses)} answered")
                if len(self.responses) == len(requests):
                    if drained >= self.drain or (until is not None and until(self)):
                        break
                    drained += 1
                    last_transfer = cycle
                now = self.now(cycle) & ((1 << p.timestamp_bits) - 1)
                ctx.set(dut.now, now)
                if current is None and pending and rng.random() >= self.idle:
                    current = pending.pop(0)
                    # Packed once here: converting a dict through the layout every cycle
                    # would cost more than simulating the design.
                    ctx.set(req_bits, p.request.const(current.payload(p)).as_value().value)
                ctx.set(dut.req.valid, current is not None)
                resp_ready = rng.random() >= self.backpressure
                aged_ready = rng.random() >= self.backpressure
                ctx.set(dut.resp.ready, resp_ready)
                ctx.set(dut.aged.ready, aged_ready)
                _, _, req_ready, resp_valid, resp, aged_valid, aged = await ctx.tick().sample(
                    dut.req.ready, dut.resp.valid, resp_bits, dut.aged.valid, aged_bits)
                if current is not None and req_ready:
                    self.sent.append((current, cycle, now))
                    current = None
                    last_transfer = cycle
                if resp_valid and resp_ready:
                    last_transfer = cycle
                    self.responses.append((Response.from_payload(p.response.from_bits(resp), p),
                                           cycle, now))
                if aged_valid and aged_ready:
                    self.aged.append(Aged.from_payload(p.aged.from_bits(aged), p))
                cycle += 1
            self.cycles = cycle
            ctx.set(dut.req.valid, 0)
            # Stop aging and collect the frees already committed or in flight, so that the
            # counters read below match the reports taken.
            ctx.set(dut.timeout, (1 << (p.timestamp_bits - 1)) - 1)
            ctx.set(dut.aged.ready, 1)
            for _ in range(16):
                _, _, aged_valid, aged = await ctx.tick().sample(dut.aged.valid, aged_bits)
                if aged_valid:
                    self.aged.append(Aged.from_payload(p.aged.from_bits(aged), p))
            self.stats = {name: int(getattr(ctx.get(dut.stats), name))
                          for name in p.stats.members}
            self.contents = self._read_contents(ctx)

        sim.add_testbench(bench)
        if testbench is not None:
            sim.add_testbench(testbench, background=True)
        sim.run()
        return self

    def _read_contents(self, ctx):
        p = self.dut.params
        storage = self.dut.storage
        out = {}
        for s, ram in enumerate(storage["rams"]):
            for i in range(p.half):
                word = ctx.get(ram.data[i])
                for w in range(p.ways):
                    e = word[w]
                    if EntryState(e.state) != EntryState.INVALID:
                        out[(s * p.half + i, w)] = _entry_value(p, e, (e.i1, p.half + e.i2))
        slots = ctx.get(storage["stash"].slots)
        for i in range(p.stash):
            e = slots[i]
            if EntryState(e.state) != EntryState.INVALID:
                out[("stash", i)] = _entry_value(p, e, (e.i1, p.half + e.i2))
        return out


class Scoreboard:
    """Replays a bench run on the golden model and lists every disagreement.

    Responses are replayed in order; an aged entry is replayed just before the response whose
    index is its ``seq`` (the number of responses committed before the free). An insert or a
    touch takes the timestamp the hardware wrote, which must lie between ``now`` when the
    request was taken and ``now`` when its response was (modulo the timestamp width).
    """

    COMMON_STATS = ("lookups", "hits", "misses", "inserts", "updates", "deletes", "relocations",
                    "stash_inserts", "stash_returns", "insert_failures", "refused", "aged_out",
                    "occupancy", "stash_used")

    def __init__(self, bench, model=None):
        self.bench = bench
        self.model = GftOpsModel(model or model_for(bench.dut, secret=bench.secret,
                                                    timeout=bench.timeout))
        self.errors = []
        self.expected = []

    def check(self, *, contents=True, stats=True):
        b = self.bench
        p = b.dut.params
        if len(b.responses) != len(b.sent):
            self.errors.append(f"{len(b.sent)} requests taken, {len(b.responses)} responses")
        assert len(b.sent) < 1 << 16, "seq wraps: keep a run under 65536 requests"
        aged = b.aged               # in commit order, so seq never decreases
        ai = 0
        for n, ((req, _, now_req), (got, _, now_resp)) in enumerate(zip(b.sent, b.responses)):
            while ai < len(aged) and aged[ai].seq <= n:
                self._age(aged[ai])
                ai += 1
            now = now_req
            if got.fields is not None:
                wrap = (1 << p.timestamp_bits) - 1
                if (got.fields["timestamp"] - now_req) & wrap <= (now_resp - now_req) & wrap:
                    now = got.fields["timestamp"]
            want = self.model.request(req, now)
            want = replace(want, tag=want.tag & ((1 << p.tag_width) - 1))
            self.expected.append(want)
            if got != want:
                self.errors.append(f"response {n} to {req}:\n  got  {got}\n  want {want}")
        for a in aged[ai:]:
            self._age(a)
        if stats:
            model_stats = self.model.stats
            for name in self.COMMON_STATS:
                if b.stats[name] != model_stats[name]:
                    self.errors.append(f"stats.{name}: hardware {b.stats[name]}, "
                                       f"model {model_stats[name]}")
        if contents:
            want = model_contents(self.model.table)
            if b.contents != want:
                for loc in sorted(set(want) | set(b.contents), key=str):
                    if b.contents.get(loc) != want.get(loc):
                        self.errors.append(f"table at {loc}: hardware {b.contents.get(loc)}, "
                                           f"model {want.get(loc)}")
        return self.errors

    def _age(self, a):
        e = self.model.age_slot(a.loc, a.now, self.bench.timeout)
        got = (a.key, a.fields)
        want = None if e is None else (e.key, dict(
            fid=e.fid, state=e.state, timestamp=e.timestamp, aware=e.aware, counter=e.counter,
            predict=e.predict))
        if got != want:
            self.errors.append(f"aged at {a.loc} (now {a.now}, seq {a.seq}):\n  got  {got}\n"
                               f"  want {want}")


def entry_payload(params, entry):
    """A model :class:`~sim.model.gft.Entry` as a value for ``params.entry`` (to load RAMs or
    the stash in a unit test)."""
    k = entry.key
    if params.key_mode == "dual":
        key = k._asdict()
    else:
        key = dict(src_addr=k.src_addr & 0xFFFFFFFF, dst_addr=k.dst_addr & 0xFFFFFFFF,
                   src_port=k.src_port, dst_port=k.dst_port, proto=k.proto, zone=k.zone)
    b1, b2 = entry.buckets
    return dict(state=entry.state, key=key, fid=entry.fid, timestamp=entry.timestamp,
                aware=entry.aware, counter=entry.counter, predict=int(entry.predict),
                i1=b1, i2=b2 - params.half)


def bucket_payload(params, entries):
    """A model bucket (list of Entry or None) as a value for ``params.bucket``."""
    return [entry_payload(params, e) if e is not None else {"state": EntryState.INVALID}
            for e in entries]


def random_request(rng, key, *, weights=(3, 5, 2, 1), tag=0):
    """A random request on ``key``: op drawn with ``weights`` (LOOKUP, RESERVE, UPDATE,
    DELETE), every field random, the state now and then INVALID (refused by RESERVE and by an
    UPDATE that writes it)."""
    op = rng.choices(list(GftOp), weights)[0]
    return Request(op, key, fid=rng.getrandbits(32),
                   state=rng.choices(list(EntryState), (1, 8, 4))[0],
                   aware=1 << rng.randrange(32), counter=rng.getrandbits(16),
                   predict=rng.random() < 0.3,
                   mask=frozenset(f for f in MASK_FIELDS if rng.random() < 0.4), tag=tag)
