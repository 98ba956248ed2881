//! Ahead-of-time translation (`rvbox convert --aot`): translated code must do exactly what
//! the interpreter does, which must do what qemu-riscv64 does. Each program runs three
//! ways: translated, the same module with `RVBOX_AOT=0` (interpreter only), and qemu.
//! The stats line proves the translated run really ran translated code.

use crate::support::*;
use std::path::PathBuf;
use std::process::Command;

/// `images/out/NAME` converted with `args` (once per test process and argument list).
fn converted(name: &str, tag: &str, args: &[&str]) -> PathBuf {
    let out = scratch().join(format!("{name}-{tag}.wasm"));
    static DONE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap();
    if !done.contains(&out) {
        let image = images().join(name);
        let mut all = vec![
            "convert",
            image.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let r = rvbox(&all, b"");
        assert_eq!(r.status, 0, "convert: {}", r.stderr_str());
        done.push(out.clone());
    }
    out
}

/// testprogs with alu and segv translated (small, so the module compiles quickly).
fn testprogs() -> PathBuf {
    converted(
        "testprogs",
        "aot-alu",
        &[
            "--aot",
            "none",
            "--aot-include",
            "/usr/local/bin/alu",
            "--aot-include",
            "/usr/local/bin/segv",
        ],
    )
}

/// The share of instructions translated code ran, from the stats line.
fn translated_share(stderr: &str) -> f64 {
    stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("rvbox: stats: translated code: ")?;
            let pct = rest.split("% of instructions").next()?;
            pct.rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or(0.0)
}

/// Runs `args` translated (with stats), interpreted and under qemu; returns the three.
fn three_ways(m: &std::path::Path, args: &[&str]) -> (Run, Run, Run) {
    let aot = rvbox_run_env(m, &["RVBOX_STATS=1"], args, b"");
    let int = rvbox_run_env(m, &["RVBOX_AOT=0"], args, b"");
    let q = qemu_run("testprogs.rootfs", args, b"");
    (aot, int, q)
}

/// Every integer op over edge-case operands (overflow, division by zero, MIN / -1, the W
/// forms, shifts by 31/32/63/64), loads and stores of every width aligned, misaligned
/// and across pages, FP loads and stores (NaN boxing), a switch, recursion, calls
/// through pointers: translated = interpreted = qemu.
#[test]
fn instructions_translated_and_interpreted_agree_with_qemu() {
    let m = testprogs();
    let (aot, int, q) = three_ways(&m, &["alu"]);
    assert_eq!(q.status, 0);
    assert!(q.stdout_str().lines().count() > 40, "{}", q.stdout_str());
    assert_eq!(int.stdout_str(), q.stdout_str(), "interpreter vs qemu");
    assert_eq!(aot.stdout_str(), q.stdout_str(), "translated vs qemu");
    assert_eq!(aot.status, 0);
    let share = translated_share(&aot.stderr_str());
    assert!(
        share > 95.0,
        "only {share}% translated:\n{}",
        aot.stderr_str()
    );
    // The same module under Node (V8 compiles the translated functions too).
    let node = node_run(&m, &["alu"], b"");
    assert_eq!(
        node.stdout_str(),
        q.stdout_str(),
        "Node vs qemu: {}",
        node.stderr_str()
    );
}

/// A timer signal must reach a loop that runs translated and waits only for the signal
/// handler (translated loops give way at back edges, as the interpreter's blocks do).
#[test]
fn a_timer_signal_interrupts_a_hot_translated_loop() {
    let m = testprogs();
    let (aot, int, q) = three_ways(&m, &["alu", "sig"]);
    assert_eq!(q.stdout_str(), "ticks 5 after many spins\n");
    assert_eq!(int.stdout_str(), q.stdout_str());
    assert_eq!(aot.stdout_str(), q.stdout_str());
    assert!(
        translated_share(&aot.stderr_str()) > 95.0,
        "{}",
        aot.stderr_str()
    );
}

/// A guest JIT: code written to an anonymous page, run, rewritten (with the icache
/// flush), run again. Such code is never translated; the interpreter runs the new code.
#[test]
fn code_written_at_run_time_runs_as_written() {
    let m = testprogs();
    let (aot, int, q) = three_ways(&m, &["alu", "jit"]);
    assert_eq!(
        q.stdout_str(),
        "jit round 0: 40\njit round 1: 42\njit round 2: 44\n"
    );
    assert_eq!(int.stdout_str(), q.stdout_str());
    assert_eq!(aot.stdout_str(), q.stdout_str());
}

/// A store to an unmapped address in translated code: SIGSEGV at the exact pc, as the
/// interpreter reports it, and the status Linux gives.
#[test]
fn a_fault_in_translated_code_has_the_exact_pc() {
    let m = testprogs();
    let (aot, int, q) = three_ways(&m, &["segv"]);
    assert_eq!(q.status, 139);
    assert_eq!((aot.status, int.status), (139, 139));
    assert_eq!(aot.stdout_str(), "before\n");
    let what = |r: &Run| {
        r.stderr_str()
            .lines()
            .find(|l| l.contains("killed by SIGSEGV"))
            .map(str::to_string)
    };
    assert!(
        what(&int).is_some_and(|l| l.contains("at pc 0x")),
        "{}",
        int.stderr_str()
    );
    assert_eq!(what(&aot), what(&int));
    assert!(
        translated_share(&aot.stderr_str()) > 50.0,
        "{}",
        aot.stderr_str()
    );
}

/// An image with hostile ELF files: section headers pointing outside the file, a
/// truncated file, a program header count past the end. Conversion with `--aot all` succeeds, says
/// in `--verbose` output which files it skipped and why, and the programs still run
/// (interpreted) where their program headers are sound.
#[test]
fn hostile_elf_files_are_skipped_and_still_run() {
    let root = fresh_dir("aot-hostile");
    let bb = std::fs::read(images().join("busybox.rootfs/bin/busybox")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("bin/busybox"), &bb).unwrap();
    // Named as applets, so that busybox runs them. e_shoff far past the end:
    let mut bad_sections = bb.clone();
    bad_sections[40..48].copy_from_slice(&(u64::MAX - 100).to_le_bytes());
    std::fs::write(root.join("bin/echo"), &bad_sections).unwrap();
    // The first half of the file only.
    std::fs::write(root.join("bin/cat"), &bb[..bb.len() / 2]).unwrap();
    // Program headers repeated at a bogus count.
    let mut bad_ph = bb.clone();
    bad_ph[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
    std::fs::write(root.join("bin/ls"), &bad_ph).unwrap();
    for f in ["bin/busybox", "bin/echo", "bin/cat", "bin/ls"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = scratch().join("aot-hostile.wasm");
    let image = format!("dir:{}", root.display());
    let r = rvbox(
        &[
            "convert",
            &image,
            "-o",
            out.to_str().unwrap(),
            "--aot",
            "all",
            "-v",
        ],
        b"",
    );
    assert_eq!(r.status, 0, "{}", r.stderr_str());
    let said = r.stderr_str() + &r.stdout_str();
    for f in ["/bin/echo", "/bin/cat", "/bin/ls"] {
        assert!(
            said.contains(&format!("not translated {f}: ")),
            "{f} not reported:\n{said}"
        );
    }
    assert!(said.contains("translated /bin/busybox"), "{said}");
    let ok = rvbox_run(&out, &["/bin/echo", "still", "runs"], b"");
    assert_eq!(ok.stdout_str(), "still runs\n", "{}", ok.stderr_str());
    let ok = rvbox_run(&out, &["/bin/busybox", "echo", "translated"], b"");
    assert_eq!(ok.stdout_str(), "translated\n", "{}", ok.stderr_str());
}

/// The suites of busybox applets, processes and signals, memory, and the Debian
/// programs (python with a dlopened extension module, perl, sqlite3, compressors), run
/// again with translated code: this test process runs itself with
/// `RVBOX_TEST_AOT=all` (see `support::aot_args`).
#[test]
fn the_suites_pass_with_translated_code() {
    if std::env::var("RVBOX_TEST_AOT").is_ok() {
        return; // already the translated run
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new(me)
        .env("RVBOX_TEST_AOT", "all")
        .args([
            "applets::",
            "processes::",
            "memory::",
            "programs::",
            "--test-threads",
            "2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It ran the suites, not nothing.
    let passed: usize = text
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 20, "{text}");
}
