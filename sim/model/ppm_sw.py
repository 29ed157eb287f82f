"""PPM-SW: the software that picks the owner PP of a new session.

It answers ASSIGN_REQ with ASSIGN_RESP. Policies (patent: "load balancing, random, the packet
processor in the ingress card, or other factors"):

* ``least_loaded``: the PP with the smallest load, where load is the last value the PP reported
  in SESSION_BIND (PPM-HW keeps it in its load table, which software reads as a register block)
  plus the sessions this software assigned to that PP since that report. Without the second
  term every new session in a burst would go to the same PP before any of them binds.
  Ties go round robin, so an idle device still spreads sessions.
* ``random``: uniform over all PPs (seeded).
* ``round_robin``: every PP in turn.
* ``ingress_slot``: round robin over the PPs of the card the packet entered on (keeps traffic off
  the fabric); the whole device when that card has no PPs.

After a refusal (``attempt > 0``) the refuser is skipped whenever another PP exists.
"""

import random
from collections import Counter

from hdl.wire import MsgType
from sim.wire import Message, PPM_HW, PPM_SW, decode_or_count


__all__ = ["PpmSw", "POLICIES"]

POLICIES = ("least_loaded", "random", "round_robin", "ingress_slot")


class PpmSw:
    def __init__(self, fabric, ppm_hw, pps, *, policy="least_loaded", seed=0):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        if not pps:
            raise ValueError("PPM-SW needs at least one packet processor")
        self.fabric = fabric
        self.ppm_hw = ppm_hw
        self.pps = sorted(pps)
        self.policy = policy
        self.rng = random.Random(seed)
        self._rr = 0
        self._assigned_since = Counter()
        self._reports_seen = Counter()
        self.assignments = Counter()
        self.stats = Counter()
        fabric.attach(PPM_SW, self.receive)

    def receive(self, frame):
        msg = decode_or_count(frame, self.stats)
        if msg is None:
            return
        if msg.type != MsgType.ASSIGN_REQ or msg.src != PPM_HW:
            self.stats["unexpected"] += 1    # errors from PPM-HW about stale answers land here too
            return
        refused = (msg.body["refused_by"]["slot"], msg.body["refused_by"]["unit"]) if msg.body["attempt"] else None
        owner = self.choose(msg.body["ingress_slot"], refused)
        self.assignments[owner] += 1
        self._assigned_since[owner] += 1
        self.fabric.send(PPM_SW, Message(MsgType.ASSIGN_RESP, {
            "fid": msg.body["fid"], "ok": 1, "owner": {"slot": owner[0], "unit": owner[1]}}, dst=PPM_HW))

    def _round_robin(self, candidates):
        choice = candidates[self._rr % len(candidates)]
        self._rr += 1
        return choice

    def choose(self, ingress_slot, refused=None):
        candidates = [pp for pp in self.pps if pp != refused] or self.pps
        if self.policy == "random":
            return self.rng.choice(candidates)
        if self.policy == "round_robin":
            return self._round_robin(candidates)
        if self.policy == "ingress_slot":
            local = [pp for pp in candidates if pp[0] == ingress_slot]
            return self._round_robin(local or candidates)
        # least_loaded: a fresh load report replaces our own running estimate for that PP.
        for pp in candidates:
            reports = self.ppm_hw.load_reports[pp]
            if reports != self._reports_seen[pp]:
                self._reports_seen[pp] = reports
                self._assigned_since[pp] = 0
        load = {pp: self.ppm_hw.loads.get(pp, 0) + self._assigned_since[pp] for pp in candidates}
        best = min(load.values())
        return self._round_robin([pp for pp in candidates if load[pp] == best])
