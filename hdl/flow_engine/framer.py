"""What the flow engine sends for each LFT answer: the fabric frame of a packet (PACKET to its
owner, FLOW_UNKNOWN to PPM-HW, or nothing for a dropped frame) and the FLOW_STATS of a FLOW_ADD
that evicted or of a FLOW_DELETE, as jobs for the :class:`~.assembler.FrameAssembler`."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..gft.queue import Queue
from ..wire import (ENDPOINT, FID, FRAME_HEADER, MESSAGES, PPM_SLOT, FragKind, MsgType, Unit)
from .axis import network_order
from .frag_table import FragStatus
from .lft import LENGTH_WIDTH, LftOp, LftStatus
from .parse_result import DropReason


__all__ = ["Framer", "PACKET_META", "KINDS", "FRAMER_STATS"]


PACKET_META = data.StructLayout({
    "command": 1,               # a FLOW_ADD or FLOW_DELETE, not a packet
    "cmd_fid": FID.layout,      # ... and its FID
    "drop": DropReason,         # the parser's verdict
    "oversize": 1,              # longer than the packet buffer keeps
    "frag_status": FragStatus,
    "frag_proto": 8, "frag_offset": 16, "frag_ident": 32,
    "length": LENGTH_WIDTH,
    "port": 8,
    "seq": 32,                  # frames since reset: the PACKET_REF tag
})
"""What travels with a request through the fragment table and the LFT, to build its frame."""

KINDS = (MsgType.PACKET, MsgType.FLOW_UNKNOWN, MsgType.FLOW_STATS)
"""The messages a flow engine sends; a job's ``kind`` is the index in this tuple."""

FRAMER_STATS = ("packets", *(f"drop_{reason.name.lower()}" for reason in DropReason
                             if reason is not DropReason.NONE),
                "drop_oversize", "frag_first", "frag_unmatched", "lft_hits", "lft_misses")
"""The counters, named as the flow engine model's ``stats``; ``drop_oversize`` is the
hardware's own (a frame longer than the packet buffer keeps)."""


def prefix_length(msg_type):
    return FRAME_HEADER.nbytes + MESSAGES[msg_type].body.nbytes


