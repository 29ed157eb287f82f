"""Every wire format of the system, defined once.

The flow key, the flow ID, fabric endpoints, the fabric frame header and the body of every
message of SPEC section 4 live here. Hardware takes ``FORMAT.layout``; Python takes
``FORMAT.pack``/``unpack``; :mod:`sim.wire` builds Scapy layers from the same objects; and
``docs/protocol.md`` is generated from them (``make docs``).

A fabric frame is ``FrameHeader`` + the body named by :data:`MESSAGES` for its type + (for
counter messages) ``count`` repeated ``CounterRecord`` + (for packet-carrying messages) the
packet bytes described by the body's ``pkt`` field. ``FrameHeader.length`` counts every byte
after the header.
"""

from amaranth.lib import enum

from .format import Field, Format


__all__ = [
    "FLOW_KEY", "FID", "ENDPOINT", "PACKET_REF", "FRAME_HEADER", "COUNTER_RECORD", "FRAG_INFO",
    "FragKind",
    "MsgType", "ErrorCode", "CounterOp", "CounterStatus", "Direction", "Unit", "PPM_SLOT",
    "MessageSpec", "MESSAGES", "MAX_SLOTS", "MAX_PPS",
]


# --- Flow key --------------------------------------------------------------------------------

FLOW_KEY = Format("FlowKey", [
    Field("src_addr", 128, "Source address. IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), so one "
                           "key covers both families and the family is never ambiguous."),
    Field("dst_addr", 128, "Destination address, same encoding."),
    Field("src_port", 16,  "TCP/UDP/SCTP source port; ICMP/ICMPv6 echo identifier; else 0."),
    Field("dst_port", 16,  "TCP/UDP/SCTP destination port; ICMP/ICMPv6 type<<8|code for "
                           "non-echo messages; else 0."),
    Field("proto",    8,   "IP protocol number (IPv6: the upper-layer header after extensions)."),
    Field("zone",     24,  "Zone: the VLAN stack the flow rides on, outer VID<<12 | inner VID "
                           "(0 when untagged). Identical in both directions of a session."),
], doc="The 6-tuple that names one direction of traffic; 40 bytes, the input of the flow hash.")


# --- Flow ID and endpoints -------------------------------------------------------------------

MAX_SLOTS = 31      # slot 31 is the PPM's
MAX_PPS = 30        # units 30 and 31 name the flow engine and 'all PPs'
PPM_SLOT = 31


class Direction(enum.Enum, shape=1):
    FORWARD = 0
    REVERSE = 1


FID = Format("FID", [
    Field("slot",  5,  "Owner slot (card) number."),
    Field("pp",    5,  "Owner packet processor on that slot."),
    Field("dir",   Direction, "Which flow of the session: forward (as first seen) or reverse."),
    Field("index", 21, "Session index allocated by PPM-HW; unique among live sessions, so the "
                       "FID is unique among live flows and stable while the entry moves."),
], doc="Flow ID: who owns the flow, and which flow it is.", opaque=True)


class Unit(enum.Enum, shape=5):
    """Unit numbers within a slot that are not packet processors."""
    FE = 30         # the card's flow engine
    ALL_PPS = 31    # multicast only: every PP of the slot
    PPM_HW = 0      # on slot PPM_SLOT
    PPM_SW = 1      # on slot PPM_SLOT


ENDPOINT = Format("Endpoint", [
    Field("rsvd", 6, "Reserved, zero."),
    Field("slot", 5, "Slot number; 31 is the PPM."),
    Field("unit", 5, "PP number 0..29, 30 = flow engine; on slot 31: 0 = PPM-HW, 1 = PPM-SW."),
], doc="A fabric endpoint.")


class FragKind(enum.Enum, shape=8):
    NONE = 0
    FIRST = 1
    UNPLACED = 2


# --- Message types and codes -----------------------------------------------------------------

