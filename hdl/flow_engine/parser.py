"""The flow engine's frame parser: Ethernet frames in on AXI4-Stream, one flow key (or one drop
reason) out per frame.

The golden model is :func:`sim.packets.parse.parse_frame`; its module docstring says what is
parsed, which key each frame gets and why a frame is dropped. This block makes the same decision
for every frame, bit for bit.

How it works
------------
Headers sit at offsets that depend on the headers before them (VLAN tags, MPLS labels, IPv4
options, an IPv6 extension chain), so no byte is at a fixed place in a beat. The parser is a
chain of *stages*, one per header it may meet: L2 (Ethernet, up to two VLAN tags and up to eight
MPLS labels), IP (IPv4 or IPv6), eight IPv6 extension headers, the transport header, and the
addresses. Every beat travels down the chain as a *token*: the beat's bytes, its position in the
frame, and everything the stages before have worked out about the frame so far. A stage knows
where its header starts from the token. In a first cycle it works out where that offset lies
relative to the token's beat (one subtraction of beat indices); in a second it copies the bytes
of a small window at the offset into registers (a rotation of the beat by ``offset % lanes``:
no wide barrel shifter, no per-byte offset arithmetic); in a third it decodes the window and
adds to the token where the next header starts. Every stage takes a token per cycle.

That is enough because every header's start is decided by bytes *before* it: when a beat
holding any byte of a stage's window reaches the stage, the token it travels with already
carries the final offset of that window. A token whose offset is not decided yet carries one
past the end of its own beat, so nothing is captured from it. Window bytes beyond the end of the
frame are never used: the checks below drop such a frame first.

Each stage's checks run on the frame's last token, when the frame length is known, in the
model's order, and the first failing one names the drop reason; a stage does not override a
reason set before it. So every frame, cut or malformed at any byte, gets exactly the model's
outcome, and no frame holds the parser up: every beat leaves the chain a fixed number of
cycles after it entered.
"""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fanout import field_mask, gated_chunk, register_copies
from ..gft.queue import CreditQueue
from ..level import after_step
from .axis import AxiStreamSignature, kept_bytes
from .parse_result import (DropReason, MAX_IPV6_EXT, MAX_MPLS_LABELS, MAX_VLAN_TAGS,
                           parse_result_layout, reason_counts_layout)


__all__ = ["Parser", "OFFSET_WIDTH"]


OFFSET_WIDTH = 17
"""Bits of a frame offset or length inside the parser. An IP datagram ends at most
54 + 40 + 65535 bytes into a frame, below 2**17, so a frame length saturated at 2**17 - 1 still
compares exactly with every offset the parse depends on."""

_ETH_P_IP = 0x0800
_ETH_P_IPV6 = 0x86DD
_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
_MPLS_TYPES = (0x8847, 0x8848)
_IPV6_EXT = (0, 43, 60, 44, 51)
_IPV6_FRAGMENT = 44
_IPV6_AH = 51
_TCP, _UDP, _SCTP, _ICMP, _ICMPV6 = 6, 17, 132, 1, 58

# L2 bytes the parser looks at: the ethertypes and VIDs of up to two tags (12..21) and the
# bottom-of-stack bits of up to eight MPLS labels after 0..2 tags (16, 20, ..., 52).
_L2_BYTES = sorted(set(range(12, 22)) | set(range(16, 53, 4)))
_L2_BASES = tuple(14 + 4 * tags for tags in range(MAX_VLAN_TAGS + 1))

# Window bytes each stage needs, counted from its header's start.
_IP_BYTES = (0, 2, 3, 4, 5, 6, 7, 9)        # version/IHL, lengths, ident, frag, nh/proto
_EXT_BYTES = tuple(range(8))                # next header, length, fragment offset, ident
_L4_BYTES = (0, 1, 2, 3, 4, 5, 12, 13)      # ports or type/code/id, TCP offset and flags
_ADDR_BYTES = tuple(range(32))              # IPv6 source and destination (IPv4: first 8)

_V4_MAPPED_HI = 0xFFFF                      # bits 47..32 of an IPv4-mapped address

# The IP header's checks, in the model's order (the conditions are in Parser._ip).
_IP_CHECKS = (DropReason.TRUNCATED_L3, DropReason.NON_IP, DropReason.BAD_IP_VERSION,
              DropReason.TRUNCATED_L3, DropReason.BAD_IHL, DropReason.TRUNCATED_L3,
              DropReason.BAD_IP_LEN, DropReason.TRUNCATED_L3, DropReason.BAD_IP_LEN)


def _u16(byte):
    """Network-order 16-bit field from ``byte(i)`` = the window byte at offset ``i``."""
    return lambda offset: Cat(byte[offset + 1], byte[offset])


