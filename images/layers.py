#!/usr/bin/env python3
"""Writes the layer tars of the `layers` test image (images/build.sh), stdlib only.

  layers.py OUTDIR BUSYBOX

writes OUTDIR/layer1.tar, layer2.tar (PAX format, as Go and most builders write) and
OUTDIR/layer3-files/ and layer4-files/ (staging trees that build.sh tars with GNU tar: in
GNU format for GNU long name and link records, and in PAX format with sparse files). Every case of the converter's layer semantics is here:
modes with setuid/setgid/sticky, owners, fractional mtimes, long names, hardlinks within
and across layers, absolute/relative/dangling symlinks, device nodes and a fifo, empty
directories, whiteouts of files and directories, an opaque directory, a directory replaced
by a file and the reverse, a symlink replaced by a file, duplicate entries, an entry
through a symlinked parent, a directory entry over an existing directory (new metadata).
BUSYBOX (a riscv64 static busybox) goes in as /bin/busybox so the image runs.
"""
import io
import os
import sys
import tarfile

T0 = 1700000000  # mtimes: fixed, so the image is reproducible


class Layer:
    def __init__(self, path):
        self.tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode, uid=0, gid=0, mtime=T0, **kw):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.uname = ti.gname = ""
        ti.mtime = mtime
        for k, v in kw.items():
            setattr(ti, k, v)
        return ti

    def dir(self, name, mode=0o755, **kw):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, **kw))

    def file(self, name, data, mode=0o644, **kw):
        if isinstance(data, str):
            data = data.encode()
        ti = self._info(name, tarfile.REGTYPE, mode, **kw)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name, target, **kw):
        self.tar.addfile(self._info(name, tarfile.SYMTYPE, 0o777, linkname=target, **kw))

    def hardlink(self, name, target, **kw):
        self.tar.addfile(self._info(name, tarfile.LNKTYPE, 0o644, linkname=target, **kw))

    def dev(self, name, kind, major, minor, mode=0o666):
        t = tarfile.CHRTYPE if kind == "c" else tarfile.BLKTYPE
        self.tar.addfile(self._info(name, t, mode, devmajor=major, devminor=minor))

    def fifo(self, name, mode=0o644):
        self.tar.addfile(self._info(name, tarfile.FIFOTYPE, mode))

    def close(self):
        self.tar.close()


def layer1(path, busybox):
    l = Layer(path)
    l.dir("bin/")
    with open(busybox, "rb") as f:
        l.file("bin/busybox", f.read(), mode=0o755)
    l.symlink("bin/sh", "busybox")
    l.file("bin/setuid-prog", "#!/bin/sh\necho suid\n", mode=0o4755)
    l.file("bin/setgid-prog", "#!/bin/sh\necho sgid\n", mode=0o2711, gid=50)
    l.dir("etc/")
    l.file("etc/hostname", "layers\n")
    l.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/srv:/bin/sh\n"
           "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    l.file("etc/group", "root:x:0:\nstaff:x:50:\napp:x:1000:\nnogroup:x:65534:\n")
    l.dir("tmp/", mode=0o1777)
    l.dir("emptydir/", mode=0o700, mtime=T0 + 5)
    l.dir("srv/", mode=0o750, uid=1000, gid=1000)
    # PAX records: a fractional mtime and ids too large for the octal header fields.
    ti = l._info("srv/data", tarfile.REGTYPE, 0o640, uid=1000, gid=1000)
    payload = b"app data\n" * 100
    ti.size = len(payload)
    ti.pax_headers = {"mtime": "1700000123.123456789"}
    l.tar.addfile(ti, io.BytesIO(payload))
    ti = l._info("srv/biguid", tarfile.REGTYPE, 0o600)
    ti.size = 3
    ti.pax_headers = {"uid": "3000000", "gid": "3000001"}
    l.tar.addfile(ti, io.BytesIO(b"big"))
    # Long names: > 100 bytes (PAX path), a path > 255, a long symlink target.
    long_dir = "usr/share/" + "d" * 120 + "/"
    l.dir("usr/")
    l.dir("usr/share/")
    l.dir(long_dir)
    l.file(long_dir + "f" * 150, "long name\n")
    l.symlink("usr/share/longlink", "/" + long_dir + "f" * 150)
    l.file("usr/share/ünïcödé name with spaces", "utf-8\n")
    # Hardlinks within the layer.
    l.dir("hl/")
    l.file("hl/a", "hardlinked content\n", mode=0o664, uid=7, gid=8)
    l.hardlink("hl/b", "hl/a")
    l.file("hl/keep", "keep\n")
    # Symlinks: relative, absolute, dangling, to a directory.
    l.dir("lnk/")
    l.symlink("lnk/rel", "../etc/hostname")
    l.symlink("lnk/abs", "/etc/hostname")
    l.symlink("lnk/dangling", "/nonexistent/target")
    l.dir("opt/")
    l.dir("opt/app/", mode=0o711)
    l.file("opt/app/readme", "app\n")
    l.symlink("lnk/dir", "/opt/app")
    # Devices and a fifo (metadata only in the guest).
    l.dir("dev/")
    l.dev("dev/null-copy", "c", 1, 3)
    l.dev("dev/disk", "b", 8, 1, mode=0o660)
    l.dev("dev/bigminor", "c", 250, 300000)
    l.dir("run/")
    l.fifo("run/fifo", mode=0o600)
    # To be changed by layer 2.
    l.dir("gone/")
    l.file("gone/inside", "whited out with its directory\n")
    l.dir("gone/sub/")
    l.file("gone/sub/deep", "also gone\n")
    l.file("gonefile", "whited out\n")
    l.dir("opq/")
    l.file("opq/old", "hidden by the opaque marker\n")
    l.dir("opq/sub/")
    l.file("opq/sub/old2", "hidden too\n")
    l.dir("willbefile/")
    l.file("willbefile/child", "goes with its directory\n")
    l.file("willbedir", "a file that becomes a directory\n")
    l.file("changed", "version 1\n")
    l.symlink("becomesfile", "/etc/hostname")
    l.close()


