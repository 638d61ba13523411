"""Traffic meters over packet vectors: srTCM (RFC 2697), trTCM (RFC 2698), trTCM (RFC 4115).

The API follows DPDK/CNDP ``rte_meter``/``cne_meter``: a profile (rates in bytes per second,
bursts in bytes) is validated once, meters are configured from it (buckets start full), and a
check colours packets green/yellow/red, colour-blind or colour-aware. Here a check takes a
whole vector: ``lengths`` (N,), optional pre-colours (N,), optional meter ids (N,) so one call
meters many flows, and either one time for the vector (the usual case: a burst is stamped
once) or one time per packet.

Exactness. Tokens are kept as integers in units of 1/hz byte, so with the time in ticks of
1/hz s (default hz = 1e9: ``time.monotonic_ns()``) a bucket gains exactly ``rate`` units per
tick and no fraction of a byte is ever lost. Every vectorised check returns exactly what the
same packets fed one at a time, in vector order, to a sequential meter would get (the tests
compare with such a reference, written from the RFC text).

How a token bucket is vectorised. Within a meter, packets of one time instant see a bucket
level R that only goes down. Packet i passes if R minus what the earlier *passing* packets
took is still >= B_i. Passing is not a prefix property (a big packet can fail and a later small
one pass), so the scan runs in rounds, all meters at once (segments of a stable sort by meter
id): drop candidates with B > R (they can never pass), take the cumulative sum of the rest, the
prefix whose sum fits passes, the first packet past it fails, repeat from there with the new
R. The packet that fails a round is larger than the remaining R, so each round's failing
packet is strictly smaller than the previous one's: the number of rounds is at most the number
of distinct packet lengths (plus one), independent of N. Each RFC algorithm is two such scans:

* srTCM / RFC 4115: C scan over the (pre-)green packets, E scan over the ones that failed C
  plus the pre-yellow ones (colour-blind = everything pre-green).
* RFC 2698: P scan over the packets not pre-red (failing it is red), C scan over the P-passers
  that are pre-green (passing both is green, passing P only is yellow).

A vector of per-packet times is processed one distinct time at a time (the above per chunk);
when the chunks are short (fewer than 8 packets on average) a plain per-packet loop is used
instead, which is faster there. Both give the sequential answer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

GREEN, YELLOW, RED = 0, 1, 2
COLOR_NAMES = ("green", "yellow", "red")
NS_PER_S = 1_000_000_000

_LIMIT = 1 << 62  # bucket sizes in units (bytes * hz) must stay below this
_SCALAR_CHUNK = 8  # mean packets per distinct time below which the per-packet loop is used


def _nonneg_int(name: str, v) -> int:
    if isinstance(v, bool) or int(v) != v or v < 0:
        raise ConfigError(f"meter {name}={v!r} must be a non-negative integer", fix=f"{name} >= 0")
    return int(v)


@dataclass(frozen=True)
class SrTcmProfile:
    """RFC 2697 single-rate three-colour marker: CIR (bytes/s), CBS and EBS (bytes)."""

    cir: int
    cbs: int
    ebs: int

    def __post_init__(self):
        for f in ("cir", "cbs", "ebs"):
            _nonneg_int(f, getattr(self, f))
        if self.cir == 0 or (self.cbs == 0 and self.ebs == 0):
            raise ConfigError(
                f"srTCM profile {self} is invalid: needs cir > 0 and cbs or ebs > 0",
                fix="set cir (bytes/s) and at least one of cbs/ebs (bytes)",
            )


@dataclass(frozen=True)
class TrTcmProfile:
    """RFC 2698 two-rate three-colour marker: CIR <= PIR (bytes/s), CBS and PBS (bytes)."""

    cir: int
    pir: int
    cbs: int
    pbs: int

    def __post_init__(self):
        for f in ("cir", "pir", "cbs", "pbs"):
            _nonneg_int(f, getattr(self, f))
        if self.cir == 0 or self.pir == 0 or self.pir < self.cir or self.cbs == 0 or self.pbs == 0:
            raise ConfigError(
                f"trTCM profile {self} is invalid: needs 0 < cir <= pir and cbs, pbs > 0",
                fix="RFC 2698 requires PIR >= CIR and non-zero bursts",
            )


@dataclass(frozen=True)
class TrTcm4115Profile:
    """RFC 4115 two-rate three-colour marker: CIR, EIR (bytes/s), CBS, EBS (bytes)."""

    cir: int
    eir: int
    cbs: int
    ebs: int

    def __post_init__(self):
        for f in ("cir", "eir", "cbs", "ebs"):
            _nonneg_int(f, getattr(self, f))
        if (self.cir and not self.cbs) or (self.eir and not self.ebs):
            raise ConfigError(
                f"RFC 4115 profile {self} is invalid: a non-zero rate needs a non-zero burst",
                fix="give cbs > 0 with cir, and ebs > 0 with eir",
            )


Profile = SrTcmProfile | TrTcmProfile | TrTcm4115Profile
_KINDS = {SrTcmProfile: "srtcm", TrTcmProfile: "trtcm", TrTcm4115Profile: "rfc4115"}
# what the two buckets (b1, b2) are for each algorithm
BUCKET_NAMES = {"srtcm": ("tc", "te"), "trtcm": ("tp", "tc"), "rfc4115": ("tc", "te")}


def _greedy(level: np.ndarray, mids: np.ndarray, lens: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Sequential token-bucket pass/fail for the candidate packets ``cand`` (ascending indices
    into mids/lens; ``mids`` grouped by meter). Passing packets take their length from
    ``level[meter]`` (updated in place). Returns a pass mask over all packets."""
    passed = np.zeros(len(lens), bool)
    c = cand
    while len(c):
        m = mids[c]
        b = lens[c]
        r = level[m]
        keep = b <= r  # a packet larger than what is left can never pass at this instant
        if not keep.all():
            c, m, b, r = c[keep], m[keep], b[keep], r[keep]
            if not len(c):
                break
        cs = np.cumsum(b)
        # per-meter (segmented) running sum: subtract the sum before each segment's start,
        # carried forward with a max-accumulate (those sums never decrease)
        start = np.empty(len(c), bool)
        start[0] = True
        np.not_equal(m[1:], m[:-1], out=start[1:])
        base = np.where(start, cs - b, 0)
        np.maximum.accumulate(base, out=base)
        ok = cs - base <= r  # a prefix of each meter's segment
        passed[c[ok]] = True
        np.subtract.at(level, m[ok], b[ok])
        # the first failure of each segment is now larger than its level: the next round's
        # filter drops it, so every round's first failure is smaller than the last one's
        c = c[~ok]
    return passed