class Framer(wiring.Component):
    """Turns each LFT response into at most one job.

    For a packet (``meta.command`` low), in the model's order of outcomes: a parser drop
    (``drop_<reason>``) or an oversize frame (``drop_oversize``) gives a job that only takes
    the frame's words from the buffer; a first fragment or an unplaced later fragment
    (``frag_first``, ``frag_unmatched``, both also ``lft_misses``) and an LFT miss
    (``lft_misses``) give FLOW_UNKNOWN to PPM-HW, with the fragment information only for the
    two fragment cases; an LFT hit gives PACKET to the owner in the FID (``lft_hits``). Every
    packet counts in ``packets``. For a command: an ADD that evicted gives FLOW_STATS of the
    victim with ``final = 0``; a DELETE gives FLOW_STATS of the command's FID with ``final = 1``
    and the entry's counts, zero when it was gone; other ADDs give nothing.

    Every frame comes from this engine, ``src = (slot, FE)``; ``mcast``, ``slot_mask`` and
    ``unit_mask`` are 0. The job's ``user`` is the frame's destination endpoint.

    Latency and backpressure
    ------------------------
    Combinational from ``resp`` into two 2-entry job queues, one for packets and one for
    statistics; ``resp.ready`` is high while both have room (two flip-flops).

    Parameters (keyword only)
    -------------------------
    response_layout : Layout
        The LFT's response layout; its ``tag`` is :data:`PACKET_META`.
    job_layout : Layout
        The assembler's job layout.
    word_bytes : int
        Bytes per buffer word (a power of two).
    max_frame_bytes : int
        The packet buffer's longest whole frame.

    Members
    -------
    resp : ``In(stream.Signature(response_layout))``
    packet_jobs, stats_jobs : ``Out(stream.Signature(job_layout))``
    slot : ``In(5)``
        This card's slot.
    stats : ``Out(stats_layout)``
        :data:`FRAMER_STATS`, 32 bits each, wrapping; an answer counts from the cycle after
        the one it is taken in.
    """

    def __init__(self, *, response_layout, job_layout, word_bytes, max_frame_bytes):
        self._response_layout = response_layout
        self._job_layout = job_layout
        self._word_bytes = word_bytes
        self._max_frame_bytes = max_frame_bytes
        self.stats_layout = data.StructLayout({name: 32 for name in FRAMER_STATS})
        super().__init__({
            "resp": In(stream.Signature(response_layout)),
            "packet_jobs": Out(stream.Signature(job_layout)),
            "stats_jobs": Out(stream.Signature(job_layout)),
            "slot": In(FRAME_HEADER["src"].format["slot"].width),
            "stats": Out(self.stats_layout),
        })

    def elaborate(self, platform):
        m = Module()
        resp = self.resp.payload
        meta = PACKET_META(resp.tag)
        shift = ceil_log2(self._word_bytes)

        packets_q = m.submodules.packet_jobs = Queue(shape=self._job_layout, depth=2)
        stats_q = m.submodules.stats_jobs = Queue(shape=self._job_layout, depth=2)
        wiring.connect(m, packets_q.o, wiring.flipped(self.packet_jobs))
        wiring.connect(m, stats_q.o, wiring.flipped(self.stats_jobs))

        def frame(msg_type, dst, fill_body, packet_bytes=0):
            """(job kind, prefix lanes) of a ``msg_type`` frame to ``dst``; ``fill_body(body)``
            sets the body's fields."""
            spec = MESSAGES[msg_type]
            header = Signal(FRAME_HEADER.layout, name=f"{msg_type.name.lower()}_header")
            body = Signal(spec.body.layout, name=f"{msg_type.name.lower()}_body")
            m.d.comb += [
                header.type.eq(msg_type), header.src.slot.eq(self.slot),
                header.src.unit.eq(Unit.FE.value), header.dst.eq(dst),
                header.length.eq(spec.body.nbytes + packet_bytes),
            ]
            fill_body(body)
            return KINDS.index(msg_type), Cat(network_order(header.as_value()),
                                              network_order(body.as_value()))

        # Endpoints as values, not signals with constant fields: Yosys writes a constant field
        # of a signal as an ``always @*`` without inputs, which Icarus never runs (X for ever).
        def owner(fid):
            return ENDPOINT.layout(Cat(fid.pp, fid.slot, C(0, ENDPOINT["rsvd"].width)))

        ppm = ENDPOINT.layout.const({"slot": PPM_SLOT, "unit": Unit.PPM_HW.value})

        def pkt_ref(ref):
            return [ref.tag.eq(meta.seq), ref.port.eq(meta.port), ref.ingress_slot.eq(self.slot),
                    ref.len.eq(meta.length)]

        # --- packets ---------------------------------------------------------------------------

        fragment = (meta.frag_status == FragStatus.FIRST) | \
                   (meta.frag_status == FragStatus.UNMATCHED)
        dropped = (meta.drop != DropReason.NONE) | meta.oversize
        hit = resp.status == LftStatus.HIT

        def packet_body(body):
            m.d.comb += [body.fid.eq(resp.fid), *pkt_ref(body.pkt)]

        def unknown_body(body):
            m.d.comb += [body.key.eq(resp.key), *pkt_ref(body.pkt)]
            with m.If(fragment):
                m.d.comb += [
                    body.frag.kind.eq(Mux(meta.frag_status == FragStatus.FIRST,
                                          FragKind.FIRST, FragKind.UNPLACED)),
                    body.frag.proto.eq(meta.frag_proto),
                    body.frag.offset.eq(meta.frag_offset),
                    body.frag.ident.eq(meta.frag_ident),
                ]

        to_owner = frame(MsgType.PACKET, owner(resp.fid), packet_body, meta.length)
        to_ppm = frame(MsgType.FLOW_UNKNOWN, ppm, unknown_body, meta.length)
        stored = Mux(meta.oversize, self._max_frame_bytes, meta.length)
        job = packets_q.i.payload
        m.d.comb += [
            job.emit.eq(~dropped),
            job.words.eq((stored + self._word_bytes - 1) >> shift),
        ]
        with m.If(hit):
            m.d.comb += [job.kind.eq(to_owner[0]), job.prefix.eq(to_owner[1]),
                         job.user.eq(owner(resp.fid)),
                         job.total.eq(prefix_length(MsgType.PACKET) + meta.length)]
        with m.Else():
            m.d.comb += [job.kind.eq(to_ppm[0]), job.prefix.eq(to_ppm[1]), job.user.eq(ppm),
                         job.total.eq(prefix_length(MsgType.FLOW_UNKNOWN) + meta.length)]

        # --- statistics of commands -------------------------------------------------------------

        evicted = resp.status == LftStatus.EVICTED
        stats_fid = FID.layout(Mux(evicted, resp.fid.as_value(), meta.cmd_fid.as_value()))

        def stats_body(body):
            m.d.comb += [body.fid.eq(stats_fid), body.final.eq(~evicted),
                         body.packets.eq(resp.packets), body.bytes.eq(resp.bytes)]

        kind, prefix = frame(MsgType.FLOW_STATS, owner(stats_fid), stats_body)
        m.d.comb += [
            stats_q.i.payload.emit.eq(1), stats_q.i.payload.kind.eq(kind),
            stats_q.i.payload.prefix.eq(prefix), stats_q.i.payload.words.eq(0),
            stats_q.i.payload.total.eq(prefix_length(MsgType.FLOW_STATS)),
            stats_q.i.payload.user.eq(owner(stats_fid)),
        ]

        # --- routing ---------------------------------------------------------------------------

        wants_stats = evicted | (resp.op == LftOp.DELETE)
        # ``resp.ready`` waits for room in both queues, whichever the answer goes to, so that
        # it is two flip-flops and not a decision on the answer's fields (which sat in front
        # of the LFT's response queue level). A full queue holds up answers for the other
        # until the assembler takes one of its jobs: the two are taken in turn.
        m.d.comb += [
            self.resp.ready.eq(packets_q.i.ready & stats_q.i.ready),
            packets_q.i.valid.eq(self.resp.valid & self.resp.ready & ~meta.command),
            stats_q.i.valid.eq(self.resp.valid & self.resp.ready & meta.command & wants_stats),
        ]

        # Counted a cycle late, from registers: the answer's handshake and fields reach the
        # counters' enables from flip-flops (``resp.valid`` through the decodes to the
        # enables of 32-bit counters spread over the die was 12.2 ns at placement, seed 2).
        counted = Signal()
        counted_meta = Signal.like(meta)
        counted_hit = Signal()
        m.d.sync += [counted.eq(packets_q.i.valid & packets_q.i.ready),
                     counted_meta.eq(meta), counted_hit.eq(hit)]
        counted_dropped = (counted_meta.drop != DropReason.NONE) | counted_meta.oversize

        def count(name, condition):
            counter = getattr(self.stats, name)
            with m.If(counted & condition):
                m.d.sync += counter.eq(counter + 1)

        count("packets", 1)
        for reason in DropReason:
            if reason is not DropReason.NONE:
                count(f"drop_{reason.name.lower()}", counted_meta.drop == reason)
        count("drop_oversize", (counted_meta.drop == DropReason.NONE) & counted_meta.oversize)
        count("frag_first", ~counted_dropped & (counted_meta.frag_status == FragStatus.FIRST))
        count("frag_unmatched",
              ~counted_dropped & (counted_meta.frag_status == FragStatus.UNMATCHED))
        count("lft_hits", ~counted_dropped & counted_hit)
        count("lft_misses", ~counted_dropped & ~counted_hit)
        return m
