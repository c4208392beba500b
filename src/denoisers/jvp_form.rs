//! The denoisers the GPU's JVP kernel evaluates ([`JvpDenoiser`]), given to it as their
//! parameters: `JvpDenoiser::from(&f)` for an affine map, soft thresholding, a power map, a
//! one-hidden-layer tanh MLP, or the Bayes denoiser of a Gaussian mixture.

use super::{Affine, Bayes, Mlp, PowerMap, SoftThreshold};
use crate::gpu::denoiser_jvp::JvpDenoiser;
use crate::targets::GaussianMixture;

impl<'a> From<&'a Affine> for JvpDenoiser<'a> {
    /// `W y + b` with the map's W and b.
    fn from(f: &'a Affine) -> Self {
        JvpDenoiser::Affine {
            weight: f.weight(),
            bias: f.bias(),
        }
    }
}

impl<'a> From<&'a SoftThreshold> for JvpDenoiser<'a> {
    /// Soft thresholding at the denoiser's τ, in its dimension.
    fn from(f: &'a SoftThreshold) -> Self {
        JvpDenoiser::SoftThreshold {
            threshold: f.threshold(),
            dim: super::Denoiser::dim(f),
        }
    }
}

impl<'a> From<&'a PowerMap> for JvpDenoiser<'a> {
    /// `b + Σ_q W_q y^{∘q}` with the map's weights and bias.
    fn from(f: &'a PowerMap) -> Self {
        JvpDenoiser::PowerMap {
            weights: f.weights(),
            bias: f.bias(),
        }
    }
}

impl<'a> From<&'a Mlp> for JvpDenoiser<'a> {
    /// `W₂ tanh(W₁ y + b₁) + b₂` with the network's parameters.
    fn from(f: &'a Mlp) -> Self {
        let (w1, b1, w2, b2) = f.parameters();
        JvpDenoiser::Mlp { w1, b1, w2, b2 }
    }
}

impl<'a> From<&'a Bayes<GaussianMixture>> for JvpDenoiser<'a> {
    /// `E[x | y]` of the mixture.
    fn from(f: &'a Bayes<GaussianMixture>) -> Self {
        JvpDenoiser::Gmm(f.target())
    }
}
