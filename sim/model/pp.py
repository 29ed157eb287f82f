"""Packet processor (PP) model: the owner side of every message flow.

A PP accepts or refuses ownership, binds with the reverse key, processes packets (decoding
FTP/SIP/TFTP to predict child sessions), tears sessions down on TCP FIN/RST or idle timeout,
tallies FLOW_STATS, and reports its session count to an accumulator as a stats engine would.

Accounting rule (SPEC invariant 3): every packet reaches the owner either from a card's LFT
(PACKET from a flow engine, which counts it in its LFT entry and reports it in FLOW_STATS) or
through the PPM (OWNER/BIND_ACK/PACKET from PPM-HW, counted by the owner itself). The owner's
tally is the sum of both, so it must equal what the device received for the session.
"""

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field

from hdl.wire import MsgType
from sim.apps import care_mask, decoder_for
from sim.flowkey import FlowKey
from sim.packets.parse import parse_frame, reverse_key, IPPROTO_TCP, IPPROTO_UDP
from sim.wire import Message, PPM_HW, decode_or_count, fid_parts

from .stats_engine import StatsEngine


__all__ = ["PacketProcessor", "Session", "Timeouts"]

_uids = itertools.count()

TCP_FIN, TCP_RST = 0x01, 0x04


@dataclass(frozen=True)
class Timeouts:
    """Session timers in seconds: idle per protocol, and linger after the close is seen (so
    the last ACK of a FIN exchange still finds the session)."""
    tcp_idle: float = 300.0
    udp_idle: float = 60.0
    other_idle: float = 30.0
    close_linger: float = 2.0


@dataclass
class Session:
    uid: int
    owner: tuple
    index: int
    fid: int
    fwd_key: FlowKey
    rev_key: FlowKey
    predicted: bool
    parent_fid: int
    state: str = "offered"            # offered -> bound -> closed
    rev_fid: int = 0
    decoder: object = None
    direct_packets: int = 0           # reached us through the PPM
    direct_bytes: int = 0
    stats_packets: int = 0            # reported by flow engines in FLOW_STATS
    stats_bytes: int = 0
    stats_messages: int = 0
    last_seen: float = 0.0
    fins: int = 0                     # bit 0: FIN seen forward, bit 1: reverse
    close_at: float = None
    closed_at_index: int = None       # input position when the teardown was sent
    delivered: list = field(default_factory=list)

    @property
    def tally(self):
        return self.direct_packets + self.stats_packets, self.direct_bytes + self.stats_bytes


