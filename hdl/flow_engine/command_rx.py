"""The flow engine's fabric input: FLOW_ADD and FLOW_DELETE from PPM-HW become LFT commands;
every other frame is checked as :func:`sim.wire.decode` checks it and counted."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..gft.queue import Queue
from ..wire import COUNTER_RECORD, FID, FLOW_KEY, FRAME_HEADER, MESSAGES, PPM_SLOT, MsgType, Unit
from .axis import AxiStreamSignature, kept_bytes, network_order
from .lft import LftOp


__all__ = ["CommandReceiver", "RX_STATS"]


RX_STATS = ("bad_frames", "unauthorised", "unexpected", "flow_adds", "flow_deletes")
"""The counters, named as the flow engine model's ``stats``."""

_HEADER = FRAME_HEADER.nbytes
_LENGTH_WIDTH = 17          # frame bytes, saturating: beyond any header length + 16


def _field_byte(body, name, inner=None):
    """Byte offset, from the start of ``body`` on the wire, of the field ``name`` (or of the
    field ``inner`` of the nested format ``name``), and the field's width in bits."""
    field = body[name]
    end = body.offsets[name]
    width = field.width
    if inner is not None:
        end += field.format.offsets[inner]
        width = field.format[inner].width
    return (body.width - end - width) // 8, width


def _checks():
    """Per message type: body bytes and where its trailing-length check reads (from
    :data:`~hdl.wire.MESSAGES`, so a new message type is checked as soon as it is defined)."""
    table = {}
    for msg_type, spec in MESSAGES.items():
        packet = _field_byte(spec.body, "pkt", "len") if spec.packet else None
        records = _field_byte(spec.body, "count") if spec.records else None
        table[msg_type] = (spec.body.nbytes, packet, records)
    return table


