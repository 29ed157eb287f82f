# amaranth: UnusedElaboratable=no
"""The flow hash: the Python SipHash-2-4 reference against the published vectors, and the
hardware against the reference in Amaranth's simulator: the pipelined
:class:`hdl.hash.siphash.FlowHash` and the ring :class:`hdl.hash.folded.FoldedFlowHash`."""

import re
from collections import deque

import pytest
from amaranth.sim import Simulator

from hdl.hash.folded import FoldedFlowHash
from hdl.hash.siphash import FlowHash
from sim.flowhash import DEFAULT_SECRET, flow_hash, siphash
from sim.flowkey import FlowKey
from sim.randkeys import random_flow_key
from tests.seeds import seeded_rng


# SipHash-2-4 with key 00 01 .. 0f of the messages 00 01 .. (n-1), n = 0..63: the 64-bit
# outputs as bytes, least significant first. From the reference implementation's vectors.h
# (github.com/veorq/SipHash, vectors_sip64), which are the vectors of the SipHash paper.
SIPHASH24_VECTORS = [
    "310e0edd47db6f72", "fd67dc93c539f874", "5a4fa9d909806c0d", "2d7efbd796666785",
    "b7877127e09427cf", "8da699cd64557618", "cee3fe586e46c9cb", "37d1018bf50002ab",
    "6224939a79f5f593", "b0e4a90bdf82009e", "f3b9dd94c5bb5d7a", "a7ad6b22462fb3f4",
    "fbe50e86bc8f1e75", "903d84c02756ea14", "eef27a8e90ca23f7", "e545be4961ca29a1",
    "db9bc2577fcc2a3f", "9447be2cf5e99a69", "9cd38d96f0b3c14b", "bd6179a71dc96dbb",
    "98eea21af25cd6be", "c7673b2eb0cbf2d0", "883ea3e395675393", "c8ce5ccd8c030ca8",
    "94af49f6c650adb8", "eab8858ade92e1bc", "f315bb5bb835d817", "adcf6b0763612e2f",
    "a5c91da7acaa4dde", "716595876650a2a6", "28ef495c53a387ad", "42c341d8fa92d832",
    "ce7cf2722f512771", "e37859f94623f3a7", "381205bb1ab0e012", "ae97a10fd434e015",
    "b4a31508beff4d31", "81396229f0907902", "4d0cf49ee5d4dcca", "5c73336a76d8bf9a",
    "d0a704536ba93e0e", "925958fcd6420cad", "a915c29bc8067318", "952b79f3bc0aa6d4",
    "f21df2e41d4535f9", "87577519048f53a9", "10a56cf5dfcd9adb", "eb75095ccd986cd0",
    "51a9cb9ecba312e6", "96afadfc2ce666c7", "72fe52975a4364ee", "5a1645b276d592a1",
    "b274cb8ebf87870a", "6f9bb4203de7b381", "eaecb2a30b22a87f", "9924a43cc1315724",
    "bd838d3aafbf8db7", "0b1a2a3265d51aea", "135079a3231ce660", "932b2846e4d70666",
    "e1915f5cb1eca46c", "f325965ca16d629f", "575ff28e60381be5", "724506eb4c328a95",
]


# --- Python reference ------------------------------------------------------------------------

@pytest.mark.parametrize("length", range(len(SIPHASH24_VECTORS)))
def test_reference_matches_published_siphash24_vectors(length):
    expected = int.from_bytes(bytes.fromhex(SIPHASH24_VECTORS[length]), "little")
    assert siphash(bytes(range(16)), bytes(range(length))) == expected


def test_reference_hash_depends_on_secret():
    key = FlowKey.of("192.0.2.1", "198.51.100.7", 6, 40000, 443)
    other = bytes(range(1, 17))
    assert flow_hash(DEFAULT_SECRET, key) != flow_hash(other, key)


# --- Hardware against the reference ----------------------------------------------------------

