#!/usr/bin/env bash
# The native peer of the benchmarks: the same Debian trixie packages as the riscv64
# `debian` image (images/build.sh's DEBIAN_PACKAGES), plus busybox-static, for amd64,
# extracted by mmdebstrap into bench/.cache/native-amd64.rootfs (git-ignored). The
# benchmark runs its programs there in a chroot, so "native" means the same Debian
# program built for this machine, not the host's own (maybe older) one.
#
#   bench/native-rootfs.sh          (as root; prints the rootfs path on stdout)
#
# Rebuilt only when this script or images/build.sh changes (the stamp holds their hash).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cache="$here/.cache"
out="$cache/native-amd64.rootfs"
mirror=${RVBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'native-rootfs: %s\n' "$*" >&2; }
die() { printf 'native-rootfs: error: %s\n' "$*" >&2; exit 1; }

# The riscv64 image's package list, read from its recipe so the two cannot drift apart.
packages=$(sed -n 's/^DEBIAN_PACKAGES=//p' "$repo/images/build.sh")
[[ -n "$packages" ]] || die "no DEBIAN_PACKAGES line in images/build.sh"
packages="$packages,busybox-static"

key=$(cat "$here/native-rootfs.sh" "$repo/images/build.sh" | sha256sum | cut -d' ' -f1)
if [[ -f "$out.stamp" && "$(<"$out.stamp")" == "$key" && -x "$out/usr/bin/python3" ]]; then
    log "up to date ($out)"
    echo "$out"
    exit 0
fi

command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install mmdebstrap)"
[[ $(id -u) -eq 0 ]] || die "needs root (mmdebstrap --mode=root)"
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.tmp.native.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "mmdebstrap --variant=extract --arch=amd64 (trixie): $packages"
if ! mmdebstrap --quiet --variant=extract --arch=amd64 --include="$packages" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    trixie "$tmp/rootfs" "$mirror" >"$tmp/log" 2>&1; then
    cat "$tmp/log" >&2
    die "mmdebstrap failed"
fi
(
    # The same fix-ups as images/build.sh's debian recipe (no maintainer scripts ran).
    cd "$tmp/rootfs"
    install -m 0644 usr/share/base-passwd/passwd.master etc/passwd
    install -m 0644 usr/share/base-passwd/group.master etc/group
    ln -sf /etc/alternatives/awk usr/bin/awk
    ln -sf /usr/bin/gawk etc/alternatives/awk
    chmod 1777 tmp
)
[[ -x "$tmp/rootfs/usr/bin/python3" && -x "$tmp/rootfs/usr/bin/busybox" ]] ||
    die "the rootfs lacks python3 or busybox"
rm -rf "$out" "$out.stamp"
mv "$tmp/rootfs" "$out"
echo "$key" >"$out.stamp"
log "done ($(du -sh "$out" | cut -f1))"
echo "$out"
