"""hdl/fanout.py: register copies follow their value, and with ``reset_less=False`` a reset
clears them (synthesis keeping them apart is tests/test_fpga_flow.py's); field masks and the
per-chunk gates built on them."""

import pytest
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.lib import data
from amaranth.sim import Simulator

from hdl.fanout import DONT_MERGE, field_mask, gated_chunk, register_copies


@pytest.mark.parametrize("reset_less", [True, False])
def test_copies_take_the_value_each_edge_and_a_reset_clears_only_resettable_ones(reset_less):
    m = Module()
    m.domains.sync = sync = ClockDomain()
    value = Signal(4)
    copies = register_copies(m, value, 3, name="c", reset_less=reset_less)
    assert all(copy.attrs[DONT_MERGE] == 1 for copy in copies)
    sim = Simulator(m)
    sim.add_clock(1e-6)

    async def bench(ctx):
        for v in (5, 9, 9, 0, 12):
            ctx.set(value, v)
            await ctx.tick()
            assert [ctx.get(copy) for copy in copies] == [v] * 3
        # A reset edge while the value is non-zero.
        ctx.set(value, 7)
        ctx.set(sync.rst, 1)
        await ctx.tick()
        ctx.set(sync.rst, 0)
        assert [ctx.get(copy) for copy in copies] == [7 if reset_less else 0] * 3

    sim.add_testbench(bench)
    sim.run()


def test_field_mask_covers_exactly_the_named_fields_nested_ones_by_path():
    inner = data.StructLayout({"a": 3, "b": 5})
    layout = data.StructLayout({"x": 4, "y": inner, "z": 2})    # x 0-3, y.a 4-6, y.b 7-11
    assert field_mask(layout, ["x"]) == 0b1111
    assert field_mask(layout, ["y.b", "z"]) == (0b11111 << 7) | (0b11 << 12)
    assert field_mask(layout, ["y"]) == 0xFF << 4
    assert field_mask(layout, []) == 0


@pytest.mark.parametrize("keep_a, keep_b", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_gated_chunk_zeroes_each_mask_in_its_chunk_unless_kept(keep_a, keep_b):
    m = Module()
    value, a, b = Signal(16), Signal(), Signal()
    mask_a, mask_b = 0x0FF0, 0xF00F       # over the whole 16 bits; the chunk is bits 4-11
    lo = 4
    out = Signal(8)
    m.d.comb += out.eq(gated_chunk(value[lo:lo + 8], lo, [(a, mask_a), (b, mask_b)]))
    sim = Simulator(m)

    async def bench(ctx):
        for v in (0xFFFF, 0xA5C3, 0x1234):
            ctx.set(value, v)
            ctx.set(a, keep_a)
            ctx.set(b, keep_b)
            kept = ~((0 if keep_a else mask_a) | (0 if keep_b else mask_b))
            assert ctx.get(out) == ((v & kept) >> lo) & 0xFF

    sim.add_testbench(bench)
    sim.run()
