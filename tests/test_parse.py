"""The byte-level parser against Scapy, on every packet of every real capture and on crafted
frames for each header type and each drop reason; and the capture reader.

The oracle below reads keys from Scapy's dissection (its layer classes and fields), never from
the parser's code. Where Scapy still dissects something the hardware must refuse (a datagram
longer than the frame, a cut header), the oracle names the drop reason the parser must give.
"""

import os
import struct
from collections import Counter
from pathlib import Path

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                                ICMPv6DestUnreach, ICMPv6Unknown, _IPv6ExtHdr,
                                icmp6typescls, ipv6nhcls)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether, LLC, Dot3
from scapy.layers.sctp import SCTP
from scapy.packet import NoPayload, Padding, Raw
from scapy.utils import PcapNgWriter, RawPcapNgReader, RawPcapReader, wrpcap

from sim.flowkey import FlowKey
from sim.packets.capture import read_capture
from sim.packets.parse import DROP_REASONS, Frag, parse_frame, reverse_key
from tests.seeds import seeded_rng


PCAP_DIR = Path(os.environ.get("FLOWOWN_PCAPS", "/work/shared/pcaps"))
CAPTURES = sorted(p.name for p in PCAP_DIR.glob("*.pcap*")) if PCAP_DIR.is_dir() else []
REPO = Path(__file__).resolve().parent.parent


def capture(name):
    path = PCAP_DIR / name
    if not path.exists():
        pytest.skip(f"{name} not in {PCAP_DIR}")
    return path


@pytest.fixture
def scratch(request):
    """An empty folder under build/ for the files a test writes."""
    path = REPO / "build" / "test-scratch" / request.node.name.replace("/", "_")
    path.mkdir(parents=True, exist_ok=True)
    for child in path.iterdir():
        child.unlink()
    return path


# --- the Scapy oracle ---------------------------------------------------------------------------

def _orig(layer):
    """Bytes Scapy handed this layer (bounded by the IP length: padding already split off)."""
    if isinstance(layer, (NoPayload, Padding)):
        return b""
    return bytes(getattr(layer, "original", None) or b"")


def _expect(key=None, drop=None, payload=None, flags=0, frag=None):
    return {"key": key, "drop": drop, "payload": payload, "flags": flags, "frag": frag}


def oracle(raw):
    """What the parser must return for ``raw``, read from Scapy's dissection.

    Returns a dict: key (FlowKey or None), drop (reason or None), payload (bytes, or None when
    not compared), flags (TCP flags), frag (Frag or None).
    """
    if len(raw) < 14:
        return _expect(drop="truncated_l2")
    eth = Ether(raw)
    if not isinstance(eth, Ether):      # Scapy dispatched to Dot3: a length, not an ethertype
        return _expect(drop="non_ip")
    etype, nxt = eth.type, eth.payload
    zone = tags = 0
    while etype in (0x8100, 0x88A8, 0x9100):
        if tags == 2:
            return _expect(drop="vlan_depth")
        if len(_orig(nxt) or bytes(nxt)) < 4:
            return _expect(drop="truncated_l2")
        if not isinstance(nxt, (Dot1Q, Dot1AD)):    # Scapy does not bind 0x9100
            nxt = Dot1Q(bytes(nxt))
        zone = (zone << 12) | nxt.vlan
        etype, nxt, tags = nxt.type, nxt.payload, tags + 1
    if etype in (0x8847, 0x8848):
        if not isinstance(nxt, MPLS) and len(bytes(nxt)) >= 4:    # Scapy does not bind 0x8848
            nxt = MPLS(bytes(nxt))
        for _ in range(8):
            if not isinstance(nxt, MPLS) or len(_orig(nxt)) < 4:
                return _expect(drop="truncated_l2")
            label, nxt = nxt, nxt.payload
            if label.s:
                break
        else:
            return _expect(drop="mpls_depth")
        rest = _orig(nxt) or bytes(nxt)
        if not rest:
            return _expect(drop="truncated_l3")
        # The class Scapy chose by the version nibble, even if dissecting it then failed.
        guessed = label.guess_payload_class(rest)
        if guessed is IP:
            etype = 0x0800
        elif guessed is IPv6:
            etype = 0x86DD
        else:
            return _expect(drop="non_ip")
    if etype == 0x0800:
        return _oracle_ipv4(nxt, zone)
    if etype == 0x86DD:
        return _oracle_ipv6(nxt, zone)
    return _expect(drop="non_ip")


