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

Over TCP, messages are framed by ``Content-Length`` in a bounded per-direction buffer. Over UDP
each datagram is one message, except that a message whose body is shorter than its
``Content-Length`` waits for the following non-SIP payloads of the same direction: an INVITE
larger than the MTU arrives as IP fragments, and the fragment table hands the decoder the first
fragment's UDP payload and then each later fragment's data, in order. A datagram that starts a
new SIP message discards whatever was waiting.
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
_START = re.compile(rb"\s*(?:[A-Za-z]+ \S+ SIP/2\.0\r?\n|SIP/2\.0 \d{3})")
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


_UNSET = object()         # no c= seen (as opposed to a c= that names no usable address)


class _Media:
    __slots__ = ("port", "count", "transport", "addr", "rtcp_port", "rtcp_addr", "mux")

    def __init__(self, port, count, transport):
        self.port, self.count, self.transport = port, count, transport
        self.addr = _UNSET
        self.rtcp_port = self.rtcp_addr = None
        self.mux = False


def parse_sdp(body):
    """Media of every SDP session description in ``body``.

    Parameters
    ----------
    body : bytes

    Returns
    -------
    list of (address, port, count, transport, rtcp_port, rtcp_addr, rtcp_mux)
        ``address`` from the media-level ``c=``, else the session-level one. Media with no usable
        address (none given, hold 0.0.0.0, a host name) and rejected media (port 0) are left out.
    """
    out = []
    session_addr = _UNSET
    media = []
    current = None          # the m= section lines belong to; a rejected one is not in ``media``
    in_sdp = False

    def flush():
        for m in media:
            addr = m.addr if m.addr is not _UNSET else session_addr
            if addr is not _UNSET and addr is not None:
                out.append((addr, m.port, m.count, m.transport, m.rtcp_port, m.rtcp_addr, m.mux))

    for raw in body.split(b"\n"):
        line = raw.strip()
        if line.startswith(b"v="):      # a new description (a multipart body may hold several)
            flush()
            session_addr, media, current, in_sdp = _UNSET, [], None, True
            continue
        if not in_sdp or len(line) < 2 or line[1:2] != b"=":
            continue
        kind, value = line[:1], line[2:]
        if kind == b"c":
            if current is None:
                if session_addr is _UNSET:
                    session_addr = _addr(value)
            elif current.addr is _UNSET:
                current.addr = _addr(value)
        elif kind == b"m":
            fields = value.split()
            port_s, _, count_s = (fields[1] if len(fields) > 1 else b"").partition(b"/")
            port = _port(port_s)
            count = int(count_s) if count_s.isdigit() and len(count_s) <= 2 else 1
            current = _Media(port, max(1, min(count, MAX_PORT_COUNT)),
                             fields[2].upper() if len(fields) > 2 else b"")
            # port 0: stream rejected or disabled; past MAX_MEDIA: ignored. Either way its c=
            # and a= lines still belong to it, not to the media line before.
            if port is not None and len(fields) > 2 and len(media) < MAX_MEDIA:
                media.append(current)
        elif kind == b"a" and current is not None:
            if value.lower().startswith(b"rtcp:"):
                parts = value[5:].split(None, 1)
                if parts:
                    current.rtcp_port = _port(parts[0])
                    if len(parts) > 1:
                        current.rtcp_addr = _addr(parts[1])
            elif value.lower() == b"rtcp-mux":
                current.mux = True
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
        return self._datagram(forward, payload)

    def _datagram(self, forward, payload):
        buf = self._buf[forward]
        if not payload.strip():
            return []           # CRLF keep-alive (RFC 5626): not part of any message
        if _START.match(payload):
            buf.clear()
        elif not buf:
            return []           # garbage with no message waiting for it
        buf += payload
        m = _HDR_END.search(buf)
        c = _CLEN.search(buf, 0, m.start()) if m else None
        if m is None or (c and len(buf) < m.end() + int(c.group(1))):
            if len(buf) > MAX_BUFFER:
                buf.clear()
                self.stats["refused_oversize"] += 1
            return []           # the rest is still to come (later IP fragments)
        msg = bytes(buf)
        buf.clear()
        return self._message(msg)

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
