//! Wrapper of the GEMM family `gpu/gemm*.wgsl`: `C = epilogue(α·op(A)·op(B) + β·D)` on
//! matrices resident on the GPU ([`GpuMat`]), single products or whole iterations recorded once
//! and replayed ([`Gpu::dispatch_sequence`]); the f64 reference with the f32 error bound of its
//! parity test.
//!
//! Kernels ([`GemmKernel`], chosen per product by [`GemmPlan::choose`] from the adapter's limits
//! and the shape): 16×16-tiled (one output per invocation), 64×64 register-blocked (4×4 per
//! invocation) and 128×128 register-blocked (8×8 per invocation, vec4 global loads where the
//! layout allows). Products whose output has too few tiles to fill the GPU and a long inner
//! dimension are split along k (split-K, [`split_k`]): S workgroup slices write partial sums to a
//! workspace and a second pass adds them in a fixed order and applies the epilogue.
//!
//! Epilogues ([`Epilogue`]), fused into every kernel (and into split-K's second pass), with
//! `t = α·op(A)·op(B) + β·D`:
//! * [`Epilogue::None`]: `C = t`;
//! * [`Epilogue::Activation`]: `C = φ(t + bias)`, bias per row (an m×1 matrix) or per column
//!   (1×n), φ ∈ {identity, tanh, ReLU, leaky ReLU(slope)};
//! * [`Epilogue::DerivativeMask`]: `C = t ⊙ φ'(Z)` computed from the stored activation output
//!   `H = φ(Z)` (m×n): ReLU `[H > 0]`, leaky `1` or `slope` by the sign of H (slope ≥ 0, so
//!   `sign H = sign Z`), tanh `1 − H²`, identity 1 — backprop through a layer without storing Z;
//! * [`Epilogue::Power`]: `C = (s ⊙ t)^k` with a per-column scale s (1×n) and integer k ≥ 1 (the
//!   random-feature polynomial features `(c_j R_j·y)^k`).
//!
//! Error bounds (`u = 2⁻²⁴`, `γ_n = nu/(1 − nu)`, Higham's *Accuracy and Stability* Lemma 3.5):
//! every input is rounded to f32 and each entry is a sequential f32 sum of k products, then
//! scaled and added, so `|t̂ − t| ≤ Δt = γ_{k+5}(|α|·(|op(A)||op(B)|) + |β|·|D|)` elementwise
//! (two input roundings and the product for each term, k − 1 additions, α, D's rounding, β·D and
//! the sum); a bias adds its own rounding and one addition (`γ_{k+7}`, with `|bias|` in the
//! magnitude). The epilogues' own errors are derived at [`activation_rounding`] (φ) and
//! [`gemm_fused_reference`] (mask and power).
//!
//! Split-K keeps the bound. With S ≤ ⌈k/16⌉ slices of whole 16-wide k-steps, every slice holds
//! at least one term (slice s starts at `16⌊sN/S⌋ ≤ 16(N − 1) < k`, N = ⌈k/16⌉, and ends past
//! its start). Slice s sums its `k_s` products sequentially (`k_s − 1` additions) into an f32
//! partial stored exactly; the second pass adds the S partials in slice order (`S − 1`
//! additions). A product of slice s thus meets its own rounding, at most `k_s − 1` additions
//! inside the slice and at most `S − 1` in the reduction: `k_s + S − 1 ≤ k` roundings, since the
//! other `S − 1` slices hold at least one term each. The dot-product bound `γ_k·|op(A)||op(B)|`
//! holds for any order of summation in which no term passes through more than `k − 1` additions
//! (Higham, §3.1, eq. 3.5 and the remark after it), so it holds for the split sum; the second
//! pass then applies α, β·D, the bias and the epilogue exactly as the one-pass kernels do, so
//! `Δt` and every epilogue bound below are unchanged.

use super::shaders::Shader;
use super::uniforms::GemmParams;
use super::{chunks, shaders, Gpu, Job};
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use crate::numerics::activation::{activation_rounding, derivative_from_output, Activation};
use crate::numerics::gamma_f32;
use crate::numerics::F32_UNIT_ROUNDOFF as U;

/// A row-major f32 matrix in a GPU storage buffer (readable, writable, downloadable).
#[derive(Debug)]
pub struct GpuMat {
    buffer: wgpu::Buffer,
    rows: usize,
    cols: usize,
}

impl GpuMat {
    /// Uploads `m` (rounded to f32).
    pub fn upload(gpu: &Gpu, label: &str, m: &Mat) -> Result<Self> {
        linalg::ensure_finite_mat(label, m)?;
        Self::upload_view(gpu, label, m.as_ref())
    }

    /// Uploads a view (rounded to f32) whose entries the caller has checked are finite.
    fn upload_view(gpu: &Gpu, label: &str, m: faer::MatRef<'_, f64>) -> Result<Self> {
        let out = Self::poisoned(gpu, label, m.nrows(), m.ncols())?;
        let flat: Vec<f32> = (0..m.nrows())
            .flat_map(|i| (0..m.ncols()).map(move |j| (i, j)))
            .map(|(i, j)| m[(i, j)] as f32)
            .collect();
        if !flat.is_empty() {
            gpu.queue()
                .write_buffer(&out.buffer, 0, bytemuck::cast_slice(&flat));
        }
        Ok(out)
    }

    /// A rows×cols matrix whose every word is [`super::POISON`] (NaN), to be written by a kernel.
    /// The buffer is padded to a multiple of 4 words (at least 4), so that a kernel binding it
    /// as an array of vec4 (the 128×128 GEMM) reaches every element; the padding is never read
    /// as matrix data.
    pub fn poisoned(gpu: &Gpu, label: &str, rows: usize, cols: usize) -> Result<Self> {
        Ok(Self {
            buffer: gpu.output(label, (rows * cols).max(1).next_multiple_of(4))?,
            rows,
            cols,
        })
    }

    /// The matrix of this one's first `rows` rows, sharing its buffer (no copy: a kernel writing
    /// either writes both). Lets one set of work buffers serve a shorter last batch.
    pub fn leading_rows(&self, rows: usize) -> Result<Self> {
        if rows > self.rows {
            return Err(Error::InvalidArgument {
                what: "leading rows".into(),
                reason: format!("the matrix has {} rows, asked for {rows}", self.rows),
            });
        }
        Ok(Self {
            buffer: self.buffer.clone(),
            rows,
            cols: self.cols,
        })
    }

