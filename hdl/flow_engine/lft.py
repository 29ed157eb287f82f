"""The card's local flow table (LFT) in hardware: a set-associative cache of the GFT, keyed by the
full flow key, with per-entry packet and byte counters and FIFO eviction per bucket.

The golden model is :class:`sim.model.lft.LocalFlowTable`; its docstring says why the table is
filled only by FLOW_ADD, why a full bucket evicts its oldest-installed way and why a delete
checks the FID. This block makes every one of the model's choices (bucket, way, victim, counts)
bit for bit, so a scoreboard compares table contents as well as answers.
"""

from amaranth.hdl import *
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..gft.bucket import popcount
from ..gft.compare import KeyCompare
from ..gft.queue import Queue, Skid
from ..hash.folded import FoldedFlowHash
from ..level import after_step
from ..wire import FID, FLOW_KEY, MESSAGES, PACKET_REF, MsgType
from ..onehot import first_one, select


__all__ = ["LftOp", "LftStatus", "LocalFlowTable", "LFT_STATS", "PACKETS_WIDTH", "BYTES_WIDTH",
           "LENGTH_WIDTH"]


# The counters are as wide as the FLOW_STATS fields that report them, and they wrap there.
PACKETS_WIDTH = MESSAGES[MsgType.FLOW_STATS].body["packets"].width
BYTES_WIDTH = MESSAGES[MsgType.FLOW_STATS].body["bytes"].width
LENGTH_WIDTH = PACKET_REF["len"].width

LFT_STATS = ("lookups", "hits", "misses", "adds", "updates", "deletes", "evictions",
             "delete_misses")
"""The statistics counters, named and counted as the model's ``LocalFlowTable.stats``."""


class LftOp(enum.Enum, shape=2):
    """What a request asks of the table."""
    NOP    = 0   # touches nothing; keeps its place in the response order (a dropped packet)
    LOOKUP = 1   # find the key; on a hit count one packet of ``length`` bytes
    ADD    = 2   # FLOW_ADD: install ``key -> fid``, or update the FID of a present key
    DELETE = 3   # FLOW_DELETE: remove ``key`` if it maps to ``fid``


