//! The interpreter loop: runs decoded blocks from the cache.

use super::cache::{Block, Cache, Uop};
use super::decode::Op;
use super::fp::{self, nanbox, unbox, F32, F64, NX, RNE};
use super::ops::fp_op;
use super::sem;
use super::{Cpu, Exit};
use crate::mem::Memory;

/// How a block was left.
enum Leave {
    /// To `to`, after `ran` of its ops ran.
    Jump { to: u64, ran: u32 },
    /// Through `fence.i`: as `Jump`, and decoded code must be dropped.
    FenceI { to: u64, ran: u32 },
    /// Out of `run`, at op `at` (which did not run).
    Stop { exit: Exit, at: u32 },
}

const SIGN32: u64 = 0x8000_0000;
const SIGN64: u64 = 1 << 63;

impl Cpu {
    /// Runs until an exit; see `Exit`. Returns `Budget` after at least `budget`
    /// instructions (checked at block ends, so up to a block more may run).
    ///
    /// Never inlined: V8 (Node, browsers) moves a function to its optimizing tier only
    /// when it is next called, with no on-stack replacement for Wasm, so the interpreter
    /// loop must live in a function that returns every budget slice. Inlined into the
    /// kernel's run loop (entered once), it stayed in V8's baseline tier: 126-150 MIPS
    /// under Node instead of about 320.
    #[inline(never)]
    pub fn run(&mut self, mem: &mut Memory, budget: u64) -> Exit {
        let mut cache = self
            .cache
            .take()
            .unwrap_or_else(|| Box::new(Cache::new(mem.code_generation())));
        // Mappings change only in system calls, between runs: one check per run.
        let generation = mem.code_generation();
        if generation != cache.generation {
            cache.flush();
            cache.generation = generation;
        }
        let exit = self.run_blocks(&mut cache, mem, budget);
        let entered = std::mem::take(&mut cache.entered);
        let aot = (
            std::mem::take(&mut cache.aot_calls),
            std::mem::take(&mut cache.aot_insns),
            std::mem::take(&mut cache.aot_interp),
        );
        super::count(|c| {
            c.blocks += entered;
            c.aot_calls += aot.0;
            c.aot_insns += aot.1;
            c.aot_interp += aot.2;
        });
        if exit != Exit::Budget {
            // Like the kernel's trap return path, a trap drops the LR reservation.
            self.reservation = None;
        }
        self.cache = Some(cache);
        exit
    }

    fn run_blocks(&mut self, cache: &mut Cache, mem: &mut Memory, budget: u64) -> Exit {
        let mut pc = self.pc;
        let start = self.instret;
        // Translated code returned asking for the interpreter at `pc`.
        let mut interpret = false;
        loop {
            if self.instret - start >= budget {
                self.pc = pc;
                return Exit::Budget;
            }
            let bi = match cache.lookup(pc, mem) {
                Ok(b) => b,
                Err(f) => {
                    self.pc = pc;
                    return Exit::Fault(f);
                }
            };
            cache.entered += 1;
            let blk = &cache.blocks[bi as usize];
            if let Some(e) = blk.aot.filter(|_| !interpret) {
                let before = self.instret;
                let left = budget - (self.instret - start);
                cache.jumps.remember(pc, e);
                let status = super::aot::call(e, self, mem, left, &cache.jumps);
                cache.aot_insns += self.instret - before;
                cache.aot_calls += 1;
                pc = self.pc;
                interpret = status == super::aot_abi::INTERP;
                cache.aot_interp += interpret as u64;
                continue;
            }
            interpret = false;
            let uops = &cache.uops[blk.start as usize..(blk.start + blk.len) as usize];
            match self.run_block(mem, blk, uops) {
                Leave::Jump { to, ran } => {
                    self.instret += ran as u64;
                    pc = to;
                }
                Leave::FenceI { to, ran } => {
                    self.instret += ran as u64;
                    pc = to;
                    cache.flush();
                }
                Leave::Stop { exit, at } => {
                    self.pc = blk.pc.wrapping_add(uops[at as usize].off as u64);
                    self.instret += at as u64;
                    return exit;
                }
            }
        }
    }

