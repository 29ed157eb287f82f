"""Golden model of the PPM-HW counter banks (sim/model/counters.py).

Random tests print their seed; replay one with ``SEED=<n> pytest ...``.
"""


import pytest

from hdl.wire import COUNTER_RECORD, MESSAGES, CounterOp, CounterStatus, ErrorCode, MsgType
from sim.model.counters import (ACC_BANK, RATE_BANK, CounterBanks, counter_id, request,
                                split_id)
from tests.seeds import seeded_rng


NC = CounterStatus.NON_CONFORMING
C = CounterStatus.CONFORMING


def make_banks(**kwargs):
    params = dict(accumulators=4, rate_counters=2, max_pps=4, tick_hz=1000)
    params.update(kwargs)
    return CounterBanks(**params)


def ok(banks, pp, record, now=0):
    """Process a record that must succeed; return (reply, notifications)."""
    reply, notes = banks.process(pp, record, now)
    assert reply["status"] in (CounterStatus.ACK, CounterStatus.NACK), reply
    return reply, notes


def alloc_acc(banks, high, low, pp=0, group=0):
    reply, _ = ok(banks, pp, request(CounterOp.ALLOC_ACC, value=high, param=low, group=group))
    return reply["value"]


def alloc_rate(banks, size, fill, pp=0, now=0, group=0):
    reply, _ = ok(banks, pp, request(CounterOp.ALLOC_RATE, value=size, param=fill, group=group),
                  now)
    return reply["value"]


def set_(banks, pp, counter, value):
    return ok(banks, pp, request(CounterOp.SET, counter, value))


def query(banks, pp, counter, value=0, now=0):
    return ok(banks, pp, request(CounterOp.QUERY, counter, value), now)


# --- parameters and the id space ----------------------------------------------------------------

def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        CounterBanks(4)


@pytest.mark.parametrize("name, value, exc", [
    ("accumulators", -1, ValueError), ("accumulators", 1 << 15 | 1, ValueError),
    ("rate_counters", 1.5, TypeError), ("max_pps", 0, ValueError), ("max_pps", True, TypeError),
    ("sum_bits", 65, ValueError), ("tick_hz", 0, ValueError), ("ts_bits", 4, ValueError),
])
def test_bad_parameter_is_rejected(name, value, exc):
    with pytest.raises(exc):
        CounterBanks(**{name: value})


def test_top_id_bit_selects_the_bank():
    banks = make_banks()
    acc = alloc_acc(banks, 10, 5)
    rate = alloc_rate(banks, 10, 5)
    assert split_id(acc) == (ACC_BANK, 0) and acc == counter_id(ACC_BANK, 0) == 0
    assert split_id(rate) == (RATE_BANK, 0) and rate == counter_id(RATE_BANK, 0) == 0x8000


# --- accumulators: SET semantics -----------------------------------------------------------------

def test_set_replaces_the_instance_and_sum_is_sum_minus_old_plus_new():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    set_(banks, 0, c, 5)
    set_(banks, 1, c, 7)
    reply, _ = set_(banks, 0, c, 2)
    assert reply["value"] == banks.sum_of(c) == 9
    assert banks.instances(c) == {0: 2, 1: 7}


def test_lost_set_is_corrected_by_the_next_set():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    set_(banks, 1, c, 3)
    set_(banks, 0, c, 5)
    # PP 0's local value becomes 9, but that report is lost; the sum is stale, not wrong forever.
    assert banks.sum_of(c) == 8
    set_(banks, 0, c, 12)
    assert banks.sum_of(c) == 15 and banks.check_sums() == []


def test_restarted_pp_reporting_zero_corrects_the_sum():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    set_(banks, 0, c, 40)
    set_(banks, 2, c, 30)
    # PP 2 restarts: its local count is back to 0 and its first report says so.
    set_(banks, 2, c, 0)
    assert banks.sum_of(c) == 40
    set_(banks, 2, c, 4)
    assert banks.sum_of(c) == 44 and banks.instances(c) == {0: 40, 2: 4}


def test_inc_and_dec_adjust_the_instance_and_the_sum():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    ok(banks, 1, request(CounterOp.INC, c, 10))
    ok(banks, 2, request(CounterOp.INC, c, 4))
    reply, _ = ok(banks, 1, request(CounterOp.DEC, c, 3))
    assert reply["value"] == banks.sum_of(c) == 11
    assert banks.instances(c) == {0: 0, 1: 7, 2: 4}


