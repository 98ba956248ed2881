//! Large environments: thousands of variables from `--env-file`, and Linux's execve limits
//! on them (`bprm_stack_limits`, `copy_strings`): each string at most `MAX_ARG_STRLEN`
//! (128 KiB) with its NUL, all strings and their pointers within a quarter of the 8 MiB
//! stack limit (2 MiB).
//!
//! Regression: the boot searched the whole environment for each variable it added (20,000
//! variables took a second before the first instruction), and no exec checked the
//! combined size, so a container Linux (and so Docker) refuses to start ran.

use crate::support::*;

/// An env file of `n` variables of 100 bytes each (`V00000=xxx...`).
fn env_file(name: &str, n: usize) -> std::path::PathBuf {
    let path = scratch().join(name);
    let mut text = String::with_capacity(n * 101);
    for i in 0..n {
        let key = format!("V{i:05}=");
        text.push_str(&key);
        text.push_str(&"x".repeat(100 - key.len()));
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn run_with_env_file(file: &std::path::Path, image: &str, args: &[&str]) -> Run {
    let mut all = vec![
        "run",
        "--env-file",
        file.to_str().unwrap(),
        "--timeout",
        "120",
    ];
    let m = module(image);
    all.push(m.to_str().unwrap());
    all.push("--");
    all.extend_from_slice(args);
    rvbox(&all, b"")
}

/// 15,000 variables of 100 bytes (1.6 MiB with their pointers: they fit) reach `sh` and
/// the programs it starts. (Debian's sh, dash. busybox's sh runs `env` as an applet in
/// its child after a glibc `putenv` per variable, each a scan of the whole list: that is
/// quadratic in the guest, on Linux too, and takes most of a minute here.)
#[test]
fn fifteen_thousand_variables_reach_sh_and_its_children() {
    let script = "env | wc -l";
    let none = rvbox_run(&module("debian"), &["sh", "-c", script], b"");
    assert_eq!(none.status, 0, "{}", none.stderr_str());
    let base: usize = none.stdout_str().trim().parse().unwrap();
    let f = env_file("env-15000", 15_000);
    let r = run_with_env_file(&f, "debian", &["sh", "-c", script]);
    assert_eq!(
        (r.status, r.stdout_str()),
        (0, format!("{}\n", base + 15_000)),
        "{}",
        r.stderr_str()
    );
}

/// 20,000 variables of 100 bytes are over the 2 MiB: Linux's execve of the first program
/// fails with E2BIG (Docker cannot start such a container: "argument list too long"), and
/// so does the boot's.
#[test]
fn twenty_thousand_variables_are_too_many_to_start_a_program() {
    let f = env_file("env-20000", 20_000);
    let r = run_with_env_file(&f, "debian", &["sh", "-c", "env | wc -l"]);
    assert_eq!(
        (r.status, r.stdout_str().as_str(), r.stderr_str().as_str()),
        (126, "", "rvbox: sh: cannot run: argument list too long\n")
    );
}

/// execve's limits as Linux applies them (the qemu chroot oracle: its guest's execve is
/// the host kernel's): around 2 MiB of strings and pointers together, and 128 KiB for one
/// string. (binfmt_misc adds qemu's path to the strings, so the sizes stay 1 KiB away from
/// the limit, not a byte.)
#[test]
fn execve_limits_match_linux() {
    let probe = r#"
import os, resource
soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, hard))
def size(argv, env, filename):
    strings = [filename] + argv + [k + "=" + v for k, v in env.items()]
    return sum(len(s.encode()) + 1 for s in strings) + 8 * (max(len(argv), 1) + len(env))
def try_exec(env):
    pid = os.fork()
    if pid == 0:
        try:
            os.execve("/bin/true", ["true"], env)
        except OSError as e:
            os._exit(100 + e.errno)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
def outcome(status):
    return {0: "ran", 107: "E2BIG"}.get(status, "status %d" % status)
for delta in (-1024, 1024):
    target = (2 << 20) + delta
    env = {"PATH": os.environ["PATH"], "LAST": ""}
    n = (target - size(["true"], env, "/bin/true")) // 109
    env.update(("F%05d" % i, "x" * 93) for i in range(n))
    env["LAST"] = "x" * (target - size(["true"], env, "/bin/true"))
    assert size(["true"], env, "/bin/true") == target
    print("2 MiB %+d:" % delta, outcome(try_exec(env)))
for n in (131071, 131072):
    env = {"BIG": "x" * (n - len("BIG="))}
    print("one string of %d bytes:" % n, outcome(try_exec(env)))
"#;
    let args = ["python3", "-c", probe];
    let ours = rvbox_run(&module("debian"), &args, b"");
    let oracle = qemu_container_run("debian.rootfs", &args, b"");
    let want = "2 MiB -1024: ran\n2 MiB +1024: E2BIG\n\
                one string of 131071 bytes: ran\none string of 131072 bytes: E2BIG\n";
    assert_eq!(
        (oracle.status, oracle.stdout_str().as_str()),
        (0, want),
        "oracle: {}",
        oracle.stderr_str()
    );
    assert_eq!(
        (ours.status, ours.stdout_str().as_str()),
        (0, want),
        "{}",
        ours.stderr_str()
    );
}
