//! rvbox-bench: runs real programs from the Debian trixie riscv64 images under rvbox (wasmtime,
//! Node, the emulator built natively) and under its peers (the native amd64 program,
//! qemu-riscv64 user mode, a qemu-user-static chroot), in one run, and reports a table,
//! Markdown, JSON and a PNG chart. `bench/run` builds and sets up what it needs first.

mod chart;
mod input;
mod measure;
mod report;
mod run;
mod stats;
mod workloads;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use report::{Machine, PeerInfo, Report};
use workloads::{Image, Mode, Peer, Setup};

#[derive(Parser, Debug)]
#[command(
    name = "rvbox-bench",
    about = "rvbox side by side with its peers, in one run (use bench/run)"
)]
struct Args {
    /// Smaller inputs and fewer runs (under 3 minutes).
    #[arg(long)]
    quick: bool,
    /// Measured runs per workload and peer (after the discarded warm-up run).
    #[arg(long, value_name = "N")]
    runs: Option<usize>,
    /// Only these workloads (comma-separated ids; `convert` for the conversion table).
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    only: Vec<String>,
    /// The rvbox checkout (default: the current directory).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The amd64 root filesystem of the native peer (default: bench/.cache/native-amd64.rootfs).
    #[arg(long)]
    native_rootfs: Option<PathBuf>,
    /// Write PREFIX.md, PREFIX.json and PREFIX.png (default: bench/results/latest for a full
    /// run of everything, bench/results/quick or bench/results/partial otherwise).
    #[arg(long, value_name = "PREFIX")]
    out: Option<PathBuf>,
    /// A peer that could not be set up: PEER=REASON (peers: native, qemu-user, qemu-chroot,
    /// rvbox, node, rvbox-native).
    #[arg(long, value_name = "PEER=REASON")]
    unavailable: Vec<String>,
    /// Kill a run after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// List the workloads and exit.
    #[arg(long)]
    list: bool,
    /// Write workload ID's stdin (as every peer reads it) to stdout and exit: to rerun a
    /// workload by hand.
    #[arg(long, value_name = "ID")]
    dump_input: Option<String>,
}

