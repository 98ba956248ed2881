//! Table tests for the F and D extensions through the interpreter: rounding modes, flags,
//! NaN boxing, conversions, min/max, compares, classification, FMA, and the host-float
//! fast path against the software path.

mod cpu_common;
use cpu_common::*;
use rvbox_guest::cpu::{Cpu, Exit};

const NX: u32 = 1;
const UF: u32 = 2;
const OF: u32 = 4;
const DZ: u32 = 8;
const NV: u32 = 16;
const RNE: u32 = 0;
const RTZ: u32 = 1;
const RDN: u32 = 2;
const RUP: u32 = 3;
const RMM: u32 = 4;
const DYN: u32 = 7;

const QNAN_S: u64 = 0xffff_ffff_7fc0_0000;
const SNAN_S: u64 = 0xffff_ffff_7f80_0001;
const QNAN_D: u64 = 0x7ff8_0000_0000_0000;
const SNAN_D: u64 = 0x7ff0_0000_0000_0001;

fn sb(x: f32) -> u64 {
    x.to_bits() as u64 | 0xffff_ffff_0000_0000
}
fn db(x: f64) -> u64 {
    x.to_bits()
}

/// Runs one instruction with f1, f2, f3 = `fs`, x11 = `xs1`, fcsr = `fcsr`.
fn fexec(insn: u32, fs: [u64; 3], xs1: u64, fcsr: u32) -> Cpu {
    let mut m = Machine::new();
    m.cpu.f[1] = fs[0];
    m.cpu.f[2] = fs[1];
    m.cpu.f[3] = fs[2];
    m.cpu.x[11] = xs1;
    m.cpu.fcsr = fcsr;
    let mut c = Code::default();
    c.w(insn);
    m.run_code(&c);
    m.cpu
}

/// f10 = op(f1, f2) and the fflags it raised.
fn fbin(f7: u32, rm: u32, a: u64, b: u64, frm: u32) -> (u64, u32) {
    let rs2 = if f7 == 0x2c || f7 == 0x2d { 0 } else { 2 }; // fsqrt has rs2 = 0
    let cpu = fexec(fop(f7, 10, rm, 1, rs2), [a, b, 0], 0, frm << 5);
    (cpu.f[10], cpu.fcsr & 0x1f)
}

#[test]
fn rounding_modes_static_and_dynamic() {
    let half_ulp = 2f64.powi(-53);
    let up = db(1.0 + 2f64.powi(-52));
    let cases = [
        (RNE, db(1.0), db(-1.0)),
        (RTZ, db(1.0), db(-1.0)),
        (RDN, db(1.0), db(-(1.0 + 2f64.powi(-52)))),
        (RUP, up, db(-1.0)),
        (RMM, up, db(-(1.0 + 2f64.powi(-52)))),
    ];
    for (rm, pos, neg) in cases {
        // Static rm in the instruction.
        assert_eq!(
            fbin(0x01, rm, db(1.0), db(half_ulp), 0),
            (pos, NX),
            "rm={rm}"
        );
        assert_eq!(
            fbin(0x01, rm, db(-1.0), db(-half_ulp), 0),
            (neg, NX),
            "rm={rm}"
        );
        // Dynamic rm from frm (with a different static field ignored).
        assert_eq!(
            fbin(0x01, DYN, db(1.0), db(half_ulp), rm),
            (pos, NX),
            "frm={rm}"
        );
        assert_eq!(fbin(0x01, DYN, db(-1.0), db(-half_ulp), rm), (neg, NX));
    }
    // Single precision: 1/3 rounds differently per mode; fdiv.s.
    let third_dn = f32::from_bits(0x3eaa_aaaa);
    let third_up = f32::from_bits(0x3eaa_aaab);
    for (rm, want) in [
        (RNE, third_up),
        (RTZ, third_dn),
        (RDN, third_dn),
        (RUP, third_up),
        (RMM, third_up),
    ] {
        assert_eq!(
            fbin(0x0c, rm, sb(1.0), sb(3.0), 0),
            (sb(want), NX),
            "rm={rm}"
        );
    }
    // Exact results raise nothing.
    assert_eq!(fbin(0x09, RNE, db(1.5), db(2.0), 0), (db(3.0), 0));
}

