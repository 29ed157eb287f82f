"""Byte-level frame parser: the model of the flow engine's hardware parser.

Written over bytes, not Scapy, because it is the reference the hardware parser is held to: every
decision here (how deep to look, when to give up, which key to emit) is one the hardware must
make in the same way. Scapy is only the oracle in the tests.

What is parsed
--------------
Ethernet II, then up to :data:`MAX_VLAN_TAGS` VLAN tags (0x8100, 0x88a8, 0x9100 in any order),
then optionally an MPLS label stack (0x8847/0x8848, at most :data:`MAX_MPLS_LABELS` labels; after
bottom of stack the payload is taken as IPv4 or IPv6 by its version nibble, as routers and
Wireshark do, because MPLS carries no payload type), then IPv4 (options skipped) or IPv6 (the
extension headers 0, 43, 44, 51, 60 walked, at most :data:`MAX_IPV6_EXT` of them, the set Linux
conntrack skips), then TCP, UDP, SCTP, ICMP, ICMPv6.

Key conventions (field meanings: :data:`hdl.wire.FLOW_KEY`)
-----------------------------------------------------------
* Zone: each VLAN tag shifts the zone left by 12 and adds its VID, so one tag gives ``VID`` and
  QinQ gives ``outer << 12 | inner``; untagged is 0. MPLS labels do not enter the zone.
* TCP, UDP, SCTP: the ports.
* ICMP (proto 1) and ICMPv6 (proto 58), echo request/reply (8/0, 128/129): ``src_port`` is the
  identifier and ``dst_port`` is 0, in *both* directions. So a request ``A->B id`` and its reply
  ``B->A id`` differ only by the swapped addresses: the reverse key of an ICMP flow swaps the
  addresses and keeps the ports (:func:`reverse_key`). Swapping the ports as well would give
  ``dst_port = id`` and never match the reply.
* ICMP/ICMPv6, any other type: ``src_port = 0``, ``dst_port = type << 8 | code``; reverse key by
  the same rule (addresses swapped, ports kept).
* Any other protocol (GRE, ESP, OSPF, ...): ports 0.
* Non-first fragments carry no transport header: ports 0 and, for IPv6, ``proto`` is the fragment
  header's next header. :class:`sim.packets.fragments.FragmentTable` fills the ports in.

Lengths
-------
The IP length bounds everything after the IP header: bytes beyond it are Ethernet padding and
are ignored; a length that claims more than the frame holds is a drop (``bad_ip_len``), whether
the frame was cut by a capture snaplen or is malformed, because the hardware cannot tell the two
apart. IPv6 payload length 0 means an empty payload (a jumbogram cannot travel over Ethernet).
A whole TCP header, options included, must fit, except in a first fragment, which may leave
options to the next fragment (the ports are all the key needs).

A frame that cannot be keyed is dropped with one reason from :data:`DROP_REASONS`; the parser
never raises on any input.
"""

from dataclasses import dataclass
from typing import NamedTuple, Optional

from sim.flowkey import V4_MAPPED, FlowKey


__all__ = [
    "Parsed", "Frag", "parse_frame", "reverse_key", "DROP_REASONS",
    "MAX_VLAN_TAGS", "MAX_MPLS_LABELS", "MAX_IPV6_EXT",
    "ETH_P_IP", "ETH_P_IPV6", "VLAN_TPIDS", "MPLS_TYPES",
    "IPPROTO_ICMP", "IPPROTO_TCP", "IPPROTO_UDP", "IPPROTO_SCTP", "IPPROTO_ICMPV6",
]


ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})
MPLS_TYPES = frozenset({0x8847, 0x8848})

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132
IPPROTO_ICMPV6 = 58

# Bounds of the hardware parser. Two tags fill the 24-bit zone; a third would not fit.
MAX_VLAN_TAGS = 2
MAX_MPLS_LABELS = 8
MAX_IPV6_EXT = 8

