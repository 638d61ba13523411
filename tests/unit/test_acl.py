"""cndp.lib.acl against a brute-force matcher written plainly here, plus API and error cases."""

from __future__ import annotations

import errno
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.lib import acl
from cndp.lib.acl import (
    ACL_DENY_SIGNATURE,
    CNDPFWD_FIELDS,
    CNDPFWD_RULES,
    IPV4_FIELDS,
    IPV4_VLAN_FIELDS,
    MAX_PRIORITY,
    AclContext,
    AclError,
    AclFullError,
    AclPolicy,
    AclRuleError,
    AclStateError,
    CndpfwdRule,
    FieldDef,
    FieldType,
    Rule,
    cndpfwd_acl_rules,
    forward_mask,
    ipv4_rule,
    make_rule,
)

# ---------------------------------------------------------------------------------------------
# the oracle: every rule against every packet, no cleverness


def field_matches(fd: FieldDef, pair: tuple[int, int], x: int) -> bool:
    value, mask_range = pair
    if fd.type == FieldType.MASK:
        plen = mask_range
        mask = 0 if plen == 0 else ((1 << plen) - 1) << (fd.bits - plen)
        return (x & mask) == (value & mask)
    if fd.type == FieldType.RANGE:
        return value <= x <= mask_range
    return (x & mask_range) == (value & mask_range)


def brute(fields, rules: list[Rule], packets: list[dict[str, int]], ncat: int) -> np.ndarray:
    out = np.zeros((len(packets), ncat), dtype=np.uint32)
    for i, pkt in enumerate(packets):
        for c in range(ncat):
            best = None
            for r in rules:  # insertion order; only a strictly higher priority replaces
                if not (r.category_mask >> c) & 1:
                    continue
                hit = all(
                    field_matches(fd, r.fields[fd.field_index], pkt[fd.name]) for fd in fields
                )
                if hit and (best is None or r.priority > best.priority):
                    best = r
            out[i, c] = 0 if best is None else best.userdata
    return out


def columns(fields, packets: list[dict[str, int]]) -> dict[str, np.ndarray]:
    return {fd.name: np.array([p[fd.name] for p in packets], dtype=fd.dtype) for fd in fields}


def build(rules, fields=IPV4_VLAN_FIELDS, ncat=1, name="t") -> AclContext:
    ctx = AclContext(name, max(1, len(rules)), fields, ncat)
    ctx.add_rules(rules)
    ctx.build()
    return ctx


# ---------------------------------------------------------------------------------------------
# hypothesis: IPv4 5-tuple + VLAN layout

ADDRS = [0, 0x0A000000, 0x0A010000, 0x0A010203, 0xC0A80001, 0x80000000, 0xFFFFFFFF]
PLENS = [0, 1, 8, 16, 24, 31, 32]
PORTS = [0, 1, 80, 1023, 1024, 65534, 65535]

addr_st = st.one_of(st.sampled_from(ADDRS), st.integers(0, 2**32 - 1))
plen_st = st.one_of(st.sampled_from(PLENS), st.integers(0, 32))
port_st = st.one_of(st.sampled_from(PORTS), st.integers(0, 65535))
range_st = st.tuples(port_st, port_st).map(lambda t: (min(t), max(t)))
proto_st = st.tuples(
    st.sampled_from([0, 1, 6, 17, 0xFF]) | st.integers(0, 255),
    st.sampled_from([0, 0xFF, 0xF0, 0x0F, 0x04]) | st.integers(0, 255),
)


@st.composite
def ipv4_rules(draw, ncat: int, max_rules: int = 25):
    n = draw(st.integers(0, max_rules))
    rules = []
    for i in range(n):
        pairs = (
            draw(proto_st),
            (draw(addr_st), draw(plen_st)),
            (draw(addr_st), draw(plen_st)),
            draw(range_st | st.just((0, 65535))),
            draw(range_st | st.just((0, 65535))),
            draw(st.tuples(st.integers(0, 4095), st.integers(0, 4095)).map(sorted).map(tuple))
            if draw(st.booleans())
            else (0, 65535),
        )
        prio = draw(st.integers(1, 4))  # few values: ties are common
        cmask = draw(st.integers(1, 2**ncat - 1) | st.just(0xFFFF))
        rules.append(Rule(i + 1, pairs, prio, cmask))
    return rules


