"""The tops the FPGA flow builds, by name.

Each entry maps a top's name (its Verilog module and file name, ``build/verilog/<name>.v``)
to a callable that takes no arguments and returns the :class:`~amaranth.lib.wiring.Component`
to build, with the parameters it is timed at. A new block adds one line here, e.g.
``"gft": GFT,`` (with its import), or ``partial(Block, width=...)`` for non-default parameters.
"""

from amaranth.lib import wiring

from ..flow_engine.engine import FlowEngine
from ..flow_engine.parser import Parser
from ..gft.table import GlobalFlowTable
from ..hash.siphash import FlowHash


__all__ = ["TOPS", "OPTIONS", "build_top", "select_tops"]


TOPS = {
    "flowhash": FlowHash,
    "parser": Parser,
    # 1024 buckets x 4 ways = 4096 dual-stack entries, stash 8, move budget 3: the size.
    "gft": GlobalFlowTable,
    "flow_engine": FlowEngine,
}


OPTIONS = {
    # Keyword arguments of hdl.fpga.synth.synthesize per top, where the defaults do not do.
    # Yosys 0.70's ABC9 fails an assertion (rtlil.cc:3091, reintegrating the mapped netlist)
    # on the full-size GFT; the same RTL at 16 buckets maps with ABC9. The older ABC flow
    # maps it.
    "gft": {"abc9": False},
}


def select_tops(names=()):
    """Validate the top ``names`` (default: every registered top) and return them in order.

    Raises
    ------
    ValueError
        If a name is not a registered top; the message lists the known tops.
    """
    unknown = [name for name in names if name not in TOPS]
    if unknown:
        raise ValueError(f"Unknown top {unknown[0]!r}; known tops: {', '.join(TOPS)}")
    return list(dict.fromkeys(names)) if names else list(TOPS)


def build_top(name):
    """Construct the top ``name`` from :data:`TOPS`.

    Raises
    ------
    ValueError
        If ``name`` is not a registered top.
    TypeError
        If its constructor does not return a ``wiring.Component``.
    """
    select_tops([name])
    component = TOPS[name]()
    if not isinstance(component, wiring.Component):
        raise TypeError(f"Top {name!r} must construct a wiring.Component, not {component!r}")
    return component