def simulate(dut, jobs, rng, *, idle=0.0, backpressure=0.0, stall_runs=None):
    """Push ``jobs`` (key, tag, secret) through ``dut`` in the Amaranth simulator.

    One testbench plays producer and consumer in lockstep, so cycles can be counted. Each cycle
    the producer, when free, offers the next job with probability ``1 - idle`` (holding it until
    taken), and ``o_stream.ready`` is low with probability ``backpressure``; with
    ``stall_runs=(low, high)`` it is instead held low for runs of ``low`` to ``high`` cycles,
    with one ready cycle between runs. While no job is offered, ``secret`` carries random junk:
    the design may only use the secret of the cycle a key is taken in.

    Checked every cycle: the stream rules on the output (a valid output holds until taken),
    no output without a key in flight, and ``i_stream.ready`` high exactly while fewer than
    ``dut.capacity`` keys are in flight.

    Returns one ``(in_cycle, out_cycle, hash, tag)`` per job, in output order, and the largest
    number of keys seen in flight.
    """
    results = []
    most_in_flight = 0

    async def testbench(ctx):
        nonlocal most_in_flight
        pending = deque(jobs)
        taken = deque()
        offering = False
        stalled = None
        stall_left = 0
        cycle = 0
        while len(results) < len(jobs):
            if not offering:
                offering = bool(pending) and rng.random() >= idle
                if offering:
                    key, tag, secret = pending[0]
                    ctx.set(dut.i_stream.payload.key.as_value(), key.pack())
                    if dut.tag_width:
                        ctx.set(dut.i_stream.payload.tag, tag)
                    ctx.set(dut.secret, int.from_bytes(secret, "little"))
                else:
                    ctx.set(dut.secret, rng.getrandbits(128))
            ctx.set(dut.i_stream.valid, offering)
            if stall_runs is None:
                ready = rng.random() >= backpressure
            else:
                ready = stall_left == 0
                stall_left = rng.randint(*stall_runs) if ready else stall_left - 1
            ctx.set(dut.o_stream.ready, ready)

            in_flight = len(taken)
            most_in_flight = max(most_in_flight, in_flight)
            # The folded ring also refuses a key whose slot an accepted key takes.
            ring = getattr(dut, "ring", None)
            slot_taken = ring is not None and any(cycle - c in (ring, 2 * ring, 3 * ring)
                                                  for c in taken)
            assert ctx.get(dut.i_stream.ready) == (in_flight < dut.capacity and
                                                   not slot_taken), \
                f"cycle {cycle}: i_stream.ready is {ctx.get(dut.i_stream.ready)} with " \
                f"{in_flight} of {dut.capacity} keys in flight" + \
                (", the slot taken" if slot_taken else "")
            valid = ctx.get(dut.o_stream.valid)
            output = (ctx.get(dut.o_stream.payload.hash),
                      ctx.get(dut.o_stream.payload.tag) if dut.tag_width else 0)
            if stalled is not None:
                assert valid and output == stalled, \
                    f"cycle {cycle}: output changed from {stalled} while not ready"
            took = offering and ctx.get(dut.i_stream.ready)
            gave = valid and ready
            stalled = output if valid and not gave else None

            await ctx.tick()
            if took:
                pending.popleft()
                taken.append(cycle)
                offering = False
            if gave:
                assert taken, f"cycle {cycle}: output without input"
                results.append((taken.popleft(), cycle, *output))
            cycle += 1
            assert cycle < 100 + 100 * len(jobs), \
                f"simulation does not finish: {len(results)} outputs for {len(jobs)} jobs, " \
                f"{len(pending)} never taken"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return results, most_in_flight


def make(design, tag_width=0):
    """``design``: 2 or 1 (:class:`FlowHash` with that many stages per round) or "folded"
    (:class:`FoldedFlowHash`)."""
    if design == "folded":
        return FoldedFlowHash(tag_width=tag_width)
    return FlowHash(stages_per_round=design, tag_width=tag_width)


DESIGNS = [2, 1, "folded"]


def random_jobs(rng, count, tag_width, secrets):
    return [(random_flow_key(rng), rng.getrandbits(tag_width), rng.choice(secrets))
            for _ in range(count)]


