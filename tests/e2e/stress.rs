//! The stress suite of the kernel side: random pipelines of real programs, checked byte
//! for byte against what the test computes on the host, with the wake-up checker on
//! (`RVBOX_CHECK=1`: a lost wake-up ends the run with a report at once).
//!
//! Every case comes from one seed (SplitMix64), printed on failure with the command that
//! replays it. CI runs a bounded form; the long run is by hand:
//!
//! ```sh
//! RVBOX_STRESS_CASES=10000 RVBOX_STRESS_MAX=16m RVBOX_STRESS_JOBS=2 \
//!     cargo test --release -p rvbox --test e2e stress_pipelines -- --nocapture
//! RVBOX_STRESS_SEED=0x1234 RVBOX_STRESS_ONLY=17 cargo test ...   # one case again
//! RVBOX_STRESS_HOST=node cargo test ...    # every batch under Node (or rvbox)
//! ```
//!
//! A pipeline has 2 to 8 stages: copies (`cat`, `tee`, `dd` with a random block size,
//! `pipechunk`: a C program of ours that reads and writes in random sizes, with writev,
//! O_NONBLOCK switches and poll, and a Python copy with random `os.read` sizes),
//! compressors each later undone by its decompressor (gzip, xz, bzip2, at random levels,
//! other stages between them), and transforms the test computes itself (`sort`,
//! `sha256sum`, a Python byte reversal). Inputs are random bytes or random text lines, of
//! sizes from 0 to `RVBOX_STRESS_MAX`, every scale equally likely.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::*;

/// SplitMix64: small, and the same numbers on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    /// A size up to `max`, every power-of-two scale equally likely (and 0 sometimes).
    fn size(&mut self, max: u64) -> usize {
        if self.below(16) == 0 {
            return 0;
        }
        let bits = 64 - max.leading_zeros() as u64;
        let scale = 1u64 << self.below(bits);
        (1 + self.below(scale)).min(max) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Codec {
    Gzip,
    Xz,
    Bzip2,
}

impl Codec {
    fn compress(self, level: u64) -> String {
        match self {
            Codec::Gzip => format!("gzip -{}", 1 + level % 9),
            Codec::Xz => format!("xz -{} -T1", level % 4),
            Codec::Bzip2 => format!("bzip2 -{}", 1 + level % 9),
        }
    }
    fn decompress(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip -dc",
            Codec::Xz => "xz -dc",
            Codec::Bzip2 => "bzip2 -dc",
        }
    }
}

/// What a stage does to the bytes, for the expected output.
#[derive(Debug, Clone, Copy)]
enum Effect {
    Same,
    Sort,
    Sha256,
    Reverse,
}

struct Case {
    input: Vec<u8>,
    stages: Vec<(String, Effect)>,
}

impl Case {
    fn pipeline(&self) -> String {
        let v: Vec<&str> = self.stages.iter().map(|(c, _)| c.as_str()).collect();
        v.join(" | ")
    }

    fn expected(&self) -> Vec<u8> {
        let mut data = self.input.clone();
        for (_, e) in &self.stages {
            data = match e {
                Effect::Same => data,
                Effect::Sort => sort_lines(&data),
                Effect::Sha256 => format!("{:x}  -\n", Sha256::digest(&data)).into_bytes(),
                Effect::Reverse => data.into_iter().rev().collect(),
            };
        }
        data
    }
}