def _oracle_ipv4(ip, zone):
    if not isinstance(ip, IP):
        data = bytes(ip)
        if len(data) < 20:
            return _expect(drop="bad_ip_version" if data and data[0] >> 4 != 4 else "truncated_l3")
        ip = IP(data[:20])      # Scapy gave up (e.g. IHL < 5): read the fixed header alone
        return _expect(drop="bad_ip_version" if ip.version != 4 else
                       "bad_ihl" if ip.ihl < 5 else "truncated_l3")
    raw = _orig(ip)
    if ip.version != 4:
        return _expect(drop="bad_ip_version")
    if len(raw) < 20:
        return _expect(drop="truncated_l3")
    if ip.ihl < 5:
        return _expect(drop="bad_ihl")
    if len(raw) < ip.ihl * 4:
        return _expect(drop="truncated_l3")
    if ip.len < ip.ihl * 4 or ip.len > len(raw):
        return _expect(drop="bad_ip_len")
    frag = None
    if ip.flags.MF or ip.frag:
        frag = Frag(ip.id, ip.frag * 8, bool(ip.flags.MF), ip.proto)
    return _oracle_l4(ip.payload, ip.src, ip.dst, ip.proto, zone, frag)


def _oracle_ipv6(ip6, zone):
    if not isinstance(ip6, IPv6):
        data = bytes(ip6)
        return _expect(drop="bad_ip_version" if data and data[0] >> 4 != 6 else "truncated_l3")
    raw = _orig(ip6)
    if ip6.version != 6:
        return _expect(drop="bad_ip_version")
    if len(raw) < 40:
        return _expect(drop="truncated_l3")
    if 40 + ip6.plen > len(raw):
        return _expect(drop="bad_ip_len")
    if ip6.plen == 0 and len(raw) > 40:
        # Scapy reads payload length 0 as "jumbogram: take everything"; without a hop-by-hop
        # jumbo option (impossible on Ethernet anyway) it means an empty payload.
        ip6 = IPv6(raw[:40])
    nh, layer, frag, seen = ip6.nh, ip6.payload, None, 0
    while nh in (0, 43, 44, 51, 60):
        if seen == 8:
            return _expect(drop="ext_chain")
        seen += 1
        if not isinstance(layer, (_IPv6ExtHdr, AH)) or len(_orig(layer)) < 8:
            return _expect(drop="truncated_l3")
        if isinstance(layer, IPv6ExtHdrFragment):
            if layer.offset or layer.m:
                frag = Frag(layer.id, layer.offset * 8, bool(layer.m), layer.nh)
            if layer.offset:
                return _expect(key=FlowKey.of(ip6.src, ip6.dst, layer.nh, 0, 0, zone),
                               payload=_orig(layer.payload), frag=frag)
            nh, layer = layer.nh, layer.payload
            continue
        size = (layer.payloadlen + 2) * 4 if isinstance(layer, AH) else (layer.len + 1) * 8
        if len(_orig(layer)) < size:
            return _expect(drop="truncated_l3")
        nh, layer = layer.nh, _after(layer, size)
    return _oracle_l4(layer, ip6.src, ip6.dst, nh, zone, frag)


# What to try, in order, when Scapy left the transport header as Raw: it leaves e.g. UDP
# behind an IPv6 AH undissected, and gives up on TCP options or ICMPv6 bodies that are garbage
# or short; the key needs only the fixed header.
_L4_RETRY = {
    1: [ICMP],
    6: [TCP, lambda data: TCP(data[:20])],
    17: [UDP],
    132: [SCTP],
    58: [lambda data: icmp6typescls.get(data[0], ICMPv6Unknown)(data), ICMPv6Unknown],
}


_EXT_CLASSES = {0: IPv6ExtHdrHopByHop, 43: _IPv6ExtHdr, 44: IPv6ExtHdrFragment, 51: AH,
                60: IPv6ExtHdrDestOpt}


