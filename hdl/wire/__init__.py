"""Wire formats, defined once (see :mod:`hdl.wire.formats`)."""

from .format import Field, Format
from .formats import *  # noqa: F401,F403
from .formats import __all__ as _formats_all

__all__ = ["Field", "Format", *_formats_all]
