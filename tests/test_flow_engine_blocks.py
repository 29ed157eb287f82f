# amaranth: UnusedElaboratable=no
"""The flow engine's smaller blocks in Amaranth's simulator, each against what it must do: the
packet buffer (frames in, the same bytes out as words, over widths, cuts and a full RAM), the
frame assembler (prefix and packet bytes, every prefix alignment, dropped packets skipped),
the command receiver (every fabric frame classified as :func:`sim.wire.decode` and the model's
source check classify it), the round-robin merge; parameter checks of each and of the engine.

Random tests print their seed and replay with ``SEED=<n>``.
"""

import re

import pytest
from amaranth.sim import Simulator

from hdl.flow_engine.arbiter import RoundRobin
from hdl.flow_engine.assembler import FrameAssembler
from hdl.flow_engine.command_rx import RX_STATS, CommandReceiver
from hdl.gft.queue import CreditQueue
from hdl.flow_engine.engine import FlowEngine
from hdl.flow_engine.lft import LftOp
from hdl.flow_engine.packet_buffer import PacketBuffer
from hdl.flow_engine.register_slice import RegisterSlice
from hdl.wire import MsgType
from sim.amaranth.clash import clash_junk
from sim.cocotb.benches.flow_engine import refused_fabric_frame
from sim.cocotb.stream import pack, unpack
from sim.flowkey import FlowKey
from sim.randkeys import random_flow_key
from sim.wire import PPM_HW, Message, WireError, decode, encode, make_fid
from tests.seeds import seeded_rng


def simulate(dut, bench, *others):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    for testbench in others:
        sim.add_testbench(testbench, background=True)
    sim.run()


