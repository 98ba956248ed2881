//! `rvbox run`'s options as `docker run` has them (-w, --entrypoint, -u, --env-file) and its
//! limits (--memory, --timeout), under `rvbox run` and, with the same options, under Node's
//! runner (`runner/node/run.mjs`), which must say and do the same. Each option and each
//! misuse has a test.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// `rvbox run OPTS MODULE -- ARGS` and the same under Node.
fn both(opts: &[&str], module: &Path, args: &[&str]) -> (Run, Run) {
    (
        rvbox_opts(opts, module, args, b""),
        node_opts(opts, module, args, b""),
    )
}

fn rvbox_opts(opts: &[&str], module: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["run"];
    all.extend_from_slice(opts);
    all.push(module.to_str().unwrap());
    all.push("--");
    all.extend_from_slice(args);
    rvbox(&all, stdin)
}

fn node_opts(opts: &[&str], module: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = opts.to_vec();
    all.push(module.to_str().unwrap());
    all.push("--");
    all.extend_from_slice(args);
    node_run_raw(&all, stdin)
}

/// run.mjs with exactly these arguments.
fn node_run_raw(args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = node_command();
    cmd.args(args);
    run_cmd(cmd, stdin)
}

/// Both runners give `status` and `stdout`, and the same stderr.
#[track_caller]
fn both_give(opts: &[&str], module: &Path, args: &[&str], status: i32, stdout: &str) -> Run {
    let (r, n) = both(opts, module, args);
    assert_eq!(
        (r.status, r.stdout_str().as_str()),
        (status, stdout),
        "rvbox run {opts:?} -- {args:?}: {}",
        r.stderr_str()
    );
    assert_eq!(n, r, "node differs from rvbox run: {opts:?} -- {args:?}");
    r
}

/// Both runners refuse with status 125 and the one-line message `msg`.
#[track_caller]
fn both_refuse(opts: &[&str], module: &Path, args: &[&str], msg: &str) {
    let (r, n) = both(opts, module, args);
    for (who, run) in [("rvbox run", &r), ("node", &n)] {
        assert_eq!(run.status, 125, "{who} {opts:?}: {run:?}");
        assert_eq!(
            run.stderr_str(),
            format!("rvbox: {msg}\n"),
            "{who} {opts:?}"
        );
        assert_eq!(run.stdout_str(), "", "{who} {opts:?}");
    }
}

#[test]
fn workdir_is_used_and_created() {
    let m = module("busybox");
    both_give(&["-w", "/srv/app/data"], &m, &["pwd"], 0, "/srv/app/data\n");
    both_give(
        &["--workdir=/tmp"],
        &m,
        &["sh", "-c", "pwd; ls -d /tmp"],
        0,
        "/tmp\n/tmp\n",
    );
    // Created as a directory, and a relative path in the command finds it.
    both_give(
        &["--workdir", "/new/dir"],
        &m,
        &[
            "sh",
            "-c",
            "echo hi > f; cat /new/dir/f; test -d /new && echo dir",
        ],
        0,
        "hi\ndir\n",
    );
}

/// The working directory may be in a volume (mounted before it is made).
#[test]
fn workdir_in_a_volume() {
    let m = module("busybox");
    let host = fresh_dir("run-options-workdir-volume");
    let vol = format!("{}:/data", host.display());
    both_give(
        &["-v", &vol, "-w", "/data/sub"],
        &m,
        &["sh", "-c", "pwd; echo hi > f"],
        0,
        "/data/sub\n",
    );
    assert_eq!(std::fs::read_to_string(host.join("sub/f")).unwrap(), "hi\n");
}

#[test]
fn workdir_must_be_absolute() {
    let m = module("busybox");
    both_refuse(
        &["-w", "srv"],
        &m,
        &["pwd"],
        "--workdir (RVBOX_WORKDIR) \"srv\": the working directory must be an absolute path",
    );
    both_refuse(
        &["-w", "/etc/passwd"],
        &m,
        &["pwd"],
        "working directory /etc/passwd: not a directory",
    );
}

