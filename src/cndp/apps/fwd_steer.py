"""Steering functions for cndpfwd's l3fwd, acl-strict/acl-permissive and hyperscan modes.

Each is a callable ``steer(io, pv, k) -> int array`` used by ``Loop.fwd``: one verdict per
packet, an egress lpid, ``ECHO`` or ``DROP``; it rewrites the headers it must. Every steer is
built in the worker process (after the fork) from the jsonc options, and counts what it did
per ingress lport in ``counters`` (name -> int64 array indexed by lpid).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..mem import PktVec, mac_swap
from ..net.frames import mac_bytes
from ..net.hdr import HEAD4_DT, ip4_head, ip4_head_dec_ttl, ip4_head_store
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


# -------------------------------------------------------------------------------------- l3fwd
@dataclass(frozen=True)
class FibRule:
    """One ``options."l3fwd-fib-rules"`` entry: ``"<a.b.c.d/len>,<dst-mac>,<lport-index>"``."""

    prefix: int
    depth: int
    mac: bytes
    lport: int


def parse_fib_rules(rules: Any, lpids: set[int]) -> list[FibRule]:
    """Parse and check CNDP's l3fwd rules; every problem names the entry and the fix."""
    key = 'options."l3fwd-fib-rules"'
    if not isinstance(rules, list) or not rules:
        raise ConfigError(
            f"mode l3fwd needs {key}: a non-empty list of strings",
            fix='e.g. "l3fwd-fib-rules": ["198.18.1.0/24,02:00:00:00:00:01,1"]',
        )
    out = []
    for i, r in enumerate(rules):
        where = f"{key}[{i}]"
        if not isinstance(r, str):
            raise ConfigError(f"{where} is {type(r).__name__}, not a string")
        parts = [p.strip() for p in r.split(",")]
        if len(parts) != 3:
            raise ConfigError(
                f"{where} {r!r} has {len(parts)} fields, not 3",
                fix='use "<a.b.c.d/len>,<dst MAC>,<lport index>"',
            )
        try:
            net = ipaddress.IPv4Network(parts[0], strict=False)
        except ValueError as e:
            raise ConfigError(
                f"{where} {r!r}: {e}", fix="give an IPv4 prefix a.b.c.d/len"
            ) from None
        if "/" not in parts[0]:
            raise ConfigError(f"{where} {r!r}: the prefix needs a length", fix="e.g. 198.18.1.0/24")
        try:
            mac = mac_bytes(parts[1])
        except ValueError as e:
            raise ConfigError(f"{where} {r!r}: {e}") from None
        if not parts[2].isdigit() or int(parts[2]) not in lpids:
            raise ConfigError(
                f"{where} {r!r}: lport index {parts[2]!r} is not an lport of the configuration",
                fix=f"use one of {sorted(lpids)} (the order of the lports section, from 0)",
            )
        out.append(FibRule(int(net.network_address), net.prefixlen, mac, int(parts[2])))
    return out


