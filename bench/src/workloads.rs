//! The workloads (real programs from the Debian trixie images) and the peers that run them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::input::Input;
use crate::measure::Spec;

/// The riscv64 images the workloads run in (`images/build.sh NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    Busybox,
    Testprogs,
    Debian,
}

impl Image {
    /// Every test image: all are converted and measured; the workloads use busybox and debian.
    pub const ALL: [Image; 3] = [Image::Busybox, Image::Testprogs, Image::Debian];

    pub fn name(self) -> &'static str {
        match self {
            Image::Busybox => "busybox",
            Image::Testprogs => "testprogs",
            Image::Debian => "debian",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    pub id: &'static str,
    pub category: &'static str,
    /// What runs, as a user would say it.
    pub title: String,
    pub image: Image,
    /// argv inside the image; argv[0] is found in /usr/bin.
    pub argv: Vec<String>,
    #[serde(skip)]
    pub input: Input,
    pub input_desc: String,
    /// Measured runs per peer (after one discarded warm-up run).
    pub runs: usize,
    /// Starts other programs (fork/exec): qemu-riscv64 user mode cannot run it faithfully.
    pub multi_process: bool,
}

/// Sizes and run counts for a mode.
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    pub quick: bool,
}

const MIB: u64 = 1 << 20;
const KIB: u64 = 1 << 10;

