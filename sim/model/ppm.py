"""Golden model of PPM-HW: the message processor around the GFT, predict table and counters.

Message flows (SPEC section 4) and the rules this model fixes where the SPEC is silent:

* **Session table.** Every session has an index (the FID's ``index``) allocated from a FIFO free
  list when its first packet misses; the session record (forward/reverse key, owner, state,
  packets held) is read by index. In hardware this is a RAM indexed by FID index: it is what
  makes "read by FID" possible while GFT entries move.
* **Tentative flows hold their packets.** The first packet rides with OWNER; later packets of a
  tentative flow wait in the session's bounded queue (``max_pending``; overflow is a counted
  drop ``pending_full``) and go to the owner, in order, right after BIND_ACK.
* **Refusal.** OWNER_REFUSE returns the packet; PPM-SW is asked again with the refuser named, up
  to ``max_attempts`` offers, then the session's packets are dropped as ``no_owner``.
* **Reverse takeover.** If the reverse key of a SESSION_BIND is a *tentative* flow (its first
  packet raced the bind), that flow joins the binding session: its held packets go to this
  owner and its own offer becomes stale. A stale SESSION_BIND/OWNER_REFUSE gets ERROR STALE and
  its packet is dispatched again by key, so it still reaches the owner. A reverse key that is
  *bound* to another session is refused (KEY_CONFLICT) and nothing changes.
* **Authorisation.** The fabric stamps the sender. Only the offered owner may bind or refuse;
  only the bound owner may tear down or add predictions for a session; only PPM-SW may answer
  ASSIGN_REQ; FLOW_UNKNOWN is accepted only from flow engines. Anything else: ERROR, no change.
* **Teardown** deletes both GFT entries, multicasts FLOW_DELETE to the union of their aware
  masks, drops the session's predict entries, frees the index.
* **Fragments.** Every first fragment comes here (``FLOW_UNKNOWN.frag.kind = FIRST``) and its
  ports are remembered device-wide; a later fragment a card could not place (``UNPLACED``) is
  keyed from that table, or dropped as ``frag_unmatched`` when its head was never seen.
* **Aging.** Tentative entries older than the timeout are freed; their held packets are dropped
  as ``tentative_timeout`` and the offered owner gets ERROR TIMEOUT.
"""

from collections import Counter, deque
from dataclasses import dataclass, field

from types import SimpleNamespace

from hdl.wire import MsgType, ErrorCode, FragKind, Unit
from sim.flowkey import FlowKey
from sim.packets.fragments import FragmentTable
from sim.packets.parse import Frag
from sim.wire import (Message, PPM_HW, PPM_SW, WireError, decode, fe, make_fid, fid_parts,
                      fid_owner)

from .counters import CounterBanks
from .gft import EntryState, GlobalFlowTable, TableFull
from .predict import PredictFull, PredictTable


__all__ = ["PpmHw", "SessionRecord"]

GFT_TICKS_PER_S = 1000     # GFT timestamps count milliseconds
COUNTER_TICKS_PER_S = 1 << 20


@dataclass
class Held:
    """A packet the PPM holds or has in flight: its key, packet reference and bytes."""
    key: FlowKey
    pkt: dict
    frame: bytes


@dataclass
class SessionRecord:
    index: int
    fwd_key: FlowKey
    state: str                       # 'assigning' | 'offered' | 'bound'
    owner: tuple = None
    rev_key: FlowKey = None
    predict: bool = False
    parent_fid: int = 0
    attempts: int = 0
    ingress_slot: int = 0
    pending: deque = field(default_factory=deque)

    @property
    def fid(self):
        slot, pp = self.owner or (0, 0)
        return make_fid(slot, pp, self.index, 0)

    @property
    def rev_fid(self):
        slot, pp = self.owner or (0, 0)
        return make_fid(slot, pp, self.index, 1)


