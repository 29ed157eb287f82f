"""The keyed flow hash in hardware: SipHash-2-4 over the 40-byte flow key, fully pipelined.

Bit for bit the same function as :func:`sim.flowhash.flow_hash`, which is its golden model.
"""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

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


def _sipround(v0, v1, v2, v3):
    v0 = (v0 + v1)[:64]; v1 = v1.rotate_left(13) ^ v0; v0 = v0.rotate_left(32)
    v2 = (v2 + v3)[:64]; v3 = v3.rotate_left(16) ^ v2
    v0 = (v0 + v3)[:64]; v3 = v3.rotate_left(21) ^ v0
    v2 = (v2 + v1)[:64]; v1 = v1.rotate_left(17) ^ v2; v2 = v2.rotate_left(32)
    return v0, v1, v2, v3


def _schedule(rounds_per_stage):
    """SipHash as a flat list of steps, cut into pipeline stages of ``rounds_per_stage`` rounds.

    The XOR steps ride along with the round before them (or the first round, for the very
    first block): they add one LUT level to a stage, never a stage of their own.
    """
    steps = []
    for block in range(_BLOCKS):
        steps += [("inject", block)] + [("round", None)] * C_ROUNDS + [("absorb", block)]
    steps += [("finalize", None)] + [("round", None)] * D_ROUNDS

    stages, rounds = [[]], 0
    for step in steps:
        if step[0] == "round":
            if rounds == rounds_per_stage:
                stages.append([])
                rounds = 0
            rounds += 1
        stages[-1].append(step)
    return stages


def _block(wire, block):
    """Message block ``block`` as SipHash reads it: eight wire bytes, little-endian.

    The last block is the tail of the message (empty for a 40-byte key) padded with zeros and
    topped with the message length.
    """
    if block < _KEY_BYTES // 8:
        return Cat(*wire[8 * block:8 * block + 8])
    tail = _KEY_BYTES % 8
    return Cat(*wire[_KEY_BYTES - tail:], C(0, 8 * (7 - tail)), C(_KEY_BYTES & 0xFF, 8))


