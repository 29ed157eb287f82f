"""The flow engine's fabric input: FLOW_ADD and FLOW_DELETE from PPM-HW become LFT commands;
every other frame is checked as :func:`sim.wire.decode` checks it and counted."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..gft.queue import CreditQueue
from ..onehot import select
from ..wire import COUNTER_RECORD, FID, FLOW_KEY, FRAME_HEADER, MESSAGES, PPM_SLOT, MsgType, Unit
from .axis import AxiStreamSignature, kept_bytes, network_order
from .lft import LftOp


__all__ = ["CommandReceiver", "RX_STATS"]


RX_STATS = ("bad_frames", "unauthorised", "unexpected", "flow_adds", "flow_deletes")
"""The counters, named as the flow engine model's ``stats``."""

_HEADER = FRAME_HEADER.nbytes
_LENGTH_WIDTH = 17          # frame bytes, saturating: beyond any header length + 16


def times(value, constant):
    """``value * constant`` as shifts and adds (no multiplier block)."""
    return sum((value << i for i in range(constant.bit_length()) if constant >> i & 1), C(0, 1))


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
    A frame is judged in five registered steps after its ``tlast`` beat transferred; the
    counters count at the end of the fifth, its command enters a six-entry queue at the end
    of the sixth (:attr:`LATENCY`) and is offered on ``commands`` from the seventh cycle after
    that beat.
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

    LATENCY = 6
    """Clock edges after the one that transfers a frame's ``tlast`` beat, up to and including
    the one at which its command enters the queue (the counters count it one edge earlier)."""

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

        out_q_depth = 6
        out_q = m.submodules.command_queue = CreditQueue(shape=self.command_layout,
                                                         depth=out_q_depth)
        wiring.connect(m, out_q.o, wiring.flipped(self.commands))
        take = axis.tvalid & axis.tready

        # --- the first bytes and the length of the frame -------------------------------------

        held = Signal(8 * lanes * beats, reset_less=True)
        index = Signal(range(beats + 1))            # beat of the frame, saturating
        length = Signal(_LENGTH_WIDTH)              # bytes in earlier beats

        def saturated(value):
            return Mux(value >> _LENGTH_WIDTH, (1 << _LENGTH_WIDTH) - 1, value[:_LENGTH_WIDTH])

        # The beat at ``index`` is written whatever the handshake: until that beat is taken,
        # ``index`` stays and the beat taken last overwrites it, so the enable of each part of
        # ``held`` (hundreds of flip-flops, spread wide) is a flip-flop of its own, ``at[b]``
        # (``index == b``, worked out a cycle ahead), not the input handshake. Between frames
        # ``held[0]`` takes whatever ``tdata`` shows, which is no change for step 1 (see
        # below): it reads ``held`` as the last beat left it.
        at = Signal(beats, init=1)
        for b in range(beats):
            with m.If(at[b]):
                m.d.sync += held[8 * lanes * b:8 * lanes * (b + 1)].eq(axis.tdata)
        index_next = Mux(take, Mux(axis.tlast, 0, Mux(index == beats, beats, index + 1)), index)
        m.d.sync += [index.eq(index_next), at.eq(Cat(index_next == b for b in range(beats)))]
        with m.If(take):
            m.d.sync += length.eq(Mux(axis.tlast, 0, saturated(length + lanes)))
        # The last beat's kept bytes and the length before it are registered, and added in
        # step 1: the kept-lane encoder, the addition and the saturation in one cycle were
        # this block's slowest path.
        length_before = Signal(_LENGTH_WIDTH)
        last_kept = Signal(range(lanes + 1))
        with m.If(take & axis.tlast):
            m.d.sync += [length_before.eq(length), last_kept.eq(kept_bytes(axis.tkeep))]
        frame_length = saturated(length_before + last_kept)

        def wire(offset, nbytes):
            """The packed value of ``nbytes`` wire bytes from ``offset``."""
            return network_order(held[8 * offset:8 * (offset + nbytes)])

        # --- the checks of sim.wire.decode, in five registered steps ---------------------------

        # Five registered steps, each a few LUT levels deep (a subtraction, a choice by type
        # and a compare in one or two steps were this block's slowest paths):
        # 1. the cycle after the last beat (``held`` may take the next frame's first beat at its
        #    end, so everything the later steps need is registered here): the frame's type,
        #    decoded one-hot, the fields the types read, each where its type has it, and the
        #    frame's length (the bytes before its last beat plus the last beat's);
        # 2. what the type says: the bytes it needs up to the end of its body (``need``) and
        #    the bytes that must follow the body (``expected``: the attached packet's length,
        #    the counter records', or none); the header's length plus the header; whether the
        #    frame is shorter than a header;
        # 3. the bytes after the body, ``rest``, a subtraction of flip-flops;
        # 4. the compares;
        # 5. the verdict, from flip-flops: the command enters the queue, the counters count.
        # A body cut short leaves a negative ``rest``, which no expected count equals, so that
        # check needs no term of its own.
        ended = Signal()
        m.d.sync += ended.eq(take & axis.tlast)
        header = FRAME_HEADER.layout(wire(0, _HEADER))
        body = MESSAGES[MsgType.FLOW_ADD].body
        assert MESSAGES[MsgType.FLOW_DELETE].body.layout == body.layout
        fields = body.layout(wire(_HEADER, body.nbytes))
        types = list(checks.items())
        # The fields that follow a body, by where they are, each read once.
        trailers = sorted({(_HEADER + f[0], f[1] // 8)
                           for _, (_, packet, records) in types for f in (packet, records) if f})
        record_field = {(_HEADER + f[0], f[1] // 8) for _, (_, _, f) in types if f}
        assert len(record_field) == 1, "every counter message has its count in one place"
        record_field, = record_field

        common = {"valid": 1, "is_add": 1, "is_change": 1, "from_ppm": 1,
                  "command": self.command_layout, "frame_length": _LENGTH_WIDTH}
        step1 = Signal(data.StructLayout({
            **common, "type_oh": len(types), "header_length": 16,
            "trailers": data.ArrayLayout(16, len(trailers))}))
        is_add = header.type == MsgType.FLOW_ADD
        m.d.sync += [
            step1.valid.eq(ended),
            step1.frame_length.eq(frame_length), step1.header_length.eq(header.length),
            step1.type_oh.eq(Cat(header.type == msg_type for msg_type, _ in types)),
            # The record count becomes bytes here, by shifts and adds of the count's
            # flip-flops (a ``*`` maps to a DSP block, 4 ns on its own).
            *(step1.trailers[n].eq(times(wire(offset, nbytes), COUNTER_RECORD.nbytes)
                                   if (offset, nbytes) == record_field else wire(offset, nbytes))
              for n, (offset, nbytes) in enumerate(trailers)),
            step1.is_add.eq(is_add),
            step1.is_change.eq(is_add | (header.type == MsgType.FLOW_DELETE)),
            step1.from_ppm.eq((header.src.slot == PPM_SLOT) &
                              (header.src.unit == Unit.PPM_HW.value)),
            step1.command.op.eq(Mux(is_add, LftOp.ADD, LftOp.DELETE)),
            step1.command.key.eq(fields.key), step1.command.fid.eq(fields.fid),
        ]

        def expected_of(packet, records):
            if packet:
                return step1.trailers[trailers.index((_HEADER + packet[0], packet[1] // 8))]
            if records:
                return step1.trailers[trailers.index(record_field)]
            return C(0, 16)

        most = _HEADER + max(nbytes for nbytes, _, _ in checks.values())
        step2 = Signal(data.StructLayout({
            **common, "short": 1, "known": 1, "need": range(most + 1),
            "expected": _LENGTH_WIDTH, "length_plus": _LENGTH_WIDTH}))
        m.d.sync += [
            *(getattr(step2, name).eq(getattr(step1, name)) for name in common),
            step2.short.eq(step1.frame_length < _HEADER),
            step2.known.eq(step1.type_oh.any()),
            step2.need.eq(select(step1.type_oh, [C(_HEADER + nbytes, range(most + 1))
                                                 for _, (nbytes, _, _) in types])),
            step2.expected.eq(select(step1.type_oh, [expected_of(packet, records)[:16]
                                                     for _, (_, packet, records) in types])),
            step2.length_plus.eq(step1.header_length + _HEADER),
        ]

        step3 = Signal(data.StructLayout({
            **common, "short": 1, "known": 1, "expected": _LENGTH_WIDTH,
            "length_plus": _LENGTH_WIDTH, "rest": signed(_LENGTH_WIDTH + 1)}))
        m.d.sync += [
            *(getattr(step3, name).eq(getattr(step2, name))
              for name in (*common, "short", "known", "expected", "length_plus")),
            step3.rest.eq(step2.frame_length - step2.need),
        ]

        step4 = Signal(data.StructLayout({**common, "short": 1, "known": 1, "length_ok": 1,
                                          "rest_ok": 1}))
        m.d.sync += [
            *(getattr(step4, name).eq(getattr(step3, name))
              for name in (*common, "short", "known")),
            step4.length_ok.eq(step3.length_plus == step3.frame_length),
            step4.rest_ok.eq(step3.rest == step3.expected),
        ]
        bad = step4.short | ~step4.known | ~step4.length_ok | ~step4.rest_ok
        accepted = ~bad & step4.is_change & step4.from_ppm
        # The command enters the queue from flip-flops, a cycle after the verdict: the push
        # moves the queue's pointer copies, which sit by their RAMs across the die (the verdict's
        # LUTs in front of that wire were this block's slowest path at placement). ``tready``
        # keeps a place for every command in the steps, so the queue takes the push a cycle
        # ahead and registers a copy per chunk (see CreditQueue): one flip-flop, ``i.ready``
        # through a LUT to the copies of the pointers, was 12.6 ns at placement (seed 2).
        push_next = step4.valid & accepted
        push = Signal()
        command = Signal.like(step4.command)
        m.d.sync += [push.eq(push_next), command.eq(step4.command)]
        m.d.comb += [out_q.payload.eq(command), out_q.push_next.eq(push_next)]
        steps = (ended, step1.valid, step2.valid, step3.valid, step4.valid, push)
        # ``tready`` is a flip-flop (it enables hundreds of others): high in the next cycle if
        # the queue will have room for the command of a frame ending then, after those of the
        # frames ending now or still in the steps. Commands leaving the queue meanwhile are not
        # counted: the bound is safe, and costs at most a few cycles.
        tready = Signal()
        m.d.comb += axis.tready.eq(tready)
        m.d.sync += tready.eq(sum(steps, out_q.level) + (take & axis.tlast) < out_q_depth)

        def count(name, condition):
            counter = getattr(self.stats, name)
            with m.If(step4.valid & condition):
                m.d.sync += counter.eq(counter + 1)

        count("bad_frames", bad)
        count("unauthorised", ~bad & step4.is_change & ~step4.from_ppm)
        count("unexpected", ~bad & ~step4.is_change)
        count("flow_adds", accepted & step4.is_add)
        count("flow_deletes", accepted & ~step4.is_add)
        return m
