"""A quick timing estimate of a Yosys ECP5 netlist, without placement: the slowest
register-to-register paths under a simple delay model.

Placing and routing a full-size table takes an hour or more on one core; a placement estimate
half an hour and no paths. This takes a minute after Yosys and names the paths, so it is the
inner loop of timing work: rank the paths, fix the worst, re-run; then confirm with nextpnr.

The model (ECP5 speed grade 6, fitted to routed nextpnr reports of this project's blocks):
every LUT4 costs 0.25 ns, a PFUMX or L6MUX21 0.2 ns, a carry cell 0.45 ns from its inputs and
0.1 ns along the chain; every net costs ``0.9 + 0.45 * log2(fanout + 1)`` ns (1.35 ns to one
load, about 4.5 ns to 250), carry nets nothing; a flip-flop's clock-to-out is 0.5 ns, a block
RAM's 2.5 ns, its setup 0.2 ns. It knows nothing of distance, so it is optimistic for wide
block-RAM ports spread across the die and pessimistic for nets the placer keeps short; it
ranks paths well, which is what it is for. Its figures are estimates, never results.
"""

import argparse
import json
import math
import sys
from collections import defaultdict


__all__ = ["analyse", "format_path", "main"]


LUT, MUX, CARRY_IN, CARRY_CHAIN = 0.25, 0.2, 0.45, 0.1
CLK_TO_Q, BRAM_CLK_TO_OUT, SETUP = 0.5, 2.5, 0.2
SEQUENTIAL = ("TRELLIS_FF", "DP16KD", "TRELLIS_DPR16X4")


def wire_delay(fanout):
    return 0.9 + 0.45 * math.log2(fanout + 1)


def _kind(cell_type):
    for name in SEQUENTIAL + ("LUT4", "PFUMX", "L6MUX21", "CCU2C"):
        if cell_type == name or cell_type.endswith("\\" + name):
            return name
    return cell_type


