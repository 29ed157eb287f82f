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


def _any_two(bits):
    """(at least one, at least two) of ``bits`` set, as a balanced tree: each node combines its
    halves as ``(a1 | b1, a2 | b2 | (a1 & b1))``, so the depth grows with the log of the width,
    not with the square of it like an OR over every pair."""
    if len(bits) == 1:
        return bits[0], C(0, 1)
    half = len(bits) // 2
    a1, a2 = _any_two(bits[:half])
    b1, b2 = _any_two(bits[half:])
    return a1 | b1, a2 | b2 | (a1 & b1)


def second_one(vector):
    """The second-lowest set bit of ``vector`` alone, zero when fewer than two are set.

    Each bit is set when it is and exactly one below it is, worked out beside
    :func:`first_one` rather than behind it (``first_one(v & ~first_one(v))`` is twice as
    deep); "exactly one below" comes from :func:`_any_two` over the bits below."""
    vector = Value.cast(vector)
    bits = [C(0, 1)]
    for i in range(1, len(vector)):
        one, two = _any_two([vector[k] for k in range(i)])
        bits.append(vector[i] & one & ~two)
    return Cat(bits)
