"""Software benchmark of cndp.lib.hash: flow hashing and flow-table lookup per burst of 256.

Rows (ns per packet, median of ``runs``):
  hash-crc32c-5tuple:   crc32c() of 256 IPv4 5-tuple keys (13 bytes)
  hash-toeplitz-5tuple: toeplitz() (Microsoft key) of the same keys' 12-byte RSS input
  flow-lookup-bulk:     FlowTable.lookup_bulk() of 256 keys, table of 64k entries half full
                        (every key present)
  meter-trtcm-1flow:    cndp.lib.meter RFC 2698 colour-blind check of 256 packets (64/576/1500
                        bytes), one meter, one time per burst
  meter-trtcm-64flows:  the same over 64 meters (a random meter id per packet)

Each row's baseline is the same work done the per-packet Python way, timed in the same run:
a loop over the burst calling the ``crc32c`` C extension per key (``row.tobytes()`` included;
the pure-Python bytewise CRC when the package is missing), a per-key Toeplitz from Python-int
byte tables, a ``dict`` lookup per key, and the meter module's own per-packet loop (Python ints,
the path it takes for vectors of distinct times). ``ratio`` = baseline ns / our ns (> 1: the vector
version is faster).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from cndp.lib.hash import (
    RSS_KEY_MS,
    FlowTable,
    _toeplitz_tables,
    crc32c,
    crc32c_bytes,
    ipv4_5tuple,
    toeplitz,
)
from cndp.lib.meter import Meters, TrTcmProfile

BURST = 256
TABLE = 65536


def _keys(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ipv4_5tuple(
        rng.integers(0, 2**32, n, dtype=np.uint64),
        rng.integers(0, 2**32, n, dtype=np.uint64),
        rng.integers(0, 65536, n),
        rng.integers(0, 65536, n),
        rng.choice([6, 17], n),
    )


def _time(fn, bursts: list[np.ndarray]) -> float:
    """ns per packet of fn over every burst (after one warm-up call)."""
    fn(bursts[0])
    clock = time.perf_counter_ns
    t0 = clock()
    for b in bursts:
        fn(b)
    return (clock() - t0) / (len(bursts) * BURST)


def _crc_baseline():
    try:
        import crc32c as pkg  # the C extension from PyPI, if installed
    except ImportError:
        return "python loop: bytewise crc32c", lambda b: [crc32c_bytes(r.tobytes()) for r in b]
    f = pkg.crc32c
    return "python loop: crc32c pkg", lambda b: [f(r.tobytes()) for r in b]


def _toeplitz_baseline():
    tabs = _toeplitz_tables(RSS_KEY_MS, 12).reshape(12, 256).tolist()

    def one(data: bytes) -> int:
        h = 0
        for i, byte in enumerate(data):
            h ^= tabs[i][byte]
        return h

    return "python loop: byte tables", lambda b: [one(r[:12].tobytes()) for r in b]


def _flow_setup(seed: int):
    keys = _keys(TABLE // 2, seed)
    keys = np.unique(keys, axis=0)
    t = FlowTable(TABLE, 13)
    pos = t.add_bulk(keys, np.arange(len(keys)))
    d = {k.tobytes(): int(p) for k, p in zip(keys, pos, strict=True)}
    return t, d, keys


def _meter_cases(bursts: int, n_meters: int):
    """(ours, per-packet loop) over bursts of (lengths, ids); the clock advances 20 us a call."""
    rng = np.random.default_rng(n_meters)
    prof = TrTcmProfile(cir=12_500_000, pir=25_000_000, cbs=30_000, pbs=60_000)  # 100/200 Mbps
    data = [
        (rng.choice([64, 576, 1500], BURST), rng.integers(0, n_meters, BURST))
        for _ in range(bursts)
    ]
    lens0, ids0 = data[0]
    a, b = Meters(prof, n_meters), Meters(prof, n_meters)
    assert (
        a.color_blind_check(0, lens0, ids0).tolist()
        == b._check_scalar(
            np.zeros(BURST, np.int64), lens0, np.zeros(BURST, np.uint8), ids0
        ).tolist()
    )
    clock = {"ours": 0, "loop": 0}
    zeros = np.zeros(BURST, np.uint8)

    def ours(_b):
        clock["ours"] += 20_000
        lens, ids = data[clock["ours"] // 20_000 % bursts]
        a.color_blind_check(clock["ours"], lens, ids)

    def loop(_b):
        clock["loop"] += 20_000
        lens, ids = data[clock["loop"] // 20_000 % bursts]
        b._check_scalar(np.full(BURST, clock["loop"], np.int64), lens, zeros, ids)

    return ours, loop


def run(runs: int = 3, bursts: int = 400) -> list[dict]:
    rng = np.random.default_rng(42)
    flows = _keys(BURST * bursts, 1)
    hash_bursts = [flows[i * BURST : (i + 1) * BURST] for i in range(bursts)]
    table, d, present = _flow_setup(2)
    idx = rng.integers(0, len(present), BURST * bursts)
    look_bursts = [present[idx[i * BURST : (i + 1) * BURST]] for i in range(bursts)]
    crc_name, crc_base = _crc_baseline()
    toep_name, toep_base = _toeplitz_baseline()
    get = d.get
    cases = [
        ("hash-crc32c-5tuple", crc32c, crc_name, crc_base, hash_bursts),
        ("hash-toeplitz-5tuple", lambda b: toeplitz(b[:, :12]), toep_name, toep_base, hash_bursts),
        (
            "flow-lookup-bulk",
            table.lookup_bulk,
            "python loop: dict.get",
            lambda b: [get(r.tobytes(), -1) for r in b],
            look_bursts,
        ),
    ]
    for n_meters in (1, 64):
        ours, loop = _meter_cases(bursts, n_meters)
        name = "meter-trtcm-1flow" if n_meters == 1 else f"meter-trtcm-{n_meters}flows"
        cases.append((name, ours, "python loop: per-packet meter", loop, hash_bursts))
    # the vector and the per-packet answers agree (a benchmark of wrong code is worthless)
    b0 = hash_bursts[0]
    assert crc32c(b0).tolist() == crc_base(b0)
    assert toeplitz(b0[:, :12]).tolist() == toep_base(b0)
    assert table.lookup_bulk(look_bursts[0]).tolist() == [
        get(r.tobytes(), -1) for r in look_bursts[0]
    ]
    rows = []
    for name, fn, base_name, base_fn, data in cases:
        ours, base = [], []
        for _ in range(runs):  # interleaved so slow drifts of the machine hit both
            ours.append(_time(fn, data))
            base.append(_time(base_fn, data[: max(1, len(data) // 4)]))
        ns, bns = statistics.median(ours), statistics.median(base)
        rows.append(
            {
                "name": name,
                "layout": "software",
                "ns_per_pkt": round(ns, 1),
                "pps": round(1e9 / ns),
                "baseline": base_name,
                "baseline_pps": round(1e9 / bns),
                "ratio": round(bns / ns, 2),
                "runs": runs,
                "burst": BURST,
            }
        )
    return rows


if __name__ == "__main__":
    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(
            f"{r['name']:22s} {r['ns_per_pkt']:7.1f} ns/pkt {r['pps'] / 1e6:7.2f} Mpps  "
            f"vs {r['baseline']:30s} {1e9 / r['baseline_pps']:7.1f} ns/pkt  "
            f"ratio {r['ratio']:.2f}"
        )
