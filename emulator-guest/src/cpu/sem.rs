//! Integer semantics whose corner cases the spec defines (M extension: division by zero
//! and signed overflow give fixed results, never a trap; the W forms sign-extend their
//! 32-bit result). The interpreter inlines these; a translator emits the same rules, and
//! the differential tests (tests/cpu_diff.rs) hold both to rvemu.

/// Sign-extends the low 32 bits.
#[inline(always)]
pub fn sext32(v: u64) -> u64 {
    v as i32 as i64 as u64
}

#[inline(always)]
pub fn mulh(a: u64, b: u64) -> u64 {
    ((a as i64 as i128 * b as i64 as i128) >> 64) as u64
}

#[inline(always)]
pub fn mulhsu(a: u64, b: u64) -> u64 {
    ((a as i64 as i128).wrapping_mul(b as i128) >> 64) as u64
}

#[inline(always)]
pub fn mulhu(a: u64, b: u64) -> u64 {
    ((a as u128 * b as u128) >> 64) as u64
}

/// Signed division: x / 0 = -1, MIN / -1 = MIN.
#[inline(always)]
pub fn div(a: u64, b: u64) -> u64 {
    if b == 0 {
        u64::MAX
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}

/// x / 0 = all ones.
#[inline(always)]
pub fn divu(a: u64, b: u64) -> u64 {
    a.checked_div(b).unwrap_or(u64::MAX)
}

/// x % 0 = x, MIN % -1 = 0.
#[inline(always)]
pub fn rem(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}

#[inline(always)]
pub fn remu(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        a % b
    }
}

#[inline(always)]
pub fn divw(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        u64::MAX
    } else {
        a.wrapping_div(b) as i64 as u64
    }
}

#[inline(always)]
pub fn divuw(a: u64, b: u64) -> u64 {
    sext32((a as u32).checked_div(b as u32).unwrap_or(u32::MAX) as u64)
}

#[inline(always)]
pub fn remw(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    (if b == 0 { a } else { a.wrapping_rem(b) }) as i64 as u64
}

#[inline(always)]
pub fn remuw(a: u64, b: u64) -> u64 {
    let (a, b) = (a as u32, b as u32);
    sext32(if b == 0 { a } else { a % b } as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corner_cases_as_the_spec_tabulates_them() {
        // The M chapter's table of division by zero and overflow.
        let min = 1u64 << 63;
        assert_eq!(div(7, 0), u64::MAX);
        assert_eq!(divu(7, 0), u64::MAX);
        assert_eq!(rem(7, 0), 7);
        assert_eq!(remu(7, 0), 7);
        assert_eq!(div(min, u64::MAX), min);
        assert_eq!(rem(min, u64::MAX), 0);
        let min32 = 0x8000_0000u64;
        assert_eq!(divw(min32, u64::MAX), sext32(min32));
        assert_eq!(remw(min32, u64::MAX), 0);
        assert_eq!(divw(5, 0), u64::MAX);
        assert_eq!(divuw(5, 0), u64::MAX);
        assert_eq!(remw(5, 0), 5);
        assert_eq!(remuw(0xffff_ffff, 0), u64::MAX, "x sign-extended");
        assert_eq!(mulhu(u64::MAX, u64::MAX), u64::MAX - 1);
        assert_eq!(mulh(u64::MAX, u64::MAX), 0);
        assert_eq!(mulhsu(u64::MAX, u64::MAX), u64::MAX);
    }
}