# Extension headers walked (Linux ipv6_ext_hdr() minus 'no next header', which ends the chain).
_IPV6_EXT_GENERIC = frozenset({0, 43, 60})   # length in 8-octet units, not counting the first 8
_IPV6_FRAGMENT = 44
_IPV6_AH = 51                                 # length in 4-octet units, not counting the first 2

_ECHO_TYPES = {IPPROTO_ICMP: frozenset({0, 8}), IPPROTO_ICMPV6: frozenset({128, 129})}
_PORT_PROTOS = frozenset({IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP})
# Bytes of transport header a key needs. TCP needs the fixed header (flags); echo needs the id.
_L4_MIN = {IPPROTO_TCP: 20, IPPROTO_UDP: 8, IPPROTO_SCTP: 12}

DROP_REASONS = {
    "truncated_l2": "shorter than an Ethernet header, or a VLAN tag or MPLS label is cut",
    "vlan_depth": f"more than {MAX_VLAN_TAGS} VLAN tags",
    "mpls_depth": f"no bottom-of-stack label within {MAX_MPLS_LABELS} labels",
    "non_ip": "ethertype is not IP (ARP, LLDP, 802.3 length...), or the MPLS payload is not IP",
    "bad_ip_version": "IP version nibble disagrees with the ethertype",
    "truncated_l3": "IPv4 header (20 or IHL*4 bytes), IPv6 header (40) or an IPv6 extension "
                    "header does not fit in the bytes present",
    "bad_ihl": "IPv4 IHL below 5",
    "bad_ip_len": "IPv4 total length below IHL*4 or beyond the frame; IPv6 40 + payload length "
                  "beyond the frame",
    "ext_chain": f"more than {MAX_IPV6_EXT} IPv6 extension headers",
    "truncated_l4": "the transport header the key needs does not fit in the IP payload "
                    "(TCP 20 and its options unless a first fragment, UDP 8, SCTP 12, "
                    "ICMP/ICMPv6 8)",
    "bad_tcp_offset": "TCP data offset below 5",
}


class Frag(NamedTuple):
    """Fragment information of an IPv4 or IPv6 fragment.

    Attributes
    ----------
    ident : int
        IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    offset : int
        Offset of this fragment's data in the datagram, in bytes.
    more : bool
        More-fragments flag.
    proto : int
        IPv4 protocol, or the IPv6 fragment header's next header: the value every fragment of
        the datagram carries, which the fragment table keys on.
    """
    ident: int
    offset: int
    more: bool
    proto: int


@dataclass(frozen=True)
class Parsed:
    """What the parser extracted from one frame.

    Attributes
    ----------
    key : FlowKey or None
        Flow key; None exactly when ``drop`` is set.
    drop : str or None
        Drop reason, one of :data:`DROP_REASONS`.
    payload : bytes
        Transport payload, bounded by the IP length (Ethernet padding excluded). For a non-first
        fragment, the fragment's data; for protocols without ports, the whole IP payload.
    tcp_flags : int
        TCP flags, 9 bits (NS/AE .. FIN) as Scapy counts them; 0 for other protocols.
    frag : Frag or None
        Set for IPv4/IPv6 fragments (atomic IPv6 fragments, offset 0 without M, are not).
    l3_offset : int or None
        Frame offset of the IP header.
    l4_offset : int or None
        Frame offset of the transport header (of the fragment data for non-first fragments).
    ip_version : int or None
        4 or 6 once an IP header was recognised.
    length : int
        Frame length in bytes.
    """
    key: Optional[FlowKey] = None
    drop: Optional[str] = None
    payload: bytes = b""
    tcp_flags: int = 0
    frag: Optional[Frag] = None
    l3_offset: Optional[int] = None
    l4_offset: Optional[int] = None
    ip_version: Optional[int] = None
    length: int = 0

    @property
    def zone(self):
        return self.key.zone if self.key is not None else None


