//! What the host may ask of a run, through the module's environment: `RVBOX_*` variables,
//! which every WASI host can set (`rvbox run` turns its options into them; `wasmtime run
//! --env RVBOX_WORKDIR=/x`; Node's runner does as `rvbox run`). The guest strips them from
//! the program's environment.
//!
//! | variable | `rvbox run` | meaning |
//! |---|---|---|
//! | `RVBOX_WORKDIR=/path` | `-w` | the working directory instead of the image's WorkingDir |
//! | `RVBOX_ENTRYPOINT=prog` | `--entrypoint` | argv is `prog` + the run's arguments; the image's Cmd is not used. Empty: no entrypoint at all |
//! | `RVBOX_USER=user[:group]` | `-u` | the user instead of the image's User (names or numbers) |
//! | `RVBOX_MEMORY=SIZE` | `--memory` | the guest's memory limit (`512m`, `2g`, bytes) |
//! | `RVBOX_TIMEOUT=DURATION` | `--timeout` | end the run after this long (`10`, `1.5s`, `500ms`, `2m`, `1h`) |
//! | `RVBOX_CHECK=1` | `-e RVBOX_CHECK=1` | check the scheduler's wake-up invariant whenever every task waits (`kernel::check_wakeups`); `0` turns it off in debug builds, where it is on |
//! | `RVBOX_LOG=TOPIC,...` | `-e RVBOX_LOG=...` | report on stderr: any value but `0` logs unimplemented system calls (once each); topics `strace` (every system call), `stats` (instructions, time, MIPS at exit), `volumes` (every host call for a volume), `aot` (why blocks run interpreted); `all` is every topic ([`Log`]) |
//! | `RVBOX_STATS=1` | `-e RVBOX_STATS=1` | the same as the `stats` topic |
//! | `RVBOX_AOT_FUNCTIONS=A-B` | `-e ...` | run only translated functions A to B-1 (bisecting a translator bug to one function) |
//! | `RVBOX_AOT=0` | `--aot off` | run no translated code: the interpreter runs everything (for comparing the two on one module) |
//!
//! The parsers are shared with the `rvbox` CLI, so both say the same about a bad value.

/// docker's smallest memory limit ("Minimum memory limit allowed is 6MB").
pub const MIN_MEMORY: u64 = 6 << 20;

/// What the host asked for. `None`: not set (the image's or rvbox's default).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Knobs {
    pub workdir: Option<Vec<u8>>,
    /// `Some(empty)`: no entrypoint.
    pub entrypoint: Option<Vec<u8>>,
    pub user: Option<Vec<u8>>,
    /// Bytes.
    pub memory: Option<u64>,
    /// The run's time limit: nanoseconds, and the value as given (for the message).
    pub timeout: Option<(u64, String)>,
    /// Check the wake-up invariant (`None`: on in debug builds only).
    pub check: Option<bool>,
}

impl Knobs {
    /// Reads the knobs from the module's environment. An error is a message naming the
    /// knob and what is wrong with its value.
    pub fn from_env(env: &[(String, String)]) -> Result<Knobs, String> {
        let get = |k: &str| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v);
        let mut knobs = Knobs::default();
        if let Some(w) = get("RVBOX_WORKDIR").filter(|w| !w.is_empty()) {
            if !w.starts_with('/') {
                return Err(format!(
                    "--workdir (RVBOX_WORKDIR) {w:?}: the working directory must be an \
                     absolute path"
                ));
            }
            knobs.workdir = Some(w.as_bytes().to_vec());
        }
        knobs.entrypoint = get("RVBOX_ENTRYPOINT").map(|e| e.as_bytes().to_vec());
        knobs.user = get("RVBOX_USER")
            .filter(|u| !u.is_empty())
            .map(|u| u.as_bytes().to_vec());
        if let Some(m) = get("RVBOX_MEMORY").filter(|m| !m.is_empty()) {
            knobs.memory = Some(parse_memory(m)?);
        }
        if let Some(t) = get("RVBOX_TIMEOUT").filter(|t| !t.is_empty()) {
            let ns = parse_timeout(t)?;
            if ns > 0 {
                knobs.timeout = Some((ns, t.trim().to_string()));
            }
        }
        if let Some(c) = get("RVBOX_CHECK").filter(|c| !c.is_empty()) {
            knobs.check = Some(match c.as_str() {
                "1" => true,
                "0" => false,
                _ => return Err(format!("RVBOX_CHECK {c:?}: give 1 or 0")),
            });
        }
        Ok(knobs)
    }
}

/// What the guest reports on stderr: `RVBOX_LOG` and `RVBOX_STATS` (see the table above).
/// This is the one reader of both, with one rule: a value is a comma-separated list of
/// topics, `all` naming every topic, and any value but empty or `0` turns logging on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Log {
    /// Unimplemented system calls and other one-time notes.
    pub on: bool,
    pub strace: bool,
    pub stats: bool,
    pub volumes: bool,
    /// Why decoded blocks got no translated code (the first few hundred).
    pub aot: bool,
}

