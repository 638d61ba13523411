"""``cndp-jsonc``: validate a CNDP jsonc configuration and print it resolved, as JSON.

Like CNDP's jsonc2json, plus everything pycndp's loader checks::

    cndp-jsonc fwd.jsonc            # the resolved configuration on stdout
    cndp-jsonc - < fwd.jsonc        # from stdin
    cndp-jsonc -C                   # wait for it on the config socket (CNDP's -C)
    cndp-jsonc --raw fwd.jsonc      # only strip comments: the document as plain JSON

Exit status: 0 valid, 1 invalid (one paragraph on stderr, never a traceback), 2 bad usage,
130 interrupted. Host warnings (CPUs, netdevs, hugepages) go to stderr; ``--strict-host`` makes
them errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..errors import CndpError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_EXTRA_PROBLEMS = 5


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="cndp-jsonc",
        description="Validate a CNDP jsonc configuration and print the resolved configuration "
        "as JSON: umem sizes in buffers and bytes, regions, lports with their index, lcore "
        "groups as CPU lists, threads with their lports, lport-groups expanded, options.",
    )
    ap.add_argument("file", nargs="?", help="the configuration file, or - for stdin")
    ap.add_argument(
        "-C",
        "--socket",
        action="store_true",
        help="wait for the configuration on the config socket <runtime-dir>/config.<pid> "
        "(send it with: python -m cndp.app.config_sock FILE)",
    )
    ap.add_argument(
        "--runtime-dir",
        metavar="DIR",
        help="directory of the config socket (default /var/run/cndp as root, else "
        "$XDG_RUNTIME_DIR/cndp)",
    )
    ap.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="with -C: give up after this long"
    )
    ap.add_argument(
        "--strict-host",
        action="store_true",
        help="treat host warnings (missing CPUs, netdevs, queues, hugepages) as errors",
    )
    ap.add_argument("--no-host-checks", action="store_true", help="skip the host checks")
    ap.add_argument(
        "--raw",
        action="store_true",
        help="only parse: print the (last) JSON-C document as plain JSON, no validation",
    )
    ap.add_argument("--compact", action="store_true", help="print the JSON on one line")
    return ap


def _fail(e: CndpError) -> int:
    lines = [f"cndp-jsonc: {e}"]
    problems = list(getattr(e, "problems", []) or [])
    for p in problems[1 : 1 + MAX_EXTRA_PROBLEMS]:
        lines.append(f"  also: {p}")
    if len(problems) > 1 + MAX_EXTRA_PROBLEMS:
        lines.append(f"  ... and {len(problems) - 1 - MAX_EXTRA_PROBLEMS} more")
    print("\n".join(lines), file=sys.stderr)
    return EXIT_INVALID


def _emit(data: Any, compact: bool) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=None if compact else 2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    from ..app import config, jsonc
    from ..app.config_sock import receive_config

    if args.socket:

        def ready(path: str) -> None:
            print(f"cndp-jsonc: waiting for a configuration on {path}", file=sys.stderr)
            sys.stderr.flush()

        data = receive_config(args.runtime_dir, timeout=args.timeout, on_ready=ready)
        source = "<socket>"
    else:
        data = jsonc.read_source(args.file)
        source = "<stdin>" if args.file == "-" else args.file
    if args.raw:
        _emit(jsonc.parse(data, source).value, args.compact)
        return EXIT_OK
    cfg = config.loads(
        data, source, strict_host=args.strict_host, host_checks=not args.no_host_checks
    )
    for w in cfg.warnings:
        print(f"cndp-jsonc: warning: {w}", file=sys.stderr)
    _emit(cfg.to_dict(), args.compact)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.socket == bool(args.file):
        ap.print_usage(sys.stderr)
        print("cndp-jsonc: error: give a FILE (or - for stdin), or -C", file=sys.stderr)
        return EXIT_USAGE
    if args.timeout is not None and not args.socket:
        ap.print_usage(sys.stderr)
        print("cndp-jsonc: error: --timeout goes with -C", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except CndpError as e:
        return _fail(e)
    except KeyboardInterrupt:
        print("cndp-jsonc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. `| head`): not an error of ours
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
