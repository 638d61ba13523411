"""cndp.mem.mmap and cndp.sys.mman: allocation, hugepage fallback, naming, sharing."""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from cndp.errors import ConfigError, MemoryError_
from cndp.mem import mmap as mm
from cndp.mem.mmap import (
    MmapRegion,
    PageType,
    mmap_alloc,
    name_by_page_type,
    page_type_by_name,
    set_default_page_type,
)
from cndp.sys import mman

KB4 = 4096
MB2 = 2 << 20
GB1 = 1 << 30


def free_hugepages(kb: int) -> int:
    p = Path(f"/sys/kernel/mm/hugepages/hugepages-{kb}kB/free_hugepages")
    try:
        return int(p.read_text())
    except (OSError, ValueError):
        return 0


def meminfo_free_hugepages() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def round_up(n: int, a: int) -> int:
    return -(-n // a) * a


@pytest.fixture(autouse=True)
def _restore_default():
    saved = mm.default_page_type()
    yield
    set_default_page_type(saved)


def fallback_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "cndp.mem" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("size", [1, 16, 1024, 2048, 4096, 7168])
def test_alloc_free_4k(size, caplog):
    caplog.set_level(logging.WARNING, logger="cndp.mem")
    r = mmap_alloc(1, size, PageType.PAGE_4K)
    try:
        assert isinstance(r, MmapRegion)
        assert r.size == round_up(size, KB4)
        assert r.page_type is PageType.PAGE_4K
        assert r.requested_page_type is PageType.PAGE_4K
        assert (r.bufcnt, r.bufsz) == (1, size)
        assert r.addr % KB4 == 0
        assert r.array.dtype == np.uint8 and r.array.size == r.size
        assert r.array.ctypes.data == r.addr  # a view, not a copy
        assert not r.array.any()  # anonymous memory starts zeroed
        r.array[:] = 0xA5
        assert (r.array == 0xA5).all()
        assert not fallback_warnings(caplog)
    finally:
        r.close()
    assert r.closed
    r.close()  # idempotent


@pytest.mark.parametrize("size", [1, KB4, MB2, MB2 + 1])
def test_alloc_2m_with_fallback(size, caplog):
    caplog.set_level(logging.WARNING, logger="cndp.mem")
    with mmap_alloc(1, size, "2MB") as r:
        assert r.requested_page_type is PageType.PAGE_2M
        if r.page_type is PageType.PAGE_2M:  # the machine has free 2 MiB hugepages
            assert r.size == round_up(size, MB2)
            assert not fallback_warnings(caplog)
        else:
            assert r.page_type is PageType.PAGE_4K
            assert r.size == round_up(size, KB4)
            (msg,) = fallback_warnings(caplog)
            assert "2MB" in msg
            assert "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages" in msg
        r.array[-1] = 7
        assert r.array[-1] == 7


@pytest.mark.parametrize("size", [1, KB4, MB2, MB2 + 1, 16 << 20])
def test_alloc_1g_with_fallback(size, caplog):
    caplog.set_level(logging.WARNING, logger="cndp.mem")
    with mmap_alloc(1, size, PageType.PAGE_1G) as r:
        assert r.requested_page_type is PageType.PAGE_1G
        assert r.size == round_up(size, r.page_type.size)
        warns = fallback_warnings(caplog)
        # One warning per fallback step: 1GB -> 2MB -> 4KB.
        expected_steps = {PageType.PAGE_1G: 0, PageType.PAGE_2M: 1, PageType.PAGE_4K: 2}
        assert len(warns) == expected_steps[r.page_type]
        if warns:
            assert "1GB" in warns[0] and "hugepages-1048576kB" in warns[0]
        if len(warns) == 2:
            assert "2MB" in warns[1] and "hugepages-2048kB" in warns[1]
        r.array[0] = 1


def test_real_2m_hugepage(caplog, hugepages_2m):
    caplog.set_level(logging.WARNING, logger="cndp.mem")
    with mmap_alloc(1, 4096, PageType.PAGE_2M) as r:
        assert r.page_type is PageType.PAGE_2M
        assert r.size == MB2
        assert r.addr % MB2 == 0
        r.array[:] = 3
        assert r.array.sum() == 3 * MB2
    assert not fallback_warnings(caplog)


def test_default_page_type_is_4k():
    assert PageType.DEFAULT.size == KB4
    with mmap_alloc(4, 1024) as r:
        assert r.page_type is PageType.PAGE_4K
        assert r.size == KB4


def test_page_sizes():
    assert PageType.PAGE_4K.size == 4096
    assert PageType.PAGE_2M.size == 2 * 1024 * 1024
    assert PageType.PAGE_1G.size == 1024 * 1024 * 1024


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("default", PageType.PAGE_4K),
        ("4KB", PageType.PAGE_4K),
        ("2MB", PageType.PAGE_2M),
        ("1GB", PageType.PAGE_1G),
        ("4kb", PageType.PAGE_4K),
        ("2mb", PageType.PAGE_2M),
        ("1Gb", PageType.PAGE_1G),
        ("DEFAULT", PageType.PAGE_4K),
    ],
)
def test_page_type_by_name(name, expected):
    assert page_type_by_name(name) is expected