/// Whether the `RVBOX_LOG` value `log` asks for `topic` (`""`: for logging at all). The
/// rule of the guest and of the `rvbox` CLI (its topics `cache`, `time`, `trap`).
pub fn log_wants(log: &str, topic: &str) -> bool {
    let log = log.trim();
    let on = !log.is_empty() && log != "0";
    on && (topic.is_empty()
        || log
            .split(',')
            .any(|w| w.trim() == topic || w.trim() == "all"))
}

impl Log {
    pub fn parse(log: Option<&str>, stats: Option<&str>) -> Log {
        let log = log.unwrap_or("");
        let on = log_wants(log, "");
        let topic = |t: &str| log_wants(log, t);
        Log {
            on,
            strace: topic("strace"),
            stats: topic("stats") || stats.is_some_and(|s| !s.is_empty() && s != "0"),
            volumes: topic("volumes"),
            aot: topic("aot"),
        }
    }

    /// The module's `RVBOX_LOG` and `RVBOX_STATS` (read once).
    pub fn get() -> Log {
        static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
        *LOG.get_or_init(|| {
            let var = |k| std::env::var(k).ok();
            Log::parse(var("RVBOX_LOG").as_deref(), var("RVBOX_STATS").as_deref())
        })
    }
}

/// Whether translated code may run (`RVBOX_AOT` is not `0` or `off`; read once).
pub fn aot_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        !matches!(
            std::env::var("RVBOX_AOT").as_deref().map(str::trim),
            Ok("0" | "off")
        )
    })
}

/// `RVBOX_AOT_FUNCTIONS=A-B`: only translated functions A..B may run (read once).
pub fn aot_functions() -> Option<(u32, u32)> {
    static R: std::sync::OnceLock<Option<(u32, u32)>> = std::sync::OnceLock::new();
    *R.get_or_init(|| {
        let v = std::env::var("RVBOX_AOT_FUNCTIONS").ok()?;
        let (a, b) = v.split_once('-')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    })
}

/// A `--memory` value as docker takes it: bytes, or a number (decimals allowed) with a
/// unit `b`, `k`, `m`, `g` or `t` (powers of 1024; `kb`, `KiB`... too); at least 6 MiB.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "--memory (RVBOX_MEMORY) {text:?}: not a size: give bytes, or a number with a unit \
             b, k, m or g (e.g. 512m, 2g)"
        )
    };
    let t = text.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let unit = unit.trim_start().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let bytes = scaled(num, 1u128 << shift).ok_or_else(bad)?;
    let bytes = u64::try_from(bytes).map_err(|_| bad())?;
    if bytes < MIN_MEMORY {
        return Err(format!(
            "--memory (RVBOX_MEMORY) {text}: too little: the minimum is 6 MiB (as docker's)"
        ));
    }
    Ok(bytes)
}

/// A `--timeout` value: seconds, or a number (decimals allowed) with a unit `ms`, `s`,
/// `m`, `h` or `d`; in nanoseconds. 0 means no time limit (as coreutils' `timeout 0`).
pub fn parse_timeout(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "--timeout (RVBOX_TIMEOUT) {text:?}: not a duration: give seconds, or a number with \
             a unit ms, s, m or h (e.g. 10, 1.5s, 500ms, 2m)"
        )
    };
    let t = text.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let ns_per: u128 = match unit {
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return Err(bad()),
    };
    let ns = scaled(num, ns_per).ok_or_else(bad)?;
    // More than a century is a mistake, and would overflow the clock's arithmetic.
    if ns > 100 * 365 * 86_400_000_000_000 {
        return Err(format!("--timeout (RVBOX_TIMEOUT) {text}: too long"));
    }
    Ok(ns as u64)
}

/// `num` (digits, at most one `.`) times `unit`, rounded down; `None` if `num` is not such
/// a number or is absurdly large.
fn scaled(num: &str, unit: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 15
    {
        return None;
    }
    // Exactly: (int.frac * 10^k) * unit / 10^k, with at most 9 decimals.
    let frac = &frac[..frac.len().min(9)];
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    Some(digits.checked_mul(unit)? / 10u128.pow(frac.len() as u32))
}

