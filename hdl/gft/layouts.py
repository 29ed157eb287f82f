"""The GFT's interface, defined once: operations, statuses, entry fields and the layouts of
the request, response and aged-entry streams, derived from the validated parameters.

The golden model (:mod:`sim.model.gft`) takes :class:`EntryState` and the field widths from
here, and the host-side helpers (:mod:`sim.model.gft_ops`) pack and unpack the streams with
the layouts below, so the hardware, the model and the benches cannot drift apart.
"""

from amaranth.hdl import Value, unsigned
from amaranth.lib import data, enum

from ..wire import FID, FLOW_KEY


__all__ = [
    "EntryState", "GftOp", "GftStatus", "FID_BITS", "AWARE_BITS", "COUNTER_BITS",
    "NO_ENTRY", "UPDATE_MASK", "IPV4_KEY", "STAT_COUNTERS", "ENTRY_PART", "entry_part",
    "GftParams",
]


class EntryState(enum.Enum, shape=2):
    """State of a GFT entry (SPEC section 3)."""
    INVALID = 0    # free way; never stored in a live entry
    TENTATIVE = 1  # first packet seen, owner not yet bound; ages out
    BOUND = 2      # owner accepted (forward and reverse both bound); never ages


class GftOp(enum.Enum, shape=2):
    """Operation of a GFT request.

    LOOKUP
        Find the key: HIT with its entry, or MISS. Never writes.
    RESERVE
        Lookup-or-insert: HIT with the existing entry (unchanged), or a new entry with the
        request's ``fid``, ``state``, ``aware``, ``counter``, ``predict`` and ``timestamp = now``
        (INSERTED), or FULL. A second RESERVE of the same key, even on the next clock, HITs the
        first one's entry. REFUSED when it misses and the entry cannot be stored (``state`` is
        INVALID, or an IPv6 key in ``key_mode="ipv4"``).
    UPDATE
        Masked write by key (``mask`` names the fields): ``fid``, ``state``, ``counter``,
        ``predict`` are replaced, ``aware`` is OR-ed in (so two "set aware bit" updates never
        lose a bit), ``touch`` sets ``timestamp = now``. UPDATED with the entry after the write,
        or NOT_FOUND; REFUSED (and nothing read) when the mask writes ``state`` INVALID.
    DELETE
        Remove by key: DELETED with the entry as it was (teardown reads the aware mask this
        way), or NOT_FOUND.
    """
    LOOKUP = 0
    RESERVE = 1
    UPDATE = 2
    DELETE = 3


class GftStatus(enum.Enum, shape=3):
    """Outcome of a GFT request (see :class:`GftOp` for which op gives which)."""
    HIT = 0
    MISS = 1
    INSERTED = 2
    FULL = 3        # TABLE_FULL: no way, no cuckoo path, no stash slot; counted, nothing changed
    UPDATED = 4
    DELETED = 5
    NOT_FOUND = 6
    REFUSED = 7     # the request cannot be stored (see GftOp); counted, nothing changed


NO_ENTRY = frozenset({GftStatus.MISS, GftStatus.NOT_FOUND, GftStatus.FULL, GftStatus.REFUSED})
"""Statuses whose response carries no entry and no location (both zero)."""


FID_BITS = FID.width    # 32
AWARE_BITS = 32         # one bit per slot (slot 31 is the PPM)
COUNTER_BITS = 16       # counter ids are 16 bits on the wire (COUNTER_RECORD.counter)
# Bits of an entry behind one copy of a wide write's controls: the entry's registers spread
# over the die with their readers, and one flip-flop cannot sit near all 437 of its loads.
ENTRY_PART = 64


def entry_part(value, k):
    """Bits ``64k`` up to ``64k + 63`` of an entry (or of any value laid out as one)."""
    return Value.cast(value)[k * ENTRY_PART:(k + 1) * ENTRY_PART]