@pytest.mark.parametrize("bad", ["", "3MB", "huge", "4K", None, 4096])
def test_page_type_by_bad_name(bad):
    with pytest.raises(ConfigError) as ei:
        page_type_by_name(bad)
    msg = str(ei.value)
    for allowed in ("default", "4KB", "2MB", "1GB"):
        assert allowed in msg


def test_name_by_page_type():
    assert name_by_page_type(PageType.PAGE_4K) == "4KB"
    assert name_by_page_type(PageType.PAGE_2M) == "2MB"
    assert name_by_page_type(PageType.PAGE_1G) == "1GB"
    assert name_by_page_type(PageType.DEFAULT) == "4KB"


def test_set_default_page_type():
    set_default_page_type("2MB")
    assert PageType.DEFAULT.size == MB2
    assert page_type_by_name("default") is PageType.PAGE_2M
    assert name_by_page_type(PageType.DEFAULT) == "2MB"
    set_default_page_type(PageType.PAGE_1G)
    assert PageType.DEFAULT.resolve() is PageType.PAGE_1G
    set_default_page_type(PageType.DEFAULT)  # resolving DEFAULT to itself: a no-op
    assert PageType.DEFAULT.resolve() is PageType.PAGE_1G
    set_default_page_type("4kb")
    assert PageType.DEFAULT.size == KB4
    with pytest.raises(ConfigError):
        set_default_page_type("8MB")


def test_default_resolves_at_alloc_time(caplog):
    caplog.set_level(logging.WARNING, logger="cndp.mem")
    set_default_page_type("2MB")
    with mmap_alloc(1, 100) as r:
        assert r.requested_page_type is PageType.PAGE_2M
        assert r.page_type in (PageType.PAGE_2M, PageType.PAGE_4K)


def test_addr_at_offset():
    with mmap_alloc(2, KB4, PageType.PAGE_4K) as r:
        assert r.size == 2 * KB4
        assert r.addr_at_offset(0) == r.addr
        assert r.addr_at_offset(KB4) == r.addr + KB4
        assert r.addr_at_offset(2 * KB4 - 1) == r.addr + 2 * KB4 - 1
        assert r.addr_at_offset(2 * KB4) is None  # CNDP returns a pointer here; we do not
        assert r.addr_at_offset(2 * KB4 + 1) is None
        assert r.addr_at_offset(-1) is None
    assert r.addr_at_offset(0) is None  # closed


@pytest.mark.parametrize(
    ("bufcnt", "bufsz"), [(0, 2048), (-1, 2048), (16, 0), (16, -64), (True, 64), ("4", 64)]
)
def test_bad_counts(bufcnt, bufsz):
    with pytest.raises(ConfigError) as ei:
        mmap_alloc(bufcnt, bufsz)
    assert "positive" in str(ei.value)


def test_bad_page_type_arg():
    with pytest.raises(ConfigError):
        mmap_alloc(1, 64, "3MB")
    with pytest.raises(ConfigError):
        mmap_alloc(1, 64, 4096)  # type: ignore[arg-type]


def test_impossible_size_raises_memory_error():
    with pytest.raises(MemoryError_) as ei:
        mmap_alloc(1 << 30, 1 << 30, PageType.PAGE_4K)  # 1 EiB
    assert ei.value.errno is not None
    assert "bufcnt" in str(ei.value)


def test_shared_across_fork():
    with mmap_alloc(4, KB4) as r:
        r.array[:16] = 1
        pid = os.fork()
        if pid == 0:  # child
            try:
                ok = r.array[0] == 1
                r.array[100:200] = np.arange(100, dtype=np.uint8)
                r.array[-1] = 0x5A
            finally:
                os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert (r.array[100:200] == np.arange(100, dtype=np.uint8)).all()
        assert r.array[-1] == 0x5A


def test_private_not_shared_across_fork():
    with mmap_alloc(1, KB4, shared=False) as r:
        pid = os.fork()
        if pid == 0:
            r.array[0] = 9
            os._exit(0)
        os.waitpid(pid, 0)
        assert r.array[0] == 0


def test_views_keep_region_alive():
    r = mmap_alloc(1, KB4)
    view = r.array[10:20]
    del r
    gc.collect()
    view[:] = 4  # would crash if the mapping had been unmapped
    assert view.sum() == 40


def test_as_uint8_array_aliases_memory():
    addr = mman.mmap_anon(KB4)
    try:
        a = mman.as_uint8_array(addr, KB4)
        b = mman.as_uint8_array(addr + 8, 8)
        a[8:16] = 42
        assert (b == 42).all()
        assert a.flags.writeable and not a.flags.owndata
    finally:
        mman.munmap(addr, KB4)


def test_mmap_anon_errors():
    with pytest.raises(OSError):
        mman.mmap_anon(1 << 62)
    with pytest.raises(ValueError):
        mman.mmap_anon(0)