class FlowHash(wiring.Component):
    """SipHash-2-4 of a flow key under a run-time secret; one key per clock.

    Computes :func:`sim.flowhash.flow_hash` of each key: SipHash-2-4 over the 40 wire bytes of
    the key (``FLOW_KEY``, first field first). SipHash reads its message in 8-byte
    little-endian words, so wire byte ``i``, bits ``[319-8i:312-8i]`` of the packed key, becomes
    bits ``[8(i%8)+7:8(i%8)]`` of message word ``i//8``.

    Latency and throughput
    ----------------------
    The 16 SipRounds a key needs are cut into stages of ``rounds_per_stage`` rounds, so
    ``latency = ceil(16 / rounds_per_stage)`` cycles: 16 by default, 8 with two rounds per stage.
    A key transferred on ``i_stream`` at clock edge *t* is offered on ``o_stream`` (``valid``
    high) from edge *t + latency* when nothing stalls. A new key is accepted every cycle.
    One SipRound (two dependent pairs of 64-bit additions) per stage is the choice for
    ~125 MHz on ECP5; two halve the registers at about half the clock.

    Backpressure
    ------------
    The pipeline moves as one: every stage advances when ``o_stream.ready`` is high or
    ``o_stream.valid`` is low (the output register is empty), and the whole pipeline holds
    otherwise. ``i_stream.ready`` is that enable, so it depends combinationally on
    ``o_stream.ready`` but never on ``i_stream.valid``; ``o_stream.valid`` and its payload come
    straight from registers and hold until transferred.

    Secret
    ------
    ``secret`` is the 128-bit SipHash key as the integer ``int.from_bytes(secret16, "little")``:
    bits ``[63:0]`` are SipHash's ``k0``, bits ``[127:64]`` its ``k1``. It is sampled in the
    cycle a key is transferred in, and only then: the secret goes into SipHash's initial state,
    which travels down the pipeline with the key. Software may therefore change it at any time;
    keys already in flight finish under the secret they entered with.

    Parameters
    ----------
    rounds_per_stage : int
        SipRounds computed between two pipeline registers; a positive integer. Values of
        :data:`SIPROUNDS` or more give a single stage.
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
        Cycles from an input transfer to its output becoming valid, when not stalled.

    Raises
    ------
    TypeError
        If ``rounds_per_stage`` is not a positive integer, or ``tag_width`` is not a
        non-negative integer.
    """

    def __init__(self, *, rounds_per_stage=1, tag_width=0):
        if (not isinstance(rounds_per_stage, int) or isinstance(rounds_per_stage, bool) or
                rounds_per_stage <= 0):
            raise TypeError(f"Rounds per stage must be a positive integer, not "
                            f"{rounds_per_stage!r}")
        if not isinstance(tag_width, int) or isinstance(tag_width, bool) or tag_width < 0:
            raise TypeError(f"Tag width must be a non-negative integer, not {tag_width!r}")
        self._rounds_per_stage = rounds_per_stage
        self._tag_width = tag_width
        self._stages = _schedule(rounds_per_stage)
        # Without a tag the field is left out rather than made zero bits wide, which Amaranth
        # would export as malformed [-1:0] wires.
        tag = {"tag": unsigned(tag_width)} if tag_width else {}
        super().__init__({
            "i_stream": In(stream.Signature(data.StructLayout({"key": FLOW_KEY.layout, **tag}))),
            "o_stream": Out(stream.Signature(data.StructLayout({"hash": unsigned(64), **tag}))),
            "secret": In(128),
        })

    @property
    def rounds_per_stage(self):
        return self._rounds_per_stage

    @property
    def tag_width(self):
        return self._tag_width

    @property
    def latency(self):
        return len(self._stages)

    def elaborate(self, platform):
        m = Module()

        enable = Signal()
        m.d.comb += [
            enable.eq(self.o_stream.ready | ~self.o_stream.valid),
            self.i_stream.ready.eq(enable),
        ]

        k0, k1 = self.secret[:64], self.secret[64:]
        v = (k0 ^ _INIT[0], k1 ^ _INIT[1], k0 ^ _INIT[2], k1 ^ _INIT[3])
        key = self.i_stream.payload.key.as_value()
        wire = [key[len(key) - 8 * (i + 1):len(key) - 8 * i] for i in range(_KEY_BYTES)]
        valid = self.i_stream.valid
        tag = self.i_stream.payload.tag if self._tag_width else C(0, 0)

        def register(value, name, **kwargs):
            # No register for a value without bits (a zero-width tag, a spent message): such
            # signals only turn into malformed [-1:0] wires in the Verilog.
            value = Value.cast(value)
            if len(value) == 0:
                return value
            reg = Signal(len(value), name=name, **kwargs)
            with m.If(enable):
                m.d.sync += reg.eq(value)
            return reg

        done = 0
        for index, steps in enumerate(self._stages):
            for op, block in steps:
                if op == "inject":
                    v = (v[0], v[1], v[2], v[3] ^ _block(wire, block))
                elif op == "round":
                    # Naming each round's state keeps the expression a chain rather than a tree
                    # (the simulator would otherwise expand shared terms) and shows it in waves.
                    done += 1
                    state = _sipround(*v)
                    v = tuple(Signal(64, name=f"round{done}_v{n}") for n in range(4))
                    m.d.comb += [named.eq(value) for named, value in zip(v, state)]
                elif op == "absorb":
                    v = (v[0] ^ _block(wire, block), v[1], v[2], v[3])
                elif op == "finalize":
                    v = (v[0], v[1], v[2] ^ 0xFF, v[3])

            if index == len(self._stages) - 1:
                # Fold into the output register: 64 flip-flops instead of 256.
                with m.If(enable):
                    m.d.sync += [
                        self.o_stream.valid.eq(valid),
                        self.o_stream.payload.hash.eq(v[0] ^ v[1] ^ v[2] ^ v[3]),
                    ]
                    if self._tag_width:
                        m.d.sync += self.o_stream.payload.tag.eq(tag)
                break

            # Carry only the wire bytes later blocks still read.
            later = [block for stage in self._stages[index + 1:]
                     for op, block in stage if op in ("inject", "absorb")]
            first_byte = 8 * min(later) if later else _KEY_BYTES
            valid = register(valid, f"s{index}_valid")
            v = tuple(register(v[n], f"s{index}_v{n}", reset_less=True) for n in range(4))
            tag = register(tag, f"s{index}_tag", reset_less=True)
            msg = register(Cat(*wire[first_byte:]), f"s{index}_msg", reset_less=True)
            wire = [None] * first_byte + [msg[8 * n:8 * n + 8]
                                          for n in range(_KEY_BYTES - first_byte)]

        return m
