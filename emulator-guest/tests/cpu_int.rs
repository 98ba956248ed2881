//! Table tests for the integer instructions (RV64IMA, Zicsr), exits and the decode cache.

mod cpu_common;
use cpu_common::*;
use rvbox_guest::cpu::{Cpu, Exit};
use rvbox_guest::mem::{prot, Access};

const OP: u32 = 0x33;
const OP32: u32 = 0x3b;
const OPIMM: u32 = 0x13;
const OPIMM32: u32 = 0x1b;

/// (insn, rs1 value, rs2 value, expected rd) with rd = x10, rs1 = x11, rs2 = x12.
fn check_rr(table: &[(u32, u64, u64, u64)]) {
    for &(insn, a, bv, want) in table {
        let cpu = exec1(insn, &[(11, a), (12, bv)]);
        assert_eq!(
            cpu.x[10],
            want,
            "{} with {a:#x}, {bv:#x}",
            rvbox_guest::cpu::disasm(insn)
        );
    }
}

fn rr(f7: u32, f3: u32) -> u32 {
    r(OP, 10, f3, 11, 12, f7)
}
fn rrw(f7: u32, f3: u32) -> u32 {
    r(OP32, 10, f3, 11, 12, f7)
}

const MIN: u64 = i64::MIN as u64;
const M1: u64 = u64::MAX;

#[test]
fn alu_register() {
    check_rr(&[
        (rr(0, 0), 5, M1, 4),                               // add
        (rr(0x20, 0), 5, 7, (-2i64) as u64),                // sub
        (rr(0, 1), 1, 65, 2),                               // sll masks shamt to 6 bits
        (rr(0, 2), M1, 0, 1),                               // slt
        (rr(0, 3), M1, 0, 0),                               // sltu
        (rr(0, 4), 0xf0, 0xff, 0x0f),                       // xor
        (rr(0, 5), MIN, 63, 1),                             // srl
        (rr(0x20, 5), MIN, 63, M1),                         // sra
        (rr(0, 6), 0xf0, 0x0f, 0xff),                       // or
        (rr(0, 7), 0xf0, 0x3c, 0x30),                       // and
        (rrw(0, 0), 0x7fff_ffff, 1, 0xffff_ffff_8000_0000), // addw sign-extends
        (rrw(0x20, 0), 0, 1, M1),                           // subw
        (rrw(0, 1), 1, 31 + 32, 0xffff_ffff_8000_0000),     // sllw masks to 5 bits
        (rrw(0, 5), 0x8000_0000, 31, 1),                    // srlw
        (rrw(0, 5), 0xffff_ffff_0000_0000, 0, 0),           // srlw takes low 32 bits
        (rrw(0x20, 5), 0x8000_0000, 31, M1),                // sraw
    ]);
}

#[test]
fn mul_div() {
    check_rr(&[
        (rr(1, 0), 3, M1, (-3i64) as u64),             // mul
        (rr(1, 1), M1, M1, 0),                         // mulh (-1*-1)
        (rr(1, 1), MIN, MIN, 0x4000_0000_0000_0000),   // mulh
        (rr(1, 2), M1, M1, M1),                        // mulhsu -1 * (2^64-1)
        (rr(1, 3), M1, M1, M1 - 1),                    // mulhu
        (rr(1, 4), 7, 0, M1),                          // div by zero
        (rr(1, 4), MIN, M1, MIN),                      // div overflow
        (rr(1, 4), (-7i64) as u64, 2, (-3i64) as u64), // div truncates
        (rr(1, 5), 7, 0, M1),                          // divu by zero
        (rr(1, 6), 7, 0, 7),                           // rem by zero
        (rr(1, 6), MIN, M1, 0),                        // rem overflow
        (rr(1, 6), (-7i64) as u64, 2, M1),             // rem sign follows dividend
        (rr(1, 7), 7, 0, 7),                           // remu by zero
        (rr(1, 7), 7, 4, 3),                           // remu
        (rrw(1, 0), 0x1_0000_0001, 0x8000_0000, 0xffff_ffff_8000_0000), // mulw
        (rrw(1, 4), 0x8000_0000, M1, 0xffff_ffff_8000_0000), // divw overflow
        (rrw(1, 4), 5, 0, M1),                         // divw by zero
        (rrw(1, 5), 0xffff_ffff, 1, M1),               // divuw sign-extends result
        (rrw(1, 5), 5, 0x1_0000_0000, M1),             // divuw by (low 32 bits) zero
        (rrw(1, 6), 0x8000_0000, M1, 0),               // remw overflow
        (rrw(1, 6), 0x1_8000_0005, 0, 0xffff_ffff_8000_0005), // remw by zero: sext(rs1)
        (rrw(1, 7), 0xffff_fffb, 0, 0xffff_ffff_ffff_fffb), // remuw by zero
        (rrw(1, 7), 0xffff_fffb, 0x10, 0xb),           // remuw
    ]);
}

