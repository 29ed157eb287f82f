"""Fabric messages in Python: encode/decode bytes and Scapy layers, all derived from
:mod:`hdl.wire.formats`.

Layers of the protocol, bottom up: bytes (:func:`encode` / :func:`decode`) -> :class:`Message`
(header fields, body dict, counter records, packet bytes). The Scapy layers
(:func:`scapy_layers`) dissect the same bytes for printing and for writing pcaps of fabric
traffic; tests hold them equal to the codec.
"""

from dataclasses import dataclass, field

from hdl.wire import (FID, FRAME_HEADER, COUNTER_RECORD, MESSAGES, MsgType, ErrorCode,
                      Unit, PPM_SLOT)


__all__ = ["Message", "WireError", "encode", "decode", "endpoint", "PPM_HW", "PPM_SW", "fe",
           "make_fid", "fid_parts", "fid_owner", "decode_or_count",
           "scapy_layers"]


def endpoint(slot, unit):
    """Endpoint as the (slot, unit) tuple used throughout the model."""
    return (int(slot), int(unit))


PPM_HW = endpoint(PPM_SLOT, Unit.PPM_HW.value)
PPM_SW = endpoint(PPM_SLOT, Unit.PPM_SW.value)


def fe(slot):
    """The flow engine of a card."""
    return endpoint(slot, Unit.FE.value)


class WireError(Exception):
    """A frame that cannot be decoded; ``reason`` is the :class:`ErrorCode` to answer with."""

    def __init__(self, reason, text, msg_type=0):
        super().__init__(text)
        self.reason = reason
        self.msg_type = msg_type


@dataclass
class Message:
    """One fabric frame, decoded.

    ``src``/``dst`` are (slot, unit) tuples; ``mcast`` frames use ``slot_mask`` x ``unit_mask``
    instead of ``dst``. ``body`` holds the fields of ``MESSAGES[type].body`` (the packet
    reference's ``len`` is filled in by :func:`encode`).
    """
    type: MsgType
    body: dict
    src: tuple = (0, 0)
    dst: tuple = (0, 0)
    mcast: bool = False
    slot_mask: int = 0
    unit_mask: int = 0
    records: list = field(default_factory=list)
    packet: bytes = b""

    @property
    def spec(self):
        return MESSAGES[self.type]


def _ep(value):
    slot, unit = value
    return {"slot": slot, "unit": unit}


def encode(msg):
    """Message -> frame bytes. Lengths and counts are derived, never taken from the caller."""
    spec = MESSAGES[MsgType(msg.type)]
    body = dict(msg.body)
    if spec.packet:
        body["pkt"] = dict(body.get("pkt", {}), len=len(msg.packet))
    elif msg.packet:
        raise ValueError(f"{spec.type.name} carries no packet")
    if spec.records:
        body["count"] = len(msg.records)
    elif msg.records:
        raise ValueError(f"{spec.type.name} carries no counter records")
    payload = spec.body.to_bytes(body)
    payload += b"".join(COUNTER_RECORD.to_bytes(r) for r in msg.records)
    payload += bytes(msg.packet)
    header = FRAME_HEADER.to_bytes(type=spec.type, mcast=int(msg.mcast), src=_ep(msg.src),
                                   dst=_ep(msg.dst), slot_mask=msg.slot_mask,
                                   unit_mask=msg.unit_mask, length=len(payload))
    return header + payload


def decode_or_count(frame, stats):
    """Decode a frame arriving at an endpoint that answers nobody on a bad frame (flow engines,
    PPs, PPM-SW): None, counted in ``stats["bad_frames"]``, when it does not decode."""
    try:
        return decode(frame)
    except WireError:
        stats["bad_frames"] += 1
        return None


