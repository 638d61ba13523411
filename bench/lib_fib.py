"""Software benchmark of cndp.lib.fib / fib6: LPM lookups per second on vectors of 256 addresses.

Rows (``pps`` = lookups/s; each run is one pass over 2**20 addresses after a warm-up pass, the
row is the median of ``runs``):
  fib4-lookup-1000k: ``Fib.lookup_bulk`` (DIR-24-8, 4-byte entries) over ~1M IPv4 routes whose
                     prefix lengths follow the histogram of DPDK's fib_perf_autotest table
                     (capped at half of the prefixes of one length, the excess moved to /24:
                     57% /24, most of the rest /16-/23, ~4% longer than /24); 2**20 random
                     addresses (~7% miss), 4096 vectors of 256.
  fib6-lookup-100k:  ``Fib6.lookup_bulk`` (stride trie, 4-byte entries) over 100k IPv6 routes
                     (half /48, the rest /24-/47, in 4096 random /24 blocks of 2000::/3);
                     2**20 addresses each inside a random route (random host bits), as
                     dpdk-test-fib picks its own lookup addresses.

Baseline: DPDK's rte_fib / rte_fib6 in C on the same routes and the same addresses, in the same
run: ``dpdk-test-fib -f routes -t addresses -e 4`` (Debian package dpdk-dev), which reports
TSC cycles per lookup over ``rte_fib_lookup_bulk`` calls of 64 addresses, one pass; cycles are
turned into ns with the TSC rate the kernel measured at boot. ``ratio`` = C ns / our ns (0.5:
half DPDK's lookup rate). Without dpdk-test-fib the rows carry ``baseline_pps: None``.
``python bench/lib_fib.py [runs] [--no-c]`` prints the rows.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from cndp.lib.fib import Fib
from cndp.lib.fib6 import Fib6

BURST = 256
LOOKUPS = 1 << 20
# routes per prefix length /1../32 in DPDK's fib_perf_autotest table (1,076,806 routes)
DPDK_PERF_DEPTHS = [0, 0, 1, 0, 3, 2, 4, 201, 37, 55, 97, 381, 775, 2104, 3712, 69319, 12983,
                    23667, 69068, 62354, 48531, 72355, 85427, 583900, 2654, 5650, 6467, 7127,
                    12936, 5999, 13, 984]  # fmt: skip
V6_DEPTHS = {24: 1, 28: 1, 29: 4, 32: 15, 36: 5, 40: 8, 44: 10, 46: 3, 47: 3, 48: 50}  # percent


def routes4(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """About n distinct IPv4 routes (host-order prefixes, depths, next hops < 2**20)."""
    w = np.array(DPDK_PERF_DEPTHS, float)
    counts = np.round(w / w.sum() * n).astype(np.int64)
    # at most half of the prefixes of a length (the histogram has more /8s and /16s than a
    # random table can hold without covering everything); the rest become /24s
    cap = np.minimum(counts, 1 << np.arange(1, 33) >> 1)
    cap[23] += counts.sum() - cap.sum()
    ps, ds = [], []
    for d in range(1, 33):
        k = int(cap[d - 1])
        if not k:
            continue
        if d <= 24:
            v = rng.choice(1 << d, k, replace=False).astype(np.uint64)
        else:
            v = np.unique(rng.integers(0, 1 << d, k, dtype=np.uint64))
        ps.append((v << np.uint64(32 - d)).astype(np.uint32))
        ds.append(np.full(v.size, d))
    p, d = np.concatenate(ps), np.concatenate(ds)
    return p, d, rng.integers(1, 1 << 20, p.size)


def routes6(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n IPv6 routes as (N, 16) uint8 prefixes, depths, next hops (duplicates possible)."""
    tops = rng.choice(1 << 21, 4096, replace=False) | (1 << 21)  # /24 blocks in 2000::/3
    deps = np.array(list(V6_DEPTHS))
    w = np.array(list(V6_DEPTHS.values()), float)
    d = rng.choice(deps, n, p=w / w.sum())
    hi = (rng.choice(tops, n).astype(np.uint64) << np.uint64(40)) | rng.integers(
        0, 1 << 40, n, dtype=np.uint64
    )
    hi &= ~((np.uint64(1) << (64 - d).astype(np.uint64)) - np.uint64(1))
    rows = np.zeros((n, 16), np.uint8)
    rows[:, :8] = hi.astype(">u8").view(np.uint8).reshape(n, 8)
    return rows, d, rng.integers(1, 1 << 20, n)


