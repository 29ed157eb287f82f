"""Golden model of the global flow table (GFT): a bucketed two-choice cuckoo hash with a stash.

The hardware GFT is built from this model one to one and is scoreboarded against it, so every
choice below (which bucket, which way, which relocation path, which stash slot, the order of
the aging scan) is a defined, deterministic rule and not an implementation detail.

Organisation
------------
``buckets`` x ``ways`` entries in block RAM, split into two sub-tables of ``half = buckets // 2``
buckets: sub-table 0 holds buckets ``0 .. half-1``, sub-table 1 buckets ``half .. buckets-1``.
One bucket (all its ways) is read as one wide word. A small fully associative ``stash``
(registers) sits beside it. An entry's two candidate buckets come from the one 64-bit keyed
flow hash (:func:`sim.flowhash.flow_hash`), one candidate in each sub-table::

    half = buckets // 2
    b1   = hash & (half - 1)                    # sub-table 0
    b2   = half + ((hash >> 32) & (half - 1))   # sub-table 1

The two indexes come from disjoint halves of the hash so they are independent (``half`` is at
most 2**31). Because they lie in different sub-tables the two candidates always differ (an
entry whose two choices coincided could never be relocated), and in hardware each sub-table is
its own RAM: a lookup reads ``b1`` from one and ``b2`` from the other in the same cycle, with
one read port and one write port per RAM and no port shared between the two candidates.

Every entry stores its two bucket indexes (:attr:`Entry.buckets`). A relocation needs the
*other* bucket of every entry in a full bucket; recomputing SipHash per entry would cost a
hash pipeline pass per candidate, whereas the stored indexes arrive with the wide bucket read
(hardware stores the two in-sub-table indexes, ``2 * log2(half)`` bits; the alternate of an
entry in bucket ``b`` is ``b ^ b1 ^ b2``, which is always in the other sub-table).

Insertion rule (exact)
----------------------
1. Read ``b1``, ``b2`` and the stash; if the key is already there, refuse
   (:class:`DuplicateKey`): a key is never stored twice.
2. If either candidate has a free way: take the bucket with *more* free ways (tie: ``b1``),
   and in it the *lowest-numbered* free way. Balancing the two choices is what lets two-choice
   hashing reach high load before relocation is needed at all.
3. Otherwise search a cuckoo path breadth first, at most ``move_budget`` moves long:
   the roots are ``b1`` then ``b2``; expanding a bucket visits its ways 0..ways-1 and for each
   entry takes its alternate bucket as a child; a child is dropped when it equals ``b1``,
   ``b2`` or any bucket already on its own path. That pruning never changes which path is
   chosen, it only saves reads: every bucket on a path except the last is full, so a path
   through a bucket twice (or through the other root) ends in a free bucket that a shorter
   path reaches too, and breadth first finds the shorter one first. Hardware may leave the
   pruning out and still match this model exactly. Children are tested for a free way in the
   order they are generated; the first child with a free way ends the search (so the path is
   a shortest one, ties broken by root, then way order at each level). The path is executed from its free end backwards: the last entry moves into the
   lowest free way of the free bucket, each earlier entry moves into the way just vacated,
   and the new entry takes the way vacated in the root. Each move copies the entry unchanged:
   **the FID never changes when an entry moves**. Moving from the free end means every entry
   is in the table at every instant, so a lookup that races the moves never misses.
4. Otherwise put the entry in the lowest free stash slot.
5. Otherwise raise :class:`TableFull` and count it. The search above only reads, so a failed
   insert leaves the table exactly as it was: nothing is overwritten.

Freeing an entry (delete or aging) from way ``w`` of bucket ``b`` pulls back the lowest-indexed
stash entry that has ``b`` as one of its candidates into that way ("stash return"), so the
stash drains as soon as there is room again rather than filling up for good under churn.
In hardware that is a parallel compare of ``b`` against the stash's stored bucket indexes and
one extra write.

Costs in hardware terms
-----------------------
* lookup, update, delete: 2 bucket reads (``b1`` and ``b2``, one from each sub-table's RAM in
  the same cycle) plus a parallel key compare over ``2 * ways + stash`` entries; update/delete
  add one write (a stash return rides on the delete's write: it fills the freed way).
* insert without relocation: the same 2 reads plus 1 write.
* insert with relocation, search depth ``d``: each expanded bucket is one read (for its
  entries' alternates) and each child tested for a free way is one read, so the worst case is
  ``sum_{i=1..d} 2 * ways**i`` child reads plus ``sum_{i=1..d-1} 2 * ways**i`` expansion reads
  (a per-bucket *full* bitmap, 1 bit per bucket, removes the child reads). Moves cost one read
  and one write each; a move's source and destination are in different sub-tables, so both
  fit in one cycle. With the defaults (4 ways, ``move_budget`` 3) and a bitmap the worst case
  is 2 + 8 + 32 = 42 expansion reads (the hardware re-reads the two roots) and 8 + 32 + 128
  bitmap tests. The search only runs when both candidates are full: over a fill from empty to
  the first failure that is ~9% of inserts with 4 ways (~5% with 8), and none at all until
  some key finds both its buckets full (54-72% load with 4 ways, 76-85% with 8; 1024 buckets,
  100 key sets, measured).
* aging: one read per bucket scanned (plus a write per entry freed). The hardware scan frees
  one way per step (:meth:`GlobalFlowTable.age_slot`), so its steps interleave with requests;
  :meth:`GlobalFlowTable.age_bucket` is exactly its steps over ways ``0..ways-1`` in order.

Timestamps are ``timestamp_bits`` wide and wrap. An entry is older than the timeout when
``d = (now - timestamp) mod 2**timestamp_bits`` satisfies ``timeout < d < 2**(timestamp_bits-1)``
(serial-number arithmetic, RFC 1982): a timestamp "ahead" of ``now`` reads as young, never as
ancient. This is why ``tentative_timeout`` must be below ``2**(timestamp_bits-1)`` and why the
aging scan must visit every bucket more often than once per half wrap.
"""

