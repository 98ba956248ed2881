//! Differential tests against `rvemu` (an independent RV64GC emulator): random instruction
//! sequences (32-bit and compressed, integer, M, A, F, D, forward branches and jumps) run on
//! both from the same random registers and memory; all registers and the data area must
//! agree afterwards.
//!
//! rvemu deviates from the RISC-V unprivileged spec for a few instructions, which are
//! therefore left out here and covered by table tests in `cpu_fp.rs` / `cpu_int.rs`:
//! - FCVT.{W,WU,L,LU}.{S,D}: rvemu uses `round()` (ties away from zero) and ignores `rm`;
//!   the spec rounds per `rm` (F chapter, "Single-Precision Floating-Point Conversion").
//! - FCVT.D.L, FCVT.S.L: rvemu converts the register as *unsigned*; the spec says signed.
//! - FCVT.S.D: rvemu keeps the double value unrounded; the spec rounds to single per `rm`.
//! - FMV.X.W: rvemu returns the low 32 bits of its f64 representation; the spec moves the
//!   single-precision bit pattern.
//! - FCLASS.{S,D}: rvemu returns the class number, not the one-hot mask the spec defines.
//! - FMIN/FMAX: rvemu uses Rust's `f64::min/max`, whose result for (-0, +0) is
//!   unspecified; the spec orders -0 < +0.
//! - FP rounding modes and fflags: rvemu ignores `rm` and never sets fflags, so only
//!   rm = RNE (static or dynamic with frm = 0) is generated and fflags are not compared.
//! - NaN results: rvemu produces host NaNs, RISC-V the canonical NaN, so NaNs compare equal
//!   to NaNs, and instructions that expose NaN bits (FSD, FSW, C.FSD, C.FSDSP, FMV.X.D) are
//!   left out; they are covered in `cpu_fp.rs`. For the same reason FSGNJ* (which copies a
//!   NaN's sign bit) only appears in single-instruction programs, where its inputs are the
//!   same bits on both sides.
//! - LR/SC: reservation rules differ (rvemu drops a reservation on any store to the same
//!   address); both are allowed by the spec, and LR/SC are covered in `cpu_int.rs`.

mod cpu_common;
use cpu_common::*;
use rvbox_guest::cpu::Exit;

const SP: u64 = DATA + 0x8000;
const S1: u64 = DATA + 0x4000;
const DATA_USED: u64 = 0x10000;

#[derive(Clone, Copy, Debug)]
enum Item {
    W(u32),
    H(u16),
    /// A branch (32-bit) or jal forward by `skip` items; bits have a zero offset.
    BranchW(u32, usize),
    /// c.beqz / c.bnez / c.j forward by `skip` items.
    BranchH(u16, usize),
    /// auipc rT, 0; jalr rd, off(rT) to `skip` items after the jalr.
    AuipcJalr(u32, u32, usize),
}

impl Item {
    fn len(&self) -> u64 {
        match self {
            Item::W(_) | Item::BranchW(..) => 4,
            Item::H(_) | Item::BranchH(..) => 2,
            Item::AuipcJalr(..) => 8,
        }
    }
}

/// A destination register that keeps the base pointers (sp, s1) and x0 intact.
fn rd(rng: &mut Rng) -> u32 {
    loop {
        let r = rng.below(32) as u32;
        if r != 0 && r != 2 && r != 9 {
            return r;
        }
    }
}
fn rs(rng: &mut Rng) -> u32 {
    rng.below(32) as u32
}
/// x8..x15 except s1 (x9), as a 3-bit rd' field.
fn rdp(rng: &mut Rng) -> u32 {
    loop {
        let r = rng.below(8) as u32;
        if r != 1 {
            return r;
        }
    }
}
fn base(rng: &mut Rng) -> u32 {
    if rng.below(2) == 0 {
        2
    } else {
        9
    }
}
fn imm12(rng: &mut Rng) -> i32 {
    match rng.below(3) {
        0 => rng.below(4096) as i32 - 2048,
        1 => rng.below(64) as i32 - 32,
        _ => rng.pick(&[0, 1, -1, 2047, -2048, 31, 32, 63]),
    }
}
/// Double-precision registers f0..f15, single-precision f16..f31 (rvemu keeps singles as
/// f64 values, so the two kinds are kept apart).
fn fd(rng: &mut Rng) -> u32 {
    rng.below(16) as u32
}
fn fs(rng: &mut Rng) -> u32 {
    16 + rng.below(16) as u32
}
fn rm(rng: &mut Rng) -> u32 {
    if rng.below(2) == 0 {
        0
    } else {
        7
    }
}

