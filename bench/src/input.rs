//! Inputs, generated deterministically: every peer reads the same bytes, in every run, on
//! every machine.

use std::io::{self, Write};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever, unlike a library RNG.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// What a workload reads on stdin.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Nothing (stdin is /dev/null).
    None,
    /// Uniformly random bytes (incompressible).
    Random { bytes: u64 },
    /// Text lines of words from a fixed vocabulary, skewed towards common words, with numbers:
    /// compressible, but not trivially, so compressors do real work.
    Text { bytes: u64 },
    /// A sqlite3 script: `rows` single-row INSERTs, 4 x rows rows made by a recursive CTE, an
    /// index, and a join with grouping.
    Sql { rows: u64 },
}

const SEED: u64 = 0x7276_626f_7862_656e; // "rvboxben"
/// 4096 words.
const VOCAB_BITS: u64 = 12;

impl Input {
    /// Short description for table headers: "16 MiB random", "20000-row SQL script".
    pub fn describe(&self) -> String {
        match self {
            Input::None => String::new(),
            Input::Random { bytes } => format!("{} random", human_bytes(*bytes)),
            Input::Text { bytes } => format!("{} text", human_bytes(*bytes)),
            Input::Sql { rows } => format!("{rows}-row SQL script"),
        }
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut rng = SplitMix64::new(SEED);
        match *self {
            Input::None => Ok(()),
            Input::Random { bytes } => {
                let mut buf = Vec::with_capacity(1 << 16);
                let mut left = bytes;
                while left > 0 {
                    buf.clear();
                    while buf.len() < 1 << 16 {
                        buf.extend_from_slice(&rng.next_u64().to_le_bytes());
                    }
                    let n = left.min(buf.len() as u64) as usize;
                    w.write_all(&buf[..n])?;
                    left -= n as u64;
                }
                Ok(())
            }
            Input::Text { bytes } => write_text(&mut rng, bytes, w),
            Input::Sql { rows } => write_sql(&mut rng, rows, w),
        }
    }
}

/// "64 MiB", "512 KiB", "100 B".
pub fn human_bytes(b: u64) -> String {
    const K: u64 = 1024;
    if b >= K * K && b.is_multiple_of(K * K) {
        format!("{} MiB", b / (K * K))
    } else if b >= K * K {
        format!("{:.1} MiB", b as f64 / (K * K) as f64)
    } else if b >= K && b.is_multiple_of(K) {
        format!("{} KiB", b / K)
    } else {
        format!("{b} B")
    }
}

fn vocabulary(rng: &mut SplitMix64) -> Vec<String> {
    (0..1 << VOCAB_BITS)
        .map(|_| {
            let len = 2 + rng.below(9) as usize;
            (0..len)
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect()
        })
        .collect()
}

fn write_text(rng: &mut SplitMix64, bytes: u64, w: &mut impl Write) -> io::Result<()> {
    let words = vocabulary(rng);
    let mut left = bytes as usize;
    let mut line = String::new();
    while left > 0 {
        line.clear();
        let n = 6 + rng.below(11);
        for i in 0..n {
            if i > 0 {
                line.push(' ');
            }
            // Uniform below a random power of two: word i comes up about 1/i as often as
            // the first (Zipf-like, as in prose).
            let bound = 1u64 << rng.below(VOCAB_BITS + 1);
            line.push_str(&words[rng.below(bound) as usize]);
        }
        if rng.below(4) == 0 {
            line.push_str(&format!(" {}", rng.below(1_000_000)));
        }
        line.push('\n');
        let n = left.min(line.len());
        w.write_all(&line.as_bytes()[..n])?;
        left -= n;
    }
    Ok(())
}

fn write_sql(rng: &mut SplitMix64, rows: u64, w: &mut impl Write) -> io::Result<()> {
    let words = vocabulary(rng);
    writeln!(
        w,
        "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, city INTEGER);"
    )?;
    writeln!(
        w,
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, amount INTEGER);"
    )?;
    writeln!(w, "BEGIN;")?;
    for id in 1..=rows {
        let name = &words[rng.below(words.len() as u64) as usize];
        writeln!(
            w,
            "INSERT INTO customer VALUES({id}, '{name}', {});",
            rng.below(100)
        )?;
    }
    writeln!(
        w,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
         INSERT INTO orders SELECT x, 1 + (x * 7919) % {rows}, (x * 104729) % 1000 FROM c;",
        n = rows * 4
    )?;
    writeln!(w, "COMMIT;")?;
    writeln!(w, "CREATE INDEX orders_customer ON orders(customer);")?;
    writeln!(
        w,
        "SELECT c.city, count(*), sum(o.amount), max(length(c.name)) FROM customer c \
         JOIN orders o ON o.customer = c.id GROUP BY c.city ORDER BY 3 DESC, 1 LIMIT 10;"
    )?;
    writeln!(
        w,
        "SELECT count(*) FROM customer c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer = c.id);"
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(input: &Input) -> Vec<u8> {
        let mut v = Vec::new();
        input.write_to(&mut v).unwrap();
        v
    }

    #[test]
    fn splitmix64_reference_values() {
        // First outputs for seed 0, as in the reference implementation.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn inputs_have_the_asked_size_and_are_deterministic() {
        for (input, len) in [
            (Input::Random { bytes: 100_003 }, 100_003),
            (Input::Text { bytes: 65_536 }, 65_536),
            (Input::None, 0),
        ] {
            let a = bytes_of(&input);
            assert_eq!(a.len(), len, "{input:?}");
            assert_eq!(a, bytes_of(&input), "{input:?}");
        }
    }

    #[test]
    fn text_is_text_and_skewed_towards_common_words() {
        let t = bytes_of(&Input::Text { bytes: 1 << 16 });
        assert!(t
            .iter()
            .all(|&b| b == b'\n' || b == b' ' || b.is_ascii_alphanumeric()));
        let mut counts = std::collections::HashMap::new();
        let mut words = 0usize;
        for w in t.split(|&b| b == b' ' || b == b'\n') {
            *counts.entry(w).or_insert(0usize) += 1;
            words += 1;
        }
        assert!(counts.len() > 1000, "{} distinct words", counts.len());
        // Uniform choice over 4096 words would give each about 0.02%; the skew makes the
        // most common word over 5%.
        let max = *counts.values().max().unwrap();
        assert!(max * 20 > words, "most common word: {max} of {words}");
    }

    #[test]
    fn sql_script_shape() {
        let s = String::from_utf8(bytes_of(&Input::Sql { rows: 10 })).unwrap();
        assert_eq!(s.matches("INSERT INTO customer VALUES(").count(), 10);
        assert!(s.contains("WHERE x < 40)"));
        assert!(s.trim_end().ends_with(");"));
        assert_eq!(s.matches("BEGIN;").count(), 1);
        assert_eq!(s.matches("COMMIT;").count(), 1);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(512 << 10), "512 KiB");
        assert_eq!(human_bytes(1536 << 10), "1.5 MiB");
        assert_eq!(human_bytes(100), "100 B");
        assert_eq!(Input::Text { bytes: 4 << 20 }.describe(), "4 MiB text");
    }
}