def decode(frame):
    """Frame bytes -> Message; raises :class:`WireError` with the reason a PPM would answer."""
    frame = bytes(frame)
    if len(frame) < FRAME_HEADER.nbytes:
        raise WireError(ErrorCode.MALFORMED, f"frame of {len(frame)} bytes has no full header")
    hdr = FRAME_HEADER.from_bytes(frame)
    raw_type = hdr["type"]
    if not isinstance(raw_type, MsgType) or raw_type not in MESSAGES:
        raise WireError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {int(raw_type):#x}", int(raw_type))
    spec = MESSAGES[raw_type]
    payload = frame[FRAME_HEADER.nbytes:]
    if hdr["length"] != len(payload):
        raise WireError(ErrorCode.MALFORMED, f"{spec.type.name}: length field {hdr['length']} "
                        f"but {len(payload)} bytes follow", raw_type.value)
    if len(payload) < spec.body.nbytes:
        raise WireError(ErrorCode.MALFORMED, f"{spec.type.name}: body needs {spec.body.nbytes} "
                        f"bytes, got {len(payload)}", raw_type.value)
    body = spec.body.from_bytes(payload)
    rest = payload[spec.body.nbytes:]
    records = []
    if spec.records:
        need = body["count"] * COUNTER_RECORD.nbytes
        if len(rest) != need:
            raise WireError(ErrorCode.MALFORMED, f"{spec.type.name}: {body['count']} records need "
                            f"{need} bytes, got {len(rest)}", raw_type.value)
        records = [COUNTER_RECORD.from_bytes(rest[i:i + COUNTER_RECORD.nbytes])
                   for i in range(0, need, COUNTER_RECORD.nbytes)]
        rest = b""
    if spec.packet:
        if body["pkt"]["len"] != len(rest):
            raise WireError(ErrorCode.MALFORMED, f"{spec.type.name}: packet length "
                            f"{body['pkt']['len']} but {len(rest)} bytes follow", raw_type.value)
    elif rest:
        raise WireError(ErrorCode.MALFORMED, f"{spec.type.name}: {len(rest)} trailing bytes",
                        raw_type.value)
    return Message(type=raw_type, body=body, src=(hdr["src"]["slot"], hdr["src"]["unit"]),
                   dst=(hdr["dst"]["slot"], hdr["dst"]["unit"]), mcast=bool(hdr["mcast"]),
                   slot_mask=hdr["slot_mask"], unit_mask=hdr["unit_mask"], records=records,
                   packet=rest if spec.packet else b"")


# --- Scapy layers ----------------------------------------------------------------------------

def _flat_fields(fmt, prefix=""):
    """(name, width, enum) for every leaf field, nested formats flattened as prefix_name."""
    for f in fmt.fields:
        if f.format is not None:
            yield from _flat_fields(f.format, f"{prefix}{f.name}_")
        else:
            yield f"{prefix}{f.name}", f.width, f.enum


_layers = None


def scapy_layers():
    """Build (once) and return ``{"header": FabricHeader, MsgType: body layer, "record": ...}``.

    Each layer's fields are the flattened fields of the format, so
    ``FabricHeader(frame).show()`` prints a whole message, and fabric traffic can be written to a
    pcap (linktype DLT_USER0 = 147) for Wireshark.
    """
    global _layers
    if _layers is not None:
        return _layers
    from scapy.fields import BitField, BitEnumField, PacketListField
    from scapy.packet import Packet, Raw, bind_layers

    def fields_of(fmt):
        out = []
        for name, width, enum in _flat_fields(fmt):
            if enum is not None:
                out.append(BitEnumField(name, 0, width, {m.value: m.name for m in enum}))
            else:
                out.append(BitField(name, 0, width))
        return out

    def make(name, fmt, extra=()):
        cls = type(name, (Packet,), {"name": name, "fields_desc": fields_of(fmt) + list(extra)})
        return cls

    record = make("CounterRecord", COUNTER_RECORD)
    record.extract_padding = lambda self, s: (b"", s)
    header = make("FabricHeader", FRAME_HEADER)
    layers = {"header": header, "record": record}
    for msg_type, spec in MESSAGES.items():
        extra = []
        if spec.records:
            extra = [PacketListField("records", [], record, count_from=lambda p: p.count)]
        body = make(spec.body.name, spec.body, extra)
        bind_layers(header, body, type=msg_type.value)
        if spec.packet:
            bind_layers(body, Raw)
        layers[msg_type] = body
    _layers = layers
    return layers


# --- Flow ID helpers -------------------------------------------------------------------------

def make_fid(slot, pp, index, direction=0):
    """Packed FID (an int) from its parts."""
    return FID.pack(slot=slot, pp=pp, dir=direction, index=index)


def fid_parts(fid):
    """Packed FID -> (slot, pp, direction, index)."""
    f = FID.unpack(fid)
    return f["slot"], f["pp"], f["dir"].value, f["index"]


def fid_owner(fid):
    """The (slot, pp) endpoint that owns ``fid``."""
    slot, pp, _, _ = fid_parts(fid)
    return (slot, pp)