class L3fwdSteer(Counted):
    """CNDP's l3fwd: longest-prefix match of the IPv4 destination in a DIR-24-8 FIB.

    Hit: TTL - 1 (RFC 1624 checksum update), destination MAC = the rule's MAC, source MAC =
    the egress lport's MAC when known, out of the rule's lport. Miss: TTL - 1, MAC swap, back
    out of the ingress lport (as C cndpfwd). Unlike C, which rewrites every frame as IPv4,
    frames that are not IPv4 and frames whose TTL is already <= 1 are dropped and counted.

    The FIB's next hop is an index into small (lport, MAC) tables, so the 2^24-entry level is
    uint16 (32 MiB, touched only where routes are) instead of CNDP's 8-byte (port<<48 | MAC).
    """

    NAMES = ("l3fwd_hit", "l3fwd_miss", "l3fwd_ttl_drop", "l3fwd_not_ipv4")

    def __init__(self, rules: Any, lport_macs: dict[int, bytes | None]) -> None:
        super().__init__()
        from ..lib.fib import Fib

        parsed = parse_fib_rules(rules, set(lport_macs))
        self.fib = Fib("l3fwd", nh_sz=2, default_nh=0, num_tbl8=max(256, 4 * len(parsed)))
        self.hop_lport = np.zeros(len(parsed) + 1, np.int16)
        self.hop_macs = np.zeros(len(parsed) + 1, HEAD4_DT[["dmac", "smac"]])
        self.hop_has_smac = np.zeros(len(parsed) + 1, bool)
        for i, r in enumerate(parsed, start=1):
            self.fib.add(r.prefix, r.depth, i)  # a later duplicate prefix wins, as cne_fib_add
            self.hop_lport[i] = r.lport
            self.hop_macs["dmac"][i] = np.frombuffer(r.mac, np.uint8)
            smac = lport_macs.get(r.lport)
            if smac:
                self.hop_macs["smac"][i] = np.frombuffer(smac, np.uint8)
                self.hop_has_smac[i] = True

    def __call__(self, io: IO, pv: PktVec, k: int) -> np.ndarray:
        data = io.data
        a = pv.addr[:k]
        h, ip4 = ip4_head(data, a, pv.data_len[:k], rfc1812=False)
        ok = ip4 & (h["ttl"] > 1)
        c = self.counters
        lp = io.lpid
        allok = bool(ok.all())
        if not allok:
            c["l3fwd_not_ipv4"][lp] += k - int(np.count_nonzero(ip4))
            c["l3fwd_ttl_drop"][lp] += int(np.count_nonzero(ip4 & ~ok))
            if not ok.any():
                return np.full(k, DROP, np.int16)
            sel = np.flatnonzero(ok)
            a, h = a[sel], h[sel]
        hop = self.fib.lookup_bulk(h["dst"].astype(np.uint32)).astype(np.intp)
        ip4_head_dec_ttl(h)
        hit = hop != 0
        nhit = int(np.count_nonzero(hit))
        c["l3fwd_hit"][lp] += nhit
        c["l3fwd_miss"][lp] += len(hop) - nhit
        macs = h[["dmac", "smac"]]  # a view: both MACs as one 12-byte field
        if nhit == len(hop):
            rewrite_macs(macs, hop, self.hop_macs, self.hop_has_smac)
        else:
            if nhit:
                sub = macs[hit]
                rewrite_macs(sub, hop[hit], self.hop_macs, self.hop_has_smac)
                macs[hit] = sub
            miss = ~hit
            d = h["dmac"][miss]
            h["dmac"][miss] = h["smac"][miss]
            h["smac"][miss] = d
        ip4_head_store(data, a, h)  # TTL, checksum and MACs of the burst in one write
        out = self.hop_lport[hop] if nhit == len(hop) else np.where(hit, self.hop_lport[hop], ECHO)
        if allok:
            return out
        dst = np.full(k, DROP, np.int16)
        dst[sel] = out
        return dst


def rewrite_macs(
    macs: np.ndarray, hop: np.ndarray, hop_macs: np.ndarray, has_smac: np.ndarray
) -> None:
    """Both MACs from the hop table where the egress lport's MAC is known, else only the
    destination MAC."""
    if has_smac[hop].all():
        macs[:] = hop_macs[hop]
    else:
        new = hop_macs[hop]
        keep = ~has_smac[hop]
        new["smac"][keep] = macs["smac"][keep]
        macs[:] = new


# ---------------------------------------------------------------------------------------- acl
def parse_acl_rules(rules: Any) -> list[Any]:
    """``options."acl-rules"`` (ours): cndpfwd ``/acl/add`` strings
    ``"<src>/<len>:<dst>/<len>:<allow|deny>"``; they replace the built-in rules."""
    from ..lib.acl import AclError, CndpfwdRule

    key = 'options."acl-rules"'
    if not isinstance(rules, list):
        raise ConfigError(
            f"{key} must be a list of strings", fix='e.g. ["0.0.0.0/0:198.18.9.0/24:deny"]'
        )
    out = []
    for i, r in enumerate(rules):
        if not isinstance(r, str):
            raise ConfigError(f"{key}[{i}] is {type(r).__name__}, not a string")
        try:
            out.append(CndpfwdRule.parse(r))
        except AclError as e:
            raise ConfigError(f"{key}[{i}]: {e}") from None
    return out


