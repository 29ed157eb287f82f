# amaranth: UnusedElaboratable=no
"""The flow engine exported to Verilog and run under Icarus by the cocotb bench
:mod:`sim.cocotb.benches.flow_engine`: captures and the built-in scenario through cocotbext-axi
sources and sinks under random idle and backpressure, the bench playing PPM-HW (FLOW_ADD,
FLOW_DELETE racing the packets, refused fabric frames), every output frame and every counter
checked against the model :class:`sim.model.flow_engine.FlowEngine`.

``make test`` replays a sample of every capture at the default sizes and the built-in scenario
on a tiny LFT and fragment table (evictions all the time); ``make regress`` replays every packet
of every capture, at two widths.
"""

import json
from pathlib import Path

import pytest

from hdl.flow_engine.engine import FlowEngine
from sim.bench.flow_engine import flow_engine_line_rate
from sim.cocotb.build import export_verilog, run_cocotb
from tests.seeds import seeded_rng


PCAPS = Path(__file__).resolve().parents[2] / "shared" / "pcaps"
SAMPLE_PER_CAPTURE = 25
TINY = dict(lft_buckets=2, lft_ways=2, frag_capacity=2)


def run_bench(request, test, params=None, **env):
    params = params or {}
    name = "flow_engine_" + "_".join(f"{k}{v}" for k, v in sorted(params.items()))
    source = export_verilog(FlowEngine(**params), name.rstrip("_"))
    seed = seeded_rng(request.node.name).getrandbits(32)
    run_cocotb(request.node.name, sources=[source], toplevel=name.rstrip("_"),
               module="sim.cocotb.benches.flow_engine", seed=seed,
               extra_env={"COCOTB_TEST_FILTER": test, "FLOW_ENGINE_PCAPS": str(PCAPS),
                          "FLOW_ENGINE_PARAMS": json.dumps(params), **env})


def _captures():
    if not any(PCAPS.glob("*.pcap*")):
        pytest.skip(f"no captures in {PCAPS}")


def test_verilog_forwards_a_sample_of_every_capture_as_the_model(request):
    _captures()
    run_bench(request, "every_capture_matches_the_model",
              FLOW_ENGINE_PER_CAPTURE=str(SAMPLE_PER_CAPTURE))


def test_verilog_on_a_tiny_lft_matches_the_model_under_racing_commands(request):
    run_bench(request, "builtin_scenario_repeated_matches_the_model", TINY)


def test_verilog_drops_frames_longer_than_the_buffer_keeps(request):
    run_bench(request, "frames_longer_than_the_buffer_keeps_are_dropped",
              dict(max_frame_bytes=256, buffer_bytes=1024, **TINY))


def test_verilog_loses_nothing_when_an_output_stall_backs_up_to_the_input(request):
    run_bench(request, "output_stall_backs_up_to_the_input")


@pytest.mark.slow
def test_verilog_forwards_every_capture_packet_as_the_model(request):
    _captures()
    run_bench(request, "every_capture_matches_the_model")


@pytest.mark.slow
def test_verilog_with_narrow_fabric_forwards_every_capture_packet_as_the_model(request):
    _captures()
    run_bench(request, "every_capture_matches_the_model",
              dict(fabric_width=64, lft_buckets=16, lft_ways=2, frag_capacity=4))


def test_verilog_keeps_line_rate_on_minimum_frames_whether_they_hit_or_miss():
    """The bench behind ``make bench`` (``build/bench/flow_engine.json``): 64-byte frames back
    to back at 64 bits are taken one beat per clock, 8 cycles a frame, never held up, both
    when every frame misses the LFT (FLOW_UNKNOWN, 136 bytes out) and when every one hits."""
    figures = flow_engine_line_rate()
    assert figures["cycles_per_min_frame_hit"] <= figures["beats_per_frame"], figures
    assert figures["cycles_per_min_frame_miss"] <= figures["beats_per_frame"], figures
    assert figures["tready_low_cycles_hit"] == figures["tready_low_cycles_miss"] == 0, figures
