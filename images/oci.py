#!/usr/bin/env python3
"""Small OCI image-layout helpers for images/build.sh (stdlib only).

  oci.py add-platform LAYOUT
      Add a "platform" {os, architecture[, variant]} (read from each image's
      config blob) to every manifest descriptor in LAYOUT/index.json that lacks
      one. index.json is not content-addressed, so nothing else changes.

  oci.py retarget SRC DST ARCH
      Write a new layout DST holding SRC's "latest" image with the config's
      architecture replaced by ARCH (layers are shared, config and manifest
      are new blobs). Used for the busybox-amd64 negative-test image.

  oci.py multi DST LAYOUT...
      Write a new layout DST whose index.json has one entry, tag "latest",
      pointing to an image index blob (application/vnd.oci.image.index.v1+json)
      that lists the "latest" manifest of every LAYOUT in the given order,
      each with its platform.

  oci.py recompress SRC DST zstd|none
      Write a new layout DST holding SRC's "latest" image with every layer
      recompressed (zstd through the zstd program, or uncompressed), media types
      changed to match; the config (and so the diff_ids) is unchanged.

  oci.py check LAYOUT
      Verify every blob reachable from index.json: digest and size match.
"""
import hashlib
import json
import os
import shutil
import sys

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def dumps(obj):
    # Deterministic, compact, like Go's json.Marshal (no trailing newline).
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def blob_path(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def read_json(path):
    with open(path, "rb") as f:
        return json.load(f)


def read_blob(layout, desc):
    with open(blob_path(layout, desc["digest"]), "rb") as f:
        data = f.read()
    return data


def write_blob(layout, data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def copy_blob(src, dst, digest):
    s, d = blob_path(src, digest), blob_path(dst, digest)
    os.makedirs(os.path.dirname(d), exist_ok=True)
    if not os.path.exists(d):
        shutil.copyfile(s, d)


def write_layout(layout, manifests):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "wb") as f:
        f.write(dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
    tmp = os.path.join(layout, "index.json.tmp")
    with open(tmp, "wb") as f:
        f.write(dumps(index))
    os.replace(tmp, os.path.join(layout, "index.json"))


def find_tag(layout, tag="latest"):
    index = read_json(os.path.join(layout, "index.json"))
    for d in index["manifests"]:
        if d.get("annotations", {}).get(REF_NAME) == tag:
            return d
    sys.exit(f"oci.py: {layout}: no manifest tagged {tag!r}")


def platform_of(layout, manifest_desc):
    manifest = json.loads(read_blob(layout, manifest_desc))
    config = json.loads(read_blob(layout, manifest["config"]))
    p = {"architecture": config["architecture"], "os": config["os"]}
    if config.get("variant"):
        p["variant"] = config["variant"]
    return p


def cmd_add_platform(layout):
    path = os.path.join(layout, "index.json")
    index = read_json(path)
    for d in index["manifests"]:
        if d.get("mediaType") == MT_MANIFEST and "platform" not in d:
            d["platform"] = platform_of(layout, d)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(dumps(index))
    os.replace(tmp, path)


def cmd_retarget(src, dst, arch):
    mdesc = find_tag(src)
    manifest = json.loads(read_blob(src, mdesc))
    config = json.loads(read_blob(src, manifest["config"]))
    os.makedirs(os.path.join(dst, "blobs", "sha256"), exist_ok=True)
    for layer in manifest["layers"]:
        copy_blob(src, dst, layer["digest"])
    config["architecture"] = arch
    config.pop("variant", None)
    manifest["config"] = write_blob(dst, dumps(config), manifest["config"]["mediaType"])
    new = write_blob(dst, dumps(manifest), MT_MANIFEST)
    new["annotations"] = {REF_NAME: "latest"}
    new["platform"] = {"architecture": arch, "os": config["os"]}
    write_layout(dst, [new])


def cmd_multi(dst, layouts):
    os.makedirs(os.path.join(dst, "blobs", "sha256"), exist_ok=True)
    entries = []
    for src in layouts:
        mdesc = find_tag(src)
        manifest = json.loads(read_blob(src, mdesc))
        for d in [mdesc, manifest["config"], *manifest["layers"]]:
            copy_blob(src, dst, d["digest"])
        entries.append({
            "mediaType": MT_MANIFEST,
            "digest": mdesc["digest"],
            "size": mdesc["size"],
            "platform": platform_of(src, mdesc),
        })
    image_index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries}
    idesc = write_blob(dst, dumps(image_index), MT_INDEX)
    idesc["annotations"] = {REF_NAME: "latest"}
    write_layout(dst, [idesc])


def cmd_recompress(src, dst, how):
    import gzip
    import subprocess
    mdesc = find_tag(src)
    manifest = json.loads(read_blob(src, mdesc))
    os.makedirs(os.path.join(dst, "blobs", "sha256"), exist_ok=True)
    copy_blob(src, dst, manifest["config"]["digest"])
    layers = []
    for layer in manifest["layers"]:
        data = read_blob(src, layer)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if how == "zstd":
            data = subprocess.run(["zstd", "-q", "-c", "-19"], input=data,
                                  stdout=subprocess.PIPE, check=True).stdout
            mt = "application/vnd.oci.image.layer.v1.tar+zstd"
        else:
            mt = "application/vnd.oci.image.layer.v1.tar"
        layers.append(write_blob(dst, data, mt))
    manifest["layers"] = layers
    new = write_blob(dst, dumps(manifest), MT_MANIFEST)
    new["annotations"] = {REF_NAME: "latest"}
    new["platform"] = platform_of(src, mdesc)
    write_layout(dst, [new])


def cmd_check(layout):
    seen = 0

    def check(desc):
        nonlocal seen
        data = read_blob(layout, desc)
        if "sha256:" + hashlib.sha256(data).hexdigest() != desc["digest"]:
            sys.exit(f"oci.py: {layout}: digest mismatch for {desc['digest']}")
        if len(data) != desc["size"]:
            sys.exit(f"oci.py: {layout}: size mismatch for {desc['digest']}")
        seen += 1
        mt = desc.get("mediaType")
        if mt == MT_INDEX:
            for d in json.loads(data)["manifests"]:
                check(d)
        elif mt == MT_MANIFEST:
            m = json.loads(data)
            check(m["config"])
            for d in m["layers"]:
                check(d)

    for d in read_json(os.path.join(layout, "index.json"))["manifests"]:
        check(d)
    print(f"{layout}: {seen} blobs ok")


def main(argv):
    if len(argv) >= 2 and argv[0] == "add-platform":
        for layout in argv[1:]:
            cmd_add_platform(layout)
    elif len(argv) == 4 and argv[0] == "retarget":
        cmd_retarget(argv[1], argv[2], argv[3])
    elif len(argv) >= 3 and argv[0] == "multi":
        cmd_multi(argv[1], argv[2:])
    elif len(argv) == 4 and argv[0] == "recompress" and argv[3] in ("zstd", "none"):
        cmd_recompress(argv[1], argv[2], argv[3])
    elif len(argv) >= 2 and argv[0] == "check":
        for layout in argv[1:]:
            cmd_check(layout)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