class AclSteer(Counted):
    """cndpfwd's acl-strict / acl-permissive: the RFC 1812 prefilter (not IPv4: dropped),
    then the ACL on (protocol, source, destination); strict forwards permitted packets only,
    permissive all but denied ones. Forwarded packets go as in fwd mode (egress lport = last
    octet of the destination MAC, MACs swapped). Rules: CNDP's 4226 built-in ones, or
    ``options."acl-rules"``; ``rebuild`` swaps in a new rule list (the /acl/build command)."""

    NAMES = ("acl_prefilter_drop", "acl_permit", "acl_deny")

    def __init__(
        self,
        policy: str,
        table: np.ndarray,
        rules: list[Any] | None = None,
        shared: AclShared | None = None,
    ) -> None:
        super().__init__()
        from ..lib.acl import AclPolicy

        self.policy = AclPolicy(policy)
        self.table = table  # MAC-index steering, as MacIndexSteer
        self.shared = shared  # rules /acl/build publishes (then ``rules`` is ignored)
        self.gen = -1
        if shared is not None:
            self._follow()
        else:
            self.rebuild(rules)

    def _follow(self) -> None:
        gen, rules = self.shared.current()
        self.rebuild(rules)
        self.gen = gen

    def rebuild(self, rules: list[Any] | None = None) -> None:
        from ..lib.acl import CNDPFWD_FIELDS, CNDPFWD_RULES, AclContext, cndpfwd_acl_rules

        descs = CNDPFWD_RULES if rules is None else rules
        ctx = AclContext("CNDPFWD-ACL", 100000, CNDPFWD_FIELDS)
        if descs:
            ctx.add_rules(cndpfwd_acl_rules(descs))
        ctx.build()
        self.ctx = ctx  # swapped in whole: a burst sees the old or the new rules
        self.rules = list(descs)

    def __call__(self, io: IO, pv: PktVec, k: int) -> np.ndarray:
        from ..lib.acl import forward_mask

        if self.shared is not None and self.shared.head[0] != self.gen:
            self._follow()  # /acl/build: a new rule list
        data = io.data
        a = pv.addr[:k]
        h, v = ip4_head(data, a, pv.data_len[:k])
        c = self.counters
        lp = io.lpid
        nv = int(np.count_nonzero(v))
        c["acl_prefilter_drop"][lp] += k - nv
        dst = np.full(k, DROP, np.int16)
        if not nv:
            return dst
        if nv < k:
            h = h[v]
        res = self.ctx.classify(
            proto=h["proto"], src=h["src"].astype(np.uint32), dst=h["dst"].astype(np.uint32)
        )
        fwd = forward_mask(res, self.policy)
        nf = int(np.count_nonzero(fwd))
        c["acl_permit"][lp] += nf
        c["acl_deny"][lp] += nv - nf
        if not nf:
            return dst
        idx = np.flatnonzero(v)[fwd] if nv < k else np.flatnonzero(fwd)
        af = a[idx]
        dst[idx] = self.table[h["dmac"][fwd, 5] if nf < nv else h["dmac"][:, 5]]
        mac_swap(data, af)
        return dst


# ----------------------------------------------------------------- ACL rules across processes
MAX_ACL_RULES = 100000  # cndpfwd's MAX_ACL_RULE_NUM
ACL_RULES_PER_PAGE = 32
_RULE_DT = np.dtype(
    [("src", "u4"), ("src_len", "u1"), ("dst", "u4"), ("dst_len", "u1"), ("deny", "u1")]
)


