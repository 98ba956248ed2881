//! The terminal: Linux's `N_TTY` line discipline, for the one terminal a module can own.
//!
//! When the host hands the module its terminal in raw mode (`rvbox run -t` says so with
//! `RVBOX_TTY=1`), the guest does what the Linux kernel does for a pty slave: the bytes
//! the user types go through [`Tty::receive`] (input flags, the signal characters,
//! canonical line editing, echo), programs take them with [`Tty::read`], and what
//! programs write goes through [`Tty::output`] (`OPOST`). The terminal ioctls are here
//! too ([`Tty::ioctl`]), with the session and foreground process group of job control.
//!
//! **[`Tty`] is a pure data structure: it knows nothing of processes, guest memory or the
//! host.** Callers say who asks ([`Caller`]) and get back what to do: bytes to write to the
//! terminal, signals for a process group, a controlling-terminal change. [`Terminal`] and
//! the functions after it are the glue: the kernel keeps the one `Terminal`
//! (`Kernel::terminal`), [`pump`] feeds it what the user typed (from the scheduler, and
//! before every read, poll and ioctl), and the file calls of the standard streams,
//! `/dev/tty` and `/dev/pts/0` go through it.
//!
//! Modelled on Linux's `drivers/tty/n_tty.c`, `tty_io.c`, `tty_ioctl.c` and
//! `tty_jobctrl.c`. Where it differs, on purpose:
//! - Echo is produced by `receive` and written by the caller at once; Linux queues it
//!   behind stopped output (`^S`). As in Linux, the echo of the current batch of input is
//!   discarded when a signal character flushes the input.
//! - `VTIME` has no timer of its own: [`Tty::read`] measures it from the first read that
//!   found too little input (`VMIN` = 0) or from the read that first saw the current
//!   number of buffered bytes (`VMIN` > 0, the inter-byte timer), and returns the
//!   deadline for the caller to sleep until. A read abandoned for a signal leaves that
//!   clock running unless the caller calls [`Tty::cancel_wait`].
//! - There is one terminal, so a process's controlling terminal is this one or none
//!   ([`Caller::ctty`]). The glue derives it from the session (a process has it when its
//!   session is the terminal's), so `TIOCNOTTY` by a process that is not its session's
//!   leader detaches nothing.
//! - `IUTF8` is off by default, as in the kernel (terminal emulators turn it on).
//!
//! The host tells the guest that its window changed size in band, with a report in the
//! input that [`ResizeFilter`] takes out (`RVBOX_TTY_RESIZE=1`; the browser page sends
//! them). Not done: the exit of a session leader other than pid 1
//! does not hang the terminal up ([`Tty::session_leader_exited`] is not called yet);
//! end of file on host stdin reads as end of file (Linux would hang up); rvbox's own
//! messages (`RVBOX_LOG`, fatal signals) bypass output processing.

use std::borrow::Cow;
use std::collections::VecDeque;

use super::abi::{Termios, Winsize};
use super::errno::*;
use super::signal::{SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH};

// c_iflag (asm-generic/termbits.h).
pub const IGNBRK: u32 = 0o1;
pub const BRKINT: u32 = 0o2;
pub const IGNPAR: u32 = 0o4;
pub const PARMRK: u32 = 0o10;
pub const INPCK: u32 = 0o20;
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IUCLC: u32 = 0o1000;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IXOFF: u32 = 0o10000;
pub const IMAXBEL: u32 = 0o20000;
pub const IUTF8: u32 = 0o40000;

// c_oflag.
pub const OPOST: u32 = 0o1;
pub const OLCUC: u32 = 0o2;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONOCR: u32 = 0o20;
pub const ONLRET: u32 = 0o40;
pub const TABDLY: u32 = 0o14000;
/// `TAB3`: expand tabs to spaces.
pub const XTABS: u32 = 0o14000;

// c_cflag.
pub const CBAUD: u32 = 0o10017;
pub const BOTHER: u32 = 0o10000;
pub const B38400: u32 = 0o17;
pub const CSIZE: u32 = 0o60;
pub const CS8: u32 = 0o60;
pub const CREAD: u32 = 0o200;
pub const PARENB: u32 = 0o400;
/// Where the input speed sits in `c_cflag` (`CIBAUD` = `CBAUD << IBSHIFT`).
const IBSHIFT: u32 = 16;

// c_lflag.
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const XCASE: u32 = 0o4;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOPRT: u32 = 0o2000;
pub const ECHOKE: u32 = 0o4000;
pub const FLUSHO: u32 = 0o10000;
pub const PENDIN: u32 = 0o40000;
pub const IEXTEN: u32 = 0o100000;
pub const EXTPROC: u32 = 0o200000;

// c_cc indices.
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSWTC: usize = 7;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VDISCARD: usize = 13;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

pub use super::abi::ioctl::*;

// TCFLSH and TCXONC arguments.
pub const TCIFLUSH: u64 = 0;
pub const TCOFLUSH: u64 = 1;
pub const TCIOFLUSH: u64 = 2;
pub const TCOOFF: u64 = 0;
pub const TCOON: u64 = 1;
pub const TCIOFF: u64 = 2;
pub const TCION: u64 = 3;

/// `_POSIX_VDISABLE`: a control character set to this is off. It is also what canonical
/// mode stores for an end-of-file mark (Linux's `__DISABLED_CHAR`).
const DISABLED: u8 = 0;

/// `N_TTY_BUF_SIZE`: the read buffer.
pub const BUF_SIZE: usize = 4096;

/// The kernel's `iscntrl`: ASCII controls only (its Latin-1 table has no C1 controls).
fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

/// The kernel's `isalnum`: ASCII, and the Latin-1 letters of its ctype table.
fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric() || (c >= 0xc0 && c != 0xd7 && c != 0xf7)
}

fn to_upper(c: u8) -> u8 {
    if c.is_ascii_lowercase() || (c >= 0xdf && c != 0xf7) {
        c - 0x20
    } else {
        c
    }
}

fn to_lower(c: u8) -> u8 {
    if c.is_ascii_uppercase() || ((0xc0..=0xde).contains(&c) && c != 0xd7) {
        c + 0x20
    } else {
        c
    }
}

/// Baud rates of the `Bnnn` codes (`B0`..`B38400`, then `B57600`..`B4000000`).
fn baud_of(code: u32) -> Option<u32> {
    const LOW: [u32; 16] = [
        0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
    ];
    const HIGH: [u32; 15] = [
        57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000,
        2500000, 3000000, 3500000, 4000000,
    ];
    if code & BOTHER == 0 {
        Some(LOW[(code & 0o17) as usize])
    } else if code & 0o17 == 0 {
        None // BOTHER: the speed is given in c_ispeed/c_ospeed
    } else {
        Some(HIGH[(code & 0o17) as usize - 1])
    }
}

/// What [`Tty::receive`] did with the input.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// How many input bytes were taken; the rest must wait until a reader makes room
    /// (Linux leaves them in the tty's flip buffer). Never fewer than [`Tty::room`].
    pub consumed: usize,
    /// Bytes to write to the terminal (the echo, output-processed).
    pub echo: Vec<u8>,
    /// Signals for the foreground process group ([`Tty::foreground`]), in order.
    pub signals: Vec<i32>,
}

/// What [`Tty::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `n` bytes were copied (0 is a real result in non-canonical mode: `VMIN` = 0).
    Data(usize),
    /// End of file: `VEOF` on an empty line.
    Eof,
    /// Nothing to return yet: park the reader until input arrives, or until
    /// `deadline_ns` (`VTIME`), then read again. A non-blocking read gets `EAGAIN`.
    WouldBlock { deadline_ns: Option<u64> },
}

/// Who asks: the calling process, as job control sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub pid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// This terminal is the caller's controlling terminal.
    pub ctty: bool,
    /// The caller may do what needs `CAP_SYS_ADMIN` (steal a terminal, `TIOCSTI`).
    pub admin: bool,
    /// `SIGTTIN` is blocked or ignored by the caller.
    pub ttin_ignored: bool,
    /// `SIGTTOU` is blocked or ignored by the caller.
    pub ttou_ignored: bool,
    /// The caller's process group is orphaned (no member has a parent in another group of
    /// the same session), so stopping it would stop it for good.
    pub orphaned: bool,
}

impl Caller {
    fn leader(&self) -> bool {
        self.pid == self.sid
    }
}

/// How a call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Fail with this errno.
    Errno(Errno),
    /// Job control: send this signal (`SIGTTIN`/`SIGTTOU`) to the caller's process group
    /// and restart the call once it may go on (Linux's `kill_pgrp` + `-ERESTARTSYS`).
    Stop(i32),
    /// An ioctl request this terminal does not implement: the caller logs it and fails
    /// with `ENOTTY`, as Linux does for requests a tty does not know.
    Unsupported(u32),
}

impl From<Errno> for Refusal {
    fn from(e: Errno) -> Refusal {
        Refusal::Errno(e)
    }
}

/// What an access to the terminal is, for job control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `read`: a background process group gets `SIGTTIN`.
    Read,
    /// `write`: a background process group gets `SIGTTOU` if `TOSTOP` is set.
    Write,
    /// Changing the terminal (`tcsetattr`, `tcsetpgrp`, `tcflush`, ...): `SIGTTOU`.
    Change,
}

/// How the caller's controlling terminal changes after an ioctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CttyChange {
    /// `TIOCSCTTY`: this terminal is now the controlling terminal of the caller's
    /// session (the caller, and the processes of its session that it starts later);
    /// `stolen_from` lost it.
    Acquired { stolen_from: Option<i32> },
    /// `TIOCNOTTY` by a process that is not a session leader: the caller has none now.
    Released,
    /// `TIOCNOTTY` by the session leader: every process of session `sid` has none now.
    SessionReleased { sid: i32 },
}

/// What an ioctl did besides returning.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IoctlDone {
    /// The system call's return value.
    pub ret: u64,
    /// Signals to send: (process group, signal), in order.
    pub signals: Vec<(i32, i32)>,
    /// Bytes to write to the terminal (the echo of `TIOCSTI`).
    pub echo: Vec<u8>,
    pub ctty: Option<CttyChange>,
}

impl IoctlDone {
    fn ret(ret: u64) -> Result<IoctlDone, Refusal> {
        Ok(IoctlDone {
            ret,
            ..Default::default()
        })
    }
}

/// Guest memory, for ioctl arguments. `false`: the address is bad (`EFAULT`).
pub trait UserMem {
    fn read_user(&mut self, addr: u64, buf: &mut [u8]) -> bool;
    fn write_user(&mut self, addr: u64, data: &[u8]) -> bool;
}

/// A byte of the read buffer.
#[derive(Debug, Clone, Copy)]
struct Slot {
    c: u8,
    /// A line ends here (Linux's `read_flags` bit): a newline, `VEOL`/`VEOL2`, or the
    /// end-of-file mark (`c` = 0, not data).
    eol: bool,
}

/// One step of echo, applied when the batch of input is done (Linux's echo buffer ops).
#[derive(Debug, Clone, Copy)]
enum Echo {
    /// A byte, output-processed.
    Raw(u8),
    /// A control character shown as `^X`.
    Ctl(u8),
    /// Back over a tab: `chars` columns used since the previous tab (`after_tab`) or
    /// since the start of the line.
    EraseTab {
        chars: u32,
        after_tab: bool,
    },
    /// Remember the column where the line's input starts.
    SetCanonCol,
    MoveBackCol,
}

/// A terminal with Linux's `N_TTY` line discipline.
#[derive(Debug, Clone)]
pub struct Tty {
    termios: Termios,
    winsize: Winsize,
    /// The foreground process group (`tty->pgrp`).
    pgrp: Option<i32>,
    /// The session this is the controlling terminal of (`tty->session`).
    session: Option<i32>,
    buf: VecDeque<Slot>,
    /// Bytes at the front of `buf` that form complete lines (`canon_head`).
    canon: usize,
    /// Part of the first line was read already (`line_start != read_tail`): an
    /// end-of-file mark that ends it is no end of file.
    mid_line: bool,
    /// The previous byte was `VLNEXT`: take this one literally.
    lnext: bool,
    /// Inside a `\...` run of `ECHOPRT` erasing.
    erasing: bool,
    column: u32,
    canon_column: u32,
    /// Output stopped by `VSTOP` (`tty->flow.stopped`).
    stopped: bool,
    /// Output stopped by `tcflow(TCOOFF)` (`tty->flow.tco_stopped`).
    tco_stopped: bool,
    exclusive: bool,
    /// A `VTIME` wait: its deadline and the buffered byte count it was started for.
    timer: Option<(u64, usize)>,
}

