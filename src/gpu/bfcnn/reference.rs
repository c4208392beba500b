//! The f64 reference of the BF-CNN ([`super::BfCnnTrainer`]): its forward map and one batch's
//! loss and gradient, with first-order running bounds on the f32 kernels' error built from the
//! convolution references' per-entry bounds ([`crate::gpu::conv::reference`]):
//!
//! * a convolution of an operand A known to within `δA` (weights exact: the trainer's own f32
//!   values): `|Ẑ − Z| ≤ (γ_{n+2} + γ_n(f64))·Σ|K|(|A| + δA) + Σ|K|δA` — the kernel's rounding
//!   on its own (perturbed) inputs and the perturbation carried through, each a convolution of
//!   absolute values;
//! * ReLU is exact in f32 and 1-Lipschitz: `δA_l = δZ_l`;
//! * the residual `X̂ − X` (u), `G_L = fl(2/B)·res` (γ₂), each image's sum of squares through
//!   `⌈d/64⌉` strided additions and a 6-level tree (the dense trainer's residual kernel):
//!   `γ_{⌈d/64⌉+7}Σ(|res| + δres)² + Σ(2|res|δres + δres²)`;
//! * a weight gradient `Σ G·A`: `(γ_{n+2} + γ_n(f64))·Σ(|G| + δG)(|A| + δA) + Σ(δG|A| + |G|δA +
//!   δGδA)`; an input gradient `Σ K·G` as a convolution above;
//! * the mask `[Z_l > 0]` is certain where `|Z_l| > δZ_l`; elsewhere the f32 Z may sit across
//!   0, and the bound of that entry of `G_l` becomes `|∂L/∂A| + δ(∂L/∂A)` (either outcome).

use super::BfCnnConfig;
use crate::error::{Error, Result};
use crate::gpu::conv::reference::{
    conv2d_bounded, conv2d_input_grad_bounded, conv2d_weight_grad_bounded,
};
use crate::numerics::gamma_f32;
use crate::numerics::F32_UNIT_ROUNDOFF as U;

/// The f64 forward pass of a BF-CNN with per-entry bounds at every layer.
#[derive(Debug, Clone)]
pub struct BfCnnForward {
    /// `(A_l, δA_l)` for l = 0..L−1: the input `A₀ = y`, then the hidden activations.
    pub activations: Vec<(Vec<f64>, Vec<f64>)>,
    /// `(Z_l, δZ_l)` of the hidden layers l = 1..L−1 (the masks' arguments).
    pub hidden: Vec<(Vec<f64>, Vec<f64>)>,
    /// `x̂ = Z_L`.
    pub output: Vec<f64>,
    /// Bound on the kernels' `|x̂_f32 − x̂|`.
    pub bound: Vec<f64>,
}

fn check_weights(config: &BfCnnConfig, weights: &[Vec<f64>]) -> Result<()> {
    config.validate()?;
    if weights.len() != config.layers {
        return Err(Error::DimensionMismatch {
            what: "BF-CNN weight tensors".into(),
            expected: config.layers,
            got: weights.len(),
        });
    }
    for (l, k) in weights.iter().enumerate() {
        crate::gpu::conv::ensure_operand(
            &format!("BF-CNN weights K{}", l + 1),
            k,
            config.layer_shape(l, 1).weight_len(),
        )?;
    }
    Ok(())
}

/// `x̂ = f(y)` in f64 for `images` images `input` (flat, each C₀·H·W in CHW order) known to
/// within `input_bound` (0 for f32 values the kernels read exactly; `u|y|` for values they
/// round), with per-entry bounds on the f32 kernels' result (module doc). `weights` are the
/// layers' `K_l` (out × in × kernel × kernel). `planted_bias`, when given, adds a constant
/// `planted_bias` to every pre-activation `Z_l` of every layer: a network that is *not* bias-free,
/// the homogeneity test's control (the trainer never has one; its values are f64, bounds
/// unchanged). Errors: a bad configuration, weights or input of the wrong length or non-finite.
pub fn bfcnn_forward_reference(
    config: &BfCnnConfig,
    weights: &[Vec<f64>],
    images: usize,
    input: &[f64],
    input_bound: &[f64],
    planted_bias: Option<f64>,
) -> Result<BfCnnForward> {
    check_weights(config, weights)?;
    let len = images * config.image.dim();
    crate::gpu::conv::ensure_operand("BF-CNN input", input, len)?;
    crate::error::ensure_len("BF-CNN input bound", input_bound, len)?;
    let mut a = (input.to_vec(), input_bound.to_vec());
    let mut activations = Vec::with_capacity(config.layers);
    let mut hidden = Vec::new();
    for (l, k) in weights.iter().enumerate() {
        let shape = config.layer_shape(l, images);
        let (mut z, ez) = conv2d_bounded(&shape, (&a.0, &a.1), k)?;
        if let Some(b) = planted_bias {
            z.iter_mut().for_each(|v| *v += b);
        }
        activations.push(std::mem::take(&mut a));
        if l + 1 == config.layers {
            return Ok(BfCnnForward {
                activations,
                hidden,
                output: z,
                bound: ez,
            });
        }
        a = (z.iter().map(|v| v.max(0.0)).collect(), ez.clone());
        hidden.push((z, ez));
    }
    Err(Error::InvalidArgument {
        what: "BF-CNN layers".into(),
        reason: "must be ≥ 1, got 0".into(),
    })
}

