"""The card flow engine in Verilog under Icarus (cocotb bench
:mod:`sim.cocotb.benches.flow_engine`, test ``line_rate_and_latency``): cycles per 64-byte frame
back to back (LFT misses and hits), latencies; and, when ``make synth TOP=flow_engine`` has
run, Fmax and resources from ``build/synth/flow_engine/summary.json``. Written to
``build/bench/flow_engine.json``."""

import json
import tempfile
from pathlib import Path

from hdl.export import BUILD_DIR
from hdl.flow_engine.engine import FlowEngine
from sim.cocotb.build import export_verilog, run_cocotb


SYNTH_SUMMARY = BUILD_DIR / "synth" / "flow_engine" / "summary.json"


def flow_engine_line_rate(seed=1):
    source = export_verilog(FlowEngine(), "flow_engine")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "flow_engine.json"
        run_cocotb("bench_flow_engine", sources=[source], toplevel="flow_engine",
                   module="sim.cocotb.benches.flow_engine", seed=seed,
                   extra_env={"COCOTB_TEST_FILTER": "line_rate_and_latency",
                              "FLOW_ENGINE_BENCH_JSON": str(out)})
        return json.loads(out.read_text())


def synth_figures(path=SYNTH_SUMMARY):
    """Fmax and resources of the last ``make synth TOP=flow_engine``, saying where they come
    from; None for each figure when that run has not been made (never an estimate)."""
    if not path.exists():
        return {"fmax_mhz": None, "resources": None,
                "synth_source": f"{path} missing: run make synth TOP=flow_engine"}
    summary = json.loads(path.read_text())
    return {
        "fmax_mhz": summary["fmax_mhz"],
        "fmax_target_mhz": summary["target_mhz"],
        "fmax_met": summary["met"],
        "resources": {name: summary[name] for name in ("luts", "ffs", "brams", "lutram", "dsps")},
        "critical_path": summary.get("critical_path"),
        "synth_source": (f"{path} ({summary['device']} speed {summary['speed']}, "
                         f"nextpnr seed {summary['seed']})"),
    }


def run(quick):
    return {**flow_engine_line_rate(), **synth_figures()}
