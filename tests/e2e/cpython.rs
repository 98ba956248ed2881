//! CPython's own test suite as a yardstick of the Linux personality (tests/cpython/): a
//! bounded subset of the OS-facing modules runs under rvbox with the wake-up checker on,
//! and fails on a deadlock, a lost wake-up, a crash, or any test failing that the committed
//! results (`tests/cpython/results/rvbox/MODULE`, made by `tests/cpython/run.sh rvbox`)
//! do not list as failing. The whole list, against the qemu chroot, is `run.sh` by hand.

use std::collections::BTreeSet;

use crate::support::*;

/// Quick modules (a minute or two together) that cover pipes, select/poll/epoll, fcntl
/// locks, mmap, rlimits, temp files and the posix module.
const SUBSET: [&str; 7] = [
    "test_select",
    "test_selectors",
    "test_fcntl",
    "test_resource",
    "test_mmap",
    "test_tempfile",
    "test_posix",
];

/// "FAIL id" / "ERROR id" lines from unittest's closing blocks.
fn failures(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|l| {
            let (kind, rest) = l.split_once(": ")?;
            if kind != "FAIL" && kind != "ERROR" {
                return None;
            }
            let id = rest.split_once(" (")?.1.split(')').next()?;
            Some(format!("{kind} {id}"))
        })
        .collect()
}

#[test]
fn cpython_os_modules_have_no_new_failures() {
    let m = module("debian");
    let mut known = BTreeSet::new();
    for name in SUBSET {
        let path = repo().join("tests/cpython/results/rvbox").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        known.extend(
            text.lines()
                .filter(|l| l.starts_with("FAIL ") || l.starts_with("ERROR "))
                .map(str::to_string),
        );
    }
    let mut args = vec!["python3", "-m", "test", "-v"];
    args.extend(SUBSET);
    let r = host_run(
        Host::Rvbox,
        &["-e", "RVBOX_CHECK=1", "--timeout", "900s"],
        &m,
        &args,
        b"",
    );
    let (out, err) = (r.stdout_str(), r.stderr_str());
    let rvbox_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("rvbox:")).collect();
    assert!(rvbox_lines.is_empty(), "{}", rvbox_lines.join("\n"));
    assert!(
        r.status == 0 || r.status == 2,
        "regrtest ended with {}: {}",
        r.status,
        &out[out.len().saturating_sub(2000)..]
    );
    assert!(
        out.contains("Total tests: run="),
        "no totals: the run did not finish"
    );
    let failed = failures(&format!("{out}\n{err}"));
    let new: Vec<&String> = failed.difference(&known).collect();
    assert!(
        new.is_empty(),
        "tests that fail now and did not in tests/cpython/results/rvbox: {new:?}"
    );
    let fixed: Vec<&String> = known.difference(&failed).collect();
    if !fixed.is_empty() {
        eprintln!("cpython: these pass now: update tests/cpython/results/rvbox: {fixed:?}");
    }
}

#[test]
fn failure_lines_are_read_from_unittest_blocks() {
    let log = "FAIL: test_a (test.test_x.T.test_a)\nERROR: test_b (test.test_x.T.test_b)\n\
               test_c (test.test_x.T.test_c) ... ok\nFAIL: see below\n";
    let f: Vec<String> = failures(log).into_iter().collect();
    assert_eq!(
        f,
        ["ERROR test.test_x.T.test_b", "FAIL test.test_x.T.test_a"]
    );
}
