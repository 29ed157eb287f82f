"""SIP decoder (RFC 3261 + SDP, RFC 4566): predicts the media flows an offer or answer opens.

Which messages are read: requests INVITE, ACK, UPDATE, PRACK (offers, re-INVITEs, late
answers) and 1xx/2xx responses whose CSeq method is one of those (answers, early media in 183).
Their SDP is read wherever it sits in the body, so ``multipart/mixed`` bodies (SIP-T carrying
ISUP next to the SDP) work too.

What each media line predicts: for every ``m=`` line with a non-zero port, with the media-level
``c=`` address or else the session-level one (unspecified addresses 0.0.0.0/:: mean "hold" and
predict nothing):

* ``* : * -> c_addr : port`` (wildcards ``src_addr``, ``src_port``) and
* ``c_addr : port -> * : *`` (wildcards ``dst_addr``, ``dst_port``),

because the far end's media address is not known until the answer, and media may start before
the answer arrives (early media: in ndpi_FAX-Call-t38 RTP flows after the INVITE but before the
200 OK), from either end. The address wildcards are wider than Linux's ``sip_direct_media``
because media often flows to a media gateway that is not a signalling endpoint.

RTCP: for RTP transports (``RTP/...``) the same two predictions are made for the RTCP port,
``a=rtcp:`` when given (RFC 3605), else port + 1, and none with ``a=rtcp-mux`` (RFC 5761).
Non-RTP transports (``udptl`` for T.38) have no RTCP. ``m=... port/n`` predicts n ports (2 apart
for RTP), at most :data:`MAX_PORT_COUNT`. Transport ``TCP/...`` predicts TCP, anything else UDP.

Over TCP, messages are framed by ``Content-Length`` in a bounded per-direction buffer; over UDP
each datagram is one message.
"""

import ipaddress
import re

from sim.flowkey import FlowKey, V4_MAPPED

from . import Decoder, Prediction


__all__ = ["SipDecoder"]

IPPROTO_TCP = 6
IPPROTO_UDP = 17
MAX_BUFFER = 65536
MAX_PORT_COUNT = 8
MAX_MEDIA = 16          # media lines read per message: a bound on the entries one message adds

SDP_METHODS = frozenset({b"INVITE", b"ACK", b"UPDATE", b"PRACK"})
_WILD_TO = frozenset({"src_addr", "src_port"})
_WILD_FROM = frozenset({"dst_addr", "dst_port"})

_REQUEST = re.compile(rb"([A-Za-z]+) \S+ SIP/2\.0\s*$")
_RESPONSE = re.compile(rb"SIP/2\.0 (\d{3})(?: |$)")
_HDR_END = re.compile(rb"\r?\n\r?\n")
_CLEN = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.I | re.M)
_CSEQ = re.compile(rb"^cseq[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)", re.I | re.M)


