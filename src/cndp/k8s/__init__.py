"""Kubernetes integration: the AF_XDP device-plugin UDS handshake (both sides) and the
pod-start configuration generator.

- :mod:`cndp.k8s.handshake` — protocol constants, request/reply parsing, and the client an
  unprivileged app uses to get the XSKMAP fd (xskdev ``uds_path``).
- :mod:`cndp.k8s.udsserver` — the device plugin's side: one SOCK_SEQPACKET server per pod.
- :mod:`cndp.k8s.jsonc_gen` — ``cndp-jsonc-gen``: writes the app's jsonc from AFXDP_DEVICES.

Nothing is imported here, so xskdev can import the client without pulling in the server.
"""