def _after(ext, size):
    """The layer after an extension header of ``size`` bytes (its length field)."""
    rest = _orig(ext)[size:]
    want = _EXT_CLASSES.get(ext.nh)
    if len(_orig(ext.payload)) == len(rest) and (want is None or isinstance(ext.payload, want)):
        return ext.payload
    # Scapy reads an odd-length type-0 routing header as len // 2 addresses, 8 bytes short of
    # what the length field says, and after AH guesses by its own bindings rather than by the
    # next header; dissect what really follows with the class IPv6 would pick for it.
    cls = AH if ext.nh == 51 else ipv6nhcls.get(ext.nh, Raw)
    try:
        return cls(rest)
    except Exception:
        return Raw(rest)


def _oracle_l4(l4, src, dst, proto, zone, frag):
    if frag is not None and frag.offset:
        return _expect(key=FlowKey.of(src, dst, proto, 0, 0, zone), payload=_orig(l4), frag=frag)
    data = _orig(l4)
    if isinstance(l4, Raw):
        for make in _L4_RETRY.get(proto, ()):
            try:
                l4 = make(data)
                break
            except Exception:
                pass
    sport = dport = flags = 0
    payload = data
    if proto == 6:
        if not isinstance(l4, TCP) or len(data) < 20:
            return _expect(drop="truncated_l4", frag=frag)
        if l4.dataofs < 5:
            return _expect(drop="bad_tcp_offset", frag=frag)
        if l4.dataofs * 4 > len(data) and frag is None:
            return _expect(drop="truncated_l4", frag=frag)
        sport, dport, flags = l4.sport, l4.dport, int(l4.flags)
        payload = data[l4.dataofs * 4:]
    elif proto in (17, 132):
        cls, size = (UDP, 8) if proto == 17 else (SCTP, 12)
        if not isinstance(l4, cls) or len(data) < size:
            return _expect(drop="truncated_l4", frag=frag)
        sport, dport, payload = l4.sport, l4.dport, data[size:]
    elif proto == 1:
        if not isinstance(l4, ICMP) or len(data) < 8:
            return _expect(drop="truncated_l4", frag=frag)
        if l4.type in (0, 8):
            sport = l4.id
        else:
            dport = l4.type << 8 | l4.code
        payload = None
    elif proto == 58:
        if len(data) < 8 or not hasattr(l4, "type"):
            return _expect(drop="truncated_l4", frag=frag)
        if isinstance(l4, (ICMPv6EchoRequest, ICMPv6EchoReply)):
            sport = l4.id
        else:   # the second field is the code, whatever the class calls it ('res' in MLDv2)
            dport = l4.type << 8 | l4.getfieldval(l4.fields_desc[1].name)
        payload = None
    return _expect(key=FlowKey.of(src, dst, proto, sport, dport, zone), payload=payload,
                   flags=flags, frag=frag)


def check(raw):
    """Parser result and oracle agree; returns the parser result."""
    got = parse_frame(raw)
    want = oracle(raw)
    assert (got.key, got.drop) == (want["key"], want["drop"])
    assert got.length == len(raw)
    if got.drop is None:
        assert got.frag == want["frag"]
        assert got.tcp_flags == want["flags"]
        if want["payload"] is not None:
            assert got.payload == want["payload"]
    else:
        assert got.drop in DROP_REASONS
    return got


# --- every packet of every capture --------------------------------------------------------------

@pytest.mark.parametrize("name", CAPTURES)
def test_every_capture_packet_parses_as_scapy_dissects_it(name):
    mismatches = []
    frames = read_capture(capture(name))
    assert frames, "capture read as empty"
    for i, (_, raw) in enumerate(frames, 1):
        try:
            check(raw)
        except AssertionError as e:
            mismatches.append((i, parse_frame(raw), oracle(raw), str(e)[:200]))
    assert not mismatches, mismatches[:3]


def _drops(name):
    return Counter(parse_frame(raw).drop for _, raw in read_capture(capture(name)))


def test_ip_header_cut_by_snaplen_is_dropped_truncated_l3():
    assert _drops("zeek_ip4-trunc.pcap") == {"truncated_l3": 1}


def test_record_shorter_than_ethernet_is_dropped_truncated_l2():
    assert _drops("zeek_trunc-hdr.pcap") == {"truncated_l2": 1}


