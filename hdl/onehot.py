"""One-hot helpers for choosing among table entries without priority chains (GFT and flow engine).

A chain of ``with m.If(hit[i])`` assignments is as deep as there are entries (16 levels of
muxes for 16 fragment-table entries); these stay two or three LUT levels deep.
"""

from amaranth.hdl import *


__all__ = ["select", "first_one", "second_one", "third_one"]


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


def _at_least(bits, n):
    """``(at least 1, ..., at least n)`` of ``bits`` set, as a balanced tree: each node
    combines its halves' flags as ``at least k = OR over i + j = k of (a_i & b_j)`` (with
    ``a_0 = b_0 = 1``), so the depth grows with the log of the width, not with its square like
    an OR over every pair."""
    if len(bits) == 1:
        return [bits[0]] + [C(0, 1)] * (n - 1)
    half = len(bits) // 2
    a = [C(1, 1)] + _at_least(bits[:half], n)
    b = [C(1, 1)] + _at_least(bits[half:], n)
    return [Cat(a[i] & b[k - i] for i in range(k + 1)).any() for k in range(1, n + 1)]


def _nth_one(vector, n):
    """The ``n``-th lowest set bit of ``vector`` alone (``n`` from 1), zero when fewer are set:
    each bit is set when it is and exactly ``n - 1`` below it are, worked out beside the
    lower ones rather than behind them (``first_one(v & ~first_one(v))`` is twice as deep)."""
    vector = Value.cast(vector)
    bits = []
    for i in range(len(vector)):
        if i < n - 1:
            bits.append(C(0, 1))
            continue
        if n == 1:
            below_ok = ~vector[:i].any() if i else C(1, 1)
        else:
            counts = _at_least([vector[k] for k in range(i)], n)
            below_ok = counts[n - 2] & ~counts[n - 1]
        bits.append(vector[i] & below_ok)
    return Cat(bits)


def second_one(vector):
    """The second-lowest set bit of ``vector`` alone, zero when fewer than two are set."""
    return _nth_one(vector, 2)


def third_one(vector):
    """The third-lowest set bit of ``vector`` alone, zero when fewer than three are set."""
    return _nth_one(vector, 3)
