//! The σ (time) embedding of a feature map on the GPU (`gpu/embedding.wgsl`): how a σ-aware
//! convolutional denoiser is told the noise level (Ho et al.'s timestep embedding, Karras et
//! al.'s `c_noise = log σ` conditioning).
//!
//! For image b with noise level `σ_b > 0`, `ℓ_b = ln σ_b`, and F frequencies
//! `ω_j = 10000^{−j/F}` (`j = 0, …, F − 1`: a geometric sequence from 1 down to `10000^{−(F−1)/F}`,
//! Vaswani et al.'s positional encoding), the features are
//!
//! `e(σ_b) = [sin(ω₀ℓ_b), …, sin(ω_{F−1}ℓ_b), cos(ω₀ℓ_b), …, cos(ω_{F−1}ℓ_b)]` (2F entries),
//!
//! a linear map `W` (channels × 2F, row-major) and bias `β` (channels) make one value per channel,
//! added to every pixel of that channel of the feature map `X` (NCHW, batch × channels ×
//! height × width):
//!
//! `Z[b,c,i,j] = X[b,c,i,j] + β_c + Σ_k W[c,k]·e_k(σ_b)`.
//!
//! With `G = ∂L/∂Z`: `∂L/∂X = G` (the map is a translation of X), and with
//! `S[b,c] = Σ_{i,j} G[b,c,i,j]`, `∂L/∂W[c,k] = Σ_b S[b,c]·e_k(σ_b)`, `∂L/∂β_c = Σ_b S[b,c]`.
//!
//! The features are computed on the host in f64 (2F numbers per image) and uploaded rounded to
//! f32: WGSL specifies its `sin` and `cos` only to an absolute 2⁻¹¹ on `[−π, π]`, which would
//! swamp every other error here. The kernels see `Ẽ = [e | 1]` (batch × (2F + 1)) and
//! `P = [W | β]` (channels × (2F + 1)).
//!
//! **f32 error.** The references follow the kernels' operations one by one with
//! [`Bounded`] values (every operand rounded to f32 on upload, each `+`, `×` correctly rounded:
//! `Z = X + Σ_k P[c,k]Ẽ[b,k]`, the sum accumulated from 0 in k order; `∇P[c,k] =
//! Σ_b Ẽ[b,k]·S[b,c]`, each `S[b,c]` accumulated from 0 in pixel order), and add the f64
//! reference's own `γ_n(f64)·Σ|terms|` for its n terms.

use super::group_norm::Bounded;
use super::uniforms::EmbedParams;
use super::{groups_1d, shaders, Gpu};
use crate::error::{Error, Result};
use crate::numerics::gamma_f64;

/// The shape of a σ embedding: `batch` feature maps of `channels × height × width` and F
/// frequencies (2F features).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingShape {
    /// Images (one σ each).
    pub batch: usize,
    /// Channels of the feature map (rows of W).
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Frequencies F (the features are 2F: a sine and a cosine each).
    pub frequencies: usize,
}

impl EmbeddingShape {
    /// Entries of the feature map, `batch·channels·height·width`.
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.height * self.width
    }

    /// Whether the feature map is empty (never, for a validated shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries of W, `channels·2F`.
    pub fn weight_len(&self) -> usize {
        self.channels * 2 * self.frequencies
    }

    /// Returns an error naming the first dimension that is 0, or a shape beyond the kernels'
    /// 32-bit indices.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("batch", self.batch),
            ("channels", self.channels),
            ("height", self.height),
            ("width", self.width),
            ("frequencies", self.frequencies),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    what: format!("σ embedding {what}").into(),
                    reason: "must be at least 1, got 0".into(),
                });
            }
        }
        let words = (self.batch as u128)
            * (self.channels as u128)
            * (self.height as u128)
            * (self.width as u128);
        let features = (self.channels.max(self.batch) as u128) * (2 * self.frequencies as u128 + 1);
        if words > u32::MAX as u128 || features > u32::MAX as u128 {
            return Err(Error::GpuLimit(format!(
                "σ embedding of {} × {} × {}×{} with {} frequencies: beyond the kernels' 32-bit \
                 indices",
                self.batch, self.channels, self.height, self.width, self.frequencies
            )));
        }
        Ok(())
    }

    fn plane(&self) -> usize {
        self.height * self.width
    }
}

/// `ω_j = 10000^{−j/F}`, the j-th of F frequencies (module doc).
pub fn frequency(j: usize, frequencies: usize) -> f64 {
    10000f64.powf(-(j as f64) / frequencies as f64)
}

/// The 2F sinusoidal features `e(σ)` of `ln σ` (module doc), in f64. Errors: σ not finite and
/// > 0 ([`Error::InvalidSigma`], naming it), F = 0.
pub fn sigma_features(sigma: f64, frequencies: usize) -> Result<Vec<f64>> {
    crate::error::ensure_sigma(sigma)?;
    if frequencies == 0 {
        return Err(Error::InvalidArgument {
            what: "σ embedding frequencies".into(),
            reason: "must be at least 1, got 0".into(),
        });
    }
    let l = sigma.ln();
    let angles: Vec<f64> = (0..frequencies)
        .map(|j| frequency(j, frequencies) * l)
        .collect();
    Ok(angles
        .iter()
        .map(|a| a.sin())
        .chain(angles.iter().map(|a| a.cos()))
        .collect())
}

