//! Wrapper of the GEMM family `gpu/gemm*.wgsl`: `C = epilogue(α·op(A)·op(B) + β·D)` on
//! matrices resident on the GPU ([`GpuMat`]), single products or whole iterations recorded once
//! and replayed ([`Gpu::dispatch_sequence`]); the f64 reference with the f32 error bound of its
//! parity test.
//!
//! Files: this one holds the resident matrix [`GpuMat`] and the [`Epilogue`]s; `plan.rs` the
//! kernel choice, `product.rs` resident products and their replay, `host.rs` products of host
//! matrices (tiled when large), `reference.rs` the f64 references with their error bounds.
//!
//! Kernels ([`GemmKernel`], chosen per product by [`GemmPlan::choose`] from the adapter's limits
//! and the shape): 16×16-tiled (one output per invocation), 64×64 register-blocked (4×4 per
//! invocation) and 128×128 register-blocked (8×8 per invocation, vec4 global loads where the
//! layout allows), all staging k-slabs in workgroup memory; and, for small products on a
//! software adapter, the 64×64 direct kernel (4×4 per invocation read straight from storage). Products whose output has too few tiles to fill the GPU and a long inner
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
use super::{chunks, shaders, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use crate::numerics::activation::{activation_rounding, derivative_from_output, Activation};
use crate::numerics::gamma_f32;
use crate::numerics::F32_UNIT_ROUNDOFF as U;

mod host;
mod plan;
mod product;
mod reference;

pub use host::*;
pub use plan::*;
pub use product::*;
pub use reference::*;

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

    /// A rows×cols matrix holding `data` (row-major f32, already rounded by the caller), for
    /// callers that lay out large uploads themselves (`gpu::gaussian`'s tiles).
    pub(crate) fn from_f32_rows(
        gpu: &Gpu,
        label: &str,
        (rows, cols): (usize, usize),
        data: &[f32],
    ) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::DimensionMismatch {
                what: format!("{label}: row-major data of a {rows}×{cols} matrix").into(),
                expected: rows * cols,
                got: data.len(),
            });
        }
        // every word of the matrix is written here; the padding to a multiple of 4 words
        // (see `poisoned`) is never read as data
        let words = (rows * cols).max(1).next_multiple_of(4);
        let out = Self {
            buffer: gpu.unpoisoned_output(label, words)?,
            rows,
            cols,
        };
        if !data.is_empty() {
            gpu.queue()
                .write_buffer(&out.buffer, 0, bytemuck::cast_slice(data));
        }
        Ok(out)
    }

    /// Copies several matrices back as their row-major f32 words, through one staging buffer
    /// and one wait ([`Gpu::read_all`]) rather than one of each per matrix.
    pub(crate) fn download_all_f32_rows(gpu: &Gpu, matrices: &[GpuMat]) -> Result<Vec<Vec<f32>>> {
        let parts: Vec<(&wgpu::Buffer, usize)> = matrices
            .iter()
            .map(|m| (&m.buffer, m.rows * m.cols))
            .collect();
        gpu.read_all(&parts)
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
    pub(crate) fn leading_rows(&self, rows: usize) -> Result<Self> {
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

pub(super) fn op_shape(m: &GpuMat, trans: bool) -> (usize, usize) {
    if trans {
        (m.cols, m.rows)
    } else {
        (m.rows, m.cols)
    }
}
