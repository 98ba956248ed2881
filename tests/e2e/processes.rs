//! Processes, signals and threads inside one module: the C cases of tests/guest/proc.c,
//! sig.c and thread.c (image `testprogs`) and the scripts tests/programs/procs.bash
//! (bash, image `debian`), make.bash (make -j2), procs.sh (busybox sh, image `busybox`) and
//! procs.py (python3),
//! under rvbox and under the chroot oracle: qemu-riscv64-static in a chroot of the image's
//! root filesystem, which starts the programs the guest execs through binfmt_misc, with
//! /proc and /dev mounted as a container runtime would (`qemu_container_run`).
//!
//! Where qemu-user is known not to behave as Linux, the expected output is Linux's, recorded
//! from the same C source run on Linux (x86_64; nothing these cases print depends on the
//! architecture): qemu runs vfork and clone without CLONE_THREAD as a plain fork and has no
//! clone3, does not block sa_mask in a handler, drops SA_NOCLDSTOP and SA_NOCLDWAIT, gives a
//! wrong si_addr for SIGBUS, has no robust futex lists, and cannot report a failed exec from
//! python's vfork-based subprocess.

use crate::support::*;

/// Every case of a C program prints facts only (no pids, no times), so rvbox must print
/// exactly what the oracle prints, and exit the same way. A case that waits forever on a
/// missing feature is stopped after this many seconds.
const CASE_SECS: u32 = 60;
const SCRIPT_SECS: u32 = 600;

const PROC_CASES: &[&str] = &[
    "wait-status",
    "wnohang",
    "waitid",
    "zombie",
    "ids",
    "vfork",
    "exec",
    "cloexec",
    "shared-offset",
    "pipe",
    "sigpipe",
    "kill",
    "default-actions",
    "stop-cont",
    "fork-memory",
    "orphan",
    "name",
];

const SIG_CASES: &[&str] = &[
    "info",
    "fault",
    "regs",
    "mask",
    "resethand",
    "altstack",
    "sigsuspend",
    "sigtimedwait",
    "eintr",
    "sigchld",
    "timers",
];

const THREAD_CASES: &[&str] = &[
    "create-join",
    "condvar",
    "barrier",
    "futex",
    "tls",
    "signals",
    "preempt",
    "exit",
    "exec",
    "clone-thread",
    "cancel",
];

