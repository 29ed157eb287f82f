"""The keyed flow hash folded onto a ring of eight half-round stages: the same function as
:class:`~hdl.hash.siphash.FlowHash` in about a quarter of its logic, for users that need a key
every few cycles, not every cycle (the card's local flow table: one packet per 8 cycles)."""

from amaranth.hdl import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..gft.queue import Queue
from ..level import after_step
from ..wire import FLOW_KEY
from .siphash import C_ROUNDS, D_ROUNDS, _BLOCKS, _INIT, _KEY_BYTES, _block, _half_round


__all__ = ["FoldedFlowHash"]


# The ring does two message blocks per pass (two SipRounds each, four half rounds) and the
# finalisation (four SipRounds) in a pass of its own. Other round counts need another ring.
assert (C_ROUNDS, D_ROUNDS, _BLOCKS) == (2, 4, 6)
_RING = 8           # half rounds per pass, one per stage
_PASSES = 4         # three passes of two blocks each, then the finalisation


class FoldedFlowHash(wiring.Component):
    """SipHash-2-4 of a flow key under a run-time secret, on a ring of eight stages.

    Computes :func:`sim.flowhash.flow_hash` of each key, as :class:`~hdl.hash.siphash.FlowHash`
    does, with the same streams, but each of its eight pipeline stages computes one half
    round and a key goes round the ring four times: passes 0 to 2 each absorb two message
    blocks (two SipRounds per block), pass 3 is the finalisation (four SipRounds). The
    unrolled pipeline has 32 such stages. The message XORs ride with the half round after
    them, as in the unrolled one, from registers read a cycle ahead.

    Where a key is
    --------------
    A key accepted in cycle *t* waits one cycle in the entry register (its initial state, so
    that stage 0 chooses between two registers: a key coming round and a new one) and enters
    stage 0 in cycle *t + 1*, then again in cycles *t + 9*, *t + 17* and *t + 25*. Its place in
    the ring (its *slot*, ``t + 1`` modulo 8) also addresses its key and tag in two LUT RAMs,
    written in the cycle it is accepted. The slot of a key in stage *s* is the stage-0 slot
    of the cycle minus ``s + 1``, so the read addresses are counters, never carried.

    Latency and throughput
    ----------------------
    ``latency`` (35) cycles from an input transfer to ``o_stream.valid``: the entry register,
    32 stages, the fold of the state into the hash, then a queue. A key is refused in a cycle
    8, 16 or 24 cycles after one was accepted (its slot is then taken by that key, which comes
    round to stage 0 in the next cycle): so up to 8 keys are accepted one per clock, and then
    one per :attr:`interval` (4) cycles on average.

    Backpressure
    ------------
    At most ``capacity`` (16) keys are in flight: accepted, their hash not yet transferred on
    ``o_stream``. The output queue holds that many, so the ring never stalls and however long
    ``o_stream`` waits no key is lost. ``i_stream.ready`` is high exactly while fewer keys are
    in flight and the slot is free (above); it is the AND of two flip-flops, so it depends on
    neither ``i_stream.valid`` nor ``o_stream.ready`` in the same cycle. ``o_stream`` comes from
    a :class:`~hdl.gft.queue.Queue` (its payload is read from LUT RAM, undefined while
    ``valid`` is low).

    Secret
    ------
    Sampled in the cycle a key is transferred in, into its initial state, as in
    :class:`~hdl.hash.siphash.FlowHash`: keys in flight finish under the secret they entered
    with.

    Parameters
    ----------
    tag_width : int
        Width of an opaque tag carried from input to output beside each key (0: no ``tag``
        field).

    Members
    -------
    i_stream, o_stream, secret
        As in :class:`~hdl.hash.siphash.FlowHash`.

    Attributes
    ----------
    latency, capacity : int
        As in :class:`~hdl.hash.siphash.FlowHash` (35 and 16).
    interval : int
        Cycles per key at a steady rate (4).
    ring : int
        Stages in the ring (8); a key is refused ``ring``, ``2 * ring`` and ``3 * ring``
        cycles after an accepted one.

    Raises
    ------
    TypeError
        If ``tag_width`` is not a non-negative integer.
    """

    latency = 1 + _RING * _PASSES + 1 + 1     # entry, the passes, fold, queue
    capacity = 16
    ring = _RING
    interval = _PASSES          # each of the 8 slots is taken for 4 passes of 8 cycles

    def __init__(self, *, tag_width=0):
        if not isinstance(tag_width, int) or isinstance(tag_width, bool) or tag_width < 0:
            raise TypeError(f"Tag width must be a non-negative integer, not {tag_width!r}")
        self._tag_width = tag_width
        tag = {"tag": unsigned(tag_width)} if tag_width else {}
        super().__init__({
            "i_stream": In(stream.Signature(data.StructLayout({"key": FLOW_KEY.layout, **tag}))),
            "o_stream": Out(stream.Signature(data.StructLayout({"hash": unsigned(64), **tag}))),
            "secret": In(128),
        })

    @property
    def tag_width(self):
        return self._tag_width

    def elaborate(self, platform):
        m = Module()
        key_bits = FLOW_KEY.layout.size

        # --- admission -----------------------------------------------------------------------

        # ``spare``: free places minus one, its sign bit the credit (as in FlowHash).
        # ``slot_free``: the key in stage 5 now will not come round into stage 0 in two cycles,
        # when a key accepted now enters it.
        out_q = m.submodules.out_queue = Queue(shape=self.o_stream.payload.shape(),
                                               depth=self.capacity)
        wiring.connect(m, out_q.o, wiring.flipped(self.o_stream))
        accept = Signal()
        deliver = self.o_stream.valid & self.o_stream.ready
        spare = Signal(range(-1, self.capacity), init=self.capacity - 1)
        slot_free = Signal(init=1)
        m.d.sync += spare.eq(after_step(spare, deliver, accept))
        m.d.comb += [self.i_stream.ready.eq(~spare[-1] & slot_free),
                     accept.eq(self.i_stream.valid & self.i_stream.ready)]

        # ``pos``: the slot that enters stage 0 in this cycle.
        pos = Signal(3)
        m.d.sync += pos.eq(pos + 1)

        # --- the key and tag of each slot --------------------------------------------------------

        # Written at the slot a key accepted now takes (``pos + 1``) whenever a key may be
        # accepted (``ready``, flip-flops): that slot holds no key still needing its words then.
        # A key finishing there still needs its tag, but reads it in this cycle (below), and a
        # LUT RAM's read gives the old data until the write's clock edge.
        payload = self.i_stream.payload
        keys = m.submodules.keys = memory.Memory(shape=key_bits, depth=_RING, init=[])
        kw = keys.write_port()
        k0_rd, k4_rd = keys.read_port(domain="comb"), keys.read_port(domain="comb")
        m.d.comb += [kw.addr.eq(pos + 1), kw.data.eq(payload.key.as_value()),
                     kw.en.eq(self.i_stream.ready)]
        if self._tag_width:
            tags = m.submodules.tags = memory.Memory(shape=self._tag_width, depth=_RING,
                                                     init=[])
            tw, tr = tags.write_port(), tags.read_port(domain="comb")
            m.d.comb += [tw.addr.eq(pos + 1), tw.data.eq(payload.tag),
                         tw.en.eq(self.i_stream.ready)]

        # --- the entry register: a new key's initial state --------------------------------------

        k0, k1 = self.secret[:64], self.secret[64:]
        wire = lambda value: [value[key_bits - 8 * (i + 1):key_bits - 8 * i]
                              for i in range(_KEY_BYTES)]
        new_wire = wire(payload.key.as_value())
        entry_v = [Signal(64, name=f"entry_v{n}", reset_less=True) for n in range(4)]
        entry_live = Signal()
        m.d.sync += [
            entry_v[0].eq(k0 ^ _INIT[0]), entry_v[1].eq(k1 ^ _INIT[1]),
            entry_v[2].eq(k0 ^ _INIT[2]), entry_v[3].eq(k1 ^ _INIT[3] ^ _block(new_wire, 0)),
            entry_live.eq(accept),
        ]

        # --- the ring -----------------------------------------------------------------------------

        stage = [Signal(data.StructLayout({"live": 1, "pass_": 2}), name=f"s{s}")
                 for s in range(_RING)]
        v = [[Signal(64, name=f"s{s}_v{n}", reset_less=True) for n in range(4)]
             for s in range(_RING)]
        # Stage 7 also knows whether its key comes round again or is done (from stage 6).
        again = Signal()
        done = Signal()
        m.d.sync += [again.eq(stage[6].live & (stage[6].pass_ != _PASSES - 1)),
                     done.eq(stage[6].live & (stage[6].pass_ == _PASSES - 1))]
        m.d.sync += slot_free.eq(~(stage[5].live & (stage[5].pass_ != _PASSES - 1)))

        # The message words at stage 0 (for the key in stage 7, which starts its next pass) and
        # at stage 4, read a cycle ahead into registers: the slot of the key in stage 6 and 2.
        # ``absorb`` goes into v0, ``inject`` into v3, ``final`` into v2.
        def words(rd, addr, pass_, table):
            m.d.comb += rd.addr.eq(addr)
            msg = wire(rd.data)
            blocks = [_block(msg, b) for b in range(_BLOCKS)]
            absorb, inject = Signal(64), Signal(64)
            with m.Switch(pass_):
                for p, (a, i) in enumerate(table):
                    with m.Case(p):
                        m.d.sync += [absorb.eq(0 if a is None else blocks[a]),
                                     inject.eq(0 if i is None else blocks[i])]
            return absorb, inject
        # Stage 0 after pass p: absorb block 2p+1, inject block 2p+2; before the finalisation
        # absorb block 5 (the length) and XOR 0xFF into v2.
        absorb0, inject0 = words(k0_rd, pos + 1, stage[6].pass_,
                                 [(1, 2), (3, 4), (5, None), (None, None)])
        final0 = Signal()
        m.d.sync += final0.eq(stage[6].pass_ == _PASSES - 2)
        # Stage 4 in pass p: absorb block 2p, inject block 2p+1.
        absorb4, inject4 = words(k4_rd, pos - 3, stage[2].pass_,
                                 [(0, 1), (2, 3), (4, 5), (None, None)])

        for s in range(_RING):
            prev = v[s - 1]
            if s == 0:
                # A key coming round, with its message words, or a new key (one LUT per bit).
                x = [Mux(again, prev[0] ^ absorb0, entry_v[0]),
                     Mux(again, prev[1], entry_v[1]),
                     Mux(again, prev[2] ^ Mux(final0, 0xFF, 0), entry_v[2]),
                     Mux(again, prev[3] ^ inject0, entry_v[3])]
                m.d.sync += [stage[0].live.eq(again | entry_live),
                             stage[0].pass_.eq(Mux(again, stage[7].pass_ + 1, 0))]
            else:
                x = list(prev)
                if s == _RING // 2:
                    x[0], x[3] = x[0] ^ absorb4, x[3] ^ inject4
                m.d.sync += stage[s].eq(stage[s - 1])
            m.d.sync += [reg.eq(value) for reg, value in zip(v[s], _half_round(s % 2, *x))]

        # --- fold and output ----------------------------------------------------------------------

        if self._tag_width:
            # The tag of the key in stage 6, which is done in the next cycle.
            tag = Signal(self._tag_width)
            m.d.comb += tr.addr.eq(pos + 1)
            m.d.sync += tag.eq(tr.data)
        folded = Signal(self.o_stream.payload.shape())
        folded_valid = Signal()
        m.d.sync += [folded.hash.eq(v[7][0] ^ v[7][1] ^ v[7][2] ^ v[7][3]),
                     folded_valid.eq(done)]
        if self._tag_width:
            m.d.sync += folded.tag.eq(tag)
        m.d.comb += [out_q.i.valid.eq(folded_valid), out_q.i.payload.eq(folded)]
        return m