/// How a time limit is named in messages: the value as given, with an `s` when it is a
/// plain number of seconds ("2s", "500ms").
pub fn timeout_text(given: &str) -> String {
    if given.ends_with(|c: char| c.is_ascii_digit() || c == '.') {
        format!("{given}s")
    } else {
        given.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_topics() {
        let p = Log::parse;
        assert_eq!(p(None, None), Log::default());
        assert_eq!(p(Some("0"), None), Log::default());
        assert_eq!(
            p(Some("1"), None),
            Log {
                on: true,
                ..Log::default()
            }
        );
        let strace = p(Some("strace"), None);
        assert!(strace.on && strace.strace && !strace.stats && !strace.volumes);
        let two = p(Some("volumes, stats"), None);
        assert!(two.on && two.volumes && two.stats && !two.strace);
        let all = p(Some("all"), None);
        assert!(all.strace && all.stats && all.volumes);
        // RVBOX_STATS alone reports the stats, without logging anything else.
        assert_eq!(
            p(None, Some("1")),
            Log {
                stats: true,
                ..Log::default()
            }
        );
        assert_eq!(p(None, Some("0")), Log::default());
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn memory_sizes_as_docker_takes_them() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("2g"), Ok(2 << 30));
        assert_eq!(parse_memory("2G"), Ok(2 << 30));
        assert_eq!(parse_memory("1.5g"), Ok(3 << 29));
        assert_eq!(parse_memory("64MiB"), Ok(64 << 20));
        assert_eq!(parse_memory("64mb"), Ok(64 << 20));
        assert_eq!(parse_memory("10000k"), Ok(10_240_000));
        assert_eq!(parse_memory("6291456"), Ok(6 << 20));
        assert_eq!(parse_memory("6291456b"), Ok(6 << 20));
        for bad in ["", "m", "12x", "-5m", "1..2m", "1e9", "5 mm", "0x100000"] {
            let e = parse_memory(bad).unwrap_err();
            assert!(
                e.starts_with("--memory (RVBOX_MEMORY) ") && e.contains("not a size"),
                "{bad}: {e}"
            );
        }
        let e = parse_memory("5m").unwrap_err();
        assert!(e.contains("the minimum is 6 MiB"), "{e}");
        assert!(parse_memory("99999999999999999999999g").is_err());
    }

    #[test]
    fn timeouts_in_seconds_or_with_a_unit() {
        assert_eq!(parse_timeout("10"), Ok(10_000_000_000));
        assert_eq!(parse_timeout("10s"), Ok(10_000_000_000));
        assert_eq!(parse_timeout("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_timeout(".25s"), Ok(250_000_000));
        assert_eq!(parse_timeout("500ms"), Ok(500_000_000));
        assert_eq!(parse_timeout("2m"), Ok(120_000_000_000));
        assert_eq!(parse_timeout("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_timeout("0"), Ok(0));
        for bad in ["", "s", "ten", "-1", "1.2.3", "10x", "1e3", "5 s"] {
            let e = parse_timeout(bad).unwrap_err();
            assert!(
                e.starts_with("--timeout (RVBOX_TIMEOUT) ") && e.contains("not a duration"),
                "{bad}: {e}"
            );
        }
        assert!(parse_timeout("1000000d").unwrap_err().contains("too long"));
        assert_eq!(timeout_text("2"), "2s");
        assert_eq!(timeout_text("1.5"), "1.5s");
        assert_eq!(timeout_text("500ms"), "500ms");
    }

    #[test]
    fn knobs_from_the_environment() {
        assert_eq!(
            Knobs::from_env(&env(&[("PATH", "/x")])),
            Ok(Knobs::default())
        );
        let k = Knobs::from_env(&env(&[
            ("RVBOX_WORKDIR", "/srv/app"),
            ("RVBOX_ENTRYPOINT", "/bin/echo"),
            ("RVBOX_USER", "nobody:nogroup"),
            ("RVBOX_MEMORY", "64m"),
            ("RVBOX_TIMEOUT", "2"),
            ("RVBOX_CHECK", "1"),
        ]))
        .unwrap();
        assert_eq!(
            k,
            Knobs {
                workdir: Some(b"/srv/app".to_vec()),
                entrypoint: Some(b"/bin/echo".to_vec()),
                user: Some(b"nobody:nogroup".to_vec()),
                memory: Some(64 << 20),
                timeout: Some((2_000_000_000, "2".into())),
                check: Some(true),
            }
        );
        // Empty: not set, except the entrypoint, where empty means "none".
        let k = Knobs::from_env(&env(&[
            ("RVBOX_WORKDIR", ""),
            ("RVBOX_ENTRYPOINT", ""),
            ("RVBOX_USER", ""),
            ("RVBOX_MEMORY", ""),
            ("RVBOX_TIMEOUT", "0"),
        ]))
        .unwrap();
        assert_eq!(
            k,
            Knobs {
                entrypoint: Some(Vec::new()),
                ..Knobs::default()
            }
        );
        let e = Knobs::from_env(&env(&[("RVBOX_WORKDIR", "srv")])).unwrap_err();
        assert_eq!(
            e,
            "--workdir (RVBOX_WORKDIR) \"srv\": the working directory must be an absolute path"
        );
        assert!(Knobs::from_env(&env(&[("RVBOX_MEMORY", "lots")])).is_err());
        assert!(Knobs::from_env(&env(&[("RVBOX_TIMEOUT", "soon")])).is_err());
    }
}
