"""txgen: CNDP's pktgen-style traffic generator, in Python.

    txgen -c txgen.jsonc                       interactive (TXGen:/> prompt)
    txgen -c FILE --duration 10 --json         run the configured streams, print one JSON object
    txgen -c FILE -f script.txt -s "set 0 rate 10" ...

See docs/txgen.md for the commands, the jsonc ``txgen`` section and the JSON report.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time

from ...app import config as cfgmod
from ...errors import CndpError
from .app import SECTION, Options, TxgenApp, decode_section
from .cli import PROMPT
from .screen import Sampler

log = logging.getLogger("cndp.txgen")


class UsageError(CndpError):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="txgen",
        description="pycndp traffic generator (CNDP txgen): AF_XDP, AF_PACKET and XDP "
        "live-frames transmit engines, latency and loss per stream.",
    )
    ap.add_argument("-c", dest="config", help="jsonc configuration file ('-' = stdin)")
    ap.add_argument(
        "-C",
        dest="config_socket",
        action="store_true",
        help="wait for the configuration on the Unix socket /var/run/cndp/config.<pid>",
    )
    ap.add_argument("--runtime-dir", help="directory of the -C config socket")
    ap.add_argument(
        "-f",
        dest="scripts",
        action="append",
        default=[],
        metavar="FILE",
        help="run a command script at start (the format `save` writes); repeatable",
    )
    ap.add_argument(
        "-s",
        "--set",
        dest="commands",
        action="append",
        default=[],
        metavar="CMD",
        help='run a command at start, e.g. -s "set 0 pps 10k"; repeatable',
    )
    ap.add_argument(
        "--duration",
        type=float,
        help="non-interactive: start the ports, run this many seconds, stop, report",
    )
    ap.add_argument("--json", action="store_true", help="report as one JSON object on stdout")
    ap.add_argument("--ports", help="ports the non-interactive run starts (port list; default all)")
    ap.add_argument(
        "--engine",
        choices=["port", "live"],
        help="transmit engine for every port (default: each port's setting, port)",
    )
    ap.add_argument(
        "--any-address",
        action="store_true",
        help="allow IP addresses outside 198.18.0.0/15 and fd00:198:18::/48",
    )
    ap.add_argument(
        "--no-cli",
        action="store_true",
        help="no prompt: start every port and show the screen until Ctrl-C",
    )
    ap.add_argument("--no-color", action="store_true", help="no colours")
    ap.add_argument(
        "--capture-limit",
        type=int,
        default=1_000_000,
        help="frames a capture keeps per port (default 1000000)",
    )
    ap.add_argument(
        "--drain",
        type=float,
        default=3.0,
        help="seconds to wait at most for frames in flight after a run (default 3)",
    )
    ap.add_argument("-L", dest="level", default="warning", help="log level (default warning)")
    ap.add_argument("-D", "-V", "-P", dest="debug", action="count", default=0, help="more logging")
    args = ap.parse_args(argv)
    if args.config is None and not args.config_socket:
        ap.error("a configuration is needed: -c FILE or -C")
    if args.duration is not None and not 0 < args.duration <= 86400 * 365:
        ap.error(f"--duration {args.duration}: give a number of seconds > 0")
    if args.json and args.duration is None:
        ap.error("--json reports a timed run: add --duration SECONDS")
    if args.capture_limit < 1:
        ap.error("--capture-limit must be >= 1")
    if not 0 <= args.drain <= 600:
        ap.error("--drain must be 0..600 seconds")
    return args


def _level(text: str) -> int:
    names = {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warning": logging.WARNING,
        "warn": logging.WARNING,
        "error": logging.ERROR,
        "err": logging.ERROR,
    }
    t = str(text).lower()
    if t.isdigit() and 1 <= int(t) <= 8:
        return [logging.CRITICAL] * 3 + [
            logging.ERROR,
            logging.WARNING,
            logging.INFO,
            logging.INFO,
            logging.DEBUG,
        ][int(t) - 1]
    if t in names:
        return names[t]
    raise UsageError(f"-L {text}: unknown log level", fix="use 1..8 or debug, info, warning, error")


def _text_report(rep: dict) -> str:
    lines = [f"txgen: {rep['duration_s']} s"]
    for name, p in rep["ports"].items():
        tx, rx = p["tx"], p["rx"]
        line = (
            f"{name}: tx {tx['packets']} pkts {tx['bytes']} bytes ({tx['pps']:,.0f} pps), "
            f"rx {rx['packets']} pkts {rx['bytes']} bytes"
        )
        if p["loss"] is not None:
            line += f", lost {p['loss']['lost']}"
        lat = p["latency_ns"]
        if lat:
            line += (
                f", latency min/avg/max {lat['min'] / 1e3:.1f}/{lat['avg'] / 1e3:.1f}/"
                f"{lat['max'] / 1e3:.1f} us"
            )
        lines.append(line)
    return "\n".join(lines)


def _interactive(app: TxgenApp) -> int:
    tty = sys.stdin.isatty()
    if tty:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history for input()
        print(
            f"TXGen (pycndp): {len(app.descs)} port(s); type help for the commands, quit to leave",
            flush=True,
        )
    died = threading.Event()

    def watch() -> None:
        while not died.is_set():
            time.sleep(0.5)
            if app.rt is None:
                return
            if not app.alive():
                died.set()
                _thread.interrupt_main()
                return

    threading.Thread(target=watch, name="txgen-watch", daemon=True).start()
    status = 0
    while True:
        try:
            line = input(PROMPT if tty else "")
        except EOFError:
            break
        except KeyboardInterrupt:
            if died.is_set():
                print("\ntxgen: a worker stopped; leaving", file=sys.stderr)
                status = 1
                break
            print()
            continue
        r = app.execute(line)
        if r.text:
            print(r.text, file=sys.stdout if r.ok else sys.stderr, flush=True)
        if not r.ok and not tty:
            status = 1
        if r.quit:
            break
    died.set()
    return status


def _headless(app: TxgenApp, duration: float | None) -> int:
    """--no-cli: start everything, show the screen (or a line per second) until Ctrl-C."""
    from .screen import render_page

    app.start(sorted(app.descs))
    end = None if duration is None else time.monotonic() + duration
    try:
        while end is None or time.monotonic() < end:
            time.sleep(1.0)
            if not app.alive():
                return 1
            if sys.stdout.isatty():
                print("\x1b[H\x1b[2J" + render_page(app, "main"), flush=True)
            else:
                parts = []
                for lp in sorted(app.descs):
                    r = app.sampler.get(lp) if app.sampler else {}
                    parts.append(
                        f"{lp}: tx {r.get('tx_pps', 0):,.0f} pps rx {r.get('rx_pps', 0):,.0f} pps"
                    )
                print("  ".join(parts), flush=True)
    except KeyboardInterrupt:
        pass
    app.stop(sorted(app.descs))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app: TxgenApp | None = None
    try:
        level = _level(args.level)
        if args.debug:
            level = logging.DEBUG if args.debug > 1 else logging.INFO
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        decoders = {SECTION: decode_section}
        if args.config_socket:
            cfg = cfgmod.load_socket(
                args.runtime_dir,
                decoders=decoders,
                on_ready=lambda p: print(f"waiting for the configuration on {p}", file=sys.stderr),
            )
        else:
            cfg = cfgmod.load(args.config, decoders=decoders)
        for w in cfg.warnings:
            log.info("%s", w)
        opts = Options(
            duration=args.duration,
            json=args.json,
            any_address=args.any_address,
            ports=args.ports,
            scripts=args.scripts,
            commands=([f"set all engine {args.engine}"] if args.engine else []) + args.commands,
            no_cli=args.no_cli,
            color=not args.no_color,
            capture_limit=args.capture_limit,
            drain=args.drain,
        )
        app = TxgenApp(cfg, opts)
        for n in app.notes:
            log.warning("%s", n)
        batch = args.duration is not None and not args.no_cli
        errors = app.apply_initial()
        for e in errors:
            print(f"txgen: {e}", file=sys.stderr)
        if errors and (batch or args.no_cli):
            return 2
        # SIGTERM leaves like Ctrl-C: the finally below stops the workers cleanly
        signal.signal(signal.SIGTERM, lambda *_: _thread.interrupt_main())
        app.start_runtime()
        app.sampler = Sampler(app)
        app.sampler.start()
        if batch:
            rep = app.run_batch()
            print(
                json.dumps(rep, indent=None if args.json else 2)
                if args.json
                else _text_report(rep),
                flush=True,
            )
            return 0
        if args.no_cli:
            return _headless(app, args.duration)
        return _interactive(app)
    except CndpError as e:
        print(f"txgen: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if app is not None:
            if app.sampler is not None:
                app.sampler.stop()
            status = app.stop_runtime()
            if status:
                print("txgen: a worker failed (see above)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
