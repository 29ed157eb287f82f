"""Pipelined full-key compare of one key against many stored keys (the ways of both candidate
buckets and the stash, in parallel)."""

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["KeyCompare"]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class KeyCompare(wiring.Component):
    """Equality of ``key`` with each of ``count`` stored keys, split over two clock cycles.

    A 320-bit equality is too deep for one ECP5 cycle at 125 MHz once it is repeated for every
    way and stash slot, so the compare is cut in two: in the cycle the inputs are valid, each
    ``chunk``-bit slice of each stored key is compared (about three LUT levels for 16 bits) and
    the per-chunk results are registered; in the next cycle ``match`` ANDs them (two or three
    more levels). The whole key is always compared, never a hash of it: two keys may share
    both buckets.

    Latency and backpressure
    ------------------------
    ``match`` reflects the inputs of the previous cycle (1 cycle latency); a new set of inputs
    is accepted every cycle. There is no stall: the caller's pipeline never holds.

    Parameters
    ----------
    width : int
        Key width in bits, >= 1.
    count : int
        Number of stored keys, >= 1.
    chunk : int
        Bits compared per first-cycle slice, >= 1.

    Members
    -------
    key : ``In(width)``
        The key looked up.
    stored : ``In(ArrayLayout(width, count))``
        The stored keys.
    valid : ``In(count)``
        Which stored keys are live; a free way never matches, whatever its stale key bits.
    match : ``Out(count)``
        Bit ``i``: ``stored[i] == key`` and ``valid[i]``, one cycle after the inputs.
    """

    def __init__(self, *, width, count, chunk=16):
        if not _is_int(width) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        if not _is_int(count) or count < 1:
            raise ValueError(f"count must be a positive integer, not {count!r}")
        if not _is_int(chunk) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, not {chunk!r}")
        self._width = width
        self._count = count
        self._chunk = chunk
        super().__init__({
            "key": In(width),
            "stored": In(data.ArrayLayout(width, count)),
            "valid": In(count),
            "match": Out(count),
        })

    def elaborate(self, platform):
        m = Module()
        slices = range(0, self._width, self._chunk)
        for i in range(self._count):
            stored = self.stored[i]
            partial = Signal(len(slices) + 1, name=f"partial{i}")
            m.d.sync += partial.eq(Cat(
                *(stored[lo:lo + self._chunk] == self.key[lo:lo + self._chunk] for lo in slices),
                self.valid[i]))
            m.d.comb += self.match[i].eq(partial.all())
        return m
