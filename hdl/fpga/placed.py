"""The slowest paths of a placed ECP5 design, under nextpnr's own pre-routing delay model.

A placement-only run (``python -m hdl.fpga synth TOP --no-route``) gives an Fmax estimate
and a slack histogram but names no path: nextpnr reports paths only after routing, which
does not finish on the full GFT or flow engine. The synth flow also writes the placed
netlist (``placed.json``, every cell with its bel); this reads it and walks it with the
shape of the estimate nextpnr's placer times against (``Arch::predictDelay`` in
``ecp5/arch.cc``): an arc from one tile to another costs ``UNIT * (3 + 2 * (min(dx, 5) +
min(dy, 5)) + max(dx - 5, 0) + max(dy - 5, 0))``; a carry, a wide-mux input and a LUT into its
own flip-flop cost nothing. Cell delays are round figures for grade 6 (a LUT 0.45 ns, a
flip-flop's clock-to-out 0.5 ns, a block RAM's 3 ns). ``UNIT`` is fitted, not nextpnr's own
constant: with 0.12 ns the flow engine's slowest path (b43909c, seed 1) came out at 21.5 ns
against nextpnr's 15.47 ns, and the framer's at 8.6 against 6.6 ns; 0.085 ns brings them to
15.70 and 6.62 ns (within 2 %). Unlike the quick estimate of :mod:`hdl.fpga.depth` it knows
distance: which arcs cross the die, and that is what limits the full designs.

Run ``python -m hdl.fpga.placed build/synth/<name>/placed.json`` (the slowest paths), or with
``--failing 8`` (the endpoints that miss 8 ns, counted by the blocks they start and end in).
"""

import argparse
import collections
import json
import re
import sys


__all__ = ["analyse", "arc_delay", "block_of", "failing", "format_report", "main"]


UNIT = 0.085                  # ns per unit of predictDelay's distance, fitted (see above)
LUT, WIDE_MUX, CARRY, CARRY_OUT = 0.45, 0.2, 0.07, 0.4
CLK_TO_Q, BRAM_CLK_TO_OUT, SETUP = 0.5, 3.0, 0.1
_LUT_INPUTS = ("A", "B", "C", "D")
_CLOCKS = ("CLK", "WCK", "CLKA", "CLKB")


def _location(cell):
    """``(x, y, site)`` of a placed cell, from its ``NEXTPNR_BEL`` (``X57/Y11/SLICEB.K0``)."""
    bel = cell.get("attributes", {}).get("NEXTPNR_BEL")
    if not bel:
        return None
    x, y, site = bel.split("/", 2)
    return int(x[1:]), int(y[1:]), site.split(".")[0]


def arc_delay(source, sink, out_port, in_port):
    """nextpnr's estimate (ns) of the wire from ``out_port`` at ``source`` (a location) to
    ``in_port`` at ``sink``."""
    if source is None or sink is None:
        return 0.0
    if (out_port == "FCO" and in_port == "FCI") or in_port in ("FXA", "FXB"):
        return 0.0
    if out_port == "F" and in_port == "DI" and source == sink:
        return 0.0
    dx, dy = abs(source[0] - sink[0]), abs(source[1] - sink[1])
    return UNIT * (3 + max(dx - 5, 0) + max(dy - 5, 0) + 2 * (min(dx, 5) + min(dy, 5)))


def _through(cell, port):
    """Inputs of a combinational output ``port`` of ``cell`` and each one's delay, or None
    for an output that starts a path."""
    kind = cell["type"]
    if kind == "TRELLIS_FF" or kind == "DP16KD":
        return None
    if kind == "TRELLIS_COMB":
        if port == "F":
            return {**{p: LUT for p in _LUT_INPUTS}, "FCI": CARRY_OUT}
        if port == "FCO":
            return {**{p: LUT for p in _LUT_INPUTS}, "FCI": CARRY}
        if port == "OFX":
            return {**{p: LUT + WIDE_MUX for p in _LUT_INPUTS}, "M": WIDE_MUX, "F1": WIDE_MUX,
                    "FXA": WIDE_MUX, "FXB": WIDE_MUX}
        return {}
    if kind == "TRELLIS_RAMW":       # write address and data passed on to the RAM cells
        return {p: 0.0 for p in cell["connections"] if cell["port_directions"][p] == "input"}
    return {p: LUT for p in cell["connections"] if cell["port_directions"][p] == "input"}


def _start(cell):
    return BRAM_CLK_TO_OUT if cell["type"] == "DP16KD" else CLK_TO_Q


def _is_endpoint(cell, port):
    kind = cell["type"]
    if port in _CLOCKS or cell["port_directions"].get(port) != "input":
        return False
    if kind in ("TRELLIS_FF", "DP16KD"):
        return True
    return kind == "TRELLIS_COMB" and port in ("WD", "WAD0", "WAD1", "WAD2", "WAD3", "WRE",
                                               "DI0", "DI1")


def analyse(placed, *, count=20):
    """The ``count`` slowest endpoints of a placed netlist (nextpnr ``--write`` JSON, loaded),
    each ``(arrival_ns, [(arrival_ns, wire_ns into the cell, cell type, cell name, (x, y, site)),
    ...])``, the endpoint last."""
    cells, where, endpoints, arrival, via = _timed(placed)
    report, seen = [], set()
    for total, last_wire, name, port, source in endpoints:
        stem = name.split("_TRELLIS_FF")[0].split("$")[0]
        if stem in seen:
            continue
        seen.add(stem)
        rows, node = [], source
        while node is not None:
            previous = via.get(node)       # (driving output, the wire from it) or None
            rows.append((round(arrival[node], 2), round(previous[1], 2) if previous else 0.0,
                         cells[node[0]]["type"], node[0], where[node[0]]))
            node = previous[0] if previous else None
        rows.reverse()
        rows.append((round(total, 2), round(last_wire, 2), f"{cells[name]['type']}.{port}", name,
                     where[name]))
        report.append((round(total, 2), rows))
        if len(report) == count:
            break
    return report