/// All workloads, in report order. `runs` overrides every run count.
pub fn workloads(mode: Mode, runs: Option<usize>) -> Vec<Workload> {
    let q = mode.quick;
    let pick = |full: u64, quick: u64| if q { quick } else { full };
    let startup_runs = if q { 5 } else { 10 };
    let cpu_runs = if q { 3 } else { 5 };
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    // Sizes: a full run fits in 15 minutes and a quick one in 3 on 2 cores, with rvbox's
    // interpreter at a few hundred guest MIPS (the issue's 10**7 loop, 64 MiB sha256sum and
    // 16 MiB xz -9 would take minutes per run under the rvbox peers alone).
    let loop_n = pick(3_000_000, 100_000);
    let fork_n = pick(200, 20);
    let shell_n = pick(100_000, 10_000);
    let pipe_bytes = pick(128 * MIB, 16 * MIB);
    let pipe4_bytes = pick(64 * MIB, 8 * MIB);
    let mut w = vec![
        Workload {
            id: "echo",
            category: "start-up",
            title: "busybox echo hello".into(),
            image: Image::Busybox,
            argv: s(&["busybox", "echo", "hello"]),
            input: Input::None,
            input_desc: String::new(),
            runs: startup_runs,
            multi_process: false,
        },
        Workload {
            id: "python-start",
            category: "start-up",
            title: "python3 -c pass".into(),
            image: Image::Debian,
            argv: s(&["python3", "-c", "pass"]),
            input: Input::None,
            input_desc: String::new(),
            runs: startup_runs,
            multi_process: false,
        },
        Workload {
            id: "python-loop",
            category: "CPU",
            title: format!("python3: sum(range({loop_n}))"),
            image: Image::Debian,
            argv: vec![
                "python3".into(),
                "-c".into(),
                format!("print(sum(range({loop_n})))"),
            ],
            input: Input::None,
            input_desc: String::new(),
            runs: cpu_runs,
            multi_process: false,
        },
        Workload {
            id: "sha256",
            category: "CPU",
            title: "sha256sum".into(),
            image: Image::Debian,
            argv: s(&["sha256sum"]),
            input: Input::Random {
                bytes: pick(8 * MIB, MIB),
            },
            input_desc: String::new(),
            runs: cpu_runs,
            multi_process: false,
        },
        Workload {
            id: "xz",
            category: "CPU",
            title: "xz -9 -T1".into(),
            image: Image::Debian,
            argv: s(&["xz", "-9", "-T1"]),
            input: Input::Text {
                bytes: pick(256 * KIB, 64 * KIB),
            },
            input_desc: String::new(),
            runs: cpu_runs,
            multi_process: false,
        },
        Workload {
            id: "gzip",
            category: "CPU",
            // -n: no timestamp in the header. Natively stdin is the input file, whose mtime
            // gzip would store; under rvbox it is a character device (mtime 0), as in a
            // container fed through a pipe.
            title: "gzip -9 -n".into(),
            image: Image::Debian,
            argv: s(&["gzip", "-9", "-n"]),
            input: Input::Text {
                bytes: pick(4 * MIB, 512 * KIB),
            },
            input_desc: String::new(),
            runs: cpu_runs,
            multi_process: false,
        },
        Workload {
            id: "sqlite",
            category: "CPU",
            title: "sqlite3: inserts, index, join".into(),
            image: Image::Debian,
            argv: s(&["sqlite3"]),
            input: Input::Sql {
                rows: pick(5_000, 1_000),
            },
            input_desc: String::new(),
            runs: cpu_runs,
            multi_process: false,
        },
        Workload {
            id: "shell-loop",
            category: "CPU",
            title: format!("busybox sh: while [ $i -lt {shell_n} ]; i=$((i+1))"),
            image: Image::Busybox,
            argv: vec![
                "busybox".into(),
                "sh".into(),
                "-c".into(),
                format!(
                    "i=0; while [ $i -lt {shell_n} ]; do i=$((i+1)); done; echo $i"
                ),
            ],
            input: Input::None,
            input_desc: String::new(),
            runs: cpu_runs,
            multi_process: false,
        },
        Workload {
            id: "fork-exec",
            category: "system",
            title: format!("bash: {fork_n} x fork+exec /bin/true"),
            image: Image::Debian,
            argv: vec![
                "bash".into(),
                "-c".into(),
                // Fails unless $(seq) ran and every /bin/true did: a shell that cannot fork
                // does not pass for a fast one.
                format!(
                    "for i in $(seq {fork_n}); do /bin/true || exit 1; done; [ \"$i\" = {fork_n} ] || exit 1; echo $i"
                ),
            ],
            input: Input::None,
            input_desc: String::new(),
            runs: cpu_runs,
            multi_process: true,
        },
        Workload {
            id: "pipe",
            category: "system",
            title: format!("bash: head -c {}M /dev/zero | wc -c", pipe_bytes / MIB),
            image: Image::Debian,
            argv: vec![
                "bash".into(),
                "-c".into(),
                format!("head -c {}M /dev/zero | wc -c", pipe_bytes / MIB),
            ],
            input: Input::None,
            input_desc: format!("{} through a pipe", crate::input::human_bytes(pipe_bytes)),
            runs: cpu_runs,
            multi_process: true,
        },
        Workload {
            id: "pipe4",
            category: "system",
            title: format!(
                "bash: head -c {}M /dev/urandom | cat | cat | cat | wc -c",
                pipe4_bytes / MIB
            ),
            image: Image::Debian,
            argv: vec![
                "bash".into(),
                "-c".into(),
                // Four pipes, five processes: the scheduler's wake-ups between stages, not
                // one pair's copying, decide the time.
                format!(
                    "head -c {}M /dev/urandom | cat | cat | cat | wc -c",
                    pipe4_bytes / MIB
                ),
            ],
            input: Input::None,
            input_desc: format!(
                "{} through 4 pipes",
                crate::input::human_bytes(pipe4_bytes)
            ),
            runs: cpu_runs,
            multi_process: true,
        },
    ];
    for x in &mut w {
        if x.input_desc.is_empty() {
            x.input_desc = x.input.describe();
        }
        if let Some(n) = runs {
            x.runs = n;
        }
    }
    w
}

/// What the translated peers' modules translate (`rvbox convert` options): all of
/// busybox, and of Debian the programs the workloads run and the libraries they load
/// (all of Debian would be 300 MiB of Wasm).
pub fn aot_args(image: Image) -> Vec<String> {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    match image {
        Image::Busybox | Image::Testprogs => s(&["--aot", "all"]),
        Image::Debian => {
            let mut v = s(&["--aot", "none"]);
            for f in [
                "/usr/bin/python3.13",
                "/usr/bin/sha256sum",
                "/usr/bin/xz",
                "/usr/bin/gzip",
                "/usr/bin/sqlite3",
                "/usr/bin/bash",
                "/usr/lib/riscv64-linux-gnu/libc.so.6",
                "/usr/lib/riscv64-linux-gnu/ld-linux-riscv64-lp64d.so.1",
                "/usr/lib/riscv64-linux-gnu/libm.so.6",
                "/usr/lib/riscv64-linux-gnu/libz.so.1*",
                "/usr/lib/riscv64-linux-gnu/libexpat.so.1*",
                "/usr/lib/riscv64-linux-gnu/libcrypto.so.3",
                "/usr/lib/riscv64-linux-gnu/liblzma.so.5*",
                "/usr/lib/riscv64-linux-gnu/libsqlite3.so.0*",
                "/usr/lib/riscv64-linux-gnu/libreadline.so.8*",
                "/usr/lib/riscv64-linux-gnu/libtinfo.so.6*",
            ] {
                v.push("--aot-include".into());
                v.push(f.into());
            }
            v
        }
    }
}

