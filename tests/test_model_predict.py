"""Golden model of the predict table (TCAM): sim.model.predict."""

import random

import pytest

from hdl.wire import ErrorCode
from sim.flowkey import FlowKey
from sim.model.predict import PredictFull, PredictTable
from tests.seeds import seed_for


ALL = FlowKey((1 << 128) - 1, (1 << 128) - 1, 0xFFFF, 0xFFFF, 0xFF, 0xFFFFFF)   # exact
ANY_SPORT = ALL._replace(src_port=0)                                              # FTP data
PARENT = 0x0102_0003
OTHER_PARENT = 0x0204_0009


def child(sport=40000, dport=20, src="198.51.100.7", dst="10.0.0.5"):
    return FlowKey.of(src, dst, 6, sport, dport)


# --- Matching ---------------------------------------------------------------------------------

def test_exact_entry_matches_only_its_key():
    t = PredictTable()
    t.add(child(), ALL, PARENT, now=0)
    assert t.match(child(sport=40001), now=1) is None
    e = t.match(child(), now=1)
    assert e is not None and e.parent_fid == PARENT


def test_wildcard_field_matches_any_value():
    t = PredictTable()
    t.add(child(sport=0), ANY_SPORT, PARENT, now=0)
    assert t.match(child(sport=51234), now=1).parent_fid == PARENT


def test_wildcard_entry_still_compares_the_other_fields():
    t = PredictTable()
    t.add(child(sport=0), ANY_SPORT, PARENT, now=0)
    assert t.match(child(sport=51234, dport=21), now=1) is None


def test_partial_care_mask_matches_a_prefix():
    t = PredictTable()
    care = ALL._replace(src_addr=ALL.src_addr ^ 0xFF, src_port=0)       # src in a /24
    t.add(child(src="198.51.100.0", sport=0), care, PARENT, now=0)
    assert t.match(child(src="198.51.101.7"), now=1) is None
    assert t.match(child(src="198.51.100.99"), now=1) is not None


def test_most_specific_entry_wins():
    t = PredictTable()
    loose = t.add(child(sport=0), ANY_SPORT, OTHER_PARENT, now=0)     # slot 0, fewer care bits
    exact = t.add(child(), ALL, PARENT, now=0)                         # slot 1
    assert t.match(child(), now=1) is exact
    assert t.match(child(), now=1) is loose


def test_equally_specific_entries_resolve_to_lowest_slot():
    t = PredictTable()
    first = t.add(child(sport=0), ANY_SPORT, PARENT, now=0)
    second = t.add(child(sport=0), ANY_SPORT, OTHER_PARENT, now=0)
    assert (first.slot, second.slot) == (0, 1)
    assert t.match(child(), now=1) is first


def test_new_entry_takes_lowest_free_slot():
    t = PredictTable()
    for sport in (1, 2, 3):
        t.add(child(sport=sport), ALL, PARENT, now=0)
    t.match(child(sport=2), now=0)
    assert t.add(child(sport=9), ALL, PARENT, now=0).slot == 1


def test_match_consumes_the_entry():
    t = PredictTable()
    t.add(child(), ALL, PARENT, now=0)
    assert t.match(child(), now=1) is not None
    assert t.match(child(), now=2) is None and len(t) == 0


def test_matched_entry_is_best_among_random_entries():
    # Field values are 0/1 so that random keys often match; care is all or nothing per field.
    seed = seed_for("predict_random")
    rng = random.Random(seed)
    t = PredictTable(entries=32, per_parent_cap=32)
    for _ in range(200):
        if len(t) < 32:
            care = FlowKey(*(w if rng.random() < 0.7 else 0
                             for w in (ALL.src_addr, ALL.dst_addr, 0xFFFF, 0xFFFF, 0xFF, 0xFFFFFF)))
            t.add(FlowKey(*(rng.choice((0, 1)) for _ in range(6))), care, rng.randrange(8), now=0)
        key = FlowKey(*(rng.choice((0, 1)) for _ in range(6)))
        live = [e for e in t.entries() if e.matches(key)]
        got = t.match(key, now=0)
        if not live:
            assert got is None
            continue
        best = max(e.specificity for e in live)
        assert got.specificity == best
        assert got.slot == min(e.slot for e in live if e.specificity == best)
        assert got not in t.entries()