UPDATE_MASK = data.StructLayout({
    "fid": 1, "state": 1, "aware": 1, "counter": 1, "predict": 1, "touch": 1,
})
"""Fields an UPDATE writes. ``aware`` ORs the request's mask in; ``touch`` sets the timestamp
to ``now``."""

IPV4_KEY = data.StructLayout({
    "src_addr": 32, "dst_addr": 32, "src_port": 16, "dst_port": 16, "proto": 8, "zone": 24,
})
"""Stored key of ``key_mode="ipv4"``: the IPv4 5-tuple (104 bits) and the zone. A flow key is
storable in this mode when both addresses are IPv4-mapped (``::ffff:a.b.c.d``)."""

STAT_COUNTERS = (
    "lookups", "hits", "misses", "inserts", "updates", "deletes", "relocations",
    "stash_inserts", "stash_returns", "insert_failures", "refused", "aged_out",
)
"""Event counters of the ``stats`` output (32 bits each, wrapping). ``lookups``, ``hits`` and
``misses`` count LOOKUP and RESERVE (a RESERVE always looks up first); the rest mean what the
golden model's counters of the same name mean, plus ``updates`` (UPDATED outcomes) and
``refused`` (REFUSED outcomes)."""

_STAT_WIDTH = 32


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _bits(count):
    """Bits to number ``count`` things, at least 1 (zero-width fields export as ``[-1:0]``)."""
    return max(1, (count - 1).bit_length())


def check_organisation(*, buckets, ways, stash, move_budget, key_mode, timestamp_bits):
    """Validate the parameters the hardware table and its golden model
    (:class:`sim.model.gft.GlobalFlowTable`) share.

    Raises
    ------
    ValueError
        For a value out of range, with the message naming the parameter and the value.
    """
    if not _is_int(buckets) or buckets < 1 or buckets & (buckets - 1):
        raise ValueError(f"buckets must be a power of two, not {buckets!r}")
    if not 2 <= buckets <= 1 << 32:
        raise ValueError(f"buckets must be from 2 to 2**32 (two sub-tables, each indexed "
                         f"from one 32-bit half of the hash), not {buckets!r}")
    if not _is_int(ways) or ways < 1:
        raise ValueError(f"ways must be a positive integer, not {ways!r}")
    if not _is_int(stash) or stash < 0:
        raise ValueError(f"stash must be a non-negative integer, not {stash!r}")
    if not _is_int(move_budget) or move_budget < 0:
        raise ValueError(f"move_budget must be a non-negative integer, not {move_budget!r}")
    if key_mode not in ("dual", "ipv4"):
        raise ValueError(f"key_mode must be 'dual' or 'ipv4', not {key_mode!r}")
    if not _is_int(timestamp_bits) or not 2 <= timestamp_bits <= 64:
        raise ValueError(f"timestamp_bits must be an integer from 2 to 64, not "
                         f"{timestamp_bits!r}")


