"""FlowHash and FoldedFlowHash exported to Verilog, run under Icarus by the cocotb bench
:mod:`sim.cocotb.benches.flowhash`: random IPv4/IPv6 keys under random idle cycles and random
backpressure (up to a full output queue), checked against the Python SipHash reference."""

import pytest

from hdl.hash.folded import FoldedFlowHash
from hdl.hash.siphash import FlowHash
from sim.cocotb.build import export_verilog, run_cocotb
from tests.seeds import seeded_rng


@pytest.mark.parametrize("stages_per_round, tag_width", [(2, 16), (1, 0)])
def test_verilog_hashes_match_reference_under_idle_and_backpressure(request, stages_per_round,
                                                                     tag_width):
    name = f"flowhash_s{stages_per_round}_t{tag_width}"
    source = export_verilog(FlowHash(stages_per_round=stages_per_round, tag_width=tag_width), name)
    seed = seeded_rng(request.node.name).getrandbits(32)
    run_cocotb(request.node.name, sources=[source], toplevel=name,
               module="sim.cocotb.benches.flowhash", seed=seed)


def test_verilog_folded_hashes_match_reference_under_idle_and_backpressure(request):
    name = "flowhash_folded_t16"
    source = export_verilog(FoldedFlowHash(tag_width=16), name)
    seed = seeded_rng(request.node.name).getrandbits(32)
    run_cocotb(request.node.name, sources=[source], toplevel=name,
               module="sim.cocotb.benches.flowhash", seed=seed,
               extra_env={"FLOWHASH_DESIGN": "folded"})
