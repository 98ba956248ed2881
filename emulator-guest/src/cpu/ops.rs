//! The one list of operations: every fact about an op that is not its semantics.
//!
//! `for_each_op!` is the list, as data: name, mnemonic, operand form and flags. From it
//! come the `Op` enum, the mnemonics the disassembler prints, and the flags the decoder
//! (`PURE`: an op that only writes `rd` is a `Nop` when `rd` is x0; `RM`: the op rounds,
//! so its rounding-mode field must be valid), the block builder (`END`: the op ends a
//! block) and the interpreter (the `FP` class) read. Nothing else restates which ops exist
//! or what they are: a new op is one line here plus its semantics in `exec.rs` (whose
//! match has no catch-all, so a missing arm does not compile). This is the shape of
//! rv32emu's `RV_INSN_LIST` and Pulley's `for_each_op!`.
//!
//! The semantics live in `exec.rs` (the interpreter, the reference) and `sem.rs` (the
//! integer functions whose corner cases the spec defines: division by zero, overflow,
//! high multiplies), which a translator mirrors.

/// Calls `$m! { int: { Name "mnemonic" Form [flags]; ... } fp: { ... } }` over every op.
/// Order matters only for the enum's numbering: the FP computations come last, so
/// `Op::is_fp` is one compare.
macro_rules! for_each_op {
    ($m:ident) => {
        $m! { int: {
            // Pseudo-ops made by the decoder or the block builder.
            Nop "nop" None [PURE];
            Li "lui" U [PURE];
            Auipc "auipc" U [PURE];
            Fallthrough "(fallthrough)" None [END];
            Illegal "(illegal)" None [END];

            Addi "addi" I [PURE];
            Slti "slti" I [PURE];
            Sltiu "sltiu" I [PURE];
            Xori "xori" I [PURE];
            Ori "ori" I [PURE];
            Andi "andi" I [PURE];
            Slli "slli" I [PURE];
            Srli "srli" I [PURE];
            Srai "srai" I [PURE];
            Addiw "addiw" I [PURE];
            Slliw "slliw" I [PURE];
            Srliw "srliw" I [PURE];
            Sraiw "sraiw" I [PURE];
            Add "add" R [PURE];
            Sub "sub" R [PURE];
            Sll "sll" R [PURE];
            Slt "slt" R [PURE];
            Sltu "sltu" R [PURE];
            Xor "xor" R [PURE];
            Srl "srl" R [PURE];
            Sra "sra" R [PURE];
            Or "or" R [PURE];
            And "and" R [PURE];
            Addw "addw" R [PURE];
            Subw "subw" R [PURE];
            Sllw "sllw" R [PURE];
            Srlw "srlw" R [PURE];
            Sraw "sraw" R [PURE];
            Mul "mul" R [PURE];
            Mulh "mulh" R [PURE];
            Mulhsu "mulhsu" R [PURE];
            Mulhu "mulhu" R [PURE];
            Div "div" R [PURE];
            Divu "divu" R [PURE];
            Rem "rem" R [PURE];
            Remu "remu" R [PURE];
            Mulw "mulw" R [PURE];
            Divw "divw" R [PURE];
            Divuw "divuw" R [PURE];
            Remw "remw" R [PURE];
            Remuw "remuw" R [PURE];

            Lb "lb" Load [W1];
            Lh "lh" Load [W2];
            Lw "lw" Load [W4];
            Ld "ld" Load [W8];
            Lbu "lbu" Load [W1];
            Lhu "lhu" Load [W2];
            Lwu "lwu" Load [W4];
            Sb "sb" Store [W1];
            Sh "sh" Store [W2];
            Sw "sw" Store [W4];
            Sd "sd" Store [W8];
            Flw "flw" FLoad [W4];
            Fld "fld" FLoad [W8];
            Fsw "fsw" FStore [W4];
            Fsd "fsd" FStore [W8];

            Beq "beq" B [BRANCH];
            Bne "bne" B [BRANCH];
            Blt "blt" B [BRANCH];
            Bge "bge" B [BRANCH];
            Bltu "bltu" B [BRANCH];
            Bgeu "bgeu" B [BRANCH];
            Jal "jal" J [END];
            Jalr "jalr" Jalr [END];

            FenceI "fence.i" None [END];
            Ecall "ecall" None [END];
            Ebreak "ebreak" None [END];
            Csrrw "csrrw" Csr [];
            Csrrs "csrrs" Csr [];
            Csrrc "csrrc" Csr [];
            Csrrwi "csrrwi" Csri [];
            Csrrsi "csrrsi" Csri [];
            Csrrci "csrrci" Csri [];

            LrW "lr.w" Lr [W4];
            ScW "sc.w" Amo [W4];
            AmoswapW "amoswap.w" Amo [W4];
            AmoaddW "amoadd.w" Amo [W4];
            AmoxorW "amoxor.w" Amo [W4];
            AmoandW "amoand.w" Amo [W4];
            AmoorW "amoor.w" Amo [W4];
            AmominW "amomin.w" Amo [W4];
            AmomaxW "amomax.w" Amo [W4];
            AmominuW "amominu.w" Amo [W4];
            AmomaxuW "amomaxu.w" Amo [W4];
            LrD "lr.d" Lr [W8];
            ScD "sc.d" Amo [W8];
            AmoswapD "amoswap.d" Amo [W8];
            AmoaddD "amoadd.d" Amo [W8];
            AmoxorD "amoxor.d" Amo [W8];
            AmoandD "amoand.d" Amo [W8];
            AmoorD "amoor.d" Amo [W8];
            AmominD "amomin.d" Amo [W8];
            AmomaxD "amomax.d" Amo [W8];
            AmominuD "amominu.d" Amo [W8];
            AmomaxuD "amomaxu.d" Amo [W8];

        } fp: {
            // Floating-point computations (`FP`): `rm` is the rounding-mode field and
            // `imm` the original bits (for an illegal dynamic rounding mode at run time).
            FaddS "fadd.s" F3 [FP | RM];
            FsubS "fsub.s" F3 [FP | RM];
            FmulS "fmul.s" F3 [FP | RM];
            FdivS "fdiv.s" F3 [FP | RM];
            FsqrtS "fsqrt.s" F1 [FP | RM];
            FsgnjS "fsgnj.s" F3 [FP];
            FsgnjnS "fsgnjn.s" F3 [FP];
            FsgnjxS "fsgnjx.s" F3 [FP];
            FminS "fmin.s" F3 [FP];
            FmaxS "fmax.s" F3 [FP];
            FeqS "feq.s" FCmp [FP];
            FltS "flt.s" FCmp [FP];
            FleS "fle.s" FCmp [FP];
            FclassS "fclass.s" XF [FP];
            FcvtWS "fcvt.w.s" XF [FP | RM];
            FcvtWuS "fcvt.wu.s" XF [FP | RM];
            FcvtLS "fcvt.l.s" XF [FP | RM];
            FcvtLuS "fcvt.lu.s" XF [FP | RM];
            FcvtSW "fcvt.s.w" FX [FP | RM];
            FcvtSWu "fcvt.s.wu" FX [FP | RM];
            FcvtSL "fcvt.s.l" FX [FP | RM];
            FcvtSLu "fcvt.s.lu" FX [FP | RM];
            FmvXW "fmv.x.w" XF [FP];
            FmvWX "fmv.w.x" FX [FP];
            FmaddS "fmadd.s" F4 [FP | RM];
            FmsubS "fmsub.s" F4 [FP | RM];
            FnmsubS "fnmsub.s" F4 [FP | RM];
            FnmaddS "fnmadd.s" F4 [FP | RM];
            FaddD "fadd.d" F3 [FP | RM];
            FsubD "fsub.d" F3 [FP | RM];
            FmulD "fmul.d" F3 [FP | RM];
            FdivD "fdiv.d" F3 [FP | RM];
            FsqrtD "fsqrt.d" F1 [FP | RM];
            FsgnjD "fsgnj.d" F3 [FP];
            FsgnjnD "fsgnjn.d" F3 [FP];
            FsgnjxD "fsgnjx.d" F3 [FP];
            FminD "fmin.d" F3 [FP];
            FmaxD "fmax.d" F3 [FP];
            FeqD "feq.d" FCmp [FP];
            FltD "flt.d" FCmp [FP];
            FleD "fle.d" FCmp [FP];
            FclassD "fclass.d" XF [FP];
            FcvtWD "fcvt.w.d" XF [FP | RM];
            FcvtWuD "fcvt.wu.d" XF [FP | RM];
            FcvtLD "fcvt.l.d" XF [FP | RM];
            FcvtLuD "fcvt.lu.d" XF [FP | RM];
            FcvtDW "fcvt.d.w" FX [FP | RM];
            FcvtDWu "fcvt.d.wu" FX [FP | RM];
            FcvtDL "fcvt.d.l" FX [FP | RM];
            FcvtDLu "fcvt.d.lu" FX [FP | RM];
            FmvXD "fmv.x.d" XF [FP];
            FmvDX "fmv.d.x" FX [FP];
            FmaddD "fmadd.d" F4 [FP | RM];
            FmsubD "fmsub.d" F4 [FP | RM];
            FnmsubD "fnmsub.d" F4 [FP | RM];
            FnmaddD "fnmadd.d" F4 [FP | RM];
            FcvtSD "fcvt.s.d" F1 [FP | RM];
            FcvtDS "fcvt.d.s" F1 [FP | RM];
        } }
    };
}