    /// Runs one block until it leaves. Inlined into `run_blocks` (as a call of its own per
    /// block it was about 20% slower under wasmtime); its loop keeps few live values, so
    /// that Cranelift keeps them in registers.
    #[inline(always)]
    fn run_block(&mut self, mem: &mut Memory, blk: &Block, uops: &[Uop]) -> Leave {
        let index = |d: &Uop| d.idx as u32;
        macro_rules! x {
            ($i:expr) => {
                self.x[($i & 31) as usize]
            };
        }
        macro_rules! f {
            ($i:expr) => {
                self.f[($i & 31) as usize]
            };
        }
        // Leaves `run` with `pc` at op `d` (which has not run).
        macro_rules! exit {
            ($d:expr, $e:expr) => {{
                return Leave::Stop {
                    exit: $e,
                    at: index($d),
                };
            }};
        }
        macro_rules! load {
            ($d:expr, $read:ident, $conv:expr) => {{
                let a = x!($d.rs1).wrapping_add($d.imm as u64);
                match mem.$read(a) {
                    Ok(v) => {
                        x!($d.rd) = $conv(v);
                        self.x[0] = 0;
                    }
                    Err(e) => exit!($d, Exit::Fault(e)),
                }
            }};
        }
        macro_rules! store {
            ($d:expr, $write:ident, $val:expr) => {{
                let a = x!($d.rs1).wrapping_add($d.imm as u64);
                if let Err(e) = mem.$write(a, $val) {
                    exit!($d, Exit::Fault(e));
                }
            }};
        }
        macro_rules! amo {
            ($d:expr, $read:ident, $write:ident, $t:ty, $sext:expr, $f:expr) => {{
                let a = x!($d.rs1);
                let src = x!($d.rs2) as $t;
                let old: $t = match mem.$read(a) {
                    Ok(v) => v,
                    Err(e) => exit!($d, Exit::Fault(e)),
                };
                #[allow(clippy::redundant_closure_call)]
                let new: $t = $f(old, src);
                if let Err(e) = mem.$write(a, new) {
                    exit!($d, Exit::Fault(e));
                }
                x!($d.rd) = $sext(old);
                self.x[0] = 0;
            }};
        }
        // Leaves the block for `to` after op `d`.
        macro_rules! jump {
            ($d:expr, $to:expr) => {{
                return Leave::Jump {
                    to: $to,
                    ran: index($d) + 1,
                };
            }};
        }
        // A taken branch leaves the block; one not taken goes on with the next op.
        macro_rules! branch {
            ($d:expr, $cond:expr) => {{
                if $cond {
                    jump!($d, $d.imm as u64);
                }
            }};
        }

        let mut p = uops.as_ptr();
        loop {
            // SAFETY: `p` starts at the block's first op and moves on only past ops
            // that do not leave the block. The last op of every block is an `END`
            // op (`Cache::build` asserts it), whose arm below always returns, so
            // `p` never passes the end of `uops`.
            let d = unsafe { &*p };
            p = p.wrapping_add(1);
            match d.op {
                Op::Nop => {}
                Op::Li => x!(d.rd) = d.imm as u64,
                Op::Auipc => unreachable!("the block builder makes auipc an Li"),
                Op::Fallthrough => {
                    return Leave::Jump {
                        to: d.imm as u64,
                        ran: index(d),
                    }
                }
                Op::Illegal => exit!(d, Exit::IllegalInstruction { bits: d.imm as u32 }),
                Op::Addi => x!(d.rd) = x!(d.rs1).wrapping_add(d.imm as u64),
                Op::Slti => x!(d.rd) = ((x!(d.rs1) as i64) < d.imm) as u64,
                Op::Sltiu => x!(d.rd) = (x!(d.rs1) < d.imm as u64) as u64,
                Op::Xori => x!(d.rd) = x!(d.rs1) ^ d.imm as u64,
                Op::Ori => x!(d.rd) = x!(d.rs1) | d.imm as u64,
                Op::Andi => x!(d.rd) = x!(d.rs1) & d.imm as u64,
                Op::Slli => x!(d.rd) = x!(d.rs1) << (d.imm & 63),
                Op::Srli => x!(d.rd) = x!(d.rs1) >> (d.imm & 63),
                Op::Srai => x!(d.rd) = ((x!(d.rs1) as i64) >> (d.imm & 63)) as u64,
                Op::Addiw => x!(d.rd) = (x!(d.rs1) as i32).wrapping_add(d.imm as i32) as i64 as u64,
                Op::Slliw => x!(d.rd) = ((x!(d.rs1) as i32) << (d.imm & 31)) as i64 as u64,
                Op::Srliw => x!(d.rd) = ((x!(d.rs1) as u32) >> (d.imm & 31)) as i32 as i64 as u64,
                Op::Sraiw => x!(d.rd) = ((x!(d.rs1) as i32) >> (d.imm & 31)) as i64 as u64,
                Op::Add => x!(d.rd) = x!(d.rs1).wrapping_add(x!(d.rs2)),
                Op::Sub => x!(d.rd) = x!(d.rs1).wrapping_sub(x!(d.rs2)),
                Op::Sll => x!(d.rd) = x!(d.rs1) << (x!(d.rs2) & 63),
                Op::Slt => x!(d.rd) = ((x!(d.rs1) as i64) < (x!(d.rs2) as i64)) as u64,
                Op::Sltu => x!(d.rd) = (x!(d.rs1) < x!(d.rs2)) as u64,
                Op::Xor => x!(d.rd) = x!(d.rs1) ^ x!(d.rs2),
                Op::Srl => x!(d.rd) = x!(d.rs1) >> (x!(d.rs2) & 63),
                Op::Sra => x!(d.rd) = ((x!(d.rs1) as i64) >> (x!(d.rs2) & 63)) as u64,
                Op::Or => x!(d.rd) = x!(d.rs1) | x!(d.rs2),
                Op::And => x!(d.rd) = x!(d.rs1) & x!(d.rs2),
                Op::Addw => {
                    x!(d.rd) = (x!(d.rs1) as i32).wrapping_add(x!(d.rs2) as i32) as i64 as u64
                }
                Op::Subw => {
                    x!(d.rd) = (x!(d.rs1) as i32).wrapping_sub(x!(d.rs2) as i32) as i64 as u64
                }
                Op::Sllw => x!(d.rd) = ((x!(d.rs1) as i32) << (x!(d.rs2) & 31)) as i64 as u64,
                Op::Srlw => {
                    x!(d.rd) = ((x!(d.rs1) as u32) >> (x!(d.rs2) & 31)) as i32 as i64 as u64
                }
                Op::Sraw => x!(d.rd) = ((x!(d.rs1) as i32) >> (x!(d.rs2) & 31)) as i64 as u64,
                Op::Mul => x!(d.rd) = x!(d.rs1).wrapping_mul(x!(d.rs2)),
                Op::Mulh => x!(d.rd) = sem::mulh(x!(d.rs1), x!(d.rs2)),
                Op::Mulhsu => x!(d.rd) = sem::mulhsu(x!(d.rs1), x!(d.rs2)),
                Op::Mulhu => x!(d.rd) = sem::mulhu(x!(d.rs1), x!(d.rs2)),
                Op::Div => x!(d.rd) = sem::div(x!(d.rs1), x!(d.rs2)),
                Op::Divu => x!(d.rd) = sem::divu(x!(d.rs1), x!(d.rs2)),
                Op::Rem => x!(d.rd) = sem::rem(x!(d.rs1), x!(d.rs2)),
                Op::Remu => x!(d.rd) = sem::remu(x!(d.rs1), x!(d.rs2)),
                Op::Mulw => x!(d.rd) = sem::sext32(x!(d.rs1).wrapping_mul(x!(d.rs2))),
                Op::Divw => x!(d.rd) = sem::divw(x!(d.rs1), x!(d.rs2)),
                Op::Divuw => x!(d.rd) = sem::divuw(x!(d.rs1), x!(d.rs2)),
                Op::Remw => x!(d.rd) = sem::remw(x!(d.rs1), x!(d.rs2)),
                Op::Remuw => x!(d.rd) = sem::remuw(x!(d.rs1), x!(d.rs2)),

                Op::Lb => load!(d, read_u8, |v: u8| v as i8 as i64 as u64),
                Op::Lh => load!(d, read_u16, |v: u16| v as i16 as i64 as u64),
                Op::Lw => load!(d, read_u32, |v: u32| v as i32 as i64 as u64),
                Op::Ld => load!(d, read_u64, |v: u64| v),
                Op::Lbu => load!(d, read_u8, |v: u8| v as u64),
                Op::Lhu => load!(d, read_u16, |v: u16| v as u64),
                Op::Lwu => load!(d, read_u32, |v: u32| v as u64),
                Op::Sb => store!(d, write_u8, x!(d.rs2) as u8),
                Op::Sh => store!(d, write_u16, x!(d.rs2) as u16),
                Op::Sw => store!(d, write_u32, x!(d.rs2) as u32),
                Op::Sd => store!(d, write_u64, x!(d.rs2)),
                Op::Flw => {
                    let a = x!(d.rs1).wrapping_add(d.imm as u64);
                    match mem.read_u32(a) {
                        Ok(v) => f!(d.rd) = nanbox(v as u64),
                        Err(e) => exit!(d, Exit::Fault(e)),
                    }
                }
                Op::Fld => {
                    let a = x!(d.rs1).wrapping_add(d.imm as u64);
                    match mem.read_u64(a) {
                        Ok(v) => f!(d.rd) = v,
                        Err(e) => exit!(d, Exit::Fault(e)),
                    }
                }
                Op::Fsw => store!(d, write_u32, f!(d.rs2) as u32),
                Op::Fsd => store!(d, write_u64, f!(d.rs2)),

                Op::Beq => branch!(d, x!(d.rs1) == x!(d.rs2)),
                Op::Bne => branch!(d, x!(d.rs1) != x!(d.rs2)),
                Op::Blt => branch!(d, (x!(d.rs1) as i64) < (x!(d.rs2) as i64)),
                Op::Bge => branch!(d, (x!(d.rs1) as i64) >= (x!(d.rs2) as i64)),
                Op::Bltu => branch!(d, x!(d.rs1) < x!(d.rs2)),
                Op::Bgeu => branch!(d, x!(d.rs1) >= x!(d.rs2)),
                // Jumps end their block: the link value is the block's end.
                Op::Jal => {
                    x!(d.rd) = blk.end;
                    self.x[0] = 0;
                    jump!(d, d.imm as u64);
                }
                Op::Jalr => {
                    let target = x!(d.rs1).wrapping_add(d.imm as u64) & !1;
                    x!(d.rd) = blk.end;
                    self.x[0] = 0;
                    jump!(d, target);
                }
                Op::FenceI => {
                    return Leave::FenceI {
                        to: blk.end,
                        ran: index(d) + 1,
                    }
                }
                Op::Ecall => exit!(d, Exit::Ecall),
                Op::Ebreak => exit!(d, Exit::Ebreak),
                Op::Csrrw | Op::Csrrs | Op::Csrrc | Op::Csrrwi | Op::Csrrsi | Op::Csrrci => {
                    let csr = d.imm as u32;
                    let old = self.read_csr(csr, self.instret + index(d) as u64);
                    let src = match d.op {
                        Op::Csrrw | Op::Csrrs | Op::Csrrc => x!(d.rs1),
                        _ => d.rs1 as u64,
                    };
                    let new = match d.op {
                        Op::Csrrw | Op::Csrrwi => Some(src),
                        Op::Csrrs | Op::Csrrsi => (d.rs1 != 0).then_some(old | src),
                        _ => (d.rs1 != 0).then_some(old & !src),
                    };
                    if let Some(v) = new {
                        self.write_csr(csr, v);
                    }
                    x!(d.rd) = old;
                    self.x[0] = 0;
                }

                Op::LrW | Op::LrD => {
                    let a = x!(d.rs1);
                    let v = if d.op == Op::LrW {
                        mem.read_u32(a).map(|v| v as i32 as i64 as u64)
                    } else {
                        mem.read_u64(a)
                    };
                    match v {
                        Ok(v) => {
                            x!(d.rd) = v;
                            self.x[0] = 0;
                            self.reservation = Some(a);
                        }
                        Err(e) => exit!(d, Exit::Fault(e)),
                    }
                }
                Op::ScW | Op::ScD => {
                    let a = x!(d.rs1);
                    let ok = self.reservation == Some(a);
                    if ok {
                        let r = if d.op == Op::ScW {
                            mem.write_u32(a, x!(d.rs2) as u32)
                        } else {
                            mem.write_u64(a, x!(d.rs2))
                        };
                        if let Err(e) = r {
                            exit!(d, Exit::Fault(e));
                        }
                    }
                    self.reservation = None;
                    x!(d.rd) = !ok as u64;
                    self.x[0] = 0;
                }
                Op::AmoswapW => amo!(d, read_u32, write_u32, u32, sext_u32, |_, s| s),
                Op::AmoaddW => amo!(d, read_u32, write_u32, u32, sext_u32, |o: u32, s| o
                    .wrapping_add(s)),
                Op::AmoxorW => amo!(d, read_u32, write_u32, u32, sext_u32, |o, s| o ^ s),
                Op::AmoandW => amo!(d, read_u32, write_u32, u32, sext_u32, |o, s| o & s),
                Op::AmoorW => amo!(d, read_u32, write_u32, u32, sext_u32, |o, s| o | s),
                Op::AmominW => amo!(d, read_u32, write_u32, u32, sext_u32, |o, s| {
                    (o as i32).min(s as i32) as u32
                }),
                Op::AmomaxW => amo!(d, read_u32, write_u32, u32, sext_u32, |o, s| {
                    (o as i32).max(s as i32) as u32
                }),
                Op::AmominuW => {
                    amo!(d, read_u32, write_u32, u32, sext_u32, |o: u32, s| o.min(s))
                }
                Op::AmomaxuW => {
                    amo!(d, read_u32, write_u32, u32, sext_u32, |o: u32, s| o.max(s))
                }
                Op::AmoswapD => amo!(d, read_u64, write_u64, u64, id64, |_, s| s),
                Op::AmoaddD => amo!(d, read_u64, write_u64, u64, id64, |o: u64, s| o
                    .wrapping_add(s)),
                Op::AmoxorD => amo!(d, read_u64, write_u64, u64, id64, |o, s| o ^ s),
                Op::AmoandD => amo!(d, read_u64, write_u64, u64, id64, |o, s| o & s),
                Op::AmoorD => amo!(d, read_u64, write_u64, u64, id64, |o, s| o | s),
                Op::AmominD => amo!(d, read_u64, write_u64, u64, id64, |o, s| {
                    (o as i64).min(s as i64) as u64
                }),
                Op::AmomaxD => amo!(d, read_u64, write_u64, u64, id64, |o, s| {
                    (o as i64).max(s as i64) as u64
                }),
                Op::AmominuD => {
                    amo!(d, read_u64, write_u64, u64, id64, |o: u64, s| o.min(s))
                }
                Op::AmomaxuD => {
                    amo!(d, read_u64, write_u64, u64, id64, |o: u64, s| o.max(s))
                }

                fp_op!() => {
                    if !self.exec_fp(d) {
                        exit!(d, Exit::IllegalInstruction { bits: d.imm as u32 })
                    }
                }
            }
        }
    }