#[test]
fn invalid_rounding_modes_are_illegal() {
    for frm in [5, 6, 7] {
        let insn = fop(0x01, 10, DYN, 1, 2);
        let mut m = Machine::new();
        m.cpu.fcsr = frm << 5;
        m.load(Code::default().w(insn));
        assert_eq!(
            m.run(10),
            Exit::IllegalInstruction { bits: insn },
            "frm={frm}"
        );
        assert_eq!(m.cpu.pc, CODE);
    }
    // Ops without an rm field ignore an invalid frm.
    let cpu = fexec(fop(0x11, 10, 0, 1, 2), [db(1.0), db(-2.0), 0], 0, 7 << 5);
    assert_eq!(cpu.f[10], db(-1.0));
}

#[test]
fn exception_flags() {
    assert_eq!(
        fbin(0x0d, RNE, db(1.0), db(0.0), 0),
        (db(f64::INFINITY), DZ)
    );
    assert_eq!(
        fbin(0x0d, RNE, db(-1.0), db(0.0), 0),
        (db(f64::NEG_INFINITY), DZ)
    );
    assert_eq!(fbin(0x0d, RNE, db(0.0), db(0.0), 0), (QNAN_D, NV));
    assert_eq!(fbin(0x0c, RNE, sb(0.0), sb(0.0), 0), (QNAN_S, NV));
    assert_eq!(
        fbin(0x01, RNE, db(f64::INFINITY), db(f64::NEG_INFINITY), 0),
        (QNAN_D, NV)
    );
    assert_eq!(fbin(0x09, RNE, db(f64::INFINITY), db(0.0), 0), (QNAN_D, NV));
    assert_eq!(fbin(0x2d, RNE, db(-4.0), 0, 0), (QNAN_D, NV));
    assert_eq!(fbin(0x2d, RNE, db(-0.0), 0, 0), (db(-0.0), 0));
    assert_eq!(fbin(0x2c, RNE, sb(2.0), 0, 0), (sb(2f32.sqrt()), NX));
    assert_eq!(
        fbin(0x09, RNE, db(1e300), db(1e300), 0),
        (db(f64::INFINITY), OF | NX)
    );
    assert_eq!(
        fbin(0x09, RTZ, db(1e300), db(-1e300), 0),
        (db(-f64::MAX), OF | NX)
    );
    assert_eq!(fbin(0x08, RNE, sb(1e-30), sb(1e-30), 0), (sb(0.0), UF | NX));
    assert_eq!(
        fbin(0x08, RUP, sb(1e-30), sb(1e-30), 0),
        (sb(f32::from_bits(1)), UF | NX)
    );
    // Signaling NaN in an arithmetic op: NV and the canonical NaN.
    assert_eq!(fbin(0x01, RNE, SNAN_D, db(1.0), 0), (QNAN_D, NV));
    // A quiet NaN input propagates as the canonical NaN without flags.
    assert_eq!(
        fbin(0x01, RNE, 0x7ff8_0000_dead_beef, db(1.0), 0),
        (QNAN_D, 0)
    );
    // Flags accumulate.
    let cpu = fexec(fop(0x0d, 10, RNE, 1, 2), [db(1.0), db(0.0), 0], 0, NX | OF);
    assert_eq!(cpu.fcsr, NX | OF | DZ);
}

