//! `rvbox run -it`: bash from the Debian image on a real pseudo-terminal, driven as a user
//! at a keyboard would: type a command and see its output, ^C a `sleep 100`, feed `cat`
//! a line and ^D, ^Z and `fg`, leave with `exit 3` or ^D, and find the terminal as it was.
//! Also `-t` without `-i`, and `-it` without a terminal.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::{module, rvbox_bin, scratch};

/// The prompt the tests set (bash runs without rc files, so PS1 comes from -e).
const PROMPT: &str = "rvbox$ ";

/// The first start may compile the module.
const START: Duration = Duration::from_secs(600);
const STEP: Duration = Duration::from_secs(60);

fn termios(fd: RawFd) -> libc::termios {
    let mut t = std::mem::MaybeUninit::<libc::termios>::zeroed();
    // SAFETY: tcgetattr fills the termios the pointer refers to.
    let r = unsafe { libc::tcgetattr(fd, t.as_mut_ptr()) };
    assert_eq!(r, 0, "tcgetattr: {}", std::io::Error::last_os_error());
    // SAFETY: zeroed, then filled by tcgetattr.
    unsafe { t.assume_init() }
}

fn termios_bytes(fd: RawFd) -> Vec<u8> {
    let t = termios(fd);
    // SAFETY: a termios is plain data.
    unsafe {
        std::slice::from_raw_parts(
            (&t as *const libc::termios).cast::<u8>(),
            std::mem::size_of::<libc::termios>(),
        )
    }
    .to_vec()
}

/// rvbox on the slave side of a pty, as the session leader with it as its controlling
/// terminal (like a shell's child in a terminal window); the test is the terminal.
struct Session {
    master: OwnedFd,
    /// Kept open so the terminal lives (and can be inspected) after rvbox exits.
    slave: OwnedFd,
    child: Child,
    /// Everything rvbox wrote.
    out: Vec<u8>,
    /// Where the next `expect` starts looking.
    seen: usize,
    /// The terminal's settings before rvbox started.
    before: Vec<u8>,
}

impl Session {
    fn start(args: &[&str]) -> Session {
        Session::start_with(&["-it"], args)
    }

    /// `rvbox run FLAGS ...` on the terminal.
    fn start_with(flags: &[&str], args: &[&str]) -> Session {
        let (mut m, mut s) = (-1, -1);
        let ws = libc::winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: valid out-pointers; no name; default termios; `ws` lives for the call.
        let r =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned two new fds owned by nobody else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let before = termios_bytes(slave.as_raw_fd());
        let m = module("debian");
        let mut cmd = Command::new(rvbox_bin());
        cmd.arg("run")
            .args(flags)
            .args(["-e", &format!("PS1={PROMPT}")])
            .arg(&m)
            .args(args)
            .env("RVBOX_CACHE_DIR", scratch().join("cache"))
            .env_remove("RVBOX_LOG")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
        // SAFETY: between fork and exec only async-signal-safe calls (setsid, ioctl).
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn rvbox");
        Session {
            master,
            slave,
            child,
            out: Vec::new(),
            seen: 0,
            before,
        }
    }

    fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    /// Reads what there is, waiting up to `wait`; `false` at end of output.
    fn pump(&mut self, wait: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32) };
        if n <= 0 {
            return true;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a buffer of that size.
        let r = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r <= 0 {
            return false;
        }
        self.out.extend_from_slice(&buf[..r as usize]);
        true
    }

    /// Waits until `what` appears in the output after the last match; returns the output
    /// up to it.
    fn expect(&mut self, what: &str, within: Duration) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(i) = find(&self.out[self.seen..], what.as_bytes()) {
                let text = String::from_utf8_lossy(&self.out[self.seen..self.seen + i]);
                let text = text.into_owned();
                self.seen += i + what.len();
                return text;
            }
            if t0.elapsed() > within {
                self.kill();
                panic!(
                    "no {what:?} within {within:?}; output:\n{}",
                    self.transcript()
                );
            }
            if !self.pump(Duration::from_millis(50)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                self.pump(Duration::from_millis(200));
                if find(&self.out[self.seen..], what.as_bytes()).is_none() {
                    panic!(
                        "rvbox exited ({st:?}) before {what:?}; output:\n{}",
                        self.transcript()
                    );
                }
            }
        }
    }

    fn send(&self, bytes: &[u8]) {
        // SAFETY: writes from a valid buffer.
        let r = unsafe { libc::write(self.master.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        assert_eq!(r, bytes.len() as isize);
    }

    /// Waits for rvbox to exit, reading its output meanwhile.
    fn wait(&mut self, within: Duration) -> ExitStatus {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if t0.elapsed() > within {
                self.kill();
                panic!("rvbox still running; output:\n{}", self.transcript());
            }
            self.pump(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn interactive_bash_echo_ctrl_c_cat_and_exit_status() {
    let mut s = Session::start(&["bash", "--norc", "--noprofile"]);
    let banner = s.expect(PROMPT, START);
    assert!(!banner.contains("no job control"), "{}", s.transcript());
    // rvbox put the terminal into raw mode; the guest does the line discipline.
    assert_eq!(termios(s.slave.as_raw_fd()).c_lflag & libc::ICANON, 0);

    // A command and its output (Enter sends \r).
    s.send(b"echo hi$((1+2))\r");
    s.expect("\r\nhi3\r\n", STEP);
    s.expect(PROMPT, STEP);

    // The terminal as the guest sees it.
    s.send(b"stty size; tty; test -t 0 && test -t 1 && echo both-ttys\r");
    s.expect("30 100\r\n", STEP);
    s.expect("both-ttys\r\n", STEP);
    s.expect(PROMPT, STEP);

    // ^C stops a foreground `sleep 100` and the prompt comes back at once.
    // Input is handled as it arrives, under the settings of the moment (as on Linux):
    // give bash time to put `sleep` in the foreground before typing ^C.
    s.send(b"sleep 100\r");
    s.expect("sleep 100\r\n", STEP);
    std::thread::sleep(Duration::from_secs(2));
    let t0 = Instant::now();
    s.send(b"\x03");
    s.expect("^C", STEP);
    s.expect(PROMPT, Duration::from_secs(30));
    assert!(t0.elapsed() < Duration::from_secs(30));
    s.send(b"echo status=$?\r");
    s.expect("status=130\r\n", STEP);
    s.expect(PROMPT, STEP);

    // `cat` reads in canonical mode: the line discipline echoes and edits the line
    // (DEL erases "x"), cat prints it back, ^D ends its input.
    s.send(b"cat\r");
    s.expect("cat\r\n", STEP);
    std::thread::sleep(Duration::from_secs(1)); // readline gives the terminal back
    s.send(b"abcx\x7f\r");
    s.expect("abcx\x08 \x08\r\n", STEP); // the echo, with the erase
    s.expect("abc\r\n", STEP); // cat's output
    s.send(b"\x04");
    s.expect(PROMPT, STEP);

    s.send(b"exit 3\r");
    let st = s.wait(STEP);
    assert_eq!(st.code(), Some(3), "{}", s.transcript());
    assert_eq!(
        termios_bytes(s.slave.as_raw_fd()),
        s.before,
        "the terminal is not restored"
    );
}

#[test]
fn ctrl_d_at_the_prompt_exits_with_the_last_status() {
    let mut s = Session::start(&["bash", "--norc", "--noprofile"]);
    s.expect(PROMPT, START);
    s.send(b"false\r");
    s.expect(PROMPT, STEP);
    s.send(b"\x04");
    let st = s.wait(STEP);
    assert_eq!(st.code(), Some(1), "{}", s.transcript());
    assert_eq!(termios_bytes(s.slave.as_raw_fd()), s.before);
}

#[test]
fn job_control_stop_foreground_and_background_read() {
    let mut s = Session::start(&["bash", "--norc", "--noprofile"]);
    s.expect(PROMPT, START);
    // ^Z stops the foreground job and bash takes the terminal back; `fg` resumes it.
    s.send(b"sleep 50\r");
    s.expect("sleep 50\r\n", STEP);
    std::thread::sleep(Duration::from_secs(2));
    s.send(b"\x1a");
    s.expect("^Z", STEP);
    s.expect("Stopped", STEP);
    s.expect(PROMPT, STEP);
    s.send(b"fg\r");
    s.expect("sleep 50\r\n", STEP);
    std::thread::sleep(Duration::from_secs(2));
    s.send(b"\x03");
    s.expect(PROMPT, Duration::from_secs(30));
    // A background job that reads the terminal is stopped by SIGTTIN.
    s.send(b"cat &\r");
    s.expect(PROMPT, STEP);
    let mut stopped = false;
    for _ in 0..20 {
        s.send(b"jobs\r");
        let text = s.expect(PROMPT, STEP);
        if text.contains("Stopped") && text.contains("cat") {
            stopped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(stopped, "{}", s.transcript());
    // (In one line, `wait` may still see the job stopped: the kill takes effect when the
    // job next runs.)
    s.send(b"kill -9 %1\r");
    s.expect(PROMPT, STEP);
    s.send(b"sleep 1; jobs\r");
    s.expect("Killed", STEP);
    s.expect(PROMPT, STEP);
    s.send(b"exit 4\r");
    let st = s.wait(STEP);
    assert_eq!(st.code(), Some(4), "{}", s.transcript());
    assert_eq!(termios_bytes(s.slave.as_raw_fd()), s.before);
}

/// `-t` alone: the container has a terminal (output goes through its line discipline:
/// `\n` becomes `\r\n`) but no input.
#[test]
fn tty_without_input() {
    let m = module("debian");
    let r = crate::support::rvbox(
        &[
            "run",
            "-t",
            m.to_str().unwrap(),
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo ttys; stty size; read x; echo read=$?",
        ],
        b"ignored",
    );
    assert_eq!(r.status, 0, "{}", r.stderr_str());
    assert_eq!(r.stdout_str(), "ttys\r\n24 80\r\nread=1\r\n");
}

#[test]
fn it_needs_a_terminal_on_stdin() {
    let m = module("debian");
    let r = crate::support::rvbox(&["run", "-it", m.to_str().unwrap(), "true"], b"");
    assert_eq!(r.status, 125);
    assert_eq!(
        r.stderr_str(),
        "rvbox: the input device is not a TTY: -it needs a terminal on stdin (without -t, \
         input can come from a pipe or a file)\n"
    );
}

/// Without `-t` the guest does not run the terminal (no RVBOX_TTY): `TCSETS` is kept, not
/// applied, but kept once for the terminal, not per process: what a child set, its parent
/// reads back, as on Linux (each process had its own copy).
#[test]
fn terminal_settings_without_t_belong_to_the_terminal() {
    let mut s = Session::start_with(
        &[],
        &[
            "--",
            "sh",
            "-c",
            "sh -c 'stty -echo -icanon'; stty -a | tr ' ' '\\n' | grep -x -e -echo -e -icanon | tr '\\n' ' '; echo end",
        ],
    );
    let out = s.expect("end", START);
    assert!(out.contains("-icanon -echo "), "{out}");
    assert!(s.wait(STEP).success());
}
