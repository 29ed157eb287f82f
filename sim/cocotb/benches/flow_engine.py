# amaranth: UnusedElaboratable=no
"""cocotb bench: :class:`hdl.flow_engine.engine.FlowEngine` in Verilog against the golden model
:class:`sim.model.flow_engine.FlowEngine`, frame for frame and byte for byte.

Run by ``tests/test_flow_engine_cocotb.py``. Data frames go in on ``s_axis`` and fabric frames
on ``fabric_in`` through cocotbext-axi sources (random idle cycles); fabric frames come out of
``m_axis`` into a cocotbext-axi sink (random backpressure). The bench plays PPM-HW: for some of
the FLOW_UNKNOWN frames the engine sends, it answers FLOW_ADD with a fresh FID (so later
packets of the flow hit the LFT), later FLOW_DELETE (sometimes with a stale FID), all racing
the packets still in flight; and it mixes in fabric frames that must be refused (malformed,
unknown type, from a PP, or a valid message of another type).

Scoreboard
----------
The model runs one event at a time; the hardware's LFT serialises packets and commands in the
order they reach it. The bench watches the register that holds each request the LFT issued (``s_b``,
see :attr:`~hdl.flow_engine.lft.LocalFlowTable.issue_layout`) and runs the model in that order:
a packet's request -> ``model.ingest`` of the next frame sent, a command's -> ``model.receive``
of the fabric frames sent up to the next one the model applies. Every frame the model sends is
expected from ``m_axis`` (packets' frames in order, FLOW_STATS in order; the two kinds may
interleave), byte for byte, with ``tuser`` its destination. At the end every counter is
compared: the engine's, the LFT's and the fragment table's, and their occupancy.

Environment
-----------
``FLOW_ENGINE_PARAMS``
    JSON of the engine's keyword arguments (default: the defaults).
``FLOW_ENGINE_PCAPS``
    Folder of the captures (default ``../shared/pcaps`` next to the repository).
``FLOW_ENGINE_PER_CAPTURE``
    Packets replayed per capture, spread over it; 0 (default) replays every packet.
``FLOW_ENGINE_BENCH_JSON``
    Where :func:`line_rate_and_latency` writes its figures.
"""

import inspect
import itertools
import json
import logging
import os
from collections import Counter, deque
from pathlib import Path

import cocotb
from amaranth.lib import data
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from hdl.flow_engine.engine import ENGINE_STATS, FlowEngine
from hdl.flow_engine.frag_table import FRAG_STATS
from hdl.flow_engine.framer import PACKET_META
from hdl.flow_engine.lft import LFT_STATS
from hdl.flow_engine.parser import Parser
from hdl.wire import ENDPOINT, FRAME_HEADER, MsgType
from sim.cocotb.stream import TB
from sim.flowhash import DEFAULT_SECRET
from sim.flowkey import FlowKey
from sim.model.flow_engine import FlowEngine as ModelEngine
from sim.packets.capture import read_capture
from sim.packets.parse import parse_frame
from sim.traffic import builtin_scenario
from sim.wire import PPM_HW, Message, encode, make_fid


PCAPS = Path(os.environ.get("FLOW_ENGINE_PCAPS") or
             Path(__file__).resolve().parents[4] / "shared" / "pcaps")
PER_CAPTURE = int(os.environ.get("FLOW_ENGINE_PER_CAPTURE", "0"))
PARAMS = json.loads(os.environ.get("FLOW_ENGINE_PARAMS") or "{}")

SLOT = 3
TICKS_PER_SECOND = 1000            # the engine's `now` counts milliseconds here
DEFAULTS = {name: param.default for name, param in
            inspect.signature(FlowEngine.__init__).parameters.items()
            if param.kind is param.KEYWORD_ONLY}
COMMAND_BIT = PACKET_META["command"].offset     # in an LFT request's tag