def test_dec_saturates_the_instance_at_zero_and_leaves_other_pps_alone():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    set_(banks, 1, c, 10)
    set_(banks, 0, c, 3)
    reply, _ = ok(banks, 0, request(CounterOp.DEC, c, 5))
    assert reply["value"] == 10 and banks.instances(c) == {0: 0, 1: 10}


def test_query_returns_the_sum_and_a_first_query_joins_with_zero():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    set_(banks, 1, c, 6)
    reply, _ = query(banks, 3, c)
    assert reply["value"] == 6
    assert banks.instances(c) == {0: 0, 1: 6, 3: 0}


# --- one message, several records --------------------------------------------------------------

def test_message_records_are_applied_in_order():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    replies, _ = banks.process_message(1, [
        request(CounterOp.SET, c, 5), request(CounterOp.INC, c, 3), request(CounterOp.QUERY, c),
        request(CounterOp.DEC, c, 2), request(CounterOp.SET, c, 1), request(CounterOp.QUERY, c),
    ])
    assert [r["value"] for r in replies] == [5, 8, 8, 6, 1, 1]
    assert [r["op"] for r in replies] == [CounterOp.SET, CounterOp.INC, CounterOp.QUERY,
                                          CounterOp.DEC, CounterOp.SET, CounterOp.QUERY]


def test_message_that_crosses_twice_notifies_twice_in_order():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    _, notes = banks.process_message(0, [request(CounterOp.SET, c, 150),
                                         request(CounterOp.SET, c, 10)])
    assert [(n.state, n.sum) for n in notes] == [(NC, 150), (C, 10)]


def test_refused_record_does_not_stop_the_rest_of_the_message():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    replies, _ = banks.process_message(0, [
        request(CounterOp.SET, c, 5), request(CounterOp.SET, 3, 1),  # row 3 is not allocated
        request(CounterOp.INC, c, 1)])
    assert [r["status"] for r in replies] == [CounterStatus.ACK, CounterStatus.ERROR,
                                              CounterStatus.ACK]
    assert replies[1]["param"] == ErrorCode.NO_SUCH_COUNTER.value
    assert banks.sum_of(c) == 6


def test_allocating_in_a_message_returns_an_id_the_next_records_can_use():
    banks = make_banks()
    replies, _ = banks.process_message(0, [request(CounterOp.ALLOC_ACC, value=9, param=1),
                                           request(CounterOp.ALLOC_RATE, value=4, param=1)])
    assert [r["counter"] for r in replies] == [r["value"] for r in replies] == [0, 0x8000]


# --- thresholds with hysteresis ----------------------------------------------------------------

def test_sum_oscillating_around_high_gives_exactly_one_non_conforming():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    notes = []
    for value in [100, 101, 99, 101, 100, 99, 120, 51, 101, 50]:
        notes += set_(banks, 0, c, value)[1]
    assert [(n.state, n.sum) for n in notes] == [(NC, 101)]
    assert banks.state_of(c) is NC


def test_falling_below_low_gives_exactly_one_conforming():
    banks = make_banks()
    c = alloc_acc(banks, 100, 50)
    set_(banks, 0, c, 101)
    notes = []
    for value in [50, 49, 51, 48, 50, 0, 100]:
        notes += set_(banks, 0, c, value)[1]
    assert [(n.state, n.sum) for n in notes] == [(C, 49)]
    assert banks.state_of(c) is C


def test_equal_thresholds_still_do_not_chatter():
    banks = make_banks()
    c = alloc_acc(banks, 10, 10)
    notes = []
    for value in [10, 11, 10, 11, 9, 10, 9, 11]:
        notes += set_(banks, 0, c, value)[1]
    assert [n.state for n in notes] == [NC, C, NC]


def expected_crossings(sums, high, low):
    """Independent of the model: mark each sum H (> high) or L (< low), collapse runs, drop the
    leading L run (the counter starts conforming); each remaining run start is one crossing."""
    marks = [(i, "H" if s > high else "L") for i, s in enumerate(sums) if s > high or s < low]
    events = []
    for i, mark in marks:
        if (events[-1][1] if events else "L") != mark:
            events.append((i, mark))
    return [(i, NC if mark == "H" else C) for i, mark in events]


