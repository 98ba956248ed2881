//! The host terminal for `rvbox run -it`: raw mode while the guest runs, restored on every
//! way out.
//!
//! The guest runs its own line discipline (echo, line editing, `^C` -> SIGINT, `\n` ->
//! `\r\n`: `emulator-guest/src/linux/tty.rs`), so the host terminal must pass bytes
//! through untouched both ways: `cfmakeraw`, which turns input processing, echo, signal
//! characters and output processing (`OPOST`) off.
//!
//! The terminal is put back by whatever ends the run:
//! - the [`RawMode`] guard's `Drop`: normal exit, the guest's exit or fatal signal, a
//!   trap, an error, a panic that unwinds;
//! - a panic hook, before the panic message is printed;
//! - the `--timeout` watchdog, before it ends rvbox (`run.rs`);
//! - handlers for SIGTERM, SIGHUP, SIGINT and SIGQUIT (`kill`, a closed terminal window),
//!   which restore the terminal and re-raise the signal with its default action, so rvbox
//!   still dies of it and the shell sees the same status;
//! - SIGTSTP restores it and stops rvbox; SIGCONT puts it back into raw mode.
//!
//! Nothing can restore it after SIGKILL (`stty sane` or `reset` does).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

/// The terminal in raw mode: its fd and both settings.
struct Saved {
    fd: RawFd,
    orig: libc::termios,
    raw: libc::termios,
}

/// The terminal in raw mode now, or null. Signal handlers read it, so it is an atomic
/// pointer to a `Saved` that is never freed (one small leak per raw-mode run: a handler
/// on another thread may still be reading it).
static ACTIVE: AtomicPtr<Saved> = AtomicPtr::new(null_mut());

/// Raw mode on a terminal until dropped.
#[must_use = "the terminal goes back to normal when this is dropped"]
pub struct RawMode(());

impl RawMode {
    /// Puts terminal `fd` into raw mode (`cfmakeraw`). Fails if `fd` is no terminal.
    pub fn enter(fd: RawFd) -> io::Result<RawMode> {
        install_handlers();
        let orig = get(fd)?;
        let mut raw = orig;
        // SAFETY: `raw` is a valid, initialised termios.
        unsafe { libc::cfmakeraw(&mut raw) };
        let saved = Box::into_raw(Box::new(Saved { fd, orig, raw }));
        // Published before the switch, so a signal arriving in between restores.
        let prev = ACTIVE.swap(saved, Ordering::SeqCst);
        debug_assert!(prev.is_null(), "raw mode entered twice");
        if let Err(e) = set(fd, &raw) {
            restore();
            return Err(e);
        }
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

fn get(fd: RawFd) -> io::Result<libc::termios> {
    let mut t = MaybeUninit::<libc::termios>::zeroed();
    // SAFETY: `t` is writable memory for one termios, which tcgetattr fills on success.
    if unsafe { libc::tcgetattr(fd, t.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: tcgetattr succeeded, so it initialised `t` (and it was zeroed before).
    Ok(unsafe { t.assume_init() })
}

/// tcsetattr(TCSANOW): typeahead is kept. Async-signal-safe.
fn set(fd: RawFd, t: &libc::termios) -> io::Result<()> {
    // SAFETY: `t` points to a valid termios for the call.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts the terminal back as it was and leaves raw mode for good (later calls do
/// nothing). Async-signal-safe: an atomic swap and tcsetattr.
pub fn restore() {
    let p = ACTIVE.swap(null_mut(), Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: `p` came from `Box::into_raw` in `enter` and is never freed.
        let s = unsafe { &*p };
        let _ = set(s.fd, &s.orig);
    }
}

/// The terminal's settings while raw mode is on, for a stop (`orig`) or a continue (`raw`).
fn reapply(original: bool) {
    let p = ACTIVE.load(Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: as in `restore`.
        let s = unsafe { &*p };
        let _ = set(s.fd, if original { &s.orig } else { &s.raw });
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    match sig {
        libc::SIGTSTP => {
            reapply(true);
            // SAFETY: raise is async-signal-safe; SIGSTOP stops us until SIGCONT.
            unsafe { libc::raise(libc::SIGSTOP) };
            reapply(false);
        }
        libc::SIGCONT => reapply(false),
        _ => {
            restore();
            // SAFETY: signal and raise are async-signal-safe. The signal is blocked while
            // its handler runs, so the re-raised one is delivered, with the default
            // action, as the handler returns.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
        }
    }
}

/// Installs the signal handlers and the panic hook (once per process).
fn install_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in [
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTSTP,
            libc::SIGCONT,
        ] {
            // SAFETY: sigaction with a zeroed struct is valid; `on_signal` only calls
            // async-signal-safe functions. A signal the parent made us ignore (nohup,
            // background jobs of a shell without job control) stays ignored.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                    || old.sa_sigaction == libc::SIG_IGN
                {
                    continue;
                }
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            prev(info);
        }));
    });
}

/// The size of terminal `fd` as (columns, rows), if it is a terminal with a size.
pub fn size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = MaybeUninit::<libc::winsize>::zeroed();
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer, which is valid for it.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, ws.as_mut_ptr()) };
    // SAFETY: zeroed, and filled in on success.
    let ws = unsafe { ws.assume_init() };
    (r == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A new pseudo-terminal: (master, slave).
    pub fn openpty() -> (OwnedFd, OwnedFd) {
        let (mut m, mut s) = (-1, -1);
        // SAFETY: the out-pointers are valid; name, termios and winsize may be null.
        let r = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty: {}", io::Error::last_os_error());
        // SAFETY: openpty returned two new fds that nothing else owns.
        unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
    }

    /// The termios of terminal `fd`.
    pub fn termios(fd: RawFd) -> libc::termios {
        get(fd).unwrap()
    }

    /// The termios of `fd` as bytes, for comparing.
    pub fn termios_bytes(fd: RawFd) -> Vec<u8> {
        let t = get(fd).unwrap();
        // SAFETY: a termios is plain data; reading its bytes is fine.
        unsafe {
            std::slice::from_raw_parts(
                (&t as *const libc::termios).cast::<u8>(),
                std::mem::size_of::<libc::termios>(),
            )
        }
        .to_vec()
    }

    /// Raw mode, its restoring by the guard, and by a panic that unwinds through it.
    /// (One test: raw mode is process-wide state.)
    #[test]
    fn raw_mode_is_restored_by_drop_and_panic() {
        let (_m, s) = openpty();
        let fd = s.as_raw_fd();
        let before = termios_bytes(fd);
        {
            let _raw = RawMode::enter(fd).unwrap();
            let t = get(fd).unwrap();
            assert_eq!(t.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG), 0);
            assert_eq!(t.c_oflag & libc::OPOST, 0);
            assert_eq!(t.c_iflag & libc::ICRNL, 0);
        }
        assert_eq!(termios_bytes(fd), before);

        let r = std::panic::catch_unwind(|| {
            let _raw = RawMode::enter(fd).unwrap();
            panic!("inside raw mode");
        });
        assert!(r.is_err());
        assert_eq!(termios_bytes(fd), before);

        // Not a terminal: an error, and nothing is left behind.
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(RawMode::enter(f.as_raw_fd()).is_err());
        assert!(ACTIVE.load(Ordering::SeqCst).is_null());
    }

    #[test]
    fn size_of_a_pty() {
        let (m, s) = openpty();
        let ws = libc::winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        let r = unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0);
        assert_eq!(size(s.as_raw_fd()), Some((101, 33)));
        let f = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(size(f.as_raw_fd()), None);
    }
}
