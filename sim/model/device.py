"""The whole device as a message-level model: S cards (flow engine + PPs), optional resource
cards (PPs only), PPM-HW, PPM-SW, all joined by the fabric.

Time and ordering
-----------------
Packets enter in capture order at their capture timestamps. Before a packet enters, every PP
and PPM-HW timer up to that instant fires. After it enters, the fabric delivers frames: all of
them (``fabric_steps=None``: each packet's message exchange completes before the next packet,
the calm case) or at most ``fabric_steps`` frames (messages lag behind traffic, so several
packets of a new flow arrive before its owner has bound it: the race the tentative state and
the reverse takeover exist for). :meth:`Device.finish` tears every session down, lets all
timers expire and drains the fabric, so the tables must end empty.
"""

import zlib
from dataclasses import dataclass

from hdl.wire import CounterOp, MAX_SLOTS, MAX_PPS
from sim.flowhash import DEFAULT_SECRET

from .counters import request
from .fabric import Fabric
from .flow_engine import FlowEngine
from .gft import GlobalFlowTable
from .pp import PacketProcessor, Timeouts
from .ppm import PpmHw
from .ppm_sw import PpmSw
from .predict import PredictTable
from .tracker import Tracker


__all__ = ["Device", "Clock", "INGRESS_MODES"]

INGRESS_MODES = ("mac", "rr")


@dataclass
class Clock:
    now: float = 0.0
    index: int = -1      # input position of the packet being handled


