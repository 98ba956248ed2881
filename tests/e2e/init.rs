//! The container's init: pid 1 is spared the signals it has no handler for when they come
//! from inside the container, SIGKILL and SIGSTOP included, as Linux spares a PID
//! namespace's init (`SIGNAL_UNKILLABLE`, `sig_task_ignored` in kernel/signal.c).
//!
//! The reference is Docker (`docker run IMAGE sh -c 'kill -TERM 1; echo after'` prints
//! "after" and exits 0), not the qemu oracle: a program under qemu-user in a chroot is no
//! namespace's init, so Linux kills it there.

use crate::support::*;

/// What `SHELL -c SCRIPT` did under `rvbox run`: status and stdout.
fn run(image: &str, shell: &str, script: &str) -> (i32, String, String) {
    let r = rvbox_run_limited(&module(image), &[shell, "-c", script], b"", 60);
    (r.status, r.stdout_str(), r.stderr_str())
}

const SHELLS: [(&str, &str); 3] = [("busybox", "sh"), ("debian", "dash"), ("debian", "bash")];

/// `kill -TERM 1`, `-KILL` and `-STOP` from pid 1 itself do nothing: the shell goes on
/// (rvbox ended with 143 and 137, and SIGSTOP in a deadlock report).
#[test]
fn pid_1_ignores_default_signals_from_inside_sigkill_and_sigstop_too() {
    for (image, shell) in SHELLS {
        for sig in ["TERM", "KILL", "STOP", "HUP", "USR1"] {
            let got = run(image, shell, &format!("kill -{sig} 1; echo after"));
            assert_eq!(
                (got.0, got.1.as_str()),
                (0, "after\n"),
                "{image} {shell}: kill -{sig} 1: stderr {:?}",
                got.2
            );
        }
    }
}

/// So are those from another process of the container; a handler pid 1 installs still
/// runs.
#[test]
fn pid_1_ignores_signals_from_its_children_and_runs_its_handlers() {
    for (image, shell) in SHELLS {
        let script = "sh -c 'kill -TERM 1; kill -KILL 1; kill -STOP 1'; echo after $?";
        let got = run(image, shell, script);
        assert_eq!(
            (got.0, got.1.as_str()),
            (0, "after 0\n"),
            "{image} {shell}: {}",
            got.2
        );
        let script = "trap 'echo got; exit 3' TERM; kill -TERM 1; sleep 1";
        let got = run(image, shell, script);
        assert_eq!(
            (got.0, got.1.as_str()),
            (3, "got\n"),
            "{image} {shell}: {}",
            got.2
        );
    }
}

/// Any other process still dies of them.
#[test]
fn a_child_of_pid_1_still_dies_of_sigterm_and_sigkill() {
    for (image, shell) in SHELLS {
        let script = "sleep 30 & kill -TERM $!; wait $!; echo $?; \
                      sleep 30 & kill -KILL $!; wait $!; echo $?";
        let got = run(image, shell, script);
        assert_eq!(
            (got.0, got.1.as_str()),
            (0, "143\n137\n"),
            "{image} {shell}: {}",
            got.2
        );
    }
}

/// A fault still ends pid 1 (Linux's `force_sig` makes an init killable), and so does the
/// host's `--timeout` when pid 1 shrugs everything off.
#[test]
fn pid_1_still_dies_of_a_fault_and_of_the_timeout() {
    let m = module("debian");
    let r = rvbox_run_limited(
        &m,
        &["python3", "-c", "import ctypes; ctypes.string_at(0)"],
        b"",
        60,
    );
    assert_eq!(r.status, 139, "{}", r.stderr_str());
    assert!(
        r.stderr_str().contains("killed by SIGSEGV"),
        "{}",
        r.stderr_str()
    );

    let r = rvbox(
        &[
            "run",
            "--timeout",
            "2",
            module("busybox").to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "kill -STOP 1; kill -KILL 1; sleep 30",
        ],
        b"",
    );
    assert_eq!(r.status, 124, "{}", r.stderr_str());
    assert_eq!(r.stderr_str(), "rvbox: timed out after 2s (--timeout)\n");
}

/// A host stream the host closed still ends pid 1 with SIGPIPE, as a host program's
/// output pipe would: a shell loop whose `echo` would go on after EPIPE ends when the
/// reader (`head -1` here) is gone.
#[test]
fn pid_1_still_dies_of_sigpipe_from_a_closed_host_stdout() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let m = module("busybox");
    let mut child = Command::new("timeout")
        .args(["-k", "5", "60"])
        .arg(rvbox_bin())
        .args([
            "run",
            m.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "while :; do echo y; done",
        ])
        .env("RVBOX_CACHE_DIR", scratch().join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "y\n");
    // The read end is closed here.
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        (out.status.code(), out.status.signal()),
        (Some(141), None),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
