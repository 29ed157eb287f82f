# amaranth: UnusedElaboratable=no
"""The hardware frame parser (:class:`hdl.flow_engine.parser.Parser`) in Amaranth's simulator,
against the golden model :func:`sim.packets.parse.parse_frame`: crafted frames of every header
type and every cut of them, each drop reason, mutated and cut real frames, odd inputs (1-byte
frames, empty ``tlast`` beats, frames over 64 KiB), throughput, latency, backpressure, counters,
and parameter checks. The Verilog export is run over every capture by
``tests/test_parser_cocotb.py``.
"""

from collections import Counter
from pathlib import Path

import pytest
from amaranth.sim import Simulator
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR, IPOption_NOP
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import Dot1Q
from scapy.layers.sctp import SCTP

from hdl.flow_engine.axis import AxiStreamSignature
from hdl.flow_engine.parse_result import (DropReason, MAX_IPV6_EXT, MAX_MPLS_LABELS,
                                          MAX_VLAN_TAGS)
from hdl.flow_engine.parser import Parser
from sim.packets import parse as model
from sim.packets.capture import read_capture
from sim.parse_result import decode, expected, frame_summary
from tests.seeds import seeded_rng
from tests.test_parse import DROP_CASES, V4, V6, eth


PCAPS = Path(__file__).resolve().parents[2] / "shared" / "pcaps"


# --- the driver ----------------------------------------------------------------------------------

def beats(frame, lanes):
    """``(tdata, tkeep, tlast)`` of each beat of ``frame``; an empty frame is one empty beat."""
    chunks = [frame[i:i + lanes] for i in range(0, len(frame), lanes)] or [b""]
    return [(int.from_bytes(chunk, "little"), (1 << len(chunk)) - 1, i == len(chunks) - 1)
            for i, chunk in enumerate(chunks)]


class Run:
    """What :func:`simulate` saw: one entry per frame, in order."""

    def __init__(self):
        self.results = []       # packed results
        self.in_cycles = []     # cycle the frame's last beat transferred
        self.out_cycles = []    # cycle the result transferred
        self.tready_low = 0     # cycles tready was low while a beat was offered
        self.first_tready_low = None
        self.counts = None      # reason_counts at the end


def simulate(frames, *, data_width=64, rng=None, idle=0.0, backpressure=0.0, ports=None,
             extra_beats=None, hold_ready_low=0):
    """Send ``frames`` through a fresh :class:`Parser` and collect a result for each.

    In every cycle the source is free, it offers the next beat with probability ``1 - idle``
    and otherwise drives junk with ``tvalid`` low; ``result.ready`` is low with probability
    ``backpressure`` (and for the first ``hold_ready_low`` cycles). ``extra_beats`` maps a
    frame number to beats to send instead of the frame's own. The stream rules of ``result``
    and the backpressure rule of ``tready`` (low exactly while ``result_depth`` frames are
    pending) are checked every cycle.
    """
    dut = Parser(data_width=data_width)
    lanes = data_width // 8
    ports = ports or [0] * len(frames)
    queue = []
    for n, frame in enumerate(frames):
        for beat in (extra_beats or {}).get(n) or beats(frame, lanes):
            queue.append((n, *beat))
    run = Run()
    limit = 4 * len(queue) + 200 + hold_ready_low + int(len(queue) * 20 * backpressure)

    async def testbench(ctx):
        axis, out = dut.s_axis, dut.result
        offering = False
        shown = None     # payload valid but not taken last cycle
        pending = 0      # frames whose last beat is in and whose result has not left
        for cycle in range(limit):
            if not offering:
                offering = bool(queue) and (rng is None or rng.random() >= idle)
            if offering:
                n, tdata, tkeep, tlast = queue[0]
                ctx.set(axis.tvalid, 1)
                ctx.set(axis.tuser, ports[n])
            else:
                ctx.set(axis.tvalid, 0)
                tdata, tkeep, tlast = ((rng.getrandbits(data_width), rng.getrandbits(lanes),
                                        rng.getrandbits(1)) if rng else (0, 0, 0))
            ctx.set(axis.tdata, tdata)
            ctx.set(axis.tkeep, tkeep)
            ctx.set(axis.tlast, tlast)
            ready = cycle >= hold_ready_low and (rng is None or rng.random() >= backpressure)
            ctx.set(out.ready, ready)

            valid = ctx.get(out.valid)
            payload = ctx.get(out.payload.as_value())
            if shown is not None:
                assert valid and payload == shown, f"cycle {cycle}: result withdrawn or changed"
            tready = ctx.get(axis.tready)
            assert tready == (pending < dut.result_depth), (
                f"cycle {cycle}: tready {tready} with {pending} frames pending")
            if offering and not tready:
                run.tready_low += 1
                if run.first_tready_low is None:
                    run.first_tready_low = cycle
            if offering and tready:
                queue.pop(0)
                offering = False
                if tlast:
                    run.in_cycles.append(cycle)
                    pending += 1
            if valid and ready:
                run.results.append(payload)
                run.out_cycles.append(cycle)
                pending -= 1
            shown = payload if valid and not ready else None
            if not queue and len(run.results) == len(frames):
                break
            await ctx.tick()
        await ctx.tick()    # the counters count a frame by the end of its result's cycle
        run.counts = [ctx.get(getattr(dut.reason_counts, r.name.lower())) for r in DropReason]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert len(run.results) == len(frames), (f"{len(run.results)} results for {len(frames)} "
                                             f"frames after {limit} cycles: the parser hung")
    run.layout = dut.result_layout
    return run


