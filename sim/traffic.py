"""Traffic for the built-in scenario, crafted with Scapy: one of every kind of session the device
must handle (plain TCP/UDP/ICMP over IPv4 and IPv6, FTP passive and active with their data
connections, SIP with RTP, TFTP, VLAN and QinQ, fragments) and a few malformed frames.

:func:`builtin_scenario` returns ``(timestamp, frame bytes)`` pairs in order, like a capture, and
the children each parent announces, so tests can check that every child lands on its parent's
owner.
"""

from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from sim.flowkey import FlowKey


__all__ = ["builtin_scenario"]


class _Conversation:
    """Builds the frames of one conversation between a client and a server, both directions,
    each host with its own MAC (so ingress by MAC puts the directions on different cards)."""

    def __init__(self, out, client, server, *, l3=IP, vlans=()):
        self.out, self.client, self.server, self.l3, self.vlans = out, client, server, l3, vlans
        self.seq = {True: 1000, False: 5000}

    def _eth(self, from_client):
        c_mac, s_mac = _mac(self.client[0]), _mac(self.server[0])
        src, dst = (c_mac, s_mac) if from_client else (s_mac, c_mac)
        frame = Ether(src=src, dst=dst)
        for i, vid in enumerate(self.vlans):
            frame = frame / (Dot1AD(vlan=vid) if i == 0 and len(self.vlans) > 1 else Dot1Q(vlan=vid))
        return frame

    def _ip(self, from_client):
        (ca, _), (sa, _) = self.client, self.server
        src, dst = (ca, sa) if from_client else (sa, ca)
        return self.l3(src=src, dst=dst)

    def tcp(self, from_client, flags, payload=b""):
        (_, cp), (_, sp) = self.client, self.server
        sport, dport = (cp, sp) if from_client else (sp, cp)
        seq = self.seq[from_client]
        self.seq[from_client] += len(payload) + (1 if "S" in flags or "F" in flags else 0)
        pkt = self._eth(from_client) / self._ip(from_client) / TCP(sport=sport, dport=dport, flags=flags, seq=seq)
        self.out.append(pkt / Raw(payload) if payload else pkt)

    def udp(self, from_client, payload=b"", *, sport=None):
        (_, cp), (_, sp) = self.client, self.server
        a, b = (cp, sp) if from_client else (sp, cp)
        pkt = self._eth(from_client) / self._ip(from_client) / UDP(sport=sport or a, dport=b) / Raw(payload)
        self.out.append(pkt)

    def handshake(self):
        self.tcp(True, "S")
        self.tcp(False, "SA")
        self.tcp(True, "A")

    def close(self):
        self.tcp(True, "FA")
        self.tcp(False, "FA")
        self.tcp(True, "A")