/// How an op's operands are written (the disassembler's layout; `x` integer and `f` float
/// registers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// No operands.
    None,
    /// `x rd, imm20`.
    U,
    /// `x rd, x rs1, imm`.
    I,
    /// `x rd, x rs1, x rs2`.
    R,
    /// `x rd, imm(x rs1)`.
    Load,
    /// `x rs2, imm(x rs1)`.
    Store,
    /// `f rd, imm(x rs1)`.
    FLoad,
    /// `f rs2, imm(x rs1)`.
    FStore,
    /// `x rs1, x rs2, target`.
    B,
    /// `x rd, target`.
    J,
    /// `x rd, imm(x rs1)`.
    Jalr,
    /// `x rd, csr, x rs1`.
    Csr,
    /// `x rd, csr, uimm5` (in `rs1`).
    Csri,
    /// `x rd, (x rs1)`.
    Lr,
    /// `x rd, x rs2, (x rs1)`.
    Amo,
    /// `f rd, f rs1`.
    F1,
    /// `f rd, f rs1, f rs2`.
    F3,
    /// `f rd, f rs1, f rs2, f rs3`.
    F4,
    /// `x rd, f rs1, f rs2`.
    FCmp,
    /// `x rd, f rs1`.
    XF,
    /// `f rd, x rs1`.
    FX,
}