    /// Copies the matrix back (as f64).
    pub fn download(&self, gpu: &Gpu) -> Result<Mat> {
        let flat: Vec<f32> = gpu.read(&self.buffer, self.rows * self.cols)?;
        Ok(Mat::from_fn(self.rows, self.cols, |i, j| {
            f64::from(flat[i * self.cols + j])
        }))
    }

    /// The storage buffer (row-major f32), for other kernels' bindings.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

/// Anything with a (rows, columns) shape: the operands of an [`Epilogue`] on the GPU
/// ([`GpuMat`]) and on the host ([`Mat`]).
pub trait Shaped {
    /// (rows, columns).
    fn dims(&self) -> (usize, usize);
}

impl Shaped for &GpuMat {
    fn dims(&self) -> (usize, usize) {
        self.shape()
    }
}

impl Shaped for &Mat {
    fn dims(&self) -> (usize, usize) {
        (self.nrows(), self.ncols())
    }
}

/// The bias of [`Epilogue::Activation`]: `t_ij + b_i` (an m×1 matrix) or `t_ij + b_j` (1×n).
#[derive(Debug, Clone, Copy)]
pub enum Bias<M> {
    /// No bias.
    None,
    /// One value per row of C: an m×1 matrix.
    PerRow(M),
    /// One value per column of C: a 1×n matrix.
    PerColumn(M),
}

/// What the kernel does with `t = α·op(A)·op(B) + β·D` before storing it in C (module doc).
/// `M` is the operand type: `&GpuMat` on the GPU, `&Mat` for the host reference.
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<M> {
    /// `C = t`.
    None,
    /// `C = φ(t + bias)`.
    Activation {
        /// The bias vector.
        bias: Bias<M>,
        /// φ.
        activation: Activation,
    },
    /// `C = t ⊙ φ'(Z)` from `H = φ(Z)` (m×n): ReLU `[H > 0]`, leaky ReLU (slope ≥ 0) 1 or
    /// slope by the sign of H, tanh `1 − H²`, identity 1.
    DerivativeMask {
        /// φ of the layer whose output H is.
        activation: Activation,
        /// H (m×n).
        output: M,
    },
    /// `C_ij = (s_j·t_ij)^k`.
    Power {
        /// s (1×n).
        scale: M,
        /// k ≥ 1.
        power: u32,
    },
}

impl<M: Shaped> Epilogue<M> {
    /// Checks the operand shapes against C (m×n), the power and the activation's slope, naming
    /// the bad value.
    pub fn validate(&self, m: usize, n: usize) -> Result<()> {
        let shape = |what: &str, got: (usize, usize), want: (usize, usize)| {
            if got == want {
                Ok(())
            } else {
                Err(Error::InvalidArgument {
                    what: format!("GEMM epilogue {what}").into(),
                    reason: format!("must be {}×{}, got {}×{}", want.0, want.1, got.0, got.1),
                })
            }
        };
        let slope = |act: Activation, need_nonnegative: bool| match act {
            Activation::LeakyRelu { slope }
                if !slope.is_finite() || (need_nonnegative && slope < 0.0) =>
            {
                Err(Error::InvalidArgument {
                    what: "GEMM epilogue leaky slope".into(),
                    reason: format!(
                        "must be finite{}, got {slope}",
                        if need_nonnegative {
                            " and ≥ 0 (the derivative is read off the sign of φ(z))"
                        } else {
                            ""
                        }
                    ),
                })
            }
            _ => Ok(()),
        };
        match self {
            Self::None => Ok(()),
            Self::Activation { bias, activation } => {
                match bias {
                    Bias::None => {}
                    Bias::PerRow(b) => shape("per-row bias", b.dims(), (m, 1))?,
                    Bias::PerColumn(b) => shape("per-column bias", b.dims(), (1, n))?,
                }
                slope(*activation, false)
            }
            Self::DerivativeMask { activation, output } => {
                shape("activation output H", output.dims(), (m, n))?;
                slope(*activation, true)
            }
            Self::Power { scale, power } => {
                shape("column scale", scale.dims(), (1, n))?;
                if *power == 0 {
                    return Err(Error::InvalidArgument {
                        what: "GEMM epilogue power k".into(),
                        reason: "must be at least 1, got 0".into(),
                    });
                }
                Ok(())
            }
        }
    }
}

impl<M: Copy> Epilogue<M> {
    /// `(bias or scale vector, H)`: the operands bound at `@binding(3)` and `@binding(4)`.
    fn operands(&self) -> (Option<M>, Option<M>) {
        match *self {
            Self::None => (None, None),
            Self::Activation { bias, .. } => match bias {
                Bias::None => (None, None),
                Bias::PerRow(v) | Bias::PerColumn(v) => (Some(v), None),
            },
            Self::DerivativeMask { output, .. } => (None, Some(output)),
            Self::Power { scale, .. } => (Some(scale), None),
        }
    }

    /// `(epilogue code, φ, bias mode, power)` as `GemmParams` in `gpu/gemm.wgsl` reads them.
    fn codes(&self) -> (u32, Activation, u32, u32) {
        match *self {
            Self::None => (0, Activation::Identity, 0, 1),
            Self::Activation { bias, activation } => {
                let mode = match bias {
                    Bias::None => 0,
                    Bias::PerRow(_) => 1,
                    Bias::PerColumn(_) => 2,
                };
                (0, activation, mode, 1)
            }
            Self::DerivativeMask { activation, .. } => (1, activation, 0, 1),
            Self::Power { power, .. } => (2, Activation::Identity, 0, power),
        }
    }
}

/// One product `C = epilogue(α·op(A)·op(B) + β·D)` of resident matrices (`D` unread when
/// β = 0). Built with [`Product::new`] and the builder methods, or as a struct literal.
#[derive(Debug, Clone, Copy)]
pub struct Product<'a> {
    /// A.
    pub a: &'a GpuMat,
    /// Use Aᵀ.
    pub trans_a: bool,
    /// B.
    pub b: &'a GpuMat,
    /// Use Bᵀ.
    pub trans_b: bool,
    /// α.
    pub alpha: f32,
    /// β.
    pub beta: f32,
    /// D (m×n); `None` only with β = 0.
    pub d: Option<&'a GpuMat>,
    /// The output C (m×n); must not be any of the inputs.
    pub c: &'a GpuMat,
    /// What happens to `t` before it is stored.
    pub epilogue: Epilogue<&'a GpuMat>,
    /// The kernel to use instead of [`GemmKernel::choose`]'s (tests, benchmarks).
    pub kernel: Option<GemmKernel>,
    /// The number S of split-K slices to use instead of [`split_k`]'s, `1 ≤ S ≤ ⌈k/16⌉`
    /// (tests, benchmarks).
    pub splits: Option<usize>,
}

