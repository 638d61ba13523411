"""The one-node cluster itself: Debian-built components, pods through CRI and CNI, the host's
Python in a pod, CNI DEL on pod deletion, and server-side manifest validation."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .k8s import POD_SUBNET, REPO, VENV, Cluster, ClusterError, pod, wait_for

# kubelet 1.20's setupKernelTunables: what it writes when a value differs
KUBELET_WANTS = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}


def test_node_is_ready_with_the_debian_built_components(cluster: Cluster):
    info = cluster.node_obj()["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.20.2"
    assert info["containerRuntimeVersion"].startswith("containerd://1.6.")
    assert cluster.kubectl("version", "-o", "json").stdout
    server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert server["gitVersion"] == "v1.20.2"
    conds = {c["type"]: c["status"] for c in cluster.node_obj()["status"]["conditions"]}
    assert conds["Ready"] == "True"


def test_kubelet_sysctls_land_in_the_stand_ins_not_on_the_host(cluster: Cluster):
    """kubelet sets kernel.panic_on_oops=1 etc. at start; the node's mount namespace gives it
    plain files instead, so the shared machine's kernel settings never change."""
    meta = json.loads((cluster.state / "node.json").read_text())
    for name, want in KUBELET_WANTS.items():
        fake = (cluster.state / "sysctl" / name.replace("/", ".")).read_text().strip()
        assert fake == want, f"kubelet did not write {name} (stand-in holds {fake})"
        host = Path("/proc/sys", name).read_text().strip()
        assert host == meta["host_sysctls"][name], f"host {name} changed to {host}"


def test_a_busybox_pod_runs_with_a_pod_address_and_its_logs_reach_kubectl(cluster: Cluster):
    name = "bb-hello"
    cluster.apply(
        pod(name, ["/bin/sh", "-c", "echo hello-from-$(hostname); ip -4 -o addr show eth0"])
    )
    try:
        p = cluster.wait_pod_phase(name, ("Succeeded", "Failed"))
        assert p["status"]["phase"] == "Succeeded", cluster.describe(name)
        out = cluster.logs(name)
        assert f"hello-from-{name}" in out
        prefix = POD_SUBNET.rsplit(".", 1)[0] + "."
        assert f"inet {prefix}" in out, out
        assert p["status"]["podIP"].startswith(prefix)
    finally:
        cluster.delete_pod(name)


def test_the_hosts_python_and_this_checkout_run_in_a_pod(cluster: Cluster):
    """The pod runtime the tier uses for our code: base image + read-only hostPath /usr and
    the repository (with .venv) at the same paths."""
    import numpy

    name = "py-check"
    code = (
        "import os, sys, numpy, cndp.k8s.handshake as h; "
        "print('PY', numpy.__version__, os.path.dirname(h.__file__), os.getuid(), flush=True)"
    )
    cluster.apply(pod(name, [f"{VENV}/bin/python", "-c", code], python=True))
    try:
        p = cluster.wait_pod_phase(name, ("Succeeded", "Failed"), timeout=120)
        out = cluster.logs(name)
        assert p["status"]["phase"] == "Succeeded", out + cluster.describe(name)
        words = next(ln for ln in out.splitlines() if ln.startswith("PY ")).split()
        assert words[1] == numpy.__version__
        assert words[2] == str(REPO / "src" / "cndp" / "k8s")
    finally:
        cluster.delete_pod(name)


def _ipam_files(cluster: Cluster) -> set[str]:
    d = cluster.state / "cni" / "ipam" / "pycndp-k8s"
    return {f for f in os.listdir(d) if f[0].isdigit()} if d.exists() else set()


def _bridge_ports() -> set[str]:
    d = "/sys/class/net/pycndp-k8s0/brif"
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def test_pod_deletion_runs_cni_del_and_leaves_nothing(cluster: Cluster):
    name = "bb-del"
    cluster.apply(pod(name, ["/bin/sh", "-c", "sleep 3600"]))
    try:
        p = cluster.wait_pod_ready(name)
        ip = p["status"]["podIP"]
        pid = cluster.container_pid(name)
        netns_ino = os.stat(f"/proc/{pid}/ns/net").st_ino
        assert ip in _ipam_files(cluster)
        ports = _bridge_ports()
        assert ports, "the pod's veth is not on the bridge"
        results = cluster.state / "var-lib-cni" / "results"
        cached = {f for f in os.listdir(results) if f.startswith("pycndp-k8s-")}
        assert cached, "libcni cached no ADD result"
    finally:
        cluster.delete_pod(name)
    # DEL went through bridge and host-local: the address is free, the veth and the
    # result cache entry are gone, and no process holds the pod's netns any more.
    wait_for("IPAM release", lambda: ip not in _ipam_files(cluster), 30)
    wait_for("veth removal", lambda: not _bridge_ports(), 30)
    assert not {f for f in os.listdir(results) if f.startswith("pycndp-k8s-")}

    # The pod's own processes (its pause and sleep) must be gone. Other processes are not
    # checked by inode alone: once the netns is freed its inode number can be reused at once
    # by a namespace someone else creates.
    def holders() -> list[str]:
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.stat(f"/proc/{d}/ns/net").st_ino != netns_ino:
                    continue
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ")
            except OSError:
                continue
            if d == str(pid) or b"sleep 3600" in cmd or b"pause" in cmd:
                out.append(f"{d} {cmd.decode(errors='replace').strip()}")
        return out

    wait_for("the pod's processes to exit", lambda: not holders(), 30)


