"""The hardware GFT's operations on the golden model: what each request must answer.

:class:`hdl.gft.table.GlobalFlowTable` takes requests (:class:`~hdl.gft.layouts.GftOp`) and
answers each with a status, the entry and its location. :class:`GftOpsModel` gives the same
answer from :class:`sim.model.gft.GlobalFlowTable`, so a scoreboard can compare results *and*
locations; :class:`Request`, :class:`Response` and :class:`Aged` are the Python values of the
stream payloads, converted with the layouts of :class:`hdl.gft.layouts.GftParams`.
"""

from dataclasses import dataclass, field, replace

from hdl.gft.layouts import NO_ENTRY, EntryState, GftOp, GftStatus
from sim.flowkey import FlowKey

from .gft import GlobalFlowTable, TableFull


__all__ = ["Request", "Response", "Aged", "GftOpsModel", "Scoreboard", "MASK_FIELDS", "SECRET",
           "model_for", "model_contents", "random_request"]


MASK_FIELDS = ("fid", "state", "aware", "counter", "predict", "touch")

SECRET = bytes(range(16))
"""The hash secret the benches load unless told otherwise."""


@dataclass(frozen=True)
class Request:
    """One request. ``mask`` names the fields an UPDATE writes (:data:`MASK_FIELDS`)."""
    op: GftOp
    key: FlowKey
    fid: int = 0
    state: EntryState = EntryState.TENTATIVE
    aware: int = 0
    counter: int = 0
    predict: bool = False
    mask: frozenset = frozenset()
    tag: int = 0

    def payload(self, params):
        """The request as a dict for ``ctx.set(dut.req.payload, ...)``."""
        out = {"op": self.op, "key": self.key._asdict(), "fid": self.fid, "state": self.state,
               "aware": self.aware, "counter": self.counter, "predict": int(self.predict),
               "mask": {name: int(name in self.mask) for name in MASK_FIELDS}}
        if params.tag_width:
            out["tag"] = self.tag
        return out


def _location(loc):
    """A location payload as the model spells it: ``(bucket, way)`` or ``('stash', slot)``.
    A stash location names no bucket, and the hardware gives it bucket 0: anything else is
    an error, not a location."""
    if loc.stash and loc.bucket != 0:
        raise ValueError(f"stash location with bucket {loc.bucket} (must be 0)")
    return ("stash", loc.way) if loc.stash else (loc.bucket, loc.way)


@dataclass(frozen=True)
class Response:
    """One response: the status, the entry fields (None when there is no entry), the location
    (model spelling, None when there is no entry) and the tag."""
    op: GftOp
    status: GftStatus
    fields: dict = None
    loc: tuple = None
    tag: int = 0

    @classmethod
    def from_payload(cls, payload, params):
        """From ``ctx.get(dut.resp.payload)``."""
        status = GftStatus(payload.status)
        found = status not in NO_ENTRY
        e = payload.entry
        fields = dict(fid=e.fid, state=EntryState(e.state), timestamp=e.timestamp,
                      aware=e.aware, counter=e.counter, predict=bool(e.predict))
        # The table documents the entry as zero when there is none; the location too.
        if not found and (fields["state"] != EntryState.INVALID
                          or any(v for k, v in fields.items() if k != "state")
                          or payload.loc.stash or payload.loc.bucket or payload.loc.way):
            raise ValueError(f"{status.name} response carries an entry or a location: "
                             f"{fields}, {payload.loc}")
        return cls(op=GftOp(payload.op), status=status, fields=fields if found else None,
                   loc=_location(payload.loc) if found else None,
                   tag=payload.tag if params.tag_width else 0)


@dataclass(frozen=True)
class Aged:
    """One entry freed by the aging scan."""
    key: FlowKey
    fields: dict
    loc: tuple
    now: int
    seq: int

    @classmethod
    def from_payload(cls, payload, params):
        e = payload.entry
        k = payload.key
        key = FlowKey(k.src_addr, k.dst_addr, k.src_port, k.dst_port, k.proto, k.zone)
        fields = dict(fid=e.fid, state=EntryState(e.state), timestamp=e.timestamp,
                      aware=e.aware, counter=e.counter, predict=bool(e.predict))
        return cls(key=key, fields=fields, loc=_location(payload.loc), now=payload.now,
                   seq=payload.seq)


def _fields(entry):
    return dict(fid=entry.fid, state=entry.state, timestamp=entry.timestamp, aware=entry.aware,
                counter=entry.counter, predict=entry.predict)


