# amaranth: UnusedElaboratable=no
"""cocotb bench: :class:`hdl.flow_engine.parser.Parser` in Verilog against the golden model
:func:`sim.packets.parse.parse_frame`, on real captures.

Run by ``tests/test_parser_cocotb.py``. Frames go in through cocotbext-axi's
``AxiStreamSource`` on ``s_axis`` (with random idle cycles), results come out through
:class:`sim.cocotb.stream.StreamSink` on ``result`` (with random backpressure). The widths are
read from the ports. Environment:

``PARSER_PCAPS``
    Folder of the captures (default: ``../shared/pcaps`` next to the repository).
``PARSER_PER_CAPTURE``
    Packets replayed per capture, spread evenly over it; 0 (default) replays every packet.
``PARSER_BENCH_JSON``
    Where :func:`line_rate_and_latency` writes its figures.
"""

import itertools
import json
import logging
import os
from collections import Counter, deque
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource

from hdl.flow_engine.parse_result import DropReason, reason_counts_layout
from hdl.flow_engine.parser import Parser
from sim.cocotb.stream import TB, StreamSink, unpack
from sim.packets.capture import read_capture
from sim.packets.parse import parse_frame
from sim.parse_result import decode, expected, frame_summary


PCAPS = Path(os.environ.get("PARSER_PCAPS") or
             Path(__file__).resolve().parents[4] / "shared" / "pcaps")
PER_CAPTURE = int(os.environ.get("PARSER_PER_CAPTURE", "0"))

# (idle, backpressure) per capture, in turn: each capture runs under one of them.
CONDITIONS = [(0.3, 0.3), (0.0, 0.0), (0.6, 0.0), (0.0, 0.6), (0.5, 0.8)]


def spread(items, count):
    """``count`` items spread evenly over ``items`` (all of them when ``count`` is 0)."""
    if not count or count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


class ParserTB(TB):
    """Frames in on ``s_axis``, results out of ``result``, a scoreboard in frame order."""

    def __init__(self, dut):
        super().__init__(dut)
        self.data_width = len(dut.s_axis__tdata)
        self.user_width = len(dut.s_axis__tuser)
        # The layout comes from the design itself, so the bench cannot drift from it.
        design = Parser(data_width=self.data_width, user_width=self.user_width,
                        counter_width=len(dut.reason_counts) // len(DropReason))
        self.layout = design.result_layout
        self.counts_layout = reason_counts_layout(counter_width=design.counter_width)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_"), self.clk,
                                      dut.rst)
        self.source.log.setLevel(logging.WARNING)
        self.sink = StreamSink(dut, "result", self.clk, self.rng)
        self.expected = deque()
        self.sent = Counter()

    def set_conditions(self, idle, backpressure):
        """Idle the source with probability ``idle`` per cycle; hold ``result.ready`` low with
        probability ``backpressure``."""
        rng = self.rng
        self.source.set_pause_generator(rng.random() < idle for _ in itertools.count())
        self.sink.backpressure = backpressure

    def send(self, frame, label):
        port = self.rng.getrandbits(self.user_width)
        self.source.send_nowait(AxiStreamFrame(frame, tuser=port))
        want = expected(parse_frame(frame), port=port)
        self.expected.append((label, frame, want))
        self.sent[want["drop"]] += 1

    async def check(self, mismatches):
        """Receive a result for every frame sent; append each mismatch to ``mismatches``."""
        while self.expected:
            label, frame, want = self.expected.popleft()
            got = decode(self.layout, await self.sink.recv())
            if got != want:
                mismatches.append(f"{label} ({frame_summary(frame)}):\n  hardware {got}\n"
                                  f"  model    {want}")

    def counts(self):
        """``reason_counts`` as {drop reason, None for keyed: count}."""
        counts = unpack(self.counts_layout, self.dut.reason_counts.value)
        return {None if name == "none" else name: count for name, count in counts.items()}


@cocotb.test(timeout_time=60, timeout_unit="sec")
async def every_capture_packet_parses_as_the_model(dut):
    """Every packet of every capture (or ``PARSER_PER_CAPTURE`` of each), each capture under its
    own idle and backpressure; results, then the reason counters, against the model."""
    tb = ParserTB(dut)
    await tb.reset()
    captures = sorted(PCAPS.glob("*.pcap*"))
    assert captures, f"no captures in {PCAPS}"
    mismatches = []
    for n, path in enumerate(captures):
        tb.set_conditions(*CONDITIONS[n % len(CONDITIONS)])
        packets = list(enumerate(read_capture(path), 1))
        for number, (_, frame) in spread(packets, PER_CAPTURE):
            tb.send(frame, f"{path.name} #{number}")
        await tb.check(mismatches)
        assert not mismatches, f"{len(mismatches)} mismatches, first:\n" + "\n".join(mismatches[:3])
    await ClockCycles(tb.clk, 2)    # the counters count a frame by the end of its result's cycle
    assert tb.counts() == {reason: tb.sent[reason] for reason in tb.counts()}
    dut._log.info("%d frames from %d captures match the model: %s", sum(tb.sent.values()),
                  len(captures), dict(tb.sent))


@cocotb.test(timeout_time=1, timeout_unit="sec")
async def line_rate_and_latency(dut):
    """Measures, never asserts: 64-byte frames back to back, output always ready.

    Writes ``cycles_per_frame`` (between consecutive results), ``latency_cycles`` (last beat
    transferred to result valid), ``tready_low_cycles`` and the widths to ``PARSER_BENCH_JSON``.
    """
    tb = ParserTB(dut)
    await tb.reset()
    frames = 64
    last_beats, results, cycle = [], [], [0]
    tready_low = 0

    async def watch():
        nonlocal tready_low
        while True:
            await RisingEdge(tb.clk)
            cycle[0] += 1
            if dut.s_axis__tvalid.value == 1:
                if dut.s_axis__tready.value == 1:
                    if dut.s_axis__tlast.value == 1:
                        last_beats.append(cycle[0])
                else:
                    tready_low += 1
            if dut.result__valid.value == 1 and dut.result__ready.value == 1:
                results.append(cycle[0])

    cocotb.start_soon(watch())
    frame = bytes(range(12)) + b"\x08\x00" + bytes(50)      # any 64-byte frame will do
    for n in range(frames):
        tb.send(frame, f"frame {n}")
    mismatches = []
    await tb.check(mismatches)
    assert not mismatches, mismatches[0]
    lanes = tb.data_width // 8
    figures = {
        "data_width": tb.data_width,
        "frame_bytes": len(frame),
        "frames": frames,
        "beats_per_frame": -(-len(frame) // lanes),
        "cycles_per_frame": (results[-1] - results[0]) / (frames - 1),
        "latency_cycles": results[0] - last_beats[0],
        "tready_low_cycles": tready_low,
        "documented_latency_cycles": Parser.latency,
    }
    dut._log.info("parser figures: %s", figures)
    out = os.environ.get("PARSER_BENCH_JSON")
    if out:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n")