impl<'a> Product<'a> {
    /// `C = op(A)·op(B)`: α = 1, β = 0, no epilogue.
    pub fn new(
        (a, trans_a): (&'a GpuMat, bool),
        (b, trans_b): (&'a GpuMat, bool),
        c: &'a GpuMat,
    ) -> Self {
        Self {
            a,
            trans_a,
            b,
            trans_b,
            alpha: 1.0,
            beta: 0.0,
            d: None,
            c,
            epilogue: Epilogue::None,
            kernel: None,
            splits: None,
        }
    }

    /// The same product run by `kernel` (overriding [`GemmKernel::choose`]).
    pub fn with_kernel(self, kernel: GemmKernel) -> Self {
        Self {
            kernel: Some(kernel),
            ..self
        }
    }

    /// The same product split into `splits` k slices (overriding [`split_k`]; 1 = no split).
    pub fn with_splits(self, splits: usize) -> Self {
        Self {
            splits: Some(splits),
            ..self
        }
    }

    /// The same product with `α`.
    pub fn scaled(self, alpha: f32) -> Self {
        Self { alpha, ..self }
    }

    /// The same product plus `β·D`.
    pub fn plus(self, beta: f32, d: &'a GpuMat) -> Self {
        Self {
            beta,
            d: Some(d),
            ..self
        }
    }

    /// The same product with `epilogue`.
    pub fn with(self, epilogue: Epilogue<&'a GpuMat>) -> Self {
        Self { epilogue, ..self }
    }

    /// Validates and prepares it for recording ([`PreparedProduct::new`]).
    pub fn prepare(self, gpu: &Gpu) -> Result<PreparedProduct<'a>> {
        PreparedProduct::new(gpu, self)
    }
}

/// `GemmParams::epilogue` of split-K's first pass: store the raw partial sum of the slice.
const PARTIAL_EPILOGUE: u32 = 3;

fn op_shape(m: &GpuMat, trans: bool) -> (usize, usize) {
    if trans {
        (m.cols, m.rows)
    } else {
        (m.rows, m.cols)
    }
}

/// The matrix-product kernels of the family, all with the same epilogues and split-K support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GemmKernel {
    /// 16×16 tiles, one output per invocation ([`shaders::GEMM`]).
    Tiled,
    /// 64×64 blocks, 4×4 outputs per invocation ([`shaders::GEMM_BLOCKED`]).
    Blocked,
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
            Self::Blocked => 64,
            Self::Large => 128,
            Self::TensorCoresF16 => 64,
        }
    }

    /// The WGSL kernel.
    pub fn shader(self) -> &'static Shader {
        match self {
            Self::Tiled => &shaders::GEMM,
            Self::Blocked => &shaders::GEMM_BLOCKED,
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

    /// The kernel for an m×n×k product: [`GemmKernel::Large`] when the adapter fits it,
    /// m, n ≥ 128, the padded 128-grid does at most [`LARGE_MAX_PADDING`] extra work, and the
    /// grid — split along k by [`split_k`] where that applies — has at least
    /// [`FILL_WORKGROUPS`] workgroups; else [`GemmKernel::Blocked`] when m, n ≥
    /// [`BLOCKED_MIN_DIM`]; else [`GemmKernel::Tiled`]. Why: the larger block reuses each
    /// loaded word for 8 outputs instead of 4, so per workgroup it does more arithmetic per
    /// byte, but a workgroup's time grows with its block's area; while the GPU has idle SMs,
    /// 4× as many 64×64 workgroups finish sooner (512³ on an H100: 16 blocks of 128², 32
    /// workgroups split in 2, against 128 split 64×64 ones), and where padding is large the
    /// extra work outweighs the reuse.
    pub fn choose(limits: &wgpu::Limits, (m, n, k): (usize, usize, usize)) -> Self {
        let t = Self::Large.tile();
        let tiles = m.div_ceil(t) * n.div_ceil(t);
        let padded = (tiles * t * t) as f64;
        if Self::Large.fits(limits)
            && m >= t
            && n >= t
            && padded <= (1.0 + LARGE_MAX_PADDING) * (m * n) as f64
            && tiles * split_k(Self::Large, limits, (m, n, k)) >= FILL_WORKGROUPS
        {
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
    /// The automatic plan of an m×n×k product on an adapter with `limits`:
    /// [`GemmKernel::choose`], then [`split_k`].
    pub fn choose(limits: &wgpu::Limits, (m, n, k): (usize, usize, usize)) -> Self {
        let kernel = GemmKernel::choose(limits, (m, n, k));
        Self {
            kernel,
            splits: split_k(kernel, limits, (m, n, k)),
        }
    }

    /// The plan with a caller's overrides (an automatic S for a forced kernel is that kernel's),
    /// checked against the adapter: a kernel that does not fit or an S out of `1..=`(the
    /// largest the product allows) is an error naming it.
    fn resolve(
        limits: &wgpu::Limits,
        shape: (usize, usize, usize),
        kernel: Option<GemmKernel>,
        splits: Option<usize>,
    ) -> Result<Self> {
        let kernel = kernel.unwrap_or_else(|| GemmKernel::choose(limits, shape));
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

/// One dispatch of a prepared product: the kernel, its buffers for `@binding(0..)` in order, and
/// the workgroup grid — a [`Job`] once the buffer list is borrowed.
pub type Dispatch<'b> = (&'static Shader, Vec<&'b wgpu::Buffer>, [u32; 3]);

/// Split-K's extra state: the first pass's parameters (epilogue "partial"), the workspace of its
/// S×m×n partial sums (the shared [`Gpu::scratch`]: every partial is written by the first pass
/// before the second reads it; [`gemm_fused_planned`] poisons it first so the parity tests would
/// see a missing write) and the second pass's grid.
struct SplitPass {
    params: wgpu::Buffer,
    workspace: wgpu::Buffer,
    groups: [u32; 3],
}

/// A product made ready to record: its plan, parameter buffers, a stand-in for unused operands,
/// the split-K workspace when split, and its workgroup grids ([`PreparedProduct::dispatches`]).
pub struct PreparedProduct<'a> {
    product: Product<'a>,
    plan: GemmPlan,
    params: wgpu::Buffer,
    dummy: wgpu::Buffer,
    groups: [u32; 3],
    split: Option<SplitPass>,
}

impl<'a> PreparedProduct<'a> {
    /// Validates shapes, the epilogue, that C is none of the inputs, the plan (automatic, or the
    /// product's overrides) and the workgroup limits, and builds the parameter buffers and the
    /// split-K workspace.
    pub fn new(gpu: &Gpu, product: Product<'a>) -> Result<Self> {
        let (m, k) = op_shape(product.a, product.trans_a);
        let (kb, n) = op_shape(product.b, product.trans_b);
        if kb != k {
            return Err(Error::DimensionMismatch {
                what: "GEMM inner dimension (rows of op(B))".into(),
                expected: k,
                got: kb,
            });
        }
        if product.c.shape() != (m, n) {
            return Err(Error::InvalidArgument {
                what: "GEMM output".into(),
                reason: format!("must be {m}×{n}, got {:?}", product.c.shape()),
            });
        }
        match product.d {
            Some(d) if d.shape() != (m, n) => {
                return Err(Error::InvalidArgument {
                    what: "GEMM addend D".into(),
                    reason: format!("must be {m}×{n}, got {:?}", d.shape()),
                })
            }
            None if product.beta != 0.0 => {
                return Err(Error::InvalidArgument {
                    what: "GEMM addend D".into(),
                    reason: format!("β = {} needs a D", product.beta),
                })
            }
            _ => {}
        }
        product.epilogue.validate(m, n)?;
        let (epilogue, act, bias_mode, power) = product.epilogue.codes();
        let (vector, aux) = product.epilogue.operands();
        let inputs = [Some(product.a), Some(product.b), product.d, vector, aux];
        if inputs
            .iter()
            .flatten()
            .any(|x| x.buffer == product.c.buffer)
        {
            return Err(Error::InvalidArgument {
                what: "GEMM output C".into(),
                reason: "shares its buffer with an input (A, B, D, bias, scale or H)".into(),
            });
        }
        if product.kernel == Some(GemmKernel::TensorCoresF16) && !gpu.has_tensor_cores() {
            return Err(Error::GpuLimit(format!(
                "GEMM kernel TensorCoresF16 needs cooperative 16×16×16 f16→f32 matrices, f16 and \
                 32-wide subgroups, which {} does not offer",
                gpu.backend_name()
            )));
        }
        let limits = gpu.limits();
        let plan = GemmPlan::resolve(limits, (m, n, k), product.kernel, product.splits)?;
        let max = limits.max_compute_workgroups_per_dimension as usize;
        let tile = plan.kernel.tile();
        let groups = [n.div_ceil(tile), m.div_ceil(tile)];
        if groups.iter().any(|&g| g > max) {
            return Err(Error::GpuLimit(format!(
                "GEMM {m}×{n} needs a {groups:?} grid of {tile}×{tile} tiles, over {max} per dimension"
            )));
        }
        let (act, slope) = act.gpu_code();
        let gemm_params = GemmParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            trans_a: u32::from(product.trans_a),
            trans_b: u32::from(product.trans_b),
            alpha: product.alpha,
            beta: product.beta,
            epilogue,
            act,
            bias_mode,
            slope: slope as f32,
            power,
            splits: plan.splits as u32,
            vec_a: u32::from(product.a.cols.is_multiple_of(4)),
            vec_b: u32::from(product.b.cols.is_multiple_of(4)),
            pad: 0,
        };
        let split = (plan.splits > 1)
            .then(|| -> Result<SplitPass> {
                let partial = GemmParams {
                    epilogue: PARTIAL_EPILOGUE,
                    ..gemm_params
                };
                let reduce_groups = (m * n).div_ceil(super::WORKGROUP_SIZE as usize);
                Ok(SplitPass {
                    params: gpu.uniform("gemm split-K partial params", &partial),
                    workspace: gpu.scratch(plan.splits * m * n)?,
                    groups: super::grid_for(reduce_groups as u32, max as u32),
                })
            })
            .transpose()?;
        Ok(Self {
            product,
            plan,
            params: gpu.uniform("gemm params", &gemm_params),
            dummy: gpu.input("gemm unused operand", &[0.0f32])?,
            groups: [
                groups[0].max(1) as u32,
                groups[1].max(1) as u32,
                plan.splits as u32,
            ],
            split,
        })
    }

    /// The kernel and the number of split-K slices it runs with.
    pub fn plan(&self) -> GemmPlan {
        self.plan
    }

    /// The dispatches that compute it, to be recorded in order: one (the kernel, grid
    /// ⌈n/t⌉ × ⌈m/t⌉ × 1, bindings: parameters, C, D, the bias or scale vector, H, A, B, with a
    /// 4-byte stand-in for each operand the product does not use), or with S ≥ 2 slices two —
    /// the kernel over a ⌈n/t⌉ × ⌈m/t⌉ × S grid writing partial sums into the workspace (bound
    /// as C), then [`shaders::GEMM_SPLIT_REDUCE`] (parameters, C, D, vector, H, workspace).
    pub fn dispatches(&self) -> Vec<Dispatch<'_>> {
        let p = &self.product;
        let or_dummy = |m: Option<&'a GpuMat>| m.map_or(&self.dummy, |m| &m.buffer);
        let (vector, aux) = p.epilogue.operands();
        let finish = [
            &self.params,
            &p.c.buffer,
            or_dummy(p.d),
            or_dummy(vector),
            or_dummy(aux),
        ];
        let shader = self.plan.kernel.shader();
        match &self.split {
            None => vec![(
                shader,
                [&finish[..], &[&p.a.buffer, &p.b.buffer]].concat(),
                self.groups,
            )],
            Some(split) => vec![
                (
                    shader,
                    vec![
                        &split.params,
                        &split.workspace,
                        &self.dummy,
                        &self.dummy,
                        &self.dummy,
                        &p.a.buffer,
                        &p.b.buffer,
                    ],
                    self.groups,
                ),
                (
                    &shaders::GEMM_SPLIT_REDUCE,
                    [&finish[..], &[&split.workspace]].concat(),
                    split.groups,
                ),
            ],
        }
    }
}

impl<M> Epilogue<M> {
    /// The same epilogue with every operand replaced by `f(operand)`, or the first error.
    pub fn try_map<N>(self, mut f: impl FnMut(M) -> Result<N>) -> Result<Epilogue<N>> {
        Ok(match self {
            Self::None => Epilogue::None,
            Self::Activation { bias, activation } => Epilogue::Activation {
                bias: match bias {
                    Bias::None => Bias::None,
                    Bias::PerRow(v) => Bias::PerRow(f(v)?),
                    Bias::PerColumn(v) => Bias::PerColumn(f(v)?),
                },
                activation,
            },
            Self::DerivativeMask { activation, output } => Epilogue::DerivativeMask {
                activation,
                output: f(output)?,
            },
            Self::Power { scale, power } => Epilogue::Power {
                scale: f(scale)?,
                power,
            },
        })
    }

    /// The same epilogue borrowing its operands.
    pub fn as_ref(&self) -> Epilogue<&M> {
        match self {
            Self::None => Epilogue::None,
            Self::Activation { bias, activation } => Epilogue::Activation {
                bias: match bias {
                    Bias::None => Bias::None,
                    Bias::PerRow(v) => Bias::PerRow(v),
                    Bias::PerColumn(v) => Bias::PerColumn(v),
                },
                activation: *activation,
            },
            Self::DerivativeMask { activation, output } => Epilogue::DerivativeMask {
                activation: *activation,
                output,
            },
            Self::Power { scale, power } => Epilogue::Power {
                scale,
                power: *power,
            },
        }
    }
}

/// `C = α·op(A)·op(B) + β·D` prepared for recording (no epilogue; see [`Product`] for one).
pub fn product<'a>(
    gpu: &Gpu,
    (a, trans_a): (&'a GpuMat, bool),
    (b, trans_b): (&'a GpuMat, bool),
    alpha: f32,
    beta: f32,
    d: Option<&'a GpuMat>,
    c: &'a GpuMat,
) -> Result<PreparedProduct<'a>> {
    PreparedProduct::new(
        gpu,
        Product {
            a,
            trans_a,
            b,
            trans_b,
            alpha,
            beta,
            d,
            c,
            epilogue: Epilogue::None,
            kernel: None,
            splits: None,
        },
    )
}

/// Runs `products` in order, `repeat` times over, in one submission (each sees the writes of
/// the previous ones; a split product's two passes run back to back).
pub fn run_products(gpu: &Gpu, products: &[PreparedProduct], repeat: usize) -> Result<()> {
    let dispatches: Vec<Dispatch> = products.iter().flat_map(|p| p.dispatches()).collect();
    let jobs: Vec<Job> = dispatches
        .iter()
        .map(|(shader, bindings, groups)| Job {
            shader,
            bindings,
            groups: *groups,
        })
        .collect();
    gpu.dispatch_sequence(&jobs, repeat)
}

/// A product of host matrices, `C = epilogue(α·op(A)·op(B) + β·D)`: the input of
/// [`gemm_fused`] (upload, run, download) and of its f64 reference [`gemm_fused_reference`].
#[derive(Debug, Clone, Copy)]
pub struct HostProduct<'a> {
    /// A.
    pub a: &'a Mat,
    /// Use Aᵀ.
    pub trans_a: bool,
    /// B.
    pub b: &'a Mat,
    /// Use Bᵀ.
    pub trans_b: bool,
    /// α.
    pub alpha: f64,
    /// β.
    pub beta: f64,
    /// D (m×n); `None` only with β = 0.
    pub d: Option<&'a Mat>,
    /// The epilogue, its operands on the host.
    pub epilogue: Epilogue<&'a Mat>,
}

