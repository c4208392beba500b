//! Noise schedules `x_t = α_t x + σ_t g` on a grid `0 = t_0 < t_1 < … < t_L` (book eq.3.2.85).
//!
//! * variance exploding (VE): `α_t = 1`, `σ_t = t`, on the uniform grid `t_ℓ = ℓT/L`
//!   (eq.3.2.37) or the exponential grid `t_ℓ = C₁(e^{C₂ℓ} − 1)` (eq.3.2.83);
//! * variance preserving (VP) with the cosine schedule: `α_t = cos(πt/2)`, `σ_t = sin(πt/2)`,
//!   `t ∈ [0, t_max]`, `t_max < 1` (at t = 1, α = 0 and the denoiser would be queried at
//!   infinite noise).
//!
//! A denoiser `f(y; s)` for `y = x + s g` gives `E[x | x_t]` as `f(x_t/α_t; σ_t/α_t)`.

use crate::error::{Error, Result};

/// Which process the grid belongs to; it fixes the scale of the initial noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// `α = 1`, `σ_t = t`; initial state `x_{t_L} = t_L g` (book Algorithm 3.1).
    VarianceExploding,
    /// `α_t² + σ_t² = 1`; initial state `x_{t_L} = g` (book Algorithm 3.1).
    VariancePreserving,
}

/// The grid `(t_ℓ, α_ℓ, σ_ℓ)`, ℓ = 0..=L, with `σ_0 = 0`, `α_0 = 1`, σ_ℓ/α_ℓ strictly increasing
/// and `α_L > 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    process: Process,
    times: Vec<f64>,
    alphas: Vec<f64>,
    sigmas: Vec<f64>,
}

fn check_steps(steps: usize) -> Result<()> {
    if steps == 0 {
        return Err(Error::InvalidArgument {
            what: "steps".into(),
            reason: "need at least one step, got 0".into(),
        });
    }
    Ok(())
}

impl Schedule {
    /// VE on the uniform grid `t_ℓ = ℓT/L` (book eq.3.2.37); DDIM on it is eq.3.2.42.
    pub fn ve_uniform(t_max: f64, steps: usize) -> Result<Self> {
        crate::error::ensure_positive_finite("t_max", t_max)?;
        check_steps(steps)?;
        let times: Vec<f64> = (0..=steps)
            .map(|l| t_max * l as f64 / steps as f64)
            .collect();
        Ok(Self::ve(times))
    }

    /// VE on the exponential grid `t_ℓ = C₁(e^{C₂ℓ} − 1)` (book eq.3.2.83).
    pub fn ve_exponential(c1: f64, c2: f64, steps: usize) -> Result<Self> {
        crate::error::ensure_positive_finite("C1", c1)?;
        crate::error::ensure_positive_finite("C2", c2)?;
        check_steps(steps)?;
        let times: Vec<f64> = (0..=steps).map(|l| c1 * (c2 * l as f64).exp_m1()).collect();
        if !times.iter().all(|t| t.is_finite()) {
            return Err(Error::InvalidArgument {
                what: "C1, C2, steps".into(),
                reason: format!("t_L = C1(e^(C2·L) − 1) overflows for C1={c1}, C2={c2}, L={steps}"),
            });
        }
        Ok(Self::ve(times))
    }

    fn ve(times: Vec<f64>) -> Self {
        Self {
            process: Process::VarianceExploding,
            alphas: vec![1.0; times.len()],
            sigmas: times.clone(),
            times,
        }
    }

    /// VP cosine: `α_t = cos(πt/2)`, `σ_t = sin(πt/2)` on `t_ℓ = ℓ t_max/L`, `0 < t_max < 1`.
    pub fn vp_cosine(t_max: f64, steps: usize) -> Result<Self> {
        if !(t_max > 0.0 && t_max < 1.0) {
            return Err(Error::InvalidArgument {
                what: "t_max".into(),
                reason: format!(
                    "the VP cosine schedule needs 0 < t_max < 1 (α vanishes at 1), got {t_max}"
                ),
            });
        }
        check_steps(steps)?;
        let times: Vec<f64> = (0..=steps)
            .map(|l| t_max * l as f64 / steps as f64)
            .collect();
        let half_pi = std::f64::consts::FRAC_PI_2;
        Ok(Self {
            process: Process::VariancePreserving,
            alphas: times.iter().map(|t| (half_pi * t).cos()).collect(),
            sigmas: times.iter().map(|t| (half_pi * t).sin()).collect(),
            times,
        })
    }

    /// The process.
    pub fn process(&self) -> Process {
        self.process
    }

    /// L, the number of steps.
    pub fn steps(&self) -> usize {
        self.times.len() - 1
    }

    /// `t_ℓ`.
    pub fn time(&self, l: usize) -> f64 {
        self.times[l]
    }

    /// `α_ℓ`.
    pub fn alpha(&self, l: usize) -> f64 {
        self.alphas[l]
    }

    /// `σ_ℓ`.
    pub fn sigma(&self, l: usize) -> f64 {
        self.sigmas[l]
    }

    /// `σ_ℓ/α_ℓ`, the noise level at which the denoiser is queried at step ℓ.
    pub fn denoiser_noise(&self, l: usize) -> f64 {
        self.sigmas[l] / self.alphas[l]
    }

    /// The standard deviation of the initial state `x_{t_L} = scale·g`: `σ_L` (VE) or 1 (VP).
    pub(crate) fn initial_scale(&self) -> f64 {
        match self.process {
            Process::VarianceExploding => self.sigmas[self.steps()],
            Process::VariancePreserving => 1.0,
        }
    }
}