#[test]
fn alu_immediate() {
    let t = |insn: u32, a: u64, want: u64| {
        let cpu = exec1(insn, &[(11, a)]);
        assert_eq!(cpu.x[10], want, "{}", rvbox_guest::cpu::disasm(insn));
    };
    t(i(OPIMM, 10, 0, 11, -1), 0, M1); // addi
    t(i(OPIMM, 10, 2, 11, -1), M1 - 1, 1); // slti
    t(i(OPIMM, 10, 3, 11, -1), 5, 1); // sltiu: imm sign-extended, then unsigned
    t(i(OPIMM, 10, 4, 11, -1), 0xf0, !0xf0); // xori -1 = not
    t(i(OPIMM, 10, 6, 11, 0x80), 1, 0x81); // ori
    t(
        i(OPIMM, 10, 7, 11, -16),
        0x1234_5678_9abc_def1,
        0x1234_5678_9abc_def0,
    ); // andi
    t(i(OPIMM, 10, 1, 11, 63), 1, MIN); // slli 63
    t(i(OPIMM, 10, 5, 11, 63), MIN, 1); // srli 63
    t(i(OPIMM, 10, 5, 11, 0x400 | 63), MIN, M1); // srai 63
    t(i(OPIMM32, 10, 0, 11, 1), 0x7fff_ffff, 0xffff_ffff_8000_0000); // addiw
    t(i(OPIMM32, 10, 0, 11, 0), 0x1_ffff_ffff, M1); // sext.w
    t(i(OPIMM32, 10, 1, 11, 31), 1, 0xffff_ffff_8000_0000); // slliw
    t(i(OPIMM32, 10, 5, 11, 4), 0xffff_ffff_8000_0000, 0x0800_0000); // srliw
    t(
        i(OPIMM32, 10, 5, 11, 0x400 | 4),
        0x8000_0000,
        0xffff_ffff_f800_0000,
    ); // sraiw
       // lui sign-extends, auipc adds the pc.
    assert_eq!(
        exec1(u(0x37, 10, 0x80000), &[]).x[10],
        0xffff_ffff_8000_0000
    );
    assert_eq!(
        exec1(u(0x17, 10, 0xfffff), &[]).x[10],
        CODE.wrapping_sub(0x1000)
    );
    // Writes to x0 are dropped.
    assert_eq!(exec1(addi(0, 0, 5), &[]).x[0], 0);
}

