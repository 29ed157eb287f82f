"""Fill levels whose next value waits for the handshake last."""

from amaranth.hdl import *


__all__ = ["after_step"]


def after_step(level, inc, dec, f=lambda n: n):
    """``f(level + inc - dec)``, for a level that moves by at most one each way per cycle.

    The three possible results are worked out from ``level`` alone and ``inc`` and ``dec``
    choose among them, so that those two (handshakes, often late: a consumer's ready may
    depend on a payload just read from LUT RAM) are one LUT from the flip-flops that take
    the result, not in front of an adder, a carry chain and a compare. ``f`` is any function
    of the new level, a compare for a ``ready`` or ``valid`` flag, say.
    """
    up, down = inc & ~dec, dec & ~inc
    return Mux(up, f(level + 1), Mux(down, f(level - 1), f(level)))
