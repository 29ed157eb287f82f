"""Fragment table: gives non-first IP fragments the ports of their datagram.

Only the first fragment (offset 0) of a datagram carries the transport header, so a later
fragment parses with ports 0 and would otherwise be a different flow, possibly owned by a
different PP. The flow engine does not reassemble; it remembers, per datagram, the ports it saw
in the first fragment and stamps them on the later ones. This module is the model of that table.

Behaviour (the hardware table does the same)
--------------------------------------------
* Datagram identity: ``(src_addr, dst_addr, frag.proto, frag.ident, zone)``. ``frag.proto`` is
  the protocol every fragment carries (IPv6: the fragment header's next header), so a first
  fragment whose upper layer sits behind further extension headers still matches its tail.
* First fragment (offset 0, more-fragments set): records the datagram's full key; an entry for
  the same identity is replaced (a reused IP ID starts a new datagram) and its age restarts.
* Later fragment: a live entry gives the first fragment's key (status ``'matched'``); without
  one (first fragment lost, reordered behind it, expired or evicted) the fragment keeps ports 0
  and status ``'unmatched'``, which the caller counts as ``frag_unmatched``. The hardware does
  not hold fragments back waiting for their head.
* Entries are not removed by the last fragment: fragments may arrive out of order, so an entry
  lives ``timeout`` seconds from its first fragment (like Linux ``ipfrag_time``), not refreshed
  by matches.
* Capacity is bounded: when a new first fragment finds the table full after expired entries are
  reclaimed, the oldest entry is evicted (counted). Dropping the new datagram instead would let
  a flood of never-completed first fragments lock every later datagram out until it expired.
"""

from collections import Counter, OrderedDict
from typing import NamedTuple, Optional

from sim.flowkey import FlowKey


__all__ = ["FragmentTable", "FragResult", "STATUSES"]

STATUSES = ("unfragmented", "first", "matched", "unmatched", "dropped")


class FragResult(NamedTuple):
    """Outcome of :meth:`FragmentTable.resolve`.

    Attributes
    ----------
    key : FlowKey or None
        The key the packet should be looked up with (None when the parser dropped it).
    status : str
        One of :data:`STATUSES`.
    """
    key: Optional[FlowKey]
    status: str


class FragmentTable:
    """Bounded, ageing map from datagram identity to the key of its first fragment.

    Parameters
    ----------
    capacity : int
        Maximum number of datagrams remembered at once.
    timeout : float
        Seconds an entry lives after its first fragment.

    Attributes
    ----------
    stats : collections.Counter
        ``first``, ``matched``, ``frag_unmatched``, ``expired``, ``evicted``.
    """

    def __init__(self, capacity=1024, timeout=30.0):
        self.capacity = max(1, int(capacity))
        self.timeout = float(timeout)
        # Insertion order is first-fragment order, which (with one fixed timeout) is also expiry
        # order, so both expiry and eviction look only at the front, like a hardware ring.
        self._entries = OrderedDict()
        self.stats = Counter()

    def __len__(self):
        return len(self._entries)

    @staticmethod
    def _ident(key, frag):
        return (key.src_addr, key.dst_addr, frag.proto, frag.ident, key.zone)

    def _expire(self, now):
        while self._entries:
            ident, (born, _) = next(iter(self._entries.items()))
            if now - born <= self.timeout:
                break
            del self._entries[ident]
            self.stats["expired"] += 1

    def resolve(self, parsed, now):
        """Give ``parsed`` the key of its datagram.

        Parameters
        ----------
        parsed : sim.packets.parse.Parsed
        now : float
            Current time in seconds (the capture timestamp in the model).

        Returns
        -------
        FragResult
        """
        key, frag = parsed.key, parsed.frag
        if key is None:
            return FragResult(None, "dropped")
        if frag is None:
            return FragResult(key, "unfragmented")
        self._expire(now)
        ident = self._ident(key, frag)
        if frag.offset == 0:
            if ident in self._entries:
                del self._entries[ident]
            elif len(self._entries) >= self.capacity:
                self._entries.popitem(last=False)
                self.stats["evicted"] += 1
            self._entries[ident] = (now, key)
            self.stats["first"] += 1
            return FragResult(key, "first")
        entry = self._entries.get(ident)
        if entry is None or now - entry[0] > self.timeout:
            self.stats["frag_unmatched"] += 1
            return FragResult(key, "unmatched")
        self.stats["matched"] += 1
        return FragResult(entry[1], "matched")
