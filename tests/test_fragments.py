"""The fragment table: every fragment of a datagram is keyed like its first fragment.

Real captures: zeek's two-fragment SYN, zeek's never-completed FTP fragment train and nDPI's
fragmented DNS answers (IPv4 and IPv6). Crafted cases: loss, reordering, expiry, capacity,
reuse of an IP ID, zones.
"""

import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.layers.l2 import Dot1Q, Ether

from sim.flowkey import FlowKey
from sim.packets.capture import read_capture
from sim.packets.fragments import FragmentTable, FragResult
from sim.packets.parse import parse_frame


PCAP_DIR = Path(os.environ.get("FLOWOWN_PCAPS", "/work/shared/pcaps"))


def capture(name):
    path = PCAP_DIR / name
    if not path.exists():
        pytest.skip(f"{name} not in {PCAP_DIR}")
    return path


def resolve_all(name, table=None):
    """[(parsed, FragResult)] for every packet of a capture, through one table."""
    table = table or FragmentTable()
    return [(p, table.resolve(p, ts)) for ts, raw in read_capture(capture(name))
            for p in [parse_frame(raw)]], table


def datagrams(results):
    """Fragments grouped by datagram identity, in capture order."""
    groups = defaultdict(list)
    for p, r in results:
        if p.frag is not None:
            groups[(p.key.src_addr, p.key.dst_addr, p.frag.proto, p.frag.ident)].append((p, r))
    return groups


# --- real captures ------------------------------------------------------------------------------

def test_fragmented_syn_second_fragment_gets_the_syn_ports():
    results, table = resolve_all("zeek_ipv4_fragmented-syn.pcap")
    (p1, r1), (p2, r2) = results
    syn = FlowKey.of("192.168.1.100", "10.0.0.5", 6, 12345, 80)
    assert p1.key == syn and p1.tcp_flags == 0x02 and r1 == FragResult(syn, "first")
    assert p2.key.dst_port == 0 and r2 == FragResult(syn, "matched")
    assert table.stats["frag_unmatched"] == 0


def test_never_completed_fragment_train_is_keyed_like_its_head_throughout():
    results, table = resolve_all("zeek_ipv4_fragmented-3.pcap")
    head = FlowKey.of("210.54.213.247", "131.243.1.10", 6, 1265, 21)
    assert [r.key for _, r in results] == [head] * 5
    assert [r.status for _, r in results] == ["first"] + ["matched"] * 4
    assert all(p.frag.more for p, _ in results)     # the last fragment still says "more"
    assert len(table) == 1                            # and stays until it times out


def test_fragmented_dns_every_fragment_gets_its_first_fragments_key():
    results, table = resolve_all("ndpi_dns_fragmented.pcap")
    groups = datagrams(results)
    families = Counter(p.ip_version for group in groups.values() for p, _ in group[:1])
    assert families == {4: 4, 6: 3}
    for group in groups.values():
        first_key = group[0][0].key
        assert group[0][0].frag.offset == 0 and first_key.src_port == 53
        assert [r.key for _, r in group] == [first_key] * len(group)
        assert [r.status for _, r in group] == ["first"] + ["matched"] * (len(group) - 1)
    assert table.stats["frag_unmatched"] == 0
    unfragmented = [r for p, r in results if p.frag is None]
    assert all(r.status == "unfragmented" and r.key is not None for r in unfragmented)


def test_fragmented_dns_without_a_table_would_split_the_datagram_into_two_flows():
    # Why the table exists: the tail alone parses to a port-less key of another flow.
    results, _ = resolve_all("ndpi_dns_fragmented.pcap")
    for group in datagrams(results).values():
        assert group[-1][0].key != group[0][0].key


# --- crafted ------------------------------------------------------------------------------------

SRC, DST = "192.0.2.1", "198.51.100.9"


