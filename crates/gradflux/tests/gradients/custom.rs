//! Custom ops with a backward.

use super::*;

/// `y = x^3` as a custom op with a custom backward `dx = 3 x^2 * dy`, in `dtype`; WGSL only
/// for f32 (core WGSL has no f64).
fn cube_with_backward(n: usize, dtype: DType) -> std::sync::Arc<CustomOp> {
    fn map(
        xs: &[&TensorData],
        f: impl Fn(&[f64]) -> f64,
    ) -> std::result::Result<Vec<TensorData>, String> {
        let cols: Vec<Vec<f64>> = xs.iter().map(|t| t.to_f64_vec()).collect();
        let n = cols[0].len();
        let vals: Vec<f64> = (0..n)
            .map(|i| f(&cols.iter().map(|c| c[i]).collect::<Vec<_>>()))
            .collect();
        let storage = match xs[0].dtype() {
            DType::F32 => gradflux::Storage::F32(vals.iter().map(|&v| v as f32).collect()),
            _ => gradflux::Storage::F64(vals),
        };
        TensorData::from_storage(xs[0].shape().clone(), storage)
            .map(|t| vec![t])
            .map_err(|e| e.to_string())
    }
    let wgsl = |body: &str, inputs: usize| {
        let mut s = String::new();
        for i in 0..inputs {
            s += &format!("@group(0) @binding({i}) var<storage, read> in{i}: array<f32>;\n");
        }
        s += &format!("@group(0) @binding({inputs}) var<storage, read_write> out: array<f32>;\n");
        s += &format!(
            "@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
             let i = gid.x;\nif i < {n}u {{ out[i] = {body}; }}\n}}\n"
        );
        s
    };
    let dispatch = gradflux::Dispatch::Threads {
        threads: n as u64,
        workgroup_size: 64,
    };
    let mut bw = CustomOp::builder("cube_backward")
        .input([n], dtype)
        .input([n], dtype)
        .input([n], dtype)
        .output([n], dtype)
        .cpu(|xs| map(xs, |v| 3.0 * v[0] * v[0] * v[2]));
    let mut fw = CustomOp::builder("cube")
        .input([n], dtype)
        .output([n], dtype)
        .cpu(|xs| map(xs, |v| v[0] * v[0] * v[0]));
    if dtype == DType::F32 {
        bw = bw.wgsl(wgsl("3.0 * in0[i] * in0[i] * in2[i]", 3), "main", dispatch);
        fw = fw.wgsl(wgsl("in0[i] * in0[i] * in0[i]", 1), "main", dispatch);
    }
    fw.backward(bw.build().unwrap()).build().unwrap()
}

#[test]
fn custom_ops_with_a_backward_are_differentiable_on_every_backend() {
    let n = 300;
    check_op("custom cube", &[arg(&[n], -2.0, 2.0)], move |g, x| {
        let op = cube_with_backward(n, g.dtype(x[0])?);
        // Composed with built-in ops on both sides, so gradients flow through it.
        let y = g.custom(&op, &[g.tanh(x[0])?])?[0];
        g.mul(y, x[0])
    });
}

#[test]
fn a_backward_with_the_wrong_signature_is_refused() {
    let bw = CustomOp::builder("bad_backward")
        .input([3], DType::F32)
        .output([3], DType::F32)
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .build()
        .unwrap();
    let e = CustomOp::builder("op")
        .input([3], DType::F32)
        .output([3], DType::F32)
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .backward(bw)
        .build()
        .unwrap_err();
    assert!(
        e.to_string().contains("bad_backward") && e.to_string().contains("cotangents"),
        "{e}"
    );
}