impl<'a> HostProduct<'a> {
    /// `C = op(A)·op(B)`: α = 1, β = 0, no D, no epilogue (struct update syntax sets the rest).
    pub fn new((a, trans_a): (&'a Mat, bool), (b, trans_b): (&'a Mat, bool)) -> Self {
        Self {
            a,
            trans_a,
            b,
            trans_b,
            alpha: 1.0,
            beta: 0.0,
            d: None,
            epilogue: Epilogue::None,
        }
    }
}

/// Runs one [`HostProduct`] on the GPU: uploads the operands (rounded to f32), runs the
/// automatic [`GemmPlan`] into a poisoned C and downloads C; a product whose operands exceed
/// the adapter's storage binding or grid limits is cut into blocks that fit
/// ([`GemmTiling::choose`], run by [`gemm_fused_tiled`]) rather than refused.
pub fn gemm_fused(gpu: &Gpu, p: &HostProduct) -> Result<Mat> {
    let shape = check_host_product(p)?;
    let tiling = GemmTiling::choose(
        usize::try_from(gpu.max_binding_bytes() / 4).unwrap_or(usize::MAX),
        gpu.limits().max_compute_workgroups_per_dimension as usize,
        shape,
    )?;
    gemm_fused_tiled(gpu, p, tiling)
}

