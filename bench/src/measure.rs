//! Runs one command as a direct child and measures it: wall time, CPU time and peak RSS
//! from the child's own rusage (`wait4`), exit status, and a hash of what it wrote.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A command to run: program, argv[0], arguments, a clean environment, maybe a new root.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub program: PathBuf,
    /// argv[0] when it is not the program path.
    pub argv0: Option<String>,
    pub args: Vec<String>,
    /// The whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// chroot(2) into this directory before exec (the program path is then inside it).
    pub chroot: Option<PathBuf>,
}

impl Spec {
    /// The command line as a user would type it (for the report).
    pub fn display(&self) -> String {
        let mut parts = Vec::new();
        if let Some(root) = &self.chroot {
            parts.push(format!("chroot {}", root.display()));
        }
        parts.push(self.program.display().to_string());
        parts.extend(self.args.iter().map(|a| shell_quote(a)));
        parts.join(" ")
    }
}

/// Quotes `s` for a POSIX shell when needed.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=./,:+%@".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Exited(i32),
    Signaled(i32),
    TimedOut,
}

impl Status {
    pub fn success(self) -> bool {
        self == Status::Exited(0)
    }
}

/// One run.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub wall_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    /// ru_maxrss: the largest resident set of the child or of any descendant it waited for.
    pub max_rss_kib: u64,
    pub status: Status,
    pub stdout_len: u64,
    pub stdout_hash: u64,
    #[serde(skip)]
    pub stderr: String,
}

/// Runs `spec` with stdin from `stdin` (or /dev/null), stdout and stderr to files in `scratch`,
/// killing its process group after `timeout`.
pub fn run(
    spec: &Spec,
    stdin: Option<&Path>,
    scratch: &Path,
    timeout: Duration,
) -> io::Result<Sample> {
    let out_path = scratch.join("stdout");
    let err_path = scratch.join("stderr");
    let stdin = match stdin {
        Some(p) => Stdio::from(File::open(p)?),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(&spec.program);
    if let Some(a0) = &spec.argv0 {
        cmd.arg0(a0);
    }
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(Stdio::from(File::create(&out_path)?))
        .stderr(Stdio::from(File::create(&err_path)?))
        .process_group(0);
    if let Some(root) = &spec.chroot {
        let root = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in chroot path"))?;
        // SAFETY: runs in the forked child before exec; chroot(2) and chdir(2) are
        // async-signal-safe and only read the CStrings, which live until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    // The watchdog is started before the clock so that the measured span holds only the
    // child. It kills the child's process group if no "done" arrives in time.
    let (pid_tx, pid_rx) = mpsc::channel::<i32>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let Ok(pid) = pid_rx.recv() else { return false };
        match done_rx.recv_timeout(timeout) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // SAFETY: kill(2) has no memory-safety preconditions. The child is not reaped
                // before this thread is joined, so its pid (= process group id) is still ours.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                true
            }
            _ => false,
        }
    });

    let start = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            drop(pid_tx);
            let _ = watchdog.join();
            return Err(e);
        }
    };
    let pid = child.id() as libc::pid_t;
    let _ = pid_tx.send(pid);
    // Wait for the exit without reaping (WNOWAIT): the pid stays reserved for the watchdog.
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid(2).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`, which outlives the call.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let wall = start.elapsed();
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    // Anything the command left running in its process group goes too.
    // SAFETY: as above; the group leader is a zombie we have not reaped.
    unsafe { libc::kill(-pid, libc::SIGKILL) };

    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter for wait4(2).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes only into `status` and `ru`, which outlive the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        return Err(io::Error::last_os_error());
    }
    drop(child);
    let status = if timed_out {
        Status::TimedOut
    } else if libc::WIFEXITED(status) {
        Status::Exited(libc::WEXITSTATUS(status))
    } else {
        Status::Signaled(libc::WTERMSIG(status))
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let (stdout_len, stdout_hash) = hash_file(&out_path)?;
    let mut stderr = Vec::new();
    File::open(&err_path)?
        .take(1 << 20)
        .read_to_end(&mut stderr)?;
    Ok(Sample {
        wall_s: wall.as_secs_f64(),
        user_s: tv(ru.ru_utime),
        sys_s: tv(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss.max(0) as u64,
        status,
        stdout_len,
        stdout_hash,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// FNV-1a (64 bit): enough to tell outputs apart within one run.
#[derive(Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

fn hash_file(path: &Path) -> io::Result<(u64, u64)> {
    let mut f = File::open(path)?;
    let mut h = Fnv1a::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, h.finish()))
}

/// A signal's name: 11 -> "SIGSEGV".
pub fn signal_name(sig: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string (or NULL);
    // it is copied out at once.
    let desc = unsafe {
        let p = libc::strsignal(sig);
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    let abbrev = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return desc.unwrap_or_else(|| format!("signal {sig}")),
    };
    abbrev.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        let h = |s: &[u8]| {
            let mut f = Fnv1a::default();
            f.update(s);
            f.finish()
        };
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn quoting_for_display() {
        assert_eq!(shell_quote("python3"), "python3");
        assert_eq!(shell_quote("print(1)"), "'print(1)'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        let spec = Spec {
            program: "/usr/bin/python3".into(),
            argv0: Some("python3".into()),
            args: vec!["-c".into(), "pass".into()],
            env: vec![],
            chroot: Some("/r".into()),
        };
        assert_eq!(spec.display(), "chroot /r /usr/bin/python3 -c pass");
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(9), "SIGKILL");
    }
}
