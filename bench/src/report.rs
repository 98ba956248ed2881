//! The results as a text table (stdout), Markdown (bench/results/latest.md) and JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::measure::{signal_name, Status};
use crate::run::{ConvertResult, Outcome, PeerResult, WorkloadResult};
use crate::stats;
use crate::workloads::Peer;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub date_utc: String,
    pub cpu: String,
    pub cores: usize,
    pub mem_gib: f64,
    pub kernel: String,
    pub rvbox_commit: String,
    pub wasmtime: String,
    pub node: String,
    pub qemu: String,
    pub load_before: String,
    pub load_after: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerInfo {
    pub id: &'static str,
    pub label: &'static str,
    pub what: &'static str,
    /// Why it could not run at all, if so.
    pub unavailable: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub warmup_runs: usize,
    pub machine: Machine,
    pub peers: Vec<PeerInfo>,
    pub convert: Vec<ConvertResult>,
    pub workloads: Vec<WorkloadResult>,
    pub total_seconds: f64,
}

/// 3 significant digits: 0.000123 -> "123 µs", 0.0123 -> "12.3 ms", 12.3 -> "12.3 s".
pub fn fmt_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{} µs", sig3(s * 1e6))
    } else if s < 1.0 {
        format!("{} ms", sig3(s * 1e3))
    } else {
        format!("{} s", sig3(s))
    }
}

/// 3 significant digits, no exponent: 1.234 -> "1.23", 12.34 -> "12.3", 1234.5 -> "1235".
pub fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 99.95 {
        format!("{v:.0}")
    } else if a >= 9.995 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn fmt_ratio(r: f64) -> String {
    format!("{}×", sig3(r))
}

pub fn fmt_rss(kib: u64) -> String {
    format!("{} MiB", sig3(kib as f64 / 1024.0))
}

pub fn fmt_bytes(b: u64) -> String {
    format!("{} MiB", sig3(b as f64 / (1 << 20) as f64))
}

/// 156299 -> "156 k", 91385512 -> "91.4 M", 2391533505 -> "2.39 G".
pub fn fmt_count(n: u64) -> String {
    let v = n as f64;
    if v >= 1e9 {
        format!("{} G", sig3(v / 1e9))
    } else if v >= 1e6 {
        format!("{} M", sig3(v / 1e6))
    } else if v >= 1e3 {
        format!("{} k", sig3(v / 1e3))
    } else {
        n.to_string()
    }
}

/// What went wrong, or nothing.
pub fn outcome_note(o: &Outcome, timeout_s: f64) -> String {
    match o {
        Outcome::Ok => String::new(),
        Outcome::WrongOutput {
            bytes,
            expected_bytes,
        } => {
            format!("WRONG OUTPUT ({bytes} bytes, reference {expected_bytes})")
        }
        Outcome::Fails {
            status,
            message,
            output_correct,
        } => {
            let what = match status {
                Some(Status::Exited(c)) => format!("exit {c}"),
                Some(Status::Signaled(s)) => format!("killed by {}", signal_name(*s)),
                Some(Status::TimedOut) => format!("timed out after {}", fmt_time(timeout_s)),
                None => String::new(),
            };
            let mut parts: Vec<String> = Vec::new();
            if !what.is_empty() {
                parts.push(what);
            }
            if let Some(m) = message {
                parts.push(m.clone());
            }
            let mut s = format!("fails ({})", parts.join(": "));
            if *output_correct {
                s.push_str(", after printing the right output");
            }
            s
        }
        Outcome::Unavailable { reason } => {
            if reason.starts_with("n/a") {
                reason.clone()
            } else {
                format!("not run: {reason}")
            }
        }
    }
}

/// One row of figures for a peer; None cells are shown as "-".
struct Row {
    peer: &'static str,
    median: Option<String>,
    range: Option<String>,
    x_native: Option<String>,
    x_qemu: Option<String>,
    rss: Option<String>,
    instr: Option<String>,
    mips: Option<String>,
    note: String,
}

