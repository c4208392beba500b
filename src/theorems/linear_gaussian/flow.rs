//! The law that DDIM and the ancestral sampler generate with the optimal affine denoiser of
//! `N(μ, Σ)`, derived per eigen-direction from the book's update on its own — this module never
//! calls the sampler or `diffusion::samplers::step_coefficients` — and the exact
//! probability-flow solution it converges to, with the discretisation defect in closed form.
//!
//! **Derivation.** Divide `x_t = α_t x + σ_t g` (eq.3.2.85) by α_t: `u_t = x_t/α_t = x + r_t g`
//! with the noise-to-signal ratio `r_t = σ_t/α_t` (the variance-exploding picture, eq.3.2.1).
//! Dividing the DDIM step eq.3.2.87 by `α_{ℓ−1}` gives eq.3.2.84 in these coordinates,
//!
//! `u_{ℓ−1} = q_ℓ u_ℓ + (1 − q_ℓ) x̂_ℓ + ν_ℓ ξ`,  `q_ℓ = r_{ℓ−1}/r_ℓ`, `ν_ℓ = 0`;
//!
//! the ancestral (DDPM-posterior) step is the Brownian-bridge law of `u_{ℓ−1} = x + r_{ℓ−1}g'`
//! given `u_ℓ = x + r_ℓ g` and `x = x̂`: the same form with `q_ℓ = r_{ℓ−1}²/r_ℓ²` and
//! `ν_ℓ² = r_{ℓ−1}²(1 − q_ℓ)`. With the optimal affine denoiser `x̂ = μ + λ/(λ + r²)(u − μ)`
//! along an eigen-direction of Σ (eigenvalue λ), the centred coordinate `v = u − μ` obeys
//! `v_{ℓ−1} = g_ℓ v_ℓ + ν_ℓ ξ` with the gain
//!
//! `g_ℓ(λ) = (λ + q_ℓ r_ℓ²)/(λ + r_ℓ²)`:  DDIM `(λ + r_{ℓ−1} r_ℓ)/(λ + r_ℓ²)`, ancestral
//! `(λ + r_{ℓ−1}²)/(λ + r_ℓ²)` (which telescopes).
//!
//! The start `x_L = s g` is `u_L = s g/α_L`, so `v_L ~ N(−μ_i, s²/α_L²)`, and `x_0 = α_0 u_0`.
//!
//! **Exact flow.** The probability-flow ODE of the same process in these coordinates is
//! `du/dr = (u − x̂(u, r))/r` (eq.3.2.84 in the limit of small steps), i.e.
//! `dv/dr = r v/(λ + r²)`, solved by `v(r) ∝ √(λ + r²)`: the exact gain from `r_L` to `r_0` is
//! `√((λ + r_0²)/(λ + r_L²))`.
//!
//! **Defect (angle identity).** With `φ = atan(r/√λ)`, `cos(φ_ℓ − φ_{ℓ−1}) =
//! (λ + r_{ℓ−1}r_ℓ)/√((λ + r_{ℓ−1}²)(λ + r_ℓ²))`, so each DDIM gain is the exact step gain times
//! `cos Δφ_ℓ` and the L-step DDIM gain is the exact-flow gain times `∏ cos Δφ_ℓ`. Since
//! `log cos x ∈ [−½tan²x, −½sin²x]`, the relative gain defect `1 − ∏cos Δφ_ℓ` lies in
//! `[1 − e^{−S/2}, 1 − e^{−T/2}]` with `S = Σ sin²Δφ_ℓ`, `T = Σ tan²Δφ_ℓ`: first order `S/2`,
//! and the band's width `O(Σ Δφ⁴)`. And `S ≤ Σ Δφ² ≤ max Δφ · φ_L` with `Δφ ≤ h·sup φ'` (mean
//! value theorem): `S ≤ C/L` with the constants of [`vp_cosine_rate_constant`] and
//! [`ve_uniform_rate_constant`]; `S ≥ (1 − Δφ_max²/3)φ_L²/L` (Cauchy–Schwarz and
//! `sin²x ≥ x²(1 − x²/3)`), so the rate is exactly first order.