class MsgType(enum.Enum, shape=8):
    FLOW_UNKNOWN     = 0x01
    ASSIGN_REQ       = 0x02
    ASSIGN_RESP      = 0x03
    OWNER            = 0x04
    OWNER_REFUSE     = 0x05
    SESSION_BIND     = 0x06
    BIND_ACK         = 0x07
    PACKET           = 0x08
    FLOW_ADD         = 0x09
    FLOW_DELETE      = 0x0A
    FLOW_STATS       = 0x0B
    SESSION_TEARDOWN = 0x0C
    PREDICT_ADD      = 0x0D
    COUNTER_REQ      = 0x10
    COUNTER_REPLY    = 0x11
    COUNTER_NOTIFY   = 0x12
    ERROR            = 0x7F


class ErrorCode(enum.Enum, shape=8):
    NONE            = 0x00
    MALFORMED       = 0x01  # body shorter than its type needs, or length field disagrees
    UNKNOWN_TYPE    = 0x02
    OUT_OF_RANGE    = 0x03  # slot/pp/counter/index beyond what is configured
    NOT_OWNER       = 0x04  # a PP acted on a flow or counter it does not own
    TABLE_FULL      = 0x05  # GFT insert failed; nothing was overwritten
    PREDICT_FULL    = 0x06
    COUNTER_FULL    = 0x07
    NO_SUCH_FLOW    = 0x08
    NO_SUCH_COUNTER = 0x09
    KEY_CONFLICT    = 0x0A  # SESSION_BIND names a reverse key bound to another session
    STALE           = 0x0B  # the flow is no longer in the state the message expects
    NO_OWNER        = 0x0C  # every owner candidate refused
    PENDING_FULL    = 0x0D  # too many packets held for one tentative flow
    TIMEOUT         = 0x0E  # tentative flow aged out before its owner bound it


class CounterOp(enum.Enum, shape=8):
    ALLOC_ACC  = 0x01  # value = high threshold, param = low threshold; reply value = counter id
    ALLOC_RATE = 0x02  # value = bucket size (max tokens), param = fill rate (tokens/s)
    SET        = 0x03  # value = this PP's current local value (accumulator instance)
    INC        = 0x04  # value = amount added to this PP's instance
    DEC        = 0x05  # value = amount taken from this PP's instance
    QUERY      = 0x06  # accumulator: reply value = sum; rate: take `value` tokens, ACK or NACK
    RELEASE    = 0x07


class CounterStatus(enum.Enum, shape=8):
    REQUEST     = 0x00  # in a COUNTER_REQ
    ACK         = 0x01
    NACK        = 0x02  # rate counter query not conforming
    ERROR       = 0x03  # see the record's param for the ErrorCode
    CONFORMING     = 0x10  # in COUNTER_NOTIFY
    NON_CONFORMING = 0x11


# --- Frame header and shared pieces ----------------------------------------------------------

FRAME_HEADER = Format("FrameHeader", [
    Field("type",      MsgType, "Message type."),
    Field("mcast",     8,  "1: deliver to every (slot, unit) in slot_mask x unit_mask; 0: unicast to dst."),
    Field("src",       ENDPOINT, "Sender; stamped by the fabric, never trusted from the sender."),
    Field("dst",       ENDPOINT, "Destination when unicast."),
    Field("slot_mask", 32, "Multicast: one bit per slot."),
    Field("unit_mask", 32, "Multicast: one bit per unit (bit 30 = flow engines)."),
    Field("length",    16, "Bytes after the header: body, counter records, packet."),
], doc="Every fabric frame starts with this header (16 bytes).")

PACKET_REF = Format("PacketRef", [
    Field("tag",  32, "Trace tag: the ingress card's packet sequence number (the model uses the "
                      "capture index); carried unchanged so every delivery can be traced."),
    Field("port", 8,  "Ingress data port on the ingress card."),
    Field("ingress_slot", 8, "Card the packet entered on."),
    Field("len",  16, "Packet bytes attached at the end of the frame."),
], doc="Describes the packet attached to a packet-carrying message.")