class Device:
    """Parameters (keyword only)
    -------------------------
    slots : int
        Packet processing cards (each with a flow engine and ``pps`` PPs), 1..31.
    pps : int
        PPs per card, 1..30.
    resource_cards, resource_pps : int
        Processing resource cards (PPs only) and their PPs each.
    ingress : str
        ``"mac"``: a packet enters on card ``crc32(source MAC) % slots``, so the two directions
        of a conversation usually enter on different cards; ``"rr"``: card ``index % slots``
        per packet (stress: every flow is seen by every card).
    policy : str
        PPM-SW owner policy (:data:`sim.model.ppm_sw.POLICIES`).
    fabric_steps : int or None
        Frames the fabric delivers per input packet (None: all).
    refuse : float
        Probability that a PP refuses an ownership offer.
    seed : int
        Seeds PPM-SW's random policy and the PPs' refusals.
    secret : bytes
        Flow hash key of every table.
    gft_buckets, gft_ways, gft_stash, lft_buckets, lft_ways, predict_entries : int
        Table sizes.
    predict_per_parent : int
        Most live predictions one parent session may hold. A SIP signalling session can carry
        many calls and each media line predicts four flows (RTP and RTCP, both directions).
    counter_high, counter_low : int
        Thresholds of the live-session accumulator every PP reports to.
    """

    def __init__(self, *, slots=4, pps=4, resource_cards=0, resource_pps=4, ingress="mac",
                 policy="least_loaded", fabric_steps=None, refuse=0.0, seed=1,
                 secret=DEFAULT_SECRET, gft_buckets=1024, gft_ways=8, gft_stash=8,
                 lft_buckets=256, lft_ways=4, predict_entries=64, predict_per_parent=16,
                 timeouts=Timeouts(),
                 counter_high=64, counter_low=48):
        for name, value, hi in (("slots", slots, MAX_SLOTS), ("pps", pps, MAX_PPS),
                                ("resource_pps", resource_pps, MAX_PPS)):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= hi:
                raise ValueError(f"{name} must be an integer from 1 to {hi}, not {value!r}")
        if not isinstance(resource_cards, int) or not 0 <= resource_cards <= MAX_SLOTS - slots:
            raise ValueError(f"resource_cards must be an integer from 0 to {MAX_SLOTS - slots}, "
                             f"not {resource_cards!r}")
        if ingress not in INGRESS_MODES:
            raise ValueError(f"ingress must be one of {', '.join(INGRESS_MODES)}, not {ingress!r}")
        if fabric_steps is not None and (not isinstance(fabric_steps, int) or fabric_steps < 1):
            raise ValueError(f"fabric_steps must be a positive integer or None, not {fabric_steps!r}")
        self.slots = slots
        self.ingress = ingress
        self.fabric_steps = fabric_steps
        self.timeouts = timeouts
        self.clock = Clock()
        self.fabric = Fabric()
        self.tracker = Tracker()
        topology = {s: pps for s in range(slots)}
        topology.update({slots + r: resource_pps for r in range(resource_cards)})
        self.fes = [FlowEngine(s, self.fabric, self.tracker, lft_buckets=lft_buckets,
                               lft_ways=lft_ways, secret=secret) for s in range(slots)]
        self.ppm = PpmHw(self.fabric, self.tracker, topology, lambda: self.clock.now,
                         gft=GlobalFlowTable(buckets=gft_buckets, ways=gft_ways, stash=gft_stash,
                                             secret=secret, timestamp_bits=32),
                         predict=PredictTable(entries=predict_entries,
                                              per_parent_cap=predict_per_parent))
        self.pps = [PacketProcessor(s, p, self.fabric, self.tracker, self.clock, refuse=refuse,
                                    seed=seed * 1000 + s * 32 + p, timeouts=timeouts)
                    for s, n in sorted(topology.items()) for p in range(n)]
        self.ppm_sw = PpmSw(self.fabric, self.ppm, [pp.endpoint for pp in self.pps],
                            policy=policy, seed=seed)
        # PPM-SW allocates the live-session accumulator at start-up through the register
        # interface; every PP then reports its own count to it.
        reply, _ = self.ppm.counters.process(0, request(CounterOp.ALLOC_ACC, value=counter_high,
                                                        param=counter_low, group=1))
        self.session_counter = reply["counter"]
        self.counter_high, self.counter_low = counter_high, counter_low
        for pp in self.pps:
            pp.use_session_counter(self.session_counter)
        self.packets_in = 0
        self.live_violations = []   # invariants checked while running (4: LFT contents, 5: sums)
        self._last_ppm_tick = None

    # --- running -----------------------------------------------------------------------------

    def ingress_slot(self, index, frame):
        if self.ingress == "rr":
            return index % self.slots
        return zlib.crc32(bytes(frame[6:12])) % self.slots

    def advance(self, now):
        """Move time to ``now`` (never backwards) and fire the timers that are due."""
        self.clock.now = max(self.clock.now, now)
        for pp in self.pps:
            pp.tick()
        if self._last_ppm_tick is None or self.clock.now - self._last_ppm_tick >= 0.1:
            self.ppm.tick()
            self._last_ppm_tick = self.clock.now

    def inject(self, index, timestamp, frame):
        """One input packet: timers, ingress, then the fabric's share of work."""
        self.clock.index = index
        self.advance(timestamp)
        self.fabric.run(self.fabric_steps)
        self.packets_in += 1
        self.fes[self.ingress_slot(index, frame)].ingest(index, bytes(frame), self.clock.now)
        self.fabric.run(self.fabric_steps)
        self._check_live()

    def run(self, packets):
        """Run ``(timestamp, frame)`` pairs through the device and finish."""
        for index, (timestamp, frame) in enumerate(packets):
            self.inject(index, timestamp, frame)
        self.finish()
        return self

    def finish(self):
        """Drain: deliver what is in flight, tear down every session, let every timer expire."""
        self.clock.index = self.packets_in
        self.fabric.run()
        for pp in self.pps:
            pp.drain()
        self.fabric.run()
        for pp in self.pps:
            pp.flush_counters()
        self.fabric.run()
        horizon = max(self.ppm.gft.tentative_timeout / 1000, self.ppm.predict.default_timeout) + 1
        self.clock.now += horizon
        self.ppm.tick()
        self.fabric.run()
        for pp in self.pps:       # sessions bound by packets released during the drain
            pp.drain()
            pp.flush_counters()
        self.fabric.run()
        self._check_live()

    def _check_live(self):
        for fe in self.fes:
            for entry in fe.lft.entries():
                if entry.key not in fe.seen_keys:
                    self.live_violations.append((4, self.clock.index,
                                                 f"LFT of slot {fe.slot} holds {entry.key}, never seen there"))
        if self.fabric.pending() == 0:
            total = self.ppm.counters.sum_of(self.session_counter)
            reported = sum(pp.engine.reported(self.session_counter) for pp in self.pps)
            if total != reported:
                self.live_violations.append((5, self.clock.index,
                                             f"session sum {total} != latest reports {reported}"))
        for counter, total, expected in self.ppm.counters.check_sums():
            self.live_violations.append((5, self.clock.index,
                                         f"counter {counter:#x} sum {total} != instances {expected}"))