#[test]
fn illegal_shift_and_reserved_encodings() {
    for bad in [
        i(OPIMM32, 10, 1, 11, 32),      // slliw with shamt[5] set
        i(OPIMM, 10, 1, 11, 0x400 | 1), // slli with funct6 != 0
        r(OP, 10, 0, 11, 12, 0x40),     // bad funct7
        0xffff_ffff,
        0x0000_0000,
        b(2, 0, 0, 8),                     // funct3 2 branch
        i(0x67, 1, 1, 2, 0),               // jalr funct3 != 0
        0x3020_0073,                       // mret
        0x1050_0073,                       // wfi
        csr(2, 10, 0x300, 0),              // csrr mstatus
        csr(1, 0, 0xc00, 10),              // csrw cycle (read-only)
        csr(6, 10, 0xc01, 1),              // csrsi time, 1
        r(0x2f, 10, 2, 11, 12, 0x02 << 2), // lr.w with rs2 != 0
        r(0x2f, 10, 1, 11, 12, 0x01 << 2), // AMO funct3 1
        fop(0x00, 1, 5, 2, 3),             // fadd.s rm=5
        fop(0x01, 1, 6, 2, 3),             // fadd.d rm=6
        r4(0x43, 1, 0, 2, 3, 4, 2),        // fmadd with fmt=2 (H)
        fop(0x10, 1, 3, 2, 3),             // fsgnj funct3 3
        fop(0x70, 10, 0, 1, 1),            // fmv.x.w rs2 != 0
    ] {
        let mut m = Machine::new();
        let mut c = Code::default();
        c.w(addi(5, 0, 1)).w(bad);
        m.load(&c);
        let e = m.run(100);
        assert_eq!(
            e,
            Exit::IllegalInstruction { bits: bad },
            "{bad:#010x} decoded as {}",
            rvbox_guest::cpu::disasm(bad)
        );
        assert_eq!(m.cpu.pc, CODE + 4, "pc at the illegal instruction");
        assert_eq!(m.cpu.x[5], 1, "instructions before it ran");
        assert_eq!(m.cpu.instret, 1);
    }
}

#[test]
fn load_widths() {
    let mut m = Machine::new();
    let base = DATA + 0xffd; // crosses into the next page for h/w/d
    m.mem
        .write_bytes(base, &[0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88])
        .unwrap();
    m.cpu.x[5] = base;
    let mut c = Code::default();
    let rds = [10u32, 11, 12, 13, 14, 15, 16];
    for (f3, rd) in [0u32, 1, 2, 3, 4, 5, 6].iter().zip(rds) {
        c.w(i(0x03, rd, *f3, 5, 0));
    }
    m.run_code(&c);
    let x = m.cpu.x;
    assert_eq!(x[10], 0xffff_ffff_ffff_ff81); // lb
    assert_eq!(x[11], 0xffff_ffff_ffff_8281); // lh
    assert_eq!(x[12], 0xffff_ffff_8483_8281); // lw
    assert_eq!(x[13], 0x8887_8685_8483_8281); // ld
    assert_eq!(x[14], 0x81); // lbu
    assert_eq!(x[15], 0x8281); // lhu
    assert_eq!(x[16], 0x8483_8281); // lwu

    // Stores of every width, misaligned.
    let mut m = Machine::new();
    m.cpu.x[5] = DATA + 0x1ffb;
    m.cpu.x[6] = 0x1122_3344_5566_7788;
    let mut c = Code::default();
    c.w(s(0x23, 3, 5, 6, 0)) // sd
        .w(s(0x23, 2, 5, 6, 9)) // sw
        .w(s(0x23, 1, 5, 6, 14)) // sh
        .w(s(0x23, 0, 5, 6, 17)); // sb
    m.run_code(&c);
    let mut buf = [0u8; 18];
    m.mem.read_bytes(DATA + 0x1ffb, &mut buf).unwrap();
    assert_eq!(
        buf,
        [
            0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0, 0x88, 0x77, 0x66, 0x55, 0, 0x88,
            0x77, 0, 0x88
        ]
    );
}