def beats(frame, lanes, rng=None):
    """``(tdata, tkeep, tlast)`` per beat; sometimes (``rng``) a frame that fills its last beat
    gets an extra empty ``tlast`` beat, and the lanes past the end carry junk."""
    chunks = [frame[i:i + lanes] for i in range(0, len(frame), lanes)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        junk = bytes(rng.getrandbits(8) for _ in range(lanes - len(chunk))) if rng else b""
        out.append((int.from_bytes(chunk + junk, "little"), (1 << len(chunk)) - 1,
                    i == len(chunks) - 1))
    if rng and frame and len(frame) % lanes == 0 and rng.random() < 0.3:
        out[-1] = out[-1][:2] + (False,)
        out.append((rng.getrandbits(8 * lanes), 0, True))
    return out


# --- packet buffer --------------------------------------------------------------------------------

@pytest.mark.parametrize("data_width, word_width, capacity, max_frame, idle, backpressure", [
    (64, 256, 1024, 256, 0.0, 0.0),
    (64, 256, 1024, 256, 0.3, 0.6),
    (8, 32, 256, 64, 0.2, 0.2),
    (64, 64, 512, 128, 0.0, 0.8),
    (32, 128, 512, 64, 0.5, 0.0),
])
def test_packet_buffer_gives_back_every_frame_as_words(request, data_width, word_width, capacity,
                                                       max_frame, idle, backpressure):
    """Frames of 0 to 3 * max_frame bytes: each comes back as ceil(min(n, max) / word) words
    holding its bytes; a RAM only a few frames deep makes the input wait, never lose."""
    rng = seeded_rng(request.node.name)
    dut = PacketBuffer(data_width=data_width, word_width=word_width, capacity_bytes=capacity,
                       max_frame_bytes=max_frame)
    lanes, word_bytes = data_width // 8, word_width // 8
    frames = [bytes(rng.getrandbits(8) for _ in range(rng.choice(
        (0, 1, lanes, word_bytes, rng.randrange(3 * max_frame), max_frame, max_frame + 1))))
        for _ in range(60)]
    queue = [beat for frame in frames for beat in beats(frame, lanes, rng)]
    expected = []
    for frame in frames:
        kept = frame[:max_frame]
        expected += [kept[i:i + word_bytes] for i in range(0, len(kept), word_bytes)]
    got = []
    limit = 40 * len(queue) + 1000

    async def bench(ctx):
        offering, cycle = False, 0
        while len(got) < len(expected) or queue:
            assert cycle < limit, "stuck"
            if not offering:
                offering = bool(queue) and rng.random() >= idle
            ctx.set(dut.s_axis.tvalid, offering)
            if offering:
                tdata, tkeep, tlast = queue[0]
                ctx.set(dut.s_axis.tdata, tdata)
                ctx.set(dut.s_axis.tkeep, tkeep)
                ctx.set(dut.s_axis.tlast, tlast)
            ready = rng.random() >= backpressure
            ctx.set(dut.words.ready, ready)
            if offering and ctx.get(dut.s_axis.tready):
                queue.pop(0)
                offering = False
            if ctx.get(dut.words.valid) and ready:
                got.append(ctx.get(dut.words.payload))
            await ctx.tick()
            cycle += 1
        ctx.set(dut.s_axis.tvalid, 0)
        for _ in range(10):
            assert not ctx.get(dut.words.valid), "a word too many"
            await ctx.tick()

    # The word RAM is no_rw_check: a read that meets the write of its address is never used.
    clashes = {}
    simulate(dut, bench, clash_junk(lambda: [dut.ram_ports], rng, clashes))
    assert clashes, "no read met a write: the junk proved nothing"
    assert len(got) == len(expected)
    for n, (word, want) in enumerate(zip(got, expected)):
        assert word.to_bytes(word_bytes, "little")[:len(want)] == want, f"word {n}"


# --- frame assembler ------------------------------------------------------------------------------

@pytest.mark.parametrize("word_width, prefixes, backpressure", [
    (256, (28, 72, 31), 0.0),
    (256, (28, 72, 31), 0.5),
    (64, (28, 72, 31), 0.3),
    (128, (16, 32, 5), 0.3),
    (8, (3, 1), 0.2),
])
def test_assembler_sends_prefix_then_packet_and_skips_dropped_packets(request, word_width,
                                                                      prefixes, backpressure):
    rng = seeded_rng(request.node.name)
    lanes = word_width // 8
    dut = FrameAssembler(word_width=word_width, prefix_lengths=prefixes, user_width=16,
                         max_words=300)
    jobs, words, frames = [], [], []
    for _ in range(50):
        kind = rng.randrange(len(prefixes))
        prefix = bytes(rng.getrandbits(8) for _ in range(prefixes[kind]))
        packet = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, lanes,
                                                                     rng.randrange(300)))))
        emit, user = rng.random() < 0.8, rng.getrandbits(16)
        count = -(-len(packet) // lanes)
        padded = packet + bytes(rng.getrandbits(8) for _ in range(count * lanes - len(packet)))
        words += [int.from_bytes(padded[i:i + lanes], "little")
                  for i in range(0, len(padded), lanes)]
        jobs.append(pack(dut.job_layout, {
            "emit": emit, "kind": kind, "prefix": int.from_bytes(prefix, "little"),
            "words": count, "total": len(prefix) + len(packet), "user": user}))
        if emit:
            frames.append((prefix + packet, user))
    got, beat_bytes, users = [], b"", set()
    limit = 100 * len(words) + 1000

    async def bench(ctx):
        cycle = 0
        job_offer = word_offer = False
        while len(got) < len(frames) or jobs or words:
            assert cycle < limit, "stuck"
            job_offer = job_offer or (bool(jobs) and rng.random() < 0.7)
            word_offer = word_offer or (bool(words) and rng.random() < 0.7)
            ctx.set(dut.jobs.valid, job_offer)
            ctx.set(dut.words.valid, word_offer)
            if job_offer:
                ctx.set(dut.jobs.payload.as_value(), jobs[0])
            if word_offer:
                ctx.set(dut.words.payload, words[0])
            ready = rng.random() >= backpressure
            ctx.set(dut.m_axis.tready, ready)
            if job_offer and ctx.get(dut.jobs.ready):
                jobs.pop(0)
                job_offer = False
            if word_offer and ctx.get(dut.words.ready):
                words.pop(0)
                word_offer = False
            if ctx.get(dut.m_axis.tvalid) and ready:
                nonlocal beat_bytes
                keep = ctx.get(dut.m_axis.tkeep)
                count = bin(keep).count("1")
                assert keep == (1 << count) - 1, "tkeep with holes"
                last = ctx.get(dut.m_axis.tlast)
                assert last or count == lanes, "partial beat before tlast"
                beat_bytes += ctx.get(dut.m_axis.tdata).to_bytes(lanes, "little")[:count]
                users.add(ctx.get(dut.m_axis.tuser))
                if last:
                    got.append((beat_bytes, users.copy()))
                    beat_bytes = b""
                    users.clear()
            await ctx.tick()
            cycle += 1

    simulate(dut, bench)
    assert [(frame, {user}) for frame, user in frames] == got


# --- command receiver -----------------------------------------------------------------------------

def expected_class(frame):
    """What the model does with a fabric frame at a flow engine: a counter name, and the
    command when it is one."""
    try:
        msg = decode(frame)
    except WireError:
        return "bad_frames", None
    if msg.type in (MsgType.FLOW_ADD, MsgType.FLOW_DELETE):
        if msg.src != PPM_HW:
            return "unauthorised", None
        op = LftOp.ADD if msg.type == MsgType.FLOW_ADD else LftOp.DELETE
        return ("flow_adds" if op == LftOp.ADD else "flow_deletes",
                (op, FlowKey(**msg.body["key"]), msg.body["fid"]))
    return "unexpected", None


@pytest.mark.parametrize("data_width, idle, backpressure", [
    (256, 0.0, 0.0), (256, 0.4, 0.7), (64, 0.2, 0.3), (8, 0.0, 0.5), (24, 0.3, 0.0)])
def test_command_receiver_classifies_every_fabric_frame_as_the_model(request, data_width, idle,
                                                                     backpressure):
    rng = seeded_rng(request.node.name)
    lanes = data_width // 8
    dut = CommandReceiver(data_width=data_width)
    frames = []
    for _ in range(120):
        if rng.random() < 0.5:
            key = random_flow_key(rng)
            msg_type = rng.choice((MsgType.FLOW_ADD, MsgType.FLOW_DELETE))
            frames.append(encode(Message(msg_type, {"key": key._asdict(),
                                                    "fid": make_fid(1, 2, rng.getrandbits(21))},
                                         src=PPM_HW, dst=(3, 30))))
        else:
            frames.append(refused_fabric_frame(rng))
    # Refused frames until every refused class is in the mix (one kind in eleven is from a
    # PP: some seeds drew none in 60).
    refused = {"bad_frames", "unauthorised", "unexpected"}
    while not refused <= {expected_class(frame)[0] for frame in frames}:
        frames.insert(rng.randrange(len(frames) + 1), refused_fabric_frame(rng))
    classes = [expected_class(frame) for frame in frames]
    queue = [beat for frame in frames for beat in beats(frame, lanes, rng)]
    commands, want_commands = [], [c for _, c in classes if c]
    result = {}
    limit = 20 * len(queue) + 20 * len(frames) + 1000

    async def bench(ctx):
        offering, cycle = False, 0
        while queue or len(commands) < len(want_commands):
            assert cycle < limit, "stuck"
            if not offering:
                offering = bool(queue) and rng.random() >= idle
            ctx.set(dut.fabric_in.tvalid, offering)
            if offering:
                tdata, tkeep, tlast = queue[0]
                ctx.set(dut.fabric_in.tdata, tdata)
                ctx.set(dut.fabric_in.tkeep, tkeep)
                ctx.set(dut.fabric_in.tlast, tlast)
            ready = rng.random() >= backpressure
            ctx.set(dut.commands.ready, ready)
            if offering and ctx.get(dut.fabric_in.tready):
                queue.pop(0)
                offering = False
            if ctx.get(dut.commands.valid) and ready:
                c = unpack(dut.command_layout, ctx.get(dut.commands.payload.as_value()))
                commands.append((LftOp(c["op"]), FlowKey.unpack(c["key"]), c["fid"]))
            await ctx.tick()
            cycle += 1
        ctx.set(dut.fabric_in.tvalid, 0)
        await ctx.tick().repeat(CommandReceiver.LATENCY)   # the last frames' counts
        result.update({name: ctx.get(getattr(dut.stats, name)) for name in RX_STATS})

    simulate(dut, bench)
    assert commands == want_commands
    counts = {name: sum(1 for c, _ in classes if c == name) for name in RX_STATS}
    assert result == counts


def test_command_receiver_holds_fabric_in_while_its_queue_is_full(request):
    """FLOW_ADDs back to back (two beats each) while ``commands`` is not read for a long
    time: none is lost, and the input waits."""
    rng = seeded_rng(request.node.name)
    dut = CommandReceiver(data_width=256)
    keys = [random_flow_key(rng) for _ in range(30)]
    frames = [encode(Message(MsgType.FLOW_ADD, {"key": key._asdict(), "fid": n},
                             src=PPM_HW, dst=(3, 30))) for n, key in enumerate(keys)]
    queue = [beat for frame in frames for beat in beats(frame, 32)]
    commands, held_up = [], [0]

    async def bench(ctx):
        for cycle in range(2000):
            ctx.set(dut.fabric_in.tvalid, bool(queue))
            if queue:
                tdata, tkeep, tlast = queue[0]
                ctx.set(dut.fabric_in.tdata, tdata)
                ctx.set(dut.fabric_in.tkeep, tkeep)
                ctx.set(dut.fabric_in.tlast, tlast)
            ready = cycle > 300 and cycle % 7 == 0
            ctx.set(dut.commands.ready, ready)
            if queue and ctx.get(dut.fabric_in.tready):
                queue.pop(0)
            elif queue:
                held_up[0] += 1
            if ctx.get(dut.commands.valid) and ready:
                c = unpack(dut.command_layout, ctx.get(dut.commands.payload.as_value()))
                commands.append(c["fid"])
            await ctx.tick()

    simulate(dut, bench)
    assert commands == list(range(len(frames)))
    assert held_up[0] > 250


# --- round robin ----------------------------------------------------------------------------------

def test_round_robin_alternates_and_holds_an_offer_until_it_is_taken(request):
    rng = seeded_rng(request.node.name)
    dut = RoundRobin(shape=8)
    got = []

    async def bench(ctx):
        a, b = list(range(0, 40)), list(range(100, 140))
        shown = None
        for cycle in range(400):
            ctx.set(dut.a.valid, bool(a))
            ctx.set(dut.b.valid, bool(b) and (cycle > 3))
            if a:
                ctx.set(dut.a.payload, a[0])
            if b:
                ctx.set(dut.b.payload, b[0])
            ready = rng.random() < 0.5
            ctx.set(dut.o.ready, ready)
            valid, payload = ctx.get(dut.o.valid), ctx.get(dut.o.payload)
            if shown is not None:
                assert valid and payload == shown, f"cycle {cycle}: offer changed"
            if ctx.get(dut.a.ready) and a:
                a.pop(0)
            if ctx.get(dut.b.ready) and b and cycle > 3:
                b.pop(0)
            if valid and ready:
                got.append(payload)
            shown = payload if valid and not ready else None
            await ctx.tick()

    simulate(dut, bench)
    assert sorted(got) == list(range(40)) + list(range(100, 140))
    # While both offer, the two alternate.
    start = got.index(100) - 1
    end = min(got.index(39), got.index(139))
    both = got[start:end + 1]
    assert all((x < 100) != (y < 100) for x, y in zip(both, both[1:])), both


# --- register slice -------------------------------------------------------------------------------

def test_register_slice_passes_one_payload_per_clock_and_holds_it_under_backpressure(request):
    rng = seeded_rng(request.node.name)
    dut = RegisterSlice(shape=16)
    sent, got = list(range(300)), []

    async def bench(ctx):
        pending, shown = list(sent), None
        for cycle in range(2000):
            # Full rate for 100 cycles, then idle cycles on the input and backpressure on the
            # output (the payload's enable is worked out from a copy of the valid flag).
            offer = bool(pending) and (cycle < 100 or rng.random() < 0.6)
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload, pending[0] if offer else rng.randrange(1 << 16))
            ready = cycle < 100 or rng.random() < 0.5
            ctx.set(dut.o.ready, ready)
            valid, payload = ctx.get(dut.o.valid), ctx.get(dut.o.payload)
            if shown is not None:
                assert valid and payload == shown, f"cycle {cycle}: offer changed"
            if offer and ctx.get(dut.i.ready):
                pending.pop(0)
            if valid and ready:
                got.append((cycle, payload))
            shown = payload if valid and not ready else None
            await ctx.tick()

    simulate(dut, bench)
    assert [p for _, p in got] == sent
    assert [c for c, _ in got[:99]] == list(range(1, 100))     # one per clock, one cycle late


