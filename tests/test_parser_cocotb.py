# amaranth: UnusedElaboratable=no
"""The frame parser exported to Verilog and run under Icarus by the cocotb bench
:mod:`sim.cocotb.benches.parser`: packets of the captures in ``../shared/pcaps`` through
cocotbext-axi's AXI4-Stream source under random idle cycles and random backpressure, each result
checked against the model :func:`sim.packets.parse.parse_frame`; and the measured cycles per
64-byte frame and latency, written to ``build/bench/parser.json``.

At 64 bits every packet of every capture runs in ``make test``. At 32 bits (twice the beats) a
sample spread over each capture runs there, and every packet in ``make regress``.
"""

import json
from pathlib import Path

import pytest

from hdl.flow_engine.parser import Parser
from sim.cocotb.build import BUILD_DIR, export_verilog, run_cocotb
from tests.seeds import seeded_rng


PCAPS = Path(__file__).resolve().parents[2] / "shared" / "pcaps"
SAMPLE_PER_CAPTURE = 30


def _run(request, data_width, test, **env):
    name = f"parser_w{data_width}"
    source = export_verilog(Parser(data_width=data_width), name)
    seed = seeded_rng(request.node.name).getrandbits(32)
    run_cocotb(request.node.name, sources=[source], toplevel=name,
               module="sim.cocotb.benches.parser", seed=seed,
               extra_env={"COCOTB_TEST_FILTER": test, "PARSER_PCAPS": str(PCAPS), **env})


def _replay(request, data_width, per_capture):
    if not any(PCAPS.glob("*.pcap*")):
        pytest.skip(f"no captures in {PCAPS}")
    _run(request, data_width, "every_capture_packet_parses_as_the_model",
         PARSER_PER_CAPTURE=str(per_capture))


def test_verilog_parses_every_capture_packet_as_the_model(request):
    _replay(request, 64, 0)


def test_verilog_at_32_bits_parses_a_sample_of_every_capture_as_the_model(request):
    _replay(request, 32, SAMPLE_PER_CAPTURE)


@pytest.mark.slow
def test_verilog_at_32_bits_parses_every_capture_packet_as_the_model(request):
    _replay(request, 32, 0)


def test_verilog_line_rate_and_latency_figures(request):
    out = BUILD_DIR / "bench" / "parser.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    _run(request, 64, "line_rate_and_latency", PARSER_BENCH_JSON=str(out))
    figures = json.loads(out.read_text())
    print(f"parser, 64-byte frames back to back at {figures['data_width']} bits: "
          f"{figures['cycles_per_frame']} cycles per frame, latency "
          f"{figures['latency_cycles']} cycles; written to {out}")