def candidates(fields, rules: list[Rule]) -> dict[str, list[int]]:
    """Per field, values at and next to every rule edge (where off-by-one bugs live)."""
    cands: dict[str, set[int]] = {fd.name: {0, fd.max_value} for fd in fields}
    for r in rules:
        for fd in fields:
            v, m = r.fields[fd.field_index]
            if fd.type == FieldType.MASK:
                mask = 0 if m == 0 else ((1 << m) - 1) << (fd.bits - m)
                lo, hi = v & mask, (v & mask) | (fd.max_value ^ mask)
            elif fd.type == FieldType.RANGE:
                lo, hi = v, m
            else:
                lo, hi = v & m, (v & m) | (fd.max_value ^ m)
            for x in (lo - 1, lo, hi, hi + 1, v):
                if 0 <= x <= fd.max_value:
                    cands[fd.name].add(x)
    return {k: sorted(s) for k, s in cands.items()}


@st.composite
def packets_for(draw, fields, rules, max_n: int = 40):
    cands = candidates(fields, rules)
    n = draw(st.integers(0, max_n))
    return [
        {
            fd.name: draw(st.sampled_from(cands[fd.name]) | st.integers(0, fd.max_value))
            for fd in fields
        }
        for _ in range(n)
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), ncat=st.sampled_from([1, 2, 4]))
def test_ipv4_vlan_matches_brute_force(data, ncat):
    rules = data.draw(ipv4_rules(ncat))
    pkts = data.draw(packets_for(IPV4_VLAN_FIELDS, rules))
    ctx = build(rules, ncat=ncat)
    got = ctx.classify(**columns(IPV4_VLAN_FIELDS, pkts))
    assert got.shape == (len(pkts), ncat) and got.dtype == np.uint32
    np.testing.assert_array_equal(got, brute(IPV4_VLAN_FIELDS, rules, pkts, ncat))


# A layout with every type at every size, including 2-byte BITMASKs with arbitrary masks
# (classes found by enumerating the domain) and 8-byte fields.
GENERIC_FIELDS = (
    FieldDef("a8", FieldType.MASK, 1, 3),
    FieldDef("b16", FieldType.BITMASK, 2, 0),
    FieldDef("r16", FieldType.RANGE, 2, 5),
    FieldDef("m64", FieldType.MASK, 8, 1),
    FieldDef("r64", FieldType.RANGE, 8, 4),
    FieldDef("p32", FieldType.BITMASK, 4, 2),  # wide BITMASK: prefix-shaped masks only
)


@st.composite
def generic_rules(draw, max_rules: int = 20):
    def pair(fd: FieldDef):
        top = fd.max_value
        edge = st.sampled_from([0, 1, top - 1, top]) | st.integers(0, top)
        if fd.type == FieldType.MASK:
            return (draw(edge), draw(st.sampled_from([0, 1, fd.bits]) | st.integers(0, fd.bits)))
        if fd.type == FieldType.RANGE:
            a, b = draw(edge), draw(edge)
            return (min(a, b), max(a, b))
        if fd.size > 2:
            k = draw(st.integers(0, fd.bits))
            return (draw(edge), 0 if k == 0 else ((1 << k) - 1) << (fd.bits - k))
        return (draw(edge), draw(st.sampled_from([0, top, 0x00F0, 0x8001]) | st.integers(0, top)))

    n = draw(st.integers(0, max_rules))
    rules = []
    for _ in range(n):
        pairs = [None] * len(GENERIC_FIELDS)
        for fd in GENERIC_FIELDS:
            pairs[fd.field_index] = pair(fd) if draw(st.booleans()) else fd.wildcard()
        ud = draw(st.integers(1, 2**32 - 1))
        rules.append(Rule(ud, tuple(pairs), draw(st.integers(1, 3)), 1))
    return rules


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generic_layout_matches_brute_force(data):
    rules = data.draw(generic_rules())
    pkts = data.draw(packets_for(GENERIC_FIELDS, rules, max_n=30))
    ctx = build(rules, GENERIC_FIELDS)
    cols = columns(GENERIC_FIELDS, pkts)
    want = brute(GENERIC_FIELDS, rules, pkts, 1)
    np.testing.assert_array_equal(ctx.classify(**cols), want)
    # positional columns are in field_index order
    by_index = sorted(GENERIC_FIELDS, key=lambda f: f.field_index)
    np.testing.assert_array_equal(ctx.classify(*[cols[f.name] for f in by_index]), want)