fn rows(w: &WorkloadResult, timeout_s: f64) -> Vec<Row> {
    let native = w.native_base();
    let qemu = w.qemu_base();
    w.peers
        .iter()
        .map(|r: &PeerResult| {
            let timed = matches!(r.outcome, Outcome::Ok | Outcome::WrongOutput { .. });
            let wall = r.wall.filter(|_| timed);
            let med = wall.map(|s| s.median);
            let mut note = outcome_note(&r.outcome, timeout_s);
            if timed
                && w.reference == Some(r.peer)
                && w.peers.iter().filter(|p| p.wall.is_some()).count() > 1
            {
                note = "reference output".to_string();
            }
            Row {
                peer: r.peer.label(),
                median: med.map(fmt_time),
                range: wall.map(|s| format!("{} … {}", fmt_time(s.min), fmt_time(s.max))),
                x_native: med
                    .zip(native)
                    .and_then(|(m, n)| stats::ratio(m, n))
                    .map(fmt_ratio),
                x_qemu: med.zip(qemu).and_then(|(m, (p, q))| {
                    let mark = if p == Peer::QemuChroot
                        && w.peer(Peer::QemuUser)
                            .is_some_and(|u| u.ok_median().is_none())
                    {
                        "*"
                    } else {
                        ""
                    };
                    stats::ratio(m, q).map(|r| format!("{}{mark}", fmt_ratio(r)))
                }),
                rss: r.max_rss_kib.filter(|_| timed).map(fmt_rss),
                instr: r
                    .guest
                    .as_ref()
                    .filter(|_| timed)
                    .map(|g| fmt_count(g.instructions)),
                mips: r
                    .guest
                    .as_ref()
                    .filter(|_| timed)
                    .map(|g| sig3(g.mips.median)),
                note,
            }
        })
        .collect()
}

const HEADERS: [&str; 9] = [
    "peer",
    "median",
    "min … max",
    "× native",
    "× qemu",
    "peak RSS",
    "guest instr",
    "MIPS",
    "note",
];

fn cells(r: &Row) -> [String; 9] {
    let d = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    [
        r.peer.to_string(),
        d(&r.median),
        d(&r.range),
        d(&r.x_native),
        d(&r.x_qemu),
        d(&r.rss),
        d(&r.instr),
        d(&r.mips),
        r.note.clone(),
    ]
}

