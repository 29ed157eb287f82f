"""hdl/fanout.py: register copies follow their value, and with ``reset_less=False`` a reset
clears them (synthesis keeping them apart is tests/test_fpga_flow.py's)."""

import pytest
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.sim import Simulator

from hdl.fanout import DONT_MERGE, register_copies


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