use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::linalg::{self, Mat, EPS};

/// A reverse update of the family `u_{ℓ−1} = q_ℓ u_ℓ + (1 − q_ℓ)x̂ + ν_ℓ ξ` (module doc), by its
/// retention `q_ℓ = (r_{ℓ−1}/r_ℓ)^p` and whether it injects the bridge noise
/// `ν_ℓ² = r_{ℓ−1}²(1 − q_ℓ)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    /// The exponent p of the retention `q_ℓ = (r_{ℓ−1}/r_ℓ)^p`.
    pub retention_power: i32,
    /// Whether the step adds `ν_ℓ ξ`.
    pub injects_noise: bool,
}

impl Update {
    /// DDIM (eq.3.2.84 / 3.2.87): `q = r_{ℓ−1}/r_ℓ`, deterministic.
    pub const DDIM: Self = Self {
        retention_power: 1,
        injects_noise: false,
    };
    /// The ancestral (DDPM-posterior) step: `q = (r_{ℓ−1}/r_ℓ)²` with the bridge noise.
    pub const ANCESTRAL: Self = Self {
        retention_power: 2,
        injects_noise: true,
    };

    /// DDIM (`stochastic = false`) or ancestral (`true`).
    pub fn of(stochastic: bool) -> Self {
        if stochastic {
            Self::ANCESTRAL
        } else {
            Self::DDIM
        }
    }

    /// The planted wrong variant used as a negative control: the retention exponent swapped
    /// (DDIM with `q = (r_{ℓ−1}/r_ℓ)²` — in the sampler's coefficients the bug
    /// `k = (σ_{ℓ−1}/σ_ℓ)²` up to a factor `α_{ℓ−1}/α_ℓ` — and the ancestral step with
    /// `q = r_{ℓ−1}/r_ℓ`).
    pub fn with_swapped_retention(self) -> Self {
        Self {
            retention_power: 3 - self.retention_power,
            ..self
        }
    }
}

/// `r_ℓ = σ_ℓ/α_ℓ`, read from the schedule's α and σ (not from the sampler).
pub(crate) fn noise_to_signal(schedule: &Schedule, l: usize) -> f64 {
    schedule.sigma(l) / schedule.alpha(l)
}

/// The DDIM step's coefficients as printed in eq.3.2.87, `k_ℓ = σ_{ℓ−1}/σ_ℓ` and
/// `a_ℓ = α_{ℓ−1} − k_ℓ α_ℓ`: used only for the sizes of rounding bounds.
pub fn book_ddim_coefficients(schedule: &Schedule, l: usize) -> (f64, f64) {
    let k = schedule.sigma(l - 1) / schedule.sigma(l);
    (k, schedule.alpha(l - 1) - k * schedule.alpha(l))
}

/// The generated law along one eigen-direction, in x-coordinates: the centred output is
/// `gain · z_L + N(0, noise_variance)` with `z_L = x_L − α_L μ`.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectionLaw {
    /// `P = α_0 ∏_ℓ g_ℓ / α_L`.
    pub gain: f64,
    /// `V = α_0² Σ_ℓ ν_ℓ² ∏_{j<ℓ} g_j²`.
    pub noise_variance: f64,
    /// The per-step gains in x-coordinates, `c_ℓ = α_{ℓ−1} g_ℓ/α_ℓ`, for ℓ = L down to 1.
    pub step_gains: Vec<f64>,
}

/// The law of one eigen-direction with eigenvalue λ ≥ 0 under `update` on `schedule`
/// (module doc): the recursion `P ← g_ℓ P`, `V ← g_ℓ² V + ν_ℓ²` from ℓ = L down to 1.
pub fn direction_law(schedule: &Schedule, lambda: f64, update: Update) -> DirectionLaw {
    let big_l = schedule.steps();
    let (mut p, mut v) = (1.0, 0.0);
    let mut step_gains = Vec::with_capacity(big_l);
    for l in (1..=big_l).rev() {
        let (r_prev, r_cur) = (
            noise_to_signal(schedule, l - 1),
            noise_to_signal(schedule, l),
        );
        let q = (r_prev / r_cur).powi(update.retention_power);
        let g = (lambda + q * r_cur * r_cur) / (lambda + r_cur * r_cur);
        let nu2 = if update.injects_noise {
            r_prev * r_prev * (1.0 - q)
        } else {
            0.0
        };
        p *= g;
        v = g * g * v + nu2;
        step_gains.push(schedule.alpha(l - 1) * g / schedule.alpha(l));
    }
    let (a0, al) = (schedule.alpha(0), schedule.alpha(big_l));
    DirectionLaw {
        gain: a0 * p / al,
        noise_variance: a0 * a0 * v,
        step_gains,
    }
}