def test_snaplen_cut_datagrams_are_dropped_bad_ip_len_and_whole_ones_kept():
    # snaplen 68: the records whose IP datagram still fits (only padding was cut) are keyed.
    frames = read_capture(capture("zeek_tcp_truncated-header.pcap"))
    drops = Counter(parse_frame(raw).drop for _, raw in frames)
    assert drops == {"bad_ip_len": 12, None: 12}
    for _, raw in frames:
        p = parse_frame(raw)
        ip_len = struct.unpack_from("!H", raw, 16)[0]
        assert (p.drop == "bad_ip_len") == (14 + ip_len > len(raw))


def test_arp_stp_and_eapol_in_real_captures_are_non_ip():
    assert _drops("zeek_wikipedia.pcap")["non_ip"] == 10     # 6 ARP + 4 STP (802.3)
    assert _drops("ndpi_android.pcap")["non_ip"] == 25       # 19 ARP + 6 EAPOL


def test_same_five_tuple_on_three_vlan_stacks_gives_three_zones():
    zones = Counter(parse_frame(raw).key.zone for _, raw in
                    read_capture(capture("zeek_vlan-collisions.pcap")))
    assert set(zones) == {0, 42, 10 << 12 | 20}


def test_rtp_capture_vlan_1508_zone():
    zones = {parse_frame(raw).key.zone for _, raw in read_capture(capture("ndpi_rtp.pcapng"))}
    assert zones == {0, 1508}


# --- crafted frames: each header type -----------------------------------------------------------

MAC = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
V4 = dict(src="192.0.2.1", dst="198.51.100.7")
V6 = dict(src="2001:db8::1", dst="2001:db8::2")


def eth(*layers, type=None):
    e = Ether(**MAC) if type is None else Ether(type=type, **MAC)
    pkt = e
    for layer in layers:
        pkt = pkt / layer
    return bytes(pkt)


def test_ipv4_tcp_key_flags_and_payload():
    p = check(eth(IP(**V4), TCP(sport=40000, dport=443, flags="SA"), b"hello"))
    assert p.key == FlowKey.of("192.0.2.1", "198.51.100.7", 6, 40000, 443)
    assert p.tcp_flags == 0x12 and p.payload == b"hello" and p.ip_version == 4
    assert p.l3_offset == 14 and p.l4_offset == 34


def test_ethernet_padding_is_not_payload():
    raw = eth(IP(**V4), UDP(sport=1, dport=2), b"ab") + b"\0" * 16
    assert check(raw).payload == b"ab"


def test_ipv4_options_are_skipped():
    p = check(eth(IP(options=[IPOption_RR(routers=["1.2.3.4"] * 3)], **V4),
                  UDP(sport=53, dport=5353), b"x"))
    assert p.key.src_port == 53 and p.l4_offset == 14 + 36 and p.payload == b"x"


def test_sctp_ports():
    assert check(eth(IP(**V4), SCTP(sport=2905, dport=2906))).key.dst_port == 2906


def test_other_protocol_has_ports_zero():
    p = check(eth(IP(proto=47, **V4), b"\x00\x00\x08\x00" + b"x" * 20))     # GRE
    assert p.key == FlowKey.of("192.0.2.1", "198.51.100.7", 47)
    assert p.payload.startswith(b"\x00\x00\x08\x00")


def test_single_vlan_tag_zone_is_its_vid():
    assert check(eth(Dot1Q(vlan=42), IP(**V4), UDP())).key.zone == 42


@pytest.mark.parametrize("outer", [0x88A8, 0x8100, 0x9100], ids=hex)
def test_qinq_zone_is_outer_shifted_by_12_or_inner(outer):
    raw = eth(Dot1Q(vlan=10, type=0x8100), Dot1Q(vlan=20), IP(**V4), TCP(), type=outer)
    assert check(raw).key.zone == 10 << 12 | 20


def test_mpls_stack_then_ipv4_by_version_nibble():
    raw = eth(MPLS(label=100, s=0), MPLS(label=200, s=1), IP(**V4), UDP(sport=7, dport=9))
    p = check(raw)
    assert p.key.dst_port == 9 and p.l3_offset == 14 + 8


