"""The flow-engine parser in Verilog under Icarus (cocotb bench
:mod:`sim.cocotb.benches.parser`, test ``line_rate_and_latency``): cycles per 64-byte frame back
to back and latency. Written to ``build/bench/parser.json``."""

import json
import tempfile
from pathlib import Path

from hdl.flow_engine.parser import Parser
from sim.cocotb.build import export_verilog, run_cocotb


def parser_line_rate(data_width=64, seed=1):
    name = f"parser_w{data_width}"
    source = export_verilog(Parser(data_width=data_width), name)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "parser.json"
        run_cocotb(f"bench_parser_w{data_width}", sources=[source], toplevel=name,
                   module="sim.cocotb.benches.parser", seed=seed,
                   extra_env={"COCOTB_TEST_FILTER": "line_rate_and_latency",
                              "PARSER_BENCH_JSON": str(out)})
        return json.loads(out.read_text())


def run(quick):
    return parser_line_rate()