def _greedy1(level: np.ndarray, i: int, lens: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """``_greedy`` for one meter (``level[i]``): a scalar level and a plain cumulative sum."""
    passed = np.zeros(len(lens), bool)
    r = int(level[i])
    c = cand
    while len(c):
        b = lens[c]
        keep = b <= r
        if not keep.all():
            c, b = c[keep], b[keep]
            if not len(c):
                break
        cs = np.cumsum(b)
        k = int(np.searchsorted(cs, r, side="right"))  # how many fit, in order
        if k:
            passed[c[:k]] = True
            r -= int(cs[k - 1])
        c = c[k + 1 :]  # c[k] no longer fits
    level[i] = r
    return passed


class Meters:
    """``n`` meters of one algorithm (the profile's type), state in numpy arrays.

    ``b1``/``b2`` are the two buckets in units of 1/hz byte (srTCM and RFC 4115: C and E;
    RFC 2698: P and C); ``last`` the time each meter was last updated, in ticks."""

    def __init__(self, profile: Profile, n: int = 1, *, now: int = 0, hz: int = NS_PER_S):
        if type(profile) not in _KINDS:
            raise ConfigError(
                f"{profile!r} is not a meter profile",
                fix="use SrTcmProfile, TrTcmProfile or TrTcm4115Profile",
            )
        if int(hz) != hz or hz <= 0:
            raise ConfigError(f"hz={hz!r} must be a positive integer", fix="ticks per second")
        if n <= 0:
            raise ConfigError(f"meter count {n} must be > 0", fix="n >= 1")
        self.kind = _KINDS[type(profile)]
        self.hz = int(hz)
        self.n = int(n)
        z = np.zeros(n, np.int64)
        # (n, 2) arrays so a refill gathers both buckets of a meter in one call; b1/b2,
        # cap1/cap2, rate1/rate2 are column views of them
        self.tok = np.zeros((n, 2), np.int64)
        self.cap = np.zeros((n, 2), np.int64)
        self.rate = np.zeros((n, 2), np.int64)
        self._rate_nz = np.ones((n, 2), np.int64)  # max(rate, 1): a divisor
        self.b1, self.b2 = self.tok[:, 0], self.tok[:, 1]
        self.cap1, self.cap2 = self.cap[:, 0], self.cap[:, 1]
        self.rate1, self.rate2 = self.rate[:, 0], self.rate[:, 1]
        self.last = z.copy()
        self.profiles: list[Profile] = [profile] * self.n
        self.configure(np.arange(n), profile, now)

    # -- configuration ----------------------------------------------------------------------

    def _units(self, p: Profile) -> tuple[int, int, int, int]:
        hz = self.hz
        if isinstance(p, SrTcmProfile):
            vals = (p.cbs * hz, p.ebs * hz, p.cir, 0)  # E fills from C's overflow
        elif isinstance(p, TrTcmProfile):
            vals = (p.pbs * hz, p.cbs * hz, p.pir, p.cir)
        else:
            vals = (p.cbs * hz, p.ebs * hz, p.cir, p.eir)
        if vals[0] + vals[1] >= _LIMIT or vals[2] + vals[3] >= _LIMIT // (1 << 20):
            raise ConfigError(
                f"meter profile {p} is too large for hz={hz} (bursts x hz must stay < 2^62)",
                fix="use smaller bursts or a coarser tick (e.g. hz=1_000_000 with microseconds)",
            )
        return vals

    def configure(self, ids, profile: Profile, now: int = 0) -> None:
        """Give meters ``ids`` a profile and full buckets at time ``now`` (``*_config``)."""
        if _KINDS.get(type(profile)) != self.kind:
            raise ConfigError(
                f"a {self.kind} meter set cannot take {type(profile).__name__}",
                fix="use one Meters object per algorithm",
            )
        ids = self._ids(ids)
        c1, c2, r1, r2 = self._units(profile)
        self.cap1[ids], self.cap2[ids], self.rate1[ids], self.rate2[ids] = c1, c2, r1, r2
        self.b1[ids], self.b2[ids] = c1, c2
        self._rate_nz[ids] = np.maximum(self.rate[ids], 1)
        self.last[ids] = int(now)
        for i in np.unique(ids).tolist():
            self.profiles[i] = profile

    def _ids(self, ids) -> np.ndarray:
        a = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(a) and (a.min() < 0 or a.max() >= self.n):
            bad = a[(a < 0) | (a >= self.n)][0]
            raise ConfigError(
                f"meter id {int(bad)} out of range 0..{self.n - 1}",
                fix="ids index the meters of this Meters object",
            )
        return a

    def tokens(self, i: int = 0) -> dict[str, float]:
        """Bucket levels of meter ``i`` in bytes (for display; state is exact in ``b1/b2``)."""
        n1, n2 = BUCKET_NAMES[self.kind]
        return {n1: int(self.b1[i]) / self.hz, n2: int(self.b2[i]) / self.hz}

    # -- refill -----------------------------------------------------------------------------

    def _refill(self, u: np.ndarray, now: int) -> None:
        """Add the tokens earned since each meter's last update (u: unique meter ids)."""
        lu = self.last[u]
        dt = np.maximum(now - lu, 0)
        self.last[u] = lu + dt
        tok, cap = self.tok[u], self.cap[u]
        if self.kind == "srtcm":
            # C fills first; what would overflow C goes to E (RFC 2697 section 3)
            b1, b2, cap1, r1 = tok[:, 0], tok[:, 1], cap[:, 0], self.rate1[u]
            room = (cap1 - b1) + (cap[:, 1] - b2)
            d = np.minimum(dt, room // self._rate_nz[u, 0] + 1)  # no int64 overflow
            c = b1 + r1 * d
            np.minimum(c, cap1, out=b1)
            np.minimum(b2 + np.maximum(c - cap1, 0), cap[:, 1], out=b2)
        else:
            # both buckets at once; d: ticks that can still add tokens (no int64 overflow)
            d = np.minimum(dt[:, None], (cap - tok) // self._rate_nz[u] + 1)
            np.minimum(tok + self.rate[u] * d, cap, out=tok)
        self.tok[u] = tok

    # -- checks -----------------------------------------------------------------------------

    def color_blind_check(self, now, lengths, ids=None) -> np.ndarray:
        """Colours (uint8 GREEN/YELLOW/RED) of packets ``lengths`` (bytes) metered by meters
        ``ids`` (default: meter 0) at time ``now`` (one int, or one per packet)."""
        return self._check(now, lengths, None, ids)

    def color_aware_check(self, now, lengths, colors, ids=None) -> np.ndarray:
        """Like ``color_blind_check`` with the packets' pre-colours ``colors``."""
        return self._check(now, lengths, colors, ids)

    def _check(self, now, lengths, colors, ids) -> np.ndarray:
        lens = np.asarray(lengths, dtype=np.int64).reshape(-1)
        n = len(lens)
        if n and lens.min() < 0:
            raise ConfigError("packet lengths must be >= 0", fix="pass byte counts")
        if colors is None:
            pre = np.zeros(n, np.uint8)
        else:
            pre = np.asarray(colors).reshape(-1)
            if len(pre) != n:
                raise ConfigError(f"{len(pre)} colours for {n} packets", fix="one per packet")
            if n and (pre.min() < 0 or pre.max() > RED):
                raise ConfigError("colours must be 0 (green), 1 (yellow) or 2 (red)", fix="")
            pre = pre.astype(np.uint8)
        if ids is None:
            mid = np.zeros(n, np.int64)
        else:
            mid = self._ids(ids)
            if len(mid) != n:
                raise ConfigError(f"{len(mid)} meter ids for {n} packets", fix="one per packet")
        if n == 0:
            return np.zeros(0, np.uint8)
        t = np.asarray(now, dtype=np.int64)
        # the vector scan sums lengths in int64 units; absurd totals take the Python-int loop
        fits = int(lens.max()) * self.hz * n < 1 << 63
        if t.ndim == 0:
            if fits:
                return self._check_at(int(t), lens, pre, mid)
            t = np.full(n, int(t), np.int64)
        t = t.reshape(-1)
        if len(t) != n:
            raise ConfigError(f"{len(t)} times for {n} packets", fix="one time, or one per packet")
        if n > 1 and (np.diff(t) < 0).any():
            raise ConfigError("packet times go backwards", fix="pass non-decreasing times")
        bounds = np.flatnonzero(np.diff(t)) + 1
        if not fits or (len(bounds) + 1) * _SCALAR_CHUNK > n:
            return self._check_scalar(t, lens, pre, mid)
        out = np.empty(n, np.uint8)
        edges = [0, *bounds.tolist(), n]
        for s, e in itertools.pairwise(edges):
            out[s:e] = self._check_at(int(t[s]), lens[s:e], pre[s:e], mid[s:e])
        return out

    def _check_at(self, now: int, lens, pre, mid) -> np.ndarray:
        """All packets at one instant, any number of meters: a fixed handful of scan rounds."""
        units = lens * self.hz
        if bool((mid == mid[0]).all()):
            i = int(mid[0])
            self._refill1(i, now)
            return self._colors(units, pre, lambda lvl, cand: _greedy1(lvl, i, units, cand))
        order = np.argsort(mid, kind="stable")
        mid, units, pre = mid[order], units[order], pre[order]
        first = np.ones(len(mid), bool)
        np.not_equal(mid[1:], mid[:-1], out=first[1:])
        self._refill(mid[first], now)
        col = self._colors(units, pre, lambda lvl, cand: _greedy(lvl, mid, units, cand))
        out = np.empty_like(col)
        out[order] = col
        return out

    def _colors(self, units, pre, scan) -> np.ndarray:
        """The two bucket scans of the algorithm; ``scan(level_array, candidates)``."""
        green = pre == GREEN
        if self.kind == "trtcm":
            p1 = scan(self.b1, np.flatnonzero(pre != RED))
            p2 = scan(self.b2, np.flatnonzero(p1 & green))
            col = np.where(p2, GREEN, np.where(p1, YELLOW, RED))
        else:
            p1 = scan(self.b1, np.flatnonzero(green))
            p2 = scan(self.b2, np.flatnonzero((green & ~p1) | (pre == YELLOW)))
            col = np.where(p1, GREEN, np.where(p2, YELLOW, RED))
        return col.astype(np.uint8)

    def _refill1(self, i: int, now: int) -> None:
        """``_refill`` of one meter with Python integers (a dozen numpy calls saved)."""
        last = int(self.last[i])
        if now <= last:
            return
        self.last[i] = now
        dt = now - last
        b1, b2, cap1, cap2 = int(self.b1[i]), int(self.b2[i]), int(self.cap1[i]), int(self.cap2[i])
        r1 = int(self.rate1[i])
        if self.kind == "srtcm":
            c = b1 + r1 * dt
            if c > cap1:
                b2 = min(cap2, b2 + c - cap1)
                c = cap1
            self.b1[i], self.b2[i] = c, b2
        else:
            self.b1[i] = min(cap1, b1 + r1 * dt)
            self.b2[i] = min(cap2, b2 + int(self.rate2[i]) * dt)

    def _check_scalar(self, t, lens, pre, mid) -> np.ndarray:
        """Per-packet loop (Python ints) for vectors whose times are mostly distinct."""
        u, inv = np.unique(mid, return_inverse=True)
        b1, b2, last = self.b1[u].tolist(), self.b2[u].tolist(), self.last[u].tolist()
        cap1, cap2 = self.cap1[u].tolist(), self.cap2[u].tolist()
        r1, r2 = self.rate1[u].tolist(), self.rate2[u].tolist()
        hz, kind = self.hz, self.kind
        out = []
        rows = zip(t.tolist(), lens.tolist(), pre.tolist(), inv.tolist(), strict=True)
        for ti, li, ci, k in rows:
            dt = ti - last[k]
            if dt > 0:
                last[k] = ti
                if kind == "srtcm":
                    c = b1[k] + r1[k] * dt
                    if c > cap1[k]:
                        b2[k] = min(cap2[k], b2[k] + c - cap1[k])
                        c = cap1[k]
                    b1[k] = c
                else:
                    b1[k] = min(cap1[k], b1[k] + r1[k] * dt)
                    b2[k] = min(cap2[k], b2[k] + r2[k] * dt)
            b = li * hz
            if kind == "trtcm":
                if ci == RED or b1[k] < b:
                    col = RED
                elif ci == YELLOW or b2[k] < b:
                    col = YELLOW
                    b1[k] -= b
                else:
                    col = GREEN
                    b1[k] -= b
                    b2[k] -= b
            elif ci == GREEN and b1[k] >= b:
                col = GREEN
                b1[k] -= b
            elif ci != RED and b2[k] >= b:
                col = YELLOW
                b2[k] -= b
            else:
                col = RED
            out.append(col)
        self.b1[u], self.b2[u], self.last[u] = b1, b2, last
        return np.array(out, np.uint8)


class Meter(Meters):
    """One meter (DPDK's ``struct rte_meter_*``), with a scalar convenience check."""

    def __init__(self, profile: Profile, *, now: int = 0, hz: int = NS_PER_S):
        super().__init__(profile, 1, now=now, hz=hz)

    def check(self, now: int, length: int, color: int | None = None) -> int:
        """Colour of one packet (slow path: use the vector checks on bursts)."""
        col = None if color is None else [color]
        return int(self._check(now, [length], col, None)[0])
