"""PPM-HW global event counters: the accumulator bank and the token-bucket rate bank.

This is the golden model of SPEC section 4 "Event counters" (patent FIG. 11/12) written so that a
hardware engineer can build it one to one: every piece of state below is a memory or a register
file indexed by the counter index, and every operation reads one row, checks everything, then
writes that row back (or writes nothing and answers ERROR). Nothing here is a Python-only
convenience that hardware could not hold; the only liberty is that Python integers do the
arithmetic, with the widths stated next to each memory.

Counter ids
-----------
The 16-bit ``counter`` field is split by its top bit (:data:`BANK_SHIFT`)::

    counter = bank << 15 | index        bank 0: accumulator, bank 1: rate counter

so each bank has its own index space of up to 32768 counters and its own free list, and the bank
an operation goes to is decoded from one bit before any memory is read. ``ALLOC_ACC`` always
returns a bank-0 id and ``ALLOC_RATE`` a bank-1 id; an index at or beyond the configured bank size
is ``OUT_OF_RANGE``, an index in range whose row is free is ``NO_SUCH_COUNTER``.

Group and members
-----------------
Each counter keeps two things about "who cares":

* ``group``: the 16-bit group id of the ``ALLOC_*`` record, latched at allocation and echoed in
  every :class:`Notification` of that counter. It is opaque to the bank (software maps it to its
  policy); the ``group`` field of later records is echoed in their replies and otherwise ignored.
* ``members``: a ``max_pps``-bit mask with one bit per global PP index. A PP's bit is set by the
  first accepted record it sends on the counter (ALLOC, SET, INC, DEC or QUERY) and all bits clear
  at RELEASE. A notification goes to exactly the members at the time of the crossing.

For accumulators the same mask is also the *instance-valid* mask: a PP's instance value counts
only while its bit is set, and the bit is set together with writing the instance (0 on a first
touch by ALLOC or QUERY). That lets RELEASE and a later ALLOC of the same row take one cycle
instead of clearing ``max_pps`` instance words; stale instance words of a former user stay in the
memory, masked off (the model keeps them on purpose so the tests show they do no harm).

The ``pp`` argument of :meth:`CounterBanks.process` is the *global* PP index of the sender
(0 .. ``max_pps``-1), derived by the message processor from the fabric-stamped source endpoint;
the record cannot claim to come from another PP.

Accumulators
------------
``sum`` (``sum_bits`` wide), ``high``/``low`` thresholds (64 bits), a one-bit ``state``, the owner
(the allocating PP, the only one allowed to RELEASE) and the instance memory
``inst[index * max_pps + pp]``.

* ``SET v``:  ``sum = sum - old + v``; ``old`` is the PP's instance (0 if it is not a member).
  This is what makes a lost report or a restarted PP only a transient error: the next SET
  replaces the PP's whole contribution.
* ``INC v``:  instance += v, sum += v.
* ``DEC v``:  instance -= min(v, instance), sum likewise; a DEC larger than the instance
  saturates at 0 instead of wrapping, so a duplicated DEC cannot drive the sum below the
  other PPs' contributions. (SET is the self-correcting report; INC/DEC are conveniences.)
* A SET or INC that would take the sum to ``2**sum_bits`` or beyond is refused with
  ``OUT_OF_RANGE`` and changes nothing, so ``sum == sum of member instances`` always holds
  exactly (invariant 5; :meth:`CounterBanks.check_sums`).
* ``QUERY``: reply value = sum.

Hysteresis (invariant 6): a counter starts CONFORMING. After every SET/INC/DEC, if it is
CONFORMING and ``sum > high`` it becomes NON_CONFORMING; if it is NON_CONFORMING and
``sum < low`` it becomes CONFORMING. Each change emits exactly one notification; nothing else
does. ``ALLOC_ACC`` requires ``low <= high`` (else ``MALFORMED``), which is what rules out chatter:
with ``low <= high`` no sum satisfies both conditions.

Rate counters (token buckets)
-----------------------------
``size`` (max tokens, ``token_bits``), ``fill`` (tokens per second, ``rate_bits``), ``credit`` and
``last`` (timestamp of the last refill, ``ts_bits``). Time is a free-running tick counter:
``now`` is in ticks of ``tick_hz`` per second and wraps at ``2**ts_bits``. Credit is kept in
units of ``1/tick_hz`` token so refill is exact integer arithmetic and frequent queries never
lose fractional tokens (the trap DPDK ``rte_meter`` avoids by keeping the time remainder)::

    elapsed = (now - last) mod 2**ts_bits
    credit  = min(size * tick_hz, credit + elapsed * fill)      # lazy refill, saturating
    last    = now

The bucket starts full (RFC 2697). ``QUERY v`` with ``v > 0`` is conforming when
``credit >= v * tick_hz``: ACK and take the tokens; otherwise NACK and take nothing. ``QUERY 0``
is a probe: ACK when at least one whole token is there, nothing taken either way. The reply
value is the whole tokens left (``credit // tick_hz``). With a power-of-two ``tick_hz`` (the
default) the multiply and divide by ``tick_hz`` are shifts.

Rate-counter state rule: the state is the outcome of the latest QUERY (ACK -> CONFORMING,
NACK -> NON_CONFORMING), starting CONFORMING. A notification is emitted exactly when a QUERY
changes it. Refill alone never notifies: the bank is lazy (no background scan of the table),
and a PP in NON_CONFORMING mode queries before deciding anyway, so its next ACK flips the
state back and tells everyone.

Replies and errors
------------------
Every request record gets exactly one reply record, in order: ``op``, ``counter`` (the new id for
ALLOC) and ``group`` echoed; ``status`` ACK/NACK; ``value`` = new id (ALLOC), sum (accumulator
SET/INC/DEC/QUERY/RELEASE) or whole tokens left (rate QUERY/RELEASE); ``param`` = the counter's
state after the operation as a :class:`CounterStatus` code (CONFORMING/NON_CONFORMING), so a PP
that joins a counter already non-conforming learns it from its first reply.

Bad input never raises and never changes state: the reply has ``status`` ERROR and
``param`` = the :class:`ErrorCode`, ``value`` 0; fields that were valid are echoed. The checks, in
priority order (the first that fails is the answer):

1. ``MALFORMED``: not a dict, an unknown key, a field that is not an int (or a member of the
   field's enum) of its width, or ``status`` not REQUEST. Missing fields are 0, as in ``pack``.
2. ``OUT_OF_RANGE``: ``pp`` is not a configured PP index.
3. ``UNKNOWN_TYPE``: ``op`` is not a :class:`CounterOp`.
4. ALLOC_ACC: ``MALFORMED`` when low > high. ALLOC_RATE: ``OUT_OF_RANGE`` when size or fill rate
   is wider than ``token_bits``/``rate_bits``. Then ``COUNTER_FULL`` when the bank's free list
   is empty.
5. Every other op, in order: ``UNKNOWN_TYPE`` for an op the addressed bank does not have
   (SET/INC/DEC on a rate counter; decoded from the id's top bit, before any memory read);
   ``OUT_OF_RANGE`` for an index at or beyond the bank size; ``NO_SUCH_COUNTER`` for a free row
   (this is also what a double RELEASE gets, so the free list never holds an index twice);
   ``NOT_OWNER`` for a RELEASE by another PP than the allocating one; ``OUT_OF_RANGE`` for a
   SET/INC that would overflow ``sum_bits``.
"""