/// The exact probability-flow gain in x-coordinates from `t_L` to `t_0` along an eigen-direction
/// with eigenvalue λ: `α_0 √((λ + r_0²)/(λ + r_L²)) / α_L` (module doc).
pub fn exact_flow_gain(schedule: &Schedule, lambda: f64) -> f64 {
    let big_l = schedule.steps();
    let (r0, rl) = (
        noise_to_signal(schedule, 0),
        noise_to_signal(schedule, big_l),
    );
    schedule.alpha(0) * ((lambda + r0 * r0) / (lambda + rl * rl)).sqrt() / schedule.alpha(big_l)
}

/// The angle steps `Δφ_ℓ = φ_ℓ − φ_{ℓ−1}`, `φ = atan2(r, √λ)`, ℓ = 1..=L.
fn angle_steps(schedule: &Schedule, lambda: f64) -> Vec<f64> {
    let phi = |l: usize| noise_to_signal(schedule, l).atan2(lambda.sqrt());
    (1..=schedule.steps())
        .map(|l| phi(l) - phi(l - 1))
        .collect()
}

/// `S = Σ_ℓ sin²Δφ_ℓ`: the first-order discretisation defect of DDIM along an eigen-direction
/// with λ > 0 (module doc).
pub fn angle_defect(schedule: &Schedule, lambda: f64) -> f64 {
    angle_steps(schedule, lambda)
        .iter()
        .map(|x| x.sin().powi(2))
        .sum()
}

/// The interval `[1 − e^{−S/2}, 1 − e^{−T/2}]`, `S = Σ sin²Δφ_ℓ` ([`angle_defect`]),
/// `T = Σ tan²Δφ_ℓ`, that contains the relative DDIM gain defect `1 − P_DDIM/P_exact =
/// 1 − ∏cos Δφ_ℓ` (module doc): `log cos x = ½log(1 − sin²x) ∈ [−½tan²x, −½sin²x]` (from
/// `−a/(1 − a) ≤ log(1 − a) ≤ −a`). Its width is `O(Σ Δφ⁴) = O(1/L³)`.
pub fn defect_band(schedule: &Schedule, lambda: f64) -> (f64, f64) {
    let steps = angle_steps(schedule, lambda);
    let s: f64 = steps.iter().map(|x| x.sin().powi(2)).sum();
    let t: f64 = steps.iter().map(|x| x.tan().powi(2)).sum();
    (-(-0.5 * s).exp_m1(), -(-0.5 * t).exp_m1())
}

/// The proved rate constant of the VP cosine schedule on `[0, t_max]`: `S·L ≤ t_max·(π/2)·
/// max(√λ, 1/√λ)·φ_L`, since `φ' = (π/2)√λ(1 + r²)/(λ + r²) ≤ (π/2)max(√λ, 1/√λ)` for
/// `r = tan(πt/2)`, and `S ≤ max Δφ · φ_L`.
pub fn vp_cosine_rate_constant(t_max: f64, lambda: f64) -> f64 {
    let half_pi = std::f64::consts::FRAC_PI_2;
    let phi_l = (half_pi * t_max).tan().atan2(lambda.sqrt());
    t_max * half_pi * lambda.sqrt().max(1.0 / lambda.sqrt()) * phi_l
}

/// The proved rate constant of the uniform VE grid on `[0, T]` (`r = t`): `S·L ≤ T φ_L/√λ`,
/// since `φ' = √λ/(λ + t²) ≤ 1/√λ`.
pub fn ve_uniform_rate_constant(t_max: f64, lambda: f64) -> f64 {
    t_max * t_max.atan2(lambda.sqrt()) / lambda.sqrt()
}

