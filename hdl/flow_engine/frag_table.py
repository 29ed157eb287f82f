"""The fragment table in hardware: gives a non-first IP fragment the key of its datagram.

The golden model is :class:`sim.packets.fragments.FragmentTable`; its docstring says what the
table remembers and why (datagram identity, replacement on a reused IP ID, expiry from the
first fragment, eviction of the oldest when full). This block makes the same decision for every
packet, and keeps the same entries, so its counters equal the model's.
"""

from amaranth.hdl import *
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..fanout import register_copies
from ..gft.bucket import popcount
from ..gft.compare import KeyCompare
from ..gft.queue import Queue
from ..level import after_step
from ..wire import FLOW_KEY
from ..onehot import first_one, select
from .parse_result import FRAG_LAYOUT


__all__ = ["FragStatus", "FragmentTable", "FRAG_STATS"]


class FragStatus(enum.Enum, shape=3):
    """What the table did with a packet: the model's ``FragResult.status``, in its order."""
    UNFRAGMENTED = 0
    FIRST        = 1
    MATCHED      = 2
    UNMATCHED    = 3
    DROPPED      = 4     # the parser gave the packet no key


FRAG_STATS = ("first", "matched", "frag_unmatched", "expired", "evicted")
"""The statistics counters, named and counted as the model's ``FragmentTable.stats``."""

# A datagram's identity, and what its first fragment adds to it to make the flow key.
_IDENTITY = data.StructLayout({"src_addr": 128, "dst_addr": 128, "proto": 8, "ident": 32,
                               "zone": 24})