class GftParams:
    """Validated GFT parameters and every layout derived from them.

    Parameters (keyword only)
    -------------------------
    buckets : int
        Buckets, a power of two from 2 to 2**32; half of them form each sub-table (one block
        RAM each, ``buckets // 2`` words deep).
    ways : int
        Entries per bucket, read as one wide word; >= 1.
    stash : int
        Fully associative overflow entries held in registers; >= 0.
    move_budget : int
        Longest cuckoo path (entry moves) one insert may use; >= 0 (0: no relocation). The
        breadth-first search keeps up to ``2 * (1 + ways + ... + ways**(move_budget-1))`` nodes,
        which must be at most 4096.
    key_mode : str
        ``"dual"`` stores the whole 320-bit flow key (IPv4 and IPv6); ``"ipv4"`` stores the
        128-bit :data:`IPV4_KEY` and treats IPv6 keys as never stored.
    timestamp_bits : int
        Width of stored timestamps and of ``now``/``timeout``; 2..64.
    tag_width : int
        Width of the opaque request tag returned with each response; >= 0 (0: no tag field).

    Raises
    ------
    ValueError
        For a value out of range, with the message naming the parameter and the value.
    """

    def __init__(self, *, buckets=1024, ways=4, stash=8, move_budget=3, key_mode="dual",
                 timestamp_bits=16, tag_width=8):
        check_organisation(buckets=buckets, ways=ways, stash=stash, move_budget=move_budget,
                           key_mode=key_mode, timestamp_bits=timestamp_bits)
        nodes = 2 * sum(ways ** level for level in range(move_budget))
        if nodes > 4096:
            raise ValueError(f"move_budget {move_budget} with {ways} ways needs a search queue "
                             f"of {nodes} nodes, more than 4096")
        if not _is_int(tag_width) or tag_width < 0:
            raise ValueError(f"tag_width must be a non-negative integer, not {tag_width!r}")

        self.buckets = buckets
        self.ways = ways
        self.stash = stash
        self.move_budget = move_budget
        self.key_mode = key_mode
        self.timestamp_bits = timestamp_bits
        self.tag_width = tag_width

        self.half = buckets // 2
        self.search_nodes = nodes
        self.index_bits = _bits(self.half)
        self.way_bits = _bits(ways)
        self.slot_bits = _bits(stash)
        self.key = FLOW_KEY.layout if key_mode == "dual" else IPV4_KEY

        tag = {"tag": unsigned(tag_width)} if tag_width else {}
        self.fields = data.StructLayout({
            "fid": FID_BITS, "state": EntryState, "timestamp": timestamp_bits,
            "aware": AWARE_BITS, "counter": COUNTER_BITS, "predict": 1,
        })
        self.entry = data.StructLayout({
            "state": EntryState, "key": self.key, "fid": FID_BITS,
            "timestamp": timestamp_bits, "aware": AWARE_BITS, "counter": COUNTER_BITS,
            "predict": 1, "i1": self.index_bits, "i2": self.index_bits,
        })
        self.bucket = data.ArrayLayout(self.entry, ways)
        # A write of stash slots: the one-hot slot enable once per 64-bit part of the entry
        # (equal register copies, each by the part of the slots it loads: see `Stash`).
        self.entry_parts = -(-self.entry.size // ENTRY_PART)
        self.stash_write = data.StructLayout({
            "en": data.ArrayLayout(max(1, stash), self.entry_parts), "entry": self.entry,
        })
        self.location = data.StructLayout({
            "stash": 1, "bucket": _bits(buckets), "way": max(self.way_bits, self.slot_bits),
        })
        self.request = data.StructLayout({
            "op": GftOp, "key": FLOW_KEY.layout, "fid": FID_BITS, "state": EntryState,
            "aware": AWARE_BITS, "counter": COUNTER_BITS, "predict": 1, "mask": UPDATE_MASK,
            **tag,
        })
        self.response = data.StructLayout({
            "op": GftOp, "status": GftStatus, "entry": self.fields, "loc": self.location,
            **tag,
        })
        self.aged = data.StructLayout({
            "key": FLOW_KEY.layout, "entry": self.fields, "loc": self.location,
            "now": timestamp_bits, "seq": 16,
        })
        self.stats = data.StructLayout({
            **{name: _STAT_WIDTH for name in STAT_COUNTERS},
            "occupancy": range(buckets * ways + stash + 1),
            "stash_used": range(max(2, stash + 1)),
        })

    @property
    def capacity(self):
        """Entries the table holds: ``buckets * ways + stash``."""
        return self.buckets * self.ways + self.stash

    def __repr__(self):
        return (f"GftParams(buckets={self.buckets}, ways={self.ways}, stash={self.stash}, "
                f"move_budget={self.move_budget}, key_mode={self.key_mode!r}, "
                f"timestamp_bits={self.timestamp_bits}, tag_width={self.tag_width})")
