//! The wgpu runtime: one [`Gpu`] context (adapter, device with the adapter's limits, queue),
//! pipelines compiled once and cached, buffer helpers that poison outputs, and one wrapper per
//! kernel in `gpu/*.wgsl`.
//!
//! Getting a device is kept apart from running a kernel: every wrapper takes `&Gpu`, so tests
//! and benches inject the one shared context ([`Gpu::shared`]).

pub mod adam;
pub mod bfcnn;
pub mod conv;
pub mod ddim;
pub mod denoiser_jvp;
pub mod dense;
pub mod embedding;
pub mod empirical;
pub mod gaussian;
pub mod gemm;
pub mod gmm;
pub mod group_norm;
pub mod jacobian_eigen;
pub mod mlp;
pub mod monte_carlo;
pub mod philox;
pub mod power_features;
pub mod resample;
pub mod rowwise;
pub mod shaders;
pub mod unet;
pub(crate) mod uniforms;

use crate::error::{Error, Result};
use shaders::Shader;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Bit pattern written into every output buffer before a kernel runs: a quiet NaN as f32 and
/// `u32::MAX` as u32, so an element the kernel forgot to write cannot pass a parity check.
pub const POISON: u32 = 0xFFFF_FFFF;

/// Threads per workgroup of every 1-D kernel here.
pub const WORKGROUP_SIZE: u32 = 64;

/// The wgpu context: adapter info, device (created with the adapter's own limits), queue, and
/// the cache of compiled pipelines.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    timestamps: bool,
    tensor_cores: bool,
    scratch: Mutex<Option<wgpu::Buffer>>,
    /// Uniform buffers by their bytes ([`Gpu::shared_uniform`]).
    uniforms: Mutex<HashMap<Vec<u8>, wgpu::Buffer>>,
    /// The 16-byte storage buffer bound where a kernel's operand is unused ([`Gpu::stand_in`]).
    stand_in: wgpu::Buffer,
    pipelines: Mutex<HashMap<&'static str, Arc<wgpu::ComputePipeline>>>,
    turn: parking_lot::ReentrantMutex<()>,
}

/// One thread's exclusive use of a [`Gpu`] ([`Gpu::turn`]); released when dropped.
pub struct Turn<'g> {
    _guard: parking_lot::ReentrantMutexGuard<'g, ()>,
}

/// A part of the context (device or queue) borrowed for one thread's [`Turn`]: it derefs to
/// the wgpu object, and other threads' GPU work waits until it is dropped.
pub struct Held<'g, T> {
    value: &'g T,
    _turn: Turn<'g>,
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu").field("adapter", &self.info).finish()
    }
}

