//! Instruction decoding: 32-bit RV64GC words and 16-bit RVC halfwords into a compact `Insn`.
//!
//! The decoder follows the opcode map of the unprivileged spec (chapter "RV32/64G
//! Instruction Set Listings"): `decode` switches on `opcode[6:2]`, then on funct3/funct7.
//! Compressed instructions are first expanded to their 32-bit equivalent (`expand_c`, per
//! the RVC chapter's tables), so both share one decoder and one set of semantics.
//! Anything not valid in user mode decodes to `Op::Illegal` with the original bits in `imm`.

pub use super::ops::Op;

/// One decoded instruction (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub op: Op,
    pub rd: u8,
    pub rs1: u8,
    pub rs2: u8,
    pub rs3: u8,
    /// FP rounding mode field (0-4, 7 = dynamic).
    pub rm: u8,
    /// The immediate as the instruction encodes it (pc-relative for branches, `jal` and
    /// `auipc`); for CSR ops the CSR number; for FP ops and `Illegal` the original bits.
    pub imm: i64,
}

impl Insn {
    pub const fn new(op: Op) -> Insn {
        Insn {
            op,
            rd: 0,
            rs1: 0,
            rs2: 0,
            rs3: 0,
            rm: 0,
            imm: 0,
        }
    }

    fn illegal(bits: u32) -> Insn {
        Insn {
            imm: bits as i64,
            ..Insn::new(Op::Illegal)
        }
    }
}

/// The length in bytes of the instruction whose low halfword is `lo`.
#[inline]
pub fn insn_len(lo: u16) -> u8 {
    if lo & 3 == 3 {
        4
    } else {
        2
    }
}

#[inline]
fn rd(b: u32) -> u8 {
    ((b >> 7) & 31) as u8
}
#[inline]
fn rs1(b: u32) -> u8 {
    ((b >> 15) & 31) as u8
}
#[inline]
fn rs2(b: u32) -> u8 {
    ((b >> 20) & 31) as u8
}
#[inline]
fn imm_i(b: u32) -> i64 {
    (b as i32 >> 20) as i64
}
#[inline]
fn imm_s(b: u32) -> i64 {
    (((b as i32 >> 25) << 5) | ((b >> 7) & 31) as i32) as i64
}
#[inline]
fn imm_b(b: u32) -> i64 {
    let v = ((b as i32 >> 31) << 12) as u32
        | ((b >> 25) & 0x3f) << 5
        | ((b >> 8) & 0xf) << 1
        | ((b >> 7) & 1) << 11;
    v as i32 as i64
}
#[inline]
fn imm_u(b: u32) -> i64 {
    (b & 0xffff_f000) as i32 as i64
}
#[inline]
fn imm_j(b: u32) -> i64 {
    let v = ((b as i32 >> 31) << 20) as u32
        | ((b >> 21) & 0x3ff) << 1
        | ((b >> 20) & 1) << 11
        | ((b >> 12) & 0xff) << 12;
    v as i32 as i64
}

/// Rounding-mode fields 5 and 6 are reserved.
#[inline]
fn rm_ok(rm: u8) -> bool {
    rm != 5 && rm != 6
}

/// The CSRs a user-mode RV64GC program may touch. Returns `(exists, read_only)`.
pub fn csr_info(csr: u32) -> Option<bool> {
    match csr {
        0x001..=0x003 => Some(false),
        0xc00..=0xc02 => Some(true),
        _ => None,
    }
}

/// Decodes a whole instruction (16 or 32 bits; the length is taken from the low bits).
pub fn decode(bits: u32) -> Insn {
    if bits & 3 != 3 {
        let c = bits as u16;
        return match expand_c(c) {
            Some(w) => {
                let i = decode32(w);
                if i.op == Op::Illegal {
                    Insn::illegal(c as u32)
                } else {
                    i
                }
            }
            None => Insn::illegal(c as u32),
        };
    }
    decode32(bits)
}