#[test]
fn nan_boxing() {
    let not_boxed = 0x0000_0000_3f80_0000; // 1.0f32 without the upper ones
    let partly_boxed = 0xffff_fffe_3f80_0000;
    for bad in [not_boxed, partly_boxed] {
        // Arithmetic sees the canonical NaN: result is the canonical NaN, no NV (quiet).
        assert_eq!(fbin(0x00, RNE, bad, sb(1.0), 0), (QNAN_S, 0));
        // fsgnj.s (fmv.s) copies the canonical NaN.
        assert_eq!(fbin(0x10, 0, bad, bad, 0).0, QNAN_S);
        // feq.s: quiet NaN, no flag.
        let cpu = fexec(fop(0x50, 10, 2, 1, 2), [bad, sb(1.0), 0], 0, 0);
        assert_eq!((cpu.x[10], cpu.fcsr), (0, 0));
        // fmv.x.w moves the low 32 bits whatever the upper bits (sign-extended).
        let cpu = fexec(fop(0x70, 10, 0, 1, 0), [bad | 0x8000_0000, 0, 0], 0, 0);
        assert_eq!(cpu.x[10], 0xffff_ffff_bf80_0000);
        // fcvt.d.s of a non-boxed value: canonical NaN in, canonical NaN out.
        let cpu = fexec(fop(0x21, 10, 0, 1, 0), [bad, 0, 0], 0, 0);
        assert_eq!(cpu.f[10], QNAN_D);
        // fsw stores the low 32 bits unchanged.
        let mut m = Machine::new();
        m.cpu.f[1] = bad;
        m.cpu.x[5] = DATA;
        m.run_code(Code::default().w(s(0x27, 2, 5, 1, 0)));
        assert_eq!(m.mem.read_u32(DATA).unwrap(), 0x3f80_0000);
    }
    // Narrow results are boxed: fmv.w.x, flw, fcvt.s.d, fcvt.s.w.
    let cpu = fexec(fop(0x78, 10, 0, 11, 0), [0; 3], 0x1234_5678_3f80_0000, 0);
    assert_eq!(cpu.f[10], sb(1.0));
    let cpu = fexec(fop(0x20, 10, 0, 1, 1), [db(2.0), 0, 0], 0, 0);
    assert_eq!(cpu.f[10], sb(2.0));
    let cpu = fexec(fop(0x68, 10, 0, 11, 0), [0; 3], (-3i64) as u64, 0);
    assert_eq!(cpu.f[10], sb(-3.0));
    let mut m = Machine::new();
    m.cpu.x[5] = DATA;
    m.mem.write_u32(DATA, 0x4000_0000).unwrap();
    m.run_code(Code::default().w(i(0x07, 10, 2, 5, 0)));
    assert_eq!(m.cpu.f[10], sb(2.0));
    // A double-precision op uses all 64 bits.
    assert_eq!(fbin(0x01, RNE, sb(1.0), db(0.0), 0), (QNAN_D, 0));
}