impl Tty {
    /// A terminal with Linux's defaults for a fresh pty, of size `winsize`, the
    /// controlling terminal of no session yet (see [`Tty::attach`]).
    pub fn new(winsize: Winsize) -> Tty {
        Tty {
            termios: Termios::default(),
            winsize,
            pgrp: None,
            session: None,
            buf: VecDeque::with_capacity(BUF_SIZE),
            canon: 0,
            mid_line: false,
            lnext: false,
            erasing: false,
            column: 0,
            canon_column: 0,
            stopped: false,
            tco_stopped: false,
            exclusive: false,
            timer: None,
        }
    }

    /// Makes this the controlling terminal of session `sid` with `pgrp` in the
    /// foreground, as a container runtime does for the container's first process
    /// (`setsid` + `TIOCSCTTY`).
    pub fn attach(&mut self, sid: i32, pgrp: i32) {
        self.session = Some(sid);
        self.pgrp = Some(pgrp);
    }

    pub fn termios(&self) -> &Termios {
        &self.termios
    }

    pub fn winsize(&self) -> Winsize {
        self.winsize
    }

    /// The foreground process group, which the signals of [`Received`] are for.
    pub fn foreground(&self) -> Option<i32> {
        self.pgrp
    }

    /// The session this is the controlling terminal of.
    pub fn session(&self) -> Option<i32> {
        self.session
    }

    /// `TIOCEXCL` is in force: further opens fail with `EBUSY` (except for root).
    pub fn exclusive(&self) -> bool {
        self.exclusive
    }

    /// Output is stopped (`VSTOP` with `IXON`, or `tcflow(TCOOFF)`): writers wait.
    pub fn output_stopped(&self) -> bool {
        self.stopped
    }

    fn l(&self, f: u32) -> bool {
        self.termios.lflag & f != 0
    }

    fn i(&self, f: u32) -> bool {
        self.termios.iflag & f != 0
    }

    fn o(&self, f: u32) -> bool {
        self.termios.oflag & f != 0
    }

    fn cc(&self, i: usize) -> u8 {
        self.termios.cc[i]
    }

    fn icanon(&self) -> bool {
        self.l(ICANON)
    }

    fn is_continuation(&self, c: u8) -> bool {
        self.i(IUTF8) && c & 0xc0 == 0x80
    }

    /// Sets the terminal's attributes, as `TCSETS` does after its checks. A pty keeps its
    /// character size at 8 bits without parity; switching canonical mode on or off
    /// re-divides the buffered input as Linux does (`n_tty_set_termios`).
    pub fn set_termios(&mut self, mut t: Termios) {
        t.cflag = (t.cflag & !(CSIZE | PARENB)) | CS8 | CREAD;
        // The speeds: from the Bnnn codes, or as given with BOTHER.
        let out_code = t.cflag & CBAUD;
        t.ospeed = baud_of(out_code).unwrap_or(t.ospeed);
        let in_code = (t.cflag >> IBSHIFT) & CBAUD;
        t.ispeed = if in_code == 0 {
            t.ospeed
        } else {
            baud_of(in_code).unwrap_or(t.ispeed)
        };
        let old = std::mem::replace(&mut self.termios, t);
        if (old.lflag ^ t.lflag) & (ICANON | EXTPROC) != 0 {
            for s in self.buf.iter_mut() {
                s.eol = false;
            }
            self.mid_line = false;
            if t.lflag & ICANON == 0 || self.buf.is_empty() {
                self.canon = 0;
            } else {
                // Everything buffered becomes one line.
                self.buf.back_mut().expect("not empty").eol = true;
                self.canon = self.buf.len();
            }
            self.erasing = false;
            self.lnext = false;
        }
        if t.iflag & IXON == 0 && old.iflag & IXON != 0 && !self.tco_stopped {
            self.stopped = false;
        }
        self.timer = None;
    }

    /// Sets the window size; `SIGWINCH` for the foreground process group if it changed.
    pub fn set_winsize(&mut self, ws: Winsize) -> Vec<(i32, i32)> {
        if ws == self.winsize {
            return Vec::new();
        }
        self.winsize = ws;
        self.pgrp.map(|g| (g, SIGWINCH)).into_iter().collect()
    }

    /// Drops all buffered input (`TCIFLUSH`, `TCSETSF`, a signal character).
    pub fn flush_input(&mut self) {
        self.buf.clear();
        self.canon = 0;
        self.mid_line = false;
        self.erasing = false;
        self.timer = None;
    }

    /// How many more input bytes [`Tty::receive`] takes now (Linux's receive room: the
    /// buffer keeps one byte free; in canonical mode with no complete line, input is
    /// always taken, so that erase and newline still work on a full line).
    pub fn room(&self) -> usize {
        self.room_and_overflow().0
    }

    fn room_and_overflow(&self) -> (usize, bool) {
        let free = BUF_SIZE as isize - self.buf.len() as isize;
        let room = if self.i(PARMRK) {
            (free + 2).div_euclid(3)
        } else {
            free
        } - 1;
        if room > 0 {
            (room as usize, false)
        } else {
            let overflow = self.icanon() && self.canon == 0;
            (overflow as usize, overflow)
        }
    }

    /// Takes bytes typed at the terminal.
    pub fn receive(&mut self, input: &[u8]) -> Received {
        let mut ops = Vec::new();
        let mut signals = Vec::new();
        let mut consumed = 0;
        for &byte in input {
            let (room, overflow) = self.room_and_overflow();
            if room == 0 {
                break;
            }
            if overflow && self.buf.len() >= BUF_SIZE {
                // A full line: the new byte replaces its last one.
                self.buf.pop_back();
            }
            consumed += 1;
            self.receive_byte(byte, &mut ops, &mut signals);
        }
        let echo = self.process_echo(&ops);
        Received {
            consumed,
            echo,
            signals,
        }
    }

    /// Whether `c` needs more than queueing and echoing (Linux's `char_map`).
    fn is_special(&self, c: u8) -> bool {
        if c == DISABLED {
            return false;
        }
        let cc = |i| self.cc(i) == c;
        (c == b'\r' && self.i(IGNCR | ICRNL))
            || (c == b'\n' && self.i(INLCR))
            || (self.icanon() && (cc(VERASE) || cc(VKILL) || cc(VEOF) || c == b'\n' || cc(VEOL)))
            || (self.icanon()
                && self.l(IEXTEN)
                && (cc(VWERASE) || cc(VLNEXT) || cc(VEOL2) || (self.l(ECHO) && cc(VREPRINT))))
            || (self.i(IXON) && (cc(VSTART) || cc(VSTOP)))
            || (self.l(ISIG) && (cc(VINTR) || cc(VQUIT) || cc(VSUSP)))
    }

    fn receive_byte(&mut self, mut c: u8, ops: &mut Vec<Echo>, signals: &mut Vec<i32>) {
        if self.i(ISTRIP) {
            c &= 0x7f;
        }
        if self.i(IUCLC) && self.l(IEXTEN) {
            c = to_lower(c);
        }
        if self.l(EXTPROC) {
            self.put(c);
            return;
        }
        if self.lnext {
            self.lnext = false;
            self.receive_plain(c, ops);
        } else if self.is_special(c) {
            self.receive_special(c, ops, signals);
        } else {
            self.receive_plain(c, ops);
        }
    }

    fn put(&mut self, c: u8) {
        self.buf.push_back(Slot { c, eol: false });
    }

    /// `n_tty_receive_char`: queue and echo.
    fn receive_plain(&mut self, c: u8, ops: &mut Vec<Echo>) {
        self.restart_on_any();
        if self.l(ECHO) {
            self.finish_erasing(ops);
            if self.at_line_start() {
                ops.push(Echo::SetCanonCol);
            }
            self.echo_char(c, ops);
        }
        if c == 0xff && self.i(PARMRK) {
            self.put(c);
        }
        self.put(c);
    }

    /// `IXANY`: any input restarts output stopped by `VSTOP`.
    fn restart_on_any(&mut self) {
        if self.stopped && !self.tco_stopped && self.i(IXON) && self.i(IXANY) {
            self.stopped = false;
        }
    }

    /// No input yet on the line being edited (`canon_head == read_head`).
    fn at_line_start(&self) -> bool {
        self.canon == self.buf.len()
    }

    fn echo_char(&self, c: u8, ops: &mut Vec<Echo>) {
        if self.l(ECHOCTL) && is_cntrl(c) && c != b'\t' {
            ops.push(Echo::Ctl(c));
        } else {
            ops.push(Echo::Raw(c));
        }
    }

    fn finish_erasing(&mut self, ops: &mut Vec<Echo>) {
        if self.erasing {
            ops.push(Echo::Raw(b'/'));
            self.erasing = false;
        }
    }