/// `alone`: the instruction is the only one of its program, so its FP inputs are the
/// initial values, never NaNs computed by an earlier instruction.
fn gen_item(rng: &mut Rng, alone: bool) -> Item {
    use Item::*;
    match rng.below(24) {
        // OP / OP-32 incl. M
        0..=2 => {
            let (f7, f3) = rng.pick(&[
                (0, 0),
                (0x20, 0),
                (0, 1),
                (0, 2),
                (0, 3),
                (0, 4),
                (0, 5),
                (0x20, 5),
                (0, 6),
                (0, 7),
                (1, 0),
                (1, 1),
                (1, 2),
                (1, 3),
                (1, 4),
                (1, 5),
                (1, 6),
                (1, 7),
            ]);
            W(r(0x33, rd(rng), f3, rs(rng), rs(rng), f7))
        }
        3 => {
            let (f7, f3) = rng.pick(&[
                (0, 0),
                (0x20, 0),
                (0, 1),
                (0, 5),
                (0x20, 5),
                (1, 0),
                (1, 4),
                (1, 5),
                (1, 6),
                (1, 7),
            ]);
            W(r(0x3b, rd(rng), f3, rs(rng), rs(rng), f7))
        }
        // OP-IMM / OP-IMM-32
        4..=5 => {
            let f3 = rng.below(8) as u32;
            let imm = match f3 {
                1 => rng.below(64) as i32,
                5 => rng.below(64) as i32 | if rng.below(2) == 0 { 0x400 } else { 0 },
                _ => imm12(rng),
            };
            W(i(0x13, rd(rng), f3, rs(rng), imm))
        }
        6 => {
            let (f3, imm) = match rng.below(4) {
                0 => (0, imm12(rng)),
                1 => (1, rng.below(32) as i32),
                2 => (5, rng.below(32) as i32),
                _ => (5, rng.below(32) as i32 | 0x400),
            };
            W(i(0x1b, rd(rng), f3, rs(rng), imm))
        }
        7 => W(u(
            if rng.below(2) == 0 { 0x37 } else { 0x17 },
            rd(rng),
            rng.next() as u32,
        )),
        // Loads and stores (integer; FP loads)
        8 => W(i(0x03, rd(rng), rng.below(7) as u32, base(rng), imm12(rng))),
        9 => W(s(0x23, rng.below(4) as u32, base(rng), rs(rng), imm12(rng))),
        10 => {
            if rng.below(2) == 0 {
                W(i(0x07, fd(rng), 3, base(rng), imm12(rng)))
            } else {
                W(i(0x07, fs(rng), 2, base(rng), imm12(rng)))
            }
        }
        // AMOs on s1 (aligned)
        11 => {
            let f5 = rng.pick(&[0x00u32, 0x01, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c]);
            let f3 = 2 + rng.below(2) as u32;
            W(r(
                0x2f,
                rd(rng),
                f3,
                9,
                rs(rng),
                f5 << 2 | rng.below(4) as u32,
            ))
        }
        // Control flow, forward only
        12 => {
            let skip = 1 + rng.below(4) as usize;
            if rng.below(4) == 0 {
                BranchW(0x6f | rd(rng) << 7, skip) // jal
            } else {
                let f3 = rng.pick(&[0u32, 1, 4, 5, 6, 7]);
                BranchW(b(f3, rs(rng), rs(rng), 0), skip)
            }
        }
        13 => AuipcJalr(rd(rng), rd(rng), rng.below(3) as usize),
        // Double precision
        14..=15 => {
            let (f7, r2) = rng.pick(&[
                (0x01, None),
                (0x05, None),
                (0x09, None),
                (0x0d, None),
                (0x2d, Some(0)),
            ]);
            let r2 = r2.unwrap_or_else(|| fd(rng));
            W(fop(f7, fd(rng), rm(rng), fd(rng), r2))
        }
        16 => {
            let op = rng.pick(&[0x43u32, 0x47, 0x4b, 0x4f]);
            if rng.below(2) == 0 {
                W(r4(op, fd(rng), rm(rng), fd(rng), fd(rng), fd(rng), 1))
            } else {
                W(r4(op, fs(rng), rm(rng), fs(rng), fs(rng), fs(rng), 0))
            }
        }
        17 => match rng.below(5) {
            0 if alone => W(fop(0x11, fd(rng), rng.below(3) as u32, fd(rng), fd(rng))), // fsgnj*.d
            0 | 1 => W(fop(0x51, rd(rng), rng.below(3) as u32, fd(rng), fd(rng))),      // fcmp.d
            2 => W(fop(0x69, fd(rng), rm(rng), rs(rng), rng.pick(&[0, 1, 3]))), // fcvt.d.{w,wu,lu}
            3 => W(fop(0x21, fd(rng), rm(rng), fs(rng), 0)),                    // fcvt.d.s
            _ => W(fop(0x79, fd(rng), 0, rs(rng), 0)),                          // fmv.d.x
        },
        // Single precision
        18..=19 => {
            let (f7, r2) = rng.pick(&[
                (0x00, None),
                (0x04, None),
                (0x08, None),
                (0x0c, None),
                (0x2c, Some(0)),
            ]);
            let r2 = r2.unwrap_or_else(|| fs(rng));
            W(fop(f7, fs(rng), rm(rng), fs(rng), r2))
        }
        20 => match rng.below(4) {
            0 if alone => W(fop(0x10, fs(rng), rng.below(3) as u32, fs(rng), fs(rng))), // fsgnj*.s
            0 | 1 => W(fop(0x50, rd(rng), rng.below(3) as u32, fs(rng), fs(rng))),      // fcmp.s
            2 => W(fop(0x68, fs(rng), rm(rng), rs(rng), rng.pick(&[0, 1, 3]))), // fcvt.s.{w,wu,lu}
            _ => W(fop(0x78, fs(rng), 0, rs(rng), 0)),                          // fmv.w.x
        },
        // Compressed
        _ => gen_compressed(rng),
    }
}