# --- credit queue ---------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 3, 6])
def test_credit_queue_keeps_order_and_level_with_the_push_given_a_cycle_ahead(request, depth):
    """The producer keeps credits, so it never pushes into a full queue; each push is said a
    cycle ahead (``push_next``) and its payload shown in the cycle of the push. A payload of
    130 bits spans three chunks, each moved by its own copy of the push."""
    rng = seeded_rng(request.node.name)
    dut = CreditQueue(shape=130, depth=depth)
    sent, got = [rng.getrandbits(130) for _ in range(400)], []

    async def bench(ctx):
        pending, credits, pushing, held = list(sent), depth, None, 0
        for cycle in range(4000):
            if not pending and pushing is None and not held:
                break
            assert ctx.get(dut.level) == held, f"cycle {cycle}: level"
            assert ctx.get(dut.o.valid) == (held > 0), f"cycle {cycle}: valid"
            # This cycle's push, said last cycle: its payload now, junk otherwise.
            ctx.set(dut.payload, pushing if pushing is not None else rng.getrandbits(130))
            ready = rng.random() < 0.5
            ctx.set(dut.o.ready, ready)
            popped = held > 0 and ready
            if popped:
                got.append(ctx.get(dut.o.payload))
            held += (pushing is not None) - popped
            credits += popped
            # Bursts at full rate, then pauses.
            push_next = bool(pending) and credits > 0 and (cycle % 64 < 40 or rng.random() < 0.3)
            ctx.set(dut.push_next, push_next)
            if push_next:
                credits -= 1
            pushing = pending.pop(0) if push_next else None
            await ctx.tick()
        else:
            raise AssertionError("stuck")

    simulate(dut, bench)
    assert got == sent


