"""ACL: a multi-field packet classifier with CNDP ``cne_acl`` / DPDK ``rte_acl`` semantics.

A context holds rules over a fixed list of fields. ``build()`` compiles them; ``classify()`` then
takes one numpy array per field (a whole packet vector) and returns, per packet and category, the
``userdata`` of the highest-priority matching rule (0: no match).

Field types (as DPDK):
  * ``MASK``     value/prefix length: ``10.0.0.0/8`` is ``(0x0A000000, 8)``;
  * ``RANGE``    inclusive range ``(low, high)``;
  * ``BITMASK``  ``(value, mask)``: matches when ``x & mask == value & mask`` (mask 0: any).

Algorithm (bit-vector decomposition, see docs/acl.md): at build, rules are sorted by priority
(highest first; equal priority: the rule added first wins). For each field the value space is cut
into elementary intervals at every rule boundary; each interval gets the bitset of the rules that
match it; intervals with equal bitsets share one row ("equivalence classes"). Classifying a vector
is, per field, one lookup (a table index for 1- and 2-byte fields, ``searchsorted`` for wider
ones) and one row gather; the rows are ANDed across fields, and the first set bit of each row is
the winning rule. No Python loop runs per packet.
"""

from __future__ import annotations

import enum
import errno
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = [
    "ACL_DENY_SIGNATURE",
    "CNDPFWD_FIELDS",
    "CNDPFWD_RULES",
    "IPV4_FIELDS",
    "IPV4_VLAN_FIELDS",
    "MAX_CATEGORIES",
    "MAX_FIELDS",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "AclContext",
    "AclError",
    "AclFullError",
    "AclPolicy",
    "AclRuleError",
    "AclStateError",
    "CndpfwdRule",
    "FieldDef",
    "FieldType",
    "Rule",
    "cndpfwd_acl_rules",
    "forward_mask",
    "ipv4_rule",
    "make_rule",
]

# CNDP cne_acl.h constants.
MAX_CATEGORIES = 16
MAX_FIELDS = 64
MIN_PRIORITY = 1
MAX_PRIORITY = (1 << 29) - 1
NAMESIZE = 32
DEFAULT_MAX_SIZE = 1 << 30  # bytes of compiled tables a build may allocate

_U64 = np.uint64
_DTYPES = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32), 8: _U64}
_SENTINEL = _U64(1 << 63)  # bit 63 of the extra last word: "no rule matched" (see build)


class AclError(ConfigError):
    """A misuse of the ACL API (bad field layout, bad argument)."""


class AclRuleError(AclError):
    """A rule is invalid (CNE/DPDK return -EINVAL for these)."""


class AclFullError(AclError):
    """More rules than the context's ``max_rules`` (CNE/DPDK return -ENOMEM)."""


class AclStateError(AclError):
    """Classify before build, or add rules to a built context."""


class FieldType(enum.IntEnum):
    """Field types, numbered as CNE_ACL_FIELD_TYPE_*."""

    MASK = 0
    RANGE = 1
    BITMASK = 2


@dataclass(frozen=True)
class FieldDef:
    """One field of a layout (``struct cne_acl_field_def`` plus a name).

    ``field_index`` is the position of the field's ``(value, mask_range)`` pair in
    ``Rule.fields``. ``offset`` is where the field starts (network byte order) in a row of bytes
    given to ``classify_bytes``; ``None`` means it is not in those bytes and is passed as a
    column. ``input_index`` is kept for parity with the C struct and not used.
    """

    name: str
    type: FieldType
    size: int
    field_index: int
    offset: int | None = None
    input_index: int = 0

    @property
    def bits(self) -> int:
        return self.size * 8

    @property
    def max_value(self) -> int:
        return (1 << self.bits) - 1

    @property
    def dtype(self) -> np.dtype:
        return _DTYPES[self.size]

    def wildcard(self) -> tuple[int, int]:
        """The ``(value, mask_range)`` that matches every value."""
        return (0, self.max_value) if self.type == FieldType.RANGE else (0, 0)


@dataclass(frozen=True)
class Rule:
    """One rule: ``fields[i]`` is the ``(value, mask_range)`` of the field with field_index i.

    ``userdata`` (1 .. 2**32-1) is what classify reports for a match; 0 is reserved for "no
    match". ``priority`` is MIN_PRIORITY .. MAX_PRIORITY, higher wins; among equal priorities
    the rule added first wins (DPDK leaves that case undefined). ``category_mask`` bit c puts the
    rule in category c.
    """

    userdata: int
    fields: tuple[tuple[int, int], ...]
    priority: int = MIN_PRIORITY
    category_mask: int = 1


# The IPv4 5-tuple (+ VLAN) layout. Offsets are from the start of the IPv4 header, assuming no
# options (IHL 5), for classify_bytes; VLAN is not in that header so it is always a column
# (the VLAN ID of the frame, 0 when untagged -- the caller decides).
IPV4_VLAN_FIELDS: tuple[FieldDef, ...] = (
    FieldDef("proto", FieldType.BITMASK, 1, 0, offset=9),
    FieldDef("src", FieldType.MASK, 4, 1, offset=12),
    FieldDef("dst", FieldType.MASK, 4, 2, offset=16),
    FieldDef("sport", FieldType.RANGE, 2, 3, offset=20),
    FieldDef("dport", FieldType.RANGE, 2, 4, offset=22),
    FieldDef("vlan", FieldType.RANGE, 2, 5, offset=None),
)
IPV4_FIELDS: tuple[FieldDef, ...] = IPV4_VLAN_FIELDS[:5]
# cndpfwd's own layout (examples/cndpfwd/acl-func.c): proto, src, dst.
CNDPFWD_FIELDS: tuple[FieldDef, ...] = IPV4_VLAN_FIELDS[:3]


# ---------------------------------------------------------------------------------------------
# building rules


def _spec_error(fd: FieldDef, spec: Any, want: str) -> AclRuleError:
    return AclRuleError(
        f"field {fd.name!r} ({fd.type.name}, {fd.size} bytes): cannot use {spec!r}",
        fix=want,
    )