def block_of(cell_name):
    """The block a cell belongs to, from the name Yosys gave it: the first part of a
    hierarchical name (``stash.slots[3].i1_TRELLIS_FF_Q_4`` -> ``stash``), else the signal
    it is named after (``c_extra_TRELLIS_FF_Q_12`` -> ``c_extra``), array indexes as ``[]``."""
    name = cell_name.split("$")[0]
    parts = name.split(".")
    block = parts[0] if len(parts) > 1 else re.sub(r"_(TRELLIS|LUT4|CCU2|PFUMX|L6MUX).*", "",
                                                    name)
    return re.sub(r"\[\d+\]", "[]", block) or "-"


def failing(placed, period_ns):
    """Endpoints (each bit of each register, RAM or LUT-RAM input) whose arrival exceeds
    ``period_ns``, counted by ``(block of the path's first register, block of the endpoint)``:
    a :class:`collections.Counter`, and the number of endpoints timed. Where the failing
    endpoints come from says which fanout to cut: the slack histogram only counts them."""
    _, _, endpoints, _, via = _timed(placed)

    def start(node):
        while via.get(node) is not None:
            node = via[node][0]
        return node[0]

    groups = collections.Counter((block_of(start(source)), block_of(name))
                                 for total, _, name, _, source in endpoints if total > period_ns)
    return groups, len(endpoints)


def _timed(placed):
    """``(cells, where, endpoints, arrival, via)``: every endpoint of a placed netlist as
    ``(arrival_ns, last wire_ns, cell, port, driving output)``, slowest first, with the
    arrival at each combinational output and the input it came through."""
    module = next(iter(placed["modules"].values()))
    cells = module["cells"]
    where = {name: _location(cell) for name, cell in cells.items()}
    driver = {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "output":
                for bit in bits:
                    if isinstance(bit, int):
                        driver[bit] = (name, port)

    arrival, via = {}, {}

    def wire(bit, sink, in_port):
        """(arrival at the sink's pin, the wire's own delay, the driving output) or None."""
        source = driver.get(bit)
        if source is None or arrival.get(source) is None:
            return None
        w = arc_delay(where[source[0]], where[sink], source[1], in_port)
        return arrival[source] + w, w, source

    def solve(key):
        stack = [key]
        while stack:
            node = stack[-1]
            if node in arrival:
                stack.pop()
                continue
            name, port = node
            cell = cells[name]
            inputs = _through(cell, port)
            if inputs is None:
                arrival[node], via[node] = _start(cell), None
                stack.pop()
                continue
            pending = []
            for p, delay in inputs.items():
                for bit in cell["connections"].get(p, []):
                    source = driver.get(bit) if isinstance(bit, int) else None
                    if source is not None and source not in arrival:
                        pending.append(source)
            if pending:
                stack.extend(pending)
                continue
            best, best_via = 0.0, None
            for p, delay in inputs.items():
                for bit in cell["connections"].get(p, []):
                    got = wire(bit, name, p) if isinstance(bit, int) else None
                    if got is not None and got[0] + delay >= best:
                        best, best_via = got[0] + delay, (got[2], got[1])
            # Fed by ports only (out of context: they have no driver) or by nothing (a
            # constant): no register-to-register path through it, as nextpnr leaves such
            # paths out of Fmax.
            arrival[node], via[node] = (best if best_via else None), best_via
            stack.pop()

    endpoints = []
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if not _is_endpoint(cell, port):
                continue
            for bit in bits:
                if not isinstance(bit, int) or bit not in driver:
                    continue
                solve(driver[bit])
                got = wire(bit, name, port)
                if got is not None:
                    endpoints.append((got[0] + SETUP, got[1], name, port, got[2]))
    endpoints.sort(key=lambda e: -e[0])
    return cells, where, endpoints, arrival, via


def format_report(report):
    """:func:`analyse`'s paths as text: each endpoint's arrival, then its path cell by cell
    with the arrival at each cell and the wire into it, and where the cell is."""
    lines = []
    for total, rows in report:
        lines.append(f"{total:6.2f} ns  {rows[-1][3]}")
        for at, w, kind, name, loc in rows:
            xy = f"X{loc[0]}/Y{loc[1]}" if loc else "-"
            lines.append(f"        {at:6.2f} (wire {w:4.2f}) {xy:>9s} {kind:16s} {name}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hdl.fpga.placed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("placed", help="placed netlist (build/synth/<name>/placed.json)")
    parser.add_argument("--count", type=int, default=20, help="endpoints (or groups) to show")
    parser.add_argument("--failing", type=float, metavar="NS",
                        help="count the endpoints slower than NS by first and last block instead")
    args = parser.parse_args(argv)
    with open(args.placed) as file:
        placed = json.load(file)
    if args.failing is None:
        print(format_report(analyse(placed, count=args.count)), end="")
        return 0
    groups, timed = failing(placed, args.failing)
    print(f"{sum(groups.values())} of {timed} endpoints slower than {args.failing} ns")
    for (first, last), n in groups.most_common(args.count):
        print(f"{n:8d}  {first} -> {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
