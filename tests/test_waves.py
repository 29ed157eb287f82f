"""GTKWave save files generated from the exported Verilog."""

from hdl.hash.siphash import FlowHash
from sim.cocotb.build import export_verilog
from sim.cocotb.waves import verilog_ports, write_gtkw


def test_ports_are_read_from_the_exported_module_with_their_widths():
    path = export_verilog(FlowHash(tag_width=16), "waves_flowhash")
    ports = dict(verilog_ports(path.read_text(), "waves_flowhash"))
    assert ports["clk"] == 1 and ports["secret"] == 128
    assert ports["i_stream__payload"] == 320 + 16 and ports["o_stream__payload"] == 64 + 16
    assert ports["i_stream__valid"] == ports["o_stream__ready"] == 1


def test_save_file_lists_every_port_grouped_by_stream_handshake_first(tmp_path):
    path = export_verilog(FlowHash(), "waves_flowhash_plain")
    gtkw = write_gtkw(path, "waves_flowhash_plain", tmp_path / "waves_flowhash_plain.fst")
    text = gtkw.read_text()
    names = [line for line in text.splitlines() if line.startswith("waves_flowhash_plain.")]
    assert len(names) == len(verilog_ports(path.read_text(), "waves_flowhash_plain"))
    assert names[:2] == ["waves_flowhash_plain.clk", "waves_flowhash_plain.rst"]
    i = names.index("waves_flowhash_plain.i_stream__valid")
    assert names[i + 1:i + 3] == ["waves_flowhash_plain.i_stream__ready",
                                  "waves_flowhash_plain.i_stream__payload[319:0]"]
    assert "-i_stream" in text and "-o_stream" in text
    assert f'[dumpfile] "{tmp_path / "waves_flowhash_plain.fst"}"' in text
