"""Stream buffers: :class:`Queue`, a FIFO in LUT RAM whose handshake logic stays out of the
RAM's write enables, :class:`CreditQueue`, the same for a producer that counts credits and
says a cycle ahead that it pushes, :class:`Skid`, a two-entry buffer whose contents can be
inspected, and :class:`ReadAhead`, which reads a ring in block RAM ahead into a queue."""

from amaranth.hdl import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..fanout import DONT_MERGE
from ..level import after_step


__all__ = ["Queue", "CreditQueue", "Skid", "ReadAhead", "chunked_ring"]


def _check_depth(depth):
    """Raise ``ValueError`` unless ``depth`` (payloads a queue holds) is a positive integer."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be a positive integer, not {depth!r}")


def chunked_ring(m, data, payload, *, slots, chunk, push_of, pop):
    """The storage of a :class:`Queue`: ``data`` written at the write pointer in every cycle,
    ``payload`` read at the read pointer, in one LUT RAM of ``slots`` words (a power of two:
    the pointers just wrap) and one pair of pointers per ``chunk`` bits. ``push_of(n)`` moves
    chunk ``n``'s write pointer (a signal of its own, or one for all), ``pop`` every read
    pointer. Each copy of a pointer counts for itself (``+ 1`` of its own value), so
    synthesis cannot merge the copies."""
    data, width = Value.cast(data), Shape.cast(payload.shape()).width
    for n, lo in enumerate(range(0, max(1, width), chunk)):
        hi = min(width, lo + chunk)
        ram = memory.Memory(shape=hi - lo, depth=slots, init=[])
        m.submodules[f"ram{n}"] = ram
        wr = ram.write_port()
        rd = ram.read_port(domain="comb")
        w_ptr = Signal(ceil_log2(slots), name=f"w_ptr{n}")
        r_ptr = Signal(ceil_log2(slots), name=f"r_ptr{n}")
        m.d.comb += [
            wr.addr.eq(w_ptr), wr.data.eq(data[lo:hi]), wr.en.eq(1),
            rd.addr.eq(r_ptr), Value.cast(payload)[lo:hi].eq(rd.data),
        ]
        with m.If(push_of(n)):
            m.d.sync += w_ptr.eq(w_ptr + 1)
        with m.If(pop):
            m.d.sync += r_ptr.eq(r_ptr + 1)


class Queue(wiring.Component):
    """First-in first-out stream buffer of ``depth`` payloads, timed for payloads of hundreds
    of bits.

    Why not ``SyncFIFO``
    --------------------
    A ``SyncFIFO`` writes its LUT RAM only when a payload is pushed, so the RAM's write enable
    is the producer's ``valid`` (often several LUT levels deep) ANDed with the fill level, and
    it reaches every LUT-RAM cell of the payload: on ECP5 that net alone took 6 ns of routing
    behind the fragment table's decision (81.7 MHz), and its fill level sat behind the GFT's
    commit. Here the RAM has at least one slot more than the queue may hold, so the slot at the
    write pointer is always free: the RAM is written there in every cycle, whatever ``i``
    holds, and only the write pointer (a few flip-flops) moves on a push. The RAM costs
    nothing more: a LUT-RAM cell holds 16 words. (So ``o.payload`` is undefined, X in Icarus,
    while ``o.valid`` is low.)

    Wide payloads
    -------------
    The write pointer addresses every LUT-RAM cell (four bits each), and a pointer that fans out
    to a few hundred bits' cells spreads across the die (7.3 ns of routing in the command
    receiver's queue alone). So the payload is stored in chunks of :attr:`CHUNK` bits, each in
    a RAM of its own with its own copy of both pointers.

    Latency and backpressure
    ------------------------
    A payload transferred on ``i`` at a clock edge is offered on ``o`` from the next cycle.
    ``i.ready`` (fewer than ``depth`` payloads held) and ``o.valid`` (at least one held) are
    flip-flops, worked out from the last cycle's level, push and pop: neither depends on
    ``o.ready`` or ``i.valid`` in the same cycle, so a queue of depth 2 also cuts a long ready
    path (a skid buffer).

    Parameters
    ----------
    shape : shape-castable
        Payload shape.
    depth : int
        Payloads held, >= 1.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``
    level : ``Out(range(depth + 1))``
        Payloads held.
    """

    def __init__(self, *, shape, depth):
        _check_depth(depth)
        self._shape = shape
        self._depth = depth
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    @property
    def depth(self):
        return self._depth

    CHUNK = 64
    """Payload bits per LUT RAM and per copy of the pointers (see *Wide payloads*)."""

    def elaborate(self, platform):
        m = Module()
        slots = 1 << ceil_log2(self._depth + 1)     # a power of two: the pointers just wrap
        room = Signal(init=1)
        held = Signal()
        push = self.i.valid & room
        pop = held & self.o.ready
        m.d.comb += [self.i.ready.eq(room), self.o.valid.eq(held)]
        chunked_ring(m, self.i.payload, self.o.payload, slots=slots, chunk=self.CHUNK,
                     push_of=lambda n: push, pop=pop)
        # `push` and `pop` come last (a consumer's ready may depend on the payload, read from
        # the RAM): see after_step.
        level = self.level
        m.d.sync += [self.level.eq(after_step(level, push, pop)),
                     room.eq(after_step(level, push, pop, lambda n: n < self._depth)),
                     held.eq(after_step(level, push, pop, lambda n: n != 0))]
        return m


class CreditQueue(wiring.Component):
    """First-in first-out buffer of ``depth`` payloads, for a producer that keeps count of its
    places (credits) and so pushes only when there is one.

    Why not ``Queue``
    -----------------
    A :class:`Queue` pushes on ``i.valid & i.ready``: one LUT, whose output
    enables the write pointer of every chunk of the payload (each chunk's LUT RAM has a copy
    of the pointers). Those chunks lie far apart, so that net crossed the die: from the
    parser's last stage to its result queue's pointers (13 ns at placement) and from the
    command receiver's verdict to its command queue's (12.6 ns). Here the producer gives the
    push a cycle ahead, ``push_next``, and each chunk, and the fill level, registers it in a
    flip-flop of its own (kept apart in synthesis, see :mod:`hdl.fanout`): the placer puts
    each copy by the pointers it enables, and nothing but the copy's D input crosses.

    Pushing into a full queue is the producer's error: the payload is lost and the level
    wraps.

    Latency and backpressure
    ------------------------
    ``push_next`` high in a cycle pushes ``payload`` as it is in the next cycle; the payload
    is offered on ``o`` from the cycle after that. ``o.valid`` (at least one held) is a
    flip-flop and does not depend on ``o.ready``; the RAM is written in every cycle, as in
    ``Queue``, so ``o.payload`` is undefined while ``o.valid`` is low.

    Parameters (keyword only)
    -------------------------
    shape : shape-castable
        Payload shape.
    depth : int
        Payloads held, >= 1.

    Members
    -------
    push_next : ``In(1)``
        ``payload`` is pushed in the next cycle.
    payload : ``In(shape)``
        What a push stores.
    o : ``Out(stream.Signature(shape))``
    level : ``Out(range(depth + 1))``
        Payloads held.
    """

    CHUNK = Queue.CHUNK
    """Payload bits per LUT RAM, with its own pointers and copy of the push."""

    def __init__(self, *, shape, depth):
        _check_depth(depth)
        self._shape = shape
        self._depth = depth
        super().__init__({
            "push_next": In(1),
            "payload": In(shape),
            "o": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        slots = 1 << ceil_log2(self._depth + 1)     # a power of two: the pointers just wrap

        def push_copy(name):
            push = Signal(name=name, attrs={DONT_MERGE: 1})
            m.d.sync += push.eq(self.push_next)
            return push

        held = Signal()
        pop = held & self.o.ready
        m.d.comb += self.o.valid.eq(held)
        chunked_ring(m, self.payload, self.o.payload, slots=slots, chunk=self.CHUNK,
                     push_of=lambda n: push_copy(f"push{n}"), pop=pop)
        push = push_copy("push_level")
        m.d.sync += [self.level.eq(after_step(self.level, push, pop)),
                     held.eq(after_step(self.level, push, pop, lambda n: n != 0))]
        return m


class Skid(wiring.Component):
    """Two-entry stream buffer whose held payloads are visible.

    Like a :class:`Queue` of depth 2 (``i.ready`` comes from a register, so it cuts a ready
    path), built from two registers so that a consumer can look at what is waiting: the GFT
    checks the requests that may issue next against an in-flight aging step.

    Latency and backpressure
    ------------------------
    A payload transferred on ``i`` is offered on ``o`` from the next cycle; ``i.ready`` is high
    while fewer than 2 payloads are held.

    Parameters
    ----------
    shape : shape-castable
        Payload shape.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``
        ``o.payload`` is the oldest held payload.
    held : ``Out(2)``
        How many payloads are held (``0b01``: one, ``0b11``: two).
    ring : ``Out(ArrayLayout(shape, 2))``, ``rd`` : ``Out(1)``, ``live`` : ``Out(2)``
        The two registers as they are, and which of them is at the head: ``o.payload`` is a
        mux selected by ``rd``, which so fans out to every payload bit. Logic that only looks
        at a few fields can work on ``ring[0]`` and ``ring[1]`` in parallel and apply ``rd``
        last, keeping that net off the start of its path. ``live`` says which registers of
        ``ring`` hold a payload (in either order).
    wr : ``Out(1)``
        The register a payload transferred on ``i`` lands in: a consumer that keeps state of
        its own beside each register loads it with the same enable.
    """

    def __init__(self, *, shape):
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "held": Out(2),
            "ring": Out(data.ArrayLayout(shape, 2)),
            "rd": Out(1),
            "live": Out(2),
            "wr": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # Two registers used as a ring: a payload is written once, where it lands, and never
        # moves; a read only advances the read pointer. So the consumer's ready (in the GFT a
        # deep issue decision) drives one flip-flop instead of the load enable of a whole
        # payload register, and the writes hang off `i.valid` and registered state only.
        count = Signal(range(3))
        ring, rd, wr = self.ring, self.rd, self.wr
        take_in = self.i.valid & self.i.ready
        take_out = self.o.valid & self.o.ready
        m.d.comb += [
            self.i.ready.eq(count != 2),
            self.o.valid.eq(count != 0),
            self.o.payload.eq(Mux(rd, ring[1], ring[0])),
            self.held.eq(Cat(count != 0, count == 2)),
            *(self.live[k].eq((count == 2) | ((count == 1) & (rd == k))) for k in range(2)),
        ]
        for k in range(2):
            with m.If(take_in & (wr == k)):
                m.d.sync += ring[k].eq(self.i.payload)
        m.d.sync += [
            wr.eq(wr ^ take_in),
            rd.eq(rd ^ take_out),
            count.eq(after_step(count, take_in, take_out)),
        ]
        return m


class ReadAhead(wiring.Component):
    """Reads the entries of a ring memory ahead, in order, into a short :class:`Queue`.

    The owner writes the ring and says so on ``written`` (one entry, the cycle after its
    write at the earliest); this block says when to read the next entry (``issue``: the owner
    moves its read address by one) and queues what the read port returns ``stages`` cycles
    later (1: the port's data as it is; 2: registered once more). So the ring's read address
    is a counter of flip-flops and no consumer's ``ready`` reaches it: a ready through the
    address to block RAMs spread across the die was a long wire at placement (FlowHash's tag
    ring, the packet buffer's word RAM). ``issue`` is one LUT of flip-flops: entries written and
    unread, and room in the queue for every read in flight, are both kept as flags.

    A delivery frees a place; the read issued for it reaches the queue's head ``stages + 2``
    cycles after that delivery, so ``depth`` of at least ``stages + 2`` sustains one entry per
    clock.

    Parameters (keyword only)
    -------------------------
    shape : shape-castable
        Entry shape.
    depth : int
        Entries read ahead at most (the queue's depth).
    capacity : int
        Entries the ring holds at most (bounds the unread count).
    stages : int
        Register stages from ``issue`` to the queue's input: 1 (the read port's own) or 2
        (one more, on the read data).

    Members
    -------
    written : ``In(1)``
        An entry was written (counted from the next cycle on).
    issue : ``Out(1)``
        Read the next entry now.
    data : ``In(shape)``
        The read port's data.
    o : ``Out(stream.Signature(shape))``
        The entries, in order.
    """

    def __init__(self, *, shape, depth, capacity, stages=1):
        for name, value in (("depth", depth), ("capacity", capacity)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if stages not in (1, 2) or isinstance(stages, bool):
            raise ValueError(f"stages must be 1 or 2, not {stages!r}")
        self._depth, self._capacity, self._stages = depth, capacity, stages
        super().__init__({
            "written": In(1), "issue": Out(1), "data": In(shape),
            "o": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        queue = m.submodules.queue = Queue(shape=self.data.shape(), depth=self._depth)
        wiring.connect(m, queue.o, wiring.flipped(self.o))
        unread = Signal(range(self._capacity + 1))
        any_unread = Signal()
        reading = Signal(range(self._depth + 1))        # issued, not yet delivered
        reads_full = Signal()
        issue, delivered = self.issue, queue.o.valid & queue.o.ready
        m.d.comb += issue.eq(any_unread & ~reads_full)
        m.d.sync += [
            unread.eq(after_step(unread, self.written, issue)),
            any_unread.eq(after_step(unread, self.written, issue, lambda n: n != 0)),
            reading.eq(after_step(reading, issue, delivered)),
            reads_full.eq(after_step(reading, issue, delivered, lambda n: n == self._depth)),
        ]
        fetched = Signal()
        m.d.sync += fetched.eq(issue)
        if self._stages == 1:
            m.d.comb += [queue.i.valid.eq(fetched), queue.i.payload.eq(self.data)]
        else:
            valid = Signal()
            data = Signal.like(self.data, reset_less=True)
            m.d.sync += [valid.eq(fetched), data.eq(self.data)]
            m.d.comb += [queue.i.valid.eq(valid), queue.i.payload.eq(data)]
        return m