    /// `n_tty_receive_char_special`.
    fn receive_special(&mut self, mut c: u8, ops: &mut Vec<Echo>, signals: &mut Vec<i32>) {
        if self.i(IXON) {
            if c == self.cc(VSTART) {
                if !self.tco_stopped {
                    self.stopped = false;
                }
                return;
            }
            if c == self.cc(VSTOP) {
                self.stopped = true;
                return;
            }
        }
        if self.l(ISIG) {
            for (i, sig) in [(VINTR, SIGINT), (VQUIT, SIGQUIT), (VSUSP, SIGTSTP)] {
                if c == self.cc(i) {
                    self.signal_char(sig, c, ops, signals);
                    return;
                }
            }
        }
        self.restart_on_any();
        if c == b'\r' {
            if self.i(IGNCR) {
                return;
            }
            if self.i(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && self.i(INLCR) {
            c = b'\r';
        }
        if self.icanon() {
            let iexten = self.l(IEXTEN);
            if c == self.cc(VERASE) || c == self.cc(VKILL) || (c == self.cc(VWERASE) && iexten) {
                self.erase(c, ops);
                return;
            }
            if c == self.cc(VLNEXT) && iexten {
                self.lnext = true;
                if self.l(ECHO) {
                    self.finish_erasing(ops);
                    if self.l(ECHOCTL) {
                        ops.push(Echo::Raw(b'^'));
                        ops.push(Echo::Raw(b'\x08'));
                    }
                }
                return;
            }
            if c == self.cc(VREPRINT) && self.l(ECHO) && iexten {
                self.finish_erasing(ops);
                self.echo_char(c, ops);
                ops.push(Echo::Raw(b'\n'));
                for s in self.buf.range(self.canon..) {
                    self.echo_char(s.c, ops);
                }
                return;
            }
            if c == b'\n' {
                if self.l(ECHO) || self.l(ECHONL) {
                    ops.push(Echo::Raw(b'\n'));
                }
                self.end_line(c);
                return;
            }
            if c == self.cc(VEOF) {
                self.end_line(DISABLED);
                return;
            }
            if c == self.cc(VEOL) || (c == self.cc(VEOL2) && iexten) {
                if self.l(ECHO) {
                    if self.at_line_start() {
                        ops.push(Echo::SetCanonCol);
                    }
                    self.echo_char(c, ops);
                }
                if c == 0xff && self.i(PARMRK) {
                    self.put(c);
                }
                self.end_line(c);
                return;
            }
        }
        if self.l(ECHO) {
            self.finish_erasing(ops);
            if c == b'\n' {
                ops.push(Echo::Raw(b'\n'));
            } else {
                if self.at_line_start() {
                    ops.push(Echo::SetCanonCol);
                }
                self.echo_char(c, ops);
            }
        }
        if c == 0xff && self.i(PARMRK) {
            self.put(c);
        }
        self.put(c);
    }

    /// Queues the line delimiter `c` and makes the line readable.
    fn end_line(&mut self, c: u8) {
        self.buf.push_back(Slot { c, eol: true });
        self.canon = self.buf.len();
    }

    /// `n_tty_receive_signal_char`: flush (unless `NOFLSH`), restart output, echo.
    fn signal_char(&mut self, sig: i32, c: u8, ops: &mut Vec<Echo>, signals: &mut Vec<i32>) {
        if !self.l(NOFLSH) {
            self.flush_input();
            ops.clear(); // the echo not yet written goes too
        }
        if self.i(IXON) && !self.tco_stopped {
            self.stopped = false;
        }
        if self.l(ECHO) {
            self.echo_char(c, ops);
        }
        signals.push(sig);
    }

    /// `eraser`: VERASE, VWERASE or VKILL on the line being edited.
    fn erase(&mut self, c: u8, ops: &mut Vec<Echo>) {
        #[derive(PartialEq)]
        enum Kind {
            Erase,
            Werase,
            Kill,
        }
        if self.at_line_start() {
            return;
        }
        let kind = if c == self.cc(VERASE) {
            Kind::Erase
        } else if c == self.cc(VWERASE) {
            Kind::Werase
        } else {
            if !self.l(ECHO) {
                self.buf.truncate(self.canon);
                return;
            }
            if !self.l(ECHOK) || !self.l(ECHOKE) || !self.l(ECHOE) {
                self.buf.truncate(self.canon);
                self.finish_erasing(ops);
                self.echo_char(self.cc(VKILL), ops);
                if self.l(ECHOK) {
                    ops.push(Echo::Raw(b'\n'));
                }
                return;
            }
            Kind::Kill
        };
        let mut seen_alnums = 0;
        while self.buf.len() > self.canon {
            // One character: a UTF-8 sequence with IUTF8.
            let mut head = self.buf.len();
            let mut ch;
            loop {
                head -= 1;
                ch = self.buf[head].c;
                if !(self.is_continuation(ch) && head != self.canon) {
                    break;
                }
            }
            if self.is_continuation(ch) {
                break; // do not erase part of a character
            }
            if kind == Kind::Werase {
                if is_alnum(ch) || ch == b'_' {
                    seen_alnums += 1;
                } else if seen_alnums > 0 {
                    break;
                }
            }
            let erased: Vec<u8> = self.buf.drain(head..).map(|s| s.c).collect();
            if self.l(ECHO) {
                if self.l(ECHOPRT) {
                    if !self.erasing {
                        ops.push(Echo::Raw(b'\\'));
                        self.erasing = true;
                    }
                    self.echo_char(ch, ops);
                    for &b in &erased[1..] {
                        ops.push(Echo::Raw(b));
                        ops.push(Echo::MoveBackCol);
                    }
                } else if kind == Kind::Erase && !self.l(ECHOE) {
                    self.echo_char(self.cc(VERASE), ops);
                } else if ch == b'\t' {
                    // Columns used since the previous tab or the start of the line.
                    let mut chars = 0u32;
                    let mut after_tab = false;
                    for s in self.buf.range(self.canon..).rev() {
                        if s.c == b'\t' {
                            after_tab = true;
                            break;
                        } else if is_cntrl(s.c) {
                            if self.l(ECHOCTL) {
                                chars += 2;
                            }
                        } else if !self.is_continuation(s.c) {
                            chars += 1;
                        }
                    }
                    ops.push(Echo::EraseTab { chars, after_tab });
                } else {
                    let rub = [Echo::Raw(b'\x08'), Echo::Raw(b' '), Echo::Raw(b'\x08')];
                    if is_cntrl(ch) && self.l(ECHOCTL) {
                        ops.extend(rub); // "^X" takes two columns
                    }
                    if !is_cntrl(ch) || self.l(ECHOCTL) {
                        ops.extend(rub);
                    }
                }
            }
            if kind == Kind::Erase {
                break;
            }
        }
        if self.at_line_start() && self.l(ECHO) {
            self.finish_erasing(ops);
        }
    }

    /// Turns echo steps into bytes for the terminal (`__process_echoes`).
    fn process_echo(&mut self, ops: &[Echo]) -> Vec<u8> {
        let mut out = Vec::new();
        for op in ops {
            match *op {
                Echo::Raw(c) => {
                    if self.o(OPOST) {
                        self.output_char(c, &mut out);
                    } else {
                        out.push(c);
                    }
                }
                Echo::Ctl(c) => {
                    out.extend_from_slice(&[b'^', c ^ 0o100]);
                    self.column += 2;
                }
                Echo::EraseTab { chars, after_tab } => {
                    let n = if after_tab {
                        chars
                    } else {
                        chars + self.canon_column
                    };
                    let back = 8 - (n & 7);
                    out.extend(std::iter::repeat_n(b'\x08', back as usize));
                    self.column = self.column.saturating_sub(back);
                }
                Echo::SetCanonCol => self.canon_column = self.column,
                Echo::MoveBackCol => self.column = self.column.saturating_sub(1),
            }
        }
        out
    }

    /// `do_output_char`: one byte through `OPOST`, keeping the column.
    fn output_char(&mut self, c: u8, out: &mut Vec<u8>) {
        match c {
            b'\n' => {
                if self.o(ONLRET) {
                    self.column = 0;
                }
                if self.o(ONLCR) {
                    self.column = 0;
                    self.canon_column = 0;
                    out.extend_from_slice(b"\r\n");
                    return;
                }
                self.canon_column = self.column;
            }
            b'\r' => {
                if self.o(ONOCR) && self.column == 0 {
                    return;
                }
                if self.o(OCRNL) {
                    if self.o(ONLRET) {
                        self.column = 0;
                        self.canon_column = 0;
                    }
                    out.push(b'\n');
                    return;
                }
                self.column = 0;
                self.canon_column = 0;
            }
            b'\t' => {
                let spaces = 8 - (self.column & 7);
                self.column += spaces;
                if self.termios.oflag & TABDLY == XTABS {
                    out.extend(std::iter::repeat_n(b' ', spaces as usize));
                    return;
                }
            }
            b'\x08' => self.column = self.column.saturating_sub(1),
            _ if !is_cntrl(c) => {
                let c = if self.o(OLCUC) { to_upper(c) } else { c };
                if !self.is_continuation(c) {
                    self.column += 1;
                }
                out.push(c);
                return;
            }
            _ => {}
        }
        out.push(c);
    }

    /// What a program writes, as it reaches the terminal: with `OPOST`, `ONLCR` turns
    /// `\n` into `\r\n` (also `OCRNL`, `ONOCR`, `ONLRET`, `OLCUC`, `XTABS`).
    pub fn output<'a>(&mut self, data: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.o(OPOST) {
            return Cow::Borrowed(data);
        }
        let mut changed: Option<Vec<u8>> = None;
        let mut one = Vec::with_capacity(8);
        for (i, &c) in data.iter().enumerate() {
            one.clear();
            self.output_char(c, &mut one);
            match &mut changed {
                Some(out) => out.extend_from_slice(&one),
                None if one.as_slice() != [c] => {
                    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 8);
                    out.extend_from_slice(&data[..i]);
                    out.extend_from_slice(&one);
                    changed = Some(out);
                }
                None => {}
            }
        }
        changed.map_or(Cow::Borrowed(data), Cow::Owned)
    }

    /// Whether a read would return now (`poll`'s `POLLIN`): a complete line in canonical
    /// mode, else `VMIN` bytes (1 if `VTIME` is set or `VMIN` is 0).
    pub fn readable(&self) -> bool {
        if self.icanon() {
            return self.canon > 0;
        }
        let (min, time) = (self.cc(VMIN) as usize, self.cc(VTIME));
        let need = if time == 0 && min > 0 { min } else { 1 };
        self.buf.len() >= need
    }

    /// Bytes a read could return now (`FIONREAD`): in canonical mode the complete lines,
    /// without their end-of-file marks.
    pub fn inq(&self) -> usize {
        if self.icanon() {
            self.buf
                .range(..self.canon)
                .filter(|s| !(s.eol && s.c == DISABLED))
                .count()
        } else {
            self.buf.len()
        }
    }

    /// Forgets the `VTIME` clock of a read that will not be retried (interrupted).
    pub fn cancel_wait(&mut self) {
        self.timer = None;
    }

    /// Reads input (`n_tty_read`, after job control: see [`Tty::job_control`]).
    /// Canonical mode returns at most one line; `VEOF` on an empty line is
    /// [`ReadOutcome::Eof`]. Otherwise `VMIN`/`VTIME` decide, `now_ns` (a monotonic clock)
    /// measuring `VTIME`. `nonblock`: `O_NONBLOCK`, which returns what there is.
    pub fn read(&mut self, buf: &mut [u8], now_ns: u64, nonblock: bool) -> ReadOutcome {
        if buf.is_empty() {
            return ReadOutcome::Data(0);
        }
        let r = if self.icanon() {
            self.read_canon(buf)
        } else {
            self.read_raw(buf, now_ns, nonblock)
        };
        if !matches!(r, ReadOutcome::WouldBlock { .. }) {
            self.timer = None;
        }
        r
    }

    fn read_canon(&mut self, buf: &mut [u8]) -> ReadOutcome {
        loop {
            if self.canon == 0 {
                return ReadOutcome::WouldBlock { deadline_ns: None };
            }
            // The first line, or as much of it as fits.
            let n = buf.len().min(self.buf.len());
            let eol = self.buf.range(..n).position(|s| s.eol);
            let (take, found) = match eol {
                Some(e) => (e + 1, true),
                None => (n, false),
            };
            let eof_mark = found && self.buf[take - 1].c == DISABLED;
            let data = if eof_mark { take - 1 } else { take };
            for (dst, s) in buf.iter_mut().zip(self.buf.drain(..take)) {
                *dst = s.c;
            }
            self.canon -= take;
            let was_mid_line = self.mid_line;
            self.mid_line = !found;
            if data == 0 && eof_mark {
                if was_mid_line {
                    // The mark only ends a line read in pieces: wait for more.
                    continue;
                }
                return ReadOutcome::Eof;
            }
            return ReadOutcome::Data(data);
        }
    }

    fn read_raw(&mut self, buf: &mut [u8], now_ns: u64, nonblock: bool) -> ReadOutcome {
        let (min, time) = (self.cc(VMIN) as usize, self.cc(VTIME) as u64);
        let avail = self.buf.len();
        let need = if min > 0 { min.min(buf.len()) } else { 1 };
        let mut take = |tty: &mut Tty| {
            let n = buf.len().min(tty.buf.len());
            for (dst, s) in buf.iter_mut().zip(tty.buf.drain(..n)) {
                *dst = s.c;
            }
            ReadOutcome::Data(n)
        };
        if avail >= need {
            return take(self);
        }
        if min == 0 && time == 0 {
            return ReadOutcome::Data(0);
        }
        if nonblock {
            return if avail > 0 {
                take(self)
            } else {
                ReadOutcome::WouldBlock { deadline_ns: None }
            };
        }
        if time == 0 || (min > 0 && avail == 0) {
            // VMIN alone, or the inter-byte timer before the first byte.
            return ReadOutcome::WouldBlock { deadline_ns: None };
        }
        let deadline = match self.timer {
            Some((d, count)) if count == avail => d,
            _ => {
                let d = now_ns + time * 100_000_000;
                self.timer = Some((d, avail));
                d
            }
        };
        if now_ns >= deadline {
            return take(self);
        }
        ReadOutcome::WouldBlock {
            deadline_ns: Some(deadline),
        }
    }

    /// Job control (`__tty_check_change`, `job_control`): may `caller` read, write or
    /// change the terminal now? A process of a background group is stopped
    /// (`Refusal::Stop`) or refused (`EIO`); `Write` is only checked with `TOSTOP`.
    pub fn job_control(&self, caller: &Caller, access: Access) -> Result<(), Refusal> {
        if access == Access::Write && !self.l(TOSTOP) {
            return Ok(());
        }
        if !caller.ctty {
            return Ok(());
        }
        let Some(fg) = self.pgrp else {
            return Ok(());
        };
        if fg == caller.pgid {
            return Ok(());
        }
        let (sig, ignored) = match access {
            Access::Read => (SIGTTIN, caller.ttin_ignored),
            _ => (SIGTTOU, caller.ttou_ignored),
        };
        if ignored {
            return if sig == SIGTTIN {
                Err(EIO.into())
            } else {
                Ok(())
            };
        }
        if caller.orphaned {
            return Err(EIO.into());
        }
        Err(Refusal::Stop(sig))
    }

    /// The session leader `sid` exits: if this is its controlling terminal, the
    /// foreground process group gets `SIGHUP` and the terminal belongs to no session
    /// (`disassociate_ctty(1)` for a pty). Every process of `sid` loses it.
    pub fn session_leader_exited(&mut self, sid: i32) -> Vec<(i32, i32)> {
        if self.session != Some(sid) {
            return Vec::new();
        }
        let signals = self.pgrp.map(|g| (g, SIGHUP)).into_iter().collect();
        self.session = None;
        self.pgrp = None;
        signals
    }

    /// A terminal ioctl (`tty_ioctl` with `n_tty_ioctl`); `arg` is the third argument,
    /// `pgrp_session` the session of a process group (`None`: no such group).
    pub fn ioctl(
        &mut self,
        caller: &Caller,
        req: u32,
        arg: u64,
        mem: &mut dyn UserMem,
        pgrp_session: &dyn Fn(i32) -> Option<i32>,
    ) -> Result<IoctlDone, Refusal> {
        let put = |mem: &mut dyn UserMem, data: &[u8]| -> Result<IoctlDone, Refusal> {
            if mem.write_user(arg, data) {
                IoctlDone::ret(0)
            } else {
                Err(EFAULT.into())
            }
        };
        let get_i32 = |mem: &mut dyn UserMem| -> Result<i32, Refusal> {
            let mut b = [0u8; 4];
            if mem.read_user(arg, &mut b) {
                Ok(i32::from_le_bytes(b))
            } else {
                Err(EFAULT.into())
            }
        };
        match req {
            TCGETS => put(mem, &self.termios.encode()),
            TCGETS2 => put(mem, &self.termios.encode2()),
            TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
                self.job_control(caller, Access::Change)?;
                let t = if matches!(req, TCSETS | TCSETSW | TCSETSF) {
                    let mut b = [0u8; Termios::LEN];
                    if !mem.read_user(arg, &mut b) {
                        return Err(EFAULT.into());
                    }
                    // The old structure has no speeds: BOTHER keeps the current ones.
                    Termios {
                        ispeed: self.termios.ispeed,
                        ospeed: self.termios.ospeed,
                        ..Termios::decode(&b)
                    }
                } else {
                    let mut b = [0u8; Termios::LEN2];
                    if !mem.read_user(arg, &mut b) {
                        return Err(EFAULT.into());
                    }
                    Termios::decode2(&b)
                };
                // TCSETSW waits for output to drain: ours is written at once.
                if matches!(req, TCSETSF | TCSETSF2) {
                    self.flush_input();
                }
                self.set_termios(t);
                IoctlDone::ret(0)
            }
            TIOCGWINSZ => put(mem, &self.winsize.encode()),
            TIOCSWINSZ => {
                let mut b = [0u8; Winsize::LEN];
                if !mem.read_user(arg, &mut b) {
                    return Err(EFAULT.into());
                }
                Ok(IoctlDone {
                    signals: self.set_winsize(Winsize::decode(&b)),
                    ..Default::default()
                })
            }
            TIOCGPGRP => {
                if !caller.ctty {
                    return Err(ENOTTY.into());
                }
                put(mem, &self.pgrp.unwrap_or(0).to_le_bytes())
            }
            TIOCSPGRP => {
                match self.job_control(caller, Access::Change) {
                    Err(Refusal::Errno(EIO)) => return Err(ENOTTY.into()),
                    r => r?,
                }
                let pgid = get_i32(mem)?;
                if pgid < 0 {
                    return Err(EINVAL.into());
                }
                if !caller.ctty || self.session != Some(caller.sid) {
                    return Err(ENOTTY.into());
                }
                match pgrp_session(pgid) {
                    None => Err(ESRCH.into()),
                    Some(s) if s != caller.sid => Err(EPERM.into()),
                    Some(_) => {
                        self.pgrp = Some(pgid);
                        IoctlDone::ret(0)
                    }
                }
            }
            TIOCGSID => {
                if !caller.ctty {
                    return Err(ENOTTY.into());
                }
                let sid = self.session.ok_or(ENOTTY)?;
                put(mem, &sid.to_le_bytes())
            }
            TIOCSCTTY => {
                if caller.leader() && self.session == Some(caller.sid) {
                    return IoctlDone::ret(0); // already ours
                }
                if !caller.leader() || caller.ctty {
                    return Err(EPERM.into());
                }
                let mut stolen_from = None;
                if let Some(other) = self.session {
                    if arg == 1 && caller.admin {
                        stolen_from = Some(other);
                    } else {
                        return Err(EPERM.into());
                    }
                }
                self.session = Some(caller.sid);
                self.pgrp = Some(caller.pgid);
                Ok(IoctlDone {
                    ctty: Some(CttyChange::Acquired { stolen_from }),
                    ..Default::default()
                })
            }
            TIOCNOTTY => {
                if !caller.ctty {
                    return Err(ENOTTY.into());
                }
                if !caller.leader() {
                    return Ok(IoctlDone {
                        ctty: Some(CttyChange::Released),
                        ..Default::default()
                    });
                }
                let mut signals = Vec::new();
                if let Some(g) = self.pgrp {
                    signals = vec![(g, SIGHUP), (g, SIGCONT)];
                }
                self.session = None;
                self.pgrp = None;
                Ok(IoctlDone {
                    signals,
                    ctty: Some(CttyChange::SessionReleased { sid: caller.sid }),
                    ..Default::default()
                })
            }
            FIONREAD => put(mem, &(self.inq() as u32).to_le_bytes()),
            TIOCOUTQ => put(mem, &0u32.to_le_bytes()), // output is never queued
            TCFLSH => {
                self.job_control(caller, Access::Change)?;
                match arg {
                    TCIFLUSH | TCIOFLUSH => self.flush_input(),
                    TCOFLUSH => {}
                    _ => return Err(EINVAL.into()),
                }
                IoctlDone::ret(0)
            }
            TCXONC => {
                self.job_control(caller, Access::Change)?;
                match arg {
                    TCOOFF => {
                        self.tco_stopped = true;
                        self.stopped = true;
                    }
                    TCOON => {
                        if self.tco_stopped {
                            self.tco_stopped = false;
                            self.stopped = false;
                        }
                    }
                    // Would send VSTOP/VSTART to the other end, the user's terminal,
                    // which has no use for them.
                    TCIOFF | TCION => {}
                    _ => return Err(EINVAL.into()),
                }
                IoctlDone::ret(0)
            }
            // tcdrain (TCSBRK with a non-zero argument) and breaks, which a pty ignores.
            TCSBRK | TCSBRKP | TIOCSBRK | TIOCCBRK => {
                self.job_control(caller, Access::Change)?;
                IoctlDone::ret(0)
            }
            TIOCEXCL | TIOCNXCL => {
                self.exclusive = req == TIOCEXCL;
                IoctlDone::ret(0)
            }
            TIOCGEXCL => put(mem, &(self.exclusive as u32).to_le_bytes()),
            TIOCGETD => put(mem, &0u32.to_le_bytes()), // N_TTY
            TIOCSETD => match get_i32(mem)? {
                0 => IoctlDone::ret(0),
                _ => Err(EINVAL.into()), // no other line discipline here
            },
            TIOCSTI => {
                if !caller.ctty && !caller.admin {
                    return Err(EPERM.into());
                }
                let mut b = [0u8; 1];
                if !mem.read_user(arg, &mut b) {
                    return Err(EFAULT.into());
                }
                let r = self.receive(&b);
                let signals = match self.pgrp {
                    Some(g) => r.signals.iter().map(|&s| (g, s)).collect(),
                    None => Vec::new(),
                };
                Ok(IoctlDone {
                    ret: 0,
                    signals,
                    echo: r.echo,
                    ctty: None,
                })
            }
            _ => Err(Refusal::Unsupported(req)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The module's terminal: the `Tty` above, fed from host stdin, wired into the kernel.

use std::sync::atomic::{AtomicBool, Ordering};

use super::fd::{FileKind, OpenFile};
use super::kernel::{queue_to_process, signal_pgrp, Kernel, SigSource};
use super::signal::SIG_IGN;
use super::syscalls::SysResult;
use super::Process;
use crate::host;
use crate::vfs::{Content, Device};

/// The window-size report a host may put in the terminal's input when the module's
/// environment asks for it (`RVBOX_TTY_RESIZE=1`): an APC string
/// `ESC _ rvbox:winsize;ROWS;COLS ESC \\`. WASI has no way for a host to say the window
/// changed, so the news comes in band, as the user's keys do; [`ResizeFilter`] takes it
/// out and the terminal acts as on `TIOCSWINSZ` (SIGWINCH for the foreground group).
pub const RESIZE_PREFIX: &[u8] = b"\x1b_rvbox:winsize;";

/// The longest report: the prefix, two 5-digit numbers, `;`, `ESC \\`.
const RESIZE_MAX: usize = RESIZE_PREFIX.len() + 5 + 1 + 5 + 2;

/// Takes window-size reports ([`RESIZE_PREFIX`]) out of the terminal's input. A host
/// writes a report in one piece, so a report cut by the end of a read is completed by the
/// next read; what only starts like one (a lone `ESC`, `ESC _`, a user's own APC string)
/// is passed on unchanged as soon as it stops matching, or when no more input is waiting
/// ([`ResizeFilter::flush`]). **Pure: knows nothing of the host.**
#[derive(Default)]
pub struct ResizeFilter {
    held: Vec<u8>,
}

impl ResizeFilter {
    /// Feeds input: what is not part of a report is appended to `out`; returns the last
    /// size reported as (rows, cols), if any.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<(u16, u16)> {
        let mut size = None;
        let mut queue: VecDeque<u8> = input.iter().copied().collect();
        while let Some(b) = queue.pop_front() {
            if self.held.is_empty() {
                if b == 0x1b {
                    self.held.push(b);
                } else {
                    out.push(b);
                }
                continue;
            }
            let after_esc = self.held.last() == Some(&0x1b) && self.held.len() > 1;
            self.held.push(b);
            let n = self.held.len();
            let ok = if n <= RESIZE_PREFIX.len() {
                self.held[..] == RESIZE_PREFIX[..n]
            } else if after_esc {
                b == b'\\'
            } else {
                (b.is_ascii_digit() || b == b';' || b == 0x1b) && n <= RESIZE_MAX
            };
            if !ok {
                // Not a report: its first byte is input; the rest is looked at again.
                out.push(0x1b);
                for &h in self.held[1..].iter().rev() {
                    queue.push_front(h);
                }
                self.held.clear();
                continue;
            }
            if after_esc {
                let body = &self.held[RESIZE_PREFIX.len()..n - 2];
                let parsed = std::str::from_utf8(body).ok().and_then(|t| {
                    let (r, c) = t.split_once(';')?;
                    Some((r.parse::<u16>().ok()?, c.parse::<u16>().ok()?))
                });
                match parsed {
                    Some(rc) => {
                        size = Some(rc);
                        self.held.clear();
                    }
                    None => {
                        out.push(0x1b);
                        for &h in self.held[1..].iter().rev() {
                            queue.push_front(h);
                        }
                        self.held.clear();
                    }
                }
            }
        }
        size
    }

    /// Whether the start of a report is held back, waiting for the rest.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// No more input is waiting: what was held is plain input after all.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
    }
}

