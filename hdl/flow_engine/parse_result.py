"""What the frame parser reports for each frame: the result layout and the drop reasons.

Defined once here; the parser (:mod:`.parser`) builds its output stream from
:func:`parse_result_layout`, and the Python side (:mod:`sim.parse_result`) packs and unpacks the
same layout. The meaning of every field is that of :class:`sim.packets.parse.Parsed`, the
golden model; ``tests/test_parser_hw.py`` holds the names, the order and the bounds below equal
to the model's.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from ..wire import FLOW_KEY


__all__ = ["DropReason", "FRAG_LAYOUT", "parse_result_layout", "reason_counts_layout",
           "MAX_VLAN_TAGS", "MAX_MPLS_LABELS", "MAX_IPV6_EXT"]


# Bounds of the parser, the model's (sim.packets.parse): two tags fill the 24-bit zone.
MAX_VLAN_TAGS = 2
MAX_MPLS_LABELS = 8
MAX_IPV6_EXT = 8


class DropReason(enum.Enum, shape=4):
    """Why a frame got no key: ``NONE`` (keyed), then the model's ``DROP_REASONS`` in order."""
    NONE           = 0
    TRUNCATED_L2   = 1
    VLAN_DEPTH     = 2
    MPLS_DEPTH     = 3
    NON_IP         = 4
    BAD_IP_VERSION = 5
    TRUNCATED_L3   = 6
    BAD_IHL        = 7
    BAD_IP_LEN     = 8
    EXT_CHAIN      = 9
    TRUNCATED_L4   = 10
    BAD_TCP_OFFSET = 11


FRAG_LAYOUT = data.StructLayout({
    "valid":  1,    # the frame is an IPv4 or IPv6 fragment (the model's frag is not None)
    "more":   1,    # more-fragments flag
    "offset": 16,   # offset of the fragment's data in the datagram, bytes
    "ident":  32,   # IPv4 identification (16 bits) or IPv6 fragment identification
    "proto":  8,    # protocol every fragment of the datagram carries
})
"""Fragment information, the model's :class:`~sim.packets.parse.Frag` plus a valid bit."""


def parse_result_layout(*, user_width):
    """The layout of one parse result, with an ingress port of ``user_width`` bits.

    A field the model reports as ``None`` for the frame is 0; no valid value of those fields is
    0, so nothing is ambiguous. Drops follow the model: ``key`` and ``tcp_flags`` are 0 unless
    ``drop`` is ``NONE``; ``l4_offset`` and ``frag`` are reported only for frames that reached
    the transport header (keyed, ``TRUNCATED_L4`` or ``BAD_TCP_OFFSET``); ``l3_offset`` and
    ``ip_version`` once an IP header was located and, for ``ip_version``, its version checked.

    Fields
    ------
    key : ``FLOW_KEY.layout``
        The flow key; its packed value is :meth:`sim.flowkey.FlowKey.pack`.
    drop : :class:`DropReason`
    ip_version : 4 bits
        4, 6 or 0.
    l3_offset, l4_offset : 16 bits
        Frame offsets of the IP header and of the transport header (the fragment data for
        non-first fragments).
    tcp_flags : 9 bits
        NS/AE .. FIN, as the model counts them.
    frag : :data:`FRAG_LAYOUT`
    length : 16 bits
        Frame length in bytes; a frame longer than 65535 bytes reports 65535 (its parse is
        still exact).
    port : ``user_width`` bits
        Ingress port: ``tuser`` of the frame's first beat.
    """
    return data.StructLayout({
        "key":        FLOW_KEY.layout,
        "drop":       DropReason,
        "ip_version": unsigned(4),
        "l3_offset":  unsigned(16),
        "l4_offset":  unsigned(16),
        "tcp_flags":  unsigned(9),
        "frag":       FRAG_LAYOUT,
        "length":     unsigned(16),
        "port":       unsigned(user_width),
    })


def reason_counts_layout(*, counter_width):
    """One counter of ``counter_width`` bits per :class:`DropReason`, named by the reason in
    lower case (``none``: frames keyed), in the enum's order."""
    return data.StructLayout({reason.name.lower(): unsigned(counter_width)
                              for reason in DropReason})