/// Decodes a 32-bit instruction word.
pub fn decode32(b: u32) -> Insn {
    use Op::*;
    let f3 = (b >> 12) & 7;
    let f7 = b >> 25;
    let r = |op: Op| Insn {
        rd: rd(b),
        rs1: rs1(b),
        rs2: rs2(b),
        ..Insn::new(op)
    };
    let i = |op: Op| Insn {
        rd: rd(b),
        rs1: rs1(b),
        imm: imm_i(b),
        ..Insn::new(op)
    };
    let s = |op: Op| Insn {
        rs1: rs1(b),
        rs2: rs2(b),
        imm: imm_s(b),
        ..Insn::new(op)
    };
    // FP op: rm in `rm`, original bits in `imm` (for a run-time illegal dynamic rm).
    let fp = |op: Op| Insn {
        rd: rd(b),
        rs1: rs1(b),
        rs2: rs2(b),
        rs3: (b >> 27) as u8,
        rm: f3 as u8,
        imm: b as i64,
        ..Insn::new(op)
    };
    let ill = Insn::illegal(b);
    if b & 3 != 3 {
        return ill;
    }
    let insn = match (b >> 2) & 0x1f {
        0x00 => match f3 {
            0 => i(Lb),
            1 => i(Lh),
            2 => i(Lw),
            3 => i(Ld),
            4 => i(Lbu),
            5 => i(Lhu),
            6 => i(Lwu),
            _ => ill,
        },
        0x01 => match f3 {
            2 => i(Flw),
            3 => i(Fld),
            _ => ill,
        },
        0x03 => match f3 {
            // FENCE (and its hints): a no-op for a single hart that sees its own stores.
            0 => Insn::new(Nop),
            1 => Insn::new(FenceI),
            _ => ill,
        },
        0x04 => {
            let shamt = (b >> 20) & 0x3f;
            let x = match f3 {
                0 => i(Addi),
                1 if b >> 26 == 0 => i(Slli),
                2 => i(Slti),
                3 => i(Sltiu),
                4 => i(Xori),
                5 if b >> 26 == 0 => i(Srli),
                5 if b >> 26 == 0x10 => i(Srai),
                6 => i(Ori),
                7 => i(Andi),
                _ => return ill,
            };
            if f3 == 1 || f3 == 5 {
                Insn {
                    imm: shamt as i64,
                    ..x
                }
            } else {
                x
            }
        }
        0x05 => Insn {
            rd: rd(b),
            imm: imm_u(b),
            ..Insn::new(Auipc)
        },
        0x06 => {
            let shamt = ((b >> 20) & 0x1f) as i64;
            match (f3, f7) {
                (0, _) => i(Addiw),
                (1, 0) => Insn {
                    imm: shamt,
                    ..i(Slliw)
                },
                (5, 0) => Insn {
                    imm: shamt,
                    ..i(Srliw)
                },
                (5, 0x20) => Insn {
                    imm: shamt,
                    ..i(Sraiw)
                },
                _ => ill,
            }
        }
        0x08 => match f3 {
            0 => s(Sb),
            1 => s(Sh),
            2 => s(Sw),
            3 => s(Sd),
            _ => ill,
        },
        0x09 => match f3 {
            2 => s(Fsw),
            3 => s(Fsd),
            _ => ill,
        },
        0x0b => {
            let w = match f3 {
                2 => true,
                3 => false,
                _ => return ill,
            };
            let op = match (b >> 27, w) {
                (0x02, _) if rs2(b) != 0 => return ill,
                (0x02, true) => LrW,
                (0x03, true) => ScW,
                (0x01, true) => AmoswapW,
                (0x00, true) => AmoaddW,
                (0x04, true) => AmoxorW,
                (0x0c, true) => AmoandW,
                (0x08, true) => AmoorW,
                (0x10, true) => AmominW,
                (0x14, true) => AmomaxW,
                (0x18, true) => AmominuW,
                (0x1c, true) => AmomaxuW,
                (0x02, false) => LrD,
                (0x03, false) => ScD,
                (0x01, false) => AmoswapD,
                (0x00, false) => AmoaddD,
                (0x04, false) => AmoxorD,
                (0x0c, false) => AmoandD,
                (0x08, false) => AmoorD,
                (0x10, false) => AmominD,
                (0x14, false) => AmomaxD,
                (0x18, false) => AmominuD,
                (0x1c, false) => AmomaxuD,
                _ => return ill,
            };
            r(op)
        }
        0x0c => {
            let op = match (f7, f3) {
                (0, 0) => Add,
                (0, 1) => Sll,
                (0, 2) => Slt,
                (0, 3) => Sltu,
                (0, 4) => Xor,
                (0, 5) => Srl,
                (0, 6) => Or,
                (0, 7) => And,
                (0x20, 0) => Sub,
                (0x20, 5) => Sra,
                (1, 0) => Mul,
                (1, 1) => Mulh,
                (1, 2) => Mulhsu,
                (1, 3) => Mulhu,
                (1, 4) => Div,
                (1, 5) => Divu,
                (1, 6) => Rem,
                (1, 7) => Remu,
                _ => return ill,
            };
            r(op)
        }
        0x0d => Insn {
            rd: rd(b),
            imm: imm_u(b),
            ..Insn::new(Li)
        },
        0x0e => {
            let op = match (f7, f3) {
                (0, 0) => Addw,
                (0, 1) => Sllw,
                (0, 5) => Srlw,
                (0x20, 0) => Subw,
                (0x20, 5) => Sraw,
                (1, 0) => Mulw,
                (1, 4) => Divw,
                (1, 5) => Divuw,
                (1, 6) => Remw,
                (1, 7) => Remuw,
                _ => return ill,
            };
            r(op)
        }
        op5 @ 0x10..=0x13 => {
            if !rm_ok(f3 as u8) {
                return ill;
            }
            let d = match (b >> 25) & 3 {
                0 => false,
                1 => true,
                _ => return ill,
            };
            let op = match (op5, d) {
                (0x10, false) => FmaddS,
                (0x11, false) => FmsubS,
                (0x12, false) => FnmsubS,
                (0x13, false) => FnmaddS,
                (0x10, true) => FmaddD,
                (0x11, true) => FmsubD,
                (0x12, true) => FnmsubD,
                _ => FnmaddD,
            };
            fp(op)
        }
        0x14 => return decode_opfp(b),
        0x18 => {
            let op = match f3 {
                0 => Beq,
                1 => Bne,
                4 => Blt,
                5 => Bge,
                6 => Bltu,
                7 => Bgeu,
                _ => return ill,
            };
            Insn {
                rs1: rs1(b),
                rs2: rs2(b),
                imm: imm_b(b),
                ..Insn::new(op)
            }
        }
        0x19 if f3 == 0 => i(Jalr),
        0x1b => Insn {
            rd: rd(b),
            imm: imm_j(b),
            ..Insn::new(Jal)
        },
        0x1c => {
            let op = match f3 {
                0 => {
                    return match b {
                        0x0000_0073 => Insn::new(Ecall),
                        0x0010_0073 => Insn::new(Ebreak),
                        _ => ill,
                    }
                }
                1 => Csrrw,
                2 => Csrrs,
                3 => Csrrc,
                5 => Csrrwi,
                6 => Csrrsi,
                7 => Csrrci,
                _ => return ill,
            };
            let csr = b >> 20;
            let Some(read_only) = csr_info(csr) else {
                return ill;
            };
            // csrrw(i) always writes; csrrs/c(i) write unless rs1/uimm is 0.
            let writes = matches!(op, Csrrw | Csrrwi) || rs1(b) != 0;
            if read_only && writes {
                return ill;
            }
            Insn {
                rd: rd(b),
                rs1: rs1(b),
                imm: csr as i64,
                ..Insn::new(op)
            }
        }
        _ => ill,
    };
    insn.nop_if_rd0()
}