def test_random_walk_notifies_once_per_crossing():
    rng = seeded_rng()
    banks = make_banks(accumulators=2, max_pps=4)
    high, low = 100, 60
    c = alloc_acc(banks, high, low, pp=rng.randrange(4))
    sums, seen = [], []
    for step in range(3000):
        pp = rng.randrange(4)
        op = rng.choice([CounterOp.SET, CounterOp.INC, CounterOp.DEC])
        amount = rng.randrange(0, 61) if op is CounterOp.SET else rng.randrange(0, 21)
        reply, notes = ok(banks, pp, request(op, c, amount))
        sums.append(reply["value"])
        seen += [(step, n.state) for n in notes]
        assert all(n.sum == reply["value"] for n in notes)
    expected = expected_crossings(sums, high, low)
    assert len(expected) >= 10, "the walk should cross the thresholds many times"
    assert seen == expected


def test_notification_goes_to_the_pps_that_touched_the_counter_with_the_alloc_group():
    banks = make_banks()
    c = alloc_acc(banks, 10, 5, pp=1, group=0x42)
    set_(banks, 3, c, 4)
    query(banks, 2, c)
    _, notes = ok(banks, 3, request(CounterOp.SET, c, 11, group=0x99))
    (note,) = notes
    assert note.members == frozenset({1, 2, 3}) and note.mask == 0b1110
    assert note.group == 0x42 and note.counter == c and note.state is NC and note.sum == 11


def test_reply_param_carries_the_state_for_a_pp_that_missed_the_notification():
    banks = make_banks()
    c = alloc_acc(banks, 10, 5)
    set_(banks, 0, c, 20)
    reply, notes = set_(banks, 2, c, 1)          # PP 2 joins a counter already non-conforming
    assert notes == [] and reply["param"] == NC.value


# --- rate counters -------------------------------------------------------------------------------

def test_rate_ack_takes_tokens_and_nack_takes_none():
    banks = make_banks()
    r = alloc_rate(banks, 10, 1)
    reply, _ = query(banks, 1, r, 7)
    assert reply["status"] is CounterStatus.ACK and reply["value"] == 3
    reply, _ = query(banks, 1, r, 4)
    assert reply["status"] is CounterStatus.NACK and reply["value"] == 3
    reply, _ = query(banks, 1, r, 3)
    assert reply["status"] is CounterStatus.ACK and reply["value"] == 0


def test_rate_probe_query_of_zero_takes_nothing():
    banks = make_banks()
    r = alloc_rate(banks, 1, 0)
    assert query(banks, 0, r, 0)[0]["status"] is CounterStatus.ACK
    assert query(banks, 0, r, 0)[0]["status"] is CounterStatus.ACK
    assert query(banks, 0, r, 1)[0]["status"] is CounterStatus.ACK
    assert query(banks, 0, r, 0)[0]["status"] is CounterStatus.NACK


def test_rate_refills_lazily_with_elapsed_time():
    banks = make_banks(tick_hz=1000)              # now is in milliseconds here
    r = alloc_rate(banks, 10, 5, now=0)           # 5 tokens per second
    assert query(banks, 0, r, 10, now=0)[0]["status"] is CounterStatus.ACK
    assert query(banks, 0, r, 1, now=100)[0]["status"] is CounterStatus.NACK   # 0.5 token
    assert banks.tokens_of(r, 199) == 0
    reply, _ = query(banks, 0, r, 1, now=200)                                   # 1 token
    assert reply["status"] is CounterStatus.ACK and reply["value"] == 0
    assert banks.tokens_of(r, 1200) == 5


def test_rate_frequent_queries_do_not_lose_fractional_credit():
    banks = make_banks(tick_hz=1000)
    r = alloc_rate(banks, 5, 7, now=0)
    acks = sum(query(banks, 0, r, 1, now=t)[0]["status"] is CounterStatus.ACK
               for t in range(10_001))
    assert acks == 5 + 7 * 10          # full bucket + 10 s at 7 tokens/s, nothing lost


def test_rate_bucket_never_exceeds_its_size():
    rng = seeded_rng()
    banks = make_banks(tick_hz=1000)
    size = 20
    r = alloc_rate(banks, size, 300, now=0)
    now = 0
    for _ in range(2000):
        now += rng.choice([0, 1, 5, 50, 2000])
        reply, _ = query(banks, rng.randrange(4), r, rng.randrange(0, 25), now=now)
        assert reply["value"] <= size and banks.tokens_of(r, now) <= size
        assert banks.check() == []
    assert banks.tokens_of(r, now + 10**6) == size