/// Set at start-up when the module owns a terminal (see [`Terminal::from_env`]). One
/// module has one terminal, so this is process-wide, like the host's stdio.
static TERMINAL_MODE: AtomicBool = AtomicBool::new(false);

/// How often the scheduler looks for typed input at most (`^C` must stop a program that
/// never reads).
const PUMP_INTERVAL_NS: u64 = 2_000_000;

/// The terminal the host gave the module: the guest's stdin, stdout and stderr, and
/// `/dev/tty` and `/dev/pts/0`. Kept by the kernel (`Kernel::terminal`).
pub struct Terminal {
    pub tty: Tty,
    /// Host input read but not yet taken by the line discipline (it was full).
    pending: Vec<u8>,
    /// Host stdin is at end of file: there will be no more input, and reads of the
    /// terminal return end of file (as after a hang-up).
    host_eof: bool,
    last_pump_ns: u64,
    /// Window-size reports are taken out of the input (`RVBOX_TTY_RESIZE=1`).
    resize: Option<ResizeFilter>,
}

impl Terminal {
    /// The terminal, if the module's environment says it owns one: `RVBOX_TTY=1` means
    /// "stdin and stdout are a terminal in raw mode: run a line discipline on it" (what
    /// `rvbox run -t` sets; any WASI host can). The size comes from `COLUMNS` and `LINES`
    /// (else 80x24). Only in a module: natively, host stdin cannot be polled.
    pub fn from_env(host_env: &[(String, String)]) -> Option<Terminal> {
        let get = |k: &str| {
            host_env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        if !cfg!(target_arch = "wasm32") || get("RVBOX_TTY") != Some("1") {
            return None;
        }
        TERMINAL_MODE.store(true, Ordering::Relaxed);
        let num = |k: &str, d: u16| get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        Some(Terminal {
            tty: Tty::new(Winsize {
                rows: num("LINES", 24),
                cols: num("COLUMNS", 80),
                ..Default::default()
            }),
            pending: Vec::new(),
            host_eof: false,
            last_pump_ns: 0,
            resize: (get("RVBOX_TTY_RESIZE") == Some("1")).then(ResizeFilter::default),
        })
    }

    /// A read would return now (data or end of file).
    fn ready(&self) -> bool {
        self.tty.readable() || self.host_eof
    }
}

/// The module owns a terminal (`RVBOX_TTY=1`).
pub fn terminal_mode() -> bool {
    TERMINAL_MODE.load(Ordering::Relaxed)
}

/// Whether the guest's stream `fd` (0, 1, 2) is a terminal: always in terminal mode, else
/// if the host's is.
pub fn is_terminal(fd: u32) -> bool {
    terminal_mode() || host::isatty(fd)
}

/// Whether `f` is the module's terminal (in terminal mode): the standard streams,
/// `/dev/tty` and `/dev/pts/0`.
pub fn is_terminal_file(f: &OpenFile) -> bool {
    terminal_mode()
        && match &f.kind {
            FileKind::HostStdin | FileKind::HostStdout | FileKind::HostStderr => true,
            FileKind::Node(n) => matches!(&*n.content.borrow(), Content::Device(Device::Tty)),
            _ => false,
        }
}

/// Writes all of `data` to host stream `fd`.
fn write_host(fd: u32, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match host::write(fd, data)? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => data = &data[n..],
        }
    }
    Ok(())
}

