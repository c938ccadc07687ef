//! The walker: a 2D mass-spring body on two legs, built from grid cells as DiffTaichi's
//! soft robots are (each cell's edges and diagonals are springs), with the springs of its
//! legs and belly actuated, and an open-loop controller of sinusoids.

use gradflux::{GroundContact, MassSpring};

/// Grid spacing (m).
pub const H: f32 = 0.05;
/// Substep (s), substeps per control step, control steps.
pub const DT: f32 = 1.25e-3;
pub const SUBSTEPS: usize = 2;
pub const STEPS: usize = 400;
/// Sinusoids the controller mixes, and their angular frequency (rad/s).
pub const WAVES: usize = 4;
pub const OMEGA: f32 = 4.0 * std::f32::consts::PI;

pub struct Robot {
    pub system: MassSpring,
    /// Positions `[N, 2]`.
    pub x0: Vec<f32>,
    /// Rest lengths (the springs' lengths at the start).
    pub rest: Vec<f32>,
}

/// The occupied cells `(column, row)`: a body five cells long and one tall, on a leg of two
/// cells under each end.
const CELLS: [(u32, u32); 9] = [
    (0, 2),
    (1, 2),
    (2, 2),
    (3, 2),
    (4, 2),
    (0, 0),
    (0, 1),
    (4, 0),
    (4, 1),
];

pub fn walker() -> Robot {
    let mut corners: Vec<(u32, u32)> = vec![];
    let mut id = |c: (u32, u32)| match corners.iter().position(|&k| k == c) {
        Some(i) => i as u32,
        None => {
            corners.push(c);
            corners.len() as u32 - 1
        }
    };
    let mut springs: Vec<([u32; 2], bool)> = vec![];
    for &(c, r) in &CELLS {
        let [a, b, d, e] = [(c, r), (c + 1, r), (c, r + 1), (c + 1, r + 1)].map(&mut id);
        // Legs and the belly (the body's bottom edge) are muscles.
        let leg = r < 2;
        for (pair, muscle) in [
            ([a, b], leg || r == 2),
            ([d, e], leg),
            ([a, d], leg),
            ([b, e], leg),
            ([a, e], leg),
            ([b, d], leg),
        ] {
            let sorted = [pair[0].min(pair[1]), pair[0].max(pair[1])];
            if !springs.iter().any(|(s, _)| *s == sorted) {
                springs.push((sorted, muscle));
            }
        }
    }
    // Start 1 cm above the ground.
    let x0: Vec<f32> = corners
        .iter()
        .flat_map(|&(c, r)| [H * c as f32, H * r as f32 + 0.01])
        .collect();
    let rest = springs
        .iter()
        .map(|([a, b], _)| {
            let (a, b) = (*a as usize, *b as usize);
            ((x0[2 * a] - x0[2 * b]).powi(2) + (x0[2 * a + 1] - x0[2 * b + 1]).powi(2)).sqrt()
        })
        .collect();
    let n = corners.len();
    let mut system = MassSpring::new(2, n, springs.iter().map(|s| s.0).collect(), DT);
    system.inv_mass = vec![10.0; n];
    system.gravity = [0.0, -9.8, 0.0];
    system.ground = Some(GroundContact {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
        radius: 0.0,
        ke: 2_000.0,
        kd: 5.0,
        kf: 20.0,
        mu: 1.0,
    });
    system.actuators = springs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.1)
        .map(|(k, _)| (k as u32, 0.25))
        .collect();
    Robot { system, x0, rest }
}

/// The controller's inputs: `sin(ω t + 2π j / WAVES)` per control step `t` and wave `j`.
pub fn waves() -> Vec<f32> {
    (0..STEPS)
        .flat_map(|t| {
            let time = t as f32 * DT * SUBSTEPS as f32;
            (0..WAVES).map(move |j| {
                (OMEGA * time + 2.0 * std::f32::consts::PI * j as f32 / WAVES as f32).sin()
            })
        })
        .collect()
}