def _addr(nettype_line):
    """``IN IP4 a.b.c.d[/ttl]`` -> key address, or None (FQDN, unspecified, malformed)."""
    parts = nettype_line.split()
    if len(parts) < 3 or parts[0].upper() != b"IN" or parts[1].upper() not in (b"IP4", b"IP6"):
        return None
    try:
        ip = ipaddress.ip_address(parts[2].split(b"/")[0].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    if ip.is_unspecified or ip.version != (4 if parts[1].upper() == b"IP4" else 6):
        return None
    return V4_MAPPED | int(ip) if ip.version == 4 else int(ip)


def _port(text):
    return int(text) if text.isdigit() and len(text) <= 5 and 0 < int(text) < 65536 else None


class _Media:
    __slots__ = ("port", "count", "transport", "addr", "rtcp_port", "rtcp_addr", "mux")

    def __init__(self, port, count, transport):
        self.port, self.count, self.transport = port, count, transport
        self.addr = self.rtcp_port = self.rtcp_addr = None
        self.mux = False


def parse_sdp(body):
    """Media of every SDP session description in ``body``.

    Parameters
    ----------
    body : bytes

    Returns
    -------
    list of (address, port, count, transport, rtcp_port, rtcp_addr, rtcp_mux)
        ``address`` resolved from the media or session ``c=``; media without one are left out.
    """
    out = []
    session_addr = None
    media = []
    in_sdp = False

    def flush():
        for m in media:
            addr = m.addr if m.addr is not None else session_addr
            if addr is not None:
                out.append((addr, m.port, m.count, m.transport, m.rtcp_port, m.rtcp_addr, m.mux))

    for raw in body.split(b"\n"):
        line = raw.strip()
        if line.startswith(b"v="):      # a new description (a multipart body may hold several)
            flush()
            session_addr, media, in_sdp = None, [], True
            continue
        if not in_sdp or len(line) < 2 or line[1:2] != b"=":
            continue
        kind, value = line[:1], line[2:]
        if kind == b"c":
            addr = _addr(value)
            if media:
                if media[-1].addr is None:
                    media[-1].addr = addr
            elif session_addr is None:
                session_addr = addr
        elif kind == b"m" and len(media) < MAX_MEDIA:
            fields = value.split()
            if len(fields) < 3:
                continue
            port_s, _, count_s = fields[1].partition(b"/")
            port = _port(port_s)
            count = int(count_s) if count_s.isdigit() and len(count_s) <= 2 else 1
            if port is None:
                continue       # port 0: stream rejected or disabled
            media.append(_Media(port, max(1, min(count, MAX_PORT_COUNT)), fields[2].upper()))
        elif kind == b"a" and media:
            if value.lower().startswith(b"rtcp:"):
                parts = value[5:].split(None, 1)
                if parts:
                    media[-1].rtcp_port = _port(parts[0])
                    if len(parts) > 1:
                        media[-1].rtcp_addr = _addr(parts[1])
            elif value.lower() == b"rtcp-mux":
                media[-1].mux = True
    flush()
    return out


class SipDecoder(Decoder):
    """Decoder of one SIP signalling session (UDP or TCP)."""

    name = "sip"

    def __init__(self, fwd_key):
        super().__init__(fwd_key)
        self._buf = {True: bytearray(), False: bytearray()}

    def _inspect(self, key, payload, forward):
        if key.proto == IPPROTO_TCP:
            out = []
            for msg in self._stream(forward, payload):
                out += self._message(msg)
            return out
        return self._message(payload)

    def _stream(self, forward, payload):
        buf = self._buf[forward]
        buf += payload
        msgs = []
        while True:
            while buf[:2] == b"\r\n":       # keep-alive CRLFs between messages
                del buf[:2]
            m = _HDR_END.search(buf)
            if m is None:
                break
            c = _CLEN.search(buf, 0, m.start())
            end = m.end() + (int(c.group(1)) if c else 0)
            if end - m.end() > MAX_BUFFER:
                buf.clear()
                self.stats["refused_oversize"] += 1
                break
            if len(buf) < end:
                break
            msgs.append(bytes(buf[:end]))
            del buf[:end]
        if len(buf) > MAX_BUFFER:
            buf.clear()
            self.stats["refused_oversize"] += 1
        return msgs

    def _message(self, msg):
        m = _HDR_END.search(msg)
        if m is None:
            return []
        head, body = msg[:m.start()], msg[m.end():]
        first = head.split(b"\n", 1)[0].rstrip(b"\r")
        req = _REQUEST.match(first)
        if req:
            if req.group(1).upper() not in SDP_METHODS:
                return []
        else:
            resp = _RESPONSE.match(first)
            if resp is None or not 100 <= int(resp.group(1)) < 300:
                return []
            cseq = _CSEQ.search(head)
            if cseq is not None and cseq.group(1).upper() not in SDP_METHODS:
                return []
        c = _CLEN.search(head)
        if c is not None:
            body = body[:int(c.group(1))]
        out = []
        for addr, port, count, transport, rtcp_port, rtcp_addr, mux in parse_sdp(body):
            self.stats["media"] += 1
            proto = IPPROTO_TCP if transport.startswith(b"TCP") else IPPROTO_UDP
            rtp = b"RTP" in transport
            step = 2 if rtp else 1
            for i in range(count):
                p = port + i * step
                if p > 65535:
                    break
                out += self._both(addr, p, proto)
                if rtp and not mux:
                    rp = rtcp_port if (rtcp_port and i == 0) else p + 1
                    if rp <= 65535:
                        out += self._both(rtcp_addr if (rtcp_addr and i == 0) else addr, rp, proto)
        return out

    def _both(self, addr, port, proto):
        return [Prediction(FlowKey(0, addr, 0, port, proto, self.zone), _WILD_TO),
                Prediction(FlowKey(addr, 0, port, 0, proto, self.zone), _WILD_FROM)]
