"""``python -m hdl.fpga`` (``make verilog``, ``make lint``, ``make synth``): the FPGA flow of
the registered tops.

``verilog`` exports each top to ``build/verilog/<top>.v``; ``lint`` exports and lints it with
Verilator; ``synth`` exports, synthesises, places and routes it and writes
``build/synth/<top>/summary.json``. Without a TOP every registered top is processed.

``synth --param NAME=VALUE`` builds a variant of a top (constructor arguments, Python
literals), ``--block NAME`` one block inside a top, and ``--no-route`` stops after placement
(Fmax is then an estimate, marked ``"routed": false``): the quick loop for timing work. A
variant's results go to ``build/synth/<top>__<block>__<param>_<value>/``. ``--netlist-only``
stops after Yosys and writes ``depth.txt`` there, the slowest paths under the quick estimate
of :mod:`hdl.fpga.depth` (minutes, where placement takes half an hour or more).

Exit status: 0 when every top passed (``synth`` passes when the flow completes, whether or not
timing is met: read ``met`` in the summary), 1 when a lint found problems or a tool failed or
is missing, 2 for a bad argument.
"""

import argparse
import ast
import json
import sys
from pathlib import Path

from ..export import export_verilog
from .lint import SUPPRESSED, ToolMissing, lint
from .depth import analyse, format_path
from .synth import DEVICES, PACKAGES, ROUTERS, Target, ToolFailed, synthesize, synthesize_netlist
from . import tops
from .tops import OPTIONS, TOPS, build_top, select_tops, variant_name


