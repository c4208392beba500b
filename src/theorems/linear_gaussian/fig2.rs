//! Levine–Weiss Fig. 2: two different laws with the same first two moments get the same optimal affine denoiser and the same DDIM samples.

use super::*;

/// Levine–Weiss Fig. 2: a 3-component and a 2-component GMM in 2-D with identical mean
/// `(1, −0.5)` and covariance `[[2, 0.6], [0.6, 1.5]]`: the 2-GMM has means `μ ± (1.2, 0)` and
/// within-covariance `Σ − diag(1.44, 0)`; the 3-GMM has means `μ + (0, 1.2)`, `μ + (±1.2, −0.6)`
/// and within-covariance `Σ − diag(0.96, 0.72)` (between-component covariances
/// `diag(a², 0)` and `diag(2c²/3, b²/2)`).
pub fn fig2_pair() -> Result<(GaussianMixture, GaussianMixture)> {
    let mu = [1.0, -0.5];
    let sigma = [[2.0, 0.6], [0.6, 1.5]];
    let within = |dx: f64, dy: f64| {
        Mat::from_fn(2, 2, |i, j| {
            sigma[i][j]
                - match (i, j) {
                    (0, 0) => dx,
                    (1, 1) => dy,
                    _ => 0.0,
                }
        })
    };
    let shift = |dx: f64, dy: f64| vec![mu[0] + dx, mu[1] + dy];
    let three = GaussianMixture::new(
        &[1.0 / 3.0; 3],
        &[shift(0.0, 1.2), shift(1.2, -0.6), shift(-1.2, -0.6)],
        &[within(0.96, 0.72), within(0.96, 0.72), within(0.96, 0.72)],
    )?;
    let two = GaussianMixture::new(
        &[0.5, 0.5],
        &[shift(1.2, 0.0), shift(-1.2, 0.0)],
        &[within(1.44, 0.0), within(1.44, 0.0)],
    )?;
    Ok((three, two))
}

/// f64 rounding bound on the moments of a mixture: `8(K + d)ε(max|Σ_k| + max|μ_k|²)` per entry
/// (sums of K products, each with O(1) roundings, plus the d-term eigen-reconstruction).
pub(super) fn moment_rounding(t: &GaussianMixture) -> f64 {
    let k = t.components().len() as f64;
    let d = t.dim() as f64;
    let scale = t.scale();
    8.0 * (k + d) * EPS * (scale * scale + 1.0)
}

/// The planted wrong variant of "the optimal affine denoiser depends on (μ, Σ)" for a mixture:
/// the denoiser built from the mean and the *within-component* covariance `Σ_k w_k Σ_k` (the
/// between-component covariance of the means dropped — a plausible bug of the mixture
/// covariance).
pub(super) fn within_component_denoiser(t: &GaussianMixture) -> Result<OptimalAffine> {
    let d = t.dim();
    let parts: Vec<(f64, Mat)> = t
        .components()
        .iter()
        .map(|c| (c.weight, c.factor.covariance()))
        .collect();
    let within = Mat::from_fn(d, d, |i, j| parts.iter().map(|(w, c)| w * c[(i, j)]).sum());
    OptimalAffine::from_moments(&t.mean(), &within)
}

/// The Fig. 2 pair's optimal affine denoisers at `y` and σ: equal up to the rounding of the
/// moments. Tolerance: `‖ΔW‖ ≤ ‖ΔΣ‖/σ²` (since `dW = σ²(Σ+σ²)⁻¹dΣ(Σ+σ²)⁻¹`), applied to
/// `|y − μ|·d`, plus `|Δμ|` and twice the evaluation bound of each side. Planted: the 2-GMM's
/// denoiser from its within-component covariance (`within_component_denoiser`).
pub fn fig2_denoisers_agree(y: &[f64], sigma: f64) -> Result<Controlled> {
    let (a, b) = fig2_pair()?;
    let fa = OptimalAffine::from_target(&a)?.denoise(y, sigma)?;
    let fb = OptimalAffine::from_target(&b)?.denoise(y, sigma)?;
    let planted = within_component_denoiser(&b)?.denoise(y, sigma)?;
    let dsig = moment_rounding(&a) + moment_rounding(&b);
    let g = gaussian(&a.mean(), &a.covariance())?;
    let spread = max_abs(y) + max_abs(&a.mean());
    let tolerance = dsig * (1.0 + 2.0 * spread / (sigma * sigma))
        + 4.0 * tweedie::rounding_bound(&g, y, sigma)?;
    Ok(Controlled {
        check: Check {
            residual: max_abs_diff(&fa, &fb),
            tolerance,
        },
        planted: Check {
            residual: max_abs_diff(&fa, &planted),
            tolerance,
        },
    })
}

/// The two mixtures of Fig. 2 are different laws: the largest difference of their Bayes
/// denoisers over a grid of points at σ = 0.5 (reported, must be far above rounding).
pub fn fig2_bayes_denoisers_differ() -> Result<f64> {
    let (a, b) = fig2_pair()?;
    let mut worst = 0.0f64;
    for i in -4..=4 {
        for j in -4..=4 {
            let y = [0.5 * f64::from(i) + 1.0, 0.5 * f64::from(j) - 0.5];
            worst = worst.max(max_abs_diff(
                &a.posterior_mean(&y, 0.5)?,
                &b.posterior_mean(&y, 0.5)?,
            ));
        }
    }
    Ok(worst)
}

