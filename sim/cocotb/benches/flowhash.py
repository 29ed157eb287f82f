# amaranth: UnusedElaboratable=no
"""cocotb bench: :class:`hdl.hash.siphash.FlowHash` or :class:`hdl.hash.folded.FoldedFlowHash`
in Verilog against :func:`sim.flowhash.flow_hash`.

Run by ``tests/test_flowhash_cocotb.py``. The tag width is read from the ports; the design is
``FLOWHASH_DESIGN`` (``unrolled``, the default, or ``folded``); keys per test come from
``FLOWHASH_KEYS`` (default 250).
"""

import os
from collections import deque

import cocotb
from cocotb.triggers import RisingEdge

from hdl.hash.folded import FoldedFlowHash
from hdl.hash.siphash import FlowHash
from sim.cocotb.stream import TB, StreamSink, StreamSource, pack, unpack
from sim.flowhash import flow_hash
from sim.randkeys import random_flow_key


KEYS = int(os.environ.get("FLOWHASH_KEYS", "250"))
FOLDED = os.environ.get("FLOWHASH_DESIGN", "unrolled") == "folded"


def _hex(fields):
    return {name: f"{value:#x}" for name, value in fields.items()}


class FlowHashTB(TB):
    """Keys in through ``i_stream``, hashes out of ``o_stream``, scoreboard in input order."""

    def __init__(self, dut, *, idle, backpressure):
        super().__init__(dut)
        self.tag_width = len(dut.o_stream__payload) - 64
        # The layouts come from the design itself, so the bench cannot drift from it.
        design = (FoldedFlowHash if FOLDED else FlowHash)(tag_width=self.tag_width)
        self.i_layout = design.i_stream.payload.shape()
        self.o_layout = design.o_stream.payload.shape()
        self.source = StreamSource(dut, "i_stream", self.clk, self.rng, idle=idle)
        self.sink = StreamSink(dut, "o_stream", self.clk, self.rng, backpressure=backpressure)
        self.expected = deque()
        self.ready_fell = False
        cocotb.start_soon(self._watch_ready())

    async def _watch_ready(self):
        """Note whether ``i_stream.ready`` ever falls: only a full output queue makes it."""
        while not self.ready_fell:
            await RisingEdge(self.clk)
            self.ready_fell = self.dut.i_stream__ready.value == 0

    def set_secret(self, secret):
        self.dut.secret.value = int.from_bytes(secret, "little")

    def send(self, key, secret):
        """Queue ``key``; ``secret`` is the one it will enter under."""
        tag = {"tag": self.rng.getrandbits(self.tag_width)} if self.tag_width else {}
        self.source.send(pack(self.i_layout, {"key": key.pack(), **tag}))
        self.expected.append((key, {"hash": flow_hash(secret, key), **tag}))

    async def check(self):
        """Receive a hash for every key sent and compare it with the reference."""
        while self.expected:
            key, want = self.expected.popleft()
            got = unpack(self.o_layout, await self.sink.recv())
            assert got == want, f"key {key}: got {_hex(got)}, want {_hex(want)}"


@cocotb.test(timeout_time=1, timeout_unit="ms")
@cocotb.parametrize(idle=[0.0, 0.5], backpressure=[0.0, 0.5, 0.9])
async def hashes_match_the_reference(dut, idle, backpressure):
    """Two batches of random IPv4/IPv6 keys, each under its own secret, set at run time.
    ``i_stream.ready`` stays high without backpressure (the unrolled hash; the folded one
    refuses keys while its ring's slots are taken); with 0.9 the output queue fills and it
    falls."""
    tb = FlowHashTB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    for _ in range(2):
        secret = tb.rng.randbytes(16)
        tb.set_secret(secret)
        for _ in range(KEYS // 2):
            tb.send(random_flow_key(tb.rng), secret)
        # Every key of the batch has entered, so the next secret cannot reach any of them.
        await tb.source.wait_drained()
    await tb.check()
    assert tb.sink.empty(), "more hashes than keys"
    if backpressure == 0.0 and not FOLDED:
        assert not tb.ready_fell, "i_stream.ready fell although o_stream was always ready"
    if backpressure >= 0.9:
        assert tb.ready_fell, "the output queue never filled"