_PORTS = data.StructLayout({"src_port": 16, "dst_port": 16, "proto": 8})


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class FragmentTable(wiring.Component):
    """Fully associative table of up to ``capacity`` datagrams.

    Each entry holds a datagram's identity (source and destination address, the protocol every
    fragment carries, the IP identification, the zone), the ports and protocol of its first
    fragment's key, the time of that first fragment (``born``) and a *rank*: the entry's place
    in first-fragment order, 0 for the oldest. Rank order is the model's insertion order, so
    the oldest entry is the one of rank 0, and since ``now`` never goes backwards it is also
    expiry order.

    Storage
    -------
    Identities and ports (352 bits an entry) are in LUT RAM, one slot per entry. In registers,
    compared with every entry in parallel, are only the small fields and a *digest* of the
    identity (:meth:`digest`, ``digest_width`` bits). A fragment's digest selects candidates;
    the lowest is read from the RAM and its whole identity compared; if it differs (two
    identities with one digest, rare by chance) the next candidate is read, and so on. So the
    answer is always the model's, and only a collision costs time. (16 full identities in
    flip-flops were 15k cells spread over much of the die; their compare to one register
    set the flow engine's clock.)

    Per packet (the model's ``resolve``)
    -------------------------------------
    * No key (``keyed`` low): DROPPED. Not a fragment: UNFRAGMENTED. Neither touches the table.
    * A fragment first drops every entry with ``ts - born > timeout`` (``expired``).
    * First fragment (offset 0): a live entry of the same identity is replaced; else, with
      ``capacity`` live entries, the oldest is evicted (``evicted``); the datagram's entry then
      takes the newest rank, ``born = ts``. FIRST, the packet's own key.
    * Later fragment: a live entry of its identity gives the key (MATCHED, ``matched``); without
      one the packet keeps its key, ports 0 (UNMATCHED, ``frag_unmatched``).

    Time
    ----
    ``ts`` is the packet's timestamp in ticks (the flow engine samples ``now`` at the frame's
    first beat); ages are ``(ts - born) mod 2**timestamp_width``. So that an entry no fragment
    looks at for a long time cannot wrap around and look young, a scanner checks one entry
    per cycle against ``now`` and marks it stale for good once its age reaches
    ``2**(timestamp_width - 2)``, beyond every allowed timeout. Requirements: ``now`` never
    goes backwards and advances less than ``2**(timestamp_width - 2) / capacity`` ticks per
    cycle (so the scanner sees every entry before its age can wrap), and a packet's ``ts`` is
    never older than ``now`` by more than ``2**(timestamp_width - 2) - timeout`` ticks.

    Latency and throughput
    ----------------------
    A packet that is not a fragment passes in two cycles, through the register that holds a
    fragment while the table works on it (so that no wide mux chooses what enters the output
    queue): transferred on ``i`` at an edge, it is offered on ``o`` from the second edge after,
    one per clock. A fragment takes eight cycles (accept, with the digest; compare digests and
    ages; gather: live, candidate and oldest entries; read the first candidate's identity;
    check it, the first half of the compare; match: the second half; prepare: the slot a first
    fragment takes, counts, ranks and write enables into registers; decide: every change at
    one edge) and is offered on ``o`` from the eighth cycle after its transfer; each candidate
    whose whole identity differs adds four (read, check, match, prepare). Nothing else is
    accepted meanwhile, so fragments never meet a half-updated table. Eight cycles is the 8
    beats of the shortest frame: fragments of minimum size still pass at line rate.

    Backpressure
    ------------
    ``o`` is a three-entry queue; ``i.ready`` is a flip-flop (room for one more packet after
    those accepted) ANDed with the state, never combinationally from ``o.ready`` or
    ``i.valid``.

    Parameters (keyword only)
    -------------------------
    capacity : int
        Datagrams remembered at once, 1 to 64.
    timestamp_width : int
        Bits of ``now`` and of the timestamps, 4 to 32.
    timeout : int
        Ticks an entry lives after its first fragment, 0 to ``2**(timestamp_width - 2) - 1``.
    tag_width : int
        Width of an opaque tag carried from ``i`` to ``o`` (0: no ``tag`` field).
    digest_width : int
        Bits of the identity digest compared in parallel, 1 to 32 (16: with 16 entries a false
        candidate about once in 4,000 fragments; tests use 1 or 2 to force collisions).

    Members
    -------
    i : ``In(stream.Signature(request_layout))``
        ``key``, ``frag`` (:data:`~hdl.flow_engine.parse_result.FRAG_LAYOUT`), ``keyed``,
        ``ts``, ``tag``: a parse result and its timestamp.
    o : ``Out(stream.Signature(result_layout))``
        ``key`` to look the packet up with, ``status`` (:class:`FragStatus`), ``tag``; one per
        request, in order.
    now : ``In(timestamp_width)``
        Current time, for the scanner.
    stats : ``Out(stats_layout)``
        :data:`FRAG_STATS` (32 bits, wrapping) and ``occupancy`` (entries held).

    Attributes
    ----------
    entries : list
        After elaboration, the entry registers (views with ``valid``, ``rank``, ``born``,
        ``digest``), for inspection in simulation.
    ids : :class:`~amaranth.lib.memory.Memory`
        After elaboration, the identities and ports (``identity``, ``ports``), one word per
        entry: ``ids.data[e]`` in simulation.

    Raises
    ------
    ValueError
        If a parameter is out of its range.
    """

    def __init__(self, *, capacity=16, timestamp_width=24, timeout=1000, tag_width=0,
                 digest_width=16):
        if not _is_int(capacity) or not 1 <= capacity <= 64:
            raise ValueError(f"capacity must be an integer from 1 to 64, not {capacity!r}")
        if not _is_int(timestamp_width) or not 4 <= timestamp_width <= 32:
            raise ValueError(f"timestamp_width must be an integer from 4 to 32, not "
                             f"{timestamp_width!r}")
        limit = 1 << (timestamp_width - 2)
        if not _is_int(timeout) or not 0 <= timeout < limit:
            raise ValueError(f"timeout must be an integer from 0 to {limit - 1}, not {timeout!r}")
        if not _is_int(tag_width) or tag_width < 0:
            raise ValueError(f"tag_width must be a non-negative integer, not {tag_width!r}")
        if not _is_int(digest_width) or not 1 <= digest_width <= 32:
            raise ValueError(f"digest_width must be an integer from 1 to 32, not "
                             f"{digest_width!r}")
        self._digest_width = digest_width
        self._capacity = capacity
        self._timestamp_width = timestamp_width
        self._timeout = timeout
        self._tag_width = tag_width
        self._rank_bits = max(1, ceil_log2(capacity))
        tag = {"tag": unsigned(tag_width)} if tag_width else {}
        self.request_layout = data.StructLayout({
            "key": FLOW_KEY.layout, "frag": FRAG_LAYOUT, "keyed": 1,
            "ts": unsigned(timestamp_width), **tag,
        })
        self.result_layout = data.StructLayout({
            "key": FLOW_KEY.layout, "status": FragStatus, **tag,
        })
        self.stats_layout = data.StructLayout({
            **{name: 32 for name in FRAG_STATS}, "occupancy": range(capacity + 1),
        })
        self.entry_layout = data.StructLayout({
            "valid": 1, "stale": 1, "rank": self._rank_bits, "born": timestamp_width,
            "limit": timestamp_width, "digest": digest_width,
        })
        super().__init__({
            "i": In(stream.Signature(self.request_layout)),
            "o": Out(stream.Signature(self.result_layout)),
            "now": In(timestamp_width),
            "stats": Out(self.stats_layout),
        })

    @property
    def capacity(self):
        return self._capacity

    @property
    def timestamp_width(self):
        return self._timestamp_width

    @property
    def timeout(self):
        return self._timeout

    @property
    def digest_width(self):
        return self._digest_width

    def digest(self, identity):
        """A datagram identity folded into ``digest_width`` bits: the XOR of its slices
        (about three LUT levels at 16 bits)."""
        value, width = Value.cast(identity), self._digest_width
        parts = [value[lo:lo + width] for lo in range(0, len(value), width)]
        while len(parts) > 1:       # a balanced tree, not a chain of 312 XORs at width 1
            parts = [parts[i] ^ parts[i + 1] if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        return parts[0]

    def elaborate(self, platform):
        m = Module()
        N, RB, T, D = self._capacity, self._rank_bits, self._timestamp_width, self._digest_width
        IB = max(1, ceil_log2(N))       # bits of a slot number
        entries = [Signal(self.entry_layout, name=f"entry{e}") for e in range(N)]
        self.entries = entries

        # Each entry's identity and first-fragment ports, read one slot at a time (the slot
        # whose digest matched): LUT RAM, not flip-flops compared in parallel.
        stored_layout = data.StructLayout({"identity": _IDENTITY, "ports": _PORTS})
        ids = m.submodules.ids = memory.Memory(shape=stored_layout, depth=N, init=[])
        self.ids = ids
        ids_w, ids_r = ids.write_port(), ids.read_port(domain="comb")

        # Three places: a packet that passes is pushed the cycle after it was accepted, so the
        # table accepts only while the queue has room for it after the push still pending
        # (``room``, below); with three, that holds at one packet per clock.
        out_depth = 3
        out_q = m.submodules.out_queue = Queue(shape=self.result_layout, depth=out_depth)
        wiring.connect(m, out_q.o, wiring.flipped(self.o))

        def identity(key, frag):
            value = Signal(_IDENTITY)
            m.d.comb += [value.src_addr.eq(key.src_addr), value.dst_addr.eq(key.dst_addr),
                         value.proto.eq(frag.proto), value.ident.eq(frag.ident),
                         value.zone.eq(key.zone)]
            return value

        # --- accept: a packet that is not a fragment passes through ``cur`` -------------------

        req = self.i.payload
        cur = Signal(self.request_layout, name="cur")
        cur_digest = Signal(D)
        fragment = req.keyed & req.frag.valid
        idle = Signal(init=1)
        comparing = Signal()
        room = Signal(init=1)       # the output queue can take a push in the next cycle too
        m.d.comb += self.i.ready.eq(idle & room)
        accept = self.i.valid & self.i.ready
        first = Signal()        # the fragment at hand is a first fragment
        # ``cur`` takes ``i.payload`` in every idle cycle, whether or not a packet is accepted
        # (only an accepted fragment's is used later, and it stays while the table is busy), so
        # that the enable of its hundreds of flip-flops is one flip-flop, not the handshake.
        with m.If(idle):
            m.d.sync += [cur.eq(req), first.eq(req.frag.offset == 0),
                         cur_digest.eq(self.digest(identity(req.key, req.frag)))]
        with m.If(accept & fragment):
            m.d.sync += [idle.eq(0), comparing.eq(1)]

        # --- compare: digest against every entry; which entries are past their time ----------

        # ``age > timeout`` is one carry chain, not a subtraction and then a comparison (two
        # chains behind the fan-out of ``cur.ts`` to every entry took 11.1 ns): each entry
        # keeps ``limit = born + timeout + 1`` too, and an entry that is not stale is younger
        # than ``2**(T - 1)`` (the scanner marks it stale within ``capacity`` cycles of its age
        # reaching ``2**(T - 2)``, ``now`` advancing less than ``2**(T - 2)`` meanwhile, and
        # ``born <= ts <= now``), while ``timeout < 2**(T - 2)``: so ``ts - limit`` (mod
        # ``2**T``) is below ``2**(T - 1)`` exactly when ``age > timeout``.
        # The limit a new entry gets, registered (``cur`` holds still while the table works on
        # a fragment): the adder before the fan-out to every entry took 9.1 ns.
        cur_limit = Signal(T)
        m.d.sync += cur_limit.eq(cur.ts + self._timeout + 1)
        expired = Signal(N)
        digest_match = Signal(N)
        for e, entry in enumerate(entries):
            m.d.sync += [
                expired[e].eq(entry.valid & (entry.stale | ~(cur.ts - entry.limit)[T - 1])),
                digest_match[e].eq(entry.valid & (entry.digest == cur_digest)),
            ]
        gathering = Signal()
        with m.If(comparing):
            m.d.sync += [comparing.eq(0), gathering.eq(1)]

        # --- gather: which entries live, may match and are the oldest, into flip-flops ---------

        # ``expired`` is sampled here once, so that the scanner marking an entry stale meanwhile
        # cannot make the later steps see two different tables. Sampled in the gathering cycle
        # only. The first candidate (live, its digest matching) is probed first; ``others``
        # are the candidates after it, probed one by one while none matches.
        gather = Signal(data.StructLayout({"live": N, "oldest": N, "expired": N,
                                           "free_first": N, "full": 1}))
        live_now = Cat(entry.valid for entry in entries) & ~expired
        candidates = digest_match & live_now
        probe = Signal(N)               # the candidate probed, one-hot (zero: none)
        others = Signal(N)              # candidates not probed yet
        reading = Signal()
        checking = Signal()
        matching = Signal()
        preparing = Signal()
        with m.If(gathering):
            m.d.sync += [
                gather.live.eq(live_now),
                gather.oldest.eq(Cat(live_now[e] & (entry.rank == 0)
                                     for e, entry in enumerate(entries))),
                gather.expired.eq(expired),
                # The lowest free slot and whether there is none.
                gather.free_first.eq(first_one(~live_now)), gather.full.eq(live_now.all()),
                probe.eq(first_one(candidates)),
                others.eq(candidates & ~first_one(candidates)),
                gathering.eq(0), reading.eq(1),
            ]

        # --- read: the probed slot's identity and ports, from LUT RAM into registers -----------

        # Beside it, what the later steps need that does not depend on whether it matches: the
        # slot a first fragment takes if nothing matches (the evicted one, the oldest: a full
        # table had nothing expire, so that is rank 0; or the lowest free slot), the counts,
        # and the probed entry's rank.
        probed = Signal(stored_layout)
        probed_rank = Signal(RB)
        probe_slot = Signal(IB)
        spare = Signal(N)
        spare_slot = Signal(IB)
        slots = lambda onehot: select(onehot, [C(e, IB) for e in range(N)])
        m.d.comb += ids_r.addr.eq(slots(probe))
        count = Signal(range(N + 1))
        gone = Signal(range(N + 1))
        spare_now = Mux(gather.full, gather.oldest, gather.free_first)
        m.d.sync += [
            probed.eq(ids_r.data), probed_rank.eq(select(probe, [e.rank for e in entries])),
            probe_slot.eq(slots(probe)), spare.eq(spare_now), spare_slot.eq(slots(spare_now)),
            count.eq(popcount(gather.live)), gone.eq(popcount(gather.expired)),
        ]
        with m.If(reading):
            m.d.sync += [reading.eq(0), checking.eq(1)]

        # --- check: the whole identity against the probed one (KeyCompare's first half) ---------

        cmp = m.submodules.compare = KeyCompare(width=_IDENTITY.size, count=1)
        probing = Signal()      # a candidate was probed (``probe`` is not zero)
        m.d.sync += probing.eq(probe.any())
        m.d.comb += [cmp.key.eq(identity(cur.key, cur.frag)),
                     cmp.stored[0].eq(probed.identity), cmp.valid[0].eq(probing)]
        with m.If(checking):
            m.d.sync += [checking.eq(0), matching.eq(1)]

        # --- match: the compare's second half, and whether other candidates are left ----------

        # Registered in a step of their own: behind the compare's AND, the choices of the
        # prepare step took eight LUT levels.
        hit = Signal()
        more = Signal()
        m.d.sync += [hit.eq(cmp.match[0]), more.eq(others.any())]
        with m.If(matching):
            m.d.sync += [matching.eq(0), preparing.eq(1)]

        # --- prepare: the model's resolve, worked out into registers --------------------------

        # A probe that does not match, with candidates left, probes the next one (back to the
        # read step): digests of different datagrams are equal only by chance.
        settled = hit | ~more
        deciding = Signal()
        with m.If(preparing):
            with m.If(settled):
                m.d.sync += [preparing.eq(0), deciding.eq(1)]
            with m.Else():
                m.d.sync += [preparing.eq(0), reading.eq(1),
                             probe.eq(first_one(others)),
                             others.eq(others & ~first_one(others))]

        # Ranks stay as they are until the decision, which subtracts the expired ones (the
        # oldest ranks: expiry order is rank order) in the same step as the other changes, so
        # no subtraction follows the counting here. Which entry a decision writes is
        # registered here, and is zero in every cycle but the decision's, so that each
        # entry's write enable is a flip-flop.
        slot = Mux(hit, probe_slot, spare_slot)
        decide_first = preparing & settled & first
        # The rank changes are worked out here too, into registers: ``first`` (by ``cur``)
        # through a LUT to every entry's rank was 8.5 ns of wire at placement. A first
        # fragment that replaces its datagram's entry or evicts the oldest ``moves`` the ranks
        # above the one that leaves down by one more; the newcomer is the newest.
        moves = hit | gather.full
        prep = Signal(data.StructLayout({
            "expired": N, "hit": 1, "full": 1, "write": N, "write_slot": IB, "write_ids": 1,
            "count": range(N + 1), "gone": range(N + 1), "ports": _PORTS,
            "shift": 1, "leaving": RB, "new_rank": RB, "grows": 1,
        }))
        m.d.sync += [
            prep.expired.eq(gather.expired), prep.hit.eq(hit), prep.full.eq(gather.full),
            prep.write.eq(Mux(decide_first, Mux(hit, probe, spare), 0)),
            prep.write_slot.eq(slot), prep.write_ids.eq(decide_first),
            prep.count.eq(count), prep.gone.eq(gone), prep.ports.eq(probed.ports),
            prep.shift.eq(first & moves), prep.leaving.eq(Mux(hit, probed_rank, 0)),
            prep.new_rank.eq(Mux(moves, count - 1, count)[:RB]),
            prep.grows.eq(first & ~moves),
        ]

        # --- decide: every change at one edge ---------------------------------------------------

        # --- the output queue takes ``cur``: a passing packet or a decision ---------------------

        # Both leave from ``cur``, so no wide mux chooses between them: only a matched later
        # fragment's ports replace those of its key, chosen by a flip-flop of their own.
        # (Choosing between the input and ``cur`` took 8.3 ns of routing from the select.)
        # The decision never waits for the queue: a fragment is accepted only with room in it,
        # and nothing enters it until the decision.
        take_ports = Signal()
        m.d.sync += take_ports.eq(preparing & settled & ~first & hit)
        result = Signal(self.result_layout)
        m.d.comb += [
            result.key.eq(cur.key),
            result.status.eq(Mux(~cur.keyed, FragStatus.DROPPED, FragStatus.UNFRAGMENTED)),
        ]
        with m.If(take_ports):
            m.d.comb += [
                result.key.src_port.eq(prep.ports.src_port),
                result.key.dst_port.eq(prep.ports.dst_port),
                result.key.proto.eq(prep.ports.proto),
            ]
        # The decision's cycle in copies: for the result, for the counters, and one per
        # entry, each placed by its loads (one `deciding` reached the output queue's chunks,
        # the counters and every entry's rank: 8.33 ns of wire to the counters at placement
        # at 42da6a1). `deciding` is one cycle long, right after a settled prepare step; the
        # copies are reset with it, so that no decision follows a reset.
        decides = register_copies(m, preparing & settled, N + 2, name="deciding",
                                  reset_less=False)
        with m.If(decides[0]):
            m.d.comb += result.status.eq(Mux(first, FragStatus.FIRST,
                                             Mux(prep.hit, FragStatus.MATCHED,
                                                 FragStatus.UNMATCHED)))
        decide = deciding
        if self._tag_width:
            m.d.comb += result.tag.eq(cur.tag)
        # The push, a flip-flop of its own: ``cur`` holds a packet accepted last cycle that is
        # not a fragment, or a decision (which follows the prepare step). The queue's chunks
        # lie far apart, and a LUT in front of them had 6 ns of wire on each side at placement.
        pushing = Signal()
        m.d.sync += pushing.eq((accept & ~fragment) | (preparing & settled))
        m.d.comb += [out_q.i.valid.eq(pushing), out_q.i.payload.eq(result)]
        # ``room``: after this cycle's push and pop and the push of a packet accepted now, the
        # queue still has a place. This cycle's push comes from flip-flops; the accept and the
        # pop (the consumer's ready: in the engine, the enable of the LFT's request register)
        # come last, choosing among compares worked out without them.
        pushed = out_q.i.valid
        popped = out_q.o.valid & out_q.o.ready
        m.d.sync += room.eq(after_step(out_q.level + pushed, accept & ~fragment, popped,
                                       lambda n: n < out_depth))

        # --- decide: the table's changes --------------------------------------------------------

        with m.If(decide):
            m.d.sync += [deciding.eq(0), idle.eq(1)]
        m.d.comb += [
            ids_w.addr.eq(prep.write_slot), ids_w.en.eq(prep.write_ids),
            ids_w.data.identity.eq(identity(cur.key, cur.frag)),
            ids_w.data.ports.src_port.eq(cur.key.src_port),
            ids_w.data.ports.dst_port.eq(cur.key.dst_port),
            ids_w.data.ports.proto.eq(cur.key.proto),
        ]
        for e, (entry, decide_e) in enumerate(zip(entries, decides[2:])):
            rank = (entry.rank - prep.gone -
                    (prep.shift & (entry.rank > prep.leaving)))[:RB]
            with m.If(decide_e & prep.expired[e]):
                m.d.sync += entry.valid.eq(0)
            # ``prep.write`` is only ever set in the decision's cycle: not under ``decide``.
            with m.If(prep.write[e]):
                m.d.sync += [
                    entry.valid.eq(1), entry.stale.eq(0), entry.rank.eq(prep.new_rank),
                    entry.born.eq(cur.ts), entry.limit.eq(cur_limit),
                    entry.digest.eq(cur_digest),
                ]
            with m.Elif(decide_e):
                m.d.sync += entry.rank.eq(rank)

        # --- the scanner: one entry per cycle, stale for good long before its age wraps --------

        cursor = Signal(range(N))
        m.d.sync += cursor.eq(Mux(cursor == N - 1, 0, cursor + 1))
        for e, entry in enumerate(entries):
            old = (self.now - entry.born)[:T] >= (1 << (T - 2))
            with m.If((cursor == e) & entry.valid & old & ~prep.write[e]):
                m.d.sync += entry.stale.eq(1)

        # --- statistics ----------------------------------------------------------------------

        def bump(name, amount):
            counter = getattr(self.stats, name)
            m.d.sync += counter.eq(counter + amount)

        with m.If(decides[1]):
            bump("expired", prep.gone)
            with m.If(first):
                bump("first", 1)
                with m.If(prep.full & ~prep.hit):
                    bump("evicted", 1)
            with m.Elif(prep.hit):
                bump("matched", 1)
            with m.Else():
                bump("frag_unmatched", 1)
            m.d.sync += self.stats.occupancy.eq(prep.count + prep.grows)
        return m
