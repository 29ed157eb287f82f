"""The fragment table in hardware: gives a non-first IP fragment the key of its datagram.

The golden model is :class:`sim.packets.fragments.FragmentTable`; its docstring says what the
table remembers and why (datagram identity, replacement on a reused IP ID, expiry from the
first fragment, eviction of the oldest when full). This block makes the same decision for every
packet, and keeps the same entries, so its counters equal the model's.
"""

from amaranth.hdl import *
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

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
    """Fully associative table of up to ``capacity`` datagrams, in registers.

    Each entry holds a datagram's identity (source and destination address, the protocol every
    fragment carries, the IP identification, the zone), the ports and protocol of its first
    fragment's key, the time of that first fragment (``born``) and a *rank*: the entry's place
    in first-fragment order, 0 for the oldest. Rank order is the model's insertion order, so
    the oldest entry is the one of rank 0, and since ``now`` never goes backwards it is also
    expiry order.

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
    one per clock. A fragment takes six cycles (accept; compare; gather: live, matching and
    oldest entries; choose: the slot a first fragment takes; prepare: counts, ranks, write
    enables into registers; decide: every change at one edge) and is offered on ``o`` from
    the sixth cycle after its transfer; nothing else is accepted meanwhile, so fragments never
    meet a half-updated table. Six cycles is still within the 8 beats of the shortest frame.

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
        ``identity``, ``ports``), for inspection in simulation.

    Raises
    ------
    ValueError
        If a parameter is out of its range.
    """

    def __init__(self, *, capacity=16, timestamp_width=24, timeout=1000, tag_width=0):
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
            "limit": timestamp_width,
            "identity": _IDENTITY, "ports": _PORTS,
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

    def elaborate(self, platform):
        m = Module()
        N, RB, T = self._capacity, self._rank_bits, self._timestamp_width
        entries = [Signal(self.entry_layout, name=f"entry{e}") for e in range(N)]
        self.entries = entries

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
            m.d.sync += [cur.eq(req), first.eq(req.frag.offset == 0)]
        with m.If(accept & fragment):
            m.d.sync += [idle.eq(0), comparing.eq(1)]

        # --- compare: identity against every entry; which entries are past their time ----------

        cmp = m.submodules.compare = KeyCompare(width=_IDENTITY.size, count=N)
        m.d.comb += cmp.key.eq(identity(cur.key, cur.frag))
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
        for e, entry in enumerate(entries):
            m.d.comb += [cmp.stored[e].eq(entry.identity), cmp.valid[e].eq(entry.valid)]
            m.d.sync += expired[e].eq(entry.valid &
                                      (entry.stale | ~(cur.ts - entry.limit)[T - 1]))
        gathering = Signal()
        with m.If(comparing):
            m.d.sync += [comparing.eq(0), gathering.eq(1)]

        # --- gather: which entries live, match and are the oldest, into flip-flops -------------

        # A step of its own, so that neither the second half of the compare nor the expiry
        # bits are in series with the choices of the prepare step (the free-slot carry chain,
        # the counts, the AND-OR of the matching entry's ports): together they did not fit in
        # one cycle at 125 MHz. ``expired`` is sampled here once, so that the scanner marking
        # an entry stale meanwhile cannot make the prepare step see two different tables.
        # Sampled in the gathering cycle only: the choose and prepare steps both read it.
        gather = Signal(data.StructLayout({"live": N, "match": N, "oldest": N, "expired": N,
                                           "free_first": N, "full": 1}))
        live_now = Cat(entry.valid for entry in entries) & ~expired
        with m.If(gathering):
            m.d.sync += [
                gather.live.eq(live_now), gather.match.eq(cmp.match & live_now),
                gather.oldest.eq(Cat(live_now[e] & (entry.rank == 0)
                                     for e, entry in enumerate(entries))),
                gather.expired.eq(expired),
                # The lowest free slot and whether there is none, for the choose step.
                gather.free_first.eq(first_one(~live_now)), gather.full.eq(live_now.all()),
            ]
        choosing = Signal()
        preparing = Signal()
        with m.If(gathering):
            m.d.sync += [gathering.eq(0), choosing.eq(1)]
        with m.If(choosing):
            m.d.sync += [choosing.eq(0), preparing.eq(1)]

        # --- prepare: the model's resolve, worked out into registers --------------------------

        # Ranks stay as they are until the decision, which subtracts the expired ones (the
        # oldest ranks: expiry order is rank order) in the same step as the other changes, so
        # no subtraction follows the counting here.
        live, match, oldest = gather.live, gather.match, gather.oldest
        # The first fragment's slot: its old entry, the evicted one (the oldest: a full table
        # had nothing expire, so that is rank 0), or the lowest free slot. Which entries a
        # decision writes is registered here, and is zero in every cycle but the decision's,
        # so that each entry's write enable (of hundreds of flip-flops) is a flip-flop.
        # The slot is chosen a step ahead (``choose``), into a register: behind the free-slot
        # carry chain and the choice, the masks below took eight LUT levels.
        full = gather.full
        slot = Signal(N)
        m.d.sync += slot.eq(Mux(match.any(), match, Mux(full, oldest, gather.free_first)))
        prep = Signal(data.StructLayout({
            "expired": N, "hit": 1, "full": 1, "write": N, "write_src": N, "write_dst": N,
            "write_rest": N, "count": range(N + 1),
            "gone": range(N + 1), "match_rank": RB, "ports": _PORTS,
        }))
        m.d.sync += [
            prep.expired.eq(gather.expired), prep.hit.eq(match.any()), prep.full.eq(full),
            prep.write.eq(Mux(preparing & first, slot, 0)),
            # Copies of ``write`` for the wide fields of an entry, each enabling a hundred-odd
            # flip-flops instead of one enabling 370 (9.6 ns of routing). Yosys merges
            # flip-flops with the same input, ``keep`` or not, so each copy also ANDs in a bit
            # of ``cur`` that is always 1 for a fragment (``keyed``, ``frag.valid``).
            prep.write_src.eq(Mux(preparing & first & cur.keyed, slot, 0)),
            prep.write_dst.eq(Mux(preparing & first & cur.frag.valid, slot, 0)),
            prep.write_rest.eq(Mux(preparing & first & cur.keyed & cur.frag.valid, slot, 0)),
            prep.count.eq(popcount(live)), prep.gone.eq(popcount(gather.expired)),
            prep.match_rank.eq(select(match, [entry.rank for entry in entries])),
            prep.ports.eq(select(match, [entry.ports.as_value() for entry in entries])),
        ]
        deciding = Signal()
        with m.If(preparing):
            m.d.sync += [preparing.eq(0), deciding.eq(1)]

        # --- decide: every change at one edge ---------------------------------------------------

        # Ranks (before expiry) above the one that leaves move down one more; the newcomer is
        # the newest.
        moves = prep.hit | prep.full
        leaving = Mux(prep.hit, prep.match_rank, 0)
        new_rank = Mux(moves, prep.count - 1, prep.count)[:RB]

        # --- the output queue takes ``cur``: a passing packet or a decision ---------------------

        # Both leave from ``cur``, so no wide mux chooses between them: only a matched later
        # fragment's ports replace those of its key, chosen by a flip-flop of their own.
        # (Choosing between the input and ``cur`` took 8.3 ns of routing from the select.)
        # The decision never waits for the queue: a fragment is accepted only with room in it,
        # and nothing enters it until the decision.
        take_ports = Signal()
        m.d.sync += take_ports.eq(preparing & ~first & match.any())
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
        with m.If(deciding):
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
        m.d.sync += pushing.eq((accept & ~fragment) | preparing)
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
        new = identity(cur.key, cur.frag)
        for e, entry in enumerate(entries):
            rank = (entry.rank - prep.gone -
                    (first & moves & (entry.rank > leaving)))[:RB]
            with m.If(decide & prep.expired[e]):
                m.d.sync += entry.valid.eq(0)
            # ``prep.write`` is only ever set in the decision's cycle: not under ``decide``.
            with m.If(prep.write[e]):
                m.d.sync += [
                    entry.valid.eq(1), entry.stale.eq(0), entry.rank.eq(new_rank),
                    entry.born.eq(cur.ts), entry.limit.eq(cur_limit),
                ]
            with m.Elif(decide):
                m.d.sync += entry.rank.eq(rank)
            with m.If(prep.write_src[e]):
                m.d.sync += entry.identity.src_addr.eq(new.src_addr)
            with m.If(prep.write_dst[e]):
                m.d.sync += entry.identity.dst_addr.eq(new.dst_addr)
            with m.If(prep.write_rest[e]):
                m.d.sync += [
                    entry.identity.proto.eq(new.proto), entry.identity.ident.eq(new.ident),
                    entry.identity.zone.eq(new.zone),
                    entry.ports.src_port.eq(cur.key.src_port),
                    entry.ports.dst_port.eq(cur.key.dst_port),
                    entry.ports.proto.eq(cur.key.proto),
                ]

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

        with m.If(decide):
            bump("expired", prep.gone)
            with m.If(first):
                bump("first", 1)
                with m.If(prep.full & ~prep.hit):
                    bump("evicted", 1)
            with m.Elif(prep.hit):
                bump("matched", 1)
            with m.Else():
                bump("frag_unmatched", 1)
            m.d.sync += self.stats.occupancy.eq(prep.count + (first & ~moves))
        return m