/// How [`gemm_fused_tiled`] cuts an m×n×k product of host matrices: C into blocks of `rows` ×
/// `cols`, the inner dimension into slices of `depth`. Block (I, J) of C is
/// `epilogue(α·Σ_L op(A)_{IL}·op(B)_{LJ} + β·D_{IJ})`, accumulated on the GPU slice by slice in
/// one submission: the first slice's product adds `β·D_{IJ}`, each later one adds the partial
/// result of the previous (β = 1, alternating between two buffers), and only the last applies
/// the epilogue, with its bias, scale or H cut to the block.
///
/// The f32 bounds of [`gemm_fused_reference`] still hold. With J slices of `k_1, …, k_J ≥ 1`
/// terms, a term of slice L meets two input roundings, its product, at most `k_L − 1` additions
/// inside its slice, α, the addition of `β·D` or of the previous partial, and one addition per
/// later slice: `k_L + 4 + J − L ≤ k + 4` roundings, since each of the other `J − 1` slices holds
/// at least one term (`k_L + J − 1 ≤ k`); D meets its rounding, β and `J + 1` additions, at most
/// `k + 5` as well. Higham's bound for any summation order in which no term passes through
/// more than n roundings gives `γ_{k+5}(|α||op(A)||op(B)| + |β||D|)` again, and the epilogue then
/// acts on `t` exactly as in one pass. Split-K inside a slice keeps the slice's count (module
/// doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmTiling {
    /// Rows of op(A) and of C per block (≥ 1).
    pub rows: usize,
    /// Columns of op(B) and of C per block (≥ 1).
    pub cols: usize,
    /// Length of an inner-dimension slice (≥ 1).
    pub depth: usize,
}

/// The fewest rows and columns [`GemmTiling::choose`] keeps per block before it slices k.
const MIN_TILING_BLOCK: usize = 16;