def test_mpls_then_ipv6_and_multicast_ethertype():
    raw = eth(MPLS(label=3, s=1), IPv6(**V6), TCP(sport=1, dport=2), type=0x8848)
    assert check(raw).key == FlowKey.of(V6["src"], V6["dst"], 6, 1, 2)


def test_vlan_then_mpls_keeps_the_vlan_zone():
    raw = eth(Dot1Q(vlan=7, type=0x8847), MPLS(label=5, s=1), IP(**V4), UDP())
    assert check(raw).key.zone == 7


def test_ipv6_extension_chain_is_walked_to_the_transport_header():
    ah = AH(nh=17, payloadlen=4, spi=1, icv=b"\0" * 12)
    raw = eth(IPv6(**V6), IPv6ExtHdrHopByHop(), IPv6ExtHdrRouting(), IPv6ExtHdrDestOpt(), ah,
              UDP(sport=5000, dport=6000), b"data")
    p = check(raw)
    assert p.key == FlowKey.of(V6["src"], V6["dst"], 17, 5000, 6000)
    assert p.payload == b"data" and p.l4_offset == 14 + 40 + 8 + 8 + 8 + 24


def test_icmp_echo_key_is_identifier_and_reverse_swaps_only_addresses():
    req = check(eth(IP(**V4), ICMP(type=8, id=0x1234, seq=1))).key
    rep = check(eth(IP(src=V4["dst"], dst=V4["src"]), ICMP(type=0, id=0x1234, seq=1))).key
    assert (req.src_port, req.dst_port) == (0x1234, 0)
    assert reverse_key(req) == rep
    assert req.swapped() != rep


def test_icmpv6_echo_reply_is_the_reverse_key_of_the_request():
    req = check(eth(IPv6(**V6), ICMPv6EchoRequest(id=77))).key
    rep = check(eth(IPv6(src=V6["dst"], dst=V6["src"]), ICMPv6EchoReply(id=77))).key
    assert req.src_port == 77 and reverse_key(req) == rep


def test_icmp_error_key_is_type_and_code():
    assert check(eth(IP(**V4), ICMP(type=3, code=3))).key.dst_port == 3 << 8 | 3
    assert check(eth(IPv6(**V6), ICMPv6DestUnreach(code=4))).key.dst_port == 1 << 8 | 4


def test_tcp_and_udp_reverse_key_swaps_ports():
    k = FlowKey.of("1.1.1.1", "2.2.2.2", 6, 1000, 80, 5)
    assert reverse_key(k) == FlowKey.of("2.2.2.2", "1.1.1.1", 6, 80, 1000, 5)


def test_ipv4_first_and_later_fragment():
    first = check(eth(IP(id=99, flags="MF", **V4), UDP(sport=53, dport=4000), b"a" * 16))
    later = check(eth(IP(id=99, frag=3, proto=17, **V4), b"b" * 8))
    assert first.frag == Frag(99, 0, True, 17) and first.key.src_port == 53
    assert later.frag == Frag(99, 24, False, 17)
    assert later.key == FlowKey.of(V4["src"], V4["dst"], 17) and later.payload == b"b" * 8


def test_first_fragment_may_cut_tcp_options():
    # zeek's fragmented SYN: data offset 40 bytes, only 24 in the first fragment.
    raw = eth(IP(flags="MF", proto=6, **V4), bytes(TCP(sport=1, dport=80, dataofs=10, flags="S"))[:20] +
              b"\x02\x04\x05\xb4")
    p = check(raw)
    assert p.key.dst_port == 80 and p.tcp_flags == 0x02 and p.payload == b""


def test_ipv6_fragments_and_atomic_fragment():
    first = check(eth(IPv6(**V6), IPv6ExtHdrFragment(id=5, m=1, nh=17), UDP(sport=1, dport=2)))
    later = check(eth(IPv6(**V6), IPv6ExtHdrFragment(id=5, offset=2, nh=17), b"z" * 8))
    atomic = check(eth(IPv6(**V6), IPv6ExtHdrFragment(id=6, nh=17), UDP(sport=1, dport=2)))
    assert first.frag == Frag(5, 0, True, 17) and first.key.dst_port == 2
    assert later.frag == Frag(5, 16, False, 17) and later.key.dst_port == 0
    assert atomic.frag is None and atomic.key.dst_port == 2


