"""Round-robin merge of two streams of the same payload shape."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["RoundRobin"]


class RoundRobin(wiring.Component):
    """Merges ``a`` and ``b`` into ``o``, alternating when both offer.

    A flip-flop, the *grant*, names the input offered on ``o``, so that the payload mux (of
    hundreds of bits in the flow engine) is selected straight from a register, not from the
    input ``valid`` signals through logic. The grant stays while its input's offer waits (the
    stream rules: once ``o.valid`` is high its payload does not change); otherwise it passes
    to the other input when that one is valid. So when both offer they alternate and neither
    can starve the other, and an input keeps the grant for back-to-back transfers while the
    other is idle. The price: an input that becomes valid while the grant is with the other,
    idle, input waits one cycle for it. ``o.valid`` depends on the input ``valid`` signals and
    the grant, each input's ``ready`` on ``o.ready`` and the grant.

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
        grant_b = Signal()      # ``b`` is offered on ``o``
        m.d.comb += [
            self.o.valid.eq(Mux(grant_b, self.b.valid, self.a.valid)),
            self.o.payload.eq(Mux(grant_b, self.b.payload, self.a.payload)),
            self.a.ready.eq(self.o.ready & ~grant_b),
            self.b.ready.eq(self.o.ready & grant_b),
        ]
        waiting = self.o.valid & ~self.o.ready
        with m.If(~waiting):
            m.d.sync += grant_b.eq(Mux(grant_b, ~self.a.valid, self.b.valid))
        return m