impl GemmTiling {
    /// The tiling of an m×n×k product on an adapter whose storage bindings hold at most
    /// `binding_words` f32 and whose grids have at most `max_groups` workgroups per dimension:
    /// * depth: all of k when `r = min(max(m, n), 16)` rows of op(A) and columns of op(B) of
    ///   length k fit one binding (`rk ≤ W`), else the largest multiple of 16 with
    ///   `r·depth ≤ W` (at least 16, as `W ≥ 256`);
    /// * rows and columns: as many as fit, `rows·depth ≤ W` and `depth·cols ≤ W` (op(A)'s and
    ///   op(B)'s blocks) and at most `16·max_groups` (the grid of the smallest kernel tile);
    ///   then, if C's block `rows·cols` (also D's and H's) exceeds W, the larger side shrinks
    ///   to `⌊W / other side⌋`.
    ///
    /// A product that fits the adapter is one block, as without tiling. Errors when
    /// `binding_words < 256` (no 16×16 block fits: not a real adapter).
    pub fn choose(
        binding_words: usize,
        max_groups: usize,
        (m, n, k): (usize, usize, usize),
    ) -> Result<Self> {
        let w = binding_words;
        if w < MIN_TILING_BLOCK * MIN_TILING_BLOCK || max_groups == 0 {
            return Err(Error::GpuLimit(format!(
                "a storage binding of {w} f32 words and grids of {max_groups} workgroups per \
                 dimension cannot hold one 16×16 GEMM block"
            )));
        }
        let least = m.max(n).clamp(1, MIN_TILING_BLOCK);
        let depth = if k.max(1) * least <= w {
            k.max(1)
        } else {
            w / least / MIN_TILING_BLOCK * MIN_TILING_BLOCK
        };
        let cap = (w / depth).min(MIN_TILING_BLOCK.saturating_mul(max_groups));
        let (mut rows, mut cols) = (m.clamp(1, cap), n.clamp(1, cap));
        if rows * cols > w {
            if rows >= cols {
                rows = w / cols;
            } else {
                cols = w / rows;
            }
        }
        Ok(Self { rows, cols, depth })
    }
}

/// [`gemm_fused`] with the cut given ([`GemmTiling`]): tests force small blocks to run the cut
/// products on matrices that fit any adapter. Blocks of C run one submission each (every
/// slice of the inner dimension recorded in order), are downloaded and placed in C. Errors
/// on a zero block size or a block that still exceeds a binding, naming it.
pub fn gemm_fused_tiled(gpu: &Gpu, p: &HostProduct, tiling: GemmTiling) -> Result<Mat> {
    let (m, n, k) = check_host_product(p)?;
    for (what, size) in [
        ("rows", tiling.rows),
        ("cols", tiling.cols),
        ("depth", tiling.depth),
    ] {
        if size == 0 {
            return Err(Error::InvalidArgument {
                what: format!("GEMM tiling {what}").into(),
                reason: "must be at least 1, got 0".into(),
            });
        }
    }
    linalg::ensure_finite_mat("gemm A", p.a)?;
    linalg::ensure_finite_mat("gemm B", p.b)?;
    if let Some(d) = p.d {
        linalg::ensure_finite_mat("gemm D", d)?;
    }
    p.epilogue
        .try_map(|x| linalg::ensure_finite_mat("gemm epilogue operand", x))?;
    // k = 0 still needs one (empty) slice: C = epilogue(β·D).
    let slices: Vec<(usize, usize)> = if k == 0 {
        vec![(0, 0)]
    } else {
        chunks(k, tiling.depth)
    };
    let mut c = Mat::zeros(m, n);
    for rows in chunks(m, tiling.rows) {
        for cols in chunks(n, tiling.cols) {
            let block = gemm_block(gpu, p, rows, cols, &slices)?;
            c.as_mut()
                .submatrix_mut(rows.0, cols.0, rows.1, cols.1)
                .copy_from(&block);
        }
    }
    Ok(c)
}

