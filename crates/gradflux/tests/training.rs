//! The `train_mlp` example's model trains on every backend: the loss falls, and the device's
//! loss curve follows the CPU reference's.

mod common;

use gradflux::{compare, Device, Graph, TensorData, Tolerance};

#[path = "../../../examples/train_mlp/model.rs"]
mod model;

const STEPS: usize = 60;

fn curve(device: &Device) -> Vec<f32> {
    let mut rng = model::Rng(0x5eed_1234);
    let (x, y) = model::spiral(100, &mut rng).unwrap();
    let g = Graph::new();
    let (loss, _) = model::build(&g, x.shape().dims()[0], 0.02, &mut rng).unwrap();
    let mut step = device.compile(&g, &[loss]).unwrap();
    (0..STEPS)
        .map(|_| {
            step.run(&[("x", &x), ("y", &y)]).unwrap()[0]
                .values::<f32>()
                .unwrap()[0]
        })
        .collect()
}

#[test]
fn the_example_mlp_trains_and_matches_the_cpu_reference() {
    let reference = curve(&Device::Cpu);
    assert!(
        reference[STEPS - 1] < 0.5 * reference[0],
        "loss must at least halve in {STEPS} steps: {reference:?}"
    );
    if let Some(gpu) = common::gpu() {
        let on_gpu = curve(&gpu);
        compare(
            &TensorData::new([STEPS], reference).unwrap(),
            &TensorData::new([STEPS], on_gpu).unwrap(),
            Tolerance::new(1e-2, 1e-3),
        )
        .unwrap_or_else(|m| panic!("loss curve on {}: {m}", gpu.name()));
    }
}