def _param(text):
    """``NAME=VALUE`` with VALUE a Python literal (a bare word is taken as a string)."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m hdl.fpga", description=__doc__.splitlines()[0])
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    tops_help = f"tops to process (default: all of {', '.join(TOPS)})"
    verilog = commands.add_parser("verilog", help="export tops to build/verilog/<top>.v")
    verilog.add_argument("tops", nargs="*", metavar="TOP", help=tops_help)
    lint_ = commands.add_parser("lint", help="export and lint tops with Verilator (-Wall)",
                                description=f"Suppressed warnings: {', '.join(SUPPRESSED)} "
                                            f"(reasons in hdl/fpga/lint.py).")
    lint_.add_argument("tops", nargs="*", metavar="TOP", help=tops_help)
    synth = commands.add_parser("synth", help="synthesise, place and route tops on ECP5")
    synth.add_argument("tops", nargs="*", metavar="TOP", help=tops_help)
    synth.add_argument("--device", default="LFE5U-85F", help=f"one of {', '.join(DEVICES)}")
    synth.add_argument("--package", default="CABGA381", help=f"one of {', '.join(PACKAGES)}")
    synth.add_argument("--speed", type=int, default=6, help="speed grade: 6, 7 or 8")
    synth.add_argument("--freq", type=float, default=125.0, help="target clock in MHz")
    synth.add_argument("--seed", type=int, default=1,
                       help="nextpnr placer seed; fixed so that a run is repeatable")
    synth.add_argument("--router", default="router2", help=f"one of {', '.join(ROUTERS)}")
    synth.add_argument("--timing-weight", type=int, default=40,
                       help="placer's weight of timing against wire length (nextpnr's 10)")
    synth.add_argument("--crit-exp", type=int, default=4,
                       help="placer's criticality exponent (nextpnr's 2)")
    synth.add_argument("--no-route", action="store_true",
                       help="stop after placement; Fmax is the placer's estimate")
    synth.add_argument("--netlist-only", action="store_true",
                       help="stop after Yosys; write the quick path estimate to depth.txt")
    synth.add_argument("--param", action="append", type=_param, default=[], metavar="NAME=VALUE",
                       help="constructor argument of a variant (repeatable), e.g. buckets=16")
    synth.add_argument("--block", metavar="NAME",
                       help="synthesise the top's component attribute NAME alone, e.g. lft")
    return p.parse_args(argv)


def _lint(names):
    status = 0
    for name in names:
        path = export_verilog(build_top(name), name)
        result = lint(path, name)
        print(f"{name}: {'clean' if result.ok else 'LINT FAILED'} ({path})")
        if not result.ok:
            status = 1
            print(result.output, end="")
    return status


def _estimate(names, params=None, block=None, count=20):
    for top in names:
        name = variant_name(top, params, block)
        path = export_verilog(build_top(top, params, block), name)
        print(f"{name}: Yosys on {path}, then the quick path estimate", flush=True)
        abc9 = OPTIONS.get(top, {}).get("abc9", True)
        netlist, seconds = synthesize_netlist(name, path, abc9=abc9)
        with open(netlist) as file:
            paths = analyse(json.load(file), name, count=count)
        text = "".join(format_path(arrival, path) for arrival, path in paths)
        (netlist.parent / "depth.txt").write_text(text)
        print(f"{name}: netlist {netlist} ({seconds:.0f} s); slowest paths, estimated:")
        for arrival, path in paths[:5]:
            print(f"  {arrival:6.2f} ns to {path[-1][2]}")
        print(f"  (all {len(paths)} in {netlist.parent / 'depth.txt'})")
    return 0


def _synth(names, target, params=None, block=None):
    for top in names:
        name = variant_name(top, params, block)
        path = export_verilog(build_top(top, params, block), name)
        print(f"{name}: synthesising {path} for {target.device}-{target.speed} "
              f"{target.package} at {target.freq_mhz:g} MHz, seed {target.seed}, "
              f"{target.router if target.route else 'placement only'}", flush=True)
        options = dict(OPTIONS.get(top, {}))
        if params:
            options["params"] = params
        summary = synthesize(name, path, target, **options)
        estimate = "" if summary.get("routed", True) else " (placement estimate)"
        print(f"{name}: Fmax {summary['fmax_mhz']:.2f} MHz{estimate} "
              f"({'met' if summary['met'] else 'MISSED'} {summary['target_mhz']:g} MHz), "
              f"{summary['luts']} LUTs, {summary['ffs']} FFs, {summary['brams']} DP16KD, "
              f"{summary['seconds']['total']:.0f} s; wrote {summary['files']['summary']}")
        critical = summary["critical_path"]
        paths = Path(summary["files"].get("paths", ""))
        if not summary.get("routed", True) and paths.is_file():
            # No path from nextpnr before routing: the estimate from the placed netlist.
            heads = [line.strip() for line in paths.read_text().splitlines()
                     if " ns  " in line]
            print(f"  slowest paths at placement, estimated: {'; '.join(heads[:3])} "
                  f"(in {paths})")
        elif critical:
            print(f"  critical path {critical['delay_ns']:.2f} ns ({critical['logic_ns']:.2f} "
                  f"logic, {critical['routing_ns']:.2f} routing, {critical['cells']} cells): "
                  f"{critical['from']} -> {critical['to']}")
    return 0


def main(argv=None):
    args = parse_args(argv)
    try:
        names = select_tops(args.tops)
        if args.command == "synth":
            target = Target(device=args.device, package=args.package, speed=args.speed,
                            freq_mhz=args.freq, seed=args.seed, router=args.router,
                            route=not args.no_route, timing_weight=args.timing_weight,
                            crit_exp=args.crit_exp)
            params = dict(args.param)
            if params or args.block:
                if len(names) != 1:
                    raise ValueError("--param and --block apply to one TOP; name it")
                # Reject a bad variant before any tool runs.
                tops._discard(build_top(names[0], params, args.block))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        if args.command == "verilog":
            for name in names:
                print(f"{name}: {export_verilog(build_top(name), name)}")
            return 0
        if args.command == "lint":
            return _lint(names)
        if args.netlist_only:
            return _estimate(names, params, args.block)
        return _synth(names, target, params, args.block)
    except (ToolMissing, ToolFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
