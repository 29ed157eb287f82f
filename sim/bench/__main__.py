"""``python -m sim.bench [--quick] [NAME ...]``: run the benchmarks (default: every one) and
write ``build/bench/<NAME>.json`` for each."""

import argparse
import importlib
import json
import sys

from . import synth
from .common import OUT


BENCHES = {
    # name -> module of sim.bench with ``run(quick) -> dict``; the name is the JSON file's.
    "model": "model",
    "flowhash": "flowhash",
    "parser": "parser",
    "gft": "gft",
    "flow_engine": "flow_engine",
}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    p.add_argument("--no-synth", action="store_true",
                   help="do not run synthesis; report build/synth/<top>/summary.json as it is")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"benchmarks to run (default: all of {', '.join(BENCHES)})")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    synth.RERUN = not args.no_synth
    for name in args.names or BENCHES:
        module = importlib.import_module(f"sim.bench.{BENCHES[name]}")
        figures = module.run(args.quick)
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
