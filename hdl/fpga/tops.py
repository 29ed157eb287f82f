"""The tops the FPGA flow builds, by name.

Each entry maps a top's name (its Verilog module and file name, ``build/verilog/<name>.v``)
to a callable that takes no arguments and returns the :class:`~amaranth.lib.wiring.Component`
to build, with the parameters it is timed at. A new block adds one line here, e.g.
``"gft": GFT,`` (with its import), or ``partial(Block, width=...)`` for non-default parameters.
"""

import inspect

from amaranth.hdl import Elaboratable
from amaranth.lib import wiring

from ..flow_engine.engine import FlowEngine
from ..flow_engine.parser import Parser
from ..gft.table import GlobalFlowTable
from ..hash.folded import FoldedFlowHash
from ..hash.siphash import FlowHash


__all__ = ["TOPS", "OPTIONS", "build_top", "select_tops", "variant_name"]


TOPS = {
    "flowhash": FlowHash,
    "flowhash_folded": FoldedFlowHash,
    "parser": Parser,
    # 1024 buckets x 4 ways = 4096 dual-stack entries, stash 8, move budget 3: the size.
    "gft": GlobalFlowTable,
    "flow_engine": FlowEngine,
}


OPTIONS = {
    # Keyword arguments of hdl.fpga.synth.synthesize per top, where the defaults do not do.
    # The GFT is mapped with the older ABC flow: Yosys 0.70's ABC9 once failed an assertion
    # on it (rtlil.cc:3091, reintegrating the mapped netlist), and where it maps it now (the
    # RTL at 15e99d6) it places worse: 71.66 MHz against 81.56 with ABC (seed 1, placement).
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


def build_top(name, params=None, block=None):
    """Construct the top ``name`` from :data:`TOPS`.

    ``params`` (a dict) are keyword arguments for its constructor, to build a variant (a
    smaller GFT, say, that places and routes in minutes); ``block`` names an attribute of the
    top that is itself a component (``lft`` of the flow engine, say), to build that block alone
    as its parent instantiates it.

    Raises
    ------
    ValueError
        If ``name`` is not a registered top, a parameter is rejected by the constructor, or
        the top has no component attribute ``block``.
    TypeError
        If its constructor does not return a ``wiring.Component``.
    """
    select_tops([name])
    if params:
        # Checked before constructing: a constructor called with an argument it does not take
        # still creates the object, which Amaranth would then report as unused.
        try:
            inspect.signature(TOPS[name]).bind(**params)
        except TypeError as err:
            raise ValueError(f"Top {name!r} does not take {params!r}: {err}") from err
    component = TOPS[name](**(params or {}))
    if not isinstance(component, wiring.Component):
        raise TypeError(f"Top {name!r} must construct a wiring.Component, not {component!r}")
    if block is not None:
        inner = getattr(component, block, None)
        _discard(component)
        if not isinstance(inner, wiring.Component):
            raise ValueError(f"Top {name!r} has no component attribute {block!r}")
        component = inner
    return component


def _discard(elaboratable):
    """Mark ``elaboratable`` and the elaboratables it holds as deliberately unused: only one
    block of the top is built, and Amaranth would warn about the rest when they are collected."""
    stack = [elaboratable]
    while stack:
        item = stack.pop()
        if isinstance(item, Elaboratable) and not getattr(item, "_MustUse__used", True):
            item._MustUse__used = True
            stack.extend(vars(item).values())


def variant_name(name, params=None, block=None):
    """The module and directory name of a variant: ``name`` alone for the top as registered,
    else with the block and each parameter appended (``gft__buckets_16``), so that variants
    never overwrite the registered top's Verilog or results."""
    parts = [name] + ([block] if block else [])
    parts += [f"{key}_{value}" for key, value in sorted((params or {}).items())]
    return "__".join("".join(c if c.isalnum() or c == "_" else "_" for c in str(part))
                     for part in parts)
