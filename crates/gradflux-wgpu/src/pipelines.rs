//! Compute pipelines, created once per (source, entry point, override constants, layout)
//! and shared by every executable on a device.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use gradflux_core::{Error, Result};

pub use gradflux_core::kernel::KernelSource;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    source_hash: u64,
    source_len: usize,
    entry_point: String,
    constants: Vec<(&'static str, u64)>,
    read_only: Vec<bool>,
}

impl PipelineKey {
    fn of(k: &KernelSource) -> Self {
        let mut h = DefaultHasher::new();
        k.source.hash(&mut h);
        PipelineKey {
            source_hash: h.finish(),
            source_len: k.source.len(),
            entry_point: k.entry_point.clone(),
            constants: k.constants.iter().map(|(n, v)| (*n, v.to_bits())).collect(),
            read_only: k.read_only.clone(),
        }
    }
}

/// A pipeline and the explicit layout its bind groups are made against.
pub struct CachedPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    map: Mutex<HashMap<PipelineKey, Arc<CachedPipeline>>>,
}

impl PipelineCache {
    pub fn len(&self) -> usize {
        self.map.lock().expect("pipeline cache").len()
    }

    /// Returns the cached pipeline or builds it, turning wgpu validation errors (a WGSL
    /// error, a layout mismatch) into `Err` naming the kernel.
    pub fn get(&self, device: &wgpu::Device, k: &KernelSource) -> Result<Arc<CachedPipeline>> {
        let key = PipelineKey::of(k);
        if let Some(p) = self.map.lock().expect("pipeline cache").get(&key) {
            return Ok(p.clone());
        }
        let scope = crate::block::push(device, wgpu::ErrorFilter::Validation);
        let entries: Vec<wgpu::BindGroupLayoutEntry> = k
            .read_only
            .iter()
            .enumerate()
            .map(|(i, &read_only)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&k.label),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&k.label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&k.label),
            source: wgpu::ShaderSource::Wgsl(k.source.as_str().into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&k.label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(&k.entry_point),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &k.constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(e) = scope.pop() {
            return Err(Error::Device(format!(
                "building pipeline for kernel `{}`: {e}",
                k.label
            )));
        }
        let cached = Arc::new(CachedPipeline { pipeline, layout });
        self.map
            .lock()
            .expect("pipeline cache")
            .insert(key, cached.clone());
        Ok(cached)
    }
}

/// A bind group of whole buffers, bound in order from binding 0.
pub fn bind_buffers(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, buf)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: buf.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}
