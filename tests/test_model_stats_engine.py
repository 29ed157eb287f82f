"""PP-side stats engine model (sim/model/stats_engine.py), alone and against the counter banks.

Random tests print their seed; replay one with ``SEED=<n> pytest ...``.
"""


import pytest

from hdl.wire import COUNTER_RECORD, CounterOp, CounterStatus
from sim.model.counters import CounterBanks, request
from sim.model.stats_engine import StatsEngine
from tests.seeds import seeded_rng


NC = CounterStatus.NON_CONFORMING
C = CounterStatus.CONFORMING


def engine(threshold=10, counter=7, group=3):
    e = StatsEngine()
    e.track(counter, threshold=threshold, group=group)
    return e


def sets(records):
    """[(counter, value)] of SET records, checking they are well-formed requests."""
    for r in records:
        COUNTER_RECORD.pack(r)
        assert r["op"] is CounterOp.SET and r["status"] is CounterStatus.REQUEST
    return [(r["counter"], r["value"]) for r in records]


# --- reporting -----------------------------------------------------------------------------------

def test_conforming_reports_only_once_the_local_threshold_is_reached():
    e = engine(threshold=10)
    assert [sets(e.bump(7, 3)) for _ in range(3)] == [[], [], []]
    assert sets(e.bump(7, 1)) == [(7, 10)]
    assert sets(e.bump(7, 9)) == []
    assert sets(e.bump(7, 1)) == [(7, 20)]


def test_conforming_reports_a_fall_by_the_threshold_too():
    e = engine(threshold=5)
    e.bump(7, 20)
    assert sets(e.bump(7, -4)) == []
    assert sets(e.bump(7, -1)) == [(7, 15)]


def test_records_carry_the_tracked_group():
    e = engine(threshold=1, group=0x55)
    (record,) = e.bump(7, 1)
    assert record["group"] == 0x55 and e.query(7)["group"] == 0x55


def test_non_conforming_reports_every_change():
    e = engine(threshold=10)
    e.on_notify(7, NC)
    assert [sets(e.bump(7, d)) for d in (1, 2, -1, 0)] == [[(7, 1)], [(7, 3)], [(7, 2)], []]


def test_notification_sets_the_mode_and_must_query():
    e = engine()
    assert not e.must_query(7) and e.max_lag(7) == 9
    e.on_notify(7, NC)
    assert e.must_query(7) and e.max_lag(7) == 0
    e.on_notify(7, C.value)           # a raw code off the wire works too
    assert not e.must_query(7)


def test_entering_non_conforming_reports_the_stale_value_at_once():
    e = engine(threshold=10)
    e.bump(7, 4)
    assert sets(e.on_notify(7, NC)) == [(7, 4)]
    assert sets(e.on_notify(7, NC)) == []       # a repeated notification sends nothing new


def test_back_to_conforming_resumes_threshold_reporting():
    e = engine(threshold=10)
    e.on_notify(7, NC)
    e.bump(7, 5)
    e.on_notify(7, C)
    assert sets(e.bump(7, 9)) == [] and sets(e.bump(7, 1)) == [(7, 15)]


def test_flush_reports_only_stale_counters_then_nothing():
    e = StatsEngine()
    for counter in (1, 2, 3):
        e.track(counter, threshold=100)
    e.bump(1, 5)
    e.bump(3, 2)
    e.bump(2, 1)
    e.bump(2, -1)                    # back to what the PPM holds: not stale
    assert sorted(sets(e.flush())) == [(1, 5), (3, 2)]
    assert e.flush() == []


def test_forced_flush_reports_every_counter():
    e = StatsEngine()
    e.track(1, threshold=100)
    e.track(2, threshold=100, value=4, reported=4)
    assert sorted(sets(e.flush(force=True))) == [(1, 0), (2, 4)]


def test_notifications_for_unknown_counters_or_states_are_ignored_and_counted():
    e = engine()
    assert e.on_notify(99, NC) == [] and e.on_notify(7, 0x42) == []
    assert e.on_notify(7, CounterStatus.ACK) == []
    assert e.ignored == 3 and not e.must_query(7)


def test_bump_out_of_range_raises_and_changes_nothing():
    e = engine()
    e.bump(7, 3)
    with pytest.raises(ValueError):
        e.bump(7, -4)
    with pytest.raises(ValueError):
        e.bump(7, 1 << 64)
    assert e.value(7) == 3 and e.reported(7) == 0
    with pytest.raises(KeyError):
        e.bump(8, 1)