# -- manifests against the real apiserver

NAD_CRD = json.loads((REPO / "scripts" / "k8s" / "nad-crd.json").read_text())


@pytest.fixture(scope="module")
def nad_crd(cluster: Cluster) -> None:
    """The NetworkAttachmentDefinition CRD (Multus's group, version and schema shape: spec.config
    is a string), so NADs validate server-side."""
    cluster.apply(NAD_CRD)
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/network-attachment-definitions.k8s.cni.cncf.io",
    )


def server_dry_run(cluster: Cluster, path: Path) -> subprocess.CompletedProcess:
    """`scripts/k8s/node validate path`: NAD CRD, the namespaces the file names, then
    `kubectl apply --dry-run=server -f path`."""
    return cluster.node("validate", str(path), timeout=120)


DAEMONSET = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "dry", "namespace": "kube-system"},
    "spec": {
        "selector": {"matchLabels": {"app": "dry"}},
        "template": {
            "metadata": {"labels": {"app": "dry"}},
            "spec": {"containers": [{"name": "c", "image": "localhost/x:1"}]},
        },
    },
}


def test_server_dry_run_accepts_a_valid_object_without_storing_it(cluster: Cluster):
    r = cluster.apply(DAEMONSET, dry_run="server")
    assert "daemonset.apps/dry created (server dry run)" in r.stdout
    got = cluster.kubectl("get", "ds", "dry", "-n", "kube-system", check=False)
    assert got.returncode != 0 and "NotFound" in got.stderr


def test_server_dry_run_rejects_what_the_apiserver_rejects(cluster: Cluster, tmp_path: Path):
    # unknown field: kubectl validates against the apiserver's own OpenAPI document
    bad = json.loads(json.dumps(DAEMONSET))
    bad["spec"]["template"]["spec"]["containers"][0]["volumeMountz"] = []
    f = tmp_path / "unknown.json"
    f.write_text(json.dumps(bad))
    r = cluster.kubectl("apply", "--dry-run=server", "-f", str(f), check=False)
    assert r.returncode != 0 and 'unknown field "volumeMountz"' in r.stderr
    # semantic validation, done by the apiserver: the selector must match the template
    bad = json.loads(json.dumps(DAEMONSET))
    bad["spec"]["selector"]["matchLabels"]["app"] = "other"
    f.write_text(json.dumps(bad))
    r = cluster.kubectl("apply", "--dry-run=server", "-f", str(f), check=False)
    assert r.returncode != 0 and "selector` does not match template `labels`" in r.stderr


def test_server_dry_run_checks_nads_against_the_crd_schema(cluster: Cluster, nad_crd, tmp_path):
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "dry-run-nad", "namespace": "default"},
        "spec": {"config": json.dumps({"cniVersion": "0.4.0", "type": "afxdp", "mode": "primary"})},
    }
    f = tmp_path / "nad.json"
    f.write_text(json.dumps(nad))
    r = server_dry_run(cluster, f)
    assert r.returncode == 0 and "created (server dry run)" in r.stdout, r.stderr
    nad["spec"]["config"] = {"type": "afxdp"}  # an object where the CRD says string
    f.write_text(json.dumps(nad))
    r = cluster.kubectl("apply", "--dry-run=server", "--validate=false", "-f", str(f), check=False)
    assert r.returncode != 0 and "spec.config" in r.stderr, r.stderr


DEPLOY = REPO / "deploy"


def _deploy_manifests() -> list[Path]:
    return sorted(p for ext in ("*.yaml", "*.yml") for p in DEPLOY.rglob(ext))


@pytest.mark.parametrize(
    "path", _deploy_manifests() or [DEPLOY / "(no manifests)"], ids=lambda p: p.name
)
def test_deploy_manifests_pass_server_dry_run(cluster: Cluster, nad_crd, path: Path):
    if not path.exists():
        raise ClusterError(f"no manifests under {DEPLOY}")
    r = server_dry_run(cluster, path)
    assert r.returncode == 0, f"{path}:\n{r.stdout}{r.stderr}"
    assert "(server dry run)" in r.stdout