/// Block `rows × cols` (each `(start, length)`) of a tiled product, accumulated over `slices`
/// of the inner dimension ([`GemmTiling`]).
fn gemm_block(
    gpu: &Gpu,
    p: &HostProduct,
    (i0, mb): (usize, usize),
    (j0, nb): (usize, usize),
    slices: &[(usize, usize)],
) -> Result<Mat> {
    let (m, n) = (
        if p.trans_a { p.a.ncols() } else { p.a.nrows() },
        if p.trans_b { p.b.nrows() } else { p.b.ncols() },
    );
    // An m-row (n-column) operand is cut to the block's rows (columns); the other side of a
    // bias or scale vector (its 1) is kept whole.
    let cut = |x: &Mat| -> Mat {
        let (r0, nr) = if x.nrows() == m {
            (i0, mb)
        } else {
            (0, x.nrows())
        };
        let (c0, nc) = if x.ncols() == n {
            (j0, nb)
        } else {
            (0, x.ncols())
        };
        x.as_ref().submatrix(r0, c0, nr, nc).to_owned()
    };
    let operands = slices
        .iter()
        .map(|&(l0, kl)| {
            let a = if p.trans_a {
                p.a.as_ref().submatrix(l0, i0, kl, mb)
            } else {
                p.a.as_ref().submatrix(i0, l0, mb, kl)
            };
            let b = if p.trans_b {
                p.b.as_ref().submatrix(j0, l0, nb, kl)
            } else {
                p.b.as_ref().submatrix(l0, j0, kl, nb)
            };
            Ok((
                GpuMat::upload_view(gpu, "gemm A block", a)?,
                GpuMat::upload_view(gpu, "gemm B block", b)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let d =
        p.d.map(|d| GpuMat::upload_view(gpu, "gemm D block", cut(d).as_ref()))
            .transpose()?;
    let epilogue = p
        .epilogue
        .try_map(|x| GpuMat::upload_view(gpu, "gemm epilogue operand block", cut(x).as_ref()))?;
    let partials = (0..slices.len().min(2))
        .map(|_| GpuMat::poisoned(gpu, "gemm C block", mb, nb))
        .collect::<Result<Vec<_>>>()?;
    let last = slices.len() - 1;
    let products = operands
        .iter()
        .enumerate()
        .map(|(s, (a, b))| {
            let product = Product::new((a, p.trans_a), (b, p.trans_b), &partials[s % 2])
                .scaled(p.alpha as f32);
            let product = match (s, &d) {
                (0, Some(d)) => product.plus(p.beta as f32, d),
                (0, None) => product,
                _ => product.plus(1.0, &partials[(s - 1) % 2]),
            };
            let product = if s == last {
                product.with(epilogue.as_ref())
            } else {
                product
            };
            product.prepare(gpu)
        })
        .collect::<Result<Vec<_>>>()?;
    for split in products.iter().filter_map(|p| p.split.as_ref()) {
        // Stale partial sums of earlier products would hide one this product fails to write.
        gpu.poison(&split.workspace);
    }
    run_products(gpu, &products, 1)?;
    partials[last % 2].download(gpu)
}

/// Checks a host product's shapes (inner dimension, D, the epilogue's operands) and returns
/// `(m, n, k)`.
fn check_host_product(p: &HostProduct) -> Result<(usize, usize, usize)> {
    let (m, k) = if p.trans_a {
        (p.a.ncols(), p.a.nrows())
    } else {
        (p.a.nrows(), p.a.ncols())
    };
    let (kb, n) = if p.trans_b {
        (p.b.ncols(), p.b.nrows())
    } else {
        (p.b.nrows(), p.b.ncols())
    };
    if kb != k {
        return Err(Error::DimensionMismatch {
            what: "GEMM inner dimension (rows of op(B))".into(),
            expected: k,
            got: kb,
        });
    }
    match p.d {
        Some(d) if (d.nrows(), d.ncols()) != (m, n) => {
            return Err(Error::InvalidArgument {
                what: "GEMM addend D".into(),
                reason: format!("must be {m}×{n}, got {}×{}", d.nrows(), d.ncols()),
            })
        }
        None if p.beta != 0.0 => {
            return Err(Error::InvalidArgument {
                what: "GEMM addend D".into(),
                reason: format!("β = {} needs a D", p.beta),
            })
        }
        _ => {}
    }
    p.epilogue.validate(m, n)?;
    Ok((m, n, k))
}

/// [`gemm_fused`] with the kernel and the number of split-K slices forced where given
/// ([`Product::kernel`], [`Product::splits`]); returns C and the plan that ran. A split
/// product's workspace is poisoned (NaN) before the run, like C.
pub fn gemm_fused_planned(
    gpu: &Gpu,
    p: &HostProduct,
    kernel: Option<GemmKernel>,
    splits: Option<usize>,
) -> Result<(Mat, GemmPlan)> {
    let ga = GpuMat::upload(gpu, "gemm A", p.a)?;
    let gb = GpuMat::upload(gpu, "gemm B", p.b)?;
    let gd = p.d.map(|d| GpuMat::upload(gpu, "gemm D", d)).transpose()?;
    let operands = p
        .epilogue
        .try_map(|m| GpuMat::upload(gpu, "gemm epilogue operand", m))?;
    let (m, _) = op_shape(&ga, p.trans_a);
    let (_, n) = op_shape(&gb, p.trans_b);
    let gc = GpuMat::poisoned(gpu, "gemm C", m, n)?;
    let product = PreparedProduct::new(
        gpu,
        Product {
            a: &ga,
            trans_a: p.trans_a,
            b: &gb,
            trans_b: p.trans_b,
            alpha: p.alpha as f32,
            beta: p.beta as f32,
            d: gd.as_ref(),
            c: &gc,
            epilogue: operands.as_ref(),
            kernel,
            splits,
        },
    )?;
    let plan = product.plan();
    if let Some(split) = &product.split {
        // Stale partial sums of earlier products would hide one this product fails to write.
        gpu.poison(&split.workspace);
    }
    run_products(gpu, &[product], 1)?;
    Ok((gc.download(gpu)?, plan))
}

/// `α·op(A)·op(B) + β·D` on the GPU for host matrices (upload, one product, download).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    gpu: &Gpu,
    a: &Mat,
    trans_a: bool,
    b: &Mat,
    trans_b: bool,
    alpha: f64,
    beta: f64,
    d: Option<&Mat>,
) -> Result<Mat> {
    gemm_fused(
        gpu,
        &HostProduct {
            alpha,
            beta,
            d,
            ..HostProduct::new((a, trans_a), (b, trans_b))
        },
    )
}

/// Bound on the kernel's error in `φ'` read off a host `h` that is rounded to f32 on upload:
/// tanh `1 − ĥ²` errs by `γ₄h² + u|1 − h²|` (ĥ's rounding doubled by the square, the square
/// and the subtraction); a (leaky) ReLU mask is exact unless `0 < |h| < 2⁻¹²⁶`, where rounding
/// or flushing to zero may flip it (`|1 − slope|`), and a leaky mask carries the slope's f32
/// rounding `u·slope`.
fn mask_rounding(activation: Activation, h: f64) -> f64 {
    let flip = h != 0.0 && h.abs() < f64::from(f32::MIN_POSITIVE);
    match activation {
        Activation::Identity => 0.0,
        Activation::Tanh => gamma_f32(4) * h * h + U * (1.0 - h * h).abs(),
        Activation::Relu => f64::from(u8::from(flip)),
        Activation::LeakyRelu { slope } => {
            let rounding = if h > 0.0 { 0.0 } else { U * slope.abs() };
            rounding + if flip { (1.0 - slope).abs() } else { 0.0 }
        }
    }
}

/// The f64 reference of [`gemm_fused`] and the elementwise bound on the kernel's f32 error.
/// With `t = α·op(A)·op(B) + β·D`, `Δt = γ_{k+5}(|α|·|op(A)||op(B)| + |β|·|D|)` (module doc):
/// * none: `|Ĉ − C| ≤ Δt`;
/// * activation: `Lip(φ)·γ_{k+7}(|α||A||B| + |β||D| + |bias|) + ρ_φ(t + bias)`, ρ the
///   [`activation_rounding`];
/// * derivative mask, `C = t·m`, `m = φ'(H)` with error `Δm` ([`derivative_from_output`], and
///   the mask's rounding: tanh `γ₄H² + u|1 − H²|`, a (leaky) ReLU mask exact but for the slope's
///   rounding and `H` below f32's normal range): `|m|Δt + Δm(|t| + Δt) + u(|t| + Δt)(|m| + Δm)`;
/// * power, `v = s_j·t`: s rounded to f32 and one product give `|v̂ − v| ≤ δv =
///   |s_j|Δt(1 + u)² + γ₂|v|`; by the mean value theorem `|v̂^k − v^k| ≤ k(|v| + δv)^{k−1}δv`,
///   and the k − 1 products of `v̂^k` add `γ_{k−1}(|v| + δv)^k`, plus `2⁻¹²⁶` for a power
///   flushed to zero. Relative to `|C| = |v|^k` that is, to first order,
///   `k·(γ_{k+5}·κ + 2u) + (k − 1)u` with `κ = (|α||A||B| + |β||D|)/|t|` the dot product's
///   condition number: the dot-product error, amplified k times by the power.
///
/// Returns `(C, bound)`.
pub fn gemm_fused_reference(p: &HostProduct) -> Result<(Mat, Mat)> {
    fused_reference(p, false)
}

/// The f64 reference of a product run by [`GemmKernel::TensorCoresF16`] and the elementwise
/// bound on its error. Each operand x (already rounded to f32 on upload) is converted to f16,
/// which WGSL lets round to either neighbour: `|x̃ − x| ≤ e(x) = (2⁻¹⁰ + 2⁻²³)|x| + 2⁻²⁴` (one
/// f16 ulp of a normal number, the f32 rounding, and the subnormal spacing 2⁻²⁴), valid for
/// `|x| ≤ 65504` (larger values become ∞: the caller's precondition). A product of two f16
/// numbers is exact in f32; the tensor cores add them into the f32 accumulator in an unspecified
/// order and, on NVIDIA hardware, possibly truncating, so each addition is charged `2u`
/// (`γ'_n = 2nu/(1 − 2nu)`). Hence the f32 kernels' `Δt` becomes
/// `|α|Σ_l(e(a_l)|b_l| + |a_l|e(b_l) + e(a_l)e(b_l)) + γ'_{k+5}(|α|Σ_l(|a_l| + e(a_l))(|b_l| +
/// e(b_l)) + |β||D|)` (and with a bias `γ'_{k+7}` over the same magnitudes plus `|bias|`); the
/// epilogues then propagate it exactly as in [`gemm_fused_reference`]. The first sum is about
/// 2⁻⁹ relative to `|α||A||B|`: some 3 decimal digits, against f32's 7.
pub fn gemm_tensor_core_reference(p: &HostProduct) -> Result<(Mat, Mat)> {
    fused_reference(p, true)
}

/// `e(x)`, the bound on converting an f32 operand to f16 ([`gemm_tensor_core_reference`]).
fn f16_conversion_error(x: f64) -> f64 {
    (2f64.powi(-10) + 2f64.powi(-23)) * x.abs() + 2f64.powi(-24)
}

/// `γ'_n = 2nu/(1 − 2nu)`: n additions that may truncate (error `2u` each).
fn gamma_truncating(n: usize) -> f64 {
    let nu = 2.0 * n as f64 * U;
    nu / (1.0 - nu)
}

/// [`gemm_fused_reference`] (f32 operands) or [`gemm_tensor_core_reference`]
/// (`f16_operands`).
fn fused_reference(p: &HostProduct, f16_operands: bool) -> Result<(Mat, Mat)> {
    let (m, n, k) = check_host_product(p)?;
    let oa = if p.trans_a {
        p.a.transpose().to_owned()
    } else {
        p.a.clone()
    };
    let ob = if p.trans_b {
        p.b.transpose().to_owned()
    } else {
        p.b.clone()
    };
    // rows of op(A) and columns of op(B) as contiguous slices (faer's Mat is column-major)
    let a_rows: Vec<f64> = (0..m)
        .flat_map(|i| (0..k).map(move |l| (i, l)))
        .map(|il| oa[il])
        .collect();
    let b_cols: Vec<f64> = (0..n)
        .flat_map(|j| (0..k).map(move |l| (l, j)))
        .map(|lj| ob[lj])
        .collect();
    let mut value = Mat::zeros(m, n);
    let mut bound = Mat::zeros(m, n);
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut mag) = (0.0, 0.0);
            let (mut conversion, mut mag16) = (0.0, 0.0);
            for (x, y) in a_rows[i * k..][..k].iter().zip(&b_cols[j * k..][..k]) {
                s += x * y;
                mag += (x * y).abs();
                if f16_operands {
                    let (ex, ey) = (f16_conversion_error(*x), f16_conversion_error(*y));
                    conversion += ex * y.abs() + x.abs() * ey + ex * ey;
                    mag16 += (x.abs() + ex) * (y.abs() + ey);
                }
            }
            let dij = p.d.map_or(0.0, |d| d[(i, j)]);
            let t = p.alpha * s + p.beta * dij;
            let mag_t = p.alpha.abs() * mag + p.beta.abs() * dij.abs();
            // Δt = converted + γ₅·magnitude; with a bias b, Δ(t + b) = converted + γ₇·(magnitude + |b|).
            let (converted, magnitude, g5, g7) = if f16_operands {
                (
                    p.alpha.abs() * conversion,
                    p.alpha.abs() * mag16 + p.beta.abs() * dij.abs(),
                    gamma_truncating(k + 5),
                    gamma_truncating(k + 7),
                )
            } else {
                (0.0, mag_t, gamma_f32(k + 5), gamma_f32(k + 7))
            };
            let dt = converted + g5 * magnitude;
            let (v, e) = match p.epilogue {
                Epilogue::None => (t, dt),
                Epilogue::Activation { bias, activation } => {
                    let b = match bias {
                        Bias::None => 0.0,
                        Bias::PerRow(v) => v[(i, 0)],
                        Bias::PerColumn(v) => v[(0, j)],
                    };
                    let tb = t + b;
                    let dtb = converted + g7 * (magnitude + b.abs());
                    (
                        activation.apply(tb),
                        activation.lipschitz() * dtb + activation_rounding(activation, tb),
                    )
                }
                Epilogue::DerivativeMask { activation, output } => {
                    let h = output[(i, j)];
                    let mk = derivative_from_output(activation, h);
                    let dm = mask_rounding(activation, h);
                    (
                        t * mk,
                        mk.abs() * dt + dm * (t.abs() + dt) + U * (t.abs() + dt) * (mk.abs() + dm),
                    )
                }
                Epilogue::Power { scale, power } => {
                    let sj = scale[(0, j)];
                    let v = sj * t;
                    let dv = sj.abs() * dt * (1.0 + U).powi(2) + gamma_f32(2) * v.abs();
                    let kp = power as i32;
                    let reach = v.abs() + dv;
                    (
                        v.powi(kp),
                        f64::from(power) * reach.powi(kp - 1) * dv
                            + gamma_f32(power as usize - 1) * reach.powi(kp)
                            + f64::from(f32::MIN_POSITIVE),
                    )
                }
            };
            value[(i, j)] = v;
            bound[(i, j)] = e;
        }
    }
    Ok((value, bound))
}

/// The f64 reference of [`gemm`] and the elementwise bound on the kernel's f32 error,
/// `γ_{k+5}(|α|·|op(A)||op(B)| + |β|·|D|)`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_reference(
    a: &Mat,
    trans_a: bool,
    b: &Mat,
    trans_b: bool,
    alpha: f64,
    beta: f64,
    d: Option<&Mat>,
) -> Result<(Mat, Mat)> {
    gemm_fused_reference(&HostProduct {
        alpha,
        beta,
        d,
        ..HostProduct::new((a, trans_a), (b, trans_b))
    })
}
