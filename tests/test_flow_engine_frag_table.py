# amaranth: UnusedElaboratable=no
"""The hardware fragment table (:class:`hdl.flow_engine.frag_table.FragmentTable`) in Amaranth's
simulator against the golden model :class:`sim.packets.fragments.FragmentTable`: every
packet's key and status, the counters, and the entries left (identity, key, first-fragment
time, age order). Random fragment trains with loss, reordering, reused IP IDs, expiry and
eviction on tiny tables; the real fragmented captures; timestamps that wrap; timing;
parameters.

Random tests print their seed and replay with ``SEED=<n>``.
"""

import random
from collections import namedtuple
from pathlib import Path

import pytest
from amaranth.sim import Simulator

from hdl.flow_engine.frag_table import FRAG_STATS, FragmentTable, FragStatus
from sim.cocotb.stream import pack, unpack
from sim.flowkey import FlowKey
from sim.packets.capture import read_capture
from sim.packets.fragments import FragmentTable as ModelTable
from sim.packets.parse import Frag, parse_frame
from tests.seeds import seeded_rng


PCAPS = Path(__file__).resolve().parents[2] / "shared" / "pcaps"
TAG_WIDTH = 16
Packet = namedtuple("Packet", "key frag")      # what the model's resolve reads of a parse


def request_value(dut, packet, ts, tag):
    frag = {"valid": 0} if packet.frag is None else {
        "valid": 1, "more": int(packet.frag.more), "offset": packet.frag.offset,
        "ident": packet.frag.ident, "proto": packet.frag.proto}
    frag_layout = dut.request_layout["frag"].shape
    return pack(dut.request_layout, {
        "key": packet.key.pack() if packet.key else 0, "frag": pack(frag_layout, frag),
        "keyed": int(packet.key is not None), "ts": ts % (1 << dut.timestamp_width), "tag": tag})


class Run:
    results = None      # [(cycle, {"key", "status", "tag"})]
    sent = None         # cycles of the transfers
    stats = None
    entries = None      # [(identity tuple, key tuple, born, rank)] of the valid entries


def simulate(dut, packets, times, *, rng=None, idle=0.0, backpressure=0.0, now=None,
             not_before=None):
    """``packets`` with timestamps ``times`` (``now`` follows them, or is ``now(cycle)``);
    packet ``n`` is offered from cycle ``not_before[n]`` on."""
    rng = rng or random.Random(0)
    run = Run()
    run.results, run.sent = [], []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        pending = list(enumerate(zip(packets, times)))
        offering, cycle, shown = False, 0, None
        current = times[0] if times else 0
        while len(run.results) < len(packets):
            assert cycle < 20 * len(packets) + 100, "stuck"
            if not offering:
                offering = (bool(pending) and rng.random() >= idle and
                            (not_before is None or cycle >= not_before[pending[0][0]]))
            if offering:
                n, (packet, ts) = pending[0]
                current = ts
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload.as_value(), request_value(dut, packet, ts, n))
            else:
                ctx.set(dut.i.valid, 0)
            stamp = now(cycle) if now else current
            ctx.set(dut.now, stamp % (1 << dut.timestamp_width))
            ready = rng.random() >= backpressure
            ctx.set(dut.o.ready, ready)
            valid = ctx.get(dut.o.valid)
            payload = ctx.get(dut.o.payload.as_value())
            if shown is not None:
                assert valid and payload == shown, f"cycle {cycle}: result withdrawn or changed"
            if offering and ctx.get(dut.i.ready):
                pending.pop(0)
                run.sent.append(cycle)
                offering = False
            if valid and ready:
                run.results.append((cycle, unpack(dut.result_layout, payload)))
            shown = payload if valid and not ready else None
            await ctx.tick()
            cycle += 1
        await ctx.tick()
        run.stats = {name: ctx.get(getattr(dut.stats, name)) for name in
                     (*FRAG_STATS, "occupancy")}
        run.entries = []
        for e, entry in enumerate(dut.entries):
            if ctx.get(entry.valid):
                word = ctx.get(dut.ids.data[e])
                ident, ports = word["identity"], word["ports"]
                run.entries.append(((ident["src_addr"], ident["dst_addr"], ident["proto"],
                                     ident["ident"], ident["zone"]),
                                    (ports["src_port"], ports["dst_port"], ports["proto"]),
                                    ctx.get(entry.born), ctx.get(entry.rank)))

    sim.add_testbench(bench)
    sim.run()
    return run


