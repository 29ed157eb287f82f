"""A tiny description language for wire formats, so each format is written down once.

A :class:`Format` is an ordered list of :class:`Field` objects. From it we derive:

* ``format.layout``: the Amaranth :class:`~amaranth.lib.data.StructLayout` used by the hardware;
* ``format.pack`` / ``format.unpack`` / ``format.to_bytes`` / ``format.from_bytes``: the Python codec
  used by the golden model and the benches;
* a Scapy layer (built in :mod:`sim.wire`, so the hardware package does not depend on Scapy);
* the protocol table in ``docs/protocol.md`` (:mod:`hdl.wire.doc`).

Bit order
---------
Formats travel over the fabric as bytes in network order: the first field listed is the most
significant, so ``int.from_bytes(wire, "big")`` is the packed value. Amaranth puts the first
field of a ``StructLayout`` at the *lowest* bits, so the layout lists the fields in reverse. The
packed integer is therefore identical in Python and in hardware, bit for bit; a round-trip
test holds the two to that.
"""

import enum as py_enum

from amaranth.lib import data


__all__ = ["Field", "Format"]


class Field:
    """One field of a :class:`Format`.

    Parameters
    ----------
    name : str
        Field name, a Python identifier.
    shape : int or Format or enum class
        Width in bits, a nested :class:`Format`, or an Amaranth ``enum.Enum`` with an explicit shape.
    doc : str
        What the field means; rendered into ``docs/protocol.md``.
    """

    def __init__(self, name, shape, doc=""):
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"Field name must be an identifier, not {name!r}")
        self.name = name
        self.doc = doc
        self.enum = None
        self.format = None
        if isinstance(shape, Format):
            self.format = shape
            self.width = shape.width
        elif isinstance(shape, type) and issubclass(shape, py_enum.Enum):
            self.enum = shape
            self.width = shape.as_shape().width
        elif isinstance(shape, int) and not isinstance(shape, bool) and shape > 0:
            self.width = shape
        else:
            raise TypeError(f"Field shape must be a positive integer, a Format or an enum, not {shape!r}")

    @property
    def amaranth_shape(self):
        if self.format is not None:
            return self.format.layout
        if self.enum is not None:
            return self.enum
        return self.width

    def encode(self, value):
        """Field value (int, enum member, or dict for nested formats) -> int."""
        if self.format is not None:
            return self.format.pack(value) if isinstance(value, dict) else int(value)
        value = value.value if isinstance(value, py_enum.Enum) else int(value)
        if not 0 <= value < (1 << self.width):
            raise ValueError(f"Field {self.name!r} value {value} does not fit in {self.width} bits")
        return value

    def decode(self, raw):
        if self.format is not None:
            return raw if self.format.opaque else self.format.unpack(raw)
        if self.enum is not None:
            try:
                return self.enum(raw)
            except ValueError:
                return raw  # an unknown code stays visible as an integer
        return raw


class Format:
    """An ordered, fixed-width record; the one definition of a wire format.

    Parameters
    ----------
    name : str
        Format name (used in documentation and for the Scapy layer).
    fields : list of Field
        Fields in wire order, most significant first.
    doc : str
        What the format is for.
    opaque : bool
        Software handles values of this format as one packed integer (a flow ID is compared and
        stored whole): when nested in another format it decodes to an ``int``, not a dict.
        Hardware still sees its fields.
    """

    def __init__(self, name, fields, doc="", *, opaque=False):
        self.name = name
        self.doc = doc
        self.opaque = opaque
        self.fields = list(fields)
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"Format {name!r} has duplicate field names: {names}")
        self.width = sum(f.width for f in self.fields)
        self._by_name = {f.name: f for f in self.fields}
        # Offset of each field counted from bit 0 (the least significant bit).
        self.offsets = {}
        offset = self.width
        for f in self.fields:
            offset -= f.width
            self.offsets[f.name] = offset
        self.layout = data.StructLayout({f.name: f.amaranth_shape for f in reversed(self.fields)})

    def __repr__(self):
        return f"Format({self.name!r}, {self.width} bits)"

    def __getitem__(self, name):
        return self._by_name[name]

    @property
    def nbytes(self):
        if self.width % 8:
            raise ValueError(f"Format {self.name!r} is {self.width} bits, not a whole number of bytes")
        return self.width // 8

    def pack(self, values=None, **kwargs):
        """Pack a dict (or keyword arguments) into an integer. Missing fields are zero;
        unknown names are an error."""
        values = dict(values or {}, **kwargs)
        unknown = set(values) - set(self._by_name)
        if unknown:
            raise KeyError(f"Format {self.name!r} has no field(s) {sorted(unknown)}")
        word = 0
        for f in self.fields:
            if f.name in values:
                word |= f.encode(values[f.name]) << self.offsets[f.name]
        return word

    def unpack(self, word):
        """Integer -> dict of field values (nested formats as nested dicts)."""
        word = int(word)
        if not 0 <= word < (1 << self.width):
            raise ValueError(f"{word:#x} does not fit in format {self.name!r} of {self.width} bits")
        return {f.name: f.decode((word >> self.offsets[f.name]) & ((1 << f.width) - 1))
                for f in self.fields}

    def to_bytes(self, values=None, **kwargs):
        return self.pack(values, **kwargs).to_bytes(self.nbytes, "big")

    def from_bytes(self, raw):
        """Decode the first ``nbytes`` of ``raw``; raises ``ValueError`` when it is too short."""
        if len(raw) < self.nbytes:
            raise ValueError(f"{self.name} needs {self.nbytes} bytes, got {len(raw)}")
        return self.unpack(int.from_bytes(raw[:self.nbytes], "big"))