#[test]
fn conversions_to_int_saturate() {
    // (f7, rs2 variant, input, rm, expected x10, flags)
    let w = 0u32;
    let wu = 1;
    let l = 2;
    let lu = 3;
    let cases: &[(u32, u32, u64, u32, u64, u32)] = &[
        (0x61, w, db(2.5), RNE, 2, NX),
        (0x61, w, db(3.5), RNE, 4, NX),
        (0x61, w, db(2.5), RMM, 3, NX),
        (0x61, w, db(-2.5), RMM, (-3i64) as u64, NX),
        (0x61, w, db(-2.5), RTZ, (-2i64) as u64, NX),
        (0x61, w, db(-2.1), RDN, (-3i64) as u64, NX),
        (0x61, w, db(2.1), RUP, 3, NX),
        (0x61, w, db(2147483647.0), RNE, 0x7fff_ffff, 0),
        (0x61, w, db(2147483648.0), RNE, 0x7fff_ffff, NV),
        (0x61, w, db(-2147483648.0), RNE, 0xffff_ffff_8000_0000, 0),
        (0x61, w, db(-2147483649.0), RNE, 0xffff_ffff_8000_0000, NV),
        (0x61, w, db(-2147483648.5), RTZ, 0xffff_ffff_8000_0000, NX),
        (0x61, w, db(f64::INFINITY), RNE, 0x7fff_ffff, NV),
        (
            0x61,
            w,
            db(f64::NEG_INFINITY),
            RNE,
            0xffff_ffff_8000_0000,
            NV,
        ),
        (0x61, w, QNAN_D, RNE, 0x7fff_ffff, NV),
        (0x61, w, 0xfff8_0000_0000_0000, RNE, 0x7fff_ffff, NV), // negative NaN too
        (0x61, wu, db(4294967295.0), RNE, u64::MAX, 0),         // sign-extended
        (0x61, wu, db(4294967296.0), RNE, u64::MAX, NV),
        (0x61, wu, db(-1.0), RNE, 0, NV),
        (0x61, wu, db(-0.5), RNE, 0, NX), // rounds to -0: in range
        (0x61, wu, db(-0.5), RDN, 0, NV), // rounds to -1
        (0x61, wu, QNAN_D, RNE, u64::MAX, NV),
        (0x61, l, db(9.3e18), RNE, i64::MAX as u64, NV),
        (0x61, l, db(i64::MIN as f64), RNE, i64::MIN as u64, 0),
        (0x61, l, db(f64::NEG_INFINITY), RNE, i64::MIN as u64, NV),
        (0x61, l, QNAN_D, RNE, i64::MAX as u64, NV),
        (0x61, l, db(1e-300), RUP, 1, NX),
        (0x61, lu, db(1.8e19), RNE, 18000000000000000000, 0),
        (0x61, lu, db(1.9e19), RNE, u64::MAX, NV),
        (0x61, lu, db(-3.0), RNE, 0, NV),
        (0x61, lu, QNAN_D, RNE, u64::MAX, NV),
        (0x60, w, sb(-1.5), RNE, (-2i64) as u64, NX),
        (0x60, w, sb(3e9), RNE, 0x7fff_ffff, NV),
        (
            0x60,
            wu,
            sb(3e9),
            RNE,
            3_000_000_000u32 as i32 as i64 as u64,
            0,
        ),
        (0x60, l, sb(-1e19), RNE, i64::MIN as u64, NV),
        (0x60, lu, sb(1e19), RNE, 1e19f32 as u64, 0),
        (0x60, lu, SNAN_S, RNE, u64::MAX, NV),
        (0x60, w, 0x3f80_0000, RNE, 0x7fff_ffff, NV), // not boxed: NaN
    ];
    for &(f7, v, input, rm, want, flags) in cases {
        let cpu = fexec(fop(f7, 10, rm, 1, v), [input, 0, 0], 0, 0);
        assert_eq!(
            (cpu.x[10], cpu.fcsr),
            (want, flags),
            "f7={f7:#x} variant={v} in={input:#x} rm={rm}"
        );
    }
}