class LftStatus(enum.Enum, shape=3):
    """What a request did."""
    NONE      = 0   # NOP
    HIT       = 1   # LOOKUP found the key; ``fid`` and the counts after this packet
    MISS      = 2   # LOOKUP did not
    INSTALLED = 3   # ADD took a free way
    EVICTED   = 4   # ADD took the way of the bucket's oldest entry: the victim's fid and counts
    UPDATED   = 5   # ADD found the key: FID replaced, counts kept
    DELETED   = 6   # DELETE removed the entry: its fid and final counts
    NOT_FOUND = 7   # DELETE found no entry of that key and FID


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class LocalFlowTable(wiring.Component):
    """Set-associative flow table: ``buckets`` x ``ways`` entries, one request per clock.

    Organisation
    ------------
    An entry holds a valid bit, the full flow key (never a hash only: two keys can share a
    bucket), the FID and a packet and a byte counter. The entries of a bucket are one word of a
    :class:`~amaranth.lib.memory.Memory` (``ways`` x 433 bits), written a way at a time. A
    second, narrow memory holds each bucket's install order: per way a *rank*, 0 for the
    oldest of the valid ways up to ``n - 1`` for the newest. The bucket of a key is the low
    bits of :func:`sim.flowhash.flow_hash` under ``secret``, as in the model.

    Rules (those of the model)
    --------------------------
    * LOOKUP hit: packets + 1, bytes + ``length`` (the counters wrap at their FLOW_STATS widths).
    * ADD of a present key: its FID is replaced, its counts and rank kept.
    * ADD of a new key: the lowest free way, with rank ``n``; in a full bucket the way of rank 0
      (the oldest installed; hits do not refresh it) is overwritten, every other rank drops by
      one and the new entry takes rank ``ways - 1``. The victim is in the response.
    * DELETE: only an entry with both the key and the FID (a late delete of an older session of
      the key must not remove a newer one); the ranks above it drop by one.

    Pipeline
    --------
    ``req`` -> a two-entry queue -> :class:`~hdl.hash.folded.FoldedFlowHash` (the whole request
    rides as its tag; a quarter of the unrolled hash's logic, for a quarter of its rate) -> a
    two-entry skid buffer of buckets and ops (cuts the ready path; the whole request waits
    beside it in a queue and joins at R) -> then one cycle each: I (issue, from a register
    that also drives both memories' read address), R (block RAM output,
    registered), B (first half of the key compare of every way; per-way increments and FID
    compares; all of the decision that does not depend on the matching way: free way, victim,
    install orders), C (second half of the compare, into a register of the matching way;
    beside it, every field of the answer as it would be if each way matched, and if none did),
    M (the matching way chooses among those values: an AND-OR per bit), D (memory writes,
    statistics, response into an 8-entry queue). Latency: a request transferred at edge *t*
    is answered on ``resp`` from edge *t +* :attr:`latency` (hash latency + 9) when nothing
    waits.
    Throughput: the hash's, 8 requests back to back (10 on ``req``, with the input queue), then
    one per 4 cycles (8 per 32); the table behind it takes one per clock. The card needs one
    per 8-beat frame, plus commands.

    Hazards: stall, not bypass
    --------------------------
    Every request but a NOP may write its bucket (a hit writes its counters), at D, four
    cycles after it read the bucket. A request waits at I while an older request on the same
    bucket is at R, B, C, M or D, so it reads the bucket only after that write: requests
    serialise in ``req`` order exactly as the model applies them one after the other. Two
    requests on one bucket back to back cost 5 idle cycles; other requests never wait. A packet
    racing a FLOW_ADD or FLOW_DELETE of its flow therefore sees the table before or after the
    change, whichever request entered ``req`` first, and its count lands in the entry it was
    forwarded by (or in none).

    Reset
    -----
    Block RAM keeps its contents through a reset. After reset the table writes every bucket
    empty, one per cycle (``initialising`` is high), before it issues a request: ``buckets``
    cycles.

    Backpressure
    ------------
    ``req.ready`` is the input queue's, a flip-flop. Requests are issued only with a place
    reserved in the response queue, so a stalled ``resp`` holds requests at I, never mid-pipeline.
    A place is given back the cycle after its response leaves.

    Parameters (keyword only)
    -------------------------
    buckets : int
        Buckets, a power of two.
    ways : int
        Ways per bucket, 1 to 16.
    tag_width : int
        Width of an opaque tag carried from request to response (0: no ``tag`` field).

    Members
    -------
    req : ``In(stream.Signature(request_layout))``
        ``op`` (:class:`LftOp`), ``key``, ``fid`` (ADD and DELETE), ``length`` (LOOKUP), ``tag``.
    resp : ``Out(stream.Signature(response_layout))``
        One per request, in request order: ``op``, ``status`` (:class:`LftStatus`), the
        request's ``key`` and ``tag``; ``fid``, ``packets``, ``bytes`` as the status says (zero
        otherwise); ``bucket`` and ``way`` where the entry is or was (``way`` is undefined
        where there is no entry, a MISS, a NOT_FOUND or a NOP).
    secret : ``In(128)``
        SipHash key (see :class:`~hdl.hash.siphash.FlowHash`). Change it only while the table
        is empty: entries stay where the old secret put them.
    stats : ``Out(stats_layout)``
        :data:`LFT_STATS` counters (32 bits, wrapping) and ``occupancy`` (valid entries).
    initialising : ``Out(1)``
        The table is being cleared after reset.

    Attributes
    ----------
    latency : int
        Cycles from a request's transfer to its response becoming valid, nothing waiting.
    storage : dict
        After elaboration: ``{"entries": Memory, "order": Memory}``, so a simulation can read
        the table (:meth:`unpack_bucket` decodes a word).
    issue_layout : Layout
        Layout of the register ``s_b`` (named so in the Verilog too), which holds in each cycle
        the request issued two cycles before, if ``valid``: the order in which the table
        applies requests, for a bench to run a model in.

    Raises
    ------
    ValueError
        If a parameter is out of its range.
    """

    RESPONSE_DEPTH = 8
    """Responses the output queue holds: covers the round trip from issue at full rate (6
    cycles to the response, 1 more until its place is given back)."""

    def __init__(self, *, buckets=256, ways=4, tag_width=0):
        if not _is_int(buckets) or buckets < 1 or buckets & (buckets - 1):
            raise ValueError(f"buckets must be a power of two, not {buckets!r}")
        if not _is_int(ways) or not 1 <= ways <= 16:
            raise ValueError(f"ways must be an integer from 1 to 16, not {ways!r}")
        if not _is_int(tag_width) or tag_width < 0:
            raise ValueError(f"tag_width must be a non-negative integer, not {tag_width!r}")
        self._buckets = buckets
        self._ways = ways
        self._tag_width = tag_width
        self._bucket_bits = ceil_log2(buckets)
        self._rank_bits = max(1, ceil_log2(ways))
        tag = {"tag": unsigned(tag_width)} if tag_width else {}
        self.entry_layout = data.StructLayout({
            "valid": 1, "key": FLOW_KEY.layout, "fid": FID.layout,
            "packets": PACKETS_WIDTH, "bytes": BYTES_WIDTH,
        })
        self.request_layout = data.StructLayout({
            "op": LftOp, "key": FLOW_KEY.layout, "fid": FID.layout, "length": LENGTH_WIDTH,
            **tag,
        })
        self.response_layout = data.StructLayout({
            "op": LftOp, "status": LftStatus, "key": FLOW_KEY.layout, "fid": FID.layout,
            "packets": PACKETS_WIDTH, "bytes": BYTES_WIDTH,
            "bucket": max(1, self._bucket_bits), "way": max(1, ceil_log2(ways)), **tag,
        })
        self.issue_layout = data.StructLayout({
            "valid": 1, "bucket": max(1, self._bucket_bits), "req": self.request_layout,
        })
        self.stats_layout = data.StructLayout({
            **{name: 32 for name in LFT_STATS},
            "occupancy": range(buckets * ways + 1),
        })
        super().__init__({
            "req": In(stream.Signature(self.request_layout)),
            "resp": Out(stream.Signature(self.response_layout)),
            "secret": In(128),
            "stats": Out(self.stats_layout),
            "initialising": Out(1),
        })
        self._hash = FoldedFlowHash(tag_width=self.request_layout.size)

    @property
    def buckets(self):
        return self._buckets

    @property
    def ways(self):
        return self._ways

    @property
    def tag_width(self):
        return self._tag_width

    @property
    def latency(self):
        return self._hash.latency + 9

    def unpack_bucket(self, entries_word, order_word):
        """``[(entry dict or None, rank)]`` per way of a bucket, from the two memory words
        (integers, as a simulation reads them from :attr:`storage`)."""
        size, rb = self.entry_layout.size, self._rank_bits
        ways = []
        for w in range(self._ways):
            raw = (entries_word >> (w * size)) & ((1 << size) - 1)
            fields = {name: (raw >> f.offset) & ((1 << f.width) - 1)
                      for name, f in self.entry_layout}
            rank = (order_word >> (w * rb)) & ((1 << rb) - 1)
            ways.append((fields if fields["valid"] else None, rank))
        return ways

    def elaborate(self, platform):
        m = Module()
        W, E, RB = self._ways, self.entry_layout.size, self._rank_bits
        WB = max(1, ceil_log2(W))      # bits of a way number
        BB = self._bucket_bits

        # --- Hash, then a queue that cuts the ready path into issue ----------------------------

        # A two-entry queue in front of the hash: its ``ready`` and ``valid`` are flip-flops,
        # so neither the producer's valid (in the engine, an arbiter between two queues far
        # apart: 4 ns of wire each side of it) reaches the hash's credit count, nor the hash's
        # ready the producers. (A register slice there passed the ready through to the load
        # enable of its 450 flip-flops: 7 ns of wire.) The hash takes the payload into
        # registers and LUT RAM only, no adder, so the queue's LUT-RAM read may feed it.
        hasher = m.submodules.hash = self._hash
        in_q = m.submodules.request_queue = Queue(shape=self.request_layout, depth=2)
        wiring.connect(m, wiring.flipped(self.req), in_q.i)
        m.d.comb += [
            hasher.secret.eq(self.secret),
            hasher.i_stream.valid.eq(in_q.o.valid),
            hasher.i_stream.payload.key.eq(in_q.o.payload.key),
            hasher.i_stream.payload.tag.eq(in_q.o.payload),
            in_q.o.ready.eq(hasher.i_stream.ready),
        ]
        # Issue needs only a request's bucket and op (``head_q``); the whole request waits in a
        # queue of its own (``body_q``) and is read at R, the cycle after its issue, so that the
        # issue decision enables a dozen flip-flops, not the hundreds of a whole request (it
        # was the block's slowest net). Both take every request; ``body_q`` keeps each one
        # cycle longer (the head register, then R), hence its depth.
        head_layout = data.StructLayout({"bucket": max(1, BB), "op": LftOp})
        head_q = m.submodules.head_queue = Skid(shape=head_layout)
        body_q = m.submodules.body_queue = Queue(shape=self.request_layout, depth=4)
        both_ready = head_q.i.ready & body_q.i.ready
        hashed = hasher.o_stream.payload.tag
        m.d.comb += [
            head_q.i.valid.eq(hasher.o_stream.valid & both_ready),
            head_q.i.payload.bucket.eq(hasher.o_stream.payload.hash[:BB] if BB else 0),
            head_q.i.payload.op.eq(self.request_layout(hashed).op),
            body_q.i.valid.eq(hasher.o_stream.valid & both_ready),
            body_q.i.payload.eq(hashed),
            hasher.o_stream.ready.eq(both_ready),
        ]

        # --- Storage ---------------------------------------------------------------------------

        # A read meets a write to its bucket only when its data is not used: a request that may
        # write waits while its bucket is written (see *Hazards*), and a NOP, which may issue
        # meanwhile, answers zeros but for ``way``, which it leaves undefined; while clearing,
        # nothing issues. So ``no_rw_check``: Yosys would otherwise emulate old data on a clash
        # with a register and a mux per data bit (~1.7k of each at the default size) behind a
        # compare of the two addresses, whose read address crossed the die to it (11.9 ns of
        # wire at placement). Simulation still gives old data.
        entries = m.submodules.entries = memory.Memory(shape=unsigned(W * E),
                                                       depth=self._buckets, init=[],
                                                       attrs={"no_rw_check": 1})
        order = m.submodules.order = memory.Memory(shape=unsigned(W * RB),
                                                   depth=self._buckets, init=[],
                                                   attrs={"no_rw_check": 1})
        rd_e, rd_o = entries.read_port(), order.read_port()
        wr_e, wr_o = entries.write_port(granularity=E), order.write_port()
        self.storage = {"entries": entries, "order": order}

        resp_q = m.submodules.resp_queue = Queue(shape=self.response_layout,
                                                 depth=self.RESPONSE_DEPTH)
        wiring.connect(m, resp_q.o, wiring.flipped(self.resp))

        # --- I: issue --------------------------------------------------------------------------

        s_r, s_b, s_c, s_m, s_d = (Signal(self.issue_layout, name=f"s_{n}") for n in "rbcmd")
        # The request at I sits in a register, so that the RAMs' address comes straight from
        # flip-flops: it fans out to every block RAM of the table.
        head_valid = Signal()
        head = Signal(head_layout, name="head")
        # The head's bucket again, for the hazard compares, so that they do not hang on the net
        # that addresses every block RAM. Stored inverted: synthesis merges identical
        # flip-flops, and cannot see through the inversion.
        head_bucket_n = Signal(max(1, BB))

        clearing = Signal(init=1)
        clear_idx = Signal(max(1, BB))
        with m.If(clearing):
            m.d.sync += clear_idx.eq(clear_idx + 1)
            with m.If(clear_idx == self._buckets - 1):
                m.d.sync += [clearing.eq(0), clear_idx.eq(0)]
        m.d.comb += self.initialising.eq(clearing)
        # `clearing` after this edge: the write port's enables and data are chosen a cycle
        # ahead from it (see D). A flip-flop of its own (it is still set after the edge unless
        # this is the last bucket, `clear_idx` + 1 then), since Yosys makes it the sync reset
        # of hundreds of flip-flops across the die: a compare of `clear_idx` there was 13.9 ns.
        clearing_next = Signal(init=self._buckets > 1)
        m.d.sync += clearing_next.eq(clearing & (clear_idx + 2 < self._buckets))

        # Requests issued whose response has not left the response queue.
        outstanding = Signal(range(self.RESPONSE_DEPTH + 1))
        below_limit = Signal(init=1)     # outstanding != RESPONSE_DEPTH, as a flip-flop
        # The hazard of the request at I is worked out in the cycle before, into flip-flops,
        # for each request that may be at I then (the same one, or the next one behind it,
        # with or without this cycle's issue ahead of it), so that ``issue``, which loads the
        # head register, is a few LUT levels from flip-flops.
        hazard = Signal()
        issue = Signal()
        m.d.comb += [
            issue.eq(head_valid & ~clearing & ~hazard & below_limit),
            head_q.o.ready.eq(~head_valid | issue),
            rd_e.addr.eq(head.bucket),
            rd_o.addr.eq(head.bucket),
        ]
        with m.If(~head_valid | issue):
            m.d.sync += [head_valid.eq(head_q.o.valid), head.eq(head_q.o.payload),
                         head_bucket_n.eq(~head_q.o.payload.bucket)]

        def writes(s, bucket):
            return s.valid & (s.req.op != LftOp.NOP) & (s.bucket == bucket)

        def clash(request, ahead):
            """``request`` (a head layout view) would wait behind any of ``ahead``."""
            return (request.op != LftOp.NOP) & Cat(ahead).any()

        # Next cycle R, B, C, M, D hold: this cycle's issue (if any), then R, B, C, M. The
        # request that may load into the head is in one of the skid's two registers: both are
        # checked, from their flip-flops, and ``rd`` picks one at the end.
        ahead = (s_r, s_b, s_c, s_m)
        stay = clash(head, [writes(s, ~head_bucket_n) for s in ahead])
        after_issue, after_none = ([clash(nxt, [
            *([(head.op != LftOp.NOP) & (~head_bucket_n == nxt.bucket)] if issued else []),
            *(writes(s, nxt.bucket) for s in ahead)]) for nxt in head_q.ring]
            for issued in (True, False))
        # Each case is registered as it is, and the case (this cycle's issue, head) chooses
        # after the flip-flops, in front of ``issue`` rather than of the compares.
        rd = head_q.rd
        cases = Signal(data.StructLayout({"issue": 1, "stay": 1, "none": 1,
                                          "issued": 1, "held": 1}))
        m.d.sync += [cases.issue.eq(Mux(rd, *after_issue[::-1])), cases.stay.eq(stay),
                     cases.none.eq(Mux(rd, *after_none[::-1])),
                     cases.issued.eq(issue), cases.held.eq(head_valid)]
        m.d.comb += hazard.eq(Mux(cases.issued, cases.issue,
                                  Mux(cases.held, cases.stay, cases.none)))
        # A response counts as delivered a cycle after it leaves: the response queue's
        # handshake then reaches the count from a flip-flop (it sits at the far end of the
        # table from the issue logic). The count is high by one for that cycle, which can
        # only hold an issue back (see RESPONSE_DEPTH).
        delivered = Signal()
        m.d.sync += delivered.eq(resp_q.o.valid & resp_q.o.ready)
        # `issue` comes last (see after_step), and the limit it checks is a flip-flop.
        m.d.sync += [
            outstanding.eq(after_step(outstanding, issue, delivered)),
            below_limit.eq(after_step(outstanding, issue, delivered,
                                      lambda n: n != self.RESPONSE_DEPTH)),
        ]
        # R holds the op only (the hazard checks need no more); B gets the whole request.
        m.d.sync += [s_r.valid.eq(issue), s_r.bucket.eq(~head_bucket_n), s_r.req.op.eq(head.op)]
        m.d.comb += body_q.o.ready.eq(s_r.valid)
        m.d.sync += [s_b.valid.eq(s_r.valid), s_b.bucket.eq(s_r.bucket),
                     s_b.req.eq(body_q.o.payload)]
        m.d.sync += [s_c.eq(s_b), s_m.eq(s_c), s_d.eq(s_m)]

        # --- R: the block RAM outputs, registered for B ----------------------------------------

        b_word = Signal(W * E)
        b_order = Signal(W * RB)
        m.d.sync += [b_word.eq(rd_e.data), b_order.eq(rd_o.data)]

        def way_entry(word, w):
            return self.entry_layout(word[w * E:(w + 1) * E])

        # --- B: first half of the compare; what a hit or delete of each way would need ---------

        cmp = m.submodules.compare = KeyCompare(width=FLOW_KEY.width, count=W)
        m.d.comb += cmp.key.eq(s_b.req.key)
        for w in range(W):
            m.d.comb += [cmp.stored[w].eq(way_entry(b_word, w).key),
                         cmp.valid[w].eq(way_entry(b_word, w).valid)]
        c_word = Signal(W * E)
        c_fid_eq = Signal(W)
        c_packets = [Signal(PACKETS_WIDTH, name=f"c_packets{w}") for w in range(W)]
        c_bytes = [Signal(BYTES_WIDTH, name=f"c_bytes{w}") for w in range(W)]
        m.d.sync += c_word.eq(b_word)
        for w in range(W):
            e = way_entry(b_word, w)
            m.d.sync += [
                c_fid_eq[w].eq(e.fid.as_value() == s_b.req.fid.as_value()),
                c_packets[w].eq(e.packets + 1),
                c_bytes[w].eq(e.bytes + s_b.req.length),
            ]

        # Everything that does not depend on which way matches is worked out here too, so that
        # C only chooses: the way an ADD would take and the install order after it, which way
        # is the victim of a full bucket, and the install order after deleting each way.
        b_ways = [way_entry(b_word, w) for w in range(W)]
        b_ranks = [b_order[w * RB:(w + 1) * RB] for w in range(W)]
        b_valid = Cat(e.valid for e in b_ways)
        b_free = first_one(~b_valid)
        b_oldest = Cat((r == 0) & e.valid for r, e in zip(b_ranks, b_ways))
        b_count = popcount(b_valid)
        c = Signal(data.StructLayout({
            "any_free": 1, "free": W, "oldest": W, "free_way": WB, "oldest_way": WB,
            "order_install": W * RB, "order_evict": W * RB,
            **{f"order_delete{w}": W * RB for w in range(W)},
        }), name="c")
        m.d.sync += [
            c.any_free.eq(~b_valid.all()), c.free.eq(b_free), c.oldest.eq(b_oldest),
            c.free_way.eq(select(b_free, [C(w, WB) for w in range(W)])),
            c.oldest_way.eq(select(b_oldest, [C(w, WB) for w in range(W)])),
            c.order_install.eq(Cat(Mux(b_free[w], b_count, r)[:RB]
                                   for w, r in enumerate(b_ranks))),
            c.order_evict.eq(Cat(Mux(b_oldest[w], W - 1, r - 1)[:RB]
                                 for w, r in enumerate(b_ranks))),
            *(getattr(c, f"order_delete{w}").eq(
                Cat(Mux(r > b_ranks[w], r - 1, r)[:RB] for r in b_ranks)) for w in range(W)),
        ]

        # --- C: the second half of the compare, into a register -----------------------------

        # The compare's result decides hundreds of bits at M: finishing the compare in the same
        # cycle put its AND tree in series with that fan-out, too slow for 125 MHz (17 ns in
        # the flow engine). Meanwhile every value M may choose is worked out here, per way
        # (what the answer is if that way matches) and for no match, so that at M each bit is
        # an AND-OR of ``match`` with registered values: two LUT levels behind its fan-out.
        def later(value, name):
            held = Signal.like(value, name=name)
            m.d.sync += held.eq(value)
            return held

        # The op, decoded a stage early: each flag steers (or clears) hundreds of bits here.
        op = s_c.req.op
        is_lookup, is_add, is_delete = (later(s_b.req.op == code, f"c_is_{code.name.lower()}")
                                        for code in (LftOp.LOOKUP, LftOp.ADD, LftOp.DELETE))
        c_ways = [way_entry(c_word, w) for w in range(W)]
        # The victim of a full bucket is selected here, by the registered one-hot ``oldest``
        # from ``c_word``: selected at B, each of its hundred bits waited for the ranks'
        # compare behind ``b_order`` (that net, from the order RAM's register to selects
        # spread over the LFT, was 12.97 ns at placement).
        victim = self.entry_layout(select(c.oldest, [e.as_value() for e in c_ways]))
        # A matching way counts only if the request may act on it: a DELETE needs its FID too.
        ok = Cat(is_lookup | is_add | (is_delete & c_fid_eq[w]) for w in range(W))
        per_way = data.StructLayout({"fid": FID.layout, "packets": PACKETS_WIDTH,
                                     "bytes": BYTES_WIDTH, "order": W * RB})
        if_way = [Signal(per_way, name=f"c_if_way{w}") for w in range(W)]
        for w, e in enumerate(c_ways):
            m.d.comb += if_way[w].eq(Cat(
                Mux(is_add, s_c.req.fid.as_value(), e.fid.as_value()),
                Mux(is_lookup, c_packets[w], e.packets),
                Mux(is_lookup, c_bytes[w], e.bytes),
                Mux(is_delete, getattr(c, f"order_delete{w}"), 0)))
        evict = is_add & ~c.any_free
        if_none = Signal(data.StructLayout({
            "fid": FID.layout, "packets": PACKETS_WIDTH, "bytes": BYTES_WIDTH,
            "write": W, "order": W * RB, "way": WB, "evict": 1, "status": LftStatus,
        }), name="c_if_none")
        m.d.comb += [
            if_none.fid.eq(Mux(is_add, Mux(c.any_free, s_c.req.fid.as_value(),
                                           victim.fid.as_value()), 0)),
            if_none.packets.eq(Mux(evict, victim.packets, 0)),
            if_none.bytes.eq(Mux(evict, victim.bytes, 0)),
            if_none.write.eq(Mux(is_add, Mux(c.any_free, c.free, c.oldest), 0)),
            if_none.order.eq(Mux(c.any_free, c.order_install, c.order_evict)),
            if_none.way.eq(Mux(is_add, Mux(c.any_free, c.free_way, c.oldest_way), 0)),
            if_none.evict.eq(evict),
        ]
        status_hit = Signal(LftStatus, name="c_status_hit")
        with m.Switch(op):
            with m.Case(LftOp.LOOKUP):
                m.d.comb += [status_hit.eq(LftStatus.HIT), if_none.status.eq(LftStatus.MISS)]
            with m.Case(LftOp.ADD):
                m.d.comb += [status_hit.eq(LftStatus.UPDATED),
                             if_none.status.eq(Mux(c.any_free, LftStatus.INSTALLED,
                                                   LftStatus.EVICTED))]
            with m.Case(LftOp.DELETE):
                m.d.comb += [status_hit.eq(LftStatus.DELETED),
                             if_none.status.eq(LftStatus.NOT_FOUND)]

        match = later(cmp.match, "m_match")     # one way at most: keys are unique in a bucket
        # The way the request acts on: a match it may act on. It selects that way's answer
        # at M (``ok`` is not applied to the answers themselves: as a clear of hundreds of bits
        # at C it was a slowest path).
        acts = later(cmp.match & ok, "m_acts")
        if_way = [later(v, f"m_if_way{w}") for w, v in enumerate(if_way)]
        if_none = later(if_none, "m_if_none")
        status_hit = later(status_hit, "m_status_hit")
        m_is_add = later(is_add, "m_is_add")
        m_is_delete = later(is_delete, "m_is_delete")

        # --- M: the decision -------------------------------------------------------------------

        # Each field is the matching way's value, or the no-match value when no way matches.
        # ``found``: a way matches and the request may act on it (for a DELETE, only with its
        # FID); a DELETE that matches another FID writes nothing and answers NOT_FOUND, with
        # zeros, but the way of the match, as before.
        hit = match.any()
        found = acts.any()

        def choose(field):
            return select(acts, [getattr(v, field) for v in if_way]) | \
                Mux(hit, 0, getattr(if_none, field))

        # The write port's enables, the order word and the entry's valid bit are registered
        # with the clear already applied (``clearing_next``), so that each block RAM's write
        # inputs come from flip-flops: a LUT of ``clearing`` in front of them was 12 ns of
        # wire at placement, from the flip-flop to the LUT and on to RAMs across the die.
        d = Signal(data.StructLayout({
            "write": W, "evict": 1, "order_write": 1, "order": W * RB, "keep": 1,
            "status": LftStatus,
            "fid": FID.layout, "packets": PACKETS_WIDTH, "bytes": BYTES_WIDTH, "way": WB,
        }), name="d", init={"write": (1 << W) - 1, "order_write": 1})  # the first clear
        m.d.sync += [
            d.write.eq(Mux(clearing_next, ~0,
                           Mux(s_m.valid, acts | Mux(hit, 0, if_none.write), 0))),
            d.evict.eq(~hit & if_none.evict),
            d.order_write.eq(clearing_next |
                             (s_m.valid & Mux(found, m_is_delete, ~hit & m_is_add))),
            d.order.eq(Mux(clearing_next, 0, choose("order"))),
            d.keep.eq((s_m.req.op != LftOp.DELETE) & ~clearing_next),
            d.status.eq(Mux(found, status_hit, if_none.status)),
            d.fid.eq(choose("fid")), d.packets.eq(choose("packets")),
            d.bytes.eq(choose("bytes")),
            d.way.eq(select(match, [C(w, WB) for w in range(W)]) | Mux(hit, 0, if_none.way)),
        ]

        # --- D: writes, statistics, response ---------------------------------------------------

        # The entry written: the request's key; FID and counts as answered, but for an eviction
        # (which answers the victim's) the request's FID and zero counts; valid unless deleted.
        # The write port's address and data come from flip-flops through one LUT at most: the
        # address of the bucket being cleared or of D's request is chosen a cycle early, into
        # ``w_addr``, and clearing writes this entry with its valid bit cleared (the other fields
        # of a way that is not valid are never read), so that ``clearing`` does not reach each
        # of the ``ways * 433`` data bits of the write port, spread over dozens of block RAMs.
        w_addr = Signal(max(1, BB))
        m.d.sync += w_addr.eq(Mux(clearing_next, clear_idx + 1, s_m.bucket))
        entry = Signal(self.entry_layout)
        m.d.comb += [
            entry.valid.eq(d.keep),
            entry.key.eq(s_d.req.key),
            entry.fid.eq(Mux(d.evict, s_d.req.fid.as_value(), d.fid.as_value())),
            entry.packets.eq(Mux(d.evict, 0, d.packets)),
            entry.bytes.eq(Mux(d.evict, 0, d.bytes)),
        ]
        m.d.comb += [
            wr_e.addr.eq(w_addr), wr_e.data.eq(Cat(entry.as_value() for _ in range(W))),
            wr_e.en.eq(d.write),
            wr_o.addr.eq(w_addr), wr_o.data.eq(d.order),
            wr_o.en.eq(d.order_write),
        ]

        resp = resp_q.i.payload
        m.d.comb += [
            resp_q.i.valid.eq(s_d.valid),
            resp.op.eq(s_d.req.op), resp.status.eq(d.status), resp.key.eq(s_d.req.key),
            resp.fid.eq(d.fid), resp.packets.eq(d.packets), resp.bytes.eq(d.bytes),
            resp.bucket.eq(s_d.bucket), resp.way.eq(d.way),
        ]
        if self._tag_width:
            m.d.comb += resp.tag.eq(s_d.req.tag)

        counted = {
            "lookups": (LftStatus.HIT, LftStatus.MISS), "hits": (LftStatus.HIT,),
            "misses": (LftStatus.MISS,), "adds": (LftStatus.INSTALLED, LftStatus.EVICTED),
            "updates": (LftStatus.UPDATED,), "deletes": (LftStatus.DELETED,),
            "evictions": (LftStatus.EVICTED,), "delete_misses": (LftStatus.NOT_FOUND,),
        }
        for name, statuses in counted.items():
            counter = getattr(self.stats, name)
            with m.If(s_d.valid & Cat(d.status == s for s in statuses).any()):
                m.d.sync += counter.eq(counter + 1)
        with m.If(s_d.valid & (d.status == LftStatus.INSTALLED)):
            m.d.sync += self.stats.occupancy.eq(self.stats.occupancy + 1)
        with m.Elif(s_d.valid & (d.status == LftStatus.DELETED)):
            m.d.sync += self.stats.occupancy.eq(self.stats.occupancy - 1)
        return m

