"""Per-packet trace of a graph: which nodes the next N packets went through.

``graph.trace(n, "t.pcap")`` switches the graph to its trace walk until ``n`` packets have
entered from the sources (and the walk they entered in has finished). For each of them:

- its bytes *as received* (copied when the source produced it, before any node ran) go to a
  classic pcap file (``cndp.net.pcap.PcapWriter``; tshark/Wireshark read it);
- its path — the source, then every node whose input vector held it — goes to a JSON log
  (``t.json``: ``{"graph", "packets": [{"id", "walk", "port", "len", "path": [...]}]}``) and
  a text log (``t.txt``, one line per packet: ``#0 walk 3 port 0 len 60: a -> b -> c``).

Packets are followed by (input port, frame): a packet keeps its UMEM frame through the graph
(nodes move ``addr`` only within the frame's headroom), and a walk runs every packet to its
end before the next walk, so a frame names one packet within a walk. A node that copies a
packet into a new frame ends that packet's recorded path there.

The trace walk is a slow path (a few numpy calls per node call plus a loop over the *traced*
packets only). When the trace finishes the graph goes back to its normal walk, which has no
trace code at all: tracing costs nothing when off.
"""

from __future__ import annotations

import errno as _errno
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..net.pcap import PcapWriter
from .node import GraphError

if TYPE_CHECKING:
    from ..mem.pktvec import PktVec
    from .graph import Graph, GraphNode

__all__ = ["Trace"]

_PORT_SHIFT = np.uint64(40)  # key = port << 40 | frame number (2**40 frames per UMEM)


class Trace:
    """A running or finished trace (returned by ``Graph.trace``)."""

    def __init__(
        self,
        graph: Graph,
        n_packets: int,
        pcap_path: str | Path,
        log_path: str | Path | None = None,
    ) -> None:
        if isinstance(n_packets, bool) or not isinstance(n_packets, int) or n_packets < 1:
            raise GraphError(
                f"trace: packet count must be a positive integer, got {n_packets!r}",
                errno=_errno.EINVAL,
                fix="trace a few packets, e.g. graph.trace(8, 'trace.pcap')",
            )
        umem = graph.require_umem("trace")
        self.graph = graph
        self.n_packets = n_packets
        self.pcap_path = Path(pcap_path)
        self.log_path = Path(log_path) if log_path else self.pcap_path.with_suffix(".json")
        self.text_path = self.log_path.with_suffix(".txt")
        self.packets: list[dict[str, Any]] = []
        self.done = False
        self._data = umem.data
        self._bufsz = np.uint64(umem.bufsz)
        self._writer = PcapWriter(self.pcap_path)
        self._walk = 0
        self._live_keys = np.zeros(0, np.uint64)
        self._live: list[dict[str, Any]] = []

    # -- hooks called by the trace walk ------------------------------------------------------
    def _keys(self, pv: PktVec) -> np.ndarray:
        n = pv.n
        return (pv.port[:n].astype(np.uint64) << _PORT_SHIFT) | (pv.addr[:n] // self._bufsz)

    def begin_walk(self, walk_no: int) -> None:
        self._walk = walk_no

    def on_source(self, node: GraphNode, pv: PktVec) -> None:
        """Capture the first packets a source produced, until n_packets are taken."""
        want = self.n_packets - len(self.packets)
        if want <= 0:
            return
        m = min(want, pv.n)
        keys = self._keys(pv)[:m]
        now = time.time_ns()
        data = self._data
        new: list[dict[str, Any]] = []
        # a loop over the few traced packets only (slow path by design)
        for i in range(m):
            off, length = int(pv.addr[i]), int(pv.data_len[i])
            self._writer.write(data[off : off + length], now)
            rec = {
                "id": len(self.packets),
                "walk": self._walk,
                "port": int(pv.port[i]),
                "len": length,
                "path": [node.name],
            }
            self.packets.append(rec)
            new.append(rec)
        self._live += new
        self._live_keys = np.concatenate([self._live_keys, keys])

    def on_node(self, node: GraphNode, pv: PktVec) -> None:
        """Append ``node`` to the path of every live traced packet in its input vector."""
        if not self._live:
            return
        hit = np.flatnonzero(np.isin(self._live_keys, self._keys(pv)))
        for i in hit.tolist():
            self._live[i]["path"].append(node.name)

    def end_walk(self) -> None:
        self._live = []
        self._live_keys = self._live_keys[:0]
        if len(self.packets) >= self.n_packets:
            self._finish()

    # -- results -----------------------------------------------------------------------------
    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        self._writer.close()
        doc = {
            "graph": self.graph.name,
            "pcap": str(self.pcap_path),
            "packets": self.packets,
        }
        try:
            self.log_path.write_text(json.dumps(doc, indent=1) + "\n")
            self.text_path.write_text(self.text())
        except OSError as e:
            raise GraphError(
                f"trace: cannot write {self.log_path}: {e.strerror}",
                errno=e.errno,
                fix="check that the directory exists and is writable",
            ) from None

    def text(self) -> str:
        lines = [
            f"#{p['id']} walk {p['walk']} port {p['port']} len {p['len']}: "
            + " -> ".join(p["path"])
            for p in self.packets
        ]
        return "\n".join(lines) + ("\n" if lines else "")

    def stop(self) -> None:
        """Finish now with the packets captured so far (writes the logs)."""
        self._live = []
        self._finish()
        self.graph._trace_stopped(self)

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"<Trace {self.graph.name!r} {len(self.packets)}/{self.n_packets} {state}>"
