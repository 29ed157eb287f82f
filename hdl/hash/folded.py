"""The keyed flow hash folded onto a ring of eight half-round stages: the same function as
:class:`~hdl.hash.siphash.FlowHash` in about a quarter of its logic, for users that need a key
every few cycles, not every cycle (the card's local flow table: one packet per 8 cycles)."""

from amaranth.hdl import *
from amaranth.lib import data, memory, wiring

from ..gft.queue import Queue
from ..level import after_step
from .siphash import (C_ROUNDS, D_ROUNDS, _BLOCKS, _block, _half_round, _initial_state, _wire,
                      hash_members)


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
    them, as in the unrolled one, from registers read ahead.

    Where a key is
    --------------
    A key accepted in cycle *t* enters stage 0 in cycle *t + 1*, then again in cycles *t + 9*,
    *t + 17* and *t + 25*. Stage 0 XORs into what stage 7 holds (zeros unless a key comes
    round) a register ``w``: the message words of a key coming round, or a new key's initial
    state (so stage 0, like stage 4, has one XOR in front of its adders). A key's place in the
    ring (its *slot*, ``t + 1`` modulo 8) addresses its key and tag in LUT RAM, written in the
    cycle it is accepted; the read addresses are counters, never carried with the key.

    Latency and throughput
    ----------------------
    ``latency`` (34) cycles from an input transfer to ``o_stream.valid``: 32 stages (the last
    half round also folds the state into the hash), a register, then a queue. A key is
    refused in a cycle 8, 16 or 24 cycles after one was accepted (its slot is then taken by
    that key, which comes round to stage 0 in the next cycle): so up to 8 keys are accepted
    one per clock, and then one per :attr:`interval` (4) cycles on average.

    Backpressure
    ------------
    At most ``capacity`` (16) keys are in flight: accepted, their hash not yet transferred on
    ``o_stream``. The output queue holds that many, so the ring never stalls and however long
    ``o_stream`` waits no key is lost. ``i_stream.ready`` is high exactly while fewer keys are
    in flight and the slot is free (above); it is a flip-flop, so it depends on neither
    ``i_stream.valid`` nor ``o_stream.ready`` in the same cycle. ``o_stream`` comes from
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
        As in :class:`~hdl.hash.siphash.FlowHash` (34 and 16).
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

    latency = _RING * _PASSES + 1 + 1     # the passes (the last folds), fold register, queue
    capacity = 16
    ring = _RING
    interval = _PASSES          # each of the 8 slots is taken for 4 passes of 8 cycles

    def __init__(self, *, tag_width=0):
        super().__init__(hash_members(tag_width))
        self._tag_width = tag_width

    @property
    def tag_width(self):
        return self._tag_width

    def elaborate(self, platform):
        m = Module()

        # --- admission -----------------------------------------------------------------------

        # ``spare``: free places minus one, its sign bit the credit (as in FlowHash). ``ready``
        # is one flip-flop (it is also the slot memories' write enable): a credit in the next
        # cycle, and the key in stage 5 now not coming round into stage 0 in two cycles, when a
        # key accepted in the next cycle enters it.
        out_q = m.submodules.out_queue = Queue(shape=self.o_stream.payload.shape(),
                                               depth=self.capacity)
        wiring.connect(m, out_q.o, wiring.flipped(self.o_stream))
        accept = Signal()
        deliver = self.o_stream.valid & self.o_stream.ready
        spare = Signal(range(-1, self.capacity), init=self.capacity - 1)
        ready = Signal(init=1)
        m.d.sync += spare.eq(after_step(spare, deliver, accept))
        m.d.comb += [self.i_stream.ready.eq(ready),
                     accept.eq(self.i_stream.valid & self.i_stream.ready)]

        # The slot that enters stage 0 in a cycle, ``pos``, advances by one every cycle; the
        # slots the memories are written and read at are that plus a fixed offset, each kept as
        # a counter of its own (flip-flops, per memory chunk: see ``slot_memory``).
        def counter(offset, name):
            value = Signal(3, init=offset % _RING, name=name)
            m.d.sync += value.eq(value + 1)
            return value

        # --- the key and tag of each slot --------------------------------------------------------

        # Written at the slot a key accepted now takes (``pos + 1``, the slot of the key in
        # stage 6) whenever a key may be accepted (``ready``): that key does not come round, so
        # it needs neither its words nor its tag any more (read when it was in stage 5).
        # Each memory is cut into chunks of 64 bits, each with its own address counters: one
        # address fanning out to all the LUT RAM of a 400-bit tag was 7 ns of wire.
        def slot_memory(name, value, reads):
            """``value`` (written at slot ``pos + 1``) read at slot ``pos + offset`` for each
            offset of ``reads``; returns the read data, one value per offset."""
            value = Value.cast(value)
            out = [[] for _ in reads]
            for n, lo in enumerate(range(0, len(value), 64)):
                hi = min(len(value), lo + 64)
                mem = m.submodules[f"{name}{n}"] = memory.Memory(shape=hi - lo, depth=_RING,
                                                                   init=[])
                w = mem.write_port()
                m.d.comb += [w.addr.eq(counter(1, f"{name}{n}_w")), w.data.eq(value[lo:hi]),
                             w.en.eq(ready)]
                for k, offset in enumerate(reads):
                    r = mem.read_port(domain="comb")
                    m.d.comb += r.addr.eq(counter(offset, f"{name}{n}_r{k}"))
                    out[k].append(r.data)
            return [Cat(*parts) for parts in out]

        payload = self.i_stream.payload
        # Stage 0's words are read for the key in stage 5 (slot ``pos + 2``), stage 4's for the
        # key in stage 1 (slot ``pos - 2``).
        k0_data, k4_data = slot_memory("keys", payload.key, (2, -2))
        if self._tag_width:
            tag_data, = slot_memory("tags", payload.tag, (2,))

        # --- the ring -----------------------------------------------------------------------------

        stage = [Signal(data.StructLayout({"live": 1, "pass_": 2}), name=f"s{s}")
                 for s in range(_RING)]
        v = [[Signal(64, name=f"s{s}_v{n}", reset_less=True) for n in range(4)]
             for s in range(_RING)]

        def comes_round(s):
            """The key in stage ``s`` goes round again after stage 7 (it is not in pass 3)."""
            return stage[s].live & (stage[s].pass_ != _PASSES - 1)

        # ``again``: the key in stage 7 starts its next pass in stage 0 (registered from stage 6).
        # ``clear``: stage 7 takes zeros, not the key in stage 6, which does not come round (a
        # synchronous reset of its flip-flops, registered from stage 5): so stage 0 adds a key
        # coming round and a new key alike, ``v7 ^ w``.
        again = Signal()
        clear = Signal(init=1)
        m.d.sync += [again.eq(comes_round(6)), clear.eq(~comes_round(5))]
        m.d.sync += ready.eq(after_step(spare, deliver, accept, lambda n: n >= 0) &
                             ~comes_round(5))

        # What stage 0 XORs into the state in stage 7 (zeros unless a key comes round, see
        # ``clear``): the message words of the key coming round, or a new key's initial state.
        # The words of a pass are read two cycles ahead (the slot of the key in stage 5 and,
        # for stage 4, 1) into a register by the memories, then into one free to sit by the
        # adders it feeds (with one, the XOR in front of an adder was placed by the memories,
        # 4.3 ns of wire away). ``absorb`` goes into v0, ``inject`` into v3, ``final`` into v2.
        def words(read, pass_, table):
            msg = _wire(read)
            blocks = [_block(msg, b) for b in range(_BLOCKS)]
            early = [Signal(64, name="absorb"), Signal(64, name="inject")]
            with m.Switch(pass_):
                for p, (a, i) in enumerate(table):
                    with m.Case(p):
                        m.d.sync += [early[0].eq(0 if a is None else blocks[a]),
                                     early[1].eq(0 if i is None else blocks[i])]
            return early

        # Stage 0 after pass p: absorb block 2p+1, inject block 2p+2; before the finalisation
        # absorb block 5 (the length) and XOR 0xFF into v2. A new key: SipHash's initial state
        # under the secret of the cycle it is accepted in, with block 0 injected.
        absorb0, inject0 = words(k0_data, stage[5].pass_,
                                 [(1, 2), (3, 4), (5, None), (None, None)])
        final0 = Mux(stage[6].pass_ == _PASSES - 2, 0xFF, 0)
        w0 = [Signal(64, name=f"w0_v{n}", reset_less=True) for n in range(4)]
        init = list(_initial_state(self.secret))
        init[3] = init[3] ^ _block(_wire(payload.key.as_value()), 0)
        m.d.sync += [word.eq(Mux(comes_round(6), coming, new))
                     for word, coming, new in zip(w0, (absorb0, 0, final0, inject0), init)]
        entry_live = Signal()
        m.d.sync += entry_live.eq(accept)
        # Stage 4 in pass p: absorb block 2p, inject block 2p+1.
        early4 = words(k4_data, stage[1].pass_, [(0, 1), (2, 3), (4, 5), (None, None)])
        w4 = [Signal(64, name=f"w4_v{n}", reset_less=True) for n in (0, 3)]
        m.d.sync += [w4[0].eq(early4[0]), w4[1].eq(early4[1])]

        halves = []
        for s in range(_RING):
            x = list(v[s - 1])
            if s == 0:
                x = [value ^ word for value, word in zip(x, w0)]
                m.d.sync += [stage[0].live.eq(again | entry_live),
                             stage[0].pass_.eq(Mux(again, stage[7].pass_ + 1, 0))]
            else:
                if s == _RING // 2:
                    x[0], x[3] = x[0] ^ w4[0], x[3] ^ w4[1]
                m.d.sync += stage[s].eq(stage[s - 1])
            halves.append(_half_round(s % 2, *x))
            m.d.sync += [reg.eq(value) for reg, value in zip(v[s], halves[s])]
        with m.If(clear):
            m.d.sync += [reg.eq(0) for reg in v[_RING - 1]]

        # --- fold and output ----------------------------------------------------------------------

        # A key done (in stage 6 in pass 3) is folded from stage 7's half round, not from its
        # flip-flops, which take zeros instead (see ``clear``). Its tag is read a cycle ahead.
        if self._tag_width:
            tag = Signal(self._tag_width)
            m.d.sync += tag.eq(tag_data)
        folded = Signal(self.o_stream.payload.shape())
        folded_valid = Signal()
        last = halves[_RING - 1]
        m.d.sync += [folded.hash.eq(last[0] ^ last[1] ^ last[2] ^ last[3]),
                     folded_valid.eq(stage[6].live & (stage[6].pass_ == _PASSES - 1))]
        if self._tag_width:
            m.d.sync += folded.tag.eq(tag)
        m.d.comb += [out_q.i.valid.eq(folded_valid), out_q.i.payload.eq(folded)]
        return m