@dataclass
class GftOpsModel:
    """The golden model behind the hardware's request interface.

    ``table`` is a :class:`sim.model.gft.GlobalFlowTable` built with the hardware's
    parameters; the model's ``tentative_timeout`` is only used by its own ``age`` sweeps,
    while :meth:`age_slot` judges with the timeout the hardware was given.
    """
    table: GlobalFlowTable
    counts: dict = field(default_factory=lambda: {"updates": 0, "refused": 0})

    def request(self, req, now):
        """Apply ``req`` at time ``now`` (the timestamp an insert or a touch writes) and
        return the :class:`Response` the hardware must give."""
        t, key = self.table, req.key

        def answer(status, entry=None, loc=None):
            return Response(op=req.op, status=status, fields=_fields(entry) if entry else None,
                            loc=loc if entry else None, tag=req.tag)

        if req.op == GftOp.LOOKUP:
            e = t.lookup(key)
            return answer(GftStatus.HIT if e else GftStatus.MISS, e, t.location(key))
        if req.op == GftOp.RESERVE:
            e = t.lookup(key)
            if e is not None:
                return answer(GftStatus.HIT, e, t.location(key))
            if req.state == EntryState.INVALID or not (t.key_mode == "dual" or key.is_ipv4):
                self.counts["refused"] += 1
                return answer(GftStatus.REFUSED)
            try:
                e = t.insert(key, fid=req.fid, state=req.state, timestamp=now, aware=req.aware,
                             counter=req.counter, predict=bool(req.predict))
            except TableFull:
                return answer(GftStatus.FULL)
            return answer(GftStatus.INSERTED, e, t.location(key))
        if req.op == GftOp.UPDATE:
            if "state" in req.mask and req.state == EntryState.INVALID:
                self.counts["refused"] += 1
                return answer(GftStatus.REFUSED)
            loc = t.location(key)
            if loc is None:
                return answer(GftStatus.NOT_FOUND)
            e = t.update(key)       # no fields: the entry, nothing counted
            changes = {name: getattr(req, name) for name in ("fid", "state", "counter")
                       if name in req.mask}
            if "predict" in req.mask:
                changes["predict"] = bool(req.predict)
            if "aware" in req.mask:
                changes["aware"] = e.aware | req.aware
            if "touch" in req.mask:
                changes["timestamp"] = now
            e = t.update(key, **changes)
            self.counts["updates"] += 1
            return answer(GftStatus.UPDATED, e, loc)
        loc = t.location(key)
        e = t.delete(key)
        return answer(GftStatus.DELETED if e else GftStatus.NOT_FOUND, e, loc)

    def age_slot(self, loc, now, timeout):
        """Apply one aging step that the hardware reported freeing ``loc`` (judged at ``now``
        with ``timeout``); returns the model's entry, or None when the model would not free
        it."""
        t = self.table
        saved = t.tentative_timeout
        t.tentative_timeout = timeout
        try:
            return t.age_slot(loc, now)
        finally:
            t.tentative_timeout = saved

    @property
    def stats(self):
        """The model's counters under the hardware's names."""
        s = self.table.stats
        s.update(self.counts)
        return s


def model_for(design, *, secret=SECRET, timeout=1):
    """A golden-model table with the organisation of ``design`` (a hardware GFT, a bench, or
    their :class:`~hdl.gft.layouts.GftParams`)."""
    p = getattr(design, "params", design)
    half = 1 << (p.timestamp_bits - 1)
    return GlobalFlowTable(buckets=p.buckets, ways=p.ways, stash=p.stash, move_budget=p.move_budget,
                      secret=secret, timestamp_bits=p.timestamp_bits,
                      tentative_timeout=min(max(timeout, 1), half - 1), key_mode=p.key_mode)


def model_contents(table):
    """``{location: entry tuple}`` of the model table."""
    out = {}
    (buckets, stash) = table.snapshot()
    for b, bucket in enumerate(buckets):
        for w, e in enumerate(bucket):
            if e is not None:
                out[(b, w)] = (e.key, e.fid, e.state, e.timestamp, e.aware, e.counter,
                               e.predict, tuple(e.buckets))
    for i, e in enumerate(stash):
        if e is not None:
            out[("stash", i)] = (e.key, e.fid, e.state, e.timestamp, e.aware, e.counter,
                                 e.predict, tuple(e.buckets))
    return out


