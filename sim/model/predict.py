"""Golden model of the predict flow table: a small TCAM of expected child sessions.

A parent session's owner (FTP control, SIP, TFTP...) announces a child flow it expects with
``PREDICT_ADD``; fields it cannot know are wildcards. A later unknown flow that matches an
entry is owned by the parent's owner (SPEC section 4, Predict). The hardware TCAM is built from
this model and scoreboarded against it, so the rules below are exact:

* **Match** is ternary over the whole flow key: entry ``(value, care)`` matches ``key`` when
  ``(key ^ value) & care == 0`` on every field. ``care`` all ones in a field is exact match,
  zero is a wildcard; any bit pattern in between is allowed (e.g. an address prefix).
* **Most specific wins**: among matching entries the one with the most care bits set (over
  all fields together) wins; a tie goes to the *lowest slot index*. Hardware keeps each
  entry's care-bit count (9 bits; at most 320) beside it, so the choice is a max tree over the
  match vector, and the slot index is the tie break a priority encoder gives for free.
* **Consumed on match**: the matched entry is removed (one child per prediction, as Linux
  conntrack expectations do). Re-arm by adding it again.
* **Expiry**: an entry added (or refreshed) at ``now`` with timeout ``t`` is live while
  ``now' <= now + t`` and expired once ``now' > now + t`` (it is "older than" the timeout).
  An expired entry never matches, never counts towards a cap and its slot is free: every
  operation first retires the expired entries (hardware: a per-entry comparator clears the
  valid bit). Retirement is counted in ``stats['expired']``; :meth:`PredictTable.expire`
  returns the entries *it* retired.
* **Slots**: a new entry takes the lowest free slot.
* **Refresh**: adding an entry identical to a live one (same masked value, same care, same
  parent FID) restarts its timeout instead of using a second slot. The value is stored masked
  (``value & care``): bits under a zero care bit mean nothing, so two adds that differ only
  there are the same prediction.
* **Caps**: at most ``per_parent_cap`` live entries per parent FID (a parent cannot fill the
  table for everyone: the per-helper ``max_expected`` of conntrack), and ``entries`` in all.
  Either limit raises :class:`PredictFull` (ErrorCode PREDICT_FULL), counted, table unchanged.

Cost in hardware terms: one ternary compare of all entries per clock (entries x 320 bits of
value and care), a max tree over the care counts and a priority encoder; an add is one write
after a compare (identity check) and a free-slot priority encode.

Time is in seconds (float) as ``PREDICT_ADD.timeout`` counts seconds; the hardware uses its
free-running timestamp, which the caller converts.
"""

from dataclasses import dataclass

from hdl.wire import FID, FLOW_KEY, ErrorCode
from sim.flowkey import FlowKey


__all__ = ["PredictEntry", "PredictTable", "PredictFull"]


@dataclass
class PredictEntry:
    """One predict entry.

    Attributes
    ----------
    slot : int
        TCAM slot index (the tie break between equally specific matches).
    key : FlowKey
        Value, stored masked by ``care``.
    care : FlowKey
        Care mask per field (all ones: exact, zero: wildcard).
    parent_fid : int
        Packed FID of the parent flow; the child is owned by its owner.
    expires : float
        Last instant (seconds) at which the entry still matches.
    specificity : int
        Number of care bits set over the whole key.
    """
    slot: int
    key: FlowKey
    care: FlowKey
    parent_fid: int
    expires: float
    specificity: int

    def matches(self, key):
        """Ternary compare: ``(key ^ value) & care == 0`` on every field."""
        return all((k ^ v) & c == 0 for k, v, c in zip(key, self.key, self.care))


class PredictFull(Exception):
    """Add refused: the table is full (``reason == 'table'``) or the parent already has
    ``per_parent_cap`` live entries (``reason == 'parent'``). Nothing changed."""
    code = ErrorCode.PREDICT_FULL

    def __init__(self, reason, parent_fid):
        what = "table full" if reason == "table" else "per-parent cap reached"
        super().__init__(f"predict {what} (parent FID {parent_fid:#010x})")
        self.reason = reason
        self.parent_fid = parent_fid


_WIDTHS = [FLOW_KEY[name].width for name in FlowKey._fields]


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_flowkey(what, value):
    if not isinstance(value, FlowKey):
        raise TypeError(f"{what} must be a FlowKey, not {value!r}")
    for name, width, field in zip(FlowKey._fields, _WIDTHS, value):
        if not isinstance(field, int) or isinstance(field, bool) or not 0 <= field < 1 << width:
            raise ValueError(f"{what}.{name} must be a {width}-bit integer, not {field!r}")