/// Flag bits of an op (see the module doc).
pub mod flag {
    /// Ends a block: a control transfer, a trap, or a change to the code itself.
    pub const END: u16 = 1 << 0;
    /// A conditional branch: leaves the block when taken, falls through otherwise.
    pub const BRANCH: u16 = 1 << 1;
    /// Has no effect but writing integer register `rd`.
    pub const PURE: u16 = 1 << 2;
    /// A floating-point computation (run by `exec_fp`).
    pub const FP: u16 = 1 << 3;
    /// Rounds: its rounding-mode field must be valid (0-4, or 7 = dynamic).
    pub const RM: u16 = 1 << 4;
    /// Memory access widths, in bytes.
    pub const W1: u16 = 1 << 8;
    pub const W2: u16 = 2 << 8;
    pub const W4: u16 = 4 << 8;
    pub const W8: u16 = 8 << 8;
}

/// What the list says of one op.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    pub mnemonic: &'static str,
    pub form: Form,
    pub flags: u16,
}

macro_rules! define_ops {
    (
        int: { $($name:ident $mn:literal $form:ident [$($fl:expr)?];)* }
        fp: { $($fname:ident $fmn:literal $fform:ident [$($ffl:expr)?];)* }
    ) => {
        define_ops!(@all $($name $mn $form [$($fl)?];)* $($fname $fmn $fform [$($ffl)?];)*);

        /// A pattern matching every floating-point computation (the `fp:` part of the
        /// list), so the interpreter's match can be exhaustive without restating it.
        macro_rules! fp_op {
            () => { $(Op::$fname)|* };
        }
        pub(crate) use fp_op;
    };
    (@all $($name:ident $mn:literal $form:ident [$($fl:expr)?];)*) => {
        /// Operations. The interpreter's hot loop matches on this (a `u8`), so it is kept
        /// flat. Generated from `for_each_op!`.
        #[allow(missing_docs)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Op {
            $($name,)*
        }

        impl Op {
            /// Every op, in numbering order.
            pub const ALL: &'static [Op] = &[$(Op::$name,)*];

            const INFO: &'static [Info] = &[$(Info {
                mnemonic: $mn,
                form: Form::$form,
                flags: { #[allow(unused_imports)] use flag::*; 0 $(| $fl)? },
            },)*];
        }
    };
}

