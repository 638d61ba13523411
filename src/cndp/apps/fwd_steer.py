"""Steering functions for cndpfwd's l3fwd, acl-strict/acl-permissive and hyperscan modes.

Each is a callable ``steer(io, pv, k) -> int array`` used by ``Loop.fwd``: one verdict per
packet, an egress lpid, ``ECHO`` or ``DROP``; it rewrites the headers it must. Every steer is
built in the worker process (after the fork) from the jsonc options, and counts what it did
per ingress lport in ``counters`` (name -> int64 array indexed by lpid).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..mem import PktVec, mac_swap
from .fwd_modes import DROP, ECHO, IO

MAX_LPORTS = 256


class Counted:
    """Per-ingress-lport counters of one steering function."""

    NAMES: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.counters = {n: np.zeros(MAX_LPORTS, np.int64) for n in self.NAMES}

    def snapshot(self, lpid: int) -> dict[str, int]:
        return {n: int(a[lpid]) for n, a in self.counters.items()}


# ---------------------------------------------------------------------------------- hyperscan
HS_FLAGS = {
    "i": "HS_FLAG_CASELESS",
    "m": "HS_FLAG_MULTILINE",
    "s": "HS_FLAG_DOTALL",
    "H": "HS_FLAG_SINGLEMATCH",
    "V": "HS_FLAG_ALLOWEMPTY",
    "8": "HS_FLAG_UTF8",
    "W": "HS_FLAG_UCP",
}
_HS_RE = re.compile(r"^\s*(?P<id>(?:0[xX][0-9a-fA-F]+|\d+))\s*:\s*/(?P<re>.*)/(?P<flags>[^/]*)$")
HS_NO_MATCH = -1  # the verdict of a packet no pattern matched: dropped (as C cndpfwd)
HS_DROP_BIT = 0x8000  # bit 31 of a pattern ID (bit 15 of its upper half): drop on match


def _hyperscan() -> Any:
    try:
        import hyperscan  # type: ignore[import-not-found]
    except ImportError as e:
        raise ConfigError(
            f"mode hyperscan needs the Python hyperscan package, which is not installed ({e})",
            fix="pip install 'pycndp[hyperscan]' (make test installs it), or pick another mode",
        ) from None
    return hyperscan


def parse_hs_patterns(patterns: Any) -> list[tuple[int, bytes, str]]:
    """Parse ``options."hs-patterns"`` entries ``"<ID>:/<regex>/<flags>"`` (CNDP's format).

    Unlike C cndpfwd, a regex may contain '/' (the last '/' ends it), and an unknown flag
    is a config error naming the pattern rather than an exit."""
    if not isinstance(patterns, list) or not patterns:
        raise ConfigError(
            'mode hyperscan needs options."hs-patterns": a non-empty list of strings',
            fix='e.g. "hs-patterns": ["0x00010001:/foo/i"]',
        )
    out = []
    for i, p in enumerate(patterns):
        if not isinstance(p, str):
            raise ConfigError(f'options."hs-patterns"[{i}] is {type(p).__name__}, not a string')
        m = _HS_RE.match(p)
        if not m:
            raise ConfigError(
                f'options."hs-patterns"[{i}] {p!r} is not <ID>:/<regex>/<flags>',
                fix='e.g. "0x80000000:/foobar/iH" (ID bits 16-23: lport, bit 31: drop)',
            )
        pid = int(m["id"], 0)
        if pid > 0xFFFFFFFF:
            raise ConfigError(f'options."hs-patterns"[{i}]: ID {m["id"]} does not fit 32 bits')
        bad = [c for c in m["flags"].strip("\r\n") if c not in HS_FLAGS]
        if bad:
            raise ConfigError(
                f'options."hs-patterns"[{i}] {p!r}: unknown flag(s) {"".join(bad)!r}',
                fix="flags are any of " + "".join(HS_FLAGS),
            )
        if not m["re"]:
            raise ConfigError(f'options."hs-patterns"[{i}] {p!r}: empty expression')
        out.append((pid, m["re"].encode(), m["flags"].strip("\r\n")))
    return out


def _first_bad(hs: Any, parsed: list[tuple[int, bytes, str]], flags: list[int]) -> str:
    """Which pattern breaks the database (Hyperscan's message does not say)."""
    for i, ((pid, expr, _), fl) in enumerate(zip(parsed, flags, strict=True)):
        try:
            hs.Database(mode=hs.HS_MODE_BLOCK).compile(expressions=[expr], ids=[pid], flags=[fl])
        except hs.error:
            return f"[{i}] {expr.decode(errors='replace')!r}"
    return ""


class HyperscanSteer(Counted):
    """Scan every packet (all its bytes, as C cndpfwd) with one Hyperscan block database.

    The upper 16 bits of the ID of the last match decide: bit 15 set drops the packet, else
    bits 0-7 name the egress lport (not one of ours: back out of the ingress). No match:
    dropped. Hyperscan scans one buffer per call, so this is the one per-packet Python loop
    in cndpfwd (about 0.2 us of scan call per packet, measured); everything around it is
    vectorised.
    """

    NAMES = ("hs_matched", "hs_dropped")

    def __init__(self, patterns: Any, lpids: set[int]) -> None:
        super().__init__()
        hs = _hyperscan()
        parsed = parse_hs_patterns(patterns)
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        flags = []
        for _pid, _re, fl in parsed:
            v = 0
            for c in fl:
                v |= getattr(hs, HS_FLAGS[c])
            flags.append(v)
        try:
            db.compile(
                expressions=[r for _, r, _ in parsed], ids=[p for p, _, _ in parsed], flags=flags
            )
        except hs.error as e:
            raise ConfigError(
                f'options."hs-patterns"{_first_bad(hs, parsed, flags)} does not compile: {e}',
                fix="see the Hyperscan pattern syntax (PCRE subset, no backreferences)",
            ) from None
        self.db = db
        self.lpids = np.array(sorted(lpids), np.int64)
        self._verdict = HS_NO_MATCH

    def _on_match(self, pid: int, _from: int, _to: int, _flags: int, _ctx: Any) -> None:
        self._verdict = pid >> 16

    def __call__(self, io: IO, pv: PktVec, k: int) -> np.ndarray:
        data = io.data
        a = pv.addr[:k].astype(np.int64)
        ln = pv.data_len[:k].astype(np.int64)
        verdicts = np.empty(k, np.int64)
        scan, cb = self.db.scan, self._on_match
        mv = memoryview(data)
        for i in range(k):  # per packet: Hyperscan has no batch-of-buffers block scan
            self._verdict = HS_NO_MATCH
            o = int(a[i])
            scan(mv[o : o + int(ln[i])].tobytes(), match_event_handler=cb)
            verdicts[i] = self._verdict
        nomatch = verdicts == HS_NO_MATCH
        drop = nomatch | ((verdicts & HS_DROP_BIT) != 0)
        lp = verdicts & 0xFF
        dst = np.where(np.isin(lp, self.lpids), lp, ECHO)
        dst = np.where(drop, DROP, dst).astype(np.int16)
        fwd = ~drop
        c = self.counters
        c["hs_matched"][io.lpid] += k - int(np.count_nonzero(nomatch))
        c["hs_dropped"][io.lpid] += int(np.count_nonzero(drop))
        if fwd.any():
            mac_swap(data, pv.addr[:k][fwd])
        return dst
