//! Dynamically linked Debian programs (image `debian`: trixie riscv64, glibc) doing real
//! work, one process each, against qemu-riscv64 running the same binaries in a chroot of
//! the image's root filesystem (`qemu_chroot_run`). Scripts live in `tests/programs/`;
//! inputs are generated here, the same bytes for both.

use crate::support::*;

fn script(name: &str) -> String {
    let p = repo().join("tests/programs").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One command; its status, stdout and stderr must equal the oracle's (after `normalize`).
struct Case {
    env: Vec<&'static str>,
    args: Vec<String>,
    stdin: Vec<u8>,
    /// Applied to stdout and stderr of both runs (for output that depends on time, or on
    /// the host's directory order).
    normalize: fn(&str) -> String,
    must_succeed: bool,
}

fn same(s: &str) -> String {
    s.to_string()
}

/// Lines sorted: for programs that list directories in readdir order, which is the host
/// file system's under qemu and ours under rvbox.
fn sorted_lines(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v.join("\n")
}

fn case(args: &[&str]) -> Case {
    Case {
        env: vec![],
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: vec![],
        normalize: same,
        must_succeed: false,
    }
}

impl Case {
    fn stdin(mut self, data: impl Into<Vec<u8>>) -> Case {
        self.stdin = data.into();
        self
    }
    fn env(mut self, env: &[&'static str]) -> Case {
        self.env = env.to_vec();
        self
    }
    fn normalize(mut self, f: fn(&str) -> String) -> Case {
        self.normalize = f;
        self
    }
    /// The command must also exit 0 (so that two equal failures do not pass).
    fn succeeds(mut self) -> Case {
        self.must_succeed = true;
        self
    }
}

/// Runs every case under rvbox and qemu and reports all differences at once.
fn check(cases: Vec<Case>) {
    let m = module("debian");
    let mut failures = Vec::new();
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(|s| s.as_str()).collect();
        let ours = rvbox_run_env(&m, &c.env, &args, &c.stdin);
        let oracle = qemu_chroot_run("debian.rootfs", &c.env, &args, &c.stdin);
        let view = |r: &Run| {
            (
                r.status,
                (c.normalize)(&r.stdout_str()),
                (c.normalize)(&r.stderr_str()),
            )
        };
        let (o, q) = (view(&ours), view(&oracle));
        if c.must_succeed && o.0 != 0 {
            failures.push(format!("{:?}: exit status {}: {}", c.args, o.0, o.2));
        } else if o != q {
            let short: Vec<String> = args
                .iter()
                .map(|a| a.chars().take(60).collect::<String>())
                .collect();
            failures.push(format!(
                "{short:?}\n  rvbox: status {} stdout {:?} stderr {:?}\n  qemu:  status {} stdout {:?} stderr {:?}",
                o.0, o.1, o.2, q.0, q.1, q.2
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from qemu-riscv64:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Deterministic text with some structure, so compressors have real work to do.
fn text_input(bytes: usize) -> Vec<u8> {
    let words = [
        "riscv",
        "wasm",
        "module",
        "kernel",
        "emulator",
        "container",
        "image",
        "layer",
        "the",
        "of",
        "a",
        "page",
        "syscall",
        "signal",
        "pipe",
        "debian",
    ];
    let mut out = Vec::with_capacity(bytes + 64);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while out.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w = words[(x % words.len() as u64) as usize];
        out.extend_from_slice(w.as_bytes());
        out.push(if x >> 60 == 0 { b'\n' } else { b' ' });
        if x >> 56 == 1 {
            out.extend_from_slice(format!("{} ", x % 100_000).as_bytes());
        }
    }
    out.truncate(bytes);
    out
}

#[test]
fn python_standard_library() {
    check(vec![
        case(&["python3", "-"]).stdin(script("stdlib.py")).succeeds(),
        case(&["python3", "-c", "import sys; print(sys.version_info[:2], sys.platform, sys.byteorder, sys.maxsize, sys.prefix, sys.executable)"]),
        case(&["python3", "-c", "import os; print(os.uname().machine, os.getcwd(), os.path.realpath('/bin/python3'), sorted(os.listdir('/usr/lib/python3.13/json')))"]),
        case(&["python3", "-c", "raise SystemExit(7)"]),
        case(&["python3", "-c", "import nosuchmodule"]),
        case(&["python3", "-c", "print(sum(range(10**6)), 2**521 - 1)"]),
    ]);
}

/// Pipes, socket pairs, select/selectors/epoll, eventfd, memfd and asyncio's event loop
/// (epoll and a self-pipe) in one process.
#[test]
fn python_ipc_and_asyncio() {
    check(vec![case(&["python3", "-"])
        .stdin(script("ipc.py"))
        .succeeds()]);
}

/// CPU-time clocks and timers: setitimer's ITIMER_VIRTUAL/ITIMER_PROF, process_time,
/// getrusage and times of reaped children.
#[test]
fn python_cpu_time_timers_and_rusage() {
    check(vec![case(&["python3", "-"])
        .stdin(script("cputime.py"))
        .succeeds()]);
}

/// Two modules of CPython's own test suite (package libpython3.13-testsuite).
#[test]
fn python_unittest_from_its_own_test_suite() {
    fn drop_timing(s: &str) -> String {
        // "Ran 42 tests in 0.123s"
        s.lines()
            .map(|l| match l.find(" tests in ") {
                Some(i) if l.starts_with("Ran ") => l[..i].to_string(),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
    let args = [
        "python3",
        "-m",
        "unittest",
        "-v",
        "test.test_textwrap",
        "test.test_string",
    ];
    check(vec![case(&args).normalize(drop_timing).succeeds()]);
}

#[test]
fn perl_lua_awk_and_jq_scripts() {
    let people = r#"{"people":[{"name":"ann","age":31,"city":"Oslo"},{"name":"bo","age":12,"city":"Lima"},{"name":"cy","age":45,"city":"Oslo"},{"name":"di","age":18,"city":"Pune"}]}"#;
    check(vec![
        case(&["perl", "-"]).stdin(script("tour.pl")).succeeds(),
        case(&[
            "perl",
            "-MConfig",
            "-e",
            "print \"$Config{archname} $Config{ivsize}\\n\"",
        ]),
        case(&["lua5.4", "-"]).stdin(script("tour.lua")).succeeds(),
        case(&["gawk", &script("tour.awk"), "/etc/passwd"]).succeeds(),
        case(&["awk", "-F:", "$3 >= 100 { print $1 }", "/etc/passwd"]),
        case(&["jq", &script("tour.jq")]).stdin(people).succeeds(),
        case(&["jq", "-c", ".people | map(.age) | add / length"]).stdin(people),
        case(&["jq", ".nope | .x"]).stdin("[1]"),
    ]);
}

#[test]
fn sqlite3_cli_on_a_database_file() {
    // The oracle's file lands in the oracle's rootfs: give it its own name, remove it after.
    let m = module("debian");
    let sql = script("tour.sql");
    let ours = rvbox_run(&m, &["sqlite3", "/tmp/tour.db"], sql.as_bytes());
    let name = format!("/tmp/tour-{}.db", std::process::id());
    let host_db = images().join(format!("debian.rootfs{name}"));
    let _ = std::fs::remove_file(&host_db);
    let oracle = qemu_chroot_run("debian.rootfs", &[], &["sqlite3", &name], sql.as_bytes());
    let _ = std::fs::remove_file(&host_db);
    assert_eq!(oracle.status, 0, "oracle: {}", oracle.stderr_str());
    assert!(oracle.stdout_str().contains("\nok\n") || oracle.stdout_str().ends_with("ok\n"));
    assert_eq!(
        (ours.status, ours.stdout_str(), ours.stderr_str()),
        (oracle.status, oracle.stdout_str(), oracle.stderr_str())
    );
}

#[test]
fn compressors_round_trip_a_megabyte() {
    let m = module("debian");
    let input = text_input(1 << 20);
    // xz 5.6 compresses with one thread per core by default; threads come with the
    // processes work (clone is ENOSYS today, which xz reports as ENOMEM), so -T1.
    for (pack, unpack) in [
        (&["xz", "-9", "-T1", "-c"][..], &["xz", "-d", "-c"][..]),
        (&["bzip2", "-9", "-c"], &["bzip2", "-d", "-c"]),
        (&["gzip", "-9", "-n", "-c"], &["gzip", "-d", "-c"]),
    ] {
        let ours = rvbox_run(&m, pack, &input);
        assert_eq!(ours.status, 0, "{pack:?}: {}", ours.stderr_str());
        assert!(
            ours.stdout.len() < input.len() / 2,
            "{pack:?} did not compress"
        );
        let oracle = qemu_chroot_run("debian.rootfs", &[], pack, &input);
        assert!(
            ours.stdout == oracle.stdout,
            "{pack:?}: output differs from qemu-riscv64 ({} vs {} bytes)",
            ours.stdout.len(),
            oracle.stdout.len()
        );
        let back = rvbox_run(&m, unpack, &ours.stdout);
        assert_eq!(back.status, 0, "{unpack:?}: {}", back.stderr_str());
        assert!(
            back.stdout == input,
            "{unpack:?} did not give back the input"
        );
    }
    // Integrity checks catch corruption, as on Linux.
    let mut bad = rvbox_run(&m, &["xz", "-c"], &input).stdout;
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    check(vec![
        case(&["xz", "-t"]).stdin(bad.clone()),
        case(&["sha256sum"]).stdin(input.clone()),
    ]);
}

#[test]
fn file_identifies_files_with_libmagic() {
    check(vec![
        case(&[
            "file",
            "/usr/bin/python3.13",
            "/usr/lib/riscv64-linux-gnu/libc.so.6",
            "/etc/passwd",
            "/usr/share/zoneinfo/UTC",
            "/usr/lib/python3.13/json/__init__.py",
            "/usr/lib/python3.13/json/__pycache__/__init__.cpython-313.pyc",
            "/usr/share/doc/bash/copyright",
            "/usr/bin",
            "/bin",
            "/nonexistent",
        ]),
        case(&["file", "-i", "-"]).stdin(text_input(4096)),
        case(&["file", "-b", "--mime-type", "/usr/lib/file/magic.mgc"]),
    ]);
}

#[test]
fn coreutils_findutils_grep_sed_tar_bash() {
    let numbers: Vec<u8> = (0..100_000u64)
        .flat_map(|i| format!("{}\n", (i * 2_654_435_761) % 1_000_003).into_bytes())
        .collect();
    let text = text_input(200_000);
    check(vec![
        case(&["sort", "-n"]).stdin(numbers.clone()),
        case(&["sort", "-k2,2", "-t", " ", "-s"]).stdin(text.clone()),
        case(&["sha256sum"]).stdin(text.clone()),
        case(&["md5sum", "/etc/passwd", "/usr/bin/python3.13"]),
        case(&["od", "-A", "x", "-t", "x1z", "-N", "96", "/usr/bin/python3.13"]),
        case(&["stat", "-c", "%n %s %a %A %u %g %U %G %F %h %Y", "/etc/passwd", "/usr/bin/python3", "/usr/bin/python3.13", "/var/tmp", "/usr/share/zoneinfo/UTC"]),
        case(&["stat", "-L", "-c", "%n %F", "/bin", "/usr/bin/python3"]),
        case(&["date", "-d", "@1700000000"]).env(&["TZ=America/New_York"]),
        case(&["date", "-d", "2024-03-10 12:00", "+%s %Z %z"]).env(&["TZ=Asia/Kolkata"]),
        case(&["date", "-u", "-d", "@0", "+%A %B %j %U %c"]),
        case(&["ls", "-l", "--time-style=+%Y", "/usr/lib/python3.13/json"]),
        case(&["ls", "-a", "/usr/share/zoneinfo/Europe"]),
        case(&["wc", "-lwc"]).stdin(text.clone()),
        case(&["tr", "a-z", "A-Z"]).stdin(&text[..5000]),
        case(&["cut", "-d:", "-f1,6", "/etc/passwd"]),
        case(&["uniq", "-c"]).stdin("a\na\nb\nb\nb\na\n"),
        case(&["seq", "-w", "1", "7", "100"]),
        case(&["factor", "600851475143", "1000000007"]),
        case(&["numfmt", "--to=iec", "1048576", "123456789"]),
        case(&["base64", "/etc/hostname"]),
        case(&["tac", "/etc/passwd"]),
        case(&["nl", "-ba", "/etc/group"]),
        case(&["head", "-c", "100", "/etc/services"]),
        case(&["tail", "-n", "3", "/etc/services"]),
        case(&["printf", "%s|%5d|%-4s|%x|%e\\n", "a", "42", "b", "255", "3.5"]),
        case(&["expr", "length", "riscv64"]),
        case(&["ls", "/nonexistent"]),
        case(&["cat", "/etc/shadow-nope"]),
        case(&["find", "/usr/lib/python3.13/json", "-name", "*.py", "-size", "-20k"]).normalize(sorted_lines),
        case(&["find", "/etc", "-maxdepth", "1", "-type", "f", "-newer", "/usr/bin/python3.13"]).normalize(sorted_lines),
        case(&["grep", "-rn", "def dump", "/usr/lib/python3.13/json"]).normalize(sorted_lines),
        case(&["grep", "-E", "-c", "^(root|daemon):", "/etc/passwd"]),
        case(&["grep", "-o", "-i", "RISC[a-z-]*"]).stdin("RiscV risc-v RISCY wasm\n"),
        case(&["sed", "-E", "s/([a-z]+):x:([0-9]+).*/\\2 \\1/; /^1[0-9]/d", "/etc/passwd"]),
        case(&["sed", "-n", "$=", "/etc/services"]),
        case(&["tar", "-cf", "-", "-C", "/usr/lib/python3.13", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "json"]),
        case(&["bash", "-c", "for i in {1..5}; do printf '%d ' $((i*i)); done; echo; declare -A m=([a]=1 [b]=2); echo ${#m[@]} ${m[b]}; x=riscv; echo ${x^^} ${#x} ${x:1:3}; set -- a b c; echo $# $2; [[ abc =~ ^a(.)c$ ]] && echo ${BASH_REMATCH[1]}; echo $((2**40)) $((-7/2)) $((7%3))"]),
        case(&["bash", "-c", "read -r a b; echo \"[$b][$a]\"; exit 3"]).stdin("one two\n"),
    ]);
}

/// The thread count in `/proc/self/stat` and `status` follows a thread's start and end
/// (CPython warns on a fork with threads from it), `df /` counts the image as used, and a
/// thread's chdir and umask are its process's (CLONE_FS), a child's its own.
/// Against the oracle with /proc mounted (`qemu_container_run`); but qemu-user makes up
/// `/proc/self/stat` itself, with num_threads always 0, so that line is Linux's by hand.
#[test]
fn python_thread_count_and_disk_usage() {
    let m = module("debian");
    let py = script("threads_df.py");
    let ours = rvbox_run(&m, &["python3", "-"], py.as_bytes());
    let oracle = qemu_container_run("debian.rootfs", &["python3", "-"], py.as_bytes());
    assert_eq!(oracle.status, 0, "oracle: {}", oracle.stderr_str());
    let stat = "a thread more in stat: ";
    let want = oracle
        .stdout_str()
        .replace(&format!("{stat}0\n"), &format!("{stat}1\n"));
    assert_eq!(
        (ours.status, ours.stdout_str(), ours.stderr_str()),
        (0, want, oracle.stderr_str())
    );
    assert!(ours.stdout_str().contains("a thread more in status: 1\n"));
}

/// `/proc/self/stat`'s utime and cutime are the CPU time getrusage and times() report
/// (they were wall time since start, and 0). rvbox only: qemu-user makes up that file,
/// with 0 there.
#[test]
fn proc_stat_cpu_times_are_cpu_time() {
    let m = module("debian");
    let py = r#"
import os, time
def stat():
    f = open('/proc/self/stat').read().rsplit(')', 1)[1].split()
    tick = os.sysconf('SC_CLK_TCK')
    return int(f[11]) / tick, int(f[13]) / tick
t = time.process_time()
while time.process_time() - t < 0.3: pass
before = stat()[0]
time.sleep(0.3)
slept = stat()[0] - before
pid = os.fork()
if pid == 0:
    t = time.process_time()
    while time.process_time() - t < 0.2: pass
    os._exit(0)
os.waitpid(pid, 0)
utime, cutime = stat()
times = os.times()
print("utime", abs(utime - times.user) < 0.05, utime >= 0.3, "sleeping is not", slept < 0.1)
print("cutime", abs(cutime - times.children_user) < 0.05, cutime >= 0.2)
"#;
    let r = rvbox_run(&m, &["python3", "-c", py], b"");
    assert_eq!(
        (r.status, r.stdout_str().as_str()),
        (
            0,
            "utime True True sleeping is not True\ncutime True True\n"
        ),
        "{}",
        r.stderr_str()
    );
}
