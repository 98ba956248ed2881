#!/usr/bin/env bash
# Start-up of `echo hello` in the busybox image, in one run: rvbox first start (empty
# compile cache), rvbox second start (cached), Node's node:wasi, the native emulator
# build, and qemu-riscv64 on the same busybox binary. Prints medians and ratios.
#
#   bench/startup.sh [RUNS]        (needs hyperfine: apt-get install hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
command -v hyperfine >/dev/null || { echo "bench: install hyperfine (apt-get install hyperfine)" >&2; exit 2; }
cargo build --release -q
cargo build --release -q -p rvbox-guest
images/build.sh busybox >/dev/null 2>&1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rvbox=target/release/rvbox
$rvbox convert images/out/busybox -o "$tmp/busybox.wasm" -q
cache="$tmp/cache"
rootfs=images/out/busybox.rootfs

hyperfine -N --warmup 3 --runs "$runs" --export-json "$tmp/r.json" \
    --prepare true --prepare "rm -rf $cache" --prepare true --prepare true --prepare true \
    -n "qemu-riscv64" "qemu-riscv64 -L $rootfs -0 echo $rootfs/usr/bin/busybox echo hello" \
    -n "rvbox run (first start)" "env RVBOX_CACHE_DIR=$cache $rvbox run $tmp/busybox.wasm -- echo hello" \
    -n "rvbox run (cached)" "env RVBOX_CACHE_DIR=$cache $rvbox run $tmp/busybox.wasm -- echo hello" \
    -n "node run.mjs" "node runner/node/run.mjs $tmp/busybox.wasm echo hello" \
    -n "emulator native" "target/release/rvbox-guest $tmp/busybox.wasm echo hello" \
    >/dev/null
python3 - "$tmp/r.json" "$tmp/busybox.wasm" "$rootfs" <<'PY'
import json, os, sys
res = json.load(open(sys.argv[1]))["results"]
base = next(r for r in res if r["command"] == "qemu-riscv64")["median"]
print(f"{'start-up: echo hello':28} {'median':>10} {'min':>10} {'max':>10} {'vs qemu':>8}")
for r in res:
    print(f"{r['command']:28} {r['median']*1e3:8.1f}ms {r['min']*1e3:8.1f}ms {r['max']*1e3:8.1f}ms {r['median']/base:7.2f}x")
mod = os.path.getsize(sys.argv[2])
img = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(sys.argv[3]) for f in fs if not os.path.islink(os.path.join(d, f)))
print(f"module {mod/1048576:.2f} MiB for {img/1048576:.2f} MiB of image files (+{(mod-img)/1048576:.2f} MiB)")
PY
