"""One-hot helpers for choosing among table entries without priority chains (GFT and flow engine).

A chain of ``with m.If(hit[i])`` assignments is as deep as there are entries (16 levels of
muxes for 16 fragment-table entries); these stay two or three LUT levels deep.
"""

from amaranth.hdl import *


__all__ = ["select", "first_one"]


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