#[test]
fn faults_report_pc_and_address() {
    let mut m = Machine::new();
    m.mem.map(0x9000_0000, 0x1000, prot::READ);
    m.cpu.x[5] = 0x9000_0ffc;
    let mut c = Code::default();
    c.w(addi(6, 0, 7))
        .w(i(0x03, 7, 2, 5, 0)) // lw: fine
        .w(i(0x03, 7, 3, 5, 0)) // ld: crosses into an unmapped page
        .w(addi(6, 0, 9));
    m.load(&c);
    let e = m.run(100);
    match e {
        Exit::Fault(f) => {
            assert_eq!(f.addr, 0x9000_1000);
            assert_eq!(f.access, Access::Read);
            assert!(!f.mapped);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(m.cpu.pc, CODE + 8);
    assert_eq!(m.cpu.instret, 2);
    assert_eq!(m.cpu.x[6], 7);
    // A store to a read-only page.
    let mut m2 = Machine::new();
    m2.mem.map(0x9000_0000, 0x1000, prot::READ);
    m2.cpu.x[5] = 0x9000_0000;
    let mut c = Code::default();
    c.w(s(0x23, 0, 5, 0, 0));
    m2.load(&c);
    match m2.run(10) {
        Exit::Fault(f) => assert!(f.mapped && f.access == Access::Write),
        e => panic!("{e:?}"),
    }
    assert_eq!(m2.cpu.pc, CODE);
    // Fetch from a non-executable page.
    let mut m3 = Machine::new();
    m3.cpu.pc = DATA;
    match m3.run(10) {
        Exit::Fault(f) => assert!(f.mapped && f.access == Access::Exec && f.addr == DATA),
        e => panic!("{e:?}"),
    }
    assert_eq!(m3.cpu.pc, DATA);
}

#[test]
fn instruction_straddling_into_unmapped_page_runs_up_to_it() {
    let mut m = Machine::new();
    // Code page ends at CODE+CODE_SIZE; the next page is unmapped. Put a nop then a 32-bit
    // instruction whose second half would be on the unmapped page.
    let at = CODE + CODE_SIZE - 6;
    m.mem.poke(at, &addi(5, 5, 1).to_le_bytes()).unwrap();
    m.mem.poke(at + 4, &[0x13, 0x00]).unwrap(); // first half of a 32-bit insn
    m.cpu.pc = at;
    match m.run(100) {
        Exit::Fault(f) => {
            assert_eq!(f.access, Access::Exec);
            assert_eq!(f.addr, CODE + CODE_SIZE);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(m.cpu.pc, at + 4);
    assert_eq!(m.cpu.x[5], 1);
}

#[test]
fn branches_and_jumps() {
    // For each branch: taken skips the "addi x10, x10, 1".
    let cases: &[(u32, u64, u64, bool)] = &[
        (0, 5, 5, true),
        (0, 5, 6, false),
        (1, 5, 6, true),
        (1, 5, 5, false),
        (4, M1, 0, true), // blt signed
        (4, 0, M1, false),
        (5, 0, M1, true), // bge
        (5, 3, 3, true),
        (5, M1, 0, false),
        (6, 0, M1, true), // bltu
        (6, M1, 0, false),
        (7, M1, 0, true), // bgeu
        (7, 0, M1, false),
    ];
    for &(f3, a, bv, taken) in cases {
        let mut m = Machine::new();
        m.cpu.x[11] = a;
        m.cpu.x[12] = bv;
        let mut c = Code::default();
        c.w(b(f3, 11, 12, 8)).w(addi(10, 10, 1));
        m.run_code(&c);
        assert_eq!(m.cpu.x[10], (!taken) as u64, "f3={f3} {a:#x} {bv:#x}");
        assert_eq!(m.cpu.instret, if taken { 1 } else { 2 }); // ebreak does not retire
    }
    // Backward branch loop: count to 100.
    let mut m = Machine::new();
    let mut c = Code::default();
    c.w(addi(5, 0, 100))
        .w(addi(10, 10, 3))
        .w(addi(5, 5, -1))
        .w(b(1, 5, 0, -8));
    m.run_code(&c);
    assert_eq!(m.cpu.x[10], 300);
    assert_eq!(m.cpu.instret, 1 + 300);

    // jal links and jumps; jalr clears bit 0 of the target and links.
    let mut m = Machine::new();
    let mut c = Code::default();
    c.w(j(1, 12)) // 0: jal ra, +12
        .w(addi(10, 0, 1)) // 4: skipped
        .w(EBREAK) // 8: target of jalr
        .w(addi(11, 1, 5)) // 12: x11 = ra + 5 = CODE + 9 (odd)
        .w(i(0x67, 5, 0, 11, -1)); // 16: jalr t0, -1(x11) -> CODE + 8
    m.load(&c);
    assert_eq!(m.run(100), Exit::Ebreak);
    assert_eq!(m.cpu.pc, CODE + 8);
    assert_eq!(m.cpu.x[1], CODE + 4);
    assert_eq!(m.cpu.x[5], CODE + 20);
    assert_eq!(m.cpu.x[10], 0);
    // jalr with rd == rs1 uses the old rs1.
    let mut m = Machine::new();
    m.cpu.x[1] = CODE + 8;
    let mut c = Code::default();
    c.w(i(0x67, 1, 0, 1, 0)).w(addi(10, 0, 1)).w(EBREAK);
    m.load(&c);
    assert_eq!(m.run(100), Exit::Ebreak);
    assert_eq!(m.cpu.x[1], CODE + 4);
    assert_eq!(m.cpu.x[10], 0);
}

#[test]
fn ecall_ebreak_budget() {
    let mut m = Machine::new();
    let mut c = Code::default();
    c.w(addi(17, 0, 93)).w(ECALL).w(addi(10, 0, 4)).w(EBREAK);
    m.load(&c);
    assert_eq!(m.run(100), Exit::Ecall);
    assert_eq!(m.cpu.pc, CODE + 4);
    assert_eq!(m.cpu.instret, 1);
    m.cpu.pc += 4;
    assert_eq!(m.run(100), Exit::Ebreak);
    assert_eq!(m.cpu.pc, CODE + 12);
    assert_eq!(m.cpu.x[10], 4);
    assert_eq!(m.cpu.instret, 2);

    // An infinite loop returns Budget with pc at the next instruction to run.
    let mut m = Machine::new();
    let mut c = Code::default();
    c.w(addi(5, 5, 1)).w(j(0, -4));
    m.load(&c);
    assert_eq!(m.run(1000), Exit::Budget);
    let n = m.cpu.instret;
    assert!((1000..1000 + 70).contains(&n), "{n}");
    assert_eq!(m.cpu.x[5], n.div_ceil(2));
    assert_eq!(m.cpu.pc, if n.is_multiple_of(2) { CODE } else { CODE + 4 });
    assert_eq!(m.run(0), Exit::Budget);
    assert_eq!(m.cpu.instret, n);
}

#[test]
fn amo_and_lr_sc() {
    const AMO: u32 = 0x2f;
    let amo = |f5: u32, w: bool| r(AMO, 10, if w { 2 } else { 3 }, 11, 12, f5 << 2);
    let cases: &[(u32, bool, u64, u64, u64)] = &[
        // (funct5, word, mem before, rs2, mem after); rd = sign-extended old value.
        (0x01, true, 0x8000_0000, 5, 5), // amoswap.w
        (0x00, true, 0xffff_ffff, 2, 1), // amoadd.w wraps in 32 bits
        (0x04, true, 0xf0f0_f0f0, 0xffff_ffff, 0x0f0f_0f0f), // amoxor.w
        (0x0c, true, 0xf0f0_f0f0, 0x0ff0, 0xf0), // amoand.w
        (0x08, true, 0x8000_0000, 1, 0x8000_0001), // amoor.w
        (0x10, true, 0x8000_0000, 1, 0x8000_0000), // amomin.w (signed)
        (0x14, true, 0x8000_0000, 1, 1), // amomax.w
        (0x18, true, 0x8000_0000, 1, 1), // amominu.w
        (0x1c, true, 0x8000_0000, 1, 0x8000_0000), // amomaxu.w
        (0x01, false, MIN, 5, 5),        // amoswap.d
        (0x00, false, M1, 2, 1),         // amoadd.d
        (0x04, false, 0xff, 0x0f, 0xf0), // amoxor.d
        (0x0c, false, 0xff, 0x0f, 0x0f), // amoand.d
        (0x08, false, 0xf0, 0x0f, 0xff), // amoor.d
        (0x10, false, MIN, 1, MIN),      // amomin.d
        (0x14, false, MIN, 1, 1),        // amomax.d
        (0x18, false, MIN, 1, 1),        // amominu.d
        (0x1c, false, MIN, 1, MIN),      // amomaxu.d
    ];
    for &(f5, w, before, src, after) in cases {
        let mut m = Machine::new();
        m.mem.write_u64(DATA, before).unwrap();
        // High word guard: .w ops must not touch it.
        m.mem
            .write_u32(
                DATA + 4,
                if w {
                    0xdead_beef
                } else {
                    (before >> 32) as u32
                },
            )
            .unwrap();
        m.cpu.x[11] = DATA;
        m.cpu.x[12] = src | if w { 0xabcd_0000_0000_0000 } else { 0 };
        m.run_code(Code::default().w(amo(f5, w)));
        let old = if w {
            before as u32 as i32 as i64 as u64
        } else {
            before
        };
        assert_eq!(m.cpu.x[10], old, "f5={f5:#x} w={w}");
        if w {
            assert_eq!(m.mem.read_u32(DATA).unwrap() as u64, after, "f5={f5:#x}");
            assert_eq!(m.mem.read_u32(DATA + 4).unwrap(), 0xdead_beef);
        } else {
            assert_eq!(m.mem.read_u64(DATA).unwrap(), after, "f5={f5:#x}");
        }
    }

    // LR/SC: success after LR to the same address, failure without or after another SC.
    let lr = |w: bool, rd: u32| r(AMO, rd, if w { 2 } else { 3 }, 11, 0, 0x02 << 2);
    let sc = |w: bool, rd: u32| r(AMO, rd, if w { 2 } else { 3 }, 11, 12, 0x03 << 2);
    let mut m = Machine::new();
    m.mem.write_u64(DATA, 0xffff_ffff_8000_0001).unwrap();
    m.cpu.x[11] = DATA;
    m.cpu.x[12] = 42;
    let mut c = Code::default();
    c.w(lr(true, 10)) // x10 = sext(0x80000001)
        .w(sc(true, 13)) // succeeds: x13 = 0
        .w(sc(true, 14)) // no reservation: fails, x14 = 1
        .w(lr(false, 15))
        .w(addi(11, 11, 8))
        .w(sc(false, 16)) // different address: fails
        .w(addi(11, 11, -8))
        .w(sc(false, 17)); // reservation was dropped by the failed SC: fails
    m.run_code(&c);
    assert_eq!(m.cpu.x[10], 0xffff_ffff_8000_0001);
    assert_eq!(m.cpu.x[13], 0);
    assert_eq!(m.cpu.x[14], 1);
    assert_eq!(m.cpu.x[15], 0xffff_ffff_0000_002a);
    assert_eq!(m.cpu.x[16], 1);
    assert_eq!(m.cpu.x[17], 1);
    assert_eq!(m.mem.read_u64(DATA).unwrap(), 0xffff_ffff_0000_002a);
    assert_eq!(m.mem.read_u64(DATA + 8).unwrap(), 0);
    // A trap (ecall) between LR and SC drops the reservation, as Linux does.
    let mut m = Machine::new();
    m.cpu.x[11] = DATA;
    let mut c = Code::default();
    c.w(lr(false, 10)).w(ECALL).w(sc(false, 13)).w(EBREAK);
    m.load(&c);
    assert_eq!(m.run(10), Exit::Ecall);
    m.cpu.pc += 4;
    assert_eq!(m.run(10), Exit::Ebreak);
    assert_eq!(m.cpu.x[13], 1);
}

#[test]
fn csrs() {
    let mut m = Machine::new();
    let mut c = Code::default();
    c.w(addi(5, 0, 0xff))
        .w(csr(1, 10, 0x003, 5)) // csrrw x10, fcsr, x5 (old fcsr = 0)
        .w(csr(2, 11, 0x001, 0)) // frflags -> 0x1f
        .w(csr(2, 12, 0x002, 0)) // frrm -> 7
        .w(csr(7, 13, 0x001, 0b101)) // csrrci fflags: clear NX|OF
        .w(csr(5, 14, 0x002, 2)) // csrrwi frm, RDN
        .w(csr(2, 15, 0x003, 0)) // frcsr
        .w(csr(6, 16, 0x001, 1)) // csrrsi fflags, NX
        .w(csr(2, 17, 0xc02, 0)) // rdinstret: 8 retired before it
        .w(csr(2, 18, 0xc00, 0)) // rdcycle
        .w(csr(2, 19, 0xc01, 0)) // rdtime
        .w(csr(3, 20, 0x003, 5)); // csrrc fcsr, 0xff
    m.run_code(&c);
    let x = m.cpu.x;
    assert_eq!(x[10], 0);
    assert_eq!(x[11], 0x1f);
    assert_eq!(x[12], 7);
    assert_eq!(x[13], 0x1f);
    assert_eq!(x[14], 7);
    assert_eq!(x[15], 0x40 | 0x1a);
    assert_eq!(x[17], 8);
    assert_eq!(x[18], 9);
    assert_eq!(x[20], 0x5b);
    assert_eq!(m.cpu.fcsr, 0);
    assert_eq!(m.cpu.instret, 12);
    // rdtime counts at 10 MHz.
    let mut m2 = Machine::new();
    std::thread::sleep(std::time::Duration::from_millis(20));
    m2.run_code(Code::default().w(csr(2, 10, 0xc01, 0)));
    let t = m2.cpu.x[10];
    assert!((200_000..10_000_000).contains(&t), "rdtime {t}");
    assert!(x[19] < 10_000_000);
}

#[test]
fn fence_i_and_code_generation_flush_decoded_code() {
    let mut m = Machine::new();
    // Writable and executable code page for self-modifying code.
    m.mem
        .map(0x7000_0000, 0x1000, prot::READ | prot::WRITE | prot::EXEC);
    let at = 0x7000_0000u64;
    m.mem.write_u32(at, addi(10, 0, 1)).unwrap();
    m.mem.write_u32(at + 4, EBREAK).unwrap();
    m.cpu.pc = at;
    assert_eq!(m.run(10), Exit::Ebreak);
    assert_eq!(m.cpu.x[10], 1);
    // Rewrite the code; the cached block is stale until fence.i.
    m.mem.write_u32(at, addi(10, 0, 2)).unwrap();
    // Code at at+8: fence.i, then jump back to `at`.
    m.mem.write_u32(at + 8, 0x0000_100f).unwrap();
    m.mem.write_u32(at + 12, j(0, -12)).unwrap();
    m.cpu.pc = at + 8;
    assert_eq!(m.run(10), Exit::Ebreak);
    assert_eq!(m.cpu.x[10], 2);
    // flush_icache() does the same.
    m.mem.write_u32(at, addi(10, 0, 3)).unwrap();
    m.cpu.flush_icache();
    m.cpu.pc = at;
    assert_eq!(m.run(10), Exit::Ebreak);
    assert_eq!(m.cpu.x[10], 3);
    // A mapping change (which bumps code_generation) also drops decoded code.
    m.mem.poke(at, &addi(10, 0, 4).to_le_bytes()).unwrap();
    m.mem.protect(at, 0x1000, prot::READ | prot::EXEC);
    m.cpu.pc = at;
    assert_eq!(m.run(10), Exit::Ebreak);
    assert_eq!(m.cpu.x[10], 4);
    // Unmapping makes the next fetch fault rather than run stale code.
    m.mem.unmap(at, 0x1000);
    m.cpu.pc = at;
    assert!(matches!(m.run(10), Exit::Fault(_)));
}

#[test]
fn clone_copies_state() {
    let mut a = Cpu::new();
    a.x[5] = 9;
    a.pc = 0x1234;
    let b = a.clone();
    assert_eq!(b.x[5], 9);
    assert_eq!(b.pc, 0x1234);
}

/// Blocks go on past branches not taken (superblocks) and are cut at MAX_BLOCK: the
/// architectural state at every way out is still exact (pc, registers, instret), including
/// a fault after a branch not taken, a taken branch out of the middle, a budget exit
/// and long straight-line code.
#[test]
fn superblocks_leave_exact_state() {
    // 200 straight-line addis (over three blocks' worth), then ebreak.
    let mut m = Machine::new();
    let mut c = Code::default();
    for _ in 0..200 {
        c.w(addi(10, 10, 1));
    }
    m.run_code(&c);
    assert_eq!((m.cpu.x[10], m.cpu.instret), (200, 200));

    // Not taken, not taken, then a load that faults: pc at the load, two branches and the
    // addis before them retired.
    let mut m = Machine::new();
    let mut c = Code::default();
    c.w(addi(5, 0, 1)) // t0 = 1
        .w(b(0, 5, 0, 8)) // beq t0, zero, +8: not taken
        .w(addi(6, 0, 2)) // t1 = 2
        .w(b(1, 5, 5, 8)) // bne t0, t0, +8: not taken
        .w(i(0x03, 7, 3, 0, 16)) // ld t2, 16(zero): faults
        .w(EBREAK);
    m.load(&c);
    m.cpu.pc = CODE;
    match m.run(1000) {
        Exit::Fault(f) => assert_eq!(f.addr, 16),
        e => panic!("{e:?}"),
    }
    assert_eq!(m.cpu.pc, CODE + 16);
    assert_eq!((m.cpu.x[5], m.cpu.x[6], m.cpu.instret), (1, 2, 4));

    // A taken branch out of the middle of a block: the ops after it do not run.
    let mut m = Machine::new();
    let mut c = Code::default();
    c.w(addi(5, 0, 3)) // t0 = 3
        .w(b(1, 5, 0, 12)) // bnez t0, +12: taken
        .w(addi(6, 0, 7)) // skipped
        .w(EBREAK) // skipped
        .w(addi(7, 0, 9)) // t2 = 9
        .w(EBREAK);
    m.load(&c);
    m.cpu.pc = CODE;
    assert_eq!(m.run(1000), Exit::Ebreak);
    assert_eq!(m.cpu.pc, CODE + 20);
    assert_eq!((m.cpu.x[6], m.cpu.x[7], m.cpu.instret), (0, 9, 3));

    // A countdown loop under a small budget: every budget exit leaves pc and instret
    // consistent, and the loop still ends with the right count.
    let mut m = Machine::new();
    let mut c = Code::default();
    c.w(addi(5, 0, 100)) // t0 = 100
        .w(addi(6, 6, 2)) // loop: t1 += 2
        .w(addi(5, 5, -1)) // t0 -= 1
        .w(b(1, 5, 0, -8)) // bnez t0, loop
        .w(EBREAK);
    m.load(&c);
    m.cpu.pc = CODE;
    let mut exits = 0;
    loop {
        match m.run(7) {
            Exit::Budget => {
                exits += 1;
                assert!(m.cpu.pc >= CODE && m.cpu.pc < CODE + 16, "{:#x}", m.cpu.pc);
            }
            Exit::Ebreak => break,
            e => panic!("{e:?}"),
        }
    }
    assert!(exits > 10);
    assert_eq!((m.cpu.x[5], m.cpu.x[6], m.cpu.instret), (0, 200, 301));
}
