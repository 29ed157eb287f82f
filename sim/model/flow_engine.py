"""Golden model of a card's flow engine (patent FIG. 3): parse, fragment fix-up, LFT lookup,
forward.

Per packet: parse -> drop with a reason, or a key; a non-first fragment takes its datagram's key
from the fragment table; fragments the card cannot place, and every first fragment, go to the
PPM with their fragment information (``FLOW_UNKNOWN.frag``); LFT hit -> ``PACKET`` straight to the owner PP (the entry counts
packets and bytes); miss -> ``FLOW_UNKNOWN`` with the packet to PPM-HW.
From the fabric: ``FLOW_ADD`` installs (only from PPM-HW), ``FLOW_DELETE`` removes and answers
``FLOW_STATS`` to the owner (zeros when the entry was already gone, so the owner hears from every
aware card). Anything else is counted and ignored.
"""

from collections import Counter

from hdl.wire import FragKind, MsgType
from sim.flowhash import DEFAULT_SECRET
from sim.flowkey import FlowKey
from sim.packets.fragments import FragmentTable
from sim.packets.parse import parse_frame
from sim.wire import Message, PPM_HW, decode_or_count, fe, fid_owner

from .lft import LocalFlowTable


__all__ = ["FlowEngine"]


class FlowEngine:
    """Parameters: ``slot``, ``fabric``, ``tracker``; keyword-only ``lft_buckets``, ``lft_ways``,
    ``secret``, ``frag_capacity``, ``frag_timeout`` (seconds)."""

    def __init__(self, slot, fabric, tracker, *, lft_buckets=256, lft_ways=4,
                 secret=DEFAULT_SECRET, frag_capacity=256, frag_timeout=30.0):
        self.slot = slot
        self.endpoint = fe(slot)
        self.fabric = fabric
        self.tracker = tracker
        self.lft = LocalFlowTable(buckets=lft_buckets, ways=lft_ways, secret=secret)
        self.frags = FragmentTable(capacity=frag_capacity, timeout=frag_timeout)
        self.seen_keys = set()     # every key that entered here: the LFT may hold only these
        self.stats = Counter()
        fabric.attach(self.endpoint, self.receive)

    # --- data port ---------------------------------------------------------------------------

    def ingest(self, index, frame, now, port=0):
        """One packet from a data port. ``index`` is the trace tag (capture index)."""
        parsed = parse_frame(frame)
        resolved = self.frags.resolve(parsed, now)
        self.tracker.ingress(index, self.slot, len(frame), resolved.key)
        self.stats["packets"] += 1
        if resolved.key is None:
            self.stats[f"drop_{parsed.drop}"] += 1
            self.tracker.dropped(index, parsed.drop)
            return
        key = resolved.key
        self.seen_keys.add(key)
        pkt = {"tag": index, "port": port, "ingress_slot": self.slot}
        # Fragments of one datagram may enter on different cards. A first fragment always goes
        # to the PPM, which remembers its ports device-wide; a later fragment this card cannot
        # place goes there too and the PPM places it (or drops it, counted).
        frag_kind = {"first": FragKind.FIRST, "unmatched": FragKind.UNPLACED}.get(resolved.status)
        entry = self.lft.lookup(key) if frag_kind is None else None
        if frag_kind is not None:
            self.stats[f"frag_{resolved.status}"] += 1
        if entry is not None:
            entry.packets += 1
            entry.bytes += len(frame)
            self.stats["lft_hits"] += 1
            self.fabric.send(self.endpoint, Message(MsgType.PACKET, {"fid": entry.fid, "pkt": pkt},
                                                    dst=fid_owner(entry.fid), packet=frame))
        else:
            self.stats["lft_misses"] += 1
            frag = {"kind": frag_kind or FragKind.NONE}
            if frag_kind is not None:
                frag.update(proto=parsed.frag.proto, offset=parsed.frag.offset, ident=parsed.frag.ident)
            self.fabric.send(self.endpoint, Message(MsgType.FLOW_UNKNOWN, {
                "key": key._asdict(), "frag": frag, "pkt": pkt}, dst=PPM_HW, packet=frame))

    # --- fabric port -------------------------------------------------------------------------

    def receive(self, frame):
        msg = decode_or_count(frame, self.stats)
        if msg is None:
            return
        if msg.type in (MsgType.FLOW_ADD, MsgType.FLOW_DELETE) and msg.src != PPM_HW:
            self.stats["unauthorised"] += 1   # only the PPM may change the LFT
            return
        if msg.type == MsgType.FLOW_ADD:
            key, fid = FlowKey(**msg.body["key"]), msg.body["fid"]
            victim = self.lft.add(key, fid)
            self.stats["flow_adds"] += 1
            if victim is not None:
                self._send_stats(victim.fid, victim.packets, victim.bytes, final=0)
        elif msg.type == MsgType.FLOW_DELETE:
            key, fid = FlowKey(**msg.body["key"]), msg.body["fid"]
            entry = self.lft.delete(key, fid)
            self.stats["flow_deletes"] += 1
            self._send_stats(fid, entry.packets if entry else 0, entry.bytes if entry else 0, final=1)
        else:
            self.stats["unexpected"] += 1

    def _send_stats(self, fid, packets, nbytes, *, final):
        self.fabric.send(self.endpoint, Message(MsgType.FLOW_STATS, {
            "fid": fid, "final": final, "packets": packets, "bytes": nbytes}, dst=fid_owner(fid)))
