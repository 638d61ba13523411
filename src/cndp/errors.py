"""Errors raised by pycndp.

Every error a user can cause names what is wrong and how to fix it. Errors carry the
``errno`` of the failing syscall (when there is one) so callers can branch on it.
"""

from __future__ import annotations


class CndpError(Exception):
    """Base class of every error pycndp raises on purpose."""

    def __init__(self, message: str, *, errno: int | None = None, fix: str | None = None):
        self.errno = errno
        self.fix = fix
        text = message if not fix else f"{message} (fix: {fix})"
        super().__init__(text)


class ConfigError(CndpError):
    """A value given by the user is invalid (ring size, frame size, queue id, ...)."""


class PrivilegeError(CndpError):
    """The process lacks a capability it needs (CAP_NET_ADMIN, CAP_BPF, CAP_IPC_LOCK ...)."""


class NetdevError(CndpError):
    """A network device does not exist or cannot do what was asked."""


class BpfError(CndpError):
    """The bpf() syscall failed."""


class VerifierError(BpfError):
    """The kernel verifier refused a program; ``log`` holds the verifier's log."""

    def __init__(self, message: str, *, log: str, errno: int | None = None):
        self.log = log
        super().__init__(f"{message}\n--- verifier log ---\n{log.rstrip()}", errno=errno)


class XdpAttachError(CndpError):
    """Attaching or detaching an XDP program failed."""


class XdpBusyError(XdpAttachError):
    """Another XDP program (not loaded by us) is attached to the interface."""


class XskError(CndpError):
    """Creating, binding or using an AF_XDP socket failed."""


class MemoryError_(CndpError):
    """Allocating or registering packet memory failed."""


class PoolExhausted(CndpError):
    """A mempool has fewer free buffers than asked for."""
