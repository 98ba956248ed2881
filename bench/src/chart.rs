//! The PNG: for each workload, each peer's median time relative to native amd64, as
//! horizontal bars on a log scale; peers that could not run it say why in their slot.

use std::path::Path;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use anyhow::{bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::{fmt_ratio, Report};
use crate::run::Outcome;
use crate::workloads::Peer;

/// Debian's fonts-dejavu-core; read at run time (plotters' ab_glyph backend, no fontconfig).
const FONT_DIRS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
];

/// The peers with a bar (native is the 1× line).
pub const BAR_PEERS: [Peer; 7] = [
    Peer::QemuUser,
    Peer::QemuChroot,
    Peer::RvboxAot,
    Peer::NodeAot,
    Peer::Rvbox,
    Peer::Node,
    Peer::RvboxNative,
];

fn color(p: Peer) -> RGBColor {
    match p {
        Peer::Native => RGBColor(0, 0, 0),
        Peer::QemuUser => RGBColor(0x9e, 0x9e, 0x9e),
        Peer::QemuChroot => RGBColor(0x5f, 0x6b, 0x73),
        Peer::Rvbox => RGBColor(0xd9, 0x5f, 0x02),
        Peer::Node => RGBColor(0x1b, 0x9e, 0x77),
        Peer::RvboxNative => RGBColor(0x75, 0x70, 0xb3),
        Peer::RvboxAot => RGBColor(0xe6, 0xab, 0x02),
        Peer::NodeAot => RGBColor(0x66, 0xa6, 0x1e),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub peer: Peer,
    /// Median time / native median time, when both ran correctly.
    pub ratio: Option<f64>,
    /// Shown at the end of the bar, or in its place.
    pub label: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub title: String,
    pub native: Option<f64>,
    pub bars: Vec<Bar>,
}

/// The chart's data, one group per workload.
pub fn groups(report: &Report) -> Vec<Group> {
    report
        .workloads
        .iter()
        .map(|w| {
            let native = w.native_base();
            let bars = BAR_PEERS
                .iter()
                .map(|&p| {
                    let r = w.peer(p);
                    let (ratio, label) = match r.map(|r| (&r.outcome, r.wall)) {
                        Some((Outcome::Ok, Some(s))) => match native {
                            Some(n) => (Some(s.median / n), fmt_ratio(s.median / n)),
                            None => (None, "no native time".to_string()),
                        },
                        Some((Outcome::WrongOutput { .. }, _)) => {
                            (None, "wrong output".to_string())
                        }
                        Some((
                            Outcome::Fails {
                                status, message, ..
                            },
                            _,
                        )) => {
                            let how = match status {
                                Some(crate::measure::Status::Exited(c)) => {
                                    format!("fails (exit {c})")
                                }
                                Some(crate::measure::Status::Signaled(s)) => {
                                    format!("fails ({})", crate::measure::signal_name(*s))
                                }
                                Some(crate::measure::Status::TimedOut) => "timed out".to_string(),
                                None => "fails".to_string(),
                            };
                            // Why, in the program's words, when it said something.
                            let label = match message {
                                Some(m) => {
                                    let cut: String = m.chars().take(80).collect();
                                    let more = if cut.len() < m.len() { "…" } else { "" };
                                    format!("{how}: {cut}{more}")
                                }
                                None => how,
                            };
                            (None, label)
                        }
                        Some((Outcome::Unavailable { reason }, _)) if reason.starts_with("n/a") => {
                            (None, "n/a".to_string())
                        }
                        _ => (None, "not run".to_string()),
                    };
                    Bar {
                        peer: p,
                        ratio,
                        label,
                    }
                })
                .collect();
            let mut title = w.workload.title.clone();
            if !w.workload.input_desc.is_empty() {
                title = format!("{title} ({})", w.workload.input_desc);
            }
            Group {
                title,
                native,
                bars,
            }
        })
        .collect()
}

/// A log axis covering `lo..hi` (ratios), widened to 1-2-5 steps; returns the range and ticks.
pub fn log_axis(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let steps = |x: f64, up: bool| {
        let e = x.log10().floor();
        let base = 10f64.powf(e);
        let cands = [1.0, 2.0, 5.0, 10.0];
        if up {
            cands
                .iter()
                .map(|c| c * base)
                .find(|v| *v >= x * 0.999)
                .unwrap_or(10.0 * base)
        } else {
            cands
                .iter()
                .rev()
                .map(|c| c * base)
                .find(|v| *v <= x * 1.001)
                .unwrap_or(base)
        }
    };
    let lo = steps(lo.min(1.0), false);
    let hi = steps(hi.max(2.0), true);
    let mut ticks = Vec::new();
    let mut e = lo.log10().floor() as i32;
    'outer: loop {
        for c in [1.0, 2.0, 5.0] {
            let v = c * 10f64.powi(e);
            if v > hi * 1.001 {
                break 'outer;
            }
            if v >= lo * 0.999 {
                ticks.push(v);
            }
        }
        e += 1;
    }
    (lo, hi, ticks)
}

