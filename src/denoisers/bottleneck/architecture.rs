//! The architecture of a bottleneck network: layer widths, activations, where σ enters.

use super::Activation;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Where the noise-level feature `s = ln σ` enters the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigmaInput {
    /// Nowhere: a σ-blind network (one per sampling step).
    None,
    /// As an extra input of the encoder's first layer (the default of one network for all σ).
    Encoder,
    /// As an extra input of the encoder and of the decoder's first layer.
    EncoderAndDecoder,
}

/// The shape of a bottleneck network: input/output dimension n, hidden widths of the encoder
/// before the code, the code width h, hidden widths of the decoder, activations, σ input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// n.
    pub dim: usize,
    /// Widths of the encoder's hidden layers (before the code layer).
    pub encoder: Vec<usize>,
    /// The code width h.
    pub bottleneck: usize,
    /// Widths of the decoder's hidden layers (after the code).
    pub decoder: Vec<usize>,
    /// Activation of every hidden layer.
    pub hidden: Activation,
    /// Activation of the code layer.
    pub code: Activation,
    /// Activation of the output layer.
    pub output: Activation,
    /// Where σ enters.
    pub sigma: SigmaInput,
}

impl Architecture {
    /// The paper's per-step network (its public `models.py`): `Linear(n→h)`, then 8 ×
    /// `Linear(h→h)`, LeakyReLU(0.2) between layers and a final ReLU on the code, decoder
    /// `Linear(h→n)` + Tanh; σ-blind (one network per sampling step).
    pub fn paper_per_step(dim: usize, h: usize) -> Self {
        Self {
            dim,
            encoder: vec![h; 8],
            bottleneck: h,
            decoder: vec![],
            hidden: Activation::LeakyRelu { slope: 0.2 },
            code: Activation::Relu,
            output: Activation::Tanh,
            sigma: SigmaInput::None,
        }
    }

    /// The paper's 2-D model `2 → width → h → width → 2` with LeakyReLU(0.2) on the hidden and
    /// code layers and a linear output, with σ entering as `sigma` says.
    pub fn paper_2d(h: usize, width: usize, sigma: SigmaInput) -> Self {
        Self {
            dim: 2,
            encoder: vec![width],
            bottleneck: h,
            decoder: vec![width],
            hidden: Activation::LeakyRelu { slope: 0.2 },
            code: Activation::LeakyRelu { slope: 0.2 },
            output: Activation::Identity,
            sigma,
        }
    }

    /// Refuses zero widths and non-finite leaky slopes, naming the value.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str, reason: String| {
            Err(Error::InvalidArgument {
                what: what.into(),
                reason,
            })
        };
        if self.dim == 0 {
            return bad("dim", "must be ≥ 1, got 0".into());
        }
        if self.bottleneck == 0 {
            return bad("bottleneck h", "must be ≥ 1, got 0".into());
        }
        if let Some(i) = self
            .encoder
            .iter()
            .chain(&self.decoder)
            .position(|&w| w == 0)
        {
            return bad("hidden width", format!("layer {i} has width 0"));
        }
        for a in [self.hidden, self.code, self.output] {
            if let Activation::LeakyRelu { slope } = a {
                if !slope.is_finite() {
                    return bad("leaky slope", format!("must be finite, got {slope}"));
                }
            }
        }
        Ok(())
    }

    /// Index of the code layer (its output is the code `E(y) ∈ ℝʰ`).
    pub(crate) fn code_layer(&self) -> usize {
        self.encoder.len()
    }

    /// `(out, in)` of every layer; `in` includes the σ feature where it enters.
    pub(crate) fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let enc_sigma = usize::from(self.sigma != SigmaInput::None);
        let dec_sigma = usize::from(self.sigma == SigmaInput::EncoderAndDecoder);
        let mut widths = vec![self.dim + enc_sigma];
        widths.extend(&self.encoder);
        widths.push(self.bottleneck);
        widths.extend(&self.decoder);
        widths.push(self.dim);
        (0..widths.len() - 1)
            .map(|l| {
                let extra = if l == self.code_layer() + 1 {
                    dec_sigma
                } else {
                    0
                };
                (widths[l + 1], widths[l] + extra)
            })
            .collect()
    }

    /// Activation of layer `l`.
    pub fn activation(&self, l: usize) -> Activation {
        if l + 1 == self.layer_shapes().len() {
            self.output
        } else if l == self.code_layer() {
            self.code
        } else {
            self.hidden
        }
    }

    /// Whether layer `l`'s input ends with the σ feature.
    pub(crate) fn takes_sigma(&self, l: usize) -> bool {
        match self.sigma {
            SigmaInput::None => false,
            SigmaInput::Encoder => l == 0,
            SigmaInput::EncoderAndDecoder => l == 0 || l == self.code_layer() + 1,
        }
    }

    /// Number of parameters `Σ_l out_l·(in_l + 1)`.
    pub(crate) fn parameter_count(&self) -> usize {
        self.layer_shapes().iter().map(|(o, i)| o * (i + 1)).sum()
    }
}

/// The noise-level feature `s = ln σ` (O(1) over the geometric σ grids diffusion uses).
pub fn sigma_feature(sigma: f64) -> f64 {
    sigma.ln()
}

#[cfg(test)]
mod tests {
    use super::Activation;

    /// The kernel codes of the activations are the ones the WGSL kernels switch on
    /// (0 identity, 1 tanh, 2 ReLU, 3 leaky with its slope).
    #[test]
    fn gpu_codes_match_the_kernels() {
        assert_eq!(Activation::Identity.gpu_code(), (0, 0.0));
        assert_eq!(Activation::Tanh.gpu_code(), (1, 0.0));
        assert_eq!(Activation::Relu.gpu_code(), (2, 0.0));
        assert_eq!(Activation::LeakyRelu { slope: 0.2 }.gpu_code(), (3, 0.2));
    }
}