def _field_pair(fd: FieldDef, spec: Any) -> tuple[int, int]:
    """A user-friendly field spec -> ``(value, mask_range)``."""
    if spec is None:
        return fd.wildcard()
    if fd.type == FieldType.MASK:
        want = "give 'a.b.c.d/len', an ipaddress network, (value, prefix_len) or an exact int"
        if isinstance(spec, (str, ipaddress.IPv4Network, ipaddress.IPv6Network)):
            try:
                net = ipaddress.ip_network(spec, strict=False)
            except ValueError:
                raise _spec_error(fd, spec, want) from None
            if net.max_prefixlen != fd.bits:
                raise _spec_error(fd, spec, f"a {fd.bits}-bit prefix")
            return int(net.network_address), net.prefixlen
        if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
            return int(spec), fd.bits
    elif fd.type == FieldType.RANGE:
        want = "give an int (exact) or (low, high)"
        if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
            return int(spec), int(spec)
    else:
        want = "give an int (exact) or (value, mask)"
        if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
            return int(spec), fd.max_value
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        a, b = spec
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (a, b)):
            return int(a), int(b)
    raise _spec_error(fd, spec, want)


def make_rule(
    fields: Sequence[FieldDef],
    userdata: int,
    *,
    priority: int = MIN_PRIORITY,
    category_mask: int = 1,
    **specs: Any,
) -> Rule:
    """A Rule for layout ``fields`` from per-field specs by name; omitted fields are wildcards.

    Specs: MASK ``"10.0.0.0/8"`` / ``(value, prefix_len)`` / int (exact); RANGE int or
    ``(low, high)``; BITMASK int (exact) or ``(value, mask)``; ``None`` = any.
    """
    by_name = {fd.name: fd for fd in fields}
    unknown = set(specs) - set(by_name)
    if unknown:
        raise AclRuleError(
            f"unknown field(s) {sorted(unknown)} for this layout",
            fix=f"use the layout's field names: {[fd.name for fd in fields]}",
        )
    pairs: list[tuple[int, int]] = [(0, 0)] * len(fields)
    for fd in fields:
        pairs[fd.field_index] = _field_pair(fd, specs.get(fd.name))
    return Rule(int(userdata), tuple(pairs), int(priority), int(category_mask))


def ipv4_rule(
    userdata: int,
    *,
    priority: int = MIN_PRIORITY,
    category_mask: int = 1,
    proto: Any = None,
    src: Any = None,
    dst: Any = None,
    sport: Any = None,
    dport: Any = None,
    vlan: Any = None,
    fields: Sequence[FieldDef] = IPV4_VLAN_FIELDS,
) -> Rule:
    """A rule for the IPv4 5-tuple + VLAN layout (or IPV4_FIELDS / CNDPFWD_FIELDS).

    ``ipv4_rule(7, priority=10, proto=6, src="198.18.0.0/15", dport=(1024, 65535))``.
    """
    specs = {"proto": proto, "src": src, "dst": dst, "sport": sport, "dport": dport, "vlan": vlan}
    names = {fd.name for fd in fields}
    extra = [k for k, v in specs.items() if v is not None and k not in names]
    if extra:
        raise AclRuleError(
            f"field(s) {extra} are not in this layout", fix="use IPV4_VLAN_FIELDS for them"
        )
    return make_rule(
        fields,
        userdata,
        priority=priority,
        category_mask=category_mask,
        **{k: v for k, v in specs.items() if k in names},
    )


# ---------------------------------------------------------------------------------------------
# the compiled form


def _prefix_mask(length: np.ndarray, bits: int) -> np.ndarray:
    """uint64 masks with the top ``length`` of ``bits`` bits set (length 0 -> 0)."""
    length = length.astype(np.int64)
    ones = _U64((1 << bits) - 1) if bits < 64 else _U64(2**64 - 1)
    shift = np.clip(bits - length, 0, 63).astype(_U64)
    m = (ones >> shift) << shift  # shift < 64 always; length 0 handled below
    # ones >> s << s clears the low s bits; for length == 0 the shift would need to be 64.
    return np.where(length == 0, _U64(0), m & ones)


def _is_prefix_mask(mask: np.ndarray, bits: int) -> np.ndarray:
    """True where ``mask`` (uint64, within ``bits``) is contiguous high ones (or 0)."""
    full = _U64((1 << bits) - 1) if bits < 64 else _U64(2**64 - 1)
    inv = ~mask & full  # a prefix mask's complement is 2**k - 1: inv & (inv + 1) == 0
    return (inv & (inv + _U64(1))) == 0


