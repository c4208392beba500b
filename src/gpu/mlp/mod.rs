//! A multi-layer perceptron trained on the GPU in f32 ([`GpuTrainer`]) on the GEMM family
//! ([`crate::gpu::gemm`], products with fused bias + activation and derivative-mask epilogues)
//! with the residual and column-sum kernels of `gpu/dense.wgsl` and Adam
//! ([`crate::gpu::adam`]); and the f64 reference of one batch with first-order running error
//! bounds ([`reference_with_bounds`]), which the parity tests compare against. The wrapper takes
//! matrices and scalars ([`MlpLayer`], [`Batch`]); the bottleneck denoiser converts itself in
//! [`crate::denoisers::training`].
//!
//! The network is a stack of layers `a_{l+1} = φ_l(W_l·[a_l | s] + b_l)`, samples as rows, where
//! the per-row feature s (the noise level's, for the bottleneck denoisers) enters only the
//! layers marked [`MlpLayer::sigma`], as the last column of their input. Splitting
//! `W_l = [W_a | w_s]`, one training step on a batch of m rows (Y, s, X, per-row weights w)
//! records, for the loss `L = (1/m)Σ_r w_r‖x̂_r − x_r‖²`:
//! 1. forward, per layer: `P = s·w_sᵀ` (a k = 1 product, σ layers only), then
//!    `H_l = φ_l(H_{l−1}·W_aᵀ + 1·P + b)` (one product with the bias + activation epilogue,
//!    `H_{−1} = Y`); only H is stored;
//! 2. the residual kernel: `dZ_L = ((2/m)·w_r·(X̂ − X)) ⊙ φ_L'(X̂)` (φ' read off the output) and
//!    each row's `w_r‖x̂_r − x_r‖²`;
//! 3. backward, per layer from the last: `∇W_a = dZᵀ·H_{l−1}`, `∇w_s = dZᵀ·s`, `∇b = colsum dZ`
//!    (column-sum kernel), and `dZ_{l−1} = (dZ·W_a) ⊙ φ_{l−1}'(H_{l−1})` (derivative-mask
//!    epilogue, φ' read off the stored output, so leaky slopes must be ≥ 0);
//! 4. the loss `Σ_r w_r‖x̂_r − x_r‖²` (column-sum kernel over the m row losses), and an Adam step
//!    per tensor.
//!
//! Files: this one holds the layer and batch types and the flat parameter layout; `trainer.rs`
//! the resident trainer; `reference.rs` the f64 reference with its error bounds.

use super::adam::{adam_params, AdamConfig, AdamTensor, Tensor};
use super::gemm::{Bias, Epilogue, GpuMat, PreparedProduct, Product};
use super::uniforms::{ColumnSumParams, ResidualParams};
use super::{groups_1d, shaders, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use crate::numerics::activation::{
    activation_rounding, derivative_from_output, derivative_from_output_error, Activation,
};
use crate::numerics::F32_UNIT_ROUNDOFF as U;
use crate::numerics::{gamma_f32, DotBound};
use serde::{Deserialize, Serialize};

mod reference;
mod trainer;

pub use reference::*;
pub use trainer::*;

/// One dense layer `a' = φ(W·[a | s] + b)` as the GPU trainer takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpLayer {
    /// W (out×in); with [`MlpLayer::sigma`] its last column multiplies the feature s.
    pub weight: Mat,
    /// b ∈ ℝ^out.
    pub bias: Vec<f64>,
    /// φ (a leaky slope must be finite and ≥ 0: φ' is read off the sign of φ(z)).
    pub activation: Activation,
    /// Whether the layer's input ends with the per-row feature s.
    pub sigma: bool,
}

impl MlpLayer {
    /// The width of the input read from the previous layer (or Y): `in − [sigma]`.
    pub(crate) fn main_inputs(&self) -> usize {
        self.weight.ncols() - usize::from(self.sigma)
    }

    /// The number of parameters `out·(in + 1)`.
    pub(crate) fn parameter_count(&self) -> usize {
        self.weight.nrows() * (self.weight.ncols() + 1)
    }
}

