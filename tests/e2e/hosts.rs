//! The same module under other hosts: Node's `node:wasi` gives what `rvbox run` gives.

use crate::support::*;

#[test]
fn node_matches_rvbox_run() {
    let m = module("busybox");
    let extra: &[(&[&str], &str)] = &[(&["sh", "-c", "echo out; echo err >&2; exit 7"], "")];
    let mut differ = Vec::new();
    for (args, stdin) in crate::applets::CASES.iter().chain(extra) {
        let ours = rvbox_run(&m, args, stdin.as_bytes());
        let node = node_run(&m, args, stdin.as_bytes());
        if node != ours {
            differ.push(format!(
                "{args:?}\n  rvbox run: {ours:?}\n  node:      {node:?}"
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "node differs from rvbox run:\n{}",
        differ.join("\n")
    );
}

#[test]
fn node_reports_guest_signals_like_rvbox_run() {
    let m = module("testprogs");
    for prog in ["segv", "illegal"] {
        let ours = rvbox_run(&m, &[prog], b"");
        let node = node_run(&m, &[prog], b"");
        assert_eq!(node, ours, "{prog}");
    }
}

#[test]
fn second_start_uses_the_compiled_module_cache() {
    let m = module("busybox");
    let cache = scratch().join("cache-test");
    let _ = std::fs::remove_dir_all(&cache);
    let run = || {
        std::process::Command::new(rvbox_bin())
            .args(["run", m.to_str().unwrap(), "--", "true"])
            .env("RVBOX_CACHE_DIR", &cache)
            .env("RVBOX_LOG", "cache")
            .output()
            .unwrap()
    };
    let first = run();
    let second = run();
    assert!(first.status.success() && second.status.success());
    let (e1, e2) = (
        String::from_utf8_lossy(&first.stderr),
        String::from_utf8_lossy(&second.stderr),
    );
    assert!(e1.contains("cache miss"), "{e1}");
    assert!(e2.contains("cache hit"), "{e2}");
}

#[test]
fn node_runs_the_debian_module_to_its_exit_status() {
    // Node 20's V8 crashed unwinding proc_exit through this (large) module with node:wasi's
    // returnOnExit, after correct output: the output alone would not catch it.
    let m = module("debian");
    for (args, status, out) in [
        (&["echo", "hi"][..], 0, "hi\n"),
        (&["/usr/bin/bash", "-c", "echo out; exit 3"][..], 3, "out\n"),
        (&["/usr/bin/python3", "-c", "print(6*7)"][..], 0, "42\n"),
    ] {
        let node = node_run(&m, args, b"");
        assert_eq!(
            (node.status, node.stdout_str().as_str()),
            (status, out),
            "{args:?}: {}",
            node.stderr_str()
        );
        assert_eq!(node, rvbox_run(&m, args, b""), "{args:?}");
    }
}

#[test]
fn node_survives_many_small_wasi_calls() {
    // sqlite3 reading a script of single-row INSERTs: Node 20's V8 died in GC with helper
    // threads in about one run of three (see runner/node/run.mjs); four runs must all pass.
    let m = module("debian");
    let mut script = String::from("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT);\n");
    for i in 1..=3000u32 {
        script += &format!("INSERT INTO t VALUES({i}, 'n{}');\n", i * 7919 % 1000);
    }
    script += "SELECT count(*), count(DISTINCT name) FROM t;\n";
    for run in 0..4 {
        let node = node_run(&m, &["/usr/bin/sqlite3"], script.as_bytes());
        assert_eq!(
            (node.status, node.stdout_str().as_str()),
            (0, "3000|1000\n"),
            "run {run}: {}",
            node.stderr_str()
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
