//! The matmul autotuner on the test adapter: it times candidates at first use, writes its
//! choice to the cache file, and a fresh device reads that choice instead of timing again.

mod common;

use gradflux::{DType, Device, Graph, TensorData, Tolerance, Tuning, WgpuDevice};

use common::{gpu, random, Rng};

fn compile_and_run(device: &WgpuDevice, m: usize, k: usize, n: usize) -> Vec<TensorData> {
    let g = Graph::new();
    let a = g.input("a", [m, k], DType::F32).unwrap();
    let b = g.input("b", [k, n], DType::F32).unwrap();
    let y = g.matmul(a, b).unwrap();
    let mut rng = Rng::new(7);
    let da = random(&mut rng, [m, k], DType::F32, -1.0, 1.0);
    let db = random(&mut rng, [k, n], DType::F32, -1.0, 1.0);
    let inputs = [("a", &da), ("b", &db)];
    let got = Device::Wgpu(device.clone())
        .compile(&g, &[y])
        .and_then(|mut e| e.run(&inputs))
        .unwrap();
    let want = Device::Cpu.compile(&g, &[y]).unwrap().run(&inputs).unwrap();
    gradflux::compare(&want[0], &got[0], Tolerance::new(1e-5, 2e-6 * k as f64)).unwrap();
    got
}

#[test]
fn tuning_times_once_and_the_cache_file_carries_the_choice() {
    let Some(_) = gpu() else { return };
    let dir = std::env::temp_dir().join(format!("gradflux-tune-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("matmul-tuning-v2.tsv");

    let first = WgpuDevice::best().unwrap();
    first.set_tune_cache(Some(file.clone()));
    first.set_tuning(Tuning::On);
    compile_and_run(&first, 40, 24, 36);
    compile_and_run(&first, 48, 28, 40); // same class and layout: not timed again
    assert_eq!(first.tuner_stats().tuned, 1);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("m64n64k32"), "{}", lines[0]);
    assert!(
        lines[0].contains(&first.summary().info.name),
        "{}",
        lines[0]
    );

    let second = WgpuDevice::best().unwrap();
    second.set_tune_cache(Some(file.clone()));
    second.set_tuning(Tuning::On);
    compile_and_run(&second, 40, 24, 36);
    let stats = second.tuner_stats();
    assert_eq!((stats.tuned, stats.from_file), (0, 1));

    // A damaged line is ignored and that class is tuned again.
    std::fs::write(&file, text.replace('\t', "\tgarbage ")).unwrap();
    let third = WgpuDevice::best().unwrap();
    third.set_tune_cache(Some(file));
    third.set_tuning(Tuning::On);
    compile_and_run(&third, 40, 24, 36);
    assert_eq!(third.tuner_stats().tuned, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tuning_off_is_deterministic_and_a_config_that_does_not_fit_is_refused() {
    let Some(_) = gpu() else { return };
    let device = WgpuDevice::best().unwrap();
    device.set_tune_cache(None);
    device.set_tuning(Tuning::Off);
    let a = compile_and_run(&device, 70, 33, 50);
    let b = compile_and_run(&device, 70, 33, 50);
    assert_eq!(a, b, "the same kernel runs each time");
    assert_eq!(device.tuner_stats().tuned, 0);

    let too_big = gradflux::TileConfig::new(8, 8, 64, 64, 16);
    device.set_tuning(Tuning::Fixed(too_big));
    let g = Graph::new();
    let x = g.input("x", [8, 8], DType::F32).unwrap();
    let y = g.matmul(x, x).unwrap();
    let err = Device::Wgpu(device.clone())
        .compile(&g, &[y])
        .err()
        .expect("refused");
    assert!(err.to_string().contains("8x8/64x64/16"), "{err}");
}

/// Without matrix units the cooperative path stays off whatever is asked, and nothing is
/// checked or refused; with them, every kernel the tuner may choose passed its check.
#[test]
fn cooperative_matrix_is_used_only_where_the_adapter_has_it() {
    let Some(_) = gpu() else { return };
    let device = WgpuDevice::best().unwrap();
    device.set_tune_cache(None);
    let has_units = device
        .summary()
        .features
        .contains(gradflux::wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
    device.set_cooperative_matrix(true);
    if !has_units {
        assert_eq!(device.cooperative_matrix(), None);
    }
    device.set_tuning(Tuning::Off);
    compile_and_run(&device, 64, 32, 48);
    let stats = device.tuner_stats();
    if device.cooperative_matrix().is_none() {
        assert_eq!((stats.coop_verified, stats.coop_rejected), (0, 0));
    }
    assert!(
        device.cooperative_matrix_failures().is_empty(),
        "cooperative kernels refused on {}: {:?}",
        device.summary().describe(),
        device.cooperative_matrix_failures()
    );
    device.set_cooperative_matrix(false);
    assert_eq!(device.cooperative_matrix(), None);
}