fn gen_compressed(rng: &mut Rng) -> Item {
    use Item::*;
    let nz6 = |rng: &mut Rng| loop {
        let v = rng.below(64) as u16;
        if v != 0 {
            return v;
        }
    };
    let ci = |f3: u16, rd: u32, imm: u16, op: u16| -> u16 {
        f3 << 13 | ((imm >> 5) & 1) << 12 | (rd as u16) << 7 | (imm & 31) << 2 | op
    };
    match rng.below(20) {
        0 => {
            // c.addi4spn rd', nzuimm
            let imm = (1 + rng.below(255) as u16) << 2; // 4..1020, multiple of 4
            let enc = ((imm >> 4) & 3) << 11
                | ((imm >> 6) & 0xf) << 7
                | ((imm >> 2) & 1) << 6
                | ((imm >> 3) & 1) << 5;
            H(enc | (rdp(rng) as u16) << 2)
        }
        1..=3 => {
            // c.fld / c.lw / c.ld / c.sw / c.sd with base s1 (rs1' = 1)
            let f3 = rng.pick(&[1u16, 2, 3, 6, 7]);
            let (hi, lo) = if f3 == 2 || f3 == 6 {
                let off = rng.below(32) as u16 * 4;
                ((off >> 3) & 7, ((off >> 2) & 1) << 1 | (off >> 6) & 1)
            } else {
                let off = rng.below(32) as u16 * 8;
                ((off >> 3) & 7, (off >> 6) & 3)
            };
            let r = if f3 >= 6 {
                rng.below(8) as u16
            } else {
                rdp(rng) as u16
            };
            H(f3 << 13 | hi << 10 | 1 << 7 | lo << 5 | r << 2)
        }
        4 => H(ci(0, rd(rng), nz6(rng), 1)), // c.addi
        5 => H(ci(1, rd(rng), rng.below(64) as u16, 1)), // c.addiw
        6 => H(ci(2, rd(rng), rng.below(64) as u16, 1)), // c.li
        7 => H(ci(3, rd(rng), nz6(rng), 1)), // c.lui (rd != 2)
        8..=9 => {
            // c.srli / c.srai / c.andi / c.sub.. group on rd' (not s1)
            let r = rdp(rng) as u16;
            match rng.below(4) as u16 {
                f2 @ 0..=1 => H(0x8001 | (f2 << 10) | ci(0, r as u32, nz6(rng), 0) & 0x107c),
                2 => H(0x8001 | (2 << 10) | ci(0, r as u32, rng.below(64) as u16, 0) & 0x107c),
                _ => {
                    let (b12, f) =
                        rng.pick(&[(0u16, 0u16), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]);
                    H(0x8c01 | b12 << 12 | r << 7 | f << 5 | (rng.below(8) as u16) << 2)
                }
            }
        }
        10 => H(ci(0, rd(rng), nz6(rng), 2)), // c.slli
        11..=12 => {
            // c.fldsp / c.lwsp / c.ldsp
            match rng.below(3) {
                0 => {
                    // c.fldsp: uimm[5] = c[12], uimm[4:3] = c[6:5], uimm[8:6] = c[4:2]
                    let off = rng.below(64) as u16 * 8;
                    H(0x2002
                        | ((off >> 5) & 1) << 12
                        | (fd(rng) as u16) << 7
                        | ((off >> 3) & 3) << 5
                        | ((off >> 6) & 7) << 2)
                }
                1 => {
                    let off = rng.below(64) as u16 * 4;
                    H(0x4002
                        | ((off >> 5) & 1) << 12
                        | (rd(rng) as u16) << 7
                        | ((off >> 2) & 7) << 4
                        | ((off >> 6) & 3) << 2)
                }
                _ => {
                    let off = rng.below(64) as u16 * 8;
                    H(0x6002
                        | ((off >> 5) & 1) << 12
                        | (rd(rng) as u16) << 7
                        | ((off >> 3) & 3) << 5
                        | ((off >> 6) & 7) << 2)
                }
            }
        }
        13 => {
            // c.mv / c.add
            let r2 = 1 + rng.below(31) as u16;
            let add = rng.below(2) as u16;
            H(0x8002 | add << 12 | (rd(rng) as u16) << 7 | r2 << 2)
        }
        14 => {
            // c.swsp / c.sdsp
            if rng.below(2) == 0 {
                let off = rng.below(64) as u16 * 4;
                H(0xc002
                    | ((off >> 2) & 0xf) << 9
                    | ((off >> 6) & 3) << 7
                    | (rng.below(32) as u16) << 2)
            } else {
                let off = rng.below(64) as u16 * 8;
                H(0xe002
                    | ((off >> 3) & 7) << 10
                    | ((off >> 6) & 7) << 7
                    | (rng.below(32) as u16) << 2)
            }
        }
        15 => {
            // c.beqz / c.bnez on any x8..x15
            let f3 = 6 + rng.below(2) as u16;
            BranchH(
                f3 << 13 | (rng.below(8) as u16) << 7 | 1,
                1 + rng.below(4) as usize,
            )
        }
        16 => BranchH(0xa001, 1 + rng.below(4) as usize), // c.j
        _ => H(0x0001),                                   // c.nop
    }
}