impl Insn {
    /// Ops that only write `rd` have no effect when it is x0: they become `Nop`, so the
    /// interpreter never needs to re-zero x0 after them.
    fn nop_if_rd0(self) -> Insn {
        if self.rd == 0 && self.op.is_pure() {
            Insn::new(Op::Nop)
        } else {
            self
        }
    }
}

fn decode_opfp(b: u32) -> Insn {
    use Op::*;
    let f3 = ((b >> 12) & 7) as u8;
    let f7 = b >> 25;
    let r2 = rs2(b);
    let ill = Insn::illegal(b);
    // Ops that round need a valid rm; ops with a fixed funct3 check it exactly.
    let op = match f7 {
        0x00 => FaddS,
        0x01 => FaddD,
        0x04 => FsubS,
        0x05 => FsubD,
        0x08 => FmulS,
        0x09 => FmulD,
        0x0c => FdivS,
        0x0d => FdivD,
        0x2c if r2 == 0 => FsqrtS,
        0x2d if r2 == 0 => FsqrtD,
        0x10 | 0x11 => {
            let d = f7 == 0x11;
            match (f3, d) {
                (0, false) => FsgnjS,
                (1, false) => FsgnjnS,
                (2, false) => FsgnjxS,
                (0, true) => FsgnjD,
                (1, true) => FsgnjnD,
                (2, true) => FsgnjxD,
                _ => return ill,
            }
        }
        0x14 | 0x15 => match (f3, f7 == 0x15) {
            (0, false) => FminS,
            (1, false) => FmaxS,
            (0, true) => FminD,
            (1, true) => FmaxD,
            _ => return ill,
        },
        0x20 if r2 == 1 => FcvtSD,
        0x21 if r2 == 0 => FcvtDS,
        0x50 | 0x51 => match (f3, f7 == 0x51) {
            (0, false) => FleS,
            (1, false) => FltS,
            (2, false) => FeqS,
            (0, true) => FleD,
            (1, true) => FltD,
            (2, true) => FeqD,
            _ => return ill,
        },
        0x60 | 0x61 => match (r2, f7 == 0x61) {
            (0, false) => FcvtWS,
            (1, false) => FcvtWuS,
            (2, false) => FcvtLS,
            (3, false) => FcvtLuS,
            (0, true) => FcvtWD,
            (1, true) => FcvtWuD,
            (2, true) => FcvtLD,
            (3, true) => FcvtLuD,
            _ => return ill,
        },
        0x68 | 0x69 => match (r2, f7 == 0x69) {
            (0, false) => FcvtSW,
            (1, false) => FcvtSWu,
            (2, false) => FcvtSL,
            (3, false) => FcvtSLu,
            (0, true) => FcvtDW,
            (1, true) => FcvtDWu,
            (2, true) => FcvtDL,
            (3, true) => FcvtDLu,
            _ => return ill,
        },
        0x70 | 0x71 => match (f3, r2, f7 == 0x71) {
            (0, 0, false) => FmvXW,
            (1, 0, false) => FclassS,
            (0, 0, true) => FmvXD,
            (1, 0, true) => FclassD,
            _ => return ill,
        },
        0x78 if f3 == 0 && r2 == 0 => FmvWX,
        0x79 if f3 == 0 && r2 == 0 => FmvDX,
        _ => return ill,
    };
    if op.rounds() && !rm_ok(f3) {
        return ill;
    }
    Insn {
        rd: rd(b),
        rs1: rs1(b),
        rs2: r2,
        rs3: (b >> 27) as u8,
        rm: f3,
        imm: b as i64,
        ..Insn::new(op)
    }
}

