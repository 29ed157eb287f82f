"""The card flow engine (patent FIG. 3): data frames in, fabric frames out, the LFT kept by
FLOW_ADD and FLOW_DELETE from PPM-HW.

The golden model is :class:`sim.model.flow_engine.FlowEngine`; for every frame and every fabric
message this block sends the same fabric frames, byte for byte, and counts the same outcomes.
``docs/flow_engine.md`` shows the blocks and the path of a frame through them.
"""

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..gft.queue import Queue
from ..wire import ENDPOINT, FRAME_HEADER
from .arbiter import RoundRobin
from .assembler import FrameAssembler
from .axis import AxiStreamSignature
from .command_rx import RX_STATS, CommandReceiver
from .frag_table import FragmentTable, FragStatus
from .framer import FRAMER_STATS, KINDS, PACKET_META, Framer, prefix_length
from .lft import LftOp, LocalFlowTable
from .packet_buffer import PacketBuffer
from .parse_result import DropReason
from .parser import Parser
from .register_slice import RegisterSlice


__all__ = ["FlowEngine", "PORT_WIDTH", "ENGINE_STATS"]


PORT_WIDTH = 8
"""Width of ``s_axis.tuser``: the ingress port, as wide as ``PacketRef.port``."""

ENGINE_STATS = (*FRAMER_STATS, *RX_STATS)
"""The counters that are the model's ``FlowEngine.stats``, by the model's names."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class FlowEngine(wiring.Component):
    """A card's flow engine.

    Path of a frame
    ---------------
    Each beat on ``s_axis`` goes both to the :class:`~.parser.Parser` and to the
    :class:`~.packet_buffer.PacketBuffer` (block RAM), which holds the frame's bytes while
    its key is worked out, each through a two-entry queue of its own (the parser's then through
    a register slice). ``now`` goes with each beat into the parser's queue, beside the ingress
    port in its ``tuser``; the parser keeps the first beat's: that is the frame's timestamp.
    Its result, the key or a drop reason, goes through the
    :class:`~.frag_table.FragmentTable` (later fragments get their datagram's ports), then into
    the :class:`~.lft.LocalFlowTable` (hash, lookup; a dropped frame or a fragment for the PPM
    passes as a NOP, keeping its place). The
    :class:`~.framer.Framer` turns each answer into a job for the
    :class:`~.assembler.FrameAssembler`, which writes the fabric header and message body and
    then the frame's bytes from the buffer onto ``m_axis``: PACKET to the owner on an LFT hit,
    FLOW_UNKNOWN to PPM-HW otherwise, nothing for a dropped frame (its bytes are skipped).

    Path of a command
    -----------------
    ``fabric_in`` frames are checked by the :class:`~.command_rx.CommandReceiver`; FLOW_ADD and
    FLOW_DELETE from PPM-HW become LFT requests, merged round-robin with the packets'. The LFT
    answers an ADD that evicted, and every DELETE, with the counts of the entry; the framer
    makes them FLOW_STATS to the flow's owner, which share ``m_axis`` with the packets (frames
    alternate when both wait).

    Ordering and races
    ------------------
    Packets leave in arrival order. The LFT applies requests one at a time in the order they
    enter it (see its hazard rule), so a packet racing a FLOW_ADD or FLOW_DELETE of its flow is
    forwarded by the table as it was before or after the change, and its count lands in the
    entry that forwarded it. This is the model's behaviour for that order of the two events.

    Line rate
    ---------
    The input takes a beat per clock; every block behind takes a frame in fewer cycles than a
    64-byte frame's 8 beats at 64 bits: the fragment table 1 (6 for a fragment), the LFT 1
    (6 behind another request on the same bucket), the assembler one cycle more than the beats
    of the frame it sends, 4 (PACKET) or 6 (FLOW_UNKNOWN) at 256 bits. So ``fabric_width`` is
    what decides whether misses keep up: 72 bytes of header and body make a 64-byte frame's
    FLOW_UNKNOWN 136 bytes, 5 beats at 256 bits, 9 at 128.

    Bad input
    ---------
    A frame the parser cannot key is dropped with its reason; a frame longer than
    ``max_frame_bytes`` is dropped as ``drop_oversize`` (the model has no such limit: the
    hardware must hold a frame until its end is parsed); a bad fabric frame, an unauthorised
    FLOW_ADD/FLOW_DELETE or any other message is counted and ignored. None of them stops the
    pipeline.

    Parameters (keyword only)
    -------------------------
    data_width : int
        ``s_axis`` width: 8 times a power of two.
    fabric_width : int
        ``fabric_in`` and ``m_axis`` width: ``data_width`` times a power of two.
    buffer_bytes : int
        Packet buffer size, a power of two, at least ``2 * max_frame_bytes``.
    max_frame_bytes : int
        Longest frame forwarded: a multiple of ``fabric_width / 8`` below 65535.
    lft_buckets, lft_ways : int
        LFT size (see :class:`~.lft.LocalFlowTable`).
    frag_capacity, timestamp_width, frag_timeout : int
        Fragment table size, bits of ``now`` and timeout in ticks (see
        :class:`~.frag_table.FragmentTable`); ``timestamp_width`` at most 24 (it shares the
        parser's ``tuser`` with the port).

    Members
    -------
    s_axis : ``In(AxiStreamSignature(data_width, 8))``
        Data frames; ``tuser`` (first beat) is the ingress port.
    fabric_in : ``In(AxiStreamSignature(fabric_width, 1))``
        Fabric frames addressed to this flow engine (``tuser`` unused).
    m_axis : ``Out(AxiStreamSignature(fabric_width, 16))``
        Fabric frames sent; ``tuser`` is the destination endpoint
        (:data:`~hdl.wire.ENDPOINT`, as in the header) on every beat.
    slot : ``In(5)``
        This card's slot.
    now : ``In(timestamp_width)``
        Time in ticks; must never go backwards.
    secret : ``In(128)``
        SipHash key of the LFT (change only while the LFT is empty).
    stats : ``Out(stats_layout)``
        :data:`ENGINE_STATS` (32 bits each, wrapping), then ``lft``
        (:data:`~.lft.LFT_STATS`, ``occupancy``) and ``frags``
        (:data:`~.frag_table.FRAG_STATS`, ``occupancy``).

    Raises
    ------
    ValueError
        If a parameter is out of its range (the sub-blocks check their own).
    """

    def __init__(self, *, data_width=64, fabric_width=256, buffer_bytes=32768,
                 max_frame_bytes=16384, lft_buckets=256, lft_ways=4, frag_capacity=16,
                 timestamp_width=24, frag_timeout=30000):
        if not _is_int(timestamp_width) or not 4 <= timestamp_width <= 32 - PORT_WIDTH:
            raise ValueError(f"timestamp_width must be an integer from 4 to "
                             f"{32 - PORT_WIDTH}, not {timestamp_width!r}")
        self._data_width = data_width
        self._fabric_width = fabric_width
        self._max_frame_bytes = max_frame_bytes
        self._timestamp_width = timestamp_width
        self.parser = Parser(data_width=data_width, user_width=PORT_WIDTH + timestamp_width)
        self.buffer = PacketBuffer(data_width=data_width, word_width=fabric_width,
                                   capacity_bytes=buffer_bytes, max_frame_bytes=max_frame_bytes)
        self.frags = FragmentTable(capacity=frag_capacity, timestamp_width=timestamp_width,
                                   timeout=frag_timeout, tag_width=PACKET_META.size)
        self.lft = LocalFlowTable(buckets=lft_buckets, ways=lft_ways,
                                  tag_width=PACKET_META.size)
        self.receiver = CommandReceiver(data_width=fabric_width)
        self.assembler = FrameAssembler(
            word_width=fabric_width, prefix_lengths=[prefix_length(k) for k in KINDS],
            user_width=ENDPOINT.width, max_words=self.buffer.max_frame_words)
        self.framer = Framer(response_layout=self.lft.response_layout,
                             job_layout=self.assembler.job_layout,
                             word_bytes=self.buffer.word_bytes, max_frame_bytes=max_frame_bytes)
        self.stats_layout = data.StructLayout({
            **{name: 32 for name in ENGINE_STATS},
            "lft": self.lft.stats_layout,
            "frags": self.frags.stats_layout,
        })
        super().__init__({
            "s_axis": In(AxiStreamSignature(data_width, PORT_WIDTH)),
            "fabric_in": In(AxiStreamSignature(fabric_width, 1)),
            "m_axis": Out(AxiStreamSignature(fabric_width, ENDPOINT.width)),
            "slot": In(FRAME_HEADER["src"].format["slot"].width),
            "now": In(timestamp_width),
            "secret": In(128),
            "stats": Out(self.stats_layout),
        })

    @property
    def data_width(self):
        return self._data_width

    @property
    def fabric_width(self):
        return self._fabric_width

    @property
    def max_frame_bytes(self):
        return self._max_frame_bytes

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = self.parser
        m.submodules.buffer = buffer = self.buffer
        m.submodules.frags = frags = self.frags
        m.submodules.lft = lft = self.lft
        m.submodules.receiver = receiver = self.receiver
        m.submodules.framer = framer = self.framer
        m.submodules.assembler = assembler = self.assembler

        # --- input: every beat to the parser and to the buffer, or to neither -----------------

        # Each of the two takes the beats from a two-entry queue of its own, placed by it: the
        # input's handshake then decides only the queues' write pointers, not the hundreds of
        # enables behind it in each block (the parser's beat count and L2 window, the buffer's
        # word lanes), which sit far apart on the die (12 ns of wire at placement).
        axis = self.s_axis
        fields = {"tdata": self._data_width, "tkeep": self._data_width // 8, "tlast": 1}
        # The parser's tuser is the ingress port and the time the beat arrived; the buffer has
        # no use for either.
        parser_beat = data.StructLayout({**fields, "tuser": parser.s_axis.tuser.shape()})
        to_parser = m.submodules.parser_in = Queue(shape=parser_beat, depth=2)
        to_buffer = m.submodules.buffer_in = Queue(shape=data.StructLayout(fields), depth=2)
        # The parser's input stage (beat count, an adder for the length, the L2 window's
        # enables) takes the beat from flip-flops, not from the queue's LUT RAM.
        parser_slice = m.submodules.parser_slice = RegisterSlice(shape=parser_beat)
        wiring.connect(m, to_parser.o, parser_slice.i)
        m.d.comb += [
            axis.tready.eq(to_parser.i.ready & to_buffer.i.ready),
            to_parser.i.valid.eq(axis.tvalid & to_buffer.i.ready),
            to_buffer.i.valid.eq(axis.tvalid & to_parser.i.ready),
            to_parser.i.payload.tuser.eq(Cat(axis.tuser, self.now)),
            parser.s_axis.tuser.eq(parser_slice.o.payload.tuser),
        ]
        for queue in (to_parser, to_buffer):
            m.d.comb += [queue.i.payload.tdata.eq(axis.tdata),
                         queue.i.payload.tkeep.eq(axis.tkeep),
                         queue.i.payload.tlast.eq(axis.tlast)]
        for source, sink in ((parser_slice.o, parser.s_axis), (to_buffer.o, buffer.s_axis)):
            m.d.comb += [
                sink.tvalid.eq(source.valid), source.ready.eq(sink.tready),
                sink.tdata.eq(source.payload.tdata), sink.tkeep.eq(source.payload.tkeep),
                sink.tlast.eq(source.payload.tlast),
            ]

        # --- parse result -> fragment table ---------------------------------------------------

        # A two-entry queue, so that the parser's result queue (read from LUT RAM) and the
        # oversize compare are not in series with the fragment table's decisions, and so that
        # the parser's ``result.ready`` is a flip-flop: through a register slice it was the
        # fragment table's ready, and that handshake reached the slice's ~330 enables and the
        # parser's buffer across the die (14 ns at placement).
        result = parser.result.payload
        to_frags = m.submodules.frags_slice = Queue(shape=frags.request_layout, depth=2)
        seq = Signal(32)
        meta = Signal(PACKET_META)
        oversize = result.length > self._max_frame_bytes
        m.d.comb += [
            meta.drop.eq(result.drop), meta.oversize.eq(oversize),
            meta.frag_proto.eq(result.frag.proto), meta.frag_offset.eq(result.frag.offset),
            meta.frag_ident.eq(result.frag.ident), meta.length.eq(result.length),
            meta.port.eq(result.port[:PORT_WIDTH]), meta.seq.eq(seq),
            to_frags.i.valid.eq(parser.result.valid),
            to_frags.i.payload.key.eq(result.key), to_frags.i.payload.frag.eq(result.frag),
            to_frags.i.payload.keyed.eq((result.drop == DropReason.NONE) & ~oversize),
            to_frags.i.payload.ts.eq(result.port[PORT_WIDTH:]),
            to_frags.i.payload.tag.eq(meta),
            parser.result.ready.eq(to_frags.i.ready),
            frags.now.eq(self.now),
        ]
        wiring.connect(m, to_frags.o, frags.i)
        with m.If(parser.result.valid & parser.result.ready):
            m.d.sync += seq.eq(seq + 1)

        # --- fragment table -> LFT requests, merged with the commands ---------------------------

        merge = m.submodules.merge = RoundRobin(shape=lft.request_layout)
        placed = frags.o.payload
        packet_meta = Signal(PACKET_META)
        m.d.comb += [
            packet_meta.eq(placed.tag), packet_meta.frag_status.eq(placed.status),
            merge.a.valid.eq(frags.o.valid), frags.o.ready.eq(merge.a.ready),
            merge.a.payload.op.eq(Mux((placed.status == FragStatus.UNFRAGMENTED) |
                                      (placed.status == FragStatus.MATCHED),
                                      LftOp.LOOKUP, LftOp.NOP)),
            merge.a.payload.key.eq(placed.key),
            merge.a.payload.length.eq(packet_meta.length),
            merge.a.payload.tag.eq(packet_meta),
        ]
        command = receiver.commands.payload
        command_meta = Signal(PACKET_META)
        m.d.comb += [
            command_meta.command.eq(1), command_meta.cmd_fid.eq(command.fid),
            merge.b.valid.eq(receiver.commands.valid), receiver.commands.ready.eq(merge.b.ready),
            merge.b.payload.op.eq(command.op), merge.b.payload.key.eq(command.key),
            merge.b.payload.fid.eq(command.fid), merge.b.payload.tag.eq(command_meta),
        ]
        wiring.connect(m, merge.o, lft.req)
        wiring.connect(m, wiring.flipped(self.fabric_in), receiver.fabric_in)
        m.d.comb += lft.secret.eq(self.secret)

        # --- LFT answers -> jobs -> frames ------------------------------------------------------

        # A register slice: the framer picks the job queue by a field of the answer, and that
        # choice, behind the LFT response queue's LUT-RAM read, was in front of its fill level.
        to_framer = m.submodules.resp_slice = RegisterSlice(shape=lft.response_layout)
        wiring.connect(m, lft.resp, to_framer.i)
        wiring.connect(m, to_framer.o, framer.resp)
        m.d.comb += framer.slot.eq(self.slot)
        jobs = m.submodules.jobs = RoundRobin(shape=assembler.job_layout)
        wiring.connect(m, framer.packet_jobs, jobs.a)
        wiring.connect(m, framer.stats_jobs, jobs.b)
        # The assembler loads a job into hundreds of flip-flops; a register slice keeps the
        # arbiter's mux and the job queues' LUT-RAM reads out of that path (one cycle more per
        # frame's latency, none per frame's throughput: the slice refills while a frame goes out).
        to_assembler = m.submodules.jobs_slice = RegisterSlice(shape=assembler.job_layout)
        wiring.connect(m, jobs.o, to_assembler.i)
        wiring.connect(m, to_assembler.o, assembler.jobs)
        wiring.connect(m, buffer.words, assembler.words)
        wiring.connect(m, assembler.m_axis, wiring.flipped(self.m_axis))

        # --- counters --------------------------------------------------------------------------

        for name in FRAMER_STATS:
            m.d.comb += getattr(self.stats, name).eq(getattr(framer.stats, name))
        for name in RX_STATS:
            m.d.comb += getattr(self.stats, name).eq(getattr(receiver.stats, name))
        m.d.comb += [self.stats.lft.eq(lft.stats), self.stats.frags.eq(frags.stats)]
        return m
