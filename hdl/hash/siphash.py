"""The keyed flow hash in hardware: SipHash-2-4 over the 40-byte flow key, fully pipelined.

Bit for bit the same function as :func:`sim.flowhash.flow_hash`, which is its golden model.
"""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fanout import register_copies
from ..gft.queue import Queue, ReadAhead
from ..level import after_step
from ..wire import FLOW_KEY


__all__ = ["FlowHash", "C_ROUNDS", "D_ROUNDS", "SIPROUNDS"]


C_ROUNDS = 2    # SipRounds per message block
D_ROUNDS = 4    # SipRounds of finalisation

# The key fills five 8-byte blocks exactly; SipHash then appends a block holding only the
# message length, so six blocks are compressed.
_KEY_BYTES = FLOW_KEY.nbytes
_BLOCKS = _KEY_BYTES // 8 + 1

SIPROUNDS = _BLOCKS * C_ROUNDS + D_ROUNDS
"""SipRounds needed for one flow key (16)."""

_INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def _half_round(half, v0, v1, v2, v3):
    """Half ``half`` (0 or 1) of a SipRound: one level of two independent 64-bit additions."""
    if half == 0:
        v0 = (v0 + v1)[:64]; v1 = v1.rotate_left(13) ^ v0; v0 = v0.rotate_left(32)
        v2 = (v2 + v3)[:64]; v3 = v3.rotate_left(16) ^ v2
    else:
        v0 = (v0 + v3)[:64]; v3 = v3.rotate_left(21) ^ v0
        v2 = (v2 + v1)[:64]; v1 = v1.rotate_left(17) ^ v2; v2 = v2.rotate_left(32)
    return v0, v1, v2, v3


def _schedule(stages_per_round):
    """SipHash as a flat list of steps, cut into pipeline stages of ``2 // stages_per_round``
    half rounds each.

    The XOR steps ride along with the half round before them (or the first one, for the very
    first block): they add one LUT level to a stage, never a stage of their own.
    """
    round_ = [("half", 0), ("half", 1)]
    steps = []
    for block in range(_BLOCKS):
        steps += [("inject", block)] + round_ * C_ROUNDS + [("absorb", block)]
    steps += [("finalize", None)] + round_ * D_ROUNDS

    halves_per_stage = 2 // stages_per_round
    stages, halves = [[]], 0
    for step in steps:
        if step[0] == "half":
            if halves == halves_per_stage:
                stages.append([])
                halves = 0
            halves += 1
        stages[-1].append(step)
    return stages


def _wire(key):
    """The 40 wire bytes of a packed flow key (``FLOW_KEY``), first field first."""
    key = Value.cast(key)
    return [key[len(key) - 8 * (i + 1):len(key) - 8 * i] for i in range(_KEY_BYTES)]


def _initial_state(secret):
    """SipHash's state before the first block, under the 128-bit ``secret`` (k0 in its low half)."""
    k0, k1 = secret[:64], secret[64:]
    return (k0 ^ _INIT[0], k1 ^ _INIT[1], k0 ^ _INIT[2], k1 ^ _INIT[3])


def _block(wire, block):
    """Message block ``block`` as SipHash reads it: eight wire bytes, little-endian.

    The last block is the tail of the message (empty for a 40-byte key) padded with zeros and
    topped with the message length.
    """
    if block < _KEY_BYTES // 8:
        return Cat(*wire[8 * block:8 * block + 8])
    tail = _KEY_BYTES % 8
    return Cat(*wire[_KEY_BYTES - tail:], C(0, 8 * (7 - tail)), C(_KEY_BYTES & 0xFF, 8))


def hash_members(tag_width):
    """The members of a flow hash component (:class:`FlowHash` and
    :class:`~hdl.hash.folded.FoldedFlowHash`): ``i_stream`` of keys and tags, ``o_stream`` of
    hashes and tags, ``secret``. Raises ``TypeError`` unless ``tag_width`` is a non-negative
    integer."""
    if not isinstance(tag_width, int) or isinstance(tag_width, bool) or tag_width < 0:
        raise TypeError(f"Tag width must be a non-negative integer, not {tag_width!r}")
    # Without a tag the field is left out rather than made zero bits wide, which Amaranth
    # would export as malformed [-1:0] wires.
    tag = {"tag": unsigned(tag_width)} if tag_width else {}
    return {
        "i_stream": In(stream.Signature(data.StructLayout({"key": FLOW_KEY.layout, **tag}))),
        "o_stream": Out(stream.Signature(data.StructLayout({"hash": unsigned(64), **tag}))),
        "secret": In(128),
    }


