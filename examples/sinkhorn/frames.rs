//! PNG frames of two point clouds in the unit square and the strongest match of each
//! source point: a plain RGB canvas with squares for points and lines for matches.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Pixels per side of a frame.
pub const SIZE: usize = 480;

const WHITE: [u8; 3] = [255, 255, 255];
const SOURCE: [u8; 3] = [200, 40, 40];
const TARGET: [u8; 3] = [40, 80, 200];
const MATCH: [u8; 3] = [190, 190, 190];

pub struct Canvas {
    pixels: Vec<u8>,
}

/// A coordinate in [-0.1, 1.1] to a pixel index (the margin keeps stray points in view).
fn pixel(v: f32) -> i64 {
    (((v + 0.1) / 1.2) * SIZE as f32) as i64
}

impl Canvas {
    pub fn new() -> Canvas {
        Canvas {
            pixels: WHITE.repeat(SIZE * SIZE),
        }
    }

    fn put(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if (0..SIZE as i64).contains(&x) && (0..SIZE as i64).contains(&y) {
            // y grows upwards in the plot.
            let row = SIZE - 1 - y as usize;
            self.pixels[(row * SIZE + x as usize) * 3..][..3].copy_from_slice(&rgb);
        }
    }

    /// Draws each `[x, y]` point as a 3×3 square.
    pub fn points(&mut self, xy: &[f32], source: bool) {
        let rgb = if source { SOURCE } else { TARGET };
        for p in xy.chunks_exact(2) {
            let (cx, cy) = (pixel(p[0]), pixel(p[1]));
            for dy in -1..=1 {
                for dx in -1..=1 {
                    self.put(cx + dx, cy + dy, rgb);
                }
            }
        }
    }

    /// A straight line between two points of the unit square.
    pub fn line(&mut self, from: [f32; 2], to: [f32; 2]) {
        let (x0, y0, x1, y1) = (pixel(from[0]), pixel(from[1]), pixel(to[0]), pixel(to[1]));
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
        for s in 0..=steps {
            let x = x0 + (x1 - x0) * s / steps;
            let y = y0 + (y1 - y0) * s / steps;
            self.put(x, y, MATCH);
        }
    }

    pub fn save(&self, path: &Path, title: &str) -> std::io::Result<()> {
        let file = BufWriter::new(File::create(path)?);
        let mut enc = png::Encoder::new(file, SIZE as u32, SIZE as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.add_text_chunk("Title".into(), title.into())
            .map_err(std::io::Error::other)?;
        enc.write_header()
            .map_err(std::io::Error::other)?
            .write_image_data(&self.pixels)
            .map_err(std::io::Error::other)
    }
}
