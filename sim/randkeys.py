"""Random flow keys for tests and benches: IPv4 and IPv6, every field exercised."""

import ipaddress

from .flowkey import FlowKey


__all__ = ["random_flow_key"]

# TCP, UDP, SCTP, ICMP, ICMPv6, and a protocol without ports.
_PROTOS = (6, 17, 132, 1, 58, 47)


def random_flow_key(rng, *, family=None):
    """A random :class:`~sim.flowkey.FlowKey` drawn from ``rng`` (a :class:`random.Random`).

    ``family`` is 4 or 6; by default each is equally likely.
    """
    family = family or rng.choice((4, 6))
    if family not in (4, 6):
        raise ValueError(f"Address family must be 4 or 6, not {family!r}")
    address = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    bits = 32 if family == 4 else 128
    return FlowKey.of(str(address(rng.getrandbits(bits))), str(address(rng.getrandbits(bits))),
                      rng.choice(_PROTOS), rng.getrandbits(16), rng.getrandbits(16),
                      zone=rng.getrandbits(24))
