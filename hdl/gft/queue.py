"""Stream buffers: :class:`Queue`, Amaranth's ``SyncFIFO`` behind two stream interfaces
(``SyncFIFO`` is not a ``wiring.Component``, so it is wrapped the way Glasgow's ``Queue`` wraps
it), and :class:`Skid`, a two-entry buffer whose contents can be inspected."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out


__all__ = ["Queue", "Skid"]


class Queue(wiring.Component):
    """First-in first-out stream buffer of ``depth`` payloads.

    Latency and backpressure
    ------------------------
    A payload transferred on ``i`` at a clock edge is offered on ``o`` from the next cycle.
    ``i.ready`` is high while fewer than ``depth`` payloads are held; it comes from the
    registered fill level and never depends on ``o.ready`` or ``i.valid`` in the same cycle,
    so a queue of depth 2 also cuts a long ready path (a skid buffer).

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
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self._shape = shape
        self._depth = depth
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        fifo = m.submodules.fifo = SyncFIFO(width=Shape.cast(self._shape).width,
                                            depth=self._depth)
        m.d.comb += [
            fifo.w_data.eq(self.i.payload),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            self.o.payload.eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
            self.level.eq(fifo.level),
        ]
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
        ``o.payload`` is ``entries[0]``.
    entries : ``Out(ArrayLayout(shape, 2))``
        The held payloads, oldest first.
    held : ``Out(2)``
        Which entries hold a payload (``0b01``: one, ``0b11``: two).
    """

    def __init__(self, *, shape):
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "entries": Out(data.ArrayLayout(shape, 2)),
            "held": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        # Two registers used as a ring: a payload is written once, where it lands, and never
        # moves; a read only advances the read pointer. So the consumer's ready (in the GFT a
        # deep issue decision) drives one flip-flop instead of the load enable of a whole
        # payload register, and the writes hang off `i.valid` and registered state only.
        count = Signal(range(3))
        ring = Signal(data.ArrayLayout(self.i.payload.shape(), 2))
        rd = Signal()
        wr = Signal()
        take_in = self.i.valid & self.i.ready
        take_out = self.o.valid & self.o.ready
        m.d.comb += [
            self.i.ready.eq(count != 2),
            self.o.valid.eq(count != 0),
            self.entries[0].eq(Mux(rd, ring[1], ring[0])),
            self.entries[1].eq(Mux(rd, ring[0], ring[1])),
            self.o.payload.eq(self.entries[0]),
            self.held.eq(Cat(count != 0, count == 2)),
        ]
        for k in range(2):
            with m.If(take_in & (wr == k)):
                m.d.sync += ring[k].eq(self.i.payload)
        m.d.sync += [
            wr.eq(wr ^ take_in),
            rd.eq(rd ^ take_out),
            count.eq(count + take_in - take_out),
        ]
        return m
