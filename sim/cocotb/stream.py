"""cocotb drivers for Amaranth streams in exported Verilog, and the base class of every bench.

Amaranth exports a stream member ``<name>`` as the ports ``<name>__valid``, ``<name>__ready``
(absent when the stream is always ready) and ``<name>__payload``, the payload packed into one
vector with the first field of a ``StructLayout`` at the lowest bits: :func:`pack` and
:func:`unpack` convert between that vector and field values, from the layout itself.

The drivers sample the handshake just after the rising clock edge, when the design's registers
still hold their values from before it; that is the state the edge transferred on.
"""

import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, Event, RisingEdge


__all__ = ["pack", "unpack", "StreamSource", "StreamSink", "TB"]


def pack(layout, fields):
    """Packed value of ``layout`` (a ``StructLayout``) from a dict of field name -> integer.

    A nested layout's field takes its packed integer; missing fields are zero.
    """
    unknown = set(fields) - {name for name, _ in layout}
    if unknown:
        raise KeyError(f"{layout!r} has no field(s) {sorted(unknown)}")
    value = 0
    for name, field in layout:
        item = int(fields.get(name, 0))
        if not 0 <= item < (1 << field.width):
            raise ValueError(f"Field {name!r} value {item} does not fit in {field.width} bits")
        value |= item << field.offset
    return value


def unpack(layout, value):
    """Dict of field name -> integer from a packed value of ``layout``."""
    return {name: (int(value) >> field.offset) & ((1 << field.width) - 1)
            for name, field in layout}


class StreamSource:
    """Sends payloads into the design over the stream ``name`` of ``dut``.

    Before offering each payload the source idles a random number of cycles: in every cycle it
    is free to offer, it does so with probability ``1 - idle``. Once ``valid`` is high it stays
    high, with the same payload, until the design takes it (the stream rules).

    Parameters
    ----------
    dut : cocotb handle
        Top level.
    name : str
        Stream member name (port prefix).
    clock : cocotb handle
        Clock the stream is synchronous to.
    rng : random.Random
        Source of the idle cycles.
    idle : float
        Probability of idling in a cycle the source could offer a payload.
    monitor : callable or None
        Called with each payload as it is transferred, in the cycle of the transfer (for a
        bench that timestamps transfers).

    Attributes
    ----------
    count : int
        Payloads transferred so far.
    """

    def __init__(self, dut, name, clock, rng, *, idle=0.0, monitor=None):
        self._valid = getattr(dut, f"{name}__valid")
        self._payload = getattr(dut, f"{name}__payload")
        self._ready = getattr(dut, f"{name}__ready", None)
        self._clock = clock
        self._rng = rng
        self.idle = idle
        self._monitor = monitor
        self._queue = deque()
        self._drained = Event()
        self._drained.set()
        self.count = 0
        self._valid.value = 0
        self._payload.value = 0     # not X: a design may look at the payload before valid
        cocotb.start_soon(self._run())

    def send(self, payload):
        """Queue ``payload`` (an integer) to be sent; returns at once."""
        self._queue.append(payload)
        self._drained.clear()

    async def wait_drained(self):
        """Wait until every queued payload has been transferred."""
        await self._drained.wait()

    async def _run(self):
        offering = False
        while True:
            await RisingEdge(self._clock)
            if offering and (self._ready is None or self._ready.value == 1):
                payload = self._queue.popleft()
                self.count += 1
                if self._monitor is not None:
                    self._monitor(payload)
                offering = False
                if not self._queue:
                    self._drained.set()
            if not offering:
                offering = bool(self._queue) and self._rng.random() >= self.idle
                if offering:
                    self._payload.value = self._queue[0]
                self._valid.value = int(offering)


class StreamSink:
    """Receives payloads from the design over the stream ``name`` of ``dut``.

    In every cycle ``ready`` is low with probability ``backpressure``, independently of
    ``valid``.

    Parameters
    ----------
    dut, name, clock, rng
        As for :class:`StreamSource`.
    backpressure : float
        Probability of holding ``ready`` low in a cycle.
    monitor : callable or None
        As for :class:`StreamSource`.

    Attributes
    ----------
    count : int
        Payloads transferred so far.
    """

    def __init__(self, dut, name, clock, rng, *, backpressure=0.0, monitor=None):
        self._valid = getattr(dut, f"{name}__valid")
        self._payload = getattr(dut, f"{name}__payload")
        self._ready = getattr(dut, f"{name}__ready")
        self._clock = clock
        self._rng = rng
        self.backpressure = backpressure
        self._monitor = monitor
        self._queue = Queue()
        self.count = 0
        self._ready.value = 0
        cocotb.start_soon(self._run())

    async def recv(self):
        """The next payload (an integer), waiting for it if needed."""
        return await self._queue.get()

    def empty(self):
        return self._queue.empty()

    async def _run(self):
        ready = False
        while True:
            await RisingEdge(self._clock)
            if ready and self._valid.value == 1:
                payload = int(self._payload.value)
                self._queue.put_nowait(payload)
                self.count += 1
                if self._monitor is not None:
                    self._monitor(payload)
            ready = self._rng.random() >= self.backpressure
            self._ready.value = int(ready)


class TB:
    """Base of a bench: owns the clock ``clk`` and the synchronous, active-high reset ``rst``.

    Subclasses add their sources, sinks and scoreboard. ``rng`` is seeded from
    ``cocotb.RANDOM_SEED``, which the runner sets (``run_cocotb(seed=...)``), so a run replays.
    """

    def __init__(self, dut, *, period_ns=10):
        self.dut = dut
        self.clk = dut.clk
        self.rng = random.Random(cocotb.RANDOM_SEED)
        dut.rst.value = 0
        Clock(dut.clk, period_ns, unit="ns").start()

    async def reset(self, cycles=2):
        """Hold ``rst`` for ``cycles`` clock cycles, then release it."""
        self.dut.rst.value = 1
        await ClockCycles(self.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.clk)
