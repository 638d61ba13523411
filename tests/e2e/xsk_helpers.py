"""Helpers shared by the AF_XDP end-to-end tests: a raw AF_PACKET peer and frame makers."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np

from cndp.net.frames import udp4_frame

ETH_P_ALL = 0x0003


def frame(pair, seq: int, size: int = 60, *, reverse: bool = False) -> bytes:
    """A UDP frame from A to B (or B to A) carrying ``seq`` in its first payload bytes."""
    src, dst = (pair.b, pair.a) if reverse else (pair.a, pair.b)
    payload = struct.pack("!I", seq) + bytes((seq + i) & 0xFF for i in range(size))
    return udp4_frame(
        src.mac,
        dst.mac,
        src.ipv4,
        dst.ipv4,
        sport=1024 + seq % 1000,
        dport=9,
        size=size,
        payload=payload,
    )


def seq_of(raw: bytes) -> int:
    return struct.unpack_from("!I", raw, 42)[0]


class RawPeer:
    """An AF_PACKET socket on a namespace's veth: the Linux side of our tests.

    Create it inside ``host.enter()``; it stays bound to that namespace afterwards.
    """

    def __init__(self, ifname: str, *, rcvbuf: int = 8 << 20):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((ifname, 0))
        # PACKET_IGNORE_OUTGOING: do not see our own transmissions
        self.sock.setsockopt(263, 23, 1)  # SOL_PACKET
        self.sock.settimeout(0.2)

    def send(self, frames: list[bytes]) -> None:
        for f in frames:
            while True:
                try:
                    self.sock.send(f)
                    break
                except (BlockingIOError, TimeoutError, OSError) as e:
                    if getattr(e, "errno", None) not in (None, 11, 105):  # EAGAIN, ENOBUFS
                        raise
                    time.sleep(0.0005)

    def recv_until(self, count: int, timeout: float = 5.0, match=None) -> list[bytes]:
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if match is None or match(data):
                out.append(data)
        return out

    def close(self) -> None:
        self.sock.close()


def is_udp_to(port: int):
    def m(data: bytes) -> bool:
        return (
            len(data) >= 42
            and data[12:14] == b"\x08\x00"
            and data[23] == 17
            and struct.unpack_from("!H", data, 36)[0] == port
        )

    return m


def frames_matrix(frames: list[bytes]) -> np.ndarray:
    n = len(frames)
    size = len(frames[0])
    return np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(n, size)


def drain_port(port, umem, pv, want: int, *, match=None, timeout: float = 5.0) -> list[bytes]:
    """Receive from a pktdev port until ``want`` frames matching ``match`` (default: UDP to
    port 9) arrived or the timeout; returns their bytes and frees every frame."""
    match = match or is_udp_to(9)
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        k = port.rx_burst(pv)
        for a, n in zip(pv.addr[:k].tolist(), pv.data_len[:k].tolist(), strict=True):
            data = bytes(umem.data[a : a + n])
            if match(data):
                out.append(data)
        if k:
            port.buf_free(pv.addr[:k])
        else:
            time.sleep(0.0005)
    return out