    #[inline(never)]
    fn read_csr(&self, csr: u32, instret: u64) -> u64 {
        match csr {
            0x001 => (self.fcsr & 0x1f) as u64,
            0x002 => ((self.fcsr >> 5) & 7) as u64,
            0x003 => (self.fcsr & 0xff) as u64,
            0xc00 | 0xc02 => instret,
            0xc01 => self.time(),
            _ => 0,
        }
    }

    #[inline(never)]
    fn write_csr(&mut self, csr: u32, v: u64) {
        let v = v as u32;
        match csr {
            0x001 => self.fcsr = (self.fcsr & !0x1f) | (v & 0x1f),
            0x002 => self.fcsr = (self.fcsr & 0x1f) | ((v & 7) << 5),
            0x003 => self.fcsr = v & 0xff,
            _ => {}
        }
    }

    /// The effective rounding mode, or `None` if `rm` is DYN and `frm` is invalid.
    #[inline]
    fn rm(&self, rm: u8) -> Option<u8> {
        if rm == 7 {
            let r = ((self.fcsr >> 5) & 7) as u8;
            (r <= 4).then_some(r)
        } else {
            Some(rm)
        }
    }

    /// Executes one FP computation. Returns `false` if the rounding mode is invalid.
    #[inline(never)]
    fn exec_fp(&mut self, d: &Uop) -> bool {
        use Op::*;
        let rd = (d.rd & 31) as usize;
        let (r1, r2, r3) = (
            (d.rs1 & 31) as usize,
            (d.rs2 & 31) as usize,
            (d.rs3 & 31) as usize,
        );
        let Some(rm) = self.rm(d.rm) else {
            return false;
        };
        // Host floats give the same bits and flags when rounding to nearest-even, no input
        // is NaN/inf (so no NV/DZ), the result cannot have overflowed or be tiny (so no
        // OF/UF), and NX is already set (so whether the result was inexact does not
        // matter).
        let fast = rm == RNE && self.fcsr & NX as u32 != 0;
        let s1 = unbox(self.f[r1]);
        let s2 = unbox(self.f[r2]);
        let s3 = unbox(self.f[r3]);
        let (d1, d2, d3) = (self.f[r1], self.f[r2], self.f[r3]);
        let h1 = f32::from_bits(s1 as u32);
        let h2 = f32::from_bits(s2 as u32);
        let h3 = f32::from_bits(s3 as u32);
        let (g1, g2, g3) = (f64::from_bits(d1), f64::from_bits(d2), f64::from_bits(d3));

        macro_rules! flags {
            ($e:expr) => {{
                let (v, fl) = $e;
                self.fcsr |= fl as u32;
                v
            }};
        }
        // Result of a rounding op on format $fmt: the fast host value if $fast yields one.
        macro_rules! arith {
            ($fast:expr, $slow:expr) => {{
                let h: Option<u64> = if fast { $fast } else { None };
                match h {
                    Some(v) => v,
                    None => flags!($slow),
                }
            }};
        }
        macro_rules! fx {
            ($v:expr) => {{
                self.x[rd] = $v;
                self.x[0] = 0;
            }};
        }
        fn big32(r: f32) -> bool {
            r.is_finite() && r.abs() > f32::MIN_POSITIVE
        }
        fn big64(r: f64) -> bool {
            r.is_finite() && r.abs() > f64::MIN_POSITIVE
        }
        let fin32 = |a: f32, b: f32| a.is_finite() && b.is_finite();
        let fin64 = |a: f64, b: f64| a.is_finite() && b.is_finite();

        match d.op {
            FaddS | FsubS => {
                let b = if d.op == FsubS { s2 ^ SIGN32 } else { s2 };
                let hb = f32::from_bits(b as u32);
                let r = h1 + hb;
                self.f[rd] = nanbox(arith!(
                    (fin32(h1, hb) && r.is_finite()).then_some(r.to_bits() as u64),
                    fp::add(F32, s1, b, rm)
                ));
            }
            FaddD | FsubD => {
                let b = if d.op == FsubD { d2 ^ SIGN64 } else { d2 };
                let hb = f64::from_bits(b);
                let r = g1 + hb;
                self.f[rd] = arith!(
                    (fin64(g1, hb) && r.is_finite()).then_some(r.to_bits()),
                    fp::add(F64, d1, b, rm)
                );
            }
            FmulS => {
                let r = h1 * h2;
                let ok = fin32(h1, h2) && (big32(r) || (r == 0.0 && (h1 == 0.0 || h2 == 0.0)));
                self.f[rd] = nanbox(arith!(
                    ok.then_some(r.to_bits() as u64),
                    fp::mul(F32, s1, s2, rm)
                ));
            }
            FmulD => {
                let r = g1 * g2;
                let ok = fin64(g1, g2) && (big64(r) || (r == 0.0 && (g1 == 0.0 || g2 == 0.0)));
                self.f[rd] = arith!(ok.then_some(r.to_bits()), fp::mul(F64, d1, d2, rm));
            }
            FdivS => {
                let r = h1 / h2;
                let ok = fin32(h1, h2) && h2 != 0.0 && (big32(r) || h1 == 0.0);
                self.f[rd] = nanbox(arith!(
                    ok.then_some(r.to_bits() as u64),
                    fp::div(F32, s1, s2, rm)
                ));
            }
            FdivD => {
                let r = g1 / g2;
                let ok = fin64(g1, g2) && g2 != 0.0 && (big64(r) || g1 == 0.0);
                self.f[rd] = arith!(ok.then_some(r.to_bits()), fp::div(F64, d1, d2, rm));
            }
            FsqrtS => {
                let ok = h1.is_finite() && h1 >= 0.0;
                self.f[rd] = nanbox(arith!(
                    ok.then(|| h1.sqrt().to_bits() as u64),
                    fp::sqrt(F32, s1, rm)
                ));
            }
            FsqrtD => {
                let ok = g1.is_finite() && g1 >= 0.0;
                self.f[rd] = arith!(ok.then(|| g1.sqrt().to_bits()), fp::sqrt(F64, d1, rm));
            }
            FmaddS | FmsubS | FnmsubS | FnmaddS => {
                let na = matches!(d.op, FnmsubS | FnmaddS);
                let nc = matches!(d.op, FmsubS | FnmaddS);
                let a = if na { s1 ^ SIGN32 } else { s1 };
                let c = if nc { s3 ^ SIGN32 } else { s3 };
                let (ha, hc) = (f32::from_bits(a as u32), f32::from_bits(c as u32));
                let ok = fin32(ha, h2) && hc.is_finite();
                self.f[rd] = nanbox(arith!(
                    if ok {
                        let r = ha.mul_add(h2, hc);
                        big32(r).then_some(r.to_bits() as u64)
                    } else {
                        None
                    },
                    fp::fma(F32, a, s2, c, rm)
                ));
            }
            FmaddD | FmsubD | FnmsubD | FnmaddD => {
                let na = matches!(d.op, FnmsubD | FnmaddD);
                let nc = matches!(d.op, FmsubD | FnmaddD);
                let a = if na { d1 ^ SIGN64 } else { d1 };
                let c = if nc { d3 ^ SIGN64 } else { d3 };
                let (ga, gc) = (f64::from_bits(a), f64::from_bits(c));
                let ok = fin64(ga, g2) && gc.is_finite();
                self.f[rd] = arith!(
                    if ok {
                        let r = ga.mul_add(g2, gc);
                        big64(r).then_some(r.to_bits())
                    } else {
                        None
                    },
                    fp::fma(F64, a, d2, c, rm)
                );
            }
            FsgnjS => self.f[rd] = nanbox((s1 & !SIGN32) | (s2 & SIGN32)),
            FsgnjnS => self.f[rd] = nanbox((s1 & !SIGN32) | (!s2 & SIGN32)),
            FsgnjxS => self.f[rd] = nanbox(s1 ^ (s2 & SIGN32)),
            FsgnjD => self.f[rd] = (d1 & !SIGN64) | (d2 & SIGN64),
            FsgnjnD => self.f[rd] = (d1 & !SIGN64) | (!d2 & SIGN64),
            FsgnjxD => self.f[rd] = d1 ^ (d2 & SIGN64),
            FminS | FmaxS => self.f[rd] = nanbox(flags!(fp::fminmax(F32, s1, s2, d.op == FmaxS))),
            FminD | FmaxD => self.f[rd] = flags!(fp::fminmax(F64, d1, d2, d.op == FmaxD)),
            FeqS => fx!(flags!(fp::feq(F32, s1, s2))),
            FltS => fx!(flags!(fp::flt(F32, s1, s2))),
            FleS => fx!(flags!(fp::fle(F32, s1, s2))),
            FeqD => fx!(flags!(fp::feq(F64, d1, d2))),
            FltD => fx!(flags!(fp::flt(F64, d1, d2))),
            FleD => fx!(flags!(fp::fle(F64, d1, d2))),
            FclassS => fx!(fp::fclass(F32, s1)),
            FclassD => fx!(fp::fclass(F64, d1)),
            FcvtWS => fx!(flags!(fp::to_int(F32, s1, rm, true, 32))),
            FcvtWuS => fx!(flags!(fp::to_int(F32, s1, rm, false, 32))),
            FcvtLS => fx!(flags!(fp::to_int(F32, s1, rm, true, 64))),
            FcvtLuS => fx!(flags!(fp::to_int(F32, s1, rm, false, 64))),
            FcvtWD => fx!(flags!(fp::to_int(F64, d1, rm, true, 32))),
            FcvtWuD => fx!(flags!(fp::to_int(F64, d1, rm, false, 32))),
            FcvtLD => fx!(flags!(fp::to_int(F64, d1, rm, true, 64))),
            FcvtLuD => fx!(flags!(fp::to_int(F64, d1, rm, false, 64))),
            FcvtSW | FcvtSWu | FcvtSL | FcvtSLu | FcvtDW | FcvtDWu | FcvtDL | FcvtDLu => {
                let v = self.x[r1];
                let (neg, mag) = match d.op {
                    FcvtSW | FcvtDW => ((v as i32) < 0, (v as i32).unsigned_abs() as u64),
                    FcvtSWu | FcvtDWu => (false, v as u32 as u64),
                    FcvtSL | FcvtDL => ((v as i64) < 0, (v as i64).unsigned_abs()),
                    _ => (false, v),
                };
                if matches!(d.op, FcvtSW | FcvtSWu | FcvtSL | FcvtSLu) {
                    self.f[rd] = nanbox(flags!(fp::from_int(F32, neg, mag, rm)));
                } else {
                    self.f[rd] = flags!(fp::from_int(F64, neg, mag, rm));
                }
            }
            FmvXW => fx!(d1 as u32 as i32 as i64 as u64),
            FmvXD => fx!(d1),
            FmvWX => self.f[rd] = nanbox(self.x[r1] & 0xffff_ffff),
            FmvDX => self.f[rd] = self.x[r1],
            FcvtSD => self.f[rd] = nanbox(flags!(fp::cvt_ff(F64, F32, d1, rm))),
            FcvtDS => {
                // binary32 -> binary64 is exact: only NaNs need care.
                self.f[rd] = if h1.is_nan() {
                    flags!(fp::cvt_ff(F32, F64, s1, rm))
                } else {
                    (h1 as f64).to_bits()
                };
            }
            _ => unreachable!("not an FP op: {:?}", d.op),
        }
        let _ = (g3, h3);
        true
    }
}

#[inline(always)]
fn sext_u32(v: u32) -> u64 {
    v as i32 as i64 as u64
}

#[inline(always)]
fn id64(v: u64) -> u64 {
    v
}
