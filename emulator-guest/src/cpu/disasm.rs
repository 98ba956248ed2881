//! A short, objdump-like disassembler for error messages.

use super::decode::{decode, Insn, Op};
use super::ops::Form;

const XN: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];
const FN: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// Disassembles one instruction (16 or 32 bits). Branch and jump targets are shown as
/// offsets (`pc+N`).
pub fn disasm(bits: u32) -> String {
    let bits = if bits & 3 == 3 { bits } else { bits & 0xffff };
    let d: Insn = decode(bits);
    match d.op {
        Op::Illegal => return format!("illegal {bits:#x}"),
        Op::Nop if bits & 0x7f == 0x0f && (bits >> 12) & 7 == 0 => return "fence".into(),
        _ => {}
    }
    let m = d.op.mnemonic();
    let (x, f) = (|r: u8| XN[r as usize & 31], |r: u8| FN[r as usize & 31]);
    let (rd, rs1, rs2, imm) = (d.rd, d.rs1, d.rs2, d.imm);
    match d.op.info().form {
        Form::None => m.into(),
        Form::U => format!("{m} {},{:#x}", x(rd), (imm as u64 >> 12) & 0xfffff),
        Form::I => format!("{m} {},{},{imm}", x(rd), x(rs1)),
        Form::R => format!("{m} {},{},{}", x(rd), x(rs1), x(rs2)),
        Form::Load | Form::Jalr => format!("{m} {},{imm}({})", x(rd), x(rs1)),
        Form::Store => format!("{m} {},{imm}({})", x(rs2), x(rs1)),
        Form::FLoad => format!("{m} {},{imm}({})", f(rd), x(rs1)),
        Form::FStore => format!("{m} {},{imm}({})", f(rs2), x(rs1)),
        Form::B => format!("{m} {},{},pc{imm:+}", x(rs1), x(rs2)),
        Form::J => format!("{m} {},pc{imm:+}", x(rd)),
        Form::Csr => format!("{m} {},{imm:#x},{}", x(rd), x(rs1)),
        Form::Csri => format!("{m} {},{imm:#x},{rs1}", x(rd)),
        Form::Lr => format!("{m} {},({})", x(rd), x(rs1)),
        Form::Amo => format!("{m} {},{},({})", x(rd), x(rs2), x(rs1)),
        Form::F1 => format!("{m} {},{}", f(rd), f(rs1)),
        Form::F3 => format!("{m} {},{},{}", f(rd), f(rs1), f(rs2)),
        Form::F4 => format!("{m} {},{},{},{}", f(rd), f(rs1), f(rs2), f(d.rs3)),
        Form::FCmp => format!("{m} {},{},{}", x(rd), f(rs1), f(rs2)),
        Form::XF => format!("{m} {},{}", x(rd), f(rs1)),
        Form::FX => format!("{m} {},{}", f(rd), x(rs1)),
    }
}

#[cfg(test)]
mod tests {
    use super::disasm;

    #[test]
    fn some_instructions() {
        assert_eq!(disasm(0x00a58513), "addi a0,a1,10");
        assert_eq!(disasm(0x00000073), "ecall");
        assert_eq!(disasm(0x02b50533), "mul a0,a0,a1");
        assert_eq!(disasm(0x0005b503), "ld a0,0(a1)");
        assert_eq!(disasm(0x4505), "addi a0,zero,1"); // c.li a0,1
        assert_eq!(disasm(0xd0057053), "fcvt.s.w ft0,a0");
        assert_eq!(disasm(0x0000), "illegal 0x0");
        assert_eq!(disasm(0x00000517), "auipc a0,0x0");
        assert_eq!(disasm(0x000802b7), "lui t0,0x80");
        assert_eq!(disasm(0x00b50463), "beq a0,a1,pc+8");
        assert_eq!(disasm(0x0000100f), "fence.i");
        assert_eq!(disasm(0x0000000f), "fence");
        assert_eq!(disasm(0x00008067), "jalr zero,0(ra)");
        assert_eq!(disasm(0x100525af), "lr.w a1,(a0)");
        assert_eq!(disasm(0x02b5352f), "amoadd.d a0,a1,(a0)");
        assert_eq!(disasm(0x02b57553), "fadd.d fa0,fa0,fa1");
    }
}
