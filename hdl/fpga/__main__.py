"""``python -m hdl.fpga`` (``make verilog``, ``make lint``, ``make synth``): the FPGA flow of
the registered tops.

``verilog`` exports each top to ``build/verilog/<top>.v``; ``lint`` exports and lints it with
Verilator; ``synth`` exports, synthesises, places and routes it and writes
``build/synth/<top>/summary.json``. Without a TOP every registered top is processed.

Exit status: 0 when every top passed (``synth`` passes when the flow completes, whether or not
timing is met: read ``met`` in the summary), 1 when a lint found problems or a tool failed or
is missing, 2 for a bad argument.
"""

import argparse
import sys

from ..export import export_verilog
from .lint import SUPPRESSED, ToolMissing, lint
from .synth import DEVICES, PACKAGES, Target, ToolFailed, synthesize
from .tops import OPTIONS, TOPS, build_top, select_tops


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


def _synth(names, target):
    for name in names:
        path = export_verilog(build_top(name), name)
        print(f"{name}: synthesising {path} for {target.device}-{target.speed} "
              f"{target.package} at {target.freq_mhz:g} MHz, seed {target.seed}", flush=True)
        summary = synthesize(name, path, target, **OPTIONS.get(name, {}))
        print(f"{name}: Fmax {summary['fmax_mhz']:.2f} MHz "
              f"({'met' if summary['met'] else 'MISSED'} {summary['target_mhz']:g} MHz), "
              f"{summary['luts']} LUTs, {summary['ffs']} FFs, {summary['brams']} DP16KD, "
              f"{summary['seconds']['total']:.0f} s; wrote {summary['files']['summary']}")
        critical = summary["critical_path"]
        if critical:
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
                            freq_mhz=args.freq, seed=args.seed)
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
        return _synth(names, target)
    except (ToolMissing, ToolFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