# ---------------------------------------------------------------------------------------------
# large random rule sets (ClassBench-like), checked on a sample


def random_ipv4_rules(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    plen = [0, 8, 16, 20, 24, 28, 32]
    p = [0.1, 0.1, 0.2, 0.05, 0.3, 0.05, 0.2]
    proto = rng.choice([0, 6, 17], n, p=[0.3, 0.4, 0.3])

    def ports():
        kind = rng.choice(3, n, p=[0.5, 0.3, 0.2])
        lo = np.where(kind == 0, 0, rng.integers(0, 65536, n))
        span = np.where(kind == 1, 0, rng.integers(0, 4000, n))
        return lo, np.where(kind == 0, 65535, np.minimum(65535, lo + span))

    (sl, sh), (dl, dh) = ports(), ports()
    vl = rng.integers(0, 4096, n)
    vh = np.where(rng.random(n) < 0.8, 65535, np.minimum(4095, vl + rng.integers(0, 100, n)))
    vl = np.where(vh == 65535, 0, vl)
    vals = np.stack(
        [
            proto,
            rng.integers(0, 2**32, n, dtype=np.uint64),
            rng.integers(0, 2**32, n, dtype=np.uint64),
            sl,
            dl,
            vl,
        ],
        axis=1,
    ).astype(np.uint64)
    mrs = np.stack(
        [
            np.where(proto == 0, 0, 255),
            rng.choice(plen, n, p=p),
            rng.choice(plen, n, p=p),
            sh,
            dh,
            vh,
        ],
        axis=1,
    ).astype(np.uint64)
    return vals, mrs


def packets_near_rules(rng, vals, mrs, n):
    """Half of the packets fall inside a random rule's src/dst prefixes, half are random."""
    pick = rng.integers(0, len(vals), n)
    out = []
    for i in range(n):
        v, m = vals[pick[i]], mrs[pick[i]]
        pkt = {}
        for fd in IPV4_VLAN_FIELDS:
            j = fd.field_index
            if rng.random() < 0.5:
                pkt[fd.name] = int(rng.integers(0, fd.max_value + 1))
            elif fd.type == FieldType.MASK:
                k = int(m[j])
                host = int(rng.integers(0, 2 ** (32 - k))) if k < 32 else 0
                base = int(v[j]) >> (32 - k) << (32 - k) if k else 0
                pkt[fd.name] = base | host
            elif fd.type == FieldType.RANGE:
                pkt[fd.name] = int(rng.integers(int(v[j]), int(m[j]) + 1))
            else:
                pkt[fd.name] = int(v[j])
        out.append(pkt)
    return out


def rules_from_arrays(vals, mrs, ud, prio) -> list[Rule]:
    return [
        Rule(int(ud[i]), tuple((int(a), int(b)) for a, b in zip(vals[i], mrs[i], strict=True)),
             int(prio[i]), 1)
        for i in range(len(ud))
    ]  # fmt: skip


@pytest.mark.parametrize(("nrules", "npkts"), [(1000, 300), (10000, 40)])
def test_large_rule_sets_match_brute_force_sample(nrules, npkts):
    rng = np.random.default_rng(nrules)
    vals, mrs = random_ipv4_rules(rng, nrules)
    ud = rng.permutation(nrules) + 1
    prio = rng.integers(1, 50, nrules)  # many ties
    ctx = AclContext("big", nrules)
    ctx.add_rule_arrays(vals, mrs, userdata=ud, priority=prio)
    ctx.build()
    pkts = packets_near_rules(rng, vals, mrs, npkts)
    got = ctx.classify(**columns(IPV4_VLAN_FIELDS, pkts))
    want = brute(IPV4_VLAN_FIELDS, rules_from_arrays(vals, mrs, ud, prio), pkts, 1)
    np.testing.assert_array_equal(got, want)
    assert 0 < np.count_nonzero(want) < npkts or nrules == 10000  # a mix of hits and misses


@pytest.mark.parametrize("ncat", [1, 4])
def test_priority_blocks_with_categories(monkeypatch, ncat):
    """Small blocks (64, 256, ... rules): packets resolved in a block skip the later ones, and a
    category still unmatched is filled by later blocks only."""
    monkeypatch.setattr(acl, "FIRST_BLOCK", 1)
    monkeypatch.setattr(acl, "BLOCKS_MIN_WORDS", 1)
    rng = np.random.default_rng(11 + ncat)
    n = 700
    vals, mrs = random_ipv4_rules(rng, n)
    ud = np.arange(1, n + 1)
    prio = rng.integers(1, 20, n)
    cmask = rng.integers(1, 2**ncat, n) if ncat > 1 else np.ones(n, dtype=np.int64)
    ctx = AclContext("blocks", n, num_categories=ncat)
    ctx.add_rule_arrays(vals, mrs, userdata=ud, priority=prio, category_mask=cmask)
    ctx.build()
    assert len(ctx.info()["blocks"]) == 3  # 64 + 256 + the rest
    pkts = packets_near_rules(rng, vals, mrs, 150)
    rules = rules_from_arrays(vals, mrs, ud, prio)
    rules = [Rule(r.userdata, r.fields, r.priority, int(cmask[i])) for i, r in enumerate(rules)]
    want = brute(IPV4_VLAN_FIELDS, rules, pkts, ncat)
    np.testing.assert_array_equal(ctx.classify(**columns(IPV4_VLAN_FIELDS, pkts)), want)
    assert np.count_nonzero(want) and np.count_nonzero(want == 0)
    flat = AclContext("flat", n, num_categories=ncat, priority_blocks=False)
    flat.add_rule_arrays(vals, mrs, userdata=ud, priority=prio, category_mask=cmask)
    flat.build()
    assert len(flat.info()["blocks"]) == 1
    np.testing.assert_array_equal(flat.classify(**columns(IPV4_VLAN_FIELDS, pkts)), want)


# ---------------------------------------------------------------------------------------------
# semantics


def v4(a: str) -> int:
    return struct.unpack("!I", bytes(int(x) for x in a.split(".")))[0]


def one(ctx: AclContext, **kw) -> list[int]:
    pkt = {"proto": 6, "src": 0, "dst": 0, "sport": 0, "dport": 0, "vlan": 0, **kw}
    return ctx.classify(**columns(ctx.fields, [pkt]))[0].tolist()


def test_equal_priority_first_added_wins():
    a = ipv4_rule(11, priority=5, src="10.0.0.0/8")
    b = ipv4_rule(22, priority=5, src="10.1.0.0/16")
    c = ipv4_rule(33, priority=4, src="10.1.2.0/24")
    assert one(build([a, b, c]), src=v4("10.1.2.3")) == [11]
    assert one(build([b, a, c]), src=v4("10.1.2.3")) == [22]
    # across separate add calls too
    ctx = AclContext("t", 10)
    ctx.add_rules([c])
    ctx.add_rules([b])
    ctx.add_rules([a])
    ctx.build()
    assert one(ctx, src=v4("10.1.2.3")) == [22]
    # a strictly higher priority beats insertion order
    d = ipv4_rule(44, priority=6, src="10.1.2.3/32")
    assert one(build([a, b, d]), src=v4("10.1.2.3")) == [44]


def test_categories_with_masks():
    rules = [
        ipv4_rule(1, priority=9, category_mask=0b0001, dport=80),
        ipv4_rule(2, priority=8, category_mask=0b0110, dport=(0, 1023)),
        ipv4_rule(3, priority=7, category_mask=0b1111),
        ipv4_rule(4, priority=1, category_mask=1 << 7),  # no category of this context
    ]
    ctx = build(rules, ncat=4)
    assert one(ctx, dport=80) == [1, 2, 2, 3]
    assert one(ctx, dport=443) == [3, 2, 2, 3]
    assert one(ctx, dport=8080) == [3, 3, 3, 3]
    r = ctx.classify(**columns(IPV4_VLAN_FIELDS, [dict.fromkeys(
        ("proto", "src", "dst", "sport", "dport", "vlan"), 80)]), categories=2)  # fmt: skip
    assert r.tolist() == [[1, 2]]
    with pytest.raises(AclError, match="categories 5"):
        ctx.classify(**columns(IPV4_VLAN_FIELDS, []), categories=5)


def test_wildcards_prefix_and_port_edges():
    rules = [
        ipv4_rule(1, priority=1),  # everything
        ipv4_rule(2, priority=2, src="0.0.0.0/0", dst="198.18.0.1/32"),
        ipv4_rule(3, priority=3, sport=(0, 0)),
        ipv4_rule(4, priority=4, dport=(65535, 65535)),
        ipv4_rule(5, priority=5, src="255.255.255.255/32"),
        ipv4_rule(6, priority=6, proto=(0, 0), vlan=(4095, 4095)),
    ]
    ctx = build(rules)
    assert one(ctx, sport=1, dport=65534) == [1]
    assert one(ctx, sport=1, dst=v4("198.18.0.1")) == [2]
    assert one(ctx, sport=1, dst=v4("198.18.0.0")) == [1]
    assert one(ctx, sport=0) == [3]
    assert one(ctx, sport=1, dport=65535) == [4]
    assert one(ctx, sport=1, src=0xFFFFFFFF) == [5]
    assert one(ctx, sport=1, src=0xFFFFFFFE) == [1]
    assert one(ctx, sport=1, vlan=4095) == [6]
    assert one(ctx, sport=1, vlan=4094) == [1]
    # a host prefix given with host bits set is the /32 of that address; /0 ignores the value
    ctx = build([ipv4_rule(7, src=(v4("10.9.9.9"), 0), dst=(v4("10.1.2.3"), 32))])
    assert one(ctx, src=v4("1.2.3.4"), dst=v4("10.1.2.3")) == [7]
    assert one(ctx, src=v4("1.2.3.4"), dst=v4("10.1.2.4")) == [0]


def test_bitmask_proto_non_prefix_mask():
    ctx = build([ipv4_rule(9, proto=(0x04, 0x04)), ipv4_rule(8, proto=17, priority=2)])
    assert one(ctx, proto=6) == [9]  # 6 has bit 2 set
    assert one(ctx, proto=17) == [8]
    assert one(ctx, proto=1) == [0]


def test_no_rules_and_empty_vectors():
    ctx = build([])
    assert ctx.classify(**columns(IPV4_VLAN_FIELDS, [{"proto": 1, "src": 2, "dst": 3,
            "sport": 4, "dport": 5, "vlan": 6}])).tolist() == [[0]]  # fmt: skip
    ctx = build([ipv4_rule(1)], ncat=3)
    assert ctx.classify(**columns(IPV4_VLAN_FIELDS, [])).shape == (0, 3)
    # every field a wildcard in every rule: all fields are skipped, all rules match
    assert ctx.info()["wildcard_fields"] == [f.name for f in IPV4_VLAN_FIELDS]
    assert one(ctx, src=123) == [1, 0, 0]


def test_input_forms_agree():
    rng = np.random.default_rng(7)
    vals, mrs = random_ipv4_rules(rng, 200)
    ctx = AclContext("forms", 200)
    ctx.add_rule_arrays(vals, mrs, userdata=np.arange(1, 201))
    ctx.build()
    pkts = packets_near_rules(rng, vals, mrs, 64)
    cols = columns(IPV4_VLAN_FIELDS, pkts)
    want = ctx.classify(**cols)
    assert np.count_nonzero(want)
    np.testing.assert_array_equal(ctx.classify(cols), want)
    order = [cols[f.name] for f in sorted(IPV4_VLAN_FIELDS, key=lambda f: f.field_index)]
    np.testing.assert_array_equal(ctx.classify(*order), want)
    sa = np.zeros(64, dtype=[(f.name, f.dtype) for f in IPV4_VLAN_FIELDS] + [("x", "u1")])
    for k, v in cols.items():
        sa[k] = v
    np.testing.assert_array_equal(ctx.classify(sa), want)
    # wider integer dtypes are accepted when the values fit
    np.testing.assert_array_equal(
        ctx.classify(**{k: v.astype(np.int64) for k, v in cols.items()}), want
    )
    # raw IPv4 headers (network byte order) read at the layout's offsets
    rows = np.zeros((64, 24), dtype=np.uint8)
    for i, p in enumerate(pkts):
        rows[i] = np.frombuffer(
            struct.pack("!BBHHHBBHIIHH", 0x45, 0, 40, 0, 0, 64, p["proto"], 0, p["src"], p["dst"],
                        p["sport"], p["dport"]), dtype=np.uint8)  # fmt: skip
    np.testing.assert_array_equal(ctx.classify_bytes(rows, vlan=cols["vlan"]), want)
    with pytest.raises(AclError, match="vlan"):
        ctx.classify_bytes(rows)
    with pytest.raises(AclError, match="needs 22 bytes"):
        ctx.classify_bytes(rows[:, :20], vlan=cols["vlan"])


def test_bad_columns():
    ctx = build([ipv4_rule(1, dport=80)])
    good = columns(IPV4_VLAN_FIELDS, [dict.fromkeys(("proto", "src", "dst", "sport", "dport",
                                                     "vlan"), 1)] * 3)  # fmt: skip
    with pytest.raises(AclError, match=r"outside 0\.\.65535"):
        ctx.classify(**{**good, "dport": np.array([1, 2, 70000])})
    with pytest.raises(AclError, match="not an integer"):
        ctx.classify(**{**good, "dport": np.array([1.0, 2.0, 3.0])})
    with pytest.raises(AclError, match=r"shape \(2,\), expected \(3,\)"):
        ctx.classify(**{**good, "vlan": np.zeros(2, np.uint16)})
    with pytest.raises(AclError, match="missing"):
        ctx.classify(**{k: v for k, v in good.items() if k != "vlan"})
    with pytest.raises(AclError, match="got 2 columns"):
        ctx.classify(good["proto"], good["src"])
    with pytest.raises(AclError, match="lacks"):
        ctx.classify(np.zeros(3, dtype=[("proto", "u1")]))


# ---------------------------------------------------------------------------------------------
# life cycle and errors


def test_lifecycle_classify_before_build_and_add_after_build():
    ctx = AclContext("life", 4)
    cols = columns(IPV4_VLAN_FIELDS, [{"proto": 6, "src": v4("10.0.0.1"), "dst": 0,
                                       "sport": 0, "dport": 0, "vlan": 0}])  # fmt: skip
    with pytest.raises(AclStateError, match="not built"):
        ctx.classify(**cols)
    ctx.add_rules([ipv4_rule(5, src="10.0.0.0/8")])
    ctx.build()
    assert ctx.classify(**cols).tolist() == [[5]]
    with pytest.raises(AclStateError, match="is built"):
        ctx.add_rules([ipv4_rule(6)])
    assert ctx.num_rules == 1
    # reset_rules: the old build keeps classifying until the next build
    ctx.reset_rules()
    assert ctx.num_rules == 0 and ctx.classify(**cols).tolist() == [[5]]
    ctx.add_rules([ipv4_rule(6, src="10.0.0.1/32")])
    assert ctx.classify(**cols).tolist() == [[5]]
    ctx.build()
    assert ctx.classify(**cols).tolist() == [[6]]
    # reset: no rules, built empty, results 0
    ctx.reset()
    assert ctx.built and ctx.num_rules == 0 and ctx.classify(**cols).tolist() == [[0]]
    ctx.reset_rules()
    ctx.add_rules([ipv4_rule(7)])  # allowed again after a reset
    assert ctx.rules() == [ipv4_rule(7)]


def test_max_rules_is_all_or_nothing():
    ctx = AclContext("full", 3)
    ctx.add_rules([ipv4_rule(1), ipv4_rule(2)])
    with pytest.raises(AclFullError, match="exceed max_rules 3") as ei:
        ctx.add_rules([ipv4_rule(3), ipv4_rule(4)])
    assert ei.value.errno == errno.ENOMEM and ctx.num_rules == 2
    with pytest.raises(AclRuleError):  # an invalid rule adds nothing either
        ctx.add_rules([Rule(0, ipv4_rule(1).fields)])
    assert ctx.num_rules == 2


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        (Rule(0, ipv4_rule(1).fields), "userdata 0"),
        (Rule(2**32, ipv4_rule(1).fields), "userdata"),
        (Rule(1, ipv4_rule(1).fields, priority=0), "priority 0"),
        (Rule(1, ipv4_rule(1).fields, priority=MAX_PRIORITY + 1), "priority"),
        (Rule(1, ipv4_rule(1).fields, category_mask=0), "selects no category"),
        (Rule(1, ipv4_rule(1).fields, category_mask=1 << 16), "selects no category"),
        (Rule(1, ipv4_rule(1).fields[:5]), "has 5 fields"),
        (Rule(1, ((0, 0), (0, 33), *ipv4_rule(1).fields[2:])), "prefix length over 32"),
        (Rule(1, ((256, 0), *ipv4_rule(1).fields[1:])), "does not fit"),
        (Rule(1, (*ipv4_rule(1).fields[:3], (9, 8), *ipv4_rule(1).fields[4:])), "not a range"),
        (Rule(1, (*ipv4_rule(1).fields[:3], (0, 65536), *ipv4_rule(1).fields[4:])), "range"),
        (Rule(1, ((-1, 0), *ipv4_rule(1).fields[1:])), "non-negative"),
        (Rule(True, ipv4_rule(1).fields), "integers"),
    ],
)
def test_invalid_rules_rejected(rule, match):
    ctx = AclContext("bad", 10)
    with pytest.raises(AclRuleError, match=match) as ei:
        ctx.add_rules([ipv4_rule(1), rule])
    assert ei.value.fix is not None
    assert ctx.num_rules == 0