# --- parameters -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, kwargs, message", [
    (PacketBuffer, dict(data_width=12), "data_width must be 8 times a power of two up to 512, "
                                        "not 12"),
    (PacketBuffer, dict(data_width=64, word_width=192),
     "word_width must be data_width times a power of two, not 192"),
    (PacketBuffer, dict(data_width=64, word_width=32),
     "word_width must be data_width times a power of two, not 32"),
    (PacketBuffer, dict(max_frame_bytes=100),
     "max_frame_bytes must be a positive multiple of 32 below 65535, not 100"),
    (PacketBuffer, dict(max_frame_bytes=65536, capacity_bytes=1 << 17),
     "max_frame_bytes must be a positive multiple of 32 below 65535, not 65536"),
    (PacketBuffer, dict(capacity_bytes=24576),
     "capacity_bytes must be a power of two of at least 2 * max_frame_bytes, not 24576"),
    (PacketBuffer, dict(capacity_bytes=16384),
     "capacity_bytes must be a power of two of at least 2 * max_frame_bytes, not 16384"),
    (FrameAssembler, dict(word_width=12, prefix_lengths=(1,), user_width=1, max_words=1),
     "word_width must be a positive multiple of 8, not 12"),
    (FrameAssembler, dict(word_width=64, prefix_lengths=(), user_width=1, max_words=1),
     "prefix_lengths must be positive integers, not ()"),
    (FrameAssembler, dict(word_width=64, prefix_lengths=(3, 0), user_width=1, max_words=1),
     "prefix_lengths must be positive integers, not (3, 0)"),
    (FrameAssembler, dict(word_width=64, prefix_lengths=(3,), user_width=1, max_words=0),
     "max_words must be a positive integer, not 0"),
    (CreditQueue, dict(shape=8, depth=0), "depth must be a positive integer, not 0"),
    (CommandReceiver, dict(data_width=0), "data_width must be a positive multiple of 8, not 0"),
    (CommandReceiver, dict(data_width=9), "data_width must be a positive multiple of 8, not 9"),
    (FlowEngine, dict(timestamp_width=25), "timestamp_width must be an integer from 4 to 24, "
                                           "not 25"),
    (FlowEngine, dict(timestamp_width=3), "timestamp_width must be an integer from 4 to 24, "
                                          "not 3"),
])
def test_bad_parameters_are_refused(cls, kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cls(**kwargs)
