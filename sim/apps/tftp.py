"""TFTP decoder (RFC 1350): a read or write request predicts the transfer flow.

The server answers a request to port 69 from a fresh port of its own, so the transfer is a new
flow: ``server:* -> client:cport`` over UDP, in the parent's zone. As in Linux
``nf_conntrack_tftp``, any RRQ/WRQ (opcode 1/2) from the client predicts, whatever its file name
and mode: a server answers even a bad request (with an ERROR) from a fresh port, and that answer
belongs with the request. A reply that never comes leaves an entry that expires.
"""

from sim.flowkey import FlowKey

from . import Decoder, Prediction


__all__ = ["TftpDecoder"]

IPPROTO_UDP = 17
_WILD_SPORT = frozenset({"src_port"})
_MIN_REQUEST = 4        # opcode + the two NULs that end file name and mode


class TftpDecoder(Decoder):
    """Decoder of one TFTP request flow (client:cport -> server:69)."""

    name = "tftp"
    server_first_ok = False     # the server never sends from port 69: nothing to decode

    def _inspect(self, key, payload, forward):
        if not self.from_client(forward) or len(payload) < _MIN_REQUEST:
            return []
        opcode = int.from_bytes(payload[:2], "big")
        if opcode not in (1, 2):
            return []
        self.stats["rrq" if opcode == 1 else "wrq"] += 1
        return [Prediction(FlowKey(key.dst_addr, key.src_addr, 0, key.src_port, IPPROTO_UDP,
                                   self.zone), _WILD_SPORT)]
