"""The scoreboard: what happened to every input packet, recorded where it happened.

The flow engines record each packet's ingress and any drop; packet processors record each
delivery with the session they processed it as. :mod:`sim.model.invariants` judges the record
against SPEC section 5. Nothing here decides anything.
"""

from collections import Counter
from dataclasses import dataclass, field


__all__ = ["PacketFate", "Tracker", "PATHS"]

PATHS = ("lft", "ppm", "predict", "drop")


@dataclass
class PacketFate:
    index: int
    ingress_slot: int
    length: int
    key: object = None              # parsed key (None when the parser dropped the packet)
    deliveries: list = field(default_factory=list)   # (slot, pp, path, session uid)
    drop: str = None


class Tracker:
    def __init__(self):
        self.packets = {}
        self.drops = Counter()
        self.sessions = {}    # uid -> session record, registered by the owner PP
        self.order = []       # packet indices in the order PPs processed them

    def ingress(self, index, ingress_slot, length, key):
        self.packets[index] = PacketFate(index, ingress_slot, length, key)

    def dropped(self, index, reason):
        fate = self.packets.get(index)
        if fate is None:
            return
        self.drops[reason] += 1
        if fate.drop is None:
            fate.drop = reason

    def delivered(self, index, slot, pp, path, session_uid):
        fate = self.packets.get(index)
        if fate is not None:
            fate.deliveries.append((slot, pp, path, session_uid))
            self.order.append(index)

    def register_session(self, session):
        self.sessions[session.uid] = session