class FlowHash(wiring.Component):
    """SipHash-2-4 of a flow key under a run-time secret; one key per clock.

    Computes :func:`sim.flowhash.flow_hash` of each key: SipHash-2-4 over the 40 wire bytes of
    the key (``FLOW_KEY``, first field first). SipHash reads its message in 8-byte
    little-endian words, so wire byte ``i``, bits ``[319-8i:312-8i]`` of the packed key, becomes
    bits ``[8(i%8)+7:8(i%8)]`` of message word ``i//8``.

    Structure
    ---------
    The 16 SipRounds a key needs are cut into pipeline stages: with ``stages_per_round=2``
    (the default) a stage computes half a SipRound, one level of two independent 64-bit
    additions and their XORs, the fastest cut (152 MHz on LFE5U-85F grade 6, ~11.6k
    flip-flops); with 1 a stage computes a whole SipRound, two dependent additions (~90 MHz),
    for about half the pipeline registers. The last stage folds the state into the 64-bit hash.
    Message bytes leave the pipeline as soon as their block is absorbed.

    The pipeline never stalls: every stage advances every cycle, so no enable fans out to its
    registers. Behind it an output register drives ``o_stream``, and a backlog queue (LUT RAM)
    takes the hashes it cannot take while ``o_stream`` waits. The tags do not travel down the
    pipeline: they wait in a ring memory (block RAM once wide), written when their key is
    accepted and read out with their hash.

    Latency and throughput
    ----------------------
    ``latency = 16 * stages_per_round + 1`` cycles (33 by default, 17 with whole rounds): a key
    transferred on ``i_stream`` at clock edge *t* is offered on ``o_stream`` (``valid`` high)
    from edge *t + latency* when no earlier hash is still waiting. A new key is accepted every
    cycle while ``o_stream.ready`` stays high.

    Backpressure
    ------------
    At most ``capacity = latency + 1`` keys are in flight (transferred on ``i_stream``, their
    hash not yet transferred on ``o_stream``), the fewest that sustain one key per clock, and
    the queues behind the pipeline hold that many: however long ``o_stream`` stalls, no key is
    lost. ``i_stream.ready`` is high exactly while fewer keys are in flight. It comes straight
    from a flip-flop (a registered count of free places), so it depends on neither
    ``i_stream.valid`` nor ``o_stream.ready`` in the same cycle, and it falls only after
    ``o_stream`` has stalled for a while. ``o_stream.valid`` and ``o_stream.payload.hash`` come
    straight from registers, the tag from a short queue read ahead from the tag memory; all
    hold until transferred.

    Secret
    ------
    ``secret`` is the 128-bit SipHash key as the integer ``int.from_bytes(secret16, "little")``:
    bits ``[63:0]`` are SipHash's ``k0``, bits ``[127:64]`` its ``k1``. It is sampled in the
    cycle a key is transferred in, and only then: the secret goes into SipHash's initial state,
    which travels down the pipeline with the key. Software may therefore change it at any time;
    keys already in flight finish under the secret they entered with.

    Parameters
    ----------
    stages_per_round : int
        Pipeline stages per SipRound: 2 (half a round per stage, the default) or 1.
    tag_width : int
        Width of an opaque tag carried from input to output beside each key, so a consumer can
        match hashes to requests. With 0 the payloads have no ``tag`` field at all.

    Members
    -------
    i_stream : ``In(stream.Signature(StructLayout({"key": FLOW_KEY.layout, "tag": tag_width})))``
        Keys to hash.
    o_stream : ``Out(stream.Signature(StructLayout({"hash": 64, "tag": tag_width})))``
        Hashes, in input order, each with the tag of its key. The hash is the 64-bit SipHash
        output as the integer :func:`~sim.flowhash.flow_hash` returns.
    secret : ``In(128)``
        SipHash key, sampled with each input transfer.

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to its output becoming valid, when no output waits.
    capacity : int
        Keys in flight at most; ``i_stream.ready`` is low while this many are.

    Raises
    ------
    ValueError
        If ``stages_per_round`` is not 1 or 2.
    TypeError
        If ``tag_width`` is not a non-negative integer.
    """

    def __init__(self, *, stages_per_round=2, tag_width=0):
        if (not isinstance(stages_per_round, int) or isinstance(stages_per_round, bool) or
                stages_per_round not in (1, 2)):
            raise ValueError(f"Stages per round must be 1 or 2, not {stages_per_round!r}")
        self._stages_per_round = stages_per_round
        self._tag_width = tag_width
        self._stages = _schedule(stages_per_round)
        super().__init__(hash_members(tag_width))

    @property
    def stages_per_round(self):
        return self._stages_per_round

    @property
    def tag_width(self):
        return self._tag_width

    TAG_READ_AHEAD = 4
    """Tags read ahead of their hashes (see ``elaborate``): a read issued when a delivery
    frees a place reaches the queue's head 4 cycles after that delivery (the block RAM's
    output is registered once more), so 4 sustain one hash per clock (with 3 the head runs
    dry and a hash would leave with a wrong tag)."""

    TAG_CHUNK = 36
    """Tag bits per memory of the tag ring: one ECP5 block RAM's width (512 x 36), so that
    each block RAM has address registers of its own."""

    TAG_READ_STAGES = 2
    """Registers from the tag ring's read address to the read-ahead queue: the ring's block
    RAMs (a dozen for the GFT's 420-bit tags) span the die, and their outputs went straight
    into the queue's LUT RAM (11 ns of wire at placement in the full GFT at 7cba390)."""

    @property
    def latency(self):
        # The pipeline stages, the last of which holds the folded hash, then the output register.
        return len(self._stages) + 1

    @property
    def capacity(self):
        # A hash transferred out at an edge frees its place for the key accepted one cycle
        # later at the earliest (the count is registered), so one key per clock needs one place
        # more than the latency.
        return self.latency + 1

    def elaborate(self, platform):
        m = Module()

        accept = Signal()
        deliver = Signal()
        m.d.comb += [
            accept.eq(self.i_stream.valid & self.i_stream.ready),
            deliver.eq(self.o_stream.valid & self.o_stream.ready),
        ]

        # Free places minus one: ``ready`` is then the complement of the sign bit, a flip-flop.
        # The handshakes choose among the counts worked out without them (after_step), so
        # they are not in front of an adder's carry chain.
        spare = Signal(range(-1, self.capacity), init=self.capacity - 1)
        m.d.sync += spare.eq(after_step(spare, deliver, accept))
        m.d.comb += self.i_stream.ready.eq(~spare[-1])

        if self._tag_width:
            # A ring of tags (a power of two places, more than ``capacity``), written as keys
            # are accepted, and read ahead in order into a short queue whose head is the tag
            # of the oldest hash in flight. The ring's read address is a flip-flop that moves
            # when a read is issued (tags written and unread, room in the queue: flip-flops
            # too), not ``head + deliver``: the consumer's ready through an adder to the
            # address of a dozen block RAMs spread across the die was the flow engine's
            # slowest path at placement. A tag is in the queue 5 cycles after its key was
            # accepted, long before its hash; the queue refills one tag per clock behind
            # ``deliver`` (see TAG_READ_AHEAD), so its head is valid whenever
            # ``o_stream.valid`` is.
            depth = 1 << self.capacity.bit_length()     # more places than keys in flight
            # The ring is written at ``tail`` in every cycle, whatever the handshake: that place
            # holds no unread tag (the ring has more places than keys in flight), and only
            # ``tail`` moves on an accept. (As a write enable, the accept reached the block
            # RAMs' byte enables across the die.) A read and a write meet at one address only
            # when no read is issued (nothing unread), and such a read's data is not used:
            # ``no_rw_check`` spares Yosys the collision logic (~2 flip-flops per tag bit).
            ahead = m.submodules.tag_read = ReadAhead(shape=self._tag_width,
                                                      depth=self.TAG_READ_AHEAD,
                                                      capacity=self.capacity,
                                                      stages=self.TAG_READ_STAGES)
            tail = Signal(range(depth))
            rd = Signal(range(depth))
            # A tag counts as unread a cycle after it was written (``written``, a flip-flop):
            # the accept is the producer's handshake, and the counters sit by the tag memory.
            # The handshakes choose between counts worked out without them, as in `spare`: as
            # the carry-in of an adder, the accept reached the copies below through the carry
            # chain (15.6 ns at placement at 428bff9, the chain placed between them).
            tail_next = Mux(accept, (tail + 1)[:len(tail)], tail)
            rd_next = Mux(ahead.issue, (rd + 1)[:len(rd)], rd)
            m.d.sync += [tail.eq(tail_next), rd.eq(rd_next), ahead.written.eq(accept)]
            # The ring is a memory per block RAM's width (TAG_CHUNK bits), each addressed by
            # register copies of ``tail`` and ``rd`` of its own: one pair of counters reached
            # the dozen block RAMs of the GFT's tags across the die (11.9 ns of wire at
            # placement at 4a5b9a1). The copies take the counters' next values, so they equal
            # them in every cycle.
            chunks = range(0, self._tag_width, self.TAG_CHUNK)
            tails = register_copies(m, tail_next, len(chunks), name="tag_tail")
            rds = register_copies(m, rd_next, len(chunks), name="tag_rd")
            for k, lo in enumerate(chunks):
                hi = min(lo + self.TAG_CHUNK, self._tag_width)
                tags = m.submodules[f"tags{k}"] = Memory(
                    shape=hi - lo, depth=depth, init=[], attrs={"no_rw_check": 1})
                tag_w = tags.write_port()
                tag_r = tags.read_port()
                m.d.comb += [
                    tag_w.addr.eq(tails[k]),
                    tag_w.data.eq(self.i_stream.payload.tag[lo:hi]),
                    tag_w.en.eq(1),
                    tag_r.addr.eq(rds[k]),
                    ahead.data[lo:hi].eq(tag_r.data),
                ]
            m.d.comb += [
                ahead.o.ready.eq(deliver),
                self.o_stream.payload.tag.eq(ahead.o.payload),
            ]

        v = _initial_state(self.secret)
        wire = _wire(self.i_stream.payload.key.as_value())
        valid = accept

        halves = 0
        for index, steps in enumerate(self._stages):
            for op, arg in steps:
                if op == "inject":
                    v = (v[0], v[1], v[2], v[3] ^ _block(wire, arg))
                elif op == "half":
                    # Naming each half round's state keeps the expression a chain rather than a
                    # tree (the simulator would otherwise expand shared terms) and shows it in
                    # waves.
                    halves += 1
                    state = _half_round(arg, *v)
                    v = tuple(Signal(64, name=f"half{halves}_v{n}") for n in range(4))
                    m.d.comb += [named.eq(value) for named, value in zip(v, state)]
                elif op == "absorb":
                    v = (v[0] ^ _block(wire, arg), v[1], v[2], v[3])
                elif op == "finalize":
                    v = (v[0], v[1], v[2] ^ 0xFF, v[3])
            if index == len(self._stages) - 1:
                break

            # Carry only the wire bytes later blocks still read.
            later = [arg for stage in self._stages[index + 1:]
                     for op, arg in stage if op in ("inject", "absorb")]
            first_byte = 8 * min(later) if later else _KEY_BYTES
            stage_valid = Signal(name=f"s{index}_valid")
            m.d.sync += stage_valid.eq(valid)
            valid = stage_valid
            regs = tuple(Signal(64, name=f"s{index}_v{n}", reset_less=True) for n in range(4))
            m.d.sync += [reg.eq(value) for reg, value in zip(regs, v)]
            v = regs
            if first_byte < _KEY_BYTES:
                msg = Signal(8 * (_KEY_BYTES - first_byte), name=f"s{index}_msg",
                             reset_less=True)
                m.d.sync += msg.eq(Cat(*wire[first_byte:]))
                wire = [None] * first_byte + [msg[8 * n:8 * n + 8]
                                              for n in range(_KEY_BYTES - first_byte)]
            else:
                wire = [None] * _KEY_BYTES

        # The last stage folds into 64 flip-flops instead of 256.
        last_valid = Signal()
        last_hash = Signal(64, reset_less=True)
        m.d.sync += [
            last_valid.eq(valid),
            last_hash.eq(v[0] ^ v[1] ^ v[2] ^ v[3]),
        ]

        # The output register takes the oldest hash whenever it is free: the head of the
        # backlog, else the hash leaving the pipeline, which otherwise joins the backlog. The
        # backlog is never full when written: it only holds hashes while the output register
        # holds one too, and at most ``capacity`` are in flight, one of them at the last stage.
        # It is a `Queue`, whose LUT RAM is written in every cycle: a ``SyncFIFO``'s write
        # enable (the handshake and its level) reached every LUT-RAM cell of the 64 bits,
        # which the placer spread with the pipeline (10.5 ns at placement in the full GFT).
        backlog = m.submodules.backlog = Queue(shape=64, depth=self.capacity - 1)
        out_hash = Signal(64, reset_less=True)
        out_free = ~self.o_stream.valid | self.o_stream.ready
        m.d.comb += [
            backlog.i.payload.eq(last_hash),
            backlog.i.valid.eq(last_valid & ~(out_free & ~backlog.o.valid)),
            backlog.o.ready.eq(out_free),
            self.o_stream.payload.hash.eq(out_hash),
        ]
        with m.If(out_free):
            m.d.sync += [
                self.o_stream.valid.eq(backlog.o.valid | last_valid),
                out_hash.eq(Mux(backlog.o.valid, backlog.o.payload, last_hash)),
            ]

        return m