@pytest.mark.parametrize("threshold", [0, -1, 1.5, True])
def test_track_rejects_a_bad_threshold(threshold):
    with pytest.raises(ValueError):
        StatsEngine().track(1, threshold=threshold)


# --- against the counter banks -------------------------------------------------------------------

def alloc(banks, pp, high, low):
    reply, _ = banks.process(pp, request(CounterOp.ALLOC_ACC, value=high, param=low))
    return reply["value"]


def test_reply_state_puts_a_late_joiner_in_non_conforming_mode():
    banks = CounterBanks(accumulators=2, max_pps=4)
    c = alloc(banks, 0, 10, 5)
    banks.process(0, request(CounterOp.SET, c, 20))        # notification goes to PP 0 only
    late = engine(threshold=100, counter=c)
    late.bump(c, 1)
    reply, _ = banks.process(3, late.flush()[0])
    assert sets(late.on_reply(reply)) == [] and late.must_query(c)


def test_lost_report_is_corrected_by_the_next_report():
    banks = CounterBanks(accumulators=2, max_pps=4)
    c = alloc(banks, 0, 1000, 500)
    e = engine(threshold=5, counter=c)
    e.bump(c, 5)                     # this SET is lost on the fabric
    for record in e.bump(c, 5):
        banks.process(1, record)
    assert banks.sum_of(c) == 10 == e.value(c)


def test_restarted_engine_forced_flush_corrects_the_sum():
    banks = CounterBanks(accumulators=2, max_pps=4)
    c = alloc(banks, 0, 1000, 500)
    old = engine(threshold=1, counter=c)
    for record in old.bump(c, 30):
        banks.process(2, record)
    fresh = engine(threshold=10, counter=c)   # PP 2 restarted: local count back to 0
    for record in fresh.flush(force=True):
        banks.process(2, record)
    assert banks.sum_of(c) == 0


def test_random_system_lag_is_bounded_modes_agree_and_drain_is_exact():
    rng = seeded_rng()
    npp, high, low = 6, 300, 200
    banks = CounterBanks(accumulators=4, max_pps=npp)
    counters = [alloc(banks, 0, high, low) for _ in range(2)]
    engines = [StatsEngine() for _ in range(npp)]
    for pp, e in enumerate(engines):
        for c in counters:
            e.track(c, threshold=rng.randrange(1, 30))

    def send(pp, records):
        """Deliver one COUNTER_REQ and everything it causes (replies, notifications, and the
        records those make the engines send), in order, as a loss-free fabric would."""
        queue = [(pp, list(records))]
        while queue:
            src, batch = queue.pop(0)
            if not batch:
                continue
            replies, notes = banks.process_message(src, batch)
            for reply in replies:
                queue.append((src, engines[src].on_reply(reply)))
            for note in notes:
                for member in sorted(note.members):
                    queue.append((member, engines[member].on_notify(note.counter, note.state)))

    # Each counter's true total drifts towards a target that flips between above high and below
    # low, so the run crosses both thresholds many times.
    target = {c: high + 80 for c in counters}
    crossings = 0
    for _ in range(4000):
        pp, c = rng.randrange(npp), rng.choice(counters)
        e = engines[pp]
        total = sum(x.value(c) for x in engines)
        if (target[c] > high and total >= target[c]) or (target[c] < low and total <= target[c]):
            target[c] = low - 80 if target[c] > high else high + 80
        delta = rng.randrange(-12, 13) + (4 if target[c] > total else -4)
        if e.value(c) + delta < 0:
            delta = -e.value(c)
        before = banks.state_of(c)
        send(pp, e.bump(c, delta))
        crossings += banks.state_of(c) is not before
        for c2 in counters:
            members = banks.members_of(c2)
            for q, eq in enumerate(engines):
                # The PPM holds exactly what each engine last reported, and the engine's value
                # is within its mode's lag of it.
                assert banks.instances(c2).get(q, 0) == eq.reported(c2)
                assert abs(eq.value(c2) - eq.reported(c2)) <= eq.max_lag(c2)
                if q in members:                 # every member knows the counter's state
                    assert eq.mode(c2) is banks.state_of(c2)
    assert crossings >= 10, "the run should cross the thresholds"
    for pp, e in enumerate(engines):
        send(pp, e.flush())
    for c in counters:
        assert banks.sum_of(c) == sum(e.value(c) for e in engines)
    assert banks.check_sums() == []
