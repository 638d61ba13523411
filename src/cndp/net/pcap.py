"""Classic libpcap files (the format tcpdump, tshark and Wireshark read and write).

Slow path: traces, captures and replays. Records are read and written with ``struct``; a
whole file can be loaded into one flat numpy buffer plus offset/length arrays so that a
replay engine can copy frames into UMEM by gathers instead of per-packet Python work.

Timestamps are nanoseconds since the epoch everywhere in this module. Files are written
with nanosecond resolution (magic ``0xa1b23c4d``); both microsecond and nanosecond files,
little or big endian, are read.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cndp.errors import CndpError

LINKTYPE_ETHERNET = 1
MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
_GLOBAL = struct.Struct("IHHiIII")  # magic, major, minor, thiszone, sigfigs, snaplen, network
_RECORD = struct.Struct("IIII")  # ts_sec, ts_frac, incl_len, orig_len
DEFAULT_SNAPLEN = 262144


class PcapError(CndpError):
    """A pcap file that cannot be read or written."""


class PcapWriter:
    """Append frames to a pcap file (nanosecond timestamps, Ethernet by default)."""

    def __init__(
        self,
        path: str | Path,
        *,
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = DEFAULT_SNAPLEN,
    ) -> None:
        self.path = Path(path)
        self.snaplen = snaplen
        self.count = 0
        try:
            self._f: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise PcapError(
                f"cannot write pcap file {str(self.path)!r}: {e.strerror}",
                fix="check that the directory exists and is writable",
            ) from e
        self._f.write(_GLOBAL.pack(MAGIC_NSEC, 2, 4, 0, 0, snaplen, linktype))

    def write(
        self, frame: bytes | bytearray | memoryview | np.ndarray, ts_ns: int | None = None
    ) -> None:
        data = bytes(frame) if not isinstance(frame, bytes) else frame
        if ts_ns is None:
            ts_ns = time.time_ns()
        incl = data[: self.snaplen]
        sec, nsec = divmod(int(ts_ns), 1_000_000_000)
        self._f.write(_RECORD.pack(sec, nsec, len(incl), len(data)))
        self._f.write(incl)
        self.count += 1

    def write_many(
        self, frames: Iterable[bytes | np.ndarray], ts_ns: int | Iterable[int] | None = None
    ) -> None:
        """Write frames; ``ts_ns`` is one timestamp for all, one per frame, or now."""
        if ts_ns is None or isinstance(ts_ns, int):
            t = time.time_ns() if ts_ns is None else ts_ns
            for f in frames:
                self.write(f, t)
        else:
            for f, t in zip(frames, ts_ns, strict=True):
                self.write(f, int(t))

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class PcapRecord:
    ts_ns: int
    data: bytes
    orig_len: int


class PcapReader:
    """Iterate the records of a pcap file. Raises :class:`PcapError` naming the file and
    the byte offset of anything malformed (bad magic, truncated record, absurd length)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._f: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise PcapError(
                f"cannot read pcap file {str(self.path)!r}: {e.strerror}",
                fix="check the path and its permissions",
            ) from e
        head = self._f.read(_GLOBAL.size)
        if len(head) < _GLOBAL.size:
            self._f.close()
            raise PcapError(
                f"{str(self.path)!r} is not a pcap file: only {len(head)} bytes, "
                f"a pcap header has {_GLOBAL.size}",
                fix="give a classic pcap file (tcpdump -w, or tshark -F pcap)",
            )
        magic_le = struct.unpack("<I", head[:4])[0]
        magic_be = struct.unpack(">I", head[:4])[0]
        if magic_le in (MAGIC_USEC, MAGIC_NSEC):
            self._end = "<"
            magic = magic_le
        elif magic_be in (MAGIC_USEC, MAGIC_NSEC):
            self._end = ">"
            magic = magic_be
        else:
            self._f.close()
            hint = " (this looks like pcapng)" if head[:4] == b"\x0a\x0d\x0d\x0a" else ""
            raise PcapError(
                f"{str(self.path)!r} is not a classic pcap file: magic {head[:4].hex()}{hint}",
                fix="convert it with `editcap -F pcap IN OUT`",
            )
        self._nsec = magic == MAGIC_NSEC
        g = struct.unpack(self._end + _GLOBAL.format, head)
        self.snaplen: int = g[5]
        self.linktype: int = g[6] & 0x0FFFFFFF
        self._rec = struct.Struct(self._end + _RECORD.format)

    def __iter__(self) -> Iterator[PcapRecord]:
        f = self._f
        limit = max(self.snaplen, DEFAULT_SNAPLEN)
        while True:
            pos = f.tell()
            hdr = f.read(self._rec.size)
            if not hdr:
                return
            if len(hdr) < self._rec.size:
                raise PcapError(
                    f"{str(self.path)!r}: record header truncated at byte {pos}",
                    fix="the file was cut short; recapture or trim it with editcap",
                )
            sec, frac, incl, orig = self._rec.unpack(hdr)
            if incl > limit:
                raise PcapError(
                    f"{str(self.path)!r}: record at byte {pos} claims {incl} bytes "
                    f"(snaplen {self.snaplen})",
                    fix="the file is corrupt",
                )
            data = f.read(incl)
            if len(data) < incl:
                raise PcapError(
                    f"{str(self.path)!r}: record at byte {pos} truncated "
                    f"({len(data)} of {incl} bytes)",
                    fix="the file was cut short; recapture or trim it with editcap",
                )
            ts = sec * 1_000_000_000 + (frac if self._nsec else frac * 1000)
            yield PcapRecord(ts, data, orig)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> PcapReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_pcap(path: str | Path) -> list[PcapRecord]:
    with PcapReader(path) as r:
        return list(r)


@dataclass(frozen=True)
class PcapFrames:
    """A whole pcap file as flat arrays: ``data[offsets[i]:offsets[i]+lengths[i]]`` is frame i."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64
    lengths: np.ndarray  # int64
    ts_ns: np.ndarray  # int64
    linktype: int

    def __len__(self) -> int:
        return len(self.lengths)

    def frame(self, i: int) -> bytes:
        o = int(self.offsets[i])
        return self.data[o : o + int(self.lengths[i])].tobytes()


def load_frames(path: str | Path) -> PcapFrames:
    with PcapReader(path) as r:
        recs = list(r)
        linktype = r.linktype
    lengths = np.fromiter((len(x.data) for x in recs), dtype=np.int64, count=len(recs))
    offsets = np.zeros(len(recs), dtype=np.int64)
    if len(recs) > 1:
        np.cumsum(lengths[:-1], out=offsets[1:])
    data = np.frombuffer(b"".join(x.data for x in recs), dtype=np.uint8).copy()
    ts = np.fromiter((x.ts_ns for x in recs), dtype=np.int64, count=len(recs))
    return PcapFrames(data, offsets, lengths, ts, linktype)