import copy
from dataclasses import dataclass

from hdl.gft.layouts import AWARE_BITS, COUNTER_BITS, FID_BITS, EntryState, check_organisation
from hdl.wire import ErrorCode
from sim.flowhash import DEFAULT_SECRET, flow_hash
from sim.flowkey import FlowKey


__all__ = ["EntryState", "Entry", "GlobalFlowTable", "TableFull", "DuplicateKey"]


_FROZEN = frozenset({"key", "buckets"})


@dataclass
class Entry:
    """One GFT entry.

    ``key`` and ``buckets`` are fixed for the entry's life (they decide where it may live);
    the other fields may change through :meth:`GlobalFlowTable.update`, which validates them
    (assigning on the live object returned by :meth:`GlobalFlowTable.lookup` works too but
    skips the checks). ``fid`` is updatable because the PPM writes the tentative entry before
    the owner is known and fills in slot/pp when one accepts (SPEC section 4); the table itself
    never touches it: moving an entry between buckets or into and out of the stash copies it
    unchanged, ``fid`` included.

    Attributes
    ----------
    key : FlowKey
        Full flow key; lookups compare all of it.
    fid : int
        Packed flow ID (:data:`hdl.wire.FID`, 32 bits).
    state : EntryState
        TENTATIVE or BOUND while stored.
    timestamp : int
        Time of creation or last refresh, in ticks, truncated to ``timestamp_bits``.
    aware : int
        Bit mask of slots whose LFT was told about the flow (32 bits).
    counter : int
        Event counter id (16 bits).
    predict : bool
        The flow was created from a predict-table match.
    buckets : tuple of int
        ``(b1, b2)``, the entry's two candidate buckets; filled in by the table.
    """
    key: FlowKey
    fid: int
    state: EntryState = EntryState.TENTATIVE
    timestamp: int = 0
    aware: int = 0
    counter: int = 0
    predict: bool = False
    buckets: tuple = (0, 0)

    def __setattr__(self, name, value):
        # The key and the candidate buckets decide where the entry may live; changing them in
        # place would leave it stored where lookups never look.
        if name in _FROZEN and name in self.__dict__:
            raise AttributeError(f"Entry.{name} cannot change once the entry exists")
        super().__setattr__(name, value)


class TableFull(Exception):
    """Insert failed: no free way, no cuckoo path within the move budget, stash full.

    Nothing was overwritten and the table is unchanged. ``code`` is the error the PPM replies
    with.
    """
    code = ErrorCode.TABLE_FULL

    def __init__(self, key):
        super().__init__(f"GFT full: cannot insert {key}")
        self.key = key