def test_ipv6_later_fragment_takes_the_fragment_headers_next_header():
    raw = eth(IPv6(**V6), IPv6ExtHdrFragment(id=5, offset=2, nh=60), b"z" * 8)
    p = check(raw)
    assert p.key.proto == 60 and p.frag.proto == 60


# --- crafted frames: each drop reason -----------------------------------------------------------

def _v4(**kw):
    return bytes(IP(**V4, **kw) / UDP(sport=1, dport=2) / b"abcd")


def _set(raw, offset, value):
    return raw[:offset] + bytes([value]) + raw[offset + 1:]


DROP_CASES = {
    "short_ethernet": (eth(IP(**V4))[:13], "truncated_l2"),
    "cut_vlan_tag": (eth(type=0x8100) + b"\x00\x2a", "truncated_l2"),
    "three_vlan_tags": (eth(Dot1Q(vlan=1, type=0x8100), Dot1Q(vlan=2, type=0x8100), Dot1Q(vlan=3),
                            IP(**V4), UDP(), type=0x88A8), "vlan_depth"),
    "cut_mpls_label": (eth(type=0x8847) + b"\x00\x01", "truncated_l2"),
    "mpls_without_bottom": (eth(*[MPLS(label=i, s=0) for i in range(9)], IP(**V4)), "mpls_depth"),
    "mpls_then_nothing": (eth(MPLS(label=1, s=1)), "truncated_l3"),
    "mpls_then_ethernet": (eth(MPLS(label=1, s=1)) + bytes(Ether(**MAC) / IP(**V4)), "non_ip"),
    "arp": (eth(ARP()), "non_ip"),
    "lldp": (eth(type=0x88CC) + b"\x02\x07\x04" + b"\0" * 40, "non_ip"),
    "ieee_802_3_length": (bytes(Dot3(**MAC) / LLC() / (b"x" * 40)), "non_ip"),
    "ipv6_in_ipv4_ethertype": (eth(type=0x0800) + bytes(IPv6(**V6) / UDP()), "bad_ip_version"),
    "ipv4_in_ipv6_ethertype": (eth(type=0x86DD) + _v4(), "bad_ip_version"),
    "cut_ipv4_header": (eth(type=0x0800) + _v4()[:12], "truncated_l3"),
    "cut_ipv4_options": (eth(type=0x0800) + _set(_v4(), 0, 0x4F)[:40], "truncated_l3"),
    "ihl_4": (eth(type=0x0800) + _set(_v4(), 0, 0x44), "bad_ihl"),
    "total_length_beyond_frame": (eth(IP(len=200, **V4), UDP()), "bad_ip_len"),
    "total_length_below_ihl": (eth(IP(len=12, **V4), UDP()), "bad_ip_len"),
    "cut_ipv6_header": (eth(type=0x86DD) + bytes(IPv6(**V6))[:30], "truncated_l3"),
    "ipv6_payload_length_beyond_frame": (eth(IPv6(plen=100, **V6), UDP()), "bad_ip_len"),
    "ipv6_ext_header_beyond_payload": (eth(IPv6(**V6, nh=60)) + b"\x11\x05" + b"\0" * 6,
                                       "truncated_l3"),
    "ipv6_nine_ext_headers": (eth(IPv6(**V6), *[IPv6ExtHdrDestOpt() for _ in range(9)], UDP()),
                              "ext_chain"),
    # A fragment header, then one header too many: no fragment fields survive the drop (the
    # parser has read them by then).
    "ipv6_fragment_then_eight_ext_headers": (
        eth(IPv6(**V6), IPv6ExtHdrFragment(id=8, m=1, nh=60),
            *[IPv6ExtHdrDestOpt() for _ in range(8)], UDP()), "ext_chain"),
    "cut_tcp_header": (eth(IP(**V4, proto=6)) + bytes(TCP())[:12], "truncated_l4"),
    "cut_tcp_options": (eth(IP(**V4, proto=6)) + bytes(TCP(dataofs=8))[:24], "truncated_l4"),
    "tcp_data_offset_4": (eth(IP(**V4), TCP(dataofs=4)), "bad_tcp_offset"),
    "cut_udp_header": (eth(IP(**V4, proto=17)) + b"\x00\x35\x00", "truncated_l4"),
    "cut_sctp_header": (eth(IP(**V4, proto=132)) + b"\x00\x01\x00\x02\x00\x00", "truncated_l4"),
    "cut_icmp_echo": (eth(IP(**V4, proto=1)) + b"\x08\x00\x00\x00\x12", "truncated_l4"),
    "tiny_first_fragment": (eth(IP(flags="MF", proto=6, **V4)) + b"\x00\x01\x00\x50" + b"\0" * 4,
                            "truncated_l4"),
}


