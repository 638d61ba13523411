"""CRC32C, Toeplitz and the flow table against published vectors and oracles (hypothesis)."""

from __future__ import annotations

import ipaddress

import crc32c as crc_pkg  # a dev dependency: the second oracle
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cndp.errors import CndpError, ConfigError
from cndp.lib.hash import (
    M32,
    RSS_KEY_SYMMETRIC,
    FlowTable,
    TableFullError,
    crc32c,
    crc32c_bytes,
    hash_crc,
    ipv4_5tuple,
    ipv6_5tuple,
    toeplitz,
    toeplitz_bytes,
)

# --------------------------------------------------------------------------------------------
# CRC32C

# RFC 3720 appendix B.4 (iSCSI CRC32C examples) and the usual check value
RFC3720 = [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"123456789", 0xE3069283),
]

# DPDK app/test/test_hash_functions.c: rte_hash_crc over key bytes 0,1,2,... of these lengths
DPDK_LENS = [1, 2, 4, 8, 16, 32, 48, 64, 9, 13, 37, 40]
DPDK_CRC = {
    0: [0x00000000, 0xF26B8303, 0x91545164, 0x06040EB1, 0x9BB99201, 0xCC4C4FE4,
        0x14A90993, 0xF8A5DD8C, 0xCAA1AD0B, 0x7AC1E03E, 0x43F44466, 0x4A11475E],
    0xDEADBEEF: [0xBDFD3980, 0x70204542, 0x98CD4C70, 0xD52C702F, 0x41FC0E1C, 0x3905F65C,
                 0x94BFF47F, 0x1BAB102D, 0xF4A2C645, 0xBF441539, 0x789C104F, 0x53028D3E],
}  # fmt: skip


@pytest.mark.parametrize(("data", "want"), RFC3720)
def test_crc32c_rfc3720_vectors(data, want):
    assert int(crc32c(data)[0]) == want
    assert crc32c_bytes(data) == want


def test_crc32c_iscsi_read_pdu():
    # RFC 3720 B.4: an iSCSI read (10) command PDU
    words = ["01c00000", "00000000", "00000000", "00000000", "14000000", "00000400"]
    words += ["00000014", "00000018", "28000000", "00000000", "02000000", "00000000"]
    pdu = bytes.fromhex("".join(words))
    assert len(pdu) == 48
    assert int(crc32c(pdu)[0]) == 0xD9963A56


@pytest.mark.parametrize("init", sorted(DPDK_CRC))
def test_hash_crc_matches_dpdk_precalculated(init):
    key = np.arange(64, dtype=np.uint8)
    got = [int(hash_crc(key[:n], init)[0]) for n in DPDK_LENS]
    assert got == DPDK_CRC[init]


def test_crc_forms_relation_and_vector_shape():
    rng = np.random.default_rng(7)
    keys = rng.integers(0, 256, (300, 13), dtype=np.uint8)
    std = crc32c(keys)
    assert std.dtype == np.uint32 and std.shape == (300,)
    assert np.array_equal(std, hash_crc(keys, M32) ^ np.uint32(M32))
    # each row on its own gives the same value as inside the vector
    assert [int(crc32c(k)[0]) for k in keys[:5]] == std[:5].tolist()


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 64),
    n=st.integers(1, 20),
    init=st.integers(0, M32),
    seed=st.integers(0, 2**32 - 1),
)
def test_crc32c_against_package_and_bitwise(k, n, init, seed):
    keys = np.random.default_rng(seed).integers(0, 256, (n, k), dtype=np.uint8)
    std = crc32c(keys).tolist()
    raw = hash_crc(keys, init).tolist()
    ref = [crc32c_bytes(row.tobytes()) for row in keys]
    assert std == ref
    assert raw == [crc32c_bytes(row.tobytes(), init, final_xor=False) for row in keys]
    assert std == [crc_pkg.crc32c(row.tobytes()) for row in keys]


def test_crc32c_package_oracle_present():
    import crc32c  # a dev dependency: the second CRC oracle must really run

    assert crc32c.crc32c(b"123456789") == 0xE3069283


def test_crc_bitwise_reference_is_independent():
    # the table-free, bit-at-a-time definition of CRC-32C, to anchor crc32c_bytes itself
    def bitwise(data: bytes) -> int:
        c = M32
        for b in data:
            c ^= b
            for _ in range(8):
                c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        return c ^ M32

    for data, want in RFC3720:
        assert bitwise(data) == want == crc32c_bytes(data)


def test_keys_must_be_uint8_2d():
    with pytest.raises(ConfigError, match="dtype"):
        crc32c(np.zeros((2, 4), np.int32))
    with pytest.raises(ConfigError, match="shape"):
        crc32c(np.zeros((2, 2, 2), np.uint8))


