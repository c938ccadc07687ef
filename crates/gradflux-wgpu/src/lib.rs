//! gradflux-wgpu
