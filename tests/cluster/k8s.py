"""Driving the cluster tier's one-node Kubernetes cluster from tests.

:class:`Cluster` wraps ``scripts/k8s/node`` (which starts and stops the node) and the node's
kubectl. Manifests are built as Python dicts and sent as JSON, so no YAML library is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NODE = REPO / "scripts" / "k8s" / "node"
BUILD = REPO / "scripts" / "k8s" / "build-k8s"
NODE_NAME = "localhost"
BASE_IMAGE = "localhost/pycndp-k8s-base:1"
POD_SUBNET = "198.19.200.0/24"
VENV = REPO / ".venv"


class ClusterError(AssertionError):
    """A cluster step failed; the message carries kubectl's output."""


class Cluster:
    """A running node: its state dir, kubeconfig and binaries."""

    def __init__(self, state: Path, bindir: Path):
        self.state = Path(state)
        self.bin = Path(bindir)
        self.kubeconfig = self.state / "kubeconfig"
        self.env = {
            "PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.state / "home"),  # kubectl's discovery cache stays in the state
            "KUBECONFIG": str(self.kubeconfig),
        }

    # -- node

    def node(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(NODE), *args, "--state", str(self.state)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def node_exec(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        """Run ``cmd`` in the node's mount namespace (where kubelet and containerd run)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.node_cmd(cmd), check=False, **kw)

    def node_cmd(self, cmd: list[str]) -> list[str]:
        holder = self.pid("holder")
        return ["nsenter", f"--mount=/proc/{holder}/ns/mnt", "--", *cmd]

    def pid(self, name: str) -> int:
        pid, _start = (self.state / "pids" / f"{name}.pid").read_text().split()
        return int(pid)

    def log(self, name: str) -> str:
        return (self.state / "logs" / f"{name}.log").read_text(errors="replace")

    @property
    def kubelet_dir(self) -> Path:
        """/var/lib/kubelet of the node, as the host sees it."""
        return self.state / "var-lib-kubelet"

    def restart_kubelet(self) -> None:
        r = self.node("restart-kubelet", timeout=120)
        if r.returncode != 0:
            raise ClusterError(f"restart-kubelet failed:\n{r.stderr}")

    # -- kubectl

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [str(self.bin / "kubectl"), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and r.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
        return r

    def get(self, kind: str, name: str = "", *, namespace: str = "default") -> dict[str, Any]:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if kind not in ("node", "nodes", "ns", "namespace", "crd"):
            args += ["-n", namespace]
        return json.loads(self.kubectl(*args).stdout)

    def apply(
        self, *objs: dict[str, Any], dry_run: str | None = None
    ) -> subprocess.CompletedProcess:
        doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)})
        args = ["apply", "-f", "-"] + ([f"--dry-run={dry_run}"] if dry_run else [])
        return self.kubectl(*args, input=doc)

    def delete_pod(self, name: str, *, namespace: str = "default", timeout: float = 90) -> None:
        """Delete and wait until the pod object is gone (kubelet tore the sandbox down)."""
        self.kubectl(
            "delete",
            "pod",
            name,
            "-n",
            namespace,
            "--wait=true",
            f"--timeout={int(timeout)}s",
            "--ignore-not-found",
            timeout=timeout + 10,
        )

    def node_obj(self) -> dict[str, Any]:
        return self.get("node", NODE_NAME)

    def allocatable(self, resource: str) -> str | None:
        return self.node_obj()["status"].get("allocatable", {}).get(resource)

    def pod(self, name: str, *, namespace: str = "default") -> dict[str, Any]:
        return self.get("pod", name, namespace=namespace)

    def wait_pod_phase(
        self, name: str, phases: tuple[str, ...], *, namespace: str = "default", timeout: float = 90
    ) -> dict[str, Any]:
        return wait_for(
            f"pod {name} in {phases}",
            lambda: (
                (p := self.pod(name, namespace=namespace))["status"].get("phase") in phases and p
            ),
            timeout,
            on_fail=lambda: self.describe(name, namespace),
        )

    def wait_pod_ready(self, name: str, *, namespace: str = "default", timeout: float = 90) -> dict:
        def ready():
            p = self.pod(name, namespace=namespace)
            conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
            if p["status"].get("phase") in ("Failed", "Succeeded"):
                raise ClusterError(f"pod {name} ended: {self.describe(name, namespace)}")
            return conds.get("Ready") == "True" and p

        return wait_for(
            f"pod {name} Ready", ready, timeout, on_fail=lambda: self.describe(name, namespace)
        )

    def logs(self, name: str, *, container: str | None = None, namespace: str = "default") -> str:
        args = ["logs", name, "-n", namespace] + (["-c", container] if container else [])
        return self.kubectl(*args).stdout

    def events(self, name: str, *, namespace: str = "default") -> list[str]:
        ev = json.loads(
            self.kubectl(
                "get",
                "events",
                "-n",
                namespace,
                "--field-selector",
                f"involvedObject.name={name}",
                "-o",
                "json",
            ).stdout
        )
        return [f"{e.get('reason')}: {e.get('message')}" for e in ev["items"]]

    def describe(self, name: str, namespace: str = "default") -> str:
        r = self.kubectl("describe", "pod", name, "-n", namespace, check=False)
        return r.stdout + r.stderr

    def container_pid(self, pod: str, *, namespace: str = "default") -> int:
        """The host pid of the pod's first container's main process (via containerd)."""
        cid = self.pod(pod, namespace=namespace)["status"]["containerStatuses"][0]["containerID"]
        cid = cid.split("://", 1)[1]
        r = subprocess.run(
            [
                "ctr",
                "-a",
                str(self.state / "ctrd" / "containerd.sock"),
                "-n",
                "k8s.io",
                "tasks",
                "ls",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        for line in r.stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == cid:
                return int(fields[1])
        raise ClusterError(f"no running task for container {cid} of pod {pod}")


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float,
    *,
    interval: float = 0.5,
    on_fail: Callable[[], str] | None = None,
) -> Any:
    """Poll ``probe`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_err: Exception | None = None
    while True:
        try:
            got = probe()
            if got:
                return got
        except ClusterError:
            raise
        except Exception as e:  # a transient kubectl/API failure: retry until the deadline
            last_err = e
        if time.monotonic() > deadline:
            extra = on_fail() if on_fail else ""
            raise ClusterError(
                f"{what}: not reached in {timeout:.0f} s"
                + (f" (last error: {last_err})" if last_err else "")
                + (f"\n{extra}" if extra else "")
            )
        time.sleep(interval)


# -- manifests


def host_python_volumes() -> tuple[list[dict], list[dict]]:
    """Volumes and mounts that give a base-image container the host's Python runtime and
    this checkout (with its .venv) read-only, at the same paths as on the host, so that the
    venv's absolute paths resolve. See docs/k8s-cluster-tests.md for why."""
    paths = ["/usr", sys.base_prefix, str(REPO)]  # base_prefix: the venv's Python (pyenv?)
    paths = [
        p
        for i, p in enumerate(paths)
        if not any(p.startswith(q + "/") or p == q for q in paths[:i])
    ]
    vols = [
        {"name": f"host{i}", "hostPath": {"path": p, "type": "Directory"}}
        for i, p in enumerate(paths)
    ]
    mounts = [{"name": f"host{i}", "mountPath": p, "readOnly": True} for i, p in enumerate(paths)]
    return vols, mounts


def python_env() -> list[dict]:
    return [
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "PATH", "value": f"{VENV}/bin:/bin:/usr/bin"},
    ]


def pod(
    name: str,
    command: list[str],
    *,
    python: bool = False,
    limits: dict[str, str] | None = None,
    restart: str = "Never",
    security: dict | None = None,
    annotations: dict[str, str] | None = None,
    extra: dict | None = None,
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": "c",
        "image": BASE_IMAGE,
        "imagePullPolicy": "Never",
        "command": command,
    }
    spec: dict[str, Any] = {
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 2,
        "containers": [c],
        "automountServiceAccountToken": False,
    }
    if python:
        vols, mounts = host_python_volumes()
        spec["volumes"] = vols
        c["volumeMounts"] = mounts
        c["env"] = python_env()
    if limits:
        c["resources"] = {"limits": limits}
    if security:
        c["securityContext"] = security
    if extra:
        for k, v in extra.items():
            spec[k] = v
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def env_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(x.split("=", 1) for x in raw.decode(errors="replace").split("\0") if "=" in x)


def netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino
