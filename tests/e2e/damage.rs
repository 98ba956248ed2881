//! Damaged modules: a flipped byte in the bundle's tables or in a file's contents is a
//! clear `rvbox: damaged module` error with status 125 under every host, never wrong
//! bytes, a loop or a panic (the bundle's checksums, `emulator-guest/src/bundle.rs`).

use std::path::{Path, PathBuf};

use crate::support::*;

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> usize {
    let at: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        at.len(),
        1,
        "{:?} once in the module",
        String::from_utf8_lossy(needle)
    );
    at[0]
}

/// A copy of the busybox module with `edit` applied to its bytes.
fn damaged(name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(module("busybox")).unwrap();
    edit(&mut bytes);
    let out = scratch().join(name);
    std::fs::write(&out, bytes).unwrap();
    out
}

/// Runs under `host` with a compile cache of its own (so no entry of the genuine module
/// can stand in for the damaged one).
fn run(host: Host, m: &Path, args: &[&str]) -> Run {
    let name = m.file_stem().unwrap().to_str().unwrap();
    let cache = fresh_dir(&format!("cache-{name}-{host:?}"));
    let mut cmd = match host {
        Host::Rvbox => {
            let mut c = std::process::Command::new(rvbox_bin());
            c.arg("run");
            c
        }
        Host::Node => node_command(),
    };
    cmd.env("RVBOX_CACHE_DIR", cache)
        .arg(m)
        .arg("--")
        .args(args);
    run_cmd(cmd, b"")
}

#[test]
fn a_damaged_file_is_an_error_when_read_and_others_still_work() {
    let m = damaged("damaged-file.wasm", |b| {
        let at = find(b, b"daemon:*:10933:0:99999");
        b[at] = b'D';
    });
    for host in HOSTS {
        let r = run(host, &m, &["cat", "/etc/shadow"]);
        assert_eq!(r.status, 125, "{host:?}: {}", r.stderr_str());
        assert!(
            r.stdout.is_empty(),
            "{host:?}: no wrong bytes: {}",
            r.stdout_str()
        );
        let err = r.stderr_str();
        assert_eq!(err.lines().count(), 1, "{host:?}: {err}");
        assert!(
            err.starts_with("rvbox: damaged module: ") && err.contains("checksum"),
            "{host:?}: {err}"
        );
        // The rest of the image is fine, and is checked file by file.
        let r = run(host, &m, &["cat", "/etc/passwd"]);
        assert_eq!(r.status, 0, "{host:?}: {}", r.stderr_str());
        // Listing is not reading: the file's metadata is intact.
        let r = run(host, &m, &["ls", "-l", "/etc/shadow"]);
        assert_eq!(r.status, 0, "{host:?}: {}", r.stderr_str());
    }
}

#[test]
fn damaged_tables_stop_the_run_at_start() {
    let m = damaged("damaged-tables.wasm", |b| {
        let bundle = find(b, b"RVBXBNDL");
        // A byte of the inode table (the root directory's entry count).
        b[bundle + 96 + 17] ^= 0x04;
    });
    for host in HOSTS {
        let r = run(host, &m, &["echo", "hi"]);
        assert_eq!(r.status, 125, "{host:?}: {}", r.stderr_str());
        assert!(r.stdout.is_empty());
        let err = r.stderr_str();
        assert_eq!(err.lines().count(), 1, "{host:?}: {err}");
        assert!(
            err.contains("damaged module") && err.contains("tables do not match their checksum"),
            "{host:?}: {err}"
        );
    }
}

/// `node host_variant.mjs VARIANT MODULE ARGS...`: node:wasi with something taken away.
fn variant_run(variant: &str, m: &Path, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new("node");
    cmd.arg("--no-warnings")
        .arg(repo().join("tests/e2e/host_variant.mjs"))
        .arg(variant)
        .arg(m)
        .args(args);
    run_cmd(cmd, b"")
}

/// A host without clocks: one line naming what is missing and 125, not a panic or a trap.
/// A host without preopens or environment: the module runs (it needs neither).
#[test]
fn hosts_that_lack_clocks_or_preopens() {
    let m = module("busybox");
    let r = variant_run("noclock", &m, &["echo", "hi"]);
    assert_eq!(r.status, 125, "{}", r.stderr_str());
    let err = r.stderr_str();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rvbox: the host gives this module no monotonic clock"),
        "{err}"
    );
    let r = variant_run("plain", &m, &["echo", "hi"]);
    assert_eq!(
        (r.status, r.stdout_str()),
        (0, "hi\n".into()),
        "{}",
        r.stderr_str()
    );
}

