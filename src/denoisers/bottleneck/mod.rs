//! Encoder–decoder MLP denoisers through a bottleneck of width h (Levine–Weiss §2.3, Thm 6),
//! in f64: forward pass, exact Jacobian with a rounding bound, the encoder/decoder split, and
//! backpropagation of the denoising loss (trained on the GPU by `gpu::mlp` through
//! [`crate::denoisers::training`]).
//!
//! A network is a stack of dense layers `a_{l+1} = φ_l(W_l a_l + b_l)`; the layer whose output
//! has width h is the *code* layer, the layers up to it form the encoder `E: ℝⁿ → ℝʰ` and the
//! rest the decoder `D: ℝʰ → ℝⁿ`, so `f = D ∘ E` and `∇_y f(y, σ) = ∇D(E(y))·∇_y E(y)` has rank
//! at most h. The noise level enters as the feature `s = ln σ` appended to the encoder input
//! ([`SigmaInput::Encoder`]) and optionally also to the decoder input
//! ([`SigmaInput::EncoderAndDecoder`]); with [`SigmaInput::None`] the network is σ-blind and is
//! used one per sampling step ([`PerStep`], the paper's own `models.py`).

mod architecture;
mod derivatives;
mod net;
mod per_step;

use crate::error::{Error, Result};
use crate::linalg::Mat;

pub use architecture::{sigma_feature, Architecture, SigmaInput};
pub use per_step::PerStep;

pub use crate::numerics::activation::Activation;

/// One dense layer `z = W a + b` (W out×in).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// W (out×in).
    pub weight: Mat,
    /// b ∈ ℝ^out.
    pub bias: Vec<f64>,
}

/// A bottleneck network `f(y, σ) = D(E(y, σ), σ)` (σ arguments as [`SigmaInput`] says).
#[derive(Debug, Clone, PartialEq)]
pub struct BottleneckNet {
    arch: Architecture,
    layers: Vec<Layer>,
}

/// The forward pass of one input: every layer's input `a_l` and pre-activation `z_l`, and the
/// running elementwise bound on the f64 rounding error of each `a_l`.
#[derive(Debug, Clone)]
pub struct Trace {
    /// `a_l` (the input of layer l, σ feature included); `a_L` is the output.
    pub inputs: Vec<Vec<f64>>,
    /// `z_l = W_l a_l + b_l`.
    pub pre: Vec<Vec<f64>>,
    /// Bound on `|â_l − a_l|` (running error analysis: `δz ≤ γ_{in+1}(|W||a| + |b|) + |W|δa`,
    /// `δa' ≤ Lip(φ)·δz + ε|a'|`).
    pub input_error: Vec<Vec<f64>>,
}

/// Singular values of `m` in descending order (faer SVD).
pub fn singular_values(m: &Mat) -> Result<Vec<f64>> {
    let svd = m
        .svd()
        .map_err(|e| Error::Numerical(format!("SVD of a Jacobian: {e:?}")))?;
    let s = svd.S().column_vector();
    let mut v: Vec<f64> = (0..m.nrows().min(m.ncols())).map(|i| s[i]).collect();
    v.sort_by(|a, b| b.total_cmp(a));
    Ok(v)
}