STATUS = {"unfragmented": FragStatus.UNFRAGMENTED, "first": FragStatus.FIRST,
          "matched": FragStatus.MATCHED, "unmatched": FragStatus.UNMATCHED,
          "dropped": FragStatus.DROPPED}


def check(dut, packets, times, run):
    model = ModelTable(capacity=dut.capacity, timeout=dut.timeout)
    for n, (packet, ts, (_, got)) in enumerate(zip(packets, times, run.results)):
        want = model.resolve(packet, ts)
        assert got["tag"] == n
        assert FragStatus(got["status"]) == STATUS[want.status], f"packet {n}"
        if want.key is not None:
            assert FlowKey.unpack(got["key"]) == want.key, f"packet {n}"
    assert {name: run.stats[name] for name in FRAG_STATS} == \
        {name: model.stats[name] for name in FRAG_STATS}
    assert run.stats["occupancy"] == len(model)
    # The entries, oldest first, as the model holds them.
    hw = [(ident, ports, born) for ident, ports, born, _ in sorted(run.entries,
                                                                  key=lambda e: e[3])]
    sw = [(ident, (key.src_port, key.dst_port, key.proto), born % (1 << dut.timestamp_width))
          for ident, (born, key) in model._entries.items()]
    assert hw == sw
    assert sorted(rank for *_, rank in run.entries) == list(range(len(run.entries)))


# --- traffic --------------------------------------------------------------------------------------