/// `LC_ALL=C sort`: lines in byte order, the last one given a newline.
fn sort_lines(data: &[u8]) -> Vec<u8> {
    if data.is_empty() {
        return Vec::new();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    lines.sort();
    let mut out = Vec::with_capacity(data.len() + 1);
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

const PY_REVERSE: &str =
    "python3 -c 'import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])'";

fn py_copy(seed: u64) -> String {
    format!(
        "python3 -c 'import os, random\n\
         r = random.Random({seed})\n\
         while True:\n    \
         d = os.read(0, r.choice((1, 4096, 65536, r.randint(1, 1 << 18))))\n    \
         if not d: break\n    \
         while d: d = d[os.write(1, d):]'"
    )
}

/// Case `i` of `seed`: its own generator, so any case can be made alone.
fn make_case(seed: u64, i: u64, max: u64) -> Case {
    let mut r = Rng(seed ^ i.wrapping_mul(0xa076_1d64_78bd_642f));
    let size = r.size(max);
    let text = r.below(2) == 0;
    let mut input = Vec::with_capacity(size);
    if text {
        while input.len() < size {
            let word = 1 + r.below(12);
            for _ in 0..word {
                input.push(b'a' + r.below(26) as u8);
            }
            input.push(if r.below(6) == 0 { b'\n' } else { b' ' });
        }
        input.truncate(size);
    } else {
        while input.len() < size {
            input.extend_from_slice(&r.next().to_le_bytes());
        }
        input.truncate(size);
    }
    let n = 2 + r.below(7) as usize;
    let mut stages: Vec<(String, Effect)> = Vec::new();
    let mut open: Vec<Codec> = Vec::new();
    while stages.len() < n {
        let left = n - stages.len();
        // Close what must be closed in the stages left, and sometimes earlier.
        if !open.is_empty() && (left <= open.len() || r.below(3) == 0) {
            let c = open.pop().unwrap();
            stages.push((c.decompress().into(), Effect::Same));
            continue;
        }
        let copy = |r: &mut Rng| -> String {
            match r.below(6) {
                0 => "cat".into(),
                1 => "tee /dev/null".into(),
                2 => {
                    let bits = r.below(18) + 1;
                    format!("dd bs={} status=none", 1 + r.below(1 << bits))
                }
                3 if r.below(4) == 0 => py_copy(r.next() % 1000),
                _ => format!("/s/pipechunk {}", r.next() % 1_000_000),
            }
        };
        let pick = r.below(10);
        let stage = if left > open.len() + 1 && pick < 3 {
            let c = [Codec::Gzip, Codec::Xz, Codec::Bzip2][r.below(3) as usize];
            open.push(c);
            (c.compress(r.next()), Effect::Same)
        } else if open.is_empty() && pick == 3 {
            ("LC_ALL=C sort".into(), Effect::Sort)
        } else if open.is_empty() && pick == 4 && r.below(3) == 0 {
            ("sha256sum".into(), Effect::Sha256)
        } else if open.is_empty() && pick == 5 && r.below(4) == 0 {
            (PY_REVERSE.into(), Effect::Reverse)
        } else {
            (copy(&mut r), Effect::Same)
        };
        stages.push(stage);
    }
    Case { input, stages }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if v.starts_with("0x") => u64::from_str_radix(&v[2..], 16).unwrap(),
        Ok(v) if v.ends_with('m') => v[..v.len() - 1].parse::<u64>().unwrap() << 20,
        Ok(v) if v.ends_with('k') => v[..v.len() - 1].parse::<u64>().unwrap() << 10,
        Ok(v) => v.parse().unwrap(),
        Err(_) => default,
    }
}

/// `tests/guest/pipechunk.c` built for riscv64, once per test process.
fn pipechunk() -> &'static Path {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let out = scratch().join("pipechunk");
        let st = Command::new("riscv64-linux-gnu-gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&out)
            .arg(repo().join("tests/guest/pipechunk.c"))
            .status()
            .expect("riscv64-linux-gnu-gcc");
        assert!(st.success(), "building pipechunk");
        out
    })
}