def v4_frag(ident=7, offset=0, more=True, sport=5353, dport=53, src=SRC, vlan=None):
    """An IPv4 UDP fragment; the first carries the UDP header."""
    ip = IP(src=src, dst=DST, id=ident, proto=17, flags="MF" if more else 0, frag=offset // 8)
    body = bytes(UDP(sport=sport, dport=dport) / (b"x" * 16)) if offset == 0 else b"y" * 16
    l2 = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if vlan is not None:
        l2 = l2 / Dot1Q(vlan=vlan)
    return parse_frame(bytes(l2 / ip / body))


FULL = FlowKey.of(SRC, DST, 17, 5353, 53)
TAIL = FlowKey.of(SRC, DST, 17)


def test_later_fragment_without_its_first_keeps_ports_zero_and_is_reported():
    t = FragmentTable()
    assert t.resolve(v4_frag(offset=24, more=False), now=0) == FragResult(TAIL, "unmatched")
    assert t.stats["frag_unmatched"] == 1 and len(t) == 0


def test_reordered_fragments_after_the_first_all_match():
    t = FragmentTable()
    t.resolve(v4_frag(), now=0)
    last = t.resolve(v4_frag(offset=48, more=False), now=0.1)
    middle = t.resolve(v4_frag(offset=24), now=0.2)
    assert last == middle == FragResult(FULL, "matched")


def test_fragment_arriving_before_its_first_is_unmatched_then_later_ones_match():
    t = FragmentTable()
    assert t.resolve(v4_frag(offset=24), now=0).status == "unmatched"
    assert t.resolve(v4_frag(), now=0.1).status == "first"
    assert t.resolve(v4_frag(offset=48, more=False), now=0.2).status == "matched"


def test_entry_expires_after_timeout_not_before():
    t = FragmentTable(timeout=30)
    t.resolve(v4_frag(), now=100)
    assert t.resolve(v4_frag(offset=24), now=130).status == "matched"       # exactly at timeout
    assert t.resolve(v4_frag(offset=48), now=130.001).status == "unmatched"
    t.resolve(v4_frag(ident=8), now=131)          # any later operation retires the old entry
    assert len(t) == 1 and t.stats["expired"] == 1


def test_matches_do_not_extend_an_entrys_life():
    t = FragmentTable(timeout=10)
    t.resolve(v4_frag(), now=0)
    for now in (5, 9, 10):
        assert t.resolve(v4_frag(offset=24), now=now).status == "matched"
    assert t.resolve(v4_frag(offset=24), now=10.5).status == "unmatched"


def test_full_table_evicts_the_oldest_datagram():
    t = FragmentTable(capacity=3)
    for ident in range(4):
        t.resolve(v4_frag(ident=ident, sport=1000 + ident), now=ident)
    assert len(t) == 3 and t.stats["evicted"] == 1
    assert t.resolve(v4_frag(ident=0, offset=24), now=5).status == "unmatched"
    for ident in (1, 2, 3):
        r = t.resolve(v4_frag(ident=ident, offset=24), now=5)
        assert r.status == "matched" and r.key.src_port == 1000 + ident


def test_expired_entries_are_reclaimed_before_anything_is_evicted():
    t = FragmentTable(capacity=2, timeout=1)
    t.resolve(v4_frag(ident=1), now=0)
    t.resolve(v4_frag(ident=2), now=0)
    t.resolve(v4_frag(ident=3), now=5)
    assert t.stats["evicted"] == 0 and t.stats["expired"] == 2 and len(t) == 1


def test_reused_ip_id_starts_a_new_datagram_with_new_ports():
    t = FragmentTable(timeout=30)
    t.resolve(v4_frag(sport=1111), now=0)
    t.resolve(v4_frag(sport=2222), now=20)
    r = t.resolve(v4_frag(offset=24), now=45)     # 25 s after the second head: still live
    assert r.status == "matched" and r.key.src_port == 2222 and len(t) == 1


def test_same_ip_id_from_another_source_or_zone_is_another_datagram():
    t = FragmentTable()
    t.resolve(v4_frag(sport=1111), now=0)
    assert t.resolve(v4_frag(offset=24, src="192.0.2.99"), now=0).status == "unmatched"
    assert t.resolve(v4_frag(offset=24, vlan=5), now=0).status == "unmatched"
    t.resolve(v4_frag(sport=3333, vlan=5), now=0)
    r = t.resolve(v4_frag(offset=24, vlan=5), now=0)
    assert r.key.src_port == 3333 and r.key.zone == 5


def test_ipv6_tail_matches_a_head_whose_transport_sits_behind_more_extension_headers():
    l2 = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ip6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
    head = parse_frame(bytes(l2 / ip6 / IPv6ExtHdrFragment(id=9, m=1) / IPv6ExtHdrDestOpt() /
                             UDP(sport=53, dport=40000) / (b"d" * 16)))
    tail = parse_frame(bytes(l2 / ip6 / IPv6ExtHdrFragment(id=9, offset=4, nh=60) / (b"e" * 8)))
    assert head.key.proto == 17 and tail.key.proto == 60
    t = FragmentTable()
    t.resolve(head, now=0)
    assert t.resolve(tail, now=0) == FragResult(head.key, "matched")


def test_unfragmented_and_dropped_packets_pass_through_untouched():
    t = FragmentTable()
    whole = parse_frame(bytes(Ether() / IP(src=SRC, dst=DST) / UDP(sport=1, dport=2)))
    assert t.resolve(whole, now=0) == FragResult(whole.key, "unfragmented")
    assert t.resolve(parse_frame(b"\0" * 10), now=0) == FragResult(None, "dropped")
    assert len(t) == 0 and not t.stats


def test_capacity_and_timeout_are_coerced_to_sane_values():
    t = FragmentTable(capacity=0, timeout="2")
    t.resolve(v4_frag(ident=1), now=0)
    t.resolve(v4_frag(ident=2), now=0)
    assert len(t) == 1 and t.timeout == 2.0
