"""``python -m sim`` (what ``make sim`` runs): outputs, exit status, and the fabric trace."""

import csv
import json

from scapy.utils import rdpcap

from hdl.wire import MsgType
from sim.__main__ import main
from sim.traffic import builtin_scenario
from sim.wire import scapy_layers


def test_builtin_run_writes_a_report_and_one_delivery_row_per_packet(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--slots", "2", "--pps", "2"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    rows = list(csv.DictReader(open(tmp_path / "deliveries.csv")))
    packets, _ = builtin_scenario()
    assert report["packets_in"] == len(packets) == len(rows)
    assert [int(r["index"]) for r in rows] == list(range(len(packets)))
    assert report["delivered"] + sum(report["dropped"].values()) == report["packets_in"]
    assert {r["path"] for r in rows} <= {"lft", "ppm", "predict", "drop"}
    assert all(r["reason"] for r in rows if r["path"] == "drop")
    assert report["owner_violations"] == 0 and not any(report["leftover"].values())
    assert "0 invariant violations" in capsys.readouterr().out


def test_fabric_trace_dissects_back_into_the_messages_that_crossed_the_fabric(tmp_path):
    assert main(["--out", str(tmp_path), "--trace"]) == 0
    header = scapy_layers()["header"]
    types = [MsgType(header(bytes(r)).type) for r in rdpcap(str(tmp_path / "fabric.pcap"))]
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(types) >= report["fabric"]["frames"]   # multicast frames appear once per destination
    for t in (MsgType.FLOW_UNKNOWN, MsgType.OWNER, MsgType.SESSION_BIND, MsgType.BIND_ACK,
              MsgType.FLOW_ADD, MsgType.FLOW_DELETE, MsgType.FLOW_STATS, MsgType.PREDICT_ADD):
        assert t in types, t


def test_a_bad_parameter_is_an_error_message_and_exit_status_2(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--slots", "40"]) == 2
    assert "slots must be an integer from 1 to 31" in capsys.readouterr().err


def test_a_run_that_violates_an_invariant_exits_1_and_names_it(tmp_path, monkeypatch, capsys):
    from sim.model import flow_engine
    monkeypatch.setattr(flow_engine, "fid_owner", lambda fid: (0, 0))   # LFT hits all go to PP 0.0
    assert main(["--out", str(tmp_path), "--slots", "2", "--pps", "2", "--policy", "round_robin"]) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["owner_violations"] > 0
    assert "VIOLATION inv 1" in capsys.readouterr().out
