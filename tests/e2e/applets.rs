//! Busybox applets, one process each, against qemu-riscv64 running the same busybox.

use crate::support::*;

/// (arguments, stdin). Each case's stdout, stderr and exit status must equal the oracle's.
pub const CASES: &[(&[&str], &str)] = &[
    (&["echo", "hello", "world"], ""),
    (&["cat", "/etc/passwd"], ""),
    (&["cat", "-n"], "one\ntwo\n"),
    (&["ls", "-l", "/etc"], ""),
    (&["ls", "-la", "/usr/local"], ""),
    (&["ls", "/usr/sbin"], ""),
    (&["wc"], "the quick brown fox\njumps over\nthe lazy dog\n"),
    (&["wc", "-c", "/bin/busybox"], ""),
    (&["sort"], "pear\napple\nfig\nbanana\n"),
    (&["sort", "-n", "-r"], "10\n9\n100\n-3\n"),
    (&["uniq", "-c"], "a\na\nb\na\n"),
    (&["sha256sum", "/bin/busybox"], ""),
    (&["sha256sum"], "hello world\n"),
    (&["md5sum", "/etc/passwd"], ""),
    (&["sha1sum", "/etc/group"], ""),
    (&["gzip", "-c", "-9", "/etc/passwd"], ""),
    (&["head", "-n", "3", "/etc/passwd"], ""),
    (&["tail", "-n", "2", "/etc/passwd"], ""),
    (&["tr", "a-z", "A-Z"], "Hello, riscv64!\n"),
    (&["od", "-A", "x", "-t", "x1z", "/etc/hostname"], ""),
    (&["seq", "1", "3", "20"], ""),
    (&["date", "-u", "-d", "@0"], ""),
    (
        &["date", "-u", "-d", "@1700000000", "+%Y-%m-%d %H:%M:%S %A"],
        "",
    ),
    (&["basename", "/usr/bin/busybox"], ""),
    (&["dirname", "/usr/bin/busybox"], ""),
    (&["expr", "6", "*", "7"], ""),
    (&["expr", "length", "riscv"], ""),
    (&["printf", "%s-%05d-%x\\n", "a", "42", "255"], ""),
    (&["true"], ""),
    (&["false"], ""),
    (&["cut", "-d:", "-f1,3", "/etc/passwd"], ""),
    (&["grep", "-n", "root", "/etc/passwd"], ""),
    (&["grep", "-c", "nologin", "/etc/passwd"], ""),
    (&["sed", "-e", "s/root/ROOT/g", "/etc/passwd"], ""),
    (
        &[
            "awk",
            "-F:",
            "{ s += $3 } END { print NR, s }",
            "/etc/passwd",
        ],
        "",
    ),
    (
        &["awk", "BEGIN { printf \"%.6f %d\\n\", atan2(0, -1), 2^40 }"],
        "",
    ),
    (&["factor", "1234567890"], ""),
    (
        &[
            "stat",
            "-c",
            "%n %s %a %u %g %F",
            "/etc/passwd",
            "/tmp",
            "/bin",
        ],
        "",
    ),
    (&["readlink", "/bin"], ""),
    (&["test", "-d", "/usr/bin"], ""),
    (&["test", "-f", "/nonexistent"], ""),
    (&["ls", "/nonexistent"], ""),
    (&["cat", "/etc/nonexistent"], ""),
    (&["xxd", "-l", "64", "/bin/busybox"], ""),
    (&["base64", "/etc/hostname"], ""),
    (&["rev"], "abc\nxyz\n"),
    (&["fold", "-w", "5"], "abcdefghijklmnopqrstuvwxyz\n"),
    (&["bc"], "scale=20; 4*a(1)\n2^100\n"),
    (&["dc", "-e", "2 64 ^ p"], ""),
    (&["find", "/usr/share"], ""),
];

