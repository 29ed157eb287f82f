# amaranth: UnusedElaboratable=no
"""cocotb bench: the hardware GFT (:class:`hdl.gft.table.GlobalFlowTable`) in Verilog under
Icarus, scoreboarded against the golden model by :class:`sim.model.gft_ops.Scoreboard`.

Run by ``tests/test_gft_cocotb.py``, which exports the table with the parameters it passes here
as JSON in ``GFT_PARAMS``. ``GFT_EXTRA`` (default 300) is the number of churn requests after
the fill.

The table's contents are not read through the simulator's hierarchy (the RAM names are the
exporter's business): after the run, with aging stopped, the bench LOOKUPs every key it ever
used. Each answer is scoreboarded like any other (status, fields and location), so every entry
the model holds must be found where the model has it, and the occupancy counter, compared
last, rules out any entry the model does not hold.
"""

import json
import os
from collections import deque

import cocotb
from cocotb.triggers import RisingEdge

from hdl.gft.layouts import EntryState, GftOp, GftParams
from sim.cocotb.stream import TB, StreamSink, StreamSource
from sim.model.gft_ops import SECRET, Aged, Request, Response, Scoreboard, random_request
from sim.randkeys import random_flow_key


PARAMS = json.loads(os.environ.get("GFT_PARAMS", "{}"))
EXTRA = int(os.environ.get("GFT_EXTRA", "300"))


