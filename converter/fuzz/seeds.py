#!/usr/bin/env python3
"""Writes small seed layers for the `layer` fuzz target into DIR: tars in ustar, PAX and
GNU format with every entry type the applier handles, some gzip-compressed."""
import gzip
import io
import os
import subprocess
import sys
import tarfile
import tempfile


def tar(entries, fmt):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for kind, name, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.mode = extra.get("mode", 0o644)
            data = extra.get("data", b"")
            ti.size = len(data) if kind == tarfile.REGTYPE else 0
            ti.linkname = extra.get("link", "")
            ti.pax_headers = extra.get("pax", {})
            t.addfile(ti, io.BytesIO(data) if ti.size else None)
    return buf.getvalue()


R, D, S, L = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
SEEDS = {
    "basic": [(D, "etc/", {}), (R, "etc/f", {"data": b"hello"}), (S, "lnk", {"link": "etc"}),
              (L, "hard", {"link": "etc/f"}), (R, "lnk/through", {"data": b"x"})],
    "whiteouts": [(D, "d/", {}), (R, "d/a", {"data": b"a"}), (R, "d/.wh..wh..opq", {}),
                  (R, ".wh.gone", {}), (R, "d/.wh.a", {})],
    "dotdot": [(R, "../../x", {"data": b"x"}), (R, "/abs", {"data": b"y"}),
               (S, "up", {"link": "../../.."}), (R, "up/z", {"data": b"z"})],
    "pax": [(R, "p" * 150, {"data": b"long", "pax": {"mtime": "1.5", "uid": "70000"}}),
            (tarfile.FIFOTYPE, "fifo", {}), (tarfile.CHRTYPE, "dev", {})],
    "sparse01": [(R, "GNUSparseFile.0/s", {"data": b"abc", "pax": {
        "GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.name": "s",
        "GNU.sparse.size": "100", "GNU.sparse.map": "10,3"}})],
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, entries in SEEDS.items():
        for fmt, tag in [(tarfile.PAX_FORMAT, "pax"), (tarfile.GNU_FORMAT, "gnu")]:
            data = tar(entries, fmt)
            open(os.path.join(out, f"{name}-{tag}.tar"), "wb").write(data)
        open(os.path.join(out, f"{name}.tar.gz"), "wb").write(gzip.compress(tar(entries, tarfile.PAX_FORMAT)))
    # GNU tar's own sparse formats (old GNU 'S' and PAX 1.0).
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "sp"), "wb") as f:
            f.write(b"x")
            f.seek(20000)
            f.write(b"y")
        for fmt, extra in [("gnu", []), ("pax", ["--sparse-version=1.0"])]:
            subprocess.run(["tar", "-C", d, "-cf", os.path.join(out, f"sparse-{fmt}.tar"),
                            f"--format={fmt}", "--sparse", *extra, "sp"], check=True)


if __name__ == "__main__":
    main()
