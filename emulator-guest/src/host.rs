//! Everything that talks to the host: WASI on wasm32, the OS natively. **Only this module
//! touches WASI.** The rest of the emulator sees the host through these few functions.

use std::io::{self, Write};

/// Where the converter put the bundle; the converter finds `magic` in the module's data
/// segments and patches `addr` and `len` (see `converter/src/module.rs`).
#[repr(C)]
pub struct BundleLocator {
    magic: [u8; 16],
    addr: u64,
    len: u64,
}

#[used]
#[no_mangle]
pub static RVBOX_BUNDLE: BundleLocator = BundleLocator {
    magic: *b"rvbox-bundle-loc",
    addr: 0,
    len: 0,
};

/// Where the converter put the translation index (`cpu::aot_abi`), and the function
/// table slot of the first translated function; patched as `RVBOX_BUNDLE`.
#[repr(C)]
pub struct AotLocator {
    magic: [u8; 16],
    addr: u64,
    len: u64,
    table_base: u64,
}

#[used]
#[no_mangle]
pub static RVBOX_AOT: AotLocator = AotLocator {
    magic: *b"rvbox-aot-index!",
    addr: 0,
    len: 0,
    table_base: 0,
};

/// The translation index the converter placed in this module's memory, and the table
/// slot of the first translated function.
#[cfg(target_arch = "wasm32")]
pub fn embedded_aot() -> Option<(&'static [u8], u32)> {
    // SAFETY: volatile reads of a plain static (see `embedded_bundle`).
    let (addr, len, base) = unsafe {
        (
            std::ptr::read_volatile(&RVBOX_AOT.addr),
            std::ptr::read_volatile(&RVBOX_AOT.len),
            std::ptr::read_volatile(&RVBOX_AOT.table_base),
        )
    };
    Some((placed(addr, len)?, u32::try_from(base).ok()?))
}

/// The bundle the converter placed in this module's memory, if any.
#[cfg(target_arch = "wasm32")]
pub fn embedded_bundle() -> Option<&'static [u8]> {
    // SAFETY: volatile reads of a plain static, so the compiler cannot fold in the
    // unpatched zeros that it sees at build time.
    let (addr, len) = unsafe {
        (
            std::ptr::read_volatile(&RVBOX_BUNDLE.addr),
            std::ptr::read_volatile(&RVBOX_BUNDLE.len),
        )
    };
    placed(addr, len)
}

/// The `len` bytes at `addr` of a data segment the converter placed (`None` if `len` is
/// 0, the locator unpatched, or the range is not inside the memory).
#[cfg(target_arch = "wasm32")]
fn placed(addr: u64, len: u64) -> Option<&'static [u8]> {
    if len == 0 {
        return None;
    }
    let pages = core::arch::wasm32::memory_size(0) as u64 * 65536;
    if addr.checked_add(len)? > pages {
        return None;
    }
    // SAFETY: the converter placed an active data segment of `len` bytes at `addr`, above
    // the guest's original initial memory; the allocator only uses pages it gets from
    // `memory.grow`, which lie above that, so nothing else ever writes there, and the range
    // was just checked to lie inside the memory, which never shrinks.
    Some(unsafe { std::slice::from_raw_parts(addr as usize as *const u8, len as usize) })
}

#[cfg(target_arch = "wasm32")]
mod wasi {
    /// `__wasi_iovec_t`.
    #[repr(C)]
    pub struct Iovec {
        pub buf: *mut u8,
        pub len: usize,
    }

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        pub fn random_get(buf: *mut u8, len: usize) -> u16;
        pub fn fd_fdstat_get(fd: u32, stat: *mut u8) -> u16;
        pub fn fd_read(fd: u32, iovs: *const Iovec, iovs_len: usize, nread: *mut usize) -> u16;
        pub fn poll_oneoff(
            subs: *const u8,
            events: *mut u8,
            nsubs: usize,
            nevents: *mut usize,
        ) -> u16;
    }
}