/// Whether `adapter` can run [`shaders::GEMM_COOP`]: it offers [`shaders::GEMM_COOP_FEATURES`]
/// and a 16×16×16 cooperative-matrix configuration with f16 operands and an f32 accumulator,
/// and its subgroups are exactly 32 wide (the kernel's 128 invocations must form the 4
/// subgroups that own its 4 quadrants). True on the H100 (Vulkan); false on llvmpipe.
pub fn offers_tensor_core_gemm(adapter: &wgpu::Adapter) -> bool {
    let info = adapter.get_info();
    adapter.features().contains(shaders::GEMM_COOP_FEATURES)
        && (info.subgroup_min_size, info.subgroup_max_size) == (32, 32)
        && adapter.cooperative_matrix_properties().iter().any(|p| {
            (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
                && p.ab_type == wgpu::CooperativeScalarType::F16
                && p.cr_type == wgpu::CooperativeScalarType::F32
        })
}

static SHARED: OnceLock<std::result::Result<Gpu, Error>> = OnceLock::new();

impl Gpu {
    /// Opens the best adapter of the backends allowed by `WGPU_BACKEND` (default: all compiled
    /// in — Vulkan and GL here), preferring a discrete GPU, and creates a device with the
    /// adapter's full limits (the defaults are far below a real card's), and with
    /// `TIMESTAMP_QUERY` when the adapter offers it (see [`Gpu::time`]).
    pub fn new() -> Result<Self> {
        let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|_| Error::NoAdapter {
            backend: std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "unset".into()),
        })?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let tensor_cores = offers_tensor_core_gemm(&adapter);
        let mut required_features = wgpu::Features::empty();
        if timestamps {
            required_features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let experimental_features = if tensor_cores {
            required_features |= shaders::GEMM_COOP_FEATURES;
            // SAFETY: the only experimental feature requested is cooperative matrices, used by
            // one kernel (`gpu/gemm_coop.wgsl`) that callers opt into and whose results the
            // parity test `gemm_on_tensor_cores_is_within_the_f16_bound` checks on such a device.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("diffusion-theorems"),
            required_features,
            required_limits: limits.clone(),
            experimental_features,
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("request_device on {}: {e}", info.name)))?;
        let stand_in = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("stand-in for an unused operand"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(Self {
            device,
            queue,
            info,
            limits,
            timestamps,
            tensor_cores,
            scratch: Mutex::new(None),
            uniforms: Mutex::new(HashMap::new()),
            stand_in,
            pipelines: Mutex::new(HashMap::new()),
            turn: parking_lot::ReentrantMutex::new(()),
        })
    }

    /// A context as [`Gpu::new`] that takes `bytes` for its largest storage binding where that
    /// is below the adapter's ([`Gpu::max_binding_bytes`]). Every size check and every cut of a
    /// product too large for one binding reads that limit, so the cutting runs on matrices of a
    /// few MiB instead of the 128 MiB an adapter's limit needs (tests).
    pub fn with_binding_cap(bytes: u64) -> Result<Self> {
        let mut gpu = Self::new()?;
        let limit = &mut gpu.limits.max_storage_buffer_binding_size;
        *limit = (*limit).min(bytes);
        Ok(gpu)
    }

    /// The process-wide context, created on first use. Errors (no adapter) are remembered and
    /// returned to every caller.
    pub fn shared() -> Result<&'static Gpu> {
        SHARED.get_or_init(Gpu::new).as_ref().map_err(Clone::clone)
    }

    /// `"<adapter name> (<backend>)"`, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)"`.
    pub fn backend_name(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }

    /// The adapter's description (name, backend, device type — `DeviceType::Cpu` for a
    /// software rasteriser such as llvmpipe).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether the adapter is a software rasteriser (`DeviceType::Cpu`: llvmpipe, lavapipe), on
    /// which GPU verify rows run their smaller stated sizes.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Whether the device was created with `TIMESTAMP_QUERY`, so [`Gpu::time`] reads GPU
    /// timestamps rather than the wall clock.
    pub(crate) fn has_timestamps(&self) -> bool {
        self.timestamps
    }

    /// Whether the device can run [`shaders::GEMM_COOP`], the f16 tensor-core GEMM
    /// (see [`offers_tensor_core_gemm`]); the GEMM uses it only where a caller opts in.
    pub fn has_tensor_cores(&self) -> bool {
        self.tensor_cores
    }

    /// Runs `f` and measures it. On a device with timestamp queries, every
    /// [`Gpu::dispatch_sequence`] (hence every kernel wrapper) that this thread submits inside
    /// `f` writes a timestamp at the start of its first pass and at the end of its last, and
    /// [`Timing::seconds`] is the sum of those GPU intervals: kernel time, excluding uploads,
    /// readbacks, pipeline creation and host work between submissions. Without them it is the
    /// wall clock of `f` followed by a full device poll ([`Clock::WallClock`]).
    /// [`Timing::wall_seconds`] is always the wall clock (including the small cost of reading
    /// the timestamps back). Nested calls are allowed: the inner interval also counts in the
    /// outer one.
    pub fn time<R>(&self, f: impl FnOnce() -> Result<R>) -> Result<(R, Timing)> {
        let outer = GPU_SECONDS.with(|c| c.replace(Some(0.0)));
        let start = Instant::now();
        let result = f();
        let polled = self.wait(None, "the timed work");
        let wall_seconds = start.elapsed().as_secs_f64();
        // Always `Some`: set above, and nested calls restore what they found.
        let inner = GPU_SECONDS.with(|c| c.replace(outer)).unwrap_or(0.0);
        GPU_SECONDS.with(|c| c.set(c.get().map(|o| o + inner)));
        let value = result?;
        polled?;
        let (seconds, clock) = if self.timestamps {
            (inner, Clock::Timestamps)
        } else {
            (wall_seconds, Clock::WallClock)
        };
        Ok((
            value,
            Timing {
                seconds,
                wall_seconds,
                clock,
            },
        ))
    }

    /// The adapter's limits, as granted to the device.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// This thread's exclusive use of the context until the returned [`Turn`] is dropped;
    /// reentrant, so a thread that holds a turn may take it again. Every method here that
    /// touches the device takes one, so GPU work from several threads runs one thread at a
    /// time. That is what keeps the GL backend alive under load: wgpu-hal's GL backend holds
    /// one context lock while it submits (llvmpipe runs the dispatches inside the submit) and
    /// panics when another thread waits more than 6 s for it ("Could not lock adapter
    /// context"); a thread waiting for a turn waits without that limit. What a turn does not
    /// cover is dropping a buffer outside one (wgpu frees it at once, under the GL lock): such
    /// a drop waits for at most the one submission running in another thread, so only a
    /// single submission longer than 6 s could still time out (`scripts/gl_under_load.sh`
    /// runs the parity tests under load to check).
    pub fn turn(&self) -> Turn<'_> {
        Turn {
            _guard: self.turn.lock(),
        }
    }

    /// The device, held for this thread's [`Turn`] while the returned value lives.
    pub fn device(&self) -> Held<'_, wgpu::Device> {
        Held {
            value: &self.device,
            _turn: self.turn(),
        }
    }

    /// The queue, held for this thread's [`Turn`] while the returned value lives.
    pub(crate) fn queue(&self) -> Held<'_, wgpu::Queue> {
        Held {
            value: &self.queue,
            _turn: self.turn(),
        }
    }

    /// Waits until `submission` (every submission when `None`) has finished. On the GL
    /// backend it polls without blocking, a fraction of a millisecond apart, because a
    /// blocking wait holds the GL context lock for the whole wait (see [`Gpu::turn`]); other
    /// backends block.
    fn wait(&self, submission: Option<wgpu::SubmissionIndex>, what: &str) -> Result<()> {
        let _turn = self.turn();
        if self.info.backend != wgpu::Backend::Gl {
            return self
                .device
                .poll(wgpu::PollType::Wait {
                    submission_index: submission,
                    timeout: None,
                })
                .map(drop)
                .map_err(|e| Error::Gpu(format!("waiting for {what}: {e}")));
        }
        loop {
            match self.device.poll(wgpu::PollType::Wait {
                submission_index: submission.clone(),
                timeout: Some(Duration::ZERO),
            }) {
                Ok(_) => return Ok(()),
                Err(wgpu::PollError::Timeout) => std::thread::sleep(Duration::from_micros(200)),
                Err(e) => return Err(Error::Gpu(format!("waiting for {what}: {e}"))),
            }
        }
    }

    /// Waits until everything queued so far (writes included) has reached the GPU and run: an
    /// empty submission flushes the queue's pending writes, then [`Gpu::wait`] on it.
    pub(crate) fn finish(&self, what: &str) -> Result<()> {
        let index = self.queue().submit([]);
        self.wait(Some(index), what)
    }

    /// Largest storage binding in bytes (128 MiB on llvmpipe, 2 GiB − 4 on an H100).
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// The compute pipeline of `shader`, compiled on first use and cached.
    pub(crate) fn pipeline(&self, shader: &Shader) -> Result<Arc<wgpu::ComputePipeline>> {
        let _turn = self.turn();
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| Error::Gpu("pipeline cache poisoned by a panic".into()))?;
        if let Some(p) = cache.get(shader.entry_point) {
            return Ok(p.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.entry_point),
                source: wgpu::ShaderSource::Wgsl(shader.source().into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader.entry_point),
                layout: None,
                module: &module,
                entry_point: Some(shader.entry_point),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!(
                "compiling {}: {err}",
                shader.entry_point
            )));
        }
        let pipeline = Arc::new(pipeline);
        cache.insert(shader.entry_point, pipeline.clone());
        Ok(pipeline)
    }

    /// A read-only storage buffer holding `data` (at least 4 bytes, so empty inputs bind).
    pub fn input<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let _turn = self.turn();
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.check_binding(label, bytes.len() as u64)?;
        let size = (bytes.len() as u64).max(4).next_multiple_of(4);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if !bytes.is_empty() {
            self.queue.write_buffer(&buffer, 0, bytes);
        }
        Ok(buffer)
    }

    /// A uniform buffer holding one parameter struct (one of [`uniforms`], each checked
    /// against its shader's layout).
    pub(crate) fn uniform<T: uniforms::Uniform>(&self, label: &str, value: &T) -> wgpu::Buffer {
        let _turn = self.turn();
        let bytes = bytemuck::bytes_of(value);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, bytes);
        buffer
    }

    /// The uniform buffer holding `value`, shared by every caller that asks for the same bytes
    /// (uniforms are read-only to kernels): a tiled algorithm that prepares thousands of
    /// products of a few shapes allocates a few parameter buffers, not thousands (each
    /// allocation is a search of the device allocator's free list). At most
    /// [`SHARED_UNIFORMS`] are kept; past that the cache starts afresh (holders keep theirs).
    pub(crate) fn shared_uniform<T: uniforms::Uniform>(
        &self,
        label: &str,
        value: &T,
    ) -> Result<wgpu::Buffer> {
        let _turn = self.turn();
        let bytes = bytemuck::bytes_of(value);
        let mut cache = self
            .uniforms
            .lock()
            .map_err(|_| Error::Gpu("the uniform cache's lock was poisoned".into()))?;
        if let Some(buffer) = cache.get(bytes) {
            return Ok(buffer.clone());
        }
        if cache.len() >= SHARED_UNIFORMS {
            cache.clear();
        }
        let buffer = self.uniform(label, value);
        cache.insert(bytes.to_vec(), buffer.clone());
        Ok(buffer)
    }

    /// A 16-byte storage buffer that no kernel writes, bound in place of an operand a
    /// dispatch does not use (WGSL bindings cannot be left empty); one for every caller.
    pub(crate) fn stand_in(&self) -> wgpu::Buffer {
        self.stand_in.clone()
    }

    /// A read-write storage buffer of `n_words` 32-bit words, every word set to [`POISON`].
    pub fn output(&self, label: &str, n_words: usize) -> Result<wgpu::Buffer> {
        let buffer = self.unpoisoned_output(label, n_words)?;
        self.poison(&buffer);
        Ok(buffer)
    }

    /// A read-write storage buffer like [`Gpu::output`]'s but with undefined contents, for a
    /// caller that writes every word itself before anything reads it (a large upload that
    /// would otherwise cross the bus twice).
    pub(crate) fn unpoisoned_output(&self, label: &str, n_words: usize) -> Result<wgpu::Buffer> {
        let _turn = self.turn();
        let bytes = (n_words.max(1) * 4) as u64;
        self.check_binding(label, bytes)?;
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(buffer)
    }

    /// A storage buffer of at least `n_words` f32 shared by every caller, with undefined
    /// contents: for intermediates that one recorded sequence writes and then reads back before
    /// anything else can run (split-K's partial sums, written by a product's first dispatch and
    /// consumed by its second). Dispatches on the one queue never interleave across
    /// submissions, and wgpu orders those within one, so sharing is safe; it spares each product
    /// a fresh buffer and its upload (~50 MB of split-K partials for the dense trainer's
    /// products at d = 12288, h = 1000, and the GEMM of each DDIM step). Grown, never shrunk; a grown buffer replaces the
    /// old one for later callers while earlier holders keep theirs.
    pub fn scratch(&self, n_words: usize) -> Result<wgpu::Buffer> {
        let _turn = self.turn();
        let bytes = (n_words.max(1) * 4) as u64;
        self.check_binding("scratch", bytes)?;
        let mut scratch = self
            .scratch
            .lock()
            .map_err(|_| Error::Gpu("the scratch buffer's lock was poisoned".into()))?;
        match &*scratch {
            Some(buffer) if buffer.size() >= bytes => Ok(buffer.clone()),
            _ => {
                let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("scratch"),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                *scratch = Some(buffer.clone());
                Ok(buffer)
            }
        }
    }

    /// Fills `buffer` (which must allow copies into it, as [`Gpu::output`] and [`Gpu::scratch`]
    /// buffers do) with [`POISON`] words, queued before the next submission.
    pub fn poison(&self, buffer: &wgpu::Buffer) {
        let _turn = self.turn();
        self.queue
            .write_buffer(buffer, 0, &vec![0xFFu8; buffer.size() as usize]);
    }

    fn check_binding(&self, label: &str, bytes: u64) -> Result<()> {
        if bytes > self.max_binding_bytes() {
            return Err(Error::GpuLimit(format!(
                "{label}: {bytes} bytes exceed the adapter's storage binding limit {} — \
                 the caller must tile",
                self.max_binding_bytes()
            )));
        }
        Ok(())
    }

    /// Runs `shader` once with `bindings` bound to `@group(0) @binding(i)` in order, over
    /// `groups` workgroups, and waits for it. Validation errors come back as [`Error::Gpu`].
    pub(crate) fn dispatch(
        &self,
        shader: &Shader,
        bindings: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<()> {
        self.dispatch_sequence(
            &[Job {
                shader,
                bindings,
                groups,
            }],
            1,
        )
    }

    /// Runs `dispatches` in order in one submission, `repeat` times ([`Gpu::dispatch_sequence`]).
    pub fn run_dispatches(&self, dispatches: &[Dispatch], repeat: usize) -> Result<()> {
        let jobs: Vec<Job> = dispatches
            .iter()
            .map(|(shader, bindings, groups)| Job {
                shader,
                bindings,
                groups: *groups,
            })
            .collect();
        self.dispatch_sequence(&jobs, repeat)
    }

    /// Records `jobs` in order, `repeat` times over, into one command buffer — each dispatch in
    /// its own compute pass, so every dispatch sees the writes of the one before it — submits
    /// it once and waits. Bind groups are built once and reused across the repeats, which is
    /// what makes iterative algorithms (gradient descent, samplers) cheap per step.
    pub fn dispatch_sequence(&self, jobs: &[Job], repeat: usize) -> Result<()> {
        let _turn = self.turn();
        let max = self.limits.max_compute_workgroups_per_dimension;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut recorded = Vec::with_capacity(jobs.len());
        for job in jobs {
            if job.groups.iter().any(|&g| g > max) {
                return Err(Error::GpuLimit(format!(
                    "{}: workgroup grid {:?} exceeds {max} per dimension",
                    job.shader.entry_point, job.groups
                )));
            }
            let pipeline = self.pipeline(job.shader)?;
            let layout = pipeline.get_bind_group_layout(0);
            let entries: Vec<wgpu::BindGroupEntry> = job
                .bindings
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: b.as_entire_binding(),
                })
                .collect();
            let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(job.shader.entry_point),
                layout: &layout,
                entries: &entries,
            });
            recorded.push((pipeline, bind_group, job.groups));
        }
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("dispatch sequence"),
            });
        let passes = recorded.len() * repeat;
        let stamps = (passes > 0 && self.timestamps && GPU_SECONDS.with(|c| c.get().is_some()))
            .then(|| TimestampPair::new(&self.device));
        let mut pass_index = 0;
        for _ in 0..repeat {
            for (pipeline, bind_group, groups) in &recorded {
                let begin = (pass_index == 0).then_some(0);
                let end = (pass_index + 1 == passes).then_some(1);
                pass_index += 1;
                let timestamp_writes = stamps
                    .as_ref()
                    .filter(|_| begin.is_some() || end.is_some())
                    .map(|t| wgpu::ComputePassTimestampWrites {
                        query_set: &t.queries,
                        beginning_of_pass_write_index: begin,
                        end_of_pass_write_index: end,
                    });
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes,
                });
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            }
        }
        if let Some(t) = &stamps {
            t.resolve(&mut encoder);
        }
        let index = self.queue.submit([encoder.finish()]);
        let names = || {
            jobs.iter()
                .map(|j| j.shader.entry_point)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("dispatching {}: {err}", names())));
        }
        self.wait(Some(index), &names())?;
        if let Some(t) = stamps {
            let seconds = t.seconds(self)?;
            GPU_SECONDS.with(|c| c.set(c.get().map(|s| s + seconds)));
        }
        Ok(())
    }

    /// Copies the first `n` elements of type `T` of each buffer back, all through one staging
    /// buffer (each part at an offset rounded up to wgpu's copy alignment and T's size) with one
    /// submission and one wait. The buffers must allow copies out of them, as those of
    /// [`Gpu::output`] do.
    pub fn read_all<T: bytemuck::Pod>(
        &self,
        parts: &[(&wgpu::Buffer, usize)],
    ) -> Result<Vec<Vec<T>>> {
        let _turn = self.turn();
        let size = std::mem::size_of::<T>() as u64;
        let align = wgpu::COPY_BUFFER_ALIGNMENT.max(size);
        let mut offsets = Vec::with_capacity(parts.len());
        let mut total = 0u64;
        for &(_, n) in parts {
            offsets.push(total);
            total += (n as u64 * size).next_multiple_of(align);
        }
        if total == 0 {
            return Ok(parts.iter().map(|_| Vec::new()).collect());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        for (&(buffer, n), &offset) in parts.iter().zip(&offsets) {
            let bytes = n as u64 * size;
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(buffer, 0, &staging, offset, bytes);
            }
        }
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(None, "readback")?;
        rx.recv()
            .map_err(|e| Error::Gpu(format!("readback channel: {e}")))?
            .map_err(|e| Error::Gpu(format!("mapping readback buffer: {e}")))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("reading mapped range: {e}")))?;
        let out = parts
            .iter()
            .zip(&offsets)
            .map(|(&(_, n), &offset)| {
                let first = offset as usize;
                bytemuck::pod_collect_to_vec(&view[first..first + n * size as usize])
            })
            .collect();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Copies `n` elements of type `T` back from a buffer made by [`Gpu::output`] (one part of
    /// [`Gpu::read_all`]).
    pub fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, n: usize) -> Result<Vec<T>> {
        Ok(self.read_all(&[(buffer, n)])?.pop().unwrap_or_default())
    }
}