class PredictTable:
    """The predict table (TCAM). See the module docstring for the exact rules.

    Parameters (keyword only)
    -------------------------
    entries : int
        Number of TCAM slots, >= 1 (default 32).
    default_timeout : float
        Seconds an entry lives when added with no timeout (or timeout 0, as ``PREDICT_ADD``
        encodes "table default"), > 0. Default 60 s.
    per_parent_cap : int or None
        Most live entries one parent FID may hold, 1..entries. None (the default) means
        ``min(4, entries)``: a SIP call or an FTP session needs a few predictions, not the table.
    """

    def __init__(self, *, entries=32, default_timeout=60.0, per_parent_cap=None):
        if not isinstance(entries, int) or isinstance(entries, bool) or entries < 1:
            raise ValueError(f"entries must be a positive integer, not {entries!r}")
        if not _is_number(default_timeout) or not default_timeout > 0:
            raise ValueError(f"default_timeout must be a positive number of seconds, not {default_timeout!r}")
        if per_parent_cap is None:
            per_parent_cap = min(4, entries)
        if (not isinstance(per_parent_cap, int) or isinstance(per_parent_cap, bool)
                or not 1 <= per_parent_cap <= entries):
            raise ValueError(f"per_parent_cap must be an integer from 1 to entries ({entries}), "
                             f"not {per_parent_cap!r}")
        self.size = entries
        self.default_timeout = default_timeout
        self.per_parent_cap = per_parent_cap
        self._slots = [None] * entries
        self._stats = dict.fromkeys(
            ["adds", "refreshes", "matches", "misses", "expired", "full", "removed"], 0)

    @property
    def stats(self):
        """A fresh dict: ``adds`` (new entries), ``refreshes``, ``matches``, ``misses``,
        ``expired`` (entries retired by timeout), ``full`` (PREDICT_FULL outcomes, either
        limit), ``removed`` (by :meth:`remove_parent`), and the gauge ``entries``."""
        s = dict(self._stats)
        s["entries"] = len(self)
        return s

    def __len__(self):
        """Stored entries (expired ones count until an operation retires them)."""
        return sum(e is not None for e in self._slots)

    def __bool__(self):
        # Always true, even when empty, so ``predict or PredictTable()`` keeps a caller's table.
        return True

    def entries(self):
        """Stored entries in slot order."""
        return [e for e in self._slots if e is not None]

    def _check_now(self, now):
        if not _is_number(now):
            raise ValueError(f"now must be a number of seconds, not {now!r}")

    def _retire(self, now):
        out = []
        for i, e in enumerate(self._slots):
            if e is not None and now > e.expires:
                out.append(e)
                self._slots[i] = None
        self._stats["expired"] += len(out)
        return out

    def expire(self, now):
        """Remove and return the entries expired at ``now`` (slot order)."""
        self._check_now(now)
        return self._retire(now)

    def add(self, key, care, parent_fid, now, timeout=None):
        """Add (or refresh) a prediction; returns its entry.

        ``timeout`` in seconds; None or 0 means ``default_timeout``.

        Raises
        ------
        PredictFull
            table full or per-parent cap reached; counted in ``full``; table unchanged
            (apart from retiring expired entries, which happens at every operation).
        ValueError, TypeError
            malformed key, care, FID, time or timeout; nothing changes.
        """
        _check_flowkey("key", key)
        _check_flowkey("care", care)
        if not isinstance(parent_fid, int) or isinstance(parent_fid, bool) \
                or not 0 <= parent_fid < 1 << FID.width:
            raise ValueError(f"parent_fid must be a {FID.width}-bit packed FID, not {parent_fid!r}")
        self._check_now(now)
        if timeout is None or (_is_number(timeout) and timeout == 0):
            timeout = self.default_timeout
        elif not _is_number(timeout) or timeout < 0:
            raise ValueError(f"timeout must be a positive number of seconds (0: default), not {timeout!r}")

        self._retire(now)
        value = FlowKey(*(k & c for k, c in zip(key, care)))
        for e in self._slots:
            if e is not None and (e.key, e.care, e.parent_fid) == (value, care, parent_fid):
                e.expires = now + timeout
                self._stats["refreshes"] += 1
                return e
        if sum(e is not None and e.parent_fid == parent_fid for e in self._slots) >= self.per_parent_cap:
            self._stats["full"] += 1
            raise PredictFull("parent", parent_fid)
        free = [i for i, e in enumerate(self._slots) if e is None]
        if not free:
            self._stats["full"] += 1
            raise PredictFull("table", parent_fid)
        entry = PredictEntry(slot=free[0], key=value, care=care, parent_fid=parent_fid,
                             expires=now + timeout,
                             specificity=sum(bin(c).count("1") for c in care))
        self._slots[free[0]] = entry
        self._stats["adds"] += 1
        return entry

    def match(self, key, now):
        """Look ``key`` up at time ``now``; consume and return the winning entry, or None.

        Most care bits wins; ties go to the lowest slot. Expired entries never match.
        Cost: one TCAM lookup (one clock).
        """
        _check_flowkey("key", key)
        self._check_now(now)
        self._retire(now)
        best = None
        for e in self._slots:  # slot order: a later entry wins only with strictly more care bits
            if e is not None and e.matches(key) and (best is None or e.specificity > best.specificity):
                best = e
        if best is None:
            self._stats["misses"] += 1
            return None
        self._slots[best.slot] = None
        self._stats["matches"] += 1
        return best

    def remove_parent(self, parent_fid):
        """Remove every entry of ``parent_fid`` (parent torn down); returns how many."""
        n = 0
        for i, e in enumerate(self._slots):
            if e is not None and e.parent_fid == parent_fid:
                self._slots[i] = None
                n += 1
        self._stats["removed"] += n
        return n

    def remove_matching(self, key, parent_fid):
        """Remove the entries of ``parent_fid`` that ``key`` matches; returns how many.

        When a predicted child binds, its reverse flow is in the GFT, so a prediction of the
        same parent that the reverse key would match (the other-direction prediction of a media
        stream) can never be used: freeing it at once keeps a busy parent under its cap.
        Cost: one TCAM search with the parent compared as part of the key, one invalidate per hit.
        """
        _check_flowkey("key", key)
        n = 0
        for i, e in enumerate(self._slots):
            if e is not None and e.parent_fid == parent_fid and e.matches(key):
                self._slots[i] = None
                n += 1
        self._stats["removed"] += n
        return n

    def __repr__(self):
        return f"PredictTable(entries={self.size}, live={len(self)})"
