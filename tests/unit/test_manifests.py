"""Offline checks of the Kubernetes manifests and the Dockerfile in deploy/.

- Core kinds against the JSON schemas derived from Kubernetes' OpenAPI (PyPI
  kubernetes-validate), strict: an unknown field is an error. Checked for the oldest and the
  newest Kubernetes version the package knows.
- The NetworkAttachmentDefinition against its CRD schema (the NPWG/Multus CRD: spec.config
  is a string), then spec.config as JSON and through the afxdp plugin's own config parser
  with the deviceID Multus adds.
- The device plugin's config.json through its parser; references between the objects (names,
  namespaces, volumes, the resource, the network); the commands the containers run exist.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cndp.k8s import cni, dp_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))
K8S_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())

# The NetworkAttachmentDefinition CRD's schema as the NPWG spec (and Multus' deployment)
# defines it: spec.config is a string holding the CNI config. additionalProperties false on
# spec: the CRD has no other spec field, so anything else would be a typo.
NAD_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "k8s.cni.cncf.io/v1"},
        "kind": {"const": "NetworkAttachmentDefinition"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "properties": {"config": {"type": "string"}},
            "additionalProperties": False,
        },
    },
}


def _docs() -> list[tuple[Path, dict]]:
    out = []
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path, doc))
    return out


DOCS = _docs()


def _one(kind: str, name: str | None = None) -> dict:
    found = [d for _, d in DOCS if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/, found {len(found)}"
    return found[0]


def _pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"] if doc["kind"] == "DaemonSet" else doc["spec"]


def _containers(doc: dict) -> list[dict]:
    spec = _pod_spec(doc)
    return spec.get("initContainers", []) + spec["containers"]


def test_every_manifest_is_here():
    kinds = sorted((d["kind"], d["metadata"]["name"]) for _, d in DOCS)
    assert kinds == [
        ("ConfigMap", "cndp-afxdp-config"),
        ("DaemonSet", "cndp-afxdp"),
        ("Namespace", "cndp-system"),
        ("NetworkAttachmentDefinition", "afxdp-network"),
        ("Pod", "cndp-0"),
        ("ServiceAccount", "cndp-afxdp"),
    ]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    "path,doc",
    [(p, d) for p, d in DOCS if d["kind"] != "NetworkAttachmentDefinition"],
    ids=lambda x: x.name if isinstance(x, Path) else x["kind"],
)
def test_core_kinds_validate_strictly(path, doc, version):
    kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_can_fail():
    """The validator really is strict: a misspelt field and a wrong type are refused."""
    ds = copy.deepcopy(_one("DaemonSet"))
    ds["spec"]["template"]["spec"]["containers"][0]["volumeMountz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, K8S_VERSIONS[-1], strict=True)
    pod = copy.deepcopy(_one("Pod"))
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = "no"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S_VERSIONS[-1], strict=True)


# ---------------------------------------------------------------------------------------------
# the NetworkAttachmentDefinition


def test_nad_against_its_crd_schema():
    nad = _one("NetworkAttachmentDefinition")
    jsonschema.validate(nad, NAD_SCHEMA)
    bad = copy.deepcopy(nad)
    bad["spec"]["config"] = json.loads(nad["spec"]["config"])  # a map, not a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, NAD_SCHEMA)


def test_nad_config_is_json_our_plugin_accepts():
    nad = _one("NetworkAttachmentDefinition")
    text = nad["spec"]["config"]
    config = json.loads(text)  # JSON, not YAML or JSON with comments (the upstream example)
    assert config["type"] == cni.PLUGIN_TYPE
    assert config["name"] == nad["metadata"]["name"]
    assert config["cniVersion"] in cni.SUPPORTED_VERSIONS
    # Multus adds the allocated netdev as deviceID before it runs the plugin
    conf = cni.parse_config(dict(config, deviceID="ens785f0"), "ADD")
    assert conf.mode == "primary" and conf.ipam_type == "host-local"
    assert [c.render("ens785f0", "198.18.0.10") for c in conf.ethtool_cmds] == [
        ["-X", "ens785f0", "equal", "4"],
        ["-N", "ens785f0", "flow-type", "udp4", "dst-ip", "198.18.0.10", "action", "4"],
    ]
    # without it the plugin says what is missing
    with pytest.raises(cni.CniError, match="deviceID is missing"):
        cni.parse_config(config, "ADD")


def test_nad_steers_to_the_queue_cndp_jsonc_gen_uses():
    from cndp.k8s import jsonc_gen

    config = json.loads(_one("NetworkAttachmentDefinition")["spec"]["config"])
    actions = [re.search(r"action (\d+)", c) for c in config["ethtoolCmds"]]
    assert [int(m.group(1)) for m in actions if m] == [jsonc_gen.DEFAULT_QID]


# ---------------------------------------------------------------------------------------------
# the pieces fit together


def test_device_plugin_config_parses():
    cm = _one("ConfigMap", "cndp-afxdp-config")
    cfg = dp_config.parse_config(cm["data"]["config.json"], "configmap config.json")
    assert [p.name for p in cfg.pools] == ["myPool"]


def test_resource_network_and_names_match():
    cm = _one("ConfigMap", "cndp-afxdp-config")
    pools = json.loads(cm["data"]["config.json"])["pools"]
    resource = f"{dp_config.RESOURCE_PREFIX}/{pools[0]['name']}"
    nad = _one("NetworkAttachmentDefinition")
    assert nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"] == resource
    pod = _one("Pod")
    assert (
        pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == (nad["metadata"]["name"])
    )
    assert pod["metadata"]["namespace"] == nad["metadata"]["namespace"]
    app = pod["spec"]["containers"][0]
    assert app["resources"]["limits"][resource] == app["resources"]["requests"][resource] == "1"
    ds, sa, ns = _one("DaemonSet"), _one("ServiceAccount"), _one("Namespace")
    assert ds["metadata"]["namespace"] == sa["metadata"]["namespace"] == ns["metadata"]["name"]
    assert cm["metadata"]["namespace"] == ns["metadata"]["name"]
    spec = _pod_spec(ds)
    assert spec["serviceAccountName"] == sa["metadata"]["name"]
    cms = [v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v]
    assert cms == [cm["metadata"]["name"]]


@pytest.mark.parametrize("kind", ["DaemonSet", "Pod"])
def test_every_mount_has_its_volume(kind):
    doc = _one(kind)
    volumes = {v["name"] for v in _pod_spec(doc)["volumes"]}
    mounted = {m["name"] for c in _containers(doc) for m in c.get("volumeMounts", [])}
    assert mounted == volumes


def test_cni_container_sees_the_host_paths_at_the_same_paths():
    """The shim's processes live in this container's mount namespace but act on the host:
    CNI_NETNS, CNI_PATH, IPAM data and the plugin's state must resolve to the host's."""
    ds = _one("DaemonSet")
    spec = _pod_spec(ds)
    assert spec["hostNetwork"] and spec["hostPID"]
    (cni_c,) = [c for c in spec["containers"] if c["name"] == "cni"]
    host = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    mounts = {m["mountPath"]: host[m["name"]] for m in cni_c["volumeMounts"]}
    for path in ("/opt/cni/bin", "/var/run/netns", "/var/lib/cni", "/run/cndp"):
        assert mounts.get(path) == path
    netns = next(m for m in cni_c["volumeMounts"] if m["mountPath"] == "/var/run/netns")
    assert netns["mountPropagation"] == "HostToContainer"  # pods' namespaces made later
    cmd = cni_c["command"]
    assert cmd[:3] == ["python3", "-m", "cndp.k8s.cni_install"]
    assert cmd[cmd.index("--pid-file") + 1].startswith("/run/cndp/")


def test_app_pod_is_unprivileged_and_shares_the_telemetry_dir():
    pod = _one("Pod")
    app, exporter = pod["spec"]["containers"]
    for c in (app, exporter):
        sc = c["securityContext"]
        assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
    assert sorted(app["securityContext"]["capabilities"]["add"]) == ["IPC_LOCK", "NET_RAW"]
    assert "add" not in exporter["securityContext"]["capabilities"]
    (vol,) = [v for v in pod["spec"]["volumes"] if "emptyDir" in v]
    for c in (app, exporter):
        assert {"name": vol["name"], "mountPath": "/var/run/cndp"} in c["volumeMounts"]
    port = exporter["ports"][0]["containerPort"]
    listen = exporter["command"][exporter["command"].index("--listen") + 1]
    assert listen == f"0.0.0.0:{port}"
    assert exporter["readinessProbe"]["httpGet"]["path"] == "/metrics"
    hp = app["resources"]["limits"]["hugepages-2Mi"]
    assert app["resources"]["requests"]["hugepages-2Mi"] == hp  # Kubernetes requires equal


def _commands() -> set[str]:
    """The programs the containers start: the first word of a command, and each program of
    a `sh -c` line."""
    names = set()
    for _, doc in DOCS:
        if doc["kind"] not in ("DaemonSet", "Pod"):
            continue
        for c in _containers(doc):
            argv = c.get("command", []) + c.get("args", [])
            if argv[:2] == ["/bin/sh", "-c"]:
                for part in re.split(r"&&|;|\|\|", argv[2]):
                    words = part.split()
                    names.add(words[1] if words[0] == "exec" else words[0])
            else:
                names.add(argv[0])
    return names


def test_container_commands_are_installed_by_the_image():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    used = _commands() - {"python3"}
    assert used == {"cndp-deviceplugin", "cndp-exporter", "cndp-jsonc-gen", "cndpfwd"}
    missing = sorted(used - set(scripts))
    assert not missing, f"pyproject.toml [project.scripts] lacks {missing}"
    for name in used:
        module, func = scripts[name].split(":")
        assert callable(getattr(__import__(module, fromlist=[func]), func))


def test_dockerfile_installs_the_project():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim-bookworm$", text, re.M)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for item in src.split():
            assert (REPO / item).exists(), f"Dockerfile copies {item}, which is not in the repo"
    assert "pip install --no-cache-dir ." in text
    assert "ethtool" in text  # the CNI plugin's ethtoolCmds run inside the image
    (checked,) = re.findall(r'python3 -c "import ([^"]+)"', text)
    for module in (m.strip() for m in checked.split(",")):
        __import__(module)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert "*" in ignore and {"!pyproject.toml", "!README.md", "!src/"} <= set(ignore)
