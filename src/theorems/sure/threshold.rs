//! SURE as a per-image risk estimate: choosing a soft-threshold level.

use crate::error::{ensure_sigma, Error, Result};
use crate::rng::Rng;
use crate::stats::two_sided_z;
use crate::targets::{ClosedForm, GaussianMixture, Target};
use crate::theorems::{noisy_expectation_1d, Check, Controlled};

/// The factor in front of `σ² tr∇f` in SURE (Stein's 2); the planted variants drop it to 1.
pub(super) const STEIN_FACTOR: f64 = 2.0;

/// The planted factor: SURE with `σ² tr∇f` for `2σ² tr∇f`.
pub(super) const PLANTED_FACTOR: f64 = 1.0;

/// Risk estimate of soft thresholding at level τ for one observation y ∈ ℝᵈ (Donoho &
/// Johnstone 1995): `SURE(τ; y) = Σ_i [min(y_i², τ²) + 2σ²·1{|y_i| > τ}] − σ²d`.
pub fn soft_threshold_sure(y: &[f64], tau: f64, sigma: f64) -> f64 {
    y.iter()
        .map(|&v| sure_term(v, tau, sigma, STEIN_FACTOR))
        .sum()
}

/// Per-coordinate SURE term `s(τ; v) = min(v², τ²) + c·σ²1{|v| > τ} − σ²` with `c` =
/// `factor` (2 in Stein's formula: the divergence of soft thresholding is `1{|v| > τ}`).
fn sure_term(v: f64, tau: f64, sigma: f64, factor: f64) -> f64 {
    let s2 = sigma * sigma;
    v.abs().min(tau).powi(2) + if v.abs() > tau { factor * s2 } else { 0.0 } - s2
}

/// The outcome of choosing a soft-threshold level by minimising SURE on one observation.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdChoice {
    /// The grid of levels τ.
    pub levels: Vec<f64>,
    /// Level minimising `SURE(τ; y)`.
    pub sure_level: f64,
    /// Level minimising the true risk `R(τ) = E‖x − η_τ(y)‖²` (per coordinate × d).
    pub oracle_level: f64,
    /// `R(τ̂) − R(τ*)`, the excess risk of the SURE choice.
    pub excess_risk: f64,
    /// The margin it must stay within (see [`choose_soft_threshold`]).
    pub margin: f64,
}

impl ThresholdChoice {
    /// The check `excess_risk ≤ margin`.
    pub fn check(&self) -> Check {
        Check {
            residual: self.excess_risk,
            tolerance: self.margin,
        }
    }
}

/// A SURE-based threshold choice and the same choice made with the planted SURE (the factor 2
/// of `2σ² tr∇f` dropped: `σ²·1{|y_i| > τ}` per kept coordinate), on the same observation.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdSelection {
    /// The choice by Stein's SURE.
    pub stein: ThresholdChoice,
    /// The choice by the planted SURE, with its margin computed the same way.
    pub planted: ThresholdChoice,
}

impl ThresholdSelection {
    /// Both choices' checks.
    pub fn controlled(&self) -> Controlled {
        Controlled {
            check: self.stein.check(),
            planted: self.planted.check(),
        }
    }
}

