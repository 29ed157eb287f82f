"""The invariants of SPEC section 5, judged on a finished :class:`sim.model.device.Device`.

Each check reads the scoreboard (:class:`sim.model.tracker.Tracker`) and the tables; none
trusts a component's own verdict about itself. A violation names its invariant and, where
there is one, the packet index in the capture.
"""

from dataclasses import dataclass

from hdl.wire import CounterStatus
from sim.packets.parse import reverse_key
from sim.wire import fid_owner


__all__ = ["Violation", "check", "INVARIANTS"]

INVARIANTS = {
    1: "every packet delivered exactly once, to its session's owner; no split sessions",
    2: "a predicted child is owned by its parent's owner",
    3: "after teardown no table entry remains and the owner's tally equals what was received",
    4: "an LFT holds only flows that arrived at its card",
    5: "an accumulator's sum equals the sum of the latest values reported",
    6: "exactly one notification per threshold crossing, with hysteresis",
}


@dataclass(frozen=True)
class Violation:
    invariant: int
    index: int          # packet index, or None
    text: str

    def as_dict(self):
        return {"invariant": self.invariant, "index": self.index, "text": self.text}


def _conversation(key):
    return frozenset((key, reverse_key(key)))


def check_deliveries(tracker):
    """Invariants 1 and 2."""
    out = []
    sessions = tracker.sessions
    active = {}          # conversation -> session uid that last carried a packet of it
    for index in sorted(tracker.packets):
        fate = tracker.packets[index]
        if fate.drop is not None:
            if fate.deliveries:
                out.append(Violation(1, index, f"dropped ({fate.drop}) and also delivered"))
            continue
        if not fate.deliveries:
            out.append(Violation(1, index, "lost: neither delivered nor dropped with a reason"))
            continue
        if len(fate.deliveries) > 1:
            out.append(Violation(1, index, f"duplicated: delivered {len(fate.deliveries)} times"))
        slot, pp, path, uid = fate.deliveries[0]
        sess = sessions.get(uid)
        if sess is None:
            out.append(Violation(1, index, f"delivered to PP {slot}.{pp}, which has no session for it"))
            continue
        if sess.owner != (slot, pp):
            out.append(Violation(1, index, f"delivered to PP {slot}.{pp}, session owned by {sess.owner}"))
        if fate.key not in (sess.fwd_key, sess.rev_key) and not _placed_fragment(fate.key, sess):
            out.append(Violation(1, index, f"key {fate.key} delivered as session {sess.fwd_key}"))
        conv = _conversation(sess.fwd_key)
        previous = active.get(conv)
        if previous is not None and previous != uid:
            old = sessions[previous]
            if old.owner != sess.owner and (old.closed_at_index is None or old.closed_at_index > index):
                out.append(Violation(1, index, f"split session: {sess.fwd_key} owned by {old.owner} "
                                               f"and {sess.owner} at once"))
        active[conv] = uid
    for sess in sessions.values():
        if sess.predicted and sess.owner != fid_owner(sess.parent_fid):
            out.append(Violation(2, sess.delivered[0] if sess.delivered else None,
                                 f"predicted child {sess.fwd_key} owned by {sess.owner}, parent by "
                                 f"{fid_owner(sess.parent_fid)}"))
    return out


def _placed_fragment(key, sess):
    """A later fragment enters with a port-less key (its card had not seen the head) and the
    PPM places it in its datagram's session: same addresses and zone, ports 0 at ingress."""
    return key is not None and key.src_port == 0 and key.dst_port == 0 and any(
        (key.src_addr, key.dst_addr, key.zone) == (k.src_addr, k.dst_addr, k.zone)
        for k in (sess.fwd_key, sess.rev_key))


def check_teardown(device):
    """Invariant 3 (run after :meth:`Device.finish`)."""
    out = []
    leftovers = leftover_entries(device)
    for table, count in leftovers.items():
        if count:
            out.append(Violation(3, None, f"{count} {table} entries left after drain"))
    received = {}
    for fate in device.tracker.packets.values():
        for _, _, _, uid in fate.deliveries[:1]:
            packets, nbytes = received.get(uid, (0, 0))
            received[uid] = (packets + 1, nbytes + fate.length)
    for uid, sess in device.tracker.sessions.items():
        if sess.state != "closed":
            out.append(Violation(3, None, f"session {sess.fwd_key} still {sess.state} after drain"))
            continue
        expected = received.get(uid, (0, 0))
        if sess.tally != expected:
            out.append(Violation(3, sess.delivered[0] if sess.delivered else None,
                                 f"session {sess.fwd_key}: owner tallied {sess.tally} "
                                 f"(packets, bytes), device received {expected}"))
    return out


def leftover_entries(device):
    return {
        "gft": len(device.ppm.gft),
        "predict": len(device.ppm.predict),
        "lft": sum(len(fe.lft) for fe in device.fes),
        "ppm_sessions": len(device.ppm.sessions),
        "pp_sessions": sum(len(pp.live) for pp in device.pps),
        "fabric_frames": device.fabric.pending(),
    }


def check_counters(device, high, low):
    """Invariants 5 (exactly, after the final flush) and 6."""
    out = []
    counter = device.session_counter
    total = device.ppm.counters.sum_of(counter)
    reported = sum(pp.engine.reported(counter) for pp in device.pps)
    if total != reported:
        out.append(Violation(5, None, f"sum {total} != sum of latest reports {reported}"))
    expected, state = [], CounterStatus.CONFORMING
    for value in device.ppm.sum_trace.get(counter, []):
        if state == CounterStatus.CONFORMING and value > high:
            state = CounterStatus.NON_CONFORMING
            expected.append(state)
        elif state == CounterStatus.NON_CONFORMING and value < low:
            state = CounterStatus.CONFORMING
            expected.append(state)
    sent = [n.state for n in device.ppm.notifications if n.counter == counter]
    if sent != expected:
        out.append(Violation(6, None, f"notifications {[s.name for s in sent]} but the sum "
                                      f"crossed {[s.name for s in expected]}"))
    return out


def check(device):
    """Every invariant; an empty list when the run was correct."""
    out = [Violation(inv, index, text) for inv, index, text in device.live_violations]
    out += check_deliveries(device.tracker)
    out += check_teardown(device)
    out += check_counters(device, device.counter_high, device.counter_low)
    return out