def test_wide_bitmask_must_be_prefix_shaped():
    fields = (FieldDef("x", FieldType.BITMASK, 4, 0),)
    ctx = AclContext("w", 4, fields)
    ctx.add_rules([Rule(1, ((0x0A000000, 0xFF000000),))])
    with pytest.raises(AclRuleError, match="contiguous high bits"):
        ctx.add_rules([Rule(2, ((1, 0x00FF00FF),))])
    ctx.build()
    assert ctx.classify(x=np.array([0x0A123456, 0x0B000000], np.uint32)).ravel().tolist() == [1, 0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 32}, "name"),
        ({"max_rules": 0}, "max_rules"),
        ({"num_categories": 17}, "num_categories"),
        ({"num_categories": 0}, "num_categories"),
        ({"fields": ()}, "1..64 fields"),
        ({"fields": (FieldDef("a", FieldType.MASK, 3, 0),)}, "size 3"),
        ({"fields": (FieldDef("a", FieldType.MASK, 1, 1),)}, "field_index"),
        ({"fields": (FieldDef("a", 7, 1, 0),)}, "type 7"),
        ({"fields": (FieldDef("a", FieldType.MASK, 1, 0),) * 2}, "distinct"),
        ({"max_size": 0}, "max_size"),
    ],
)
def test_invalid_contexts_rejected(kwargs, match):
    args = {"name": "ok", "max_rules": 10, **kwargs}
    with pytest.raises(AclError, match=match):
        AclContext(**args)