// ---- RVC expansion ------------------------------------------------------------------------

fn enc_r(opcode: u32, rd: u32, f3: u32, rs1: u32, rs2: u32, f7: u32) -> u32 {
    opcode | rd << 7 | f3 << 12 | rs1 << 15 | rs2 << 20 | f7 << 25
}
fn enc_i(opcode: u32, rd: u32, f3: u32, rs1: u32, imm: i32) -> u32 {
    opcode | rd << 7 | f3 << 12 | rs1 << 15 | (imm as u32) << 20
}
fn enc_s(opcode: u32, f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    opcode | (imm & 31) << 7 | f3 << 12 | rs1 << 15 | rs2 << 20 | (imm >> 5) << 25
}
fn enc_b(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let i = imm as u32;
    0x63 | ((i >> 11) & 1) << 7
        | ((i >> 1) & 0xf) << 8
        | f3 << 12
        | rs1 << 15
        | rs2 << 20
        | ((i >> 5) & 0x3f) << 25
        | ((i >> 12) & 1) << 31
}
fn enc_j(rd: u32, imm: i32) -> u32 {
    let i = imm as u32;
    0x6f | rd << 7
        | ((i >> 12) & 0xff) << 12
        | ((i >> 11) & 1) << 20
        | ((i >> 1) & 0x3ff) << 21
        | ((i >> 20) & 1) << 31
}