fn main() {
    match real_main() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("rvbox-bench: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse();
    let t0 = Instant::now();
    let mode = Mode { quick: args.quick };
    let mut all = workloads::workloads(mode, args.runs);
    if args.list {
        for w in &all {
            println!(
                "{:<13} {:<9} {} {}",
                w.id, w.category, w.title, w.input_desc
            );
        }
        println!(
            "{:<13} {:<9} rvbox convert of each image",
            "convert", "convert"
        );
        return Ok(());
    }
    if let Some(id) = &args.dump_input {
        let w = all
            .iter()
            .find(|w| w.id == id)
            .with_context(|| format!("unknown workload {id:?}"))?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        w.input.write_to(&mut out)?;
        std::io::Write::flush(&mut out)?;
        return Ok(());
    }
    let known: Vec<&str> = all.iter().map(|w| w.id).chain(["convert"]).collect();
    for o in &args.only {
        if !known.contains(&o.as_str()) {
            bail!("unknown workload {o:?} (known: {})", known.join(", "));
        }
    }
    let selected = |id: &str| args.only.is_empty() || args.only.iter().any(|o| o == id);
    all.retain(|w| selected(w.id));

    let repo = std::fs::canonicalize(&args.repo).context("--repo")?;
    let work = std::env::temp_dir().join(format!("rvbox-bench.{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let _cleanup = RemoveOnDrop(work.clone());
    let mut setup = Setup {
        rvbox: repo.join("target/release/rvbox"),
        rvbox_guest: repo.join("target/release/rvbox-guest"),
        node: which("node"),
        run_mjs: repo.join("runner/node/run.mjs"),
        qemu_user: which("qemu-riscv64"),
        native_rootfs: args
            .native_rootfs
            .clone()
            .unwrap_or_else(|| repo.join("bench/.cache/native-amd64.rootfs")),
        work: work.clone(),
        unavailable: BTreeMap::new(),
        repo: repo.clone(),
    };
    // SAFETY: geteuid(2) has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut unavailable = workloads::probe_unavailable(&setup, is_root);
    for u in &args.unavailable {
        let (p, why) = u
            .split_once('=')
            .context("--unavailable takes PEER=REASON")?;
        let peer =
            Peer::from_id(p).with_context(|| format!("--unavailable: unknown peer {p:?}"))?;
        unavailable.insert(peer, why.to_string());
    }
    setup.unavailable = unavailable;
    if setup.unavailable.contains_key(&Peer::Rvbox) {
        bail!(
            "{} is missing: run `cargo build --release` (bench/run does)",
            setup.rvbox.display()
        );
    }
    for img in Image::ALL {
        if !setup.image_layout(img).join("index.json").exists() || !setup.rootfs(img).is_dir() {
            bail!("images/out/{} missing: run `images/build.sh busybox testprogs debian` (bench/run does)", img.name());
        }
    }

    let timeout = Duration::from_secs(args.timeout);
    // Per-workload budget for the measured rounds: keeps a full run under 15 minutes and a
    // quick one under 3 even when a slow peer starts to work.
    let opts = run::Options {
        timeout,
        budget: Duration::from_secs(if args.quick { 12 } else { 90 }),
        min_runs: 3,
    };
    let mut machine = machine_info(&repo);
    eprintln!(
        "rvbox-bench: {} mode; {} ({} cores), load {}",
        if args.quick { "quick" } else { "full" },
        machine.cpu,
        machine.cores,
        machine.load_before
    );
    for (p, why) in &setup.unavailable {
        eprintln!("rvbox-bench: peer {} not run: {why}", p.id());
    }

    // Conversion first: it makes the modules the workloads run.
    let convert_runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    let mut converts = Vec::new();
    for img in Image::ALL {
        if selected("convert") {
            let t = Instant::now();
            let c = run::run_convert(&setup, img, convert_runs, &opts, &work)?;
            eprintln!("  convert {}: {:.1} s", img.name(), run::since(t));
            if let Some(e) = &c.error {
                bail!("{e}");
            }
            converts.push(c);
        } else {
            let st = std::process::Command::new(&setup.rvbox)
                .args(["convert", "-q"])
                .arg(setup.image_layout(img))
                .arg("-o")
                .arg(setup.module(img))
                .status()?;
            if !st.success() {
                bail!("rvbox convert images/out/{} failed", img.name());
            }
        }
        if img != workloads::Image::Testprogs {
            // The translated peers' module; its first run (compile) is not timed.
            let t = Instant::now();
            let st = std::process::Command::new(&setup.rvbox)
                .args(["convert", "-q"])
                .arg(setup.image_layout(img))
                .arg("-o")
                .arg(setup.aot_module(img))
                .args(workloads::aot_args(img))
                .status()?;
            if !st.success() {
                bail!("rvbox convert --aot of images/out/{} failed", img.name());
            }
            let size = std::fs::metadata(setup.aot_module(img))?.len();
            let c = Instant::now();
            let st = std::process::Command::new(&setup.rvbox)
                .arg("run")
                .env("RVBOX_CACHE_DIR", setup.cache_dir())
                .arg(setup.aot_module(img))
                .args(["--", "true"])
                .status()?;
            eprintln!(
                "  translated module of {}: {:.1} MiB, convert {:.1} s, first run (compile) {:.1} s{}",
                img.name(),
                size as f64 / 1048576.0,
                run::since(t) - run::since(c),
                run::since(c),
                if st.success() { "" } else { " (failed)" }
            );
        }
    }

    let mut results = Vec::new();
    for (i, w) in all.iter().enumerate() {
        let t = Instant::now();
        eprint!("  [{}/{}] {} ...", i + 1, all.len(), w.id);
        let r = run::run_workload(&setup, w, &opts, &work)?;
        let summary: Vec<String> = r
            .peers
            .iter()
            .map(|p| match p.ok_median() {
                Some(m) => format!("{} {}", p.peer.id(), report::fmt_time(m)),
                None => format!("{} -", p.peer.id()),
            })
            .collect();
        eprintln!(" {:.0} s: {}", run::since(t), summary.join(", "));
        results.push(r);
    }

    machine.load_after = loadavg();
    let report = Report {
        mode: if args.quick { "quick" } else { "full" },
        warmup_runs: 1,
        machine,
        peers: Peer::ALL
            .iter()
            .map(|&p| PeerInfo {
                id: p.id(),
                label: p.label(),
                what: p.describe(),
                unavailable: setup.unavailable.get(&p).cloned(),
            })
            .collect(),
        convert: converts,
        workloads: results,
        total_seconds: run::since(t0),
    };

    let timeout_s = timeout.as_secs_f64();
    print!("{}", report::text(&report, timeout_s));
    let prefix = args.out.clone().unwrap_or_else(|| {
        let name = if !args.only.is_empty() {
            "partial"
        } else if args.quick {
            "quick"
        } else {
            "latest"
        };
        repo.join("bench/results").join(name)
    });
    if let Some(dir) = prefix.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let png = with_ext(&prefix, "png");
    let png_name = match chart::draw(&report, &png) {
        Ok(()) => png.file_name().map(|n| n.to_string_lossy().into_owned()),
        Err(e) => {
            eprintln!("rvbox-bench: no chart: {e:#}");
            None
        }
    };
    let md = with_ext(&prefix, "md");
    std::fs::write(
        &md,
        report::markdown(&report, timeout_s, png_name.as_deref()),
    )?;
    let json = with_ext(&prefix, "json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")?;
    eprintln!(
        "rvbox-bench: wrote {}, {}{} in {:.0} s",
        md.display(),
        json.display(),
        png_name
            .map(|_| format!(", {}", png.display()))
            .unwrap_or_default(),
        run::since(t0)
    );
    Ok(())
}

fn with_ext(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine_info(repo: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0.0);
    let repo_s = repo.display().to_string();
    let commit = command_output("git", &["-C", &repo_s, "log", "-1", "--format=%h %cs %s"])
        .unwrap_or_else(|| "unknown".into());
    let dirty = command_output(
        "git",
        &[
            "-C",
            &repo_s,
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .is_some_and(|s| !s.is_empty());
    let lock = std::fs::read_to_string(repo.join("Cargo.lock")).unwrap_or_default();
    Machine {
        date_utc: now_utc(),
        cpu,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        mem_gib: mem_kib / (1024.0 * 1024.0),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_default(),
        rvbox_commit: format!(
            "{commit}{}",
            if dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        ),
        wasmtime: cargo_lock_version(&lock, "wasmtime").unwrap_or_else(|| "unknown".into()),
        node: command_output("node", &["--version"]).unwrap_or_else(|| "not found".into()),
        qemu: command_output("qemu-riscv64", &["--version"])
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_else(|| "not found".into()),
        load_before: loadavg(),
        load_after: String::new(),
    }
}

/// The version of package `name` in a Cargo.lock.
fn cargo_lock_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"\n");
    let at = lock.find(&needle)? + needle.len();
    lock[at..]
        .lines()
        .next()?
        .strip_prefix("version = \"")?
        .strip_suffix('"')
        .map(str::to_string)
}

fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

/// Seconds since the epoch as "YYYY-MM-DD HH:MM" (UTC), by the days-to-civil algorithm.
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13");
    }

    #[test]
    fn versions_from_cargo_lock() {
        let lock = "[[package]]\nname = \"wasmtime\"\nversion = \"48.0.8\"\n\n[[package]]\nname = \"wasmtime-wasi\"\nversion = \"48.0.8\"\n";
        assert_eq!(
            cargo_lock_version(lock, "wasmtime").as_deref(),
            Some("48.0.8")
        );
        assert_eq!(cargo_lock_version(lock, "nope"), None);
    }

    #[test]
    fn output_paths() {
        assert_eq!(
            with_ext(Path::new("bench/results/latest"), "md"),
            Path::new("bench/results/latest.md")
        );
    }
}