/// Lays out the items, resolving forward targets; returns the code and its end address.
fn assemble(items: &[Item]) -> Code {
    let mut addr = vec![0u64; items.len() + 1];
    for (k, it) in items.iter().enumerate() {
        addr[k + 1] = addr[k] + it.len();
    }
    let target = |k: usize, skip: usize| addr[(k + 1 + skip).min(items.len())];
    let mut c = Code::default();
    for (k, it) in items.iter().enumerate() {
        match *it {
            Item::W(w) => {
                c.w(w);
            }
            Item::H(h) => {
                c.h(h);
            }
            Item::BranchW(w, skip) => {
                let off = (target(k, skip) - addr[k]) as i32;
                if w & 0x7f == 0x6f {
                    c.w(j((w >> 7) & 31, off));
                } else {
                    c.w(b((w >> 12) & 7, (w >> 15) & 31, (w >> 20) & 31, off));
                }
            }
            Item::BranchH(h, skip) => {
                let off = (target(k, skip) - addr[k]) as u32;
                if h == 0xa001 {
                    // c.j offset[11|4|9:8|10|6|7|3:1|5]
                    let e = ((off >> 11) & 1) << 12
                        | ((off >> 4) & 1) << 11
                        | ((off >> 8) & 3) << 9
                        | ((off >> 10) & 1) << 8
                        | ((off >> 6) & 1) << 7
                        | ((off >> 7) & 1) << 6
                        | ((off >> 1) & 7) << 3
                        | ((off >> 5) & 1) << 2;
                    c.h(0xa001 | e as u16);
                } else {
                    // c.beqz/bnez offset[8|4:3] = c[12|11:10], [7:6|2:1|5] = c[6:5|4:3|2]
                    let e = ((off >> 8) & 1) << 12
                        | ((off >> 3) & 3) << 10
                        | ((off >> 6) & 3) << 5
                        | ((off >> 1) & 3) << 3
                        | ((off >> 5) & 1) << 2;
                    c.h(h | e as u16);
                }
            }
            Item::AuipcJalr(t, d, skip) => {
                let off = (target(k, skip) - addr[k]) as i32;
                c.w(u(0x17, t, 0)).w(i(0x67, d, 0, t, off));
            }
        }
    }
    c
}