for_each_op!(define_ops);

impl Op {
    #[inline]
    pub fn info(self) -> &'static Info {
        &Op::INFO[self as usize]
    }

    #[inline]
    pub fn mnemonic(self) -> &'static str {
        self.info().mnemonic
    }

    #[inline]
    fn has(self, f: u16) -> bool {
        self.info().flags & f != 0
    }

    /// Ends a block (see `flag::END`).
    #[inline]
    pub fn ends_block(self) -> bool {
        self.has(flag::END)
    }

    /// A conditional branch.
    #[inline]
    pub fn is_branch(self) -> bool {
        self.has(flag::BRANCH)
    }

    /// Only writes integer register `rd` (so it is a no-op when `rd` is x0).
    #[inline]
    pub fn is_pure(self) -> bool {
        self.has(flag::PURE)
    }

    /// A floating-point computation.
    #[inline]
    pub fn is_fp(self) -> bool {
        self as u8 >= Op::FaddS as u8
    }

    /// Rounds (its rounding-mode field must be valid).
    #[inline]
    pub fn rounds(self) -> bool {
        self.has(flag::RM)
    }

    /// The width in bytes of the memory it accesses, 0 if none.
    #[inline]
    pub fn width(self) -> u8 {
        (self.info().flags >> 8) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_consistent() {
        for (i, &op) in Op::ALL.iter().enumerate() {
            assert_eq!(op as usize, i);
            let info = op.info();
            // The FP class is exactly the ops flagged FP (`is_fp` is a range test).
            assert_eq!(op.is_fp(), info.flags & flag::FP != 0, "{op:?}");
            let mem = matches!(
                info.form,
                Form::Load | Form::Store | Form::FLoad | Form::FStore | Form::Lr | Form::Amo
            );
            assert_eq!(mem, op.width() != 0, "{op:?}: width and form");
            // Mnemonics are unique.
            for &other in &Op::ALL[..i] {
                assert_ne!(op.mnemonic(), other.mnemonic(), "{op:?} and {other:?}");
            }
        }
        assert!(Op::Jal.ends_block() && !Op::Beq.ends_block() && Op::Beq.is_branch());
        assert!(Op::Add.is_pure() && !Op::Ld.is_pure() && !Op::Csrrs.is_pure());
        assert!(Op::FaddD.rounds() && !Op::FsgnjD.rounds());
    }
}
