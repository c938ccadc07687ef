//! The WGSL lowering of the layout ops: strided copies (`shaders/layout/`).

use crate::kernel::launch::{kernel, padded, per_element, values, Launch, ELEMENTWISE_WG};
use crate::{DType, Value};

/// `[numel, rank, src base, dst base, dims[8], src strides[8], dst strides[8]]`.
pub fn copy_info(
    dims: &[usize],
    src_base: usize,
    src_strides: &[usize],
    dst_base: usize,
    dst_strides: &[usize],
) -> Vec<u32> {
    let numel: usize = dims.iter().product();
    let mut info = vec![
        numel as u32,
        dims.len() as u32,
        src_base as u32,
        dst_base as u32,
    ];
    info.extend(padded(dims));
    info.extend(padded(src_strides));
    info.extend(padded(dst_strides));
    info
}

/// One strided copy from `src` to `dst` as laid out by [`copy_info`], a thread per
/// element.
pub fn copy_launch(src: Value, dst: Value, info: Vec<u32>) -> Launch {
    let numel = info[0] as usize;
    Launch {
        kernel: kernel(
            &super::STRIDED_COPY,
            "strided_copy".into(),
            DType::U32,
            DType::U32,
            None,
            vec![("WG", ELEMENTWISE_WG as f64)],
            3,
        ),
        binds: values([src, dst]),
        scratch: vec![],
        info,
        workgroups: per_element(numel),
    }
}