#[test]
fn conversions_from_int_and_between_formats() {
    let cases: &[(u32, u32, u64, u32, u64, u32)] = &[
        // (f7, variant, x11, rm, f10, flags)
        (0x69, 0, 0xffff_ffff_ffff_fffe, RNE, db(-2.0), 0), // fcvt.d.w
        (0x69, 0, 0x0000_0001_8000_0000, RNE, db(-2147483648.0), 0), // uses low 32 bits
        (0x69, 1, 0xffff_ffff_ffff_ffff, RNE, db(4294967295.0), 0), // fcvt.d.wu
        (0x69, 2, i64::MIN as u64, RNE, db(i64::MIN as f64), 0), // fcvt.d.l
        (0x69, 2, (1 << 53) + 1, RNE, db(9007199254740992.0), NX),
        (0x69, 2, (1 << 53) + 1, RUP, db(9007199254740994.0), NX),
        (0x69, 3, u64::MAX, RNE, db(1.8446744073709552e19), NX), // fcvt.d.lu
        (0x69, 3, u64::MAX, RTZ, db(1.844674407370955e19), NX),
        (0x68, 0, 16777217, RNE, sb(16777216.0), NX), // fcvt.s.w
        (0x68, 0, 16777217, RUP, sb(16777218.0), NX),
        (0x68, 1, 0xffff_ffff, RNE, sb(4294967296.0), NX), // fcvt.s.wu
        (0x68, 2, (-5i64) as u64, RNE, sb(-5.0), 0),       // fcvt.s.l
        (0x68, 3, u64::MAX, RDN, sb(1.8446743e19), NX),    // fcvt.s.lu
        (0x68, 0, 0, RNE, sb(0.0), 0),
    ];
    for &(f7, v, x, rm, want, flags) in cases {
        let cpu = fexec(fop(f7, 10, rm, 11, v), [0; 3], x, 0);
        assert_eq!(
            (cpu.f[10], cpu.fcsr),
            (want, flags),
            "f7={f7:#x} v={v} x={x:#x} rm={rm}"
        );
    }
    // fcvt.s.d rounds (per mode), overflows, underflows; fcvt.d.s is exact.
    let sd = |a: u64, rm: u32| {
        let cpu = fexec(fop(0x20, 10, rm, 1, 1), [a, 0, 0], 0, 0);
        (cpu.f[10], cpu.fcsr)
    };
    assert_eq!(sd(db(0.1), RNE), (sb(0.1), NX));
    assert_eq!(
        sd(db(0.1), RTZ),
        (sb(f32::from_bits(0.1f32.to_bits() - 1)), NX)
    );
    assert_eq!(sd(db(1e300), RNE), (sb(f32::INFINITY), OF | NX));
    assert_eq!(sd(db(1e300), RTZ), (sb(f32::MAX), OF | NX));
    assert_eq!(sd(db(1e-300), RNE), (sb(0.0), UF | NX));
    assert_eq!(sd(db(-1e-300), RDN), (sb(-f32::from_bits(1)), UF | NX));
    assert_eq!(sd(SNAN_D, RNE), (QNAN_S, NV));
    assert_eq!(sd(db(f64::NEG_INFINITY), RNE), (sb(f32::NEG_INFINITY), 0));
    let ds = |a: u64| {
        let cpu = fexec(fop(0x21, 10, 0, 1, 0), [a, 0, 0], 0, 0);
        (cpu.f[10], cpu.fcsr)
    };
    assert_eq!(ds(sb(0.1)), (db(0.1f32 as f64), 0));
    assert_eq!(ds(sb(f32::from_bits(1))), (db(f32::from_bits(1) as f64), 0));
    assert_eq!(ds(SNAN_S), (QNAN_D, NV));
    assert_eq!(ds(0xffff_ffff_ffc0_0000), (QNAN_D, 0));
}

#[test]
fn min_max_and_sign_injection() {
    // fmin/fmax (f7 0x14/0x15 S, 0x15 D; funct3 0 = min, 1 = max)
    let mm =
        |d: bool, max: bool, a: u64, b: u64| fbin(if d { 0x15 } else { 0x14 }, max as u32, a, b, 0);
    assert_eq!(mm(true, false, QNAN_D, db(1.0)), (db(1.0), 0));
    assert_eq!(mm(true, true, db(1.0), QNAN_D), (db(1.0), 0));
    assert_eq!(mm(true, false, SNAN_D, db(1.0)), (db(1.0), NV));
    assert_eq!(mm(true, false, QNAN_D, SNAN_D), (QNAN_D, NV));
    assert_eq!(mm(true, true, 0xfff8_0000_0000_0001, QNAN_D), (QNAN_D, 0));
    assert_eq!(mm(true, false, db(-0.0), db(0.0)), (db(-0.0), 0));
    assert_eq!(mm(true, false, db(0.0), db(-0.0)), (db(-0.0), 0));
    assert_eq!(mm(true, true, db(-0.0), db(0.0)), (db(0.0), 0));
    assert_eq!(mm(true, true, db(0.0), db(-0.0)), (db(0.0), 0));
    assert_eq!(mm(true, false, db(-3.0), db(2.0)), (db(-3.0), 0));
    assert_eq!(mm(true, true, db(-3.0), db(2.0)), (db(2.0), 0));
    assert_eq!(
        mm(true, true, db(f64::NEG_INFINITY), db(-1e308)),
        (db(-1e308), 0)
    );
    assert_eq!(mm(false, false, sb(-0.0), sb(0.0)), (sb(-0.0), 0));
    assert_eq!(mm(false, true, SNAN_S, sb(5.0)), (sb(5.0), NV));
    assert_eq!(mm(false, true, QNAN_S, QNAN_S), (QNAN_S, 0));
    assert_eq!(mm(false, false, 0x1234, sb(5.0)), (sb(5.0), 0)); // unboxed = qNaN
                                                                 // fsgnj, fsgnjn, fsgnjx keep NaN payloads and touch only the sign.
    let sg = |d: bool, f3: u32, a: u64, b: u64| fbin(if d { 0x11 } else { 0x10 }, f3, a, b, 0);
    assert_eq!(sg(true, 0, db(3.0), db(-1.0)), (db(-3.0), 0));
    assert_eq!(sg(true, 1, db(3.0), db(-1.0)), (db(3.0), 0));
    assert_eq!(sg(true, 2, db(-3.0), db(-1.0)), (db(3.0), 0));
    assert_eq!(sg(true, 1, SNAN_D, SNAN_D), (SNAN_D | 1 << 63, 0));
    assert_eq!(sg(false, 0, sb(3.0), sb(-1.0)), (sb(-3.0), 0));
    assert_eq!(sg(false, 1, sb(-3.0), sb(-1.0)), (sb(3.0), 0));
    assert_eq!(sg(false, 2, sb(-3.0), sb(-1.0)), (sb(3.0), 0));
    assert_eq!(sg(false, 2, SNAN_S, sb(-1.0)), (SNAN_S | 0x8000_0000, 0));
}