def check_hashes(jobs, results):
    assert len(results) == len(jobs)
    for index, ((key, tag, secret), (_, _, got_hash, got_tag)) in enumerate(zip(jobs, results)):
        assert (got_hash, got_tag) == (flow_hash(secret, key), tag), \
            f"job {index}: key {key}, secret {secret.hex()}: got {got_hash:#018x} tag {got_tag:#x}"


# 100 bits: three memories in the tag ring (FlowHash.TAG_CHUNK), the last one narrower.
@pytest.mark.parametrize("design, tag_width", [(2, 8), (1, 5), (2, 0), (1, 0), (2, 100),
                                               ("folded", 8), ("folded", 0)])
@pytest.mark.parametrize("idle, backpressure", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.3, 0.6)])
def test_hardware_matches_reference_under_idle_and_backpressure(design, tag_width,
                                                                 idle, backpressure):
    rng = seeded_rng(f"flowhash-hw-{design}-{tag_width}-{idle}-{backpressure}")
    dut = make(design, tag_width)
    jobs = random_jobs(rng, 120, tag_width, [rng.randbytes(16)])
    results, _ = simulate(dut, jobs, rng, idle=idle, backpressure=backpressure)
    check_hashes(jobs, results)


@pytest.mark.parametrize("design", DESIGNS)
def test_every_hash_matches_reference_with_a_fresh_secret_per_key(design):
    """Random keys, each under its own random secret, random idle cycles on the input and
    random backpressure on the output."""
    rng = seeded_rng(f"flowhash-hw-secrets-{design}")
    dut = make(design, 6)
    jobs = [(random_flow_key(rng), rng.getrandbits(6), rng.randbytes(16)) for _ in range(200)]
    results, _ = simulate(dut, jobs, rng, idle=rng.uniform(0.0, 0.6),
                          backpressure=rng.uniform(0.0, 0.8))
    check_hashes(jobs, results)


def test_hardware_hashes_ipv4_key_built_from_strings():
    rng = seeded_rng("flowhash-hw-fixed")
    key = FlowKey.of("10.0.0.1", "10.0.0.2", 17, 5353, 53, zone=0x00A_00B)
    jobs = [(key, 0, DEFAULT_SECRET)]
    results, _ = simulate(FlowHash(), jobs, rng)
    check_hashes(jobs, results)


@pytest.mark.parametrize("design", [2, "folded"])
def test_keys_in_flight_keep_the_secret_they_entered_with(design):
    """The secret changes with every key, keys enter back to back, and the output stalls at
    random: each hash must still use the secret present when its key entered."""
    rng = seeded_rng(f"flowhash-hw-secret-{design}")
    dut = make(design, 4)
    jobs = random_jobs(rng, 150, 4, [rng.randbytes(16) for _ in range(3)])
    results, _ = simulate(dut, jobs, rng, backpressure=0.3)
    check_hashes(jobs, results)


def test_output_holds_while_not_ready():
    """Heavy backpressure: ``simulate`` fails if a stalled output changes or drops ``valid``."""
    rng = seeded_rng("flowhash-hw-hold")
    dut = FlowHash(tag_width=8)
    jobs = random_jobs(rng, 40, 8, [rng.randbytes(16)])
    results, _ = simulate(dut, jobs, rng, backpressure=0.9)
    check_hashes(jobs, results)


@pytest.mark.parametrize("design", DESIGNS)
def test_full_queue_loses_duplicates_and_reorders_nothing(design):
    """The consumer stalls for long runs, so ``capacity`` keys pile up and ``i_stream.ready``
    falls (``simulate`` checks it falls exactly then). Tags are the job numbers, so every tag
    must come out once, in order, with its key's hash."""
    rng = seeded_rng(f"flowhash-hw-full-{design}")
    dut = make(design, 16)
    jobs = [(random_flow_key(rng), n, rng.randbytes(16)) for n in range(400)]
    results, most_in_flight = simulate(dut, jobs, rng, idle=0.05, stall_runs=(0, 60))
    assert [tag for *_, tag in results] == list(range(len(jobs)))
    check_hashes(jobs, results)
    assert most_in_flight == dut.capacity


