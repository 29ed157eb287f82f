"""FTP control-connection decoder (RFC 959, RFC 2428): predicts the data connections.

What each announcement predicts (child proto TCP, zone of the parent, source port wildcard
because active-mode servers do not always send from port 20):

=========================  ===============  ===========================================
announcement               sent by          child's first packet
=========================  ===============  ===========================================
``PORT h,h,h,h,p,p``       client           server:* -> h.h.h.h:p
``EPRT |af|addr|port|``    client           server:* -> addr:port
``227 ... (h,h,h,h,p,p)``  server           client:* -> h.h.h.h:p
``229 ... (|||port|)``     server           client:* -> server:port
=========================  ===============  ===========================================

Bounce protection (Linux ``nf_conntrack_ftp`` without ``loose``): a PORT/EPRT whose address is
not the control connection's client address is refused, never predicted, because it would let a
client open a hole from the server to a third host. A 227 whose address is not the server's is
predicted to the announced address as asked, and also to the control connection's server
address: a server behind NAT often announces its private address and clients (FileZilla, curl)
then connect to the address they already use.

Commands may be split across segments and several may share one; lines are reassembled per
direction in a bounded buffer. Commands are case-insensitive.
"""

import ipaddress
import re

from sim.flowkey import V4_MAPPED, FlowKey

from . import Decoder, Prediction


__all__ = ["FtpDecoder"]

IPPROTO_TCP = 6
MAX_LINE = 1024             # longer "lines" are not FTP commands; skipped to the next newline
MAX_REFUSALS_KEPT = 16

_WILD_SPORT = frozenset({"src_port"})
_PORT = re.compile(rb"\s*PORT\b\s*(.*)", re.I | re.S)
_EPRT = re.compile(rb"\s*EPRT\b\s*(.*)", re.I | re.S)
_NUM6 = re.compile(rb"(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})"
                   rb"\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})")
_EPSV = re.compile(rb"\(([\x21-\x7e])\1\1(\d{1,5})\1\)")


def _hostport(nums):
    """Six RFC 959 numbers -> (key address, port), or None when a number exceeds a byte."""
    vals = [int(x) for x in nums]
    if any(v > 255 for v in vals):
        return None
    addr = V4_MAPPED | int.from_bytes(bytes(vals[:4]), "big")
    return addr, (vals[4] << 8) | vals[5]


class FtpDecoder(Decoder):
    """Decoder of one FTP control connection.

    Attributes
    ----------
    refusals : list of (str, bytes)
        The last few refused announcements with their reason (``bounce``, ``bad_port``,
        ``malformed``), for logs; ``refused`` counts all of them.
    """

    name = "ftp"

    def __init__(self, fwd_key):
        super().__init__(fwd_key)
        self._buf = {True: bytearray(), False: bytearray()}     # keyed by "from client"
        self._skipping = {True: False, False: False}
        self.refusals = []

    def _lines(self, from_client, payload):
        buf = self._buf[from_client]
        buf += payload
        lines = []
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(buf[:nl])
            del buf[:nl + 1]
            if self._skipping[from_client]:
                self._skipping[from_client] = False
                continue
            lines.append(line.rstrip(b"\r"))
        if len(buf) > MAX_LINE:
            buf.clear()
            self._skipping[from_client] = True
        return lines

    def _refuse(self, reason, line):
        self.stats["refused_" + reason] += 1
        self.refusals.append((reason, line[:80]))
        del self.refusals[:-MAX_REFUSALS_KEPT]
        return []

    def _child(self, src, dst, port):
        return Prediction(FlowKey(src, dst, 0, port, IPPROTO_TCP, self.zone), _WILD_SPORT)

    def _inspect(self, key, payload, forward):
        from_client = self.from_client(forward)
        out = []
        for line in self._lines(from_client, payload):
            out += self._command(line) if from_client else self._reply(line)
        return out

    def _command(self, line):
        m = _PORT.match(line)
        if m:
            self.stats["port"] += 1
            hp = _NUM6.match(m.group(1))
            if hp is None or _hostport(hp.groups()) is None:
                return self._refuse("malformed", line)
            return self._active(*_hostport(hp.groups()), line)
        m = _EPRT.match(line)
        if m:
            self.stats["eprt"] += 1
            arg = m.group(1).strip()
            if len(arg) < 2:
                return self._refuse("malformed", line)
            parts = arg[1:].split(arg[:1])
            if len(parts) < 3 or parts[0] not in (b"1", b"2") or not parts[2].isdigit():
                return self._refuse("malformed", line)
            try:
                ip = ipaddress.ip_address(parts[1].decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                return self._refuse("malformed", line)
            if ip.version != (4 if parts[0] == b"1" else 6):
                return self._refuse("malformed", line)
            addr = V4_MAPPED | int(ip) if ip.version == 4 else int(ip)
            return self._active(addr, int(parts[2]), line)
        return []

    def _active(self, addr, port, line):
        if addr != self.client_addr:
            return self._refuse("bounce", line)
        if not 0 < port < 65536:
            return self._refuse("bad_port", line)
        return [self._child(self.server_addr, addr, port)]

    def _reply(self, line):
        if line[:4] in (b"227 ", b"227-"):
            self.stats["pasv"] += 1
            hp = _NUM6.search(line, 4)
            if hp is None or _hostport(hp.groups()) is None:
                return self._refuse("malformed", line)
            addr, port = _hostport(hp.groups())
            if not 0 < port < 65536:
                return self._refuse("bad_port", line)
            out = [self._child(self.client_addr, addr, port)]
            if addr != self.server_addr:
                self.stats["pasv_other_addr"] += 1
                out.append(self._child(self.client_addr, self.server_addr, port))
            return out
        if line[:4] in (b"229 ", b"229-"):
            self.stats["epsv"] += 1
            m = _EPSV.search(line, 4)
            if m is None or m.group(1).isdigit():
                return self._refuse("malformed", line)
            port = int(m.group(2))
            if not 0 < port < 65536:
                return self._refuse("bad_port", line)
            return [self._child(self.client_addr, self.server_addr, port)]
        return []
