"""Telemetry for an application in a few lines: the socket, the CLI and their flags.

    from cndp.telemetry import service
    service.add_arguments(argparser)                       # --telemetry-socket, --cli-socket...
    tel = service.start(cfg, args, runtime, name="cndpfwd", mode="lb")
    tel.table.register("/acl/rules", fn, "...")            # more commands, any time
    ...
    tel.close()                                            # removes the socket files

The telemetry socket is on by default at ``<runtime-dir>/app_socket.<pid>`` (CNDP's place),
off with ``--no-telemetry`` or the jsonc option ``"no-metrics": true``. When the default path
cannot be used (no permission) the application runs on and says so once; a path given with
``--telemetry-socket`` must work or the application does not start.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field

from .app import AppControl, register_app_commands
from .cli import CliServer, CliTree, LocalShell, add_app_commands
from .uds import DEFAULT_NAME, CommandTable, TelemetryError, TelemetryServer, default_path

log = logging.getLogger("cndp.telemetry")

__all__ = ["AppTelemetry", "add_arguments", "start"]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("telemetry and control")
    g.add_argument(
        "--telemetry-socket",
        metavar="PATH",
        help="telemetry socket (default: <runtime-dir>/app_socket.<pid>)",
    )
    g.add_argument(
        "--no-telemetry", action="store_true", help="no telemetry socket (options.no-metrics)"
    )
    g.add_argument("--cli-socket", metavar="PATH", help="serve the CLI on this Unix socket")
    g.add_argument(
        "--shell", action="store_true", help="interactive CLI on this terminal (quit stops)"
    )


@dataclass
class AppTelemetry:
    control: AppControl
    table: CommandTable
    tree: CliTree
    server: TelemetryServer | None = None
    cli: CliServer | None = None
    shell: LocalShell | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def socket_path(self) -> str | None:
        return self.server.path if self.server is not None else None

    def close(self) -> None:
        for part in (self.shell, self.cli, self.server):
            if part is not None:
                try:
                    part.close()
                except Exception:  # closing must go on: the other sockets must go too
                    log.exception("closing %s", type(part).__name__)
        self.shell = self.cli = self.server = None


def start(cfg, args, runtime, *, name: str, **info) -> AppTelemetry:
    """Build the control view of a started runtime and open what ``args`` ask for."""
    ctl = AppControl.from_config(cfg, name, runtime, **info)
    ctl.on_quit = lambda: runtime.stop_flag.__setitem__(0, 1)
    table = CommandTable()
    register_app_commands(table, ctl)
    tree = CliTree()
    add_app_commands(tree, ctl, table)
    tel = AppTelemetry(ctl, table, tree)
    try:
        disabled = getattr(args, "no_telemetry", False) or bool(cfg.option("no-metrics", False))
        path = getattr(args, "telemetry_socket", None)
        if not disabled:
            runtime_dir = getattr(args, "runtime_dir", None)
            srv = TelemetryServer(path or default_path(DEFAULT_NAME, runtime_dir), table=table)
            try:
                tel.server = srv.start()
            except TelemetryError as e:
                if path:
                    raise
                msg = f"no telemetry socket: {e}"
                tel.errors.append(msg)
                log.warning("%s", msg)
        cli_path = getattr(args, "cli_socket", None)
        if cli_path:
            tel.cli = CliServer(cli_path, tree).start()
        if getattr(args, "shell", False):
            tel.shell = LocalShell(tree, on_quit=ctl.quit).start()
    except BaseException:
        tel.close()
        raise
    return tel