def layer2(path):
    l = Layer(path)
    l.file(".wh.gone", "")
    l.file(".wh.gonefile", "")
    l.file(".wh.nothing-here", "")  # whiteout of nothing: no effect
    l.file("hl/.wh.a", "")  # hl/b keeps the content
    l.hardlink("hl/c", "hl/b")  # hardlink to a file of the lower layer
    l.dir("opq/", mode=0o755)
    l.file("opq/.wh..wh..opq", "")
    l.file("opq/new", "after the opaque marker\n")
    l.file("willbefile", "a directory replaced by a file\n")
    l.dir("willbedir/", mode=0o700)
    l.file("willbedir/x", "a file replaced by a directory\n")
    l.file("changed", "version 2, longer than version 1\n", mode=0o600)
    l.file("becomesfile", "a symlink replaced by a file\n")
    l.dir("srv/", mode=0o755, uid=0, gid=0, mtime=T0 + 60)  # new metadata, children kept
    l.file("dup", "first\n")
    l.file("dup", "second: the later entry wins\n")
    l.file("lnk/dir/through", "written through a symlinked parent\n")
    l.dir("newempty/", mode=0o755, mtime=T0 + 7)
    l.close()


def layer4_files(d):
    """A staging tree for layer 4 (GNU tar, PAX format, sparse format 1.0)."""
    os.makedirs(os.path.join(d, "sparse"))
    with open(os.path.join(d, "sparse", "holes"), "wb") as f:
        f.write(b"head")
        f.seek(1 << 20)
        f.write(b"middle")
        f.seek(3 << 20)
        f.write(b"tail")
    with open(os.path.join(d, "sparse", "trailing-hole"), "wb") as f:
        f.write(b"data")
        f.truncate(2 << 20)


def layer3_files(d):
    """A staging tree for layer 3 (GNU tar, GNU format: long name and link records)."""
    os.makedirs(os.path.join(d, "gnu"))
    name = os.path.join(d, "gnu", "L" * 180)
    with open(name, "w") as f:
        f.write("GNU long name\n")
    os.symlink("../" + "T" * 150, os.path.join(d, "gnu", "longtarget"))


def main():
    out, busybox = sys.argv[1], sys.argv[2]
    layer1(os.path.join(out, "layer1.tar"), busybox)
    layer2(os.path.join(out, "layer2.tar"))
    layer3_files(os.path.join(out, "layer3-files"))
    layer4_files(os.path.join(out, "layer4-files"))


if __name__ == "__main__":
    main()