#[test]
fn compares() {
    let cmp = |d: bool, f3: u32, a: u64, b: u64| {
        let cpu = fexec(
            fop(if d { 0x51 } else { 0x50 }, 10, f3, 1, 2),
            [a, b, 0],
            0,
            0,
        );
        (cpu.x[10], cpu.fcsr)
    };
    let (le, lt, eq) = (0, 1, 2);
    assert_eq!(cmp(true, eq, db(1.0), db(1.0)), (1, 0));
    assert_eq!(cmp(true, eq, db(-0.0), db(0.0)), (1, 0));
    assert_eq!(cmp(true, eq, QNAN_D, QNAN_D), (0, 0));
    assert_eq!(cmp(true, eq, SNAN_D, db(1.0)), (0, NV));
    assert_eq!(cmp(true, lt, QNAN_D, db(1.0)), (0, NV));
    assert_eq!(cmp(true, le, db(1.0), QNAN_D), (0, NV));
    assert_eq!(cmp(true, lt, db(-0.0), db(0.0)), (0, 0));
    assert_eq!(cmp(true, le, db(0.0), db(-0.0)), (1, 0));
    assert_eq!(cmp(true, lt, db(-2.0), db(-1.0)), (1, 0));
    assert_eq!(cmp(true, le, db(-1.0), db(-2.0)), (0, 0));
    assert_eq!(cmp(true, lt, db(f64::NEG_INFINITY), db(-f64::MAX)), (1, 0));
    assert_eq!(cmp(false, lt, sb(1.0), sb(2.0)), (1, 0));
    assert_eq!(cmp(false, eq, SNAN_S, sb(2.0)), (0, NV));
    assert_eq!(cmp(false, le, QNAN_S, sb(2.0)), (0, NV));
    assert_eq!(cmp(false, eq, sb(2.0), sb(2.0)), (1, 0));
    // rd = x0 is not written.
    let cpu = fexec(fop(0x51, 0, eq, 1, 2), [db(1.0), db(1.0), 0], 0, 0);
    assert_eq!(cpu.x[0], 0);
}

#[test]
fn classify() {
    let cls = |d: bool, a: u64| {
        fexec(
            fop(if d { 0x71 } else { 0x70 }, 10, 1, 1, 0),
            [a, 0, 0],
            0,
            0,
        )
        .x[10]
    };
    let d_cases = [
        (db(f64::NEG_INFINITY), 0),
        (db(-1.0), 1),
        (db(-5e-324), 2),
        (db(-0.0), 3),
        (db(0.0), 4),
        (db(5e-324), 5),
        (db(1.0), 6),
        (db(f64::INFINITY), 7),
        (SNAN_D, 8),
        (QNAN_D, 9),
    ];
    for (v, bit) in d_cases {
        assert_eq!(cls(true, v), 1 << bit, "{v:#x}");
    }
    let s_cases = [
        (sb(f32::NEG_INFINITY), 0),
        (sb(-1.0), 1),
        (sb(-f32::from_bits(1)), 2),
        (sb(-0.0), 3),
        (sb(0.0), 4),
        (sb(f32::from_bits(0x7f_ffff)), 5),
        (sb(f32::MIN_POSITIVE), 6),
        (sb(f32::INFINITY), 7),
        (SNAN_S, 8),
        (QNAN_S, 9),
        (0x3f80_0000, 9), // not boxed
    ];
    for (v, bit) in s_cases {
        assert_eq!(cls(false, v), 1 << bit, "{v:#x}");
    }
}