/// Takes what the user typed so far into the line discipline: writes its echo, sends the
/// signals of `^C`, `^\` and `^Z` to the foreground process group. `cur` is the running
/// task, if any (it may be in that group). Wakes the tasks that wait when anything came.
pub fn pump(kb: &mut Kernel, mut cur: Option<&mut Process>) {
    let Some(t) = kb.terminal.as_mut() else {
        return;
    };
    t.last_pump_ns = host::now_monotonic_ns();
    let mut signals = Vec::new();
    let mut changed = false;
    let mut buf = [0u8; 1024];
    loop {
        if t.pending.is_empty() {
            let room = t.tty.room();
            if t.host_eof || room == 0 || !host::wait_stdin(Some(0)) {
                break;
            }
            let want = room.min(buf.len());
            match host::read_stdin(&mut buf[..want]) {
                Ok(n) if n > 0 => match t.resize.as_mut() {
                    Some(f) => {
                        if let Some((rows, cols)) = f.feed(&buf[..n], &mut t.pending) {
                            let ws = Winsize {
                                rows,
                                cols,
                                ..t.tty.winsize()
                            };
                            signals.extend(t.tty.set_winsize(ws));
                            changed = true;
                        }
                        if f.holding() && !host::wait_stdin(Some(0)) {
                            f.flush(&mut t.pending);
                        }
                        if t.pending.is_empty() {
                            continue;
                        }
                    }
                    None => t.pending.extend_from_slice(&buf[..n]),
                },
                _ => {
                    t.host_eof = true;
                    changed = true;
                    break;
                }
            }
        }
        let r = t.tty.receive(&t.pending);
        t.pending.drain(..r.consumed);
        // Echo to the terminal; a failure to show it is not the reader's error.
        let _ = write_host(1, &r.echo);
        if let Some(g) = t.tty.foreground() {
            signals.extend(r.signals.iter().map(|&s| (g, s)));
        }
        changed = true;
        if r.consumed == 0 {
            break; // full: the rest waits for a reader
        }
    }
    if changed {
        super::wake::changed();
    }
    for (pgid, sig) in signals {
        for pid in kb.pgrp_members(pgid) {
            queue_to_process(kb, cur.as_deref_mut(), pid, sig, SigSource::Kernel);
        }
    }
}

/// [`pump`] from the scheduler, at most every `PUMP_INTERVAL_NS`.
pub fn pump_if_due(kb: &mut Kernel) {
    if kb
        .terminal
        .as_ref()
        .is_some_and(|t| host::now_monotonic_ns() - t.last_pump_ns >= PUMP_INTERVAL_NS)
    {
        pump(kb, None);
    }
}

/// Whether what waits for "host stdin" may go on: in terminal mode, the terminal has
/// input for a reader (as of the last [`pump`]); else host stdin is readable.
pub fn stdin_ready_now(kb: &Kernel) -> bool {
    match &kb.terminal {
        Some(t) => t.ready(),
        None => host::wait_stdin(Some(0)),
    }
}

/// Whether the module should wake for host stdin when every task waits: in terminal mode
/// always while input can be taken (`^C` must reach a program that does not read).
pub fn wants_host_input(kb: &Kernel) -> bool {
    kb.terminal
        .as_ref()
        .is_some_and(|t| !t.host_eof && t.pending.is_empty() && t.tty.room() > 0)
}

/// For poll, select and epoll: whether what reads host stdin (the terminal in terminal
/// mode) has input now.
pub fn stdin_ready(p: &mut Process) -> bool {
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    if kb.terminal.is_none() {
        return host::wait_stdin(Some(0));
    }
    pump(&mut kb, Some(p));
    kb.terminal.as_ref().is_some_and(Terminal::ready)
}

/// The caller as job control sees it. A process's controlling terminal is this one when
/// its session is the terminal's (a `TIOCNOTTY` by a process that is not its session's
/// leader therefore changes nothing).
fn caller_of(p: &Process, kb: &Kernel) -> Caller {
    let (pgid, sid) = kb
        .procs
        .get(&p.pid)
        .map_or((p.pid, p.pid), |e| (e.pgid, e.sid));
    let ctty = kb
        .terminal
        .as_ref()
        .is_some_and(|t| t.tty.session() == Some(sid));
    let ignored = |sig: i32| p.blocks(sig) || p.signals.actions[sig as usize].handler == SIG_IGN;
    // Orphaned: no member has a parent in another group of the same session.
    let orphaned = !kb
        .procs
        .values()
        .filter(|e| e.pgid == pgid && e.zombie.is_none())
        .any(|e| {
            kb.procs
                .get(&e.ppid)
                .is_some_and(|pe| pe.pgid != pgid && pe.sid == e.sid)
        });
    Caller {
        pid: p.pid,
        pgid,
        sid,
        ctty,
        admin: p.creds.euid == 0,
        ttin_ignored: ignored(SIGTTIN),
        ttou_ignored: ignored(SIGTTOU),
        orphaned,
    }
}

/// Applies job control's refusal: `Stop` sends the signal to the caller's group and waits
/// (the call runs again once the caller may go on, as Linux restarts it).
fn refused(p: &mut Process, pgid: i32, r: Refusal) -> Errno {
    match r {
        Refusal::Stop(sig) => {
            signal_pgrp(p, pgid, sig, SigSource::Kernel);
            EBLOCK
        }
        Refusal::Errno(e) => e,
        Refusal::Unsupported(req) => {
            p.log_once(format!("ioctl: terminal request {req:#x} is not supported"));
            ENOTTY
        }
    }
}

/// Guest memory for the ioctl argument.
struct GuestMem<'a>(&'a mut crate::mem::Memory);

impl UserMem for GuestMem<'_> {
    fn read_user(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        self.0.read_bytes(addr, buf).is_ok()
    }
    fn write_user(&mut self, addr: u64, data: &[u8]) -> bool {
        self.0.write_bytes(addr, data).is_ok()
    }
}

/// ioctl(2) on the terminal.
pub fn ioctl(p: &mut Process, req: u32, arg: u64) -> SysResult {
    let k = p.kernel.clone();
    let (caller, r) = {
        let mut kb = k.borrow_mut();
        pump(&mut kb, Some(p));
        let caller = caller_of(p, &kb);
        let kb = &mut *kb;
        let Some(t) = kb.terminal.as_mut() else {
            return Err(ENOTTY);
        };
        let procs = &kb.procs;
        // The session of process group `g`, or of process `g` (Linux's session_of_pgrp).
        let lookup = |g: i32| {
            procs
                .values()
                .find(|e| e.pgid == g)
                .or_else(|| procs.get(&g))
                .map(|e| e.sid)
        };
        let mut mem = GuestMem(&mut p.mem);
        let r = t.tty.ioctl(&caller, req, arg, &mut mem, &lookup);
        (caller, r)
    };
    match r {
        Ok(done) => {
            let _ = write_host(1, &done.echo);
            for (pgid, sig) in done.signals {
                signal_pgrp(p, pgid, sig, SigSource::Kernel);
            }
            Ok(done.ret)
        }
        Err(e) => Err(refused(p, caller.pgid, e)),
    }
}

impl Process {
    /// Job control for a read or write of the terminal (a background process group is
    /// refused or stopped), then takes in what the host typed meanwhile.
    fn terminal_access(&mut self, access: Access) -> Result<(), Errno> {
        let k = self.kernel.clone();
        let mut kb = k.borrow_mut();
        let caller = caller_of(self, &kb);
        let check = kb
            .terminal
            .as_ref()
            .map_or(Ok(()), |t| t.tty.job_control(&caller, access));
        if let Err(r) = check {
            drop(kb);
            return Err(refused(self, caller.pgid, r));
        }
        pump(&mut kb, Some(self));
        Ok(())
    }

    /// read(2) of the terminal.
    pub(super) fn terminal_read(&mut self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        self.terminal_access(Access::Read)?;
        let k = self.kernel.clone();
        let mut kb = k.borrow_mut();
        let Some(t) = kb.terminal.as_mut() else {
            return Err(EIO);
        };
        match t.tty.read(buf, host::now_monotonic_ns(), nonblock) {
            ReadOutcome::Data(n) => Ok(n),
            ReadOutcome::Eof => Ok(0),
            ReadOutcome::WouldBlock { .. } if t.host_eof => Ok(0),
            ReadOutcome::WouldBlock { .. } if nonblock => Err(EAGAIN),
            ReadOutcome::WouldBlock { deadline_ns } => {
                drop(kb);
                self.wait.stdin = true;
                if deadline_ns.is_some() {
                    self.wait.deadline = deadline_ns;
                    self.wait.deadline_set = true;
                }
                Err(EBLOCK)
            }
        }
    }