def test_max_size_limits_build_and_keeps_previous_build():
    ctx = AclContext("small", 2000, max_size=1 << 20)
    rng = np.random.default_rng(3)
    vals, mrs = random_ipv4_rules(rng, 100)
    ctx.add_rule_arrays(vals, mrs, userdata=np.arange(1, 101))
    ctx.build()
    first = ctx.info()["table_bytes"]
    ctx.reset_rules()
    vals, mrs = random_ipv4_rules(rng, 2000)
    ctx.add_rule_arrays(vals, mrs, userdata=np.arange(1, 2001))
    with pytest.raises(AclError, match="over max_size") as ei:
        ctx.build()
    assert ei.value.errno == errno.ENOMEM
    assert ctx.info()["table_bytes"] == first  # the earlier build is still the one in use


def test_make_rule_specs():
    r = make_rule(IPV4_FIELDS, 3, priority=2, proto=17, src="10.1.2.3/8", dport=53)
    assert r == Rule(3, ((17, 255), (0x0A000000, 8), (0, 0), (0, 65535), (53, 53)), 2, 1)
    with pytest.raises(AclRuleError, match="unknown field"):
        make_rule(IPV4_FIELDS, 1, vlan=3)
    with pytest.raises(AclRuleError, match="not in this layout"):
        ipv4_rule(1, vlan=3, fields=IPV4_FIELDS)
    with pytest.raises(AclRuleError, match="field 'src'"):
        ipv4_rule(1, src="10.0.0.0/33")
    with pytest.raises(AclRuleError, match="32-bit prefix"):
        ipv4_rule(1, src="fd00::/8")
    with pytest.raises(AclRuleError, match="field 'dport'"):
        ipv4_rule(1, dport="80")