# --- Expiry -----------------------------------------------------------------------------------

def test_entry_matches_until_its_timeout_and_never_after():
    t = PredictTable(default_timeout=10)
    t.add(child(), ALL, PARENT, now=100)
    assert t.match(child(), now=110) is not None         # exactly at the timeout: still live
    t.add(child(), ALL, PARENT, now=100)
    assert t.match(child(), now=110.001) is None


def test_expire_returns_and_counts_the_expired_entries():
    t = PredictTable(default_timeout=10)
    old = t.add(child(sport=1), ALL, PARENT, now=0)
    t.add(child(sport=2), ALL, PARENT, now=5)
    assert t.expire(now=12) == [old]
    assert len(t) == 1 and t.stats["expired"] == 1


def test_explicit_timeout_overrides_the_default_and_zero_means_default():
    t = PredictTable(default_timeout=10)
    short = t.add(child(sport=1), ALL, PARENT, now=0, timeout=2)
    default = t.add(child(sport=2), ALL, PARENT, now=0, timeout=0)
    assert (short.expires, default.expires) == (2, 10)


def test_expired_entries_free_their_slots_and_parent_quota():
    t = PredictTable(entries=2, per_parent_cap=2, default_timeout=10)
    t.add(child(sport=1), ALL, PARENT, now=0)
    t.add(child(sport=2), ALL, PARENT, now=0)
    e = t.add(child(sport=3), ALL, PARENT, now=11)
    assert e.slot == 0 and len(t) == 1 and t.stats["expired"] == 2


# --- Capacity ---------------------------------------------------------------------------------

def test_full_table_raises_predict_full_and_changes_nothing():
    t = PredictTable(entries=2, per_parent_cap=1)
    t.add(child(sport=1), ALL, 1, now=0)
    t.add(child(sport=2), ALL, 2, now=0)
    before = [(e.slot, e.key, e.expires) for e in t.entries()]
    with pytest.raises(PredictFull) as info:
        t.add(child(sport=3), ALL, 3, now=1)
    assert info.value.code == ErrorCode.PREDICT_FULL and info.value.reason == "table"
    assert [(e.slot, e.key, e.expires) for e in t.entries()] == before
    assert t.stats["full"] == 1


def test_per_parent_cap_raises_predict_full():
    t = PredictTable(entries=8, per_parent_cap=2)
    t.add(child(sport=1), ALL, PARENT, now=0)
    t.add(child(sport=2), ALL, PARENT, now=0)
    with pytest.raises(PredictFull) as info:
        t.add(child(sport=3), ALL, PARENT, now=0)
    assert info.value.reason == "parent" and len(t) == 2 and t.stats["full"] == 1
    t.add(child(sport=3), ALL, OTHER_PARENT, now=0)      # another parent still has room


# --- Refresh ----------------------------------------------------------------------------------

def test_identical_add_refreshes_instead_of_duplicating():
    t = PredictTable(default_timeout=10)
    first = t.add(child(), ALL, PARENT, now=0)
    again = t.add(child(), ALL, PARENT, now=8)
    assert again is first and first.expires == 18 and len(t) == 1
    assert (t.stats["adds"], t.stats["refreshes"]) == (1, 1)


def test_refresh_ignores_value_bits_under_wildcards():
    t = PredictTable()
    first = t.add(child(sport=1111), ANY_SPORT, PARENT, now=0)
    assert t.add(child(sport=2222), ANY_SPORT, PARENT, now=1) is first and len(t) == 1


def test_refresh_succeeds_on_a_full_table():
    t = PredictTable(entries=1)
    first = t.add(child(), ALL, PARENT, now=0)
    assert t.add(child(), ALL, PARENT, now=1) is first


def test_same_key_for_another_parent_is_a_separate_entry():
    t = PredictTable()
    t.add(child(), ALL, PARENT, now=0)
    t.add(child(), ALL, OTHER_PARENT, now=0)
    assert len(t) == 2


# --- Parent teardown --------------------------------------------------------------------------

