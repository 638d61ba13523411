#!/usr/bin/env python3
"""Pack a directory into a one-layer OCI image-layout tar that ``ctr images import`` loads.

The cluster tier has no registry: its base image (busybox-static and a static pause) is built
from Debian packages on the machine and imported straight into containerd.

usage: mkimage.py ROOTFS NAME OUT.tar [ENTRYPOINT...]      (stdlib only)

The layer is reproducible: entries are sorted, owned by root, with mtime 0, so the same rootfs
gives the same image digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(rootfs: str) -> bytes:
    def normalise(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.mtime = 0
        return ti

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(top, name)
                arc = os.path.relpath(path, rootfs)
                tar.add(path, arcname=arc, recursive=False, filter=normalise)
    return raw.getvalue()


def build(rootfs: str, name: str, out: str, entrypoint: list[str]) -> str:
    """Write the image tar; return the manifest digest."""
    if not os.path.isdir(rootfs):
        sys.exit(f"mkimage: {rootfs} is not a directory")
    layer_tar = _layer(rootfs)
    layer_gz = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "Env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER, "digest": _digest(layer_gz), "size": len(layer_gz)}
            ],
        },
        sort_keys=True,
    ).encode()
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "annotations": {
                        # containerd names the imported image after this annotation
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        },
        sort_keys=True,
    ).encode()
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w") as tar:

        def put(path: str, data: bytes) -> None:
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))

        put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        put("index.json", index)
        for blob in (config, layer_gz, manifest):
            put("blobs/sha256/" + _digest(blob).split(":", 1)[1], blob)
    os.replace(tmp, out)
    return _digest(manifest)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[4], file=sys.stderr)
        return 2
    rootfs, name, out, *entry = argv
    print(build(rootfs, name, out, entry or ["/pause"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