#[test]
fn fused_multiply_add() {
    // (op, fmt) with op 0x43 fmadd, 0x47 fmsub, 0x4b fnmsub, 0x4f fnmadd
    let fma = |op: u32, d: bool, a: u64, b: u64, c: u64, rm: u32| {
        let cpu = fexec(r4(op, 10, rm, 1, 2, 3, d as u32), [a, b, c], 0, 0);
        (cpu.f[10], cpu.fcsr)
    };
    let (a, b, c) = (db(2.0), db(3.0), db(1.0));
    assert_eq!(fma(0x43, true, a, b, c, RNE), (db(7.0), 0));
    assert_eq!(fma(0x47, true, a, b, c, RNE), (db(5.0), 0));
    assert_eq!(fma(0x4b, true, a, b, c, RNE), (db(-5.0), 0));
    assert_eq!(fma(0x4f, true, a, b, c, RNE), (db(-7.0), 0));
    let (a, b, c) = (sb(2.0), sb(3.0), sb(1.0));
    assert_eq!(fma(0x43, false, a, b, c, RNE), (sb(7.0), 0));
    assert_eq!(fma(0x47, false, a, b, c, RNE), (sb(5.0), 0));
    assert_eq!(fma(0x4b, false, a, b, c, RNE), (sb(-5.0), 0));
    assert_eq!(fma(0x4f, false, a, b, c, RNE), (sb(-7.0), 0));
    // Fused: (1 + 2^-30)(1 - 2^-30) - 1 = -2^-60 exactly (unfused gives 0).
    let x = db(1.0 + 2f64.powi(-30));
    let y = db(1.0 - 2f64.powi(-30));
    assert_eq!(
        fma(0x43, true, x, y, db(-1.0), RNE),
        (db(-(2f64.powi(-60))), 0)
    );
    // inf * 0 + qNaN raises NV (RISC-V requires it even with a quiet NaN addend).
    assert_eq!(
        fma(0x43, true, db(f64::INFINITY), db(0.0), QNAN_D, RNE),
        (QNAN_D, NV)
    );
    // inf * 1 - inf is invalid.
    assert_eq!(
        fma(
            0x47,
            true,
            db(f64::INFINITY),
            db(1.0),
            db(f64::INFINITY),
            RNE
        ),
        (QNAN_D, NV)
    );
    // Exact zero sums: +0 except when rounding down.
    assert_eq!(
        fma(0x43, true, db(1.0), db(1.0), db(-1.0), RNE),
        (db(0.0), 0)
    );
    assert_eq!(
        fma(0x43, true, db(1.0), db(1.0), db(-1.0), RDN),
        (db(-0.0), 0)
    );
    assert_eq!(
        fma(0x43, true, db(0.0), db(-1.0), db(0.0), RNE),
        (db(0.0), 0)
    );
    assert_eq!(
        fma(0x4f, true, db(0.0), db(1.0), db(0.0), RNE),
        (db(-0.0), 0)
    );
    // Rounding happens once: 1 + 2^-53 + tiny rounds up only with the tiny addend.
    assert_eq!(
        fma(
            0x43,
            true,
            db(2f64.powi(-53)),
            db(1.0 + 2f64.powi(-52)),
            db(1.0),
            RNE
        ),
        (db(1.0 + 2f64.powi(-52)), NX)
    );
}

