"""The card flow engine in Verilog under Icarus (cocotb bench
:mod:`sim.cocotb.benches.flow_engine`, test ``line_rate_and_latency``): cycles per 64-byte frame
back to back (LFT misses and hits), latencies; Fmax and resources from
``build/synth/flow_engine/summary.json`` (:func:`sim.bench.synth.synth_figures`). Written to
``build/bench/flow_engine.json``."""

import json
import tempfile
from pathlib import Path

from hdl.flow_engine.engine import FlowEngine
from sim.cocotb.build import export_verilog, run_cocotb

from .synth import synth_figures


def flow_engine_line_rate(seed=1):
    source = export_verilog(FlowEngine(), "flow_engine")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "flow_engine.json"
        run_cocotb("bench_flow_engine", sources=[source], toplevel="flow_engine",
                   module="sim.cocotb.benches.flow_engine", seed=seed,
                   extra_env={"COCOTB_TEST_FILTER": "line_rate_and_latency",
                              "FLOW_ENGINE_BENCH_JSON": str(out)})
        return json.loads(out.read_text())


def run(quick):
    # The same figures, and the same rule for a stale or missing summary, as every benchmark.
    figures = synth_figures("flow_engine", rerun=not quick)
    figures["resources"] = {name: figures[name] for name in ("luts", "ffs", "brams")}
    return {**flow_engine_line_rate(), **figures}