@dataclass
class _FieldTable:
    fd: FieldDef
    kind: str  # "lut": table index by value; "search": searchsorted on boundaries
    classes: np.ndarray  # (n_class, W+1) uint64 rule bitsets (emptied once split in blocks)
    lut: np.ndarray | None = None  # value -> class id (kind "lut")
    bounds: np.ndarray | None = None  # interval starts after 0, field dtype (kind "search")
    cmap: np.ndarray | None = None  # interval index -> class id (kind "search")

    def __post_init__(self) -> None:
        self.n_classes = len(self.classes)

    def lookup(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "lut":
            return self.lut[x]  # type: ignore[index]
        return self.cmap[np.searchsorted(self.bounds, x, side="right")]  # type: ignore[index]


@dataclass
class _Block:
    """Rules w0*64 .. w1*64-1 of the priority order: their bitset columns plus a sentinel."""

    w0: int
    w1: int
    tables: list[np.ndarray]  # per entry of _Compiled.tables: (n_class, w1 - w0 + 1) uint64
    userdata: np.ndarray  # uint32 (w1 - w0 + 1, 65); [w, k + 1]: rule of bit k of word w
    cat_groups: list[tuple[np.ndarray | None, list[int]]]  # (mask or None = all, categories)
    full: np.ndarray  # (w1 - w0 + 1,) every rule of the block


@dataclass
class _Compiled:
    num_rules: int
    num_categories: int
    words: int  # W = ceil(rules / 64)
    tables: list[_FieldTable]  # the fields that do not match everything, in classify order
    skipped: list[str]  # fields every rule matches whatever the value
    blocks: list[_Block]  # in priority order
    nbytes: int


# Rules are classified in blocks of words, highest priority first: a packet whose categories
# all matched in a block skips the later ones. Block sizes grow 8, 32, 128, ... words (512,
# 2048, 8192 ... rules). Each block costs a fixed ~15 numpy calls per burst, which only pays
# off on wide bitsets: below BLOCKS_MIN_WORDS words (8192 rules) everything is one block
# (measured: cndpfwd's 4226 rules were 25-40% slower in blocks, 10k random rules 33% faster).
FIRST_BLOCK = 8
BLOCKS_MIN_WORDS = 128


def _block_bounds(words: int) -> list[tuple[int, int]]:
    if words < max(BLOCKS_MIN_WORDS, 2 * FIRST_BLOCK + 1):
        return [(0, words)]
    out, w0, size = [], 0, FIRST_BLOCK
    while w0 < words:
        w1 = min(words, w0 + size)
        if words - w1 < size:  # a short tail joins this block
            w1 = words
        out.append((w0, w1))
        w0, size = w1, size * 4
    return out


class _Budget:
    """Bytes of bitset tables a build may still allocate (the config's ``max_size``)."""

    def __init__(self, limit: int | None, ctx_name: str) -> None:
        self.left = limit
        self.ctx_name = ctx_name

    def take(self, nbytes: int, what: str) -> None:
        if self.left is None:
            return
        if nbytes > self.left:
            raise AclError(
                f"ACL context {self.ctx_name!r}: building {what} needs {nbytes} more bytes of "
                f"tables, over max_size",
                errno=errno.ENOMEM,
                fix="raise max_size, or use fewer rules (tables grow with rules x boundaries)",
            )
        self.left -= nbytes


def _bitsets_from_intervals(s: np.ndarray, e: np.ndarray, n_rows: int, words: int) -> np.ndarray:
    """Rows 0..n_rows-1; rule r (bit r) set in rows s[r] <= row < e[r]. Difference array."""
    d = np.zeros((n_rows + 1, words + 1), dtype=_U64)
    r = np.arange(len(s))
    col = r >> 6
    bit = _U64(1) << (r & 63).astype(_U64)
    np.bitwise_xor.at(d, (s, col), bit)
    np.bitwise_xor.at(d, (e, col), bit)
    t = np.bitwise_xor.accumulate(d[:n_rows], axis=0)
    t[:, words] = _SENTINEL
    return t


def _dedup_rows(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique rows, inverse index)."""
    t = np.ascontiguousarray(t)
    v = t.view(np.dtype((np.void, t.shape[1] * 8))).ravel()
    _, first, inv = np.unique(v, return_index=True, return_inverse=True)
    return t[first], inv.astype(np.intp).ravel()


def _pack_rows(match: np.ndarray, words: int) -> np.ndarray:
    """(n, R) bool -> (n, W+1) uint64 bitsets, bit r of row i = match[i, r]."""
    n, r = match.shape
    out = np.zeros((n, words + 1), dtype=_U64)
    if r:
        packed = np.packbits(match, axis=1, bitorder="little")  # (n, ceil(R/8)) bytes
        out.view(np.uint8)[:, : packed.shape[1]] = packed
    out[:, words] = _SENTINEL
    return out


def _compile_interval_field(
    fd: FieldDef, lo: np.ndarray, hi: np.ndarray, words: int, budget: _Budget
) -> _FieldTable:
    top = _U64(fd.max_value)
    ends = hi[hi < top] + _U64(1)
    b = np.unique(np.concatenate([np.zeros(1, dtype=_U64), lo, ends]))
    budget.take((len(b) + 1) * (words + 1) * 8, f"field {fd.name!r}")
    s = np.searchsorted(b, lo)
    e = np.where(hi < top, np.searchsorted(b, np.minimum(hi, top - _U64(1)) + _U64(1)), len(b))
    t = _bitsets_from_intervals(s, e, len(b), words)
    classes, cls = _dedup_rows(t)
    keep = np.ones(len(b), dtype=bool)
    keep[1:] = cls[1:] != cls[:-1]  # merge neighbours with the same rule set
    b, cls = b[keep], cls[keep]
    if fd.size <= 2:
        dom = np.arange(fd.max_value + 1, dtype=_U64)
        lut = cls[np.searchsorted(b, dom, side="right") - 1].astype(np.uint16)
        return _FieldTable(fd, "lut", classes, lut=lut)
    return _FieldTable(
        fd, "search", classes, bounds=b[1:].astype(fd.dtype), cmap=cls.astype(np.intp)
    )


def _compile_small_bitmask_field(
    fd: FieldDef, val: np.ndarray, msk: np.ndarray, words: int, budget: _Budget
) -> _FieldTable:
    """1- or 2-byte BITMASK field with any masks: classes found by enumerating the domain.

    Slow path (build only): a value's signature is which distinct ``(value, mask)`` pairs it
    satisfies; values with equal signatures share a class.
    """
    dom = np.arange(fd.max_value + 1, dtype=_U64)
    pairs = np.unique(np.stack([val & msk, msk], axis=1), axis=0)
    sig_parts = []
    for i in range(0, len(pairs), 512):
        p = pairs[i : i + 512]
        sig_parts.append(np.packbits((dom[:, None] & p[:, 1]) == p[:, 0], axis=1))
    sig = np.ascontiguousarray(np.concatenate(sig_parts, axis=1))
    sv = sig.view(np.dtype((np.void, sig.shape[1]))).ravel()
    _, rep, cls = np.unique(sv, return_index=True, return_inverse=True)
    reps = dom[rep]
    budget.take(len(reps) * (words + 1) * 8, f"field {fd.name!r}")
    rows = []
    for i in range(0, len(reps), 256):
        x = reps[i : i + 256, None]
        rows.append(_pack_rows((x & msk) == (val & msk), words))
    classes = np.concatenate(rows, axis=0)
    return _FieldTable(fd, "lut", classes, lut=cls.astype(np.uint16).ravel())


_ROW_STARTS: dict[tuple[int, int], np.ndarray] = {}


def _first_rule(acc: np.ndarray, userdata: np.ndarray) -> np.ndarray:
    """userdata of the lowest set bit of each row (the sentinel bit maps to 0).

    ``userdata`` is (words, 65): [w, k + 1] is the rule of bit k of word w. Few numpy calls:
    this runs once per burst and block.
    """
    n, w1 = acc.shape
    starts = _ROW_STARTS.get((n, w1))
    if starts is None:
        starts = np.arange(0, n * w1, w1)
        if len(_ROW_STARTS) < 1024:  # burst sizes x block widths: a handful in practice
            _ROW_STARTS[(n, w1)] = starts
    w = (acc != 0).argmax(axis=1)
    word = acc.ravel()[starts + w]  # cheaper than take_along_axis
    tz1 = np.bitwise_count(word ^ (word - _U64(1)))  # trailing zeros + 1; word != 0 (sentinel)
    return userdata[w, tz1]


# ---------------------------------------------------------------------------------------------
# the context


class AclContext:
    """An ACL context: ``cne_acl_create`` + ``cne_acl_build``'s config in one object.

    ``fields`` is the layout (``cne_acl_config.defs``), ``num_categories`` 1..16, ``max_size``
    the most bytes of tables a build may allocate (``cne_acl_config.max_size``; None: no
    limit). The tables grow with rules x boundaries: about 40-60 MB for 10k rules.
    ``priority_blocks`` (default on) classifies 8192 rules or more in blocks of priority
    (512, 2048, 8192, ... rules), skipping the later blocks for packets already matched: faster
    when packets match high-priority rules, up to ~1.4x slower when nothing matches.
    """

    def __init__(
        self,
        name: str,
        max_rules: int,
        fields: Sequence[FieldDef] = IPV4_VLAN_FIELDS,
        num_categories: int = 1,
        max_size: int | None = DEFAULT_MAX_SIZE,
        priority_blocks: bool = True,
    ) -> None:
        if not isinstance(name, str) or not name or len(name) >= NAMESIZE:
            raise AclError(
                f"ACL context name {name!r} must be 1..{NAMESIZE - 1} characters",
                fix="give a short name such as 'ipv4-acl'",
            )
        if isinstance(max_rules, bool) or not isinstance(max_rules, (int, np.integer)):
            raise AclError(f"max_rules must be an int, got {max_rules!r}", fix="e.g. 100000")
        if max_rules < 1:
            raise AclError(f"max_rules must be >= 1, got {max_rules}", fix="e.g. 100000")
        if not 1 <= int(num_categories) <= MAX_CATEGORIES:
            raise AclError(
                f"num_categories must be 1..{MAX_CATEGORIES}, got {num_categories}",
                fix="use 1 unless rules report into several result slots",
            )
        if max_size is not None and (isinstance(max_size, bool) or int(max_size) < 1):
            raise AclError(f"max_size must be a positive byte count or None, got {max_size!r}")
        self.name = name
        self.priority_blocks = bool(priority_blocks)
        self.max_size = None if max_size is None else int(max_size)
        self.max_rules = int(max_rules)
        self.num_categories = int(num_categories)
        self.fields = self._check_fields(fields)
        self._by_index = sorted(self.fields, key=lambda f: f.field_index)
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._num_rules = 0
        self._frozen = False  # built and not reset_rules()'d since
        self._compiled: _Compiled | None = None

    @staticmethod
    def _check_fields(fields: Sequence[FieldDef]) -> tuple[FieldDef, ...]:
        fields = tuple(fields)
        if not 1 <= len(fields) <= MAX_FIELDS:
            raise AclError(
                f"an ACL layout needs 1..{MAX_FIELDS} fields, got {len(fields)}",
                fix="use IPV4_VLAN_FIELDS or list FieldDef objects",
            )
        for fd in fields:
            if not isinstance(fd, FieldDef):
                raise AclError(f"{fd!r} is not a FieldDef", fix="build fields with FieldDef(...)")
            if fd.size not in _DTYPES:
                raise AclError(f"field {fd.name!r}: size {fd.size} not 1, 2, 4 or 8", fix="")
            try:
                FieldType(fd.type)
            except ValueError:
                raise AclError(
                    f"field {fd.name!r}: type {fd.type!r} unknown", fix="use FieldType.*"
                ) from None
            if fd.offset is not None and fd.offset < 0:
                raise AclError(f"field {fd.name!r}: negative offset {fd.offset}", fix="")
        names = [fd.name for fd in fields]
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise AclError(f"field names must be distinct strings: {names}", fix="rename them")
        idx = sorted(fd.field_index for fd in fields)
        if idx != list(range(len(fields))):
            raise AclError(
                f"field_index values {idx} must be 0..{len(fields) - 1}, each once",
                fix="number the fields in rule order",
            )
        return fields

    # -- rules -----------------------------------------------------------------------------

    @property
    def num_rules(self) -> int:
        return self._num_rules

    @property
    def built(self) -> bool:
        return self._compiled is not None

    def add_rules(self, rules: Iterable[Rule]) -> None:
        """Add rules (``cne_acl_add_rules``). All or nothing: a bad rule adds none."""
        rules = list(rules)
        nf = len(self.fields)
        for i, r in enumerate(rules):
            if not isinstance(r, Rule):
                raise AclRuleError(f"rule #{i + 1} is {type(r).__name__}, not a Rule", fix="")
            if any(
                isinstance(x, bool) or not isinstance(x, (int, np.integer))
                for x in (r.userdata, r.priority, r.category_mask)
            ):
                raise AclRuleError(
                    f"rule #{i + 1}: userdata, priority and category_mask must be integers",
                    fix="see the Rule docstring for their ranges",
                )
            if len(r.fields) != nf:
                raise AclRuleError(
                    f"rule #{i + 1} has {len(r.fields)} fields, the layout has {nf}",
                    fix="give one (value, mask_range) pair per field, in field_index order",
                )
        if not rules:
            self._check_addable(0)
            return
        try:
            vals = np.array([[p[0] for p in r.fields] for r in rules], dtype=object)
            mrs = np.array([[p[1] for p in r.fields] for r in rules], dtype=object)
        except (TypeError, IndexError):
            raise AclRuleError(
                "rule fields must be (value, mask_range) pairs of ints", fix=""
            ) from None
        self.add_rule_arrays(
            vals,
            mrs,
            userdata=[r.userdata for r in rules],
            priority=[r.priority for r in rules],
            category_mask=[r.category_mask for r in rules],
        )

    def add_rule_arrays(
        self,
        values: Any,
        mask_ranges: Any,
        *,
        userdata: Any,
        priority: Any = MIN_PRIORITY,
        category_mask: Any = 1,
    ) -> None:
        """Add R rules given as arrays: ``values`` and ``mask_ranges`` are (R, num_fields), column
        i being the field with field_index i; the others are (R,) or scalars. Vectorised checks;
        the fast way to load thousands of rules."""
        self._check_addable(0)
        nf = len(self.fields)
        v = self._u64_matrix(values, "values", nf)
        m = self._u64_matrix(mask_ranges, "mask_ranges", nf)
        if v.shape != m.shape:
            raise AclRuleError(
                f"values {v.shape} and mask_ranges {m.shape} differ in shape", fix=""
            )
        n = v.shape[0]
        ud = self._int_column(userdata, n, "userdata")
        pr = self._int_column(priority, n, "priority")
        cm = self._int_column(category_mask, n, "category_mask")
        self._check_addable(n)
        bad = np.flatnonzero((ud < 1) | (ud > 0xFFFFFFFF))
        if bad.size:
            raise AclRuleError(
                f"rule #{bad[0] + 1}: userdata {ud[bad[0]]} not in 1..2**32-1",
                fix="0 means 'no match' in results; give each rule a non-zero userdata",
            )
        bad = np.flatnonzero((pr < MIN_PRIORITY) | (pr > MAX_PRIORITY))
        if bad.size:
            raise AclRuleError(
                f"rule #{bad[0] + 1}: priority {pr[bad[0]]} not in {MIN_PRIORITY}..{MAX_PRIORITY}",
                fix="higher priority wins; use 1..MAX_PRIORITY",
            )
        bad = np.flatnonzero((cm & ((1 << MAX_CATEGORIES) - 1) == 0) | (cm > 0xFFFFFFFF))
        if bad.size:
            raise AclRuleError(
                f"rule #{bad[0] + 1}: category_mask {cm[bad[0]]:#x} selects no category",
                fix="set bit c for each category c (0..15) the rule belongs to",
            )
        for fd in self.fields:
            self._check_field_column(fd, v[:, fd.field_index], m[:, fd.field_index])
        self._chunks.append((v, m, ud.astype(np.uint32), pr, cm.astype(np.uint32)))
        self._num_rules += n

    def _check_addable(self, n: int) -> None:
        if self._frozen:
            raise AclStateError(
                f"ACL context {self.name!r} is built; rules cannot be added to it",
                fix="call reset_rules() (the current build stays in use until the next "
                "build()) or reset(), then add all rules and build() again",
            )
        if self._num_rules + n > self.max_rules:
            raise AclFullError(
                f"ACL context {self.name!r}: {self._num_rules} + {n} rules exceed max_rules "
                f"{self.max_rules}",
                errno=errno.ENOMEM,
                fix="create the context with a larger max_rules",
            )

    @staticmethod
    def _u64_matrix(a: Any, what: str, nf: int) -> np.ndarray:
        try:
            arr = np.asarray(a)
            if arr.dtype == object:
                if arr.size and any(
                    isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0
                    for x in arr.ravel()
                ):
                    raise TypeError
                arr = arr.astype(_U64)
            elif arr.dtype.kind == "b" or arr.dtype.kind not in "ui":
                raise TypeError
            elif arr.dtype.kind == "i":
                if arr.size and arr.min() < 0:
                    raise TypeError
                arr = arr.astype(_U64)
            else:
                arr = arr.astype(_U64, copy=False)
        except (TypeError, ValueError, OverflowError):
            raise AclRuleError(
                f"rule {what} must be non-negative integers below 2**64", fix=""
            ) from None
        if arr.ndim != 2 or arr.shape[1] != nf:
            raise AclRuleError(
                f"rule {what} has shape {arr.shape}, expected (R, {nf})",
                fix="one column per field, in field_index order",
            )
        return arr

    @staticmethod
    def _int_column(a: Any, n: int, what: str) -> np.ndarray:
        try:
            arr = np.asarray(a)
            if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
                raise OverflowError
            if arr.dtype.kind not in "ui":
                flat = arr.ravel().tolist()
                if any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) for x in flat):
                    raise TypeError
                arr = np.array(flat, dtype=np.int64).reshape(arr.shape)
            arr = arr.astype(np.int64)
        except (TypeError, ValueError, OverflowError):
            raise AclRuleError(
                f"rule {what} must be integers", fix="see the Rule docstring for ranges"
            ) from None
        if arr.ndim == 0:
            arr = np.full(n, int(arr), dtype=np.int64)
        if arr.shape != (n,):
            raise AclRuleError(f"rule {what} has shape {arr.shape}, expected ({n},)", fix="")
        return arr

    @staticmethod
    def _check_field_column(fd: FieldDef, v: np.ndarray, m: np.ndarray) -> None:
        top = _U64(fd.max_value)

        def fail(i: int, why: str, fix: str) -> None:
            raise AclRuleError(
                f"rule #{i + 1}, field {fd.name!r} ({fd.type.name}): value {int(v[i]):#x} "
                f"mask_range {int(m[i]):#x}: {why}",
                fix=fix,
            )

        bad = np.flatnonzero(v > top)
        if bad.size:
            fail(bad[0], f"value does not fit in {fd.size} byte(s)", "use a smaller value")
        if fd.type == FieldType.MASK:
            bad = np.flatnonzero(m > _U64(fd.bits))
            if bad.size:
                fail(bad[0], f"prefix length over {fd.bits}", f"use 0..{fd.bits}")
        elif fd.type == FieldType.RANGE:
            bad = np.flatnonzero((m > top) | (v > m))
            if bad.size:
                fail(bad[0], "not a range low <= high within the field", "give (low, high)")
        else:
            bad = np.flatnonzero(m > top)
            if bad.size:
                fail(bad[0], f"mask does not fit in {fd.size} byte(s)", "use a smaller mask")
            if fd.size > 2:
                bad = np.flatnonzero(~_is_prefix_mask(m, fd.bits))
                if bad.size:
                    fail(
                        bad[0],
                        "a BITMASK on a field wider than 2 bytes must be contiguous high bits",
                        "use a MASK field, or split the field into 1/2-byte BITMASK fields",
                    )

    def rules(self) -> list[Rule]:
        """The rules added since the last reset, in insertion order (slow path)."""
        out: list[Rule] = []
        for v, m, ud, pr, cm in self._chunks:
            for i in range(len(ud)):
                pairs = tuple((int(a), int(b)) for a, b in zip(v[i], m[i], strict=True))
                out.append(Rule(int(ud[i]), pairs, int(pr[i]), int(cm[i])))
        return out

    def reset_rules(self) -> None:
        """Delete all rules (``cne_acl_reset_rules``); the current build keeps classifying until
        the next ``build()``, and rules may be added again."""
        self._chunks = []
        self._num_rules = 0
        self._frozen = False

    def reset(self) -> None:
        """Delete all rules and rebuild empty (``cne_acl_reset``): classify then reports 0."""
        self.reset_rules()
        self.build()

    # -- build -----------------------------------------------------------------------------

    def build(self) -> None:
        """Compile the rules (``cne_acl_build``). On error the previous build stays in use."""
        nf = len(self.fields)
        if self._chunks:
            v = np.concatenate([c[0] for c in self._chunks])
            m = np.concatenate([c[1] for c in self._chunks])
            ud = np.concatenate([c[2] for c in self._chunks])
            pr = np.concatenate([c[3] for c in self._chunks])
            cm = np.concatenate([c[4] for c in self._chunks])
        else:
            v = m = np.zeros((0, nf), dtype=_U64)
            ud = cm = np.zeros(0, dtype=np.uint32)
            pr = np.zeros(0, dtype=np.int64)
        n = len(ud)
        # Highest priority first; ties keep insertion order (lexsort is stable).
        order = np.lexsort((np.arange(n), -pr))
        v, m, ud, cm = v[order], m[order], ud[order], cm[order]
        words = max(1, -(-n // 64))
        tables: list[_FieldTable] = []
        skipped: list[str] = []
        full = _pack_rows(np.ones((1, n), dtype=bool), words)[0]
        budget = _Budget(self.max_size, self.name)
        for fd in self.fields:
            t = self._compile_field(fd, v[:, fd.field_index], m[:, fd.field_index], words, budget)
            if t.n_classes == 1 and np.array_equal(t.classes[0], full):
                skipped.append(fd.name)  # every rule matches any value: ANDing is a no-op
                continue
            tables.append(t)
        # Any order gives the same AND; a fixed one keeps classify's memory pattern stable.
        tables.sort(key=lambda t: -t.n_classes)
        cat_masks = [
            _pack_rows(((cm >> np.uint32(c)) & 1).astype(bool)[None, :], words)[0]
            for c in range(self.num_categories)
        ]
        udp = np.zeros((words + 1) * 64, dtype=np.uint32)
        udp[:n] = ud
        blocks = []
        for w0, w1 in _block_bounds(words) if self.priority_blocks else [(0, words)]:
            cols = np.r_[w0:w1, words]  # the block's words, then the sentinel word
            bfull = full[cols]
            groups: dict[bytes, tuple[np.ndarray | None, list[int]]] = {}
            for c, cmask in enumerate(cat_masks):
                mask = cmask[cols]
                key = mask.tobytes()
                if key not in groups:
                    groups[key] = (None if np.array_equal(mask, bfull) else mask, [])
                groups[key][1].append(c)
            bud = np.zeros((w1 - w0 + 1, 65), dtype=np.uint32)
            bud[: w1 - w0, 1:] = udp[w0 * 64 : w1 * 64].reshape(w1 - w0, 64)
            blocks.append(
                _Block(
                    w0,
                    w1,
                    [np.ascontiguousarray(t.classes[:, cols]) for t in tables],
                    bud,
                    list(groups.values()),
                    bfull,
                )
            )
        nbytes = sum(a.nbytes for b in blocks for a in (*b.tables, b.userdata))
        for t in tables:
            t.classes = t.classes[:0]  # the blocks hold the columns now
            nbytes += sum(a.nbytes for a in (t.lut, t.bounds, t.cmap) if a is not None)
        self._compiled = _Compiled(
            num_rules=n,
            num_categories=self.num_categories,
            words=words,
            tables=tables,
            skipped=skipped,
            blocks=blocks,
            nbytes=nbytes,
        )
        self._frozen = True

    @staticmethod
    def _compile_field(
        fd: FieldDef, val: np.ndarray, mr: np.ndarray, words: int, budget: _Budget
    ) -> _FieldTable:
        top = _U64(fd.max_value)
        if fd.type == FieldType.RANGE:
            return _compile_interval_field(fd, val, mr, words, budget)
        if fd.type == FieldType.MASK:
            msk = _prefix_mask(mr, fd.bits)
            lo = val & msk
            return _compile_interval_field(fd, lo, lo | (~msk & top), words, budget)
        # BITMASK: prefix-shaped masks are intervals; anything else needs the small domain.
        prefix = _is_prefix_mask(mr, fd.bits)
        if prefix.all():
            lo = val & mr
            return _compile_interval_field(fd, lo, lo | (~mr & top), words, budget)
        return _compile_small_bitmask_field(fd, val, mr, words, budget)

    # -- classify --------------------------------------------------------------------------

    def _compiled_or_raise(self) -> _Compiled:
        if self._compiled is None:
            raise AclStateError(
                f"ACL context {self.name!r} is not built",
                fix="call build() after adding rules, before classify()",
            )
        return self._compiled

    def _column(self, fd: FieldDef, x: Any, n: int | None) -> np.ndarray:
        a = np.asarray(x)
        if a.ndim != 1 or (n is not None and len(a) != n):
            raise AclError(
                f"classify: column {fd.name!r} has shape {a.shape}, expected ({n},)"
                if n is not None
                else f"classify: column {fd.name!r} must be 1-D, got shape {a.shape}",
                fix="pass one 1-D array per field, all of the vector's length",
            )
        if a.dtype == fd.dtype:
            return a
        if a.dtype.kind not in "ui" or a.dtype.kind == "b":
            raise AclError(
                f"classify: column {fd.name!r} has dtype {a.dtype}, not an integer",
                fix=f"pass {fd.dtype} values (host byte order)",
            )
        if a.size and (int(a.min()) < 0 or int(a.max()) > fd.max_value):
            raise AclError(
                f"classify: column {fd.name!r} has values outside 0..{fd.max_value}",
                fix=f"pass {fd.dtype} values (host byte order)",
            )
        return a.astype(fd.dtype)

    def _columns(self, args: tuple[Any, ...], named: Mapping[str, Any]) -> list[np.ndarray]:
        if len(args) == 1 and not named:
            a0 = args[0]
            if isinstance(a0, Mapping):
                named, args = a0, ()
            elif isinstance(a0, np.ndarray) and a0.dtype.names:
                missing = [fd.name for fd in self.fields if fd.name not in a0.dtype.names]
                if missing:
                    raise AclError(
                        f"classify: structured array lacks field(s) {missing}",
                        fix=f"its dtype needs the layout's names {[f.name for f in self.fields]}",
                    )
                named, args = {fd.name: a0[fd.name] for fd in self.fields}, ()
        if args and named:
            raise AclError(
                "classify: give columns either positionally or by name, not both", fix=""
            )
        if args:
            if len(args) != len(self.fields):
                raise AclError(
                    f"classify: got {len(args)} columns, the layout has {len(self.fields)}",
                    fix=f"pass them in field_index order: {[f.name for f in self._by_index]}",
                )
            given = {fd.name: args[fd.field_index] for fd in self.fields}
        else:
            unknown = set(named) - {fd.name for fd in self.fields}
            missing = [fd.name for fd in self.fields if fd.name not in named]
            if unknown or missing:
                raise AclError(
                    f"classify: unknown column(s) {sorted(unknown)}, missing {missing}",
                    fix=f"pass exactly the layout's fields {[f.name for f in self.fields]}",
                )
            given = dict(named)
        n: int | None = None
        out: list[np.ndarray] = []
        for fd in self._by_index:
            col = self._column(fd, given[fd.name], n)
            n = len(col)
            out.append(col)
        return out

    def _check_categories(self, comp: _Compiled, categories: int | None) -> int:
        if categories is None:
            return comp.num_categories
        if isinstance(categories, bool) or not 1 <= int(categories) <= comp.num_categories:
            raise AclError(
                f"classify: categories {categories} not in 1..{comp.num_categories} "
                "(the context's num_categories)",
                fix="ask for at most the categories the context was built with",
            )
        return int(categories)

    def classify(self, *columns: Any, categories: int | None = None, **named: Any) -> np.ndarray:
        """Classify a vector (``cne_acl_classify``); returns (N, categories) uint32 userdata.

        Columns: one 1-D integer array per field in host byte order, either positionally in
        field_index order, by name (``proto=..., src=...``), as one dict, or as one structured
        array whose dtype has the field names. ``categories`` (default: all) returns the
        first categories only.
        """
        comp = self._compiled_or_raise()
        ncat = self._check_categories(comp, categories)
        cols = self._columns(columns, named)
        return self._classify_cols(comp, cols, ncat)

    def classify_bytes(
        self, rows: np.ndarray, *, categories: int | None = None, **columns: Any
    ) -> np.ndarray:
        """Classify rows of header bytes: ``rows`` is (N, L) uint8, each field read big-endian
        at its ``offset`` (as cne_acl reads its data pointers). Fields without an offset are
        passed by name as columns."""
        comp = self._compiled_or_raise()
        ncat = self._check_categories(comp, categories)
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.dtype != np.uint8:
            raise AclError(
                f"classify_bytes: rows must be (N, L) uint8, got {rows.dtype} {rows.shape}",
                fix="gather the header bytes of the vector into one matrix",
            )
        named: dict[str, Any] = {}
        for fd in self.fields:
            if fd.offset is None:
                if fd.name not in columns:
                    raise AclError(
                        f"classify_bytes: field {fd.name!r} has no offset and no column",
                        fix=f"pass {fd.name}=array",
                    )
                named[fd.name] = columns[fd.name]
                continue
            if fd.offset + fd.size > rows.shape[1]:
                raise AclError(
                    f"classify_bytes: field {fd.name!r} at offset {fd.offset} needs "
                    f"{fd.offset + fd.size} bytes per row, rows have {rows.shape[1]}",
                    fix="gather more bytes per packet",
                )
            raw = np.ascontiguousarray(rows[:, fd.offset : fd.offset + fd.size])
            named[fd.name] = raw.view(fd.dtype.newbyteorder(">")).ravel().astype(fd.dtype)
        extra = set(columns) - set(named)
        if extra:
            raise AclError(f"classify_bytes: unknown column(s) {sorted(extra)}", fix="")
        return self._classify_cols(comp, self._columns((), named), ncat)

    def _classify_cols(self, comp: _Compiled, cols: list[np.ndarray], ncat: int) -> np.ndarray:
        n = len(cols[0])
        res = np.zeros((n, ncat), dtype=np.uint32)
        if n == 0 or comp.num_rules == 0:
            return res
        cls = [t.lookup(cols[t.fd.field_index]) for t in comp.tables]
        rows: np.ndarray | None = None  # packets still unresolved (None: all of them)
        for blk in comp.blocks:
            bcls = cls if rows is None or len(rows) == n else [c[rows] for c in cls]
            if blk.tables:
                acc = np.take(blk.tables[0], bcls[0], axis=0)
                for tab, c in zip(blk.tables[1:], bcls[1:], strict=True):
                    acc &= np.take(tab, c, axis=0)
            else:  # every field is a wildcard in every rule: all rules match
                acc = np.repeat(blk.full[None, :], n if rows is None else len(rows), axis=0)
            for mask, cats in blk.cat_groups:
                cats = [c for c in cats if c < ncat]
                if not cats:
                    continue
                ud = _first_rule(acc if mask is None else acc & mask, blk.userdata)
                if rows is None:
                    res[:, cats] = ud[:, None]
                elif ncat == 1:  # pending rows have no result yet
                    res[rows, 0] = ud
                else:  # earlier blocks hold higher priorities: fill only what is still 0
                    cur = res[rows][:, cats]
                    res[rows[:, None], cats] = np.where(cur == 0, ud[:, None], cur)
            if blk is comp.blocks[-1]:
                break
            sub = res if rows is None else res[rows]
            pending = (sub == 0).any(axis=1)
            rows = np.flatnonzero(pending) if rows is None else rows[pending]
            if rows.size == 0:
                break
        return res

    # -- introspection ---------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Counts and build statistics as a dict."""
        d: dict[str, Any] = {
            "name": self.name,
            "max_rules": self.max_rules,
            "num_rules": self.num_rules,
            "num_categories": self.num_categories,
            "num_fields": len(self.fields),
            "built": self.built,
        }
        c = self._compiled
        if c is not None:
            d["built_rules"] = c.num_rules
            d["words_per_bitset"] = c.words + 1
            d["blocks"] = [(b.w0 * 64, min(b.w1 * 64, c.num_rules)) for b in c.blocks]
            d["table_bytes"] = c.nbytes
            d["fields"] = {t.fd.name: t.n_classes for t in c.tables}
            d["wildcard_fields"] = list(c.skipped)
        return d

    def dump(self) -> str:
        """A text dump like ``cne_acl_dump`` plus the compiled tables' sizes."""
        i = self.info()
        lines = [
            f"acl context <{self.name}>",
            "  alg=numpy-bitvector",
            f"  max_rules={i['max_rules']}",
            f"  num_rules={i['num_rules']}",
            f"  num_categories={i['num_categories']}",
            f"  num_fields={i['num_fields']}",
        ]
        for fd in self._by_index:
            off = "-" if fd.offset is None else fd.offset
            lines.append(
                f"  field[{fd.field_index}] {fd.name}: {fd.type.name} size={fd.size} offset={off}"
            )
        if self._compiled is None:
            lines.append("  not built")
        else:
            lines.append(f"  built_rules={i['built_rules']} words={i['words_per_bitset']}")
            lines.append("  blocks=" + " ".join(f"[{a},{b})" for a, b in i["blocks"]))
            for name, k in i["fields"].items():
                lines.append(f"  classes[{name}]={k}")
            if i["wildcard_fields"]:
                lines.append(f"  wildcard fields (skipped): {', '.join(i['wildcard_fields'])}")
            lines.append(f"  table_bytes={i['table_bytes']}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = "built" if self.built else "not built"
        return f"AclContext({self.name!r}, rules={self.num_rules}/{self.max_rules}, {state})"


# ---------------------------------------------------------------------------------------------
# strict / permissive use, and cndpfwd's built-in rules


class AclPolicy(enum.Enum):
    """cndpfwd's two ACL modes."""

    STRICT = "acl-strict"  # drop unless a permit rule matched (default deny)
    PERMISSIVE = "acl-permissive"  # forward unless a deny rule matched (default permit)


# cndpfwd marks deny rules by these userdata bits (permit rules get idx + 1, deny idx + this).
ACL_DENY_SIGNATURE = 0xF0000000


def forward_mask(
    results: np.ndarray, policy: AclPolicy | str, deny_signature: int = ACL_DENY_SIGNATURE
) -> np.ndarray:
    """Which packets to forward, from one category of results (cndpfwd's acl_fwd_test rule).

    A result with any ``deny_signature`` bit is a deny; another non-zero result a permit;
    0 no match. STRICT forwards permits only; PERMISSIVE forwards all but denies.
    """
    if isinstance(policy, str):
        try:
            policy = AclPolicy(policy.lower())
        except ValueError:
            raise AclError(
                f"unknown ACL policy {policy!r}", fix="use 'acl-strict' or 'acl-permissive'"
            ) from None
    r = np.asarray(results)
    if r.ndim == 2:
        if r.shape[1] != 1:
            raise AclError(
                f"forward_mask: results has {r.shape[1]} categories", fix="pass results[:, c]"
            )
        r = r[:, 0]
    deny = (r & np.uint32(deny_signature)) != 0
    if policy == AclPolicy.PERMISSIVE:
        return ~deny
    return (r != 0) & ~deny


@dataclass(frozen=True)
class CndpfwdRule:
    """cndpfwd's rule description (``struct acl_rule_desc``): src/dst prefixes, allow or deny."""

    src_addr: int
    src_len: int
    dst_addr: int
    dst_len: int
    deny: bool

    @classmethod
    def parse(cls, text: str) -> CndpfwdRule:
        """``<src ip>/<len>:<dst ip>/<len>:<allow|deny>`` (the ``/acl/add`` UDS parameter)."""
        fix = "use <src IP>/<src mask>:<dst IP>/<dst mask>:<allow|deny>"
        parts = text.split(":")
        if len(parts) != 3:
            raise AclRuleError(f"bad ACL rule {text!r}", fix=fix)
        nets = []
        for p in parts[:2]:
            ip, _, ln = p.partition("/")
            try:
                addr = int(ipaddress.IPv4Address(ip.strip()))
                length = int(ln)
            except ValueError:
                raise AclRuleError(f"bad ACL rule {text!r}: {p!r}", fix=fix) from None
            if not 0 <= length <= 32:
                raise AclRuleError(f"bad ACL rule {text!r}: prefix length {length}", fix=fix)
            nets.append((addr, length))
        action = parts[2].strip().lower()
        if action not in ("allow", "deny"):
            raise AclRuleError(f"bad ACL rule {text!r}: action {parts[2]!r}", fix=fix)
        return cls(nets[0][0], nets[0][1], nets[1][0], nets[1][1], action == "deny")

    def describe(self) -> dict[str, str]:
        """The ``/acl/rules,r:<n>`` JSON body of this rule."""
        return {
            "src addr": f"{ipaddress.IPv4Address(self.src_addr)}/{self.src_len}",
            "dst addr": f"{ipaddress.IPv4Address(self.dst_addr)}/{self.dst_len}",
            "type": "deny" if self.deny else "allow",
        }


def _cndpfwd_builtin() -> tuple[CndpfwdRule, ...]:
    """add_init_rules() of examples/cndpfwd/acl-func.c, in its order.

    Note: the C code prints "[10-34].0.0.0/8" for the second group but creates 15 rules,
    10..24.0.0.0/8; we create what the C code creates.
    """
    ip = lambda a, b, c, d: (a << 24) | (b << 16) | (c << 8) | d  # noqa: E731
    out = [CndpfwdRule(0, 0, ip(100, i, 0, 0), 24, True) for i in range(100)]
    out += [CndpfwdRule(ip(10 + i, 0, 0, 0), 8, 0, 0, True) for i in range(15)]
    out += [CndpfwdRule(ip(101, 0, i, 0), 24, 0, 0, True) for i in range(15)]
    out += [
        CndpfwdRule(ip(210, 0, i >> 8, i & 0xFF), 32, ip(110, 0, i >> 8, i & 0xFF), 32, False)
        for i in range(4096)
    ]
    return tuple(out)


# 100 deny dst 100.[0-99].0.0/24, 15 deny src [10-24].0.0.0/8, 15 deny src 101.0.[0-14].0/24,
# 4096 permit 210.0.x.y/32 -> 110.0.x.y/32: 4226 rules.
CNDPFWD_RULES: tuple[CndpfwdRule, ...] = _cndpfwd_builtin()


def cndpfwd_acl_rules(
    descs: Sequence[CndpfwdRule] = CNDPFWD_RULES, fields: Sequence[FieldDef] = CNDPFWD_FIELDS
) -> list[Rule]:
    """Rules as cndpfwd writes them (acl_tbl_write_rule): rule idx gets userdata idx + 1
    (permit) or idx + ACL_DENY_SIGNATURE (deny), priority MAX_PRIORITY - idx (earlier wins),
    all categories, protocol any."""
    out = []
    for idx, d in enumerate(descs):
        out.append(
            make_rule(
                fields,
                idx + (ACL_DENY_SIGNATURE if d.deny else 1),
                priority=MAX_PRIORITY - idx,
                category_mask=(1 << MAX_CATEGORIES) - 1,
                src=(d.src_addr, d.src_len),
                dst=(d.dst_addr, d.dst_len),
            )
        )
    return out
