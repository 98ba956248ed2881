//! The benchmark loop: warm-up round (discarded), then rounds of every peer in turn, then
//! checks that every peer printed what the reference printed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::measure::{self, Sample, Spec, Status};
use crate::stats::{self, Summary};
use crate::workloads::{Peer, Setup, Workload};

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Every run exited 0 with the reference output.
    Ok,
    /// Exited 0 but printed something else than the reference peer.
    WrongOutput { bytes: u64, expected_bytes: u64 },
    /// A run exited non-zero, was killed, timed out or could not start.
    Fails {
        status: Option<Status>,
        message: Option<String>,
        /// Its stdout matched the reference anyway (it failed after doing the work).
        output_correct: bool,
    },
    /// Not run: the peer is not set up, or cannot run this kind of workload.
    Unavailable { reason: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct GuestSummary {
    /// Median over runs (the count barely varies).
    pub instructions: u64,
    /// As the emulator reports: guest instructions per second of emulation.
    pub mips: Summary,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerResult {
    pub peer: Peer,
    pub command: Option<String>,
    pub outcome: Outcome,
    /// Wall time of the measured runs (seconds).
    pub wall: Option<Summary>,
    /// user + system CPU time (seconds).
    pub cpu: Option<Summary>,
    /// Largest ru_maxrss over the measured runs.
    pub max_rss_kib: Option<u64>,
    pub guest: Option<GuestSummary>,
    pub samples: Vec<Sample>,
}

impl PeerResult {
    fn unavailable(peer: Peer, reason: String) -> Self {
        PeerResult {
            peer,
            command: None,
            outcome: Outcome::Unavailable { reason },
            wall: None,
            cpu: None,
            max_rss_kib: None,
            guest: None,
            samples: Vec::new(),
        }
    }

    /// The median wall time, if the peer ran the workload correctly.
    pub fn ok_median(&self) -> Option<f64> {
        match self.outcome {
            Outcome::Ok => self.wall.map(|w| w.median),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadResult {
    pub workload: Workload,
    pub input_bytes: u64,
    /// Measured runs per peer (fewer than asked when the time budget capped them).
    pub runs: usize,
    pub capped: bool,
    /// The peer whose output the others must match.
    pub reference: Option<Peer>,
    pub peers: Vec<PeerResult>,
}

impl WorkloadResult {
    pub fn peer(&self, p: Peer) -> Option<&PeerResult> {
        self.peers.iter().find(|r| r.peer == p)
    }

    /// The median of the qemu peer ratios are taken against: user mode, or the chroot where
    /// user mode cannot run the workload.
    pub fn qemu_base(&self) -> Option<(Peer, f64)> {
        [Peer::QemuUser, Peer::QemuChroot]
            .into_iter()
            .find_map(|p| Some((p, self.peer(p)?.ok_median()?)))
    }

    pub fn native_base(&self) -> Option<f64> {
        self.peer(Peer::Native)?.ok_median()
    }
}

pub struct Options {
    pub timeout: Duration,
    /// Measured rounds are cut (to no fewer than `min_runs`) when the warm-up round says
    /// they would take longer than this.
    pub budget: Duration,
    pub min_runs: usize,
}

/// Writes the workload's input into `dir`; returns its path and size.
pub fn write_input(w: &Workload, dir: &Path) -> io::Result<Option<(std::path::PathBuf, u64)>> {
    if w.input == crate::input::Input::None {
        return Ok(None);
    }
    let path = dir.join(format!("input-{}", w.id));
    let mut f = BufWriter::new(File::create(&path)?);
    w.input.write_to(&mut f)?;
    f.flush()?;
    drop(f);
    let len = std::fs::metadata(&path)?.len();
    Ok(Some((path, len)))
}

fn failure_of(s: &Sample, reference: Option<(u64, u64)>) -> Outcome {
    Outcome::Fails {
        status: Some(s.status),
        message: stats::first_error_line(&s.stderr, 100),
        output_correct: reference == Some((s.stdout_len, s.stdout_hash)),
    }
}

pub fn run_workload(
    setup: &Setup,
    w: &Workload,
    opts: &Options,
    scratch: &Path,
) -> io::Result<WorkloadResult> {
    let input = write_input(w, scratch)?;
    let stdin = input.as_ref().map(|(p, _)| p.as_path());
    let mut results: BTreeMap<Peer, PeerResult> = BTreeMap::new();
    let mut active: Vec<(Peer, Spec)> = Vec::new();
    for peer in Peer::ALL {
        match setup.spec(peer, w) {
            Ok(spec) => {
                let mut r = PeerResult::unavailable(peer, String::new());
                r.command = Some(spec.display());
                results.insert(peer, r);
                active.push((peer, spec));
            }
            Err(why) => {
                results.insert(peer, PeerResult::unavailable(peer, why));
            }
        }
    }

    // Warm-up round: discarded, but it decides who goes on and what the right output is.
    let mut warm: BTreeMap<Peer, Sample> = BTreeMap::new();
    let mut failed_early: BTreeMap<Peer, Outcome> = BTreeMap::new();
    for (peer, spec) in &active {
        match measure::run(spec, stdin, scratch, opts.timeout) {
            Ok(s) => {
                warm.insert(*peer, s);
            }
            Err(e) => {
                failed_early.insert(
                    *peer,
                    Outcome::Fails {
                        status: None,
                        message: Some(format!("cannot start: {e}")),
                        output_correct: false,
                    },
                );
            }
        }
    }
    let reference = [Peer::Native, Peer::QemuChroot, Peer::QemuUser]
        .into_iter()
        .find(|p| warm.get(p).is_some_and(|s| s.status.success()));
    let ref_out = reference.map(|p| {
        let s = &warm[&p];
        (s.stdout_len, s.stdout_hash)
    });
    for (peer, s) in &warm {
        if !s.status.success() {
            failed_early.insert(*peer, failure_of(s, ref_out));
        }
    }
    active.retain(|(p, _)| !failed_early.contains_key(p));

    let mut runs = w.runs;
    let mut capped = false;
    let live_round: f64 = active.iter().map(|(p, _)| warm[p].wall_s).sum();
    if live_round * runs as f64 > opts.budget.as_secs_f64() {
        let fit = (opts.budget.as_secs_f64() / live_round.max(1e-9)).floor() as usize;
        let n = fit.max(opts.min_runs.min(runs));
        if n < runs {
            runs = n;
            capped = true;
        }
    }

    let mut samples: BTreeMap<Peer, Vec<Sample>> = BTreeMap::new();
    for _ in 0..runs {
        for (peer, spec) in &active {
            let s = match measure::run(spec, stdin, scratch, opts.timeout) {
                Ok(s) => s,
                Err(e) => {
                    failed_early.insert(
                        *peer,
                        Outcome::Fails {
                            status: None,
                            message: Some(format!("cannot start: {e}")),
                            output_correct: false,
                        },
                    );
                    continue;
                }
            };
            samples.entry(*peer).or_default().push(s);
        }
        active.retain(|(p, _)| !failed_early.contains_key(p));
    }

    for (peer, r) in results.iter_mut() {
        if matches!(&r.outcome, Outcome::Unavailable { reason } if !reason.is_empty()) {
            continue;
        }
        if let Some(o) = failed_early.remove(peer) {
            r.outcome = o;
            continue;
        }
        let ss = samples.remove(peer).unwrap_or_default();
        r.outcome = judge(&ss, ref_out);
        let walls: Vec<f64> = ss.iter().map(|s| s.wall_s).collect();
        let cpus: Vec<f64> = ss.iter().map(|s| s.user_s + s.sys_s).collect();
        r.wall = Summary::of(&walls);
        r.cpu = Summary::of(&cpus);
        r.max_rss_kib = ss.iter().map(|s| s.max_rss_kib).max();
        if peer.is_rvbox() {
            let gs: Vec<stats::GuestStats> = ss
                .iter()
                .filter_map(|s| stats::parse_guest_stats(&s.stderr))
                .collect();
            if gs.len() == ss.len() && !gs.is_empty() {
                let instr: Vec<f64> = gs.iter().map(|g| g.instructions as f64).collect();
                let mips: Vec<f64> = gs.iter().map(|g| g.mips).collect();
                r.guest = Some(GuestSummary {
                    instructions: Summary::of(&instr).map(|s| s.median as u64).unwrap_or(0),
                    mips: Summary::of(&mips).expect("non-empty"),
                });
            }
        }
        r.samples = ss;
    }

    Ok(WorkloadResult {
        workload: w.clone(),
        input_bytes: input.map(|(_, n)| n).unwrap_or(0),
        runs,
        capped,
        reference,
        peers: results.into_values().collect(),
    })
}

/// The outcome of a peer's measured runs against the reference output `(len, hash)`.
pub fn judge(samples: &[Sample], reference: Option<(u64, u64)>) -> Outcome {
    if let Some(bad) = samples.iter().find(|s| !s.status.success()) {
        return failure_of(bad, reference);
    }
    if let Some((len, hash)) = reference {
        if let Some(s) = samples
            .iter()
            .find(|s| (s.stdout_len, s.stdout_hash) != (len, hash))
        {
            return Outcome::WrongOutput {
                bytes: s.stdout_len,
                expected_bytes: len,
            };
        }
    }
    if samples.is_empty() {
        return Outcome::Fails {
            status: None,
            message: Some("no run completed".into()),
            output_correct: false,
        };
    }
    Outcome::Ok
}

/// One image's conversion: time and peak RSS of `rvbox convert`, sizes, start-up of the
/// module with and without the compile cache.
#[derive(Clone, Debug, Serialize)]
pub struct ConvertResult {
    pub image: &'static str,
    pub error: Option<String>,
    pub wall: Option<Summary>,
    pub max_rss_kib: Option<u64>,
    pub module_bytes: u64,
    /// Bytes of the OCI layout's blobs (compressed layers, config, manifest).
    pub blobs_bytes: u64,
    /// Regular files of the unpacked root filesystem (hard links once).
    pub files_bytes: u64,
    pub files: u64,
    /// `rvbox run --no-cache MODULE -- true`: compiles the module every time.
    pub first_start: Option<Summary>,
    /// `rvbox run MODULE -- true` with a warm compile cache.
    pub cached_start: Option<Summary>,
}

pub fn run_convert(
    setup: &Setup,
    image: crate::workloads::Image,
    runs: usize,
    opts: &Options,
    scratch: &Path,
) -> io::Result<ConvertResult> {
    let module = setup.module(image);
    let convert = Spec {
        program: setup.rvbox.clone(),
        argv0: None,
        args: vec![
            "convert".into(),
            setup.image_layout(image).display().to_string(),
            "-o".into(),
            module.display().to_string(),
            "-q".into(),
        ],
        env: vec![],
        chroot: None,
    };
    let (blobs_bytes, _) = tree_size(&setup.image_layout(image).join("blobs"))?;
    let (files_bytes, files) = tree_size(&setup.rootfs(image))?;
    let mut res = ConvertResult {
        image: image.name(),
        error: None,
        wall: None,
        max_rss_kib: None,
        module_bytes: 0,
        blobs_bytes,
        files_bytes,
        files,
        first_start: None,
        cached_start: None,
    };
    let mut samples = Vec::new();
    for i in 0..=runs {
        let s = measure::run(&convert, None, scratch, opts.timeout)?;
        if !s.status.success() {
            res.error = Some(format!(
                "rvbox convert: {}",
                stats::first_error_line(&s.stderr, 200)
                    .unwrap_or_else(|| format!("{:?}", s.status))
            ));
            return Ok(res);
        }
        if i > 0 {
            samples.push(s);
        }
    }
    res.wall = Summary::of(&samples.iter().map(|s| s.wall_s).collect::<Vec<_>>());
    res.max_rss_kib = samples.iter().map(|s| s.max_rss_kib).max();
    res.module_bytes = std::fs::metadata(&module)?.len();

    let argv: &[&str] = match image {
        crate::workloads::Image::Busybox | crate::workloads::Image::Testprogs => {
            &["busybox", "true"]
        }
        crate::workloads::Image::Debian => &["true"],
    };
    let start = |no_cache: bool| -> io::Result<Option<Summary>> {
        let mut args = vec!["run".to_string()];
        if no_cache {
            args.push("--no-cache".into());
        }
        args.push(module.display().to_string());
        args.push("--".into());
        args.extend(argv.iter().map(|a| a.to_string()));
        let spec = Spec {
            program: setup.rvbox.clone(),
            argv0: None,
            args,
            env: vec![(
                "RVBOX_CACHE_DIR".into(),
                setup.cache_dir().display().to_string(),
            )],
            chroot: None,
        };
        let mut walls = Vec::new();
        for i in 0..=runs {
            let s = measure::run(&spec, None, scratch, opts.timeout)?;
            if !s.status.success() {
                return Ok(None);
            }
            if i > 0 {
                walls.push(s.wall_s);
            }
        }
        Ok(Summary::of(&walls))
    };
    res.first_start = start(true)?;
    res.cached_start = start(false)?;
    Ok(res)
}

/// Total size and count of regular files under `dir` (hard links counted once).
fn tree_size(dir: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    let (mut bytes, mut count) = (0u64, 0u64);
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let md = e.path().symlink_metadata()?;
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() && seen.insert((md.dev(), md.ino())) {
                bytes += md.len();
                count += 1;
            }
        }
    }
    Ok((bytes, count))
}

/// Time since `t` in seconds, for progress lines.
pub fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: Status, len: u64, hash: u64, stderr: &str) -> Sample {
        Sample {
            wall_s: 1.0,
            user_s: 0.5,
            sys_s: 0.1,
            max_rss_kib: 1000,
            status,
            stdout_len: len,
            stdout_hash: hash,
            stderr: stderr.into(),
        }
    }

    #[test]
    fn judge_ok_wrong_and_failing_runs() {
        let ok = sample(Status::Exited(0), 6, 42, "");
        assert_eq!(judge(&[ok.clone(), ok.clone()], Some((6, 42))), Outcome::Ok);
        assert_eq!(judge(std::slice::from_ref(&ok), None), Outcome::Ok);
        let other = sample(Status::Exited(0), 6, 43, "");
        assert_eq!(
            judge(&[ok.clone(), other], Some((6, 42))),
            Outcome::WrongOutput {
                bytes: 6,
                expected_bytes: 6
            }
        );
        let crashed = sample(Status::Signaled(11), 6, 42, "");
        assert_eq!(
            judge(&[ok.clone(), crashed], Some((6, 42))),
            Outcome::Fails {
                status: Some(Status::Signaled(11)),
                message: None,
                output_correct: true
            }
        );
        let enosys = sample(
            Status::Exited(1),
            0,
            0,
            "xz: Error creating a pipe: Function not implemented\n",
        );
        assert_eq!(
            judge(&[enosys], Some((6, 42))),
            Outcome::Fails {
                status: Some(Status::Exited(1)),
                message: Some("xz: Error creating a pipe: Function not implemented".into()),
                output_correct: false
            }
        );
        assert!(matches!(judge(&[], None), Outcome::Fails { .. }));
    }
}