#[test]
fn entrypoint_replaces_the_images_and_drops_its_cmd() {
    // busybox's image: no Entrypoint, Cmd ["sh"].
    let m = module("busybox");
    both_give(&["--entrypoint", "echo"], &m, &["a", "b"], 0, "a b\n");
    // The image's Cmd ("sh") is not appended: echo prints an empty line.
    both_give(&["--entrypoint", "/bin/echo"], &m, &[], 0, "\n");
    // One program: the value is not split into words.
    let (r, _) = both(&["--entrypoint", "echo x"], &m, &[]);
    assert_eq!(r.status, 127, "{r:?}");
    // Empty: no entrypoint, the command alone.
    both_give(&["--entrypoint="], &m, &["echo", "alone"], 0, "alone\n");
    both_give(&["--entrypoint", ""], &m, &["true"], 0, "");
}

#[test]
fn empty_entrypoint_without_a_command_is_refused() {
    let m = module("busybox");
    both_refuse(
        &["--entrypoint", ""],
        &m,
        &[],
        "no command: --entrypoint (RVBOX_ENTRYPOINT) is empty and no command was given; \
         name one (rvbox run MODULE -- CMD ARGS...)",
    );
}

#[test]
fn user_by_name_and_by_number() {
    let m = module("busybox");
    both_give(
        &["-u", "nobody"],
        &m,
        &["id"],
        0,
        "uid=65534(nobody) gid=65534(nogroup)\n",
    );
    both_give(
        &["--user", "daemon:mail"],
        &m,
        &["id", "-un"],
        0,
        "daemon\n",
    );
    both_give(&["-u", "daemon:mail"], &m, &["id", "-g"], 0, "8\n");
    both_give(
        &["-u", "1"],
        &m,
        &["id"],
        0,
        "uid=1(daemon) gid=1(daemon)\n",
    );
    // A uid the image does not know is fine, as with docker.
    both_give(&["-u", "4242:4343"], &m, &["id"], 0, "uid=4242 gid=4343\n");
    // The files it creates are its own; HOME is its home.
    both_give(
        &["-u", "nobody", "-w", "/tmp"],
        &m,
        &["sh", "-c", "touch f; stat -c '%u %g' f; echo $HOME"],
        0,
        "65534 65534\n/home\n",
    );
    // Debian's: a user with supplementary groups (`id` uses glibc's NSS).
    let d = module("debian");
    let r = rvbox_opts(&["-u", "www-data"], &d, &["id"], b"");
    assert_eq!(
        (r.status, r.stdout_str().as_str()),
        (0, "uid=33(www-data) gid=33(www-data) groups=33(www-data)\n"),
        "{}",
        r.stderr_str()
    );
}

#[test]
fn unknown_user_or_group_is_refused() {
    let m = module("busybox");
    both_refuse(
        &["-u", "nosuchuser"],
        &m,
        &["id"],
        "--user (RVBOX_USER): user \"nosuchuser\" is not in the image's /etc/passwd",
    );
    both_refuse(
        &["-u", "nobody:nosuchgroup"],
        &m,
        &["id"],
        "--user (RVBOX_USER): group \"nosuchgroup\" is not in the image's /etc/group",
    );
}