/// A module from another rvbox version (its `rvbox` section's format), and a truncated
/// one: each host refuses it with one `rvbox:` line and 125.
#[test]
fn other_versions_and_truncated_modules_are_refused() {
    let good = std::fs::read(module("busybox")).unwrap();
    let at = find(&good, b"\"format\":1");
    let mut other = good.clone();
    other[at + 9] = b'9';
    let other_path = scratch().join("other-format.wasm");
    std::fs::write(&other_path, &other).unwrap();
    let cut = scratch().join("truncated.wasm");
    std::fs::write(&cut, &good[..good.len() * 2 / 3]).unwrap();
    for (m, what) in [(&other_path, "format"), (&cut, "")] {
        for host in HOSTS {
            let r = run(host, m, &["echo", "hi"]);
            assert_eq!(r.status, 125, "{host:?} {m:?}: {}", r.stderr_str());
            assert!(r.stdout.is_empty());
            let err = r.stderr_str();
            assert_eq!(err.lines().count(), 1, "{host:?}: {err}");
            assert!(
                err.starts_with("rvbox: ") && err.contains(what),
                "{host:?}: {err}"
            );
        }
    }
}

/// A copy of the busybox module whose /etc/passwd says `Root:` where the image says
/// `root:`, with the bundle's checksums made to match: a working tampered module of the
/// same size, carrying the genuine module's `rvbox` section (and so its module id).
fn tampered_passwd() -> PathBuf {
    use rvbox_converter::guest::bundle::{checksum, Bundle, HEADER_LEN, INODE_LEN};
    let le64 = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    damaged("tampered-passwd.wasm", |b| {
        let at = find(b, b"RVBXBNDL");
        let len = le64(b, at + 80) as usize;
        let (ino_nr, file_at, file_len) = {
            let bundle = Bundle::new(&b[at..at + len]).unwrap();
            let etc = bundle.lookup(&bundle.inode(0).unwrap(), b"etc").unwrap();
            let etc = bundle.inode(etc.unwrap()).unwrap();
            let nr = bundle.lookup(&etc, b"passwd").unwrap().unwrap();
            let ino = bundle.inode(nr).unwrap();
            (nr, at + ino.a as usize, ino.size as usize)
        };
        assert!(b[file_at..].starts_with(b"root:x:0:0:"));
        b[file_at] = b'R';
        // The file's checksum in its inode, then the header's over the tables.
        let sum = checksum(&b[file_at..file_at + file_len]);
        let sum_at = at + le64(b, at + 24) as usize + ino_nr as usize * INODE_LEN + 56;
        b[sum_at..sum_at + 8].copy_from_slice(&sum.to_le_bytes());
        let head = &b[at..at + le64(b, at + 72) as usize];
        let mut fields = head[..HEADER_LEN].to_vec();
        fields[88..96].fill(0);
        let head_sum = checksum(&fields) ^ checksum(&head[HEADER_LEN..]).rotate_left(1);
        b[at + 88..at + 96].copy_from_slice(&head_sum.to_le_bytes());
    })
}

/// The probe's finding: the compiled-module cache was keyed on the id a module claims in
/// its `rvbox` section and its size, so a tampered module run first had its code and files
/// run for the genuine module ever after. Now each runs its own bytes, in either order.
#[test]
fn a_tampered_module_with_the_genuine_id_does_not_poison_the_cache() {
    let genuine = module("busybox");
    let evil = tampered_passwd();
    assert_eq!(
        std::fs::metadata(&evil).unwrap().len(),
        std::fs::metadata(&genuine).unwrap().len()
    );
    let cache = fresh_dir("cache-tampered");
    let head = |m: &Path| {
        let mut cmd = std::process::Command::new(rvbox_bin());
        cmd.env("RVBOX_CACHE_DIR", &cache)
            .env_remove("RVBOX_LOG")
            .arg("run")
            .arg(m)
            .args(["--", "head", "-1", "/etc/passwd"]);
        let r = run_cmd(cmd, b"");
        assert_eq!(r.status, 0, "{m:?}: {}", r.stderr_str());
        r.stdout_str()
    };
    let (tampered, right) = (
        "Root:x:0:0:root:/root:/bin/sh\n",
        "root:x:0:0:root:/root:/bin/sh\n",
    );
    assert_eq!(head(&evil), tampered, "the tampered module works");
    assert_eq!(head(&genuine), right);
    assert_eq!(head(&evil), tampered);
    assert_eq!(head(&genuine), right);
}