#[inline]
fn bit(c: u32, i: u32) -> u32 {
    (c >> i) & 1
}
/// Sign-extends the low `n` bits of `v`.
#[inline]
fn sext(v: u32, n: u32) -> i32 {
    ((v << (32 - n)) as i32) >> (32 - n)
}

/// Expands a 16-bit RV64C instruction into the equivalent 32-bit instruction, or `None`
/// if it is reserved/illegal (including the all-zero halfword). HINT encodings expand to
/// instructions without architectural effect.
pub fn expand_c(c: u16) -> Option<u32> {
    let c = c as u32;
    let f3 = c >> 13;
    let rd = (c >> 7) & 31;
    let rs2 = (c >> 2) & 31;
    let rdp = ((c >> 2) & 7) + 8; // rd' / rs2'
    let rs1p = ((c >> 7) & 7) + 8; // rs1' / rd'
                                   // CI-format 6-bit immediate: imm[5] = c[12], imm[4:0] = c[6:2].
    let ci_imm = sext(bit(c, 12) << 5 | (c >> 2) & 31, 6);
    // Offsets for the doubleword (and word) loads/stores.
    let cl_d = ((c >> 10) & 7) << 3 | ((c >> 5) & 3) << 6;
    let cl_w = ((c >> 10) & 7) << 3 | bit(c, 6) << 2 | bit(c, 5) << 6;
    Some(match (c & 3, f3) {
        (0, 0) => {
            // C.ADDI4SPN
            let imm =
                ((c >> 11) & 3) << 4 | ((c >> 7) & 0xf) << 6 | bit(c, 6) << 2 | bit(c, 5) << 3;
            if imm == 0 {
                return None;
            }
            enc_i(0x13, rdp, 0, 2, imm as i32)
        }
        (0, 1) => enc_i(0x07, rdp, 3, rs1p, cl_d as i32), // C.FLD
        (0, 2) => enc_i(0x03, rdp, 2, rs1p, cl_w as i32), // C.LW
        (0, 3) => enc_i(0x03, rdp, 3, rs1p, cl_d as i32), // C.LD
        (0, 4) => return None,
        (0, 5) => enc_s(0x27, 3, rs1p, rdp, cl_d as i32), // C.FSD
        (0, 6) => enc_s(0x23, 2, rs1p, rdp, cl_w as i32), // C.SW
        (0, 7) => enc_s(0x23, 3, rs1p, rdp, cl_d as i32), // C.SD
        (1, 0) => enc_i(0x13, rd, 0, rd, ci_imm),         // C.ADDI / C.NOP (hints included)
        (1, 1) => {
            // C.ADDIW; rd = 0 is reserved.
            if rd == 0 {
                return None;
            }
            enc_i(0x1b, rd, 0, rd, ci_imm)
        }
        (1, 2) => enc_i(0x13, rd, 0, 0, ci_imm), // C.LI
        (1, 3) => {
            if rd == 2 {
                // C.ADDI16SP: nzimm[9|4|6|8:7|5] = c[12|6|5|4:3|2]
                let imm = bit(c, 12) << 9
                    | bit(c, 6) << 4
                    | bit(c, 5) << 6
                    | ((c >> 3) & 3) << 7
                    | bit(c, 2) << 5;
                if imm == 0 {
                    return None;
                }
                enc_i(0x13, 2, 0, 2, sext(imm, 10))
            } else {
                // C.LUI: nzimm[17|16:12] = c[12|6:2]
                if ci_imm == 0 {
                    return None;
                }
                0x37 | rd << 7 | ((ci_imm as u32) << 12)
            }
        }
        (1, 4) => {
            let shamt = bit(c, 12) << 5 | (c >> 2) & 31;
            match (c >> 10) & 3 {
                0 => enc_i(0x13, rs1p, 5, rs1p, shamt as i32), // C.SRLI
                1 => enc_i(0x13, rs1p, 5, rs1p, (shamt | 0x400) as i32), // C.SRAI
                2 => enc_i(0x13, rs1p, 7, rs1p, ci_imm),       // C.ANDI
                _ => {
                    let (f3, f7, op) = match (bit(c, 12), (c >> 5) & 3) {
                        (0, 0) => (0, 0x20, 0x33), // C.SUB
                        (0, 1) => (4, 0, 0x33),    // C.XOR
                        (0, 2) => (6, 0, 0x33),    // C.OR
                        (0, 3) => (7, 0, 0x33),    // C.AND
                        (1, 0) => (0, 0x20, 0x3b), // C.SUBW
                        (1, 1) => (0, 0, 0x3b),    // C.ADDW
                        _ => return None,
                    };
                    enc_r(op, rs1p, f3, rs1p, rdp, f7)
                }
            }
        }
        (1, 5) => {
            // C.J: offset[11|4|9:8|10|6|7|3:1|5] = c[12|11|10:9|8|7|6|5:3|2]
            let imm = bit(c, 12) << 11
                | bit(c, 11) << 4
                | ((c >> 9) & 3) << 8
                | bit(c, 8) << 10
                | bit(c, 7) << 6
                | bit(c, 6) << 7
                | ((c >> 3) & 7) << 1
                | bit(c, 2) << 5;
            enc_j(0, sext(imm, 12))
        }
        (1, 6) | (1, 7) => {
            // C.BEQZ / C.BNEZ: offset[8|4:3] = c[12|11:10], offset[7:6|2:1|5] = c[6:5|4:3|2]
            let imm = bit(c, 12) << 8
                | ((c >> 10) & 3) << 3
                | ((c >> 5) & 3) << 6
                | ((c >> 3) & 3) << 1
                | bit(c, 2) << 5;
            enc_b(f3 - 6, rs1p, 0, sext(imm, 9))
        }
        (2, 0) => {
            // C.SLLI (rd = 0 is a hint).
            let shamt = bit(c, 12) << 5 | (c >> 2) & 31;
            enc_i(0x13, rd, 1, rd, shamt as i32)
        }
        (2, 1) | (2, 3) => {
            // C.FLDSP / C.LDSP: uimm[5] = c[12], uimm[4:3] = c[6:5], uimm[8:6] = c[4:2]
            let imm = bit(c, 12) << 5 | ((c >> 5) & 3) << 3 | ((c >> 2) & 7) << 6;
            if f3 == 1 {
                enc_i(0x07, rd, 3, 2, imm as i32)
            } else {
                if rd == 0 {
                    return None;
                }
                enc_i(0x03, rd, 3, 2, imm as i32)
            }
        }
        (2, 2) => {
            // C.LWSP: uimm[5] = c[12], uimm[4:2] = c[6:4], uimm[7:6] = c[3:2]
            if rd == 0 {
                return None;
            }
            let imm = bit(c, 12) << 5 | ((c >> 4) & 7) << 2 | ((c >> 2) & 3) << 6;
            enc_i(0x03, rd, 2, 2, imm as i32)
        }
        (2, 4) => match (bit(c, 12), rd, rs2) {
            (0, 0, 0) => return None,                   // C.JR x0: reserved
            (0, _, 0) => enc_i(0x67, 0, 0, rd, 0),      // C.JR
            (0, _, _) => enc_r(0x33, rd, 0, 0, rs2, 0), // C.MV
            (_, 0, 0) => 0x0010_0073,                   // C.EBREAK
            (_, _, 0) => enc_i(0x67, 1, 0, rd, 0),      // C.JALR
            _ => enc_r(0x33, rd, 0, rd, rs2, 0),        // C.ADD
        },
        (2, 5) | (2, 7) => {
            // C.FSDSP / C.SDSP: uimm[5:3] = c[12:10], uimm[8:6] = c[9:7]
            let imm = ((c >> 10) & 7) << 3 | ((c >> 7) & 7) << 6;
            enc_s(if f3 == 5 { 0x27 } else { 0x23 }, 3, 2, rs2, imm as i32)
        }
        (2, 6) => {
            // C.SWSP: uimm[5:2] = c[12:9], uimm[7:6] = c[8:7]
            let imm = ((c >> 9) & 0xf) << 2 | ((c >> 7) & 3) << 6;
            enc_s(0x23, 2, 2, rs2, imm as i32)
        }
        _ => return None,
    })
}