/// Chooses τ for soft thresholding by minimising SURE on one observation `y = x + σg` with
/// coordinates x_i iid from the 1-D mixture `prior` (d = `dim`), and compares with the level
/// minimising the true risk. The true risk is computed without SURE, from the posterior:
/// `R(τ)/d = E_v[Var(x|v) + (E[x|v] − η_τ(v))²]` by quadrature over the noisy marginal.
///
/// Margin: SURE(τ̂) ≤ SURE(τ*) gives `R(τ̂) − R(τ*) ≤ −(Δ(τ̂) − Δ(τ*))` with
/// `Δ(τ) = SURE(τ) − R(τ) = Σ_i (s(τ; y_i) − E s(τ))`, a sum of d iid centred terms. For each
/// level, `Δ(τ) − Δ(τ*)` has variance `d·Var(s(τ) − s(τ*))` (by quadrature); the m events
/// `|Δ(τ) − Δ(τ*)| ≤ z(α/m)·√(d·Var(s(τ) − s(τ*)))` hold together with probability ≥ 1 − α
/// (union bound; normal approximation of a sum of d iid terms with finite variance), so the
/// margin `z(α/m)·√(d·Var(s(τ̂) − s(τ*)))` at the chosen level τ̂ fails with probability at
/// most α; the quadrature error estimates are added.
///
/// The planted choice runs the same machinery with the planted SURE term; its margin
/// argument fails because the planted `Δ(τ)` is not centred (`E s'(τ) ≠ R(τ)/d`).
pub fn choose_soft_threshold(
    prior: &GaussianMixture,
    dim: usize,
    sigma: f64,
    levels: &[f64],
    seed: u64,
    alpha: f64,
) -> Result<ThresholdSelection> {
    ensure_sigma(sigma)?;
    if prior.dim() != 1 {
        return Err(Error::DimensionMismatch {
            what: "threshold prior dimension".into(),
            expected: 1,
            got: prior.dim(),
        });
    }
    if levels.is_empty() || dim == 0 {
        return Err(Error::InvalidArgument {
            what: "threshold grid".into(),
            reason: format!(
                "needs levels and d ≥ 1, got {} levels, d = {dim}",
                levels.len()
            ),
        });
    }
    let x = prior.sample(&mut Rng::new(seed, 0), dim);
    let mut noise = Rng::new(seed, 1);
    let y: Vec<f64> = (0..dim)
        .map(|i| x[(i, 0)] + sigma * noise.normal())
        .collect();
    let mut risks = Vec::with_capacity(levels.len());
    let mut risk_error = 0.0;
    for &t in levels {
        let (r, e) = noisy_expectation_1d(prior, sigma, &[-t, t], |v| {
            let mean = prior
                .posterior_mean(&[v], sigma)
                .map(|m| m[0])
                .unwrap_or(f64::NAN);
            let var = prior
                .posterior_covariance(&[v], sigma)
                .map(|c| c[(0, 0)])
                .unwrap_or(f64::NAN);
            let eta = v.signum() * (v.abs() - t).max(0.0);
            var + (mean - eta).powi(2)
        })?;
        risks.push(r * dim as f64);
        risk_error += e * dim as f64;
    }
    let argmin = |v: &[f64]| {
        v.iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap_or(0)
    };
    let i_oracle = argmin(&risks);
    let t_star = levels[i_oracle];
    let choose = |factor: f64| -> Result<ThresholdChoice> {
        let sures: Vec<f64> = levels
            .iter()
            .map(|&t| y.iter().map(|&v| sure_term(v, t, sigma, factor)).sum())
            .collect();
        let i_sure = argmin(&sures);
        // The sd of Δ(τ) − Δ(τ*) at the chosen level only: the union bound over all m levels
        // already covers whichever one SURE picks.
        let t = levels[i_sure];
        let breaks = [-t, t, -t_star, t_star];
        let gap = |v: f64| sure_term(v, t, sigma, factor) - sure_term(v, t_star, sigma, factor);
        let (m1, e1) = noisy_expectation_1d(prior, sigma, &breaks, gap)?;
        let (m2, e2) = noisy_expectation_1d(prior, sigma, &breaks, |v| gap(v).powi(2))?;
        let chosen_sd = (dim as f64 * (m2 - m1 * m1).max(0.0)).sqrt();
        let quad_error = risk_error + dim as f64 * (e1 + e2);
        Ok(ThresholdChoice {
            levels: levels.to_vec(),
            sure_level: t,
            oracle_level: t_star,
            excess_risk: risks[i_sure] - risks[i_oracle],
            margin: two_sided_z(alpha / levels.len() as f64) * chosen_sd + 2.0 * quad_error,
        })
    };
    Ok(ThresholdSelection {
        stein: choose(STEIN_FACTOR)?,
        planted: choose(PLANTED_FACTOR)?,
    })
}