# --------------------------------------------------------------------------------------------
# Toeplitz (Microsoft RSS verification suite)

MS_V4 = [
    # src, sport, dst, dport, IPv4-only hash, IPv4+TCP hash
    ("66.9.149.187", 2794, "161.142.100.80", 1766, 0x323E8FC2, 0x51CCC178),
    ("199.92.111.2", 14230, "65.69.140.83", 4739, 0xD718262A, 0xC626B0EA),
    ("24.19.198.95", 12898, "12.22.207.184", 38024, 0xD2D0A5DE, 0x5C2B394A),
    ("38.27.205.30", 48228, "209.142.163.6", 2217, 0x82989176, 0xAFC7327F),
    ("153.39.163.191", 44251, "202.188.127.2", 1303, 0x5D1809C5, 0x10E828A2),
]
MS_V6 = [
    ("3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766, 0x2CC18CD5, 0x40207D3D),
    ("3ffe:501:8::260:97ff:fe40:efab", 14230, "ff02::1", 4739, 0x0F0C461C, 0xDDE51BBF),
    (
        "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
        44251,
        "fe80::200:f8ff:fe21:67cf",
        38024,
        0x4B61E985,
        0x02D1FEEF,
    ),
]


def _ip(a: str) -> int:
    return int(ipaddress.ip_address(a))


def test_toeplitz_ms_ipv4_vectors_in_one_vector():
    keys = ipv4_5tuple(
        np.array([_ip(v[0]) for v in MS_V4], np.uint64),
        np.array([_ip(v[2]) for v in MS_V4], np.uint64),
        np.array([v[1] for v in MS_V4]),
        np.array([v[3] for v in MS_V4]),
        6,
    )
    assert toeplitz(keys[:, :8]).tolist() == [v[4] for v in MS_V4]
    assert toeplitz(keys[:, :12]).tolist() == [v[5] for v in MS_V4]


def test_toeplitz_ms_ipv6_vectors():
    src = np.array([list(ipaddress.ip_address(v[0]).packed) for v in MS_V6], np.uint8)
    dst = np.array([list(ipaddress.ip_address(v[2]).packed) for v in MS_V6], np.uint8)
    keys = ipv6_5tuple(src, dst, [v[1] for v in MS_V6], [v[3] for v in MS_V6], 17)
    assert keys.shape == (3, 37)
    assert toeplitz(keys[:, :32]).tolist() == [v[4] for v in MS_V6]
    assert toeplitz(keys[:, :36]).tolist() == [v[5] for v in MS_V6]


@settings(max_examples=60, deadline=None)
@given(
    n_in=st.integers(1, 36),
    rows=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
    key=st.binary(min_size=40, max_size=52),
)
def test_toeplitz_against_bitwise_definition(n_in, rows, seed, key):
    data = np.random.default_rng(seed).integers(0, 256, (rows, n_in), dtype=np.uint8)
    assert toeplitz(data, key).tolist() == [toeplitz_bytes(r.tobytes(), key) for r in data]


@settings(max_examples=40, deadline=None)
@given(
    src=st.integers(0, M32),
    dst=st.integers(0, M32),
    sp=st.integers(0, 0xFFFF),
    dp=st.integers(0, 0xFFFF),
)
def test_toeplitz_symmetric_key(src, dst, sp, dp):
    fwd = ipv4_5tuple(src, dst, sp, dp, 6)[:, :12]
    rev = ipv4_5tuple(dst, src, dp, sp, 6)[:, :12]
    assert toeplitz(fwd, RSS_KEY_SYMMETRIC)[0] == toeplitz(rev, RSS_KEY_SYMMETRIC)[0]


def test_toeplitz_key_too_short():
    with pytest.raises(ConfigError, match="key of at least"):
        toeplitz(np.zeros((1, 37), np.uint8))


def test_ipv4_5tuple_layout():
    k = ipv4_5tuple(0xC6120001, 0xC6120002, 0x1234, 80, 17)
    assert k.tobytes().hex() == "c6120001c61200021234005011"


# --------------------------------------------------------------------------------------------
# flow table


def _keys(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 2**32, n, dtype=np.uint64)
    return ipv4_5tuple(src, np.arange(n, dtype=np.uint64), 1000, 80, 6)


def test_add_lookup_delete_single_and_bulk():
    t = FlowTable(1024, 13, name="flows")
    keys = _keys(600)
    pos = t.add_bulk(keys[:500], np.arange(500) * 10)
    assert sorted(pos.tolist()) == list(range(500))
    assert len(t) == 500
    got = t.lookup_bulk(keys)
    assert np.array_equal(got[:500], pos) and (got[500:] == -1).all()
    p, v = t.get_bulk(keys[498:502])
    assert v.tolist() == [4980, 4990, -1, -1]
    assert t.lookup(keys[3].tobytes()) == pos[3]
    assert keys[3].tobytes() in t and keys[550].tobytes() not in t
    # single ops
    p = t.add(keys[550].tobytes(), 7)
    assert t.values[p] == 7 and t.lookup(keys[550]) == p
    assert t.delete(keys[550]) == p and t.lookup(keys[550]) == -1
    assert t.delete(keys[550]) == -1
    # bulk delete: present, absent
    d = t.delete_bulk(keys[:10])
    assert np.array_equal(d, pos[:10])
    assert (t.lookup_bulk(keys[:10]) == -1).all()
    assert np.array_equal(t.lookup_bulk(keys[10:500]), pos[10:500])  # others untouched
    assert len(t) == 490
    # a freed position is reused
    p = t.add(keys[0], 1)
    assert p in set(pos[:10].tolist())


def test_precomputed_hashes_and_custom_hash_func():
    t = FlowTable(64, 13)
    keys = _keys(40)
    t.add_bulk(keys)
    assert np.array_equal(t.lookup_bulk(keys, t.hash(keys)), t.lookup_bulk(keys))
    with pytest.raises(ConfigError, match="hashes"):
        t.lookup_bulk(keys, np.zeros(3, np.uint32))
    t2 = FlowTable(64, 12, hash_func=lambda k: toeplitz(k))
    t2.add_bulk(keys[:, :12], np.arange(40))
    assert t2.get_bulk(keys[:, :12])[1].tolist() == list(range(40))


def test_bulk_add_with_duplicates_in_vector():
    t = FlowTable(16, 4)
    k = np.array([[1, 1, 1, 1], [2, 2, 2, 2], [1, 1, 1, 1], [3, 3, 3, 3], [1, 1, 1, 1]], np.uint8)
    pos = t.add_bulk(k, [10, 20, 11, 30, 12])
    # like five adds in order: one entry per key, same position for each copy, last value wins
    assert pos[0] == pos[2] == pos[4] and len(set(pos.tolist())) == 3
    assert pos.tolist()[:2] == [0, 1] and pos[3] == 2  # new keys take positions in order
    assert len(t) == 3
    assert t.get_bulk(k[:4])[1].tolist() == [12, 20, 12, 30]
    # values=None: new keys get 0, existing keys keep their value
    pos2 = t.add_bulk(np.array([[1, 1, 1, 1], [4, 4, 4, 4]], np.uint8))
    assert pos2[0] == pos[0] and t.values[pos[0]] == 12 and t.values[pos2[1]] == 0
    # delete with duplicates: the first copy deletes, later copies find nothing
    d = t.delete_bulk(np.array([[2, 2, 2, 2], [2, 2, 2, 2], [9, 9, 9, 9]], np.uint8))
    assert d.tolist() == [pos[1], -1, -1]
    assert len(t) == 3


def test_full_table_is_a_clear_error_and_changes_nothing():
    t = FlowTable(8, 13)
    keys = _keys(12)
    t.add_bulk(keys[:6], 1)
    before = (t.items()[0].copy(), t.values.copy(), len(t))
    with pytest.raises(TableFullError, match="full") as ei:
        t.add_bulk(keys[4:12], 5)  # 2 updates + 6 new keys, only 2 free
    assert isinstance(ei.value, CndpError) and ei.value.fix
    assert np.array_equal(t.items()[0], before[0]) and np.array_equal(t.values, before[1])
    assert len(t) == before[2]
    t.add_bulk(keys[6:8])  # exactly fills it
    assert len(t) == 8 and (t.lookup_bulk(keys[:8]) >= 0).all()


def test_cuckoo_failure_rolls_back():
    # a degenerate hash: every key in one bucket (primary == secondary): 8 keys fit, not 9
    t = FlowTable(100, 5, hash_func=lambda k: np.zeros(len(k), np.uint32))
    keys = np.arange(50, dtype=np.uint8).reshape(10, 5)
    t.add_bulk(keys[:5], 3)
    with pytest.raises(TableFullError, match="cuckoo"):
        t.add_bulk(keys[3:10], 9)  # 2 updates, 5 new, only 3 slots left
    assert len(t) == 5
    assert t.get_bulk(keys)[1].tolist() == [3] * 5 + [-1] * 5
    t.add_bulk(keys[5:8])
    assert len(t) == 8 and (t.lookup_bulk(keys[:8]) >= 0).all()


def test_cuckoo_displacement_keeps_every_key_findable():
    # hashes crowd the primaries into 16 of 64 buckets; secondaries spread by the signature
    rng = np.random.default_rng(3)

    def crowded(k: np.ndarray) -> np.ndarray:
        h = hash_crc(k, 0)
        return (h & np.uint32(0xFFFF0000)) | (h & np.uint32(15))

    t = FlowTable(400, 13, hash_func=crowded)
    assert t.num_buckets == 64
    keys = _keys(360, seed=5)
    for chunk in np.array_split(rng.permutation(360), 9):
        t.add_bulk(keys[chunk], chunk)
    assert len(t) == 360
    assert t.cuckoo_moves > 0  # some keys found both buckets full and moved others
    pos, vals = t.get_bulk(keys)
    assert (pos >= 0).all() and vals.tolist() == list(range(360))
    assert (t._pos >= 0).sum() == 360
    d = t.delete_bulk(keys[::2])
    assert (d >= 0).all() and (t.lookup_bulk(keys[::2]) == -1).all()
    assert t.get_bulk(keys[1::2])[1].tolist() == list(range(1, 360, 2))


def test_items_iterate_reset_and_fill_to_capacity():
    t = FlowTable(65536, 13)
    keys = np.unique(_keys(65536, seed=11), axis=0)
    assert len(keys) == 65536
    t.add_bulk(keys, np.arange(65536))
    assert len(t) == 65536 and (t.lookup_bulk(keys) >= 0).all()
    p, k, v = t.items()
    assert len(p) == 65536 and np.array_equal(t.lookup_bulk(k), p)
    assert np.array_equal(v, t.get_bulk(k)[1])
    assert np.array_equal(t.keys_at(p[:3]), k[:3])
    small = FlowTable(4, 2)
    small.add_bulk(np.array([[1, 2], [3, 4]], np.uint8), [5, 6])
    assert sorted(small) == [(b"\x01\x02", 5), (b"\x03\x04", 6)]
    t.reset()
    assert len(t) == 0 and (t.lookup_bulk(keys[:100]) == -1).all()
    assert t.add(keys[0]) == 0


def test_flow_table_bad_arguments():
    with pytest.raises(ConfigError, match="capacity"):
        FlowTable(0, 13)
    t = FlowTable(4, 13)
    with pytest.raises(ConfigError, match="13-byte keys"):
        t.lookup_bulk(np.zeros((2, 12), np.uint8))


class FlowTableVsDict(RuleBasedStateMachine):
    """Random add/lookup/delete sequences against a dict, applied one key at a time."""

    CAP = 24
    UNIVERSE = [bytes([i, i * 7 % 256, 3, i // 3, 9]) for i in range(40)]

    def __init__(self):
        super().__init__()
        self.t = FlowTable(self.CAP, 5)
        self.model: dict[bytes, int] = {}
        self.pos: dict[bytes, int] = {}

    def _arr(self, idx: list[int]) -> np.ndarray:
        return np.frombuffer(b"".join(self.UNIVERSE[i] for i in idx), np.uint8).reshape(-1, 5)

    @rule(
        idx=st.lists(st.integers(0, 39), max_size=12),
        vals=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=12, max_size=12),
    )
    def add(self, idx, vals):
        keys = [self.UNIVERSE[i] for i in idx]
        vals = vals[: len(idx)]
        new = {k for k in keys if k not in self.model}
        if len(self.model) + len(new) > self.CAP:
            with pytest.raises(TableFullError):
                self.t.add_bulk(self._arr(idx), vals)
            return
        pos = self.t.add_bulk(self._arr(idx), vals).tolist()
        for k, v, p in zip(keys, vals, pos, strict=True):
            if k in self.pos:
                assert p == self.pos[k]  # stable for the entry's lifetime
            else:
                assert p not in self.pos.values() and 0 <= p < self.CAP
                self.pos[k] = p
            self.model[k] = v

    @rule(idx=st.lists(st.integers(0, 39), max_size=12))
    def delete(self, idx):
        got = self.t.delete_bulk(self._arr(idx)).tolist()
        want = []
        for i in idx:
            k = self.UNIVERSE[i]
            want.append(self.pos.pop(k) if k in self.model else -1)
            self.model.pop(k, None)
        assert got == want

    @rule(idx=st.lists(st.integers(0, 39), max_size=16))
    def lookup(self, idx):
        pos, vals = self.t.get_bulk(self._arr(idx), default=-7)
        keys = [self.UNIVERSE[i] for i in idx]
        assert pos.tolist() == [self.pos.get(k, -1) for k in keys]
        assert vals.tolist() == [self.model.get(k, -7) for k in keys]

    @invariant()
    def same_contents(self):
        assert len(self.t) == len(self.model)
        assert dict(iter(self.t)) == self.model


TestFlowTableVsDict = FlowTableVsDict.TestCase
TestFlowTableVsDict.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