#[test]
fn busybox_applets_match_qemu() {
    let m = module("busybox");
    let mut failures = Vec::new();
    for (args, stdin) in CASES {
        let ours = rvbox_run(&m, args, stdin.as_bytes());
        let oracle = qemu_run("busybox.rootfs", args, stdin.as_bytes());
        if ours != oracle {
            failures.push(format!(
                "{args:?}\n  rvbox:  status {} stdout {:?} stderr {:?}\n  qemu:   status {} stdout {:?} stderr {:?}",
                ours.status,
                ours.stdout_str(),
                ours.stderr_str(),
                oracle.status,
                oracle.stdout_str(),
                oracle.stderr_str()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from qemu-riscv64:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn gzip_round_trip() {
    let m = module("busybox");
    let input: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {i} {}\n", i * 7919 % 1000).into_bytes())
        .collect();
    let packed = rvbox_run(&m, &["gzip", "-9", "-c"], &input);
    assert_eq!(packed.status, 0, "{}", packed.stderr_str());
    assert!(
        packed.stdout.len() < input.len() / 3,
        "gzip did not compress"
    );
    assert_eq!(
        packed.stdout,
        qemu_run("busybox.rootfs", &["gzip", "-9", "-c"], &input).stdout
    );
    let unpacked = rvbox_run(&m, &["gunzip", "-c"], &packed.stdout);
    assert_eq!(unpacked.status, 0);
    assert!(
        unpacked.stdout == input,
        "gunzip did not give back the input"
    );
}

#[test]
fn image_cmd_and_arguments_follow_docker_run() {
    let m = module("testprogs");
    // Arguments replace the image's Cmd; argv[0] is the name as given; PATH and HOME.
    let r = rvbox(
        &[
            "run",
            m.to_str().unwrap(),
            "-e",
            "GREETING=hi there",
            "--",
            "args",
            "a",
            "b c",
        ],
        b"",
    );
    assert_eq!(r.status, 0, "{}", r.stderr_str());
    assert_eq!(
        r.stdout_str(),
        "argv[0]=args\nargv[1]=a\nargv[2]=b c\n\
         PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         HOME=/root\nGREETING=hi there\ncwd=/\npagesz=4096 hwcap=0x112d\n"
    );
    // The host environment does not leak in.
    let r = rvbox_run(&m, &["args"], b"");
    assert!(r.stdout_str().contains("GREETING=(unset)"));
    // Exit status passes through.
    assert_eq!(rvbox_run(&m, &["args", "fail"], b"").status, 3);
    // `--` is optional, as with `docker run IMAGE CMD`; options of the command stay its own.
    let r = rvbox(&["run", m.to_str().unwrap(), "args", "-e", "x"], b"");
    assert!(
        r.stdout_str()
            .starts_with("argv[0]=args\nargv[1]=-e\nargv[2]=x\n"),
        "{}",
        r.stdout_str()
    );
    // Without arguments the image's Cmd (sh) runs: it reads commands from stdin.
    let r = rvbox(
        &["run", module("busybox").to_str().unwrap()],
        b"echo from-cmd\n",
    );
    assert_eq!(
        (r.status, r.stdout_str().as_str()),
        (0, "from-cmd\n"),
        "{}",
        r.stderr_str()
    );
}

#[test]
fn writes_persist_for_the_run() {
    let m = module("busybox");
    // One process: the shell's builtins write and read files without forking.
    let script = "echo first > /tmp/f; echo second >> /tmp/f; read a < /tmp/f; echo \"$a\"; \
                  while read l; do echo \"[$l]\"; done < /tmp/f; cd /usr/local; pwd; \
                  echo x > /etc/passwd; read b < /etc/passwd; echo $b";
    let r = rvbox_run(&m, &["sh", "-c", script], b"");
    assert_eq!(
        (r.status, r.stdout_str().as_str()),
        (0, "first\n[first]\n[second]\n/usr/local\nx\n"),
        "{}",
        r.stderr_str()
    );
    // Each run starts from the image again.
    let r = rvbox_run(&m, &["head", "-n", "1", "/etc/passwd"], b"");
    assert!(
        r.stdout_str().starts_with("root:x:0:0:"),
        "{}",
        r.stdout_str()
    );
}

#[test]
fn illegal_instruction_is_sigill() {
    let m = module("testprogs");
    let r = rvbox_run(&m, &["illegal"], b"");
    let oracle = qemu_run("testprogs.rootfs", &["illegal"], b"");
    assert_eq!(oracle.status, 128 + 4);
    assert_eq!(
        (r.status, r.stdout_str()),
        (oracle.status, oracle.stdout_str())
    );
    let err = r.stderr_str();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(
        err.starts_with(
            "rvbox: illegal (pid 1) killed by SIGILL: illegal instruction 0x0000 at pc 0x"
        ),
        "{err:?}"
    );
}

#[test]
fn segfault_is_sigsegv() {
    let m = module("testprogs");
    let r = rvbox_run(&m, &["segv"], b"");
    let oracle = qemu_run("testprogs.rootfs", &["segv"], b"");
    assert_eq!(oracle.status, 128 + 11);
    assert_eq!(
        (r.status, r.stdout_str()),
        (oracle.status, oracle.stdout_str())
    );
    assert!(
        r.stderr_str()
            .contains("killed by SIGSEGV: segmentation fault: write to 0x10 (not mapped)"),
        "{}",
        r.stderr_str()
    );
}

/// Pipes (capacity, would-block, packets), eventfd, timerfd (counts, blocking reads in
/// two processes, epoll, absolute deadlines), socket pairs (message boundaries), epoll
/// (level, edge, one-shot, nested) and `/proc/self/fd` names of such objects: `ipc`
/// prints what each call gives, which must be what Linux gives.
#[test]
fn pipes_eventfd_sockets_and_epoll_match_linux() {
    let m = module("testprogs");
    let r = rvbox_run(&m, &["ipc"], b"");
    // Not a chroot: `/proc/self/fd` is the host's, which qemu passes through.
    let oracle = qemu_run("testprogs.rootfs", &["ipc"], b"");
    assert_eq!(oracle.status, 0, "oracle: {}", oracle.stdout_str());
    assert_eq!(r.status, 0, "{}{}", r.stdout_str(), r.stderr_str());
    assert_eq!(r.stdout_str(), oracle.stdout_str());
    assert!(r.stdout_str().contains("pipe: full after 64000 bytes"));
    assert!(r.stdout_str().contains("timerfd: the child read 1\n"));
}
