"""The flow key as a Python value (the layout itself is :data:`hdl.wire.FLOW_KEY`)."""

import ipaddress
from typing import NamedTuple

from hdl.wire import FLOW_KEY


__all__ = ["FlowKey", "V4_MAPPED", "addr_to_int", "int_to_addr"]

V4_MAPPED = 0xFFFF << 32  # ::ffff:0:0/96


def addr_to_int(addr):
    """'1.2.3.4' or '2001:db8::1' (or an ipaddress object) -> 128-bit key address."""
    ip = ipaddress.ip_address(addr) if not isinstance(addr, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else addr
    if ip.version == 4:
        return V4_MAPPED | int(ip)
    return int(ip)


def int_to_addr(value):
    if value >> 32 == 0xFFFF:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return ipaddress.IPv6Address(value)


class FlowKey(NamedTuple):
    """One direction of traffic. Field meaning: see :data:`hdl.wire.FLOW_KEY`."""
    src_addr: int
    dst_addr: int
    src_port: int
    dst_port: int
    proto: int
    zone: int = 0

    @classmethod
    def of(cls, src, dst, proto, sport=0, dport=0, zone=0):
        """Build from printable addresses: ``FlowKey.of('1.2.3.4', '5.6.7.8', 6, 1234, 80)``."""
        return cls(addr_to_int(src), addr_to_int(dst), sport, dport, proto, zone)

    @classmethod
    def unpack(cls, word):
        return cls(**FLOW_KEY.unpack(word))

    @classmethod
    def from_bytes(cls, raw):
        return cls(**FLOW_KEY.from_bytes(raw))

    def pack(self):
        return FLOW_KEY.pack(self._asdict())

    def to_bytes(self):
        return FLOW_KEY.to_bytes(self._asdict())

    @property
    def is_ipv4(self):
        return self.src_addr >> 32 == 0xFFFF and self.dst_addr >> 32 == 0xFFFF

    def swapped(self):
        """The other direction of the same conversation (no NAT)."""
        return self._replace(src_addr=self.dst_addr, dst_addr=self.src_addr,
                             src_port=self.dst_port, dst_port=self.src_port)

    def __str__(self):
        src, dst = int_to_addr(self.src_addr), int_to_addr(self.dst_addr)
        fmt = "{}:{}" if src.version == 4 else "[{}]:{}"
        z = f" z{self.zone:#x}" if self.zone else ""
        return f"{fmt.format(src, self.src_port)}->{fmt.format(dst, self.dst_port)}/p{self.proto}{z}"
