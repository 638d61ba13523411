"""Building single reference frames (slow path: templates for generators and tests)."""

from __future__ import annotations

import ipaddress
import struct

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_UDP = 17

BENCH_NET4 = ipaddress.ip_network("198.18.0.0/15")
BENCH_NET6 = ipaddress.ip_network("fd00:198:18::/48")


def mac_bytes(mac: str | bytes) -> bytes:
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"a MAC address has 6 bytes, not {len(mac)}")
        return mac
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"{mac!r} is not a MAC address (expected aa:bb:cc:dd:ee:ff)")
    return bytes(int(p, 16) for p in parts)


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def checksum16(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def check_bench_address(addr: str) -> None:
    """Refuse addresses outside the benchmarking ranges (our traffic must stay in them)."""
    ip = ipaddress.ip_address(addr)
    net = BENCH_NET4 if ip.version == 4 else BENCH_NET6
    if ip not in net:
        raise ValueError(
            f"{addr} is outside {net}: pycndp's generators only send to the "
            "benchmarking ranges 198.18.0.0/15 and fd00:198:18::/48"
        )


def udp4_frame(
    src_mac: str | bytes,
    dst_mac: str | bytes,
    src_ip: str = "198.18.0.1",
    dst_ip: str = "198.18.0.2",
    sport: int = 9,
    dport: int = 9,
    size: int = 60,
    ttl: int = 64,
    payload: bytes | None = None,
) -> bytes:
    """An Ethernet/IPv4/UDP frame of ``size`` bytes (without FCS) with valid checksums.

    The default is CNDP's tx-only frame: 60 bytes, 198.18.0.1 -> 198.18.0.2, UDP 9 -> 9.
    """
    check_bench_address(src_ip)
    check_bench_address(dst_ip)
    hdr = 14 + 20 + 8
    if size < hdr:
        raise ValueError(f"a UDP/IPv4 frame needs at least {hdr} bytes, not {size}")
    plen = size - hdr
    if payload is None:
        payload = bytes(i & 0xFF for i in range(plen))
    payload = payload[:plen].ljust(plen, b"\0")
    src = ipaddress.IPv4Address(src_ip).packed
    dst = ipaddress.IPv4Address(dst_ip).packed
    ulen = 8 + plen
    pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_UDP, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    ucsum = checksum16(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", ucsum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0, ttl, IPPROTO_UDP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum16(ip)) + ip[12:]
    eth = mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ETH_P_IP)
    return eth + ip + udp
