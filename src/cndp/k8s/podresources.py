"""Client of the kubelet's PodResources API (v1) over its Unix socket.

``PodResourcesClient(path)()`` calls ``/v1.PodResourcesLister/List`` and returns the pods
as :class:`cndp.k8s.udsserver.PodResources` records — the ``lookup`` that
:class:`~cndp.k8s.udsserver.PodResourcesValidator` and the device plugin's reaper take.
A failed call raises :class:`PodResourcesError` (the handshake then answers ``/error``,
``/host_nak``). The kubelet serves it on /var/lib/kubelet/pod-resources/kubelet.sock; every
kubelet since 1.20 implements ``List``.
"""

from __future__ import annotations

import os

import grpc

from ..errors import CndpError
from .proto import podresources_v1_pb2 as pb
from .proto import podresources_v1_pb2_grpc as pbg
from .udsserver import ContainerDevices, PodResources

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"


class PodResourcesError(CndpError):
    """The kubelet's PodResources API could not be asked."""


def to_records(resp: pb.ListPodResourcesResponse) -> list[PodResources]:
    out = []
    for p in resp.pod_resources:
        containers = []
        for c in p.containers:
            devs: dict[str, list[str]] = {}
            for d in c.devices:  # a resource may come in several entries (one per NUMA node)
                devs.setdefault(d.resource_name, []).extend(d.device_ids)
            containers.append(ContainerDevices(c.name, {k: tuple(v) for k, v in devs.items()}))
        out.append(PodResources(p.name, p.namespace, tuple(containers)))
    return out


class PodResourcesClient:
    """``client()`` / ``client.list()``: the pods on this node with their devices."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, *, timeout: float = 5.0):
        self.socket_path = os.path.abspath(socket_path)
        self.timeout = timeout

    def list(self) -> list[PodResources]:
        # A channel per call: the kubelet may have restarted (new socket) since the last one,
        # and calls are rare (a handshake, a reaper tick).
        try:
            with grpc.insecure_channel("unix://" + self.socket_path) as ch:
                resp = pbg.PodResourcesListerStub(ch).List(
                    pb.ListPodResourcesRequest(), timeout=self.timeout
                )
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            details = e.details() if hasattr(e, "details") else str(e)
            raise PodResourcesError(
                f"PodResources List on {self.socket_path} failed: "
                f"{code.name if code else 'error'}: {details}",
                fix="the device plugin needs the kubelet's pod-resources socket "
                "(mount /var/lib/kubelet/pod-resources; --pod-resources-socket)",
            ) from None
        return to_records(resp)

    __call__ = list
