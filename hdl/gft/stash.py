"""The GFT stash: a few fully associative entries in registers beside the bucket RAMs."""

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .bucket import lowest, popcount
from .layouts import EntryState, entry_part


__all__ = ["Stash"]


class Stash(wiring.Component):
    """``params.stash`` entries in registers, read in parallel, written one slot per cycle.

    The stash takes an insert that found no free way and no cuckoo path (the lowest free
    slot, rule 4 of :mod:`sim.model.gft`), and gives an entry back when a way of one of its
    candidate buckets is freed (the lowest live slot that names that bucket, "stash return").
    Each slot stores the full entry, including its two in-sub-table bucket indexes, so both
    choices are a parallel compare of a few bits per slot.

    With ``params.stash == 0`` there is one slot that is never free and never written, so the
    ports keep their width and nothing ever matches it.

    Latency and backpressure
    ------------------------
    ``write`` lands at the next clock edge; every other output is combinational from the
    slot registers. No backpressure. The write enable is one-hot per slot, not a slot number,
    and comes once per 64-bit part of the entry (:func:`~hdl.gft.layouts.entry_part`): a
    slot's 437 flip-flops spread over the die with their readers (the compare beside each
    RAM, the selects at C), so the writer gives each part its own register copy of the
    enable, placed by that part's flip-flops, instead of one enable behind the commit logic
    reaching all of them (timing).

    Members
    -------
    slots : ``Out(ArrayLayout(params.entry, n))``
        The slot registers (``n = max(1, params.stash)``); a slot is free when its ``state``
        is INVALID.
    write : ``In(params.stash_write)``
        ``{"en": ArrayLayout(n, params.entry_parts), "entry": params.entry}``: bit ``i`` of
        ``en[k]`` writes part ``k`` (bits ``64k`` up to ``64k + 63``) of ``entry`` into slot
        ``i``. A writer sets every part's bit of one slot at once (equal copies); an entry
        with ``state`` INVALID frees the slot.
    free_any, free_slot : ``Out(1)``, ``Out(params.slot_bits)``
        Whether a slot is free, and the lowest free one.
    used : ``Out(range(max(2, params.stash + 1)))``
        Live slots.
    probe_i1, probe_i2 : ``In(params.index_bits)``
        Bucket indexes in sub-table 0 and 1 to find return candidates for.
    probe1, probe2 : ``Out(n)``
        Live slots whose ``i1 == probe_i1`` (resp. ``i2 == probe_i2``).
    """

    def __init__(self, params):
        self._p = params
        self._n = max(1, params.stash)
        super().__init__({
            "slots": Out(data.ArrayLayout(params.entry, self._n)),
            "write": In(params.stash_write),
            "free_any": Out(1),
            "free_slot": Out(params.slot_bits),
            "used": Out(range(max(2, params.stash + 1))),
            "probe_i1": In(params.index_bits),
            "probe_i2": In(params.index_bits),
            "probe1": Out(self._n),
            "probe2": Out(self._n),
        })

    def elaborate(self, platform):
        m = Module()
        live = Cat(self.slots[i].state != EntryState.INVALID for i in range(self._n))
        if self._p.stash:
            for i in range(self._n):
                for k in range(self._p.entry_parts):
                    with m.If(self.write.en[k][i]):
                        m.d.sync += entry_part(self.slots[i], k).eq(
                            entry_part(self.write.entry, k))
            free_any, free_slot = lowest(m, ~live, name="free")
            m.d.comb += [
                self.free_any.eq(free_any),
                self.free_slot.eq(free_slot),
                self.used.eq(popcount(live)),
            ]
        m.d.comb += [
            self.probe1.eq(Cat((self.slots[i].i1 == self.probe_i1) & live[i]
                               for i in range(self._n))),
            self.probe2.eq(Cat((self.slots[i].i2 == self.probe_i2) & live[i]
                               for i in range(self._n))),
        ]
        return m
