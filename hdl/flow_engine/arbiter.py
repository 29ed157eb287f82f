"""Round-robin merge of two streams of the same payload shape."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["RoundRobin"]


class RoundRobin(wiring.Component):
    """Merges ``a`` and ``b`` into ``o``, alternating when both offer.

    When both inputs are valid, the one that did not win the last transfer goes first, so
    neither can starve the other. A choice holds until its payload transfers (the stream
    rules: once ``o.valid`` is high its payload does not change), even if the other input
    becomes valid meanwhile. Purely combinational apart from the two flip-flops of that
    state: ``o.valid`` depends on the input ``valid`` signals only, each input's ``ready`` on
    ``o.ready`` and the choice.

    Parameters
    ----------
    shape : shape-castable
        Payload shape of all three streams.

    Members
    -------
    a, b : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``
    """

    def __init__(self, *, shape):
        super().__init__({
            "a": In(stream.Signature(shape)),
            "b": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        b_last = Signal()     # b won the last transfer
        held = Signal()       # o was offered and not taken: keep the choice
        held_b = Signal()
        pick_b = Mux(held, held_b, self.b.valid & (~self.a.valid | ~b_last))
        m.d.comb += [
            self.o.valid.eq(self.a.valid | self.b.valid),
            self.o.payload.eq(Mux(pick_b, self.b.payload, self.a.payload)),
            self.a.ready.eq(self.o.ready & ~pick_b),
            self.b.ready.eq(self.o.ready & pick_b),
        ]
        transfer = self.o.valid & self.o.ready
        m.d.sync += [held.eq(self.o.valid & ~self.o.ready), held_b.eq(pick_b)]
        with m.If(transfer):
            m.d.sync += b_last.eq(pick_b)
        return m
