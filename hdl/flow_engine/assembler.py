"""Frame assembly: a prefix of wire-format bytes, then a buffered packet, as one AXI4-Stream
frame; or a buffered packet thrown away."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..gft.queue import Queue
from ..onehot import select
from .axis import AxiStreamSignature


__all__ = ["FrameAssembler", "TOTAL_WIDTH"]


TOTAL_WIDTH = 17
"""Bits of a frame's total length: a prefix plus a packet of up to 65535 bytes."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class FrameAssembler(wiring.Component):
    """Emits one output frame per job: ``prefix`` bytes, then ``words`` words of ``words``.

    A job names its *kind*, which fixes the prefix length ``P = prefix_lengths[kind]``, carries
    the ``P`` prefix bytes (lane order: byte 0 in bits 7..0), the number of words of the packet
    to take from ``words`` and the frame's ``total`` length in bytes (``P`` plus the packet's
    length; the bytes of the last word past it are not sent). A job with ``emit`` low takes its
    words and sends nothing: the packet of a dropped frame leaves the buffer.

    How
    ---
    With ``L`` bytes per beat, ``P = F * L + s``: the first ``F`` beats are prefix only, and
    then every beat is the ``s`` bytes carried over (the prefix's tail, later the end of the
    previous word) followed by the first ``L - s`` bytes of the next word. Because ``s`` is a
    constant of each kind, putting a word after the carry is a fixed wiring per kind, not a
    barrel shifter. A last beat with only carried bytes follows when the packet's last bytes
    fell into the carry. Only the carry (at most ``L - 1`` bytes) changes per beat: the prefix
    stays where the job put it, and a one-hot register picks each beat's bytes (a prefix beat,
    the prefix's tail then the first word, or the carry then the next word), so that the
    decision to send a beat reaches as few flip-flops as it can.

    Throughput and backpressure
    ---------------------------
    One beat per clock while the output takes them and words are there, plus one cycle per job
    to load it. A frame of ``P + n`` bytes takes ``ceil((P + n) / L) + 1`` cycles; a dropped
    packet ``ceil(n / L) + 1``. ``m_axis`` comes from a two-entry queue (its ``tvalid`` and
    payload from registers); ``jobs.ready`` and ``words.ready`` never depend combinationally
    on ``m_axis.tready``.

    Parameters (keyword only)
    -------------------------
    word_width : int
        Width of the words and of ``m_axis.tdata``, a positive multiple of 8.
    prefix_lengths : tuple of int
        Prefix length in bytes of each kind of job, each positive.
    user_width : int
        Width of ``m_axis.tuser``, set from the job's ``user`` on every beat of its frame.
    max_words : int
        Most words a job may take.

    Members
    -------
    jobs : ``In(stream.Signature(job_layout))``
        ``emit``, ``kind``, ``prefix``, ``words``, ``total``, ``user``.
    words : ``In(stream.Signature(word_width))``
        Packet words, in job order.
    m_axis : ``Out(AxiStreamSignature(word_width, user_width))``
        Frames; ``tkeep`` is all ones except on the ``tlast`` beat.
    """

    def __init__(self, *, word_width, prefix_lengths, user_width, max_words):
        if not _is_int(word_width) or word_width <= 0 or word_width % 8:
            raise ValueError(f"word_width must be a positive multiple of 8, not {word_width!r}")
        prefix_lengths = tuple(prefix_lengths)
        if not prefix_lengths or not all(_is_int(p) and p > 0 for p in prefix_lengths):
            raise ValueError(f"prefix_lengths must be positive integers, not {prefix_lengths!r}")
        if not _is_int(max_words) or max_words < 1:
            raise ValueError(f"max_words must be a positive integer, not {max_words!r}")
        self._lanes = word_width // 8
        self._prefix_lengths = prefix_lengths
        self.job_layout = data.StructLayout({
            "emit": 1, "kind": range(max(2, len(prefix_lengths))),
            "prefix": 8 * max(prefix_lengths), "words": range(max_words + 1),
            "total": TOTAL_WIDTH, "user": user_width,
        })
        super().__init__({
            "jobs": In(stream.Signature(self.job_layout)),
            "words": In(stream.Signature(word_width)),
            "m_axis": Out(AxiStreamSignature(word_width, user_width)),
        })

    def elaborate(self, platform):
        m = Module()
        L = self._lanes
        # (F, s) of each kind: F beats of prefix only, then ``s`` prefix bytes carried over.
        splits = [divmod(p, L) for p in self._prefix_lengths]
        prefix_beats = max(f for f, _ in splits)
        carry_lanes = max(1, max(s for _, s in splits))
        job = self.jobs.payload

        beat = data.StructLayout({"tdata": 8 * L, "tkeep": L, "tlast": 1,
                                  "tuser": len(self.m_axis.tuser)})
        out_depth = 2
        out_q = m.submodules.out_queue = Queue(shape=beat, depth=out_depth)
        m.d.comb += [
            self.m_axis.tdata.eq(out_q.o.payload.tdata),
            self.m_axis.tkeep.eq(out_q.o.payload.tkeep),
            self.m_axis.tlast.eq(out_q.o.payload.tlast),
            self.m_axis.tuser.eq(out_q.o.payload.tuser),
            self.m_axis.tvalid.eq(out_q.o.valid),
            out_q.o.ready.eq(self.m_axis.tready),
        ]

        # ``busy``, ``in_prefix``, ``emit`` and ``more`` are flip-flops whose next values are
        # worked out combinationally (the ``_next`` signals, set below). Two flags follow them
        # in flip-flops of their own (worked out per case, at the end): ``free_beat`` (the next
        # beat, if there is room, needs no word: a prefix beat or the carry-only last beat) and
        # ``word_beat`` (it needs one). Whether a beat goes out is then one LUT of flip-flops
        # and ``words.valid``, which shortens the path into the output queue's level.
        # (Named: Amaranth cannot name signals assigned by tuple unpacking.)
        busy, busy_next = Signal(name="busy"), Signal(name="busy_next")
        # else in the words (or the last beat)
        in_prefix, in_prefix_next = Signal(name="in_prefix"), Signal(name="in_prefix_next")
        emit, emit_next = Signal(name="emit"), Signal(name="emit_next")
        more, more_next = Signal(name="more"), Signal(name="more_next")   # words_left != 0
        # ``~busy`` again, in a flip-flop of its own: the enable of the ~600 flip-flops a job
        # loads (prefix, counts, user). On ``busy`` itself that fanout put 5 ns of wire at the
        # start of every beat decision. Kept inverted so that synthesis cannot merge the two.
        idle = Signal(init=1)
        free_beat = Signal()
        word_beat = Signal()
        # The prefix stays where the job put it, and the bytes of a beat are chosen by
        # ``source``: it is loaded while the assembler is idle (enable: ``idle``, one
        # flip-flop) and never shifted, so no beat decision (``room``, ``words.valid``) reaches
        # its hundreds of enables. Only ``carry``, at most ``L - 1`` bytes, changes: it holds
        # the last ``carry_lanes`` bytes of the last word taken (a kind carrying ``s`` bytes
        # reads its top ``s``, so what it holds is the same for every kind).
        prefix = Signal(8 * max(self._prefix_lengths), reset_less=True)
        # ``carry`` is one of two registers: every cycle the word on offer is written into the
        # other one (``spare``, enable: a flip-flop), and taking a word swaps their roles. So
        # no register's enable hangs on ``words.valid`` (it was the block's slowest net, with
        # synthesis sharing it into the counters' logic).
        carries = [Signal(8 * carry_lanes, reset_less=True, name=f"carry{n}") for n in range(2)]
        spare = Signal()
        carry = Mux(spare, carries[0], carries[1])
        # What this beat's bytes are, one-hot flip-flops that each steer the data straight
        # (a decoded select there was the block's slowest path): prefix beat ``n`` (bit ``n``);
        # for kind ``k``, the prefix's tail then the first word (bit ``prefix_beats + k``), or
        # the carry then the next word (bit ``prefix_beats + K + k``).
        K = len(splits)
        source = Signal(prefix_beats + 2 * K)
        kind_oh = Signal(K)
        full_left = Signal(range(prefix_beats + 1))
        words_left = Signal.like(job.words)
        rem = Signal(TOTAL_WIDTH)     # bytes of the frame not yet sent
        last = Signal()               # rem <= L: the next beat is the frame's last
        # ``more`` and ``last`` are kept in flip-flops, not compared from the counts, because
        # they decide (with ``room``) whether a beat goes out.
        user = Signal.like(job.user)

        def lanes(value, lo, hi):
            return value[8 * lo:8 * hi]

        # --- load a job ------------------------------------------------------------------------

        fulls = Array(C(f, len(full_left)) for f, _ in splits)
        m.d.comb += self.jobs.ready.eq(~busy)
        m.d.comb += [busy_next.eq(busy), in_prefix_next.eq(in_prefix), emit_next.eq(emit),
                     more_next.eq(more)]
        m.d.sync += [busy.eq(busy_next), in_prefix.eq(in_prefix_next), emit.eq(emit_next),
                     more.eq(more_next), idle.eq(~busy_next)]
        with m.If(idle):
            # Whatever the jobs stream offers; used only once a job is taken (at this edge).
            job_kind_oh = Cat(job.kind == k for k in range(K))
            m.d.sync += [prefix.eq(job.prefix), kind_oh.eq(job_kind_oh),
                         source.eq(Mux(fulls[job.kind] != 0, 1, job_kind_oh << prefix_beats)),
                         user.eq(job.user), words_left.eq(job.words), rem.eq(job.total),
                         last.eq(job.total <= L)]
            m.d.sync += full_left.eq(fulls[job.kind])
        with m.If(self.jobs.valid & ~busy):
            first_full = fulls[job.kind]
            m.d.comb += [
                busy_next.eq(job.emit | (job.words != 0)),
                emit_next.eq(job.emit), in_prefix_next.eq(first_full != 0),
                more_next.eq(job.words != 0),
            ]

        # --- one beat out ----------------------------------------------------------------------

        # Room in the output queue for this cycle's beat: the queue's ``i.ready``, a flip-flop
        # worked out from the last cycle's level, push and pop (exact, not a bound).
        room = out_q.i.ready
        out = out_q.i.payload
        m.d.comb += [
            out.tkeep.eq(Cat(rem > i for i in range(L))),
            out.tlast.eq(last),
            out.tuser.eq(user),
        ]
        word = self.words.payload
        have_word = more
        done = Signal()

        def next_beat():
            return [rem.eq(rem - L), last.eq(rem <= 2 * L)]

        def next_word():
            m.d.comb += more_next.eq(words_left != 1)
            return [words_left.eq(words_left - 1)]

        # The beat of this cycle, if any: the same choice as the branches below make, from the
        # two flags (see above), for the output queue's ``valid``.
        step = room & (free_beat | (word_beat & self.words.valid))
        take_word = Signal()        # a word goes out in this beat: one LUT of flip-flops
        m.d.comb += take_word.eq(room & word_beat & self.words.valid)
        m.d.comb += out_q.i.valid.eq(step)
        m.d.comb += out.tdata.eq(select(source, [
            *(lanes(prefix, n * L, n * L + L) for n in range(prefix_beats)),
            # The carried bytes, then the first ``L - s`` bytes of the word; the word's last
            # ``s`` bytes are carried to the next beat. A fixed wiring per kind.
            *(Cat(lanes(prefix, f * L, f * L + s), lanes(word, 0, L - s)) for f, s in splits),
            *(Cat(lanes(carry, carry_lanes - s, carry_lanes), lanes(word, 0, L - s))
              for _, s in splits)]))
        with m.If(busy & ~emit):
            # A dropped packet: take its words, one per clock.
            m.d.comb += self.words.ready.eq(1)
            with m.If(self.words.valid):
                m.d.sync += next_word()
                with m.If(words_left == 1):
                    m.d.comb += busy_next.eq(0)
        with m.Elif(busy & in_prefix):
            with m.If(room):
                m.d.sync += [source.eq(source << 1), full_left.eq(full_left - 1), *next_beat()]
                with m.If(full_left == 1):
                    m.d.comb += in_prefix_next.eq(0)
                    m.d.sync += source.eq(kind_oh << prefix_beats)
                m.d.comb += done.eq(last)
        with m.Elif(busy):
            m.d.comb += self.words.ready.eq(room & word_beat)
            with m.If(step):
                m.d.sync += [source.eq(kind_oh << (prefix_beats + K)), *next_beat()]
                with m.If(have_word):
                    m.d.sync += next_word()
                m.d.comb += done.eq(last)
        with m.If(done):
            m.d.comb += busy_next.eq(0)

        # ``free_beat`` and ``word_beat`` of the next cycle (``busy_next & emit_next &
        # (in_prefix_next | ~more_next)`` and ``busy_next & emit_next & ~in_prefix_next &
        # more_next``), written out per case so that ``step``, the late signal, chooses last:
        # idle, the job loaded now decides; no beat now, they stay; a beat now, the state
        # after it does (none after the frame's last beat). A dropped packet has neither.
        load_any = self.jobs.valid & job.emit
        load_prefix = fulls[job.kind] != 0
        load_more = job.words != 0
        in_prefix_after = in_prefix & (full_left != 1)
        more_after = more & (in_prefix | (words_left != 1))
        flags = Cat(load_any & (load_prefix | ~load_more), load_any & ~load_prefix & load_more)
        flags_after = Mux(last, 0, Cat(in_prefix_after | ~more_after,
                                       ~in_prefix_after & more_after))
        m.d.sync += Cat(free_beat, word_beat).eq(
            Mux(~busy, flags, Mux(step, flags_after, Cat(free_beat, word_beat))))
        # Outside the branches above (``word_beat`` implies the last one).
        for n in range(2):
            with m.If(spare == n):
                m.d.sync += carries[n].eq(lanes(word, L - carry_lanes, L))
        m.d.sync += spare.eq(spare ^ take_word)
        return m