thread_local! {
    /// GPU seconds accumulated by the dispatches of this thread while a [`Gpu::time`] is open
    /// (`None` outside one).
    static GPU_SECONDS: Cell<Option<f64>> = const { Cell::new(None) };
}

/// Where a [`Timing`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Clock {
    /// GPU timestamp queries around each submitted sequence of passes.
    Timestamps,
    /// The host's monotonic clock, stopped after a full device poll.
    WallClock,
}

/// A duration measured by [`Gpu::time`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Timing {
    /// GPU time (sum of timestamp intervals) where the device has timestamp queries, else the
    /// wall clock.
    pub seconds: f64,
    /// Wall-clock time of the whole measured closure, after a full device poll.
    pub wall_seconds: f64,
    /// Which clock `seconds` is.
    pub clock: Clock,
}

/// Two timestamp queries (start of the first pass, end of the last) and the buffers that carry
/// them back: `t = (t₁ − t₀)·period` nanoseconds.
struct TimestampPair {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
}

impl TimestampPair {
    const BYTES: u64 = 2 * wgpu::QUERY_SIZE as u64;

    fn new(device: &wgpu::Device) -> Self {
        Self {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("dispatch timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolved: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("resolved timestamps"),
                size: Self::BYTES,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
        }
    }

    fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.queries, 0..2, &self.resolved, 0);
    }

    fn seconds(&self, gpu: &Gpu) -> Result<f64> {
        let ticks: Vec<u64> = gpu.read(&self.resolved, 2)?;
        let period_ns = f64::from(gpu.queue.get_timestamp_period());
        Ok(ticks[1].saturating_sub(ticks[0]) as f64 * period_ns * 1e-9)
    }
}

