"""Kubernetes integration: the AF_XDP device-plugin UDS handshake (both sides) and the
pod-start configuration generator.

- :mod:`cndp.k8s.handshake` — protocol constants, request/reply parsing, and the client an
  unprivileged app uses to get the XSKMAP fd (xskdev ``uds_path``).
- :mod:`cndp.k8s.udsserver` — the device plugin's side: one SOCK_SEQPACKET server per pod.
- :mod:`cndp.k8s.jsonc_gen` — ``cndp-jsonc-gen``: writes the app's jsonc from AFXDP_DEVICES.
- :mod:`cndp.k8s.deviceplugin` — ``cndp-deviceplugin``: the kubelet device plugin (gRPC
  v1beta1) with its config (:mod:`~cndp.k8s.dp_config`), netdev discovery
  (:mod:`~cndp.k8s.discovery`) and PodResources client (:mod:`~cndp.k8s.podresources`);
  the generated gRPC modules are in :mod:`cndp.k8s.proto`.

Nothing is imported here, so xskdev can import the client without pulling in the server.
"""
