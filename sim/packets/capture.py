"""Read pcap and pcapng captures into ``(timestamp, frame)`` pairs, never raising.

Written over ``struct`` rather than Scapy's readers so that damage has one defined outcome:
a record cut by the end of the file keeps the bytes that are there (and is still returned, so a
record shorter than an Ethernet header becomes an input the parser drops and counts), and
anything unreadable after that ends the capture quietly. The format is chosen by magic bytes,
not by file name (``ndpi_tftp.pcap`` is pcapng).

Every frame is returned as Ethernet, because that is what a card's data port receives: frames of
link types that carry IP without Ethernet (raw IP, Linux cooked v1/v2, BSD loopback) get a
synthetic Ethernet header with the matching ethertype. Other link types are passed through
unchanged and will mostly parse as non-IP.
"""

import struct


__all__ = ["read_capture", "LINKTYPE_ETHERNET"]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
_RAW_ALIASES = {12, 14, LINKTYPE_RAW}   # DLT_RAW is 12 or 14 depending on the OS

_PCAP_MAGIC = {
    # magic as read little-endian -> (byte order, fraction units per second, record header size)
    0xA1B2C3D4: ("<", 1_000_000, 16),
    0xA1B23C4D: ("<", 1_000_000_000, 16),
    0xA1B2CD34: ("<", 1_000_000, 24),        # Kuznetzov's modified pcap
    0xD4C3B2A1: (">", 1_000_000, 16),
    0x4D3CB2A1: (">", 1_000_000_000, 16),
    0x34CDB2A1: (">", 1_000_000, 24),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D

_MAX_RECORD = 1 << 24       # a larger caplen is corruption; read what is there and stop


def read_capture(path):
    """Read every packet of a pcap or pcapng file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    list of (float, bytes)
        Timestamp in seconds and the frame as Ethernet. Unreadable files give an empty list.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    if len(data) < 4:
        return []
    out = []
    try:
        if struct.unpack_from("<I", data, 0)[0] == _PCAPNG_SHB:
            _read_pcapng(data, out)
        else:
            _read_pcap(data, out)
    except Exception:   # pragma: no cover - keep whatever was read before the damage
        pass
    return out


def _read_pcap(data, out):
    if len(data) < 24:
        return
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic not in _PCAP_MAGIC:
        return
    endian, units, rec_hdr = _PCAP_MAGIC[magic]
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0xFFFF
    pos = 24
    n = len(data)
    while pos + rec_hdr <= n:
        sec, frac, caplen, _wire = struct.unpack_from(endian + "IIII", data, pos)
        pos += rec_hdr
        frame = data[pos:pos + min(caplen, _MAX_RECORD)]
        out.append((sec + frac / units, _to_ethernet(linktype, frame)))
        if caplen > _MAX_RECORD:
            return
        pos += caplen


def _read_pcapng(data, out):
    n = len(data)
    pos = 0
    endian = "<"
    ifaces = []     # per section: (linktype, seconds per tick, offset seconds, snaplen)
    while pos + 12 <= n:
        btype = struct.unpack_from(endian + "I", data, pos)[0]
        if btype == _PCAPNG_SHB:
            bom = data[pos + 8:pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                return
            ifaces = []
        blen = struct.unpack_from(endian + "I", data, pos + 4)[0]
        if blen < 12 or blen % 4:
            return
        body = data[pos + 8:min(pos + blen - 4, n)]
        pos += blen
        if btype == 1:
            ifaces.append(_pcapng_iface(body, endian))
        elif btype == 6 and len(body) >= 20:           # enhanced packet block
            iface, hi, lo, caplen, _wire = struct.unpack_from(endian + "IIIII", body, 0)
            _pcapng_packet(out, ifaces, iface, (hi << 32) | lo, body[20:20 + caplen])
        elif btype == 2 and len(body) >= 20:           # obsolete packet block
            iface, _drops, hi, lo, caplen, _wire = struct.unpack_from(endian + "HHIIII", body, 0)
            _pcapng_packet(out, ifaces, iface, (hi << 32) | lo, body[20:20 + caplen])
        elif btype == 3 and len(body) >= 4:            # simple packet block: no timestamp
            wire = struct.unpack_from(endian + "I", body, 0)[0]
            snap = ifaces[0][3] if ifaces and ifaces[0][3] else wire
            _pcapng_packet(out, ifaces, 0, None, body[4:4 + min(wire, snap)])


def _pcapng_iface(body, endian):
    if len(body) < 8:
        return (LINKTYPE_ETHERNET, 1e-6, 0, 0)
    linktype, _res, snaplen = struct.unpack_from(endian + "HHI", body, 0)
    tick, offset = 1e-6, 0
    pos = 8
    while pos + 4 <= len(body):
        code, olen = struct.unpack_from(endian + "HH", body, pos)
        val = body[pos + 4:pos + 4 + olen]
        if code == 0:
            break
        if code == 9 and len(val) >= 1:                # if_tsresol
            tick = 2.0 ** -(val[0] & 0x7F) if val[0] & 0x80 else 10.0 ** -val[0]
        elif code == 14 and len(val) >= 8:             # if_tsoffset
            offset = struct.unpack_from(endian + "q", val, 0)[0]
        pos += 4 + ((olen + 3) & ~3)
    return (linktype, tick, offset, snaplen)


def _pcapng_packet(out, ifaces, iface, ticks, frame):
    linktype, tick, offset, _snap = ifaces[iface] if iface < len(ifaces) else (LINKTYPE_ETHERNET, 1e-6, 0, 0)
    ts = out[-1][0] if ticks is None and out else (0.0 if ticks is None else ticks * tick + offset)
    out.append((ts, _to_ethernet(linktype, frame)))


def _eth(ethertype, payload, src=b"\0" * 6):
    return b"\0" * 6 + src[:6].ljust(6, b"\0") + ethertype.to_bytes(2, "big") + payload


def _by_version(payload):
    version = payload[0] >> 4 if payload else 0
    return {4: 0x0800, 6: 0x86DD}.get(version, 0)


def _cut(frame):
    # A record shorter than its own link header: there is no ethertype to map, and nothing of
    # it is Ethernet. Kept shorter than an Ethernet header, so that the parser drops it as
    # truncated and counts it, like any runt (the capture goes on after it).
    return frame[:13]


def _to_ethernet(linktype, frame):
    """Put ``frame`` of ``linktype`` behind an Ethernet header (the identity for Ethernet)."""
    if linktype == LINKTYPE_ETHERNET:
        return frame
    if linktype in _RAW_ALIASES:
        return _eth(_by_version(frame), frame)
    if linktype == LINKTYPE_IPV4:
        return _eth(0x0800, frame)
    if linktype == LINKTYPE_IPV6:
        return _eth(0x86DD, frame)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 4:
            return _cut(frame)
        return _eth(_by_version(frame[4:]), frame[4:])
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return _cut(frame)
        return _eth(int.from_bytes(frame[14:16], "big"), frame[16:], frame[6:12])
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return _cut(frame)
        return _eth(int.from_bytes(frame[0:2], "big"), frame[20:], frame[12:18])
    return frame