from collections import Counter, deque
from dataclasses import dataclass

from hdl.wire import COUNTER_RECORD, CounterOp, CounterStatus, ErrorCode


__all__ = [
    "CounterBanks", "AccumulatorBank", "RateBank", "Notification", "request",
    "BANK_SHIFT", "ACC_BANK", "RATE_BANK", "MAX_BANK_SIZE", "counter_id", "split_id",
]


BANK_SHIFT = 15                 # top bit of the 16-bit counter id selects the bank
ACC_BANK = 0
RATE_BANK = 1
MAX_BANK_SIZE = 1 << BANK_SHIFT
_INDEX_MASK = MAX_BANK_SIZE - 1

_CONFORMING = CounterStatus.CONFORMING
_NON_CONFORMING = CounterStatus.NON_CONFORMING


def counter_id(bank, index):
    """Counter id of row ``index`` in ``bank`` (:data:`ACC_BANK` or :data:`RATE_BANK`)."""
    if bank not in (ACC_BANK, RATE_BANK) or not 0 <= index < MAX_BANK_SIZE:
        raise ValueError(f"no counter id for bank {bank!r} index {index!r}")
    return bank << BANK_SHIFT | index


def split_id(counter):
    """16-bit counter id -> ``(bank, index)``."""
    return counter >> BANK_SHIFT, counter & _INDEX_MASK