/// The programs compared, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    Native,
    QemuUser,
    QemuChroot,
    Rvbox,
    Node,
    RvboxNative,
    /// `rvbox run` and Node with a module whose hot programs are translated (`aot_args`).
    RvboxAot,
    NodeAot,
}

impl Peer {
    pub const ALL: [Peer; 8] = [
        Peer::Native,
        Peer::QemuUser,
        Peer::QemuChroot,
        Peer::RvboxAot,
        Peer::NodeAot,
        Peer::Rvbox,
        Peer::Node,
        Peer::RvboxNative,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Peer::Native => "native",
            Peer::QemuUser => "qemu-user",
            Peer::QemuChroot => "qemu-chroot",
            Peer::Rvbox => "rvbox",
            Peer::Node => "node",
            Peer::RvboxNative => "rvbox-native",
            Peer::RvboxAot => "rvbox-aot",
            Peer::NodeAot => "node-aot",
        }
    }

    pub fn from_id(id: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.id() == id)
    }

    /// Short label for tables and the chart.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Native => "native amd64",
            Peer::QemuUser => "qemu-riscv64",
            Peer::QemuChroot => "qemu chroot",
            Peer::Rvbox => "rvbox run",
            Peer::Node => "rvbox on node",
            Peer::RvboxNative => "rvbox native",
            Peer::RvboxAot => "rvbox run, translated",
            Peer::NodeAot => "node, translated",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Peer::Native => "the same Debian trixie program built for amd64, in a chroot (the floor)",
            Peer::QemuUser => "qemu-riscv64 user mode, one process: `qemu-riscv64 -L ROOTFS /usr/bin/PROG`",
            Peer::QemuChroot => "qemu-user-static through binfmt_misc in a chroot of the riscv64 rootfs (multi-process)",
            Peer::Rvbox => "`rvbox run MODULE -- ARGS` (wasmtime, compiled module cached)",
            Peer::Node => "`node runner/node/run.mjs MODULE ARGS` (Node's node:wasi)",
            Peer::RvboxNative => "the rvbox emulator built for x86_64, no Wasm (`rvbox-guest MODULE ARGS`)",
            Peer::RvboxAot => "`rvbox run` of a module converted with the workloads' programs translated (`--aot-include`, see `aot_args`)",
            Peer::NodeAot => "Node running the translated module",
        }
    }

    pub fn is_rvbox(self) -> bool {
        matches!(
            self,
            Peer::Rvbox | Peer::Node | Peer::RvboxNative | Peer::RvboxAot | Peer::NodeAot
        )
    }
}

/// Where everything is.
#[derive(Clone, Debug)]
pub struct Setup {
    pub repo: PathBuf,
    pub rvbox: PathBuf,
    pub rvbox_guest: PathBuf,
    pub node: Option<PathBuf>,
    pub run_mjs: PathBuf,
    pub qemu_user: Option<PathBuf>,
    pub native_rootfs: PathBuf,
    /// Converted modules and the compile cache live here.
    pub work: PathBuf,
    /// Peers that cannot run at all, with the reason.
    pub unavailable: BTreeMap<Peer, String>,
}

