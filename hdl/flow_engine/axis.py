"""AXI4-Stream as an Amaranth interface, defined once for every data port of the flow engine,
and the byte order between it and the wire formats."""

from amaranth.hdl import Cat, Mux, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["AxiStreamSignature", "kept_bytes", "network_order"]


class AxiStreamSignature(wiring.Signature):
    """Signature of an AXI4-Stream channel, seen from the transmitter.

    Members are named as in the AMBA AXI4-Stream specification, so a component port
    ``s_axis: In(AxiStreamSignature(...))`` exports to Verilog as ``s_axis__tdata``,
    ``s_axis__tkeep``, ... which cocotbext-axi finds with the prefix ``"s_axis_"``.

    Byte lane ``i`` is ``tdata[8*i+7:8*i]`` and carries the earlier byte the lower ``i`` is: the
    first byte of a frame is in lane 0 of its first beat (AXI4-Stream byte order).

    Parameters
    ----------
    data_width : int
        Width of ``tdata`` in bits; a positive multiple of 8.
    user_width : int
        Width of ``tuser`` in bits; a positive integer.

    Members
    -------
    tdata : ``Out(data_width)``
        Data bytes of the beat.
    tkeep : ``Out(data_width // 8)``
        One bit per byte lane: the lane holds a byte of the frame.
    tvalid : ``Out(1)``
        The transmitter offers a beat.
    tready : ``In(1)``
        The receiver takes the beat; a beat transfers in a cycle where ``tvalid`` and ``tready``
        are both high.
    tlast : ``Out(1)``
        The beat is the last one of its frame.
    tuser : ``Out(user_width)``
        Sideband information (the flow engine puts the ingress port here).

    Raises
    ------
    TypeError
        If ``data_width`` is not a positive multiple of 8, or ``user_width`` is not a positive
        integer.
    """

    def __init__(self, data_width, user_width):
        if (not isinstance(data_width, int) or isinstance(data_width, bool) or data_width <= 0 or
                data_width % 8):
            raise TypeError(f"Data width must be a positive multiple of 8, not {data_width!r}")
        if not isinstance(user_width, int) or isinstance(user_width, bool) or user_width <= 0:
            raise TypeError(f"User width must be a positive integer, not {user_width!r}")
        self._data_width = data_width
        self._user_width = user_width
        super().__init__({
            "tdata":  Out(data_width),
            "tkeep":  Out(data_width // 8),
            "tvalid": Out(1),
            "tready": In(1),
            "tlast":  Out(1),
            "tuser":  Out(user_width),
        })

    @property
    def data_width(self):
        return self._data_width

    @property
    def user_width(self):
        return self._user_width

    def __eq__(self, other):
        return (type(other) is type(self) and other.data_width == self.data_width and
                other.user_width == self.user_width)

    def __repr__(self):
        return f"AxiStreamSignature({self._data_width}, {self._user_width})"


def network_order(value):
    """The bytes of ``value`` reversed: between a wire format's packed value and its lanes.

    A format's packed value has its first byte on the wire in its most significant bits
    (:mod:`hdl.wire.format`); on AXI4-Stream the first byte is in lane 0, the least
    significant. So ``network_order(header.as_value())`` is the header as lanes, and
    ``network_order(lanes)`` the packed value of bytes received in lanes. ``value`` must be a
    whole number of bytes.
    """
    value = Value.cast(value)
    if len(value) % 8:
        raise ValueError(f"A value of {len(value)} bits is not a whole number of bytes")
    return Cat(*reversed([value[i:i + 8] for i in range(0, len(value), 8)]))


def kept_bytes(keep):
    """Bytes of a ``tlast`` beat: its lanes up to and including the highest kept one (0 when
    none is kept). A tree of muxes, log2(lanes) deep."""
    if len(keep) == 1:
        return keep
    half = len(keep) // 2
    low, high = keep[:half], keep[half:]
    return Mux(high.any(), half + kept_bytes(high), kept_bytes(low))
