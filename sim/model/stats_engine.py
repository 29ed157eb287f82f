"""PP-side event statistics: the stats engine of patent FIG. 13, as a model.

One :class:`StatsEngine` is one *reporting instance* of the accumulator bank
(:mod:`sim.model.counters`): a packet processor, or a card's stats engine reporting for all PPs of
its card. It keeps, per accumulator it tracks, the local value, the value last reported to PPM-HW,
a local threshold, and a mode that follows the PPM's notifications.

Why a local threshold: reporting every change would cost one fabric message per event. In
CONFORMING mode the engine reports (with SET, the self-correcting operation) only once the local
value has moved by at least ``threshold`` since the last report, so the PPM's sum lags the true
sum by at most ``threshold - 1`` per instance (:meth:`StatsEngine.max_lag`). Pick the thresholds
so that ``high`` plus the summed lag stays below the policy limit (the patent's rule).
In NON_CONFORMING mode the PPM's sum must be exact, so every change is reported and the PP must
QUERY the sum before deciding (:meth:`StatsEngine.must_query`).

Only accumulators are tracked here: a rate counter has no local value, it is simply queried.

Records returned by every method are request dicts with the ``COUNTER_RECORD`` field names, ready
for one ``COUNTER_REQ`` (a message may carry several).
"""

from dataclasses import dataclass

from hdl.wire import CounterOp, CounterStatus

from .counters import request


__all__ = ["StatsEngine"]


_MAX_VALUE = (1 << 64) - 1    # the record's value field


@dataclass
class _Local:
    value: int          # local counter value (this instance's contribution)
    reported: int       # the value PPM-HW holds for this instance (as far as we know)
    threshold: int      # report in CONFORMING mode once |value - reported| >= threshold
    group: int          # group id carried in our records
    mode: CounterStatus


class StatsEngine:
    """Local counter memory with local thresholds and a per-counter conforming mode.

    Attributes
    ----------
    ignored : int
        Notifications and replies that named a counter not tracked here (or an unknown state);
        they come off the wire, so they are counted, never raised.
    """

    def __init__(self):
        self._counters = {}
        self.ignored = 0

    # --- set-up --------------------------------------------------------------------------------

    def track(self, counter, *, threshold, group=0, value=0, reported=0):
        """Start tracking accumulator ``counter`` (its id from the ALLOC_ACC reply).

        Parameters
        ----------
        counter : int
            Counter id.
        threshold : int
            Local threshold, >= 1; 1 reports every change.
        group : int
            Group id carried in the records.
        value, reported : int
            Initial local value and the value PPM-HW holds for us: 0 and 0 for a fresh counter
            (ALLOC and a first touch both make our instance 0).
        """
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise ValueError(f"threshold must be an int >= 1, not {threshold!r}")
        if counter in self._counters:
            raise ValueError(f"counter {counter:#x} is already tracked")
        for name, v in (("value", value), ("reported", reported)):
            if not 0 <= v <= _MAX_VALUE:
                raise ValueError(f"{name} {v} does not fit the 64-bit value field")
        self._counters[counter] = _Local(value, reported, threshold, group,
                                         CounterStatus.CONFORMING)

    def untrack(self, counter):
        """Stop tracking ``counter`` (after RELEASE, or on NO_SUCH_COUNTER)."""
        del self._counters[counter]

    @property
    def counters(self):
        return frozenset(self._counters)

    # --- events --------------------------------------------------------------------------------

    def bump(self, counter, delta):
        """Add ``delta`` (may be negative) to the local value of ``counter``.

        Returns
        -------
        list of dict
            The SET record to send, if this change must be reported, else ``[]``.

        Raises
        ------
        KeyError
            ``counter`` is not tracked (a bug in the caller, not wire input).
        ValueError
            The local value would leave 0..2**64-1; nothing is changed.
        """
        entry = self._counters[counter]
        value = entry.value + delta
        if not 0 <= value <= _MAX_VALUE:
            raise ValueError(f"counter {counter:#x}: local value {entry.value} + {delta} "
                             "leaves 0..2**64-1")
        entry.value = value
        lag = abs(entry.value - entry.reported)
        if lag and (entry.mode is CounterStatus.NON_CONFORMING or lag >= entry.threshold):
            return [self._report(counter, entry)]
        return []

    def on_notify(self, counter, state):
        """A ``COUNTER_NOTIFY`` arrived: switch ``counter`` to ``state``.

        Returns
        -------
        list of dict
            On entering NON_CONFORMING, a SET of the local value when it is not reported yet, so
            the PPM's sum becomes exact as soon as exactness matters; else ``[]``.
        """
        try:
            state = CounterStatus(state)
        except ValueError:
            state = None
        entry = self._counters.get(counter)
        if entry is None or state not in (CounterStatus.CONFORMING, CounterStatus.NON_CONFORMING):
            self.ignored += 1
            return []
        entry.mode = state
        if state is CounterStatus.NON_CONFORMING and entry.value != entry.reported:
            return [self._report(counter, entry)]
        return []

    def on_reply(self, record):
        """A ``COUNTER_REPLY`` record arrived: take the counter's state from its ``param``.

        The bank puts the counter's state in every ACK/NACK reply, so a PP that starts reporting
        to a counter that is already NON_CONFORMING (it missed the notification, which went to the
        members of that time) learns the mode from its first reply.

        Returns
        -------
        list of dict
            As :meth:`on_notify`.
        """
        if record.get("status") not in (CounterStatus.ACK, CounterStatus.NACK):
            return []
        if record.get("op") in (CounterOp.ALLOC_ACC, CounterOp.ALLOC_RATE, CounterOp.RELEASE):
            return []
        return self.on_notify(record.get("counter"), record.get("param"))

    # --- decisions and drain -------------------------------------------------------------------

    def must_query(self, counter):
        """True when the PP must QUERY the global sum before deciding (NON_CONFORMING mode)."""
        return self._counters[counter].mode is CounterStatus.NON_CONFORMING

    def mode(self, counter):
        return self._counters[counter].mode

    def value(self, counter):
        """The local value."""
        return self._counters[counter].value

    def reported(self, counter):
        """The value last sent to PPM-HW."""
        return self._counters[counter].reported

    def max_lag(self, counter):
        """How far the PPM's instance for us may trail the local value in the current mode."""
        entry = self._counters[counter]
        return 0 if entry.mode is CounterStatus.NON_CONFORMING else entry.threshold - 1

    def query(self, counter):
        """The QUERY record for ``counter`` (reply value = global sum)."""
        entry = self._counters[counter]
        return request(CounterOp.QUERY, counter, group=entry.group)

    def flush(self, *, force=False):
        """SET records for every counter whose reported value is stale (all of them with
        ``force``, e.g. after a restart or a suspected lost message).

        Used at drain: once every engine has flushed and the records are processed, each
        accumulator's sum is exactly the sum of the local values (invariant 5, checked exactly).
        """
        return [self._report(counter, entry) for counter, entry in self._counters.items()
                if force or entry.value != entry.reported]

    def _report(self, counter, entry):
        entry.reported = entry.value
        return request(CounterOp.SET, counter, entry.value, group=entry.group)