def test_rate_refill_across_a_timestamp_wrap():
    banks = make_banks(tick_hz=16, ts_bits=8)     # wraps every 256 ticks; 16 tokens/s = 1/tick
    r = alloc_rate(banks, 10, 16, now=250)
    assert query(banks, 0, r, 10, now=250)[0]["status"] is CounterStatus.ACK
    reply, _ = query(banks, 0, r, 10, now=260)    # stored as 4 after the wrap: 10 ticks later
    assert reply["status"] is CounterStatus.ACK


def test_rate_state_notifies_once_per_change():
    rng = seeded_rng()
    banks = make_banks(tick_hz=1000)
    r = alloc_rate(banks, 8, 20, now=0)
    now, statuses, notes = 0, [], []
    for _ in range(3000):
        now += rng.choice([0, 0, 10, 30, 100])
        reply, n = query(banks, rng.randrange(4), r, rng.randrange(1, 4), now=now)
        statuses.append(reply["status"])
        notes.append(n)
    # Independent expectation: a notification exactly where ACK/NACK differs from the previous
    # answer (the counter starts conforming, as if the previous answer were ACK).
    previous, expected = CounterStatus.ACK, []
    for status in statuses:
        expected.append([] if status is previous else
                        [C if status is CounterStatus.ACK else NC])
        previous = status
    assert [[n.state for n in ns] for ns in notes] == expected
    assert sum(map(len, expected)) >= 10


# --- allocation ------------------------------------------------------------------------------

@pytest.mark.parametrize("op, bank", [(CounterOp.ALLOC_ACC, "acc"), (CounterOp.ALLOC_RATE, "rate")])
def test_exhausted_bank_answers_counter_full_and_changes_nothing(op, bank):
    banks = make_banks(accumulators=3, rate_counters=3)
    ids = [ok(banks, 0, request(op, value=5, param=1))[0]["value"] for _ in range(3)]
    assert len(set(ids)) == 3
    before = banks.snapshot()
    reply, notes = banks.process(0, request(op, value=5, param=1))
    assert reply["status"] is CounterStatus.ERROR and reply["param"] == ErrorCode.COUNTER_FULL.value
    assert notes == [] and banks.snapshot() == before
    assert banks.counts[ErrorCode.COUNTER_FULL] == 1


def test_released_id_goes_back_to_the_free_list_and_is_reused_last():
    banks = make_banks(accumulators=3)
    a, b, c = (alloc_acc(banks, 5, 1) for _ in range(3))
    ok(banks, 0, request(CounterOp.RELEASE, b))
    assert alloc_acc(banks, 5, 1) == b                  # the only free row
    ok(banks, 0, request(CounterOp.RELEASE, a))
    ok(banks, 0, request(CounterOp.RELEASE, c))
    assert [alloc_acc(banks, 5, 1), alloc_acc(banks, 5, 1)] == [a, c]   # FIFO order
    assert banks.check() == []


def test_reallocated_accumulator_starts_clean_despite_stale_instance_memory():
    banks = make_banks(accumulators=1)
    c = alloc_acc(banks, 5, 1, pp=0)
    set_(banks, 1, c, 9)
    set_(banks, 2, c, 4)
    reply, _ = ok(banks, 0, request(CounterOp.RELEASE, c))
    assert reply["value"] == 13
    assert alloc_acc(banks, 50, 10, pp=3) == c
    assert banks.sum_of(c) == 0 and banks.instances(c) == {3: 0}
    assert banks.state_of(c) is C and banks.members_of(c) == {3}
    set_(banks, 1, c, 2)                                # PP 1's stale word (9) must not count
    assert banks.sum_of(c) == 2 and banks.check_sums() == []


def test_reallocated_rate_counter_starts_full():
    banks = make_banks(rate_counters=1)
    r = alloc_rate(banks, 4, 0)
    query(banks, 0, r, 4)
    ok(banks, 0, request(CounterOp.RELEASE, r))
    assert alloc_rate(banks, 6, 0) == r and banks.tokens_of(r, 0) == 6


# --- bad input -----------------------------------------------------------------------------------

