//! Which kernel runs a product: [`GemmKernel`] by shape and adapter limits, split-K
//! ([`split_k`]), and the [`GemmPlan`] that records the choice.

use super::*;

/// The matrix-product kernels of the family, all with the same epilogues and split-K support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GemmKernel {
    /// 16×16 tiles, one output per invocation ([`shaders::GEMM`]).
    Tiled,
    /// 64×64 blocks, 4×4 outputs per invocation ([`shaders::GEMM_BLOCKED`]).
    Blocked,
    /// 64×64 blocks, 4×4 outputs per invocation read straight from storage, with no workgroup
    /// memory and no barrier ([`shaders::GEMM_DIRECT`]): the kernel of small products on a
    /// software adapter (see [`DIRECT_MAX_MULTIPLY_ADDS`]).
    Direct,
    /// 128×128 blocks, 8×8 outputs per invocation, vec4 global loads where an operand's stored
    /// rows are a multiple of 4 long ([`shaders::GEMM_LARGE`]).
    Large,
    /// The tensor cores: 64×64 blocks of 16×16×16 cooperative-matrix multiply-adds on operands
    /// rounded to f16, accumulating in f32 ([`shaders::GEMM_COOP`]). Never chosen
    /// automatically: a caller opts in with [`Product::with_kernel`] (MLP training, never a
    /// theorem check), on a device where [`Gpu::has_tensor_cores`]; its error bound is
    /// [`gemm_tensor_core_reference`]'s, far wider than the f32 kernels'.
    TensorCoresF16,
}

/// On a software adapter (llvmpipe: workgroups run on CPU threads, workgroup memory is
/// ordinary memory and a barrier switches between a workgroup's invocations), products with
/// fewer multiply-adds than this, or with m or n below 128, run the [`GemmKernel::Direct`]
/// kernel; larger ones the 128×128 kernel where it pads little, else the direct kernel again:
/// the 64×64 staged kernel never wins there. Measured with `diffusion-theorems bench --filter
/// gemm` on llvmpipe (2 cores, 2026-11-28; milliseconds, previous choice → direct): 32×100×768
/// (an MLP layer) 11.9 → 1.7, 128³ 2.35 → 1.13, an im2col convolution 2048×64×576 200 → 117;
/// and by upload, product and download of host matrices (2026-11-29; 64×64 staged / direct /
/// 128×128, ms): 256³ 19.4 / 10.0 / 6.4, 1024×1024×75 (an ELS patch product) 103 / 49 / 39,
/// 300³ (64 % padding on the 128-grid) 36 / 16 / 15, 128×128×256 (one 128×128 workgroup,
/// one core) 5.3 / 2.9 / 3.2.
pub const DIRECT_MAX_MULTIPLY_ADDS: usize = 1 << 22;

/// Products with both output dimensions at least this large use the 64×64 register-blocked
/// kernel (when the 128×128 one does not apply); smaller ones the 16×16-tiled kernel, which
/// wastes less on padding.
pub const BLOCKED_MIN_DIM: usize = 64;

/// The 128×128 kernel runs a product only if its padded grid does at most this fraction more
/// multiply-adds than the m×n output needs: `⌈m/128⌉⌈n/128⌉·128² ≤ (1 + 1/8)·mn` (1000×1000
/// wastes 4.9 %, 300×300 would waste 64 %: the 64×64 kernel's 14 % is the better deal).
pub const LARGE_MAX_PADDING: f64 = 0.125;

/// Workgroups that fill the GPU: one per streaming multiprocessor of the H100 this crate is
/// tuned on (132 SMs).
pub const FILL_WORKGROUPS: usize = 132;

/// The fewest 128×128 workgroups (tiles × split-K slices) a software adapter runs a product
/// with: one workgroup runs on one CPU thread, so a single tile leaves the other cores idle
/// and the direct kernel's four times as many 64×64 blocks finish sooner.
pub const SOFTWARE_MIN_LARGE_WORKGROUPS: usize = 2;

/// Split-K aims at this many workgroups, `2·`[`FILL_WORKGROUPS`]: every SM gets a workgroup and
/// a second to hide its barriers.
pub const SPLIT_TARGET_WORKGROUPS: usize = 2 * FILL_WORKGROUPS;

/// The shortest k slice of an automatic split-K: 256 (16 k-steps of 16), so the slice's
/// multiply-adds (≥ 256·t² per workgroup, t the tile side) dwarf writing and re-reading its
/// t² partial sums.
pub const SPLIT_MIN_SLICE: usize = 256;

