//! One σ-blind network per sampling step (`PerStep`).

use super::architecture::SigmaInput;
use super::BottleneckNet;
use crate::denoisers::Denoiser;
use crate::error::{Error, Result};
use crate::linalg::Mat;
use crate::stats::finite_difference::Derivative;

/// One σ-blind network per sampling step (the paper's `models.py`): step ℓ's network is used
/// at its noise level `σ_ℓ` and nowhere else.
#[derive(Debug, Clone)]
pub struct PerStep {
    sigmas: Vec<f64>,
    nets: Vec<BottleneckNet>,
}

impl PerStep {
    /// Pairs each noise level with its network; the networks must be σ-blind and of one
    /// dimension, the levels distinct and > 0.
    pub fn new(sigmas: Vec<f64>, nets: Vec<BottleneckNet>) -> Result<Self> {
        if sigmas.len() != nets.len() || nets.is_empty() {
            return Err(Error::DimensionMismatch {
                what: "per-step networks (one per noise level)".into(),
                expected: sigmas.len(),
                got: nets.len(),
            });
        }
        for &s in &sigmas {
            crate::error::ensure_sigma(s)?;
        }
        let dim = nets[0].dim();
        for (l, net) in nets.iter().enumerate() {
            if net.arch.sigma != SigmaInput::None || net.dim() != dim {
                return Err(Error::InvalidArgument {
                    what: format!("per-step network {l}").into(),
                    reason: format!(
                        "must be σ-blind of dimension {dim}, got {:?} of dimension {}",
                        net.arch.sigma,
                        net.dim()
                    ),
                });
            }
        }
        Ok(Self { sigmas, nets })
    }

    /// The network of noise level σ (relative match within 1e-12), or an error naming σ.
    pub fn net_for(&self, sigma: f64) -> Result<&BottleneckNet> {
        self.sigmas
            .iter()
            .position(|&s| (s - sigma).abs() <= 1e-12 * s)
            .map(|l| &self.nets[l])
            .ok_or_else(|| Error::InvalidArgument {
                what: "sigma".into(),
                reason: format!("no per-step network was trained at σ = {sigma}"),
            })
    }
}

impl Denoiser for PerStep {
    fn dim(&self) -> usize {
        self.nets[0].dim()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        self.net_for(sigma)?.denoise(y, sigma)
    }

    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        self.net_for(sigma)?.jacobian(y, sigma)
    }
}