class AclShared:
    """The rule list the workers classify with, in shared memory (created before the fork).

    The main process edits a pending list (``/acl/add``, ``/acl/clear``); ``/acl/build``
    writes it here and bumps ``gen``; each worker's AclSteer sees the new generation on its
    next burst and swaps in a context it builds from these rows. Unlike C cndpfwd, whose
    /acl/build needs every forwarding thread stopped first, the swap is per worker and safe
    while forwarding (a burst is classified by the old or the new rules, never a mix).
    """

    def __init__(self, rules: list[Any]) -> None:
        from ..app.runtime import shared_array

        self.rows = shared_array(MAX_ACL_RULES * _RULE_DT.itemsize, np.uint8).view(_RULE_DT)
        self.head = shared_array(2, np.uint64)  # [generation, rule count]
        self.pending = list(rules)
        self.publish(rules)

    def publish(self, rules: list[Any]) -> None:
        n = len(rules)
        if n > MAX_ACL_RULES:
            raise ConfigError(f"{n} ACL rules: at most {MAX_ACL_RULES}")
        r = self.rows
        r["src"][:n] = [x.src_addr for x in rules]
        r["src_len"][:n] = [x.src_len for x in rules]
        r["dst"][:n] = [x.dst_addr for x in rules]
        r["dst_len"][:n] = [x.dst_len for x in rules]
        r["deny"][:n] = [x.deny for x in rules]
        self.head[1] = n
        self.head[0] += 1  # last: a worker that sees the new generation sees the rows

    def current(self) -> tuple[int, list[Any]]:
        from ..lib.acl import CndpfwdRule

        gen, n = int(self.head[0]), int(self.head[1])
        r = self.rows[:n]
        return gen, [
            CndpfwdRule(int(a), int(b), int(c), int(d), bool(e))
            for a, b, c, d, e in zip(
                r["src"], r["src_len"], r["dst"], r["dst_len"], r["deny"], strict=True
            )
        ]


def register_acl_commands(table: Any, shared: AclShared) -> None:
    """C cndpfwd's ``acl`` telemetry group: /acl/clear, /acl/add, /acl/build, /acl/rules."""
    from ..lib.acl import AclError, CndpfwdRule

    def clear(req: Any) -> dict:
        shared.pending.clear()  # the pending list only, as C: the workers keep their rules
        return {}

    def add(req: Any) -> dict:
        if req.param is None:
            return {"error": _ADD_USAGE}
        if len(shared.pending) >= MAX_ACL_RULES:
            return {"error": f"Failed to add ACL rule: {MAX_ACL_RULES} rules already"}
        try:
            shared.pending.append(CndpfwdRule.parse(req.param))
        except AclError:
            return {"error": _ADD_USAGE}
        return {}

    def build(req: Any) -> dict:
        shared.publish(shared.pending)
        return {}

    def rules(req: Any) -> dict:
        pend = shared.pending
        if req.param is None:
            return {
                "num rules": len(pend),
                "max rules": MAX_ACL_RULES,
                "rule pages": -(-len(pend) // ACL_RULES_PER_PAGE),
                "rules per page": ACL_RULES_PER_PAGE,
            }
        kind, _, num = req.param.partition(":")
        if kind.lower() not in ("p", "r") or not num.isdigit():
            return {"error": "Parameter must be: 'p:<page num>' or 'r:<rule num>'"}
        i = int(num)
        if kind.lower() == "r":
            if i >= len(pend):
                return {"error": "Wrong ACL rule number"}
            return pend[i].describe()
        if i >= -(-len(pend) // ACL_RULES_PER_PAGE):
            return {"error": "Wrong page number"}
        lo = i * ACL_RULES_PER_PAGE
        return {"rules": [r.describe() for r in pend[lo : lo + ACL_RULES_PER_PAGE]]}

    table.register("/acl/clear", clear, "clear the pending ACL rule list")
    table.register("/acl/add", add, "add a rule: <src>/<len>:<dst>/<len>:<allow|deny>")
    table.register("/acl/build", build, "make the workers classify with the pending rules")
    table.register("/acl/rules", rules, "rule list info; p:<page> or r:<rule> to read rules")


_ADD_USAGE = "Command expects parameter: <src IP>/<src mask>:<dst IP>/<dst mask>:<allow|deny>"
