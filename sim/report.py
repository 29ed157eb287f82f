"""Run outputs: ``report.json`` and ``deliveries.csv``, the same files the hardware
co-simulation will write, so that the two can be compared packet by packet."""

import csv
import json
from collections import Counter
from pathlib import Path

from sim.model.invariants import check, leftover_entries


__all__ = ["summarise", "write_outputs", "write_fabric_pcap", "delivery_rows", "DELIVERY_FIELDS"]

DLT_USER0 = 147

DELIVERY_FIELDS = ["index", "ingress_slot", "owner_slot", "owner_pp", "path", "reason"]


def delivery_rows(tracker):
    """One row per input packet, in input order."""
    rows = []
    for index in sorted(tracker.packets):
        fate = tracker.packets[index]
        row = {"index": index, "ingress_slot": fate.ingress_slot, "owner_slot": "", "owner_pp": "",
               "path": "drop", "reason": fate.drop or ""}
        if fate.drop is None and fate.deliveries:
            slot, pp, path, _ = fate.deliveries[0]
            row.update(owner_slot=slot, owner_pp=pp, path=path)
        elif fate.drop is None:
            row["reason"] = "lost"
        rows.append(row)
    return rows


def summarise(device, *, source, params):
    violations = check(device)
    rows = delivery_rows(device.tracker)
    paths = Counter(r["path"] for r in rows)
    sessions = device.tracker.sessions.values()
    return {
        "source": source,
        "params": params,
        "packets_in": device.packets_in,
        "delivered": sum(1 for r in rows if r["path"] != "drop"),
        "dropped": dict(sorted(device.tracker.drops.items())),
        "paths": {p: paths.get(p, 0) for p in ("lft", "ppm", "predict", "drop")},
        "sessions": len(device.tracker.sessions),
        "predicted_children": sum(1 for s in sessions if s.predicted),
        "owner_violations": sum(1 for v in violations if v.invariant in (1, 2)),
        "violations_by_invariant": dict(Counter(str(v.invariant) for v in violations)),
        "violations": [v.as_dict() for v in violations[:200]],
        "leftover": leftover_entries(device),
        "ppm": dict(sorted(device.ppm.stats.items())),
        "ppm_errors": dict(sorted(device.ppm.errors.items())),
        "gft": device.ppm.gft.stats,
        "fabric": dict(sorted(device.fabric.stats.items())),
        "owners": dict(sorted(Counter(f"{s.owner[0]}.{s.owner[1]}" for s in sessions).items())),
        "counter_notifications": len(device.ppm.notifications),
    }


def write_outputs(device, report, out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    with open(out / "deliveries.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=DELIVERY_FIELDS)
        writer.writeheader()
        writer.writerows(delivery_rows(device.tracker))
    return out


def write_fabric_pcap(trace, path):
    """Every delivered fabric frame, one record per delivery (a multicast frame once per
    destination), as a pcap with link type DLT_USER0. Open it in Wireshark, or dissect it with
    ``sim.wire.scapy_layers()["header"](bytes(record))``."""
    from scapy.packet import Raw
    from scapy.utils import wrpcap
    wrpcap(str(path), [Raw(frame) for _, frame in trace], linktype=DLT_USER0)
    return path
