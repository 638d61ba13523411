"""``make demo``: a real AF_XDP MAC-swap forwarder fed by our own generator.

Two network namespaces joined by a veth pair. In namespace B an AF_XDP socket (our XDP
redirect program, native mode) runs the MAC-swap loopback loop on one CPU. In namespace A the
live-frames generator (BPF_PROG_RUN, XDP_TX) sends 60-byte UDP frames on the other CPU, and a
counting XDP program on A's veth counts the frames that come back. Live rates are printed
every second; everything is torn down at the end (also on Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import time

import numpy as np

from ..bpf import progs, xdp
from ..bpf.trafficgen import LiveFrameGen
from ..errors import CndpError
from ..mem.umem import Umem
from ..net.frames import udp4_frame
from ..testing import netns
from ..xskdev.xskdev import XskConfig, XskDev
from . import loops


def _shared_array(n: int, dtype=np.uint64) -> np.ndarray:
    buf = mp.RawArray("b", n * np.dtype(dtype).itemsize)
    return np.frombuffer(buf, dtype=dtype)


def _pin(cpu: int) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


def _forwarder(
    host: netns.Host, counters: np.ndarray, flags: np.ndarray, cpu: int, idle_polls: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGTERM, lambda *_: flags.__setitem__(0, 1))
    _pin(cpu)
    try:
        with (
            host.enter(),
            Umem(bufcnt=8192, bufsz=2048) as umem,
            XskDev(XskConfig(host.ifname, 0), umem) as dev,
        ):
            flags[1] = 1  # ready
            loops.mac_swap_loop(dev, lambda: flags[0], counters, idle_polls=idle_polls)
    except CndpError as e:
        print(f"forwarder: {e}", file=sys.stderr)
        flags[1] = 2
        sys.exit(1)


def _generator(
    host: netns.Host, frame: bytes, counters: np.ndarray, flags: np.ndarray, cpu: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: flags.__setitem__(0, 1))
    _pin(cpu)
    with host.enter(), LiveFrameGen(host.ifname, frame) as gen:
        while not flags[0]:
            r = gen.send(100_000)
            counters[0] += r.frames


def run(seconds: float, *, quiet: bool = False) -> int:
    out = (lambda *a, **k: None) if quiet else print
    pair = netns.make_veth_pair()
    a, b = pair.a, pair.b
    fwd_c = _shared_array(loops.NCOUNTERS)
    gen_c = _shared_array(1)
    flags = _shared_array(2)
    gflags = _shared_array(1)
    procs: list[mp.Process] = []
    counter = None
    sink_fd = -1
    try:
        out(f"veth pair {a.ifname} ({a.ns}) <-> {b.ifname} ({b.ns})")
        # A counts what comes back with a kernel XDP program (cheap, and gives the veth NAPI).
        with a.enter():
            counter = progs.Counter()
            sink_fd = progs.load("demo_sink", progs.counting(progs.asm.XDP_DROP, counter.fd))
            xdp.attach(a.ifname, sink_fd, xdp.XdpMode.DRV)
        ctx = mp.get_context("fork")
        fwd = ctx.Process(target=_forwarder, args=(b, fwd_c, flags, 1, 0), daemon=True)
        fwd.start()
        procs.append(fwd)
        t0 = time.monotonic()
        while flags[1] == 0 and time.monotonic() - t0 < 10 and fwd.is_alive():
            time.sleep(0.05)
        if flags[1] != 1:
            out("forwarder failed to start", file=sys.stderr)
            return 1
        frame = udp4_frame(a.mac, b.mac, a.ipv4, b.ipv4)
        gen = ctx.Process(target=_generator, args=(a, frame, gen_c, gflags, 0), daemon=True)
        gen.start()
        procs.append(gen)
        out(f"{'time':>5} {'gen sent/s':>12} {'fwd rx/s':>12} {'fwd tx/s':>12} {'back at A/s':>12}")
        prev = (0, 0, 0, 0)
        t_prev = time.monotonic()
        start = t_prev
        while time.monotonic() - start < seconds:
            time.sleep(1.0)
            now = time.monotonic()
            back = counter.read()[0]
            cur = (int(gen_c[0]), int(fwd_c[loops.RX]), int(fwd_c[loops.TX]), back)
            dt = now - t_prev
            rates = [(c - p) / dt for c, p in zip(cur, prev, strict=True)]
            out(f"{now - start:5.1f} " + " ".join(f"{r:12,.0f}" for r in rates))
            prev, t_prev = cur, now
            if not fwd.is_alive():
                out("forwarder died", file=sys.stderr)
                return 1
        out(
            f"total: generated {int(gen_c[0]):,}, forwarded {int(fwd_c[loops.TX]):,}, "
            f"returned to A {counter.read()[0]:,}"
        )
        return 0
    finally:
        gflags[0] = 1
        flags[0] = 1
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(2)
        if sink_fd >= 0:
            with contextlib.suppress(CndpError), a.enter():
                xdp.detach(a.ifname)
            os.close(sink_fd)
        if counter is not None:
            counter.close()
        pair.close()
        left = netns.leftovers(pair.prefix)
        if left:
            print("demo left behind: " + "; ".join(left), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cndp-demo", description=__doc__.splitlines()[0])
    ap.add_argument("-s", "--seconds", type=float, default=5.0, help="how long to run")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if os.geteuid() != 0:
        print("cndp-demo needs root (network namespaces, XDP, AF_XDP)", file=sys.stderr)
        return 2
    # Ctrl-C and SIGTERM both end the demo through the cleanup path. Helpers forked by
    # libraries (pyroute2 forks one per foreign-namespace socket) just exit on SIGTERM.
    main_pid = os.getpid()

    def on_term(*_):
        if os.getpid() != main_pid:
            os._exit(143)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return run(args.seconds)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CndpError as e:
        print(f"cndp-demo: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