def request(op, counter=0, value=0, param=0, group=0):
    """A request record (plain dict with the ``COUNTER_RECORD`` field names).

    Parameters
    ----------
    op : CounterOp
    counter, value, param, group : int
        As described by :data:`hdl.wire.COUNTER_RECORD` and :class:`hdl.wire.CounterOp`.

    Returns
    -------
    dict
        Packs with ``COUNTER_RECORD.pack(record)``.
    """
    return {"op": op, "status": CounterStatus.REQUEST, "counter": counter, "group": group,
            "value": value, "param": param}


@dataclass(frozen=True)
class Notification:
    """One threshold crossing, to be multicast to ``members`` as a ``COUNTER_NOTIFY``.

    Attributes
    ----------
    counter : int
        Counter id.
    state : CounterStatus
        ``CONFORMING`` or ``NON_CONFORMING``: the state just entered.
    sum : int
        Accumulator: the sum after the crossing. Rate counter: whole tokens left.
    group : int
        Group id latched at allocation.
    members : frozenset of int
        Global PP indices to notify (the counter's member mask).
    """
    counter: int
    state: CounterStatus
    sum: int
    group: int
    members: frozenset

    @property
    def mask(self):
        """The member set as the bank's ``max_pps``-bit mask."""
        return sum(1 << pp for pp in self.members)

    def body(self):
        """Fields of the ``COUNTER_NOTIFY`` message body."""
        return {"counter": self.counter, "state": self.state, "sum": self.sum}


class _Refused(Exception):
    """Internal: a check failed before any write; carries the ErrorCode. Never escapes."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _mask_members(mask):
    return frozenset(i for i in range(mask.bit_length()) if mask >> i & 1)


def _check_int(name, value, lo, hi):
    """Constructor parameter check: an int (not bool) in ``lo..hi``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, not {value}")
    return value


class _Bank:
    """What both banks share: the valid bits, the free list, owner, group and member mask."""

    bank = None         # ACC_BANK or RATE_BANK
    ops = frozenset()   # the ops (other than ALLOC) this bank executes

    def __init__(self, size, max_pps):
        self.size = size
        self.max_pps = max_pps
        self.valid = [False] * size     # 1 bit per row
        self.owner = [0] * size         # ceil(log2(max_pps)) bits: the allocating PP
        self.group = [0] * size         # 16 bits, latched at ALLOC
        self.members = [0] * size       # max_pps bits
        self.state = [_CONFORMING] * size   # 1 bit
        # Free list as a FIFO of indices (a BRAM ring in hardware). FIFO rather than a stack so a
        # just-released id is reused as late as possible: a delayed message from its old user
        # then most likely finds it still free (NO_SUCH_COUNTER) instead of hitting a new owner.
        self.free = deque(range(size))

    def _alloc_row(self):
        if not self.free:
            raise _Refused(ErrorCode.COUNTER_FULL)
        return self.free[0]   # taken (popleft) only once the op commits

    def _row(self, index):
        if index >= self.size:
            raise _Refused(ErrorCode.OUT_OF_RANGE)
        if not self.valid[index]:
            raise _Refused(ErrorCode.NO_SUCH_COUNTER)
        return index

    def _commit_alloc(self, index, pp, group):
        self.free.popleft()
        self.valid[index] = True
        self.owner[index] = pp
        self.group[index] = group
        self.members[index] = 1 << pp
        self.state[index] = _CONFORMING

    def _commit_release(self, index):
        self.valid[index] = False
        self.members[index] = 0
        self.free.append(index)

    def _notify(self, index, state, value):
        return Notification(counter=counter_id(self.bank, index), state=state, sum=value,
                            group=self.group[index], members=_mask_members(self.members[index]))

    def snapshot(self):
        """Every memory of the bank, copied (for before/after comparisons)."""
        return {name: (list(v) if isinstance(v, (list, deque)) else v)
                for name, v in vars(self).items()}


