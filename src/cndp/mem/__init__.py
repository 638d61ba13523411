"""Packet memory: mmap allocation, UMEM and regions, mempools and packet vectors."""

from __future__ import annotations

from .mempool import Mempool
from .mmap import (
    ALLOWED_PAGE_NAMES,
    MmapRegion,
    PageType,
    default_page_type,
    mmap_alloc,
    name_by_page_type,
    page_type_by_name,
    set_default_page_type,
)
from .pktvec import FIELDS, PktVec, gather, mac_swap, scatter
from .umem import (
    DEFAULT_BUFCNT,
    DEFAULT_BUFSZ,
    MBUF_HDR_SIZE,
    PKTMBUF_HEADROOM,
    XDP_PKT_HEADROOM,
    Region,
    Umem,
    validate_bufsz,
)

__all__ = [
    "ALLOWED_PAGE_NAMES",
    "DEFAULT_BUFCNT",
    "DEFAULT_BUFSZ",
    "FIELDS",
    "MBUF_HDR_SIZE",
    "PKTMBUF_HEADROOM",
    "XDP_PKT_HEADROOM",
    "Mempool",
    "MmapRegion",
    "PageType",
    "PktVec",
    "Region",
    "Umem",
    "default_page_type",
    "gather",
    "mac_swap",
    "mmap_alloc",
    "name_by_page_type",
    "page_type_by_name",
    "scatter",
    "set_default_page_type",
    "validate_bufsz",
]