class CommandReceiver(wiring.Component):
    """Decodes fabric frames arriving at a flow engine.

    A frame is the beats up to ``tlast``; its length counts every byte (``tkeep`` read on the
    ``tlast`` beat only, up to its highest kept lane, as the parser reads frames). At the end of
    each frame, exactly as the model (:meth:`sim.model.flow_engine.FlowEngine.receive`):

    * it is a *bad frame* when :func:`sim.wire.decode` would refuse it: shorter than the
      header, a type without a :data:`~hdl.wire.MESSAGES` entry, a header ``length`` other
      than the bytes after the header, a body shorter than its type's, counter records or an
      attached packet whose count or length disagrees with the bytes left, or trailing bytes;
    * else a FLOW_ADD or FLOW_DELETE whose header ``src`` is not PPM-HW is *unauthorised*
      (the fabric stamps ``src``, so it is the true sender);
    * else a FLOW_ADD or FLOW_DELETE becomes a command on ``commands`` (``flow_adds``,
      ``flow_deletes``);
    * else (a well-formed message of any other type) it is *unexpected*.

    Only the first bytes of a frame are kept (the header and the longest body up to a length
    or count field); the rest only counts.

    Latency and backpressure
    ------------------------
    A frame is judged in three registered steps after its ``tlast`` beat transferred; its
    command enters a four-entry queue at the end of the third and is offered on ``commands``
    from the fourth cycle after that beat; the counters count at the same edge.
    ``fabric_in.tready`` is a flip-flop: high while the queue has room for the command of a
    frame ending now after those of the frames still being judged.

    Parameters (keyword only)
    -------------------------
    data_width : int
        Width of ``fabric_in.tdata``, a positive multiple of 8.

    Members
    -------
    fabric_in : ``In(AxiStreamSignature(data_width, 1))``
        Fabric frames (``tuser`` unused).
    commands : ``Out(stream.Signature(command_layout))``
        ``op`` (:class:`~hdl.flow_engine.lft.LftOp` ADD or DELETE), ``key``, ``fid``.
    stats : ``Out(stats_layout)``
        :data:`RX_STATS`, 32 bits each, wrapping.
    """

    def __init__(self, *, data_width=256):
        if not isinstance(data_width, int) or isinstance(data_width, bool) or \
                data_width <= 0 or data_width % 8:
            raise ValueError(f"data_width must be a positive multiple of 8, not {data_width!r}")
        self._data_width = data_width
        self.command_layout = data.StructLayout({"op": LftOp, "key": FLOW_KEY.layout,
                                                 "fid": FID.layout})
        self.stats_layout = data.StructLayout({name: 32 for name in RX_STATS})
        super().__init__({
            "fabric_in": In(AxiStreamSignature(data_width, 1)),
            "commands": Out(stream.Signature(self.command_layout)),
            "stats": Out(self.stats_layout),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self._data_width // 8
        axis = self.fabric_in
        checks = _checks()
        keep = _HEADER + max(max([nbytes] + [f[0] + f[1] // 8 for f in (packet, records) if f])
                             for nbytes, packet, records in checks.values())
        beats = -(-keep // lanes)

        out_q_depth = 4
        out_q = m.submodules.command_queue = Queue(shape=self.command_layout, depth=out_q_depth)
        wiring.connect(m, out_q.o, wiring.flipped(self.commands))
        take = axis.tvalid & axis.tready

        # --- the first bytes and the length of the frame -------------------------------------

        held = Signal(8 * lanes * beats, reset_less=True)
        index = Signal(range(beats + 1))            # beat of the frame, saturating
        length = Signal(_LENGTH_WIDTH)              # bytes in earlier beats
        total = length + Mux(axis.tlast, kept_bytes(axis.tkeep), lanes)
        total = Mux(total >> _LENGTH_WIDTH, (1 << _LENGTH_WIDTH) - 1, total[:_LENGTH_WIDTH])
        with m.If(take):
            for b in range(beats):
                with m.If(index == b):
                    m.d.sync += held[8 * lanes * b:8 * lanes * (b + 1)].eq(axis.tdata)
            m.d.sync += [index.eq(Mux(axis.tlast, 0, Mux(index == beats, beats, index + 1))),
                         length.eq(Mux(axis.tlast, 0, total))]
        frame_length = Signal(_LENGTH_WIDTH)
        with m.If(take & axis.tlast):
            m.d.sync += frame_length.eq(total)

        def wire(offset, nbytes):
            """The packed value of ``nbytes`` wire bytes from ``offset``."""
            return network_order(held[8 * offset:8 * (offset + nbytes)])

        # --- the checks of sim.wire.decode, in three registered steps --------------------------

        # Step 1, the cycle after the last beat (``held`` may take the next frame's first beat
        # at its end, so everything the later steps need is registered here): the bytes after
        # the body, ``rest`` (the frame's length less the header and the body of its type: one
        # subtraction per body size, side by side, then a choice), the trailer fields.
        ended = Signal()
        m.d.sync += ended.eq(take & axis.tlast)
        header = FRAME_HEADER.layout(wire(0, _HEADER))
        body = MESSAGES[MsgType.FLOW_ADD].body
        assert MESSAGES[MsgType.FLOW_DELETE].body.layout == body.layout
        fields = body.layout(wire(_HEADER, body.nbytes))
        record_counts = {records for _, _, records in checks.values() if records}
        assert len(record_counts) == 1, "every counter message has its count in one place"
        (count_offset, count_width), = record_counts
        step1 = Signal(data.StructLayout({
            "valid": 1, "short": 1, "known": 1, "length_ok": 1, "rest": signed(_LENGTH_WIDTH + 1),
            "packet": 1, "records": 1, "packet_length": 16, "record_bytes": 16,
            "is_add": 1, "is_change": 1, "from_ppm": 1, "command": self.command_layout,
        }))
        is_add = header.type == MsgType.FLOW_ADD
        rests = {nbytes: frame_length - (_HEADER + nbytes) for nbytes, _, _ in checks.values()}
        m.d.sync += [
            step1.valid.eq(ended),
            step1.short.eq(frame_length < _HEADER), step1.known.eq(0),
            step1.length_ok.eq(header.length + _HEADER == frame_length),
            step1.packet.eq(0), step1.records.eq(0),
            step1.record_bytes.eq(wire(_HEADER + count_offset, count_width // 8) *
                                  COUNTER_RECORD.nbytes),
            step1.is_add.eq(is_add),
            step1.is_change.eq(is_add | (header.type == MsgType.FLOW_DELETE)),
            step1.from_ppm.eq((header.src.slot == PPM_SLOT) &
                              (header.src.unit == Unit.PPM_HW.value)),
            step1.command.op.eq(Mux(is_add, LftOp.ADD, LftOp.DELETE)),
            step1.command.key.eq(fields.key), step1.command.fid.eq(fields.fid),
        ]
        with m.Switch(header.type):
            for msg_type, (nbytes, packet, records) in checks.items():
                with m.Case(msg_type):
                    m.d.sync += [step1.known.eq(1), step1.rest.eq(rests[nbytes]),
                                 step1.records.eq(records is not None)]
                    if packet:
                        offset, width = packet
                        m.d.sync += [step1.packet.eq(1), step1.packet_length.eq(
                            wire(_HEADER + offset, width // 8))]

        # Step 2: the bytes after the body are the attached packet, the counter records, or
        # none. A body cut short leaves a negative ``rest``, which none of them equals, so that
        # check needs no term of its own.
        step2 = Signal(step1.shape())
        rest_ok = Signal()
        m.d.sync += [
            step2.eq(step1),
            rest_ok.eq(Mux(step1.packet, step1.rest == step1.packet_length,
                           Mux(step1.records, step1.rest == step1.record_bytes,
                               step1.rest == 0))),
        ]

        # Step 3: the verdict; the command enters the queue and the counters count.
        bad = step2.short | ~step2.known | ~step2.length_ok | ~rest_ok
        accepted = ~bad & step2.is_change & step2.from_ppm
        m.d.comb += [out_q.i.payload.eq(step2.command),
                     out_q.i.valid.eq(step2.valid & accepted)]
        # ``tready`` is a flip-flop (it enables hundreds of others): high in the next cycle if
        # the queue will have room for the command of a frame ending then, after those of the
        # frames ending now or still in the three steps. Commands leaving the queue meanwhile
        # are not counted: the bound is safe, and costs at most a few cycles.
        tready = Signal()
        m.d.comb += axis.tready.eq(tready)
        m.d.sync += tready.eq(out_q.level + step2.valid + step1.valid + ended +
                              (take & axis.tlast) < out_q_depth)

        def count(name, condition):
            counter = getattr(self.stats, name)
            with m.If(step2.valid & condition):
                m.d.sync += counter.eq(counter + 1)

        count("bad_frames", bad)
        count("unauthorised", ~bad & step2.is_change & ~step2.from_ppm)
        count("unexpected", ~bad & ~step2.is_change)
        count("flow_adds", accepted & step2.is_add)
        count("flow_deletes", accepted & ~step2.is_add)
        return m