/// Runs cases `ids` of `seed` in one run of bash under `host` and checks each output;
/// `Err` says what went wrong and how to replay it.
fn run_batch(
    host: Host,
    m: &Path,
    seed: u64,
    max: u64,
    ids: &[u64],
    name: &str,
) -> Result<(), String> {
    let dir = fresh_dir(name);
    std::fs::copy(pipechunk(), dir.join("pipechunk")).unwrap();
    let mut script = String::from("set -o pipefail\n");
    let mut cases = Vec::new();
    for &i in ids {
        let c = make_case(seed, i, max);
        std::fs::write(dir.join(format!("in.{i}")), &c.input).unwrap();
        let _ = writeln!(
            script,
            "( {} ) < /s/in.{i} > /s/out.{i}; echo \"{i} $?\" >> /s/status",
            c.pipeline()
        );
        cases.push((i, c));
    }
    std::fs::write(dir.join("script"), &script).unwrap();
    let spec = format!("{}:/s", dir.display());
    let r = host_run(
        host,
        &["-v", &spec, "-e", "RVBOX_CHECK=1", "--timeout", "1200s"],
        m,
        &["bash", "/s/script"],
        b"",
    );
    let replay = |i: u64| {
        format!(
            "replay: RVBOX_STRESS_SEED={seed:#x} RVBOX_STRESS_MAX={max} RVBOX_STRESS_ONLY={i} \
             cargo test --release -p rvbox --test e2e stress_pipelines"
        )
    };
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    if r.status != 0 {
        let done = status.lines().count();
        let (i, c) = &cases[done.min(cases.len() - 1)];
        return Err(format!(
            "{host:?}: the run ended with {} in case {i} ({} bytes): {}\nstderr: {}\n{}",
            r.status,
            c.input.len(),
            c.pipeline(),
            r.stderr_str(),
            replay(*i)
        ));
    }
    for (line, (i, c)) in status.lines().zip(&cases) {
        let want = c.expected();
        let got = std::fs::read(dir.join(format!("out.{i}"))).unwrap_or_default();
        let code = line.split(' ').nth(1).unwrap_or("?");
        if code != "0" || got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b);
            return Err(format!(
                "{host:?}: case {i} ({} bytes in): {}\nexit {code}; {} bytes out, {} expected, \
                 first difference at {at:?}\nstderr: {}\n{}",
                c.input.len(),
                c.pipeline(),
                got.len(),
                want.len(),
                r.stderr_str(),
                replay(*i)
            ));
        }
    }
    if status.lines().count() != cases.len() {
        return Err(format!(
            "{host:?}: only {} of {} cases ran\n{}",
            status.lines().count(),
            cases.len(),
            r.stderr_str()
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Random pipelines of 2 to 8 stages; every output byte for byte as computed here, no
/// deadlock, no lost wake-up, under `rvbox run` and (a part of them) Node.
#[test]
fn stress_pipelines() {
    let m = module("debian");
    let seed = env_u64("RVBOX_STRESS_SEED", 0x5eed_2026);
    let cases = env_u64("RVBOX_STRESS_CASES", 240);
    let max = env_u64("RVBOX_STRESS_MAX", 1 << 20);
    let jobs = env_u64("RVBOX_STRESS_JOBS", 1).max(1);
    let ids: Vec<u64> = match std::env::var("RVBOX_STRESS_ONLY") {
        Ok(i) => vec![i.parse().unwrap()],
        Err(_) => (0..cases).collect(),
    };
    let hosts = match std::env::var("RVBOX_STRESS_HOST").as_deref() {
        Ok("node") => Some(Host::Node),
        Ok("rvbox") => Some(Host::Rvbox),
        Ok(h) => panic!("RVBOX_STRESS_HOST={h}: expected node or rvbox"),
        Err(_) => None,
    };
    let start = std::time::Instant::now();
    let batches: Vec<&[u64]> = ids.chunks(40).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..jobs {
            let (m, next, failures, batches, hosts) = (&m, &next, &failures, &batches, hosts);
            s.spawn(move || loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(ids) = batches.get(b) else { break };
                // Every fourth batch under Node, or all of them under one host.
                let host = match hosts {
                    Some(h) => h,
                    None if b % 4 == 3 => Host::Node,
                    None => Host::Rvbox,
                };
                if let Err(e) = run_batch(host, m, seed, max, ids, &format!("stress-{w}")) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "stress: {} pipelines (seed {seed:#x}, up to {max} bytes) in {:.1}s, {} failed",
        ids.len(),
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn sort_lines_is_c_sort() {
    assert_eq!(sort_lines(b"b\na\nc"), b"a\nb\nc\n");
    assert_eq!(sort_lines(b"b\n\na\n"), b"\na\nb\n");
    assert_eq!(sort_lines(b""), b"");
}

/// Every pipeline the generator makes closes what it compresses, and has 2 to 8 stages.
#[test]
fn generated_pipelines_are_balanced() {
    for i in 0..2000 {
        let c = make_case(1, i, 1 << 20);
        assert!((2..=8).contains(&c.stages.len()), "{}", c.pipeline());
        let mut depth = 0i32;
        for (s, _) in &c.stages {
            if s.contains(" -dc") {
                depth -= 1;
            } else if s.starts_with("gzip -") || s.starts_with("xz -") || s.starts_with("bzip2 -") {
                depth += 1;
            }
            assert!(depth >= 0, "{}", c.pipeline());
        }
        assert_eq!(depth, 0, "{}", c.pipeline());
    }
}

/// Many short-lived processes, signals during blocking pipe writes, wait4 and futex waits,
/// threads hammering futexes (`tests/guest/stress.c`): each mode checks its own
/// invariants, and its line must be the qemu oracle's (Linux). Under both hosts, with the
/// wake-up checker on. `RVBOX_STRESS_SCALE=10` for the long form.
#[test]
fn stress_kernel() {
    let m = module("testprogs");
    let scale = env_u64("RVBOX_STRESS_SCALE", 1);
    for (mode, n) in [
        ("spawn", 1000),
        ("sigpipe", 50),
        ("sigwait", 40),
        ("futex", 50_000),
    ] {
        let n = (n * scale).to_string();
        let args = ["stress", mode, &n];
        let oracle = qemu_run("testprogs.rootfs", &args, b"");
        assert_eq!(oracle.status, 0, "oracle: {}", oracle.stdout_str());
        for host in HOSTS {
            let r = host_run(host, &["-e", "RVBOX_CHECK=1"], &m, &args, b"");
            assert_eq!(
                (r.status, r.stdout_str()),
                (0, oracle.stdout_str()),
                "{host:?} stress {mode} {n}: {}",
                r.stderr_str()
            );
        }
    }
}