@pytest.mark.parametrize("case", sorted(DROP_CASES))
def test_crafted_malformed_frame_is_dropped_with_its_reason(case):
    raw, reason = DROP_CASES[case]
    p = check(raw)
    assert p.drop == reason and p.key is None


def test_every_documented_drop_reason_has_a_crafted_case():
    assert {reason for _, reason in DROP_CASES.values()} == set(DROP_REASONS)


def test_every_prefix_that_cuts_the_datagram_is_dropped_never_misparsed():
    frames = [
        eth(Dot1Q(vlan=3), IP(**V4), TCP(sport=1, dport=2, options=[("MSS", 1460)]), b"pp"),
        eth(MPLS(s=1), IPv6(**V6), IPv6ExtHdrHopByHop(), UDP(sport=3, dport=4), b"q"),
        eth(IPv6(**V6), ICMPv6EchoRequest(id=9)),
    ]
    for raw in frames:
        full = parse_frame(raw).key
        assert full is not None
        for cut in range(len(raw)):
            p = parse_frame(raw[:cut])
            assert p.key is None and p.drop in DROP_REASONS, (cut, p)
            assert oracle(raw[:cut])["drop"] == p.drop, cut


def test_mutated_real_frames_parse_as_scapy_dissects_them():
    # Header bytes of real frames overwritten at random and frames cut at random: the parser
    # never raises and still agrees with the oracle, drop reason included.
    rng = seeded_rng("parse-fuzz")
    seeds = [raw for name in ("zeek_vlan-collisions.pcap", "ndpi_dns_fragmented.pcap",
                              "ndpi_android.pcap", "ndpi_http_ipv6.pcap")
             for _, raw in read_capture(capture(name))]
    reasons = Counter()
    for _ in range(4000):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(min(len(raw), 80))] = rng.randrange(256)
        if rng.random() < 0.3:
            del raw[rng.randrange(len(raw) + 1):]
        reasons[check(bytes(raw)).drop] += 1
    assert reasons[None] > 0 and len(reasons) > 6, reasons


def test_parser_accepts_bytearray_and_memoryview_and_garbage_types():
    raw = eth(IP(**V4), UDP(sport=1, dport=2))
    assert parse_frame(bytearray(raw)).key == parse_frame(memoryview(raw)).key is not None
    assert parse_frame(b"").drop == "truncated_l2"
    assert parse_frame(None).drop == "truncated_l2"


# --- the capture reader -------------------------------------------------------------------------

def _scapy_read(path):
    with open(path, "rb") as f:
        magic = f.read(4)
    reader = RawPcapNgReader if magic == b"\x0a\x0d\x0d\x0a" else RawPcapReader
    out = []
    with reader(str(path)) as r:
        for data, meta in r:
            if reader is RawPcapReader:
                ts = meta.sec + meta.usec / 1e6
            else:
                ts = ((meta.tshigh << 32) | meta.tslow) / meta.tsresol
            out.append((ts, bytes(data)))
    return out


@pytest.mark.parametrize("name", CAPTURES)
def test_reader_returns_what_scapy_reads(name):
    ours = read_capture(capture(name))
    theirs = _scapy_read(capture(name))
    assert [f for _, f in ours] == [f for _, f in theirs]
    assert all(abs(a - b) < 1e-5 for (a, _), (b, _) in zip(ours, theirs))


def test_reader_detects_pcapng_by_magic_not_by_name():
    path = capture("ndpi_tftp.pcap")
    assert path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    assert len(read_capture(path)) == 109