def test_dump_and_info():
    ctx = AclContext("dumpme", 10)
    assert "not built" in ctx.dump()
    ctx.add_rules([ipv4_rule(1, src="10.0.0.0/8", dport=(1, 2))])
    ctx.build()
    text = ctx.dump()
    assert "acl context <dumpme>" in text and "num_rules=1" in text and "max_rules=10" in text
    assert "classes[src]=2" in text and "wildcard fields (skipped): proto" in text
    info = ctx.info()
    assert info["num_rules"] == 1 and info["fields"] == {"src": 2, "dport": 2}


# ---------------------------------------------------------------------------------------------
# strict / permissive and cndpfwd's rules


def test_forward_mask_policies():
    res = np.array([[0], [5], [ACL_DENY_SIGNATURE + 3], [ACL_DENY_SIGNATURE]], dtype=np.uint32)
    assert forward_mask(res, AclPolicy.STRICT).tolist() == [False, True, False, False]
    assert forward_mask(res, "acl-permissive").tolist() == [True, True, False, False]
    assert forward_mask(res[:, 0], "ACL-STRICT").tolist() == [False, True, False, False]
    with pytest.raises(AclError, match="unknown ACL policy"):
        forward_mask(res, "acl-lax")
    with pytest.raises(AclError, match="categories"):
        forward_mask(np.zeros((2, 2), np.uint32), AclPolicy.STRICT)


