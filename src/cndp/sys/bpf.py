"""Thin typed wrappers over the bpf() syscall.

Only what pycndp needs: maps (create/update/lookup/delete/iterate), program load with the
verifier log, pin/get on bpffs, object info, links and BPF_PROG_RUN (used by the live-frames
traffic generator). ``bpf_attr`` is packed by hand with ``struct`` so no headers are needed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import os
import struct
from dataclasses import dataclass

from ..errors import BpfError, PrivilegeError, VerifierError
from .libc import libc

NR_BPF = 321  # x86-64

# commands
MAP_CREATE = 0
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
MAP_DELETE_ELEM = 3
MAP_GET_NEXT_KEY = 4
PROG_LOAD = 5
OBJ_PIN = 6
OBJ_GET = 7
PROG_TEST_RUN = 10
PROG_GET_NEXT_ID = 11
MAP_GET_NEXT_ID = 12
PROG_GET_FD_BY_ID = 13
MAP_GET_FD_BY_ID = 14
OBJ_GET_INFO_BY_FD = 15
LINK_CREATE = 28
LINK_DETACH = 34

# map types
MAP_TYPE_HASH = 1
MAP_TYPE_ARRAY = 2
MAP_TYPE_PERCPU_ARRAY = 6
MAP_TYPE_DEVMAP = 14
MAP_TYPE_XSKMAP = 17

# program types / attach types
PROG_TYPE_XDP = 6
ATTACH_XDP = 37

# map update flags
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

# BPF_PROG_TEST_RUN flags
F_TEST_RUN_ON_CPU = 1 << 0
F_TEST_XDP_LIVE_FRAMES = 1 << 1

_ATTR_SIZE = 128


def _encode_name(name: str) -> bytes:
    raw = name.encode()[:15]
    return raw + b"\0" * (16 - len(raw))


def _privilege_hint(err: int, what: str) -> None:
    if err in (_errno.EPERM, _errno.EACCES):
        raise PrivilegeError(
            f"{what}: permission denied",
            errno=err,
            fix="run as root, or grant CAP_BPF + CAP_NET_ADMIN; an unprivileged app gets the "
            "XSKMAP from the device plugin (uds_path) or a pinned map (xsk_pin_path)",
        )


def sys_bpf(cmd: int, attr: bytes | bytearray, what: str = "bpf") -> tuple[int, bytes]:
    """Issue bpf(cmd, attr). Returns (result, attr-after) and raises BpfError on failure."""
    buf = ctypes.create_string_buffer(bytes(attr).ljust(_ATTR_SIZE, b"\0"), _ATTR_SIZE)
    ret = libc.syscall(NR_BPF, ctypes.c_int(cmd), buf, ctypes.c_uint(_ATTR_SIZE))
    if ret < 0:
        err = ctypes.get_errno()
        _privilege_hint(err, what)
        raise BpfError(f"{what} failed: {os.strerror(err)}", errno=err)
    return ret, buf.raw


def map_create(
    map_type: int, key_size: int, value_size: int, max_entries: int, name: str = "", flags: int = 0
) -> int:
    attr = struct.pack(
        "IIIIIII16s", map_type, key_size, value_size, max_entries, flags, 0, 0, _encode_name(name)
    )
    fd, _ = sys_bpf(MAP_CREATE, attr, f"creating BPF map {name or map_type!r}")
    return fd


def _elem(cmd: int, fd: int, key: bytes, value: ctypes.Array | None, flags: int, what: str) -> int:
    kbuf = ctypes.create_string_buffer(key, len(key))
    vaddr = ctypes.addressof(value) if value is not None else 0
    attr = struct.pack("IIQQQ", fd, 0, ctypes.addressof(kbuf), vaddr, flags)
    ret, _ = sys_bpf(cmd, attr, what)
    return ret


def map_update(fd: int, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
    vbuf = ctypes.create_string_buffer(value, len(value))
    _elem(MAP_UPDATE_ELEM, fd, key, vbuf, flags, "updating BPF map element")


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """Return the value, or None when the key is absent."""
    vbuf = ctypes.create_string_buffer(value_size)
    try:
        _elem(MAP_LOOKUP_ELEM, fd, key, vbuf, 0, "looking up BPF map element")
    except BpfError as e:
        if e.errno == _errno.ENOENT:
            return None
        raise
    return vbuf.raw


def map_delete(fd: int, key: bytes) -> bool:
    """Delete a key; False when it was not there."""
    try:
        _elem(MAP_DELETE_ELEM, fd, key, None, 0, "deleting BPF map element")
    except BpfError as e:
        if e.errno == _errno.ENOENT:
            return False
        raise
    return True


def map_keys(fd: int, key_size: int) -> list[bytes]:
    """All keys of a map, by BPF_MAP_GET_NEXT_KEY."""
    keys: list[bytes] = []
    nbuf = ctypes.create_string_buffer(key_size)
    prev: bytes | None = None
    while True:
        kaddr = 0
        if prev is not None:
            kbuf = ctypes.create_string_buffer(prev, key_size)
            kaddr = ctypes.addressof(kbuf)
        attr = struct.pack("IIQQQ", fd, 0, kaddr, ctypes.addressof(nbuf), 0)
        try:
            sys_bpf(MAP_GET_NEXT_KEY, attr, "iterating BPF map")
        except BpfError as e:
            if e.errno == _errno.ENOENT:
                return keys
            raise
        prev = nbuf.raw
        keys.append(prev)


def prog_load(
    prog_type: int,
    insns: bytes,
    *,
    name: str = "",
    license: str = "GPL",
    expected_attach_type: int = 0,
    log_size: int = 1 << 20,
) -> int:
    """Load a program. On refusal raise VerifierError carrying the verifier log."""
    lic = ctypes.create_string_buffer(license.encode())
    code = ctypes.create_string_buffer(insns, len(insns))

    def attempt(level: int, size: int) -> tuple[int, int, ctypes.Array]:
        log = ctypes.create_string_buffer(size) if size else ctypes.create_string_buffer(1)
        attr = struct.pack(
            "IIQQIIQII16sII",
            prog_type,
            len(insns) // 8,
            ctypes.addressof(code),
            ctypes.addressof(lic),
            level,
            size,
            ctypes.addressof(log) if size else 0,
            0,
            0,
            _encode_name(name),
            0,
            expected_attach_type,
        )
        buf = ctypes.create_string_buffer(attr.ljust(_ATTR_SIZE, b"\0"), _ATTR_SIZE)
        ret = libc.syscall(NR_BPF, ctypes.c_int(PROG_LOAD), buf, ctypes.c_uint(_ATTR_SIZE))
        return ret, ctypes.get_errno() if ret < 0 else 0, log

    fd, err, _ = attempt(0, 0)
    if fd >= 0:
        return fd
    if err == _errno.EPERM:  # EACCES here is the verifier's refusal, not privilege
        _privilege_hint(err, f"loading BPF program {name!r}")
    # Retry with the log on, so the error says why the verifier refused it.
    fd, err2, log = attempt(1, log_size)
    if fd >= 0:
        return fd
    text = log.value.decode(errors="replace")
    if text:
        raise VerifierError(
            f"the kernel refused BPF program {name!r}: {os.strerror(err2)}", log=text, errno=err2
        )
    raise BpfError(f"loading BPF program {name!r} failed: {os.strerror(err2)}", errno=err2)


def obj_pin(fd: int, path: str) -> None:
    p = ctypes.create_string_buffer(path.encode())
    attr = struct.pack("QII", ctypes.addressof(p), fd, 0)
    sys_bpf(OBJ_PIN, attr, f"pinning BPF object at {path}")


def obj_get(path: str, *, read_only: bool = False) -> int:
    p = ctypes.create_string_buffer(path.encode())
    flags = 1 << 3 if read_only else 0  # BPF_F_RDONLY
    attr = struct.pack("QII", ctypes.addressof(p), 0, flags)
    try:
        fd, _ = sys_bpf(OBJ_GET, attr, f"opening pinned BPF object {path}")
    except BpfError as e:
        if e.errno == _errno.ENOENT:
            raise BpfError(
                f"no pinned BPF object at {path}",
                errno=e.errno,
                fix="check xsk_pin_path and that the bpffs is mounted there",
            ) from None
        raise
    return fd


def _info(fd: int, size: int) -> bytes:
    info = ctypes.create_string_buffer(size)
    attr = struct.pack("IIQ", fd, size, ctypes.addressof(info))
    sys_bpf(OBJ_GET_INFO_BY_FD, attr, "reading BPF object info")
    return info.raw


@dataclass(frozen=True)
class ProgInfo:
    id: int
    type: int
    name: str
    tag: str
    map_ids: tuple[int, ...]


@dataclass(frozen=True)
class MapInfo:
    id: int
    type: int
    key_size: int
    value_size: int
    max_entries: int
    name: str


def prog_info(fd: int) -> ProgInfo:
    # First read the counts, then again with room for the map ids.
    raw = _info(fd, 80)
    nr_maps = struct.unpack_from("I", raw, 52)[0]
    ids = ctypes.create_string_buffer(4 * max(nr_maps, 1))
    info = ctypes.create_string_buffer(80)
    struct.pack_into("I", info, 52, nr_maps)
    struct.pack_into("Q", info, 56, ctypes.addressof(ids))
    attr = struct.pack("IIQ", fd, 80, ctypes.addressof(info))
    sys_bpf(OBJ_GET_INFO_BY_FD, attr, "reading BPF program info")
    raw = info.raw
    ptype, pid = struct.unpack_from("II", raw, 0)
    tag = raw[8:16].hex()
    name = raw[64:80].split(b"\0", 1)[0].decode(errors="replace")
    map_ids = struct.unpack_from(f"{nr_maps}I", ids.raw, 0) if nr_maps else ()
    return ProgInfo(pid, ptype, name, tag, tuple(map_ids))


def map_info(fd: int) -> MapInfo:
    raw = _info(fd, 40)
    mtype, mid, ks, vs, me, _flags = struct.unpack_from("IIIIII", raw, 0)
    name = raw[24:40].split(b"\0", 1)[0].decode(errors="replace")
    return MapInfo(mid, mtype, ks, vs, me, name)


def prog_fd_by_id(prog_id: int) -> int:
    fd, _ = sys_bpf(
        PROG_GET_FD_BY_ID, struct.pack("III", prog_id, 0, 0), f"opening BPF program id {prog_id}"
    )
    return fd


def map_fd_by_id(map_id: int) -> int:
    fd, _ = sys_bpf(
        MAP_GET_FD_BY_ID, struct.pack("III", map_id, 0, 0), f"opening BPF map id {map_id}"
    )
    return fd


def link_create(prog_fd: int, target_ifindex: int, attach_type: int, flags: int = 0) -> int:
    attr = struct.pack("IIII", prog_fd, target_ifindex, attach_type, flags)
    fd, _ = sys_bpf(LINK_CREATE, attr, "creating BPF link")
    return fd


def link_detach(link_fd: int) -> None:
    sys_bpf(LINK_DETACH, struct.pack("I", link_fd), "detaching BPF link")


@dataclass
class TestRunResult:
    retval: int
    duration_ns: int
    data_out: bytes


def prog_test_run(
    prog_fd: int,
    data: bytes,
    *,
    repeat: int = 1,
    ctx: bytes | None = None,
    flags: int = 0,
    batch_size: int = 0,
    cpu: int = 0,
    data_out_size: int = 0,
) -> TestRunResult:
    """BPF_PROG_RUN. With F_TEST_XDP_LIVE_FRAMES the frames really leave the device."""
    din = ctypes.create_string_buffer(data, len(data))
    dout = ctypes.create_string_buffer(max(data_out_size, 1))
    cin = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    attr = struct.pack(
        "IIIIQQIIIIQQIII",
        prog_fd,
        0,
        len(data),
        data_out_size,
        ctypes.addressof(din),
        ctypes.addressof(dout) if data_out_size else 0,
        repeat,
        0,
        len(ctx) if ctx else 0,
        0,
        ctypes.addressof(cin) if cin is not None else 0,
        0,
        flags,
        cpu,
        batch_size,
    )
    _, out = sys_bpf(PROG_TEST_RUN, attr, "running BPF program (BPF_PROG_RUN)")
    (retval,) = struct.unpack_from("I", out, 4)
    (size_out,) = struct.unpack_from("I", out, 12)
    (duration,) = struct.unpack_from("I", out, 36)
    return TestRunResult(retval, duration, dout.raw[:size_out] if data_out_size else b"")


def close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
