"""What an application sets up in its main process before forking workers, and undoes after.

UMEMs are created in shared memory (frame offsets mean the same in every worker), and the
privileged XDP steps happen once per netdev: our program is loaded and attached once, so two
workers on one netdev never replace each other's program. Lports with ``uds_path`` load
nothing: the device plugin owns the program, and one handshake connection (fetching each
netdev's XSKMAP) is opened here so the workers share it and its fds. Lports with
``xsk_pin_path`` and non-AF_XDP lports need neither.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..bpf.xdp import XdpMode, XskProgram
from ..errors import CndpError
from ..k8s import handshake
from ..mem import Umem


@dataclass
class PreFork:
    umems: dict[str, Umem] = field(default_factory=dict)
    programs: list[XskProgram] = field(default_factory=list)
    uds_clients: list[handshake.HandshakeClient] = field(default_factory=list)

    def setup(self, cfg, lports: Iterable[str], *, uds: bool = True) -> None:
        """UMEMs and XDP programs (or device-plugin connections) for ``lports``; on a failure
        part-way the caller's :meth:`teardown` undoes what was done."""
        lports = list(lports)
        for name in sorted({cfg.lport(n).umem for n in lports}):
            u = cfg.umem(name)
            self.umems[name] = Umem(
                u.bufcnt, u.bufsz, u.mtype, list(u.regions), shared=True, name=name
            )
        seen = set()
        for name in lports:
            lp = cfg.lport(name)
            if lp.pmd != "net_af_xdp" or lp.xsk_pin_path:
                continue
            if lp.uds_path and uds:
                client = handshake.acquire(lp.uds_path)
                self.uds_clients.append(client)
                client.xsk_map_fd(lp.netdev)
                continue
            mode = XdpMode.SKB if lp.skb_mode else XdpMode.DRV
            if (lp.netdev, mode) in seen:
                continue
            seen.add((lp.netdev, mode))
            self.programs.append(XskProgram.acquire(lp.netdev, mode))

    def teardown(self) -> None:
        """After the workers ended: /fin to the device plugin, detach, free the UMEMs."""
        for c in self.uds_clients:
            handshake.release(c)  # the last one sends /fin
        self.uds_clients = []
        for p in self.programs:
            with contextlib.suppress(CndpError):
                p.release()
        self.programs = []
        for u in self.umems.values():
            with contextlib.suppress(Exception):
                u.close()
        self.umems = {}