def test_cndpfwd_builtin_rules():
    assert len(CNDPFWD_RULES) == 100 + 15 + 15 + 4096
    ctx = AclContext("CNDPFWD-ACL", 100000, CNDPFWD_FIELDS)
    ctx.add_rules(cndpfwd_acl_rules())
    ctx.build()
    cases = [  # (src, dst, userdata)
        ("1.2.3.4", "100.5.0.7", ACL_DENY_SIGNATURE + 5),  # dst 100.5.0.0/24, rule 5
        ("1.2.3.4", "100.5.1.7", 0),
        ("1.2.3.4", "100.100.0.7", 0),
        ("10.9.9.9", "1.1.1.1", ACL_DENY_SIGNATURE + 100),
        ("24.0.0.1", "1.1.1.1", ACL_DENY_SIGNATURE + 114),
        ("25.0.0.1", "1.1.1.1", 0),  # C prints [10-34] but creates 10..24
        ("101.0.14.9", "1.1.1.1", ACL_DENY_SIGNATURE + 129),
        ("101.0.15.9", "1.1.1.1", 0),
        ("210.0.3.4", "110.0.3.4", 130 + 3 * 256 + 4 + 1),
        ("210.0.3.4", "110.0.3.5", 0),
        ("210.0.16.0", "110.0.16.0", 0),
        ("10.0.3.4", "100.0.0.1", ACL_DENY_SIGNATURE + 0),  # both deny; rule 0 added first
    ]
    src = np.array([v4(c[0]) for c in cases], np.uint32)
    dst = np.array([v4(c[1]) for c in cases], np.uint32)
    res = ctx.classify(proto=np.full(len(cases), 17, np.uint8), src=src, dst=dst)[:, 0]
    assert res.tolist() == [c[2] for c in cases]
    strict = forward_mask(res, AclPolicy.STRICT)
    permissive = forward_mask(res, AclPolicy.PERMISSIVE)
    assert strict.tolist() == [c[2] not in (0,) and c[2] < ACL_DENY_SIGNATURE for c in cases]
    assert permissive.tolist() == [c[2] < ACL_DENY_SIGNATURE for c in cases]


