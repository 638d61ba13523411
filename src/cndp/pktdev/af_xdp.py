"""net_af_xdp: one AF_XDP socket (``cndp.xskdev.XskDev``) per lport, on (netdev, qid).

``tx_burst`` is the socket's own ``tx_burst`` (bound directly: no extra call per burst);
``rx_burst`` adds one numpy fill of ``pv.port``. Frames of sent packets return to the pool when
the kernel completes them (reaped on the next ``tx_burst``). Statistics are xskdev's full set
(CNDP lport_stats plus the kernel's XDP_STATISTICS). Unprivileged lports take their XSKMAP
from a pinned map (``xsk_pin_path``) or from the device plugin (``uds_path``, the handshake of
``cndp.k8s.handshake``) instead of loading an XDP program. ``PortConfig.tx_qid`` sends through a
second socket on another queue of the netdev (see XskConfig.tx_qid).
"""

from __future__ import annotations

from typing import Any

from ..xskdev.xskdev import XskConfig, XskDev
from .port import Port, register_driver


@register_driver
class AfXdpPort(Port):
    pmd_name = "net_af_xdp"
    needs_netdev = True
    counters = ()

    def __init__(self, lport: int, cfg: Any) -> None:
        super().__init__(lport, cfg)
        self.dev: XskDev | None = None

    def _open(self) -> None:
        cfg = self.cfg
        xcfg = XskConfig(
            ifname=self.ifname,
            qid=self.qid,
            rx_size=cfg.rx_nb_desc,
            tx_size=cfg.tx_nb_desc,
            skb_mode=cfg.skb_mode,
            force_wakeup=cfg.force_wakeup,
            busy_poll=cfg.busy_poll,
            busy_timeout=cfg.busy_timeout,
            busy_budget=cfg.busy_budget,
            xsk_pin_path=cfg.xsk_pin_path,
            xsk_map_fd=cfg.xsk_map_fd,
            uds_path=cfg.uds_path,
            tx_qid=cfg.tx_qid,
        )
        assert self.umem is not None
        self.dev = XskDev(xcfg, self.umem, region=cfg.region, pool=self.pool, lport=self.lport)

    def _mtu_limited(self) -> bool:
        # the kernel writes a received frame at frame + 256 (XDP headroom): it must fit there
        return True

    def _bind_burst(self) -> None:
        assert self.dev is not None
        self.rx_burst = self._rx
        self.tx_burst = self.dev.tx_burst

    def _rx(self, pv: Any, n: int | None = None) -> int:
        k = self.dev.rx_burst(pv, n)  # type: ignore[union-attr]
        if k:
            pv.port[:k] = self.lport
        return k

    def _tx(self, pv: Any, n: int | None = None) -> int:
        return self.dev.tx_burst(pv, n)  # type: ignore[union-attr]

    def flush(self, timeout: float = 1.0) -> bool:
        """Kick until every queued frame completed (see XskDev.flush)."""
        return self.dev.flush(timeout) if self.dev is not None else True

    def stats(self) -> dict[str, int]:
        if self.dev is None:
            return super().stats()
        return self.dev.stats()

    def reset_stats(self) -> None:
        if self.dev is not None:
            self.dev.reset_stats()

    def fileno(self) -> int | None:
        return self.dev.fileno() if self.dev is not None else None

    def rx_desc(self) -> int:
        return self.dev.rx_size if self.dev is not None else 0

    def tx_desc(self) -> int:
        return self.dev.tx_size if self.dev is not None else 0

    def _close(self) -> None:
        if self.dev is not None:
            self.dev.close()
            self.dev = None
