"""pktdev: logical ports (lports) over port drivers, behind one burst interface.

``port_setup(PortConfig(name, pmd, ...))`` returns a started :class:`Port`; see
``cndp.pktdev.port`` for the interface and ``docs/pktdev.md`` for each driver. The module-level
functions mirror CNDP's pktdev API by lport id (``rx_burst(lport, pv, n)``, ``stats_get``...).
"""

from __future__ import annotations

from typing import Any

from .port import (
    MAX_ETHPORTS,
    PKTDEV_ADMIN_STATE_DOWN,
    STAT_KEYS,
    Offloads,
    Port,
    PortConfig,
    PortError,
    PortInfo,
    close_all,
    get_port,
    get_port_by_name,
    info,
    is_valid_port,
    known_pmds,
    parse_pmd,
    port_count,
    port_name,
    port_setup,
    ports,
    register_driver,
)

__all__ = [
    "MAX_ETHPORTS",
    "PKTDEV_ADMIN_STATE_DOWN",
    "STAT_KEYS",
    "Offloads",
    "Port",
    "PortConfig",
    "PortError",
    "PortInfo",
    "admin_state",
    "admin_state_set",
    "buf_alloc",
    "close",
    "close_all",
    "get_port",
    "get_port_by_name",
    "info",
    "is_valid_port",
    "known_pmds",
    "macaddr_get",
    "offloads_get",
    "parse_pmd",
    "port_count",
    "port_name",
    "port_setup",
    "ports",
    "register_driver",
    "rx_burst",
    "start",
    "stats_get",
    "stats_reset",
    "stop",
    "tx_burst",
]


# CNDP-style calls by lport id (thin: the Port methods are the real API) ---------------------


def rx_burst(lport: int, pv: Any, n: int | None = None) -> int:
    return get_port(lport).rx_burst(pv, n)


def tx_burst(lport: int, pv: Any, n: int | None = None) -> int:
    return get_port(lport).tx_burst(pv, n)


def admin_state(lport: int) -> bool:
    """False for a port that is down or does not exist (pktdev_admin_state)."""
    try:
        return get_port(lport).admin_state
    except PortError:
        return False


def admin_state_set(lport: int, up: bool) -> None:
    get_port(lport).set_admin_state(up)


def start(lport: int) -> None:
    get_port(lport).start()


def stop(lport: int) -> None:
    get_port(lport).stop()


def close(lport: int) -> None:
    get_port(lport).close()


def stats_get(lport: int) -> dict[str, int]:
    return get_port(lport).stats()


def stats_reset(lport: int) -> None:
    get_port(lport).reset_stats()


def macaddr_get(lport: int) -> bytes:
    return get_port(lport).mac


def offloads_get(lport: int) -> Offloads:
    return get_port(lport).offloads()


def buf_alloc(lport: int, pv: Any, n: int) -> int:
    return get_port(lport).buf_alloc(pv, n)