/// Fills `buf` with random bytes from the host.
pub fn random(buf: &mut [u8]) {
    #[cfg(target_arch = "wasm32")]
    {
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes for the call.
        let r = unsafe { wasi::random_get(buf.as_mut_ptr(), buf.len()) };
        if r != 0 {
            fallback_random(buf);
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::io::Read;
        if std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(buf))
            .is_err()
        {
            fallback_random(buf);
        }
    }
}

/// Not cryptographic: only if the host refuses to give randomness.
fn fallback_random(buf: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    let s = std::collections::hash_map::RandomState::new();
    for chunk in buf.chunks_mut(8) {
        let mut h = s.build_hasher();
        h.write_u64(now_realtime_ns());
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// `true` if host fd 0, 1 or 2 is a terminal.
pub fn isatty(fd: u32) -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        // fdstat: u8 filetype, u16 flags, u64 rights base, u64 rights inheriting (24 bytes).
        let mut st = [0u8; 24];
        // SAFETY: `st` is a writable 24-byte buffer, the size of the WASI fdstat record the
        // host writes; wasm memory accesses need no alignment.
        let r = unsafe { wasi::fd_fdstat_get(fd, st.as_mut_ptr()) };
        // FILETYPE_CHARACTER_DEVICE = 2; a tty also lacks seek rights (bit 2: fd_seek).
        r == 0 && st[0] == 2 && u64::from_le_bytes(st[8..16].try_into().unwrap()) & 4 == 0
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::io::IsTerminal;
        match fd {
            0 => io::stdin().is_terminal(),
            1 => io::stdout().is_terminal(),
            2 => io::stderr().is_terminal(),
            _ => false,
        }
    }
}

/// Writes to host stdout (1) or stderr (2).
pub fn write(fd: u32, data: &[u8]) -> io::Result<usize> {
    match fd {
        1 => {
            let mut o = io::stdout().lock();
            let n = o.write(data)?;
            o.flush()?;
            Ok(n)
        }
        _ => io::stderr().write(data),
    }
}

/// Reads from host stdin (blocks). Unbuffered in a module: std's stdin reads ahead into a
/// buffer of its own, where `wait_stdin` cannot see what waits, so a reader of one byte at
/// a time would wait for input that is already there.
pub fn read_stdin(buf: &mut [u8]) -> io::Result<usize> {
    #[cfg(target_arch = "wasm32")]
    {
        let iov = wasi::Iovec {
            buf: buf.as_mut_ptr(),
            len: buf.len(),
        };
        let mut n = 0usize;
        // SAFETY: one iovec describing `buf`, valid and writable for the call; `n` is a
        // valid out-pointer.
        let r = unsafe { wasi::fd_read(0, &iov, 1, &mut n) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r as i32));
        }
        Ok(n)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::io::Read;
        io::stdin().lock().read(buf)
    }
}

/// Whether the host gives the module the clocks it needs (WASI `clock_time_get` of the
/// realtime and monotonic clocks); the error names the one that failed. Asked first at
/// boot: without it the first reading of a clock would end the module with a panic.
pub fn check_clocks() -> Result<(), String> {
    for (id, name) in [
        (libc::CLOCK_MONOTONIC, "monotonic"),
        (libc::CLOCK_REALTIME, "realtime"),
    ] {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
            let e = io::Error::last_os_error();
            return Err(format!(
                "the host gives this module no {name} clock (WASI clock_time_get: {e}); \
                 rvbox needs the realtime and monotonic clocks"
            ));
        }
    }
    Ok(())
}

/// Nanoseconds since the Unix epoch.
pub fn now_realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// How long the guest's machine had been up when the module started, as its
/// `CLOCK_MONOTONIC`, `/proc/uptime` and `sysinfo` tell it: a Linux machine is never
/// running programs at uptime zero, and programs compute times like "now - 1 s" that must
/// not come out negative.
pub const BOOT_UPTIME_NS: u64 = 100_000_000_000;

