"""Export Amaranth components to Verilog and run cocotb benches on them under Icarus.

Everything generated lands under ``build/`` at the top of the repository: Verilog in
``build/verilog/<name>.v`` (:func:`hdl.export.export_verilog`, shared with the FPGA flow and
re-exported here), each run's simulator build, results and waves in
``build/cocotb/<run name>/``. Every run has its own directory, so pytest-xdist workers never
share one. Set ``WAVES=1`` in the environment to record waves (an FST in the run directory).
"""

import os
import re
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from hdl.export import BUILD_DIR, export_verilog

from .waves import write_gtkw


__all__ = ["BUILD_DIR", "CocotbFailure", "export_verilog", "run_cocotb"]


# Amaranth's Verilog has no `timescale; without one Icarus cannot represent a 10 ns clock.
TIMESCALE = ("1ns", "1ps")


class CocotbFailure(AssertionError):
    """A cocotb run failed: a test failed, none ran, or the simulator died."""


# The runner compiles with -g2012; a later -g2005 wins. Under IEEE 1800 rules Icarus runs the
# initialisers of declarations (`reg x = 0;`) before any process starts, so the event that
# Yosys's exported Verilog relies on to evaluate each `always @*` block once at time 0 never
# happens: a combinational block whose inputs keep their initial values (an empty stash's
# free-slot encoder, say) stays X for ever. Verilog-2005 rules schedule the initialisers as
# events, and Amaranth's output is plain Verilog-2005.
ICARUS_ARGS = ["-g2005"]


def _safe_name(name):
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


def run_cocotb(name, *, sources, toplevel, module, seed=None, extra_env=None):
    """Build ``sources`` with Icarus and run the cocotb test module ``module`` on ``toplevel``.

    Parameters
    ----------
    name : str
        Name of this run (a pytest test passes ``request.node.name``); its files go to
        ``build/cocotb/<name>/``.
    sources : list of path
        Verilog files.
    toplevel : str
        Top module name.
    module : str
        Dotted name of the cocotb test module, e.g. ``"sim.cocotb.benches.flowhash"``.
    seed : int or None
        cocotb's random seed (``cocotb.RANDOM_SEED`` in the bench).
    extra_env : dict or None
        Extra environment for the simulator process.

    Returns
    -------
    Path
        The results XML file.

    Raises
    ------
    CocotbFailure
        If the simulator fails, no test ran, or any cocotb test failed.
    """
    directory = BUILD_DIR / "cocotb" / _safe_name(name)
    waves = os.environ.get("WAVES") == "1"
    runner = get_runner("icarus")
    # Sources are regenerated on every run, but the runner's up-to-date check only compares
    # timestamps; rebuilding always costs Icarus next to nothing and never runs stale Verilog.
    runner.build(sources=[Path(source) for source in sources], hdl_toplevel=toplevel,
                 build_dir=directory, always=True, timescale=TIMESCALE, waves=waves,
                 build_args=ICARUS_ARGS)
    try:
        results = runner.test(test_module=module, hdl_toplevel=toplevel, build_dir=directory,
                              test_dir=directory, seed=seed, extra_env=dict(extra_env or {}),
                              timescale=TIMESCALE, waves=waves)
    except SystemExit as exc:
        # Under pytest the runner checks the results itself and exits on a failure.
        raise CocotbFailure(f"cocotb run {name!r} of {module} failed (exit status {exc.code}); "
                            f"files in {directory}") from None
    if waves:
        dumps = sorted(directory.glob(f"{toplevel}.fst")) + sorted(directory.glob("*.fst"))
        verilog_sources = [Path(s) for s in sources if Path(s).suffix == ".v"]
        if dumps and verilog_sources:
            write_gtkw(verilog_sources[0], toplevel, dumps[0])
    tests, failed = get_results(Path(results))
    if tests == 0 or failed:
        raise CocotbFailure(f"cocotb run {name!r} of {module}: {failed} of {tests} tests "
                            f"failed; results in {results}")
    return Path(results)
