# amaranth: UnusedElaboratable=no
"""The hardware GFT (hdl/gft/table.py) in Amaranth's simulator, scoreboarded against the golden
model: constrained-random operation mixes under random idle and backpressure, then directed
tests for each state transition, each hazard, table full, relocation, aging and throughput.

Every check compares responses (status, entry, location), counters and the whole final table
with sim/model/gft.py. Random tests print their seed and replay with SEED=<n>.
"""

import copy
from types import SimpleNamespace

import pytest
from amaranth.back import verilog

from hdl.gft.layouts import EntryState, GftOp, GftStatus
from hdl.gft.table import GlobalFlowTable
from hdl.hash.siphash import FlowHash
from sim.flowkey import FlowKey
from sim.model.gft import TableFull
from sim.model.gft_ops import Request
from sim.randkeys import random_flow_key
from sim.amaranth.clash import clash_junk
from sim.amaranth.gft import GftBench
from sim.model.gft_ops import SECRET, Scoreboard, model_for, random_request
from tests.seeds import seeded_rng


TENTATIVE, BOUND, INVALID = EntryState.TENTATIVE, EntryState.BOUND, EntryState.INVALID
LOOKUP, RESERVE, UPDATE, DELETE = GftOp.LOOKUP, GftOp.RESERVE, GftOp.UPDATE, GftOp.DELETE


def run(dut, requests, *, rng=None, check=True, **bench_args):
    """Simulate ``requests`` and scoreboard them; returns ``(bench, expected responses)``."""
    bench = GftBench(dut, rng=rng or seeded_rng("directed"), **bench_args).run(requests)
    board = Scoreboard(bench)
    errors = board.check()
    if check:
        assert not errors, "\n".join(errors[:8])
    return bench, board.expected


def responses(bench):
    return [r for r, _, _ in bench.responses]


def keys(rng, n, family=None):
    return [random_flow_key(rng, family=family) for _ in range(n)]


def keys_that_relocate(rng, dut, *, moves, at_least):
    """At least ``at_least`` random keys whose RESERVEs, in order, make the model relocate at
    least ``moves`` entries and never fail (so a directed test cannot pass without
    relocating). A sequence that fills the table first is dropped and a new one drawn."""
    for _ in range(10_000):
        model, out = model_for(dut), []
        try:
            while len(out) < at_least or model.stats["relocations"] < moves:
                k = random_flow_key(rng)
                model.insert(k, fid=len(out))
                out.append(k)
        except TableFull:
            continue
        return out
    raise AssertionError(f"no key sequence relocates {moves} entries in {dut.params}")



# --- Constrained random -----------------------------------------------------------------------

RANDOM_CONFIGS = [
    # Tiny tables force colliding keys, relocation, stash and FULL; odd sizes catch index math.
    dict(buckets=8, ways=2, stash=2, move_budget=2),
    dict(buckets=2, ways=1, stash=3, move_budget=3, timestamp_bits=6),
    dict(buckets=4, ways=3, stash=1, move_budget=1, key_mode="ipv4", timestamp_bits=6),
    dict(buckets=8, ways=4, stash=8, move_budget=3),         # the default shape, small
    dict(buckets=32, ways=1, stash=0, move_budget=0, key_mode="ipv4", tag_width=0),
]


@pytest.mark.parametrize("config", RANDOM_CONFIGS, ids=lambda c: "-".join(
    f"{k[0]}{v}" for k, v in c.items()))