def _mac(addr):
    digits = sum(addr.encode()) * 7919 + len(addr)
    return "02:00:" + ":".join(f"{(digits >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def builtin_scenario():
    """Returns ``(packets, children)``: packets as ``[(timestamp, bytes)]``, children as
    ``[(parent forward key, child first-packet key)]``."""
    pkts, children = [], []

    web = _Conversation(pkts, ("10.0.0.1", 40000), ("192.0.2.80", 80))
    web.handshake()
    web.tcp(True, "PA", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    web.tcp(False, "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    web.close()

    # FTP passive, IPv4: the server announces 192.0.2.21:20020 in a 227 reply.
    ftp = _Conversation(pkts, ("10.0.0.1", 40010), ("192.0.2.21", 21))
    ftp.handshake()
    ftp.tcp(False, "PA", b"220 ready\r\n")
    ftp.tcp(True, "PA", b"PASV\r\n")
    ftp.tcp(False, "PA", b"227 Entering Passive Mode (192,0,2,21,78,52).\r\n")
    data = _Conversation(pkts, ("10.0.0.1", 40011), ("192.0.2.21", 20020))
    data.handshake()
    data.tcp(False, "PA", b"file contents\n")
    data.close()
    children.append((FlowKey.of("10.0.0.1", "192.0.2.21", 6, 40010, 21),
                     FlowKey.of("10.0.0.1", "192.0.2.21", 6, 40011, 20020)))

    # FTP active, IPv6: EPRT announces the client's port; the server connects from port 20.
    ftp6 = _Conversation(pkts, ("2001:db8::1", 40020), ("2001:db8::21", 21), l3=IPv6)
    ftp6.handshake()
    ftp6.tcp(True, "PA", b"EPRT |2|2001:db8::1|40100|\r\n")
    ftp6.tcp(False, "PA", b"200 EPRT command successful\r\n")
    data6 = _Conversation(pkts, ("2001:db8::21", 20), ("2001:db8::1", 40100), l3=IPv6)
    data6.handshake()
    data6.tcp(True, "PA", b"listing\n")
    data6.close()
    ftp6.close()
    children.append((FlowKey.of("2001:db8::1", "2001:db8::21", 6, 40020, 21),
                     FlowKey.of("2001:db8::21", "2001:db8::1", 6, 20, 40100)))

    # SIP over UDP with SDP offer/answer, then RTP both ways.
    sip = _Conversation(pkts, ("10.0.0.5", 5060), ("10.0.0.6", 5060))
    sdp_offer = b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n"
    sdp_answer = b"v=0\r\no=- 2 2 IN IP4 10.0.0.6\r\ns=-\r\nc=IN IP4 10.0.0.6\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
    sip.udp(True, b"INVITE sip:b@10.0.0.6 SIP/2.0\r\nContent-Type: application/sdp\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(sdp_offer) + sdp_offer)
    sip.udp(False, b"SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(sdp_answer) + sdp_answer)
    rtp = _Conversation(pkts, ("10.0.0.6", 40000), ("10.0.0.5", 30000))
    for i in range(3):
        rtp.udp(True, b"\x80\x00" + bytes([0, i]) + b"\x00" * 20)
        rtp.udp(False, b"\x80\x00" + bytes([1, i]) + b"\x00" * 20)
    children.append((FlowKey.of("10.0.0.5", "10.0.0.6", 17, 5060, 5060),
                     FlowKey.of("10.0.0.6", "10.0.0.5", 17, 40000, 30000)))

    # TFTP: the reply comes from a new server port.
    tftp = _Conversation(pkts, ("10.0.0.7", 5000), ("192.0.2.69", 69))
    tftp.udp(True, b"\x00\x01file.txt\x00octet\x00")
    reply = _Conversation(pkts, ("192.0.2.69", 3001), ("10.0.0.7", 5000))
    reply.udp(True, b"\x00\x03\x00\x01hello")
    reply.udp(False, b"\x00\x04\x00\x01")
    children.append((FlowKey.of("10.0.0.7", "192.0.2.69", 17, 5000, 69),
                     FlowKey.of("192.0.2.69", "10.0.0.7", 17, 3001, 5000)))

    # ICMP and ICMPv6 echo.
    pkts.append(Ether(src=_mac("10.0.0.1"), dst=_mac("192.0.2.1")) / IP(src="10.0.0.1", dst="192.0.2.1") / ICMP(type=8, id=7, seq=1))
    pkts.append(Ether(src=_mac("192.0.2.1"), dst=_mac("10.0.0.1")) / IP(src="192.0.2.1", dst="10.0.0.1") / ICMP(type=0, id=7, seq=1))
    pkts.append(Ether(src=_mac("2001:db8::1"), dst=_mac("2001:db8::2")) / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(id=9))
    pkts.append(Ether(src=_mac("2001:db8::2"), dst=_mac("2001:db8::1")) / IPv6(src="2001:db8::2", dst="2001:db8::1") / ICMPv6EchoReply(id=9))

    # VLAN and QinQ: the same 5-tuple in three zones is three sessions.
    for vlans in ((), (42,), (10, 20)):
        tagged = _Conversation(pkts, ("10.0.1.1", 41000), ("10.0.1.2", 443), vlans=vlans)
        tagged.handshake()
        tagged.close()

    # A UDP datagram in three IPv4 fragments, and its answer.
    big = Ether(src=_mac("10.0.0.9"), dst=_mac("10.0.0.53")) / IP(src="10.0.0.9", dst="10.0.0.53", id=4242) / \
        UDP(sport=5353, dport=53) / Raw(b"q" * 1200)
    pkts.extend(Ether(src=_mac("10.0.0.9"), dst=_mac("10.0.0.53")) / f for f in fragment(big[IP], fragsize=500))
    pkts.append(Ether(src=_mac("10.0.0.53"), dst=_mac("10.0.0.9")) / IP(src="10.0.0.53", dst="10.0.0.9") /
                UDP(sport=53, dport=5353) / Raw(b"a" * 40))

    # Malformed: a runt, a bad IHL, a total length beyond the frame, and ARP (not IP).
    frames = [bytes(p) for p in pkts]
    frames.append(bytes(Ether(src=_mac("x"), dst=_mac("y")))[:10])
    bad_ihl = bytearray(bytes(Ether(src=_mac("10.9.9.9")) / IP(src="10.9.9.9", dst="10.9.9.8") / UDP()))
    bad_ihl[14] = 0x43
    frames.append(bytes(bad_ihl))
    frames.append(bytes(Ether(src=_mac("10.9.9.9")) / IP(src="10.9.9.9", dst="10.9.9.8", len=1400) / UDP()))
    frames.append(bytes(Ether(src=_mac("10.0.0.1")) / ARP(psrc="10.0.0.1", pdst="10.0.0.2")))

    return [(i * 0.001, f) for i, f in enumerate(frames)], children
