# amaranth: UnusedElaboratable=no
"""The hardware GFT exported to Verilog and run under Icarus by the cocotb bench
:mod:`sim.cocotb.benches.gft`: constrained-random operation mixes under random idle and
backpressure, scoreboarded against the golden model (every response, every aging report, the
counters and the table's contents). The seed is printed and replays with ``SEED=``."""

import json

import pytest

from hdl.gft.table import GlobalFlowTable
from sim.cocotb.build import export_verilog, run_cocotb
from tests.seeds import seeded_rng


CONFIGS = {
    # Tiny and odd shapes force relocation, stash use and FULL within a few hundred requests.
    "b8_w2_s2_m2": dict(buckets=8, ways=2, stash=2, move_budget=2),
    "b4_w3_s1_m1_ipv4_t6": dict(buckets=4, ways=3, stash=1, move_budget=1, key_mode="ipv4",
                                timestamp_bits=6),
    # The default shape (4 ways, stash 8) at 16 buckets. Icarus runs this export very slowly
    # (its first test had not finished after 6 minutes, where the two above take a minute for
    # all five), so it runs with `make regress`; the same shape runs in Amaranth's simulator
    # in `make test` (tests/test_gft_hw.py).
    "b16_w4_s8_m3": dict(buckets=16, ways=4, stash=8, move_budget=3),
}
SLOW = {"b16_w4_s8_m3"}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow if name in SLOW
                                               else ()) for name in CONFIGS])
def test_verilog_random_mix_matches_the_model(request, name):
    config = CONFIGS[name]
    source = export_verilog(GlobalFlowTable(**config), f"gft_{name}")
    seed = seeded_rng(request.node.name).getrandbits(32)
    run_cocotb(request.node.name, sources=[source], toplevel=f"gft_{name}",
               module="sim.cocotb.benches.gft", seed=seed,
               extra_env={"GFT_PARAMS": json.dumps(config)})