def check(frames, *, labels=None, ports=None, **kwargs):
    """Simulate ``frames`` and assert every result equals the model's; returns the run."""
    ports = ports or [n % 256 for n in range(len(frames))]
    run = simulate(frames, ports=ports, **kwargs)
    for n, (frame, value) in enumerate(zip(frames, run.results)):
        got = decode(run.layout, value)
        want = expected(model.parse_frame(frame), port=ports[n])
        label = labels[n] if labels else f"frame {n}"
        assert got == want, (f"{label} ({frame_summary(frame)}):\n"
                             f"  hardware {got}\n  model    {want}")
    return run


def cuts(frame, rng, *, every=96, sampled=24):
    """``frame`` and its prefixes: every one up to ``every`` bytes, a sample of longer ones."""
    lengths = set(range(min(len(frame), every + 1)))
    if len(frame) > every:
        lengths |= {rng.randrange(every, len(frame)) for _ in range(sampled)}
    return [frame[:n] for n in sorted(lengths)] + [frame]


# --- crafted frames: every header type, whole and cut anywhere -----------------------------------

def _ext_chain(count):
    return [IPv6ExtHdrDestOpt() for _ in range(count)]


HEADER_CASES = {
    "ipv4_tcp": eth(IP(**V4), TCP(sport=40000, dport=443, flags="SA"), b"hello"),
    "ipv4_tcp_ns_flag_and_options": eth(IP(**V4), TCP(sport=1, dport=2, flags=0x1FF,
                                                     options=[("MSS", 1460), ("NOP", None)])),
    "ipv4_udp_with_ethernet_padding": eth(IP(**V4), UDP(sport=53, dport=5353), b"ab") + bytes(20),
    "ipv4_sctp": eth(IP(**V4), SCTP(sport=2905, dport=2906)),
    "ipv4_icmp_echo_request": eth(IP(**V4), ICMP(type=8, id=0x1234, seq=1)),
    "ipv4_icmp_echo_reply": eth(IP(**V4), ICMP(type=0, id=0xBEEF, seq=9)),
    "ipv4_icmp_unreachable": eth(IP(**V4), ICMP(type=3, code=3)),
    "ipv4_other_protocol": eth(IP(proto=47, **V4), b"\x00\x00\x08\x00" + b"x" * 20),
    "ipv4_options": eth(IP(options=[IPOption_RR(routers=["1.2.3.4"] * 3)], **V4),
                        UDP(sport=53, dport=5353), b"x"),
    "ipv4_longest_options": eth(IP(options=[IPOption_NOP()] * 40, **V4), TCP(sport=7, dport=8)),
    "ipv4_first_fragment": eth(IP(id=99, flags="MF", **V4), UDP(sport=53, dport=4000), b"a" * 16),
    "ipv4_later_fragment": eth(IP(id=99, frag=3, proto=17, **V4), b"b" * 8),
    "ipv4_last_fragment_with_offset": eth(IP(id=7, frag=1000, proto=6, **V4), b"c" * 30),
    "ipv4_first_fragment_cuts_tcp_options": eth(
        IP(flags="MF", proto=6, **V4),
        bytes(TCP(sport=1, dport=80, dataofs=10, flags="S"))[:20] + b"\x02\x04\x05\xb4"),
    "ipv6_tcp": eth(IPv6(**V6), TCP(sport=1, dport=2, flags="PA"), b"data"),
    "ipv6_udp": eth(IPv6(**V6), UDP(sport=5000, dport=6000), b"data"),
    "ipv6_icmpv6_echo": eth(IPv6(**V6), ICMPv6EchoRequest(id=77)),
    "ipv6_icmpv6_echo_reply": eth(IPv6(**V6), ICMPv6EchoReply(id=78)),
    "ipv6_icmpv6_error": eth(IPv6(**V6), ICMPv6DestUnreach(code=4)),
    "ipv6_icmp_number_1": eth(IPv6(nh=1, **V6), ICMP(type=8, id=5)),
    "ipv6_no_next_header": eth(IPv6(nh=59, **V6), b"x" * 8),
    "ipv6_empty_payload_padded": eth(IPv6(nh=59, plen=0, **V6)) + bytes(10),
    "ipv6_hop_by_hop": eth(IPv6(**V6), IPv6ExtHdrHopByHop(), UDP(sport=3, dport=4)),
    "ipv6_routing": eth(IPv6(**V6), IPv6ExtHdrRouting(addresses=[V6["src"]]), TCP(dport=5)),
    "ipv6_destination_options": eth(IPv6(**V6), IPv6ExtHdrDestOpt(), SCTP(sport=9, dport=10)),
    "ipv6_authentication_header": eth(IPv6(**V6), AH(nh=17, payloadlen=4, spi=1, icv=bytes(12)),
                                      UDP(sport=11, dport=12)),
    "ipv6_mixed_chain": eth(IPv6(**V6), IPv6ExtHdrHopByHop(), IPv6ExtHdrRouting(),
                            IPv6ExtHdrDestOpt(), AH(nh=17, payloadlen=4, spi=1, icv=bytes(12)),
                            UDP(sport=5000, dport=6000), b"data"),
    "ipv6_longest_chain": eth(IPv6(**V6), *_ext_chain(MAX_IPV6_EXT), UDP(sport=1, dport=2)),
    # Destination options of 2048 bytes (length 255): next header TCP, then Pad1 options.
    "ipv6_longest_extension_header": eth(IPv6(nh=60, **V6),
                                         bytes([6, 255]) + bytes(2046) + bytes(TCP(dport=2))),
    "ipv6_first_fragment": eth(IPv6(**V6), IPv6ExtHdrFragment(id=5, m=1, nh=17),
                               UDP(sport=1, dport=2)),
    "ipv6_later_fragment": eth(IPv6(**V6), IPv6ExtHdrFragment(id=5, offset=2, nh=17), b"z" * 8),
    "ipv6_later_fragment_before_more_headers": eth(
        IPv6(**V6), IPv6ExtHdrFragment(id=0xFEDCBA98, offset=2, nh=60), b"z" * 8),
    "ipv6_atomic_fragment": eth(IPv6(**V6), IPv6ExtHdrFragment(id=6, nh=17),
                                UDP(sport=1, dport=2)),
    "ipv6_fragment_header_then_atomic_one": eth(IPv6(**V6), IPv6ExtHdrFragment(id=1, m=1, nh=44),
                                                IPv6ExtHdrFragment(id=2, nh=17),
                                                UDP(sport=1, dport=2)),
    "ipv6_two_fragment_headers": eth(IPv6(**V6), IPv6ExtHdrFragment(id=1, m=1, nh=44),
                                     IPv6ExtHdrFragment(id=2, m=1, nh=17), UDP(sport=1, dport=2)),
    "ipv6_first_fragment_then_options": eth(IPv6(**V6), IPv6ExtHdrFragment(id=8, m=1, nh=60),
                                            IPv6ExtHdrDestOpt(nh=6), TCP(sport=1, dport=2)),
    "vlan": eth(Dot1Q(vlan=42), IP(**V4), UDP(sport=1, dport=2)),
    "qinq_88a8": eth(Dot1Q(vlan=10, type=0x8100), Dot1Q(vlan=20), IP(**V4), TCP(), type=0x88A8),
    "qinq_8100": eth(Dot1Q(vlan=4095, type=0x8100), Dot1Q(vlan=1), IPv6(**V6), TCP()),
    "qinq_9100": eth(Dot1Q(vlan=1, type=0x8100), Dot1Q(vlan=2), IP(**V4), UDP(), type=0x9100),
    "mpls_one_label": eth(MPLS(label=3, s=1), IP(**V4), UDP(sport=7, dport=9)),
    "mpls_longest_stack": eth(*[MPLS(label=i, s=int(i == MAX_MPLS_LABELS - 1))
                                for i in range(MAX_MPLS_LABELS)], IP(**V4), UDP(dport=9)),
    "mpls_ipv6_multicast_ethertype": eth(MPLS(label=3, s=1), IPv6(**V6), TCP(sport=1, dport=2),
                                         type=0x8848),
    "qinq_then_mpls": eth(Dot1Q(vlan=7, type=0x8100), Dot1Q(vlan=8, type=0x8847),
                          *[MPLS(label=i, s=int(i == 7)) for i in range(8)], IPv6(**V6), UDP()),
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_header_type_and_every_cut_of_it_parse_as_the_model(case):
    rng = seeded_rng(f"parser-hw-{case}")
    frame = HEADER_CASES[case]
    assert model.parse_frame(frame).drop is None, "the crafted frame itself must be keyed"
    frames = cuts(frame, rng)
    check(frames, labels=[f"{case} cut at {len(f)}" for f in frames], rng=rng, idle=0.2,
          backpressure=0.2)


# --- crafted frames: every drop reason -----------------------------------------------------------

@pytest.mark.parametrize("reason", list(model.DROP_REASONS))
def test_drop_reason_and_its_counter_match_the_model(reason):
    names = sorted(name for name, (_, why) in DROP_CASES.items() if why == reason)
    frames = [DROP_CASES[name][0] for name in names]
    run = check(frames, labels=names)
    counts = dict(zip(DropReason, run.counts))
    assert counts[DropReason[reason.upper()]] == len(frames)
    assert sum(counts.values()) == len(frames)


def test_reason_counters_tally_every_outcome():
    rng = seeded_rng("parser-hw-counters")
    frames = [raw for raw, _ in DROP_CASES.values()] + list(HEADER_CASES.values())
    rng.shuffle(frames)
    run = check(frames)
    tally = Counter(model.parse_frame(frame).drop for frame in frames)
    want = [tally[None if r is DropReason.NONE else r.name.lower()] for r in DropReason]
    assert run.counts == want


# --- real frames, mutated and cut ----------------------------------------------------------------

def _capture_frames():
    frames = [raw for path in sorted(PCAPS.glob("*.pcap*")) for _, raw in read_capture(path)]
    if not frames:
        pytest.skip(f"no captures in {PCAPS}")
    return frames


def mutate(frame, rng):
    """Header bytes overwritten at random, and half the time a cut at a random place."""
    raw = bytearray(frame)
    for _ in range(rng.randint(0, 4)):
        if raw:
            raw[rng.randrange(min(len(raw), 80))] = rng.randrange(256)
    if rng.random() < 0.5:
        del raw[rng.randrange(min(len(raw), 120) + 1):]
    # Keep the frame short: only its headers matter, and the simulator is slow.
    return bytes(raw[:160])


@pytest.mark.parametrize("data_width", [64, 8, 32, 128, 512])
def test_mutated_and_cut_real_frames_parse_as_the_model(data_width):
    rng = seeded_rng(f"parser-hw-mutate-{data_width}")
    # Most frames at the default width; fewer where beats are narrow or the design is wide.
    count = {64: 300, 8: 25}.get(data_width, 60)
    frames = [mutate(frame, rng) for frame in rng.sample(_capture_frames(), count)]
    check(frames, data_width=data_width, rng=rng, idle=0.3, backpressure=0.3)


# --- odd inputs ----------------------------------------------------------------------------------

def test_one_beat_frames_give_one_result_per_cycle_where_the_queue_covers_the_latency():
    # At 512 bits a 64-byte frame is one beat, so the output queue holds a result per cycle of
    # latency: one-byte frames (tlast in their first beat) go back to back.
    frames = [bytes([n]) for n in range(60)] + [HEADER_CASES["ipv4_udp_with_ethernet_padding"]]
    run = check(frames, data_width=512)
    assert run.tready_low == 0
    assert [b - a for a, b in zip(run.out_cycles, run.out_cycles[1:60])] == [1] * 59


def test_one_byte_frames_at_64_bits_wait_only_for_a_place_in_the_output_queue():
    # 15 places: 15 frames in cycles 0..14, then each one when a result leaves.
    depth = Parser(data_width=64).result_depth
    frames = [bytes([n]) for n in range(3 * depth)]
    run = check(frames)
    assert run.in_cycles[:depth] == list(range(depth))
    assert run.in_cycles[depth] == run.out_cycles[0] + 1
    assert [b - a for a, b in zip(run.out_cycles, run.out_cycles[1:depth])] == [1] * (depth - 1)


def test_tlast_beat_with_no_byte_kept_adds_no_byte():
    frame = HEADER_CASES["ipv4_tcp"][:56]           # ends on a beat boundary at 64 bits
    own = beats(frame, 8)
    data, keep, _ = own[-1]
    trailing = own[:-1] + [(data, keep, False), (0xDEAD, 0, True)]
    empty = [(0x1234, 0, True)]
    run = simulate([frame, b"", frame], extra_beats={0: trailing, 1: empty})
    for frame, value in zip([frame, b"", frame], run.results):
        assert decode(run.layout, value) == expected(model.parse_frame(frame))


def test_frame_longer_than_64k_reports_65535_bytes_and_parses_exactly():
    short = eth(IP(**V4), UDP(sport=1, dport=2))
    jumbo = eth(IPv6(**V6, plen=65535), UDP(sport=3, dport=4)) + bytes(65535 - 8)
    frames = [short + bytes(70000), jumbo, jumbo[:-1], jumbo + bytes(70000)]
    run = check(frames, data_width=512)
    assert [decode(run.layout, value)["length"] for value in run.results] == [65535] * 4


# --- throughput, latency, backpressure -----------------------------------------------------------

def test_minimum_size_frames_back_to_back_at_line_rate_and_documented_latency():
    frames = [HEADER_CASES["ipv4_udp_with_ethernet_padding"][:60] + bytes(4)] * 12
    run = check(frames)
    assert run.tready_low == 0
    assert {b - a for a, b in zip(run.out_cycles, run.out_cycles[1:])} == {8}
    assert {o - i for i, o in zip(run.in_cycles, run.out_cycles)} == {Parser.latency}


def test_tready_falls_once_the_output_queue_is_spoken_for_and_nothing_is_lost():
    # One-byte frames, one per cycle from cycle 0, output held off: the result_depth frames
    # taken in cycles 0 .. depth - 1 fill the output queue's places, so tready is low from
    # cycle depth on, and stays low until results leave.
    depth = Parser(data_width=64).result_depth
    frames = [bytes([n]) for n in range(depth + 20)]
    run = check(frames, hold_ready_low=200)
    assert run.first_tready_low == depth
    assert run.in_cycles[:depth] == list(range(depth))
    assert run.in_cycles[depth] == 201
    assert run.out_cycles[0] == 200


@pytest.mark.parametrize("data_width", [64, 32])
def test_random_idle_and_backpressure_keep_order_and_content(data_width):
    rng = seeded_rng(f"parser-hw-stress-{data_width}")
    pool = list(HEADER_CASES.values()) + [raw for raw, _ in DROP_CASES.values()]
    frames = [rng.choice(pool)[:rng.choice([1, 14, 40, 60, 200])] for _ in range(80)]
    check(frames, data_width=data_width, rng=rng, idle=0.5, backpressure=0.7)


# --- definitions held equal to the model's -------------------------------------------------------

def test_drop_reasons_are_the_models_in_order_after_none():
    assert [r.name for r in DropReason] == ["NONE"] + [r.upper() for r in model.DROP_REASONS]
    assert [r.value for r in DropReason] == list(range(len(DropReason)))


def test_header_bounds_are_the_models():
    assert (MAX_VLAN_TAGS, MAX_MPLS_LABELS, MAX_IPV6_EXT) == (
        model.MAX_VLAN_TAGS, model.MAX_MPLS_LABELS, model.MAX_IPV6_EXT)


def test_result_layout_holds_the_flow_key_as_packed_by_python():
    layout = Parser(user_width=5).result_layout
    key = HEADER_CASES["ipv6_udp"]
    parsed = model.parse_frame(key)
    value = parsed.key.pack() << layout["key"].offset | 3 << layout["port"].offset
    assert decode(layout, value)["key"] == parsed.key
    assert layout["port"].width == 5


# --- parameters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, message", [
    ({"data_width": 64.0}, TypeError, "Data width must be an integer, not 64.0"),
    ({"data_width": True}, TypeError, "Data width must be an integer, not True"),
    ({"data_width": 24}, ValueError,
     "Data width must be 8, 16, 32, 64, 128, 256 or 512, not 24"),
    ({"data_width": 1024}, ValueError,
     "Data width must be 8, 16, 32, 64, 128, 256 or 512, not 1024"),
    ({"user_width": "8"}, TypeError, "User width must be an integer, not '8'"),
    ({"user_width": 0}, ValueError, "User width must be between 1 and 32, not 0"),
    ({"user_width": 33}, ValueError, "User width must be between 1 and 32, not 33"),
    ({"counter_width": None}, TypeError, "Counter width must be an integer, not None"),
    ({"counter_width": 0}, ValueError, "Counter width must be between 1 and 64, not 0"),
    ({"counter_width": 65}, ValueError, "Counter width must be between 1 and 64, not 65"),
])
def test_parser_parameters_are_checked(kwargs, error, message):
    with pytest.raises(error) as info:
        Parser(**kwargs)
    assert str(info.value) == message


