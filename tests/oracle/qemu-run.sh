#!/usr/bin/env bash
# Reference ("oracle") runner: run a riscv64 program from an extracted rootfs
# under qemu-user, roughly as a container runtime would.
#
#   tests/oracle/qemu-run.sh ROOTFS CMD [ARGS...]
#
# CMD is resolved like a container runtime does: a name without "/" is looked
# up in the image PATH inside ROOTFS; symlinks (also absolute ones, and the
# merged-/usr /bin -> usr/bin links) are resolved inside ROOTFS, never on the
# host. The program gets argv[0] = CMD (so busybox applets work), a clean
# environment (PATH of the image, HOME=/root), and cwd "/".
# stdin/stdout/stderr are passed through; the exit status is the program's.
#
# Environment knobs:
#   QEMU_RUN_ENV   extra "K=V" words for the guest environment (space-separated)
#   QEMU_RISCV64   the qemu binary (default: qemu-riscv64 from PATH)
#   QEMU_RUN_CHROOT=1  a real chroot instead of -L (needs root or `sudo -n`, and
#                  qemu-riscv64-static, which is copied to ROOTFS/.rvbox-oracle/ once):
#                  paths, cwd and stat(2) are the image's, files the guest writes land
#                  in ROOTFS.
#   QEMU_RUN_MOUNTS=1  with QEMU_RUN_CHROOT=1: what a container runtime mounts, in a private
#                  mount namespace (unshare -m; nothing stays mounted): /proc (the host's pids
#                  show there), and a /dev with null, zero, full, random, urandom, tty, fd,
#                  stdin, stdout, stderr, shm (busybox sh opens /dev/null for background jobs;
#                  bash process substitution uses /dev/fd).
# Without QEMU_RUN_CHROOT:
#
# Caveats: qemu -L is NOT a chroot (qemu 7.2):
#  - an absolute path the guest uses is looked up in ROOTFS first and falls
#    back to the HOST path if missing there: `cat /etc/os-release` prints the
#    host's, and a file the guest *creates* (e.g. /tmp/x) lands on the host;
#  - chdir and relative paths are not translated: cwd is the host's "/", so
#    `cd /usr; ls` lists the host's /usr;
#  - /proc is the host's (/proc/cpuinfo is x86, /proc/self/exe is a host
#    path); uname reports the host kernel and hostname, machine riscv64.
# Only compare outputs that do not depend on these.
set -euo pipefail

IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [[ $# -lt 2 ]]; then
    echo "usage: $0 ROOTFS CMD [ARGS...]" >&2
    exit 2
fi
rootfs=$(cd "$1" && pwd -P)
cmd=$2
shift 2

qemu=${QEMU_RISCV64:-$(command -v qemu-riscv64 || true)}
[[ -n "$qemu" && -x "$qemu" ]] || { echo "qemu-run: qemu-riscv64 not found (apt-get install qemu-user)" >&2; exit 127; }

# Resolve a guest path to a host path inside $rootfs, following every symlink
# with $rootfs as "/" (like chroot). Prints nothing if it does not exist.
resolve_in_root() {
    python3 - "$rootfs" "$1" <<'EOF'
import os, sys
root, path = sys.argv[1], sys.argv[2]
parts = [p for p in path.split("/") if p]
cur = []            # resolved guest components
hops = 0
while parts:
    p = parts.pop(0)
    if p == ".":
        continue
    if p == "..":
        if cur: cur.pop()
        continue
    host = os.path.join(root, *cur, p)
    if os.path.islink(host):
        hops += 1
        if hops > 40:
            sys.exit(0)
        target = os.readlink(host)
        if target.startswith("/"):
            cur = []
        parts = [q for q in target.split("/") if q] + parts
        continue
    if not os.path.lexists(host):
        sys.exit(0)
    cur.append(p)
host = os.path.join(root, *cur)
if os.path.isfile(host):
    print(host)
EOF
}

host_exe=
if [[ "$cmd" == */* ]]; then
    [[ "$cmd" == /* ]] || cmd_path=/$cmd # relative to cwd "/"
    host_exe=$(resolve_in_root "${cmd_path:-$cmd}")
else
    IFS=: read -r -a dirs <<<"$IMAGE_PATH"
    for d in "${dirs[@]}"; do
        host_exe=$(resolve_in_root "$d/$cmd")
        [[ -n "$host_exe" && -x "$host_exe" ]] && break
        host_exe=
    done
fi
if [[ -z "$host_exe" ]]; then
    echo "qemu-run: $cmd: not found in $rootfs (PATH=$IMAGE_PATH)" >&2
    exit 127
fi

cd /
if [[ "${QEMU_RUN_CHROOT:-}" == 1 ]]; then
    static=$(command -v qemu-riscv64-static || true)
    [[ -n "$static" ]] || { echo "qemu-run: qemu-riscv64-static not found (apt-get install qemu-user-static)" >&2; exit 127; }
    asroot=()
    [[ $(id -u) -eq 0 ]] || asroot=(sudo -n)
    if ! cmp -s "$static" "$rootfs/.rvbox-oracle/qemu-riscv64-static"; then
        "${asroot[@]}" mkdir -p "$rootfs/.rvbox-oracle"
        "${asroot[@]}" cp "$static" "$rootfs/.rvbox-oracle/qemu-riscv64-static.$$"
        "${asroot[@]}" mv "$rootfs/.rvbox-oracle/qemu-riscv64-static.$$" "$rootfs/.rvbox-oracle/qemu-riscv64-static"
    fi
    if [[ "${QEMU_RUN_MOUNTS:-}" == 1 ]]; then
        # shellcheck disable=SC2016
        mounts='r=$0
            mount -t proc proc "$r/proc" &&
            mount -t tmpfs -o mode=755,size=1m tmpfs "$r/dev" &&
            for d in null zero full random urandom tty; do
                touch "$r/dev/$d" && mount --bind "/dev/$d" "$r/dev/$d" || exit 1
            done &&
            mkdir "$r/dev/pts" "$r/dev/shm" && chmod 1777 "$r/dev/shm" &&
            ln -s /proc/self/fd "$r/dev/fd" && ln -s /proc/self/fd/0 "$r/dev/stdin" &&
            ln -s /proc/self/fd/1 "$r/dev/stdout" && ln -s /proc/self/fd/2 "$r/dev/stderr" &&
            exec chroot "$@"'
        # shellcheck disable=SC2086
        exec "${asroot[@]}" env -i PATH="$IMAGE_PATH" HOME=/root ${QEMU_RUN_ENV:-} \
            unshare -m --propagation private sh -c "$mounts" \
            "$rootfs" "$rootfs" /.rvbox-oracle/qemu-riscv64-static -0 "$cmd" "${host_exe#"$rootfs"}" "$@"
    fi
    # shellcheck disable=SC2086
    exec "${asroot[@]}" env -i PATH="$IMAGE_PATH" HOME=/root ${QEMU_RUN_ENV:-} \
        chroot "$rootfs" /.rvbox-oracle/qemu-riscv64-static -0 "$cmd" "${host_exe#"$rootfs"}" "$@"
fi
# shellcheck disable=SC2086
exec env -i PATH="$IMAGE_PATH" HOME=/root ${QEMU_RUN_ENV:-} \
    "$qemu" -L "$rootfs" -0 "$cmd" "$host_exe" "$@"
