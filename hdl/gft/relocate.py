"""The GFT's slow insert path: breadth-first cuckoo search, moves from the free end, stash."""

from amaranth.hdl import *
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..fanout import register_copies
from ..onehot import select
from .bucket import lowest, popcount
from .layouts import EntryState, GftStatus, entry_part


__all__ = ["Relocator"]


class Relocator(wiring.Component):
    """Insert an entry whose two candidate buckets are both full (rules 3-5 of
    :mod:`sim.model.gft`), using the table's RAM ports while the request pipeline is held.

    Search
        Breadth first from the roots ``b1`` then ``b2``, at most ``move_budget`` moves deep.
        Expanding a node reads its bucket (one RAM read) and walks its ways 0..ways-1; each
        entry's other candidate bucket is a child, tested for a free way in the table's
        per-bucket *full* bitmap (no RAM read). The first child with room ends the search.
        Children of the last level are only tested, never stored. The model prunes children
        already on their own path; this search does not, which the model's docstring shows
        never changes the chosen path (it only costs reads of full buckets). Nodes live in a
        small queue memory of ``params.search_nodes`` entries, each with its parent and the way
        in the parent, from which the path is walked back.
    Moves
        From the free end backwards: the last entry moves into the lowest free way of the free
        bucket, each earlier entry into the way just vacated, and the new entry into the way
        vacated in the root. A move's source and destination are always in different
        sub-tables, so it is one read of the source (the first move also reads the free
        bucket, in the same cycle) and one write; the source way is not cleared because the
        next step overwrites it, and the pipeline is held, so nothing ever sees the copy twice.
        Entries are copied whole: the FID never changes.
    Stash
        No path: the lowest free stash slot. No slot: FULL, and nothing was written.

    Latency (cycles from ``start`` to ``done``, inclusive of neither)
    ------------------------------------------------------------------
    With *L* the ``read_latency`` and *F* the ``full_latency``: 2 to set up the roots, then
    ``2 + L + F + ways`` per bucket expanded, ``3 + L`` per move, 1 for the final write and 1
    for the output registers; with ``move_budget == 0`` straight to the stash (2). Worst case
    with the defaults (4 ways, budget 3) and the table's *L* = 5, *F* = 2: 42 expansions, 3
    moves: 2 + 42 * 13 + 3 * 8 + 1 + 1 = 574. Every output the table acts on (``wr``, ``set_full``,
    ``stash_write``, ``result``, ``done``) is a register, loaded a cycle after the state
    that decides it, so a write lands a cycle later than it is decided.
    ``rd_addr`` is a register, loaded the cycle after the node is read from the node queue
    (a LUT RAM read in front of the block RAMs' address inputs would not make 125 MHz): one
    cycle per read more than the least possible.

    Members
    -------
    start : ``In(1)``
        Begin with ``root_i1``, ``root_i2`` and ``entry`` (sampled now). Only while ``busy`` is low.
    root_i1, root_i2 : ``In(params.index_bits)``
        The candidates: bucket ``root_i1`` of sub-table 0, ``root_i2`` of sub-table 1.
    entry : ``In(params.entry)``
        The new entry.
    busy : ``Out(1)``
        From the cycle after ``start`` until ``done`` (inclusive).
    done : ``Out(1)``
        One cycle: ``result`` is valid, and the final write (if any) happens at this edge.
    result : ``Out(StructLayout({"status", "loc", "moves"}))``
        INSERTED with the location, or FULL; ``moves`` entries were relocated.
    rd_addr : ``Out(ArrayLayout(params.index_bits, 2))``
        Read address of each sub-table while busy (registered).
    rd_data : ``In(ArrayLayout(params.bucket, 2))``
        The buckets read, ``read_latency`` cycles after ``rd_addr``: 2 for a block RAM and its
        output register, 3 in the table, whose address registers come first.
    wr : ``Out(StructLayout({"en", "sub", "idx", "way", "entry"}))``
        One way write.
    full_sub, full_idx : ``Out(1)``, ``Out(params.index_bits)``
        Bucket whose *full* bit the search asks for (registered). A question goes out in
        every cycle; only those asked ``full_latency + 1`` cycles before a way's turn are
        used.
    full : ``In(1)``
        That bit, ``full_latency`` cycles after the question.
    set_full : ``Out(StructLayout({"en", "sub", "idx", "value"}))``
        The free bucket's new *full* bit, with the first move.
    stash_free_any, stash_free_slot : ``In(1)``, ``In(params.slot_bits)``
        The stash's lowest free slot.
    stash_write : ``Out(params.stash_write)``
        Stash insert, laid out as :attr:`~hdl.gft.stash.Stash.write` (so a stash can take it
        as it is, as the unit tests do): ``en`` one-hot over the slots, set only in the cycle
        of ``done``, in a register copy per 64-bit part of the entry
        (:func:`~hdl.fanout.register_copies`). The table takes ``stash_en_next`` instead,
        into copies shared with its own writes.
        ``stash_write.entry`` is the entry ``start`` came with from two cycles after ``start``
        until ``done`` (inclusive), whatever the outcome: the table answers with it.
    stash_en_next : ``Out(max(1, params.stash))``
        ``stash_write.en`` as it will be in the next cycle (a register, set as the stash
        insert's state is entered): for a writer that ORs in enables of its own in front of
        register copies of its own.
    stash_writes : ``Out(params.entry_parts)``
        Bit ``k`` is ``stash_write.en[k].any()``, from a flip-flop of its own: the table
        steers part ``k`` of the stash's write data by it, and an OR of the enables in front
        of that select reached the slots' flip-flops across the die.

    Parameters
    ----------
    params : GftParams
    read_latency : int
        Cycles from ``rd_addr`` to ``rd_data``, at least 2 (keyword only).
    full_latency : int
        Cycles from ``full_sub``/``full_idx`` to ``full``, at least 1 (keyword only): 1 for a
        bit select behind a register, 2 for a block RAM read, as the table's is.
    """

    def __init__(self, params, *, read_latency=2, full_latency=1):
        if not isinstance(read_latency, int) or read_latency < 2:
            raise ValueError(f"Read latency must be an integer of at least 2, not {read_latency!r}")
        if not isinstance(full_latency, int) or full_latency < 1:
            raise ValueError(
                f"Full latency must be an integer of at least 1, not {full_latency!r}")
        self._read_latency = read_latency
        self._full_latency = full_latency
        self._p = params
        p = params
        ib = p.index_bits
        self._node = data.StructLayout({
            "sub": 1, "idx": ib, "parent": range(max(2, p.search_nodes)), "way": p.way_bits})
        super().__init__({
            "start": In(1),
            "root_i1": In(ib),
            "root_i2": In(ib),
            "entry": In(p.entry),
            "busy": Out(1),
            "done": Out(1),
            "result": Out(data.StructLayout({
                "status": GftStatus, "loc": p.location, "moves": range(p.move_budget + 1)})),
            "rd_addr": Out(data.ArrayLayout(ib, 2)),
            "rd_data": In(data.ArrayLayout(p.bucket, 2)),
            "wr": Out(data.StructLayout({
                "en": 1, "sub": 1, "idx": ib, "way": p.way_bits, "entry": p.entry})),
            "full_sub": Out(1),
            "full_idx": Out(ib),
            "full": In(1),
            "set_full": Out(data.StructLayout({"en": 1, "sub": 1, "idx": ib, "value": 1})),
            "stash_free_any": In(1),
            "stash_free_slot": In(p.slot_bits),
            "stash_write": Out(p.stash_write),
            "stash_en_next": Out(max(1, p.stash)),
            "stash_writes": Out(p.entry_parts),
        })

    def elaborate(self, platform):
        m = Module()
        p = self._p
        W = p.ways

        entry = Signal(p.entry)
        i2 = Signal(p.index_bits)
        moves = Signal(range(p.move_budget + 1))
        # What the table acts on at once (its RAM write register, the full bitmap, the stash,
        # the response) leaves through flip-flops, a cycle after the state that decides it:
        # a decode of the state register, and the stash's lowest free slot, were in front of
        # all of them. `busy` covers that cycle.
        wr, set_full, result = (
            Signal(port.shape(), name=name) for port, name in (
                (self.wr, "wr"), (self.set_full, "set_full"), (self.result, "result")))
        stash_write = Signal(data.StructLayout({"en": max(1, p.stash), "entry": p.entry}),
                             name="stash_write")
        m.d.comb += result.moves.eq(moves)
        m.d.sync += [self.wr.eq(wr), self.set_full.eq(set_full), self.result.eq(result),
                     self.stash_write.entry.eq(stash_write.entry)]
        m.d.comb += self.stash_en_next.eq(stash_write.en)
        en_copies = register_copies(m, stash_write.en, p.entry_parts, name="stash_en")
        m.d.comb += [self.stash_write.en[k].eq(en) for k, en in enumerate(en_copies)]
        any_copies = register_copies(m, stash_write.en.any(), p.entry_parts, name="stash_any")
        m.d.comb += [self.stash_writes[k].eq(any_) for k, any_ in enumerate(any_copies)]
        # The entries written are not zeroed when nothing is written (the enables say that):
        # Yosys makes `Mux(state, x, 0)` in front of a flip-flop its synchronous reset, and a
        # state decode then drove the reset of 437 flip-flops each across the die. The RAM
        # write is always `moving`. It loads in every cycle, with no enable (a state decode
        # in front of 437 enables was the next slow path): the entry read while a move is
        # latched, the new entry while one is written, for the final write that may follow;
        # `writing` (MOVE_WRITE) says which (see below).
        moving = Signal(p.entry)
        m.d.comb += [wr.entry.eq(moving), stash_write.entry.eq(entry)]
        def global_bucket(sub, idx):
            return Cat(idx[:max(0, (p.half - 1).bit_length())], sub)

        # `done` comes from a flip-flop, set on entering the one-cycle states FINAL and STASH
        # (then registered with the outputs above): it steers the table's response (valid, op,
        # tag) and a decode of the state register there was one of the table's slowest paths.
        done = Signal()
        m.d.sync += [done.eq(0), self.done.eq(done)]
        # The stash slot the insert takes, decoded as STASH is entered and registered: the
        # decode of the state and the free slot in front of the table's copies of the
        # enables, by the slots across the die, was 0.3k failing endpoints at 362f863. Nothing
        # writes the stash between that edge and the insert (the pipeline is empty).
        # (Set only at that edge, so it is zero outside STASH: the enables are the register.)
        stash_slot = Signal(len(stash_write.en))
        m.d.sync += stash_slot.eq(0)
        m.d.comb += stash_write.en.eq(stash_slot)

        def finish(state):
            m.d.sync += done.eq(1)
            if state == "STASH":
                m.d.sync += stash_slot.eq(Mux(self.stash_free_any, Cat(
                    self.stash_free_slot == j for j in range(len(stash_write.en))), 0))
            m.next = state

        def finish_in_stash():
            with m.If(self.stash_free_any):
                m.d.comb += [
                    result.status.eq(GftStatus.INSERTED),
                    result.loc.stash.eq(1),
                    result.loc.way.eq(self.stash_free_slot),
                ]
            with m.Else():
                m.d.comb += result.status.eq(GftStatus.FULL)

        if p.move_budget == 0:
            with m.FSM() as fsm:
                with m.State("IDLE"):
                    with m.If(self.start):
                        finish("STASH")
                with m.State("STASH"):
                    finish_in_stash()
                    m.next = "IDLE"
            self._busy(m, fsm, entry)
            return m

        nodes = m.submodules.nodes = memory.Memory(
            shape=self._node, depth=p.search_nodes, init=[])
        node_wr = nodes.write_port()
        node_rd = nodes.read_port(domain="comb")
        node = node_rd.data

        cur = Signal(range(p.search_nodes + 1))         # node being expanded
        level_end = Signal(range(p.search_nodes + 1))   # first node of the next level
        tail = Signal(range(p.search_nodes + 1))        # next free node slot
        depth = Signal(range(p.move_budget + 1))        # moves a child of `cur` would need
        node_sub = Signal()
        word = Signal(p.bucket)
        way = Signal(p.way_bits)                        # way decided this cycle
        # The alternative bucket of each way of the bucket expanded, loaded at the latch and
        # shifted down a way per expansion step, so that the way decided is always at the
        # bottom: the choice among the ways by `way` (and of the index by `node_sub`) in front
        # of the node queue's write and of `dst_idx` crossed the die (way to the node queue,
        # 11.02 ns at placement at 6819dbf, 0.30k failing endpoints inside the Relocator).
        alts = [Signal(p.index_bits, name=f"alt{w}") for w in range(W)]
        # Moves: the entry at (src node, src_way) goes to (dst_sub, dst_idx, dst_way).
        src = Signal(range(max(2, p.search_nodes)))
        src_way = Signal(p.way_bits)
        src_sub = Signal()
        src_idx = Signal(p.index_bits)
        dst_sub = Signal()
        dst_idx = Signal(p.index_bits)
        dst_way = Signal(p.way_bits)
        first = Signal()
        fills = Signal()
        # The node queue is read at `cur` while expanding and at `src` while moving: a flip-flop
        # says which, so that its read address is one LUT from flip-flops, not a decode of the
        # state register (the node read feeds `rd_addr`, and the RAM's address after it).
        reading_src = Signal()
        m.d.comb += node_rd.addr.eq(Mux(reading_src, src, cur))

        def alt_of(w, bucket=word):
            e = bucket[w]
            return ~node_sub, Mux(node_sub, e.i1, e.i2)

        F = self._full_latency

        def wait(what):
            # The states from the one that loads `rd_addr` to the one that takes `rd_data`.
            names = [f"{what}_WAIT{k}" for k in range(self._read_latency)] + [f"{what}_LATCH"]
            for here, there in zip(names, names[1:]):
                with m.State(here):
                    m.next = there

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [i2.eq(self.root_i2), moves.eq(0), reading_src.eq(0)]
                    m.d.comb += [node_wr.en.eq(1), node_wr.addr.eq(0),
                                 node_wr.data.sub.eq(0), node_wr.data.idx.eq(self.root_i1)]
                    m.next = "ROOT2"

            with m.State("ROOT2"):
                m.d.comb += [node_wr.en.eq(1), node_wr.addr.eq(1),
                             node_wr.data.sub.eq(1), node_wr.data.idx.eq(i2)]
                m.d.sync += [cur.eq(0), level_end.eq(2), tail.eq(2), depth.eq(1)]
                m.next = "EXPAND_READ"

            with m.State("EXPAND_READ"):
                m.d.sync += [node_sub.eq(node.sub), self.rd_addr[0].eq(node.idx),
                             self.rd_addr[1].eq(node.idx)]
                m.next = "EXPAND_WAIT0"

            wait("EXPAND")

            with m.State("EXPAND_LATCH"):
                m.d.sync += [word.eq(self.rd_data[node_sub]), way.eq(0)]
                m.d.sync += [alt.eq(alt_of(w, self.rd_data[node_sub])[1])
                             for w, alt in enumerate(alts)]
                m.next = "EXPAND_ASK0"

            # While the first answer is on its way, the next ways are asked.
            for k in range(F):
                with m.State(f"EXPAND_ASK{k}"):
                    m.next = f"EXPAND_ASK{k + 1}" if k + 1 < F else "EXPAND_WAY"

            with m.State("EXPAND_WAY"):
                # `full` answers for `way` (asked F + 1 cycles ago, see `ask_way` below).
                last_way = way == W - 1
                sub, idx = ~node_sub, alts[0]
                m.d.sync += [lower.eq(upper) for lower, upper in zip(alts, alts[1:])]
                store = depth != p.move_budget
                with m.If(~self.full):
                    m.d.sync += [src.eq(cur), src_way.eq(way), dst_sub.eq(sub),
                                 dst_idx.eq(idx), first.eq(1), reading_src.eq(1)]
                    m.next = "MOVE_READ"
                with m.Else():
                    with m.If(store):
                        m.d.comb += [node_wr.en.eq(1), node_wr.addr.eq(tail),
                                     node_wr.data.sub.eq(sub), node_wr.data.idx.eq(idx),
                                     node_wr.data.parent.eq(cur), node_wr.data.way.eq(way)]
                        m.d.sync += tail.eq(tail + 1)
                    m.d.sync += way.eq(way + 1)
                    with m.If(last_way):
                        m.d.sync += cur.eq(cur + 1)
                        with m.If(cur + 1 != level_end):
                            m.next = "EXPAND_READ"
                        with m.Elif(~store):
                            finish("STASH")
                        with m.Else():
                            m.d.sync += [depth.eq(depth + 1), level_end.eq(tail + 1)]
                            m.next = "EXPAND_READ"

            with m.State("MOVE_READ"):
                m.d.sync += [self.rd_addr[0].eq(node.idx), self.rd_addr[1].eq(node.idx)]
                # The free bucket is read beside the first source (other sub-table).
                with m.If(first):
                    m.d.sync += self.rd_addr[dst_sub].eq(dst_idx)
                m.d.sync += [src_sub.eq(node.sub), src_idx.eq(node.idx)]
                m.next = "MOVE_WAIT0"

            wait("MOVE")

            with m.State("MOVE_LATCH"):
                with m.If(first):
                    free = Cat(self.rd_data[dst_sub][w].state == EntryState.INVALID
                               for w in range(W))
                    _, free_way = lowest(m, free, name="dst_free")
                    m.d.sync += [dst_way.eq(free_way), fills.eq(popcount(free) == 1)]
                m.next = "MOVE_WRITE"

            with m.State("MOVE_WRITE"):
                m.d.comb += [wr.en.eq(1), wr.sub.eq(dst_sub), wr.idx.eq(dst_idx),
                             wr.way.eq(dst_way)]
                with m.If(first):
                    m.d.comb += [set_full.en.eq(1), set_full.sub.eq(dst_sub),
                                 set_full.idx.eq(dst_idx), set_full.value.eq(fills)]
                m.d.sync += [moves.eq(moves + 1), first.eq(0), dst_sub.eq(src_sub),
                             dst_idx.eq(src_idx), dst_way.eq(src_way),
                             src.eq(node.parent), src_way.eq(node.way)]
                # Nodes 0 and 1 are the roots: the new entry takes the way just vacated.
                with m.If(src < 2):
                    finish("FINAL")
                with m.Else():
                    m.next = "MOVE_READ"

            with m.State("FINAL"):
                m.d.comb += [wr.en.eq(1), wr.sub.eq(dst_sub), wr.idx.eq(dst_idx),
                             wr.way.eq(dst_way),
                             result.status.eq(GftStatus.INSERTED),
                             result.loc.bucket.eq(global_bucket(dst_sub, dst_idx)),
                             result.loc.way.eq(dst_way)]
                m.next = "IDLE"

            with m.State("STASH"):
                finish_in_stash()
                m.next = "IDLE"

        # The questions go out of flip-flops: the table's answer (a bit of the full bitmap,
        # half the table wide, selected by `full_idx`) then starts at a register, not behind
        # the way select too. So each way is asked F + 1 cycles before its answer is used: way
        # 0 as the bucket is latched (from `rd_data`), then one way a cycle (from `word`),
        # counted by `ask_way` from the latch on. A question goes out in every cycle, used or
        # not (ways past the last, and outside an expansion: ask anything), so that no decode
        # of the state register sits in front of `full_idx` (12.5 ns at eae791f); the latch
        # is a flip-flop of its own, set the cycle before.
        ask_way = Signal(range(W + F + 2))
        latching = Signal()
        last_wait = f"EXPAND_WAIT{self._read_latency - 1}"
        m.d.sync += [
            latching.eq(fsm.ongoing(last_wait)),
            ask_way.eq(Mux(fsm.ongoing(last_wait), 0,
                           Mux(ask_way == W + F + 1, ask_way, ask_way + 1))),
        ]
        ask_sub, ask_idx = alt_of(Mux(ask_way < W, ask_way, 0),
                                  p.bucket(Mux(latching, self.rd_data[node_sub], word)))
        m.d.sync += [self.full_sub.eq(ask_sub), self.full_idx.eq(ask_idx)]

        # Both selects in front of `moving` come from flip-flops of their own, a copy per
        # 64-bit part, each by that part of the eight entries read (437 loads each, spread
        # over the die: 0.6k failing endpoints at a13292a from `src_sub` and `src_way`).
        # `writing` is a copy of MOVE_WRITE; the read entry's one-hot position lags a cycle
        # behind `src_sub` and `src_way`, which are set at MOVE_READ or before, and the entry
        # read is latched at MOVE_LATCH, a read latency after.
        writing = register_copies(m, fsm.ongoing("MOVE_LATCH"), p.entry_parts, name="writing")
        src_pick = register_copies(
            m, Cat((src_sub == s) & (src_way == w) for s in range(2) for w in range(W)),
            p.entry_parts, name="src_pick")
        m.d.sync += moving.eq(Cat(
            Mux(writing[k], entry_part(entry, k),
                select(src_pick[k], [entry_part(self.rd_data[s][w], k)
                                     for s in range(2) for w in range(W)]))
            for k in range(p.entry_parts)))
        self._busy(m, fsm, entry)
        return m

    def _busy(self, m, fsm, entry):
        # `busy` (~IDLE | done) is a flip-flop: it selects the RAMs' read address, and a decode
        # of the state register in front of that select was the table's slowest path. Only
        # FINAL and STASH return to IDLE, and `done` follows them, so `busy` stays set from
        # the edge that leaves IDLE to the edge after `done`.
        busy_next = Mux(fsm.ongoing("IDLE"), self.start, 1)
        m.d.sync += self.busy.eq(busy_next)
        # The new entry is taken in every idle cycle, so the one `start` comes with stays: the
        # load enable of its 437 flip-flops is a copy of `busy` per 64-bit part, not `start`
        # (the table's commit decision) through the state logic, nor one `busy` for all.
        idle_next = Signal(init=1)      # the copies start idle, as `busy` does
        m.d.comb += idle_next.eq(~busy_next)
        idle = register_copies(m, idle_next, self._p.entry_parts, name="idle")
        for k, part_idle in enumerate(idle):
            with m.If(part_idle):
                m.d.sync += entry_part(entry, k).eq(entry_part(self.entry, k))
