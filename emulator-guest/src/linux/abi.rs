//! Linux riscv64 structures as bytes: `struct stat`, `struct statx`, `linux_dirent64`,
//! `struct utsname`, `struct termios`, `struct winsize`, `struct timespec`; ioctl request
//! numbers and clock ids.

use crate::vfs::Timespec;

/// What `stat` reports about a file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub size: u64,
    pub blksize: u32,
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

impl Stat {
    /// `struct stat` (asm-generic, 128 bytes).
    pub fn encode(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        put(&mut b, 0, &self.dev.to_le_bytes());
        put(&mut b, 8, &self.ino.to_le_bytes());
        put(&mut b, 16, &self.mode.to_le_bytes());
        put(&mut b, 20, &self.nlink.to_le_bytes());
        put(&mut b, 24, &self.uid.to_le_bytes());
        put(&mut b, 28, &self.gid.to_le_bytes());
        put(&mut b, 32, &(self.rdev as u64).to_le_bytes());
        put(&mut b, 48, &self.size.to_le_bytes());
        put(&mut b, 56, &self.blksize.to_le_bytes());
        put(&mut b, 64, &self.blocks.to_le_bytes());
        for (i, t) in [self.atime, self.mtime, self.ctime].iter().enumerate() {
            put(&mut b, 72 + i * 16, &t.sec.to_le_bytes());
            put(&mut b, 80 + i * 16, &(t.nsec as u64).to_le_bytes());
        }
        b
    }

    /// `struct statx` (256 bytes) with the basic fields.
    pub fn encode_statx(&self) -> [u8; 256] {
        const STATX_BASIC_STATS: u32 = 0x7ff;
        let mut b = [0u8; 256];
        put(&mut b, 0, &STATX_BASIC_STATS.to_le_bytes());
        put(&mut b, 4, &self.blksize.to_le_bytes());
        put(&mut b, 16, &self.nlink.to_le_bytes());
        put(&mut b, 20, &self.uid.to_le_bytes());
        put(&mut b, 24, &self.gid.to_le_bytes());
        put(&mut b, 28, &(self.mode as u16).to_le_bytes());
        put(&mut b, 32, &self.ino.to_le_bytes());
        put(&mut b, 40, &self.size.to_le_bytes());
        put(&mut b, 48, &self.blocks.to_le_bytes());
        // atime, btime (left zero: not supported, and not in the mask), ctime, mtime.
        for (at, t) in [(64, self.atime), (96, self.ctime), (112, self.mtime)] {
            put(&mut b, at, &t.sec.to_le_bytes());
            put(&mut b, at + 8, &t.nsec.to_le_bytes());
        }
        let (maj, min) = decode_dev(self.rdev);
        put(&mut b, 128, &maj.to_le_bytes());
        put(&mut b, 132, &min.to_le_bytes());
        let (dmaj, dmin) = decode_dev(self.dev as u32);
        put(&mut b, 136, &dmaj.to_le_bytes());
        put(&mut b, 140, &dmin.to_le_bytes());
        b
    }
}

/// Linux `new_decode_dev`.
pub fn decode_dev(dev: u32) -> (u32, u32) {
    ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

/// Appends one `linux_dirent64` record; `off` is the position after it.
pub fn push_dirent64(out: &mut Vec<u8>, ino: u64, off: u64, dtype: u8, name: &[u8]) {
    let reclen = (19 + name.len() + 1).next_multiple_of(8);
    let start = out.len();
    out.extend_from_slice(&ino.to_le_bytes());
    out.extend_from_slice(&off.to_le_bytes());
    out.extend_from_slice(&(reclen as u16).to_le_bytes());
    out.push(dtype);
    out.extend_from_slice(name);
    out.resize(start + reclen, 0);
}

/// `struct utsname`: six fields of 65 bytes.
pub fn utsname(fields: [&[u8]; 6]) -> [u8; 390] {
    let mut b = [0u8; 390];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        b[i * 65..i * 65 + n].copy_from_slice(&f[..n]);
    }
    b
}

pub fn timespec(t: Timespec) -> [u8; 16] {
    let mut b = [0u8; 16];
    put(&mut b, 0, &t.sec.to_le_bytes());
    put(&mut b, 8, &(t.nsec as u64).to_le_bytes());
    b
}

pub fn ns_to_timespec(ns: u64) -> [u8; 16] {
    timespec(Timespec {
        sec: (ns / 1_000_000_000) as i64,
        nsec: (ns % 1_000_000_000) as u32,
    })
}

/// Kernel `struct termios` and `struct termios2` (asm-generic: 4 flags, the line
/// discipline, 19 control characters; `termios2` adds the input and output speeds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; 19],
    /// Input speed in baud (`c_ispeed`: only `termios2` carries it).
    pub ispeed: u32,
    /// Output speed in baud (`c_ospeed`).
    pub ospeed: u32,
}

impl Default for Termios {
    /// What Linux gives a fresh pty (`tty_std_termios` with the pty slave's `c_cflag`):
    /// `stty -a` shows `icrnl ixon opost onlcr isig icanon iexten echo echoe echok echoctl
    /// echoke cs8 cread`, 38400 baud, `intr ^C quit ^\ erase ^? kill ^U eof ^D start ^Q
    /// stop ^S susp ^Z rprnt ^R werase ^W lnext ^V discard ^O min 1 time 0`.
    fn default() -> Self {
        Termios {
            iflag: 0o2400,   // ICRNL | IXON
            oflag: 0o5,      // OPOST | ONLCR
            cflag: 0o277,    // B38400 | CS8 | CREAD
            lflag: 0o105073, // ISIG ICANON ECHO ECHOE ECHOK ECHOCTL ECHOKE IEXTEN
            line: 0,
            cc: [
                3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0,
                0,
            ],
            ispeed: 38400,
            ospeed: 38400,
        }
    }
}