#[test]
fn env_file_lines_comments_host_values_and_precedence() {
    let m = module("busybox");
    let dir = tempfile::tempdir().unwrap();
    let f1 = dir.path().join("one.env");
    std::fs::write(
        &f1,
        "# a comment\n\nA=1\n  B=two words \nC=\"quoted\" 'as is'\nHOSTPASS_TEST_VAR\nUNSETPASS_TEST_VAR\nD=from file\nE=x=y\n",
    )
    .unwrap();
    let f2 = dir.path().join("two.env");
    std::fs::write(&f2, "A=second file\r\n#D=commented out\n").unwrap();
    let script = "env | sort";
    let opts = [
        "--env-file",
        f1.to_str().unwrap(),
        "--env-file",
        f2.to_str().unwrap(),
        "-e",
        "D=from -e",
    ];
    let with_host = |mut cmd: Command| {
        cmd.env("HOSTPASS_TEST_VAR", "host value")
            .env_remove("UNSETPASS_TEST_VAR");
        run_cmd(cmd, b"")
    };
    let mut rvbox_cmd = Command::new(rvbox_bin());
    rvbox_cmd
        .arg("run")
        .args(opts)
        .arg(&m)
        .args(["--", "sh", "-c", script])
        .env("RVBOX_CACHE_DIR", scratch().join("cache"));
    let r = with_host(rvbox_cmd);
    let mut node_cmd = node_command();
    node_cmd.args(opts).arg(&m).args(["--", "sh", "-c", script]);
    let n = with_host(node_cmd);
    // The variables this test is about, in the order `env | sort` lists them.
    let ours = |run: &Run| -> String {
        run.stdout_str()
            .lines()
            .filter(|l| {
                l.len() > 1
                    && (&l[1..2] == "="
                        || l.starts_with("HOSTPASS_")
                        || l.starts_with("UNSETPASS_"))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let want = "A=second file\nB=two words \nC=\"quoted\" 'as is'\nD=from -e\nE=x=y\n\
                HOSTPASS_TEST_VAR=host value\n";
    assert_eq!(
        (r.status, ours(&r).as_str()),
        (0, want),
        "{}",
        r.stderr_str()
    );
    assert_eq!(n, r, "node differs from rvbox run");
}

#[test]
fn env_file_missing_or_malformed_is_refused() {
    let m = module("busybox");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.env");
    let missing = missing.to_str().unwrap();
    both_refuse(
        &["--env-file", missing],
        &m,
        &["true"],
        &format!("--env-file {missing}: No such file or directory (os error 2)"),
    );
    let bad = dir.path().join("bad.env");
    std::fs::write(&bad, "OK=1\nMY VAR=x\n").unwrap();
    let bad = bad.to_str().unwrap();
    both_refuse(
        &["--env-file", bad],
        &m,
        &["true"],
        &format!("--env-file {bad}: line 2: the variable name \"MY VAR\" contains spaces"),
    );
}

#[test]
fn misuse_is_125_with_a_message() {
    let m = module("busybox");
    for opts in [&["--no-such-option"][..], &["--memory"]] {
        let r = rvbox(&[&["run"][..], opts].concat(), b"");
        assert_eq!(r.status, 125, "{opts:?}: {r:?}");
        assert!(r.stderr_str().starts_with("rvbox: "), "{opts:?}: {r:?}");
        let n = node_run_raw(opts, b"");
        assert_eq!(n.status, 125, "{opts:?}: {n:?}");
        assert!(n.stderr_str().starts_with("rvbox: "), "{opts:?}: {n:?}");
    }
    for (opts, msg) in [
        (
            ["--memory", "lots"],
            "--memory (RVBOX_MEMORY) \"lots\": not a size: give bytes, or a number with a \
             unit b, k, m or g (e.g. 512m, 2g)",
        ),
        (
            ["--memory", "5m"],
            "--memory (RVBOX_MEMORY) 5m: too little: the minimum is 6 MiB (as docker's)",
        ),
        (
            ["--timeout", "soon"],
            "--timeout (RVBOX_TIMEOUT) \"soon\": not a duration: give seconds, or a number \
             with a unit ms, s, m or h (e.g. 10, 1.5s, 500ms, 2m)",
        ),
    ] {
        both_refuse(&opts, &m, &["true"], msg);
    }
    // More than a wasm32 module can give: the guest says how much it can.
    let (r, n) = both(&["--memory", "16g"], &m, &["true"]);
    assert_eq!(r.status, 125, "{r:?}");
    assert!(
        r.stderr_str()
            .starts_with("rvbox: --memory (RVBOX_MEMORY) 16384 MiB: more than this module can give its guest, at most "),
        "{r:?}"
    );
    assert_eq!(n, r);
}

/// The peak RSS (KiB) of `rvbox ARGS` run to its end, and what it did. The module (the
/// argument after `run` and its options) is compiled first: the compiler's own memory is
/// not what is measured.
fn rvbox_peak_rss(module: &Path, args: &[&str]) -> (Run, u64) {
    let warm = rvbox_run(module, &["true"], b"");
    assert_eq!(warm.status, 0, "{warm:?}");
    // Reaped by wait4 below, which also gives its rusage.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(rvbox_bin())
        .args(args)
        .env("RVBOX_CACHE_DIR", scratch().join("cache"))
        .env_remove("RVBOX_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    let mut status = 0;
    // SAFETY: all-zero bytes are a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; the pointers are valid for the call.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    assert_eq!(pid, child.id() as libc::pid_t);
    let status = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let run = Run {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    };
    (run, ru.ru_maxrss as u64)
}

const OOM_64M: &str = "out of memory: the container's memory limit of 64 MiB (--memory) is used up";

/// A guest that allocates without end is killed at its limit, as by the OOM killer, and
/// rvbox's own memory stays near the limit (without one it would grow to GiBs).
#[test]
fn memory_limit_kills_a_guest_that_allocates_without_end() {
    let m = module("debian");
    let grow = "x = []\nwhile True: x.append(b'x' * (1 << 20))";
    let args = [
        "run",
        "--memory",
        "64m",
        m.to_str().unwrap(),
        "--",
        "python3",
        "-c",
        grow,
    ];
    let (r, rss_kib) = rvbox_peak_rss(&m, &args);
    assert_eq!(r.status, 137, "{r:?}");
    assert_eq!(
        r.stderr_str(),
        format!("rvbox: python3 (pid 1) killed by SIGKILL: {OOM_64M}\n")
    );
    assert!(rss_kib < 320 << 10, "rvbox used {} MiB", rss_kib >> 10);
    let n = node_opts(&["--memory", "64m"], &m, &["python3", "-c", grow], b"");
    assert_eq!(n, r, "node");
}

/// Many big processes share one limit: each counts, copies made on write count, and
/// those that do not fit are killed; rvbox's memory stays bounded.
#[test]
fn memory_limit_bounds_a_fork_bomb_of_big_processes() {
    let m = module("debian");
    // Twelve children each write their own copy of 48 MiB (copy-on-write after fork) and
    // hold it; the next is made when the last holds its copy or has died trying.
    let script = r#"
import os, select
big = bytearray(b'x' * (48 << 20))
hold_r, hold_w = os.pipe()
ready_r, ready_w = os.pipe()
status = {}
for i in range(12):
    pid = os.fork()
    if pid == 0:
        os.close(hold_w)
        for j in range(0, len(big), 4096):
            big[j] = 1
        os.write(ready_w, b'r')
        os.read(hold_r, 1)
        os._exit(0)
    while True:
        if select.select([ready_r], [], [], 0.05)[0]:
            os.read(ready_r, 1)
            status[pid] = None
            break
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status[pid] = st
            break
os.close(hold_w)
for pid, st in status.items():
    if st is None:
        status[pid] = os.waitpid(pid, 0)[1]
killed = sum(os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9 for st in status.values())
print('killed', killed, 'of', len(status))
"#;
    let args = [
        "run",
        "--memory",
        "128m",
        m.to_str().unwrap(),
        "--",
        "python3",
        "-c",
        script,
    ];
    let (r, rss_kib) = rvbox_peak_rss(&m, &args);
    let err = r.stderr_str();
    assert!(
        err.contains("killed by SIGKILL: out of memory: the container's memory limit of 128 MiB (--memory) is used up"),
        "{r:?}"
    );
    // The parent may be the one that finds no room (it writes too, after each fork).
    match r.status {
        0 => {
            let out = r.stdout_str();
            let killed: u32 = out
                .strip_prefix("killed ")
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{out}"));
            assert!((1..12).contains(&killed), "{out}");
        }
        137 => {}
        s => panic!("status {s}: {r:?}"),
    }
    // Without the limit: 13 processes of more than 48 MiB each (about 680 MiB).
    assert!(rss_kib < 320 << 10, "rvbox used {} MiB", rss_kib >> 10);
}

/// Linux's heuristic overcommit: one private writable mapping larger than all the memory
/// fails with ENOMEM; a smaller one succeeds (pages count only when written); a larger
/// brk fails too. What the guest sees as its RAM is the limit; its address space is not
/// limited (as in a container).
#[test]
fn memory_limit_refuses_larger_mappings_and_is_the_guests_ram() {
    let m = module("debian");
    let script = "import ctypes, mmap, resource\n\
        try:\n    mmap.mmap(-1, 128 << 20, flags=mmap.MAP_PRIVATE)\nexcept OSError as e:\n    print(e)\n\
        m = mmap.mmap(-1, 48 << 20, flags=mmap.MAP_PRIVATE)\nprint('48 MiB:', len(m))\n\
        libc = ctypes.CDLL(None, use_errno=True)\nlibc.sbrk.restype = ctypes.c_void_p\n\
        print('sbrk:', libc.sbrk(ctypes.c_long(128 << 20)) == 2**64 - 1, ctypes.get_errno())\n\
        print(open('/proc/meminfo').readline().split())\n\
        print(open('/sys/fs/cgroup/memory.max').read().strip())\n\
        print(resource.getrlimit(resource.RLIMIT_AS))";
    both_give(
        &["--memory", "64m"],
        &m,
        &["python3", "-c", script],
        0,
        "[Errno 12] Cannot allocate memory\n48 MiB: 50331648\nsbrk: True 12\n\
         ['MemTotal:', '65536', 'kB']\n67108864\n(-1, -1)\n",
    );
}

/// Files written to the in-memory layer count against the limit: they may fill half of
/// it (as a tmpfs is half the memory), then writes fail with ENOSPC, and rvbox's own memory
/// stays bounded. (`df` of the root's layer counts the image as used on top of that half.)
#[test]
fn memory_limit_makes_files_in_memory_run_out_of_space() {
    let m = module("busybox");
    let cmd = "dd if=/dev/zero of=/tmp/big bs=1M count=1000 2>/dev/null; echo dd $?; \
               ls -l /tmp/big | awk '{print $5}'; df -k /tmp | tail -1 | awk '{print ($2 > 32768), $4}'; \
               rm /tmp/big; df -k /tmp | tail -1 | awk '{print $4}'";
    let args = [
        "run",
        "--memory",
        "64m",
        m.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        cmd,
    ];
    let (r, rss_kib) = rvbox_peak_rss(&m, &args);
    let want = "dd 1\n33554432\n1 0\n32768\n";
    assert_eq!((r.status, r.stdout_str().as_str()), (0, want), "{r:?}");
    assert!(rss_kib < 512 << 10, "rvbox used {} MiB", rss_kib >> 10);
    let n = node_opts(&["--memory", "64m"], &m, &args[5..], b"");
    assert_eq!((n.status, n.stdout_str().as_str()), (0, want), "{n:?}");
}

/// How long `f` takes, and what it returned.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t0 = Instant::now();
    let v = f();
    (v, t0.elapsed())
}

/// Compiles the module with epoch interruption into the cache, so that timing a run does
/// not time the compiler.
fn warm_timeout_cache(m: &Path) {
    let r = rvbox_opts(&["--timeout", "100"], m, &["true"], b"");
    assert_eq!(r.status, 0, "{r:?}");
}

#[test]
fn timeout_ends_a_sleeping_guest() {
    let m = module("busybox");
    warm_timeout_cache(&m);
    for opts in [&["--timeout", "2"][..], &["--timeout=2s"]] {
        let (r, took) = timed(|| rvbox_opts(opts, &m, &["sleep", "100"], b""));
        assert_eq!(r.status, 124, "{r:?}");
        assert_eq!(r.stderr_str(), "rvbox: timed out after 2s (--timeout)\n");
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(12),
            "{took:?}"
        );
    }
    let (n, took) = timed(|| node_opts(&["--timeout", "2"], &m, &["sleep", "100"], b""));
    assert_eq!(n.status, 124, "{n:?}");
    assert_eq!(n.stderr_str(), "rvbox: timed out after 2s (--timeout)\n");
    assert!(took < Duration::from_secs(12), "{took:?}");
}

#[test]
fn timeout_ends_a_busy_guest_and_its_children() {
    let m = module("busybox");
    warm_timeout_cache(&m);
    let spin = ["sh", "-c", "(while :; do :; done) & while :; do :; done"];
    let (r, took) = timed(|| rvbox_opts(&["--timeout", "1500ms"], &m, &spin, b""));
    assert_eq!(r.status, 124, "{r:?}");
    assert_eq!(
        r.stderr_str(),
        "rvbox: timed out after 1500ms (--timeout)\n"
    );
    assert!(took < Duration::from_secs(12), "{took:?}");
    let (n, took) = timed(|| node_opts(&["--timeout", "1500ms"], &m, &spin, b""));
    assert_eq!(n, r, "node");
    assert!(took < Duration::from_secs(12), "{took:?}");
    // A run that ends in time is not touched.
    both_give(
        &["--timeout", "1m"],
        &m,
        &["echo", "in time"],
        0,
        "in time\n",
    );
}

/// A guest blocked in a host read of stdin (a pipe nobody closes) cannot be interrupted:
/// rvbox's watchdog ends the run.
#[test]
fn timeout_ends_a_guest_waiting_on_stdin() {
    let m = module("busybox");
    warm_timeout_cache(&m);
    let t0 = Instant::now();
    let mut child = Command::new(rvbox_bin())
        .args(["run", "--timeout", "2", m.to_str().unwrap(), "--", "cat"])
        .env("RVBOX_CACHE_DIR", scratch().join("cache"))
        .env_remove("RVBOX_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap(); // kept open until the end
    let out = child.wait_with_output().unwrap();
    let took = t0.elapsed();
    drop(stdin);
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "rvbox: timed out after 2s (--timeout)\n"
    );
    assert!(took < Duration::from_secs(12), "{took:?}");
}
