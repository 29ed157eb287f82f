"""hdl/level.py: ``after_step`` equals ``f(level + inc - dec)`` for every level and handshake."""

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hdl.level import after_step


def test_after_step_is_the_level_after_the_step_and_any_function_of_it():
    m = Module()
    level, inc, dec = Signal(range(8)), Signal(), Signal()
    new, below_five, empty = Signal(range(8)), Signal(), Signal()
    m.d.comb += [new.eq(after_step(level, inc, dec)),
                 below_five.eq(after_step(level, inc, dec, lambda n: n < 5)),
                 empty.eq(after_step(level, inc, dec, lambda n: n == 0))]
    sim = Simulator(m)

    async def bench(ctx):
        for value in range(1, 7):       # a level moves by one: never below 0 or past 7
            for i in (0, 1):
                for d in (0, 1):
                    ctx.set(level, value)
                    ctx.set(inc, i)
                    ctx.set(dec, d)
                    after = value + i - d
                    assert ctx.get(new) == after
                    assert ctx.get(below_five) == (after < 5)
                    assert ctx.get(empty) == (after == 0)

    sim.add_testbench(bench)
    sim.run()