def reverse_key(key):
    """The key the other direction of ``key``'s session carries, without NAT.

    This is what an owner puts in ``SESSION_BIND`` as the reverse flow. TCP, UDP, SCTP and
    port-less protocols: addresses and ports swapped (:meth:`FlowKey.swapped`). ICMP and ICMPv6:
    addresses swapped, ports kept, because an echo reply keeps the request's identifier in
    ``src_port`` (see the module docstring).

    Parameters
    ----------
    key : FlowKey

    Returns
    -------
    FlowKey
    """
    if key.proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        return key._replace(src_addr=key.dst_addr, dst_addr=key.src_addr)
    return key.swapped()


def _u16(b, i):
    return (b[i] << 8) | b[i + 1]


def parse_frame(frame):
    """Parse one Ethernet frame into a flow key, or a drop reason.

    Parameters
    ----------
    frame : bytes-like
        The frame from the destination MAC on, without FCS.

    Returns
    -------
    Parsed
        Never raises; an input that cannot be keyed has ``drop`` set and ``key`` None.
    """
    try:
        return _parse(bytes(frame))
    except Exception:   # not bytes-like (or a parser bug): the datapath must still go on
        return Parsed(drop="truncated_l2", length=len(frame) if hasattr(frame, "__len__") else 0)


def _parse(b):
    n = len(b)
    if n < 14:
        return Parsed(drop="truncated_l2", length=n)
    etype = _u16(b, 12)
    off = 14
    zone = 0
    tags = 0
    while etype in VLAN_TPIDS:
        if tags == MAX_VLAN_TAGS:
            return Parsed(drop="vlan_depth", length=n)
        if off + 4 > n:
            return Parsed(drop="truncated_l2", length=n)
        zone = ((zone << 12) | (_u16(b, off) & 0x0FFF)) & 0xFFFFFF
        etype = _u16(b, off + 2)
        off += 4
        tags += 1

    if etype in MPLS_TYPES:
        for _ in range(MAX_MPLS_LABELS):
            if off + 4 > n:
                return Parsed(drop="truncated_l2", length=n)
            bos = b[off + 2] & 0x01
            off += 4
            if bos:
                break
        else:
            return Parsed(drop="mpls_depth", length=n)
        if off >= n:
            return Parsed(drop="truncated_l3", length=n)
        version = b[off] >> 4
        if version == 4:
            etype = ETH_P_IP
        elif version == 6:
            etype = ETH_P_IPV6
        else:
            return Parsed(drop="non_ip", length=n)

    if etype == ETH_P_IP:
        return _ipv4(b, off, zone)
    if etype == ETH_P_IPV6:
        return _ipv6(b, off, zone)
    return Parsed(drop="non_ip", length=n)


def _ipv4(b, l3, zone):
    n = len(b)
    avail = n - l3
    if avail < 1:
        return Parsed(drop="truncated_l3", l3_offset=l3, length=n)
    if b[l3] >> 4 != 4:
        return Parsed(drop="bad_ip_version", l3_offset=l3, length=n)
    if avail < 20:
        return Parsed(drop="truncated_l3", l3_offset=l3, ip_version=4, length=n)
    hlen = (b[l3] & 0x0F) * 4
    if hlen < 20:
        return Parsed(drop="bad_ihl", l3_offset=l3, ip_version=4, length=n)
    if avail < hlen:
        return Parsed(drop="truncated_l3", l3_offset=l3, ip_version=4, length=n)
    total = _u16(b, l3 + 2)
    if total < hlen or total > avail:
        return Parsed(drop="bad_ip_len", l3_offset=l3, ip_version=4, length=n)
    ident = _u16(b, l3 + 4)
    ff = _u16(b, l3 + 6)
    more = bool(ff & 0x2000)
    frag_off = (ff & 0x1FFF) * 8
    proto = b[l3 + 9]
    src = V4_MAPPED | int.from_bytes(b[l3 + 12:l3 + 16], "big")
    dst = V4_MAPPED | int.from_bytes(b[l3 + 16:l3 + 20], "big")
    frag = Frag(ident, frag_off, more, proto) if (more or frag_off) else None
    return _l4(b, l3, l3 + hlen, l3 + total, 4, src, dst, proto, zone, frag)