#[test]
fn fp_loads_stores_and_moves() {
    let mut m = Machine::new();
    m.cpu.x[5] = DATA;
    m.cpu.x[6] = 0xc000_0000_0000_0000;
    let mut c = Code::default();
    c.w(fop(0x79, 1, 0, 6, 0)) // fmv.d.x f1, x6
        .w(s(0x27, 3, 5, 1, 8)) // fsd f1, 8(x5)
        .w(i(0x07, 2, 3, 5, 8)) // fld f2, 8(x5)
        .w(fop(0x71, 7, 0, 2, 0)) // fmv.x.d x7, f2
        .w(i(0x07, 3, 2, 5, 12)) // flw f3, 12(x5): upper half of the double
        .w(fop(0x70, 8, 0, 3, 0)); // fmv.x.w x8, f3
    m.run_code(&c);
    assert_eq!(m.cpu.x[7], 0xc000_0000_0000_0000);
    assert_eq!(m.cpu.f[3], 0xffff_ffff_c000_0000);
    assert_eq!(m.cpu.x[8], 0xffff_ffff_c000_0000);
}

/// The host-float fast path (taken when NX is already set and rm = RNE) must give exactly
/// what the software path gives. Runs random operations twice, with fflags = 0 (software
/// path whenever the result is inexact) and with fflags = NX (fast path where allowed).
#[test]
fn fast_path_matches_software_path() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let special_d = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f64::MIN_POSITIVE,
        f64::MAX,
        5e-324,
        1e-310,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.1,
        3.0,
        1e300,
        1e-300,
    ];
    let fval = |rng: &mut Rng, d: bool| -> u64 {
        match rng.below(4) {
            0 => {
                let v = rng.pick(&special_d);
                if d {
                    db(v)
                } else {
                    sb(v as f32)
                }
            }
            1 => {
                // Near 1.0 with random low bits, so results are often inexact.
                let v = 1.0 + (rng.next() >> 12) as f64 * 2f64.powi(-52);
                let v = if rng.below(2) == 0 { -v } else { v };
                if d {
                    db(v)
                } else {
                    sb(v as f32)
                }
            }
            _ => {
                if d {
                    rng.next()
                } else {
                    rng.next() | 0xffff_ffff_0000_0000
                }
            }
        }
    };
    let ops: &[(u32, bool)] = &[
        (0x00, false),
        (0x01, true),
        (0x04, false),
        (0x05, true),
        (0x08, false),
        (0x09, true),
        (0x0c, false),
        (0x0d, true),
        (0x2c, false),
        (0x2d, true),
    ];
    let mut m = Machine::new();
    let mut c = Code::default();
    let mut starts = Vec::new();
    let mut emit = |c: &mut Code, insn: u32| {
        starts.push(CODE + c.len());
        c.w(insn).w(EBREAK);
    };
    for &(f7, _) in ops {
        let rs2 = if f7 >= 0x2c { 0 } else { 2 };
        emit(&mut c, fop(f7, 10, RNE, 1, rs2));
    }
    for fma_op in [0x43, 0x47, 0x4b, 0x4f] {
        emit(&mut c, r4(fma_op, 10, RNE, 1, 2, 3, 0));
        emit(&mut c, r4(fma_op, 10, RNE, 4, 5, 6, 1));
    }
    m.load(&c);
    for _ in 0..2000 {
        let d = rng.below(2) == 0;
        let mut fr = [0u64; 32];
        for (k, r) in fr.iter_mut().enumerate().take(7).skip(1) {
            *r = fval(&mut rng, if k >= 4 { true } else { d });
        }
        for &start in &starts {
            let mut outs = Vec::new();
            for fflags in [0, NX] {
                m.cpu.f = fr;
                m.cpu.fcsr = fflags;
                m.cpu.pc = start;
                assert_eq!(m.run(10), Exit::Ebreak);
                outs.push((m.cpu.f[10], m.cpu.fcsr));
            }
            let what = || format!("at {start:#x}, inputs {fr:x?}");
            assert_eq!(outs[0].0, outs[1].0, "{}", what());
            assert_eq!(outs[0].1 | NX, outs[1].1, "{}", what());
        }
    }
}
