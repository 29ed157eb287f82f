"""The flow engine's packet buffer: holds each frame's bytes while the frame is parsed, hashed and
looked up, then hands them on as wide words."""

from amaranth.hdl import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..gft.queue import ReadAhead
from ..level import after_step
from .axis import AxiStreamSignature


__all__ = ["PacketBuffer"]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class PacketBuffer(wiring.Component):
    """First-in first-out store of frames in block RAM, ``word_width`` bits per word.

    Beats of ``data_width`` bits are packed into words of ``word_width`` bits (a power-of-two
    multiple): beat ``j`` of a word fills its lanes from ``j * data_width / 8`` on. Every frame
    starts on a new word, so a frame of ``n`` bytes occupies ``ceil(n / word bytes)`` words,
    bytes past its end in its last word being undefined; a frame of 0 bytes occupies none.
    The frame's bytes are those the parser reads (``tkeep`` matters on the ``tlast`` beat only,
    and only whether it keeps any lane: a ``tlast`` beat keeping none adds no byte).

    A frame longer than ``max_frame_bytes`` is cut there: its later beats are taken and thrown
    away, so it occupies ``max_frame_bytes / word bytes`` words. The reader knows every frame's
    length (the parser reports it), so ``words`` carries no frame boundaries: the consumer
    takes ``ceil(min(length, max_frame_bytes) / word bytes)`` words per frame.

    Latency and backpressure
    ------------------------
    A word is written to the RAM the cycle after its last beat transferred and offered on
    ``words`` 3 cycles later. ``s_axis.tready`` is a flip-flop, low while the RAM is full (it
    holds ``depth - 1`` words: a word counts once written, and one is kept spare for a word
    that closed and is not yet counted); ``words`` comes from a 4-entry queue behind the RAM's
    registered output, one word per clock.

    Parameters (keyword only)
    -------------------------
    data_width : int
        ``s_axis`` width: 8 times a power of two.
    word_width : int
        Word width: ``data_width`` times a power of two.
    capacity_bytes : int
        RAM size in bytes: a power of two, at least twice ``max_frame_bytes``.
    max_frame_bytes : int
        Longest frame kept whole: a multiple of the word size, below 65535.

    Members
    -------
    s_axis : ``In(AxiStreamSignature(data_width, 1))``
        Frames (``tuser`` unused).
    words : ``Out(stream.Signature(word_width))``
        The words of the frames, in order.

    Raises
    ------
    ValueError
        If a parameter is out of its range.
    """

    READ_DEPTH = 4

    def __init__(self, *, data_width=64, word_width=256, capacity_bytes=32768,
                 max_frame_bytes=16384):
        if not _is_int(data_width) or data_width not in (8 << n for n in range(7)):
            raise ValueError(f"data_width must be 8 times a power of two up to 512, not "
                             f"{data_width!r}")
        if (not _is_int(word_width) or word_width < data_width or word_width % data_width or
                (word_width // data_width) & (word_width // data_width - 1)):
            raise ValueError(f"word_width must be data_width times a power of two, not "
                             f"{word_width!r}")
        word_bytes = word_width // 8
        if not _is_int(max_frame_bytes) or not 0 < max_frame_bytes < 65535 or \
                max_frame_bytes % word_bytes:
            raise ValueError(f"max_frame_bytes must be a positive multiple of {word_bytes} "
                             f"below 65535, not {max_frame_bytes!r}")
        if (not _is_int(capacity_bytes) or capacity_bytes & (capacity_bytes - 1) or
                capacity_bytes < 2 * max_frame_bytes):
            raise ValueError(f"capacity_bytes must be a power of two of at least "
                             f"2 * max_frame_bytes, not {capacity_bytes!r}")
        self._data_width = data_width
        self._word_width = word_width
        self._capacity_bytes = capacity_bytes
        self._max_frame_bytes = max_frame_bytes
        super().__init__({
            "s_axis": In(AxiStreamSignature(data_width, 1)),
            "words": Out(stream.Signature(word_width)),
        })

    @property
    def word_bytes(self):
        return self._word_width // 8

    @property
    def depth(self):
        return self._capacity_bytes // self.word_bytes

    @property
    def max_frame_words(self):
        return self._max_frame_bytes // self.word_bytes

    def elaborate(self, platform):
        m = Module()
        depth, beats = self.depth, self._word_width // self._data_width
        ptr_bits = ceil_log2(depth)
        axis = self.s_axis

        # The RAM is read at ``rd_ptr`` in every cycle, but only a read issued for a word
        # written a cycle before or earlier is used (``ReadAhead``): a read that meets the
        # write of its own address is never used, so synthesis may leave it undefined
        # (``no_rw_check``; for old data Yosys delays the write and adds a bypass select).
        ram = m.submodules.ram = memory.Memory(shape=unsigned(self._word_width), depth=depth,
                                               init=[], attrs={"no_rw_check": 1})
        wr, rd = ram.write_port(), ram.read_port()
        self.ram_ports = (rd, wr)   # for tests that make a clashing read undefined

        # --- write: beats into a word register, whole words into the RAM -----------------------

        word = Signal(self._word_width, reset_less=True)
        lane = Signal(range(max(2, beats)))          # beat position in the word
        kept = Signal(range(self.max_frame_words + 1))   # words of this frame written so far
        pending = Signal()                           # ``word`` goes to the RAM this cycle
        wr_ptr = Signal(ptr_bits + 1)
        rd_ptr = Signal(ptr_bits + 1)
        used = Signal(range(depth + 1))              # RAM words written, not read
        room = Signal(init=1)

        m.d.comb += axis.tready.eq(room)
        take = axis.tvalid & room
        cut = kept == self.max_frame_words
        last_lane = lane == beats - 1
        # A tlast beat that keeps no lane adds no byte: it closes the word only if the word
        # already holds bytes.
        adds = ~axis.tlast | axis.tkeep.any()
        closes = take & ~cut & Mux(adds, last_lane | axis.tlast, axis.tlast & (lane != 0))
        # The lane at ``lane`` takes ``tdata`` whatever the handshake: ``lane`` moves only when
        # a beat is kept, so the beat kept last is what stays. The enable of each lane's
        # flip-flops is then a compare of ``lane``, not the input handshake (which reached
        # them across the die at placement). A word goes to the RAM the cycle after it
        # closes, before a lane of it is written again.
        for j in range(beats):
            with m.If(lane == j):
                m.d.sync += word[j * self._data_width:(j + 1) * self._data_width].eq(axis.tdata)
        with m.If(take & ~cut):
            m.d.sync += lane.eq(Mux(last_lane | axis.tlast, 0, lane + 1))
        with m.If(take & axis.tlast):
            m.d.sync += [lane.eq(0), kept.eq(0)]
        with m.Elif(closes):
            m.d.sync += kept.eq(kept + 1)
        m.d.sync += pending.eq(closes)
        m.d.comb += [wr.addr.eq(wr_ptr[:ptr_bits]), wr.data.eq(word), wr.en.eq(pending)]
        with m.If(pending):
            m.d.sync += wr_ptr.eq(wr_ptr + 1)

        # --- read: registered RAM output into a queue, issued only with room for it ------------

        # Words written and not yet read, and room in the queue for one more read, are kept
        # as flags by ReadAhead: ``issue`` is one LUT, and it is in front of ``room`` (a
        # compare of the two pointers there was the block's slowest path).
        ahead = m.submodules.read_ahead = ReadAhead(shape=self._word_width,
                                                    depth=self.READ_DEPTH, capacity=depth,
                                                    stages=2)
        wiring.connect(m, ahead.o, wiring.flipped(self.words))
        issue = ahead.issue
        m.d.comb += [rd.addr.eq(rd_ptr[:ptr_bits]), ahead.data.eq(rd.data),
                     ahead.written.eq(pending)]
        with m.If(issue):
            m.d.sync += rd_ptr.eq(rd_ptr + 1)

        # ``room`` for the next cycle, from this cycle's changes. ``used`` counts a word when it
        # is written (``pending``), a cycle after it closed, so no input handshake reaches it:
        # ``closes`` follows the beat read from the input queue's LUT RAM, and that read, out
        # to the LUT RAM and back to this count's carry chain, was the engine's slowest path
        # at placement (14.55 ns). At most one word closes per cycle, so besides the words
        # counted at most one has closed uncounted, and one more may close: ``room`` keeps two
        # free, and the RAM holds one word less than its depth.
        m.d.sync += [used.eq(after_step(used, pending, issue)),
                     room.eq(after_step(used, pending, issue, lambda n: n < depth - 1))]
        return m
