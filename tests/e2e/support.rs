//! Test harness: builds the test images (cached by `images/build.sh`), converts them once
//! per test process, and runs commands under rvbox, Node and the qemu oracle.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn rvbox_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rvbox"))
}

/// Scratch space that outlives one test (modules, the compile cache).
pub fn scratch() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Builds the test images (a no-op when `images/build.sh` finds them up to date).
pub fn images() -> PathBuf {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let st = Command::new("bash")
            .arg(repo().join("images/build.sh"))
            .args([
                "busybox",
                "busybox-amd64",
                "busybox-multi",
                "testprogs",
                "debian",
                "layers",
            ])
            .status()
            .expect("run images/build.sh");
        assert!(st.success(), "images/build.sh failed");
    });
    repo().join("images/out")
}

/// What `RVBOX_TEST_AOT=all` translates of the Debian image, in place of every file (all
/// of it is 300 MiB of Wasm): the programs the tests and benchmarks run hot, the
/// libraries they need, and one extension module Python loads with dlopen.
pub const DEBIAN_AOT: &[&str] = &[
    "/usr/bin/gzip",
    "/usr/bin/xz",
    "/usr/bin/sha256sum",
    "/usr/bin/sqlite3",
    "/usr/bin/bash",
    "/usr/lib/riscv64-linux-gnu/libc.so.6",
    "/usr/lib/riscv64-linux-gnu/ld-linux-riscv64-lp64d.so.1",
    "/usr/lib/riscv64-linux-gnu/libcrypto.so.3",
    "/usr/lib/riscv64-linux-gnu/liblzma.so.5*",
    "/usr/lib/riscv64-linux-gnu/libz.so.1*",
    "/usr/lib/riscv64-linux-gnu/libsqlite3.so.0*",
    "/usr/lib/riscv64-linux-gnu/libtinfo.so.6*",
    "/usr/lib/python3.13/lib-dynload/_json.*",
];

/// The `rvbox convert` options that `RVBOX_TEST_AOT` asks for image `name` (none: the
/// default). `all` translates every RISC-V ELF file of the small images, and
/// `DEBIAN_AOT` of the Debian one.
pub fn aot_args(name: &str) -> Vec<String> {
    match std::env::var("RVBOX_TEST_AOT").as_deref() {
        Ok("all") if name == "debian" => {
            let mut v = vec!["--aot".to_string(), "none".to_string()];
            for g in DEBIAN_AOT {
                v.push("--aot-include".into());
                v.push(g.to_string());
            }
            v
        }
        Ok(mode) if !mode.is_empty() => vec!["--aot".into(), mode.into()],
        _ => vec![],
    }
}

/// Converts `images/out/NAME` once per test process; returns the module path. With
/// `RVBOX_TEST_AOT` set, the module has translated code (`aot_args`).
pub fn module(name: &str) -> PathBuf {
    let images = images();
    let aot = aot_args(name);
    let suffix = std::env::var("RVBOX_TEST_AOT").unwrap_or_default();
    let out = if aot.is_empty() {
        scratch().join(format!("{name}.wasm"))
    } else {
        scratch().join(format!("{name}-aot-{suffix}.wasm"))
    };
    static LOCK: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut done = LOCK.lock().unwrap();
    if !done.contains(&name.to_string()) {
        let o = Command::new(rvbox_bin())
            .arg("convert")
            .arg(images.join(name))
            .arg("-o")
            .arg(&out)
            .args(&aot)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "convert {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        done.push(name.to_string());
    }
    out
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Run {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `cmd` with `stdin` as its input, to its end.
pub fn run_cmd(mut cmd: Command, stdin: &[u8]) -> Run {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out: Output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        // Killed by a signal: 128 + N, as a shell reports it.
        status: out.status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + out.status.signal().unwrap_or(0)
        }),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// `rvbox ARGS...` with the test's compile cache.
pub fn rvbox(args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new(rvbox_bin());
    cmd.args(args)
        .env("RVBOX_CACHE_DIR", scratch().join("cache"))
        .env_remove("RVBOX_LOG");
    run_cmd(cmd, stdin)
}

/// `rvbox run MODULE -- ARGS...`
pub fn rvbox_run(module: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["run", module.to_str().unwrap(), "--"];
    all.extend_from_slice(args);
    rvbox(&all, stdin)
}

/// `node -- runner/node/run.mjs`, as run.mjs's #! line runs it: no V8 flags (run.mjs keeps
/// V8's fast API calls out of node:wasi's way itself, see its header), so every Node test
/// proves the plain form; `--` only because Node 20 would take run.mjs's `--env-file` for
/// its own (nodejs/node#54232).
pub fn node_command() -> Command {
    let mut cmd = Command::new("node");
    cmd.arg("--").arg(repo().join("runner/node/run.mjs"));
    cmd
}

/// The same module under Node's `node:wasi`.
pub fn node_run(module: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = node_command();
    cmd.arg(module).args(args);
    run_cmd(cmd, stdin)
}

/// The oracle: `qemu-riscv64` running the same binary on the image's root filesystem.
pub fn qemu_run(rootfs: &str, args: &[&str], stdin: &[u8]) -> Run {
    qemu_run_env(rootfs, &[], args, stdin)
}

/// `qemu_run` with extra `KEY=VALUE` words in the guest environment.
pub fn qemu_run_env(rootfs: &str, env: &[&str], args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("tests/oracle/qemu-run.sh"))
        .arg(images().join(rootfs))
        .args(args)
        .env("QEMU_RUN_ENV", env.join(" "));
    run_cmd(cmd, stdin)
}

