//! A short, objdump-like disassembler for error messages.

use super::decode::{decode, Insn, Op};

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

/// The mnemonic of an op: `FcvtWuS` -> `fcvt.wu.s`, `AmoaddW` -> `amoadd.w`.
fn mnemonic(op: Op) -> String {
    let name = format!("{op:?}");
    let mut parts: Vec<String> = Vec::new();
    for ch in name.chars() {
        if ch.is_uppercase() || parts.is_empty() {
            parts.push(ch.to_ascii_lowercase().to_string());
        } else {
            parts.last_mut().unwrap().push(ch);
        }
    }
    let is_fp = name.starts_with('F') && !matches!(op, Op::FenceI | Op::Fallthrough);
    let is_amo = name.starts_with("Amo") || name.starts_with("Lr") || name.starts_with("Sc");
    if is_fp || is_amo {
        parts.join(".")
    } else {
        parts.concat()
    }
}

/// Disassembles one instruction (16 or 32 bits). Branch and jump targets are shown as
/// offsets (`pc+N`).
pub fn disasm(bits: u32) -> String {
    let bits = if bits & 3 == 3 { bits } else { bits & 0xffff };
    let d: Insn = decode(bits);
    if d.op == Op::Illegal {
        return format!("illegal {bits:#x}");
    }
    if d.op == Op::Nop {
        return if bits & 0x7f == 0x0f && (bits >> 12) & 7 == 0 {
            "fence".into()
        } else {
            "nop".into()
        };
    }
    let m = mnemonic(d.op);
    let (x, f) = (|r: u8| XN[r as usize & 31], |r: u8| FN[r as usize & 31]);
    use Op::*;
    match d.op {
        Li if d.is_auipc() => format!("auipc {},{:#x}", x(d.rd), (d.imm as u64 >> 12) & 0xfffff),
        Li => format!("lui {},{:#x}", x(d.rd), (d.imm as u64 >> 12) & 0xfffff),
        Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu => format!("{m} {},{}({})", x(d.rd), d.imm, x(d.rs1)),
        Flw | Fld => format!("{m} {},{}({})", f(d.rd), d.imm, x(d.rs1)),
        Sb | Sh | Sw | Sd => format!("{m} {},{}({})", x(d.rs2), d.imm, x(d.rs1)),
        Fsw | Fsd => format!("{m} {},{}({})", f(d.rs2), d.imm, x(d.rs1)),
        Beq | Bne | Blt | Bge | Bltu | Bgeu => {
            format!("{m} {},{},pc{:+}", x(d.rs1), x(d.rs2), d.imm)
        }
        Jal => format!("jal {},pc{:+}", x(d.rd), d.imm),
        Jalr => format!("jalr {},{}({})", x(d.rd), d.imm, x(d.rs1)),
        Ecall | Ebreak | FenceI => m.replace("fencei", "fence.i"),
        Csrrw | Csrrs | Csrrc => format!("{m} {},{:#x},{}", x(d.rd), d.imm, x(d.rs1)),
        Csrrwi | Csrrsi | Csrrci => format!("{m} {},{:#x},{}", x(d.rd), d.imm, d.rs1),
        Addi | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai | Addiw | Slliw | Srliw
        | Sraiw => format!("{m} {},{},{}", x(d.rd), x(d.rs1), d.imm),
        LrW | LrD => format!("{m} {},({})", x(d.rd), x(d.rs1)),
        _ if m.starts_with("amo") || m.starts_with("sc") => {
            format!("{m} {},{},({})", x(d.rd), x(d.rs2), x(d.rs1))
        }
        FmaddS | FmsubS | FnmsubS | FnmaddS | FmaddD | FmsubD | FnmsubD | FnmaddD => {
            format!("{m} {},{},{},{}", f(d.rd), f(d.rs1), f(d.rs2), f(d.rs3))
        }
        FsqrtS | FsqrtD | FcvtSD | FcvtDS => format!("{m} {},{}", f(d.rd), f(d.rs1)),
        FeqS | FltS | FleS | FeqD | FltD | FleD => {
            format!("{m} {},{},{}", x(d.rd), f(d.rs1), f(d.rs2))
        }
        FclassS | FclassD | FmvXW | FmvXD | FcvtWS | FcvtWuS | FcvtLS | FcvtLuS | FcvtWD
        | FcvtWuD | FcvtLD | FcvtLuD => format!("{m} {},{}", x(d.rd), f(d.rs1)),
        FmvWX | FmvDX | FcvtSW | FcvtSWu | FcvtSL | FcvtSLu | FcvtDW | FcvtDWu | FcvtDL
        | FcvtDLu => format!("{m} {},{}", f(d.rd), x(d.rs1)),
        _ if m.starts_with('f') => format!("{m} {},{},{}", f(d.rd), f(d.rs1), f(d.rs2)),
        _ => format!("{m} {},{},{}", x(d.rd), x(d.rs1), x(d.rs2)),
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
    }
}
