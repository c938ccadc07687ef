//! A curve as an SVG: title, axis labels, tick values and a legend, as text any browser or
//! image viewer shows (no font or plotting dependency). Shared by the examples.

use std::fmt::Write as _;
use std::path::Path;

const W: f64 = 720.0;
const H: f64 = 420.0;
/// Plot area: left, top, right, bottom margins.
const L: f64 = 80.0;
const T: f64 = 50.0;
const R: f64 = 20.0;
const B: f64 = 60.0;

/// "Nice" tick values covering `[lo, hi]`: steps of 1, 2 or 5 times a power of ten.
fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / target as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| span / s <= target as f64)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

fn label(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// What a plot says about itself.
pub struct Labels<'a> {
    /// Above the plot.
    pub title: &'a str,
    /// Under the x axis.
    pub x: &'a str,
    /// Beside the y axis.
    pub y: &'a str,
    /// The curve's legend entry.
    pub legend: &'a str,
}

/// Writes `values` against their index.
pub fn curve(path: &Path, values: &[f32], labels: &Labels<'_>) -> std::io::Result<()> {
    let losses = values;
    let n = losses.len().max(2);
    let (mut lo, mut hi) = losses
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v as f64), b.max(v as f64))
        });
    let pad = 0.05 * (hi - lo).max(1e-3);
    (lo, hi) = (lo - pad, hi + pad);
    let x = |i: f64| L + (W - L - R) * i / (n - 1) as f64;
    let y = |v: f64| T + (H - T - B) * (hi - v) / (hi - lo);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
        W / 2.0,
        escape(labels.title)
    );
    for v in ticks(lo, hi, 6) {
        let _ = writeln!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            W - R,
            L - 8.0,
            y(v) + 4.0,
            label(v),
            y = y(v)
        );
    }
    for i in ticks(0.0, (n - 1) as f64, 8) {
        let _ = writeln!(
            s,
            r##"<line x1="{x}" x2="{x}" y1="{}" y2="{}" stroke="#333"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
            H - B,
            H - B + 5.0,
            H - B + 20.0,
            label(i),
            x = x(i)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{L}" y="{T}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        W - L - R,
        H - T - B
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        L + (W - L - R) / 2.0,
        H - 18.0,
        escape(labels.x)
    );
    let _ = writeln!(
        s,
        r#"<text x="20" y="{}" text-anchor="middle" transform="rotate(-90 20 {})">{}</text>"#,
        T + (H - T - B) / 2.0,
        T + (H - T - B) / 2.0,
        escape(labels.y)
    );
    let points: Vec<String> = losses
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.1},{:.1}", x(i as f64), y(v as f64)))
        .collect();
    let _ = writeln!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        points.join(" ")
    );
    let (lx, ly) = (L + 12.0, T + 18.0);
    let legend: String = labels.legend.chars().take(60).collect();
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="#1f77b4" stroke-width="2"/><text x="{}" y="{}">{}</text>"##,
        lx + 24.0,
        lx + 30.0,
        ly + 4.0,
        escape(&legend)
    );
    s.push_str("</svg>\n");
    std::fs::write(path, s)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