class Scoreboard:
    """Replays a bench run on the golden model and lists every disagreement.

    Responses are replayed in order; an aged entry is replayed just before the response whose
    index is its ``seq`` (the number of responses committed before the free). An insert or a
    touch takes the timestamp the hardware wrote, which must be a value the time input had
    in some cycle from the one that took the request to the one that took its response
    (``bench.now_at(cycle)``). Compared by cycle, not by the two ends' ``now``: a request that
    waits behind slow inserts for longer than the timestamp range wraps, and any stamp is
    then possible.
    """

    COMMON_STATS = ("lookups", "hits", "misses", "inserts", "updates", "deletes", "relocations",
                    "stash_inserts", "stash_returns", "insert_failures", "refused", "aged_out",
                    "occupancy", "stash_used")

    def __init__(self, bench, model=None):
        self.bench = bench
        self.model = GftOpsModel(model or model_for(bench, secret=bench.secret,
                                                    timeout=bench.timeout))
        self.errors = []
        self.expected = []

    def check(self, *, contents=True, stats=True):
        b = self.bench
        p = b.params
        if len(b.responses) != len(b.sent):
            self.errors.append(f"{len(b.sent)} requests taken, {len(b.responses)} responses")
        assert len(b.sent) < 1 << 16, "seq wraps: keep a run under 65536 requests"
        aged = b.aged               # in commit order, so seq never decreases
        ai = 0
        for n, ((req, taken, now_req), (got, answered, _)) in enumerate(zip(b.sent,
                                                                         b.responses)):
            while ai < len(aged) and aged[ai].seq <= n:
                self._age(aged[ai])
                ai += 1
            now = now_req
            if got.fields is not None and self._seen(got.fields["timestamp"], taken, answered):
                now = got.fields["timestamp"]
            want = self.model.request(req, now)
            want = replace(want, tag=want.tag & ((1 << p.tag_width) - 1))
            self.expected.append(want)
            if got != want:
                self.errors.append(f"response {n} to {req}:\n  got  {got}\n  want {want}")
        for a in aged[ai:]:
            self._age(a)
        if stats:
            model_stats = self.model.stats
            for name in self.COMMON_STATS:
                if b.stats[name] != model_stats[name]:
                    self.errors.append(f"stats.{name}: hardware {b.stats[name]}, "
                                       f"model {model_stats[name]}")
        if contents:
            want = model_contents(self.model.table)
            if b.contents != want:
                for loc in sorted(set(want) | set(b.contents), key=str):
                    if b.contents.get(loc) != want.get(loc):
                        self.errors.append(f"table at {loc}: hardware {b.contents.get(loc)}, "
                                           f"model {want.get(loc)}")
            # The bitmap says which buckets have no free way (a bench that cannot read it,
            # as the cocotb one, leaves it None).
            if getattr(b, "full_bits", None) is not None:
                used = {}
                for loc in b.contents:
                    if loc[0] != "stash":
                        used[loc[0]] = used.get(loc[0], 0) + 1
                full = {bucket for bucket, n in used.items() if n == p.ways}
                for copy, bits in b.full_bits.items():
                    if bits != full:
                        self.errors.append(
                            f"full bitmap ({copy}): set for {sorted(bits - full)} with a free "
                            f"way, clear for {sorted(full - bits)} with none")
        return self.errors

    def _seen(self, stamp, first, last):
        """Whether the time input was ``stamp`` in some cycle from ``first`` to ``last``."""
        values = 1 << self.bench.params.timestamp_bits
        seen = set()
        for cycle in range(first, last + 1):
            seen.add(self.bench.now_at(cycle))
            if stamp in seen:
                return True
            if len(seen) == values:
                break
        return False

    def _age(self, a):
        e = self.model.age_slot(a.loc, a.now, self.bench.timeout)
        got = (a.key, a.fields)
        want = None if e is None else (e.key, dict(
            fid=e.fid, state=e.state, timestamp=e.timestamp, aware=e.aware, counter=e.counter,
            predict=e.predict))
        if got != want:
            self.errors.append(f"aged at {a.loc} (now {a.now}, seq {a.seq}):\n  got  {got}\n"
                               f"  want {want}")


def random_request(rng, key, *, weights=(3, 5, 2, 1), tag=0):
    """A random request on ``key``: op drawn with ``weights`` (LOOKUP, RESERVE, UPDATE,
    DELETE), every field random, the state now and then INVALID (refused by RESERVE and by an
    UPDATE that writes it)."""
    op = rng.choices(list(GftOp), weights)[0]
    return Request(op, key, fid=rng.getrandbits(32),
                   state=rng.choices(list(EntryState), (1, 8, 4))[0],
                   aware=1 << rng.randrange(32), counter=rng.getrandbits(16),
                   predict=rng.random() < 0.3,
                   mask=frozenset(f for f in MASK_FIELDS if rng.random() < 0.4), tag=tag)