/// Plain text, for the terminal.
pub fn text(report: &Report, timeout_s: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", header_line(report));
    let all_rows: Vec<(String, Vec<Row>)> = report
        .workloads
        .iter()
        .map(|w| (workload_heading(w), rows(w, timeout_s)))
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for (_, rs) in &all_rows {
        for r in rs {
            for (i, c) in cells(r).iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cs: &[String]| {
        let mut s = String::new();
        for (i, c) in cs.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if i == 0 || i == cs.len() - 1 {
                s.push_str(c);
                if i != cs.len() - 1 {
                    s.push_str(&" ".repeat(pad));
                }
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
            s.push_str("  ");
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", line(&HEADERS.map(String::from)));
    for (heading, rs) in &all_rows {
        let _ = writeln!(out, "{heading}");
        for r in rs {
            let _ = writeln!(out, "{}", line(&cells(r)));
        }
    }
    if !report.convert.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "conversion (rvbox convert; start = rvbox run MODULE -- true):"
        );
        for c in &report.convert {
            let _ = writeln!(out, "  {}", convert_line(c));
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "× qemu: relative to qemu-riscv64 user mode (* the qemu chroot, where user mode cannot run it)"
    );
    out
}

fn header_line(report: &Report) -> String {
    format!(
        "rvbox benchmarks, {} mode: median of the measured runs after {} discarded warm-up run; {} ({} cores), {}",
        report.mode, report.warmup_runs, report.machine.cpu, report.machine.cores, report.machine.date_utc
    )
}

fn workload_heading(w: &WorkloadResult) -> String {
    let mut h = format!(
        "{} [{}]: {}",
        w.workload.id, w.workload.category, w.workload.title
    );
    if !w.workload.input_desc.is_empty() {
        let _ = write!(h, ", stdin {}", w.workload.input_desc);
    }
    let _ = write!(h, "; {} runs", w.runs);
    if w.capped {
        let _ = write!(h, " (cut from {} to fit the time budget)", w.workload.runs);
    }
    h
}

fn convert_line(c: &ConvertResult) -> String {
    if let Some(e) = &c.error {
        return format!("{}: {e}", c.image);
    }
    let t = |s: Option<crate::stats::Summary>| {
        s.map(|s| fmt_time(s.median)).unwrap_or_else(|| "-".into())
    };
    format!(
        "{}: convert {} (peak RSS {}), module {} for {} of files in {} files ({} OCI blobs), start {} first / {} cached",
        c.image,
        t(c.wall),
        c.max_rss_kib.map(fmt_rss).unwrap_or_else(|| "-".into()),
        fmt_bytes(c.module_bytes),
        fmt_bytes(c.files_bytes),
        c.files,
        fmt_bytes(c.blobs_bytes),
        t(c.first_start),
        t(c.cached_start),
    )
}

/// Escapes a table cell.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Markdown for bench/results/latest.md.
pub fn markdown(report: &Report, timeout_s: f64, png_name: Option<&str>) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let _ = writeln!(md, "# rvbox benchmarks\n");
    let _ = writeln!(
        md,
        "Made by `bench/run{}` on {} (UTC) in {:.0} s. Every figure comes from this one run on this one machine: \
         the same inputs (generated by the harness, fed on stdin) for every peer; each peer ran each workload once \
         as a discarded warm-up, then the measured runs, peers taking turns. Times are wall-clock medians with \
         min … max; peak RSS is the largest `ru_maxrss` of the measured runs (the largest single process, via `wait4`). \
         Outputs are compared with the reference peer (native, else the qemu chroot): a peer that prints something \
         else is flagged, not silently timed.\n",
        if report.mode == "quick" { " --quick" } else { "" },
        m.date_utc,
        report.total_seconds
    );
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| | |\n| --- | --- |");
    for (k, v) in [
        ("CPU", format!("{}, {} cores", m.cpu, m.cores)),
        ("memory", format!("{:.0} GiB", m.mem_gib)),
        ("kernel", m.kernel.clone()),
        ("rvbox", m.rvbox_commit.clone()),
        ("wasmtime", m.wasmtime.clone()),
        ("node", m.node.clone()),
        ("qemu", m.qemu.clone()),
        (
            "load average (1, 5, 15 min) before / after",
            format!("{} / {}", m.load_before, m.load_after),
        ),
    ] {
        let _ = writeln!(md, "| {k} | {} |", md_cell(&v));
    }
    let _ = writeln!(md, "\n## Peers\n");
    let _ = writeln!(md, "| peer | what |\n| --- | --- |");
    for p in &report.peers {
        let mut what = p.what.to_string();
        if let Some(u) = &p.unavailable {
            let _ = write!(what, " — **not run: {u}**");
        }
        let _ = writeln!(md, "| {} | {} |", p.label, md_cell(&what));
    }
    if let Some(png) = png_name {
        let _ = writeln!(
            md,
            "\n![time relative to native, per workload and peer]({png})"
        );
    }
    let _ = writeln!(md, "\n## Results\n");
    let _ = writeln!(
        md,
        "× native and × qemu: median time relative to the native amd64 program and to `qemu-riscv64` user mode \
         (marked *: to the qemu chroot, where user mode cannot run the workload). Guest instructions and MIPS: \
         as the emulator reports them with `RVBOX_STATS=1` (MIPS over the emulation alone, without loading \
         or compiling the module).\n"
    );
    let mut cat = "";
    for w in &report.workloads {
        if w.workload.category != cat {
            cat = w.workload.category;
            let _ = writeln!(md, "### {cat}\n");
        }
        let mut head = format!("**{}**: `{}`", w.workload.id, w.workload.argv.join(" "));
        if !w.workload.input_desc.is_empty() {
            let _ = write!(head, ", stdin: {}", w.workload.input_desc);
        }
        let _ = write!(head, "; {} measured runs", w.runs);
        if w.capped {
            let _ = write!(
                head,
                " (cut from {} to fit the time budget)",
                w.workload.runs
            );
        }
        let _ = writeln!(md, "{head}\n");
        let _ = writeln!(md, "| {} |", HEADERS.join(" | "));
        let _ = writeln!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
        );
        for r in rows(w, timeout_s) {
            let cs = cells(&r).map(|c| md_cell(&c));
            let _ = writeln!(md, "| {} |", cs.join(" | "));
        }
        let _ = writeln!(md);
    }
    if !report.convert.is_empty() {
        let _ = writeln!(md, "## Conversion\n");
        let _ = writeln!(
            md,
            "`rvbox convert images/out/NAME -o NAME.wasm`: median time and peak RSS; the module's size against the \
             image's (its OCI blobs, and the files of the unpacked root filesystem); start-up of the module \
             (`rvbox run MODULE -- true`) compiling it every time (`--no-cache`) and from the compile cache.\n"
        );
        let _ = writeln!(md, "| image | convert | peak RSS | module | files (count) | OCI blobs | module / files | start, no cache | start, cached |");
        let _ = writeln!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for c in &report.convert {
            if let Some(e) = &c.error {
                let _ = writeln!(md, "| {} | {} | | | | | | | |", c.image, md_cell(e));
                continue;
            }
            let t = |s: Option<crate::stats::Summary>| {
                s.map(|s| fmt_time(s.median)).unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |",
                c.image,
                t(c.wall),
                c.max_rss_kib.map(fmt_rss).unwrap_or_default(),
                fmt_bytes(c.module_bytes),
                fmt_bytes(c.files_bytes),
                c.files,
                fmt_bytes(c.blobs_bytes),
                if c.files_bytes > 0 {
                    fmt_ratio(c.module_bytes as f64 / c.files_bytes as f64)
                } else {
                    "-".into()
                },
                t(c.first_start),
                t(c.cached_start),
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::GuestSummary;
    use crate::stats::Summary;
    use crate::workloads::{workloads, Mode};

    #[test]
    fn number_formats() {
        assert_eq!(fmt_time(0.000_123), "123 µs");
        assert_eq!(fmt_time(0.012_34), "12.3 ms");
        assert_eq!(fmt_time(0.001_5), "1.50 ms");
        assert_eq!(fmt_time(1.234), "1.23 s");
        assert_eq!(fmt_time(123.4), "123 s");
        assert_eq!(fmt_ratio(1.0), "1.00×");
        assert_eq!(fmt_ratio(38.46), "38.5×");
        assert_eq!(fmt_ratio(1234.0), "1234×");
        assert_eq!(fmt_count(156_299), "156 k");
        assert_eq!(fmt_count(91_385_512), "91.4 M");
        assert_eq!(fmt_count(2_391_533_505), "2.39 G");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_rss(2676), "2.61 MiB");
        assert_eq!(fmt_bytes(168_184_369), "160 MiB");
    }

    #[test]
    fn failure_notes() {
        let n = outcome_note(
            &Outcome::Fails {
                status: Some(Status::Exited(127)),
                message: Some("rvbox: sh: executable file not found in $PATH".into()),
                output_correct: false,
            },
            60.0,
        );
        assert_eq!(
            n,
            "fails (exit 127: rvbox: sh: executable file not found in $PATH)"
        );
        let n = outcome_note(
            &Outcome::Fails {
                status: Some(Status::Signaled(11)),
                message: None,
                output_correct: true,
            },
            60.0,
        );
        assert_eq!(
            n,
            "fails (killed by SIGSEGV), after printing the right output"
        );
        let n = outcome_note(
            &Outcome::Fails {
                status: Some(Status::TimedOut),
                message: None,
                output_correct: false,
            },
            120.0,
        );
        assert_eq!(n, "fails (timed out after 120 s)");
        assert_eq!(
            outcome_note(
                &Outcome::Unavailable {
                    reason: "node not found".into()
                },
                1.0
            ),
            "not run: node not found"
        );
        assert_eq!(
            outcome_note(
                &Outcome::WrongOutput {
                    bytes: 3,
                    expected_bytes: 4
                },
                1.0
            ),
            "WRONG OUTPUT (3 bytes, reference 4)"
        );
    }

    fn peer(p: Peer, outcome: Outcome, median: f64) -> PeerResult {
        PeerResult {
            peer: p,
            command: None,
            outcome,
            wall: Some(Summary {
                median,
                min: median * 0.9,
                max: median * 1.2,
                n: 3,
            }),
            cpu: None,
            max_rss_kib: Some(10 * 1024),
            guest: p.is_rvbox().then_some(GuestSummary {
                instructions: 2_000_000_000,
                mips: Summary {
                    median: 250.0,
                    min: 240.0,
                    max: 260.0,
                    n: 3,
                },
            }),
            samples: vec![],
        }
    }

    fn report() -> Report {
        let w = workloads(Mode { quick: true }, None)
            .into_iter()
            .find(|w| w.id == "python-loop")
            .unwrap();
        let fails = Outcome::Fails {
            status: Some(Status::Signaled(11)),
            message: None,
            output_correct: true,
        };
        let wr = WorkloadResult {
            workload: w,
            input_bytes: 0,
            runs: 3,
            capped: false,
            reference: Some(Peer::Native),
            peers: vec![
                peer(Peer::Native, Outcome::Ok, 0.1),
                peer(Peer::QemuUser, Outcome::Ok, 0.5),
                peer(
                    Peer::QemuChroot,
                    Outcome::Unavailable {
                        reason: "needs root (chroot)".into(),
                    },
                    0.0,
                ),
                peer(Peer::Rvbox, Outcome::Ok, 4.0),
                peer(Peer::Node, fails, 5.0),
                peer(
                    Peer::RvboxNative,
                    Outcome::WrongOutput {
                        bytes: 1,
                        expected_bytes: 2,
                    },
                    3.0,
                ),
            ],
        };
        Report {
            mode: "quick",
            warmup_runs: 1,
            machine: Machine {
                cpu: "Test CPU".into(),
                cores: 2,
                ..Default::default()
            },
            peers: vec![],
            convert: vec![],
            workloads: vec![wr],
            total_seconds: 12.0,
        }
    }

    #[test]
    fn text_table_rows_and_ratios() {
        let t = text(&report(), 60.0);
        let line = |label: &str| {
            t.lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("{label} in\n{t}"))
                .to_string()
        };
        let native = line("native amd64");
        assert!(
            native.contains("100 ms") && native.contains("1.00×") && native.contains("0.20×"),
            "{native}"
        );
        assert!(native.ends_with("reference output"), "{native}");
        let rvbox = line("rvbox run");
        assert!(
            rvbox.contains("4.00 s") && rvbox.contains("40.0×") && rvbox.contains("8.00×"),
            "{rvbox}"
        );
        assert!(
            rvbox.contains("2.00 G") && rvbox.contains(" 250"),
            "{rvbox}"
        );
        let node = line("rvbox on node");
        assert!(
            node.contains("fails (killed by SIGSEGV), after printing the right output"),
            "{node}"
        );
        assert!(
            !node.contains("5.00 s"),
            "a failing peer is not timed: {node}"
        );
        let native_build = line("rvbox native");
        assert!(
            native_build.contains("3.00 s") && native_build.contains("WRONG OUTPUT"),
            "{native_build}"
        );
        assert!(line("qemu chroot").contains("not run: needs root (chroot)"));
        assert!(
            t.contains("python-loop [CPU]: python3: sum(range(100000)); 3 runs"),
            "{t}"
        );
        // Columns line up: every figure row has "×" cells at the same offset as the header.
        let head = line("peer");
        let col = head.find("× native").unwrap() + "× native".len();
        assert_eq!(native[..col].chars().last(), Some('×'), "{head}\n{native}");
    }

    #[test]
    fn markdown_tables() {
        let md = markdown(&report(), 60.0, Some("latest.png"));
        assert!(md.contains("![time relative to native, per workload and peer](latest.png)"));
        assert!(md.contains("### CPU"));
        assert!(
            md.contains("**python-loop**: `python3 -c print(sum(range(100000)))`; 3 measured runs")
        );
        let row = md.lines().find(|l| l.starts_with("| rvbox run |")).unwrap();
        assert_eq!(row.matches('|').count(), 10, "{row}");
        assert!(
            row.contains("| 4.00 s | 3.60 s … 4.80 s | 40.0× | 8.00× | 10.0 MiB | 2.00 G | 250 |"),
            "{row}"
        );
        assert_eq!(md_cell("a|b"), "a\\|b");
    }
}