/// The oracle in a real chroot of the rootfs (`QEMU_RUN_CHROOT=1`, see qemu-run.sh): paths,
/// cwd and stat(2) are the image's, not the host's. Needs root (or `sudo -n`).
pub fn qemu_chroot_run(rootfs: &str, env: &[&str], args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("tests/oracle/qemu-run.sh"))
        .arg(images().join(rootfs))
        .args(args)
        .env("QEMU_RUN_ENV", env.join(" "))
        .env("QEMU_RUN_CHROOT", "1");
    run_cmd(cmd, stdin)
}

/// `rvbox run -e K=V... MODULE -- ARGS...`
pub fn rvbox_run_env(module: &Path, env: &[&str], args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["run".to_string()];
    for e in env {
        all.push("-e".into());
        all.push(e.to_string());
    }
    all.push(module.to_str().unwrap().into());
    all.push("--".into());
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    rvbox(&all, stdin)
}

/// `qemu_chroot_run` with what a container runtime mounts: /proc and a /dev with null, zero,
/// fd... (`QEMU_RUN_MOUNTS=1`, see qemu-run.sh), for shells and programs that start others.
pub fn qemu_container_run(rootfs: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("tests/oracle/qemu-run.sh"))
        .arg(images().join(rootfs))
        .args(args)
        .env("QEMU_RUN_ENV", "")
        .env("QEMU_RUN_CHROOT", "1")
        .env("QEMU_RUN_MOUNTS", "1");
    run_cmd(cmd, stdin)
}

/// `rvbox_run` that gives up after `secs` seconds (status 124, or 137 if it had to be
/// killed: coreutils timeout), for programs that could wait forever on a missing feature.
pub fn rvbox_run_limited(module: &Path, args: &[&str], stdin: &[u8], secs: u32) -> Run {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", &secs.to_string()])
        .arg(rvbox_bin())
        .args(["run", module.to_str().unwrap(), "--"])
        .args(args)
        .env("RVBOX_CACHE_DIR", scratch().join("cache"))
        .env_remove("RVBOX_LOG");
    run_cmd(cmd, stdin)
}

/// A WASI host the tests run modules under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `rvbox run` (wasmtime).
    Rvbox,
    /// `runner/node/run.mjs` (Node's `node:wasi`).
    Node,
}

pub const HOSTS: [Host; 2] = [Host::Rvbox, Host::Node];

/// `MODULE ARGS...` under `host`, with `opts` (`-v ...`, `-e ...`, options both runners
/// take) before the module.
pub fn host_run(host: Host, opts: &[&str], module: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = match host {
        Host::Rvbox => {
            let mut c = Command::new(rvbox_bin());
            c.arg("run")
                .env("RVBOX_CACHE_DIR", scratch().join("cache"))
                .env_remove("RVBOX_LOG");
            c
        }
        Host::Node => node_command(),
    };
    cmd.args(opts).arg(module).arg("--").args(args);
    run_cmd(cmd, stdin)
}

/// An empty directory of the test's own under the scratch space.
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = scratch().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