def _time(fn, vecs: list[np.ndarray]) -> float:
    """ns per address of fn over all vectors: one pass, as dpdk-test-fib makes one."""
    clock = time.perf_counter_ns
    t0 = clock()
    for v in vecs:
        fn(v)
    return (clock() - t0) / (len(vecs) * BURST)


def tsc_mhz() -> float | None:
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
        m = re.findall(r"tsc: Refined TSC clocksource calibration: ([\d.]+) MHz", out)
        m = m or re.findall(r"tsc: Detected ([\d.]+) MHz processor", out)
        if m:
            return float(m[-1])
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            m = re.findall(r"cpu MHz\s*:\s*([\d.]+)", f.read())
        return float(m[0]) if m else None
    except OSError:
        return None


def _fmt4(a: np.ndarray) -> list[str]:
    b = a.astype(">u4").view(np.uint8).reshape(-1, 4).tolist()
    return [f"{x[0]}.{x[1]}.{x[2]}.{x[3]}" for x in b]


def _fmt6(rows: np.ndarray) -> list[str]:
    g = np.ascontiguousarray(rows).view(">u2").reshape(-1, 8).tolist()
    return [":".join(f"{x:x}" for x in r) for r in g]


def dpdk_fib(
    routes: list[str], addrs: list[str], *, v6: bool, tbl8: int
) -> tuple[float | None, str]:
    """(ns per lookup of DPDK's rte_fib on these routes/addresses, note) via dpdk-test-fib."""
    exe = shutil.which("dpdk-test-fib")
    if exe is None:
        return None, "dpdk-test-fib missing (Debian package dpdk-dev)"
    mhz = tsc_mhz()
    if not mhz:
        return None, "TSC rate unknown"
    prefix = f"pycndp-fib-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        rf, qf = os.path.join(tmp, "routes"), os.path.join(tmp, "addrs")
        with open(rf, "w") as f:
            f.write("\n".join(routes) + "\n")
        with open(qf, "w") as f:
            f.write("\n".join(addrs) + "\n")
        cmd = [exe, "--no-huge", "-m", "4096", "--no-pci", "--no-telemetry", "--no-shconf"]
        cmd += ["-l", "0", f"--file-prefix={prefix}", "--", "-f", rf, "-t", qf, "-e", "4"]
        cmd += ["-g", str(tbl8)] + (["-6"] if v6 else [])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            return None, f"dpdk-test-fib failed: {e}"
        finally:
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    m = re.search(r"AVG FIB lookup ([\d.]+)", p.stdout)
    if not m:
        tail = (p.stdout + p.stderr).strip().splitlines()[-1:] or ["no output"]
        return None, f"dpdk-test-fib: {tail[0]}"
    return float(m.group(1)) * 1000.0 / mhz, f"TSC {mhz} MHz"


def _row(name: str, ours: list[float], c: list[float], notes: str) -> dict:
    ns = statistics.median(ours)
    base = statistics.median(c) if c else None
    return {
        "name": name,
        "layout": "software",
        "ns_per_pkt": round(ns, 2),
        "pps": round(1e9 / ns),
        "baseline": "DPDK rte_fib C (dpdk-test-fib, burst 64)",
        "baseline_pps": None if base is None else round(1e9 / base),
        "ratio": None if base is None else round(base / ns, 3),
        # run i of ours against run i of C, taken seconds apart: steadier on a busy machine
        "paired_ratio": (
            round(statistics.median(x / y for x, y in zip(c, ours, strict=False)), 3) if c else None
        ),
        # least disturbed run of each (on a shared VM other jobs only ever add time)
        "best_ratio": round(min(c) / min(ours), 3) if c else None,
        "runs": len(ours),
        "burst": BURST,
        "notes": notes,
    }


def _measure(
    lookup, vecs: list, c_in: tuple[list[str], list[str], bool, int] | None, runs: int
) -> tuple[list[float], list[float], str]:
    """Interleaved runs: ours (one pass) then C, ``runs`` times. Returns ns lists and a note."""
    _time(lookup, vecs)  # warm-up: C looks up right after writing its table
    ours: list[float] = []
    c: list[float] = []
    note = ""
    for _ in range(runs):
        ours.append(_time(lookup, vecs))
        if c_in is not None and not note.startswith("C baseline"):
            lines, addrs, v6, tbl8 = c_in
            ns, note = dpdk_fib(lines, addrs, v6=v6, tbl8=tbl8)
            if ns is None:
                note, c = f"C baseline: {note}", []
            else:
                c.append(ns)
    txt = f"ns/lookup per run {'/'.join(f'{v:.1f}' for v in ours)}"
    if c:
        txt += f"; C {'/'.join(f'{v:.1f}' for v in c)} ({note})"
    elif note:
        txt += f"; {note}"
    return ours, c, txt