def analyse(netlist, top, *, count=20):
    """The ``count`` slowest endpoints of module ``top`` of a Yosys JSON ``netlist``, each
    ``(arrival_ns, [(cell, type, signal name of its output), ...])`` from the launching
    register or RAM to the endpoint."""
    module = netlist["modules"][top]
    cells = module["cells"]
    names = {}
    for name, net in module["netnames"].items():
        for bit in net["bits"]:
            if isinstance(bit, int):
                old = names.get(bit)
                # Prefer a name of ours to one of Yosys's ($...), then the shorter.
                if old is None or (old.startswith("$"), len(old)) > (name.startswith("$"),
                                                                       len(name)):
                    names[bit] = name
    driver, loads = {}, defaultdict(int)
    for cname, cell in cells.items():
        for port, bits in cell["connections"].items():
            direction = cell["port_directions"].get(port)
            for bit in bits:
                if not isinstance(bit, int):
                    continue
                if direction == "output":
                    driver[bit] = (cname, port)
                else:
                    loads[bit] += 1

    arrival, via = {}, {}

    def net_arrival(bit, port):
        """Arrival of ``bit`` at an input ``port`` (wire included)."""
        if not isinstance(bit, int) or bit not in driver:
            return 0.0, None
        source = driver[bit]
        t = output_arrival(*source)
        wire = 0.0 if port == "CIN" else wire_delay(loads[bit])
        return t + wire, source

    def output_arrival(cname, port):
        key = (cname, port)
        if key in arrival:
            return arrival[key]
        stack = [key]
        # Iterative evaluation: the netlist is deep enough to overflow Python's recursion.
        while stack:
            cname_, port_ = stack[-1]
            if (cname_, port_) in arrival:
                stack.pop()
                continue
            cell_ = cells[cname_]
            kind_ = _kind(cell_["type"])
            if kind_ in ("TRELLIS_FF", "DP16KD"):
                arrival[(cname_, port_)] = CLK_TO_Q if kind_ == "TRELLIS_FF" else BRAM_CLK_TO_OUT
                via[(cname_, port_)] = None
                stack.pop()
                continue
            inputs = [(p, b) for p, bits in cell_["connections"].items()
                      if cell_["port_directions"].get(p) == "input" for b in bits]
            if kind_ == "TRELLIS_DPR16X4":
                inputs = [(p, b) for p, b in inputs if p == "RAD"]
            pending = [driver[b] for p, b in inputs
                       if isinstance(b, int) and b in driver and driver[b] not in arrival]
            if pending:
                stack.extend(pending)
                continue
            best, best_from = 0.0, None
            for p, b in inputs:
                t, source = net_arrival(b, p)
                if kind_ == "CCU2C":
                    t += CARRY_CHAIN if p == "CIN" else CARRY_IN
                    if port_ in ("S0", "S1") and p == "CIN":
                        t += 0.3
                elif kind_ == "LUT4":
                    t += LUT
                elif kind_ in ("PFUMX", "L6MUX21"):
                    t += MUX
                elif kind_ == "TRELLIS_DPR16X4":
                    t += 0.5
                else:
                    t += LUT
                if t > best:
                    best, best_from = t, source
            arrival[(cname_, port_)] = max(best, CLK_TO_Q if kind_ == "TRELLIS_DPR16X4" else 0)
            via[(cname_, port_)] = best_from
            stack.pop()
        return arrival[key]

    endpoints = []
    for cname, cell in cells.items():
        kind = _kind(cell["type"])
        if kind not in SEQUENTIAL:
            continue
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) != "input" or port in ("CLK", "CLKA", "CLKB",
                                                                         "WCK"):
                continue
            if kind == "TRELLIS_DPR16X4" and port == "RAD":
                continue
            for bit in bits:
                t, source = net_arrival(bit, port)
                if source is not None:
                    endpoints.append((t + SETUP, cname, port, source))
    endpoints.sort(key=lambda e: -e[0])

    def output_name(cname, port):
        bits = cells[cname]["connections"][port]
        return names.get(bits[0], "?") if bits and isinstance(bits[0], int) else "?"

    report, seen = [], set()
    for t, cname, port, source in endpoints:
        # One path per endpoint cell's signal: the first (slowest) bit of a bus stands for it.
        label = output_name(cname, "Q") if _kind(cells[cname]["type"]) == "TRELLIS_FF" else cname
        # A RAM is many cells (ram0.0.17...): the memory's name stands for all of them.
        stem = label.split("[")[0] if _kind(cells[cname]["type"]) == "TRELLIS_FF" else \
            ".".join(part for part in cname.split(".") if not part.isdigit())
        if stem in seen:
            continue
        seen.add(stem)
        path, node = [], source
        while node is not None:
            c, p = node
            path.append((round(arrival[node], 2), _kind(cells[c]["type"]), output_name(c, p)))
            node = via.get(node)
        path.reverse()
        path.append((round(t, 2), f"{_kind(cells[cname]['type'])}.{port}", label))
        report.append((round(t, 2), path))
        if len(report) == count:
            break
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hdl.fpga.depth",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("netlist", help="Yosys JSON netlist (build/synth/<top>/<top>.json)")
    parser.add_argument("top", nargs="?", help="module (default: the file's stem)")
    parser.add_argument("--count", type=int, default=20, help="endpoints to show")
    args = parser.parse_args(argv)
    top = args.top or args.netlist.rsplit("/", 1)[-1].removesuffix(".json")
    with open(args.netlist) as file:
        netlist = json.load(file)
    for arrival, path in analyse(netlist, top, count=args.count):
        print(format_path(arrival, path), end="")
    return 0


def format_path(arrival, path):
    """One path of :func:`analyse` as text: its arrival and endpoint, then cell by cell."""
    cells = sum(kind in ("LUT4", "PFUMX", "L6MUX21", "CCU2C") for _, kind, _ in path)
    lines = [f"{arrival:6.2f} ns  {path[-1][2]}  ({cells} logic cells)"]
    lines += [f"        {at:6.2f} {kind:18s} {name}" for at, kind, name in path]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