    /// write(2) to the terminal: through output processing to host stream `fd` (1 or 2).
    pub(super) fn terminal_write(
        &mut self,
        fd: u32,
        data: &[u8],
        nonblock: bool,
    ) -> Result<usize, Errno> {
        // (The pump takes in a ^Q typed meanwhile, which restarts stopped output.)
        self.terminal_access(Access::Write)?;
        let k = self.kernel.clone();
        let mut kb = k.borrow_mut();
        let Some(t) = kb.terminal.as_mut() else {
            return Err(EIO);
        };
        if t.tty.output_stopped() {
            if nonblock {
                return Err(EAGAIN);
            }
            drop(kb);
            self.wait.stdin = true;
            return Err(EBLOCK);
        }
        let out = t.tty.output(data);
        match write_host(fd, &out) {
            Ok(()) => Ok(data.len()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                drop(kb);
                self.raise_host_sigpipe();
                Err(EPIPE)
            }
            Err(_) => Err(EIO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one after another; (what passed, the sizes reported).
    fn filter(chunks: &[&[u8]]) -> (Vec<u8>, Vec<(u16, u16)>) {
        let mut f = ResizeFilter::default();
        let (mut out, mut sizes) = (Vec::new(), Vec::new());
        for c in chunks {
            sizes.extend(f.feed(c, &mut out));
        }
        f.flush(&mut out);
        (out, sizes)
    }

    #[test]
    fn resize_reports_are_taken_out_of_the_input() {
        let r = b"\x1b_rvbox:winsize;50;132\x1b\\";
        assert_eq!(filter(&[r]), (vec![], vec![(50, 132)]));
        // Around typed input, and cut anywhere by the ends of reads.
        let mut all = b"ls\r".to_vec();
        all.extend_from_slice(r);
        all.extend_from_slice(b"\x1b[A");
        for cut in 0..=all.len() {
            let (a, b) = all.split_at(cut);
            assert_eq!(
                filter(&[a, b]),
                (b"ls\r\x1b[A".to_vec(), vec![(50, 132)]),
                "cut at {cut}"
            );
        }
        // Two in one read: each is reported (the last one is returned).
        let mut f = ResizeFilter::default();
        let mut out = Vec::new();
        let two = b"\x1b_rvbox:winsize;1;2\x1b\\\x1b_rvbox:winsize;3;4\x1b\\";
        assert_eq!(f.feed(two, &mut out), Some((3, 4)));
        assert!(out.is_empty() && !f.holding());
    }

    #[test]
    fn what_only_looks_like_a_report_is_input() {
        for plain in [
            &b"\x1b"[..],                           // a lone ESC (the key)
            b"\x1b\x1b[A",                          // ESC, then an arrow key
            b"\x1b_",                               // Alt-_
            b"\x1b_other;1;2\x1b\\",                // someone else's APC
            b"\x1b_rvbox:winsize;x;2\x1b\\",        // not numbers
            b"\x1b_rvbox:winsize;12\x1b\\",         // one number
            b"\x1b_rvbox:winsize;99999999;1\x1b\\", // too long
            b"\x1b_rvbox:winsize;1;70000\x1b\\",    // not a u16
            b"\x1b_rvbox:winsize;1;2\x1bx",         // ESC not followed by '\\'
        ] {
            assert_eq!(filter(&[plain]), (plain.to_vec(), vec![]), "{plain:?}");
        }
        // A held start is given up when no more input waits.
        let mut f = ResizeFilter::default();
        let mut out = Vec::new();
        assert_eq!(f.feed(b"a\x1b_rv", &mut out), None);
        assert!(f.holding());
        assert_eq!(out, b"a");
        f.flush(&mut out);
        assert_eq!(out, b"a\x1b_rv");
        // A report right after a false start still counts.
        let (out, sizes) = filter(&[b"\x1b_x\x1b_rvbox:winsize;5;6\x1b\\"]);
        assert_eq!((out, sizes), (b"\x1b_x".to_vec(), vec![(5, 6)]));
    }

    fn tty() -> Tty {
        let mut t = Tty::new(Winsize {
            rows: 24,
            cols: 80,
            ..Default::default()
        });
        t.attach(1, 1);
        t
    }

    /// Reads everything a read returns now, as text.
    fn read_str(t: &mut Tty) -> Option<String> {
        let mut b = [0u8; 8192];
        match t.read(&mut b, 0, false) {
            ReadOutcome::Data(n) => Some(String::from_utf8_lossy(&b[..n]).into_owned()),
            ReadOutcome::Eof => Some("<EOF>".into()),
            ReadOutcome::WouldBlock { .. } => None,
        }
    }

    fn echo_of(t: &mut Tty, input: &[u8]) -> String {
        let r = t.receive(input);
        assert_eq!(r.consumed, input.len());
        String::from_utf8_lossy(&r.echo).into_owned()
    }

    fn set(t: &mut Tty, f: impl FnOnce(&mut Termios)) {
        let mut tio = *t.termios();
        f(&mut tio);
        t.set_termios(tio);
    }

    #[test]
    fn defaults_are_a_fresh_linux_pty() {
        let t = tty();
        let tio = t.termios();
        assert_eq!(tio.iflag, ICRNL | IXON);
        assert_eq!(tio.oflag, OPOST | ONLCR);
        assert_eq!(tio.cflag, B38400 | CS8 | CREAD);
        assert_eq!(
            tio.lflag,
            ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN
        );
        let cc = &tio.cc;
        assert_eq!(
            (cc[VINTR], cc[VQUIT], cc[VERASE], cc[VKILL], cc[VEOF]),
            (3, 0x1c, 0x7f, 0x15, 4)
        );
        assert_eq!((cc[VMIN], cc[VTIME], cc[VEOL]), (1, 0, 0));
        assert_eq!(
            (cc[VSTART], cc[VSTOP], cc[VSUSP], cc[VWERASE], cc[VLNEXT]),
            (0x11, 0x13, 0x1a, 0x17, 0x16)
        );
        assert_eq!((tio.ispeed, tio.ospeed), (38400, 38400));
    }

    #[test]
    fn canonical_line_with_echo_and_icrnl() {
        let mut t = tty();
        assert_eq!(echo_of(&mut t, b"ls -l"), "ls -l");
        assert!(!t.readable());
        assert_eq!(read_str(&mut t), None);
        // Enter sends \r: ICRNL makes it \n, echoed as \r\n (ONLCR).
        assert_eq!(echo_of(&mut t, b"\r"), "\r\n");
        assert!(t.readable());
        assert_eq!(t.inq(), 6);
        assert_eq!(read_str(&mut t).unwrap(), "ls -l\n");
        assert_eq!(read_str(&mut t), None);
    }

    #[test]
    fn one_line_per_read_and_partial_reads() {
        let mut t = tty();
        echo_of(&mut t, b"one\ntwo\nthr");
        assert_eq!(read_str(&mut t).unwrap(), "one\n");
        let mut b = [0u8; 2];
        assert_eq!(t.read(&mut b, 0, false), ReadOutcome::Data(2));
        assert_eq!(&b, b"tw");
        assert_eq!(t.read(&mut b, 0, false), ReadOutcome::Data(2));
        assert_eq!(&b, b"o\n");
        // "thr" is not a line yet.
        assert_eq!(read_str(&mut t), None);
        assert_eq!(t.inq(), 0);
    }

    #[test]
    fn erase_kill_werase() {
        let mut t = tty();
        assert_eq!(echo_of(&mut t, b"abc\x7f"), "abc\x08 \x08");
        // ^H is not VERASE but a control character: with ECHOCTL it shows as "^H"...
        let mut t = tty();
        assert_eq!(echo_of(&mut t, b"ab\x08"), "ab^H");
        // ...and erasing it takes two columns.
        assert_eq!(echo_of(&mut t, b"\x7f"), "\x08 \x08\x08 \x08");
        echo_of(&mut t, b"\n");
        assert_eq!(read_str(&mut t).unwrap(), "ab\n");

        // VKILL with ECHOKE: every character rubbed out.
        let mut t = tty();
        assert_eq!(
            echo_of(&mut t, b"xyz\x15"),
            "xyz\x08 \x08\x08 \x08\x08 \x08"
        );
        echo_of(&mut t, b"ok\n");
        assert_eq!(read_str(&mut t).unwrap(), "ok\n");

        // VWERASE: the last word and the blanks after it.
        let mut t = tty();
        echo_of(&mut t, b"echo foo_bar  ");
        let e = echo_of(&mut t, b"\x17");
        assert_eq!(e, "\x08 \x08".repeat(9));
        echo_of(&mut t, b"x\n");
        assert_eq!(read_str(&mut t).unwrap(), "echo x\n");

        // Nothing to erase: nothing echoed.
        let mut t = tty();
        assert_eq!(echo_of(&mut t, b"\x7f\x15\x17"), "");
        // Erase does not cross a finished line.
        echo_of(&mut t, b"a\n\x7f\x7fb\n");
        assert_eq!(read_str(&mut t).unwrap(), "a\n");
        assert_eq!(read_str(&mut t).unwrap(), "b\n");
    }

    #[test]
    fn kill_without_echoke_echoes_the_character_and_a_newline() {
        let mut t = tty();
        set(&mut t, |tio| tio.lflag &= !ECHOKE);
        assert_eq!(echo_of(&mut t, b"abc\x15"), "abc^U\r\n");
        echo_of(&mut t, b"d\n");
        assert_eq!(read_str(&mut t).unwrap(), "d\n");
        // Without ECHOE, VERASE echoes itself.
        set(&mut t, |tio| tio.lflag &= !ECHOE);
        assert_eq!(echo_of(&mut t, b"ab\x7f"), "ab^?");
    }

    #[test]
    fn erase_a_tab_goes_back_to_where_it_started() {
        let mut t = tty();
        // Output "$ " first: the line's input starts at column 2.
        t.output(b"$ ");
        echo_of(&mut t, b"ab\t");
        // The tab went from column 4 to 8: four columns back.
        assert_eq!(echo_of(&mut t, b"\x7f"), "\x08\x08\x08\x08");
        echo_of(&mut t, b"\t");
        echo_of(&mut t, b"x\t");
        // From 9 to 16: seven back (counted from the previous tab).
        assert_eq!(echo_of(&mut t, b"\x7f"), "\x08".repeat(7));
    }

    #[test]
    fn utf8_erase_with_iutf8() {
        let mut t = tty();
        set(&mut t, |tio| tio.iflag |= IUTF8);
        echo_of(&mut t, "hé".as_bytes());
        // One column back for a two-byte character.
        assert_eq!(echo_of(&mut t, b"\x7f"), "\x08 \x08");
        echo_of(&mut t, b"\n");
        assert_eq!(read_str(&mut t).unwrap(), "h\n");
        // Without IUTF8 only the last byte goes.
        let mut t = tty();
        echo_of(&mut t, "hé\x7f\n".as_bytes());
        let mut b = [0u8; 8];
        assert_eq!(t.read(&mut b, 0, false), ReadOutcome::Data(3));
        assert_eq!(&b[..3], b"h\xc3\n");
    }

    #[test]
    fn eof_on_empty_line_and_push_on_non_empty() {
        let mut t = tty();
        assert_eq!(echo_of(&mut t, b"\x04"), "");
        assert!(t.readable());
        assert_eq!(t.inq(), 0);
        assert_eq!(read_str(&mut t).unwrap(), "<EOF>");
        assert_eq!(read_str(&mut t), None);
        // ^D after text pushes the text without a newline.
        echo_of(&mut t, b"abc\x04");
        assert_eq!(t.inq(), 3);
        assert_eq!(read_str(&mut t).unwrap(), "abc");
        // A second ^D is an end of file.
        echo_of(&mut t, b"\x04");
        assert_eq!(read_str(&mut t).unwrap(), "<EOF>");
    }

    #[test]
    fn eof_mark_after_a_line_read_in_pieces_is_not_eof() {
        let mut t = tty();
        echo_of(&mut t, b"abc\x04");
        let mut b = [0u8; 3];
        assert_eq!(t.read(&mut b, 0, false), ReadOutcome::Data(3));
        // Only the mark is left: it ends the line, and the reader waits.
        assert_eq!(
            t.read(&mut b, 0, false),
            ReadOutcome::WouldBlock { deadline_ns: None }
        );
        echo_of(&mut t, b"\x04");
        assert_eq!(t.read(&mut b, 0, false), ReadOutcome::Eof);
    }

    #[test]
    fn veol_ends_lines_and_is_kept() {
        let mut t = tty();
        set(&mut t, |tio| tio.cc[VEOL] = b';');
        assert_eq!(echo_of(&mut t, b"a;b"), "a;b");
        assert_eq!(read_str(&mut t).unwrap(), "a;");
        // A NUL byte is plain data, though VEOL2 is 0 (disabled).
        echo_of(&mut t, b"\0\n");
        assert_eq!(read_str(&mut t).unwrap().as_bytes(), b"b\0\n");
    }

    #[test]
    fn signal_characters_flush_and_echo() {
        let mut t = tty();
        echo_of(&mut t, b"done\npartial");
        let r = t.receive(b"\x03");
        assert_eq!(r.signals, vec![SIGINT]);
        assert_eq!(r.echo, b"^C");
        // The complete line and the partial one are gone.
        assert!(!t.readable());
        echo_of(&mut t, b"x\n");
        assert_eq!(read_str(&mut t).unwrap(), "x\n");

        assert_eq!(t.receive(b"\x1c").signals, vec![SIGQUIT]);
        let r = t.receive(b"\x1a");
        assert_eq!(r.signals, vec![SIGTSTP]);
        assert_eq!(r.echo, b"^Z");

        // Echo of the same batch before the signal is discarded, as Linux does.
        let r = t.receive(b"ab\x03cd");
        assert_eq!(String::from_utf8_lossy(&r.echo), "^Ccd");
        echo_of(&mut t, b"\n");
        assert_eq!(read_str(&mut t).unwrap(), "cd\n");
    }

    #[test]
    fn noflsh_keeps_input_and_isig_off_passes_characters() {
        let mut t = tty();
        set(&mut t, |tio| tio.lflag |= NOFLSH);
        echo_of(&mut t, b"keep\n");
        assert_eq!(t.receive(b"\x03").signals, vec![SIGINT]);
        assert_eq!(read_str(&mut t).unwrap(), "keep\n");

        set(&mut t, |tio| tio.lflag &= !ISIG);
        let r = t.receive(b"\x03\n");
        assert!(r.signals.is_empty());
        assert_eq!(r.echo, b"^C\r\n");
        assert_eq!(read_str(&mut t).unwrap().as_bytes(), b"\x03\n");
    }

    #[test]
    fn echo_flags() {
        // ECHO off: nothing echoed, but ECHONL still echoes newlines.
        let mut t = tty();
        set(&mut t, |tio| tio.lflag &= !ECHO);
        assert_eq!(echo_of(&mut t, b"secret\r"), "");
        set(&mut t, |tio| tio.lflag |= ECHONL);
        assert_eq!(echo_of(&mut t, b"pw\r"), "\r\n");
        assert_eq!(read_str(&mut t).unwrap(), "secret\n");
        assert_eq!(read_str(&mut t).unwrap(), "pw\n");
        // ECHOCTL off: control characters echoed as they are.
        let mut t = tty();
        set(&mut t, |tio| tio.lflag &= !ECHOCTL);
        assert_eq!(echo_of(&mut t, b"\x01\x02"), "\x01\x02");
        // ECHOCTL: tab stays a tab, DEL erases, ESC shows as ^[.
        let mut t = tty();
        assert_eq!(echo_of(&mut t, b"\t\x1b"), "\t^[");
    }

    #[test]
    fn echoprt_shows_erased_characters() {
        let mut t = tty();
        set(&mut t, |tio| tio.lflag |= ECHOPRT);
        assert_eq!(echo_of(&mut t, b"abc\x7f\x7fd"), "abc\\cb/d");
    }

    #[test]
    fn lnext_and_reprint() {
        let mut t = tty();
        // ^V^C: a literal ^C, no signal.
        let r = t.receive(b"\x16\x03\r");
        assert!(r.signals.is_empty());
        assert_eq!(String::from_utf8_lossy(&r.echo), "^\x08^C\r\n");
        assert_eq!(read_str(&mut t).unwrap().as_bytes(), b"\x03\n");
        // ^R reprints the line.
        echo_of(&mut t, b"abc");
        assert_eq!(echo_of(&mut t, b"\x12"), "^R\r\nabc");
    }

    #[test]
    fn input_newline_flags() {
        let mut t = tty();
        set(&mut t, |tio| tio.iflag |= IGNCR);
        echo_of(&mut t, b"a\rb\n");
        assert_eq!(read_str(&mut t).unwrap(), "ab\n");
        let mut t = tty();
        set(&mut t, |tio| tio.iflag = INLCR);
        // \n becomes \r, no line end; \r stays \r (no ICRNL).
        echo_of(&mut t, b"a\nb");
        assert_eq!(read_str(&mut t), None);
        set(&mut t, |tio| tio.lflag &= !ICANON);
        assert_eq!(read_str(&mut t).unwrap(), "a\rb");
        // ISTRIP and IUCLC.
        let mut t = tty();
        set(&mut t, |tio| tio.iflag |= ISTRIP | IUCLC);
        // 0xc2 loses its top bit (B), then its case.
        echo_of(&mut t, b"A\xc2\n");
        assert_eq!(read_str(&mut t).unwrap(), "ab\n");
    }

    #[test]
    fn raw_mode_vmin() {
        let mut t = tty();
        set(&mut t, |tio| {
            tio.lflag &= !(ICANON | ECHO | ISIG | IEXTEN);
            tio.iflag &= !(ICRNL | IXON);
        });
        let r = t.receive(b"a\x03\r");
        assert!(r.signals.is_empty());
        assert!(r.echo.is_empty());
        assert_eq!(read_str(&mut t).unwrap().as_bytes(), b"a\x03\r");
        assert_eq!(read_str(&mut t), None);
        // VMIN = 3: a read waits for three bytes (or as many as asked for).
        set(&mut t, |tio| tio.cc[VMIN] = 3);
        t.receive(b"xy");
        assert!(!t.readable());
        assert_eq!(read_str(&mut t), None);
        let mut one = [0u8; 1];
        assert_eq!(t.read(&mut one, 0, false), ReadOutcome::Data(1));
        t.receive(b"z");
        assert!(!t.readable());
        t.receive(b"w");
        assert!(t.readable());
        assert_eq!(read_str(&mut t).unwrap(), "yzw");
        // O_NONBLOCK returns what there is.
        t.receive(b"q");
        let mut b = [0u8; 8];
        assert_eq!(t.read(&mut b, 0, true), ReadOutcome::Data(1));
        assert_eq!(
            t.read(&mut b, 0, true),
            ReadOutcome::WouldBlock { deadline_ns: None }
        );
        // VMIN = 0, VTIME = 0: never waits.
        set(&mut t, |tio| tio.cc[VMIN] = 0);
        assert_eq!(t.read(&mut b, 0, false), ReadOutcome::Data(0));
        // The default echo in raw mode with ECHO but not ICANON: \n typed is ^J.
        set(&mut t, |tio| tio.lflag |= ECHO);
        assert_eq!(echo_of(&mut t, b"\n"), "^J");
    }

    #[test]
    fn raw_mode_vtime() {
        const S: u64 = 1_000_000_000;
        let mut t = tty();
        set(&mut t, |tio| {
            tio.lflag &= !(ICANON | ECHO);
            tio.cc[VMIN] = 0;
            tio.cc[VTIME] = 5; // half a second
        });
        let mut b = [0u8; 8];
        // VMIN = 0: wait up to VTIME for the first byte.
        assert_eq!(
            t.read(&mut b, 10 * S, false),
            ReadOutcome::WouldBlock {
                deadline_ns: Some(10 * S + S / 2)
            }
        );
        assert_eq!(
            t.read(&mut b, 10 * S + 1, false),
            ReadOutcome::WouldBlock {
                deadline_ns: Some(10 * S + S / 2)
            }
        );
        assert_eq!(t.read(&mut b, 11 * S, false), ReadOutcome::Data(0));
        // A byte arriving in time is returned at once.
        assert!(matches!(
            t.read(&mut b, 20 * S, false),
            ReadOutcome::WouldBlock { .. }
        ));
        t.receive(b"k");
        assert_eq!(t.read(&mut b, 20 * S + 1, false), ReadOutcome::Data(1));
        // VMIN = 2, VTIME = 5: no timer before the first byte, then an inter-byte timer.
        set(&mut t, |tio| tio.cc[VMIN] = 2);
        assert_eq!(
            t.read(&mut b, 30 * S, false),
            ReadOutcome::WouldBlock { deadline_ns: None }
        );
        t.receive(b"a");
        assert_eq!(
            t.read(&mut b, 31 * S, false),
            ReadOutcome::WouldBlock {
                deadline_ns: Some(31 * S + S / 2)
            }
        );
        assert_eq!(t.read(&mut b, 32 * S, false), ReadOutcome::Data(1));
        t.receive(b"b");
        t.read(&mut b, 40 * S, false);
        t.receive(b"c"); // VMIN reached
        assert_eq!(t.read(&mut b, 40 * S + 1, false), ReadOutcome::Data(2));
        assert_eq!(&b[..2], b"bc");
    }

    #[test]
    fn switching_canonical_mode_redivides_input() {
        let mut t = tty();
        echo_of(&mut t, b"partial");
        set(&mut t, |tio| tio.lflag &= !ICANON);
        assert_eq!(read_str(&mut t).unwrap(), "partial");
        t.receive(b"raw");
        set(&mut t, |tio| tio.lflag |= ICANON);
        // What was buffered is one line now.
        assert!(t.readable());
        assert_eq!(read_str(&mut t).unwrap(), "raw");
    }

    #[test]
    fn output_processing() {
        let mut t = tty();
        assert!(matches!(t.output(b"plain"), Cow::Borrowed(_)));
        assert_eq!(&*t.output(b"a\nb\n"), b"a\r\nb\r\n");
        set(&mut t, |tio| tio.oflag &= !ONLCR);
        assert!(matches!(t.output(b"a\nb"), Cow::Borrowed(_)));
        // Tabs expand from the column (OCRNL does not reset it).
        let mut t = tty();
        set(&mut t, |tio| tio.oflag = OPOST | OCRNL | OLCUC | XTABS);
        assert_eq!(&*t.output(b"ab\rc\td"), b"AB\nC     D");
        // ONOCR: no \r in column 0.
        let mut t = tty();
        set(&mut t, |tio| tio.oflag = OPOST | ONOCR | ONLCR);
        assert_eq!(&*t.output(b"\rx\r"), b"x\r");
        set(&mut t, |tio| tio.oflag = ONLCR); // no OPOST: untouched
        assert!(matches!(t.output(b"a\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn flow_control() {
        let mut t = tty();
        assert!(t.receive(b"\x13").echo.is_empty());
        assert!(t.output_stopped());
        echo_of(&mut t, b"a"); // not IXANY: stays stopped
        assert!(t.output_stopped());
        t.receive(b"\x11");
        assert!(!t.output_stopped());
        // VSTART/VSTOP are not input.
        echo_of(&mut t, b"\n");
        assert_eq!(read_str(&mut t).unwrap(), "a\n");
        // ^C restarts output too.
        t.receive(b"\x13\x03");
        assert!(!t.output_stopped());
        // IXANY: any character restarts.
        set(&mut t, |tio| tio.iflag |= IXANY);
        t.receive(b"\x13");
        t.receive(b"z");
        assert!(!t.output_stopped());
        // Turning IXON off restarts.
        t.receive(b"\x13");
        set(&mut t, |tio| tio.iflag &= !IXON);
        assert!(!t.output_stopped());
    }

    #[test]
    fn full_buffer_applies_backpressure_and_full_line_keeps_editing() {
        let mut t = tty();
        set(&mut t, |tio| tio.lflag &= !(ICANON | ECHO));
        let big = vec![b'x'; 5000];
        let r = t.receive(&big);
        assert_eq!(r.consumed, BUF_SIZE - 1);
        assert_eq!(t.room(), 0);
        let mut b = vec![0u8; 100];
        assert_eq!(t.read(&mut b, 0, false), ReadOutcome::Data(100));
        assert_eq!(t.room(), 100);

        // Canonical, no newline yet: input goes on, the last byte being replaced...
        let mut t = tty();
        set(&mut t, |tio| tio.lflag &= !ECHO);
        let r = t.receive(&big);
        assert_eq!(r.consumed, 5000);
        assert_eq!(t.room(), 1);
        // ...and erase and newline still work.
        t.receive(b"\x7fy\n");
        let mut b = vec![0u8; 8192];
        let ReadOutcome::Data(n) = t.read(&mut b, 0, false) else {
            panic!()
        };
        assert_eq!(n, BUF_SIZE);
        assert_eq!(&b[n - 2..n], b"y\n");
        // Complete lines filling the buffer: nothing more is taken.
        let mut t = tty();
        let lines = b"0123456789abcde\n".repeat(256);
        assert_eq!(t.receive(&lines).consumed, BUF_SIZE - 1);
        assert_eq!(t.room(), 0);
        assert_eq!(t.receive(b"z").consumed, 0);
    }

    #[test]
    fn parmrk_doubles_0xff() {
        let mut t = tty();
        set(&mut t, |tio| {
            tio.iflag |= PARMRK;
            tio.lflag &= !(ICANON | ECHO);
        });
        t.receive(b"\xff");
        assert_eq!(t.inq(), 2);
    }

    struct Mem(Vec<u8>);
    impl UserMem for Mem {
        fn read_user(&mut self, addr: u64, buf: &mut [u8]) -> bool {
            let a = addr as usize;
            match self.0.get(a..a + buf.len()) {
                Some(s) => {
                    buf.copy_from_slice(s);
                    true
                }
                None => false,
            }
        }
        fn write_user(&mut self, addr: u64, data: &[u8]) -> bool {
            let a = addr as usize;
            match self.0.get_mut(a..a + data.len()) {
                Some(s) => {
                    s.copy_from_slice(data);
                    true
                }
                None => false,
            }
        }
    }

    /// The shell: pid 1, leader of session 1 and group 1, with the terminal.
    fn shell() -> Caller {
        Caller {
            pid: 1,
            pgid: 1,
            sid: 1,
            ctty: true,
            admin: true,
            ttin_ignored: false,
            ttou_ignored: false,
            orphaned: false,
        }
    }

    /// A job of the shell: pid 5 in group 5.
    fn job() -> Caller {
        Caller {
            pid: 5,
            pgid: 5,
            ..shell()
        }
    }

    fn sessions(g: i32) -> Option<i32> {
        match g {
            1 | 5 => Some(1),
            9 => Some(9),
            _ => None,
        }
    }

    fn ioctl(
        t: &mut Tty,
        c: &Caller,
        req: u32,
        arg: u64,
        m: &mut Mem,
    ) -> Result<IoctlDone, Refusal> {
        t.ioctl(c, req, arg, m, &sessions)
    }

    #[test]
    fn ioctl_termios_round_trip_and_flush() {
        let mut t = tty();
        let mut m = Mem(vec![0; 64]);
        ioctl(&mut t, &shell(), TCGETS, 0, &mut m).unwrap();
        let mut tio = Termios::decode(m.0[..36].try_into().unwrap());
        assert_eq!(tio.lflag, t.termios().lflag);
        tio.lflag &= !(ICANON | ECHO);
        tio.cflag &= !CSIZE; // CS5: a pty keeps CS8
        m.0[..36].copy_from_slice(&tio.encode());
        echo_of(&mut t, b"pending");
        ioctl(&mut t, &shell(), TCSETS, 0, &mut m).unwrap();
        assert_eq!(t.termios().lflag & (ICANON | ECHO), 0);
        assert_eq!(t.termios().cflag & CSIZE, CS8);
        assert_eq!(t.inq(), 7);
        // TCSETSF flushes the input first.
        ioctl(&mut t, &shell(), TCSETSF, 0, &mut m).unwrap();
        assert_eq!(t.inq(), 0);
        // termios2 carries the speeds.
        ioctl(&mut t, &shell(), TCGETS2, 0, &mut m).unwrap();
        let t2 = Termios::decode2(m.0[..44].try_into().unwrap());
        assert_eq!((t2.ispeed, t2.ospeed), (38400, 38400));
        let mut t2b = t2;
        t2b.cflag = (t2b.cflag & !CBAUD) | BOTHER;
        t2b.ospeed = 12345;
        m.0[..44].copy_from_slice(&t2b.encode2());
        ioctl(&mut t, &shell(), TCSETS2, 0, &mut m).unwrap();
        assert_eq!((t.termios().ispeed, t.termios().ospeed), (12345, 12345));
        // A bad address.
        assert_eq!(
            ioctl(&mut t, &shell(), TCGETS, 60, &mut m),
            Err(Refusal::Errno(EFAULT))
        );
    }

    #[test]
    fn ioctl_window_size() {
        let mut t = tty();
        let mut m = Mem(vec![0; 16]);
        ioctl(&mut t, &shell(), TIOCGWINSZ, 0, &mut m).unwrap();
        assert_eq!(&m.0[..4], &[24, 0, 80, 0]);
        m.0[..8].copy_from_slice(
            &Winsize {
                rows: 50,
                cols: 132,
                ..Default::default()
            }
            .encode(),
        );
        let d = ioctl(&mut t, &shell(), TIOCSWINSZ, 0, &mut m).unwrap();
        assert_eq!(d.signals, vec![(1, SIGWINCH)]);
        assert_eq!((t.winsize().rows, t.winsize().cols), (50, 132));
        // The same size again: no signal.
        let d = ioctl(&mut t, &shell(), TIOCSWINSZ, 0, &mut m).unwrap();
        assert!(d.signals.is_empty());
    }

    #[test]
    fn ioctl_process_groups() {
        let mut t = tty();
        let mut m = Mem(vec![0; 16]);
        ioctl(&mut t, &shell(), TIOCGPGRP, 0, &mut m).unwrap();
        assert_eq!(&m.0[..4], &1i32.to_le_bytes());
        // The shell puts job 5 in the foreground.
        m.0[..4].copy_from_slice(&5i32.to_le_bytes());
        ioctl(&mut t, &shell(), TIOCSPGRP, 0, &mut m).unwrap();
        assert_eq!(t.foreground(), Some(5));
        // Now the shell is in the background: tcsetpgrp stops it with SIGTTOU...
        m.0[..4].copy_from_slice(&1i32.to_le_bytes());
        assert_eq!(
            ioctl(&mut t, &shell(), TIOCSPGRP, 0, &mut m),
            Err(Refusal::Stop(SIGTTOU))
        );
        // ...unless it ignores SIGTTOU, as shells do.
        let sh = Caller {
            ttou_ignored: true,
            ..shell()
        };
        ioctl(&mut t, &sh, TIOCSPGRP, 0, &mut m).unwrap();
        assert_eq!(t.foreground(), Some(1));
        // Errors: a group of another session, no such group, negative.
        for (g, e) in [(9i32, EPERM), (77, ESRCH), (-1, EINVAL)] {
            m.0[..4].copy_from_slice(&g.to_le_bytes());
            assert_eq!(
                ioctl(&mut t, &shell(), TIOCSPGRP, 0, &mut m),
                Err(Refusal::Errno(e))
            );
        }
        // Without a controlling terminal.
        let outsider = Caller {
            pid: 9,
            pgid: 9,
            sid: 9,
            ctty: false,
            ..shell()
        };
        assert_eq!(
            ioctl(&mut t, &outsider, TIOCGPGRP, 0, &mut m),
            Err(Refusal::Errno(ENOTTY))
        );
        assert_eq!(
            ioctl(&mut t, &outsider, TIOCGSID, 0, &mut m),
            Err(Refusal::Errno(ENOTTY))
        );
        ioctl(&mut t, &job(), TIOCGSID, 0, &mut m).unwrap();
        assert_eq!(&m.0[..4], &1i32.to_le_bytes());
    }

    #[test]
    fn job_control_on_read_and_write() {
        let mut t = tty();
        // The shell is in the foreground: job 5 is in the background.
        assert_eq!(t.job_control(&shell(), Access::Read), Ok(()));
        assert_eq!(
            t.job_control(&job(), Access::Read),
            Err(Refusal::Stop(SIGTTIN))
        );
        let ignoring = Caller {
            ttin_ignored: true,
            ..job()
        };
        assert_eq!(
            t.job_control(&ignoring, Access::Read),
            Err(Refusal::Errno(EIO))
        );
        let orphan = Caller {
            orphaned: true,
            ..job()
        };
        assert_eq!(
            t.job_control(&orphan, Access::Read),
            Err(Refusal::Errno(EIO))
        );
        // Writes are free unless TOSTOP.
        assert_eq!(t.job_control(&job(), Access::Write), Ok(()));
        set(&mut t, |tio| tio.lflag |= TOSTOP);
        assert_eq!(
            t.job_control(&job(), Access::Write),
            Err(Refusal::Stop(SIGTTOU))
        );
        // A process without this controlling terminal is not subject to it.
        let other = Caller {
            ctty: false,
            ..job()
        };
        assert_eq!(t.job_control(&other, Access::Read), Ok(()));
        // TCSETS from the background.
        let mut m = Mem(vec![0; 64]);
        m.0[..36].copy_from_slice(&Termios::default().encode());
        assert_eq!(
            ioctl(&mut t, &job(), TCSETS, 0, &mut m),
            Err(Refusal::Stop(SIGTTOU))
        );
    }

    #[test]
    fn ioctl_controlling_terminal() {
        let mut t = Tty::new(Winsize::default());
        let mut m = Mem(vec![0; 16]);
        let leader = Caller {
            ctty: false,
            ..shell()
        };
        // Only a session leader without a terminal may take one.
        let member = Caller {
            pid: 2,
            ctty: false,
            ..shell()
        };
        assert_eq!(
            ioctl(&mut t, &member, TIOCSCTTY, 0, &mut m),
            Err(Refusal::Errno(EPERM))
        );
        let d = ioctl(&mut t, &leader, TIOCSCTTY, 0, &mut m).unwrap();
        assert_eq!(d.ctty, Some(CttyChange::Acquired { stolen_from: None }));
        assert_eq!((t.session(), t.foreground()), (Some(1), Some(1)));
        // Another session cannot take it, unless it steals it (arg 1, admin).
        let other = Caller {
            pid: 9,
            pgid: 9,
            sid: 9,
            ctty: false,
            admin: false,
            ..shell()
        };
        assert_eq!(
            ioctl(&mut t, &other, TIOCSCTTY, 1, &mut m),
            Err(Refusal::Errno(EPERM))
        );
        let root = Caller {
            admin: true,
            ..other
        };
        let d = ioctl(&mut t, &root, TIOCSCTTY, 1, &mut m).unwrap();
        assert_eq!(
            d.ctty,
            Some(CttyChange::Acquired {
                stolen_from: Some(1)
            })
        );
        assert_eq!(t.session(), Some(9));

        // TIOCNOTTY: a member lets go alone; the leader hangs up the foreground.
        let mut t = tty();
        let d = ioctl(&mut t, &job(), TIOCNOTTY, 0, &mut m).unwrap();
        assert_eq!(d.ctty, Some(CttyChange::Released));
        assert_eq!(t.session(), Some(1));
        let d = ioctl(&mut t, &shell(), TIOCNOTTY, 0, &mut m).unwrap();
        assert_eq!(d.ctty, Some(CttyChange::SessionReleased { sid: 1 }));
        assert_eq!(d.signals, vec![(1, SIGHUP), (1, SIGCONT)]);
        assert_eq!(t.session(), None);
        assert_eq!(
            ioctl(&mut t, &leader, TIOCNOTTY, 0, &mut m),
            Err(Refusal::Errno(ENOTTY))
        );
    }

    #[test]
    fn session_leader_exit_hangs_up() {
        let mut t = tty();
        assert!(t.session_leader_exited(7).is_empty());
        assert_eq!(t.session_leader_exited(1), vec![(1, SIGHUP)]);
        assert_eq!(t.session(), None);
    }

    #[test]
    fn ioctl_queues_and_misc() {
        let mut t = tty();
        let mut m = Mem(vec![0; 16]);
        echo_of(&mut t, b"ab\ncd");
        ioctl(&mut t, &shell(), FIONREAD, 0, &mut m).unwrap();
        assert_eq!(&m.0[..4], &3u32.to_le_bytes());
        ioctl(&mut t, &shell(), TIOCOUTQ, 0, &mut m).unwrap();
        assert_eq!(&m.0[..4], &0u32.to_le_bytes());
        // tcflush(TCIFLUSH); bad argument.
        ioctl(&mut t, &shell(), TCFLSH, TCIFLUSH, &mut m).unwrap();
        assert_eq!(t.inq(), 0);
        assert_eq!(
            ioctl(&mut t, &shell(), TCFLSH, 7, &mut m),
            Err(Refusal::Errno(EINVAL))
        );
        // tcflow.
        ioctl(&mut t, &shell(), TCXONC, TCOOFF, &mut m).unwrap();
        assert!(t.output_stopped());
        t.receive(b"\x11"); // VSTART does not undo TCOOFF
        assert!(t.output_stopped());
        ioctl(&mut t, &shell(), TCXONC, TCOON, &mut m).unwrap();
        assert!(!t.output_stopped());
        ioctl(&mut t, &shell(), TCXONC, TCIOFF, &mut m).unwrap();
        assert_eq!(
            ioctl(&mut t, &shell(), TCXONC, 9, &mut m),
            Err(Refusal::Errno(EINVAL))
        );
        // tcdrain.
        ioctl(&mut t, &shell(), TCSBRK, 1, &mut m).unwrap();
        // The line discipline is N_TTY.
        m.0[..4].copy_from_slice(&[9, 9, 9, 9]);
        ioctl(&mut t, &shell(), TIOCGETD, 0, &mut m).unwrap();
        assert_eq!(&m.0[..4], &[0, 0, 0, 0]);
        // TIOCSTI: as if typed.
        m.0[0] = b'\x03';
        let d = ioctl(&mut t, &shell(), TIOCSTI, 0, &mut m).unwrap();
        assert_eq!(d.signals, vec![(1, SIGINT)]);
        assert_eq!(d.echo, b"^C");
        // Exclusive mode.
        ioctl(&mut t, &shell(), TIOCEXCL, 0, &mut m).unwrap();
        assert!(t.exclusive());
        ioctl(&mut t, &shell(), TIOCGEXCL, 0, &mut m).unwrap();
        assert_eq!(&m.0[..4], &1u32.to_le_bytes());
        // What a console probe asks (KDGKBTYPE) is not for us.
        assert_eq!(
            ioctl(&mut t, &shell(), 0x4b33, 0, &mut m),
            Err(Refusal::Unsupported(0x4b33))
        );
    }
}
