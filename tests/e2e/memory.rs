//! Memory management as Linux does it (tests/guest/mm.c), compared with qemu-riscv64.

use crate::support::*;

/// Cases whose output and status must match qemu-riscv64's exactly.
const CASES: &[&str] = &[
    "ro-write", "nx-exec", "unmapped", "jit", "fixed", "sparse", "shared", "file", "enomem", "brk",
];

#[test]
fn mm_cases_match_qemu() {
    let m = module("testprogs");
    let mut bad = Vec::new();
    for case in CASES {
        let r = rvbox_run(&m, &["mm", case], b"");
        let q = qemu_run("testprogs.rootfs", &["mm", case], b"");
        if (r.status, r.stdout_str()) != (q.status, q.stdout_str()) {
            bad.push(format!(
                "mm {case}:\n  rvbox: {} {:?} {:?}\n  qemu:  {} {:?}",
                r.status,
                r.stdout_str(),
                r.stderr_str(),
                q.status,
                q.stdout_str()
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn faults_say_what_and_where() {
    let m = module("testprogs");
    for (case, what) in [
        ("ro-write", "segmentation fault: write to 0x"),
        ("nx-exec", "segmentation fault: execute at 0x"),
        ("unmapped", "segmentation fault: read from 0x"),
    ] {
        let r = rvbox_run(&m, &["mm", case], b"");
        assert_eq!(r.status, 128 + 11, "{case}");
        let err = r.stderr_str();
        assert!(
            err.contains("killed by SIGSEGV: ") && err.contains(what),
            "{case}: {err}"
        );
        let why = if case == "unmapped" {
            "(not mapped)"
        } else {
            "(not permitted)"
        };
        assert!(err.contains(why), "{case}: {err}");
    }
}

/// qemu-riscv64 7.2 treats MAP_FIXED_NOREPLACE as a hint, so the expected output is what
/// mmap(2) documents for Linux >= 4.17: EEXIST when the range overlaps a mapping.
#[test]
fn map_fixed_noreplace_refuses_to_replace() {
    let m = module("testprogs");
    let r = rvbox_run(&m, &["mm", "noreplace"], b"");
    assert_eq!(
        (r.status, r.stdout_str().as_str()),
        (
            0,
            "over a mapping: File exists, contents kept: a\n\
             overlapping the end of a mapping: File exists\n\
             into a hole: ok, at the address: 1, zero: 1\n"
        ),
        "{}",
        r.stderr_str()
    );
}