/// One batch's loss and gradient in f64, with bounds on the GPU's.
#[derive(Debug, Clone)]
pub struct BfCnnBatchReference {
    /// `‖x̂_r − x_r‖²` per image.
    pub row_sq: Vec<f64>,
    /// Bounds on the GPU's error in each.
    pub row_sq_bound: Vec<f64>,
    /// `∂L/∂K_l` of `L = (1/B)Σ_r‖x̂_r − x_r‖²`, layer by layer.
    pub gradient: Vec<Vec<f64>>,
    /// Per-entry bounds on the GPU's gradient error.
    pub gradient_bound: Vec<Vec<f64>>,
}

/// The f64 forward and backward pass of one batch of `rows` images: clean `x`, noisy `y` known
/// to within `y_bound` (from [`crate::gpu::dense::batch_inputs_reference`] with α = 1), weights
/// as the GPU holds them, with the running bounds of the module doc. Errors: as
/// [`bfcnn_forward_reference`], and `x` of the wrong length.
pub fn bfcnn_batch_reference(
    config: &BfCnnConfig,
    weights: &[Vec<f64>],
    rows: usize,
    x: &[f64],
    y: &[f64],
    y_bound: &[f64],
) -> Result<BfCnnBatchReference> {
    let fwd = bfcnn_forward_reference(config, weights, rows, y, y_bound, None)?;
    let d = config.image.dim();
    crate::gpu::conv::ensure_operand("BF-CNN clean batch", x, rows * d)?;
    let Residual {
        mut g,
        mut eg,
        row_sq,
        row_sq_bound,
    } = residual_bounded((&fwd.output, &fwd.bound), x, rows, d);
    let layers = config.layers;
    let mut gradient = vec![Vec::new(); layers];
    let mut gradient_bound = vec![Vec::new(); layers];
    for l in (0..layers).rev() {
        let shape = config.layer_shape(l, rows);
        let (a, ea) = &fwd.activations[l];
        (gradient[l], gradient_bound[l]) = conv2d_weight_grad_bounded(&shape, (a, ea), (&g, &eg))?;
        if l == 0 {
            break;
        }
        let (da, eda) = conv2d_input_grad_bounded(&shape, (&g, &eg), &weights[l])?;
        let (z, ez) = &fwd.hidden[l - 1];
        let mut next = vec![0.0; da.len()];
        let mut next_bound = vec![0.0; da.len()];
        for i in 0..da.len() {
            let e = eda[i];
            if z[i] > ez[i] {
                (next[i], next_bound[i]) = (da[i], e);
            } else if z[i] > -ez[i] {
                // the f32 pre-activation may sit on either side of 0
                next[i] = if z[i] > 0.0 { da[i] } else { 0.0 };
                next_bound[i] = da[i].abs() + e;
            }
        }
        g = next;
        eg = next_bound;
    }
    Ok(BfCnnBatchReference {
        row_sq,
        row_sq_bound,
        gradient,
        gradient_bound,
    })
}

/// The residual's gradient and each image's squared error, with bounds (module doc).
pub(crate) struct Residual {
    /// `G = (2/B)(x̂ − x)` and its bound.
    pub(crate) g: Vec<f64>,
    pub(crate) eg: Vec<f64>,
    /// `‖x̂_r − x_r‖²` and its bound.
    pub(crate) row_sq: Vec<f64>,
    pub(crate) row_sq_bound: Vec<f64>,
}

/// The dense trainer's residual kernel on an output `x̂` known to within its bound: `G_L =
/// fl(2/B)·(x̂ − x)` (γ₂ after the subtraction's u) and each image's sum of squares through
/// `⌈d/64⌉` strided additions and a 6-level tree, `γ_{⌈d/64⌉+7}Σ(|res| + δres)² + Σ(2|res|δres +
/// δres²)` (module doc).
pub(crate) fn residual_bounded(
    (output, bound): (&[f64], &[f64]),
    x: &[f64],
    rows: usize,
    d: usize,
) -> Residual {
    let scale = 2.0 / rows as f64;
    let sum_rounding = gamma_f32(d.div_ceil(64) + 7);
    let mut g = vec![0.0; rows * d];
    let mut eg = vec![0.0; rows * d];
    let mut row_sq = vec![0.0; rows];
    let mut row_sq_bound = vec![0.0; rows];
    for r in 0..rows {
        let (mut mag, mut prop) = (0.0, 0.0);
        for j in r * d..(r + 1) * d {
            let (v, e) = (output[j], bound[j]);
            let res = v - x[j];
            let eres = e + U * (res.abs() + e);
            g[j] = scale * res;
            eg[j] = scale * (eres + gamma_f32(2) * (res.abs() + eres));
            row_sq[r] += res * res;
            prop += 2.0 * res.abs() * eres + eres * eres;
            mag += (res.abs() + eres).powi(2);
        }
        row_sq_bound[r] = sum_rounding * mag + prop;
    }
    Residual {
        g,
        eg,
        row_sq,
        row_sq_bound,
    }
}
