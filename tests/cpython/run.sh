#!/usr/bin/env bash
# CPython's own test suite (Debian's libpython3.13-testsuite, in the debian test image) as a
# yardstick of the Linux personality: runs test modules under rvbox and under the qemu-user
# chroot (Linux, the oracle) and writes what each did to tests/cpython/results/HOST/MODULE.
#
#   tests/cpython/run.sh HOST [MODULE...]    HOST: rvbox | qemu; MODULEs: default modules.txt
#
# A result file says how the run ended (exit status, seconds, or "deadlock"/"timeout"), the
# totals regrtest printed, and one line per test that failed or erred, taken from
# unittest's closing "FAIL: name (id)" / "ERROR: name (id)" blocks. Knobs: RVBOX (the
# binary, default target/release/rvbox), MODULE_WASM (default target/cpython/debian.wasm,
# converted when missing or older than rvbox), CPYTHON_TIMEOUT (seconds per module, default 1800). Whole logs
# go to target/cpython/logs/HOST-MODULE.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
host=${1:?usage: run.sh rvbox|qemu [MODULE...]}
shift
mods=("$@")
[[ ${#mods[@]} -gt 0 ]] || mapfile -t mods < <(grep -v '^#' "$here/modules.txt" | grep .)
rvbox=${RVBOX:-$repo/target/release/rvbox}
wasm=${MODULE_WASM:-$repo/target/cpython/debian.wasm}
limit=${CPYTHON_TIMEOUT:-1800}
out=${CPYTHON_RESULTS:-$here/results}/$host
mkdir -p "$out"
# The oracle runs in a copy of the image's root filesystem: the tests write into it (byte
# code, temp files), and images/out/debian.rootfs is the oracle of other tests.
if [[ $host == qemu ]]; then
    rootfs=$repo/target/cpython/qemu-rootfs
    rm -rf "$rootfs"
    mkdir -p "$(dirname "$rootfs")"
    cp -a "$repo/images/out/debian.rootfs" "$rootfs"
fi
# Converted again when rvbox is newer than it (the emulator is in the module).
if [[ $host == rvbox && ( ! -f $wasm || $rvbox -nt $wasm ) ]]; then
    mkdir -p "$(dirname "$wasm")"
    "$rvbox" convert "$repo/images/out/debian" -o "$wasm" -q
fi
for m in "${mods[@]}"; do
    log=$(mktemp)
    start=$SECONDS
    set +e
    case $host in
    rvbox)
        "$rvbox" run --timeout "${limit}s" -e RVBOX_CHECK=1 "$wasm" -- \
            python3 -m test -v "$m" >"$log" 2>&1 ;;
    qemu)
        QEMU_RUN_CHROOT=1 QEMU_RUN_MOUNTS=1 QEMU_RUN_ENV="" timeout -k 10 "$limit" \
            bash "$repo/tests/oracle/qemu-run.sh" "$rootfs" \
            python3 -m test -v "$m" >"$log" 2>&1 </dev/null ;;
    *) echo "run.sh: unknown host $host" >&2; exit 2 ;;
    esac
    status=$?
    set -e
    secs=$((SECONDS - start))
    end="exit $status"
    grep -q '^rvbox: deadlock' "$log" && end=deadlock
    grep -q '^rvbox: internal error: lost wake-up' "$log" && end=lost-wakeup
    [[ $status -eq 124 ]] && end=timeout
    {
        echo "# python3 -m test -v $m under $host: $end after ${secs}s"
        grep -E '^Total tests: |^Result: ' "$log" || echo "no totals (the run did not finish)"
        grep -E '^(FAIL|ERROR): ' "$log" | sed -E 's/^(FAIL|ERROR): (\S+) \((\S+)\).*/\1 \3/' | sort -u || true
        grep -E '^rvbox: ' "$log" | head -5 || true
    } >"$out/$m"
    echo "cpython: $host $m: $end after ${secs}s ($(grep -cE '^(FAIL|ERROR) ' "$out/$m" || true) failed)" >&2
    mkdir -p "$repo/target/cpython/logs"
    mv "$log" "$repo/target/cpython/logs/$host-$m.log"
done