fn tick_label(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}×")
    } else {
        format!("{v}×")
    }
}

/// DejaVu Sans, regular and bold.
struct Fonts {
    regular: FontVec,
    bold: FontVec,
}

fn load_fonts() -> Result<Fonts> {
    for dir in FONT_DIRS {
        let regular = Path::new(dir).join("DejaVuSans.ttf");
        if !regular.exists() {
            continue;
        }
        let load = |name: &str| -> Result<FontVec> {
            let path = Path::new(dir).join(name);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            FontVec::try_from_vec(bytes)
                .map_err(|_| anyhow::anyhow!("{}: not a usable TrueType font", path.display()))
        };
        return Ok(Fonts {
            regular: load("DejaVuSans.ttf")?,
            bold: load("DejaVuSans-Bold.ttf")?,
        });
    }
    bail!("no DejaVu Sans font (apt-get install fonts-dejavu-core)")
}

#[derive(Clone, Copy, PartialEq)]
enum Anchor {
    Left,
    Center,
    Right,
}

/// Draws shapes through plotters and text through ab_glyph (with kerning and sub-pixel
/// glyph placement), anti-aliased onto the bitmap.
struct Painter<'a, 'b> {
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    fonts: &'a Fonts,
}

impl Painter<'_, '_> {
    fn text_width(&self, bold: bool, size: f32, s: &str) -> f32 {
        let font = if bold {
            &self.fonts.bold
        } else {
            &self.fonts.regular
        };
        let f = font.as_scaled(PxScale::from(size));
        let mut w = 0.0;
        let mut prev = None;
        for c in s.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                w += f.kern(p, id);
            }
            w += f.h_advance(id);
            prev = Some(id);
        }
        w
    }

    /// `s` with its vertical centre at `y`, anchored at `x`.
    fn text(
        &self,
        s: &str,
        (x, y): (i32, i32),
        size: f32,
        bold: bool,
        anchor: Anchor,
        color: RGBColor,
    ) -> Result<()> {
        let font = if bold {
            &self.fonts.bold
        } else {
            &self.fonts.regular
        };
        let f = font.as_scaled(PxScale::from(size));
        let width = self.text_width(bold, size, s);
        let mut pen = x as f32
            - match anchor {
                Anchor::Left => 0.0,
                Anchor::Center => width / 2.0,
                Anchor::Right => width,
            };
        // Centre the x-height band (cap height ≈ 0.73 em for DejaVu) on y.
        let baseline = y as f32 + 0.36 * size;
        let mut prev = None;
        for c in s.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                pen += f.kern(p, id);
            }
            prev = Some(id);
            let glyph =
                id.with_scale_and_position(PxScale::from(size), ab_glyph::point(pen, baseline));
            pen += f.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let b = outline.px_bounds();
            let mut err = None;
            outline.draw(|gx, gy, cov| {
                if cov <= 0.0 || err.is_some() {
                    return;
                }
                let p = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                if let Err(e) = self.area.draw_pixel(p, &color.mix(f64::from(cov.min(1.0)))) {
                    err = Some(e);
                }
            });
            if let Some(e) = err {
                bail!("drawing text: {e}");
            }
        }
        Ok(())
    }
}

