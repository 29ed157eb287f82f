"""Registers duplicated on purpose, each copy driving its own share of a wide fanout."""

from amaranth.hdl import *


__all__ = ["DONT_MERGE", "register_copies", "field_mask", "gated_chunk"]


DONT_MERGE = "dont_merge"
"""Attribute on a register's signal: synthesis must keep the register apart from identical
ones. Yosys merges flip-flops with the same inputs (``opt_merge``), which undoes a
duplication; :func:`hdl.fpga.synth.yosys_script` sets ``keep`` on every flip-flop driving a
signal with this attribute, and ``opt_merge`` leaves two kept cells apart."""


def register_copies(m, value, count, *, name, reset_less=True):
    """``count`` flip-flops that each take ``value`` at every clock edge.

    For a value that must reach many loads spread over the die, block RAM address inputs
    say: one register cannot sit near all of them, so each copy drives a group of loads and
    the placer puts it near that group. Simulation sees ``count`` equal registers. They have
    no reset unless ``reset_less`` is false: then they are 0 from a reset on, for a copy of a
    decision that must not act on what it took just before the reset.
    """
    regs = [Signal.like(value, name=f"{name}_copy{k}", reset_less=reset_less,
                        attrs={DONT_MERGE: 1}) for k in range(count)]
    m.d.sync += [reg.eq(value) for reg in regs]
    return regs


def field_mask(layout, names):
    """The bits of the fields ``names`` of the struct ``layout`` as an integer mask; a nested
    field is named by its path, ``"frag.ident"``."""
    mask = 0
    for name in names:
        offset, shape = 0, layout
        for part in name.split("."):
            field = shape[part]
            offset, shape = offset + field.offset, field.shape
        mask |= ((1 << field.width) - 1) << offset
    return mask


def gated_chunk(chunk, lo, gates):
    """``chunk``, bits ``lo`` up of a wide value, with, for each ``(keep, mask)`` in
    ``gates``, the bits of ``mask`` (an integer over the whole value) zeroed unless ``keep``:
    a chunk of a wide register or queue input zeroed field by field by copies of the
    conditions of its own (see :func:`register_copies`), not by one condition reaching every
    chunk."""
    chunk = Value.cast(chunk)
    width = len(chunk)
    ones = (1 << width) - 1
    for keep, mask in gates:
        chunk = chunk & Mux(keep, C(ones, width), C(~(mask >> lo) & ones, width))
    return chunk
