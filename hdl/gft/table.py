"""The global flow table (GFT) in hardware: the top that wires hash, RAMs, compare, stash,
relocation and aging into one in-order request pipeline."""

from amaranth.hdl import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fanout import field_mask, gated_chunk, register_copies
from ..hash.siphash import FlowHash
from ..level import after_step
from ..onehot import first_one, second_one, select
from ..wire import FLOW_KEY
from .aging import AgingScan, expired, expiry_window
from .bucket import Placement, lowest
from .compare import KeyCompare
from .layouts import (ENTRY_PART, NO_ENTRY, STAT_COUNTERS, EntryState, GftOp, GftParams,
                      GftStatus, entry_part)
from .queue import CreditQueue, Queue, Skid
from .relocate import Relocator
from .stash import Stash


__all__ = ["GlobalFlowTable"]


_V4_MAPPED = 0xFFFF  # address bits [127:32] of an IPv4-mapped address


class GlobalFlowTable(wiring.Component):
    """The GFT: lookup, lookup-or-reserve, masked update and delete by full flow key, one
    request per clock, with background aging. Bit for bit the rules of :mod:`sim.model.gft`
    (which bucket, which way, which relocation path, which stash slot, the aging order), so
    a scoreboard compares not only results but locations.

    Organisation
    ------------
    Two sub-tables of ``buckets // 2`` buckets, each ``ways`` :class:`~amaranth.lib.memory.Memory`
    instances (one per way, an entry of :attr:`GftParams.entry` per word) read at the same
    address as one bucket, each with a registered (non-transparent) read port and a write
    port. A key's first candidate is in sub-table 0 (``hash & (half-1)``), its second in sub-table 1
    (``(hash >> 32) & (half-1)``), so both are read in the same cycle and no port is shared.
    Beside them: the :class:`~hdl.gft.stash.Stash` (registers), a *full* bitmap (one bit per
    bucket, registers, read at issue; and a copy in a block RAM per sub-table that the
    relocation search reads), and the statistics counters. Every entry stores its full key
    (320 bits, or 128 in ``ipv4`` mode) and its two in-sub-table bucket indexes.

    Pipeline
    --------
    ``req`` -> :class:`~hdl.hash.siphash.FlowHash` (33 cycles, its ``latency``; the whole
    request rides as its tag) -> a 2-entry issue buffer that cuts the ready path (the hash
    and op in a :class:`~hdl.gft.queue.Skid`, the rest of the request in a
    :class:`~hdl.gft.queue.Queue` beside it, which hands it to R a cycle after issue) ->
    then, one cycle each:

    I (issue)
        Hazard and credit checks; the read addresses are chosen. The bucket hazard of the
        head was worked out a cycle earlier into a flip-flop, so issue is a few LUT levels.
    A (address)
        The read addresses, registered at issue, go to the RAMs, each RAM from a copy of the
        register of its own (:func:`~hdl.fanout.register_copies`): the RAMs are a hundred
        block RAMs across the die, and the wire to them takes most of a cycle.
    R
        Block RAM output; the request joins from the issue buffer's queue.
    T (transport)
        Block RAM output registered as it is, by the RAMs; the stash is probed for live
        slots that name the op's buckets.
    B
        Registered again, with the way that the write in W (below) landed at the read edge
        forwarded into it; first half of the full-key compare over ``2 * ways`` ways and the
        stash (:class:`~hdl.gft.compare.KeyCompare`); an aging step finds its expired ways
        and every stash slot's age is judged (a vector, selected at M); placement of a new
        entry (:class:`~hdl.gft.bucket.Placement`) and refusal are judged.
    M (match)
        Second half of the compare; whether it hit and the one-hot pick (a key is stored at
        most once), or the aging step's, registered; of the slots the probe found naming
        the bucket the op would free (the hit's sub-table, or the one the aging step
        examines), the lowest two, minus those the ops then at D take, become one-hot
        stash-return candidates; the key and buckets an aging step reports are selected.
        So C starts from flip-flops, and only a hit's fields (99 of an entry's 437 bits)
        travel from M to C.
    C
        The picked entry's location (priority encoders) and fields (one-hot AND-OR); the
        two stash-return candidates' contents, and which one a free returns (the second
        when the op one ahead takes the first at its commit: a registered flag says so);
        and the whole decision (status, which write, where, which counters), registered as
        a *plan*.
    D (commit)
        Every state change of the op at one clock edge, steered by the registered plan:
        stash write (one-hot slot enables), *full* bit, counters, the response into an 8-deep
        output queue, and the RAM way write into the register ``wq``. No decision is taken
        here, so nothing deep sits in front of the stash registers (timing).
    W (write-behind)
        ``wq`` drives the RAMs' write ports straight from flip-flops, since the bucket RAMs
        spread over the die. The RAM holds the new entry a cycle later than the op's
        commit; an op reading that bucket in that cycle gets it by forwarding at B, so the
        extra cycle is invisible to the hazard rules and to the latency. The *full* bit is
        written from a register too (``fq``), and the slow-path check at I counts a fill
        still pending there (and one pending when the request arrived).

    Latency: a request transferred on ``req`` at edge *t* is offered on ``resp`` from edge
    *t + 42* (the hash's 33, then 9) when nothing waits, for every op and outcome except a
    RESERVE that needs the slow path (below). Throughput: one request per clock.

    Hazards (stall, not bypass)
    ---------------------------
    An op reads its two buckets at the end of A and writes at D, six cycles later. A request
    is held at I while an older RESERVE, UPDATE or DELETE that shares one of its buckets is
    between A and C (same key implies same buckets), so it reads only after that write (the
    one committing as it issues reaches it by forwarding at B): back-to-back ops on one
    bucket cost up to 6 stall cycles, and a second RESERVE of a key, even on the next clock,
    HITs the first one's entry. LOOKUPs never write, so they never hold anything up.
    The stash needs no extra rule: an op only ever touches the stash entries of its own key
    (compare, update, delete) or of keys whose candidates include the bucket it frees (stash
    return), and both cases share a bucket with any op on those keys.

    Slow path (relocation)
    ----------------------
    A RESERVE whose two buckets are both full per the bitmap at I (or filled by the commit at
    that edge) might need the relocation search; nothing is issued behind it until it has
    committed. If at D it misses, the
    :class:`~hdl.gft.relocate.Relocator` runs the model's search, moves and stash insert with
    the RAM ports while the pipeline stays empty, then the response goes out and issue
    resumes: (2 + (9 + ways) * expansions + 8 * moves + 2) extra cycles, 574 worst case with
    the defaults. Such a RESERVE that hits (common at high load) only costs 7 idle issue
    slots.

    Aging
    -----
    In cycles when no request is waiting at I, the :class:`~hdl.gft.aging.AgingScan` issues a
    scan step down the same pipeline (one in flight at a time): a stash slot, or a bucket from
    a given way. At D it frees the first expired TENTATIVE entry (``timeout < (now - ts) mod
    2**T < 2**(T-1)``), pulls back a stash entry into the freed way exactly like a delete, and
    reports the entry on ``aged``. A request that shares a bucket with an in-flight scan step
    cancels the step (it is retried later) instead of waiting: aging never stalls a request.
    A request issued while the step is between A and C cancels it as it moves on; one
    issued while it is at D reads after its commit. A step is issued only while ``aged`` has
    room, so a slow consumer slows aging only.

    Parameters (keyword only)
    -------------------------
    buckets, ways, stash, move_budget, key_mode, timestamp_bits, tag_width
        See :class:`~hdl.gft.layouts.GftParams`, which validates them (``ValueError``).

    Members
    -------
    req : ``In(stream.Signature(params.request))``
        Requests (:class:`~hdl.gft.layouts.GftOp`). ``ready`` falls only when the hash
        pipeline and the issue buffer are full, i.e. when I holds a request.
    resp : ``Out(stream.Signature(params.response))``
        One response per request, in request order: ``status``
        (:class:`~hdl.gft.layouts.GftStatus`), the entry fields after the op (before it for
        DELETE; zero on MISS, NOT_FOUND, FULL, REFUSED), ``loc`` (``stash`` and slot in
        ``way`` with ``bucket`` 0, or global ``bucket`` and ``way``) and the request's
        ``tag``. Backpressure holds new requests at I once 8 responses are pending.
    aged : ``Out(stream.Signature(params.aged))``
        Every entry the scan frees: its key, fields, former location, the ``now`` it was judged
        at, and ``seq``, the number of responses committed before it (mod 2**16), which places
        the free in the response order.
    secret : ``In(128)``
        SipHash key (see :class:`~hdl.hash.siphash.FlowHash`). Change it only while the table
        is empty: entries stay where the old secret put them.
    now : ``In(timestamp_bits)``
        Current time, in the caller's ticks; sampled at D for timestamps, and at R for aging
        (registered with the window of expired timestamps worked out from it: the buckets'
        ages are judged with it as T hands them to B, the stash slots' at B with a copy).
    timeout : ``In(timestamp_bits)``
        Age beyond which a TENTATIVE entry is freed; ``2**(T-1) - 1`` or more disables aging.
    stats : ``Out(params.stats)``
        Counters (:data:`~hdl.gft.layouts.STAT_COUNTERS`), ``occupancy`` (live entries) and
        ``stash_used``, registered. The counters and ``occupancy`` change at the edge after
        the commit they count (the one that puts its response in the queue), but for
        ``relocations``, which counts the moves at the Relocator's ``done``, a cycle before
        its answer is queued.
    initialising : ``Out(1)``
        High for ``buckets // 2`` cycles after power-up and after every reset, while the table
        writes every bucket empty (block RAM keeps its contents through a reset; the bitmap,
        stash and counters do not). Requests are taken meanwhile and wait at I.

    Attributes
    ----------
    params : GftParams
    storage : dict
        After elaboration: ``{"rams": [[way 0, way 1, ...] of sub-table 0, [...] of sub-table 1],
        "stash": Stash, "full": [(flip-flops, Memory) of sub-table 0, (...) of 1]}``, so a
        simulation can read the whole table (``ctx.get(rams[s][w].data[i])``,
        ``ctx.get(stash.slots)``) and both copies of the *full* bitmap.
    """

    RESPONSE_DEPTH = 9
    """Responses the output queue holds; a request is issued only with a free place reserved
    for its response, and 9 covers the 9-cycle round trip of a place at full rate (issue,
    A to D, the read-out, the credit's flip-flop): with 8 a lookup a clock no longer
    holds."""

    def __init__(self, *, buckets=1024, ways=4, stash=8, move_budget=3, key_mode="dual",
                 timestamp_bits=16, tag_width=8):
        try:
            self.params = p = GftParams(buckets=buckets, ways=ways, stash=stash,
                                        move_budget=move_budget, key_mode=key_mode,
                                        timestamp_bits=timestamp_bits, tag_width=tag_width)
        except ValueError:
            # A rejected construction is not an elaboratable left unused: no warning for it
            # when it is collected (as hdl.fpga.tops._discard does for a discarded parent).
            self._MustUse__used = True
            raise
        super().__init__({
            "req": In(stream.Signature(p.request)),
            "resp": Out(stream.Signature(p.response)),
            "aged": Out(stream.Signature(p.aged)),
            "secret": In(128),
            "now": In(timestamp_bits),
            "timeout": In(timestamp_bits),
            "stats": Out(p.stats),
            "initialising": Out(1),
        })

    # --- Key forms ---------------------------------------------------------------------------

    def _stored_key(self, key):
        """(storable, stored form) of a FLOW_KEY view."""
        if self.params.key_mode == "dual":
            return C(1, 1), key.as_value()
        storable = (key.src_addr[32:] == _V4_MAPPED) & (key.dst_addr[32:] == _V4_MAPPED)
        return storable, Cat(key.src_addr[:32], key.dst_addr[:32], key.src_port, key.dst_port,
                             key.proto, key.zone)

    def _flow_key(self, m, stored):
        """FLOW_KEY view of a stored key view (IPv4 addresses mapped back to IPv6)."""
        if self.params.key_mode == "dual":
            return stored
        key = Signal(FLOW_KEY.layout, name="ipv4_flow_key")
        m.d.comb += [
            key.src_addr.eq(Cat(stored.src_addr, C(_V4_MAPPED, 96))),
            key.dst_addr.eq(Cat(stored.dst_addr, C(_V4_MAPPED, 96))),
            key.src_port.eq(stored.src_port), key.dst_port.eq(stored.dst_port),
            key.proto.eq(stored.proto), key.zone.eq(stored.zone),
        ]
        return key

    # --- Elaboration -------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        p = self.params
        W, S, IB = p.ways, max(1, p.stash), p.index_bits

        # --- Hash and issue buffer -----------------------------------------------------------

        hasher = m.submodules.hash = FlowHash(tag_width=p.request.size)
        m.d.comb += [
            hasher.secret.eq(self.secret),
            hasher.i_stream.valid.eq(self.req.valid),
            hasher.i_stream.payload.key.eq(self.req.payload.key),
            hasher.i_stream.payload.tag.eq(self.req.payload),
            self.req.ready.eq(hasher.i_stream.ready),
        ]
        # The issue buffer holds two requests in two parts that move in step (the same
        # handshakes, so the same level): what the issue logic looks at (the hash and the op)
        # in a `Skid`, whose registers it can see, and the rest of the request in a `Queue`,
        # whose LUT RAM is written in every cycle. The skid's registers load on its write
        # pointer and level, and with the whole request in them that load enable reached
        # ~500 flip-flops spread with their readers (744 failing endpoints at a13292a).
        # The queue gives up a request a cycle after it issues, straight into R (nothing at A
        # reads it), so its read pointers move on a flip-flop and not on the issue decision,
        # which reached them across the die (14.9 ns at 362f863). It then holds one request
        # more than the skid: 3.
        arriving = Signal(p.request)
        m.d.comb += arriving.eq(hasher.o_stream.payload.tag)
        head_layout = data.StructLayout({"hash": 64, "op": GftOp})
        skid = m.submodules.skid = Skid(shape=head_layout)
        req_q = m.submodules.req_queue = Queue(shape=p.request, depth=3)
        m.d.comb += [
            skid.i.valid.eq(hasher.o_stream.valid),
            skid.i.payload.hash.eq(hasher.o_stream.payload.hash),
            skid.i.payload.op.eq(arriving.op),
            req_q.i.valid.eq(hasher.o_stream.valid),
            req_q.i.payload.eq(arriving),
            hasher.o_stream.ready.eq(skid.i.ready),
        ]

        def candidates(hash_value):
            """(i1, i2): the bucket indexes in sub-table 0 and 1 of a 64-bit hash."""
            if p.half == 1:
                return C(0, 1), C(0, 1)
            return hash_value[:IB], hash_value[32:32 + IB]

        # --- Storage -------------------------------------------------------------------------

        # One RAM per way of each sub-table, so that each has an address register of its own
        # (see A below). Read ports are not transparent, and what a read returns where a write
        # lands at the same edge is never used: B forwards the whole way written instead
        # (`fwd_en`, the very condition of a clash: see T and B). So synthesis may leave a
        # clash undefined (`no_rw_check`): asked for the old data, Yosys delayed every write
        # by a cycle and put a bypass select, behind an address compare, between each RAM
        # and its T register (14.67 ns at placement at 0d3b8da, the table's slowest path).
        # The simulator still returns the old data, which B then discards.
        rams = [[memory.Memory(shape=p.entry, depth=p.half, init=[],
                               attrs={"no_rw_check": 1}) for _ in range(W)]
                for _ in range(2)]
        for s in range(2):
            for w in range(W):
                m.submodules[f"ram{s}_way{w}"] = rams[s][w]
        rd = [[ram.read_port() for ram in rams[s]] for s in range(2)]
        wr = [[ram.write_port() for ram in rams[s]] for s in range(2)]
        full = [Signal(p.half, name=f"full{s}") for s in range(2)]

        st = m.submodules.stash = Stash(p)
        # For inspection in simulation (tests read the whole table through these).
        # `ports`: each RAM's (read port, write port), for tests that make a read undefined
        # where it meets a write (see `no_rw_check` above), the buckets' by sub-table and way,
        # then the bitmap copies' by sub-table.
        self.storage = {"rams": rams, "stash": st, "full": [],
                        "ports": [list(zip(rd[s], wr[s])) for s in range(2)]}
        aging = m.submodules.aging = AgingScan(p)
        # The Relocator's read address goes through the A registers too, and it takes the
        # buckets at M: five cycles to data (see the Relocator's words at D).
        reloc = m.submodules.relocator = Relocator(p, read_latency=5, full_latency=2)
        resp_q = m.submodules.resp_queue = CreditQueue(shape=p.response,
                                                         depth=self.RESPONSE_DEPTH)
        aged_q = m.submodules.aged_queue = Queue(shape=p.aged, depth=2)
        wiring.connect(m, resp_q.o, wiring.flipped(self.resp))
        wiring.connect(m, aged_q.o, wiring.flipped(self.aged))

        stats = Signal(p.stats)
        m.d.comb += [self.stats.eq(stats), self.stats.stash_used.eq(st.used)]
        resp_count = Signal(16)

        # --- Pipeline records ----------------------------------------------------------------

        op_layout = data.StructLayout({
            "valid": 1,
            "scan": 1,          # an aging step, not a request
            "scan_stash": 1,    # ... of a stash slot (else of a bucket)
            "writer": 1,        # a request that may write: RESERVE, UPDATE, DELETE
            "maybe_slow": 1,    # a RESERVE whose buckets were both full at I
            "t1": 1, "t2": 1,   # touches bucket i1 of sub-table 0 / i2 of sub-table 1
            "i1": IB, "i2": IB,
            "slot": p.slot_bits,
            "way": p.way_bits,  # aging: first way to examine
            "req": p.request,
        })
        s0, s1, s2, s3, s4, s5, s6 = (Signal(op_layout, name=f"s{k}") for k in range(7))
        stages = (s0, s1, s2, s3, s4, s5, s6)       # A, R, T, B, M, C, D
        # An op in one of these has read its buckets but not yet committed: the window of the
        # bucket hazard and of the aging step's cancel.
        before_d = stages[:-1]

        def touches(s, t1, t2, i1, i2):
            return s.valid & ((s.t1 & t1 & (s.i1 == i1)) | (s.t2 & t2 & (s.i2 == i2)))

        # --- I: issue ------------------------------------------------------------------------

        head = skid.o.payload
        head_valid = skid.o.valid
        h_i1, h_i2 = candidates(head.hash)

        credits = Signal(range(self.RESPONSE_DEPTH + 1), init=self.RESPONSE_DEPTH)
        has_credit = Signal(init=1)      # credits != 0, as a flip-flop (see the credits below)
        scan_inflight = Signal()

        # Block RAM keeps its contents through a reset, but the full bitmap, the stash and the
        # counters do not, and they must agree with the RAMs. So after power-up and after every
        # reset the table writes every bucket empty, one per cycle, before it issues anything.
        clearing = Signal(init=1)
        clear_idx = Signal(range(p.half))
        with m.If(clearing):
            m.d.sync += clear_idx.eq(clear_idx + 1)
            with m.If(clear_idx == p.half - 1):
                m.d.sync += [clearing.eq(0), clear_idx.eq(0)]
        m.d.comb += self.initialising.eq(clearing)

        blocked = Signal()
        m.d.comb += blocked.eq(clearing | reloc.busy |
                               Cat(s.valid & s.maybe_slow for s in stages).any())

        # The bucket hazard of the request at the head is worked out a cycle ahead, into
        # flip-flops, for each request that can be at the head then (the same one, the next one
        # in the skid buffer, or the one arriving from the hash), behind what A to C will hold
        # then: this cycle's issue and A to M. So the issue decision, which loads A and
        # pops the skid buffer, is a few LUT levels from flip-flops.
        # Each case is worked out for either skid register at the head, and `skid.rd` (which
        # also steers the whole request into R) picks one after the flip-flops.
        req_waits = Signal()
        head_writer = head_valid & (head.op != GftOp.LOOKUP)

        def waits_next(hash_value, issued=None):
            """Whether a request hashed to ``hash_value`` waits behind A to M and, when
            ``issued`` (a skid register) issues this cycle, behind it at A."""
            i1, i2 = candidates(hash_value)
            ahead = [touches(s, 1, 1, i1, i2) & s.writer for s in before_d[:-1]]
            if issued is not None:
                o1, o2 = candidates(issued.hash)
                ahead.append((issued.op != GftOp.LOOKUP) & ((o1 == i1) | (o2 == i2)))
            return Cat(ahead).any()

        incoming = hasher.o_stream.payload.hash
        ring = skid.ring
        # The next head: the other skid register if it holds one, else the arriving request.
        next_if_issue = [Mux(skid.held[1], waits_next(ring[1 - k].hash, ring[k]),
                             waits_next(incoming, ring[k])) for k in range(2)]
        same_if_not = [waits_next(ring[k].hash) for k in range(2)]
        issue_req = Signal()
        # Each case is registered as it is, and the case (this cycle's issue, head, `rd`)
        # chooses after the flip-flops: in front of the issue decision, not of the compares.
        waits_cases = Signal(data.StructLayout({
            "if_issue": 2, "if_not": 2, "incoming": 1, "issued": 1, "held": 1, "rd": 1}))
        m.d.sync += [
            waits_cases.if_issue.eq(Cat(next_if_issue)), waits_cases.if_not.eq(Cat(same_if_not)),
            waits_cases.incoming.eq(waits_next(incoming)), waits_cases.issued.eq(issue_req),
            waits_cases.held.eq(head_valid), waits_cases.rd.eq(skid.rd),
        ]
        w = waits_cases
        m.d.comb += req_waits.eq(Mux(w.issued, w.if_issue.bit_select(w.rd, 1),
                                     Mux(w.held, w.if_not.bit_select(w.rd, 1), w.incoming)))
        m.d.comb += [
            issue_req.eq(head_valid & ~req_waits & ~blocked & has_credit),
            skid.o.ready.eq(issue_req),
        ]
        req_issued = Signal()
        m.d.sync += req_issued.eq(issue_req)
        m.d.comb += req_q.o.ready.eq(req_issued)

        target = aging.target
        # The stash slot an aging step would examine, copied into a register every cycle (a
        # mux over every slot in front of the issue decision is too deep), and usable only
        # when neither the stash nor the cursor changed at the edge that copied it: a stash
        # step then issues a cycle later than it could, a bucket step never does.
        scan_slot = Signal(data.StructLayout({"live": 1, "i1": IB, "i2": IB}))
        scan_slot_ok = Signal()
        m.d.sync += [
            scan_slot.live.eq(st.slots[target.slot].state != EntryState.INVALID),
            scan_slot.i1.eq(st.slots[target.slot].i1), scan_slot.i2.eq(st.slots[target.slot].i2),
        ]
        scan_live_slot = scan_slot.live
        scan_t1 = Mux(target.stash, scan_live_slot, target.sub == 0)
        scan_t2 = Mux(target.stash, scan_live_slot, target.sub == 1)
        scan_i1 = Mux(target.stash, scan_slot.i1, target.idx)
        scan_i2 = Mux(target.stash, scan_slot.i2, target.idx)
        scan_waits = Cat(touches(s, scan_t1, scan_t2, scan_i1, scan_i2) & s.writer
                         for s in before_d).any()
        issue_scan = Signal()
        m.d.comb += issue_scan.eq(~head_valid & ~blocked & ~scan_inflight & aged_q.i.ready &
                                  ~scan_waits & (scan_slot_ok | ~target.stash))

        # Each sub-table's read address: the Relocator's while it runs, else the head
        # request's (in either skid register, `rd` picks), else the aging step's. It is
        # registered at issue (A) and only then goes to the RAMs, from a copy of the register
        # per RAM: the RAMs are a hundred block RAMs across the die, and one driver cannot be
        # near them all, let alone a mux behind the issue buffer's `rd`.
        def read_source(s):
            heads = [candidates(ring[k].hash)[s] for k in range(2)]
            return Mux(reloc.busy, reloc.rd_addr[s],
                       Mux(head_valid, Mux(skid.rd, heads[1], heads[0]), target.idx))

        rd_addr = [register_copies(m, read_source(s), W, name=f"rd_addr{s}") for s in range(2)]
        for s in range(2):
            for w in range(W):
                m.d.comb += rd[s][w].addr.eq(rd_addr[s][w])

        # Only `valid` depends on the issue decision; the rest loads every cycle. (`maybe_slow`
        # is assigned at D, below: it needs the commit there.)
        m.d.sync += [
            s0.valid.eq(issue_req | issue_scan),
            s0.scan.eq(~head_valid), s0.scan_stash.eq(target.stash),
            s0.writer.eq(head_writer),     # an aging step is never one: requests cancel it
            s0.t1.eq(head_valid | scan_t1), s0.t2.eq(head_valid | scan_t2),
            s0.i1.eq(Mux(head_valid, h_i1, scan_i1)), s0.i2.eq(Mux(head_valid, h_i2, scan_i2)),
            s0.slot.eq(target.slot), s0.way.eq(target.way),
        ]

        # An aging step in flight must never commit after a request that read its bucket
        # before the commit. A request reads at the end of A, a cycle after it issues, so it
        # sees every commit up to the one at its issue edge (by forwarding at B): one issued
        # while the step is anywhere from A to C cancels it as it moves on, and a step at D is no
        # hazard. Both compares work on the skid's registers as they are (`ring`), with the
        # one at the head selected after (`rd`), not on the head's hash behind that select.
        def touches_ring(s, k):
            return touches(s, 1, 1, *candidates(ring[k].hash))

        cancel = [issue_req & s.scan & Mux(skid.rd, touches_ring(s, 1), touches_ring(s, 0))
                  for s in before_d]

        # A -> R -> T -> B -> M -> C -> D: ops advance every cycle; a cancelled aging step becomes a
        # bubble.
        for k, (here, there) in enumerate(zip(stages, stages[1:])):
            m.d.sync += there.eq(here)
            with m.If(cancel[k]):
                m.d.sync += there.valid.eq(0)
        # The request joins at R, from the queue's head (see the issue buffer): `s0.req` is
        # never loaded.
        m.d.sync += s1.req.eq(req_q.o.payload)
        d_valid = s6.valid

        # --- T: the RAMs' outputs registered as they are ------------------------------------
        #
        # A transport stage: the 116 block RAMs span the die, and their outputs went straight
        # into B's forwarding selects, placed by the logic that reads them (6 to 7 ns of wire
        # after the RAMs' own 3 ns: 1.1k failing endpoints at 362f863). Each way's register
        # can sit between its RAMs and B.
        t_words = [[Signal(p.entry, name=f"t_word{s}_{w}", reset_less=True) for w in range(W)]
                   for s in range(2)]
        for s in range(2):
            for w in range(W):
                m.d.sync += t_words[s][w].eq(rd[s][w].data)

        # --- B: registered buckets, first half of the compare, aging's expired ways ---------

        words = [Signal(p.bucket, name=f"b_word{s}") for s in range(2)]
        # Writes reach the RAMs a cycle after they are decided (the `wq` register, below), so
        # a read at the edge a write lands sees the old word (the read ports are not
        # transparent): the way written is forwarded into the registered bucket instead, two
        # edges later (through T). No write to an op's bucket lands after its read edge
        # while it is in flight: the bucket hazard holds a request until every writer ahead
        # on its buckets has committed, and the Relocator's own writes land before its next
        # read.
        wq = Signal(data.StructLayout({"en": data.ArrayLayout(W, 2),
                                       "addr": data.ArrayLayout(IB, 2), "entry": p.entry}))
        # The forwarding select in a register copy per 64-bit part of the entry: each way's
        # 437 bits spread over the block RAMs that hold it, and one flip-flop per way reached
        # them all (1.2k failing endpoints at 9b345fb).
        fwd_r = Signal(p.entry, reset_less=True)
        fwd_entry = Signal(p.entry, reset_less=True)
        m.d.sync += [fwd_r.eq(wq.entry), fwd_entry.eq(fwd_r)]
        # Aging: which ways are expired is judged as B's words are loaded, from what they are
        # loaded with (the RAMs' words at T, or the way forwarded), into `old_t`: judged from
        # B's words, the age compares' carry chains then the way select and the step's
        # candidates were the slowest paths at da3ac5f (12.6 to 12.95 ns at placement). So
        # the buckets are judged at the `now` of the cycle before B, and the stash slots at B
        # with that cycle's window too (`window_b`), so that a step's ages and the `now` it
        # reports (`now_bb`) are one cycle's. The window of expired timestamps is worked out
        # from `now` a cycle ahead and registered with it.
        window_layout, window_next = expiry_window(self.now, self.timeout, p.timestamp_bits)
        window = Signal(window_layout)
        window_b = Signal(window_layout)
        now_b = Signal(p.timestamp_bits)
        now_bb = Signal(p.timestamp_bits)
        m.d.sync += [window.eq(window_next), now_b.eq(self.now),
                     window_b.eq(window), now_bb.eq(now_b)]
        fwd_old = expired(fwd_entry.state, fwd_entry.timestamp, window)
        old_t = [Signal(W, name=f"old_t{s}") for s in range(2)]
        for s in range(2):
            fwd_en_r = Signal(W, name=f"fwd_en_r{s}")
            m.d.sync += fwd_en_r.eq(Mux(rd_addr[s][0] == wq.addr[s], wq.en[s], 0))
            *fwd_en, fwd_en_old = register_copies(m, fwd_en_r, p.entry_parts + 1,
                                                  name=f"fwd_en{s}")
            for w in range(W):
                m.d.sync += words[s][w].eq(Cat(
                    Mux(en[w], entry_part(fwd_entry, k), entry_part(t_words[s][w], k))
                    for k, en in enumerate(fwd_en)))
            m.d.sync += old_t[s].eq(Cat(
                Mux(fwd_en_old[w], fwd_old,
                    expired(t_words[s][w].state, t_words[s][w].timestamp, window))
                for w in range(W)))

        b_storable, b_key = self._stored_key(s3.req.key)
        # 64-bit slices: four LUT levels here at B, where there is room, and a six-input AND
        # (two levels) at M.
        cmp = m.submodules.compare = KeyCompare(width=p.key.size, count=2 * W + S, chunk=64)
        m.d.comb += cmp.key.eq(b_key)
        # A key the table cannot store (IPv6 in ipv4 mode) matches nothing: judged here, into
        # the compare's registered valid bits, not ANDed with `match` at M.
        for n in range(2 * W + S):
            e = words[n // W][n % W] if n < 2 * W else st.slots[n - 2 * W]
            m.d.comb += [cmp.stored[n].eq(e.key),
                         cmp.valid[n].eq((e.state != EntryState.INVALID) & b_storable)]

        # The stash slot the op at D frees at this edge (see the stash writes at D).
        taken = Signal(S)
        # The stash is probed for slots that name the op's buckets a stage early, at T, so the
        # bucket-index compares sit behind flip-flops of their own and not in front of the
        # candidates (found at M). The stash can change at each edge the probe is registered
        # at only by the slot the op then at D takes (an update in place keeps a slot's key, so
        # its buckets, and its state live; the Relocator inserts only with the pipeline
        # empty), so that slot is removed at each (T -> B, B -> M, M -> C, and at C).
        probe = Signal(data.ArrayLayout(S, 2))
        m.d.comb += [st.probe_i1.eq(s2.i1), st.probe_i2.eq(s2.i2)]
        m.d.sync += [probe[0].eq(st.probe1 & ~taken), probe[1].eq(st.probe2 & ~taken)]
        m_extra = data.StructLayout({
            "old": W, "stash_old": S, "now": p.timestamp_bits,
            # Judged here from registers, so that C only combines them with the hit: where a
            # new entry would go, and whether the request is refused whatever the lookup finds.
            "place": data.StructLayout({"any": 1, "second": 1, "way": p.way_bits, "fills": 1}),
            "refuse": 1,
            "words": data.ArrayLayout(p.bucket, 2),
            # The probe once the op now at D has taken its slot.
            "probe": data.ArrayLayout(S, 2),
        })
        mx = Signal(m_extra, name="m_extra")
        place = m.submodules.placement = Placement(ways=W)
        m.d.comb += [
            place.free1.eq(Cat(words[0][w].state == EntryState.INVALID for w in range(W))),
            place.free2.eq(Cat(words[1][w].state == EntryState.INVALID for w in range(W))),
        ]
        req_b = s3.req
        # The ways of the sub-table an aging step examines that are expired (judged as the
        # words were loaded, see `old_t`) at or after its first way. (The last way is always
        # at or after the scan's first way: no compare, which Verilator would flag as
        # constant.)
        def at_or_after(w):
            return (s3.way <= w) if w < (1 << p.way_bits) - 1 else 1

        aged_ways = [Cat(old[w] & at_or_after(w) for w in range(W)) for old in old_t]
        old_b = Signal(W)
        m.d.comb += old_b.eq(Mux(s3.t1, *aged_ways))
        # The entry an aging step examines, one-hot over the ways and the stash (its first
        # expired way in the sub-table it examines, or its slot): it selects the key M reports
        # from 16 sources of 320 bits spread over the die. Its candidates (the expired ways
        # of the sub-table examined, or the slot) are registered here in a copy per 64-bit
        # part of the key (and one for the rest), and each copy's first way is found at M, one
        # LUT by the select it drives: the priority encoder here, then a copy per part, was
        # the table's slowest path (13.09 ns at placement at 6819dbf), and behind the encoder
        # a single pick register at M was 0.3k failing endpoints at a13292a. (Only the
        # sub-table examined has candidates, so each half is encoded on its own.)
        scan_cand = Signal(2 * W + S)
        with m.If(s3.scan_stash):
            m.d.comb += scan_cand[2 * W:].eq(Cat(s3.slot == j for j in range(S)))
        with m.Else():
            m.d.comb += scan_cand[:2 * W].eq(Cat(ways & t.replicate(W)
                                                 for ways, t in zip(aged_ways, (s3.t1, s3.t2))))
        key_parts = -(-p.key.size // ENTRY_PART)
        *key_picks, scan_pick = [
            Cat(first_one(cand[:W]), first_one(cand[W:2 * W]), cand[2 * W:])
            for cand in register_copies(m, scan_cand, key_parts + 1, name="scan_cand")]
        m.d.sync += [
            mx.place.any.eq(place.any), mx.place.second.eq(place.second),
            mx.place.way.eq(place.way), mx.place.fills.eq(place.fills),
            # RESERVE of an unstorable key or of an INVALID entry; UPDATE that writes INVALID.
            mx.refuse.eq(Mux(req_b.op == GftOp.RESERVE,
                             ~b_storable | (req_b.state == EntryState.INVALID),
                             (req_b.op == GftOp.UPDATE) & req_b.mask.state &
                             (req_b.state == EntryState.INVALID))),
            mx.old.eq(old_b),
            # A stash slot's age is judged here too, with the same `now` (an aging step's slot
            # cannot change under it: see the hazard notes).
            mx.stash_old.eq(Cat(expired(st.slots[j].state, st.slots[j].timestamp, window_b)
                                for j in range(S))),
            mx.now.eq(now_bb),
            mx.words[0].eq(words[0]), mx.words[1].eq(words[1]),
            mx.probe[0].eq(probe[0] & ~taken), mx.probe[1].eq(probe[1] & ~taken),
        ]

        # --- M: end of the compare; the hit and the one-hot pick registered ------------------
        #
        # The compare's last AND and the one-hot pick take this stage of their own, so that C
        # starts from flip-flops: the decision there was eight LUT levels behind the compare,
        # and the select of a hit's fields was behind `match` across the die (12 to 19 ns of
        # wire at full size). The compare's partials sit by the RAMs, spread over the die, so
        # only `hit` (an OR) follows the AND here; the priority encoders that turn the pick
        # into a location work at C from flip-flops, beside the decision.

        match = cmp.match
        old_any = mx.old.any()

        def global_bucket(second, idx):
            return Cat(idx[:max(0, (p.half - 1).bit_length())], second)

        # The entry the op works on is picked one-hot, for an AND-OR select at C rather than
        # a mux tree behind a priority encoder: a key is stored at most once, so `match` has
        # at most one bit set; an aging step picks its first expired way, or its stash slot.
        # Only the fields a response or an update needs follow the match: a hit's key and
        # buckets are the request's, so the key (three quarters of an entry) and the buckets
        # are selected for an aging report only, by `scan_pick` (found at B), here at M.

        place_m = mx.place

        c_extra = data.StructLayout({
            "old": 1,       # aging: something to free
            "hit": 1, "place_loc": p.location,
            "pick": 2 * W + S,
            # The entry is a stash slot (an OR of the pick's stash bits beside `hit`): in front
            # of the RAM write's source and the stash enables at C, the pick's flip-flops sit by
            # the slots they select from, across the die (4 ns of wire into the decision at
            # 362f863).
            "in_stash": 1,
            "now": p.timestamp_bits,
            "place": data.StructLayout({"any": 1, "second": 1, "way": p.way_bits, "fills": 1}),
            "refuse": 1,
            # Of each way, only the fields a hit answers with or updates (99 of 437 bits).
            "words": data.ArrayLayout(data.ArrayLayout(p.fields, W), 2),
            # The key and buckets of the entry an aging step examines, for its report.
            "aged": data.StructLayout({"key": p.key, "i1": IB, "i2": IB}),
        })
        c = Signal(c_extra, name="c_extra")
        # Stash-return candidates of the bucket the op would free (a hit's, or the one the
        # aging step examines): in each sub-table, the lowest two live slots that name the
        # op's bucket there, once the op now at D has taken its slot (one-hot), found from
        # flip-flops; and the sub-table freed (`in2`: the hit's, one OR of four `match`
        # bits beside `hit`'s). The choice between the sub-tables is made at C, after the
        # flip-flops: in front of them it put the compare's gathering across the die (the
        # partials, `match`, the OR) before a mux into 16 flip-flops (18.85 ns at a13292a).
        # The returned entry is not selected at C: the slot chosen there goes into the RAM
        # write's one-hot source at D (`w_src`), which takes the slots as they are. (With
        # copies of `in2` steering selects of the entries at C, one per part across the die,
        # they were the slowest paths at dbd8d7c: 14.8 ns into them, 15.4 ns out; selecting
        # both sub-tables' candidates there instead cost 5k LUTs at 428bff9.)
        ret_layout = data.StructLayout({"in2": 1, "first": data.ArrayLayout(S, 2),
                                        "second": data.ArrayLayout(S, 2)})
        ret_m = Signal(ret_layout)
        ret_c = Signal(ret_layout, name="c_ret")
        m.d.comb += [
            ret_m.in2.eq(Mux(s4.scan, s4.t2, match[W:2 * W].any())),
            *(ret_m.first[t].eq(first_one(mx.probe[t] & ~taken)) for t in range(2)),
            *(ret_m.second[t].eq(second_one(mx.probe[t] & ~taken)) for t in range(2)),
        ]
        m.d.sync += ret_c.eq(ret_m)
        m.d.sync += [
            c.old.eq(Mux(s4.scan_stash, mx.stash_old.bit_select(s4.slot, 1), old_any)),
            c.hit.eq(match.any()),
            c.in_stash.eq(Mux(s4.scan, s4.scan_stash, match[2 * W:].any())),
            c.place_loc.stash.eq(0), c.place_loc.way.eq(place_m.way),
            c.place_loc.bucket.eq(global_bucket(place_m.second,
                                                Mux(place_m.second, s4.i2, s4.i1))),
            c.pick.eq(Mux(s4.scan, scan_pick, match)),
            c.now.eq(mx.now), c.place.eq(mx.place), c.refuse.eq(mx.refuse),
            *(c.words[n // W][n % W][name].eq(mx.words[n // W][n % W][name])
              for n in range(2 * W) for name, _ in p.fields),
            # Selected here, a stage early, by the aging step's pick (from flip-flops: the
            # expired ways judged at B): so the bucket words' keys (2.5k bits) stop at M, and
            # C selects only a hit's fields. A hit's key and buckets are the request's. (A
            # stash slot an aging step examines cannot change before its commit: see the
            # hazard notes.)
            *(entry_part(c.aged.key, k).eq(select(pick_k, [entry_part(
                (mx.words[n // W][n % W] if n < 2 * W else st.slots[n - 2 * W]).key, k)
                for n in range(2 * W + S)])) for k, pick_k in enumerate(key_picks)),
            *(c.aged[name].eq(select(scan_pick, [
                (mx.words[n // W][n % W] if n < 2 * W else st.slots[n - 2 * W])[name]
                for n in range(2 * W + S)])) for name in ("i1", "i2")),
        ]

        # --- C: selection, stash-return candidates, and the plan for D -----------------------
        #
        # Everything the commit at D does is decided here and registered (`plan`), so that at
        # D only registered selects steer registered data into the RAM write ports and the
        # stash: the chain hit -> op -> status -> placement never sits in front of the RAMs'
        # data inputs. The bucket hazard (a request never issues while a writer on one of its
        # buckets is in flight) makes what B read the state D writes; the one thing the op at D
        # can still change under the op at C is the stash-return candidates (it may take one),
        # which C settles into a registered flag.

        hit = c.hit
        place = c.place
        sources = [c.words[n // W][n % W] if n < 2 * W else st.slots[n - 2 * W]
                   for n in range(2 * W + S)]
        pick = c.pick

        # Stash return: the lowest live slot naming the freed bucket, with its contents. The
        # candidates were found at M, minus the slots the ops then at D took; the op at D now
        # may take the first at this edge (it frees at most one slot), so `use_second` says
        # whether the first was taken (it steers `ret_pick` and `w_src`, registered). The
        # slot chosen is read at D: no op ahead changes it meanwhile (one that updates it
        # would share the freed bucket: a hazard), and no slot becomes live (only the
        # Relocator inserts, with the pipeline empty).
        slots = [st.slots[j].as_value() for j in range(S)]

        d_extra = data.StructLayout({
            "in_stash": 1, "way": p.way_bits,
            # Hit entry's fields (not its key or buckets); for aging, the whole entry to free.
            "sel": p.entry,
            "old": 1,               # aging: something to free
            # `plan.free` of a way, and `ret_pick` (the candidate a free of a way takes, in the
            # sub-table it frees, one-hot).
            "free_way": 1, "ret_pick": S,
            # The stash slots the op takes (frees, or returns into the freed way), one-hot, if
            # it is still valid at D: `taken`, in front of the candidates of the op two behind
            # at M, is one LUT from flip-flops. (The slots it writes go to `s_write`.)
            "takes": S,
            "now": p.timestamp_bits,
        })
        plan_layout = data.StructLayout({
            "push": 1,              # answer on the response stream
            "status": GftStatus,
            "new": 1,               # RESERVE into a free way: write the new entry at w_sub/w_way
            "upd": 1,               # UPDATE of a hit: write the updated entry back in place
            "free": 1,              # DELETE of a hit, or aging of an expired entry
            "slow": 1,              # RESERVE with both buckets full: start the Relocator
            "aged": 1,              # report the aged-out entry
            "step": 1,              # an aging step commits
            "fills": 1,             # the new entry fills its bucket
            "w_sub": 1, "w_way": p.way_bits,
            "out_new": 1, "out_upd": 1,     # answer with the new / updated entry (else `sel`)
            "loc": p.location,
            "count": data.StructLayout({name: 1 for name in STAT_COUNTERS}),
        })
        d = Signal(d_extra, name="d_extra")
        plan = Signal(plan_layout, name="plan")
        nxt = Signal(plan_layout, name="plan_next")

        # Where the op's entry is: a hit's, or the aging step's (its pick is its first expired
        # way in the sub-table it examines, or its stash slot), from the registered pick.
        h1_any, h1_way = lowest(m, pick[:W], name="hit1")
        _, h2_way = lowest(m, pick[W:2 * W], name="hit2")
        _, hs_slot = lowest(m, pick[2 * W:], name="hits")
        in2_c = ret_c.in2       # the sub-table freed, registered at M
        in_stash_c = c.in_stash
        way_c = Mux(h1_any, h1_way, h2_way)
        slot_c = Mux(s5.scan, s5.slot, hs_slot)
        m.d.comb += [
            nxt.w_sub.eq(in2_c), nxt.w_way.eq(way_c),
            nxt.loc.stash.eq(in_stash_c),
            nxt.loc.way.eq(Mux(in_stash_c, slot_c, way_c)),
            nxt.loc.bucket.eq(Mux(in_stash_c, 0, global_bucket(in2_c, Mux(in2_c, s5.i2, s5.i1)))),
        ]
        req_c = s5.req
        with m.If(s5.scan):
            m.d.comb += nxt.step.eq(1)
            with m.If(c.old):
                m.d.comb += [nxt.free.eq(1), nxt.aged.eq(1), nxt.count.aged_out.eq(1)]
        with m.Else():
            m.d.comb += nxt.push.eq(1)
            with m.Switch(req_c.op):
                with m.Case(GftOp.LOOKUP):
                    m.d.comb += [nxt.status.eq(Mux(hit, GftStatus.HIT, GftStatus.MISS)),
                                 nxt.count.lookups.eq(1), nxt.count.hits.eq(hit),
                                 nxt.count.misses.eq(~hit)]
                with m.Case(GftOp.RESERVE):
                    m.d.comb += [nxt.count.lookups.eq(1), nxt.count.hits.eq(hit),
                                 nxt.count.misses.eq(~hit)]
                    with m.If(hit):
                        m.d.comb += nxt.status.eq(GftStatus.HIT)
                    with m.Elif(c.refuse):
                        m.d.comb += [nxt.status.eq(GftStatus.REFUSED), nxt.count.refused.eq(1)]
                    with m.Elif(place.any):
                        m.d.comb += [
                            nxt.status.eq(GftStatus.INSERTED), nxt.count.inserts.eq(1),
                            nxt.new.eq(1), nxt.out_new.eq(1), nxt.fills.eq(place.fills),
                            nxt.w_sub.eq(place.second), nxt.w_way.eq(place.way),
                            nxt.loc.eq(c.place_loc),
                        ]
                    with m.Else():
                        m.d.comb += [nxt.push.eq(0), nxt.slow.eq(1)]
                with m.Case(GftOp.UPDATE):
                    with m.If(c.refuse):
                        m.d.comb += [nxt.status.eq(GftStatus.REFUSED), nxt.count.refused.eq(1)]
                    with m.Elif(hit):
                        m.d.comb += [nxt.status.eq(GftStatus.UPDATED), nxt.count.updates.eq(1),
                                     nxt.upd.eq(1), nxt.out_upd.eq(1)]
                    with m.Else():
                        m.d.comb += nxt.status.eq(GftStatus.NOT_FOUND)
                with m.Case(GftOp.DELETE):
                    with m.If(hit):
                        m.d.comb += [nxt.status.eq(GftStatus.DELETED), nxt.count.deletes.eq(1),
                                     nxt.free.eq(1)]
                    with m.Else():
                        m.d.comb += nxt.status.eq(GftStatus.NOT_FOUND)

        m.d.sync += [
            plan.eq(nxt),
            d.in_stash.eq(in_stash_c),
            d.way.eq(way_c),
            d.old.eq(nxt.free & s5.scan),
            *(d.sel[name].eq(select(pick, [source[name] for source in sources]))
              for name, _ in p.fields),
            *(d.sel[name].eq(c.aged[name]) for name in ("key", "i1", "i2")),
            d.now.eq(c.now),
        ]
        m.d.sync += d.free_way.eq(nxt.free & ~in_stash_c)
        # The candidates of the sub-table the op frees, one-hot.
        ret_first = Mux(in2_c, ret_c.first[1], ret_c.first[0])
        ret_second = Mux(in2_c, ret_c.second[1], ret_c.second[0])
        use_second = (ret_first & taken).any()
        ret_pick_c = Mux(use_second, ret_second, ret_first)
        # What the RAM write at D takes (the new entry, the updated one, or the stash slot
        # returned), one-hot, in a copy per 64 bits of the entry: the write register `wq`
        # spreads over the die with the RAMs it feeds, and a select worked out at D from the
        # plan reached all 437 of its bits through one LUT (10 ns of wire). A free without a
        # stash return picks nothing: zero, INVALID.
        ret_way = nxt.free & ~in_stash_c
        w_src = Cat(nxt.new, nxt.upd, Mux(ret_way, ret_pick_c, 0))
        w_src_d = register_copies(m, w_src, p.entry_parts, name="w_src")
        slot_oh_c = pick[2 * W:]      # a stash hit's slot, or the stash step's (one-hot)
        takes_c = Signal(S)
        m.d.comb += takes_c.eq(Mux(nxt.free & in_stash_c, slot_oh_c, 0) |
                               Mux(nxt.free & ~in_stash_c, ret_pick_c, 0))
        m.d.sync += [
            d.ret_pick.eq(ret_pick_c),
            d.takes.eq(takes_c),
        ]
        # The stash slots the op writes at D (those it takes, or the one it updates), one-hot,
        # zero unless it reaches D: a copy per 64-bit part of the entry, each by that part of
        # the slots (their 437 flip-flops spread over the die with the compare and the selects
        # that read them). With D's `valid` and one set of flags behind one LUT, these enables
        # were the table's most common failing endpoints (5.4k of 12k at 1680396).
        # An aging step writes a slot only to free it, and a slot's state alone says whether
        # it is live: so only the part that holds `state` takes a step's write, and only that
        # part's copy waits for the step's cancel (the issue decision, which reached all seven
        # copies across the die at 9b345fb: 18.25 ns at placement).
        writes_c = takes_c | Mux(nxt.upd & in_stash_c, slot_oh_c, 0)
        state_part = p.entry["state"].offset // ENTRY_PART
        # The Relocator's stash insert (never at the same time: it runs with the pipeline
        # empty) is ORed in here, in front of the copies, so that they drive the slots'
        # enables directly: with the OR behind them, its LUT sat between these copies and
        # the Relocator's across the die (9 ns of wire each way at 4a5b9a1).
        s_write = [register_copies(
            m, Mux(s5.valid & Mux(k == state_part, ~cancel[-1], ~s5.scan), writes_c, 0) |
            reloc.stash_en_next, 1, name=f"s_write{k}")[0] for k in range(p.entry_parts)]

        # --- D: commit -----------------------------------------------------------------------

        req = s6.req
        _, d_key = self._stored_key(req.key)
        new_entry = Signal(p.entry)
        m.d.comb += [
            new_entry.state.eq(req.state), new_entry.key.eq(d_key), new_entry.fid.eq(req.fid),
            new_entry.timestamp.eq(self.now), new_entry.aware.eq(req.aware),
            new_entry.counter.eq(req.counter), new_entry.predict.eq(req.predict),
            new_entry.i1.eq(s6.i1), new_entry.i2.eq(s6.i2),
        ]
        updated = Signal(p.entry)
        mask = req.mask
        m.d.comb += [
            updated.eq(d.sel),
            # Not in `sel` for a request: the request's own (a hit's are the same).
            updated.key.eq(d_key), updated.i1.eq(s6.i1), updated.i2.eq(s6.i2),
            updated.fid.eq(Mux(mask.fid, req.fid, d.sel.fid)),
            updated.state.eq(Mux(mask.state, req.state, d.sel.state)),
            updated.aware.eq(d.sel.aware | Mux(mask.aware, req.aware, 0)),
            updated.counter.eq(Mux(mask.counter, req.counter, d.sel.counter)),
            updated.predict.eq(Mux(mask.predict, req.predict, d.sel.predict)),
            updated.timestamp.eq(Mux(mask.touch, self.now, d.sel.timestamp)),
        ]

        # Stash return (see C): the slot chosen, in `ret_pick` and `w_src`.
        ret_oh = Signal(S)
        m.d.comb += ret_oh.eq(d.ret_pick)
        ret_any = ret_oh.any()

        # Every state change of the op, driven combinationally and taken at the clock edge.
        w_en = Signal()
        w_sub = Signal()
        w_way = Signal(p.way_bits)
        w_entry = Signal(p.entry)
        set_full = Signal()          # write the bucket's full bit...
        full_value = Signal()        # ... with this value
        s_entry = Signal(p.entry)    # what the op writes into a stash slot
        push = Signal()
        status = Signal(GftStatus)
        out_fields = Signal(p.entry)
        out_loc = Signal(p.location)
        count = {name: Signal(name=f"count_{name}") for name in STAT_COUNTERS
                 if name != "relocations"}
        occ_up = Signal()
        occ_down = Signal()
        aged_push = Signal()
        aging_step = Signal()
        start_slow = Signal()

        v = d_valid
        free_way = v & d.free_way
        m.d.comb += [
            push.eq(v & plan.push), status.eq(plan.status),
            out_loc.eq(plan.loc),
            out_fields.eq(Mux(plan.out_new, new_entry, Mux(plan.out_upd, updated, d.sel))),
            occ_up.eq(v & plan.new), occ_down.eq(v & plan.free),
            aged_push.eq(v & plan.aged), aging_step.eq(v & plan.step),
            start_slow.eq(v & plan.slow),
            count["stash_returns"].eq(free_way & ret_any),
            w_en.eq(free_way | (v & plan.new) | (v & plan.upd & ~d.in_stash)),
            w_sub.eq(plan.w_sub), w_way.eq(plan.w_way),
            w_entry.eq(Cat(select(copy, [
                entry_part(source, k) for source in (new_entry, updated, *slots)])
                for k, copy in enumerate(w_src_d))),
            set_full.eq((v & plan.new & plan.fills) | (free_way & ~ret_any)),
            full_value.eq(plan.new),
            # The slot a free takes (its own, or the one returned into the freed way), as in
            # `use_second` at C; an update of a stash entry writes it back in place. (While the
            # Relocator answers, nothing is valid here: its stash insert is OR-ed in.)
            taken.eq(Mux(v, d.takes, 0)),
            # A slot taken is freed by its state alone: zeroing the whole entry made the
            # decision (`plan.upd`) a synchronous reset of every slot's 437 flip-flops.
            s_entry.eq(updated),
            s_entry.state.eq(Mux(plan.upd, updated.state, EntryState.INVALID)),
        ]
        for name, inc in count.items():
            if name != "stash_returns":
                m.d.comb += inc.eq(v & getattr(plan.count, name))

        # Slow path: the Relocator owns the RAM ports, stash insert and the full bit of the
        # free bucket until `done`; nothing else is in flight meanwhile.
        slow_req = Signal(p.request)
        # Taken in every cycle the Relocator is idle (its `busy`, a flip-flop, is the load
        # enable, not the commit decision), so it holds what the RESERVE that starts it had.
        # The new entry the answer carries is the Relocator's own copy.
        with m.If(~reloc.busy):
            m.d.sync += slow_req.eq(req)
        slow_entry = reloc.stash_write.entry
        m.d.comb += [
            reloc.start.eq(start_slow),
            reloc.root_i1.eq(s6.i1), reloc.root_i2.eq(s6.i2), reloc.entry.eq(new_entry),
            # The buckets as registered at M, not at B: B's words sit by the RAMs they come
            # from, and the Relocator's selects (across the die) pulled them away: the RAMs'
            # outputs to B's registers had up to 12 ns of wire (1.5k failing endpoints at
            # a13292a). Its writes land long before its next read (a move's write is in `wq`
            # two cycles after it, its next read in A three), so B's forwarding covers M too.
            reloc.rd_data[0].eq(mx.words[0]), reloc.rd_data[1].eq(mx.words[1]),
            reloc.stash_free_any.eq(st.free_any), reloc.stash_free_slot.eq(st.free_slot),
        ]

        def answer(value, op, status, loc, fields, request):
            """The statements that lay out a response to ``request`` in ``value``, with
            ``loc`` and the entry's fields whatever the status (the push into the response
            queue zeroes them when the status carries none: see the responses below)."""
            stmts = [value.op.eq(op), value.status.eq(status), value.loc.eq(loc)]
            stmts += [value.entry[name].eq(fields[name]) for name, _ in value.entry.shape()]
            if p.tag_width:
                stmts.append(value.tag.eq(request.tag))
            return stmts

        # The Relocator's answer is registered at `done` and pushed, with its counts, in the
        # next cycle, when nothing can be at D (issue resumes that cycle): its result decoded
        # in front of the response select was a path across the die into the queue's LUT RAM
        # (0.44k failing endpoints at dbd8d7c), and the slow path has no fixed latency to keep.
        slow_push = Signal()
        slow_resp = Signal(p.response)
        # (Loaded in every cycle, with no enable: only the cycle of `done` is ever pushed.)
        m.d.sync += slow_push.eq(reloc.done)
        # (Not gated by the outcome here: that made the status a synchronous reset of these
        # flip-flops, 12 ns from the Relocator's result at e8f7ab9. The push gates it, below.)
        m.d.sync += answer(slow_resp, GftOp.RESERVE, reloc.result.status, reloc.result.loc,
                           slow_entry, slow_req)
        with m.If(slow_push):
            inserted = slow_resp.status == GftStatus.INSERTED
            m.d.comb += [
                push.eq(1),
                count["inserts"].eq(inserted),
                count["stash_inserts"].eq(inserted & slow_resp.loc.stash),
                count["insert_failures"].eq(~inserted),
                occ_up.eq(inserted),
            ]

        # RAM writes: one way of one bucket per cycle from D or the Relocator (every way of a
        # bucket while clearing), decided here and registered in `wq`, which drives the write
        # ports directly: the RAMs spread across the die, and their data inputs must not sit
        # behind the commit logic (forwarding at B keeps the extra cycle invisible).
        # Only an entry's state says whether it is live, so a clear writes INVALID there and
        # leaves the rest as it comes: zeroing all 437 bits made `clearing` (and the choice of
        # source) a synchronous reset of every `wq` flip-flop (see the Relocator's outputs).
        wq_next = Signal.like(wq)
        m.d.comb += wq_next.entry.eq(Mux(reloc.wr.en, reloc.wr.entry, w_entry))
        with m.If(clearing):
            m.d.comb += [wq_next.addr[s].eq(clear_idx) for s in range(2)]
            m.d.comb += [wq_next.en[s].eq(2 ** W - 1) for s in range(2)]
            m.d.comb += wq_next.entry.state.eq(EntryState.INVALID)
        with m.Elif(reloc.wr.en):
            m.d.comb += [wq_next.addr[s].eq(reloc.wr.idx) for s in range(2)]
            m.d.comb += [wq_next.en[s].eq(Mux(reloc.wr.sub == s, 1 << reloc.wr.way, 0))
                         for s in range(2)]
        with m.Else():
            m.d.comb += [wq_next.addr[s].eq(Mux(w_sub, s6.i2, s6.i1)) for s in range(2)]
            m.d.comb += [wq_next.en[s].eq(Mux(w_en & (w_sub == s), 1 << w_way, 0))
                         for s in range(2)]
        m.d.sync += wq.eq(wq_next)
        # The write address, like the read address, from a copy per way: the ways' block RAMs
        # lie apart, and one register drove them all (12.8 ns of wire at eae791f). (`wq.addr`
        # is for forwarding at B.)
        wr_addr = [register_copies(m, wq_next.addr[s], W, name=f"wr_addr{s}") for s in range(2)]
        for s in range(2):
            for w in range(W):
                m.d.comb += [wr[s][w].addr.eq(wr_addr[s][w]), wr[s][w].en.eq(wq.en[s][w]),
                             wr[s][w].data.eq(wq.entry)]

        # Full bitmap: each write as a one-hot decode of its index, not an assignment to a
        # bit selected by a signal, which Amaranth expands into a case per possible index,
        # each assigning the whole bitmap (a million cells for Yosys to remove at full size).
        def write_bit(vector, en, idx, value, lo=0):
            one_hot = Signal(len(vector))
            m.d.comb += one_hot.eq(Mux(en, Cat(idx == lo + j for j in range(len(vector))), 0))
            return (vector & ~one_hot) | Mux(value, one_hot, 0)

        # The commit's write lands a cycle late, like the RAM write, from a register copy per
        # 64 bits of each bitmap (`fq`): the bitmaps' 1024 flip-flops sit by their readers
        # across the die, and the commit's decision reached them all through one decode
        # (6 ns of wire at 8f10d04). Only a request arriving in the skid reads the flip-flops
        # while a write may be pending, and it keeps a pending fill apart (`skid_pend`,
        # below); the Relocator reads the block-RAM copy long after its start, and writes the
        # bitmap itself only while nothing commits.
        fq_layout = data.StructLayout({"en": 2, "idx": IB, "value": 1})
        fq_next = Signal(fq_layout)
        m.d.comb += [
            fq_next.en.eq(Cat(set_full & (w_sub == s) for s in range(2))),
            fq_next.idx.eq(Mux(w_sub, s6.i2, s6.i1)), fq_next.value.eq(full_value),
        ]
        # The Relocator's write (the free bucket of its first move) lands a cycle late from
        # copies too (its index decoded for all 1024 bits from one register was 0.2k failing
        # endpoints at a13292a): the Relocator gives it at least a cycle before `done`, so it
        # lands by the cycle after `done`, the first in which anything can issue again.
        f_chunks = range(0, p.half, 64)
        # More copies, one for each other reader of the writes: the bitmap's block RAMs, the
        # skid's bits (`skid_full`) and `maybe_slow` (sharing one, the compares of the last
        # two were merged and placed between them: 14.3 ns at eae791f).
        *fq, fq_ram, fq_track, fq_slow = register_copies(
            m, fq_next, len(f_chunks) + 3, name="fq")
        *rf, rf_ram, rf_track = register_copies(
            m, reloc.set_full, len(f_chunks) + 2, name="reloc_full")
        for s in range(2):
            m.d.sync += full[s].eq(Cat(
                write_bit(write_bit(full[s][lo:lo + 64], fq[k].en[s], fq[k].idx, fq[k].value, lo),
                          rf[k].en & (rf[k].sub == s), rf[k].idx, rf[k].value, lo)
                for k, lo in enumerate(f_chunks)))

        # The Relocator asks its questions of a copy of the bitmap in a block RAM per
        # sub-table, written with the flip-flops (from the same copies, a cycle later) and
        # cleared with the buckets: a 512:1 select of the flip-flops by its `full_idx` was
        # the slowest path at baabbee (18.2 ns). The RAM's read register adds a cycle to the
        # answer (`full_latency=2`). Its first question comes long after the last commit
        # before it, and its own write, with the first move, after its last question: no
        # answer it uses meets a write, so a clash may be undefined (`no_rw_check`, as for
        # the buckets).
        full_sub = Signal()
        full_answer = Signal()
        m.d.sync += full_sub.eq(reloc.full_sub)
        full_reads = []
        for s in range(2):
            fram = m.submodules[f"full_ram{s}"] = memory.Memory(shape=1, depth=p.half, init=[],
                                                                attrs={"no_rw_check": 1})
            fw, fr = fram.write_port(), fram.read_port()
            rf_here = rf_ram.en & (rf_ram.sub == s)
            m.d.comb += [
                fw.en.eq(clearing | fq_ram.en[s] | rf_here),
                fw.addr.eq(Mux(clearing, clear_idx,
                               Mux(fq_ram.en[s], fq_ram.idx, rf_ram.idx))),
                fw.data.eq(~clearing & Mux(fq_ram.en[s], fq_ram.value, rf_ram.value)),
                fr.addr.eq(reloc.full_idx),
            ]
            full_reads.append(fr.data)
            self.storage["full"].append((full[s], fram))
            self.storage["ports"].append([(fr, fw)])
        m.d.sync += full_answer.eq(Mux(full_sub, full_reads[1], full_reads[0]))
        m.d.comb += reloc.full.eq(full_answer)

        # Beside each skid register, the bitmap's bits that its request's buckets may be:
        # one per 64-bit chunk of each sub-table, the bit at the bucket's offset in that chunk
        # (`skid_full`). Selected from the flip-flops as the request arrives, they follow the
        # bitmap's writes while it waits, so that at the head only an 8:1 select is left: the
        # 512:1 selects by the skid registers' hashes were 15.2 ns at baabbee. While the
        # request waits, the writes pending in `fq` and `rf` (landing at the next edge) go
        # into them as into the flip-flops. As it arrives, only the select is registered: a
        # fill then pending for one of its buckets is kept apart (`skid_pend`, ORed in at the
        # head), a pending clear is left out (as in `maybe_slow`: it only costs idle slots).
        # With the pending writes applied behind the select too, that logic went from the
        # hash to the bitmap and back across the die (18.3 ns at 48108f5).
        HB = (p.half - 1).bit_length()       # index bits in use (IB is at least 1)
        LO = min(6, HB)                      # offset within a chunk
        chunks = 1 << (HB - LO)

        def chunk_bits(s, i):
            if LO == 0:
                return full[s][:chunks]
            return Cat(full[s][c << LO:(c + 1) << LO].bit_select(i[:LO], 1)
                       for c in range(chunks))

        writes = [(fq_track.en, fq_track.idx, fq_track.value),
                  (Cat(rf_track.en & ~rf_track.sub, rf_track.en & rf_track.sub),
                   rf_track.idx, rf_track.value)]

        def tracked(bits, i):
            # `bits` (as at cycle t) for indexes `i`, as they will be after the writes now
            # pending land (the Relocator's after the commit's, as in the flip-flops).
            out = []
            for s in range(2):
                v = bits[s]
                for en, idx, value in writes:
                    hit = Cat(en[s] & (idx[:LO] == i[s][:LO]) & (idx[LO:HB] == c)
                              for c in range(chunks))
                    v = (v & ~hit) | Mux(value, hit, 0)
                out.append(v)
            return Cat(out)

        skid_full = [Signal(data.ArrayLayout(chunks, 2), name=f"skid_full{k}") for k in range(2)]
        skid_pend = [Signal(2, name=f"skid_pend{k}") for k in range(2)]
        i_in = candidates(skid.i.payload.hash)
        for k in range(2):
            with m.If(skid.i.valid & skid.i.ready & (skid.wr == k)):
                m.d.sync += [
                    skid_full[k].eq(Cat(chunk_bits(s, i_in[s]) for s in range(2))),
                    skid_pend[k].eq(Cat(
                        Cat(en[s] & value & (idx == i_in[s]) for en, idx, value in writes).any()
                        for s in range(2))),
                ]
            with m.Else():
                m.d.sync += skid_full[k].eq(tracked(skid_full[k], candidates(ring[k].hash)))

        # A RESERVE may need the slow path when the bitmap says both its buckets are full. It
        # issues at the edge the op at D commits (that op no longer holds it up, see A), so a
        # bucket that commit fills counts as full too: the flag must never miss a slow op.
        # Worked out for both skid registers, and the head's chosen after (`rd`), so that the
        # selects start at flip-flops.
        def maybe_slow(k):
            i = candidates(ring[k].hash)
            fills_now = [d_valid & plan.new & plan.fills & (plan.w_sub == s) &
                         (Mux(s, s6.i2, s6.i1) == i[s]) for s in range(2)]
            # The bitmap write still pending in `fq` (a pending clear is left out: a RESERVE
            # it frees a way for only costs idle slots as a maybe-slow one).
            fills_fq = [fq_slow.en[s] & fq_slow.value & (fq_slow.idx == i[s]) for s in range(2)]
            is_full = [(skid_full[k][s].bit_select(i[s][LO:HB], 1) if chunks > 1
                        else skid_full[k][s][0]) | skid_pend[k][s] for s in range(2)]
            return ((ring[k].op == GftOp.RESERVE) &
                    (is_full[0] | fills_now[0] | fills_fq[0]) &
                    (is_full[1] | fills_now[1] | fills_fq[1]))

        m.d.sync += s0.maybe_slow.eq(head_valid & Mux(skid.rd, maybe_slow(1), maybe_slow(0)))

        # Stash writes: the op's at D, or the Relocator's insert (only while nothing is
        # valid at D), each part enabled by its own copy (`s_write`, both ORed in). The
        # Relocator's own flag steers each part's data (an OR of its enables there was a
        # LUT level more in front of the slots' 3.5k flip-flops: 2.1k failing at 7cba390).
        for k, en in enumerate(s_write):
            m.d.comb += [
                st.write.en[k].eq(en),
                entry_part(st.write.entry, k).eq(Mux(
                    reloc.stash_writes[k], entry_part(reloc.stash_write.entry, k),
                    entry_part(s_entry, k))),
            ]

        # Responses. The answer carries a location and fields only with a status other than
        # MISS, NOT_FOUND, FULL and REFUSED: decided at C (or, for the Relocator's answer, at
        # `done`) into a register copy per chunk of the queue's LUT RAM, each gating that
        # chunk's part of `loc` and `entry` (a decode of `status` at D was 0.5k failing
        # endpoints at 9d657b6; one flip-flop reaching every chunk, 0.38k at 362f863).
        d_resp = Signal(p.response)
        m.d.comb += answer(d_resp, req.op, status, out_loc, out_fields, req)
        # The queue is told a cycle ahead (see CreditQueue): a push at D is C's plan to answer,
        # or the Relocator's `done`. Each chunk of its LUT RAM registers a copy: the push at D,
        # one LUT behind the plan, reached every chunk's pointers (plan.push to the queue's
        # level at the die's edge, 13.05 ns at placement at 6819dbf; 0.38k failing endpoints
        # from the plan to the queue). Credits keep it from overflowing.
        m.d.comb += resp_q.push_next.eq((s5.valid & nxt.push) | reloc.done)
        gated = field_mask(p.response, ("loc", "entry"))
        # The select by a copy of `slow_push` per chunk, too (each chunk has its own pointers
        # and sits apart: one `slow_push` reached them all, 0.22k failing endpoints at
        # 428bff9).
        resp_chunks = range(0, p.response.size, CreditQueue.CHUNK)
        found_next = Mux(reloc.done, reloc.result.status == GftStatus.INSERTED,
                         ~Cat(nxt.status == code for code in NO_ENTRY).any())
        for lo, pick, found in zip(
                resp_chunks, register_copies(m, reloc.done, len(resp_chunks), name="slow_push"),
                register_copies(m, found_next, len(resp_chunks), name="found")):
            hi = min(lo + CreditQueue.CHUNK, p.response.size)
            m.d.comb += resp_q.payload.as_value()[lo:hi].eq(gated_chunk(
                Mux(pick, slow_resp.as_value()[lo:hi], d_resp.as_value()[lo:hi]), lo,
                [(found, gated)]))
        with m.If(push):
            m.d.sync += resp_count.eq(resp_count + 1)

        # Credits: one per response place, taken at issue and returned when read out.
        # The issue decision comes last (after_step), and the credit it needs is a flip-flop.
        returned = self.resp.valid & self.resp.ready
        m.d.sync += [credits.eq(after_step(credits, returned, issue_req)),
                     has_credit.eq(after_step(credits, returned, issue_req, lambda n: n != 0))]

        # Aging bookkeeping. `scan_slot_ok` (see I) comes from the registered plan, not from
        # the stash's write enables: every op that may write the stash or move the cursor, and
        # the Relocator, which may insert.
        m.d.sync += scan_slot_ok.eq(~(d_valid & (plan.free | plan.upd | plan.step)) &
                                    ~reloc.busy)
        with m.If(issue_scan):
            m.d.sync += scan_inflight.eq(1)
        with m.If((d_valid & s6.scan) | Cat(cancel).any()):
            m.d.sync += scan_inflight.eq(0)
        m.d.comb += [
            aging.step.en.eq(aging_step),
            aging.step.freed.eq(d.old & ~s6.scan_stash),
            aging.step.way.eq(d.way),
        ]
        aged = aged_q.i.payload
        m.d.comb += [
            aged_q.i.valid.eq(aged_push),
            aged.key.eq(self._flow_key(m, d.sel.key)),
            aged.entry.fid.eq(d.sel.fid), aged.entry.state.eq(d.sel.state),
            aged.entry.timestamp.eq(d.sel.timestamp), aged.entry.aware.eq(d.sel.aware),
            aged.entry.counter.eq(d.sel.counter), aged.entry.predict.eq(d.sel.predict),
            aged.loc.eq(out_loc), aged.now.eq(d.now), aged.seq.eq(resp_count),
        ]

        # Statistics, a cycle after the events: each counter's enable is a flip-flop of its
        # own, so that the commit's valid through the plan's count bits does not reach the
        # 400 counter flip-flops wherever they lie (`s6.valid` through `plan.count.hits` to
        # the counters' enables: 10.3 ns at placement at 0d3b8da, 0.23k failing endpoints).
        for name, inc in count.items():
            inc_r = Signal(name=f"count_{name}_r")
            m.d.sync += inc_r.eq(inc)
            with m.If(inc_r):
                m.d.sync += getattr(stats, name).eq(getattr(stats, name) + 1)
        with m.If(reloc.done):
            m.d.sync += stats.relocations.eq(stats.relocations + reloc.result.moves)
        occ_up_r, occ_down_r = Signal(), Signal()
        m.d.sync += [occ_up_r.eq(occ_up), occ_down_r.eq(occ_down),
                     stats.occupancy.eq(stats.occupancy + occ_up_r - occ_down_r)]

        return m
