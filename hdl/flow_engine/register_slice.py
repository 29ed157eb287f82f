"""A register slice: one pipeline register on a stream, for timing between blocks."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["RegisterSlice"]


class RegisterSlice(wiring.Component):
    """Holds one payload in flip-flops between ``i`` and ``o``.

    What drives ``i`` (a queue's LUT-RAM read, an arbiter's mux) is then not in series with
    the logic behind ``o``: ``o.valid`` and ``o.payload`` come straight from flip-flops.

    Latency and backpressure
    ------------------------
    A payload transferred on ``i`` at an edge is offered on ``o`` from that edge on. Full
    throughput: ``i.ready`` is high when the register is empty or its payload is being taken
    (``~o.valid | o.ready``), so it depends combinationally on ``o.ready``, never on ``i.valid``.

    Parameters
    ----------
    shape : shape-castable
        Payload shape.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``
    """

    def __init__(self, *, shape):
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        # The payload's enable is the same function as ``i.ready``, worked out again from a
        # copy of ``~o.valid`` in a flip-flop of its own (inverted, so that synthesis cannot
        # merge the two), so that the net enabling hundreds of payload flip-flops is not the
        # one the producer's logic reads: that fanout had put 5 ns of wire in front of the
        # fragment table's room and the framer's queue levels.
        empty = Signal(init=1)
        load = Signal()
        m.d.comb += [self.i.ready.eq(~self.o.valid | self.o.ready),
                     load.eq(empty | self.o.ready)]
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), empty.eq(~self.i.valid)]
        with m.If(load):
            m.d.sync += self.o.payload.eq(self.i.payload)
        return m