pub fn draw(report: &Report, path: &Path) -> Result<()> {
    let fonts = load_fonts()?;
    let groups = groups(report);
    let ratios: Vec<f64> = groups
        .iter()
        .flat_map(|g| g.bars.iter().filter_map(|b| b.ratio))
        .collect();
    let lo = ratios.iter().copied().fold(1.0, f64::min);
    let hi = ratios.iter().copied().fold(2.0, f64::max);
    let (lo, hi, ticks) = log_axis(lo, hi * 1.6);

    const W: i32 = 1500;
    const BAR: i32 = 17;
    const GAP: i32 = 20;
    const TOP: i32 = 120;
    const LEFT: i32 = 330;
    const RIGHT: i32 = 40;
    let group_h = BAR * BAR_PEERS.len() as i32 + GAP;
    let h = TOP + group_h * groups.len() as i32 + 60;
    let root = BitMapBackend::new(path, (W as u32, h as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let pt = Painter {
        area: &root,
        fonts: &fonts,
    };
    let grey = |v: u8| RGBColor(v, v, v);

    pt.text(
        "rvbox and its peers: time relative to the native amd64 program (log scale, lower is better)",
        (20, 24),
        22.0,
        true,
        Anchor::Left,
        BLACK,
    )?;
    let m = &report.machine;
    let commit = m.rvbox_commit.split_whitespace().next().unwrap_or("?");
    pt.text(
        &format!(
            "{} mode: median of the measured runs · {} ({} cores) · rvbox {commit} · {} UTC",
            report.mode, m.cpu, m.cores, m.date_utc
        ),
        (20, 54),
        15.0,
        false,
        Anchor::Left,
        grey(80),
    )?;
    // Legend.
    let mut x = 20;
    for p in std::iter::once(Peer::Native).chain(BAR_PEERS) {
        if p == Peer::Native {
            root.draw(&PathElement::new(
                vec![(x + 7, 78), (x + 7, 98)],
                BLACK.stroke_width(3),
            ))?;
        } else {
            root.draw(&Rectangle::new([(x, 80), (x + 16, 96)], color(p).filled()))?;
        }
        let label = if p == Peer::Native {
            "native amd64 = 1×"
        } else {
            p.label()
        };
        pt.text(label, (x + 24, 88), 15.0, false, Anchor::Left, BLACK)?;
        x += 24 + pt.text_width(false, 15.0, label).ceil() as i32 + 30;
    }

    let x0 = LEFT;
    let x1 = W - RIGHT;
    let px = |v: f64| -> i32 {
        let t = (v.ln() - lo.ln()) / (hi.ln() - lo.ln());
        x0 + (t.clamp(0.0, 1.0) * f64::from(x1 - x0)).round() as i32
    };
    let y_top = TOP - GAP / 2;
    let y_end = TOP + group_h * groups.len() as i32 - GAP / 2;
    // Every other workload on a light band.
    for i in (1..groups.len()).step_by(2) {
        let gy = TOP + group_h * i as i32;
        root.draw(&Rectangle::new(
            [(10, gy - GAP / 2), (W - 10, gy + group_h - GAP / 2)],
            grey(246).filled(),
        ))?;
    }
    // Grid and axis labels.
    for &t in &ticks {
        let major = (t.log10() - t.log10().round()).abs() < 1e-9;
        let c = if major { grey(195) } else { grey(228) };
        root.draw(&PathElement::new(
            vec![(px(t), y_top), (px(t), y_end)],
            c.stroke_width(1),
        ))?;
        pt.text(
            &tick_label(t),
            (px(t), y_end + 14),
            14.0,
            false,
            Anchor::Center,
            BLACK,
        )?;
    }
    for (i, g) in groups.iter().enumerate() {
        let gy = TOP + group_h * i as i32;
        // Workload title, in two lines when long.
        let (line1, line2) = split_title(&g.title, 34);
        let mid = gy + (BAR * BAR_PEERS.len() as i32) / 2;
        if line2.is_empty() {
            pt.text(&line1, (20, mid), 15.0, true, Anchor::Left, BLACK)?;
        } else {
            pt.text(&line1, (20, mid - 10), 15.0, true, Anchor::Left, BLACK)?;
            pt.text(&line2, (20, mid + 11), 14.0, false, Anchor::Left, grey(60))?;
        }
        if g.native.is_none() {
            pt.text(
                "native did not run: no ratios",
                (x0 + 8, mid),
                14.0,
                false,
                Anchor::Left,
                RGBColor(150, 0, 0),
            )?;
            continue;
        }
        for (j, b) in g.bars.iter().enumerate() {
            let y = gy + BAR * j as i32;
            let yc = y + BAR / 2;
            match b.ratio {
                Some(r) => {
                    let (a, z) = if r >= 1.0 {
                        (px(1.0), px(r))
                    } else {
                        (px(r), px(1.0))
                    };
                    root.draw(&Rectangle::new(
                        [(a, y + 1), (z.max(a + 1), y + BAR - 2)],
                        color(b.peer).filled(),
                    ))?;
                    pt.text(
                        &b.label,
                        (z.max(px(1.0)) + 5, yc),
                        13.0,
                        false,
                        Anchor::Left,
                        BLACK,
                    )?;
                }
                None => {
                    pt.text(
                        &format!("{}: {}", b.peer.label(), b.label),
                        (px(1.0) + 8, yc),
                        13.0,
                        false,
                        Anchor::Left,
                        grey(135),
                    )?;
                }
            }
        }
    }
    // Native: the 1× line.
    root.draw(&PathElement::new(
        vec![(px(1.0), y_top), (px(1.0), y_end)],
        BLACK.stroke_width(2),
    ))?;
    pt.text(
        "lower is better",
        (x1, y_end + 38),
        13.0,
        false,
        Anchor::Right,
        grey(110),
    )?;
    root.present().context("writing the PNG")?;
    Ok(())
}

/// Splits `s` at a word boundary before `max` characters, or not at all.
fn split_title(s: &str, max: usize) -> (String, String) {
    if s.chars().count() <= max {
        return (s.to_string(), String::new());
    }
    let cut = s
        .char_indices()
        .filter(|&(i, c)| c == ' ' && s[..i].chars().count() <= max)
        .map(|(i, _)| i)
        .next_back();
    match cut {
        Some(i) => (s[..i].to_string(), s[i + 1..].to_string()),
        None => (s.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_widens_to_1_2_5_steps() {
        let (lo, hi, ticks) = log_axis(1.3, 37.0);
        assert_eq!((lo, hi), (1.0, 50.0));
        assert_eq!(ticks, vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        let (lo, hi, _) = log_axis(0.3, 180.0);
        assert_eq!((lo, hi), (0.2, 200.0));
        // Always shows 1x (the native line) and at least up to 2x.
        let (lo, hi, _) = log_axis(1.5, 1.6);
        assert_eq!((lo, hi), (1.0, 2.0));
    }

    #[test]
    fn titles_wrap_at_a_space() {
        assert_eq!(split_title("short", 10), ("short".into(), String::new()));
        assert_eq!(
            split_title("sqlite3: inserts, index, join (5000-row SQL script)", 34),
            (
                "sqlite3: inserts, index, join".into(),
                "(5000-row SQL script)".into()
            )
        );
        assert_eq!(tick_label(0.5), "0.5×");
        assert_eq!(tick_label(20.0), "20×");
    }
}