FRAG_INFO = Format("FragInfo", [
    Field("kind",   FragKind, "0: not a fragment; 1: first fragment (offset 0): the PPM records its "
                        "ports; 2: later fragment whose datagram the card could not place: "
                        "the PPM places it from its own table or drops it (frag_unmatched)."),
    Field("proto",  8,  "Protocol every fragment of the datagram carries (IPv6: the fragment "
                        "header's next header)."),
    Field("offset", 16, "Fragment offset in bytes."),
    Field("ident",  32, "IPv4 identification or IPv6 fragment identification."),
], doc="Fragment information a flow engine passes with FLOW_UNKNOWN, so that fragments of one "
       "datagram entering on different cards still reach one owner.")

COUNTER_RECORD = Format("CounterRecord", [
    Field("op",      CounterOp, "Operation."),
    Field("status",  CounterStatus, "REQUEST in requests; ACK/NACK/ERROR in replies."),
    Field("counter", 16, "Counter id (ignored by ALLOC_*; the reply carries the new id)."),
    Field("group",   16, "Group id: the PPs that report this event (notifications go to them)."),
    Field("value",   64, "Operand or result, per op."),
    Field("param",   64, "Second operand (thresholds, fill rate) or ErrorCode in an ERROR reply."),
], doc="One counter operation; a COUNTER_REQ/REPLY carries `count` of them.")


# --- Message bodies --------------------------------------------------------------------------

class MessageSpec:
    """What follows the header for one message type."""

    def __init__(self, type, body, *, packet=False, records=False, direction="", doc=""):
        self.type = type
        self.body = body
        self.packet = packet      # the body has a `pkt` PacketRef and packet bytes follow
        self.records = records    # the body has a `count` and that many COUNTER_RECORDs follow
        self.direction = direction
        self.doc = doc


def _body(name, fields):
    return Format(name, fields)