class AccumulatorBank(_Bank):
    """Accumulators: sums of per-PP instance values with hysteresis thresholds.

    Use through :class:`CounterBanks`; see the module docstring for the semantics.
    """

    bank = ACC_BANK
    ops = frozenset({CounterOp.SET, CounterOp.INC, CounterOp.DEC, CounterOp.QUERY,
                     CounterOp.RELEASE})

    def __init__(self, size, max_pps, sum_bits):
        super().__init__(size, max_pps)
        self.sum_bits = sum_bits
        self.high = [0] * size          # 64 bits
        self.low = [0] * size           # 64 bits
        self.sum = [0] * size           # sum_bits
        # Instance memory, size * max_pps words of sum_bits (an instance never exceeds its sum).
        # Not cleared on release: the member mask says which words are live.
        self.inst = [0] * (size * max_pps)

    def instance(self, index, pp):
        """The live instance value of ``pp`` on row ``index`` (0 when ``pp`` is not a member)."""
        return self.inst[index * self.max_pps + pp] if self.members[index] >> pp & 1 else 0

    def alloc(self, pp, rec):
        high, low = rec["value"], rec["param"]
        if low > high:
            # low > high would let one sum satisfy both "sum > high" and "sum < low": chatter.
            raise _Refused(ErrorCode.MALFORMED)
        index = self._alloc_row()
        self._commit_alloc(index, pp, rec["group"])
        self.high[index], self.low[index], self.sum[index] = high, low, 0
        self.inst[index * self.max_pps + pp] = 0   # the allocator's bit is set: make its word live
        return counter_id(ACC_BANK, index), CounterStatus.ACK, []

    def apply(self, pp, op, index, rec, now):
        index = self._row(index)
        old = self.instance(index, pp)
        total = self.sum[index]
        if op is CounterOp.QUERY:
            self._join(index, pp, old)
            return total, CounterStatus.ACK, []
        if op is CounterOp.RELEASE:
            if pp != self.owner[index]:
                raise _Refused(ErrorCode.NOT_OWNER)
            self._commit_release(index)
            return total, CounterStatus.ACK, []
        v = rec["value"]
        if op is CounterOp.SET:
            new = v
        elif op is CounterOp.INC:
            new = old + v
        else:  # DEC, saturating at zero (see module docstring)
            new = old - min(v, old)
        total = total - old + new
        if total >> self.sum_bits:
            # Refuse rather than wrap or clip: either would break sum == sum of instances.
            raise _Refused(ErrorCode.OUT_OF_RANGE)
        # --- commit ---
        self._join(index, pp, new)
        self.sum[index] = total
        return total, CounterStatus.ACK, self._hysteresis(index)

    def _join(self, index, pp, value):
        self.inst[index * self.max_pps + pp] = value
        self.members[index] |= 1 << pp

    def _hysteresis(self, index):
        total, state = self.sum[index], self.state[index]
        if state is _CONFORMING and total > self.high[index]:
            self.state[index] = _NON_CONFORMING
        elif state is _NON_CONFORMING and total < self.low[index]:
            self.state[index] = _CONFORMING
        else:
            return []
        return [self._notify(index, self.state[index], total)]

    def check_sums(self):
        violations = []
        for index in range(self.size):
            if not self.valid[index]:
                continue
            expected = sum(self.instance(index, pp) for pp in range(self.max_pps))
            if self.sum[index] != expected:
                violations.append((counter_id(ACC_BANK, index), self.sum[index], expected))
        return violations