const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Setup {
    pub fn rootfs(&self, image: Image) -> PathBuf {
        self.repo
            .join("images/out")
            .join(format!("{}.rootfs", image.name()))
    }

    pub fn image_layout(&self, image: Image) -> PathBuf {
        self.repo.join("images/out").join(image.name())
    }

    pub fn module(&self, image: Image) -> PathBuf {
        self.work.join(format!("{}.wasm", image.name()))
    }

    /// The image converted with `aot_args`.
    pub fn aot_module(&self, image: Image) -> PathBuf {
        self.work.join(format!("{}-aot.wasm", image.name()))
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.work.join("rvbox-cache")
    }

    /// How `peer` runs `w`, or why it does not.
    pub fn spec(&self, peer: Peer, w: &Workload) -> Result<Spec, String> {
        if let Some(why) = self.unavailable.get(&peer) {
            return Err(why.clone());
        }
        let prog = format!("/usr/bin/{}", w.argv[0]);
        let rest: Vec<String> = w.argv[1..].to_vec();
        let path_env = vec![("PATH".to_string(), GUEST_PATH.to_string())];
        let stats_env = vec![("RVBOX_STATS".to_string(), "1".to_string())];
        let module = self.module(w.image).display().to_string();
        let aot_module = self.aot_module(w.image).display().to_string();
        Ok(match peer {
            Peer::Native => Spec {
                program: prog.into(),
                argv0: Some(w.argv[0].clone()),
                args: rest,
                env: path_env,
                chroot: Some(self.native_rootfs.clone()),
            },
            Peer::QemuChroot => Spec {
                program: prog.into(),
                argv0: Some(w.argv[0].clone()),
                args: rest,
                env: path_env,
                chroot: Some(self.rootfs(w.image)),
            },
            Peer::QemuUser => {
                if w.multi_process {
                    return Err(
                        "n/a: one process only (programs it starts would run as host programs)"
                            .into(),
                    );
                }
                let qemu = self.qemu_user.clone().ok_or("qemu-riscv64 not found")?;
                let root = self.rootfs(w.image);
                let mut args = vec![
                    "-L".to_string(),
                    root.display().to_string(),
                    "-0".to_string(),
                    w.argv[0].clone(),
                    format!("{}{prog}", root.display()),
                ];
                args.extend(rest);
                Spec {
                    program: qemu,
                    argv0: None,
                    args,
                    env: path_env,
                    chroot: None,
                }
            }
            Peer::Rvbox | Peer::RvboxAot => {
                let m = if peer == Peer::Rvbox {
                    module
                } else {
                    aot_module
                };
                let mut args = vec!["run".to_string(), m, "--".to_string()];
                args.extend(w.argv.iter().cloned());
                let mut env = stats_env;
                env.push((
                    "RVBOX_CACHE_DIR".into(),
                    self.cache_dir().display().to_string(),
                ));
                Spec {
                    program: self.rvbox.clone(),
                    argv0: None,
                    args,
                    env,
                    chroot: None,
                }
            }
            Peer::Node | Peer::NodeAot => {
                let node = self.node.clone().ok_or("node not found")?;
                let module = if peer == Peer::Node {
                    module
                } else {
                    aot_module
                };
                let mut args = vec![
                    // As users run it: no V8 flags (see run.mjs's header).
                    self.run_mjs.display().to_string(),
                    "-e".to_string(),
                    "RVBOX_STATS=1".to_string(),
                    module,
                ];
                args.extend(w.argv.iter().cloned());
                Spec {
                    program: node,
                    argv0: None,
                    args,
                    env: vec![],
                    chroot: None,
                }
            }
            Peer::RvboxNative => {
                let mut args = vec![module];
                args.extend(w.argv.iter().cloned());
                Spec {
                    program: self.rvbox_guest.clone(),
                    argv0: None,
                    args,
                    env: stats_env,
                    chroot: None,
                }
            }
        })
    }
}

