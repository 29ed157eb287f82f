"""GTKWave save files for bench waves: the signals that matter, grouped, without hand editing.

A bench run with ``WAVES=1`` leaves ``<toplevel>.fst`` in its run directory; beside it
:func:`write_gtkw` writes ``<toplevel>.gtkw`` listing the top's ports. The ports are read from
the exported Verilog, so the save file follows the design as it changes. Streams are grouped
(``valid``, ``ready``, then the payload in hex); one-bit signals show as traces.
Open with ``gtkwave <run dir>/<toplevel>.fst <run dir>/<toplevel>.gtkw``.
"""

import re
from pathlib import Path


__all__ = ["verilog_ports", "write_gtkw"]

_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):(\d+)\]\s+)?(\w+)\s*;",
                   re.M)

# GTKWave trace flags: binary for single bits, hexadecimal for vectors.
_FLAG_BIT = "@28"
_FLAG_HEX = "@22"


def verilog_ports(verilog_text, module):
    """``[(name, width)]`` of the ports of ``module`` in declaration order."""
    match = re.search(rf"^module\s+{re.escape(module)}\b(.*?)^endmodule", verilog_text, re.M | re.S)
    if match is None:
        raise ValueError(f"module {module!r} not found")
    return [(name, int(msb) - int(lsb) + 1 if msb else 1)
            for _, msb, lsb, name in _PORT.findall(match.group(1))]


def _group_key(name):
    return name.split("__")[0] if "__" in name else ""


_HANDSHAKE_FIRST = {"valid": 0, "ready": 1, "tvalid": 0, "tready": 1}


def _order(port):
    name = port[0]
    return (_group_key(name), _HANDSHAKE_FIRST.get(name.rsplit("__", 1)[-1], 2), name)


def write_gtkw(verilog_path, toplevel, dump_path, out_path=None):
    """Write a save file for the waves of ``toplevel`` in ``dump_path``; returns its path."""
    ports = verilog_ports(Path(verilog_path).read_text(), toplevel)
    clock = [p for p in ports if p[0] in ("clk", "rst")]
    rest = sorted((p for p in ports if p not in clock), key=_order)
    out_path = Path(out_path or Path(dump_path).with_suffix(".gtkw"))
    lines = [f'[dumpfile] "{Path(dump_path).resolve()}"', f'[savefile] "{out_path.resolve()}"',
             "[timestart] 0", "[size] 1400 800", "[signals_width] 320"]
    group = None
    for name, width in clock + rest:
        if _group_key(name) != group and name not in ("clk", "rst"):
            if group:
                lines.append("@1000200")
                lines.append(f"-{group}")
            group = _group_key(name)
            if group:
                lines.append("@800200")
                lines.append(f"-{group}")
        ref = f"{toplevel}.{name}" + (f"[{width - 1}:0]" if width > 1 else "")
        lines += [_FLAG_BIT if width == 1 else _FLAG_HEX, ref]
    if group:
        lines += ["@1000200", f"-{group}"]
    out_path.write_text("\n".join(lines) + "\n")
    return out_path
