"""The hardware parser's result as Python values, next to the golden model's.

:func:`decode` turns a packed result of :class:`hdl.flow_engine.parser.Parser` into a dict;
:func:`expected` builds the same dict from the model's :class:`sim.packets.parse.Parsed`. The two
compare with ``==``, and a mismatch prints readably (keys as :class:`~sim.flowkey.FlowKey`,
reasons by name). A field the model leaves ``None`` is ``None`` on both sides; the hardware says
0 for it (see :func:`hdl.flow_engine.parse_result.parse_result_layout`).
"""

from hdl.flow_engine.parse_result import DropReason
from sim.flowkey import FlowKey
from sim.packets.parse import Frag


__all__ = ["decode", "expected", "frame_summary"]

_LENGTH_MAX = 0xFFFF


def _field(layout, value, name):
    field = layout[name]
    return (int(value) >> field.offset) & ((1 << field.width) - 1)


def decode(layout, value):
    """Dict of a packed result ``value`` of ``layout`` (the parser's ``result_layout``)."""
    get = lambda name: _field(layout, value, name)
    drop = DropReason(get("drop"))
    frag_layout = layout["frag"].shape
    frag_value = get("frag")
    frag = None
    if _field(frag_layout, frag_value, "valid"):
        frag = Frag(ident=_field(frag_layout, frag_value, "ident"),
                    offset=_field(frag_layout, frag_value, "offset"),
                    more=bool(_field(frag_layout, frag_value, "more")),
                    proto=_field(frag_layout, frag_value, "proto"))
    elif frag_value:
        # Without the valid bit the fields must be 0: anything else shows up in the mismatch.
        frag = f"fields set without the valid bit: {frag_value:#x}"
    key = get("key")
    return {
        "drop": None if drop is DropReason.NONE else drop.name.lower(),
        # A dropped frame's key must be 0; anything else shows up as a key in the mismatch.
        "key": FlowKey.unpack(key) if key or drop is DropReason.NONE else None,
        "ip_version": get("ip_version") or None,
        "l3_offset": get("l3_offset") or None,
        "l4_offset": get("l4_offset") or None,
        "tcp_flags": get("tcp_flags"),
        "frag": frag,
        "length": get("length"),
        "port": get("port"),
    }


def expected(parsed, *, port=0):
    """What :func:`decode` must give for a frame the model parsed as ``parsed``, entering on
    ingress port ``port``."""
    return {
        "drop": parsed.drop,
        "key": parsed.key,
        "ip_version": parsed.ip_version,
        "l3_offset": parsed.l3_offset,
        "l4_offset": parsed.l4_offset,
        "tcp_flags": parsed.tcp_flags,
        "frag": parsed.frag,
        "length": min(parsed.length, _LENGTH_MAX),
        "port": port,
    }


def frame_summary(frame, limit=96):
    """A frame as hex for failure messages: its length and its first ``limit`` bytes."""
    head = bytes(frame[:limit]).hex()
    return f"{len(frame)} bytes: {head}{'...' if len(frame) > limit else ''}"