def populated_banks():
    """Banks with live and freed rows in both banks, instances and some rate history.

    acc 0: owner 0, instances of PP 0..2; acc 1: released; acc 2, 3: never allocated.
    rate 0x8000: owner 0, drained a little; rate 0x8001: never allocated.
    """
    banks = make_banks(sum_bits=16, token_bits=16, rate_bits=16)
    a = alloc_acc(banks, 100, 50, group=5)
    gone = alloc_acc(banks, 100, 50)
    for pp, value in [(0, 40), (1, 30), (2, 41)]:
        set_(banks, pp, a, value)
    ok(banks, 0, request(CounterOp.RELEASE, gone))
    r = alloc_rate(banks, 10, 2, now=0)
    query(banks, 1, r, 6, now=100)
    return banks, a, gone, r


S, A, R = CounterOp.SET, 0, 0x8000     # shorthands for the table below
BAD_INPUT = [
    # name, pp, record, error
    ("not_a_dict", 0, "junk", ErrorCode.MALFORMED),
    ("unknown_key", 0, dict(request(S, A, 1), bogus=1), ErrorCode.MALFORMED),
    ("value_too_wide", 0, request(S, A, 1 << 64), ErrorCode.MALFORMED),
    ("negative_counter", 0, request(S, -1, 1), ErrorCode.MALFORMED),
    ("value_not_int", 0, request(S, A, "5"), ErrorCode.MALFORMED),
    ("status_not_request", 0, dict(request(S, A, 1), status=CounterStatus.ACK),
     ErrorCode.MALFORMED),
    ("op_of_wrong_enum", 0, dict(request(S, A, 1), op=CounterStatus.CONFORMING),
     ErrorCode.MALFORMED),
    ("pp_too_big", 4, request(S, A, 1), ErrorCode.OUT_OF_RANGE),
    ("pp_negative", -1, request(S, A, 1), ErrorCode.OUT_OF_RANGE),
    ("pp_not_int", "0", request(S, A, 1), ErrorCode.OUT_OF_RANGE),
    ("unknown_op", 0, request(0x99, A, 1), ErrorCode.UNKNOWN_TYPE),
    ("op_zero", 0, request(0, A, 1), ErrorCode.UNKNOWN_TYPE),
    ("set_on_rate", 0, request(S, R, 1), ErrorCode.UNKNOWN_TYPE),
    ("inc_on_rate", 0, request(CounterOp.INC, R, 1), ErrorCode.UNKNOWN_TYPE),
    ("dec_on_rate", 0, request(CounterOp.DEC, R, 1), ErrorCode.UNKNOWN_TYPE),
    ("acc_index_beyond_bank", 0, request(S, 4, 1), ErrorCode.OUT_OF_RANGE),
    ("rate_index_beyond_bank", 0, request(CounterOp.QUERY, 0x8002, 1), ErrorCode.OUT_OF_RANGE),
    ("acc_released", 0, request(S, 1, 1), ErrorCode.NO_SUCH_COUNTER),
    ("acc_never_allocated", 0, request(CounterOp.QUERY, 2), ErrorCode.NO_SUCH_COUNTER),
    ("rate_never_allocated", 0, request(CounterOp.QUERY, 0x8001, 1), ErrorCode.NO_SUCH_COUNTER),
    ("double_release", 0, request(CounterOp.RELEASE, 1), ErrorCode.NO_SUCH_COUNTER),
    ("acc_release_by_non_owner", 1, request(CounterOp.RELEASE, A), ErrorCode.NOT_OWNER),
    ("rate_release_by_non_owner", 1, request(CounterOp.RELEASE, R), ErrorCode.NOT_OWNER),
    ("set_overflows_sum", 0, request(S, A, 0xFFFF), ErrorCode.OUT_OF_RANGE),
    ("inc_overflows_sum", 3, request(CounterOp.INC, A, 0x10000 - 111), ErrorCode.OUT_OF_RANGE),
    ("alloc_acc_low_above_high", 0, request(CounterOp.ALLOC_ACC, value=5, param=6),
     ErrorCode.MALFORMED),
    ("alloc_rate_size_too_wide", 0, request(CounterOp.ALLOC_RATE, value=1 << 16, param=1),
     ErrorCode.OUT_OF_RANGE),
    ("alloc_rate_fill_too_wide", 0, request(CounterOp.ALLOC_RATE, value=1, param=1 << 16),
     ErrorCode.OUT_OF_RANGE),
]


@pytest.mark.parametrize("pp, record, error", [case[1:] for case in BAD_INPUT],
                         ids=[case[0] for case in BAD_INPUT])