@pytest.mark.parametrize("design, latency, capacity", [(2, 33, 34), (1, 17, 18),
                                                        ("folded", 34, 16)])
def test_latency_is_the_pipeline_plus_the_output_register(design, latency, capacity):
    dut = make(design)
    assert (dut.latency, dut.capacity) == (latency, capacity)


def test_default_is_half_a_round_per_stage():
    assert FlowHash().stages_per_round == 2


@pytest.mark.parametrize("stages_per_round", [1, 2])
@pytest.mark.parametrize("tag_width", [0, 12])
def test_accepts_one_key_per_clock_when_not_stalled(stages_per_round, tag_width):
    """Back-to-back keys, output always ready: a key enters every cycle, each hash appears
    exactly ``latency`` cycles after its key entered, and hashes leave one per cycle."""
    rng = seeded_rng(f"flowhash-hw-throughput-{stages_per_round}-{tag_width}")
    dut = FlowHash(stages_per_round=stages_per_round, tag_width=tag_width)
    count = 150
    jobs = random_jobs(rng, count, tag_width, [rng.randbytes(16)])
    results, _ = simulate(dut, jobs, rng)
    check_hashes(jobs, results)
    in_cycles = [r[0] for r in results]
    out_cycles = [r[1] for r in results]
    assert in_cycles == list(range(count))
    assert [o - i for i, o in zip(in_cycles, out_cycles)] == [dut.latency] * count
    throughput = count / (out_cycles[-1] - out_cycles[0] + 1)
    print(f"stages_per_round={stages_per_round}: latency {dut.latency} cycles, "
          f"throughput {throughput:.3f} keys/cycle")
    assert throughput == 1.0


@pytest.mark.parametrize("tag_width", [0, 12])
def test_folded_ring_takes_eight_keys_back_to_back_then_one_per_four_cycles(tag_width):
    """Back-to-back keys, output always ready: the ring takes a key in each of its 8 slots one
    per clock, refuses keys while those come round (``simulate`` checks ``ready`` in every
    cycle against the rule), and from then on takes 8 keys per 32 cycles; every hash appears
    exactly ``latency`` cycles after its key entered."""
    rng = seeded_rng(f"flowhash-folded-throughput-{tag_width}")
    dut = FoldedFlowHash(tag_width=tag_width)
    count = 96
    jobs = random_jobs(rng, count, tag_width, [rng.randbytes(16)])
    results, _ = simulate(dut, jobs, rng)
    check_hashes(jobs, results)
    in_cycles = [r[0] for r in results]
    period = dut.ring * dut.interval          # 32 cycles for 8 keys
    assert in_cycles == [period * (n // dut.ring) + n % dut.ring for n in range(count)]
    assert [o - i for i, o, *_ in results] == [dut.latency] * count


# --- Parameters ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 3, 4, -1, 0.5, 2.0, "2", None, True])
def test_stages_per_round_must_be_1_or_2(value):
    message = f"Stages per round must be 1 or 2, not {value!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        FlowHash(stages_per_round=value)


@pytest.mark.parametrize("design", [FlowHash, FoldedFlowHash])
@pytest.mark.parametrize("value", [-1, 2.0, "8", None, False])
def test_tag_width_must_be_a_non_negative_integer(design, value):
    message = f"Tag width must be a non-negative integer, not {value!r}"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        design(tag_width=value)


@pytest.mark.parametrize("design", [FlowHash, FoldedFlowHash])
def test_parameters_are_keyword_only(design):
    with pytest.raises(TypeError):
        design(2)


@pytest.mark.parametrize("design", [FlowHash, FoldedFlowHash])
def test_zero_tag_width_leaves_the_tag_field_out(design):
    dut = design(tag_width=0)
    assert [name for name, _ in dut.i_stream.payload.shape()] == ["key"]
    assert [name for name, _ in dut.o_stream.payload.shape()] == ["hash"]