MESSAGES = {spec.type: spec for spec in [
    MessageSpec(MsgType.FLOW_UNKNOWN, _body("FlowUnknown", [
        Field("key", FLOW_KEY, "Key the flow engine parsed (ports 0 for kind-2 fragments)."),
        Field("frag", FRAG_INFO),
        Field("pkt", PACKET_REF),
    ]), packet=True, direction="FE -> PPM-HW",
        doc="LFT miss: the packet goes to the PPM for an owner."),

    MessageSpec(MsgType.ASSIGN_REQ, _body("AssignReq", [
        Field("fid", FID, "Tentative FID (index allocated, slot/pp zero)."),
        Field("key", FLOW_KEY),
        Field("ingress_slot", 8),
        Field("attempt", 8, "0 for the first request; counts refusals."),
        Field("refused_by", ENDPOINT, "The PP that just refused (attempt > 0)."),
    ]), direction="PPM-HW -> PPM-SW", doc="Ask software to pick an owner for a new session."),

    MessageSpec(MsgType.ASSIGN_RESP, _body("AssignResp", [
        Field("fid", FID, "The tentative FID of the request."),
        Field("ok", 8, "1: owner chosen; 0: no owner available (the packet is dropped, counted)."),
        Field("owner", ENDPOINT),
    ]), direction="PPM-SW -> PPM-HW", doc="Software's choice of owner."),

    MessageSpec(MsgType.OWNER, _body("Owner", [
        Field("fid", FID, "Forward FID, now with the owner's slot and pp."),
        Field("predict", 8, "1: the flow matched a predict entry of parent_fid."),
        Field("parent_fid", FID),
        Field("key", FLOW_KEY, "Forward key."),
        Field("pkt", PACKET_REF),
    ]), packet=True, direction="PPM-HW -> PP", doc="You are offered ownership of this session."),

    MessageSpec(MsgType.OWNER_REFUSE, _body("OwnerRefuse", [
        Field("fid", FID),
        Field("key", FLOW_KEY, "Forward key from OWNER: if the offer went stale meanwhile, the "
                               "PPM still routes the returned packet by it."),
        Field("pkt", PACKET_REF),
    ]), packet=True, direction="PP -> PPM-HW", doc="Refusal; the packet comes back for the next owner."),

    MessageSpec(MsgType.SESSION_BIND, _body("SessionBind", [
        Field("fid", FID, "Forward FID from OWNER."),
        Field("fwd_key", FLOW_KEY),
        Field("rev_key", FLOW_KEY, "Reverse flow as the owner expects it (may differ from the "
                                   "swapped tuple, e.g. NAT)."),
        Field("load", 16, "Owner's load (sessions), used by PPM-SW's least-loaded policy."),
        Field("pkt", PACKET_REF),
    ]), packet=True, direction="PP -> PPM-HW", doc="Accept ownership: bind forward and reverse."),

    MessageSpec(MsgType.BIND_ACK, _body("BindAck", [
        Field("fid", FID),
        Field("rev_fid", FID),
        Field("pkt", PACKET_REF),
    ]), packet=True, direction="PPM-HW -> PP", doc="Both flows bound; process the packet."),

    MessageSpec(MsgType.PACKET, _body("Packet", [
        Field("fid", FID, "FID of the flow the packet belongs to."),
        Field("pkt", PACKET_REF),
    ]), packet=True, direction="FE or PPM-HW -> PP",
        doc="A packet of a known flow, sent to its owner (by the LFT, or by the PPM on a GFT hit)."),

    MessageSpec(MsgType.FLOW_ADD, _body("FlowAdd", [
        Field("key", FLOW_KEY),
        Field("fid", FID),
    ]), direction="PPM-HW -> FE", doc="Install a learned flow in the card's LFT."),

    MessageSpec(MsgType.FLOW_DELETE, _body("FlowDelete", [
        Field("key", FLOW_KEY),
        Field("fid", FID),
    ]), direction="PPM-HW -> FEs (multicast over the aware mask)",
        doc="Remove a flow from the LFT; answer FLOW_STATS to the owner."),

    MessageSpec(MsgType.FLOW_STATS, _body("FlowStats", [
        Field("fid", FID),
        Field("final", 8, "1: answer to FLOW_DELETE; 0: the entry was evicted (partial)."),
        Field("packets", 32),
        Field("bytes", 48),
    ]), direction="FE -> owner PP", doc="What this card forwarded for the flow from its LFT."),

    MessageSpec(MsgType.SESSION_TEARDOWN, _body("SessionTeardown", [
        Field("fid", FID, "Forward FID."),
        Field("fwd_key", FLOW_KEY),
        Field("rev_key", FLOW_KEY),
    ]), direction="PP -> PPM-HW", doc="The session is over: free both flows everywhere."),

    MessageSpec(MsgType.PREDICT_ADD, _body("PredictAdd", [
        Field("parent_fid", FID),
        Field("key", FLOW_KEY, "Predicted child key; fields under a zero care bit are wildcards."),
        Field("care", FLOW_KEY, "Care mask, bit for bit over the key."),
        Field("timeout", 16, "Seconds until an unmatched entry expires (0: table default)."),
    ]), direction="PP -> PPM-HW", doc="Expect a child session of this parent."),

    MessageSpec(MsgType.COUNTER_REQ, _body("CounterReq", [
        Field("seq", 16, "Echoed in the reply."),
        Field("count", 8, "Number of COUNTER_RECORDs that follow."),
    ]), records=True, direction="PP -> PPM-HW", doc="Counter operations."),

    MessageSpec(MsgType.COUNTER_REPLY, _body("CounterReply", [
        Field("seq", 16),
        Field("count", 8),
    ]), records=True, direction="PPM-HW -> PP", doc="One reply record per request record."),

    MessageSpec(MsgType.COUNTER_NOTIFY, _body("CounterNotify", [
        Field("counter", 16),
        Field("state", CounterStatus, "CONFORMING or NON_CONFORMING."),
        Field("sum", 64, "The sum when the threshold was crossed."),
    ]), direction="PPM-HW -> group (multicast)", doc="A threshold crossing (hysteresis)."),

    MessageSpec(MsgType.ERROR, _body("Error", [
        Field("reason", ErrorCode),
        Field("orig_type", 8, "Type of the message that failed."),
        Field("fid", FID, "FID the failed message named, if any."),
        Field("detail", 16, "Reason-specific detail (e.g. counter id)."),
    ]), direction="PPM-HW -> sender", doc="The message was refused; nothing was changed."),
]}
