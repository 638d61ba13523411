"""The shared-memory board between txgen's workers and its main process.

Created before the workers fork: numpy arrays in anonymous shared memory. Each worker writes
only the rows of its own lports (published every ~50 ms and when asked); the main process
reads them for the screen, the CLI and the JSON report. A per-worker mailbox counter tells a
worker that control messages wait on its pipe (one integer compare per loop iteration).
"""

from __future__ import annotations

import numpy as np

from ...app.runtime import shared_array

PORT_KEYS = (
    "tx_pkts",
    "tx_bytes",
    "tx_errors",  # frames the engine could not queue (ring full after retries, port down)
    "tx_running",
    "tx_done",  # the configured count was reached
    "tx_pps_target",  # packets per second asked for (0 = as fast as possible)
    "tx_first_ns",  # monotonic time of the first frame sent since the counters were cleared
    "tx_first_k",  # frames sent at tx_first_ns (one burst)
    "tx_last_ns",  # time of the last frame sent
    "rx_pkts",
    "rx_bytes",
    "rx_errors",  # the port's receive errors (ierrors, rx_invalid)
    "rx_missed",  # dropped by the kernel before we saw them (imissed)
    "rx_stamped",  # frames carrying a txgen stamp
    "rx_foreign",  # frames without one
    "capture_pkts",
    "capture_on",
    "published_ns",
)
PK = {k: i for i, k in enumerate(PORT_KEYS)}

NB_HIST = 32  # latency buckets: <1 us, [1,2) us, [2,4) us, ... , >= 2**30 us
STREAM_KEYS = (
    "pkts",
    "bytes",
    "lat_n",
    "lat_sum",  # ns
    "lat_min",
    "lat_max",
    "reorder",  # frames arriving after a frame with a higher sequence number
    "seq_max",
)
SK = {k: i for i, k in enumerate(STREAM_KEYS)}
NS = len(STREAM_KEYS)
LAT_MIN_INIT = np.iinfo(np.int64).max


class Board:
    """Counters of ``nports`` lports; streams are identified by the sending lport id."""

    def __init__(self, nports: int, nworkers: int) -> None:
        self.nports = max(nports, 1)
        self.ports = shared_array((self.nports, len(PORT_KEYS)), np.int64)
        # [rx lport, stream (tx lport), key]; histogram in its own array
        self.streams = shared_array((self.nports, self.nports, NS), np.int64)
        self.hist = shared_array((self.nports, self.nports, NB_HIST), np.int64)
        self.sumsq = shared_array((self.nports, self.nports), np.float64)  # ns**2
        self.mailbox = shared_array(max(nworkers, 1), np.uint64)
        self.streams[:, :, SK["lat_min"]] = LAT_MIN_INIT

    def port(self, lpid: int) -> dict[str, int]:
        row = self.ports[lpid]
        return {k: int(row[i]) for i, k in enumerate(PORT_KEYS)}


def hist_labels() -> list[str]:
    """Human labels of the latency buckets."""
    out = ["<1us"]
    for i in range(1, NB_HIST - 1):
        out.append(f"{_us(1 << (i - 1))}-{_us(1 << i)}")
    out.append(f">={_us(1 << (NB_HIST - 2))}")
    return out


def _us(v: int) -> str:
    if v >= 1_000_000:
        return f"{v // 1_000_000}s" if v % 1_000_000 == 0 else f"{v / 1e6:g}s"
    if v >= 1000:
        return f"{v // 1000}ms" if v % 1000 == 0 else f"{v / 1000:g}ms"
    return f"{v}us"


def hist_bucket(lat_ns: np.ndarray) -> np.ndarray:
    """Bucket index of each latency (vectorised: one frexp)."""
    e = np.frexp(lat_ns.astype(np.float64) / 1000.0)[1]  # x in [2**(e-1), 2**e)
    return np.clip(e, 0, NB_HIST - 1)
