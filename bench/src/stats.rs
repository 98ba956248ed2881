//! Summaries of repeated measurements, and the emulator's `RVBOX_STATS=1` line.

use serde::Serialize;

/// Median, minimum and maximum of a set of measurements.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Summary {
    /// None for an empty set. The median of an even count is the mean of the middle two.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// `a / b`, or None when `b` is not a positive time.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

/// What the emulator prints on stderr at exit with `RVBOX_STATS=1`:
/// `rvbox: stats: N guest instructions in S.SSSs (M MIPS), K MiB guest memory`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GuestStats {
    pub instructions: u64,
    /// Seconds the emulator ran the guest (module loading and compiling not included).
    pub seconds: f64,
    pub mips: f64,
    pub guest_mib: u64,
}

const STATS_PREFIX: &str = "rvbox: stats: ";

/// True for the stats line (which is not an error message).
pub fn is_stats_line(line: &str) -> bool {
    line.starts_with(STATS_PREFIX)
}

/// The last stats line in `stderr`, if any.
pub fn parse_guest_stats(stderr: &str) -> Option<GuestStats> {
    stderr.lines().rev().find_map(parse_stats_line)
}

fn parse_stats_line(line: &str) -> Option<GuestStats> {
    let rest = line.strip_prefix(STATS_PREFIX)?;
    let (instructions, rest) = rest.split_once(" guest instructions in ")?;
    let (seconds, rest) = rest.split_once("s (")?;
    let (mips, rest) = rest.split_once(" MIPS), ")?;
    let guest_mib = rest.strip_suffix(" MiB guest memory")?;
    Some(GuestStats {
        instructions: instructions.parse().ok()?,
        seconds: seconds.parse().ok()?,
        mips: mips.parse().ok()?,
        guest_mib: guest_mib.trim().parse().ok()?,
    })
}

/// The first line of `stderr` that says something (not blank, not the stats line, not mere
/// decoration such as V8's `#` frame around a fatal error), cut to `max` characters.
pub fn first_error_line(stderr: &str, max: usize) -> Option<String> {
    let says_something = |l: &&str| {
        !is_stats_line(l)
            && l.trim_start_matches('#')
                .trim()
                .chars()
                .any(char::is_alphanumeric)
            && !l.starts_with("# Fatal error in , line 0")
    };
    let line = stderr.lines().map(str::trim).find(says_something)?;
    Some(if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.5, 1.0, 4.0, 4));
        let s = Summary::of(&[7.5]).unwrap();
        assert_eq!((s.median, s.min, s.max), (7.5, 7.5, 7.5));
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn median_is_robust_to_one_outlier() {
        let s = Summary::of(&[1.0, 1.1, 0.9, 50.0, 1.05]).unwrap();
        assert_eq!(s.median, 1.05);
        assert_eq!(s.max, 50.0);
    }

    #[test]
    fn ratio_needs_a_positive_base() {
        assert_eq!(ratio(3.0, 1.5), Some(2.0));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn parses_the_emulator_stats_line() {
        let err = "some warning\nrvbox: stats: 91385512 guest instructions in 0.578s (158 MIPS), 11 MiB guest memory\n";
        let s = parse_guest_stats(err).unwrap();
        assert_eq!(s.instructions, 91_385_512);
        assert_eq!(s.seconds, 0.578);
        assert_eq!(s.mips, 158.0);
        assert_eq!(s.guest_mib, 11);
    }

    #[test]
    fn takes_the_last_stats_line_and_rejects_damaged_ones() {
        let err = "rvbox: stats: 1 guest instructions in 1.000s (0 MIPS), 1 MiB guest memory\n\
                   rvbox: stats: 2 guest instructions in 2.000s (0 MIPS), 2 MiB guest memory\n";
        assert_eq!(parse_guest_stats(err).unwrap().instructions, 2);
        assert_eq!(
            parse_guest_stats("rvbox: stats: lots of instructions\n"),
            None
        );
        assert_eq!(
            parse_guest_stats("rvbox: stats: 5 guest instructions in 1.0s (5 MIPS)"),
            None
        );
        assert_eq!(parse_guest_stats(""), None);
    }

    #[test]
    fn first_error_line_skips_blank_and_stats_lines() {
        let err = "\nrvbox: stats: 1 guest instructions in 1.000s (0 MIPS), 1 MiB guest memory\n  xz: Error creating a pipe: Function not implemented\nmore\n";
        assert_eq!(
            first_error_line(err, 80).as_deref(),
            Some("xz: Error creating a pipe: Function not implemented")
        );
        assert_eq!(first_error_line("abcdef", 4).as_deref(), Some("abc…"));
        assert_eq!(first_error_line("\n\n", 10), None);
        let v8 = "\n\n#\n# Fatal error in , line 0\n# Check failed: marking_state_->GreyToBlack(object).\n#\n";
        assert_eq!(
            first_error_line(v8, 80).as_deref(),
            Some("# Check failed: marking_state_->GreyToBlack(object).")
        );
    }
}
