"""``nad-delegate``: the part of Multus the cluster tier needs, as a chained CNI plugin.

Multus is in no registry this project may use, yet the ``afxdp`` CNI plugin is meant to be
called by it: Multus reads the pod's ``k8s.v1.cni.cncf.io/networks`` annotation, fetches each
NetworkAttachmentDefinition, asks the kubelet which devices of the NAD's
``k8s.v1.cni.cncf.io/resourceName`` the pod holds, and calls the NAD's plugin with the NAD's
config plus ``"deviceID"``, on interface ``net1``, ``net2``... This stand-in does exactly that
(and only that), chained after the cluster network (bridge) in containerd's conflist, so that
the real ``afxdp`` plugin runs through the real CRI path: containerd's ADD on sandbox
creation, DEL on teardown, with the pod's real netns.

Plugin config keys (besides the CNI ones): ``kubectl``, ``kubeconfig``,
``podResourcesSocket``, ``cacheDir`` (per sandbox: the delegate configs ADD used, for DEL),
``logFile`` (one JSON line per call: command, pod, delegates and their exit codes).

What it does not do (Multus does): the JSON form of the networks annotation, namespaces
other than the pod's for NADs, per-network interface names and IPs from the annotation,
the network-status annotation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

NETWORKS = "k8s.v1.cni.cncf.io/networks"
RESOURCE = "k8s.v1.cni.cncf.io/resourceName"
VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]


class CniFail(Exception):
    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def cni_args(env: dict[str, str]) -> dict[str, str]:
    out = {}
    for kv in env.get("CNI_ARGS", "").split(";"):
        if "=" in kv:
            k, v = kv.split("=", 1)
            out[k] = v
    return out


def kubectl_json(conf: dict, *args: str) -> dict:
    r = subprocess.run(
        [conf["kubectl"], "--kubeconfig", conf["kubeconfig"], *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"HOME": conf["cacheDir"], "PATH": "/usr/bin:/bin"},
        check=False,
    )
    if r.returncode != 0:
        raise CniFail(11, f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def pod_devices(conf: dict, ns: str, name: str) -> dict[str, list[str]]:
    """resource -> device IDs the kubelet allocated to the pod (all containers)."""
    from cndp.k8s.podresources import PodResourcesClient  # slow import: only when needed

    out: dict[str, list[str]] = {}
    for p in PodResourcesClient(conf["podResourcesSocket"])():
        if p.name == name and p.namespace == ns:
            for c in p.containers:
                for res, ids in c.devices.items():
                    out.setdefault(res, []).extend(ids)
    return out


def run_delegate(conf: dict, env: dict[str, str], command: str, dconf: dict, ifname: str):
    ptype = dconf.get("type", "")
    path = next(
        (
            os.path.join(d, ptype)
            for d in env.get("CNI_PATH", "").split(":")
            if d and os.access(os.path.join(d, ptype), os.X_OK)
        ),
        None,
    )
    if path is None:
        raise CniFail(7, f"delegate plugin {ptype!r} not found in CNI_PATH")
    denv = {**env, "CNI_COMMAND": command, "CNI_IFNAME": ifname}
    r = subprocess.run(
        [path],
        input=json.dumps(dconf),
        capture_output=True,
        text=True,
        env=denv,
        timeout=60,
        check=False,
    )
    return r.returncode, r.stdout, r.stderr


def cache_file(conf: dict, cid: str) -> Path:
    return Path(conf["cacheDir"]) / f"{cid}.json"


def log(conf: dict, entry: dict) -> None:
    if conf.get("logFile"):
        with open(conf["logFile"], "a") as f:
            f.write(json.dumps({"time": time.time(), **entry}) + "\n")


def cmd_add(conf: dict, env: dict[str, str]) -> dict:
    prev = conf.get("prevResult") or {}
    args = cni_args(env)
    ns, name = args.get("K8S_POD_NAMESPACE"), args.get("K8S_POD_NAME")
    cid = env["CNI_CONTAINERID"]
    entry: dict = {"command": "ADD", "pod": f"{ns}/{name}", "cid": cid, "delegates": []}
    if not ns or not name:
        log(conf, entry)
        return prev
    pod = kubectl_json(conf, "get", "pod", name, "-n", ns)
    nets = [n.strip() for n in pod["metadata"].get("annotations", {}).get(NETWORKS, "").split(",")]
    nets = [n for n in nets if n]
    devices = pod_devices(conf, ns, name) if nets else {}
    done: list[dict] = []
    try:
        for i, net in enumerate(nets, 1):
            nad = kubectl_json(conf, "get", "network-attachment-definitions", net, "-n", ns)
            dconf = json.loads(nad["spec"]["config"])
            dconf.setdefault("name", net)
            dconf.setdefault("cniVersion", conf.get("cniVersion", "0.4.0"))
            res = nad["metadata"].get("annotations", {}).get(RESOURCE)
            if res:
                ids = devices.get(res) or []
                if not ids:
                    raise CniFail(11, f"pod {ns}/{name} holds no {res} device for {net}")
                dconf["deviceID"] = ids.pop(0)
            ifname = f"net{i}"
            rc, out, err = run_delegate(conf, env, "ADD", dconf, ifname)
            entry["delegates"].append(
                {"nad": net, "ifname": ifname, "rc": rc, "deviceID": dconf.get("deviceID")}
            )
            if rc != 0:
                raise CniFail(11, f"delegate {dconf['type']} ADD for {net} failed", out + err)
            done.append({"conf": dconf, "ifname": ifname, "result": json.loads(out or "{}")})
    except BaseException:
        for d in reversed(done):  # undo what was added, as Multus does
            run_delegate(conf, env, "DEL", d["conf"], d["ifname"])
        log(conf, entry)
        raise
    if done:
        Path(conf["cacheDir"]).mkdir(parents=True, exist_ok=True)
        cache_file(conf, cid).write_text(json.dumps(done))
    log(conf, entry)
    return prev


def cmd_del(conf: dict, env: dict[str, str]) -> None:
    cid = env.get("CNI_CONTAINERID", "")
    f = cache_file(conf, cid)
    entry: dict = {"command": "DEL", "cid": cid, "netns": env.get("CNI_NETNS", ""), "delegates": []}
    if not f.exists():  # nothing of ours (or a repeated DEL): success, as the spec asks
        log(conf, entry)
        return
    failed = []
    for d in reversed(json.loads(f.read_text())):
        rc, out, err = run_delegate(conf, env, "DEL", d["conf"], d["ifname"])
        entry["delegates"].append(
            {"ifname": d["ifname"], "rc": rc, "deviceID": d["conf"].get("deviceID")}
        )
        if rc != 0:
            failed.append(f"{d['conf'].get('type')} DEL on {d['ifname']}: {out}{err}")
    log(conf, entry)
    if failed:
        raise CniFail(11, "delegate DEL failed", "; ".join(failed))
    f.unlink()


def cmd_check(conf: dict, env: dict[str, str]) -> None:
    f = cache_file(conf, env.get("CNI_CONTAINERID", ""))
    if not f.exists():
        return
    for d in json.loads(f.read_text()):
        dconf = {**d["conf"], "prevResult": d["result"]}
        rc, out, err = run_delegate(conf, env, "CHECK", dconf, d["ifname"])
        if rc != 0:
            raise CniFail(11, f"delegate CHECK on {d['ifname']} failed", out + err)


def main() -> int:
    env = dict(os.environ)
    command = env.get("CNI_COMMAND", "")
    try:
        if command == "VERSION":
            print(json.dumps({"cniVersion": "1.0.0", "supportedVersions": VERSIONS}))
            return 0
        conf = json.loads(sys.stdin.read() or "{}")
        if command == "ADD":
            print(json.dumps(cmd_add(conf, env)))
        elif command == "DEL":
            cmd_del(conf, env)
        elif command == "CHECK":
            cmd_check(conf, env)
        else:
            raise CniFail(4, f"unknown CNI_COMMAND {command!r}")
        return 0
    except CniFail as e:
        err = {"cniVersion": "1.0.0", "code": e.code, "msg": e.msg, "details": e.details}
        print(json.dumps(err))
        return 1
    except Exception as e:  # report, never a bare traceback to containerd
        print(json.dumps({"cniVersion": "1.0.0", "code": 999, "msg": repr(e)}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