def test_cndpfwd_rule_parse_and_describe():
    r = CndpfwdRule.parse("198.18.0.0/15:0.0.0.0/0:deny")
    assert r == CndpfwdRule(v4("198.18.0.0"), 15, 0, 0, True)
    assert r.describe() == {"src addr": "198.18.0.0/15", "dst addr": "0.0.0.0/0", "type": "deny"}
    assert CndpfwdRule.parse("1.2.3.4/32:5.6.7.8/8:ALLOW").deny is False
    for bad in ("1.2.3.4/32:5.6.7.8/8", "1.2.3.4/33:5.6.7.8/8:allow", "x/1:5.6.7.8/8:allow",
                "1.2.3.4/32:5.6.7.8/8:permit", "1.2.3.4/a:5.6.7.8/8:deny"):  # fmt: skip
        with pytest.raises(AclRuleError, match="bad ACL rule"):
            CndpfwdRule.parse(bad)
    # a user rule appended after the built-ins, as /acl/add then /acl/build do
    rules = cndpfwd_acl_rules((*CNDPFWD_RULES[:3], r))
    ctx = build(rules, CNDPFWD_FIELDS)
    res = ctx.classify(proto=np.zeros(1, np.uint8), src=np.array([v4("198.19.1.1")], np.uint32),
                       dst=np.array([v4("9.9.9.9")], np.uint32))  # fmt: skip
    assert res.tolist() == [[ACL_DENY_SIGNATURE + 3]]