/// Checks a stack of layers for an n-dimensional denoiser (n = the first layer's main input
/// width, which the last layer's output must match): at least one layer, chained widths, a
/// σ layer with at least one column, biases of the output width, finite values and leaky slopes
/// that are finite and ≥ 0. Returns n.
pub fn validate_layers(layers: &[MlpLayer]) -> Result<usize> {
    let bad = |what: String, reason: String| {
        Err(Error::InvalidArgument {
            what: what.into(),
            reason,
        })
    };
    let Some(first) = layers.first() else {
        return bad("MLP".into(), "needs at least one layer, got 0".into());
    };
    if first.weight.ncols() < usize::from(first.sigma) + 1 {
        return bad("MLP layer 0".into(), "needs at least one input".into());
    }
    let dim = first.main_inputs();
    let mut width = dim;
    for (l, layer) in layers.iter().enumerate() {
        let (o, i) = (layer.weight.nrows(), layer.weight.ncols());
        if o == 0 || i != width + usize::from(layer.sigma) || layer.bias.len() != o {
            return bad(
                format!("MLP layer {l}"),
                format!(
                    "W must be out×{} (out ≥ 1) and b of length out, got {o}×{i} and {}",
                    width + usize::from(layer.sigma),
                    layer.bias.len()
                ),
            );
        }
        if let Activation::LeakyRelu { slope } = layer.activation {
            if !(slope.is_finite() && slope >= 0.0) {
                return bad(
                    format!("MLP layer {l} leaky slope"),
                    format!("must be finite and ≥ 0 (φ' is read off the sign of φ), got {slope}"),
                );
            }
        }
        linalg::ensure_finite_mat(&format!("MLP layer {l} W"), &layer.weight)?;
        crate::error::ensure_finite(&format!("MLP layer {l} b"), &layer.bias)?;
        width = o;
    }
    if width != dim {
        return bad(
            "MLP output".into(),
            format!("must have the input's width {dim}, got {width}"),
        );
    }
    Ok(dim)
}

/// All parameters of `layers` flattened: per layer, W row-major (σ column last), then b.
pub fn flat_parameters(layers: &[MlpLayer]) -> Vec<f64> {
    let mut out = Vec::new();
    for layer in layers {
        for i in 0..layer.weight.nrows() {
            out.extend((0..layer.weight.ncols()).map(|j| layer.weight[(i, j)]));
        }
        out.extend(&layer.bias);
    }
    out
}

/// Parameters and Adam state in the flat layout of [`flat_parameters`]: θ, first and second
/// moments m, v, and the number of steps taken (the next step is `step + 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// θ.
    pub theta: Vec<f64>,
    /// Adam's m.
    pub m: Vec<f64>,
    /// Adam's v.
    pub v: Vec<f64>,
    /// Steps taken.
    pub step: u64,
}

/// One training batch: inputs y (m×n), the per-row feature s (m; the σ layers' last input),
/// targets x (m×n) and per-row loss weights w (m): the loss is `(1/m)Σ_p w_p‖f(y_p, s_p) −
/// x_p‖²`.
#[derive(Debug, Clone)]
pub struct Batch {
    /// y.
    pub y: Mat,
    /// s per row.
    pub feature: Vec<f64>,
    /// x.
    pub x: Mat,
    /// w per row (1 for the plain denoising loss).
    pub weight: Vec<f64>,
}

impl Batch {
    /// Checks shapes (y and x m×n, s and w of length m ≥ 1), finiteness and `w ≥ 0`.
    pub fn validate(&self, dim: usize) -> Result<()> {
        let m = self.y.nrows();
        if self.y.ncols() != dim || self.x.ncols() != dim || self.x.nrows() != m {
            return Err(Error::DimensionMismatch {
                what: "batch columns (y and x must be m×n)".into(),
                expected: dim,
                got: self.y.ncols().max(self.x.ncols()),
            });
        }
        if self.feature.len() != m || self.weight.len() != m || m == 0 {
            return Err(Error::DimensionMismatch {
                what: "batch features and weights (one per row, at least one row)".into(),
                expected: m.max(1),
                got: if self.feature.len() != m {
                    self.feature.len()
                } else {
                    self.weight.len()
                },
            });
        }
        crate::error::ensure_finite("batch weights", &self.weight)?;
        crate::error::ensure_finite("batch features", &self.feature)?;
        if let Some(w) = self.weight.iter().find(|w| **w < 0.0) {
            return Err(Error::InvalidArgument {
                what: "batch weights".into(),
                reason: format!("must be ≥ 0, got {w}"),
            });
        }
        linalg::ensure_finite_mat("batch y", &self.y)?;
        linalg::ensure_finite_mat("batch x", &self.x)
    }
}