/// Nanoseconds of the guest's monotonic clock: since its machine "booted",
/// `BOOT_UPTIME_NS` before the module started.
pub fn now_monotonic_ns() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    BOOT_UPTIME_NS
        + START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
}

/// What the emulator keeps for its own data besides guest pages: page tables, decoded
/// code, files written at run time, pipe buffers...
pub const EMULATOR_RESERVE: u64 = 512 << 20;

/// The most guest memory this module can hold: the 4 GiB of a wasm32 memory less what is
/// in use now (the emulator and the bundle, at boot) and [`EMULATOR_RESERVE`]. Natively
/// the same as for a module with nothing in use, so tests see what a module would.
pub fn memory_ceiling() -> u64 {
    #[cfg(target_arch = "wasm32")]
    let in_use = core::arch::wasm32::memory_size(0) as u64 * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    let in_use = 0;
    (4u64 << 30).saturating_sub(in_use + EMULATOR_RESERVE)
}

/// Sleeps the whole module (there is only one guest thread to run).
pub fn sleep_ns(ns: u64) {
    std::thread::sleep(std::time::Duration::from_nanos(ns));
}

/// The status the guest ended with, for hosts that cannot take it from `proc_exit`:
/// wasmtime refuses statuses of 126 and above there, which a guest killed by a signal
/// (128+N) needs. `rvbox run` reads it through the `rvbox_exit_status` export.
static EXIT_STATUS: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The status recorded by `exit`, or -1 if the guest has not exited.
pub fn exit_status() -> i32 {
    EXIT_STATUS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Records `status` for the `rvbox_exit_status` export, for a module that ends by
/// returning from `_start` rather than by `exit`.
pub fn finish(status: i32) {
    let _ = io::stdout().flush();
    EXIT_STATUS.store(status, std::sync::atomic::Ordering::Relaxed);
}

/// Ends the module with `status`.
pub fn exit(status: i32) -> ! {
    let _ = io::stdout().flush();
    EXIT_STATUS.store(status, std::sync::atomic::Ordering::Relaxed);
    std::process::exit(status)
}

/// Waits until host stdin has input (or end of file) or `timeout_ns` passes (`None`: no
/// limit). `true` if stdin is ready. The module sleeps in the host meanwhile: no spinning.
pub fn wait_stdin(timeout_ns: Option<u64>) -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        // Two subscriptions (48 bytes each): fd_read on fd 0, and a relative clock.
        let mut subs = [0u8; 96];
        subs[8] = 1; // EVENTTYPE_FD_READ
        subs[16..20].copy_from_slice(&0u32.to_le_bytes());
        let mut n = 1;
        if let Some(t) = timeout_ns {
            let c = &mut subs[48..96];
            c[0..8].copy_from_slice(&1u64.to_le_bytes()); // userdata: the clock
            c[8] = 0; // EVENTTYPE_CLOCK
            c[16..20].copy_from_slice(&1u32.to_le_bytes()); // CLOCKID_MONOTONIC
            c[24..32].copy_from_slice(&t.to_le_bytes());
            n = 2;
        }
        let mut events = [0u8; 64];
        let mut nevents = 0usize;
        // SAFETY: `subs` holds `n` subscription records and `events` has room for two
        // 32-byte event records; `nevents` is a valid out-pointer. All live for the call.
        let r = unsafe { wasi::poll_oneoff(subs.as_ptr(), events.as_mut_ptr(), n, &mut nevents) };
        if r != 0 {
            return true; // cannot poll: let the read decide
        }
        (0..nevents.min(2)).any(|i| {
            let e = &events[i * 32..i * 32 + 32];
            e[10] == 1 // an fd_read event: stdin is ready (or has an error the read will see)
        })
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        // Natively there is no portable poll without libc here: report ready and let the
        // read block. Only the wasm build waits precisely.
        let _ = timeout_ns;
        true
    }
}
