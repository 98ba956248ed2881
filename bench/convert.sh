#!/usr/bin/env bash
# Conversion at scale: wall time and peak memory (max RSS) of `rvbox convert` for a
# synthetic image of ~300 MB in 20,000 files (incompressible content, 3 gzip layers, one
# with whiteouts), for the debian test image, and for each input form of the big image; with
# `umoci unpack` of the same image as the peer (it unpacks the layers to a directory, the
# part of the work that is comparable). Prints a table.
#
#   bench/convert.sh [FILES] [MIB]      (default 20000 300)
#
# The synthetic image is cached in bench/work/scale-FILES-MIB (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-20000}
mib=${2:-300}
work=bench/work/scale-$files-$mib
rvbox=${CARGO_TARGET_DIR:-target}/release/rvbox
sudo=
[[ $(id -u) -eq 0 ]] || sudo="sudo -n"

log() { printf 'convert-bench: %s\n' "$*" >&2; }

cargo build --release -q -p rvbox
images/build.sh debian >/dev/null

if [[ ! -f $work/done ]]; then
    log "making a $mib MiB image of $files files in $work"
    rm -rf "$work"
    mkdir -p "$work"
    python3 - "$work" "$files" "$mib" <<'EOF'
import os, random, sys
work, files, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
per = mib * 1048576 // files
for layer in range(3):
    root = os.path.join(work, f"l{layer}")
    n = files // 3 + (1 if layer < files % 3 else 0)
    for i in range(n):
        d = os.path.join(root, f"d{layer}", f"{i % 200:03d}")
        os.makedirs(d, exist_ok=True)
        size = max(1, int(per * rng.uniform(0.2, 1.8)))
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(os.urandom(size))
    if layer == 2:  # whiteouts of some lower files
        for i in range(0, 50):
            d = os.path.join(root, "d0", f"{i:03d}")
            os.makedirs(d, exist_ok=True)
            open(os.path.join(d, f".wh.f{i}"), "w").close()
EOF
    umoci init --layout "$work/layout" >/dev/null
    umoci new --image "$work/layout:latest" >/dev/null
    for l in 0 1 2; do
        tar -C "$work/l$l" -cf "$work/l$l.tar" --numeric-owner --owner=0 --group=0 .
        umoci raw add-layer --image "$work/layout:latest" "$work/l$l.tar" >/dev/null
        rm -rf "$work/l$l" "$work/l$l.tar"
    done
    umoci config --image "$work/layout:latest" --no-history --os linux --architecture riscv64 >/dev/null
    umoci gc --layout "$work/layout"
    skopeo copy -q "oci:$work/layout:latest" "oci-archive:$work/oci.tar:latest"
    skopeo copy -q "oci:$work/layout:latest" "docker-archive:$work/docker.tar:scale:latest"
    touch "$work/done"
fi

# measure NAME CMD...: wall seconds and max RSS (MiB) of CMD.
measure() {
    local name=$1
    shift
    local t0 t1 rss
    t0=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$work/rss" "$@" >/dev/null 2>"$work/err" || {
        cat "$work/err" >&2
        return 1
    }
    t1=$(date +%s.%N)
    rss=$(tail -1 "$work/rss")
    printf '%s\t%.2f\t%.0f\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(echo "$rss / 1024" | bc -l)"
}

out=$(mktemp -d)
trap 'rm -rf "$out"; $sudo rm -rf "$work/unpacked"' EXIT
size=$(du -sb "$work/layout/blobs" | cut -f1)
printf 'image: %s files, %.0f MiB of blobs (%s)\n' "$files" "$(echo "$size / 1048576" | bc -l)" "$work"
{
    printf 'what\tseconds\tmax RSS MiB\n'
    measure "rvbox convert oci:layout (synthetic)" "$rvbox" convert -q "oci:$work/layout" -o "$out/a.wasm"
    measure "rvbox convert oci-archive:" "$rvbox" convert -q "oci-archive:$work/oci.tar" -o "$out/b.wasm"
    measure "rvbox convert docker-archive:" "$rvbox" convert -q "docker-archive:$work/docker.tar" -o "$out/c.wasm"
    measure "umoci unpack (peer, same image)" $sudo umoci unpack --image "$work/layout:latest" "$work/unpacked"
    $sudo rm -rf "$work/unpacked"
    measure "rvbox convert debian test image" "$rvbox" convert -q images/out/debian -o "$out/d.wasm"
} | column -t -s $'\t'
ls -l "$out"/a.wasm | awk '{printf "module: %.0f MiB\n", $5/1048576}'