class PpmHw:
    """Parameters: ``fabric``, ``tracker``, ``topology`` (dict slot -> number of PPs, covering
    packet processing cards and resource cards), ``clock`` (callable giving seconds); keyword-only
    table sizes and limits (see the constructor)."""

    def __init__(self, fabric, tracker, topology, clock, *, gft=None, predict=None, counters=None,
                 max_sessions=1 << 16, max_pending=32, max_attempts=3):
        self.fabric = fabric
        self.tracker = tracker
        self.topology = dict(topology)
        self.clock = clock
        self.gft = GlobalFlowTable() if gft is None else gft
        self.frags = FragmentTable(capacity=1024, timeout=30.0)
        self._scan_cursor = 0
        self._last_scan = None
        self.predict = PredictTable() if predict is None else predict
        self.pp_index = {}
        for slot in sorted(self.topology):
            for pp in range(self.topology[slot]):
                self.pp_index[(slot, pp)] = len(self.pp_index)
        self.counters = CounterBanks(max_pps=max(1, len(self.pp_index))) if counters is None else counters
        if not 2 <= max_sessions <= 1 << 21:
            raise ValueError(f"max_sessions must be from 2 to 2**21 (the FID index), not {max_sessions!r}")
        self.free = deque(range(1, max_sessions))   # index 0 is never used: FID 0 means 'none'
        self.sessions = {}
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self.loads = {}              # (slot, pp) -> last reported load: PPM-SW reads it (CSR)
        self.load_reports = Counter()
        self.stats = Counter()
        self.errors = Counter()
        self.sum_trace = {}          # counter -> list of sums after every operation on it
        self.notifications = []      # Notification objects, in the order sent
        fabric.attach(PPM_HW, self.receive)

    # --- helpers -----------------------------------------------------------------------------

    def _send(self, msg):
        self.fabric.send(PPM_HW, msg)

    def _error(self, dst, reason, orig_type=0, fid=0, detail=0):
        self.errors[reason.name] += 1
        self._send(Message(MsgType.ERROR, {"reason": reason, "orig_type": int(orig_type), "fid": fid,
                                           "detail": detail}, dst=dst))

    def _gft_now(self):
        return int(self.clock() * GFT_TICKS_PER_S) & ((1 << self.gft.timestamp_bits) - 1)

    def _drop(self, held, reason):
        self.stats[f"drop_{reason}"] += 1
        self.tracker.dropped(held.pkt["tag"], reason)

    def _alloc(self):
        return self.free.popleft() if self.free else None

    def _release(self, sess):
        """Free a session that never bound (or was torn down): GFT entries of this index,
        the index itself."""
        for key in (sess.fwd_key, sess.rev_key):
            if key is None:
                continue
            entry = self.gft.lookup(key)
            if entry is not None and fid_parts(entry.fid)[3] == sess.index:
                self.gft.delete(key)
        del self.sessions[sess.index]
        self.free.append(sess.index)

    def _fail(self, sess, reason):
        for held in sess.pending:
            self._drop(held, reason)
        sess.pending.clear()
        self._release(sess)

    def _valid_pp(self, ep):
        return ep in self.pp_index

    # --- fabric port -------------------------------------------------------------------------

    def receive(self, frame):
        try:
            msg = decode(frame)
        except WireError as err:
            self.stats["bad_frames"] += 1
            src = _source_of(frame)
            if src is not None:
                self._error(src, err.reason, err.msg_type)
            return
        handler = self._handlers.get(msg.type)
        if handler is None:
            self._error(msg.src, ErrorCode.UNKNOWN_TYPE, msg.type.value)
            return
        self.stats[f"rx_{msg.type.name}"] += 1
        handler(self, msg)

    # --- FLOW_UNKNOWN ------------------------------------------------------------------------

    def _on_flow_unknown(self, msg):
        if msg.src[1] != Unit.FE.value or msg.src[0] not in self.topology:
            self._error(msg.src, ErrorCode.NOT_OWNER, msg.type.value)
            return
        key = FlowKey(**msg.body["key"])
        frag = msg.body["frag"]
        learn_slot = msg.src[0]
        if frag["kind"] in (FragKind.FIRST, FragKind.UNPLACED):
            parsed = SimpleNamespace(key=key, frag=Frag(frag["ident"], frag["offset"], True, frag["proto"]))
            resolved = self.frags.resolve(parsed, self.clock())
            if resolved.status == "unmatched":
                self._drop(Held(key, msg.body["pkt"], msg.packet), "frag_unmatched")
                return
            if resolved.status == "matched":
                # The card saw only the port-less tail: teaching it the full key would put a
                # flow in its LFT that never arrived there (invariant 4).
                key, learn_slot = resolved.key, None
        elif frag["kind"] != FragKind.NONE:
            self._error(msg.src, ErrorCode.MALFORMED, msg.type.value)
            return
        self._dispatch(Held(key, msg.body["pkt"], msg.packet), learn_slot=learn_slot)

    def _dispatch(self, held, learn_slot=None):
        """Route one packet by its key: known flow -> owner; tentative -> hold; new -> assign.
        ``learn_slot`` is the card whose LFT missed (None for packets the PPM re-dispatches)."""
        entry = self.gft.lookup(held.key)
        if entry is not None:
            sess = self.sessions[fid_parts(entry.fid)[3]]
            if entry.state == EntryState.BOUND:
                if learn_slot is not None and not entry.aware >> learn_slot & 1:
                    entry.aware |= 1 << learn_slot
                    self._send(Message(MsgType.FLOW_ADD, {"key": held.key._asdict(), "fid": entry.fid},
                                       dst=fe(learn_slot)))
                self._send(Message(MsgType.PACKET, {"fid": entry.fid, "pkt": held.pkt},
                                   dst=fid_owner(entry.fid), packet=held.frame))
                self.stats["gft_hits"] += 1
            else:
                self._hold(sess, held)
            return
        match = self.predict.match(held.key, self.clock())
        parent = self.sessions.get(fid_parts(match.parent_fid)[3]) if match else None
        if parent is not None and (parent.state != "bound" or parent.fid != match.parent_fid):
            parent = None      # the parent went away since the prediction: assign normally
        index = self._alloc()
        if index is None:
            self._drop(held, "table_full")
            return
        sess = SessionRecord(index, held.key, "assigning", ingress_slot=held.pkt["ingress_slot"])
        if parent is not None:
            sess.owner, sess.predict, sess.parent_fid, sess.state = parent.owner, True, parent.fid, "offered"
        try:
            self.gft.insert(held.key, fid=sess.fid, state=EntryState.TENTATIVE,
                            timestamp=self._gft_now(), predict=sess.predict)
        except TableFull:
            self.free.appendleft(index)
            self._drop(held, "table_full")
            return
        self.sessions[index] = sess
        sess.pending.append(held)
        if sess.predict:
            self.stats["predict_hits"] += 1
            self._offer(sess)
        else:
            self._ask_software(sess)

    def _hold(self, sess, held):
        if len(sess.pending) >= self.max_pending:
            self._drop(held, "pending_full")
            return
        sess.pending.append(held)
        self.stats["held"] += 1

    def _ask_software(self, sess, refused_by=(0, 0)):
        sess.state = "assigning"
        self._send(Message(MsgType.ASSIGN_REQ, {
            "fid": sess.fid, "key": sess.fwd_key._asdict(), "ingress_slot": sess.ingress_slot,
            "attempt": sess.attempts, "refused_by": {"slot": refused_by[0], "unit": refused_by[1]}},
            dst=PPM_SW))

    def _offer(self, sess):
        """OWNER to the chosen owner with the oldest held packet."""
        sess.state = "offered"
        self.gft.update(sess.fwd_key, fid=sess.fid, predict=sess.predict)
        held = sess.pending.popleft()
        self._send(Message(MsgType.OWNER, {
            "fid": sess.fid, "predict": int(sess.predict), "parent_fid": sess.parent_fid,
            "key": sess.fwd_key._asdict(), "pkt": held.pkt}, dst=sess.owner, packet=held.frame))

    # --- PPM-SW answer -----------------------------------------------------------------------

    def _on_assign_resp(self, msg):
        if msg.src != PPM_SW:
            self._error(msg.src, ErrorCode.NOT_OWNER, msg.type.value)
            return
        fid = msg.body["fid"]
        sess = self.sessions.get(fid_parts(fid)[3])
        if sess is None or sess.state != "assigning" or sess.fid != fid:
            self._error(msg.src, ErrorCode.STALE, msg.type.value, fid)
            return
        owner = (msg.body["owner"]["slot"], msg.body["owner"]["unit"])
        if not msg.body["ok"]:
            self._fail(sess, "no_owner")
            return
        if not self._valid_pp(owner):
            self._error(msg.src, ErrorCode.OUT_OF_RANGE, msg.type.value, fid)
            self._fail(sess, "no_owner")
            return
        sess.owner = owner
        self._offer(sess)

    # --- owner's answers ---------------------------------------------------------------------

    def _offered_session(self, msg):
        """The session a SESSION_BIND/OWNER_REFUSE answers, or None after replying ERROR. A
        stale answer's packet is dispatched again by its key, so it still reaches the owner."""
        fid = msg.body["fid"]
        sess = self.sessions.get(fid_parts(fid)[3])
        if sess is not None and sess.state == "offered" and sess.fid == fid:
            if msg.src == sess.owner:
                return sess
            self._error(msg.src, ErrorCode.NOT_OWNER, msg.type.value, fid)
            return None
        self._error(msg.src, ErrorCode.STALE, msg.type.value, fid)
        if self._valid_pp(msg.src) and msg.packet:
            key = msg.body.get("fwd_key", msg.body.get("key"))
            self.stats["redispatched"] += 1
            self._dispatch(Held(FlowKey(**key), msg.body["pkt"], msg.packet))
        return None

    def _on_owner_refuse(self, msg):
        sess = self._offered_session(msg)
        if sess is None:
            return
        sess.pending.appendleft(Held(sess.fwd_key, msg.body["pkt"], msg.packet))
        sess.attempts += 1
        self.stats["refusals"] += 1
        if sess.attempts >= self.max_attempts:
            self._fail(sess, "no_owner")
            return
        refused_by, sess.owner, sess.predict, sess.parent_fid = sess.owner, None, False, 0
        self.gft.update(sess.fwd_key, fid=sess.fid, predict=False)
        self._ask_software(sess, refused_by)

    def _on_session_bind(self, msg):
        sess = self._offered_session(msg)
        if sess is None:
            return
        fwd, rev = FlowKey(**msg.body["fwd_key"]), FlowKey(**msg.body["rev_key"])
        held_first = Held(sess.fwd_key, msg.body["pkt"], msg.packet)
        if fwd != sess.fwd_key:
            # The owner may name the reverse flow (NAT) but never rename the forward one.
            self._error(msg.src, ErrorCode.MALFORMED, msg.type.value, sess.fid)
            self._drop(held_first, "bad_bind")
            self._fail(sess, "bad_bind")
            return
        self.loads[msg.src] = msg.body["load"]
        self.load_reports[msg.src] += 1
        if rev != fwd:
            entry = self.gft.lookup(rev)
            if entry is None:
                try:
                    self.gft.insert(rev, fid=sess.rev_fid, state=EntryState.BOUND,
                                    timestamp=self._gft_now(), predict=sess.predict)
                except TableFull:
                    self._error(msg.src, ErrorCode.TABLE_FULL, msg.type.value, sess.fid)
                    self._drop(held_first, "table_full")
                    self._fail(sess, "table_full")
                    return
            elif entry.state == EntryState.TENTATIVE:
                other = self.sessions[fid_parts(entry.fid)[3]]
                self.gft.delete(rev)
                self.gft.insert(rev, fid=sess.rev_fid, state=EntryState.BOUND,
                                timestamp=self._gft_now(), predict=sess.predict)
                sess.pending.extend(other.pending)   # they follow the first packet, in order
                other.pending.clear()
                del self.sessions[other.index]
                self.free.append(other.index)
                self.stats["reverse_takeovers"] += 1
            else:
                self._error(msg.src, ErrorCode.KEY_CONFLICT, msg.type.value, sess.fid)
                self._drop(held_first, "key_conflict")
                self._fail(sess, "key_conflict")
                return
        sess.rev_key = rev
        sess.state = "bound"
        if sess.predict:
            self.predict.remove_matching(rev, sess.parent_fid)
        self.gft.update(fwd, state=EntryState.BOUND, timestamp=self._gft_now())
        self.stats["binds"] += 1
        self._send(Message(MsgType.BIND_ACK, {"fid": sess.fid, "rev_fid": sess.rev_fid,
                                              "pkt": held_first.pkt},
                           dst=sess.owner, packet=held_first.frame))
        while sess.pending:
            held = sess.pending.popleft()
            fid = sess.fid if held.key == fwd else sess.rev_fid
            self._send(Message(MsgType.PACKET, {"fid": fid, "pkt": held.pkt}, dst=sess.owner,
                               packet=held.frame))

    # --- teardown and predict ----------------------------------------------------------------

    def _bound_session_of(self, msg, fid):
        sess = self.sessions.get(fid_parts(fid)[3])
        if sess is None or sess.state != "bound" or fid not in (sess.fid, sess.rev_fid):
            self._error(msg.src, ErrorCode.NO_SUCH_FLOW, msg.type.value, fid)
            return None
        if msg.src != sess.owner:
            self._error(msg.src, ErrorCode.NOT_OWNER, msg.type.value, fid)
            return None
        return sess

    def _on_teardown(self, msg):
        sess = self._bound_session_of(msg, msg.body["fid"])
        if sess is None:
            return
        if (FlowKey(**msg.body["fwd_key"]), FlowKey(**msg.body["rev_key"])) != (sess.fwd_key, sess.rev_key):
            self._error(msg.src, ErrorCode.MALFORMED, msg.type.value, sess.fid)
            return
        deletes = []
        for key, fid in ((sess.fwd_key, sess.fid), (sess.rev_key, sess.rev_fid)):
            entry = self.gft.lookup(key)
            if entry is not None and entry.fid == fid:
                deletes.append((key, fid, entry.aware))
                self.gft.delete(key)
        aware = 0
        for _, _, mask in deletes:
            aware |= mask
        if aware:
            for key, fid, _ in deletes:
                self._send(Message(MsgType.FLOW_DELETE, {"key": key._asdict(), "fid": fid}, mcast=True,
                                   slot_mask=aware, unit_mask=1 << Unit.FE.value))
        self.predict.remove_parent(sess.fid)
        del self.sessions[sess.index]
        self.free.append(sess.index)
        self.stats["teardowns"] += 1

    def _on_predict_add(self, msg):
        sess = self._bound_session_of(msg, msg.body["parent_fid"])
        if sess is None:
            return
        care = FlowKey(**msg.body["care"])
        key = FlowKey(*(k & c for k, c in zip(FlowKey(**msg.body["key"]), care)))
        timeout = msg.body["timeout"] or None
        try:
            self.predict.add(key, care, sess.fid, self.clock(), timeout)
        except PredictFull:
            self._error(msg.src, ErrorCode.PREDICT_FULL, msg.type.value, sess.fid)
            return
        self.stats["predict_adds"] += 1

    # --- counters ----------------------------------------------------------------------------

    def _on_counter_req(self, msg):
        pp = self.pp_index.get(msg.src)
        if pp is None:
            self._error(msg.src, ErrorCode.NOT_OWNER, msg.type.value)
            return
        now = int(self.clock() * COUNTER_TICKS_PER_S)
        replies, notes = [], []
        for record in msg.records:
            reply, n = self.counters.process(pp, record, now)
            replies.append(reply)
            notes += n
            try:
                total = self.counters.sum_of(reply["counter"])
            except KeyError:
                continue     # a rate counter, or a refused record naming no live accumulator
            self.sum_trace.setdefault(reply["counter"], []).append(total)
        self._send(Message(MsgType.COUNTER_REPLY, {"seq": msg.body["seq"]}, dst=msg.src,
                           records=replies))
        for note in notes:
            self.notifications.append(note)
            by_slot = {}
            for ep, i in self.pp_index.items():
                if i in note.members:
                    by_slot[ep[0]] = by_slot.get(ep[0], 0) | 1 << ep[1]
            for slot, units in sorted(by_slot.items()):
                self._send(Message(MsgType.COUNTER_NOTIFY, note.body(), mcast=True,
                                   slot_mask=1 << slot, unit_mask=units))

    # --- time --------------------------------------------------------------------------------

    def _aging_scan(self):
        """The background scan: buckets in turn, as many as time since the last tick allows,
        so one full sweep takes half the tentative timeout and an entry is freed at most that
        late. The stash is checked each time the scan wraps to bucket 0."""
        now_s = self.clock()
        elapsed = now_s - self._last_scan if self._last_scan is not None else 0.0
        self._last_scan = now_s
        sweep_s = self.gft.tentative_timeout / GFT_TICKS_PER_S / 2
        count = min(self.gft.buckets, -(-int(self.gft.buckets * elapsed * 1e6) // int(sweep_s * 1e6)))
        now, expired = self._gft_now(), []
        for _ in range(count):
            if self._scan_cursor == 0:
                expired += self.gft.age_stash(now)
            expired += self.gft.age_bucket(self._scan_cursor, now)
            self._scan_cursor = (self._scan_cursor + 1) % self.gft.buckets
        return expired

    def tick(self):
        """Aging: tentative flows past the timeout, then expired predictions."""
        for entry in self._aging_scan():
            sess = self.sessions.get(fid_parts(entry.fid)[3])
            if sess is None or sess.state == "bound":
                continue
            self.stats["tentative_timeouts"] += 1
            if sess.owner is not None:
                self._error(sess.owner, ErrorCode.TIMEOUT, MsgType.OWNER.value, sess.fid)
            self._fail(sess, "tentative_timeout")
        self.predict.expire(self.clock())

    _handlers = {
        MsgType.FLOW_UNKNOWN: _on_flow_unknown,
        MsgType.ASSIGN_RESP: _on_assign_resp,
        MsgType.OWNER_REFUSE: _on_owner_refuse,
        MsgType.SESSION_BIND: _on_session_bind,
        MsgType.SESSION_TEARDOWN: _on_teardown,
        MsgType.PREDICT_ADD: _on_predict_add,
        MsgType.COUNTER_REQ: _on_counter_req,
    }


def _source_of(frame):
    """The fabric-stamped source of a frame that failed to decode (None if not even a header)."""
    from hdl.wire import FRAME_HEADER
    if len(frame) < FRAME_HEADER.nbytes:
        return None
    hdr = FRAME_HEADER.unpack(int.from_bytes(frame[:FRAME_HEADER.nbytes], "big"))
    return (hdr["src"]["slot"], hdr["src"]["unit"])