/// Checks that do not need to run anything: why a peer cannot run at all, if it cannot.
pub fn probe_unavailable(setup: &Setup, is_root: bool) -> BTreeMap<Peer, String> {
    let mut out = BTreeMap::new();
    let exists = |p: &Path| p.exists();
    if !is_root {
        out.insert(Peer::Native, "needs root (chroot)".to_string());
        out.insert(Peer::QemuChroot, "needs root (chroot)".to_string());
    }
    if !exists(&setup.native_rootfs.join("usr/bin/python3")) {
        out.entry(Peer::Native).or_insert(format!(
            "no amd64 rootfs at {} (bench/native-rootfs.sh makes it)",
            setup.native_rootfs.display()
        ));
    }
    match std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-riscv64") {
        Ok(s) if s.lines().next() == Some("enabled") => {
            let flags = s
                .lines()
                .find_map(|l| l.strip_prefix("flags: "))
                .unwrap_or("");
            if !flags.contains('F') {
                out.entry(Peer::QemuChroot).or_insert(
                    "binfmt_misc qemu-riscv64 lacks the F flag (interpreter not usable in a chroot)".into(),
                );
            }
        }
        Ok(_) => {
            out.entry(Peer::QemuChroot)
                .or_insert("binfmt_misc qemu-riscv64 is disabled".into());
        }
        Err(_) => {
            out.entry(Peer::QemuChroot).or_insert(
                "no binfmt_misc handler for riscv64 (install qemu-user-static; bench/run registers it)".into(),
            );
        }
    }
    if setup.qemu_user.is_none() {
        out.insert(
            Peer::QemuUser,
            "qemu-riscv64 not found (apt-get install qemu-user)".into(),
        );
    }
    if setup.node.is_none() {
        out.insert(Peer::Node, "node not found".into());
        out.insert(Peer::NodeAot, "node not found".into());
    }
    for (peer, bin) in [
        (Peer::Rvbox, &setup.rvbox),
        (Peer::RvboxAot, &setup.rvbox),
        (Peer::RvboxNative, &setup.rvbox_guest),
    ] {
        if !exists(bin) {
            out.insert(peer, format!("{} not built", bin.display()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            repo: "/r".into(),
            rvbox: "/r/target/release/rvbox".into(),
            rvbox_guest: "/r/target/release/rvbox-guest".into(),
            node: Some("/usr/bin/node".into()),
            run_mjs: "/r/runner/node/run.mjs".into(),
            qemu_user: Some("/usr/bin/qemu-riscv64".into()),
            native_rootfs: "/n".into(),
            work: "/w".into(),
            unavailable: BTreeMap::new(),
        }
    }

    fn workload(id: &str) -> Workload {
        workloads(Mode { quick: true }, None)
            .into_iter()
            .find(|w| w.id == id)
            .unwrap()
    }

    #[test]
    fn every_peer_gets_the_same_argv() {
        let s = setup();
        let w = workload("python-loop");
        let tail = ["-c".to_string(), "print(sum(range(100000)))".to_string()];
        for peer in Peer::ALL {
            let spec = s.spec(peer, &w).unwrap();
            assert!(spec.args.ends_with(&tail), "{peer:?}: {:?}", spec.args);
        }
        let native = s.spec(Peer::Native, &w).unwrap();
        assert_eq!(native.chroot.as_deref(), Some(Path::new("/n")));
        assert_eq!(native.program, Path::new("/usr/bin/python3"));
        assert_eq!(native.argv0.as_deref(), Some("python3"));
        let qemu = s.spec(Peer::QemuUser, &w).unwrap();
        assert_eq!(
            qemu.display(),
            "/usr/bin/qemu-riscv64 -L /r/images/out/debian.rootfs -0 python3 /r/images/out/debian.rootfs/usr/bin/python3 -c 'print(sum(range(100000)))'"
        );
        let rvbox = s.spec(Peer::Rvbox, &w).unwrap();
        assert_eq!(&rvbox.args[..4], ["run", "/w/debian.wasm", "--", "python3"]);
        assert!(rvbox.env.contains(&("RVBOX_STATS".into(), "1".into())));
        let node = s.spec(Peer::Node, &w).unwrap();
        assert_eq!(
            &node.args[..5],
            [
                "/r/runner/node/run.mjs",
                "-e",
                "RVBOX_STATS=1",
                "/w/debian.wasm",
                "python3"
            ]
        );
    }

    #[test]
    fn single_process_qemu_is_not_used_for_multi_process_workloads() {
        let s = setup();
        assert!(s.spec(Peer::QemuUser, &workload("fork-exec")).is_err());
        assert!(s.spec(Peer::QemuChroot, &workload("fork-exec")).is_ok());
        let mut s = setup();
        s.unavailable.insert(Peer::Node, "broken".into());
        assert_eq!(
            s.spec(Peer::Node, &workload("echo")),
            Err("broken".to_string())
        );
    }

    #[test]
    fn quick_mode_is_smaller_and_runs_override() {
        let full = workloads(Mode { quick: false }, None);
        let quick = workloads(Mode { quick: true }, None);
        assert_eq!(full.len(), quick.len());
        for (f, q) in full.iter().zip(&quick) {
            assert_eq!(f.id, q.id);
            assert!(q.runs <= f.runs && q.runs >= 3, "{}", f.id);
        }
        assert!(workloads(Mode { quick: true }, Some(7))
            .iter()
            .all(|w| w.runs == 7));
        let ids: std::collections::HashSet<_> = full.iter().map(|w| w.id).collect();
        assert_eq!(ids.len(), full.len(), "ids are unique");
    }
}
