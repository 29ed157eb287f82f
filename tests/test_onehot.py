"""The one-hot helpers of hdl/onehot.py, exhaustively over every vector of a few widths."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hdl.onehot import first_one, second_one, select


def lowest_bits(value, width):
    return [i for i in range(width) if value >> i & 1]


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 9])
def test_first_second_and_select_agree_with_their_definitions_for_every_vector(width):
    m = Module()
    vector = Signal(width)
    first, second = Signal(width), Signal(width)
    values = [Signal(8, init=(37 * i + 11) & 0xFF) for i in range(width)]
    chosen = Signal(8)
    m.d.comb += [first.eq(first_one(vector)), second.eq(second_one(vector)),
                 chosen.eq(select(vector, values))]
    sim = Simulator(m)

    async def bench(ctx):
        for value in range(1 << width):
            ctx.set(vector, value)
            ones = lowest_bits(value, width)
            assert ctx.get(first) == (1 << ones[0] if ones else 0), value
            assert ctx.get(second) == (1 << ones[1] if len(ones) > 1 else 0), value
            expect = 0
            for i in ones:
                expect |= (37 * i + 11) & 0xFF
            assert ctx.get(chosen) == expect, value

    sim.add_testbench(bench)
    sim.run()
