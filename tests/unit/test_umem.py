"""cndp.mem.umem: frame-size rule, regions, frame addresses."""

from __future__ import annotations

import numpy as np
import pytest

from cndp.errors import ConfigError
from cndp.mem import umem as um
from cndp.mem.mmap import PageType
from cndp.mem.umem import Region, Umem, validate_bufsz


def test_layout_constants():
    assert um.MBUF_HDR_SIZE == 64
    assert um.XDP_PKT_HEADROOM == 256
    assert um.PKTMBUF_HEADROOM == 192 == um.XDP_PKT_HEADROOM - um.MBUF_HDR_SIZE
    assert um.DEFAULT_BUFSZ == 2048
    assert um.DEFAULT_BUFCNT == 16384


# CNDP's umem test table for the buffer size rule.
@pytest.mark.parametrize("bufsz", [8, 9, 32, 1000, 1500, 2000, 2144, 6000, 0, -64])
def test_bufsz_rejected(bufsz):
    with pytest.raises(ConfigError) as ei:
        validate_bufsz(bufsz)
    assert "multiple of 64" in str(ei.value)
    with pytest.raises(ConfigError):
        Umem(16, bufsz)


@pytest.mark.parametrize("bufsz", [64, 128, 2048, 2176, 8192, 6016])
def test_bufsz_accepted(bufsz):
    assert validate_bufsz(bufsz) == bufsz
    with Umem(16, bufsz) as u:
        assert u.bufsz == bufsz
        assert u.size == 16 * bufsz
        assert u.data.size == 16 * bufsz
        assert u.mem.size >= u.size


def test_defaults():
    with Umem() as u:
        assert (u.bufcnt, u.bufsz) == (16384, 2048)
        assert u.size == 16384 * 2048
        assert u.name == "umem0"
        assert u.page_type is PageType.PAGE_4K
        assert u.regions == [Region(0, 0, 16384, 0, 16384 * 2048)]


def test_golden_fwd_jsonc_umem():
    # fwd.jsonc: "umem0": {"bufcnt": 32, "bufsz": 2, "mtype": "2MB", "regions": [16, 16]}
    # (counts in units of 1024 buffers, sizes in KiB).
    with Umem(32768, 2048, "2MB", regions=[16384, 16384]) as u:
        assert u.size == 32768 * 2048
        assert len(u.regions) == 2
        r0, r1 = u.regions
        assert r0 == Region(index=0, first=0, bufcnt=16384, offset=0, size=16384 * 2048)
        assert r1 == Region(
            index=1, first=16384, bufcnt=16384, offset=16384 * 2048, size=16384 * 2048
        )
        assert u.region(1) is r1
        assert u.page_type in (PageType.PAGE_2M, PageType.PAGE_4K)  # 4K when no hugepages


@pytest.mark.parametrize(
    "regions", [[10, 9], [21], [5, 5, 5, 4], [0, 20], [-1, 21], [], [10.0, 10.0], [True, 19]]
)
def test_regions_must_sum_and_be_positive(regions):
    with pytest.raises(ConfigError) as ei:
        Umem(20, 2048, regions=regions)
    assert "region" in str(ei.value)


def test_region_layout_three():
    with Umem(100, 4096, regions=[10, 30, 60]) as u:
        assert [(r.first, r.bufcnt, r.offset, r.size) for r in u.regions] == [
            (0, 10, 0, 10 * 4096),
            (10, 30, 10 * 4096, 30 * 4096),
            (40, 60, 40 * 4096, 60 * 4096),
        ]


def test_bad_region_index():
    with Umem(8, 2048, regions=[4, 4]) as u:
        for bad in (2, -1, "0", None):
            with pytest.raises(ConfigError) as ei:
                u.region(bad)
            assert "0..1" in str(ei.value)
        with pytest.raises(ConfigError):
            u.frame_addrs(5)


@pytest.mark.parametrize("bufcnt", [0, -5, True, 2.5])
def test_bad_bufcnt(bufcnt):
    with pytest.raises(ConfigError):
        Umem(bufcnt, 2048)


def test_frame_addrs():
    with Umem(48, 2048, regions=[16, 32]) as u:
        allf = u.frame_addrs()
        assert allf.dtype == np.uint64
        assert (allf == np.arange(48, dtype=np.uint64) * 2048).all()
        r0 = u.frame_addrs(0)
        r1 = u.frame_addrs(1)
        assert (r0 == allf[:16]).all()
        assert (r1 == allf[16:]).all()
        assert int(r1[0]) == u.region(1).offset
        assert int(r1[-1]) + u.bufsz == u.size  # last frame ends at the registered length


def test_data_view_and_addr():
    with Umem(16, 2048) as u:
        assert u.data.ctypes.data == u.addr == u.mem.addr
        u.data[u.frame_addrs().astype(np.intp)] = 0xEE
        assert u.mem.array[2048] == 0xEE


def test_close_idempotent():
    u = Umem(16, 2048)
    u.close()
    assert u.closed
    u.close()


def test_repr_and_name():
    with Umem(16, 2048, name="umemX") as u:
        assert "umemX" in repr(u)