def _net(m, name, value):
    """``value`` as a named signal. Amaranth copies an expression into every place it is used,
    and the exported Verilog then computes it once per use (which slows simulation); a
    signal is computed once, and shows in waves."""
    value = Value.cast(value)
    signal = Signal(value.shape(), name=name)
    m.d.comb += signal.eq(value)
    return signal


def _one_of(value, choices):
    return Cat(*(value == choice for choice in choices)).any()


def _first_drop(current, checks):
    """``current`` if it names a reason, else the reason of the first true check, else NONE.

    ``checks`` is a list of ``(condition, DropReason)`` in the model's order.
    """
    def first(checks):
        # A balanced tree, log2(len(checks)) muxes deep rather than a chain of them.
        if len(checks) == 1:
            condition, drop = checks[0]
            return Value.cast(condition), Mux(condition, drop.value, DropReason.NONE.value)
        half = len(checks) // 2
        (any_early, early), (any_late, late) = first(checks[:half]), first(checks[half:])
        return any_early | any_late, Mux(any_early, early, late)

    return Mux(current != DropReason.NONE.value, current, first(checks)[1])


def _settle_ip_checks(t):
    """``t`` with the drop reason of the IP header's checks, if it carries them.

    The IP stage compares and the next stage's first cycle picks the reason, so that
    comparisons and the choice between their results are not in series in one cycle.
    """
    if not hasattr(t, "ip_checks"):
        return t
    return t.but(drop=_first_drop(t.drop, list(zip(t.ip_checks, _IP_CHECKS)))) \
        .without("ip_checks")


def _take_fragment(t):
    """``t`` with the fragment fields of the extension header before, if it was a fragment
    header with an offset or the more flag (the model keeps the last such header's).

    The stage that decodes a header only passes its fields on: choosing between them and the
    fields so far is left to the next stage's first cycle, so that the choice's wide fan-out
    does not follow the decoding in one cycle.
    """
    if not hasattr(t, "new_frag"):
        return t
    new = t.new_frag
    return t.but(
        frag_valid=t.frag_valid | new,
        frag_more=Mux(new, t.new_more, t.frag_more),
        frag_offset=Mux(new, t.new_offset, t.frag_offset),
        frag_ident=Mux(new, t.new_ident, t.frag_ident),
        frag_proto=Mux(new, t.new_proto, t.frag_proto),
    ).without("new_frag", "new_more", "new_offset", "new_ident", "new_proto")


class _Token:
    """The fields that travel down the parser with one beat: a name -> value mapping."""

    def __init__(self, **fields):
        self.__dict__["_fields"] = fields

    def __getattr__(self, name):
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise AttributeError("a token is immutable; use .but()")

    def but(self, **changes):
        return _Token(**{**self._fields, **changes})

    def without(self, *names):
        """The token less fields no later stage reads."""
        return _Token(**{name: value for name, value in self._fields.items()
                         if name not in names})

    def register(self, m, stage):
        """The token one clock later, in registers named ``<stage>_valid`` and ``<stage>``.

        The fields other than ``valid`` share one register of a struct layout: they mean
        nothing in a token that is not valid, so they need no reset, and one wide register
        instead of dozens of narrow ones makes the exported Verilog much faster to simulate.
        """
        values = {name: Value.cast(value) for name, value in self._fields.items()}
        valid = Signal(name=f"{stage}_valid")
        rest = Signal(data.StructLayout({name: value.shape() for name, value in values.items()
                                         if name != "valid"}), name=stage, reset_less=True)
        m.d.sync += valid.eq(values.pop("valid"))
        m.d.sync += rest.as_value().eq(Cat(*values.values()))   # fields in layout order
        return _Token(valid=valid, **{name: getattr(rest, name) for name in values})