/// The most uniform buffers [`Gpu::shared_uniform`] keeps.
pub(crate) const SHARED_UNIFORMS: usize = 4096;

/// One dispatch held as a value: the kernel, its bindings `@group(0) @binding(0..)` and its
/// workgroup grid (run in order by [`Gpu::run_dispatches`]).
pub type Dispatch<'b> = (&'static Shader, Vec<&'b wgpu::Buffer>, [u32; 3]);

/// One dispatch of a sequence: a kernel, its buffers bound to `@binding(i)` in order, and the
/// workgroup grid.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The kernel.
    pub shader: &'a Shader,
    /// Buffers for `@group(0) @binding(0..)`.
    pub bindings: &'a [&'a wgpu::Buffer],
    /// Workgroups per dimension.
    pub groups: [u32; 3],
}

/// A workgroup grid covering `n_groups` groups of a 1-D kernel within the per-dimension limit:
/// `(x, y, 1)` with `x ≤ max_per_dim`, `x·y ≥ n_groups`. The kernel recovers its flat index as
/// `gid.x + gid.y · x · 64` and returns when it is past the end.
pub(crate) fn grid_for(n_groups: u32, max_per_dim: u32) -> [u32; 3] {
    if n_groups <= max_per_dim {
        [n_groups.max(1), 1, 1]
    } else {
        [max_per_dim, n_groups.div_ceil(max_per_dim), 1]
    }
}