impl GemmKernel {
    /// The side of the output block one workgroup computes: 16, 64 or 128.
    pub fn tile(self) -> usize {
        match self {
            Self::Tiled => 16,
            Self::Blocked | Self::Direct => 64,
            Self::Large => 128,
            Self::TensorCoresF16 => 64,
        }
    }

    /// The WGSL kernel.
    pub fn shader(self) -> &'static Shader {
        match self {
            Self::Tiled => &shaders::GEMM,
            Self::Blocked => &shaders::GEMM_BLOCKED,
            Self::Direct => &shaders::GEMM_DIRECT,
            Self::Large => &shaders::GEMM_LARGE,
            Self::TensorCoresF16 => &shaders::GEMM_COOP,
        }
    }

    /// Workgroup memory of one workgroup in bytes: the two staged k-slabs, `2·16·t` f32 words
    /// (t = 16, 64), or for the 128×128 kernel `2·16·(128 + 4)` (each k-row padded by one vec4);
    /// the tensor-core kernel's two 64×32 f16 slabs and its four 16×16 f32 staging tiles.
    pub fn workgroup_bytes(self) -> u32 {
        match self {
            Self::Tiled => 2 * 256 * 4,
            Self::Blocked => 2 * 1024 * 4,
            Self::Direct => 0,
            Self::Large => 2 * 16 * 132 * 4,
            Self::TensorCoresF16 => 2 * 2048 * 2 + 1024 * 4,
        }
    }

    /// Whether an adapter with `limits` can run it: its workgroup memory and its 16×16 = 256
    /// invocations within the workgroup limits (the 128×128 kernel's 16.5 KiB exceed WebGPU's
    /// default 16 KiB; an H100 offers 48 KiB).
    pub fn fits(self, limits: &wgpu::Limits) -> bool {
        self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
            && limits.max_compute_invocations_per_workgroup >= 256
            && limits.max_compute_workgroup_size_x >= 16
            && limits.max_compute_workgroup_size_y >= 16
    }

    /// The kernel for an m×n×k product. On a software adapter (`software`,
    /// [`Gpu::is_software`]), [`GemmKernel::Direct`] for products with m or n below 128 or
    /// fewer than [`DIRECT_MAX_MULTIPLY_ADDS`] multiply-adds, else [`GemmKernel::Large`] where
    /// it fits, pads at most [`LARGE_MAX_PADDING`] and has at least
    /// [`SOFTWARE_MIN_LARGE_WORKGROUPS`] workgroups, else [`GemmKernel::Direct`]. Otherwise
    /// [`GemmKernel::Large`] when the adapter fits it,
    /// m, n ≥ 128, the padded 128-grid does at most [`LARGE_MAX_PADDING`] extra work, and the
    /// grid — split along k by [`split_k`] where that applies — has at least
    /// [`FILL_WORKGROUPS`] workgroups; else [`GemmKernel::Blocked`] when m, n ≥
    /// [`BLOCKED_MIN_DIM`]; else [`GemmKernel::Tiled`]. Why: the larger block reuses each
    /// loaded word for 8 outputs instead of 4, so per workgroup it does more arithmetic per
    /// byte, but a workgroup's time grows with its block's area; while the GPU has idle SMs,
    /// 4× as many 64×64 workgroups finish sooner (512³ on an H100: 16 blocks of 128², 32
    /// workgroups split in 2, against 128 split 64×64 ones), and where padding is large the
    /// extra work outweighs the reuse.
    pub fn choose(limits: &wgpu::Limits, software: bool, (m, n, k): (usize, usize, usize)) -> Self {
        let t = Self::Large.tile();
        let tiles = m.div_ceil(t) * n.div_ceil(t);
        let padded = (tiles * t * t) as f64;
        let large_fits = Self::Large.fits(limits)
            && m >= t
            && n >= t
            && padded <= (1.0 + LARGE_MAX_PADDING) * (m * n) as f64;
        let large_workgroups = tiles * split_k(Self::Large, limits, (m, n, k));
        if software && Self::Direct.fits(limits) {
            let small = m.min(n) < t || m * n * k < DIRECT_MAX_MULTIPLY_ADDS;
            return if !small && large_fits && large_workgroups >= SOFTWARE_MIN_LARGE_WORKGROUPS {
                Self::Large
            } else {
                Self::Direct
            };
        }
        if large_fits && large_workgroups >= FILL_WORKGROUPS {
            Self::Large
        } else if m >= BLOCKED_MIN_DIM && n >= BLOCKED_MIN_DIM && Self::Blocked.fits(limits) {
            Self::Blocked
        } else {
            Self::Tiled
        }
    }
}

