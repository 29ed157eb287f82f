"""Switching fabric model: carries frames between endpoints, unicast and multicast.

Frames travel as bytes (:func:`sim.wire.encode`) so every hop exercises the wire formats. The
fabric stamps the true source endpoint into every header: a PP cannot claim to be someone else,
which is what lets PPM-HW refuse a PP acting on a flow it does not own.
"""

from collections import Counter, deque

from hdl.wire import FRAME_HEADER
from sim.wire import encode


__all__ = ["Fabric"]


class Fabric:
    """In-order delivery of frames from a single FIFO.

    Members
    -------
    stats : Counter
        ``frames``, ``bytes``, per-type counts (``type:NAME``), ``dropped_no_endpoint``.
    """

    def __init__(self):
        self._endpoints = {}
        self._queue = deque()
        self.stats = Counter()
        self.trace = None  # a list to append (src, dst, frame) to, when tracing

    def attach(self, endpoint, handler):
        """Register ``handler(frame_bytes)`` for ``endpoint`` (slot, unit)."""
        if endpoint in self._endpoints:
            raise ValueError(f"endpoint {endpoint} attached twice")
        self._endpoints[endpoint] = handler

    @property
    def endpoints(self):
        return set(self._endpoints)

    def send(self, src, msg):
        """Queue ``msg`` from ``src``; the header's source is overwritten with ``src``."""
        msg.src = src
        self.send_frame(src, encode(msg))

    def send_frame(self, src, frame):
        """Queue raw bytes (used to inject malformed frames); the source is stamped all the same."""
        frame = bytearray(frame)
        if len(frame) >= FRAME_HEADER.nbytes:
            hdr = FRAME_HEADER.unpack(int.from_bytes(frame[:FRAME_HEADER.nbytes], "big"))
            hdr["src"] = {"slot": src[0], "unit": src[1]}
            frame[:FRAME_HEADER.nbytes] = FRAME_HEADER.to_bytes(hdr)
        self._queue.append(bytes(frame))

    def pending(self):
        return len(self._queue)

    def step(self):
        """Deliver one frame; returns False when the queue was empty."""
        if not self._queue:
            return False
        frame = self._queue.popleft()
        self.stats["frames"] += 1
        self.stats["bytes"] += len(frame)
        for dst in self._destinations(frame):
            handler = self._endpoints.get(dst)
            if handler is None:
                self.stats["dropped_no_endpoint"] += 1
                continue
            if self.trace is not None:
                self.trace.append((dst, frame))
            handler(frame)
        return True

    def run(self, max_steps=None):
        """Deliver frames until the queue is empty (or ``max_steps`` frames were delivered)."""
        steps = 0
        while (max_steps is None or steps < max_steps) and self.step():
            steps += 1
        return steps

    def _destinations(self, frame):
        if len(frame) < FRAME_HEADER.nbytes:
            # Too short to route: in hardware the fabric port would discard it. Counted.
            self.stats["dropped_runt"] += 1
            return []
        hdr = FRAME_HEADER.unpack(int.from_bytes(frame[:FRAME_HEADER.nbytes], "big"))
        type_name = getattr(hdr["type"], "name", str(hdr["type"]))
        self.stats[f"type:{type_name}"] += 1
        if not hdr["mcast"]:
            return [(hdr["dst"]["slot"], hdr["dst"]["unit"])]
        return [(slot, unit) for slot in range(32) if hdr["slot_mask"] >> slot & 1
                for unit in range(32) if hdr["unit_mask"] >> unit & 1]