class Parser(wiring.Component):
    """Frame parser: flow key, fragment information and drop reason of every Ethernet frame.

    The result of each frame is :func:`sim.packets.parse.parse_frame` of the frame's bytes
    (see :func:`~hdl.flow_engine.parse_result.parse_result_layout` for how each field of the
    model's ``Parsed`` is carried); the module docstring says how.

    Input
    -----
    ``s_axis`` takes one beat per clock. A frame is the beats up to and including the one with
    ``tlast``; its bytes are the lanes of every beat, in lane order, except that ``tkeep`` is
    read on the ``tlast`` beat only: the frame ends after the highest kept lane of that beat (so
    ``tkeep`` must not have holes below its last kept lane; a ``tlast`` beat with no lane kept
    adds no byte). Any input is a frame: a 1-byte frame, ``tlast`` on the first beat, headers
    cut anywhere, frames longer than 65535 bytes. The ingress port is ``tuser`` of the first
    beat.

    Output
    ------
    One result per frame on ``result``, in frame order. A frame's result is valid
    :attr:`latency` cycles (38, at any width) after the cycle its last beat transferred in, when
    the output is not backpressured: at 64 bits, a 64-byte frame whose first beat transfers in
    cycle *c* has its result valid in cycle *c* + 7 + 38. ``result.valid`` and the payload come
    from the output buffer (no combinational path from any input) and hold until
    transferred.

    Throughput and backpressure
    ---------------------------
    The pipeline never stalls. A frame is *pending* from the transfer of its last beat until
    its result transfers on ``result``, and at most :attr:`result_depth` frames are: the output
    queue holds that many results, so however long ``result.ready`` stays low, no result is
    lost. ``s_axis.tready`` is low exactly in the cycles in which ``result_depth`` frames are
    pending; it comes straight from a register, never combinationally from ``result.ready``.
    With ``result.ready`` high, 64-byte frames back to back never see ``tready`` low, so a
    64-byte frame takes 64 / (``data_width`` / 8) cycles (8 at 64 bits); shorter frames may:
    at 64 bits one-byte frames go in bursts of 15, 15 frames per 39 cycles (at 512 bits,
    where ``result_depth`` is 63, one per cycle).

    Timing
    ------
    Every cycle holds at most one carry chain and a few LUT levels, and no enable reaches the
    pipeline's registers. Measured at 64 bits with Yosys 0.70 and nextpnr 0.11.1 (router2)
    out of context on an LFE5U-85F, speed grade 6: 124.2 MHz with placer seed 1, 110.4 with
    seed 2 (target 125; 69.1 and 101.2 while an enable held the pipeline), 10.5k flip-flops,
    5.9k LUTs, no block RAM.

    Counters
    --------
    ``reason_counts.<r>`` counts the frames whose result has ``drop == r``, the field named
    by the reason in lower case (``none``: the frames keyed), from reset, wrapping at
    ``2**counter_width``. A frame's count goes up at the end of the first cycle in which its
    result could be transferred, so in the cycle after a result's transfer the counts include
    its frame.

    Parameters
    ----------
    data_width : int
        Width of ``s_axis.tdata``: 8 times a power of two, from 8 to 512 bits.
    user_width : int
        Width of ``s_axis.tuser`` and of the result's ``port``: an integer from 1 to 32.
    counter_width : int
        Width of each reason counter: an integer from 1 to 64.

    Members
    -------
    s_axis : ``In(AxiStreamSignature(data_width, user_width))``
        Frames.
    result : ``Out(stream.Signature(parse_result_layout(user_width=user_width)))``
        One parse result per frame.
    reason_counts : ``Out(reason_counts_layout(counter_width=counter_width))``
        Frames per outcome.

    Attributes
    ----------
    latency : int
        Cycles from the transfer of a frame's last beat to its result becoming valid, when the
        output is not backpressured.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of its range.
    """

    def __init__(self, *, data_width=64, user_width=8, counter_width=32):
        for name, value in (("Data width", data_width), ("User width", user_width),
                            ("Counter width", counter_width)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if data_width not in (8 << shift for shift in range(7)):
            raise ValueError(f"Data width must be 8, 16, 32, 64, 128, 256 or 512, not "
                             f"{data_width!r}")
        if not 1 <= user_width <= 32:
            raise ValueError(f"User width must be between 1 and 32, not {user_width!r}")
        if not 1 <= counter_width <= 64:
            raise ValueError(f"Counter width must be between 1 and 64, not {counter_width!r}")
        self._data_width = data_width
        self._user_width = user_width
        self._counter_width = counter_width
        self._lanes = data_width // 8
        self._lane_bits = self._lanes.bit_length() - 1
        # One more bit than a frame offset needs, so the index saturates beyond every offset.
        self._index_width = OFFSET_WIDTH + 1 - self._lane_bits
        self._result_layout = parse_result_layout(user_width=user_width)
        super().__init__({
            "s_axis": In(AxiStreamSignature(data_width, user_width)),
            "result": Out(stream.Signature(self._result_layout)),
            "reason_counts": Out(reason_counts_layout(counter_width=counter_width)),
        })

    @property
    def data_width(self):
        return self._data_width

    @property
    def user_width(self):
        return self._user_width

    @property
    def counter_width(self):
        return self._counter_width

    @property
    def result_layout(self):
        return self._result_layout

    # Register stages from the last beat's transfer to the output buffer's write: input (1),
    # L2 (2), IP (4), extension headers (3 each), transport (3), addresses (2), output (1);
    # plus the output buffer (1).
    latency = 1 + 2 + 4 + 3 * MAX_IPV6_EXT + 3 + 2 + 1 + 1

    @property
    def result_depth(self):
        """Results the output queue holds, so frames in flight at most: 64-byte frames back to
        back never see ``tready`` low. A frame holds its place from its last beat until its
        result leaves, ``latency + 1`` cycles when the output does not wait; at least 15 (the
        LUT RAM holds 16 words whatever the depth), one less than a power of two (the queue
        keeps a spare slot)."""
        beats = max(1, 64 // self._lanes)
        places = -(-(self.latency + 1) // beats) + 1
        return (1 << max(4, places.bit_length())) - 1

    # --- helpers ---------------------------------------------------------------------------

    def _window(self, m, name, t, start, offsets, *, locate=True, at=None):
        """Capture frame bytes ``start + j``, ``j`` in ``offsets``, from the beats of ``t``.

        Returns the token and a dict ``j`` -> register. With ``locate``, one cycle works out
        where the window lies relative to each beat (a subtraction of beat indices and a few
        comparisons, kept off the capture path for timing) and the returned token is one cycle
        later; without, ``start`` must be a constant and nothing is added. Each register is
        written when the token whose beat holds its byte is registered, so in the cycle after
        the returned token the registers hold the window as of that token's beat. ``start``
        must be final by then whenever the beat holds a window byte (see the module docstring).
        ``at`` (without ``locate``, ``start`` 0) is the beat's index one-hot, as flip-flops
        (see :meth:`_input`), in place of compares of ``t.index``.
        """
        lanes, lane_bits = self._lanes, self._lane_bits
        lane = start[:lane_bits] if lane_bits else C(0, 1)
        beat = start[lane_bits:]
        span = self._span(offsets)
        assert at is None or not locate, "a one-hot index stands for the window at 0 only"
        if at is None:
            # How many beats past the one holding ``start`` this beat is.
            distance = Signal(signed(self._index_width + 1), name=f"{name}_distance")
            m.d.comb += distance.eq(t.index - beat)
            at = Cat(distance == ahead for ahead in range(span))
        assert len(at) == span
        # At the input (``locate`` off: the L2 window) a byte is written whatever the
        # handshake: the beat index moves only when a beat is taken, so the beat taken last is
        # what stays, and the captures' enables are the index's one-hot flip-flops, not the
        # flow engine's input handshake (which reached them across the die at placement).
        # Later windows follow tokens, whose ``valid`` comes from a register.
        here = t.valid if locate else C(1, 1)
        t = t.but(at=Cat(here & at[ahead] for ahead in range(span)), lane=lane)
        if locate:
            t = t.register(m, f"{name}_find")

        # Named signals, not expressions: Amaranth would copy an expression into every use,
        # and the exported Verilog would rotate the beat once per window byte.
        rotated = Signal(8 * lanes, name=f"{name}_rotated")
        if lane_bits:
            # Lane (start + j) % lanes of the beat comes to position j % lanes.
            m.d.comb += rotated.eq(Cat(t.data, t.data) >> Cat(C(0, 3), t.lane))
        else:
            m.d.comb += rotated.eq(t.data)
        # One register for the window rather than one per byte: fewer processes to simulate.
        # A plain vector, not an array view, whose element wires ("window[0]") would clash
        # with Yosys's names for the vector's bits.
        window = Signal(8 * len(offsets), name=f"{name}_window", reset_less=True)
        regs, wraps = {}, {}
        for slot, offset in enumerate(offsets):
            position, ahead = offset % lanes, offset // lanes
            here = t.at[ahead]
            if position:
                # The byte is one beat further on when start's lane plus its own wraps.
                if position not in wraps:
                    wraps[position] = _net(m, f"{name}_wraps_{position}",
                                           t.lane >= lanes - position)
                here = Mux(wraps[position], t.at[ahead + 1], here)
            with m.If(here):
                m.d.sync += window.word_select(slot, 8).eq(rotated.word_select(position, 8))
            regs[offset] = window.word_select(slot, 8)
        return t.without("at", "lane"), regs

    def _span(self, offsets):
        """Beats a window of bytes ``offsets`` can touch (its start may be in any lane)."""
        return max(offsets) // self._lanes + 2

    # --- stages ----------------------------------------------------------------------------

    def _input(self, m, take):
        """Beat counting, frame length and ingress port; captures the fixed L2 bytes.

        ``take`` is high in the cycles in which a beat transfers on ``s_axis``.
        """
        axis, lanes = self.s_axis, self._lanes
        in_frame = Signal()                                 # a frame has begun, not ended
        # The beat's index and the bytes before it are flip-flops that a tlast beat sets back
        # to 0 (not a choice on ``in_frame`` after them): the L2 window's captures are enabled
        # by compares of ``index``, one LUT level from its flip-flops.
        index = Signal(self._index_width)
        length_before = Signal(OFFSET_WIDTH)                # bytes in earlier beats
        frame_port = Signal(self._user_width)
        # ``index`` one-hot over the beats the L2 window spans, kept beside it: the window's
        # capture enables are these flip-flops, not compares of the 14-bit index, whose LUTs
        # sat in front of a wire to capture registers across the die.
        l2_at = Signal(self._span(_L2_BYTES), init=1)

        first = ~in_frame
        kept = kept_bytes(axis.tkeep)
        length = length_before + Mux(axis.tlast, kept, lanes)
        length = Mux(length >> OFFSET_WIDTH, (1 << OFFSET_WIDTH) - 1, length[:OFFSET_WIDTH])
        last_index = (1 << self._index_width) - 1
        port = Mux(first, axis.tuser, frame_port)

        with m.If(take):
            m.d.sync += [
                in_frame.eq(~axis.tlast),
                index.eq(Mux(axis.tlast, 0, Mux(index == last_index, index, index + 1))),
                length_before.eq(Mux(axis.tlast, 0, length)),
                frame_port.eq(port),
                l2_at.eq(Mux(axis.tlast, 1, l2_at << 1)),
            ]
        beat = _Token(valid=take, data=axis.tdata, last=axis.tlast, index=index,
                      length=length, port=port)
        beat, l2 = self._window(m, "l2", beat, C(0, OFFSET_WIDTH), _L2_BYTES, locate=False,
                                at=l2_at)
        return beat.register(m, "in"), l2

    def _l2(self, m, t, byte):
        """Ethernet, VLAN tags and the MPLS stack: where L3 starts, and the zone.

        Two cycles: first the tags and what each candidate ethertype says, then the MPLS
        stack's length and the checks.
        """
        u16 = _u16(byte)
        types = [u16(12 + 4 * tags) for tags in range(MAX_VLAN_TAGS + 1)]
        tagged = [_net(m, f"l2_tagged{tags}", _one_of(etype, _VLAN_TPIDS))
                  for tags, etype in enumerate(types)]
        vids = [u16(14 + 4 * tags)[:12] for tags in range(MAX_VLAN_TAGS)]
        one_tag = _net(m, "l2_one_tag", tagged[0] & ~tagged[1])
        two_tags = _net(m, "l2_two_tags", tagged[0] & tagged[1])

        def pick(candidates):
            # The value for the number of tags there are; each candidate is computed in
            # parallel, so the tag decision costs one mux, not a mux before every compare.
            return Mux(two_tags, candidates[2], Mux(one_tag, candidates[1], candidates[0]))

        # Bottom of stack of label i after 0, 1 or 2 tags, and whether that label is cut.
        n = t.length
        bos = [pick([byte[base + 4 * i + 2][0] for base in _L2_BASES])
               for i in range(MAX_MPLS_LABELS)]
        cut = [pick([n < base + 4 * (i + 1) for base in _L2_BASES])
               for i in range(MAX_MPLS_LABELS)]
        t = t.but(
            ipv4=pick([etype == _ETH_P_IP for etype in types]),
            ipv6=pick([etype == _ETH_P_IPV6 for etype in types]),
            mpls=pick([_one_of(etype, _MPLS_TYPES) for etype in types]),
            # The zone is put together at the next stage, from the VIDs and the tag flags in
            # flip-flops: a Mux with a constant 0 becomes a sync reset, and here its condition
            # (the tag compares) reached the reset input of flip-flops across the die.
            vid0=vids[0], vid1=vids[1], one_tag=one_tag, two_tags=two_tags,
            base=pick(_L2_BASES),
            bos=Cat(*bos),
            cut=Cat(*cut),
            early_drop=_first_drop(C(DropReason.NONE.value, 4), [
                (n < 14, DropReason.TRUNCATED_L2),
                (tagged[0] & (n < 18), DropReason.TRUNCATED_L2),
                (two_tags & (n < 22), DropReason.TRUNCATED_L2),
                (two_tags & tagged[2], DropReason.VLAN_DEPTH),
            ]),
        ).register(m, "l2a")

        # The labels up to the first with bottom of stack (all of them when none has it).
        labels = C(MAX_MPLS_LABELS, range(MAX_MPLS_LABELS + 1))
        last_cut = t.cut[-1]
        for i in reversed(range(MAX_MPLS_LABELS)):
            labels = Mux(t.bos[i], i + 1, labels)
            last_cut = Mux(t.bos[i], t.cut[i], last_cut)
        l3 = _net(m, "l2_l3", t.base + Mux(t.mpls, labels << 2, 0))
        drop = _first_drop(t.early_drop, [
            # The last of those labels is cut: so is a label at or before the one the model
            # stops at, since labels are cut from the end.
            (t.mpls & last_cut, DropReason.TRUNCATED_L2),
            (t.mpls & ~t.bos.any(), DropReason.MPLS_DEPTH),
            (~t.mpls & ~t.ipv4 & ~t.ipv6, DropReason.NON_IP),
        ])
        zone = Mux(t.two_tags, Cat(t.vid1, t.vid0), Mux(t.one_tag, t.vid0, 0))
        return t.but(drop=drop, l3=l3, zone=zone) \
            .without("base", "bos", "cut", "early_drop", "vid0", "vid1", "one_tag", "two_tags") \
            .register(m, "l2b")

    def _ip(self, m, t):
        """IPv4 or IPv6 header: checks, protocol, IPv4 fragment fields, where L4 starts."""
        t, w = self._window(m, "ip", t, t.l3, _IP_BYTES)
        t = t.register(m, "ipa")
        u16 = _u16(w)
        version = w[0][4:]
        hlen = Cat(C(0, 2), w[0][:4])
        ip4 = _net(m, "ip_ip4", t.ipv4 | (t.mpls & (version == 4)))   # the model's path,
        ip6 = _net(m, "ip_ip6", t.ipv6 | (t.mpls & (version == 6)))   # before the version check
        datagram = Mux(ip4, u16(2), u16(4))                 # total length / payload length
        frag_field = u16(6)
        t = t.but(
            avail=t.length - t.l3, here=t.length > t.l3, hlen=hlen, ip4=ip4, ip6=ip6,
            v4=ip4 & (version == 4), v6=ip6 & (version == 6),
            datagram=datagram, nh=Mux(ip4, w[9], w[6]),
            ipv6_end=u16(4) + 40,   # IPv6 header and payload, ahead of its comparison
            frag_more=frag_field[13], frag_offset=Cat(C(0, 3), frag_field[:13]),
            frag_ident=u16(4),
        ).register(m, "ipb")

        here, v4, v6 = t.here, t.v4, t.v6
        fragment = v4 & (t.frag_more | (t.frag_offset != 0))
        l2_ok = t.drop == DropReason.NONE.value
        checks = [
            ~here,
            t.mpls & ~t.ip4 & ~t.ip6,
            ~v4 & ~v6,
            v4 & (t.avail < 20),
            v4 & (t.hlen < 20),
            v4 & (t.avail < t.hlen),
            v4 & ((t.datagram < t.hlen) | (t.datagram > t.avail)),
            v6 & (t.avail < 40),
            v6 & (t.ipv6_end > t.avail),
        ]
        # The model names the IP header once it looked for one there: always after an
        # ethertype, after MPLS only when a byte is there and it says IPv4 or IPv6.
        shown_l3 = l2_ok & (t.ipv4 | t.ipv6 | (here & (v4 | v6)))
        shown_version = l2_ok & here & (v4 | v6)
        return t.but(
            ip_checks=Cat(*checks),
            l3_offset=Mux(shown_l3, t.l3, 0),
            ip_version=Mux(shown_version, Mux(v4, 4, 6), 0),
            ip6=t.ip6,
            start=t.l3 + Mux(t.ip4, t.hlen, 40),
            rest=Mux(t.ip4, t.datagram - t.hlen, t.datagram)[:16],
            stopped=C(0, 1),
            frag_valid=fragment, frag_more=t.frag_more, frag_offset=t.frag_offset,
            frag_ident=Cat(t.frag_ident, C(0, 16)), frag_proto=t.nh,
            addr=t.l3 + Mux(t.ip6, 8, 12),
        ).without("avail", "here", "v4", "v6", "hlen", "ip4", "datagram", "ipv6_end", "mpls",
                  "ipv4", "ipv6", "l3") \
            .register(m, "ipc")

    def _ext(self, m, t, k):
        """IPv6 extension header ``k`` of the chain, when the chain reaches that far."""
        # What needs no window byte is worked out while the window is located, so that the
        # cycle after the capture starts from registers: whether the chain goes on here, which
        # header it is, and the walk's sums for a header of 8 bytes.
        t = _take_fragment(_settle_ip_checks(t))
        t = t.but(walk=t.ip6 & ~t.stopped & _one_of(t.nh, _IPV6_EXT),
                  fragment=t.nh == _IPV6_FRAGMENT, ah=t.nh == _IPV6_AH,
                  rest8=t.rest - 8, start8=t.start + 8)
        t, w = self._window(m, f"ext{k}", t, t.start, _EXT_BYTES)
        t = t.register(m, f"ext{k}a")
        u16 = _u16(w)
        walk, fragment = t.walk, t.fragment
        # Header length less 8: 0 for a fragment header, then (len + 2) * 4 or (len + 1) * 8.
        extra = _net(m, f"ext{k}_extra", Mux(fragment, 0, Mux(t.ah, w[1] << 2, w[1] << 3)))
        rest = _net(m, f"ext{k}_rest", t.rest8 - extra)
        frag_field = u16(2)
        frag_offset = Cat(C(0, 3), frag_field[3:])
        frag_more = frag_field[0]
        new_frag = walk & fragment & (frag_more | (frag_offset != 0))
        return t.but(
            drop=_first_drop(t.drop, [(walk & (rest < 0), DropReason.TRUNCATED_L3)]),
            start=Mux(walk, (t.start8 + extra)[:OFFSET_WIDTH], t.start),
            rest=Mux(walk, rest[:16], t.rest),
            nh=Mux(walk, w[0], t.nh),
            # A later fragment holds no upper-layer header: the walk stops at its next header.
            stopped=t.stopped | (walk & fragment & (frag_offset != 0)),
            # This header's fragment fields, taken over by the next stage (see _take_fragment).
            new_frag=new_frag, new_more=frag_more, new_offset=frag_offset,
            new_ident=Cat(u16(6), u16(4)), new_proto=w[0],
        ).without("walk", "fragment", "ah", "rest8", "start8").register(m, f"ext{k}b")

    def _l4(self, m, t):
        """Transport header: ports (or ICMP id / type and code), TCP flags, checks."""
        # The protocol's class needs no window byte: worked out while the window is located.
        t = _take_fragment(t)
        proto = t.nh
        chain_left = t.ip6 & ~t.stopped & _one_of(proto, _IPV6_EXT)
        t = t.but(chain_left=chain_left,
                  later=t.frag_valid & (t.frag_offset != 0),
                  tcp=proto == _TCP, udp=proto == _UDP, sctp=proto == _SCTP,
                  icmp4=proto == _ICMP, icmp6=proto == _ICMPV6,
                  reached=(t.drop == DropReason.NONE.value) & ~chain_left)
        t, w = self._window(m, "l4", t, t.start, _L4_BYTES)
        t = t.register(m, "l4a")
        u16 = _u16(w)
        chain_left, later, reached = t.chain_left, t.later, t.reached
        tcp, udp, sctp = t.tcp, t.udp, t.sctp
        icmp = t.icmp4 | t.icmp6
        echo = _net(m, "l4_echo", Mux(t.icmp4, _one_of(w[0], (0, 8)),
                                      _one_of(w[0], (128, 129))))
        ports = tcp | udp | sctp
        data_offset = Cat(C(0, 2), w[12][4:])
        drop = _first_drop(t.drop, [
            (chain_left, DropReason.EXT_CHAIN),
            (~later & tcp & (t.rest < 20), DropReason.TRUNCATED_L4),
            (~later & tcp & (data_offset < 20), DropReason.BAD_TCP_OFFSET),
            # A first fragment may leave TCP options to the next fragment.
            (~later & tcp & (data_offset > t.rest) & ~t.frag_valid, DropReason.TRUNCATED_L4),
            (~later & udp & (t.rest < 8), DropReason.TRUNCATED_L4),
            (~later & sctp & (t.rest < 12), DropReason.TRUNCATED_L4),
            (~later & icmp & (t.rest < 8), DropReason.TRUNCATED_L4),
        ])
        src_port = Mux(later, 0, Mux(ports, u16(0), Mux(icmp & echo, u16(4), 0)))
        dst_port = Mux(later, 0, Mux(ports, u16(2), Mux(icmp & ~echo, u16(0), 0)))
        return t.but(
            drop=drop,
            src_port=src_port, dst_port=dst_port, proto=t.nh,
            tcp_flags=Mux(tcp & ~later, Cat(w[13], w[12][0]), 0),
            l4_offset=Mux(reached, t.start, 0),
            frag_valid=t.frag_valid & reached,
        ).without("start", "rest", "nh", "stopped", "chain_left", "later", "tcp", "udp", "sctp",
                  "icmp4", "icmp6", "reached").register(m, "l4b")

    def _result(self, m, t):
        """Addresses, then the whole result of the frame whose last token this is."""
        t, w = self._window(m, "addr", t, t.addr, _ADDR_BYTES)
        # Whether the token is a frame's last, in a flip-flop of its own.
        done = Signal(name="addr_done")
        m.d.sync += done.eq(t.valid & t.last)
        # Whether the result carries a key, and fragment fields, are known here (the drop and
        # the fragment flag come from the window's registers unchanged): a copy of each per
        # chunk of the output queue gates that chunk below.
        chunks = range(0, self._result_layout.size, CreditQueue.CHUNK)
        keyed = register_copies(m, t.drop == DropReason.NONE.value, len(chunks), name="keyed")
        frag_shown = register_copies(m, t.frag_valid, len(chunks), name="frag_shown")
        t = t.register(m, "addr")
        address = [Cat(*reversed([w[16 * i + j] for j in range(16)])) for i in range(2)]
        mapped = [Cat(*reversed([w[4 * i + j] for j in range(4)]), C(_V4_MAPPED_HI, 16),
                      C(0, 80)) for i in range(2)]

        # Every field as it comes; the key and the TCP flags only count without a drop, the
        # fragment fields only with the flag, and are zeroed in the output register.
        result = Signal(self._result_layout)
        key = result.key
        m.d.comb += [
            key.src_addr.eq(Mux(t.ip6, address[0], mapped[0])),
            key.dst_addr.eq(Mux(t.ip6, address[1], mapped[1])),
            key.src_port.eq(t.src_port),
            key.dst_port.eq(t.dst_port),
            key.proto.eq(t.proto),
            key.zone.eq(t.zone),
            result.tcp_flags.eq(t.tcp_flags),
            result.frag.valid.eq(t.frag_valid),
            result.frag.more.eq(t.frag_more),
            result.frag.offset.eq(t.frag_offset),
            result.frag.ident.eq(t.frag_ident),
            result.frag.proto.eq(t.frag_proto),
            result.drop.eq(t.drop),
            result.ip_version.eq(t.ip_version),
            result.l3_offset.eq(t.l3_offset),
            result.l4_offset.eq(t.l4_offset),
            result.length.eq(Mux(t.length >> 16, 0xFFFF, t.length[:16])),
            result.port.eq(t.port),
        ]
        # The result is registered once more, in a stage of its own, before the output queue:
        # its LUT RAM, a chunk per 64 bits, is spread wide, and the address select behind
        # ``ip6`` and the drop compare, then the wire to those chunks, was 12.5 to 13 ns at
        # placement. The queue takes ``done`` as its push a cycle ahead, from a flip-flop.
        # Each chunk of the register is zeroed where it must be by its own copies of `keyed`
        # and `frag_shown`: one compare of the drop, as the synchronous reset of the whole
        # key's flip-flops, crossed the die twice (12.44 ns at placement at 42da6a1, the flow
        # engine's slowest path).
        layout = self._result_layout
        keyed_mask = field_mask(layout, ("key", "tcp_flags"))
        frag_mask = field_mask(layout, [f"frag.{name}" for name, _ in layout["frag"].shape
                                        if name != "valid"])
        out = Signal(layout, name="out", reset_less=True)
        out_done = Signal(name="out_done")
        m.d.sync += out_done.eq(done)
        for lo, keyed_k, frag_k in zip(chunks, keyed, frag_shown):
            hi = min(lo + CreditQueue.CHUNK, layout.size)
            m.d.sync += out.as_value()[lo:hi].eq(gated_chunk(
                result.as_value()[lo:hi], lo, [(keyed_k, keyed_mask), (frag_k, frag_mask)]))
        return done, out_done, out

    # --- assembly ----------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        # The pipeline never stalls: every register moves in every cycle, so no enable reaches
        # its ~10k flip-flops (one did, and that net spanned the whole die at placement).
        # Instead ``tready`` only lets a frame in when its result will find a place in the
        # output queue: a credit per place, taken by a frame's last beat, given back when its
        # result leaves.
        tready = Signal(init=1)
        take = Signal()
        m.d.comb += take.eq(self.s_axis.tvalid & tready)

        m.submodules.pipeline = pipe = Module()
        token, l2_bytes = self._input(pipe, take)
        token = self._l2(pipe, token, l2_bytes)
        token = self._ip(pipe, token)
        for k in range(MAX_IPV6_EXT):
            token = self._ext(pipe, token, k)
        token = self._l4(pipe, token)
        done, out_done, result = self._result(pipe, token)

        # A queue whose LUT RAM is written in every cycle, so no write enable runs from the
        # pipeline's last stage to the hundred RAM cells of a result (placed across the die,
        # that wire was the flow engine's slowest path at placement). The credits below keep
        # a place for every frame in the pipeline, so it takes the push a cycle ahead, without
        # a room check, and each chunk's write pointer moves by a copy of it of its own: the
        # push through a LUT to every chunk's pointers was 13 ns at placement (seed 2).
        m.submodules.buffer = buffer = CreditQueue(shape=self._result_layout.size,
                                                   depth=self.result_depth)
        pop = buffer.o.valid & buffer.o.ready
        # Frames whose last beat is in and whose result has not left; tready is worked out a
        # cycle ahead from it, so it is a flip-flop.
        pending = Signal(range(self.result_depth + 1))
        entered = take & self.s_axis.tlast
        m.d.sync += [
            pending.eq(after_step(pending, entered, pop)),
            tready.eq(after_step(pending, entered, pop, lambda n: n < self.result_depth)),
        ]
        m.d.comb += [
            self.s_axis.tready.eq(tready),
            buffer.push_next.eq(done),
            buffer.payload.eq(result.as_value()),
            self.result.valid.eq(buffer.o.valid),
            self.result.payload.eq(buffer.o.payload),
            buffer.o.ready.eq(self.result.ready),
        ]
        # Counted from the output stage's registers: the counters' enables stay off the
        # pipeline's last stage.
        for reason in DropReason:
            with m.If(out_done & (result.drop == reason)):
                count = getattr(self.reason_counts, reason.name.lower())
                m.d.sync += count.eq(count + 1)
        return m
