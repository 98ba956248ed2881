#!/usr/bin/env bash
# Build linux/riscv64 OCI image layouts used by rvbox tests into images/out/.
#
#   images/build.sh NAME...     NAME: busybox busybox-amd64 busybox-multi testprogs debian layers (or "all")
#
# Each NAME becomes images/out/NAME (an OCI image layout, tag "latest") plus
# images/out/NAME.stamp. A name is rebuilt only if its output or stamp is
# missing or the recipe (this script, oci.py, the name's files) changed.
# Builds happen in images/out/.tmp.* and are moved into place; the stamp is
# written last, so an interrupted build is never mistaken for a complete one.
# See images/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$here/out"
ALL_NAMES=(busybox busybox-amd64 busybox-multi testprogs debian layers)

DEBIAN_MIRROR=${RVBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SUITE=trixie
# bookworm's debian-archive-keyring >= 2023.3+deb12u2 carries the trixie keys.
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
IMAGE_PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

log() { printf 'images: %s\n' "$*" >&2; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

usage() {
    echo "usage: $0 NAME...   (NAME: ${ALL_NAMES[*]} | all)" >&2
    exit 2
}

need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 ||
            die "'$t' not found; install: apt-get install mmdebstrap qemu-user umoci python3"
    done
}

# ---------------------------------------------------------------- caching

# Files whose content defines each recipe.
recipe_files() {
    case "$1" in
    busybox) echo "$here/build.sh" "$here/oci.py" "$here"/busybox/etc/* ;;
    busybox-amd64 | busybox-multi) echo "$here/build.sh" "$here/oci.py" ;;
    testprogs) echo "$here/build.sh" "$here/oci.py" "$here"/../tests/guest/*.c ;;
    debian) echo "$here/build.sh" "$here/oci.py" ;;
    layers) echo "$here/build.sh" "$here/oci.py" "$here/layers.py" ;;
    esac
}

# Names that must be built (and are read) before NAME.
deps() {
    case "$1" in
    busybox-amd64 | busybox-multi | testprogs | layers) echo busybox ;;
    esac
}

# Cache key: hash of the recipe files plus the index.json of every dependency
# (so a rebuilt busybox also invalidates the images derived from it).
recipe_key() {
    local name=$1 d
    {
        echo "recipe $name"
        # shellcheck disable=SC2046
        (cd "$here" && sha256sum $(recipe_files "$name" | sed "s#$here/##g"))
        for d in $(deps "$name"); do
            echo "dep $d $(sha256sum <"$out/$d/index.json")"
        done
    } | sha256sum | cut -d' ' -f1
}

is_fresh() {
    local name=$1 key=$2
    [[ -f "$out/$name/index.json" && -f "$out/$name.stamp" ]] &&
        [[ "$(<"$out/$name.stamp")" == "$key" ]]
}

cur_tmp=
cleanup() {
    if [[ -n "$cur_tmp" && -d "$cur_tmp" ]]; then
        rm -rf "$cur_tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A done_names=()

build() {
    local name=$1 d key t0
    [[ -n "${done_names[$name]:-}" ]] && return 0
    for d in $(deps "$name"); do build "$d"; done
    key=$(recipe_key "$name")
    if is_fresh "$name" "$key"; then
        log "$name: up to date (images/out/$name)"
        done_names[$name]=1
        return 0
    fi
    t0=$SECONDS
    log "$name: building"
    cur_tmp=$(mktemp -d "$out/.tmp.$name.XXXXXX")
    "build_${name//-/_}" "$cur_tmp"
    [[ -f "$cur_tmp/layout/index.json" ]] || die "$name: recipe produced no layout"

    log "$name: installing into images/out/$name"
    rm -f "$out/$name.stamp"
    rm -rf "$out/$name" "$out/$name.rootfs" "$out/$name.forms"
    mv "$cur_tmp/layout" "$out/$name"
    if [[ -d "$cur_tmp/rootfs" ]]; then
        mv "$cur_tmp/rootfs" "$out/$name.rootfs"
    fi
    if [[ -d "$cur_tmp/forms" ]]; then
        mv "$cur_tmp/forms" "$out/$name.forms"
    fi
    printf '%s\n' "$key" >"$out/$name.stamp.tmp"
    mv "$out/$name.stamp.tmp" "$out/$name.stamp"
    rm -rf "$cur_tmp"
    cur_tmp=
    log "$name: done in $((SECONDS - t0))s"
    done_names[$name]=1
}

# ---------------------------------------------------------------- recipes

# busybox: Debian trixie's busybox-static for riscv64 as a Docker-like image.
build_busybox() {
    local tmp=$1 rootfs=$1/rootfs ex=$1/extract epoch created version deb_version p rel n=0
    need mmdebstrap qemu-riscv64 umoci python3 tar
    [[ -f /usr/share/keyrings/debian-archive-trixie-stable.gpg ]] ||
        die "no trixie archive keys; need debian-archive-keyring >= 2023.3+deb12u2 (apt-get install debian-archive-keyring)"

    log "busybox: mmdebstrap --variant=extract --arch=riscv64 busybox-static ($DEBIAN_SUITE, $DEBIAN_MIRROR)"
    if ! mmdebstrap --quiet --variant=extract --arch=riscv64 --include=busybox-static \
        --keyring="$DEBIAN_KEYRING" "$DEBIAN_SUITE" "$ex" "$DEBIAN_MIRROR" \
        >"$tmp/mmdebstrap.log" 2>&1; then
        cat "$tmp/mmdebstrap.log" >&2
        die "busybox: mmdebstrap failed"
    fi
    [[ -f "$ex/usr/bin/busybox" ]] || die "busybox: package did not install usr/bin/busybox"

    version=$(qemu-riscv64 "$ex/usr/bin/busybox" 2>/dev/null | head -n1 || true)
    [[ "$version" == BusyBox* ]] || die "busybox: qemu-riscv64 cannot run the riscv64 busybox"
    # "BusyBox v1.37.0 (Debian 1:1.37.0-6+b9) multi-call binary." -> Debian version
    deb_version=$(sed -n 's/.*(Debian \([^)]*\)).*/\1/p' <<<"$version")
    version="busybox-static ${deb_version:-unknown}"
    # Reproducible timestamps: the package's own mtime unless overridden.
    epoch=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$ex/usr/bin/busybox")}
    created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
    log "busybox: assembling rootfs ($version, mtime $created)"

    # Fresh tree: only the binary and its copyright notice are taken from the
    # package (no device nodes, apt/dpkg state, docs or man pages).
    mkdir -p "$rootfs"
    (
        cd "$rootfs"
        mkdir -p usr/bin usr/sbin usr/lib usr/local/bin usr/local/sbin \
            etc root home tmp dev proc sys var/spool/mail var/www \
            usr/share/doc/busybox-static
        # Merged /usr, as in Debian trixie.
        ln -s usr/bin bin
        ln -s usr/sbin sbin
        ln -s usr/lib lib
        install -m 0755 "$ex/usr/bin/busybox" usr/bin/busybox
        install -m 0644 "$ex/usr/share/doc/busybox-static/copyright" \
            usr/share/doc/busybox-static/copyright
        install -m 0644 "$here/busybox/etc/passwd" "$here/busybox/etc/group" \
            "$here/busybox/etc/hostname" etc/
        install -m 0640 "$here/busybox/etc/shadow" etc/
        chmod 1777 tmp
        chmod 0700 root
    )

    # One symlink per applet, at the path busybox itself reports
    # (bin/ sbin/ usr/bin/ usr/sbin/, folded into usr/ by the merge).
    qemu-riscv64 "$rootfs/usr/bin/busybox" --list-full >"$tmp/applets"
    while IFS= read -r p; do
        case "$p" in
        usr/bin/* | usr/sbin/*) rel=$p ;;
        bin/* | sbin/*) rel=usr/$p ;;
        *) continue ;; # linuxrc: not wanted in a container image
        esac
        [[ -e "$rootfs/$rel" || -L "$rootfs/$rel" ]] && continue # busybox itself
        case "$rel" in
        usr/bin/*) ln -s busybox "$rootfs/$rel" ;;
        usr/sbin/*) ln -s ../bin/busybox "$rootfs/$rel" ;;
        esac
        n=$((n + 1))
    done <"$tmp/applets"
    [[ -L "$rootfs/usr/bin/sh" ]] || die "busybox: no sh applet"
    log "busybox: $n applet symlinks"

    chown -R 0:0 "$rootfs"
    find "$rootfs" -exec touch -h -d "@$epoch" {} +

    log "busybox: writing layer tar"
    (cd "$rootfs" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$tmp/files"
    tar -C "$rootfs" --create --file="$tmp/layer.tar" --format=ustar \
        --no-recursion --numeric-owner --owner=0 --group=0 \
        --mtime="@$epoch" --files-from="$tmp/files"

    log "busybox: umoci init/new/add-layer/config"
    umoci init --layout "$tmp/layout"
    umoci new --image "$tmp/layout:latest"
    umoci raw add-layer --image "$tmp/layout:latest" \
        --history.created="$created" \
        --history.created_by="rvbox images/build.sh: Debian $DEBIAN_SUITE $version (riscv64)" \
        "$tmp/layer.tar"
    umoci config --image "$tmp/layout:latest" --no-history \
        --os linux --architecture riscv64 \
        --config.cmd sh --config.env "$IMAGE_PATH_ENV" --config.workingdir / \
        --config.label "org.opencontainers.image.version=${deb_version:-unknown}" \
        --created "$created"
    umoci gc --layout "$tmp/layout"
    python3 "$here/oci.py" add-platform "$tmp/layout"
    python3 "$here/oci.py" check "$tmp/layout" >/dev/null
}

# busybox-amd64: the busybox layer under a linux/amd64 config (negative test).
build_busybox_amd64() {
    need python3
    log "busybox-amd64: retargeting images/out/busybox to linux/amd64"
    python3 "$here/oci.py" retarget "$out/busybox" "$1/layout" amd64
    python3 "$here/oci.py" check "$1/layout" >/dev/null
}

# busybox-multi: image index listing linux/amd64 then linux/riscv64.
build_busybox_multi() {
    need python3
    log "busybox-multi: image index [linux/amd64, linux/riscv64]"
    python3 "$here/oci.py" retarget "$out/busybox" "$1/amd64" amd64
    python3 "$here/oci.py" multi "$1/layout" "$1/amd64" "$out/busybox"
    python3 "$here/oci.py" check "$1/layout" >/dev/null
}

# testprogs: busybox plus a second layer with the C test programs of tests/guest/,
# built static for riscv64 into /usr/local/bin/. The rootfs (busybox + programs) is
# kept for the qemu oracle.
build_testprogs() {
    local tmp=$1 src epoch created f
    need riscv64-linux-gnu-gcc umoci python3 tar
    src="$here/../tests/guest"
    epoch=$(stat -c %Y "$out/busybox.rootfs/usr/bin/busybox")
    created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
    mkdir -p "$tmp/layer/usr/local/bin"
    for f in "$src"/*.c; do
        log "testprogs: cc $(basename "$f")"
        riscv64-linux-gnu-gcc -static -O2 -Wall -o "$tmp/layer/usr/local/bin/$(basename "$f" .c)" "$f"
    done
    find "$tmp/layer" -exec touch -h -d "@$epoch" {} +
    (cd "$tmp/layer" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$tmp/files"
    tar -C "$tmp/layer" --create --file="$tmp/layer.tar" --format=ustar \
        --no-recursion --numeric-owner --owner=0 --group=0 \
        --mtime="@$epoch" --files-from="$tmp/files"
    cp -a "$out/busybox" "$tmp/layout"
    umoci raw add-layer --image "$tmp/layout:latest" \
        --history.created="$created" \
        --history.created_by="rvbox images/build.sh: tests/guest programs" \
        "$tmp/layer.tar"
    umoci gc --layout "$tmp/layout"
    python3 "$here/oci.py" add-platform "$tmp/layout"
    python3 "$here/oci.py" check "$tmp/layout" >/dev/null
    cp -a "$out/busybox.rootfs" "$tmp/rootfs"
    cp -a "$tmp/layer/usr/local/bin/." "$tmp/rootfs/usr/local/bin/"
}

# debian: Debian trixie (riscv64) with the dynamically linked programs rvbox is
# tested on, extracted by mmdebstrap (no maintainer scripts run, so the few files
# they would make are made here: /etc/passwd and /etc/group from base-passwd,
# the awk alternative). Docs, man pages and locales are dropped as in slim
# images (copyright notices stay). One layer; the rootfs is kept for the oracle.
DEBIAN_PACKAGES=bash,dash,make,coreutils,findutils,grep,sed,tar,gzip,bzip2,xz-utils,file,gawk,jq,lua5.4,perl,python3,libpython3.13-testsuite,sqlite3,base-files,base-passwd,tzdata
build_debian() {
    local tmp=$1 rootfs=$1/rootfs epoch created
    need mmdebstrap umoci python3 tar
    log "debian: mmdebstrap --variant=extract --arch=riscv64 ($DEBIAN_SUITE): $DEBIAN_PACKAGES"
    if ! mmdebstrap --quiet --variant=extract --arch=riscv64 --include="$DEBIAN_PACKAGES" \
        --keyring="$DEBIAN_KEYRING" "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" \
        >"$tmp/mmdebstrap.log" 2>&1; then
        cat "$tmp/mmdebstrap.log" >&2
        die "debian: mmdebstrap failed"
    fi
    [[ -x "$rootfs/usr/bin/python3" ]] || die "debian: no python3 in the rootfs"
    epoch=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$rootfs/usr/bin/python3.13")}
    created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
    (
        cd "$rootfs"
        install -m 0644 usr/share/base-passwd/passwd.master etc/passwd
        install -m 0644 usr/share/base-passwd/group.master etc/group
        ln -sf /etc/alternatives/awk usr/bin/awk
        ln -sf /usr/bin/gawk etc/alternatives/awk
        # /bin/sh is dash, as dash's postinst makes it on Debian.
        [[ -e usr/bin/sh ]] || ln -s dash usr/bin/sh
        rm -rf usr/share/man usr/share/info usr/share/locale usr/share/lintian var/cache/apt/* var/lib/apt/lists/*
        find usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete
        find usr/share/doc -mindepth 1 -type d -empty -delete
        echo rvbox >etc/hostname
        chmod 1777 tmp
    )
    # What python3's postinst does on a real system (py3compile): byte-compile the
    # standard library and its test suite (but for its deliberately broken files), here with a static qemu inside a chroot of the
    # rootfs (qemu -L cannot create files that are not already in the rootfs).
    need chroot qemu-riscv64-static
    install -m 0755 "$(command -v qemu-riscv64-static)" "$rootfs/.qemu-riscv64-static"
    log "debian: byte-compiling the python standard library (qemu-riscv64-static in a chroot)"
    if ! chroot "$rootfs" /.qemu-riscv64-static /usr/bin/python3 -m compileall -q -x '/bad[^/]*\.py$' \
        /usr/lib/python3.13 >"$tmp/compileall.log" 2>&1; then
        cat "$tmp/compileall.log" >&2
        die "debian: compileall failed"
    fi
    rm -f "$rootfs/.qemu-riscv64-static"
    find "$rootfs" -newermt "@$epoch" -exec touch -h -d "@$epoch" {} +

    log "debian: writing layer tar ($(du -sh "$rootfs" | cut -f1))"
    (cd "$rootfs" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$tmp/files"
    tar -C "$rootfs" --create --file="$tmp/layer.tar" --format=pax \
        --no-recursion --numeric-owner --mtime="@$epoch" --clamp-mtime --files-from="$tmp/files"
    umoci init --layout "$tmp/layout"
    umoci new --image "$tmp/layout:latest"
    umoci raw add-layer --image "$tmp/layout:latest" \
        --history.created="$created" \
        --history.created_by="rvbox images/build.sh: Debian $DEBIAN_SUITE riscv64: $DEBIAN_PACKAGES" \
        "$tmp/layer.tar"
    umoci config --image "$tmp/layout:latest" --no-history \
        --os linux --architecture riscv64 \
        --config.cmd bash --config.env "$IMAGE_PATH_ENV" --config.workingdir / \
        --created "$created"
    umoci gc --layout "$tmp/layout"
    python3 "$here/oci.py" add-platform "$tmp/layout"
    python3 "$here/oci.py" check "$tmp/layout" >/dev/null
}

# layers: three layers that exercise every case of layer application (images/layers.py:
# whiteouts, opaque dirs, hardlinks across layers, replaced types, long names, a sparse
# file, devices, modes, owners, ...). The rootfs is what `umoci unpack` makes of the image:
# the oracle for the tree rvbox bundles. layers.forms/ holds the same image as an OCI
# archive, a docker-archive (plain and gzipped) and layouts with zstd and uncompressed layers.
build_layers() {
    local tmp=$1 epoch=1700000000 created i sudo=
    need umoci skopeo python3 tar zstd gzip
    [[ $(id -u) -eq 0 ]] || sudo="sudo -n"
    created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
    python3 "$here/layers.py" "$tmp" "$out/busybox.rootfs/usr/bin/busybox"
    for i in 3 4; do
        (cd "$tmp/layer$i-files" && find . -mindepth 1 -exec touch -h -d "@$epoch" {} +)
        (cd "$tmp/layer$i-files" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$tmp/files$i"
    done
    # Layer 3, GNU format: GNU long name and long link records. Layer 4, PAX format:
    # sparse files (format 1.0; Go's archive/tar, so umoci and containerd, read it).
    tar -C "$tmp/layer3-files" --create --file="$tmp/layer3.tar" --format=gnu \
        --no-recursion --numeric-owner --owner=0 --group=0 --files-from="$tmp/files3"
    tar -C "$tmp/layer4-files" --create --file="$tmp/layer4.tar" --format=pax --sparse \
        --sparse-version=1.0 --no-recursion --numeric-owner --owner=0 --group=0 \
        --files-from="$tmp/files4"
    umoci init --layout "$tmp/layout"
    umoci new --image "$tmp/layout:latest"
    for i in 1 2 3 4; do
        umoci raw add-layer --image "$tmp/layout:latest" --history.created="$created" \
            --history.created_by="rvbox images/layers.py: layer $i" "$tmp/layer$i.tar"
    done
    umoci config --image "$tmp/layout:latest" --no-history \
        --os linux --architecture riscv64 \
        --config.entrypoint /bin/busybox --config.cmd sh \
        --config.env "$IMAGE_PATH_ENV" --config.env GREETING=hello \
        --config.workingdir /srv --config.user app:staff \
        --config.label org.example.name=layers --config.label "org.example.note=two words" \
        --config.exposedports 8080/tcp --config.exposedports 53/udp \
        --created "$created"
    umoci gc --layout "$tmp/layout"
    python3 "$here/oci.py" add-platform "$tmp/layout"
    python3 "$here/oci.py" check "$tmp/layout" >/dev/null
    log "layers: umoci unpack (the oracle tree)"
    $sudo umoci unpack --image "$tmp/layout:latest" "$tmp/bundle" >/dev/null
    $sudo mv "$tmp/bundle/rootfs" "$tmp/rootfs"
    $sudo rm -rf "$tmp/bundle"
    log "layers: other forms (skopeo archives, zstd and plain layers)"
    mkdir "$tmp/forms"
    skopeo copy -q "oci:$tmp/layout:latest" "oci-archive:$tmp/forms/oci.tar:latest"
    skopeo copy -q "oci:$tmp/layout:latest" "docker-archive:$tmp/forms/docker.tar:rvbox/layers:latest"
    gzip -c "$tmp/forms/docker.tar" >"$tmp/forms/docker.tar.gz"
    python3 "$here/oci.py" recompress "$tmp/layout" "$tmp/forms/zstd" zstd
    python3 "$here/oci.py" recompress "$tmp/layout" "$tmp/forms/plain" none
    python3 "$here/oci.py" check "$tmp/forms/zstd" "$tmp/forms/plain" >/dev/null
}

# ---------------------------------------------------------------- main

[[ $# -gt 0 ]] || usage
names=()
for a in "$@"; do
    case "$a" in
    all) names+=("${ALL_NAMES[@]}") ;;
    busybox | busybox-amd64 | busybox-multi | testprogs | debian | layers) names+=("$a") ;;
    -h | --help) usage ;;
    *) echo "images: unknown image '$a'" >&2; usage ;;
    esac
done

mkdir -p "$out"
# One build at a time per checkout; leftovers of killed builds are removed.
exec 9>"$out/.lock"
flock 9
rm -rf "$out"/.tmp.* "$out"/*.stamp.tmp

for name in "${names[@]}"; do
    build "$name"
done
