"""txgen's configuration state: the ports and each port's settings.

Pure logic (no sockets): the CLI, scripts, the jsonc ``txgen`` section and the command line
all change settings through :meth:`TxgenState.update`, which applies a change to a copy,
validates the result and only then commits it, so a rejected command leaves nothing half
done. Listeners (the running application) are told about every committed change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .stream import FIELD_NAMES, PortSettings, TxgenError, live_ranges

DEFAULT_LINK_BPS = 10e9  # when a netdev does not report its speed


@dataclass
class PortDesc:
    """One lport as txgen sees it."""

    lpid: int
    name: str
    netdev: str = ""
    pmd: str = "net_af_xdp"
    mac: str = "02:00:00:00:00:01"
    mtu: int | None = None
    link_bps: float = DEFAULT_LINK_BPS
    can_tx: bool = True
    can_rx: bool = True
    thread: str = ""
    max_frame: int = 1792  # largest frame the port's UMEM frames hold


def parse_portlist(text: str, valid: Iterable[int]) -> list[int]:
    """pktgen portlists: ``2,4,6-9,12`` or ``all``; every port must exist."""
    valid = sorted(set(valid))
    t = str(text).strip()
    if t == "all":
        return list(valid)
    out: set[int] = set()
    if not t:
        raise TxgenError("empty port list", fix="give ports like 0, 0-1, 0,2 or all")
    for part in t.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()) or len(part) > 12:
            raise TxgenError(
                f"{text!r} is not a port list",
                fix="give ports like 0, 0-1, 0,2 or all",
            )
        a = int(lo)
        b = int(hi) if sep else a
        if b < a:
            raise TxgenError(f"port range {part!r} runs backwards", fix=f"write {b}-{a}")
        if b - a > 1024:
            raise TxgenError(f"port range {part!r} is too long")
        out.update(range(a, b + 1))
    missing = sorted(out - set(valid))
    if missing:
        have = ",".join(str(p) for p in valid) or "none"
        raise TxgenError(
            f"port {missing[0]} does not exist (ports: {have})", fix="use an existing port id"
        )
    return sorted(out)


def family_default_ip(version: int, lpid: int, dst: bool) -> str:
    """The default address of a port: 198.18.<port>.1 (dst: the peer's), IPv6 alike."""
    n = (lpid ^ 1) if dst else lpid
    n &= 0xFF
    if version == 4:
        return f"198.18.{n}.1"
    return str(ipaddress.IPv6Address(f"fd00:198:18:{n:x}::1"))


class TxgenState:
    """Settings of every port, changed transactionally."""

    def __init__(self, ports: list[PortDesc], *, any_address: bool = False) -> None:
        self.ports = {p.lpid: p for p in ports}
        self.any_address = any_address
        self.settings: dict[int, PortSettings] = {p.lpid: self.defaults(p) for p in ports}
        self.listeners: list[Callable[[int, PortSettings], None]] = []

    @property
    def lpids(self) -> list[int]:
        return sorted(self.ports)

    def defaults(self, p: PortDesc) -> PortSettings:
        """pktgen's defaults: port n sends to port n^1 (its MAC when that port exists)."""
        peer = self.ports.get(p.lpid ^ 1)
        dst_mac = peer.mac if peer is not None and peer is not p else "ff:ff:ff:ff:ff:ff"
        return PortSettings(
            src_mac=p.mac,
            dst_mac=dst_mac,
            src_ip=family_default_ip(4, p.lpid, False),
            dst_ip=family_default_ip(4, p.lpid, True),
        )

    def get(self, lpid: int) -> PortSettings:
        return self.settings[lpid]

    def update(self, lpids: Iterable[int], change: Callable[[PortSettings], None]) -> None:
        """Apply ``change`` to a copy of each port's settings, validate all, then commit."""
        staged: dict[int, PortSettings] = {}
        for lpid in lpids:
            if lpid not in self.ports:
                raise TxgenError(f"port {lpid} does not exist")
            s = self.settings[lpid].copy()
            try:
                change(s)
                self.validate(lpid, s)
            except TxgenError as e:
                raise TxgenError(f"port {lpid}: {e}") from None
            staged[lpid] = s
        for lpid, s in staged.items():
            self.settings[lpid] = s
            for fn in self.listeners:
                fn(lpid, s)

    def validate(self, lpid: int, s: PortSettings) -> None:
        p = self.ports[lpid]
        s.validate(any_address=self.any_address, mtu=p.mtu)
        biggest = s.size - 4
        if s.range_mode and "length" in s.ranges:
            biggest = max(biggest, s.ranges["length"].max)
        if biggest > p.max_frame:
            raise TxgenError(
                f"frames of {biggest} bytes do not fit this port's UMEM frames "
                f"(at most {p.max_frame})",
                fix="use a smaller size or a UMEM with a larger bufsz",
            )
        if s.engine == "live":
            if not p.netdev:
                raise TxgenError("the live engine needs a port on a netdev")
            live_ranges(s)

    def reset(self, lpids: Iterable[int]) -> None:
        """Back to the defaults."""
        for lpid in lpids:
            self.update([lpid], lambda s, lp=lpid: _assign(s, self.defaults(self.ports[lp])))


def _assign(dst: PortSettings, src: PortSettings) -> None:
    for k, v in src.__dict__.items():
        setattr(dst, k, v)


def set_type(s: PortSettings, typ: str, lpid: int) -> list[str]:
    """Change the packet type; addresses of the other family are replaced by defaults and
    IP ranges dropped (returned notes say so)."""
    notes = []
    if typ not in ("ipv4", "ipv6"):
        raise TxgenError(f"type {typ!r}: expected ipv4 or ipv6")
    if typ == s.type:
        return notes
    v = 6 if typ == "ipv6" else 4
    s.type = typ
    for name, dst in (("src_ip", False), ("dst_ip", True)):
        if ipaddress.ip_address(getattr(s, name)).version != v:
            setattr(s, name, family_default_ip(v, lpid, dst))
            notes.append(f"{name.replace('_', ' ')} set to {getattr(s, name)}")
        if name in s.ranges:
            del s.ranges[name]
            notes.append(f"range {FIELD_NAMES[name]} removed")
    s.src_prefix = 24 if v == 4 else 64
    mn = s.min_size()
    if s.size < mn:
        s.size = mn
        notes.append(f"size raised to {mn}")
    return notes