class PacketProcessor:
    """Parameters: ``slot``, ``pp``, ``fabric``, ``tracker``, ``clock`` (object with ``now``
    seconds and ``index``, the input position); keyword-only ``refuse`` (probability of refusing
    an offer), ``seed``, ``timeouts``, ``report_threshold`` (local threshold of the session
    accumulator)."""

    def __init__(self, slot, pp, fabric, tracker, clock, *, refuse=0.0, seed=0,
                 timeouts=Timeouts(), report_threshold=4):
        self.endpoint = (slot, pp)
        self.fabric = fabric
        self.tracker = tracker
        self.clock = clock
        self.refuse = refuse
        self.rng = random.Random(seed)
        self.timeouts = timeouts
        self.report_threshold = report_threshold
        self.live = {}          # index -> Session (offered or bound)
        self.closed = {}        # index -> [Session, ...] torn down, kept for late stats/packets
        self.expectations = {}  # parent fid -> number of predictions made
        self.stats = Counter()
        self.engine = StatsEngine()
        self.session_counter = None
        self._seq = 0
        fabric.attach(self.endpoint, self.receive)

    # --- counters ----------------------------------------------------------------------------

    def use_session_counter(self, counter):
        """Report the number of live sessions to accumulator ``counter``."""
        self.session_counter = counter
        self.engine.track(counter, threshold=self.report_threshold, group=1)

    def send_counter_records(self, records):
        if records:
            self._seq = (self._seq + 1) & 0xFFFF
            self.fabric.send(self.endpoint, Message(MsgType.COUNTER_REQ, {"seq": self._seq},
                                                    dst=PPM_HW, records=records))

    def _bump_sessions(self, delta):
        if self.session_counter is None:
            return
        records = self.engine.bump(self.session_counter, delta)
        if self.engine.must_query(self.session_counter):
            # Non-conforming: the global sum must be read before deciding (patent FIG. 12).
            records.append(self.engine.query(self.session_counter))
            self.stats["counter_queries"] += 1
        self.send_counter_records(records)

    # --- fabric port -------------------------------------------------------------------------

    def receive(self, frame):
        msg = decode_or_count(frame, self.stats)
        if msg is None:
            return
        handler = self._handlers.get(msg.type)
        if handler is None:
            self.stats["unexpected"] += 1
            return
        handler(self, msg)

    def _on_owner(self, msg):
        fid, key = msg.body["fid"], FlowKey(**msg.body["key"])
        predicted = bool(msg.body["predict"])
        parent = msg.body["parent_fid"]
        refuse = self.rng.random() < self.refuse
        if predicted and parent not in self.expectations:
            refuse = True       # verification failed: we never predicted this child
            self.stats["predict_unverified"] += 1
        if refuse:
            self.stats["refused"] += 1
            self.fabric.send(self.endpoint, Message(MsgType.OWNER_REFUSE, {
                "fid": fid, "key": key._asdict(), "pkt": msg.body["pkt"]}, dst=PPM_HW, packet=msg.packet))
            return
        rev = reverse_key(key)
        sess = Session(next(_uids), self.endpoint, fid_parts(fid)[3], fid, key, rev, predicted, parent)
        self.live[sess.index] = sess
        self.fabric.send(self.endpoint, Message(MsgType.SESSION_BIND, {
            "fid": fid, "fwd_key": key._asdict(), "rev_key": rev._asdict(),
            "load": min(len(self.live), 0xFFFF), "pkt": msg.body["pkt"]}, dst=PPM_HW, packet=msg.packet))

    def _on_bind_ack(self, msg):
        sess = self.live.get(fid_parts(msg.body["fid"])[3])
        if sess is None or sess.state != "offered" or sess.fid != msg.body["fid"]:
            self.stats["stale_bind_ack"] += 1
            return
        sess.state = "bound"
        sess.rev_fid = msg.body["rev_fid"]
        if not sess.predicted:
            sess.decoder = self._decoder(sess.fwd_key)
        self.tracker.register_session(sess)
        self.stats["sessions"] += 1
        self._bump_sessions(+1)
        self._process(sess, msg, "predict" if sess.predicted else "ppm", direct=True)

    def _on_packet(self, msg):
        fid = msg.body["fid"]
        sess = self._session_of(fid)
        from_lft = msg.src != PPM_HW
        if sess is None:
            # Nobody here owns this flow: record it so the checker sees the misdelivery.
            self.stats["unknown_fid"] += 1
            self.tracker.delivered(msg.body["pkt"]["tag"], *self.endpoint, "lft" if from_lft else "ppm", None)
            return
        self._process(sess, msg, "lft" if from_lft else "ppm", direct=not from_lft)

    def _on_flow_stats(self, msg):
        sess = self._session_of(msg.body["fid"])
        if sess is None:
            self.stats["stats_unknown_fid"] += 1
            return
        sess.stats_packets += msg.body["packets"]
        sess.stats_bytes += msg.body["bytes"]
        sess.stats_messages += 1

    def _on_error(self, msg):
        reason = msg.body["reason"]
        self.stats[f"error_{getattr(reason, 'name', reason)}"] += 1
        sess = self.live.get(fid_parts(msg.body["fid"])[3])
        if sess is None or sess.state != "offered" or sess.fid != msg.body["fid"]:
            return
        # Our offer is void. The packet went back to the PPM with SESSION_BIND, and the PPM
        # decides its fate (dispatched again, or dropped with a counted reason), not us.
        del self.live[sess.index]

    def _on_counter_reply(self, msg):
        for record in msg.records:
            self.send_counter_records(self.engine.on_reply(record))

    def _on_counter_notify(self, msg):
        self.stats[f"notify_{getattr(msg.body['state'], 'name', msg.body['state'])}"] += 1
        self.send_counter_records(self.engine.on_notify(msg.body["counter"], msg.body["state"]))

    _handlers = {
        MsgType.OWNER: _on_owner,
        MsgType.BIND_ACK: _on_bind_ack,
        MsgType.PACKET: _on_packet,
        MsgType.FLOW_STATS: _on_flow_stats,
        MsgType.ERROR: _on_error,
        MsgType.COUNTER_REPLY: _on_counter_reply,
        MsgType.COUNTER_NOTIFY: _on_counter_notify,
    }

    # --- packet processing -------------------------------------------------------------------

    def _decoder(self, key):
        cls = decoder_for(key)
        return cls(key) if cls is not None else None

    def _session_of(self, fid):
        index = fid_parts(fid)[3]
        sess = self.live.get(index)
        if sess is not None and fid in (sess.fid, sess.rev_fid) and sess.state == "bound":
            return sess
        for old in reversed(self.closed.get(index, [])):
            if fid in (old.fid, old.rev_fid):
                return old
        return None

    def _process(self, sess, msg, path, *, direct):
        tag, frame = msg.body["pkt"]["tag"], msg.packet
        self.tracker.delivered(tag, *self.endpoint, path, sess.uid)
        sess.delivered.append(tag)
        if direct:
            sess.direct_packets += 1
            sess.direct_bytes += len(frame)
        if sess.state == "closed":
            self.stats["after_close"] += 1
            return
        now = self.clock.now
        sess.last_seen = now
        forward = fid_parts(msg.body["fid"])[2] == 0
        parsed = parse_frame(frame)
        if parsed.key is not None and sess.fwd_key.proto == IPPROTO_TCP and parsed.frag is None:
            if parsed.tcp_flags & TCP_RST:
                sess.close_at = now + self.timeouts.close_linger
            elif parsed.tcp_flags & TCP_FIN:
                sess.fins |= 1 if forward else 2
                if sess.fins == 3:
                    sess.close_at = now + self.timeouts.close_linger
        if sess.decoder is not None and parsed.key is not None:
            for prediction in sess.decoder.inspect(parsed.key, parsed.payload, forward):
                self.expectations[sess.fid] = self.expectations.get(sess.fid, 0) + 1
                self.stats["predictions"] += 1
                self.fabric.send(self.endpoint, Message(MsgType.PREDICT_ADD, {
                    "parent_fid": sess.fid, "key": prediction.key._asdict(),
                    "care": care_mask(prediction)._asdict(), "timeout": 0}, dst=PPM_HW))

    # --- time --------------------------------------------------------------------------------

    def _idle_limit(self, sess):
        proto = sess.fwd_key.proto
        if proto == IPPROTO_TCP:
            return self.timeouts.tcp_idle
        if proto == IPPROTO_UDP:
            return self.timeouts.udp_idle
        return self.timeouts.other_idle

    def tick(self):
        """Tear down sessions whose close linger or idle timeout has passed."""
        now = self.clock.now
        for sess in [s for s in self.live.values() if s.state == "bound"]:
            if (sess.close_at is not None and now >= sess.close_at) or \
                    now - sess.last_seen > self._idle_limit(sess):
                self.teardown(sess)

    def teardown(self, sess):
        self.fabric.send(self.endpoint, Message(MsgType.SESSION_TEARDOWN, {
            "fid": sess.fid, "fwd_key": sess.fwd_key._asdict(), "rev_key": sess.rev_key._asdict()},
            dst=PPM_HW))
        sess.state = "closed"
        sess.closed_at_index = self.clock.index
        del self.live[sess.index]
        self.closed.setdefault(sess.index, []).append(sess)
        self.expectations.pop(sess.fid, None)
        self.stats["teardowns"] += 1
        self._bump_sessions(-1)

    def drain(self):
        """Tear down every bound session (end of the run)."""
        for sess in [s for s in self.live.values() if s.state == "bound"]:
            self.teardown(sess)

    def flush_counters(self):
        self.send_counter_records(self.engine.flush())