def _ipv6(b, l3, zone):
    n = len(b)
    avail = n - l3
    if avail < 1:
        return Parsed(drop="truncated_l3", l3_offset=l3, length=n)
    if b[l3] >> 4 != 6:
        return Parsed(drop="bad_ip_version", l3_offset=l3, length=n)
    if avail < 40:
        return Parsed(drop="truncated_l3", l3_offset=l3, ip_version=6, length=n)
    end = l3 + 40 + _u16(b, l3 + 4)
    if end > n:
        return Parsed(drop="bad_ip_len", l3_offset=l3, ip_version=6, length=n)
    src = int.from_bytes(b[l3 + 8:l3 + 24], "big")
    dst = int.from_bytes(b[l3 + 24:l3 + 40], "big")
    nh = b[l3 + 6]
    off = l3 + 40
    frag = None
    seen = 0
    while nh in _IPV6_EXT_GENERIC or nh == _IPV6_FRAGMENT or nh == _IPV6_AH:
        if seen == MAX_IPV6_EXT:
            return Parsed(drop="ext_chain", l3_offset=l3, ip_version=6, length=n)
        seen += 1
        if off + 8 > end:
            return Parsed(drop="truncated_l3", l3_offset=l3, ip_version=6, length=n)
        if nh == _IPV6_FRAGMENT:
            fo = _u16(b, off + 2)
            frag_off = fo & 0xFFF8
            more = bool(fo & 1)
            nxt = b[off]
            off += 8
            if frag_off or more:
                frag = Frag(int.from_bytes(b[off - 4:off], "big"), frag_off, more, nxt)
            nh = nxt
            if frag_off:
                break      # no upper-layer header in this fragment: stop at its next header
            continue
        hl = (b[off + 1] + 2) * 4 if nh == _IPV6_AH else (b[off + 1] + 1) * 8
        if off + hl > end:
            return Parsed(drop="truncated_l3", l3_offset=l3, ip_version=6, length=n)
        nh = b[off]
        off += hl
    return _l4(b, l3, off, end, 6, src, dst, nh, zone, frag)


def _l4(b, l3, l4, end, version, src, dst, proto, zone, frag):
    """Transport header at ``l4``; ``end`` is where the IP datagram (not the frame) ends."""
    n = len(b)
    if frag is not None and frag.offset:
        return Parsed(key=FlowKey(src, dst, 0, 0, proto, zone), payload=b[l4:end], frag=frag,
                      l3_offset=l3, l4_offset=l4, ip_version=version, length=n)
    avail = end - l4
    sport = dport = flags = 0
    hlen = 0

    def drop(reason):
        return Parsed(drop=reason, frag=frag, l3_offset=l3, l4_offset=l4, ip_version=version,
                      length=n)

    if proto in _PORT_PROTOS:
        hlen = _L4_MIN[proto]
        if avail < hlen:
            return drop("truncated_l4")
        sport = _u16(b, l4)
        dport = _u16(b, l4 + 2)
        if proto == IPPROTO_TCP:
            doff = (b[l4 + 12] >> 4) * 4
            if doff < 20:
                return drop("bad_tcp_offset")
            flags = ((b[l4 + 12] & 1) << 8) | b[l4 + 13]
            if doff > avail:
                # A first fragment may carry only part of the options (the rest is in the next
                # fragment); the ports are all the key needs. Whole datagrams must fit.
                if frag is None:
                    return drop("truncated_l4")
                doff = avail
            hlen = doff
    elif proto in _ECHO_TYPES:
        # Every ICMP and ICMPv6 message has type, code, checksum and 4 more header bytes.
        if avail < 8:
            return drop("truncated_l4")
        icmp_type, code = b[l4], b[l4 + 1]
        if icmp_type in _ECHO_TYPES[proto]:
            sport = _u16(b, l4 + 4)
        else:
            dport = (icmp_type << 8) | code
        hlen = 8
    return Parsed(key=FlowKey(src, dst, sport, dport, proto, zone), payload=b[l4 + hlen:end],
                  tcp_flags=flags, frag=frag, l3_offset=l3, l4_offset=l4, ip_version=version,
                  length=n)
