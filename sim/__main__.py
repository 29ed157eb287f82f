"""``python -m sim`` (``make sim``): run a capture or the built-in scenario through the device.

Writes ``<out>/report.json`` and ``<out>/deliveries.csv`` and prints a summary. Exits 1 when an
invariant of SPEC section 5 is violated, so a run is also a check.

Only the golden model exists so far (``--model`` is the default and the only engine); the
hardware co-simulation will take the same options and write the same files.
"""

import argparse
import sys
import time

from sim.model.device import INGRESS_MODES, Device
from sim.model.ppm_sw import POLICIES
from sim.packets.capture import read_capture
from sim.report import summarise, write_fabric_pcap, write_outputs
from sim.traffic import builtin_scenario


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim", description=__doc__.splitlines()[0])
    p.add_argument("--pcap", help="capture to replay (pcap or pcapng); default: built-in scenario")
    p.add_argument("--ingress", choices=INGRESS_MODES, default="mac",
                   help="ingress card per packet: by source MAC, or round robin (stress)")
    p.add_argument("--slots", type=int, default=4, help="packet processing cards")
    p.add_argument("--pps", type=int, default=4, help="packet processors per card")
    p.add_argument("--resource-cards", type=int, default=0, help="cards with PPs only")
    p.add_argument("--policy", choices=POLICIES, default="least_loaded", help="PPM-SW owner policy")
    p.add_argument("--fabric-steps", type=int, default=None,
                   help="frames the fabric delivers per input packet (default: all; small values "
                        "make messages lag behind traffic)")
    p.add_argument("--refuse", type=float, default=0.0, help="probability a PP refuses an offer")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--model", action="store_true", default=True,
                   help="run the golden model (the only engine until the hardware lands)")
    p.add_argument("--trace", action="store_true",
                   help="also write every fabric frame to <out>/fabric.pcap (DLT_USER0; dissect "
                        "with sim.wire.scapy_layers)")
    p.add_argument("--out", default="build/sim", help="output directory")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.pcap:
        packets, source = read_capture(args.pcap), args.pcap
    else:
        packets, _ = builtin_scenario()
        source = "builtin"
    params = {k: v for k, v in vars(args).items() if k not in ("out", "pcap", "trace")}
    try:
        device = Device(slots=args.slots, pps=args.pps, resource_cards=args.resource_cards,
                        ingress=args.ingress, policy=args.policy, fabric_steps=args.fabric_steps,
                        refuse=args.refuse, seed=args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.trace:
        device.fabric.trace = []
    started = time.perf_counter()
    device.run(packets)
    elapsed = time.perf_counter() - started
    report = summarise(device, source=source, params=params)
    report["model_seconds"] = round(elapsed, 3)
    out = write_outputs(device, report, args.out)
    if args.trace:
        write_fabric_pcap(device.fabric.trace, out / "fabric.pcap")
    print(f"{source}: {report['packets_in']} packets, {report['delivered']} delivered "
          f"(lft {report['paths']['lft']}, ppm {report['paths']['ppm']}, predict "
          f"{report['paths']['predict']}), {sum(report['dropped'].values())} dropped "
          f"{report['dropped'] or ''}")
    print(f"  {report['sessions']} sessions, {report['predicted_children']} predicted children, "
          f"{len(report['violations'])} invariant violations, leftovers "
          f"{sum(v for k, v in report['leftover'].items())}, {elapsed:.2f} s")
    for v in report["violations"][:10]:
        print(f"  VIOLATION inv {v['invariant']} packet {v['index']}: {v['text']}")
    print(f"  wrote {out}/report.json and {out}/deliveries.csv")
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