def test_remove_parent_removes_only_that_parents_entries():
    t = PredictTable()
    t.add(child(sport=1), ALL, PARENT, now=0)
    t.add(child(sport=2), ALL, OTHER_PARENT, now=0)
    t.add(child(sport=3), ALL, PARENT, now=0)
    assert t.remove_parent(PARENT) == 2
    assert [e.parent_fid for e in t.entries()] == [OTHER_PARENT]
    assert t.remove_parent(PARENT) == 0 and t.stats["removed"] == 2


# --- Statistics -------------------------------------------------------------------------------

def test_stats_count_adds_matches_and_misses():
    t = PredictTable()
    t.add(child(sport=1), ALL, PARENT, now=0)
    t.add(child(sport=2), ALL, PARENT, now=0)
    t.match(child(sport=1), now=0)
    t.match(child(sport=9), now=0)
    s = t.stats
    assert (s["adds"], s["matches"], s["misses"], s["expired"], s["full"], s["entries"]) == \
        (2, 1, 1, 0, 0, 1)


# --- Validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(entries=0), "entries must be a positive integer, not 0"),
    (dict(entries=2.0), "entries must be a positive integer, not 2.0"),
    (dict(default_timeout=0), "default_timeout must be a positive number of seconds, not 0"),
    (dict(default_timeout="5"), "default_timeout must be a positive number of seconds, not '5'"),
    (dict(per_parent_cap=0), "per_parent_cap must be an integer from 1 to entries (32), not 0"),
    (dict(entries=4, per_parent_cap=5), "per_parent_cap must be an integer from 1 to entries (4), not 5"),
])
def test_constructor_rejects_bad_parameter(kwargs, message):
    with pytest.raises(ValueError) as info:
        PredictTable(**kwargs)
    assert str(info.value) == message


def test_default_per_parent_cap_is_four_or_the_table_size():
    assert PredictTable().per_parent_cap == 4
    assert PredictTable(entries=2).per_parent_cap == 2


def test_empty_table_is_still_true():
    # `predict or PredictTable()` must keep a caller's empty table.
    assert PredictTable(entries=1)


def test_constructor_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        PredictTable(32)


@pytest.mark.parametrize("args, error, message", [
    (dict(key=child()._replace(src_port=1 << 16)), ValueError, "key.src_port must be a 16-bit integer"),
    (dict(care=ALL._replace(zone=1 << 24)), ValueError, "care.zone must be a 24-bit integer"),
    (dict(key=tuple(child())), TypeError, "key must be a FlowKey"),
    (dict(parent_fid=1 << 32), ValueError, "parent_fid must be a 32-bit packed FID"),
    (dict(timeout=-1), ValueError, "timeout must be a positive number of seconds"),
    (dict(now="later"), ValueError, "now must be a number of seconds"),
])
def test_add_rejects_bad_argument_and_changes_nothing(args, error, message):
    t = PredictTable()
    call = dict(key=child(), care=ALL, parent_fid=PARENT, now=0)
    call.update(args)
    with pytest.raises(error, match=message):
        t.add(**call)
    assert len(t) == 0 and t.stats["adds"] == 0


def test_remove_matching_frees_only_that_parents_entries_the_key_matches():
    from sim.flowkey import FlowKey
    from sim.model.predict import PredictTable
    table = PredictTable(entries=8, per_parent_cap=8)
    full = FlowKey(*([(1 << 128) - 1] * 2 + [0xFFFF, 0xFFFF, 0xFF, 0xFFFFFF]))
    to_media = FlowKey.of("0.0.0.0", "10.0.0.5", 17, 0, 30000)
    care_to = full._replace(src_addr=0, src_port=0)
    from_media = FlowKey.of("10.0.0.5", "0.0.0.0", 17, 30000, 0)
    care_from = full._replace(dst_addr=0, dst_port=0)
    table.add(to_media, care_to, parent_fid=1, now=0)
    table.add(from_media, care_from, parent_fid=1, now=0)
    table.add(from_media, care_from, parent_fid=2, now=0)
    reverse_of_child = FlowKey.of("10.0.0.5", "10.0.0.6", 17, 30000, 40000)
    assert table.remove_matching(reverse_of_child, parent_fid=1) == 1
    masked = lambda key, care: FlowKey(*(k & c for k, c in zip(key, care)))  # noqa: E731
    assert [(e.parent_fid, e.key) for e in table.entries()] == [
        (1, masked(to_media, care_to)), (2, masked(from_media, care_from))]