class DuplicateKey(KeyError, ValueError):
    """Insert refused: the key is already in the table (a key is never stored twice)."""
    code = ErrorCode.KEY_CONFLICT

    def __init__(self, key):
        super().__init__(key)
        self.key = key

    def __str__(self):
        return f"key already in the GFT: {self.key}"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class GlobalFlowTable:
    """The GFT: ``buckets`` x ``ways`` cuckoo table plus a ``stash``. See the module docstring
    for the exact placement, relocation and aging rules.

    Parameters (keyword only)
    -------------------------
    buckets : int
        Number of buckets, a power of two from 2 to 2**32; half of them form each sub-table.
    ways : int
        Entries per bucket (read as one wide word), >= 1.
    stash : int
        Fully associative overflow entries, >= 0.
    move_budget : int
        Longest cuckoo path (entry moves) one insert may use, >= 0. 0 disables relocation.
    secret : bytes
        16-byte SipHash key for the flow hash.
    timestamp_bits : int
        Stored timestamp width, 2..64.
    tentative_timeout : int
        Ticks after which a TENTATIVE entry is aged out, 1 .. 2**(timestamp_bits-1) - 1. The
        tick is the caller's (the PPM model counts milliseconds: the default 2000 is 2 s).
    key_mode : str
        ``"dual"``: full 40-byte keys (IPv4 and IPv6). ``"ipv4"``: the hardware stores 32-bit
        addresses only, so inserting a key that is not IPv4 is refused (ValueError) and looking
        one up misses.

    The defaults (1024 buckets x 4 ways, stash 8, move budget 3: 4096 + 8 entries) reach
    >= 95.8% occupancy before the first insert failure (min over 140 random key sets, median
    97.3%). Four ways keep the wide bucket word of a 512-deep sub-table in 512 x 36 block RAMs;
    8 ways with stash 8 reach >= 99.1% with move budget 2 and >= 96.3% with budget 1, at twice
    the word width. See ``tests/test_model_gft.py``.
    """

    def __init__(self, *, buckets=1024, ways=4, stash=8, move_budget=3, secret=DEFAULT_SECRET,
                 timestamp_bits=16, tentative_timeout=2000, key_mode="dual"):
        check_organisation(buckets=buckets, ways=ways, stash=stash, move_budget=move_budget,
                           key_mode=key_mode, timestamp_bits=timestamp_bits)
        if not isinstance(secret, (bytes, bytearray)) or len(secret) != 16:
            raise ValueError(f"secret must be 16 bytes, not {secret!r}")
        half = 1 << (timestamp_bits - 1)
        if not _is_int(tentative_timeout) or not 1 <= tentative_timeout < half:
            raise ValueError(f"tentative_timeout must be an integer from 1 to {half - 1} "
                             f"(below half the timestamp range), not {tentative_timeout!r}")

        self.buckets = buckets
        self.ways = ways
        self.stash = stash
        self.move_budget = move_budget
        self.secret = bytes(secret)
        self.timestamp_bits = timestamp_bits
        self.tentative_timeout = tentative_timeout
        self.key_mode = key_mode

        self._ts_mask = (1 << timestamp_bits) - 1
        self._ts_half = half
        self._table = [[None] * ways for _ in range(buckets)]
        self._stash = [None] * stash
        self._count = 0
        self._stats = dict.fromkeys([
            "lookups", "hits", "misses", "inserts", "deletes", "relocations",
            "stash_inserts", "stash_returns", "insert_failures", "aged_out"], 0)

    # --- Sizes and statistics ---------------------------------------------------------------

    @property
    def capacity(self):
        """Entries the table can hold: ``buckets * ways + stash``."""
        return self.buckets * self.ways + self.stash

    @property
    def occupancy(self):
        """Fraction of :attr:`capacity` in use. The stash counts on both sides of the fraction,
        so this never flatters the table (the figure at first failure is conservative)."""
        return self._count / self.capacity

    def __len__(self):
        return self._count

    def __bool__(self):
        # A table object is always true, even when empty: otherwise ``gft or GlobalFlowTable()``
        # would silently swap a caller's empty (custom-sized) table for a default one.
        return True

    @property
    def stats(self):
        """A fresh dict of the statistics counters.

        ``lookups``/``hits``/``misses`` count :meth:`lookup` calls; ``inserts`` successful
        inserts; ``deletes`` successful deletes; ``relocations`` entry moves along cuckoo paths;
        ``stash_inserts`` inserts that went to the stash; ``stash_returns`` stash entries moved
        back into a bucket; ``insert_failures`` TABLE_FULL outcomes; ``aged_out`` entries freed
        by aging. Gauges: ``occupancy`` is the *number* of live entries (the hardware counter;
        the fraction is :attr:`occupancy`), ``stash_used`` the live stash entries.
        """
        s = dict(self._stats)
        s["occupancy"] = self._count
        s["stash_used"] = sum(e is not None for e in self._stash)
        return s

    # --- Hashing ----------------------------------------------------------------------------

    def candidates(self, key):
        """The two candidate buckets ``(b1, b2)`` of ``key``: ``b1`` in sub-table 0 (below
        ``buckets // 2``), ``b2`` in sub-table 1 (module docstring)."""
        h = flow_hash(self.secret, key)
        half = self.buckets // 2
        return h & (half - 1), half + ((h >> 32) & (half - 1))

    # --- Lookup -----------------------------------------------------------------------------

    def _check_key(self, key):
        if not isinstance(key, FlowKey):
            raise TypeError(f"key must be a FlowKey, not {key!r}")

    def _storable(self, key):
        return self.key_mode == "dual" or key.is_ipv4

    def _find(self, key, b1, b2):
        """Location of ``key``: (bucket, way), ('stash', i) or None. Compares the full key:
        two keys may share a hash and even both buckets."""
        for b in (b1, b2):
            for w, e in enumerate(self._table[b]):
                if e is not None and e.key == key:
                    return (b, w)
        for i, e in enumerate(self._stash):
            if e is not None and e.key == key:
                return ("stash", i)
        return None

    def _at(self, loc):
        b, w = loc
        return self._stash[w] if b == "stash" else self._table[b][w]

    def _put(self, loc, entry):
        b, w = loc
        if b == "stash":
            self._stash[w] = entry
        else:
            self._table[b][w] = entry

    def _locate(self, key):
        self._check_key(key)
        if not self._storable(key):
            return None
        return self._find(key, *self.candidates(key))

    def lookup(self, key):
        """The live entry for ``key``, or None. Counted in ``lookups``/``hits``/``misses``.

        Cost: 2 bucket reads (``b1``, ``b2``) and a parallel compare with the stash.
        """
        loc = self._locate(key)
        self._stats["lookups"] += 1
        if loc is None:
            self._stats["misses"] += 1
            return None
        self._stats["hits"] += 1
        return self._at(loc)

    def __contains__(self, key):
        return self._locate(key) is not None

    def location(self, key):
        """Where ``key`` lives: ``(bucket, way)``, ``('stash', index)`` or None (for tests)."""
        return self._locate(key)

    def entries(self):
        """Every live entry in scan order: buckets 0.., ways 0.., then the stash."""
        out = [e for bucket in self._table for e in bucket if e is not None]
        out += [e for e in self._stash if e is not None]
        return out

    def snapshot(self):
        """A deep copy of the whole layout, ``(buckets, stash)``, comparable with ``==``."""
        return (tuple(tuple(copy.copy(e) for e in bucket) for bucket in self._table),
                tuple(copy.copy(e) for e in self._stash))

    # --- Field validation -------------------------------------------------------------------

    def _fields(self, fields, *, insert):
        allowed = {"fid", "state", "timestamp", "aware", "counter", "predict"}
        unknown = set(fields) - allowed
        if unknown:
            raise TypeError(f"unknown entry field(s) {sorted(unknown)}")
        out = {}
        if "fid" in fields:
            fid = fields["fid"]
            if not _is_int(fid) or not 0 <= fid < 1 << FID_BITS:
                raise ValueError(f"fid must be a {FID_BITS}-bit packed FID, not {fid!r}")
            out["fid"] = fid
        elif insert:
            raise TypeError("insert() needs fid=")
        if "state" in fields:
            state = fields["state"]
            if state not in (EntryState.TENTATIVE, EntryState.BOUND):
                raise ValueError(f"state must be EntryState.TENTATIVE or BOUND, not {state!r}")
            out["state"] = state
        if "timestamp" in fields:
            ts = fields["timestamp"]
            if not _is_int(ts) or ts < 0:
                raise ValueError(f"timestamp must be a non-negative integer, not {ts!r}")
            out["timestamp"] = ts & self._ts_mask  # the stored counter keeps the low bits
        if "aware" in fields:
            aware = fields["aware"]
            if not _is_int(aware) or not 0 <= aware < 1 << AWARE_BITS:
                raise ValueError(f"aware must be a {AWARE_BITS}-bit slot mask, not {aware!r}")
            out["aware"] = aware
        if "counter" in fields:
            counter = fields["counter"]
            if not _is_int(counter) or not 0 <= counter < 1 << COUNTER_BITS:
                raise ValueError(f"counter must be a {COUNTER_BITS}-bit counter id, not {counter!r}")
            out["counter"] = counter
        if "predict" in fields:
            predict = fields["predict"]
            if not isinstance(predict, bool):
                raise ValueError(f"predict must be a bool, not {predict!r}")
            out["predict"] = predict
        return out

    # --- Insert -----------------------------------------------------------------------------

    def insert(self, key, **fields):
        """Insert a new entry and return it.

        Fields: ``fid`` (required), ``state`` (default TENTATIVE), ``timestamp``, ``aware``,
        ``counter``, ``predict``.

        Raises
        ------
        DuplicateKey
            (a KeyError and a ValueError) the key is already stored; nothing changes.
        TableFull
            no way, no path within ``move_budget``, no stash slot; counted in
            ``insert_failures``; nothing changes.
        ValueError, TypeError
            a bad field or key; nothing changes, nothing counted.

        Cost: 2 bucket reads + 1 write when a candidate has room; otherwise the cuckoo search
        (module docstring) plus one read and one write per move.
        """
        self._check_key(key)
        values = self._fields(fields, insert=True)
        if not self._storable(key):
            raise ValueError(f"key_mode 'ipv4' stores IPv4 keys only, not {key}")
        b1, b2 = self.candidates(key)
        if self._find(key, b1, b2) is not None:
            raise DuplicateKey(key)
        entry = Entry(key=key, buckets=(b1, b2), **values)

        loc = self._place(b1, b2)
        if loc is None:
            path = self._search(b1, b2) if self.move_budget else None
            if path is not None:
                loc = self._move_along(path)
        if loc is None:
            free = [i for i, e in enumerate(self._stash) if e is None]
            if free:
                loc = ("stash", free[0])
                self._stats["stash_inserts"] += 1
        if loc is None:
            self._stats["insert_failures"] += 1
            raise TableFull(key)
        self._put(loc, entry)
        self._count += 1
        self._stats["inserts"] += 1
        return entry

    def _free_ways(self, b):
        return [w for w, e in enumerate(self._table[b]) if e is None]

    def _place(self, b1, b2):
        """Rule 2: the candidate with more free ways (tie: b1), lowest free way in it."""
        f1, f2 = self._free_ways(b1), self._free_ways(b2)
        if not f1 and not f2:
            return None
        if len(f2) > len(f1):
            return (b2, f2[0])
        return (b1, f1[0])

    def _search(self, b1, b2):
        """Rule 3: breadth-first cuckoo path search, read only.

        Returns the path as a list of (bucket, way) from a root to the free way at the end, or
        None. Each node is ``(bucket, parent node, way in parent)``; the path is rebuilt from
        parent links.
        """
        level = [(b1, None, None), (b2, None, None)]
        for _ in range(self.move_budget):
            children = []
            for node in level:
                bucket = node[0]
                on_path = {b1, b2}
                n = node
                while n is not None:
                    on_path.add(n[0])
                    n = n[1]
                for way, e in enumerate(self._table[bucket]):
                    alt = e.buckets[0] ^ e.buckets[1] ^ bucket
                    if alt in on_path:
                        continue
                    child = (alt, node, way)
                    free = self._free_ways(alt)
                    if free:
                        path = [(alt, free[0])]
                        n = child
                        while n[1] is not None:
                            path.append((n[1][0], n[2]))
                            n = n[1]
                        path.reverse()
                        return path
                    children.append(child)
            level = children
        return None

    def _move_along(self, path):
        """Execute a cuckoo path from its free end backwards; returns the way freed at the root."""
        for src, dst in zip(reversed(path[:-1]), reversed(path[1:])):
            self._put(dst, self._at(src))
            self._put(src, None)
            self._stats["relocations"] += 1
        return path[0]

    # --- Update and delete ------------------------------------------------------------------

    def update(self, key, **fields):
        """Change fields (``fid``, ``state``, ``timestamp``, ``aware``, ``counter``,
        ``predict``) of the entry for ``key``; returns it. KeyError when absent.

        Cost: 2 bucket reads + 1 write (read-modify-write of one way).
        """
        values = self._fields(fields, insert=False)
        loc = self._locate(key)
        if loc is None:
            raise KeyError(key)
        entry = self._at(loc)
        for name, value in values.items():
            setattr(entry, name, value)
        return entry

    def delete(self, key):
        """Remove the entry for ``key`` and return it (None when absent).

        Cost: 2 bucket reads + 1 write, plus a stash return (1 write) when a stash entry can
        use the freed way.
        """
        loc = self._locate(key)
        if loc is None:
            return None
        entry = self._at(loc)
        self._free(loc)
        self._stats["deletes"] += 1
        return entry

    def _free(self, loc):
        self._put(loc, None)
        self._count -= 1
        bucket = loc[0]
        if bucket == "stash":
            return
        for i, e in enumerate(self._stash):
            if e is not None and bucket in e.buckets:
                self._table[bucket][loc[1]] = e
                self._stash[i] = None
                self._stats["stash_returns"] += 1
                return

    # --- Aging ------------------------------------------------------------------------------

    def _expired(self, entry, now):
        if entry.state != EntryState.TENTATIVE:
            return False
        age = (now - entry.timestamp) & self._ts_mask
        return self.tentative_timeout < age < self._ts_half

    def _check_now(self, now):
        if not _is_int(now) or now < 0:
            raise ValueError(f"now must be a non-negative integer tick count, not {now!r}")
        return now & self._ts_mask

    def age_slot(self, loc, now):
        """One step of the hardware's aging scan: free the entry at ``loc`` (``(bucket, way)``
        or ``('stash', index)``) when it is an expired TENTATIVE entry, and return it (None
        otherwise). Freeing a way returns a stash entry into it as any free does; that entry is
        not checked again by this step."""
        now = self._check_now(now)
        where, index = loc
        if where == "stash":
            if not _is_int(index) or not 0 <= index < self.stash:
                raise ValueError(f"stash index must be an integer from 0 to {self.stash - 1}, "
                                 f"not {index!r}")
        else:
            self._check_bucket(where)
            if not _is_int(index) or not 0 <= index < self.ways:
                raise ValueError(f"way must be an integer from 0 to {self.ways - 1}, not {index!r}")
        e = self._at(loc)
        if e is None or not self._expired(e, now):
            return None
        self._free(loc)
        self._stats["aged_out"] += 1
        return e

    def _check_bucket(self, bucket):
        if not _is_int(bucket) or not 0 <= bucket < self.buckets:
            raise ValueError(f"bucket must be an integer from 0 to {self.buckets - 1}, not {bucket!r}")

    def age_stash(self, now):
        """Free and return the expired TENTATIVE stash entries (stash order)."""
        now = self._check_now(now)
        return [e for i in range(self.stash) if (e := self.age_slot(("stash", i), now))]

    def age_bucket(self, bucket, now):
        """Free and return the expired TENTATIVE entries of one bucket (way order): the scan's
        steps over ways ``0..ways-1``. Cost: 1 bucket read, 1 write per entry freed."""
        now = self._check_now(now)
        self._check_bucket(bucket)
        return [e for w in range(self.ways) if (e := self.age_slot((bucket, w), now))]

    def age(self, now):
        """A full aging sweep at tick ``now``: the stash first, then buckets 0..buckets-1.

        Frees and returns (in that order) every TENTATIVE entry older than
        ``tentative_timeout`` (wrap-safe, module docstring). BOUND entries never age. The stash
        goes first so that an entry returned from the stash into a bucket has already been
        checked in this sweep.
        """
        out = self.age_stash(now)
        for b in range(self.buckets):
            out += self.age_bucket(b, now)
        return out

    def __repr__(self):
        return (f"GlobalFlowTable(buckets={self.buckets}, ways={self.ways}, stash={self.stash}, "
                f"move_budget={self.move_budget}, entries={self._count})")
