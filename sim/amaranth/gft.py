"""Bench for the hardware GFT in Amaranth's simulator: drives requests with random idle
cycles, takes responses and aged entries under random backpressure, and records everything
for :class:`sim.model.gft_ops.Scoreboard`, which checks every answer, location, counter and
the final table contents (read straight from the RAMs and the stash) against the golden
model, and both copies of the *full* bitmap against the contents. The cocotb bench
:mod:`sim.cocotb.benches.gft` feeds the same scoreboard."""

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from hdl.gft.layouts import EntryState
from hdl.gft.table import GlobalFlowTable
from sim.flowkey import V4_MAPPED, FlowKey
from sim.model.gft_ops import SECRET, Aged, Response


__all__ = ["GftBench", "entry_payload", "bucket_payload"]


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


@dataclass
class GftBench:
    """Runs one simulation of ``dut``.

    Each cycle the request driver offers the next request unless a random idle cycle is due
    (probability ``idle``; a request once offered is held until taken, as streams require),
    and the response and aged sinks drop ``ready`` with probability ``backpressure``.
    ``now(cycle)`` gives the time input; cycle 0 is the first after the table has cleared
    itself (``initialising``). After the last response the bench idles
    ``drain`` cycles (for aging), then stops aging, takes the frees still in flight, and reads
    the counters and the whole table. A run with no transfer for ``patience`` cycles fails.
    ``junk`` fills every RAM word with ones before the first clock edge (every way live, with
    a junk key), as a block RAM may hold anything at power-up and keeps the old table through
    a reset: the table must clear it.
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
    junk: bool = False
    sent: list = field(default_factory=list)        # (request, cycle, now)
    responses: list = field(default_factory=list)   # (Response, cycle, now)
    aged: list = field(default_factory=list)        # Aged
    stats: dict = None
    contents: dict = None
    full_bits: dict = None      # see _read_full_bits
    cycles: int = 0

    @property
    def params(self):
        return self.dut.params

    def now_at(self, cycle):
        """The time input in ``cycle``, as the table saw it (modulo the timestamp width)."""
        return self.now(cycle) & ((1 << self.params.timestamp_bits) - 1)

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
            if self.junk:
                for ram in (ram for ways in dut.storage["rams"] for ram in ways):
                    for i in range(p.half):
                        ctx.set(ram.data[i], ram.shape.from_bits((1 << ram.shape.size) - 1))
                for _, ram in dut.storage["full"]:
                    for i in range(p.half):
                        ctx.set(ram.data[i], 1)
            await ctx.tick().until(~dut.initialising)    # the table clears itself first
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
                now = self.now_at(cycle)
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
            self.full_bits = self._read_full_bits(ctx)

        sim.add_testbench(bench)
        if testbench is not None:
            sim.add_testbench(testbench, background=True)
        sim.run()
        return self

    def _read_full_bits(self, ctx):
        """``{"flip-flops": set, "block RAM": set}``: the buckets each copy of the *full*
        bitmap holds as full."""
        half = self.dut.params.half
        out = {"flip-flops": set(), "block RAM": set()}
        for s, (bits, ram) in enumerate(self.dut.storage["full"]):
            flops = ctx.get(bits)
            for i in range(half):
                if flops >> i & 1:
                    out["flip-flops"].add(s * half + i)
                if ctx.get(ram.data[i]):
                    out["block RAM"].add(s * half + i)
        return out

    def _read_contents(self, ctx):
        p = self.dut.params
        storage = self.dut.storage
        out = {}
        for s, ways in enumerate(storage["rams"]):
            for i in range(p.half):
                for w, ram in enumerate(ways):
                    e = ctx.get(ram.data[i])
                    if EntryState(e.state) != EntryState.INVALID:
                        out[(s * p.half + i, w)] = _entry_value(p, e, (e.i1, p.half + e.i2))
        slots = ctx.get(storage["stash"].slots)
        for i in range(p.stash):
            e = slots[i]
            if EntryState(e.state) != EntryState.INVALID:
                out[("stash", i)] = _entry_value(p, e, (e.i1, p.half + e.i2))
        return out


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
