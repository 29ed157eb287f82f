"""A testbench for block RAMs marked ``no_rw_check``: Yosys may then leave a read that meets a
write of its own address undefined, as the FPGA's block RAM does, while Amaranth's simulator
still returns the old data. This one makes each such read return junk, so that a design which
used one fails in simulation too."""

from amaranth.hdl import Value


__all__ = ["clash_junk"]


def clash_junk(ports, rng, clashes, *, late=0):
    """An ``async def (ctx)`` testbench (add it with ``background=True``) that, at every clock
    edge where a read of port pair ``n`` of ``ports()`` (``(read port, write port)`` pairs of
    synchronous read ports) meets a write of its address, puts ``rng``'s junk on that read's
    output and counts it in ``clashes[n]`` (a dict).

    ``ports`` is called once the simulation runs (a design's ports exist once it is
    elaborated). ``late`` cycles puts the junk on a later read of that port instead: a
    check that junk on reads that are used makes the run fail."""
    async def testbench(ctx):
        pairs = list(ports())
        signals = [s for rd, wr in pairs for s in (rd.addr, wr.addr, wr.en)]
        due = []
        async for _, _, *values in ctx.tick().sample(*signals):
            for n, (rd, _) in enumerate(pairs):
                raddr, waddr, wen = values[3 * n:3 * n + 3]
                if wen and raddr == waddr:
                    clashes[n] = clashes.get(n, 0) + 1
                    due.append((late, rd))
            # Just after the edge: the read port's output, as the next edge registers it.
            for wait, rd in due:
                if wait == 0:
                    data = Value.cast(rd.data)
                    ctx.set(data, rng.getrandbits(len(data)))
            due = [(wait - 1, rd) for wait, rd in due if wait > 0]
    return testbench