/// The proved lower bound `S·L ≥ (1 − Δφ_max²/3)·φ_L²` (Cauchy–Schwarz on `Σ Δφ = φ_L` when
/// `r_0 = 0`, and `sin²x ≥ x²(1 − x²/3)`), `Δφ_max` the largest step of the grid's angles.
pub fn rate_lower_constant(schedule: &Schedule, lambda: f64) -> f64 {
    let steps = angle_steps(schedule, lambda);
    let max_step = steps.iter().cloned().fold(0.0, f64::max);
    let total: f64 = steps.iter().sum();
    (1.0 - max_step * max_step / 3.0) * total * total
}

/// Eigenpairs of a covariance in descending order, computed here (faer's symmetric
/// eigen-decomposition, independent of the denoisers' own factorisations): eigenvalues below the
/// PSD rounding floor `8dε·λ_max` (including small negative ones) set to 0.
pub fn descending_eigenpairs(covariance: &Mat) -> Result<(Vec<f64>, Mat)> {
    let d = covariance.nrows();
    linalg::check_symmetric("covariance", covariance)?;
    let (values, vectors) = linalg::sym_eigen(covariance)?;
    let lmax = values.iter().cloned().fold(0.0, f64::max);
    if values
        .iter()
        .any(|&v| v < -8.0 * d as f64 * EPS * lmax.max(EPS))
    {
        return Err(Error::NotPsd {
            what: "covariance".into(),
            reason: format!("negative eigenvalue {:e}", values[0]),
        });
    }
    let floor = 8.0 * d as f64 * EPS * lmax;
    let vals = (0..d)
        .rev()
        .map(|i| if values[i] > floor { values[i] } else { 0.0 })
        .collect();
    let vecs = Mat::from_fn(d, d, |i, j| vectors[(i, d - 1 - j)]);
    Ok((vals, vecs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For λ < 1 the VP constant takes `1/√λ`: at λ = 1/4, t_max = 1/2 it is
    /// `½·(π/2)·2·atan2(tan(π/4), ½) = (π/2)·atan 2`.
    #[test]
    fn vp_rate_constant_by_hand_below_unit_eigenvalue() {
        let c = vp_cosine_rate_constant(0.5, 0.25);
        let expected = std::f64::consts::FRAC_PI_2 * 2f64.atan();
        assert!((c - expected).abs() < 1e-15, "{c} vs {expected}");
    }

    /// The PSD floor is `8dε·λ_max`: in 2-D an eigenvalue of 10ε (below 16ε) is set to 0 and
    /// one of 20ε is kept.
    #[test]
    fn eigenvalues_below_the_floor_are_zeroed() {
        let diag = |small: f64| Mat::from_fn(2, 2, |i, j| [[1.0, 0.0], [0.0, small]][i][j]);
        let (zeroed, _) = descending_eigenpairs(&diag(10.0 * EPS)).unwrap();
        assert_eq!(zeroed, vec![1.0, 0.0]);
        let (kept, _) = descending_eigenpairs(&diag(20.0 * EPS)).unwrap();
        assert_eq!(kept, vec![1.0, 20.0 * EPS]);
    }

    /// Eq. 3.2.87's coefficients read off the schedule: `k_ℓ = σ_{ℓ−1}/σ_ℓ`,
    /// `a_ℓ = α_{ℓ−1} − k_ℓ α_ℓ`, on a VP cosine schedule (α ≠ 1) at every step.
    #[test]
    fn book_coefficients_from_the_schedule() {
        let s = Schedule::vp_cosine(0.9, 6).unwrap();
        for l in 1..=6 {
            let (k, a) = book_ddim_coefficients(&s, l);
            let k_book = s.sigma(l - 1) / s.sigma(l);
            assert_eq!(k, k_book);
            assert!((a - (s.alpha(l - 1) - k_book * s.alpha(l))).abs() < 1e-15);
            assert!(k < 1.0 && a > 0.0, "step {l}: k = {k}, a = {a}");
        }
    }
}