def test_bad_input_gets_its_error_and_leaves_state_unchanged(pp, record, error):
    banks, *_ = populated_banks()
    before = banks.snapshot()
    reply, notes = banks.process(pp, record, now=5000)   # a late `now` must not refill either
    assert reply["status"] is CounterStatus.ERROR and reply["param"] == error.value
    assert reply["value"] == 0 and notes == []
    assert banks.snapshot() == before
    assert banks.counts[error] == 1
    COUNTER_RECORD.pack(reply)                            # the error reply is a valid record


def test_bad_input_does_not_mask_a_later_valid_record():
    banks, a, _, _ = populated_banks()
    replies, _ = banks.process_message(3, [request(S, A, 0xFFFF), request(S, A, 9)])
    assert [r["status"] for r in replies] == [CounterStatus.ERROR, CounterStatus.ACK]
    assert banks.sum_of(a) == 120 and banks.check() == []


# --- invariants ----------------------------------------------------------------------------------

def test_check_sums_catches_a_corrupted_sum():
    banks, a, _, _ = populated_banks()
    assert banks.check_sums() == []
    banks.acc.sum[split_id(a)[1]] += 1
    assert banks.check_sums() == [(a, 112, 111)]


def test_check_sums_catches_a_corrupted_instance():
    banks, a, _, _ = populated_banks()
    banks.acc.inst[split_id(a)[1] * banks.max_pps + 2] = 0
    assert banks.check_sums() == [(a, 111, 70)]


def test_check_catches_a_free_list_holding_an_index_twice():
    banks, *_ = populated_banks()
    banks.acc.free.append(1)
    assert [p[0] for p in banks.check()] == ["free_list"]


def test_random_ops_keep_every_sum_equal_to_a_reference():
    rng = seeded_rng()
    banks = make_banks(accumulators=3, rate_counters=1, max_pps=5, sum_bits=12)
    reference = {}                            # counter -> {pp: value}, kept by this test alone
    owner = {}
    for _ in range(4000):
        pp = rng.randrange(6)                 # 5 is out of range on purpose
        kind = rng.random()
        if kind < 0.05:
            record = request(CounterOp.ALLOC_ACC, value=rng.randrange(4000),
                             param=rng.randrange(4000))
        elif kind < 0.08:
            record = request(CounterOp.RELEASE, rng.randrange(4))
        else:
            record = request(rng.choice([CounterOp.SET, CounterOp.INC, CounterOp.DEC,
                                         CounterOp.QUERY]),
                             rng.randrange(4), rng.randrange(2000))
        before = banks.snapshot()
        reply, _ = banks.process(pp, record)
        if reply["status"] is CounterStatus.ERROR:
            assert banks.snapshot() == before
        else:
            op, c, v = record["op"], reply["counter"], record["value"]
            if op is CounterOp.ALLOC_ACC:
                reference[c], owner[c] = {pp: 0}, pp
            elif op is CounterOp.RELEASE:
                assert owner.pop(c) == pp
                del reference[c]
            else:
                old = reference[c].get(pp, 0)
                reference[c][pp] = {CounterOp.SET: v, CounterOp.INC: old + v,
                                    CounterOp.DEC: max(0, old - v), CounterOp.QUERY: old}[op]
        assert set(reference) == {c for c in range(3) if banks.acc.valid[c]}
        for c, values in reference.items():
            assert banks.sum_of(c) == sum(values.values())
            assert banks.instances(c) == values
        assert banks.check() == []
    assert banks.counts["ok"] > 1000 and banks.counts[ErrorCode.OUT_OF_RANGE] > 100


# --- wire ----------------------------------------------------------------------------------------

def test_replies_and_notifications_round_trip_through_the_wire_formats():
    banks = make_banks()
    c = alloc_acc(banks, 10, 5, group=3)
    reply, (note,) = set_(banks, 0, c, 11)
    assert COUNTER_RECORD.unpack(COUNTER_RECORD.pack(reply)) == reply
    body = MESSAGES[MsgType.COUNTER_NOTIFY].body
    assert body.unpack(body.pack(note.body())) == {"counter": c, "state": NC, "sum": 11}
    bad, _ = banks.process(0, request(0x99, c))
    assert COUNTER_RECORD.unpack(COUNTER_RECORD.pack(bad)) == bad


def test_unpacked_request_bytes_are_accepted():
    banks = make_banks()
    c = alloc_acc(banks, 10, 5)
    record = COUNTER_RECORD.unpack(COUNTER_RECORD.pack(request(CounterOp.SET, c, 7)))
    assert ok(banks, 2, record)[0]["value"] == 7
