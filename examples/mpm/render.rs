//! The throw as an animated PNG: the domain's walls, the target (a red ring) and the
//! particles, one frame per observed step.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

const SIZE: usize = 400;

fn put(img: &mut [u8], x: i64, y: i64, rgb: [u8; 3]) {
    if (0..SIZE as i64).contains(&x) && (0..SIZE as i64).contains(&y) {
        let at = (y as usize * SIZE + x as usize) * 3;
        img[at..at + 3].copy_from_slice(&rgb);
    }
}

/// Writes `frames` (`[K, n, 2]` positions in the unit square) at 25 frames per second.
pub fn throw(path: &Path, frames: &[f32], n: usize, target: [f32; 2]) -> std::io::Result<()> {
    let k = frames.len() / (2 * n);
    let px = |x: f32, y: f32| ((x * SIZE as f32) as i64, ((1.0 - y) * SIZE as f32) as i64);
    let mut enc = png::Encoder::new(
        BufWriter::new(File::create(path)?),
        SIZE as u32,
        SIZE as u32,
    );
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_animated(k as u32, 0)
        .map_err(std::io::Error::other)?;
    enc.set_frame_delay(1, 25).map_err(std::io::Error::other)?;
    let mut writer = enc.write_header().map_err(std::io::Error::other)?;
    for f in 0..k {
        let mut img = vec![236u8; SIZE * SIZE * 3];
        // The walls' band (3 of 120 cells) in grey.
        let band = (SIZE as f32 * 3.0 / 120.0) as i64;
        for a in 0..SIZE as i64 {
            for b in 0..band {
                for (x, y) in [
                    (a, b),
                    (a, SIZE as i64 - 1 - b),
                    (b, a),
                    (SIZE as i64 - 1 - b, a),
                ] {
                    put(&mut img, x, y, [200, 200, 200]);
                }
            }
        }
        let (tx, ty) = px(target[0], target[1]);
        for t in 0..360 {
            let r = t as f32 * std::f32::consts::PI / 180.0;
            for radius in [7.0f32, 8.0] {
                let (x, y) = (
                    tx + (radius * r.cos()) as i64,
                    ty + (radius * r.sin()) as i64,
                );
                put(&mut img, x, y, [214, 39, 40]);
            }
        }
        for i in 0..n {
            let (x, y) = px(frames[(f * n + i) * 2], frames[(f * n + i) * 2 + 1]);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                put(&mut img, x + dx, y + dy, [17, 34, 51]);
            }
        }
        writer
            .write_image_data(&img)
            .map_err(std::io::Error::other)?;
    }
    writer.finish().map_err(std::io::Error::other)
}