/// The grid ([`grid_for`]) of a 1-D kernel of [`WORKGROUP_SIZE`] invocations per group covering
/// `n` elements on `gpu`.
pub(crate) fn groups_1d(gpu: &Gpu, n: usize) -> [u32; 3] {
    grid_for(
        (n as u32).div_ceil(WORKGROUP_SIZE),
        gpu.limits().max_compute_workgroups_per_dimension,
    )
}

/// Splits `total` items into consecutive chunks of at most `per_chunk` (≥ 1): `(start, len)`
/// (the row, column and depth blocks of a tiled product, a benchmark's tiles).
pub fn chunks(total: usize, per_chunk: usize) -> Vec<(usize, usize)> {
    let per = per_chunk.max(1);
    (0..total)
        .step_by(per)
        .map(|s| (s, per.min(total - s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{chunks, grid_for};

    #[test]
    fn chunks_cover_everything_once() {
        assert_eq!(chunks(10, 4), vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(chunks(3, 5), vec![(0, 3)]);
        assert!(chunks(0, 5).is_empty());
    }

    #[test]
    fn grid_covers_more_groups_than_one_dimension_allows() {
        assert_eq!(grid_for(10, 65535), [10, 1, 1]);
        let g = grid_for(200_000, 65535);
        assert!(g[0] <= 65535 && g[0] * g[1] >= 200_000);
    }
}
