# amaranth: UnusedElaboratable=no
"""The frame parser exported to Verilog and run under Icarus by the cocotb bench
:mod:`sim.cocotb.benches.parser`: packets of the captures in ``../shared/pcaps`` through
cocotbext-axi's AXI4-Stream source under random idle cycles and random backpressure, each result
checked against the model :func:`sim.packets.parse.parse_frame`; and line rate on 64-byte
frames (the figures themselves are written by ``make bench``, :mod:`sim.bench.parser`).

At 64 bits every packet of every capture runs in ``make test``. At 32 bits (twice the beats) a
sample spread over each capture runs there, and every packet in ``make regress``.
"""

from pathlib import Path

import pytest

from hdl.flow_engine.parser import Parser
from sim.bench.parser import parser_line_rate
from sim.cocotb.build import export_verilog, run_cocotb
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


def test_verilog_keeps_line_rate_on_minimum_frames():
    """The bench behind ``make bench`` (``build/bench/parser.json``): 64-byte frames back to
    back are taken one beat per clock, never held up by the parser."""
    figures = parser_line_rate()
    assert figures["cycles_per_frame"] <= figures["beats_per_frame"], figures
    assert figures["tready_low_cycles"] == 0, figures
