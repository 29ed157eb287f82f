"""One-hot helpers for choosing among table entries without priority chains (GFT and flow engine).

A chain of ``with m.If(hit[i])`` assignments is as deep as there are entries (16 levels of
muxes for 16 fragment-table entries); these stay two or three LUT levels deep.
"""

from amaranth.hdl import *


__all__ = ["select", "first_one", "second_one"]


def select(onehot, values):
    """The value whose bit is set in ``onehot`` (zero when none is): an AND-OR over the values,
    which must have equal widths. With more than one bit set, the OR of the chosen values."""
    values = [Value.cast(value) for value in values]
    result = C(0, len(values[0]))
    for i, value in enumerate(values):
        result = result | Mux(onehot[i], value, 0)
    return result


def first_one(vector):
    """The lowest set bit of ``vector`` alone, zero when none is.

    Each bit is set when it is and none below it is (an OR tree per bit, two or three LUT
    levels for 16 bits), not ``v & -v``: on ECP5 that carry chain was split over several slices
    and, behind the fragment table's registered live bits, took over 5 ns of a 125 MHz cycle."""
    vector = Value.cast(vector)
    return Cat(vector[i] & ~vector[:i].any() if i else vector[0] for i in range(len(vector)))


def second_one(vector):
    """The second-lowest set bit of ``vector`` alone, zero when fewer than two are set.

    Each bit is set when it is and exactly one below it is, worked out beside
    :func:`first_one` rather than behind it (``first_one(v & ~first_one(v))`` is twice as
    deep). The pairwise terms grow with the square of the width: meant for a few bits."""
    vector = Value.cast(vector)
    bits = []
    for i in range(len(vector)):
        below = [vector[k] for k in range(i)]
        two = Cat(below[a] & below[b] for a in range(len(below))
                  for b in range(a + 1, len(below))).any() if len(below) > 1 else C(0, 1)
        bits.append(vector[i] & Cat(below).any() & ~two if below else C(0, 1))
    return Cat(bits)
