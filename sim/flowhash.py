"""The keyed flow hash, in Python: SipHash-2-4 over the 40-byte flow key.

Why SipHash: every table (GFT, LFT, fragment table) picks buckets from this hash, and a sender who
can aim many flows at one bucket can fill it (the hash-flooding attacks that moved Linux conntrack
from jhash to keyed SipHash). SipHash is a keyed PRF: without the 128-bit secret, which software
sets at run time, bucket choice is unpredictable. Toeplitz (RSS) is keyed too but linear, so
collisions found for one pair of keys carry over to others.

This is the reference the hardware (:mod:`hdl.hash.siphash`) is checked against bit for bit.
"""

__all__ = ["siphash", "flow_hash", "DEFAULT_SECRET"]

_MASK = (1 << 64) - 1

# Default secret: the SipHash paper's test key 00 01 .. 0f. Deployments set their own at run time.
DEFAULT_SECRET = bytes(range(16))


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _MASK


def _sipround(v0, v1, v2, v3):
    v0 = (v0 + v1) & _MASK; v1 = _rotl(v1, 13); v1 ^= v0; v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & _MASK; v3 = _rotl(v3, 16); v3 ^= v2
    v0 = (v0 + v3) & _MASK; v3 = _rotl(v3, 21); v3 ^= v0
    v2 = (v2 + v1) & _MASK; v1 = _rotl(v1, 17); v1 ^= v2; v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash(secret, message, *, c_rounds=2, d_rounds=4):
    """SipHash-c-d of ``message`` (bytes) under the 16-byte ``secret``; returns a 64-bit int."""
    if len(secret) != 16:
        raise ValueError(f"SipHash secret must be 16 bytes, not {len(secret)}")
    k0 = int.from_bytes(secret[:8], "little")
    k1 = int.from_bytes(secret[8:], "little")
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    tail = len(message) % 8
    blocks = [int.from_bytes(message[i:i + 8], "little") for i in range(0, len(message) - tail, 8)]
    last = (len(message) & 0xFF) << 56
    last |= int.from_bytes(message[len(message) - tail:], "little")
    for m in blocks + [last]:
        v3 ^= m
        for _ in range(c_rounds):
            v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(d_rounds):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def flow_hash(secret, key):
    """64-bit hash of a :class:`sim.flowkey.FlowKey` (its 40 wire bytes) under ``secret``."""
    return siphash(secret, key.to_bytes())
