"""tshark as the independent judge of the frames tests capture (checksums, malformed, fields).

Checksum validation is off by default in Wireshark; every call here turns it on for IPv4, UDP
and TCP, so ``*.checksum.status`` reads 1 (good), 0 (bad) or 2 (not verified).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

VALIDATE = (
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
)
GOOD = "1"


def fields(
    pcap: str | Path, names: Sequence[str], *, display_filter: str | None = None
) -> list[dict[str, str]]:
    """One dict per frame of ``pcap``: field name -> tshark's text (first occurrence; "" when
    the frame has no such field)."""
    cmd = ["tshark", "-r", str(pcap), *VALIDATE, "-T", "fields", "-E", "occurrence=f"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for n in names:
        cmd += ["-e", n]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    return [dict(zip(names, line.split("\t"), strict=True)) for line in out]


def write_and_read(tmp: Path, frames: Iterable[bytes], names: Sequence[str]) -> list[dict]:
    """Write ``frames`` to a pcap in ``tmp`` and read ``names`` back with :func:`fields`."""
    from ..net.pcap import PcapWriter

    path = Path(tmp) / "frames.pcap"
    with PcapWriter(path) as w:
        w.write_many(frames)
    return fields(path, names)