/// DDIM with the Fig. 2 pair's optimal affine denoisers from identical noise gives identical
/// samples. Tolerance: the moment rounding `ΔΣ` changes each step's denoiser by at most
/// `‖ΔW_ℓ‖ ≤ ΔΣ·d/s_ℓ²` (`s_ℓ = σ_ℓ/α_ℓ`) and its bias by `ΔΣ·d(1 + |μ|/s_ℓ²)`, an error
/// `|a_ℓ|(ΔW_ℓ·d·(X/α_ℓ + |μ|) + Δb)` per step (`a_ℓ` from the book's eq.3.2.87,
/// [`flow::book_ddim_coefficients`]) that grows by at most the largest tail product; plus the
/// [`ddim_rounding_bound`] of each run. X bounds the states (max |x| over both runs). Planted:
/// the 2-GMM sampled with its within-component denoiser (`within_component_denoiser`).
pub fn fig2_samples_agree(schedule: &Schedule, noise: &Mat) -> Result<Controlled> {
    let (a, b) = fig2_pair()?;
    let sampler = Ddim {
        schedule: schedule.clone(),
    };
    let xa = sampler.sample(&OptimalAffine::from_target(&a)?, noise)?;
    let xb = sampler.sample(&OptimalAffine::from_target(&b)?, noise)?;
    let xp = sampler.sample(&within_component_denoiser(&b)?, noise)?;
    let d = 2usize;
    let (mu, cov) = (a.mean(), a.covariance());
    let law = generated_law(schedule, &mu, &cov, d, false)?;
    let max_tail = law.max_tail_products.iter().cloned().fold(1.0, f64::max);
    let mu_max = max_abs(&mu);
    let g_max = (0..noise.nrows())
        .map(|i| max_abs(&linalg::row(noise, i)))
        .fold(0.0, f64::max);
    let x_max = state_bound(schedule.initial_scale() * g_max, mu_max, max_tail, d);
    let dsig = moment_rounding(&a) + moment_rounding(&b);
    let drift = moment_drift(schedule, dsig, d, x_max, mu_max);
    let tolerance = drift * max_tail * (d as f64).sqrt()
        + 2.0 * ddim_rounding_bound(schedule, d, x_max, mu_max, max_tail);
    let largest_gap = |other: &Mat| {
        (0..noise.nrows())
            .map(|i| max_abs_diff(&linalg::row(&xa, i), &linalg::row(other, i)))
            .fold(0.0, f64::max)
    };
    Ok(Controlled {
        check: Check {
            residual: largest_gap(&xb),
            tolerance,
        },
        planted: Check {
            residual: largest_gap(&xp),
            tolerance,
        },
    })
}

/// The bound on every DDIM state of [`fig2_samples_agree`]: starting from `|x_L| ≤ start`
/// (the initial scale times the largest noise entry), each eigen-coordinate of `x − μ` is
/// multiplied by at most `max_tail`, and moving between the eigenbasis and coordinates costs
/// √d: `(start + |μ|)·max_tail·√d + |μ|`.
fn state_bound(start: f64, mu_max: f64, max_tail: f64, d: usize) -> f64 {
    (start + mu_max) * max_tail * (d as f64).sqrt() + mu_max
}

/// The drift allowance of [`fig2_samples_agree`]: moments that differ by `δΣ` entrywise move the
/// step-ℓ optimal affine map by `δW ≤ δΣ·d/σ_ℓ²` and `δb ≤ δΣ·d·(1 + |μ|/σ_ℓ²)` (σ_ℓ the
/// denoiser noise), so its output at a state `|x| ≤ x_max` by `δW·d·(x_max/α_ℓ + |μ|) + δb`;
/// the step passes that on with its eq. 3.2.87 coefficient `a_ℓ`: the sum over ℓ of
/// `|a_ℓ|·(that)` (before the tail products and √d of the caller).
fn moment_drift(schedule: &Schedule, dsig: f64, d: usize, x_max: f64, mu_max: f64) -> f64 {
    let df = d as f64;
    (1..=schedule.steps())
        .map(|l| {
            let (_, coef) = flow::book_ddim_coefficients(schedule, l);
            let s2 = schedule.denoiser_noise(l).powi(2);
            let dw = dsig * df / s2;
            let db = dsig * df * (1.0 + mu_max / s2);
            coef.abs() * (dw * df * (x_max / schedule.alpha(l) + mu_max) + db)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(start + |μ|)·tail·√d + |μ|` by hand: (3 + 1)·2·√4 + 1 = 17.
    #[test]
    fn state_bound_by_hand() {
        assert_eq!(state_bound(3.0, 1.0, 2.0, 4), 17.0);
    }

    /// The drift allowance on a 2-step VP schedule, each step's term written out:
    /// `|a_ℓ|·(δΣ·d²(x/α_ℓ + μ)/σ_ℓ² + δΣ·d·(1 + μ/σ_ℓ²))`, summed.
    #[test]
    fn moment_drift_is_the_documented_sum() {
        let s = Schedule::vp_cosine(0.9, 2).unwrap();
        let (dsig, x, mu) = (1e-10, 3.0, 0.5);
        let term = |l: usize| {
            let a = flow::book_ddim_coefficients(&s, l).1.abs();
            let s2 = s.denoiser_noise(l) * s.denoiser_noise(l);
            a * (dsig * 4.0 * (x / s.alpha(l) + mu) / s2 + dsig * 2.0 * (1.0 + mu / s2))
        };
        let drift = moment_drift(&s, dsig, 2, x, mu);
        let expected = term(1) + term(2);
        assert!(
            expected > 0.0 && (drift - expected).abs() <= 1e-14 * expected,
            "{drift} vs {expected}"
        );
    }
}