struct Start {
    x: [u64; 32],
    f: [u64; 32],
    data: Vec<u8>,
}

fn random_start(rng: &mut Rng) -> Start {
    let mut x = [0u64; 32];
    for v in x.iter_mut().skip(1) {
        *v = rng.int();
    }
    x[2] = SP;
    x[9] = S1;
    let mut f = [0u64; 32];
    for (k, v) in f.iter_mut().enumerate() {
        let d = match rng.below(4) {
            0 => rng.pick(&[
                0.0,
                -0.0,
                1.0,
                -1.5,
                1e300,
                -1e-300,
                5e-324,
                f64::INFINITY,
                3.0,
            ]),
            1 => (rng.next() as i64 % 1000) as f64 / 7.0,
            _ => f64::from_bits(rng.next()),
        };
        *v = if k < 16 {
            d.to_bits()
        } else {
            let s = d as f32;
            s.to_bits() as u64 | 0xffff_ffff_0000_0000
        };
    }
    let mut data = vec![0u8; DATA_USED as usize];
    for chunk in data.chunks_mut(8) {
        let v = match rng.below(3) {
            0 => rng.int(),
            1 => 1.5f64.to_bits() ^ (rng.next() & 0xffff),
            _ => rng.next(),
        };
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    Start { x, f, data }
}

fn f_equal(ours: u64, theirs: f64, single: bool) -> bool {
    if single {
        if ours >> 32 != 0xffff_ffff {
            return false;
        }
        let a = f32::from_bits(ours as u32);
        let b = theirs as f32;
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    } else {
        let a = f64::from_bits(ours);
        (a.is_nan() && theirs.is_nan()) || ours == theirs.to_bits()
    }
}

fn run_both(items: &[Item], st: &Start, emu: &mut rvemu::cpu::Cpu, seq: usize) {
    let code = assemble(items);
    let end = CODE + code.len();
    // Ours.
    let mut m = Machine::new();
    m.load(&code);
    m.mem.poke(end, &EBREAK.to_le_bytes()).unwrap();
    m.mem.write_bytes(DATA, &st.data).unwrap();
    m.cpu.x = st.x;
    m.cpu.f = st.f;
    assert_eq!(m.run(100_000), Exit::Ebreak, "seq {seq}");
    assert_eq!(m.cpu.pc, end);
    // rvemu.
    for (k, byte) in code.0.iter().enumerate() {
        emu.bus.write(CODE + k as u64, *byte as u64, 8).unwrap();
    }
    for (k, chunk) in st.data.chunks(8).enumerate() {
        let v = u64::from_le_bytes(chunk.try_into().unwrap());
        emu.bus.write(DATA + 8 * k as u64, v, 64).unwrap();
    }
    for k in 0..32 {
        emu.xregs.write(k, st.x[k as usize]);
        let v = st.f[k as usize];
        let fv = if k < 16 {
            f64::from_bits(v)
        } else {
            f32::from_bits(v as u32) as f64
        };
        emu.fregs.write(k, fv);
    }
    emu.pc = CODE;
    let mut steps = 0;
    while emu.pc != end {
        let pc = emu.pc;
        if let Err(e) = emu.execute() {
            panic!("seq {seq}: rvemu exception {e:?} at {pc:#x}");
        }
        steps += 1;
        assert!(steps < 100_000, "seq {seq}: rvemu ran away");
    }
    // Compare.
    let ctx = || {
        let mut s = format!("seq {seq}:\n");
        let mut pc = CODE;
        for it in items {
            s += &format!("  {pc:#x}: {it:x?}\n");
            pc += it.len();
        }
        s
    };
    for k in 0..32 {
        assert_eq!(
            m.cpu.x[k],
            emu.xregs.read(k as u64),
            "x{k} differs in {}",
            ctx()
        );
    }
    for k in 0..32 {
        let theirs = emu.fregs.read(k as u64);
        assert!(
            f_equal(m.cpu.f[k], theirs, k >= 16),
            "f{k} differs: ours {:#x} rvemu {:#x} in {}",
            m.cpu.f[k],
            theirs.to_bits(),
            ctx()
        );
    }
    let mut ours = vec![0u8; DATA_USED as usize];
    m.mem.read_bytes(DATA, &mut ours).unwrap();
    for (k, chunk) in ours.chunks(8).enumerate() {
        let a = DATA + 8 * k as u64;
        let theirs = emu.bus.read(a, 64).unwrap();
        assert_eq!(
            u64::from_le_bytes(chunk.try_into().unwrap()),
            theirs,
            "memory at {a:#x} differs in {}",
            ctx()
        );
    }
}

/// A fresh rvemu CPU. Its constructor writes `rvemu.dts` (and tries to run `dtc`) in the
/// current directory, so run it from the temporary directory, not the source tree.
fn new_rvemu() -> rvemu::cpu::Cpu {
    std::env::set_current_dir(std::env::temp_dir()).unwrap();
    rvemu::cpu::Cpu::new()
}

#[test]
fn random_sequences_match_rvemu() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut emu = new_rvemu();
    for seq in 0..400 {
        let n = 20 + rng.below(120) as usize;
        let items: Vec<Item> = (0..n).map(|_| gen_item(&mut rng, false)).collect();
        let st = random_start(&mut rng);
        run_both(&items, &st, &mut emu, seq);
    }
}

#[test]
fn each_instruction_kind_matches_rvemu() {
    // Single instructions from every generator class, many times each, so a mismatch is
    // reported on the smallest possible program.
    let mut rng = Rng(42);
    let mut emu = new_rvemu();
    for seq in 0..6000 {
        let items = [gen_item(&mut rng, true)];
        let st = random_start(&mut rng);
        run_both(&items, &st, &mut emu, seq);
    }
}