def test_random_operation_mix_matches_the_model(config):
    """Three phases on one table: a RESERVE-heavy fill well past capacity (so that it reaches
    FULL whatever the seed), a churn of all four ops over present and absent keys, and a drain
    during which aging frees the stale tentative entries. Random idle on the requests, random
    backpressure on both outputs."""
    rng = seeded_rng("random_mix_" + "_".join(map(str, config.values())))
    dut = GlobalFlowTable(**config)
    p = dut.params
    # In ipv4 mode one key in eight is IPv6 (refused, never found).
    pool = [random_flow_key(rng, family=4 if p.key_mode == "ipv4" and rng.random() < 0.875
                            else None) for _ in range(p.capacity * 3 // 2 + 10)]
    requests = [random_request(rng, k, weights=(1, 8, 1, 0), tag=n & 0xFF)
                for n, k in enumerate(pool)]
    requests += [random_request(rng, rng.choice(pool), tag=n & 0xFF) for n in range(300)]
    # Whatever the churn left, one tentative entry for the drain's aging to free.
    requests += [Request(DELETE, k) for k in pool]
    requests.append(Request(RESERVE, random_flow_key(rng, family=4)))
    # Well below half the timestamp range, so that the scan visits every entry while it is
    # expired (older than half the range it would read as young again, as in the model).
    timeout = min(rng.choice((20, 30)), 1 << (p.timestamp_bits - 3))
    ticks = 16          # cycles per tick of `now`
    bench, _ = run(dut, requests, rng=rng, idle=rng.choice((0.0, 0.3, 0.6)),
                   backpressure=rng.choice((0.0, 0.3, 0.6)), timeout=timeout,
                   now=lambda cycle: cycle // ticks,
                   drain=(timeout + 2) * ticks + 20 * (p.buckets + p.stash))
    s = bench.stats
    assert s["inserts"] and s["hits"] and s["deletes"] and s["updates"]
    assert s["insert_failures"] and s["aged_out"], s


@pytest.mark.parametrize("late", [0, 1], ids=["at_the_clash", "a_cycle_late"])
def test_a_read_that_meets_a_write_of_its_address_is_never_used(late):
    """The RAMs may return anything for a read at the edge a write to the same address lands
    (``no_rw_check``): B forwards the way written instead, and the Relocator never uses such
    an answer from the bitmap's copies. With junk on every such read the table still matches
    the model; the same junk a cycle late, on reads that are used, must not."""
    config = dict(buckets=8, ways=2, stash=2, move_budget=2)
    rng = seeded_rng("clash_junk")
    dut = GlobalFlowTable(**config)
    pool = [random_flow_key(rng) for _ in range(dut.params.capacity + 8)]
    requests = [random_request(rng, k, weights=(1, 8, 1, 1), tag=n & 0xFF)
                for n, k in enumerate(pool)]
    requests += [random_request(rng, rng.choice(pool), tag=n & 0xFF) for n in range(300)]
    clashes = {}
    bench = GftBench(dut, rng=rng, idle=0.2, backpressure=0.2)
    ports = lambda: [port for table in dut.storage["ports"] for port in table]
    try:
        bench.run(requests, testbench=clash_junk(ports, rng, clashes, late=late))
        errors = Scoreboard(bench).check()
    except (AssertionError, ValueError) as failure:    # a hang, or junk that decodes to nothing
        errors = [f"the run failed: {failure!r}"]
    # Ports 0 .. 2 * ways - 1 are the buckets', the last two the bitmap copies'.
    buckets = sum(n for port, n in clashes.items() if port < 2 * dut.params.ways)
    bitmap = sum(n for port, n in clashes.items() if port >= 2 * dut.params.ways)
    assert buckets >= 20 and bitmap >= 5, f"too few clashes to show anything: {clashes}"
    if late:
        assert errors, "junk on reads that are used went unnoticed"
    else:
        assert not errors, "\n".join(errors[:8])


@pytest.mark.parametrize("config", [dict(buckets=8, ways=2, stash=2, move_budget=2),
                                    dict(buckets=2, ways=3, stash=1, key_mode="ipv4")],
                         ids=["b8w2", "b2w3-ipv4"])
def test_initialising_empties_every_way_whatever_the_rams_held(config):
    """Every way of every bucket starts live with a junk key (all ones): after
    ``initialising`` the table must answer as an empty one, and at the end hold exactly what
    the requests left (the scoreboard reads the RAMs back)."""
    rng = seeded_rng("junk_" + "_".join(map(str, config.values())))
    dut = GlobalFlowTable(**config)
    pool = [random_flow_key(rng, family=4) for _ in range(dut.params.capacity)]
    requests = [random_request(rng, rng.choice(pool), tag=n & 0xFF) for n in range(60)]
    bench, _ = run(dut, requests, rng=rng, junk=True)
    assert bench.stats["misses"] and bench.stats["inserts"]


def test_scoreboard_takes_a_stamp_from_any_cycle_the_request_spent_in_the_table():
    """A request queued behind slow inserts can wait longer than the timestamp range; its
    stamp is then whatever ``now`` was when it was served, even a value below ``now`` at
    either end. The scoreboard judges the stamp by the cycles in between, so a correct stamp
    passes and one the time input never had fails."""
    dut = GlobalFlowTable(buckets=2, ways=1, stash=3, move_budget=3, timestamp_bits=6)
    k = FlowKey.of("10.0.0.1", "10.0.0.2", 6, 1000, 80)
    ticks, mask = 16, 63

    def board(taken, answered, stamp):
        want = Scoreboard(bench([], [], [])).model.request(Request(RESERVE, k), stamp)
        return Scoreboard(bench([(Request(RESERVE, k), taken, (taken // ticks) & mask)],
                                [(want, answered, (answered // ticks) & mask)], []))

    def bench(sent, responses, aged):
        return SimpleNamespace(params=dut.params, secret=SECRET, timeout=1, sent=sent,
                               responses=responses, aged=aged,
                               now_at=lambda cycle: (cycle // ticks) & mask)

    # 65 ticks from request to response: `now` is 11 at both ends and ran through every value.
    taken, answered = 11 * ticks, (64 + 11) * ticks + 5
    assert not board(taken, answered, 9).check(contents=False, stats=False)
    # 6 ticks (`now` 11 to 17): 14 is the time of a cycle in between; 30 and 9 are no cycle's.
    assert not board(taken, taken + 6 * ticks, 14).check(contents=False, stats=False)
    assert board(taken, taken + 6 * ticks, 30).check(contents=False, stats=False)
    assert board(taken, taken + 6 * ticks, 9).check(contents=False, stats=False)


# --- State transitions ------------------------------------------------------------------------

def test_each_state_transition_and_field_write():
    rng = seeded_rng("transitions")
    k = keys(rng, 1)[0]
    dut = GlobalFlowTable(buckets=8, ways=2, stash=1, move_budget=1)
    bench, _ = run(dut, [
        Request(LOOKUP, k),                                              # invalid: MISS
        Request(RESERVE, k, fid=0x100, state=TENTATIVE, predict=True),   # -> tentative
        Request(UPDATE, k, fid=0x2345, mask=frozenset({"fid"})),         # owner assigned
        Request(UPDATE, k, aware=0b0100, mask=frozenset({"aware"})),     # aware bits OR-ed
        Request(UPDATE, k, aware=0b0001, mask=frozenset({"aware"})),
        Request(UPDATE, k, state=BOUND, mask=frozenset({"state", "touch"})),   # -> bound
        Request(UPDATE, k, counter=77, predict=False, mask=frozenset({"counter", "predict"})),
        Request(LOOKUP, k),
        Request(DELETE, k),                                              # -> invalid
        Request(LOOKUP, k),
        Request(DELETE, k),
    ], now=lambda cycle: 5 + cycle // 100)
    got = responses(bench)
    assert [r.status for r in got] == [
        GftStatus.MISS, GftStatus.INSERTED, GftStatus.UPDATED, GftStatus.UPDATED,
        GftStatus.UPDATED, GftStatus.UPDATED, GftStatus.UPDATED, GftStatus.HIT,
        GftStatus.DELETED, GftStatus.MISS, GftStatus.NOT_FOUND]
    assert got[1].fields["state"] == TENTATIVE and got[1].fields["predict"]
    assert got[4].fields["aware"] == 0b0101 and got[4].fields["fid"] == 0x2345
    assert got[7].fields == dict(fid=0x2345, state=BOUND, timestamp=got[5].fields["timestamp"],
                                 aware=0b0101, counter=77, predict=False)
    assert got[8].fields == got[7].fields and got[8].loc == got[1].loc
    assert bench.stats["occupancy"] == 0


def test_invalid_state_and_ipv6_keys_in_ipv4_mode_are_refused_and_counted():
    rng = seeded_rng("refused")
    k4, k6 = random_flow_key(rng, family=4), random_flow_key(rng, family=6)
    dut = GlobalFlowTable(buckets=8, ways=2, stash=1, key_mode="ipv4")
    bench, _ = run(dut, [
        Request(RESERVE, k6, fid=1),
        Request(LOOKUP, k6),
        Request(RESERVE, k4, fid=2, state=INVALID),
        Request(RESERVE, k4, fid=3, state=BOUND),
        Request(UPDATE, k4, state=INVALID, mask=frozenset({"state"})),
        Request(DELETE, k6),
    ])
    assert [r.status for r in responses(bench)] == [
        GftStatus.REFUSED, GftStatus.MISS, GftStatus.REFUSED, GftStatus.INSERTED,
        GftStatus.REFUSED, GftStatus.NOT_FOUND]
    assert bench.stats["refused"] == 3 and bench.stats["occupancy"] == 1


def test_ipv4_mode_keeps_the_whole_key_apart_from_ipv6_keys_with_the_same_low_bits():
    k4 = FlowKey.of("10.0.0.1", "10.0.0.2", 6, 1000, 80)
    k6 = k4._replace(src_addr=(0x20010DB8 << 96) | (k4.src_addr & 0xFFFFFFFF))
    dut = GlobalFlowTable(buckets=2, ways=2, stash=0, key_mode="ipv4")
    bench, _ = run(dut, [Request(RESERVE, k4, fid=4), Request(LOOKUP, k6), Request(LOOKUP, k4)])
    assert [r.status for r in responses(bench)] == [GftStatus.INSERTED, GftStatus.MISS,
                                                   GftStatus.HIT]


# --- Hazards ----------------------------------------------------------------------------------

def test_back_to_back_reserve_of_one_key_hits_the_first_entry():
    rng = seeded_rng("same_key_reserve")
    k = keys(rng, 1)[0]
    dut = GlobalFlowTable(buckets=16, ways=2, stash=1)
    bench, _ = run(dut, [Request(RESERVE, k, fid=n, tag=n) for n in range(1, 5)])
    first, *rest = responses(bench)
    assert first.status == GftStatus.INSERTED
    assert all(r.status == GftStatus.HIT and r.fields == first.fields and r.loc == first.loc
               for r in rest)
    assert bench.stats["occupancy"] == 1 and bench.stats["inserts"] == 1


def test_back_to_back_reserves_of_different_keys_in_shared_buckets_fill_them_in_order():
    # Two buckets: every key's candidates are buckets 0 and 1.
    rng = seeded_rng("shared_buckets")
    ks = keys(rng, 9)
    dut = GlobalFlowTable(buckets=2, ways=4, stash=1, move_budget=2)
    bench, _ = run(dut, [Request(RESERVE, k, fid=n) for n, k in enumerate(ks)])
    got = responses(bench)
    assert [r.loc for r in got[:8]] == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2),
                                        (0, 3), (1, 3)]
    assert got[8].loc == ("stash", 0)


def fill_seen_one_cycle_late(rng, dut):
    """Keys for a RESERVE Y that issues the cycle after the commit filling one of its buckets:
    ``(pool, X, K, Y)``. After ``pool`` is reserved, X (a new key) fills bucket b; K, stored
    in bucket c and sharing no bucket with X, is reserved again (a HIT, a writer all the
    same) while its other bucket has room; Y's candidates are b and c, both full once X is
    in. Reserved back to back, Y waits
    for X and then for K, so it issues as K commits, one clock after X's commit."""
    for _ in range(2000):
        model, pool = model_for(dut), keys(rng, dut.params.buckets * 5 // 8)
        try:
            for n, k in enumerate(pool):
                model.insert(k, fid=n)
        except TableFull:       # a pool that does not fit (a few seeds in a hundred): another
            continue
        for k in pool:
            c = model.location(k)[0]
            if c == "stash":
                continue
            for _ in range(200):
                x = random_flow_key(rng)
                trial = copy.deepcopy(model)
                try:
                    trial.insert(x, fid=99)
                except TableFull:
                    continue
                b = trial.location(x)[0]
                # K must not be a maybe-slow RESERVE itself (both buckets full), which would
                # hold Y a clock longer.
                if (b == "stash" or trial.stats["relocations"] != model.stats["relocations"]
                        or set(model.candidates(x)) & set(model.candidates(k))
                        or b // dut.params.half == c // dut.params.half
                        or not any(trial._free_ways(e) for e in model.candidates(k))):
                    continue
                for _ in range(400):
                    y = random_flow_key(rng)
                    if set(model.candidates(y)) == {b, c}:
                        return pool, x, k, y
    raise AssertionError(f"no late-fill race found in {dut.params}")


def test_reserve_issued_a_clock_after_the_fill_of_its_bucket_takes_the_slow_path():
    """Y needs the slow path, and nothing may issue behind it until it has committed: the
    bucket X fills must count as full for Y although its bit is written a clock after X's
    commit. The LOOKUPs behind Y would otherwise be in flight when the Relocator starts."""
    rng = seeded_rng("late_fill")
    dut = GlobalFlowTable(buckets=16, ways=1, stash=2, move_budget=1)
    pool, x, k, y = fill_seen_one_cycle_late(rng, dut)
    requests = [Request(RESERVE, key, fid=n) for n, key in enumerate(pool)]
    requests += [Request(LOOKUP, pool[0])] * 8
    requests += [Request(RESERVE, x, fid=100), Request(RESERVE, k, fid=101),
                 Request(RESERVE, y, fid=102)]
    requests += [Request(LOOKUP, key) for key in pool + [x, y]]
    bench, _ = run(dut, requests)
    got = responses(bench)
    assert [r.status for r in got[len(pool) + 8:len(pool) + 11]] == \
        [GftStatus.INSERTED, GftStatus.HIT, GftStatus.INSERTED]


def test_update_racing_a_lookup_is_seen_in_request_order():
    rng = seeded_rng("update_lookup_race")
    k = keys(rng, 1)[0]
    dut = GlobalFlowTable(buckets=8, ways=2, stash=0)
    bench, _ = run(dut, [
        Request(RESERVE, k, fid=1, aware=0b1),
        Request(LOOKUP, k),
        Request(UPDATE, k, fid=2, aware=0b10, mask=frozenset({"fid", "aware"})),
        Request(LOOKUP, k),
        Request(UPDATE, k, aware=0b100, mask=frozenset({"aware"})),
        Request(UPDATE, k, aware=0b1000, mask=frozenset({"aware"})),
        Request(LOOKUP, k),
    ])
    got = responses(bench)
    assert [(r.fields["fid"], r.fields["aware"]) for r in got] == [
        (1, 0b1), (1, 0b1), (2, 0b11), (2, 0b11), (2, 0b111), (2, 0b1111), (2, 0b1111)]


def test_delete_then_reserve_back_to_back_inserts_a_fresh_entry():
    rng = seeded_rng("delete_reserve")
    k = keys(rng, 1)[0]
    dut = GlobalFlowTable(buckets=8, ways=2, stash=0)
    bench, _ = run(dut, [Request(RESERVE, k, fid=1), Request(DELETE, k),
                         Request(RESERVE, k, fid=2), Request(LOOKUP, k)])
    assert [(r.status, r.fields and r.fields["fid"]) for r in responses(bench)] == [
        (GftStatus.INSERTED, 1), (GftStatus.DELETED, 1), (GftStatus.INSERTED, 2),
        (GftStatus.HIT, 2)]


def test_requests_behind_a_relocation_see_the_moved_entries():
    rng = seeded_rng("behind_relocation")
    dut = GlobalFlowTable(buckets=8, ways=1, stash=0, move_budget=3)
    pool = keys_that_relocate(rng, dut, moves=2, at_least=6)
    requests = []
    for n, k in enumerate(pool):
        requests.append(Request(RESERVE, k, fid=100 + n))
        requests += [Request(LOOKUP, x) for x in pool[:n + 1]]
    bench, expected = run(dut, requests)
    assert bench.stats["relocations"] > 0
    moved = {}
    for req, got in zip(requests, responses(bench)):
        if req.op == LOOKUP and got.status == GftStatus.HIT:
            moved.setdefault(req.key, set()).add(got.loc)
            assert got.fields["fid"] == 100 + pool.index(req.key)
    assert any(len(locs) > 1 for locs in moved.values()), "no entry was seen to move"


# --- Table full and relocation ----------------------------------------------------------------

def test_table_full_is_an_explicit_counted_outcome_and_overwrites_nothing():
    rng = seeded_rng("table_full")
    dut = GlobalFlowTable(buckets=4, ways=2, stash=1, move_budget=2)
    pool = keys(rng, 20)
    requests = [Request(RESERVE, k, fid=n) for n, k in enumerate(pool)]
    requests += [Request(LOOKUP, k) for k in pool]
    bench, _ = run(dut, requests)
    got = responses(bench)
    full = [n for n, r in enumerate(got[:20]) if r.status == GftStatus.FULL]
    inserted = {n: r for n, r in enumerate(got[:20]) if r.status == GftStatus.INSERTED}
    assert full and len(inserted) + len(full) == 20
    assert bench.stats["insert_failures"] == len(full)
    assert bench.stats["occupancy"] == len(inserted) == dut.params.capacity
    for n, r in enumerate(got[20:]):
        if n in inserted:
            assert r.status == GftStatus.HIT and r.fields["fid"] == n
        else:
            assert r.status == GftStatus.MISS


def filled_tables(rng, dut, attempts=5_000):
    """``(pool, contents)`` of model tables filled with random keys until the first FULL (or
    to capacity), a new one each time: ``contents`` is :func:`model_contents`."""
    from sim.model.gft_ops import model_contents
    for _ in range(attempts):
        model, pool = model_for(dut), []
        try:
            while len(pool) < dut.params.capacity:
                k = random_flow_key(rng)
                model.insert(k, fid=len(pool))
                pool.append(k)
        except TableFull:
            pass
        yield pool, model_contents(model)


def stash_return_race(rng, dut):
    """Keys whose RESERVEs leave a stash entry naming two buckets whose ways hold entries A and
    B with disjoint candidates: ``(pool, A, B)``. Deleting A then B back to back, each delete
    returns a stash entry into the bucket it frees, and the first candidate of B's bucket is
    the very entry A's delete takes."""
    for pool, contents in filled_tables(rng, dut):
        stash = sorted((loc[1], entry[7]) for loc, entry in contents.items()
                       if loc[0] == "stash")
        for slot, buckets in stash:
            a, b = (contents.get((bucket, 0)) for bucket in buckets)
            # The entry must be the first return candidate (lowest slot) of both buckets.
            first = all(min(s for s, bs in stash if bucket in bs) == slot for bucket in buckets)
            if a and b and first and not set(a[7]) & set(b[7]):
                return pool, a[0], b[0]
    raise AssertionError(f"no stash return race found in {dut.params}")


@pytest.mark.parametrize("gap", [0, 1, 2, 3, 4])
def test_back_to_back_frees_never_return_one_stash_entry_twice(gap):
    """The second delete is ``gap`` clocks behind the first (LOOKUPs of B, which share no
    bucket with A, fill the gap without holding anything), so it is at C, M, B, R or A when the
    first commits and takes the stash entry both buckets name."""
    rng = seeded_rng("stash_return_race")
    dut = GlobalFlowTable(buckets=8, ways=1, stash=3, move_budget=0)
    pool, a, b = stash_return_race(rng, dut)
    requests = [Request(RESERVE, k, fid=n) for n, k in enumerate(pool)]
    requests += [Request(DELETE, a), *[Request(LOOKUP, b)] * gap, Request(DELETE, b)]
    requests += [Request(LOOKUP, k) for k in pool]
    bench, _ = run(dut, requests)    # the scoreboard checks where each returned entry went
    assert bench.stats["stash_returns"] >= 1


def stash_return_triple(rng, dut):
    """Keys whose RESERVEs leave bucket entries A, A2 and O (pairwise disjoint candidates) and
    three stash entries naming O's bucket, such that deleting A returns the second of them
    and deleting A2 the first: ``(pool, A, A2, O)``. Deleted back to back, O's delete is at M
    when A's commits and at C when A2's does, and must return the third."""
    for pool, contents in filled_tables(rng, dut):
        stash = {loc[1]: entry[7] for loc, entry in contents.items() if loc[0] == "stash"}
        ways = {loc[0]: entry for loc, entry in contents.items() if loc[0] != "stash"}

        def naming(bucket):
            return sorted(slot for slot, buckets in stash.items() if bucket in buckets)

        for y, o in ways.items():
            if len(naming(y)) < 3:
                continue
            first, second = naming(y)[:2]
            for x1, a in ways.items():
                if x1 == y or naming(x1)[:1] != [second]:
                    continue
                for x2, a2 in ways.items():
                    if x2 in (y, x1) or naming(x2)[:1] != [first]:
                        continue
                    sets = [set(a[7]), set(a2[7]), set(o[7])]
                    if not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]):
                        return pool, a[0], a2[0], o[0]
    raise AssertionError(f"no three-way stash return race found in {dut.params}")


def test_three_back_to_back_frees_pass_over_both_taken_stash_candidates():
    rng = seeded_rng("stash_return_triple")
    dut = GlobalFlowTable(buckets=8, ways=1, stash=4, move_budget=0)
    pool, a, a2, o = stash_return_triple(rng, dut)
    requests = [Request(RESERVE, k, fid=n) for n, k in enumerate(pool)]
    requests += [Request(DELETE, a), Request(DELETE, a2), Request(DELETE, o)]
    requests += [Request(LOOKUP, k) for k in pool]
    bench, _ = run(dut, requests)
    assert bench.stats["stash_returns"] >= 3


def test_relocation_keeps_every_fid():
    rng = seeded_rng("relocation_fids")
    dut = GlobalFlowTable(buckets=8, ways=2, stash=2, move_budget=3)
    pool = keys_that_relocate(rng, dut, moves=3, at_least=12)
    requests = [Request(RESERVE, k, fid=0x1000 + n) for n, k in enumerate(pool)]
    requests += [Request(LOOKUP, k) for k in pool]
    bench, _ = run(dut, requests)
    got = responses(bench)
    assert bench.stats["relocations"] >= 3
    for n, (ins, look) in enumerate(zip(got[:len(pool)], got[len(pool):])):
        if ins.status == GftStatus.INSERTED:
            assert look.fields["fid"] == 0x1000 + n


# --- Aging ------------------------------------------------------------------------------------

def test_aging_frees_only_old_tentative_entries_and_reports_each():
    rng = seeded_rng("aging_only_old")
    dut = GlobalFlowTable(buckets=8, ways=2, stash=2, move_budget=1)
    old_t, old_b, young_t = keys(rng, 3), keys(rng, 3), keys(rng, 3)
    requests = [Request(RESERVE, k, fid=n, state=TENTATIVE) for n, k in enumerate(old_t)]
    requests += [Request(RESERVE, k, fid=10 + n, state=BOUND) for n, k in enumerate(old_b)]
    requests += [Request(RESERVE, k, fid=20 + n, state=TENTATIVE) for n, k in enumerate(young_t)]
    # Time jumps by 100 ticks after the first 6 requests have certainly committed.
    bench = GftBench(dut, rng=rng, timeout=50, now=lambda cycle: 0 if cycle < 60 else 100,
                     idle=0.0, drain=600)
    bench.run(requests[:6] + [Request(LOOKUP, old_t[0])] * 40 + requests[6:])
    board = Scoreboard(bench)
    assert not board.check()
    assert sorted(a.key for a in bench.aged) == sorted(old_t)
    assert all(a.fields["state"] == TENTATIVE and a.now == 100 for a in bench.aged)
    assert bench.stats["aged_out"] == 3 and bench.stats["occupancy"] == 6


def test_aging_never_delays_a_request():
    """The same requests with the same random idle pattern, once with entries expiring all
    along (the scan frees and writes) and once with aging disabled: every request is taken
    and answered on exactly the same cycle."""
    pool = keys(seeded_rng("aging_no_stall_keys"), 24)
    requests = [Request(RESERVE, k, fid=n) for n, k in enumerate(pool)]
    requests += [Request(LOOKUP, pool[n % len(pool)]) for n in range(400)]
    timing = []
    for timeout in (6, (1 << 15) - 1):
        # Time stands still until the fill has committed, then entries expire all along.
        dut = GlobalFlowTable(buckets=16, ways=2, stash=2, move_budget=1)
        bench, _ = run(dut, requests, rng=seeded_rng("aging_no_stall"), idle=0.5,
                       timeout=timeout, now=lambda cycle: max(0, cycle - 300) // 4)
        timing.append(([c for _, c, _ in bench.sent], [c for _, c, _ in bench.responses]))
        if timeout == 6:
            assert bench.stats["aged_out"] > 10
        else:
            assert bench.stats["aged_out"] == 0
    assert timing[0] == timing[1]


# `least_aged`: a floor on the frees of each run, that aging did happen among the races, well
# below their spread (ways 55 to 104, stash 16 to 58 over 24 runs at e8f7ab9; the transport
# stage T lengthened the window in which a request cancels a step, so fewer steps free).
@pytest.mark.parametrize("ways, stash, pool_size, least_aged", [(2, 1, 12, 30), (1, 4, 9, 10)],
                         ids=["ways", "stash"])
def test_requests_racing_aging_steps_of_their_buckets_cancel_them(ways, stash, pool_size,
                                                                  least_aged):
    """Four buckets, a dozen keys, entries expiring a few cycles after their last touch, and
    sparse requests on those keys: the scan examines the same buckets over and over, so
    requests keep arriving on an empty issue buffer while a step on their bucket is in
    flight. Each must cancel that step (or the step frees an entry the request has read);
    the scoreboard places every free in the response order. The second variant keeps half
    its entries in the stash, so that cancelled steps are mostly stash steps (whose slot
    write is decided a stage ahead of D, the cancel included)."""
    for seed in range(3):
        name = "aging_race" if stash == 1 else "aging_race_stash"
        rng = seeded_rng(f"{name}_{seed}")
        dut = GlobalFlowTable(buckets=4, ways=ways, stash=stash, move_budget=1,
                              timestamp_bits=8)
        pool = keys(rng, pool_size)
        requests = [Request(rng.choices((LOOKUP, RESERVE, UPDATE, DELETE), (3, 4, 2, 1))[0],
                            rng.choice(pool), fid=n, tag=n & 0xFF,
                            mask=frozenset({rng.choice(("fid", "touch"))}))
                    for n in range(300)]
        bench, _ = run(dut, requests, rng=rng, idle=0.9, timeout=2, now=lambda cycle: cycle)
        assert bench.stats["aged_out"] > least_aged, bench.stats


def test_aging_frees_in_sweep_order():
    rng = seeded_rng("aging_order")
    dut = GlobalFlowTable(buckets=8, ways=2, stash=0, move_budget=0)
    pool = keys(rng, 24)
    bench = GftBench(dut, rng=rng, timeout=5, now=lambda cycle: 0 if cycle < 300 else 20,
                     drain=600)
    bench.run([Request(RESERVE, k, fid=n) for n, k in enumerate(pool)])
    assert not Scoreboard(bench).check()
    locs = [a.loc for a in bench.aged]
    assert len(locs) == bench.stats["inserts"] and bench.stats["occupancy"] == 0
    start = locs.index(min(locs))   # the sweep was somewhere when time jumped
    assert locs[start:] + locs[:start] == sorted(locs)


# --- Throughput and latency -------------------------------------------------------------------

def test_one_lookup_per_clock_at_95_percent_load():
    rng = seeded_rng("throughput")
    dut = GlobalFlowTable(buckets=16, ways=4, stash=8, move_budget=3)
    p = dut.params
    # Fill with keys the model can place (a FULL attempt costs a whole search), to >= 95%.
    model, stored = model_for(dut), []
    for _ in range(50 * p.capacity):
        if len(stored) >= 0.95 * p.capacity:
            break
        k = random_flow_key(rng)
        try:
            model.insert(k, fid=len(stored))
            stored.append(k)
        except TableFull:
            pass
    fill = [Request(RESERVE, k, fid=n, state=BOUND) for n, k in enumerate(stored)]
    pool = stored + keys(rng, len(stored))
    lookups = [Request(LOOKUP, rng.choice(pool)) for _ in range(400)]
    bench = GftBench(dut, rng=rng, timeout=1)
    bench.run(fill + lookups)
    assert not Scoreboard(bench).check()
    assert bench.stats["occupancy"] >= 0.95 * p.capacity
    got = responses(bench)[len(fill):]
    assert 0.2 < sum(r.status == GftStatus.HIT for r in got) / len(got) < 0.8
    # Once the fill (which may relocate) has drained, lookups are taken every clock.
    taken = [cycle for _, cycle, _ in bench.sent[-300:]]
    assert taken[-1] - taken[0] == len(taken) - 1


def test_response_latency_is_the_hash_latency_plus_9_cycles_for_every_op():
    rng = seeded_rng("latency")
    dut = GlobalFlowTable(buckets=64, ways=2)
    model = model_for(dut)
    chosen, used = [], set()
    while len(chosen) < 4:       # keys sharing no bucket: nothing waits for anything
        k = random_flow_key(rng)
        if not used & set(model.candidates(k)):
            chosen.append(k)
            used |= set(model.candidates(k))
    bench, _ = run(dut, [Request(op, k, fid=1) for op, k in zip(GftOp, chosen)])
    assert [got - sent for (_, sent, _), (_, got, _) in zip(bench.sent, bench.responses)] == \
        [FlowHash().latency + 9] * 4


# --- Export -----------------------------------------------------------------------------------

def test_small_table_exports_to_verilog():
    text = verilog.convert(GlobalFlowTable(buckets=4, ways=2, stash=1, move_budget=1,
                                           key_mode="ipv4", tag_width=0), name="gft_small")
    assert "module gft_small" in text and "[-1:0]" not in text
