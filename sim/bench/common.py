"""Paths shared by the benchmarks."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "bench"
PCAPS = ROOT.parent / "shared" / "pcaps"
