//! `kl_bound` — the denoising bound on the KL divergence (Sugolov Prop. 4; Kadkhodaie et al.
//! eq. 5, App. C.2):
//!
//! `D_KL(p‖p_θ) ≤ ∫₀^∞ (MSE(f_θ, σ²) − MSE(f*, σ²)) σ⁻³ dσ`,
//!
//! with equality when `f_θ` is the Bayes denoiser of a model q at every σ and `p_θ = q`.
//!
//! Why equality: with `p_s = p * N(0, sI)`, `q_s = q * N(0, sI)` (s = σ²) both solve the heat
//! equation, and `d/ds KL(p_s‖q_s) = −½ E_{p_s}‖∇log p_s − ∇log q_s‖²` (de Bruijn's identity for
//! relative entropy). Tweedie gives `∇log p_s − ∇log q_s = (f*(y) − f_θ(y))/s`, and Prop. 2 gives
//! `E‖f* − f_θ‖² = MSE(f_θ) − MSE(f*)`. Integrating s from 0 to ∞ (where the KL vanishes) and
//! substituting s = σ² (ds/(2s²) = σ⁻³dσ) turns the derivative into the right-hand side exactly.
//! Song et al.'s inequality adds only the prior term `KL(p_T‖π)` and the path-space slack of the
//! reverse SDE, both zero here.
//!
//! Routes: the left side in closed form (Gaussians: traces and log-determinants; a 1-D mixture
//! against a Gaussian: quadrature of `p log p` plus the Gaussian cross-entropy in closed form); the
//! right side by quadrature over σ of the denoisers' MSE gap. The gap is evaluated as
//! `E‖f*(y) − f_θ(y)‖²` with the factor σ⁴ taken out analytically — for affine Bayes denoisers
//! `f*(y) − f_θ(y) = σ²[(Σ_q + σ²I)⁻¹(y − μ_q) − (Σ_p + σ²I)⁻¹(y − μ_p)]` — because subtracting two
//! MSEs of order σ²d loses every digit of an O(σ⁴) gap as σ → 0.

mod cases;
mod family;
mod gaussian;
mod mixture;

use crate::error::Result;
use crate::rng::Rng;
use crate::targets::Target;
use crate::theorems::{Depth, Verdict, CPU_BACKEND};

pub use cases::{
    random_spd, rotation, three_component_mixture, GAUSSIAN_CLAIM, MIXTURE_GAUSSIAN_CLAIM,
    MIXTURE_PAIR_CLAIM, ODE_CLAIM,
};
pub use family::{
    bayes_family_attains_bound, reverse_sde_law, rotated_family, rotated_family_bound,
    FamilyOutcome, RotatedFamily,
};
pub use gaussian::{gaussian_equality, gaussian_gap_integral, gaussian_kl, Gaussian};
pub use mixture::{
    mixture_equality, mixture_kl, mixture_pair_equality, two_component_model, GapVariant,
};

/// The theorem id.
pub const THEOREM: &str = "kl_bound";

/// A quadrature result with its error estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Integral {
    /// The value.
    pub value: f64,
    /// The integrator's error estimate (summed over pieces).
    pub error: f64,
}

/// `∫₀^∞ h(s) ds` for a smooth h with `h(s) → const` as s → 0 and `h(s) = O(s⁻²)` as s → ∞, by
/// double-exponential quadrature after `s = c·t/(1 − t)`, t ∈ (0, 1), split at t = ½ (s = c).
fn integrate_half_line(scale: f64, h: impl Fn(f64) -> Result<f64>) -> Result<Integral> {
    let failure = std::cell::RefCell::new(None);
    let integrand = |t: f64| {
        if t <= 0.0 || t >= 1.0 {
            return 0.0;
        }
        let s = scale * t / (1.0 - t);
        match h(s) {
            Ok(v) => v * scale / ((1.0 - t) * (1.0 - t)),
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                f64::NAN
            }
        }
    };
    let (mut value, mut error) = (0.0, 0.0);
    for (a, b) in [(0.0, 0.5), (0.5, 1.0)] {
        let q = quadrature::double_exponential::integrate(integrand, a, b, 1e-14);
        value += q.integral;
        error += q.error_estimate;
    }
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    Ok(Integral { value, error })
}

/// The `verify` rows of `kl_bound`.
///
/// CPU-only: the GPU argument (the signature of [`super::Theorem::verdicts`]) is not used.
pub(crate) fn default_verdicts(_gpu: Result<&crate::gpu::Gpu>, depth: Depth) -> Vec<Verdict> {
    // pairs per dimension: 1 at quick, 3, 12 at thorough
    let pairs = match depth {
        Depth::Quick => 1,
        Depth::Default => 3,
        Depth::Thorough => 12,
    };
    vec![
        Verdict::collect(&GAUSSIAN_CLAIM, CPU_BACKEND, depth, || {
            let mut rng = Rng::new(0x0c1b, 0);
            let mut out = Vec::new();
            for d in 1..=6 {
                for _ in 0..pairs {
                    let p = Gaussian::new(rng.normals(d), random_spd(&mut rng, d))?;
                    let q = Gaussian::new(rng.normals(d), random_spd(&mut rng, d))?;
                    out.push(gaussian_equality(&p, &q)?);
                }
            }
            Ok(out)
        }),
        // the two mixture rows have fixed cases: the same at every depth
        Verdict::collect(&MIXTURE_GAUSSIAN_CLAIM, CPU_BACKEND, depth, || {
            let p = three_component_mixture()?;
            let (m, v) = (p.mean()[0], p.covariance()[(0, 0)]);
            // two independent quadratures, each on its own thread
            let (moment_matched, standard) = std::thread::scope(|scope| {
                let standard = scope.spawn(|| mixture_equality(&p, 0.0, 1.0));
                let moment_matched = mixture_equality(&p, m, v);
                (moment_matched, super::joined(standard))
            });
            Ok(vec![moment_matched?, standard?])
        }),
        Verdict::collect(&MIXTURE_PAIR_CLAIM, CPU_BACKEND, depth, || {
            Ok(vec![mixture_pair_equality(
                &three_component_mixture()?,
                &two_component_model()?,
            )?])
        }),
        Verdict::collect(&ODE_CLAIM, CPU_BACKEND, depth, || {
            let mut rng = Rng::new(0x0c1c, 0);
            let mut out = Vec::new();
            // d = 2, 3 (d = 2 only at quick; d = 2…6 at thorough)
            let dims = match depth {
                Depth::Quick => 2..=2,
                Depth::Default => 2..=3,
                Depth::Thorough => 2..=6,
            };
            for d in dims {
                let p = Gaussian::new(rng.normals(d), random_spd(&mut rng, d))?;
                let q = Gaussian::new(rng.normals(d), random_spd(&mut rng, d))?;
                out.push(bayes_family_attains_bound(&p, &q)?);
            }
            Ok(out)
        }),
    ]
}
