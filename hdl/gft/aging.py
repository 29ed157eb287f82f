"""Background aging of the GFT: the scan cursor and the expiry test."""

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .layouts import EntryState


__all__ = ["expiry_window", "expired", "AgingScan"]


def expiry_window(now, timeout, bits):
    """The timestamps that are expired at ``now``, as a struct value (``lo``, ``hi``,
    ``wrap``, ``on``) to register, then pass to :func:`expired`.

    With ``d = (now - timestamp) mod 2**T`` (``T = bits``), expired means
    ``timeout < d < 2**(T-1)``: serial-number arithmetic, so a timestamp "ahead" of ``now``
    reads as young, never as ancient (the model's ``_expired``). Those timestamps are the
    cyclic interval ``[lo, hi] = [now - (2**(T-1) - 1), now - (timeout + 1)]``, which passes
    through zero when ``lo > hi`` (``wrap``) and is empty (``on`` clear) when ``timeout >=
    2**(T-1) - 1``. Working the interval out once, apart from the entries, leaves each entry
    two compares side by side instead of a subtraction with a compare behind it.
    """
    layout = data.StructLayout({"lo": bits, "hi": bits, "wrap": 1, "on": 1})
    lo = (Value.cast(now) - ((1 << (bits - 1)) - 1))[:bits]
    hi = (Value.cast(now) - timeout - 1)[:bits]
    return layout, Cat(lo, hi, lo > hi, Value.cast(timeout) < (1 << (bits - 1)) - 1)


def expired(state, timestamp, window):
    """Whether an entry is an expired TENTATIVE entry (combinational), given a view of the
    :func:`expiry_window` of the time it is judged at."""
    above, below = timestamp >= window.lo, timestamp <= window.hi
    return ((state == EntryState.TENTATIVE) & window.on &
            Mux(window.wrap, above | below, above & below))


class AgingScan(wiring.Component):
    """Cursor of the background aging scan: which stash slot or bucket to examine next.

    The scan visits stash slots ``0..stash-1``, then buckets ``0..buckets-1`` (sub-table 0,
    then sub-table 1), the order of the model's ``age`` sweep, and wraps. It examines one
    position per scan step; the table issues a step only in a cycle with no request waiting
    (see :class:`hdl.gft.table.GlobalFlowTable`). A bucket step frees at most one way, the
    lowest expired one at or above ``target.way`` (the model's ``age_slot`` over the ways),
    and the next step resumes just above it, so an entry returned from the stash into the
    freed way is not examined again in this sweep, exactly as in the model.

    Latency and backpressure
    ------------------------
    ``target`` is a register; ``step`` moves it at the next clock edge. The table applies a
    step only when the scan op it issued has committed; a cancelled op leaves the cursor
    where it was, so that position is examined again.

    Members
    -------
    target : ``Out(StructLayout({"stash": 1, "slot": ..., "sub": 1, "idx": ..., "way": ...}))``
        The position: a stash ``slot`` (``stash`` high) or bucket ``idx`` of sub-table ``sub``,
        from way ``way``.
    step : ``In(StructLayout({"en": 1, "freed": 1, "way": ...}))``
        The op at ``target`` committed; ``freed``: it freed bucket way ``way``.
    sweeps : ``Out(32)``
        Completed sweeps (wrapping).
    """

    def __init__(self, params):
        self._p = params
        super().__init__({
            # Reset starts a sweep at stash slot 0 (bucket 0 without a stash).
            "target": Out(data.StructLayout({
                "stash": 1, "slot": params.slot_bits, "sub": 1, "idx": params.index_bits,
                "way": params.way_bits}), init={"stash": int(params.stash > 0)}),
            "step": In(data.StructLayout({"en": 1, "freed": 1, "way": params.way_bits})),
            "sweeps": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        p, t = self._p, self.target

        def first_bucket():
            return [t.stash.eq(0), t.sub.eq(0), t.idx.eq(0), t.way.eq(0)]

        def next_bucket():
            last_idx = t.idx == p.half - 1
            with m.If(~last_idx):
                m.d.sync += [t.idx.eq(t.idx + 1), t.way.eq(0)]
            with m.Elif(t.sub == 0):
                m.d.sync += [t.sub.eq(1), t.idx.eq(0), t.way.eq(0)]
            with m.Else():
                m.d.sync += self.sweeps.eq(self.sweeps + 1)
                if p.stash:
                    m.d.sync += [t.stash.eq(1), t.slot.eq(0)]
                else:
                    m.d.sync += first_bucket()

        with m.If(self.step.en):
            with m.If(t.stash):
                with m.If(t.slot == p.stash - 1):
                    m.d.sync += first_bucket()
                with m.Else():
                    m.d.sync += t.slot.eq(t.slot + 1)
            with m.Elif(self.step.freed & (self.step.way != p.ways - 1)):
                m.d.sync += t.way.eq(self.step.way + 1)
            with m.Else():
                next_bucket()
        return m
