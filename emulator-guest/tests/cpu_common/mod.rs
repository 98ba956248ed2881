//! Shared helpers for the CPU tests: instruction encoders and a tiny machine.
#![allow(dead_code)]

use rvbox_guest::cpu::{Cpu, Exit};
use rvbox_guest::mem::{prot, Memory};

/// Where test code is placed (also DRAM_BASE in rvemu, so both run the same addresses).
pub const CODE: u64 = 0x8000_0000;
pub const CODE_SIZE: u64 = 0x10_0000;
/// A read/write data area.
pub const DATA: u64 = 0x8010_0000;
pub const DATA_SIZE: u64 = 0x10_0000;

pub fn r(op: u32, rd: u32, f3: u32, rs1: u32, rs2: u32, f7: u32) -> u32 {
    op | rd << 7 | f3 << 12 | rs1 << 15 | rs2 << 20 | f7 << 25
}
pub fn i(op: u32, rd: u32, f3: u32, rs1: u32, imm: i32) -> u32 {
    op | rd << 7 | f3 << 12 | rs1 << 15 | ((imm as u32) & 0xfff) << 20
}
pub fn s(op: u32, f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    op | (imm & 31) << 7 | f3 << 12 | rs1 << 15 | rs2 << 20 | ((imm >> 5) & 0x7f) << 25
}
pub fn b(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let i = imm as u32;
    0x63 | ((i >> 11) & 1) << 7
        | ((i >> 1) & 0xf) << 8
        | f3 << 12
        | rs1 << 15
        | rs2 << 20
        | ((i >> 5) & 0x3f) << 25
        | ((i >> 12) & 1) << 31
}
pub fn u(op: u32, rd: u32, imm: u32) -> u32 {
    op | rd << 7 | (imm & 0xfffff) << 12
}
pub fn j(rd: u32, imm: i32) -> u32 {
    let i = imm as u32;
    0x6f | rd << 7
        | ((i >> 12) & 0xff) << 12
        | ((i >> 11) & 1) << 20
        | ((i >> 1) & 0x3ff) << 21
        | ((i >> 20) & 1) << 31
}
/// An R4-type (FMA) instruction: fmt 0 = S, 1 = D.
pub fn r4(op: u32, rd: u32, rm: u32, rs1: u32, rs2: u32, rs3: u32, fmt: u32) -> u32 {
    op | rd << 7 | rm << 12 | rs1 << 15 | rs2 << 20 | fmt << 25 | rs3 << 27
}
/// An OP-FP instruction.
pub fn fop(f7: u32, rd: u32, rm: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x53, rd, rm, rs1, rs2, f7)
}
pub fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(0x13, rd, 0, rs1, imm)
}
pub fn csr(f3: u32, rd: u32, csr: u32, rs1: u32) -> u32 {
    0x73 | rd << 7 | f3 << 12 | rs1 << 15 | csr << 20
}
pub const EBREAK: u32 = 0x0010_0073;
pub const ECALL: u32 = 0x0000_0073;

/// Machine code being assembled: a mix of 16- and 32-bit instructions.
#[derive(Default, Clone)]
pub struct Code(pub Vec<u8>);

impl Code {
    pub fn w(&mut self, insn: u32) -> &mut Self {
        self.0.extend_from_slice(&insn.to_le_bytes());
        self
    }
    pub fn h(&mut self, insn: u16) -> &mut Self {
        self.0.extend_from_slice(&insn.to_le_bytes());
        self
    }
    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }
    /// Loads a 64-bit constant into `rd` (lui/addiw, then slli/ori; clobbers only rd).
    pub fn li(&mut self, rd: u32, v: u64) -> &mut Self {
        self.li32(rd, (v >> 32) as i32);
        let lo = v as u32;
        for (shift, part) in [(11, lo >> 21), (11, (lo >> 10) & 0x7ff), (10, lo & 0x3ff)] {
            self.w(i(0x13, rd, 1, rd, shift)); // slli
            self.w(i(0x13, rd, 6, rd, part as i32)); // ori (< 0x800: not sign-extended)
        }
        self
    }
    /// Loads a sign-extended 32-bit constant.
    pub fn li32(&mut self, rd: u32, v: i32) -> &mut Self {
        let lo = (v << 20) >> 20;
        let hi = (v.wrapping_sub(lo) as u32) >> 12;
        self.w(u(0x37, rd, hi));
        self.w(i(0x1b, rd, 0, rd, lo)); // addiw
        self
    }
}

pub struct Machine {
    pub cpu: Cpu,
    pub mem: Memory,
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

impl Machine {
    pub fn new() -> Machine {
        let mut mem = Memory::new();
        mem.map(CODE, CODE_SIZE, prot::READ | prot::EXEC);
        mem.map(DATA, DATA_SIZE, prot::READ | prot::WRITE);
        let mut cpu = Cpu::new();
        cpu.pc = CODE;
        Machine { cpu, mem }
    }

    pub fn load(&mut self, code: &Code) {
        self.mem.poke(CODE, &code.0).unwrap();
    }

    /// Runs `code` followed by an ebreak from CODE; panics on any other exit.
    pub fn run_code(&mut self, code: &Code) {
        let mut c = code.clone();
        c.w(EBREAK);
        self.load(&c);
        self.cpu.pc = CODE;
        let e = self.run(1_000_000);
        assert_eq!(e, Exit::Ebreak, "{:?}", self.cpu);
        assert_eq!(self.cpu.pc, CODE + code.len());
    }

    pub fn run(&mut self, budget: u64) -> Exit {
        self.cpu.run(&mut self.mem, budget)
    }
}

/// Runs one instruction with the given integer registers; returns the CPU after it.
pub fn exec1(insn: u32, regs: &[(usize, u64)]) -> Cpu {
    let mut m = Machine::new();
    for &(r, v) in regs {
        m.cpu.x[r] = v;
    }
    let mut c = Code::default();
    if insn & 3 == 3 {
        c.w(insn);
    } else {
        c.h(insn as u16);
    }
    m.run_code(&c);
    m.cpu
}

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    /// An "interesting" 64-bit integer: edge values, small values or random bits.
    pub fn int(&mut self) -> u64 {
        match self.below(6) {
            0 => self.pick(&[
                0,
                1,
                u64::MAX,
                i64::MIN as u64,
                i64::MAX as u64,
                0x8000_0000,
                0x7fff_ffff,
                0xffff_ffff,
                0xffff_ffff_8000_0000,
                2,
                63,
                64,
                31,
                32,
            ]),
            1 => self.below(64),
            2 => (self.next() as i64 >> self.below(64)) as u64,
            _ => self.next(),
        }
    }
}
