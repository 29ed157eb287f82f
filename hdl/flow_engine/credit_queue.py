"""A queue whose producer never finds it full and says a cycle ahead that it pushes."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..fanout import DONT_MERGE
from ..gft.queue import Queue, chunked_ring
from ..level import after_step


__all__ = ["CreditQueue"]


class CreditQueue(wiring.Component):
    """First-in first-out buffer of ``depth`` payloads, for a producer that keeps count of its
    places (credits) and so pushes only when there is one.

    Why not ``Queue``
    -----------------
    A :class:`~hdl.gft.queue.Queue` pushes on ``i.valid & i.ready``: one LUT, whose output
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
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
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
