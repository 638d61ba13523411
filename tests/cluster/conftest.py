"""The cluster tier: tests against a real one-node Kubernetes cluster (scripts/k8s/node).

Not part of a plain ``pytest`` run (the first run builds Kubernetes, ~10 min): the files here
are collected only with ``PYCNDP_CLUSTER=1`` or a ``-m`` expression naming ``cluster``:

    PYCNDP_CLUSTER=1 .venv/bin/pytest -q tests/cluster          # what `make test-cluster` runs

Every test here is marked ``cluster`` and, like e2e tests, FAILS instead of skipping when not
run as root. The session brings the node up once (``cluster`` fixture) and always takes it
down again, also when a test or the start itself fails: ``scripts/k8s/node down`` stops every
process by pid, everything left in the node's mount namespace, and removes the state dir, the
CNI bridge and the netns files; a final check fails the session if any of it is still there.

Environment: ``PYCNDP_K8S_BIN`` (use these binaries instead of scripts/k8s/build-k8s),
``PYCNDP_K8S_CACHE`` (build-k8s's cache root, default /var/cache/pycndp-k8s),
``PYCNDP_K8S_KEEP=1`` (leave the node running after the session, for debugging; then
``scripts/k8s/node down --all``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .k8s import BUILD, NODE, POD_SUBNET, VENV, Cluster

HERE = Path(__file__).resolve().parent


def _enabled(config: pytest.Config) -> bool:
    if os.environ.get("PYCNDP_CLUSTER") == "1":
        return True
    expr = config.getoption("markexpr", "") or ""
    return "cluster" in expr and "not cluster" not in expr


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs root and a one-node Kubernetes cluster")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    ours = collection_path.parent == HERE and collection_path.name.startswith("test_")
    return True if ours and not _enabled(config) else None


# The first test's setup may build Kubernetes (~10 min cold) and start the node: it gets this
# pytest-timeout budget instead of the suite's per-test default.
FIRST_TEST_TIMEOUT = 3600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [it for it in items if HERE in Path(str(it.path)).resolve().parents]
    for item in ours:
        item.add_marker(pytest.mark.cluster)
    if ours:
        ours[0].add_marker(pytest.mark.timeout(FIRST_TEST_TIMEOUT))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cluster") is not None and os.geteuid() != 0:
        pytest.fail(
            "cluster tests need root (containerd, kubelet, network namespaces): run them as "
            "root, e.g. `sudo PYCNDP_CLUSTER=1 .venv/bin/pytest tests/cluster`.",
            pytrace=False,
        )


def _bindir() -> Path:
    if os.environ.get("PYCNDP_K8S_BIN"):
        return Path(os.environ["PYCNDP_K8S_BIN"])
    r = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=3600, check=False)
    if r.returncode != 0:
        pytest.fail(f"scripts/k8s/build-k8s failed:\n{r.stderr[-4000:]}", pytrace=False)
    return Path(r.stdout.strip().splitlines()[-1])


CNI_NETWORK = "pycndp-k8s"


def cni_options(state: Path, bindir: Path) -> list[str]:
    """`node up` options for pods' networking: Debian's bridge + host-local as the cluster
    network, then ``nad-delegate`` (our stand-in for Multus, see nad_delegate.py), which calls
    the project's ``afxdp`` CNI plugin for pods that name a NetworkAttachmentDefinition.
    Both run through small wrappers with this checkout's venv Python. ``@STATE@`` is the
    state dir (filled in by `node up`)."""
    extra = state / "cni-extra"
    extra.mkdir()
    wrappers = {
        "afxdp": f'exec {VENV}/bin/python -m cndp.k8s.cni "$@"',
        "nad-delegate": f'exec {VENV}/bin/python {HERE / "nad_delegate.py"} "$@"',
    }
    for name, line in wrappers.items():
        f = extra / name
        f.write_text(f"#!/bin/sh\n{line}\n")
        f.chmod(0o755)
    conflist = {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "pycndp-k8s0",
                "isGateway": False,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "dataDir": "@STATE@/cni/ipam",
                },
            },
            {
                "type": "nad-delegate",
                "kubectl": str(bindir / "kubectl"),
                "kubeconfig": "@STATE@/kubeconfig",
                "podResourcesSocket": "@STATE@/var-lib-kubelet/pod-resources/kubelet.sock",
                "cacheDir": "@STATE@/nad-delegate",
                "logFile": "@STATE@/logs/nad-delegate.log",
            },
        ],
    }
    (extra / "10-pycndp.conflist").write_text(json.dumps(conflist, indent=1))
    opts = ["--cni-conflist", str(extra / "10-pycndp.conflist")]
    for name in wrappers:
        opts += ["--cni-bin", str(extra / name)]
    return opts


def _netns_cni() -> set[str]:
    try:
        return {n for n in os.listdir("/run/netns") if n.startswith("cni-")}
    except FileNotFoundError:
        return set()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("the cluster tier needs root", pytrace=False)
    bindir = _bindir()
    state = Path(tempfile.mkdtemp(prefix="pycndp-k8s.", dir="/tmp"))
    netns_before = _netns_cni()
    up = subprocess.run(
        [str(NODE), "up", "--state", str(state), "--bin", str(bindir), *cni_options(state, bindir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    c = Cluster(state, bindir)
    try:
        if up.returncode != 0:
            pytest.fail(f"scripts/k8s/node up failed:\n{up.stderr[-6000:]}", pytrace=False)
        yield c
    finally:
        if os.environ.get("PYCNDP_K8S_KEEP") == "1" and up.returncode == 0:
            print(f"\nPYCNDP_K8S_KEEP=1: node left running, state {state}")
        else:
            down = subprocess.run(
                [str(NODE), "down", "--state", str(state)],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            left = []
            if down.returncode != 0:
                left.append(f"node down: {down.stderr.strip()}")
            if state.exists():
                left.append(f"state dir {state}")
            if os.path.exists("/sys/class/net/pycndp-k8s0"):
                left.append("bridge pycndp-k8s0")
            if _netns_cni() - netns_before:
                left.append(f"netns {sorted(_netns_cni() - netns_before)}")
            if left:
                pytest.fail("the cluster left things behind: " + "; ".join(left), pytrace=False)
