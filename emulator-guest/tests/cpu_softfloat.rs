//! Cross-checks the software floating point (`cpu::fp`) against `rustc_apfloat` (a port of
//! LLVM's APFloat, an independent implementation) in every rounding mode, results and
//! flags, on random and edge-case operands; and against the host FPU for round-to-nearest.
//!
//! Known, documented differences of APFloat that are not compared:
//! - NaN payloads/signs (RISC-V returns the canonical NaN; only NaN-ness is compared);
//! - UF when the rounded result is exactly the smallest normal: APFloat decides tininess
//!   after rounding to the *subnormal* precision, RISC-V (IEEE "after rounding") with an
//!   unbounded exponent; `fp::tests::tininess_after_rounding` covers that case;
//! - OF when an overflowing result is rounded to the largest finite number (directed
//!   modes): APFloat raises only NX; IEEE 754 (7.4) and RISC-V raise OF and NX whatever the
//!   rounding mode (covered in `cpu_fp.rs`);
//! - NV for `inf * 0 + qNaN` (RISC-V requires it; covered in `cpu_fp.rs`), and NV for
//!   signaling NaN operands (APFloat quiets them silently in some paths; covered there too).

mod cpu_common;
use cpu_common::Rng;
use rustc_apfloat::ieee::{Double, Single};
use rustc_apfloat::{Float, FloatConvert, Round, Status, StatusAnd};
use rvbox_guest::cpu::fp::{self, Fmt, F32, F64};

const MODES: [(u8, Round); 5] = [
    (fp::RNE, Round::NearestTiesToEven),
    (fp::RTZ, Round::TowardZero),
    (fp::RDN, Round::TowardNegative),
    (fp::RUP, Round::TowardPositive),
    (fp::RMM, Round::NearestTiesToAway),
];

fn flags(s: Status) -> u8 {
    let mut f = 0;
    if s.contains(Status::INVALID_OP) {
        f |= fp::NV;
    }
    if s.contains(Status::DIV_BY_ZERO) {
        f |= fp::DZ;
    }
    if s.contains(Status::OVERFLOW) {
        f |= fp::OF;
    }
    if s.contains(Status::UNDERFLOW) {
        f |= fp::UF;
    }
    if s.contains(Status::INEXACT) {
        f |= fp::NX;
    }
    f
}

/// A random operand: specials, values near powers of two, tiny/huge, or random bits.
fn operand(rng: &mut Rng, f: Fmt) -> u64 {
    let (eb, mb) = (f.ebits as u64, f.mbits as u64);
    let sign = rng.below(2) << (eb + mb);
    let mmask = (1u64 << mb) - 1;
    let emax = (1u64 << eb) - 1;
    let mant = match rng.below(4) {
        0 => 0,
        1 => mmask,
        2 => rng.next() & mmask & !(rng.next() & mmask), // sparse
        _ => rng.next() & mmask,
    };
    let exp = match rng.below(6) {
        0 => rng.pick(&[0, 1, 2, emax - 1, emax, emax / 2]),
        1 => rng.below(mb + 3),             // subnormal/tiny range
        2 => emax - 1 - rng.below(mb + 3),  // huge
        _ => emax / 2 - 40 + rng.below(80), // ordinary
    };
    sign | exp << mb | mant
}

fn same(f: Fmt, ours: (u64, u8), theirs: (u64, u8), ctx: &dyn Fn() -> String) {
    let (a, fa) = ours;
    let (b, fb) = theirs;
    if f.is_nan(b) {
        assert_eq!(a, f.canonical_nan(), "result: {}", ctx());
    } else {
        assert_eq!(a, b, "result: {}", ctx());
    }
    let min_normal = 1u64 << f.mbits;
    let boundary = a & !f.sign_bit() == min_normal;
    let max_finite = (((1u64 << f.ebits) - 2) << f.mbits) | ((1u64 << f.mbits) - 1);
    let saturated = a & !f.sign_bit() == max_finite && fa & fp::OF != 0;
    let mask = if boundary { !fp::UF } else { !0 } & if saturated { !fp::OF } else { !0 };
    assert_eq!(fa & mask, fb & mask, "flags: {}", ctx());
}

