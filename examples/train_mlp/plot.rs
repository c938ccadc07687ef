//! A loss-curve PNG drawn by hand (axes, grid, one polyline per curve), so the example needs
//! only a PNG encoder rather than a plotting stack. Axis ranges go in the PNG's text chunk
//! and on the terminal, since the image has no font.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

const W: usize = 720;
const H: usize = 420;
const MARGIN: usize = 40;

struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Canvas {
            pixels: vec![255; W * H * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if (0..W as i64).contains(&x) && (0..H as i64).contains(&y) {
            let i = (y as usize * W + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// Bresenham, `thick` pixels thick (downwards).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), rgb: [u8; 3], thick: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            for t in 0..thick {
                self.set(x, y + t, rgb);
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

/// Writes the curves (values per step, colour, thickness in pixels) on shared axes from 0
/// to the largest value, in order, so a thin curve drawn last stays visible on a thick one.
pub fn write_curves(
    path: &Path,
    curves: &[(&[f32], [u8; 3], i64)],
    title: &str,
) -> std::io::Result<()> {
    let mut c = Canvas::new();
    let steps = curves
        .iter()
        .map(|(v, _, _)| v.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let top = curves
        .iter()
        .flat_map(|(v, _, _)| v.iter().copied())
        .fold(0.0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    let (x0, x1, y0, y1) = (
        MARGIN as i64,
        (W - MARGIN) as i64,
        (H - MARGIN) as i64,
        MARGIN as i64,
    );
    for k in 0..=5 {
        let gx = x0 + (x1 - x0) * k / 5;
        let gy = y0 + (y1 - y0) * k / 5;
        c.line((gx, y0), (gx, y1), [225, 225, 225], 1);
        c.line((x0, gy), (x1, gy), [225, 225, 225], 1);
    }
    c.line((x0, y0), (x1, y0), [0, 0, 0], 2);
    c.line((x0, y0), (x0, y1), [0, 0, 0], 2);
    let to_px = |i: usize, v: f32| {
        let x = x0 + ((x1 - x0) as f32 * i as f32 / (steps - 1) as f32) as i64;
        let y = y0 + ((y1 - y0) as f32 * (v / top)) as i64;
        (x, y)
    };
    for (values, rgb, thick) in curves {
        for i in 1..values.len() {
            c.line(
                to_px(i - 1, values[i - 1]),
                to_px(i, values[i]),
                *rgb,
                *thick,
            );
        }
    }
    let mut enc = png::Encoder::new(BufWriter::new(File::create(path)?), W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.add_text_chunk(
        "Title".into(),
        format!("{title}; x: 0..{} steps, y: 0..{top}", steps - 1),
    )
    .map_err(std::io::Error::other)?;
    let mut writer = enc.write_header().map_err(std::io::Error::other)?;
    writer
        .write_image_data(&c.pixels)
        .map_err(std::io::Error::other)
}
