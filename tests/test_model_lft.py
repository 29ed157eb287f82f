"""The local flow table model: set-associative, FIFO eviction per bucket, FID-checked delete."""

import pytest

from sim.flowkey import FlowKey
from sim.model.lft import LocalFlowTable


def key(n):
    return FlowKey.of("10.0.0.1", "10.0.0.2", 6, 1000 + n, 80)


def test_added_flow_is_found_and_a_missing_one_is_not():
    lft = LocalFlowTable(buckets=4, ways=2)
    lft.add(key(1), 0x1234)
    assert lft.lookup(key(1)).fid == 0x1234
    assert lft.lookup(key(2)) is None
    assert (lft.stats["hits"], lft.stats["misses"]) == (1, 1)


def test_adding_a_present_key_updates_its_fid_and_keeps_its_counts():
    lft = LocalFlowTable(buckets=4, ways=2)
    lft.add(key(1), 1)
    lft.lookup(key(1)).packets = 5
    assert lft.add(key(1), 2) is None
    assert len(lft) == 1 and lft.lookup(key(1)).fid == 2 and lft.lookup(key(1)).packets == 5


def test_full_bucket_evicts_its_oldest_installed_entry_and_returns_it():
    lft = LocalFlowTable(buckets=1, ways=2)
    lft.add(key(1), 1)
    lft.add(key(2), 2)
    lft.lookup(key(1))            # a hit does not refresh: eviction is by install order
    victim = lft.add(key(3), 3)
    assert victim.key == key(1) and victim.fid == 1
    assert lft.lookup(key(1)) is None and {e.key for e in lft.entries()} == {key(2), key(3)}
    assert lft.stats["evictions"] == 1


def test_delete_with_a_different_fid_leaves_the_newer_entry():
    lft = LocalFlowTable(buckets=4, ways=2)
    lft.add(key(1), 7)
    assert lft.delete(key(1), fid=6) is None
    assert lft.lookup(key(1)).fid == 7
    assert lft.delete(key(1), fid=7).fid == 7 and len(lft) == 0


@pytest.mark.parametrize("buckets", [0, 3, 6, -4, "8"])
def test_buckets_must_be_a_power_of_two(buckets):
    with pytest.raises(ValueError, match="buckets must be a power of two"):
        LocalFlowTable(buckets=buckets)


@pytest.mark.parametrize("ways", [0, -1, 1.5])
def test_ways_must_be_a_positive_integer(ways):
    with pytest.raises(ValueError, match="ways must be a positive integer"):
        LocalFlowTable(ways=ways)