macro_rules! check_fmt {
    ($name:ident, $T:ty, $f:expr) => {
        #[test]
        fn $name() {
            let f: Fmt = $f;
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ f.mbits as u64);
            let ap = |x: u64| <$T>::from_bits(x as u128);
            let res = |r: StatusAnd<$T>| (r.value.to_bits() as u64, flags(r.status));
            for n in 0..40_000 {
                let (a, b, c) = (
                    operand(&mut rng, f),
                    operand(&mut rng, f),
                    operand(&mut rng, f),
                );
                // Operations on NaN operands only differ in details listed above.
                let any_nan = f.is_nan(a) || f.is_nan(b) || f.is_nan(c);
                for (rm, round) in MODES {
                    let ctx = || format!("#{n} a={a:#x} b={b:#x} c={c:#x} rm={rm}");
                    if !any_nan {
                        same(
                            f,
                            fp::add(f, a, b, rm),
                            res(ap(a).add_r(ap(b), round)),
                            &|| format!("add {}", ctx()),
                        );
                        same(
                            f,
                            fp::sub(f, a, b, rm),
                            res(ap(a).sub_r(ap(b), round)),
                            &|| format!("sub {}", ctx()),
                        );
                        same(
                            f,
                            fp::mul(f, a, b, rm),
                            res(ap(a).mul_r(ap(b), round)),
                            &|| format!("mul {}", ctx()),
                        );
                        same(
                            f,
                            fp::div(f, a, b, rm),
                            res(ap(a).div_r(ap(b), round)),
                            &|| format!("div {}", ctx()),
                        );
                        same(
                            f,
                            fp::fma(f, a, b, c, rm),
                            res(ap(a).mul_add_r(ap(b), ap(c), round)),
                            &|| format!("fma {}", ctx()),
                        );
                    }
                    // Conversions to integers (APFloat saturates like RISC-V except NaN).
                    if !f.is_nan(a) {
                        for (signed, bits) in [(true, 32), (false, 32), (true, 64), (false, 64)] {
                            let mut exact = false;
                            let (v, st) = if signed {
                                let r = ap(a).to_i128_r(bits, round, &mut exact);
                                (r.value as u64, r.status)
                            } else {
                                let r = ap(a).to_u128_r(bits, round, &mut exact);
                                (r.value as u64, r.status)
                            };
                            let want = if bits == 32 {
                                v as u32 as i32 as i64 as u64
                            } else {
                                v
                            };
                            let (got, fl) = fp::to_int(f, a, rm, signed, bits as u32);
                            assert_eq!(
                                (got, fl),
                                (want, flags(st)),
                                "to_int signed={signed} bits={bits} {}",
                                ctx()
                            );
                        }
                    }
                    // Conversions from integers.
                    let iv = rng.int();
                    let (ours, theirs) = (
                        fp::from_int(f, (iv as i64) < 0, (iv as i64).unsigned_abs(), rm),
                        res(<$T>::from_i128_r(iv as i64 as i128, round)),
                    );
                    same(f, ours, theirs, &|| format!("from_i64 {iv:#x} rm={rm}"));
                    same(
                        f,
                        fp::from_int(f, false, iv, rm),
                        res(<$T>::from_u128_r(iv as u128, round)),
                        &|| format!("from_u64 {iv:#x} rm={rm}"),
                    );
                }
            }
        }
    };
}

check_fmt!(softfloat_f32_matches_apfloat, Single, F32);
check_fmt!(softfloat_f64_matches_apfloat, Double, F64);

#[test]
fn softfloat_format_conversions_match_apfloat() {
    let mut rng = Rng(77);
    for _ in 0..50_000 {
        let a = operand(&mut rng, F64);
        if F64.is_nan(a) {
            continue;
        }
        for (rm, round) in MODES {
            let mut loses = false;
            let r: StatusAnd<Single> = Double::from_bits(a as u128).convert_r(round, &mut loses);
            same(
                F32,
                fp::cvt_ff(F64, F32, a, rm),
                (r.value.to_bits() as u64, flags(r.status)),
                &|| format!("d->s {a:#x} rm={rm}"),
            );
        }
        let s = operand(&mut rng, F32);
        if !F32.is_nan(s) {
            let mut loses = false;
            let r: StatusAnd<Double> =
                Single::from_bits(s as u128).convert_r(Round::NearestTiesToEven, &mut loses);
            assert_eq!(
                fp::cvt_ff(F32, F64, s, fp::RNE),
                (r.value.to_bits() as u64, 0)
            );
        }
    }
}

#[test]
fn softfloat_sqrt_matches_host() {
    // APFloat has no sqrt; the host's is correctly rounded (IEEE 754 requires it).
    // Directed modes are checked by bracketing: RDN <= RNE <= RUP, one ulp apart when
    // inexact, RTZ = RDN for positive results, and NX iff the square of the result differs.
    let mut rng = Rng(5);
    for _ in 0..100_000 {
        let a = operand(&mut rng, F64) & !F64.sign_bit();
        let (r, fl) = fp::sqrt(F64, a, fp::RNE);
        let h = f64::from_bits(a).sqrt();
        if h.is_nan() {
            assert_eq!(r, fp::NAN64);
            continue;
        }
        assert_eq!(r, h.to_bits(), "sqrt {a:#x}");
        let (dn, _) = fp::sqrt(F64, a, fp::RDN);
        let (up, fu) = fp::sqrt(F64, a, fp::RUP);
        let (tz, _) = fp::sqrt(F64, a, fp::RTZ);
        assert_eq!(tz, dn);
        assert_eq!(fu, fl);
        if fl & fp::NX != 0 {
            assert_eq!(up, dn + 1, "sqrt {a:#x}");
            assert!(r == up || r == dn);
        } else {
            assert_eq!(up, dn);
            assert_eq!(up, r);
        }
        let s = operand(&mut rng, F32) & !F32.sign_bit();
        let hs = f32::from_bits(s as u32).sqrt();
        if !hs.is_nan() {
            assert_eq!(
                fp::sqrt(F32, s, fp::RNE).0,
                hs.to_bits() as u64,
                "sqrtf {s:#x}"
            );
        }
    }
}

#[test]
fn softfloat_rne_matches_host() {
    let mut rng = Rng(99);
    for _ in 0..100_000 {
        let (a, b, c) = (
            operand(&mut rng, F64),
            operand(&mut rng, F64),
            operand(&mut rng, F64),
        );
        let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
        let chk = |ours: u64, host: f64, what: &str| {
            if host.is_nan() {
                assert_eq!(ours, fp::NAN64, "{what} {a:#x} {b:#x} {c:#x}");
            } else {
                assert_eq!(ours, host.to_bits(), "{what} {a:#x} {b:#x} {c:#x}");
            }
        };
        chk(fp::add(F64, a, b, fp::RNE).0, x + y, "add");
        chk(fp::mul(F64, a, b, fp::RNE).0, x * y, "mul");
        chk(fp::div(F64, a, b, fp::RNE).0, x / y, "div");
        chk(fp::fma(F64, a, b, c, fp::RNE).0, x.mul_add(y, z), "fma");
    }
}
