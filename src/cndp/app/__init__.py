"""Application framework: CNDP's jsonc configuration (this package's :mod:`.config`), and the
runtime built on it.

The configuration API most callers need::

    from cndp.app import load
    cfg = load("fwd.jsonc")            # Config; raises ConfigError (with file:line) if invalid
    cfg.lports["eth0:0"].qid           # 11
    cfg.lport_xsk_config("eth0:0")     # cndp.xskdev.xskdev.XskConfig
"""

from __future__ import annotations

from .config import (
    Config,
    ConfigFileError,
    Host,
    LcoreGroup,
    LportConfig,
    LportFlag,
    LportGroupConfig,
    Section,
    StaticHost,
    ThreadConfig,
    UmemConfig,
    load,
    load_socket,
    loads,
    register_decoder,
    unregister_decoder,
)
from .jsonc import JsoncError

__all__ = [
    "Config",
    "ConfigFileError",
    "Host",
    "JsoncError",
    "LcoreGroup",
    "LportConfig",
    "LportFlag",
    "LportGroupConfig",
    "Section",
    "StaticHost",
    "ThreadConfig",
    "UmemConfig",
    "load",
    "load_socket",
    "loads",
    "register_decoder",
    "unregister_decoder",
]