def bench4(runs: int, n_routes: int, c_baseline: bool) -> dict:
    rng = np.random.default_rng(1)
    p, d, nh = routes4(n_routes, rng)
    fib = Fib("bench4", nh_sz=4, num_tbl8=1 << 17)
    t0 = time.perf_counter()
    fib.add_bulk(p, d, nh)
    build = time.perf_counter() - t0
    q = rng.integers(0, 1 << 32, LOOKUPS, dtype=np.uint64).astype(np.uint32)
    vecs = list(q.reshape(-1, BURST))
    # correctness on a sample before timing: the table agrees with its RIB
    assert (fib.lookup_bulk(q[:4096]) == fib.rib.lookup_bulk(q[:4096])[0]).all()
    miss = float((fib.lookup_bulk(q[:65536]) == 0).mean())
    c_in = None
    if c_baseline:
        lines = [f"{s}/{x} {y}" for s, x, y in zip(_fmt4(p), d.tolist(), nh.tolist(), strict=True)]
        c_in = (lines, _fmt4(q), False, 1 << 17)
    ours, c, txt = _measure(fib.lookup_bulk, vecs, c_in, runs)
    adds = (np.unique(rng.integers(0, 1 << 24, 2000)) << 8).tolist()  # distinct /24s
    t0 = time.perf_counter()
    for a in adds:
        fib.add(a, 24, 7)
    add_us = (time.perf_counter() - t0) / len(adds) * 1e6
    t0 = time.perf_counter()
    for a in adds:
        fib.delete(a, 24)
    del_us = (time.perf_counter() - t0) / len(adds) * 1e6
    notes = (
        f"{len(fib)} routes, add_bulk {build:.1f} s, {fib.tbl8_used} tbl8 groups, "
        f"{miss:.0%} misses; single /24 add {add_us:.0f} us, delete {del_us:.0f} us; {txt}"
    )
    return _row(f"fib4-lookup-{n_routes // 1000}k", ours, c, notes)


def bench6(runs: int, n_routes: int, c_baseline: bool) -> dict:
    rng = np.random.default_rng(2)
    p, d, nh = routes6(n_routes, rng)
    fib = Fib6("bench6", nh_sz=4, num_tbl8=1 << 18)
    t0 = time.perf_counter()
    fib.add_bulk(p, d, nh)
    build = time.perf_counter() - t0
    pick = rng.integers(0, len(p), LOOKUPS)
    host = rng.integers(0, 256, (LOOKUPS, 16), dtype=np.uint8)
    q = p[pick] | (host & ~fib.rib._maskrows[d[pick]])  # random host bits under the route
    vecs = list(q.reshape(-1, BURST, 16))
    assert (fib.lookup_bulk(q[:4096]) == fib.rib.lookup_bulk(q[:4096])[0]).all()
    c_in = None
    if c_baseline:
        lines = [f"{s}/{x} {y}" for s, x, y in zip(_fmt6(p), d.tolist(), nh.tolist(), strict=True)]
        c_in = (lines, _fmt6(q), True, 1 << 18)
    ours, c, txt = _measure(fib.lookup_bulk, vecs, c_in, runs)
    notes = f"{len(fib)} routes, add_bulk {build:.1f} s, {fib.tbl8_used} tbl8 groups; {txt}"
    return _row(f"fib6-lookup-{n_routes // 1000}k", ours, c, notes)


def run(
    runs: int = 3, routes_v4: int = 1_000_000, routes_v6: int = 100_000, c_baseline: bool = True
) -> list[dict]:
    return [bench4(runs, routes_v4, c_baseline), bench6(runs, routes_v6, c_baseline)]


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rows = run(int(args[0]) if args else 3, c_baseline="--no-c" not in sys.argv)
    for r in rows:
        c = "-" if r["baseline_pps"] is None else f"{r['baseline_pps'] / 1e6:.1f}M"
        print(
            f"{r['name']:18s} {r['ns_per_pkt']:7.2f} ns/lookup  {r['pps'] / 1e6:6.2f} M lookups/s"
            f"  C {c:>7s}  ratio {r['ratio']}  paired {r['paired_ratio']}  best {r['best_ratio']}"
            f"\n    {r['notes']}"
        )