def test_reader_keeps_a_record_cut_by_end_of_file(scratch):
    data = capture("zeek_ftp_ipv4.pcap").read_bytes()
    whole = read_capture(capture("zeek_ftp_ipv4.pcap"))
    cut = scratch / "cut.pcap"
    cut.write_bytes(data[:-30])
    frames = read_capture(cut)
    assert len(frames) == len(whole)
    assert frames[-1][1] == whole[-1][1][:-30] and frames[:-1] == whole[:-1]
    # a cut inside a record header ends the capture before it
    cut.write_bytes(data[:24 + 16 + len(whole[0][1]) + 7])
    assert read_capture(cut) == whole[:1]


def test_reader_keeps_a_pcapng_block_cut_by_end_of_file(scratch):
    data = capture("ndpi_rtp.pcapng").read_bytes()
    whole = read_capture(capture("ndpi_rtp.pcapng"))
    cut = scratch / "cut.pcapng"
    cut.write_bytes(data[:-40])
    frames = read_capture(cut)
    assert frames[:-1] == whole[:-1] and whole[-1][1].startswith(frames[-1][1])


def test_short_record_becomes_an_input_the_parser_drops(scratch):
    path = scratch / "short.pcap"
    wrpcap(str(path), [Ether(**MAC) / IP(**V4) / UDP(), Raw(b"\x01\x02\x03")], linktype=1)
    frames = read_capture(path)
    assert len(frames) == 2 and parse_frame(frames[1][1]).drop == "truncated_l2"


@pytest.mark.parametrize("linktype,link_header", [
    (0, b"\x02\x00\x00\x00"),                                   # BSD loopback, AF_INET
    (113, b"\x00" * 14 + b"\x08\x00"),                           # Linux cooked v1
    (276, b"\x08\x00" + b"\x00" * 18),                           # Linux cooked v2
], ids=["null", "sll", "sll2"])
def test_record_shorter_than_its_link_header_is_dropped_and_the_capture_goes_on(
        scratch, linktype, link_header):
    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for body in (link_header[:-1], link_header + bytes(IP(**V4) / UDP())):
        pcap += struct.pack("<IIII", 1, 0, len(body), len(body)) + body
    path = scratch / "cooked.pcap"
    path.write_bytes(pcap)
    frames = read_capture(path)
    assert len(frames) == 2
    assert parse_frame(frames[0][1]).drop == "truncated_l2"
    assert parse_frame(frames[1][1]).key is not None


def test_reader_gives_nothing_for_missing_or_garbage_files(scratch):
    assert read_capture(scratch / "absent.pcap") == []
    (scratch / "junk.pcap").write_bytes(b"not a capture at all")
    assert read_capture(scratch / "junk.pcap") == []


@pytest.mark.parametrize("linktype, make", [
    (101, lambda p: bytes(p)),                                           # raw IP
    (228, lambda p: bytes(p)),                                           # IPv4
    (113, lambda p: b"\0\0\0\1\0\6" + b"\2\0\0\0\0\1\0\0" + b"\x08\x00" + bytes(p)),  # cooked
    (0, lambda p: struct.pack("<I", 2) + bytes(p)),                      # BSD loopback
])
def test_non_ethernet_link_types_become_ethernet_frames(scratch, linktype, make):
    ip = IP(**V4) / UDP(sport=11, dport=22)
    path = scratch / "link.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        body = make(ip)
        f.write(struct.pack("<IIII", 1, 500000, len(body), len(body)) + body)
    ((ts, frame),) = read_capture(path)
    assert ts == 1.5
    assert parse_frame(frame).key == FlowKey.of(V4["src"], V4["dst"], 17, 11, 22)


def test_pcapng_written_by_scapy_reads_back(scratch):
    path = scratch / "w.pcapng"
    pkts = [Ether(**MAC) / IP(**V4) / UDP(sport=i, dport=1) for i in range(1, 4)]
    for i, p in enumerate(pkts):
        p.time = 100 + i / 4
    with PcapNgWriter(str(path)) as w:
        for p in pkts:
            w.write(p)
    frames = read_capture(path)
    assert [f for _, f in frames] == [bytes(p) for p in pkts]
    assert [t for t, _ in frames] == pytest.approx([100, 100.25, 100.5])