/// `Ẽ` (batch × (2F + 1)): each image's features followed by 1. Errors: a σ not finite and > 0,
/// naming the image and the value.
fn extended_features(shape: &EmbeddingShape, sigmas: &[f64]) -> Result<Vec<f64>> {
    crate::error::ensure_len("σ embedding noise levels", sigmas, shape.batch)?;
    let mut out = Vec::with_capacity(shape.batch * (2 * shape.frequencies + 1));
    for (b, &s) in sigmas.iter().enumerate() {
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::InvalidArgument {
                what: format!("σ embedding noise level of image {b}").into(),
                reason: format!("σ must be finite and > 0, got {s}"),
            });
        }
        out.extend(sigma_features(s, shape.frequencies)?);
        out.push(1.0);
    }
    Ok(out)
}

/// `P = [W | β]` (channels × (2F + 1)).
fn extended_weights(shape: &EmbeddingShape, weight: &[f64], bias: &[f64]) -> Vec<f64> {
    let f2 = 2 * shape.frequencies;
    (0..shape.channels)
        .flat_map(|c| {
            weight[c * f2..(c + 1) * f2]
                .iter()
                .copied()
                .chain(std::iter::once(bias[c]))
        })
        .collect()
}

fn check(
    shape: &EmbeddingShape,
    map: (&str, &[f64]),
    weight: Option<(&[f64], &[f64])>,
) -> Result<()> {
    shape.validate()?;
    super::conv::ensure_operand(map.0, map.1, shape.len())?;
    if let Some((weight, bias)) = weight {
        super::conv::ensure_operand("σ embedding weights W", weight, shape.weight_len())?;
        super::conv::ensure_operand("σ embedding bias", bias, shape.channels)?;
    }
    Ok(())
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

fn ensure_fits(gpu: &Gpu, shape: &EmbeddingShape) -> Result<()> {
    let words = (gpu.max_binding_bytes() / 4) as usize;
    if shape.len() > words {
        return Err(Error::GpuLimit(format!(
            "σ embedding: the feature map's {} words exceed the adapter's storage binding of \
             {words} words",
            shape.len()
        )));
    }
    Ok(())
}

/// `Z = X + β + W·e(σ_b)` broadcast over each image (module doc), on the GPU in f32, returned in
/// f64. `x` is batch × channels × height × width, `sigmas` one per image, `weight` channels × 2F,
/// `bias` channels. Errors: a bad shape, operands of the wrong length, non-finite or beyond f32's
/// range, a σ not finite and > 0 (naming the image and the value).
pub fn embed_add(
    gpu: &Gpu,
    shape: &EmbeddingShape,
    x: &[f64],
    sigmas: &[f64],
    weight: &[f64],
    bias: &[f64],
) -> Result<Vec<f64>> {
    check(shape, ("σ embedding feature map", x), Some((weight, bias)))?;
    let features = extended_features(shape, sigmas)?;
    ensure_fits(gpu, shape)?;
    let groups = groups_1d(gpu, shape.len());
    let params = gpu.uniform("embed params", &params(shape, groups));
    let x = gpu.input("embed X", &to_f32(x))?;
    let e = gpu.input("embed features", &to_f32(&features))?;
    let p = gpu.input("embed P", &to_f32(&extended_weights(shape, weight, bias)))?;
    let z = gpu.output("embed Z", shape.len())?;
    gpu.dispatch(&shaders::EMBED_ADD, &[&params, &x, &e, &z, &p], groups)?;
    Ok(gpu
        .read::<f32>(&z, shape.len())?
        .into_iter()
        .map(f64::from)
        .collect())
}

fn params(shape: &EmbeddingShape, groups: [u32; 3]) -> EmbedParams {
    EmbedParams {
        batch: shape.batch as u32,
        channels: shape.channels as u32,
        plane: shape.plane() as u32,
        features: (2 * shape.frequencies + 1) as u32,
        grid_x: groups[0],
        ..EmbedParams::default()
    }
}

/// The gradients of the σ embedding's linear map: `∂L/∂W` (channels × 2F) and `∂L/∂β`
/// (channels). (`∂L/∂X = ∂L/∂Z`: the caller's G itself.)
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingGrads {
    /// `∂L/∂W[c,k] = Σ_b S[b,c]·e_k(σ_b)`, channels × 2F row-major.
    pub weight: Vec<f64>,
    /// `∂L/∂β_c = Σ_b S[b,c]`.
    pub bias: Vec<f64>,
}

impl EmbeddingGrads {
    fn from_extended(shape: &EmbeddingShape, p: &[f64]) -> Self {
        let k = 2 * shape.frequencies + 1;
        Self {
            weight: (0..shape.channels)
                .flat_map(|c| p[c * k..c * k + k - 1].iter().copied())
                .collect(),
            bias: (0..shape.channels).map(|c| p[c * k + k - 1]).collect(),
        }
    }
}

/// `∂L/∂W` and `∂L/∂β` from `G = ∂L/∂Z` (module doc) on the GPU in f32, returned in f64.
/// Errors: as [`embed_add`].
pub fn embed_grad(
    gpu: &Gpu,
    shape: &EmbeddingShape,
    sigmas: &[f64],
    output_grad: &[f64],
) -> Result<EmbeddingGrads> {
    check(shape, ("σ embedding output gradient", output_grad), None)?;
    let features = extended_features(shape, sigmas)?;
    ensure_fits(gpu, shape)?;
    let words = shape.channels * (2 * shape.frequencies + 1);
    let groups = groups_1d(gpu, words);
    let params = gpu.uniform("embed params", &params(shape, groups));
    let g = gpu.input("embed G", &to_f32(output_grad))?;
    let e = gpu.input("embed features", &to_f32(&features))?;
    let dp = gpu.output("embed ∇P", words)?;
    gpu.dispatch(&shaders::EMBED_GRAD, &[&params, &g, &e, &dp], groups)?;
    let dp: Vec<f64> = gpu
        .read::<f32>(&dp, words)?
        .into_iter()
        .map(f64::from)
        .collect();
    Ok(EmbeddingGrads::from_extended(shape, &dp))
}

/// A feature as the kernels see it: the f64 feature rounded to f32 on upload, the constant 1
/// exact.
fn feature(e: &[f64], shape: &EmbeddingShape, b: usize, k: usize) -> Bounded {
    let v = e[b * (2 * shape.frequencies + 1) + k];
    if k == 2 * shape.frequencies {
        Bounded::exact(v)
    } else {
        Bounded::input(v)
    }
}

/// `(Z, bound)`: the f64 reference of [`embed_add`] with the per-entry bound on the kernel's f32
/// error (module doc). Errors: as [`embed_add`].
pub fn embed_add_reference(
    shape: &EmbeddingShape,
    x: &[f64],
    sigmas: &[f64],
    weight: &[f64],
    bias: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    check(shape, ("σ embedding feature map", x), Some((weight, bias)))?;
    let e = extended_features(shape, sigmas)?;
    let p = extended_weights(shape, weight, bias);
    let k = 2 * shape.frequencies + 1;
    // V[b, c] as the kernel accumulates it, with Σ|terms| for the f64 reference's own rounding
    let v: Vec<(Bounded, f64)> = (0..shape.batch * shape.channels)
        .map(|bc| {
            let (b, c) = (bc / shape.channels, bc % shape.channels);
            (0..k).fold((Bounded::exact(0.0), 0.0), |(acc, mag), kk| {
                let term = Bounded::input(p[c * k + kk]).times(feature(&e, shape, b, kk));
                (acc.plus(term), mag + term.v.abs())
            })
        })
        .collect();
    let plane = shape.plane();
    Ok((0..shape.len())
        .map(|i| {
            let (acc, mag) = v[i / plane];
            let z = Bounded::input(x[i]).plus(acc);
            (z.v, z.e + gamma_f64(k + 1) * (mag + x[i].abs()))
        })
        .unzip())
}

/// `(gradients, bounds)`: the f64 reference of [`embed_grad`] with per-entry bounds on the
/// kernel's f32 error (module doc). Errors: as [`embed_add`].
pub fn embed_grad_reference(
    shape: &EmbeddingShape,
    sigmas: &[f64],
    output_grad: &[f64],
) -> Result<(EmbeddingGrads, EmbeddingGrads)> {
    check(shape, ("σ embedding output gradient", output_grad), None)?;
    let e = extended_features(shape, sigmas)?;
    let plane = shape.plane();
    let k = 2 * shape.frequencies + 1;
    // S[b, c] as the kernel accumulates it, with Σ|G| of its pixels
    let s: Vec<(Bounded, f64)> = (0..shape.batch * shape.channels)
        .map(|bc| {
            output_grad[bc * plane..(bc + 1) * plane]
                .iter()
                .fold((Bounded::exact(0.0), 0.0), |(acc, mag), &g| {
                    (acc.plus(Bounded::input(g)), mag + g.abs())
                })
        })
        .collect();
    let mut values = Vec::with_capacity(shape.channels * k);
    let mut bounds = Vec::with_capacity(shape.channels * k);
    for c in 0..shape.channels {
        for kk in 0..k {
            let (acc, mag) = (0..shape.batch).fold((Bounded::exact(0.0), 0.0), |(acc, mag), b| {
                let (sum, sum_mag) = s[b * shape.channels + c];
                let f = feature(&e, shape, b, kk);
                (acc.plus(sum.times(f)), mag + sum_mag * f.v.abs())
            });
            values.push(acc.v);
            bounds.push(acc.e + gamma_f64(plane + shape.batch + 1) * mag);
        }
    }
    Ok((
        EmbeddingGrads::from_extended(shape, &values),
        EmbeddingGrads::from_extended(shape, &bounds),
    ))
}