/// Largest storage binding of an adapter with `limits`, bytes (as [`Gpu::max_binding_bytes`]).
fn max_binding(limits: &wgpu::Limits) -> u64 {
    limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
}

/// The largest S the kernels can run for an m×n×k product: at most ⌈k/16⌉ slices (each holds a
/// whole k-step), the S·m·n-word workspace within one storage binding, S within the grid's
/// per-dimension limit, and `S·⌈k/16⌉ < 2³²` (the slice bounds are computed in u32).
fn max_splits(limits: &wgpu::Limits, (m, n, k): (usize, usize, usize)) -> usize {
    let steps = k.div_ceil(16);
    let by_binding = max_binding(limits) / (4 * (m * n).max(1)) as u64;
    let by_u32 = u32::MAX as usize / steps.max(1);
    steps
        .min(usize::try_from(by_binding).unwrap_or(usize::MAX))
        .min(limits.max_compute_workgroups_per_dimension as usize)
        .min(by_u32)
        .max(1)
}

/// The automatic number S of split-K slices for an m×n×k product run by `kernel`: with
/// `T = ⌈m/t⌉⌈n/t⌉` output tiles, split when `T <` [`SPLIT_TARGET_WORKGROUPS`] and
/// `k ≥ 2·`[`SPLIT_MIN_SLICE`], into `S = min(⌈264/T⌉, ⌊k/256⌋)` slices (capped by the
/// workspace's binding and the grid limits): enough workgroups to fill an H100's 132 SMs twice,
/// each slice at least 256 deep. Else 1 (no split). E.g. m = 128, n = 1000, k = 12288 (an MLP
/// layer at d = 12288) on the 128×128 kernel: T = 8, S = 33, 264 workgroups of k ≈ 372.
pub fn split_k(
    kernel: GemmKernel,
    limits: &wgpu::Limits,
    (m, n, k): (usize, usize, usize),
) -> usize {
    let t = kernel.tile();
    let tiles = m.div_ceil(t) * n.div_ceil(t);
    if tiles == 0 || tiles >= SPLIT_TARGET_WORKGROUPS || k < 2 * SPLIT_MIN_SLICE {
        return 1;
    }
    SPLIT_TARGET_WORKGROUPS
        .div_ceil(tiles)
        .min(k / SPLIT_MIN_SLICE)
        .min(max_splits(limits, (m, n, k)))
}

/// How a product runs: its kernel and its number of split-K slices (1: one pass, straight into
/// C; S ≥ 2: S slices of partial sums into a workspace, then [`shaders::GEMM_SPLIT_REDUCE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmPlan {
    /// The matrix-product kernel.
    pub kernel: GemmKernel,
    /// S ≥ 1.
    pub splits: usize,
}

impl GemmPlan {
    /// The automatic plan of an m×n×k product on an adapter with `limits` (a software
    /// rasteriser when `software`): [`GemmKernel::choose`], then [`split_k`].
    pub fn choose(limits: &wgpu::Limits, software: bool, (m, n, k): (usize, usize, usize)) -> Self {
        let kernel = GemmKernel::choose(limits, software, (m, n, k));
        Self {
            kernel,
            splits: split_k(kernel, limits, (m, n, k)),
        }
    }

    /// The plan with a caller's overrides (an automatic S for a forced kernel is that kernel's),
    /// checked against the adapter: a kernel that does not fit or an S out of `1..=`(the
    /// largest the product allows) is an error naming it.
    pub(super) fn resolve(
        limits: &wgpu::Limits,
        software: bool,
        shape: (usize, usize, usize),
        kernel: Option<GemmKernel>,
        splits: Option<usize>,
    ) -> Result<Self> {
        let kernel = kernel.unwrap_or_else(|| GemmKernel::choose(limits, software, shape));
        if !kernel.fits(limits) {
            return Err(Error::GpuLimit(format!(
                "GEMM kernel {kernel:?} needs {} bytes of workgroup memory and 256 invocations, \
                 the adapter offers {} and {}",
                kernel.workgroup_bytes(),
                limits.max_compute_workgroup_storage_size,
                limits.max_compute_invocations_per_workgroup
            )));
        }
        let splits = splits.unwrap_or_else(|| split_k(kernel, limits, shape));
        let most = max_splits(limits, shape);
        if splits == 0 || splits > most {
            return Err(Error::InvalidArgument {
                what: "GEMM split-K slices S".into(),
                reason: format!("must be in 1..={most} for {shape:?} (m, n, k), got {splits}"),
            });
        }
        Ok(Self { kernel, splits })
    }
}
