//! The gait as an animated PNG: the ground with a tick every 10 cm, the springs (muscles
//! in red) and the particles, one frame per observed step.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::robot::Robot;

const W: usize = 640;
const H: usize = 240;
/// Pixels per metre, and the world point at the image's left edge on the ground line.
const SCALE: f32 = 600.0;
const GROUND_PX: usize = 200;

struct Canvas(Vec<u8>);

impl Canvas {
    fn new() -> Canvas {
        Canvas(vec![255; W * H * 3])
    }

    fn set(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if (0..W as i64).contains(&x) && (0..H as i64).contains(&y) {
            let at = (y as usize * W + x as usize) * 3;
            self.0[at..at + 3].copy_from_slice(&rgb);
        }
    }

    fn line(&mut self, (x0, y0): (f32, f32), (x1, y1): (f32, f32), rgb: [u8; 3]) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as i64).max(1);
        for k in 0..=steps {
            let t = k as f32 / steps as f32;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
                self.set(x.round() as i64 + dx, y.round() as i64 + dy, rgb);
            }
        }
    }

    fn disc(&mut self, (cx, cy): (f32, f32), r: i64, rgb: [u8; 3]) {
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= r * r {
                    self.set(cx.round() as i64 + dx, cy.round() as i64 + dy, rgb);
                }
            }
        }
    }
}

/// Writes `frames` (`[K, N, 2]` positions) as an animated PNG, 25 frames per second.
pub fn gait(path: &Path, robot: &Robot, frames: &[f32]) -> std::io::Result<()> {
    let n = robot.system.particles();
    let k = frames.len() / (2 * n);
    let muscles: Vec<bool> = (0..robot.system.springs.len())
        .map(|s| robot.system.actuators.iter().any(|a| a.0 as usize == s))
        .collect();
    let px = |x: f32, y: f32| (40.0 + SCALE * x, GROUND_PX as f32 - SCALE * y);
    let mut enc = png::Encoder::new(BufWriter::new(File::create(path)?), W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_animated(k as u32, 0)
        .map_err(std::io::Error::other)?;
    enc.set_frame_delay(1, 25).map_err(std::io::Error::other)?;
    let mut writer = enc.write_header().map_err(std::io::Error::other)?;
    for f in 0..k {
        let at = |i: usize| (frames[(f * n + i) * 2], frames[(f * n + i) * 2 + 1]);
        let mut c = Canvas::new();
        c.line(
            (0.0, GROUND_PX as f32),
            (W as f32, GROUND_PX as f32),
            [90, 90, 90],
        );
        for tick in 0..=10 {
            let (x, y) = px(0.1 * tick as f32, 0.0);
            c.line((x, y), (x, y + 8.0), [90, 90, 90]);
        }
        for (s, &[a, b]) in robot.system.springs.iter().enumerate() {
            let (pa, pb) = (at(a as usize), at(b as usize));
            let rgb = if muscles[s] {
                [214, 39, 40]
            } else {
                [31, 119, 180]
            };
            c.line(px(pa.0, pa.1), px(pb.0, pb.1), rgb);
        }
        for i in 0..n {
            let p = at(i);
            c.disc(px(p.0, p.1), 3, [20, 20, 20]);
        }
        writer
            .write_image_data(&c.0)
            .map_err(std::io::Error::other)?;
    }
    writer.finish().map_err(std::io::Error::other)
}
