"""Telemetry and control of a running application.

- :mod:`.registry`: counters in shared memory, written by the workers without locks or
  syscalls, read by the control side as snapshots.
- :mod:`.uds`: CNDP's telemetry socket (SOCK_SEQPACKET, JSON replies, command groups).
- :mod:`.app`: what an application exposes (threads, ports, pause/resume) and CNDP's
  ``app`` and ``metrics`` command groups built on it.
- :mod:`.cli`: the ``CNDP-cli:/>`` shell, on a local terminal or a SOCK_STREAM socket.
- :mod:`.cnectl`: the client of both sockets (``cnectl``).
- :mod:`.logs`: structured logging (JSON lines when stderr is not a terminal), log level at
  run time.

This package imports nothing heavy at import time: the runtime (``cndp.app.runtime``) uses
the registry, so the registry must stay a leaf module (numpy only).
"""
