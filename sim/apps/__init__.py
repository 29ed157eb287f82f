"""Application decoders: read a parent session and predict its child sessions.

A packet processor that owns a parent session (FTP control, SIP signalling, a TFTP request)
creates one decoder per session with :func:`decoder_for` and calls its ``inspect`` for every
packet of the session. Each :class:`Prediction` it returns becomes a ``PREDICT_ADD``: the key,
plus the care mask :func:`care_mask` derives from the wildcard set. The predict table matches a
later flow exactly as :func:`matches` does.

Prediction convention
---------------------
* A prediction names the *first packet* of the child: its source and destination as that packet
  will carry them. Every field the decoder cannot know is listed in ``wild`` and is 0 in ``key``.
* Where the child's direction is not known (SIP media may start from either end), the decoder
  emits one prediction per direction.
* The child's zone is the parent's zone: a child never crosses into another VLAN stack.
* Decoders do not deduplicate: a repeated announcement (retransmission, re-INVITE) repeats its
  predictions, and the predict table refreshes an identical entry instead of adding a second.
* Decoders never raise: :meth:`Decoder.inspect` turns an internal error into no prediction and
  counts it in ``stats['errors']``; refusals (e.g. FTP bounce) are counted in ``stats`` and
  ``refused``.

The decoder is picked by the parent's (protocol, server port) in :data:`SERVER_PORTS`; add a
line there to run a decoder on another port.
"""

from collections import Counter
from typing import NamedTuple

from hdl.wire import FLOW_KEY
from sim.flowkey import FlowKey


__all__ = [
    "Prediction", "care_mask", "matches", "Decoder", "decoder_for", "SERVER_PORTS", "DECODERS",
    "WILDCARD_FIELDS",
]

WILDCARD_FIELDS = frozenset(FlowKey._fields)
_FULL = {name: (1 << FLOW_KEY[name].width) - 1 for name in FlowKey._fields}


class Prediction(NamedTuple):
    """An expected child flow.

    Attributes
    ----------
    key : FlowKey
        The child's first packet; wildcard fields are 0.
    wild : frozenset of str
        Names of :class:`FlowKey` fields that match anything.
    """
    key: FlowKey
    wild: frozenset = frozenset()


def care_mask(prediction):
    """Care mask of a prediction, as ``PREDICT_ADD.care`` carries it.

    Parameters
    ----------
    prediction : Prediction

    Returns
    -------
    FlowKey
        All ones (the field's width) in cared fields, 0 in wildcard fields.
    """
    return FlowKey(**{name: 0 if name in prediction.wild else full for name, full in _FULL.items()})


def matches(prediction, key):
    """Whether flow ``key`` matches ``prediction``, bit for bit as the predict TCAM does.

    Parameters
    ----------
    prediction : Prediction
    key : FlowKey

    Returns
    -------
    bool
    """
    care = care_mask(prediction)
    return all((k ^ p) & c == 0 for k, p, c in zip(key, prediction.key, care))


class Decoder:
    """Base of the per-session application decoders.

    Parameters
    ----------
    fwd_key : FlowKey
        The parent session's forward key (its first packet's key).

    Attributes
    ----------
    stats : collections.Counter
        What the decoder saw and refused; ``errors`` counts internal failures.
    """

    name = "?"
    server_first_ok = True   # may a session first seen from the server side be decoded?

    def __init__(self, fwd_key):
        self.fwd_key = fwd_key
        self.zone = fwd_key.zone
        # The side that listens on the registered port is the server, whichever side was seen
        # first (a capture may start mid-session with the server's packet).
        self.server_is_dst = SERVER_PORTS.get((fwd_key.proto, fwd_key.dst_port)) == self.name \
            or SERVER_PORTS.get((fwd_key.proto, fwd_key.src_port)) != self.name
        if self.server_is_dst:
            self.client_addr, self.server_addr = fwd_key.src_addr, fwd_key.dst_addr
        else:
            self.client_addr, self.server_addr = fwd_key.dst_addr, fwd_key.src_addr
        self.stats = Counter()

    @property
    def refused(self):
        """Number of announcements refused (not predicted) for safety or malformation."""
        return sum(v for k, v in self.stats.items() if k.startswith("refused_"))

    def inspect(self, key, payload, forward):
        """Read one packet of the session.

        Parameters
        ----------
        key : FlowKey
            The packet's key.
        payload : bytes
            Its transport payload.
        forward : bool
            True when the packet goes in the session's forward direction.

        Returns
        -------
        list of Prediction
        """
        try:
            return self._inspect(key, bytes(payload or b""), bool(forward))
        except Exception:
            self.stats["errors"] += 1
            return []

    def _inspect(self, key, payload, forward):  # pragma: no cover - abstract
        return []

    def from_client(self, forward):
        return forward == self.server_is_dst


# Imported after the base definitions: the protocol modules import them from here.
from .ftp import FtpDecoder     # noqa: E402
from .sip import SipDecoder     # noqa: E402
from .tftp import TftpDecoder   # noqa: E402

DECODERS = {cls.name: cls for cls in (FtpDecoder, SipDecoder, TftpDecoder)}

# (IP protocol, server port) -> decoder name.
SERVER_PORTS = {
    (6, 21): "ftp",
    (17, 5060): "sip",
    (6, 5060): "sip",
    (17, 69): "tftp",
}


def decoder_for(fwd_key):
    """Decoder class for a new session, or None.

    The destination port is tried first (the first packet normally goes to the server); the
    source port second, for a session first seen from its server side, except for decoders that
    can only start at the client's request (TFTP).

    Parameters
    ----------
    fwd_key : FlowKey

    Returns
    -------
    type or None
        A :class:`Decoder` subclass; instantiate it with ``fwd_key``.
    """
    try:
        name = SERVER_PORTS.get((fwd_key.proto, fwd_key.dst_port))
        if name is None:
            name = SERVER_PORTS.get((fwd_key.proto, fwd_key.src_port))
            if name is not None and not DECODERS[name].server_first_ok:
                name = None
        return DECODERS.get(name)
    except Exception:
        return None