class GftTB(TB):
    """Requests in on ``req``, responses out of ``resp``, aging reports out of ``aged``.

    Keeps what :class:`~sim.model.gft_ops.Scoreboard` reads: ``params``, ``secret``,
    ``timeout``, ``sent`` and ``responses`` as ``(value, cycle, now)``, ``aged`` and
    ``stats``. ``now`` advances one tick every ``ticks`` cycles.
    """

    def __init__(self, dut, *, idle, backpressure, timeout, ticks):
        super().__init__(dut)
        self.params = GftParams(**PARAMS)
        self.secret = SECRET
        self.timeout = timeout
        self.ticks = ticks
        self.cycle = 0
        self.now = 0
        self.sent, self.responses, self.aged = [], [], []
        self.stats = None
        self._offered = deque()
        dut.secret.value = int.from_bytes(SECRET, "little")
        dut.timeout.value = timeout
        dut.now.value = 0
        self.source = StreamSource(dut, "req", self.clk, self.rng, idle=idle,
                                   monitor=self._on_request)
        self.resp = StreamSink(dut, "resp", self.clk, self.rng, backpressure=backpressure,
                               monitor=self._on_response)
        self.aged_sink = StreamSink(dut, "aged", self.clk, self.rng, backpressure=backpressure,
                                    monitor=self._on_aged)
        cocotb.start_soon(self._time())

    def now_at(self, cycle):
        """The time input in ``cycle`` (modulo the timestamp width)."""
        return (cycle // self.ticks) & ((1 << self.params.timestamp_bits) - 1)

    async def _time(self):
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1
            self.now = self.now_at(self.cycle)
            self.dut.now.value = self.now

    def _on_request(self, payload):
        self.sent.append((self._offered.popleft(), self.cycle, self.now))

    def _on_response(self, payload):
        p = self.params
        self.responses.append((Response.from_payload(p.response.from_bits(payload), p),
                               self.cycle, self.now))

    def _on_aged(self, payload):
        p = self.params
        self.aged.append(Aged.from_payload(p.aged.from_bits(payload), p))

    def send(self, request):
        p = self.params
        self._offered.append(request)
        self.source.send(p.request.const(request.payload(p)).as_value().value)

    async def reset(self, cycles=2):
        """Reset, then wait until the table has cleared itself."""
        await super().reset(cycles)
        while self.dut.initialising.value == 1:
            await RisingEdge(self.clk)

    async def wait_answered(self, patience=5000):
        """Wait until every request sent has its response; fail after ``patience`` cycles
        without one."""
        quiet, last = 0, len(self.responses)
        while len(self.responses) < len(self._offered) + len(self.sent):
            await RisingEdge(self.clk)
            quiet = 0 if len(self.responses) != last else quiet + 1
            last = len(self.responses)
            assert quiet < patience, (f"no response for {patience} cycles: "
                                      f"{len(self.sent)} taken, {len(self.responses)} answered")

    async def stop_aging(self):
        """Disable aging and take every free already committed or in flight."""
        self.dut.timeout.value = (1 << (self.params.timestamp_bits - 1)) - 1
        self.aged_sink.backpressure = 0.0
        for _ in range(32):
            await RisingEdge(self.clk)

    def read_stats(self):
        p = self.params
        view = p.stats.from_bits(int(self.dut.stats.value))
        self.stats = {name: int(getattr(view, name)) for name in p.stats.members}


@cocotb.test(timeout_time=200, timeout_unit="ms")
@cocotb.parametrize(idle=[0.0, 0.4], backpressure=[0.0, 0.4])
async def random_mix_matches_the_model(dut, idle, backpressure):
    """A RESERVE-heavy fill well past capacity, a churn of every op over present and absent keys,
    then every key deleted and a few reserved again as TENTATIVE, a drain in which aging frees
    stale tentative entries, then a LOOKUP of every key."""
    timeout, ticks = 20, 16
    tb = GftTB(dut, idle=idle, backpressure=backpressure, timeout=timeout, ticks=ticks)
    cocotb.log.info(f"GFT {tb.params}: seed {cocotb.RANDOM_SEED}")
    await tb.reset()
    p, rng = tb.params, tb.rng
    pool = [random_flow_key(rng, family=4 if p.key_mode == "ipv4" and rng.random() < 0.875
                            else None) for _ in range(p.capacity * 3 // 2 + 10)]
    tags = (1 << p.tag_width) - 1
    for n, k in enumerate(pool):
        tb.send(random_request(rng, k, weights=(1, 8, 1, 0), tag=n & tags))
    for n in range(EXTRA):
        tb.send(random_request(rng, rng.choice(pool), tag=n & tags))
    # The drain must have something to age: what the churn leaves depends on timing (aging
    # runs during it too) and may all be BOUND. So every key is deleted, and a few reserved
    # again as TENTATIVE into the emptied table: the first always fits.
    for n, k in enumerate(pool):
        tb.send(Request(GftOp.DELETE, k, tag=n & tags))
    for n, k in enumerate(pool[:p.capacity // 2 + 1]):
        tb.send(Request(GftOp.RESERVE, k, fid=n, state=EntryState.TENTATIVE, tag=n & tags))
    await tb.wait_answered()
    for _ in range((timeout + 2) * ticks + 20 * (p.buckets + p.stash)):
        await RisingEdge(tb.clk)
    await tb.stop_aging()
    for n, k in enumerate(pool):
        tb.send(Request(GftOp.LOOKUP, k, tag=n & tags))
    await tb.wait_answered()
    tb.read_stats()
    errors = Scoreboard(tb).check(contents=False)
    assert not errors, "\n".join(errors[:20])
    s = tb.stats
    # The run must have reached what it is meant to test. (Relocation is not always reached
    # by a random mix on a tiny table; the directed tests in tests/test_gft_hw.py force it.)
    for name in ("inserts", "hits", "insert_failures", "aged_out"):
        assert s[name], f"the run never exercised {name}: {s}"
    cocotb.log.info(f"{len(tb.sent)} requests, {len(tb.aged)} aged, stats {s}")


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def reset_empties_the_table(dut):
    """Block RAM keeps its contents through a reset; the table must not: after a reset every
    key inserted before it misses, the counters restart from zero, and the table fills again
    as the model says."""
    never = (1 << (GftParams(**PARAMS).timestamp_bits - 1)) - 1     # aging off
    tb = GftTB(dut, idle=0.0, backpressure=0.0, timeout=never, ticks=16)
    await tb.reset()
    p, rng = tb.params, tb.rng
    tags = (1 << p.tag_width) - 1
    before = [random_flow_key(rng, family=4) for _ in range(p.capacity // 2 + 1)]
    for n, k in enumerate(before):
        tb.send(Request(GftOp.RESERVE, k, fid=n, state=EntryState.BOUND, tag=n & tags))
    await tb.wait_answered()
    tb.read_stats()
    assert tb.stats["occupancy"] > 0, tb.stats

    await tb.reset()
    tb.sent.clear()
    tb.responses.clear()
    tb.read_stats()
    assert not any(tb.stats.values()), f"counters survive the reset: {tb.stats}"
    after = [random_flow_key(rng, family=4) for _ in range(4)]
    for n, k in enumerate(before + after):
        op = GftOp.RESERVE if n >= len(before) else GftOp.LOOKUP
        tb.send(Request(op, k, fid=n, state=EntryState.BOUND, tag=n & tags))
    await tb.wait_answered()
    tb.read_stats()
    errors = Scoreboard(tb).check(contents=False)
    assert not errors, "\n".join(errors[:20])
    assert tb.stats["misses"] >= len(before), tb.stats