class RateBank(_Bank):
    """Token-bucket rate counters with lazy refill from a free-running timestamp.

    Use through :class:`CounterBanks`; see the module docstring for the semantics.
    """

    bank = RATE_BANK
    ops = frozenset({CounterOp.QUERY, CounterOp.RELEASE})

    def __init__(self, size, max_pps, token_bits, rate_bits, tick_hz, ts_bits):
        super().__init__(size, max_pps)
        self.token_bits, self.rate_bits = token_bits, rate_bits
        self.tick_hz, self.ts_bits = tick_hz, ts_bits
        self.cap = [0] * size       # size * tick_hz, token_bits + log2(tick_hz) bits
        self.fill = [0] * size      # rate_bits, tokens per second == credit per tick
        self.credit = [0] * size    # same width as cap
        self.last = [0] * size      # ts_bits

    def _refilled(self, index, now):
        """Credit after lazy refill to ``now`` (no write)."""
        elapsed = (now - self.last[index]) % (1 << self.ts_bits)
        # Saturating: hardware can use a saturating multiplier, the result is capped anyway.
        return min(self.cap[index], self.credit[index] + elapsed * self.fill[index])

    def tokens(self, index, now):
        """Whole tokens row ``index`` would hold at ``now`` (read only)."""
        return self._refilled(index, now) // self.tick_hz

    def alloc(self, pp, rec, now):
        size, fill = rec["value"], rec["param"]
        if size >> self.token_bits or fill >> self.rate_bits:
            raise _Refused(ErrorCode.OUT_OF_RANGE)
        index = self._alloc_row()
        self._commit_alloc(index, pp, rec["group"])
        self.cap[index] = size * self.tick_hz
        self.credit[index] = self.cap[index]    # starts full (RFC 2697)
        self.fill[index] = fill
        self.last[index] = now
        return counter_id(RATE_BANK, index), CounterStatus.ACK, []

    def apply(self, pp, op, index, rec, now):
        index = self._row(index)
        credit = self._refilled(index, now)
        if op is CounterOp.RELEASE:
            if pp != self.owner[index]:
                raise _Refused(ErrorCode.NOT_OWNER)
            self._commit_release(index)
            return credit // self.tick_hz, CounterStatus.ACK, []
        # QUERY
        take = rec["value"] * self.tick_hz
        conforming = credit >= (take if take else self.tick_hz)  # value 0: probe for one token
        if conforming:
            credit -= take
        # --- commit: refill (and take) even on NACK, so elapsed time is never counted twice ---
        self.credit[index], self.last[index] = credit, now
        self.members[index] |= 1 << pp
        new_state = _CONFORMING if conforming else _NON_CONFORMING
        notes = []
        if new_state is not self.state[index]:
            self.state[index] = new_state
            notes.append(self._notify(index, new_state, credit // self.tick_hz))
        return (credit // self.tick_hz, CounterStatus.ACK if conforming else CounterStatus.NACK,
                notes)

    def check_buckets(self):
        return [(counter_id(RATE_BANK, i), self.credit[i], self.cap[i])
                for i in range(self.size) if self.valid[i] and self.credit[i] > self.cap[i]]


_FIELDS = {f.name: f.width for f in COUNTER_RECORD.fields}


def _decode(record):
    """Record dict -> (fields as ints, ErrorCode or None). Missing fields are 0, as in ``pack``."""
    if not isinstance(record, dict):
        return dict.fromkeys(_FIELDS, 0), ErrorCode.MALFORMED
    fields, error = {}, None
    for name, width in _FIELDS.items():
        value = record.get(name, 0)
        enum = COUNTER_RECORD[name].enum
        if enum is not None and isinstance(value, enum):
            value = value.value     # op/status may be members of their enum, as unpack gives
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << width:
            fields[name] = value
        else:
            fields[name], error = 0, ErrorCode.MALFORMED
    if set(record) - set(_FIELDS):
        error = ErrorCode.MALFORMED
    if fields["status"] != CounterStatus.REQUEST.value:
        error = ErrorCode.MALFORMED
    return fields, error


def _op_member(raw):
    try:
        return CounterOp(raw)
    except ValueError:
        return None


class CounterBanks:
    """PPM-HW global event counters: one accumulator bank and one rate bank.

    All parameters are keyword only and validated (``TypeError``/``ValueError``).

    Parameters
    ----------
    accumulators : int
        Accumulator rows, 0..32768 (bank 0 of the id space).
    rate_counters : int
        Rate-counter rows, 0..32768 (bank 1 of the id space).
    max_pps : int
        PP instance slots per counter = width of the member mask; the ``pp`` of a request is a
        global PP index below this (1..1024; 31 slots x 30 PPs = 930 is the fabric's maximum).
    sum_bits : int
        Width of an accumulator sum (1..64; the reply value field is 64 bits).
    token_bits, rate_bits : int
        Widths of a rate counter's bucket size and fill rate (1..64).
    tick_hz : int
        Ticks per second of the timestamp ``now`` (default 2**20, so scaling is a shift).
    ts_bits : int
        Width of the free-running timestamp; elapsed time is computed modulo ``2**ts_bits``,
        so a bucket idle for longer than one wrap refills by less than it should (48 bits at
        2**20 Hz wrap after about 8.5 years).

    Attributes
    ----------
    acc : AccumulatorBank
    rate : RateBank
    counts : collections.Counter
        Outcomes: ``"ok"``, ``"nack"``, each :class:`ErrorCode` refused, ``"notifications"``.
    """

    def __init__(self, *, accumulators=1024, rate_counters=256, max_pps=64, sum_bits=64,
                 token_bits=32, rate_bits=32, tick_hz=1 << 20, ts_bits=48):
        _check_int("accumulators", accumulators, 0, MAX_BANK_SIZE)
        _check_int("rate_counters", rate_counters, 0, MAX_BANK_SIZE)
        _check_int("max_pps", max_pps, 1, 1024)
        _check_int("sum_bits", sum_bits, 1, 64)
        _check_int("token_bits", token_bits, 1, 64)
        _check_int("rate_bits", rate_bits, 1, 64)
        _check_int("tick_hz", tick_hz, 1, 1 << 40)
        _check_int("ts_bits", ts_bits, 8, 64)
        self.max_pps = max_pps
        self.acc = AccumulatorBank(accumulators, max_pps, sum_bits)
        self.rate = RateBank(rate_counters, max_pps, token_bits, rate_bits, tick_hz, ts_bits)
        self.counts = Counter()

    # --- the operation -------------------------------------------------------------------------

    def process(self, pp, record, now=0):
        """Execute one request record from global PP ``pp`` at timestamp ``now`` (ticks).

        Parameters
        ----------
        pp : int
            Global index of the sending PP (from the fabric-stamped source).
        record : dict
            A ``COUNTER_RECORD`` dict (``op``, ``status``, ``counter``, ``group``, ``value``,
            ``param``); see :func:`request`.
        now : int
            Free-running timestamp in ticks; only rate counters use it. Must not run backwards
            (a step back reads as almost a full wrap of elapsed time and fills the bucket).

        Returns
        -------
        reply : dict
            The reply record (packs with ``COUNTER_RECORD``).
        notifications : list of Notification
            Zero or one threshold crossings caused by this record.
        """
        if isinstance(now, bool) or not isinstance(now, int) or now < 0:
            raise ValueError(f"now must be a non-negative tick count, not {now!r}")  # our clock
        now &= (1 << self.rate.ts_bits) - 1
        fields, error = _decode(record)
        op = _op_member(fields["op"])
        try:
            if error is not None:
                raise _Refused(error)
            if isinstance(pp, bool) or not isinstance(pp, int) or not 0 <= pp < self.max_pps:
                raise _Refused(ErrorCode.OUT_OF_RANGE)
            if op is None:
                raise _Refused(ErrorCode.UNKNOWN_TYPE)
            if op is CounterOp.ALLOC_ACC:
                counter, status, notes = self.acc.alloc(pp, fields)
                value = counter
            elif op is CounterOp.ALLOC_RATE:
                counter, status, notes = self.rate.alloc(pp, fields, now)
                value = counter
            else:
                counter = fields["counter"]
                bank_no, index = split_id(counter)
                bank = self.rate if bank_no == RATE_BANK else self.acc
                if op not in bank.ops:
                    raise _Refused(ErrorCode.UNKNOWN_TYPE)
                value, status, notes = bank.apply(pp, op, index, fields, now)
        except _Refused as refused:
            self.counts[refused.code] += 1
            reply = dict(fields, op=op if op is not None else fields["op"],
                         status=CounterStatus.ERROR, value=0, param=refused.code.value)
            return reply, []
        bank = self.rate if split_id(counter)[0] == RATE_BANK else self.acc
        self.counts["ok" if status is CounterStatus.ACK else "nack"] += 1
        self.counts["notifications"] += len(notes)
        reply = dict(fields, op=op, status=status, counter=counter, value=value,
                     param=bank.state[split_id(counter)[1]].value)
        return reply, notes

    def process_message(self, pp, records, now=0):
        """Execute the records of one ``COUNTER_REQ`` in order.

        Each record sees the effect of the ones before it (one operation per clock, same-counter
        runs included); a refused record does not stop the others.

        Returns
        -------
        replies : list of dict
            One per request, same order.
        notifications : list of Notification
            In the order the crossings happened.
        """
        replies, notes = [], []
        for record in records:
            reply, n = self.process(pp, record, now)
            replies.append(reply)
            notes.extend(n)
        return replies, notes

    # --- read-only views (tests, benches, the PPM model) ---------------------------------------

    def _bank_row(self, counter):
        bank_no, index = split_id(counter)
        bank = self.rate if bank_no == RATE_BANK else self.acc
        if index >= bank.size or not bank.valid[index]:
            raise KeyError(f"counter {counter:#x} is not allocated")
        return bank, index

    def sum_of(self, counter):
        """Sum of an allocated accumulator."""
        bank, index = self._bank_row(counter)
        if bank is not self.acc:
            raise KeyError(f"counter {counter:#x} is not an accumulator")
        return bank.sum[index]

    def instances(self, counter):
        """``{pp: instance value}`` of the members of an allocated accumulator."""
        bank, index = self._bank_row(counter)
        if bank is not self.acc:
            raise KeyError(f"counter {counter:#x} is not an accumulator")
        return {pp: bank.instance(index, pp) for pp in _mask_members(bank.members[index])}

    def state_of(self, counter):
        """``CounterStatus.CONFORMING`` or ``NON_CONFORMING``."""
        bank, index = self._bank_row(counter)
        return bank.state[index]

    def members_of(self, counter):
        bank, index = self._bank_row(counter)
        return _mask_members(bank.members[index])

    def tokens_of(self, counter, now):
        """Whole tokens a rate counter holds at ``now`` (does not refill the stored state)."""
        bank, index = self._bank_row(counter)
        if bank is not self.rate:
            raise KeyError(f"counter {counter:#x} is not a rate counter")
        return bank.tokens(index, now & ((1 << bank.ts_bits) - 1))

    def snapshot(self):
        """Every memory of both banks, copied; equal snapshots mean identical state."""
        return {"acc": self.acc.snapshot(), "rate": self.rate.snapshot()}

    # --- invariants ----------------------------------------------------------------------------

    def check_sums(self):
        """Invariant 5: every allocated accumulator's sum equals the sum of its live instances.

        Returns
        -------
        list of (counter, sum, expected)
            Empty when the invariant holds.
        """
        return self.acc.check_sums()

    def check(self):
        """Every structural invariant of the banks; an empty list when all hold.

        Invariant 5 (sums), no bucket above its size, and free lists that hold exactly the
        unallocated rows once each (a double release would break that).
        """
        problems = [("sum", *v) for v in self.check_sums()]
        problems += [("bucket", *v) for v in self.rate.check_buckets()]
        for bank in (self.acc, self.rate):
            free = list(bank.free)
            unallocated = [i for i in range(bank.size) if not bank.valid[i]]
            if sorted(free) != unallocated:
                problems.append(("free_list", bank.bank, free, unallocated))
        return problems
