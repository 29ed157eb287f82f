"""Bucket-level choices of the GFT: which candidate bucket and which way a new entry takes
(rule 2 of :mod:`sim.model.gft`), plus the small priority helpers the other blocks share."""

from amaranth.hdl import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["Placement", "lowest", "popcount"]


def lowest(m, vector, *, name):
    """Index of the lowest set bit of ``vector`` and whether there is one.

    Returns ``(any, index)``: two combinational signals added to ``m``. ``index`` is 0 when
    ``any`` is low. Written as a priority chain from the top bit down, which synthesis turns
    into a shallow encoder for the small widths used here (ways, stash slots).
    """
    vector = Value.cast(vector)
    any_ = Signal(name=f"{name}_any")
    index = Signal(range(max(2, len(vector))), name=f"{name}_index")
    m.d.comb += any_.eq(vector.any())
    for i in reversed(range(len(vector))):
        with m.If(vector[i]):
            m.d.comb += index.eq(i)
    return any_, index


def popcount(vector):
    """Number of set bits of ``vector`` (an adder tree expression)."""
    bits = [Value.cast(b) for b in Value.cast(vector)]
    if not bits:
        return C(0, 1)
    while len(bits) > 1:
        pairs = [bits[i] + bits[i + 1] for i in range(0, len(bits) - 1, 2)]
        bits = pairs + ([bits[-1]] if len(bits) % 2 else [])
    return bits[0]


class Placement(wiring.Component):
    """Where a new entry goes when a candidate bucket has room (the model's ``_place``).

    The candidate with *more* free ways wins, ``b1`` on a tie; in it, the lowest free way.
    Balancing the two choices is what lets two-choice hashing reach high load before any
    relocation. Purely combinational.

    Parameters
    ----------
    ways : int
        Ways per bucket.

    Members
    -------
    free1, free2 : ``In(ways)``
        Free-way masks of ``b1`` (sub-table 0) and ``b2`` (sub-table 1).
    any : ``Out(1)``
        A candidate has a free way; the other outputs are meaningful only then.
    second : ``Out(1)``
        The entry goes to ``b2``.
    way : ``Out(range(ways))``
        The way it takes.
    fills : ``Out(1)``
        It takes the chosen bucket's last free way (the bucket becomes full).
    """

    def __init__(self, *, ways):
        if not isinstance(ways, int) or isinstance(ways, bool) or ways < 1:
            raise ValueError(f"ways must be a positive integer, not {ways!r}")
        self._ways = ways
        super().__init__({
            "free1": In(ways), "free2": In(ways),
            "any": Out(1), "second": Out(1), "way": Out(range(max(2, ways))), "fills": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n1, n2 = popcount(self.free1), popcount(self.free2)
        _, way1 = lowest(m, self.free1, name="way1")
        _, way2 = lowest(m, self.free2, name="way2")
        m.d.comb += [
            self.any.eq(self.free1.any() | self.free2.any()),
            self.second.eq(n2 > n1),
            self.way.eq(Mux(self.second, way2, way1)),
            self.fills.eq(Mux(self.second, n2, n1) == 1),
        ]
        return m