def test_parser_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        Parser(64)


def test_parser_ports_follow_the_parameters():
    dut = Parser(data_width=128, user_width=4, counter_width=16)
    assert [len(dut.s_axis.tdata), len(dut.s_axis.tkeep), len(dut.s_axis.tuser)] == [128, 16, 4]
    assert len(dut.reason_counts.as_value()) == 16 * len(DropReason)
    assert (dut.data_width, dut.user_width, dut.counter_width) == (128, 4, 16)


@pytest.mark.parametrize("args, message", [
    ((12, 1), "Data width must be a positive multiple of 8, not 12"),
    ((0, 1), "Data width must be a positive multiple of 8, not 0"),
    (("64", 1), "Data width must be a positive multiple of 8, not '64'"),
    ((64, 0), "User width must be a positive integer, not 0"),
    ((64, False), "User width must be a positive integer, not False"),
])
def test_axi_stream_signature_parameters_are_checked(args, message):
    with pytest.raises(TypeError) as info:
        AxiStreamSignature(*args)
    assert str(info.value) == message


def test_axi_stream_signature_members_and_equality():
    sig = AxiStreamSignature(32, 3)
    assert list(sig.members) == ["tdata", "tkeep", "tvalid", "tready", "tlast", "tuser"]
    assert sig.members["tready"].flow.name == "In" and sig.members["tdata"].flow.name == "Out"
    assert sig == AxiStreamSignature(32, 3) and sig != AxiStreamSignature(32, 4)