def random_traffic(rng, count, *, datagrams, timeout):
    """Fragments of ``datagrams`` datagrams (first and later fragments in any order, some lost,
    IP IDs reused), unfragmented and dropped packets between, time moving in steps around
    ``timeout``."""
    idents = []
    for _ in range(datagrams):
        v6 = rng.random() < 0.5
        base = 0 if v6 else 0xFFFF << 32
        src, dst = base | rng.getrandbits(32 if not v6 else 128), base | rng.getrandbits(32)
        idents.append((src, dst, rng.choice((6, 17, 44 if v6 else 1)),
                       rng.getrandbits(32 if v6 else 16), rng.choice((0, 5, 0x123456))))
    packets, times, t = [], [], 0
    for _ in range(count):
        t += rng.choice((0, 0, 1, timeout // 3, timeout))
        kind = rng.random()
        if kind < 0.1:
            packets.append(Packet(None, None))
        elif kind < 0.25:
            packets.append(Packet(FlowKey(rng.getrandbits(128), rng.getrandbits(128),
                                          rng.getrandbits(16), rng.getrandbits(16), 6), None))
        else:
            src, dst, proto, ident, zone = rng.choice(idents)
            first = rng.random() < 0.4
            upper = rng.choice((proto, 17)) if first else proto
            key = FlowKey(src, dst, rng.getrandbits(16) if first else 0,
                          rng.getrandbits(16) if first else 0, upper, zone)
            frag = Frag(ident=ident, offset=0 if first else 8 * rng.randrange(1, 200),
                        more=first or rng.random() < 0.5, proto=proto)
            packets.append(Packet(key, frag))
        times.append(t)
    return packets, times


@pytest.mark.parametrize("capacity", [1, 2, 3, 5])
def test_random_fragment_trains_match_the_model(request, capacity):
    rng = seeded_rng(request.node.name)
    dut = FragmentTable(capacity=capacity, timestamp_width=16, timeout=40, tag_width=TAG_WIDTH)
    packets, times = random_traffic(rng, 150, datagrams=capacity + 3, timeout=40)
    check(dut, packets, times, simulate(dut, packets, times, rng=rng))


@pytest.mark.parametrize("capacity, digest_width, idle, backpressure", [
    (3, 1, 0.0, 0.0), (8, 1, 0.0, 0.0), (8, 2, 0.2, 0.2), (5, 1, 0.3, 0.3)])
def test_digest_collisions_still_match_the_model(request, capacity, digest_width, idle,
                                                 backpressure):
    """Digests of 1 or 2 bits: most entries share a fragment's digest, so the table probes
    candidate after candidate, and must still find exactly the model's entry."""
    rng = seeded_rng(request.node.name)
    dut = FragmentTable(capacity=capacity, timestamp_width=16, timeout=40, tag_width=TAG_WIDTH,
                        digest_width=digest_width)
    packets, times = random_traffic(rng, 200, datagrams=capacity + 3, timeout=40)
    run = simulate(dut, packets, times, rng=rng, idle=idle, backpressure=backpressure)
    check(dut, packets, times, run)
    if not idle and not backpressure:
        # Some fragment was answered later than the eight cycles of a single probe.
        assert any(c - s > 8 for (c, _), s in zip(run.results, run.sent))


@pytest.mark.slow
@pytest.mark.parametrize("capacity", [1, 4, 7, 16])
def test_long_random_fragment_trains_match_the_model(request, capacity):
    rng = seeded_rng(request.node.name)
    # Time wraps around 2**14 ticks a few times; it advances at most 200 ticks a cycle, within
    # the 2**12 / 16 the scanner needs.
    dut = FragmentTable(capacity=capacity, timestamp_width=14, timeout=200, tag_width=TAG_WIDTH)
    packets, times = random_traffic(rng, 800, datagrams=capacity + 5, timeout=200)
    check(dut, packets, times, simulate(dut, packets, times, rng=rng, idle=0.2,
                                        backpressure=0.3))


@pytest.mark.parametrize("idle, backpressure", [(0.5, 0.0), (0.0, 0.7), (0.4, 0.4)])
def test_random_fragment_trains_under_idle_and_backpressure_match_the_model(request, idle,
                                                                           backpressure):
    rng = seeded_rng(request.node.name)
    dut = FragmentTable(capacity=4, timestamp_width=16, timeout=40, tag_width=TAG_WIDTH)
    packets, times = random_traffic(rng, 100, datagrams=6, timeout=40)
    check(dut, packets, times, simulate(dut, packets, times, rng=rng, idle=idle,
                                        backpressure=backpressure))


@pytest.mark.parametrize("name", ["zeek_ipv4_fragmented-3.pcap", "zeek_ipv4_fragmented-syn.pcap",
                                  "ndpi_dns_fragmented.pcap"])
def test_real_fragmented_captures_match_the_model(name):
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"{name} not in {PCAPS}")
    packets, times, t = [], [], 0
    for ts, frame in read_capture(path):
        parsed = parse_frame(frame)
        t = max(t, int(ts * 1000))                  # milliseconds, never backwards
        packets.append(Packet(parsed.key, parsed.frag))
        times.append(t)
    dut = FragmentTable(capacity=4, timestamp_width=24, timeout=30_000, tag_width=TAG_WIDTH)
    run = simulate(dut, packets, times)
    check(dut, packets, times, run)
    assert run.stats["first"] > 0


def first_and_later(rng):
    key = FlowKey.of("10.1.1.1", "10.2.2.2", 17, 5353, 53)
    first = Packet(key, Frag(ident=77, offset=0, more=True, proto=17))
    later = Packet(key._replace(src_port=0, dst_port=0), Frag(ident=77, offset=1480, more=False,
                                                              proto=17))
    return first, later


def test_an_entry_no_packet_looks_at_does_not_wrap_into_youth():
    """Timestamps of 8 bits: the later fragment arrives 2**8 + 10 ticks after the first, when
    its age modulo 2**8 would be 10, within the timeout; the scanner has marked it stale."""
    dut = FragmentTable(capacity=2, timestamp_width=8, timeout=30, tag_width=TAG_WIDTH)
    first, later = first_and_later(None)
    times = [0, 266]
    run = simulate(dut, [first, later], times, not_before=[0, 100],
                   now=lambda cycle: 0 if cycle < 5 else min(266, 3 * (cycle - 5)))
    check(dut, [first, later], times, run)
    assert FragStatus(run.results[1][1]["status"]) == FragStatus.UNMATCHED


def test_age_exactly_the_timeout_still_matches_and_one_tick_more_does_not():
    dut = FragmentTable(capacity=2, timestamp_width=16, timeout=30, tag_width=TAG_WIDTH)
    first, later = first_and_later(None)
    packets, times = [first, later, later], [100, 130, 131]
    run = simulate(dut, packets, times)
    check(dut, packets, times, run)
    assert [FragStatus(r["status"]) for _, r in run.results] == \
        [FragStatus.FIRST, FragStatus.MATCHED, FragStatus.UNMATCHED]


# --- timing ---------------------------------------------------------------------------------------

def test_packets_that_are_not_fragments_pass_one_per_clock_and_fragments_take_eight(request):
    # Eight: accept, compare, gather, read, check, match, prepare, decide (the identity is
    # read from LUT RAM and compared in two halves, for 125 MHz).
    # A packet that is not a fragment takes two: it leaves through the register of the
    # fragment at hand, for 125 MHz too.
    rng = seeded_rng(request.node.name)
    dut = FragmentTable(capacity=4, tag_width=TAG_WIDTH)
    first, later = first_and_later(rng)
    plain = Packet(FlowKey.of("1.1.1.1", "2.2.2.2", 6, 1, 2), None)
    packets = [plain] * 8 + [first, later, plain, later]
    run = simulate(dut, packets, [0] * len(packets))
    check(dut, packets, [0] * len(packets), run)
    assert run.sent[:8] == list(range(run.sent[0], run.sent[0] + 8))
    assert [c for c, _ in run.results][:8] == [c + 2 for c in run.sent[:8]]
    assert [b - a for a, b in zip(run.sent[8:], run.sent[9:])] == [8, 8, 1]
    assert run.results[8][0] - run.sent[8] == 8


def test_a_candidate_whose_identity_differs_costs_four_cycles(request):
    """A 1-bit digest is the parity of the identity: IP IDs 77 and 78 have as many set bits,
    so two datagrams between the same hosts that differ only there share it. The first
    fragment of ID 77 probes its only candidate, ID 78's entry, and decides as usual; its
    later fragment has two candidates and probes ID 78's entry (the lowest slot) first."""
    dut = FragmentTable(capacity=4, tag_width=TAG_WIDTH, digest_width=1)
    first, later = first_and_later(None)
    other = Packet(first.key._replace(src_port=7), first.frag._replace(ident=78))
    packets = [other, first, later]
    run = simulate(dut, packets, [0] * 3)
    check(dut, packets, [0] * 3, run)
    assert [FragStatus(r["status"]) for _, r in run.results] == \
        [FragStatus.FIRST, FragStatus.FIRST, FragStatus.MATCHED]
    assert [c - s for (c, _), s in zip(run.results, run.sent)] == [8, 8, 12]


# --- parameters -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(capacity=0), "capacity must be an integer from 1 to 64, not 0"),
    (dict(capacity=65), "capacity must be an integer from 1 to 64, not 65"),
    (dict(capacity=2.0), "capacity must be an integer from 1 to 64, not 2.0"),
    (dict(timestamp_width=3), "timestamp_width must be an integer from 4 to 32, not 3"),
    (dict(timestamp_width=33), "timestamp_width must be an integer from 4 to 32, not 33"),
    (dict(timestamp_width=8, timeout=64), "timeout must be an integer from 0 to 63, not 64"),
    (dict(timeout=-1), "timeout must be an integer from 0 to 4194303, not -1"),
    (dict(tag_width=-2), "tag_width must be a non-negative integer, not -2"),
    (dict(digest_width=0), "digest_width must be an integer from 1 to 32, not 0"),
    (dict(digest_width=33), "digest_width must be an integer from 1 to 32, not 33"),
    (dict(digest_width=True), "digest_width must be an integer from 1 to 32, not True"),
])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        FragmentTable(**kwargs)