# (idle, backpressure) per capture, in turn.
CONDITIONS = [(0.3, 0.3), (0.0, 0.0), (0.6, 0.0), (0.0, 0.6), (0.5, 0.8)]


def spread(items, count):
    """``count`` items spread evenly over ``items`` (all of them when ``count`` is 0)."""
    if not count or count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def fields(layout, value):
    """Nested dict of a packed ``value`` of a struct ``layout`` (nested layouts recursed)."""
    out = {}
    for name, field in layout:
        raw = (int(value) >> field.offset) & ((1 << field.width) - 1)
        out[name] = fields(field.shape, raw) if isinstance(field.shape, data.StructLayout) \
            else raw
    return out


def refused_fabric_frame(rng):
    """A fabric frame a flow engine must count and ignore: malformed, of an unknown type, a
    FLOW_DELETE from a PP, or a well-formed message of another type."""
    key = FlowKey(*(rng.getrandbits(w) for w in (128, 128, 16, 16, 8, 24)))
    fid = make_fid(rng.randrange(8), rng.randrange(4), rng.getrandbits(21))
    add = encode(Message(MsgType.FLOW_ADD, {"key": key._asdict(), "fid": fid}, src=PPM_HW,
                         dst=(SLOT, 30)))

    def relength(frame):
        """``frame`` with its header's length field made to agree with its size."""
        header = FRAME_HEADER.unpack(int.from_bytes(frame[:16], "big"))
        header["length"] = len(frame) - 16
        return FRAME_HEADER.to_bytes(header) + frame[16:]

    choice = rng.randrange(11)
    if choice == 10:                                                # length field off
        header = FRAME_HEADER.unpack(int.from_bytes(add[:16], "big"))
        header["length"] += rng.choice((-2, -1, 1, 2))
        return FRAME_HEADER.to_bytes(header) + add[16:]
    if choice == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 90)))
    if choice == 1:
        return add[:rng.randrange(len(add))]                        # cut short
    if choice == 2:
        return relength(add[:rng.randrange(16, len(add))])          # body too short
    if choice == 3:
        return relength(add + b"\x00" * rng.randrange(1, 3))        # trailing bytes
    if choice == 4:
        return bytes([0x42]) + add[1:]                              # unknown type
    if choice == 5:                                                 # from a PP
        return encode(Message(MsgType.FLOW_DELETE, {"key": key._asdict(), "fid": fid},
                              src=(1, 2), dst=(SLOT, 30)))
    if choice == 6:
        return encode(Message(MsgType.FLOW_STATS, {"fid": fid, "final": 1, "packets": 3,
                                                   "bytes": 99}, src=PPM_HW))
    if choice == 7:                                                 # packet length off
        frame = encode(Message(MsgType.PACKET, {"fid": fid, "pkt": {"tag": 1}},
                               src=PPM_HW, packet=bytes(rng.randrange(1, 70))))
        return frame if rng.random() < 0.5 else relength(frame[:-1])
    records = [{"op": 3, "counter": 1, "value": 5}] * rng.randrange(3)
    frame = encode(Message(MsgType.COUNTER_REQ, {"seq": 1}, src=(2, 3), records=records))
    return frame if choice == 8 else relength(frame + bytes(rng.randrange(1, 40)))


class ModelFabric:
    """The model engine's fabric: keeps what it sends, in order."""

    def __init__(self):
        self.sent = deque()

    def attach(self, endpoint, handler):
        pass

    def send(self, src, msg):
        msg.src = src
        self.sent.append(msg)


class NoTracker:
    def ingress(self, *args):
        pass

    def dropped(self, *args):
        pass