fn script(name: &str) -> String {
    let p = repo().join("tests/programs").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn show(r: &Run) -> String {
    format!(
        "status {}\n    stdout {:?}\n    stderr {:?}",
        r.status,
        r.stdout_str(),
        r.stderr_str()
    )
}

/// Runs `prog CASE` for every case under rvbox and the oracle; reports all differences in
/// status and stdout at once (stderr is empty in both unless something failed; it is shown).
fn check_cases(prog: &str, cases: &[&str]) {
    let m = module("testprogs");
    let mut bad = Vec::new();
    for case in cases {
        let args = [prog, case];
        let ours = rvbox_run_limited(&m, &args, b"", CASE_SECS);
        let oracle = qemu_container_run("testprogs.rootfs", &args, b"");
        assert!(
            oracle.status == 0 && oracle.stderr.is_empty(),
            "oracle failed on {prog} {case}: {}",
            show(&oracle)
        );
        if (ours.status, &ours.stdout) != (oracle.status, &oracle.stdout) {
            bad.push(format!(
                "{prog} {case}:\n  rvbox: {}\n  linux: {}",
                show(&ours),
                show(&oracle)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} cases differ from Linux (qemu chroot):\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
}

/// fork, vfork, execve (shebang, errors, argv/env), wait4/waitid encoding, zombies, process
/// groups and sessions, CLOEXEC, shared file offsets, pipes between processes, SIGPIPE,
/// kill to groups, default signal actions, stop/continue, copy-on-write memory, orphans
/// and PR_SET_PDEATHSIG, PR_SET_NAME.
#[test]
fn fork_exec_wait_cases_match_linux() {
    check_cases("proc", PROC_CASES);
}

/// siginfo (kill, tgkill, sigqueue, faults with si_addr), the riscv64 signal frame (every
/// integer and FP register saved, editable, restored by rt_sigreturn, synchronously and
/// from a timer while spinning), masks and pending signals, SA_RESETHAND/SA_NODEFER,
/// sigaltstack and stack overflow, sigsuspend, sigtimedwait, EINTR and SA_RESTART,
/// SIGCHLD, ITIMER_REAL, alarm and timer_create.
#[test]
fn signal_cases_match_linux() {
    check_cases("sig", SIG_CASES);
}

/// pthreads, condition variables, futex operations and a futex barrier, TLS, signals to
/// threads, preemption of spinning threads and processes, exit and exec from threads,
/// raw clone(CLONE_THREAD) with CLONE_CHILD_CLEARTID, pthread_cancel.
#[test]
fn thread_cases_match_linux() {
    check_cases("thread", THREAD_CASES);
}

/// Cases qemu-user gets wrong (see the module's comment): their output on Linux.
#[test]
fn cases_qemu_gets_wrong_match_linux() {
    let m = module("testprogs");
    let expected: &[(&str, &str, &str)] = &[
        (
            "proc",
            "vfork-shared",
            "vfork + _exit(3): parent sees the child's store 42, pids differ 1, exited 3\n\
             vfork + failed exec: errno ENOENT, exited 127\n\
             posix_spawn(/nonexistent): -ENOENT\n\
             posix_spawnp(nonexistent-program): -ENOENT\n",
        ),
        (
            "proc",
            "clone",
            "clone(CLONE_VM|CLONE_PARENT_SETTID): exited 9, ptid set 1\n  \
             shared memory: var 7; separate fd table: fd -EBADF\n\
             clone(CLONE_VM|CLONE_FILES): exited 9, var 8, fd opened by the child open here 1\n\
             clone(SIGCHLD), no CLONE_VM: exited 9, var 0\n\
             clone(CLONE_VM|CLONE_VFORK): var already 10, exited 9\n\
             exit signal SIGUSR2: waitpid(__WCLONE) child exited 9\n\
             errors: CLONE_THREAD without CLONE_SIGHAND -EINVAL, CLONE_SIGHAND without CLONE_VM -EINVAL\n",
        ),
        (
            "proc",
            "clone3",
            "clone3 as fork: exited 12, parent_tid set 1\n\
             errors: size 8 -EINVAL, exit_signal 99 -EINVAL, CLONE_THREAD alone -EINVAL, unknown flag -EINVAL\n",
        ),
        (
            "sig",
            "sa-mask",
            "sa_mask {USR2}, HUP blocked: USR1[in handler: USR1 1 USR2 1 HUP 1; interrupted mask HUP 1] \
             raised-USR2 USR2[in handler: USR1 0 USR2 1 HUP 1; interrupted mask HUP 1]\n\
             after the handler: HUP blocked 1, TERM blocked (added to uc_sigmask) 1, USR1 0\n",
        ),
        (
            "sig",
            "sigchld-flags",
            "SA_NOCLDSTOP, child stopped: SIGCHLD pending 0\n\
             SA_NOCLDSTOP, child continued: SIGCHLD pending 0\n  \
             then exit(6): SIGCHLD CLD_EXITED status 6, si_pid is the child 1\n\
             SA_NOCLDWAIT: wait() -ECHILD, handler ran 1: CLD_EXITED status 7\n",
        ),
        (
            "sig",
            "sigbus",
            "within the file: 4, rest of its page zero 1\n\
             read beyond the end of the file: SIGBUS si_code 2 (BUS_ADRERR 2), si_addr right 1\n\
             write beyond the end of the file: SIGBUS si_code 2, si_addr right 1\n\
             read beyond the end of the file: SIGBUS si_code 2 (BUS_ADRERR 2), si_addr right 1\n\
             write beyond the end of the file: SIGBUS si_code 2, si_addr right 1\n\
             after ftruncate: 0\n",
        ),
        (
            "thread",
            "robust",
            "lock after the owner died: EOWNERDEAD\n\
             pthread_mutex_consistent: 0\n\
             lock again: 0\n\
             process-shared, after the owner process exited: EOWNERDEAD\n",
        ),
    ];
    let mut bad = Vec::new();
    for (prog, case, want) in expected {
        let ours = rvbox_run_limited(&m, &[prog, case], b"", CASE_SECS);
        if (ours.status, ours.stdout_str().as_str()) != (0, *want) {
            bad.push(format!(
                "{prog} {case}:\n  rvbox: {}\n  linux: status 0\n    stdout {want:?}",
                show(&ours)
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// A script, run by `args` with the script text as the last argument, under rvbox and the
/// oracle: status, stdout and stderr must be the same, and the status 0.
fn check_script(image: &str, args: &[&str], stdin: &[u8]) {
    let m = module(image);
    let ours = rvbox_run_limited(&m, args, stdin, SCRIPT_SECS);
    let oracle = qemu_container_run(&format!("{image}.rootfs"), args, stdin);
    assert_eq!(oracle.status, 0, "oracle: {}", show(&oracle));
    if (ours.status, &ours.stdout, &ours.stderr) != (0, &oracle.stdout, &oracle.stderr) {
        // Line by line, for a readable report of a long output.
        let (o, q) = (ours.stdout_str(), oracle.stdout_str());
        let first = o
            .lines()
            .zip(q.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(o.lines().count().min(q.lines().count()));
        panic!(
            "{} differs from Linux (qemu chroot); stdout from line {}:\n  rvbox: {:?}\n  linux: {:?}\n\
             rvbox: status {} stderr {:?}\nlinux: status {} stderr {:?}",
            args[0],
            first + 1,
            o.lines().skip(first).take(5).collect::<Vec<_>>(),
            q.lines().skip(first).take(5).collect::<Vec<_>>(),
            ours.status,
            ours.stderr_str(),
            oracle.status,
            oracle.stderr_str()
        );
    }
}

/// The harness itself, on what works without a second process: shell builtins only.
#[test]
fn shell_builtins_without_a_fork() {
    check_script(
        "debian",
        &[
            "bash",
            "-c",
            "echo one; x=$((6 * 7)); echo \"$x\"; printf '%s|' a b; echo; \
             for i in 1 2 3; do echo -n $i; done; echo; [[ abc == a* ]] && echo match; \
             f() { return 3; }; f; echo \"status $?\"",
        ],
        b"",
    );
}

/// Pipelines, subshells, command substitution, jobs and wait, kill, traps, exit codes and
/// PIPESTATUS, here-documents, process substitution, xargs -P2, find -exec {} + and \;,
/// coproc, timeout.
#[test]
fn bash_script_with_pipelines_jobs_and_traps() {
    check_script("debian", &["bash", "-c", &script("procs.bash")], b"");
}

/// make -j2 on a small makefile: parallel recipes through /bin/sh (dash), the jobserver, a
/// recursive make, failing recipes and -k.
#[test]
fn make_j2_on_a_small_makefile() {
    check_script("debian", &["bash", "-c", &script("make.bash")], b"");
}

/// The same kinds of things in busybox's ash.
#[test]
fn busybox_sh_script_with_pipelines_jobs_and_traps() {
    check_script("busybox", &["sh", "-c", &script("procs.sh")], b"");
}

/// subprocess, os.fork/waitpid/pipe, multiprocessing (fork), threading, concurrent.futures,
/// signal.
#[test]
fn python_subprocess_multiprocessing_threading_signal() {
    check_script("debian", &["python3", "-"], script("procs.py").as_bytes());
}

/// subprocess reports a failed exec as an exception (through its vfork child: qemu-user
/// cannot, so the expected output is Linux's).
#[test]
fn python_subprocess_exec_failures_raise() {
    let m = module("debian");
    let code = "import subprocess\n\
                for prog in ['/nonexistent/program', '/etc/passwd', '/tmp']:\n    \
                    try:\n        subprocess.run([prog])\n    \
                    except OSError as e:\n        print(type(e).__name__, e.errno, e.filename)\n";
    let ours = rvbox_run_limited(&m, &["python3", "-c", code], b"", CASE_SECS);
    assert_eq!(
        (ours.status, ours.stdout_str().as_str()),
        (
            0,
            "FileNotFoundError 2 /nonexistent/program\n\
             PermissionError 13 /etc/passwd\n\
             PermissionError 13 /tmp\n"
        ),
        "{}",
        show(&ours)
    );
}