impl Termios {
    /// `struct termios` (TCGETS/TCSETS*).
    pub const LEN: usize = 36;
    /// `struct termios2` (TCGETS2/TCSETS2*).
    pub const LEN2: usize = 44;

    pub fn encode(&self) -> [u8; 36] {
        let mut b = [0u8; 36];
        put(&mut b, 0, &self.iflag.to_le_bytes());
        put(&mut b, 4, &self.oflag.to_le_bytes());
        put(&mut b, 8, &self.cflag.to_le_bytes());
        put(&mut b, 12, &self.lflag.to_le_bytes());
        b[16] = self.line;
        b[17..36].copy_from_slice(&self.cc);
        b
    }

    pub fn encode2(&self) -> [u8; 44] {
        let mut b = [0u8; 44];
        b[..36].copy_from_slice(&self.encode());
        put(&mut b, 36, &self.ispeed.to_le_bytes());
        put(&mut b, 40, &self.ospeed.to_le_bytes());
        b
    }

    /// A `struct termios`; the speeds, which it lacks, are left 0.
    pub fn decode(b: &[u8; 36]) -> Termios {
        let w = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let mut cc = [0u8; 19];
        cc.copy_from_slice(&b[17..36]);
        Termios {
            iflag: w(0),
            oflag: w(4),
            cflag: w(8),
            lflag: w(12),
            line: b[16],
            cc,
            ispeed: 0,
            ospeed: 0,
        }
    }

    pub fn decode2(b: &[u8; 44]) -> Termios {
        let w = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        Termios {
            ispeed: w(36),
            ospeed: w(40),
            ..Termios::decode(b[..36].try_into().unwrap())
        }
    }
}

/// Kernel `struct winsize`: rows, columns, and the size in pixels (unused, 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Winsize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

impl Winsize {
    pub const LEN: usize = 8;

    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        for (i, v) in [self.rows, self.cols, self.xpixel, self.ypixel]
            .iter()
            .enumerate()
        {
            put(&mut b, i * 2, &v.to_le_bytes());
        }
        b
    }

    pub fn decode(b: &[u8; 8]) -> Winsize {
        let h = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Winsize {
            rows: h(0),
            cols: h(2),
            xpixel: h(4),
            ypixel: h(6),
        }
    }
}

/// ioctl request numbers (asm-generic/ioctls.h). Linux takes the request as an `unsigned
/// int`: callers match on the low 32 bits of the register.
pub mod ioctl {
    pub const TCGETS: u32 = 0x5401;
    pub const TCSETS: u32 = 0x5402;
    pub const TCSETSW: u32 = 0x5403;
    pub const TCSETSF: u32 = 0x5404;
    pub const TCSBRK: u32 = 0x5409;
    pub const TCXONC: u32 = 0x540a;
    pub const TCFLSH: u32 = 0x540b;
    pub const TIOCEXCL: u32 = 0x540c;
    pub const TIOCNXCL: u32 = 0x540d;
    pub const TIOCSCTTY: u32 = 0x540e;
    pub const TIOCGPGRP: u32 = 0x540f;
    pub const TIOCSPGRP: u32 = 0x5410;
    pub const TIOCOUTQ: u32 = 0x5411;
    pub const TIOCSTI: u32 = 0x5412;
    pub const TIOCGWINSZ: u32 = 0x5413;
    pub const TIOCSWINSZ: u32 = 0x5414;
    pub const FIONREAD: u32 = 0x541b;
    pub const FIONBIO: u32 = 0x5421;
    pub const TIOCNOTTY: u32 = 0x5422;
    pub const TIOCSETD: u32 = 0x5423;
    pub const TIOCGETD: u32 = 0x5424;
    pub const TCSBRKP: u32 = 0x5425;
    pub const TIOCSBRK: u32 = 0x5427;
    pub const TIOCCBRK: u32 = 0x5428;
    pub const TIOCGSID: u32 = 0x5429;
    pub const FIONCLEX: u32 = 0x5450;
    pub const FIOCLEX: u32 = 0x5451;
    /// `_IOR('T', 0x2A, struct termios2)`.
    pub const TCGETS2: u32 = 0x802c_542a;
    pub const TCSETS2: u32 = 0x402c_542b;
    pub const TCSETSW2: u32 = 0x402c_542c;
    pub const TCSETSF2: u32 = 0x402c_542d;
    /// `_IOR('T', 0x40, int)`.
    pub const TIOCGEXCL: u32 = 0x8004_5440;
}

/// Clock ids (`clock_gettime`, `timer_create`, `timerfd_create`).
pub mod clock {
    pub const CLOCK_REALTIME: u64 = 0;
    pub const CLOCK_MONOTONIC: u64 = 1;
    pub const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
    pub const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
    pub const CLOCK_MONOTONIC_RAW: u64 = 4;
    pub const CLOCK_REALTIME_COARSE: u64 = 5;
    pub const CLOCK_MONOTONIC_COARSE: u64 = 6;
    pub const CLOCK_BOOTTIME: u64 = 7;
    pub const CLOCK_REALTIME_ALARM: u64 = 8;
    pub const CLOCK_BOOTTIME_ALARM: u64 = 9;
}
