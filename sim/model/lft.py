"""Golden model of a card's local flow table (LFT).

Set associative: ``buckets`` x ``ways``, the bucket chosen by the low bits of the same keyed flow
hash the GFT uses. The LFT is a cache of the GFT, filled only by FLOW_ADD, so when a bucket is
full the *oldest-installed* way is evicted (a FIFO per bucket: one small counter per bucket in
hardware, no LRU update on every hit). An evicted flow still works: its next packet misses and
goes through the PPM, which adds it again. The evicted entry's packet and byte counts go to the
owner in a FLOW_STATS with ``final = 0`` so the owner's tally stays exact (SPEC invariant 3).
"""

from dataclasses import dataclass

from sim.flowhash import DEFAULT_SECRET, flow_hash


__all__ = ["LftEntry", "LocalFlowTable"]


@dataclass
class LftEntry:
    key: object
    fid: int
    packets: int = 0
    bytes: int = 0
    installed: int = 0   # install order; the eviction victim is the smallest in its bucket


class LocalFlowTable:
    """Parameters (keyword only): ``buckets`` (power of two), ``ways`` (>= 1), ``secret``."""

    def __init__(self, *, buckets=256, ways=4, secret=DEFAULT_SECRET):
        if not isinstance(buckets, int) or buckets < 1 or buckets & (buckets - 1):
            raise ValueError(f"buckets must be a power of two, not {buckets!r}")
        if not isinstance(ways, int) or ways < 1:
            raise ValueError(f"ways must be a positive integer, not {ways!r}")
        self.buckets = buckets
        self.ways = ways
        self.secret = bytes(secret)
        self._table = [[None] * ways for _ in range(buckets)]
        self._installs = 0
        self.stats = dict.fromkeys(["lookups", "hits", "misses", "adds", "updates", "deletes",
                                    "evictions", "delete_misses"], 0)

    def _bucket(self, key):
        return self._table[flow_hash(self.secret, key) & (self.buckets - 1)]

    def __len__(self):
        return sum(e is not None for row in self._table for e in row)

    def entries(self):
        return [e for row in self._table for e in row if e is not None]

    def lookup(self, key):
        self.stats["lookups"] += 1
        for e in self._bucket(key):
            if e is not None and e.key == key:
                self.stats["hits"] += 1
                return e
        self.stats["misses"] += 1
        return None

    def add(self, key, fid):
        """Install ``key -> fid``; returns the evicted entry or None.

        A FLOW_ADD for a key already present (two cards' misses raced, or a duplicated message)
        updates the FID and keeps the counts: it never creates a second entry.
        """
        row = self._bucket(key)
        for e in row:
            if e is not None and e.key == key:
                e.fid = fid
                self.stats["updates"] += 1
                return None
        self._installs += 1
        victim = None
        if None in row:
            way = row.index(None)
        else:
            way = min(range(self.ways), key=lambda w: row[w].installed)
            victim = row[way]
            self.stats["evictions"] += 1
        row[way] = LftEntry(key, fid, installed=self._installs)
        self.stats["adds"] += 1
        return victim

    def delete(self, key, fid=None):
        """Remove ``key`` (only if it maps to ``fid``, when given) and return the entry.

        The FID check keeps a late FLOW_DELETE of an old incarnation of a key from removing the
        entry a newer session of the same key installed since.
        """
        row = self._bucket(key)
        for way, e in enumerate(row):
            if e is not None and e.key == key and (fid is None or e.fid == fid):
                row[way] = None
                self.stats["deletes"] += 1
                return e
        self.stats["delete_misses"] += 1
        return None
