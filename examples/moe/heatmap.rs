//! Expert load over training as a PNG heat map: one column per epoch, one row per
//! expert. White is an idle expert, blue a perfectly balanced share (1/E of the routing
//! choices), red twice that or more. The image has no font, so the scale goes in its
//! text chunk.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

const CELL: usize = 24;

/// The colour of a load `share` of the choices, for `experts` experts.
fn colour(share: f32, experts: usize) -> [u8; 3] {
    let fair = 1.0 / experts as f32;
    let mix = |a: [f32; 3], b: [f32; 3], t: f32| {
        let t = t.clamp(0.0, 1.0);
        [0, 1, 2].map(|i| (a[i] + (b[i] - a[i]) * t) as u8)
    };
    let (white, blue, red) = ([255.0; 3], [31.0, 119.0, 180.0], [214.0, 39.0, 40.0]);
    if share <= fair {
        mix(white, blue, share / fair)
    } else {
        mix(blue, red, (share - fair) / fair)
    }
}

/// `loads[epoch][expert]` is the share of the epoch's routing choices sent to `expert`.
pub fn write(path: &Path, loads: &[Vec<f32>], title: &str) -> std::io::Result<()> {
    let experts = loads.first().map_or(1, Vec::len);
    let (w, h) = (loads.len().max(1) * CELL, experts * CELL);
    let mut pixels = vec![255u8; w * h * 3];
    for (epoch, load) in loads.iter().enumerate() {
        for (expert, &share) in load.iter().enumerate() {
            let rgb = colour(share, experts);
            // A one-pixel white gap between cells keeps the grid readable.
            for y in expert * CELL..(expert + 1) * CELL - 1 {
                for x in epoch * CELL..(epoch + 1) * CELL - 1 {
                    pixels[(y * w + x) * 3..][..3].copy_from_slice(&rgb);
                }
            }
        }
    }
    let mut enc = png::Encoder::new(BufWriter::new(File::create(path)?), w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.add_text_chunk(
        "Title".into(),
        format!(
            "{title}; columns: epochs 1..{}, rows: experts 0..{}; white 0, blue 1/{experts} of \
             the choices, red 2/{experts} or more",
            loads.len(),
            experts - 1
        ),
    )
    .map_err(std::io::Error::other)?;
    enc.write_header()
        .map_err(std::io::Error::other)?
        .write_image_data(&pixels)
        .map_err(std::io::Error::other)
}
