"""Synthesis figures for a benchmark: Fmax and resources of a registered FPGA top, from its
``build/synth/<top>/summary.json`` (see :mod:`hdl.fpga.synth`)."""

import json

from hdl.export import BUILD_DIR, export_verilog

from .common import ROOT


RERUN = True
"""``python -m sim.bench --no-synth`` clears this: report the summaries as they are."""


def _newest_hdl():
    return max(path.stat().st_mtime for path in (ROOT / "hdl").rglob("*.py"))


def synth_figures(top, *, rerun):
    """``fmax_mhz``, ``luts``, ``ffs``, ``brams`` of ``top`` and where they come from.

    With ``rerun``, synthesis runs first (``make synth TOP=<top>``: about 10 to 30 minutes)
    when the summary is missing or older than any HDL source. Without it, a missing summary
    gives ``None`` figures, and an old one is reported with ``"stale": true``; never a
    figure from elsewhere. ``fmax_routed`` is false when the summary comes from a
    placement-only run (``python -m hdl.fpga synth --no-route``): ``fmax_mhz`` is then nextpnr's
    placement estimate, not an achieved figure.
    """
    path = BUILD_DIR / "synth" / top / "summary.json"
    stale = not path.exists() or path.stat().st_mtime < _newest_hdl()
    if stale and rerun and RERUN:
        from hdl.fpga.synth import Target, synthesize
        from hdl.fpga.tops import OPTIONS, build_top
        synthesize(top, export_verilog(build_top(top), top), Target(), **OPTIONS.get(top, {}))
        stale = False
    if not path.exists():
        return {"fmax_mhz": None, "fmax_routed": None, "luts": None, "ffs": None, "brams": None,
                "synth": {"summary": None, "note": f"not synthesised: make synth TOP={top}"}}
    s = json.loads(path.read_text())
    return {"fmax_mhz": s["fmax_mhz"], "fmax_routed": s.get("routed", True),
            "luts": s["luts"], "ffs": s["ffs"], "brams": s["brams"],
            "synth": {"summary": str(path), "stale": stale, "device": s["device"],
                      "speed": s["speed"], "seed": s["seed"], "target_mhz": s["target_mhz"],
                      "met": s["met"], "critical_path": s["critical_path"]}}
