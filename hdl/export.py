"""Verilog export of a component into the build tree, shared by the cocotb benches and the
FPGA flow (:mod:`hdl.fpga`).

Everything generated lands under ``build/`` at the top of the repository; Verilog goes to
``build/verilog/<name>.v``.
"""

import os
import tempfile
from pathlib import Path

from amaranth.back import verilog


__all__ = ["BUILD_DIR", "export_verilog"]


BUILD_DIR = Path(__file__).resolve().parents[1] / "build"


def export_verilog(component, name):
    """Convert ``component`` to Verilog as module ``name`` in ``build/verilog/<name>.v``.

    The file is written under a temporary name and then renamed, so a reader (another pytest
    worker exporting the same design) never sees half a file. Returns the path.
    """
    text = verilog.convert(component, name=name)
    directory = BUILD_DIR / "verilog"
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".v.tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        path = directory / f"{name}.v"
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