class FlowEngineTB(TB):
    """Sources, sink, the model and the scoreboard (see the module docstring)."""

    def __init__(self, dut, *, p_add=0.5, p_delete=0.15, p_junk=0.05):
        super().__init__(dut)
        self.params = {**DEFAULTS, **PARAMS}
        self.design = FlowEngine(**self.params)
        self.issue_layout = self.design.lft.issue_layout
        self.model = ModelEngine(SLOT, ModelFabric(), NoTracker(),
                                 lft_buckets=self.params["lft_buckets"],
                                 lft_ways=self.params["lft_ways"], secret=DEFAULT_SECRET,
                                 frag_capacity=self.params["frag_capacity"],
                                 frag_timeout=self.params["frag_timeout"])
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_"), self.clk, dut.rst)
        self.fabric = AxiStreamSource(AxiStreamBus.from_prefix(dut, "fabric_in_"), self.clk,
                                      dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_"), self.clk, dut.rst)
        for endpoint in (self.source, self.fabric, self.sink):
            endpoint.log.setLevel(logging.WARNING)
        dut.slot.value = SLOT
        dut.secret.value = int.from_bytes(DEFAULT_SECRET, "little")
        dut.now.value = 0
        self.p_add, self.p_delete, self.p_junk = p_add, p_delete, p_junk
        self.frames = deque()          # (number, frame, ts, port) not yet seen by the LFT
        self.starts = deque()          # ts of the frames whose last beat has not gone in
        self.fabric_frames = deque()   # fabric frames not yet given to the model
        self.expected = {"packet": deque(), "stats": deque()}
        self.sent = 0                  # data frames
        self.fabric_sent = 0
        self.received = Counter()      # fabric frames out, by type
        self.oversize = 0
        self.installed = {}            # key -> fid the bench told the engine
        self.commands_issued = 0       # FLOW_ADD/FLOW_DELETE the LFT has taken
        self.next_index = 1
        self.mismatches = []
        self.clock = 0                 # the bench's time, ticks (see send)
        self.raw_last = None
        self.tick_wrap = 1 << self.params["timestamp_width"]
        cocotb.start_soon(self._drive_now())
        cocotb.start_soon(self._watch_lft())
        cocotb.start_soon(self._check_output())

    # --- stimulus ---------------------------------------------------------------------------

    def set_conditions(self, idle, backpressure):
        rng = self.rng
        self.source.set_pause_generator(rng.random() < idle for _ in itertools.count())
        self.fabric.set_pause_generator(rng.random() < idle for _ in itertools.count())
        self.sink.set_pause_generator(rng.random() < backpressure for _ in itertools.count())

    def send(self, frame, raw_ts):
        """Queue a data frame taken at ``raw_ts`` (ticks).

        The engine's clock only moves forward and a real one never jumps, so the bench's time
        is ``raw_ts`` with every step clamped to 0 .. ``2 * frag_timeout + 1`` ticks (a gap
        longer than the timeout stays longer than it); the model gets that time, the engine
        that time modulo ``2**timestamp_width``.
        """
        if self.raw_last is not None:
            self.clock += min(max(raw_ts - self.raw_last, 0), 2 * self.params["frag_timeout"] + 1)
        self.raw_last = raw_ts
        port = self.rng.getrandbits(8)
        self.frames.append((self.sent, bytes(frame), self.clock, port))
        if not self.starts:
            self.dut.now.value = self.clock % self.tick_wrap
        self.starts.append(self.clock)
        self.sent += 1
        self.source.send_nowait(AxiStreamFrame(frame, tuser=port))

    def send_fabric(self, frame):
        self.fabric_frames.append(bytes(frame))
        self.fabric_sent += 1
        self.fabric.send_nowait(AxiStreamFrame(frame))

    def _ppm(self, msg):
        """React as PPM-HW to a frame the engine sent."""
        rng = self.rng
        if msg.type == MsgType.FLOW_UNKNOWN and rng.random() < self.p_add:
            key = FlowKey(**msg.body["key"])
            fid = make_fid(rng.randrange(8), rng.randrange(30), self.next_index, rng.randrange(2))
            self.next_index += 1
            self.installed[key] = fid
            self.send_fabric(encode(Message(MsgType.FLOW_ADD, {"key": key._asdict(), "fid": fid},
                                            src=PPM_HW, dst=(SLOT, 30))))
        if self.installed and rng.random() < self.p_delete:
            key = rng.choice(list(self.installed))
            fid = self.installed.pop(key)
            if rng.random() < 0.2:
                fid ^= 1 << 5                                           # a stale FID
            self.send_fabric(encode(Message(MsgType.FLOW_DELETE,
                                            {"key": key._asdict(), "fid": fid},
                                            src=PPM_HW, dst=(SLOT, 30))))
        if rng.random() < self.p_junk:
            # cocotbext-axi sends nothing for a frame without bytes (the block test of the
            # receiver sends one, as an empty tlast beat).
            self.send_fabric(refused_fabric_frame(rng) or b"\x00")

    # --- monitors ---------------------------------------------------------------------------

    def model_key(self, frame):
        """The key the model gives ``frame``."""
        return parse_frame(frame).key

    async def _drive_now(self):
        """``now`` is the timestamp of the frame going in (the engine samples it with the
        frame's first beat), changed only between frames."""
        dut = self.dut
        while True:
            await RisingEdge(self.clk)
            if (dut.s_axis__tvalid.value == 1 and dut.s_axis__tready.value == 1 and
                    dut.s_axis__tlast.value == 1):
                self.starts.popleft()
                if self.starts:
                    dut.now.value = self.starts[0] % self.tick_wrap

    async def _watch_lft(self):
        """Runs the model in the order the LFT issues requests."""
        register = self.dut.lft.s_b
        valid_bit = self.issue_layout["valid"].offset
        while True:
            await RisingEdge(self.clk)
            # The request fields of a cycle without an issue may be X in Icarus (the LFT's
            # queues write their LUT RAM in every cycle, valid or not): only ``valid`` counts.
            value = register.value
            if str(value)[len(value) - 1 - valid_bit] != "1":
                continue
            issued = fields(self.issue_layout, value)
            if issued["req"]["tag"] >> COMMAND_BIT & 1:
                self.commands_issued += 1
                self._model_command()
            else:
                number, frame, ts, port = self.frames.popleft()
                if len(frame) > self.design.max_frame_bytes:
                    self.oversize += 1
                else:
                    self.model.ingest(number, frame, ts, port)
            self._collect()

    def _model_command(self, flush=False):
        """Give the model the fabric frames up to the next one that changes the LFT (all of
        them when ``flush``)."""
        while self.fabric_frames:
            before = self.model.stats["flow_adds"] + self.model.stats["flow_deletes"]
            self.model.receive(self.fabric_frames.popleft())
            if not flush and self.model.stats["flow_adds"] + self.model.stats["flow_deletes"] \
                    > before:
                return
        assert flush, "the LFT issued a command the bench never sent"

    def _collect(self):
        while self.model.fabric.sent:
            msg = self.model.fabric.sent.popleft()
            kind = "stats" if msg.type == MsgType.FLOW_STATS else "packet"
            self.expected[kind].append(msg)

    async def _check_output(self):
        while True:
            frame = await self.sink.recv()
            data = bytes(frame.tdata)
            msg_type = MsgType(data[0]) if data and data[0] in [t.value for t in MsgType] \
                else None
            kind = "stats" if msg_type == MsgType.FLOW_STATS else "packet"
            self.received[msg_type.name if msg_type else "?"] += 1
            if not self.expected[kind]:
                self.mismatches.append(f"unexpected {kind} frame {data[:32].hex()}")
                continue
            want = self.expected[kind].popleft()
            want_bytes = encode(want)
            user = frame.tuser if isinstance(frame.tuser, int) else set(frame.tuser)
            want_user = ENDPOINT.pack(slot=want.dst[0], unit=want.dst[1])
            if data != want_bytes or user not in (want_user, {want_user}):
                self.mismatches.append(
                    f"{kind} frame:\n  hardware {data[:96].hex()} ({len(data)} bytes, tuser "
                    f"{user})\n  model    {want_bytes[:96].hex()} ({len(want_bytes)} bytes, "
                    f"tuser {want_user})")
            self._ppm(want)

    # --- end of a run -------------------------------------------------------------------------

    def stats(self):
        return fields(self.design.stats_layout, self.dut.stats.value)

    async def drain(self, limit=400):
        """Wait until every frame has been answered and every fabric frame taken; fail when
        nothing moves for ``limit`` * 50 cycles."""
        progress, still = None, 0
        while still < limit:
            now = (len(self.frames), len(self.fabric_frames), sum(self.received.values()))
            still = still + 1 if now == progress else 0
            progress = now
            await ClockCycles(self.clk, 50)
            stats = self.stats()
            taken = sum(stats[n] for n in ("bad_frames", "unauthorised", "unexpected",
                                           "flow_adds", "flow_deletes"))
            commands = stats["flow_adds"] + stats["flow_deletes"]
            if (not self.frames and taken == self.fabric_sent and
                    self.commands_issued == commands and not self.expected["packet"]
                    and not self.expected["stats"] and self.source.empty() and
                    self.sink.empty() and self.dut.m_axis__tvalid.value == 0):
                await ClockCycles(self.clk, 50)
                if self.sink.empty() and not self.expected["stats"]:
                    break
        else:
            raise AssertionError(
                f"the engine did not drain: {len(self.frames)} frames not seen by the LFT, "
                f"{taken} of {self.fabric_sent} fabric frames taken, expected "
                f"{len(self.expected['packet'])} packet frames and "
                f"{len(self.expected['stats'])} FLOW_STATS; counters {stats}")
        self._model_command(flush=True)     # the refused frames after the last command
        self._collect()
        assert not self.expected["packet"] and not self.expected["stats"], \
            "the model sent frames for fabric frames the engine never applied"

    def check_counters(self):
        stats = self.stats()
        model = self.model
        want = {name: model.stats[name] for name in ENGINE_STATS}
        want["packets"] += self.oversize
        want["drop_oversize"] = self.oversize
        got = {name: stats[name] for name in ENGINE_STATS}
        assert got == want, f"engine counters:\n  hardware {got}\n  model    {want}"
        for block, names, model_block in (("lft", LFT_STATS, model.lft),
                                          ("frags", FRAG_STATS, model.frags)):
            got = {name: stats[block][name] for name in (*names, "occupancy")}
            want = {**{name: model_block.stats[name] for name in names},
                    "occupancy": len(model_block)}
            assert got == want, f"{block} counters:\n  hardware {got}\n  model    {want}"
        return stats


async def run_frames(tb, batches):
    """``batches`` of ``(label, [(ts seconds, frame)])``, each under the next conditions."""
    await tb.reset()
    for n, (label, frames) in enumerate(batches):
        tb.set_conditions(*CONDITIONS[n % len(CONDITIONS)])
        for ts, frame in frames:
            tb.send(frame, int(ts * TICKS_PER_SECOND))
        await tb.source.wait()
    await tb.drain()
    assert not tb.mismatches, f"{len(tb.mismatches)} mismatches, first:\n" + \
        "\n".join(tb.mismatches[:3])
    return tb.check_counters()


@cocotb.test(timeout_time=600, timeout_unit="sec")
async def every_capture_matches_the_model(dut):
    """Every packet of every capture (or ``FLOW_ENGINE_PER_CAPTURE`` of each), one capture
    after the other, each under its own idle and backpressure, the bench playing PPM-HW."""
    tb = FlowEngineTB(dut)
    captures = sorted(PCAPS.glob("*.pcap*"))
    assert captures, f"no captures in {PCAPS}"
    batches = [(path.name, spread(list(read_capture(path)), PER_CAPTURE)) for path in captures]
    stats = await run_frames(tb, batches)
    dut._log.info("%d frames, %d fabric frames in; out: %s; counters %s", tb.sent,
                  tb.fabric_sent, dict(tb.received), stats)
    assert stats["lft_hits"] > 0 and stats["lft"]["evictions"] >= 0


@cocotb.test(timeout_time=600, timeout_unit="sec")
async def builtin_scenario_repeated_matches_the_model(dut):
    """The built-in scenario (every kind of session, fragments, VLANs, malformed frames) three
    times over, fabric commands and refused fabric frames racing it."""
    tb = FlowEngineTB(dut, p_add=0.7, p_delete=0.3, p_junk=0.2)
    frames, _ = builtin_scenario()
    stats = await run_frames(tb, [("builtin", frames)] * 3)
    dut._log.info("%d frames, %d fabric frames in; out: %s; counters %s", tb.sent,
                  tb.fabric_sent, dict(tb.received), stats)
    assert stats["lft_hits"] > 0 and stats["bad_frames"] > 0


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def frames_longer_than_the_buffer_keeps_are_dropped(dut):
    """The built-in scenario with UDP frames of every size up to four times
    ``max_frame_bytes`` between its frames: the long ones are dropped as ``drop_oversize``
    (the model never sees them), everything else is as the model says."""
    tb = FlowEngineTB(dut, p_add=0.5, p_delete=0.2, p_junk=0.1)
    frames, _ = builtin_scenario()
    limit = tb.design.max_frame_bytes
    mixed = []
    for n, (ts, frame) in enumerate(frames):
        mixed.append((ts, frame))
        size = tb.rng.choice((limit, limit + 1, tb.rng.randrange(60, 4 * limit)))
        mixed.append((ts, min_frame(n % 200)[:42] + bytes(size - 42)))
    stats = await run_frames(tb, [("oversize", mixed)])
    assert stats["drop_oversize"] > 0 and stats["lft_hits"] > 0, stats


def min_frame(n):
    """A 64-byte UDP/IPv4 frame of flow ``n`` (so that each frame may be a flow of its own)."""
    header = bytes.fromhex("020000000001020000000002" "0800"             # Ethernet
                           "4500003200004000401100000a000001") + \
        (0x0A000100 + n).to_bytes(4, "big")                              # IPv4 to 10.0.1.n
    return header + bytes.fromhex("3039" "0035" "001e" "0000") + bytes(64 - 42)


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def output_stall_backs_up_to_the_input(dut):
    """``m_axis`` held off while 64-byte frames of new flows arrive back to back, until the
    stall has reached ``s_axis.tready`` (the parser's result queue full: it fills before the
    packet buffer), then let go: every frame still comes out as the model says. So the parser
    and the packet buffer, each behind its own input queue, take the same beats while one of
    them holds the input up."""
    tb = FlowEngineTB(dut, p_add=0.0, p_delete=0.0, p_junk=0.0)
    tb.set_conditions(0.0, 1.0)
    await tb.reset()
    for n in range(120):
        tb.send(min_frame(n), n)
    held = 0
    for _ in range(20000):
        await RisingEdge(tb.clk)
        if dut.s_axis__tvalid.value == 1 and dut.s_axis__tready.value == 0:
            held += 1
            if held == 200:
                break
    assert held == 200, "the output stall never reached the input"
    tb.set_conditions(0.0, 0.3)
    await tb.source.wait()
    await tb.drain()
    assert not tb.mismatches, f"{len(tb.mismatches)} mismatches, first:\n" + \
        "\n".join(tb.mismatches[:3])
    tb.check_counters()


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def line_rate_and_latency(dut):
    """Measures (and checks against the model, never asserts a figure): 64-byte frames back
    to back with the output always ready, first all LFT misses (64 flows), then all hits (one
    flow the bench installed first); and the latency of one frame into an idle engine, from
    the transfer of its last beat to the first beat of its fabric frame. Writes the figures to
    ``FLOW_ENGINE_BENCH_JSON``."""
    tb = FlowEngineTB(dut, p_add=0.0, p_delete=0.0, p_junk=0.0)
    tb.set_conditions(0.0, 0.0)
    await tb.reset()
    cycle, firsts, lasts, outs = [0], [], [], []
    tready_low = [0]
    in_frame, out_frame = [False], [False]

    async def watch():
        while True:
            await RisingEdge(tb.clk)
            cycle[0] += 1
            if dut.s_axis__tvalid.value == 1:
                if dut.s_axis__tready.value == 1:
                    if not in_frame[0]:
                        firsts.append(cycle[0])
                    in_frame[0] = dut.s_axis__tlast.value != 1
                    if not in_frame[0]:
                        lasts.append(cycle[0])
                else:
                    tready_low[0] += 1
            if dut.m_axis__tvalid.value == 1 and dut.m_axis__tready.value == 1:
                if not out_frame[0]:
                    outs.append(cycle[0])
                out_frame[0] = dut.m_axis__tlast.value != 1

    cocotb.start_soon(watch())
    await ClockCycles(tb.clk, tb.design.lft.buckets + 10)    # the LFT clears itself

    async def burst(frames):
        del firsts[:], lasts[:], outs[:]
        tready_low[0] = 0
        for frame in frames:
            tb.send(frame, 0)
        while len(outs) < len(frames):
            await RisingEdge(tb.clk)
        return {"cycles_per_frame": (firsts[-1] - firsts[0]) / (len(frames) - 1),
                "out_cycles_per_frame": (outs[-1] - outs[0]) / (len(frames) - 1),
                "tready_low_cycles": tready_low[0],
                "latency_cycles": outs[0] - lasts[0]}

    count = 64
    miss = await burst([min_frame(n) for n in range(count)])
    single_miss = await burst([min_frame(200)] * 2)
    key_frame = min_frame(7)
    tb.send_fabric(encode(Message(MsgType.FLOW_ADD, {
        "key": tb.model_key(key_frame)._asdict(), "fid": make_fid(1, 2, 99)}, src=PPM_HW,
        dst=(SLOT, 30))))
    await ClockCycles(tb.clk, 200)
    hit = await burst([key_frame] * count)
    await ClockCycles(tb.clk, 200)
    single_hit = await burst([key_frame] * 2)
    await tb.drain()
    assert not tb.mismatches, tb.mismatches[0]
    tb.check_counters()
    lanes = tb.design.fabric_width // 8
    figures = {
        "data_width": tb.design.data_width,
        "fabric_width": tb.design.fabric_width,
        "frame_bytes": 64,
        "frames": count,
        "beats_per_frame": 64 // (tb.design.data_width // 8),
        "cycles_per_min_frame": max(hit["cycles_per_frame"], miss["cycles_per_frame"]),
        "cycles_per_min_frame_hit": hit["cycles_per_frame"],
        "cycles_per_min_frame_miss": miss["cycles_per_frame"],
        "out_cycles_per_min_frame_hit": hit["out_cycles_per_frame"],
        "out_cycles_per_min_frame_miss": miss["out_cycles_per_frame"],
        "tready_low_cycles_hit": hit["tready_low_cycles"],
        "tready_low_cycles_miss": miss["tready_low_cycles"],
        "fabric_beats_packet": -(-(28 + 64) // lanes),
        "fabric_beats_flow_unknown": -(-(72 + 64) // lanes),
        "latency_hit_cycles": single_hit["latency_cycles"],
        "latency_miss_cycles": single_miss["latency_cycles"],
        "parse_latency_cycles": Parser.latency,
        "lft_latency_cycles": tb.design.lft.latency,
    }
    dut._log.info("flow engine figures: %s", figures)
    out = os.environ.get("FLOW_ENGINE_BENCH_JSON")
    if out:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n")
